#!/usr/bin/env bash
# A snapshot of the same tree to a local folder and to S3 (a Garage on 127.0.0.1, started
# here), timed with hyperfine; prints the medians and the ratio S3 / local.
#
#   benches/s3.sh DATA WORK
#
#   DATA  the tree to back up (read only); WORK a scratch folder (about 3x DATA free).
# Env: RUNS (3). Needs hyperfine and garage (cargo install garage --version 2.5.0 --locked).
# Snapshot: each run starts from an empty repository (a fresh folder, or a fresh prefix of the bucket)
# and an empty cache, so every pack is written: the first, full snapshot. Garage stores its
# data on the same disk, so this measures the S3 path's overhead (HTTP, signing, multipart,
# the upload queue), not a network. Restore: the last snapshot of each, into an empty folder.
set -euo pipefail

DATA=$(realpath "$1"); WORK=$(realpath -m "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-3}
command -v hyperfine >/dev/null || { echo "hyperfine is needed" >&2; exit 1; }

(cd "$ROOT" && cargo build --release -q)
OPC=$ROOT/target/release/opc-store
rm -rf "$WORK"; mkdir -p "$WORK"
eval "$(bash "$ROOT/tests/s3/start-garage.sh" "$WORK/garage" 3910 3911 3913 $$)"
trap 'kill "$OPC_TEST_GARAGE_PID" 2>/dev/null || true' EXIT

export OPC_PASSWORD=bench-password OPC_CONFIG=$WORK/config.yml
export AWS_ACCESS_KEY_ID=$OPC_TEST_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$OPC_TEST_S3_SECRET_KEY
export AWS_REGION=$OPC_TEST_S3_REGION
printf 'repository: %s\ncomponents:\n  data:\n    paths: [%s]\n    sanitize: { enabled: false }\n' \
    "$WORK/local-repo" "$DATA" >"$WORK/config.yml"
INIT="init --argon2-memory-kib 8192 --argon2-iterations 1 -q"
# The prepare step picks the repository (a new folder or a new prefix) and records it in
# WORK/repo, which the timed command reads.
PREP_LOCAL="rm -rf $WORK/local-repo $WORK/cache; echo $WORK/local-repo >$WORK/repo; OPC_CACHE_DIR=$WORK/cache $OPC --repo \$(cat $WORK/repo) $INIT"
PREP_S3="rm -rf $WORK/cache; echo s3:$OPC_TEST_S3_ENDPOINT/$OPC_TEST_S3_BUCKET/bench-\$(date +%s%N) >$WORK/repo; OPC_CACHE_DIR=$WORK/cache $OPC --repo \$(cat $WORK/repo) $INIT"
RUN="OPC_CACHE_DIR=$WORK/cache $OPC --repo \$(cat $WORK/repo) snapshot -q"

sync
hyperfine --runs "$RUNS" --export-json "$WORK/hyperfine.json" \
    --command-name local --prepare "$PREP_LOCAL" "$RUN" \
    --command-name s3 --prepare "$PREP_S3" "$RUN"

# Then a full restore of the last snapshot of each (the S3 one was written last; the warm-up
# run rebuilds the local repository's index, whose cache the S3 runs deleted).
S3_REPO=$(cat "$WORK/repo")
hyperfine --runs "$RUNS" --warmup 1 --export-json "$WORK/hyperfine-restore.json" \
    --command-name local --prepare "rm -rf $WORK/out" \
    "OPC_CACHE_DIR=$WORK/cache $OPC --repo $WORK/local-repo restore latest --target $WORK/out -q" \
    --command-name s3 --prepare "rm -rf $WORK/out" \
    "OPC_CACHE_DIR=$WORK/cache $OPC --repo $S3_REPO restore latest --target $WORK/out -q"

python3 - "$WORK" "$DATA" <<'PY'
import json, subprocess, sys
size = int(subprocess.check_output(["du", "-sb", sys.argv[2]]).split()[0])
for step, f in (("snapshot", "hyperfine.json"), ("restore", "hyperfine-restore.json")):
    r = {x["command"]: x for x in json.load(open(f"{sys.argv[1]}/{f}"))["results"]}
    for k in ("local", "s3"):
        m = r[k]["median"]
        print(f"{step:8} {k:6} median {m:7.2f} s  (min {r[k]['min']:.2f}, max {r[k]['max']:.2f})  {size / m / 1e6:6.1f} MB/s")
    print(f"{step:8} ratio s3/local: {r['s3']['median'] / r['local']['median']:.2f}")
PY
