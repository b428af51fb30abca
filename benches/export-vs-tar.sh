#!/usr/bin/env bash
# Export throughput: `opc-store export` beside `tar -czf` (what the legacy
# backup.sh ran) and `tar -I pigz -cf` (parallel gzip), on the same data.
#
#   benches/export-vs-tar.sh                  # SCALE=1 (about 60 MB), RUNS=3
#   SCALE=3 RUNS=5 benches/export-vs-tar.sh
#
# The data set is the demo's (`opc-store demo --dir DIR --scale N`). opc-store
# exports the newest snapshot of it from its encrypted repository (reading,
# decrypting and decompressing every chunk, SHA-256 of every file for the
# manifest, gzip level 6); the two tar runs read the same source folders
# straight from the filesystem (gzip level 6 as well). All runs write to the
# same folder with a warm page cache. Reported: median wall time of RUNS runs
# after one warm-up run, content MB/s, time and size relative to opc-store.
#
# Environment: SCALE, RUNS, WORK (work folder, kept if given), KEEP=1 (keep a
# temporary work folder). Uses hyperfine when installed, else `date +%s.%N`.
# Installs pigz with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE="${SCALE:-1}"
RUNS="${RUNS:-3}"
if [ -n "${WORK:-}" ]; then
    mkdir -p "$WORK"
    KEEP=1
else
    WORK="$(mktemp -d /tmp/opc-export-bench.XXXXXX)"
    KEEP="${KEEP:-0}"
fi
[ "$KEEP" = 1 ] || trap 'rm -rf "$WORK"' EXIT

need() { command -v "$1" >/dev/null; }
if ! need pigz; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq pigz >/dev/null
fi
for t in tar gzip pigz jq; do
    need "$t" || { echo "export-vs-tar: $t is required" >&2; exit 1; }
done

cargo build --release -q
OPC="$PWD/target/release/opc-store"
unset OPC_PASSWORD_FILE OPC_REPO OPC_CONFIG OPC_CACHE_DIR

echo "work: $WORK (scale $SCALE, $RUNS runs)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# 1. Data: the demo's generated data set and, when it can be opened, its
#    repository (whose newest snapshot is that data, after the simulated day).
DEMO="$WORK/demo"
"$OPC" demo --dir "$DEMO" --scale "$SCALE" >"$WORK/demo.log" 2>&1 ||
    { cat "$WORK/demo.log" >&2; exit 1; }
DATA="$DEMO/data"
[ -d "$DATA" ] || { echo "export-vs-tar: the demo left no $DATA" >&2; exit 1; }

opc() { "$OPC" --config "$CFG" --cache-dir "$CACHE" "$@"; }

CFG="$DEMO/backup-config.yml"
CACHE="$DEMO/cache"
export OPC_PASSWORD="opc-store demo password"
if [ -f "$CFG" ] && [ -d "$DEMO/repo" ] && opc snapshots -q --json >/dev/null 2>&1; then
    echo "repository: the demo's ($DEMO/repo)"
else
    # Fallback: our own repository, one component per top folder of the data.
    export OPC_PASSWORD=bench
    CFG="$WORK/backup-config.yml"
    CACHE="$WORK/cache"
    {
        echo "repository: $WORK/repo"
        echo "environment: bench"
        echo "components:"
        for d in "$DATA"/*/; do
            d="${d%/}"
            echo "  $(basename "$d"): { paths: [$d] }"
        done
    } >"$CFG"
    opc init -q
    opc snapshot full -q
    echo "repository: $WORK/repo (new; the demo's could not be opened)"
fi

# 2. One export outside the timing: its report gives the content size and
#    its manifest the source paths, which the tar runs then archive.
OUT="$WORK/out"
mkdir -p "$OUT"
report=$(opc export latest -o "$OUT/probe.tar.gz" --json)
bytes=$(jq -r '.bytes' <<<"$report")
files=$(jq -r '.files' <<<"$report")
name=$(jq -r '.backup_name' <<<"$report")
mapfile -t paths < <(tar -xzf "$OUT/probe.tar.gz" "$name/manifest.json" -O |
    jq -r '.components[].paths[].path')
rel=()
for p in "${paths[@]}"; do rel+=("${p#/}"); done
opc verify "$OUT/probe.tar.gz" -q
rm -f "$OUT/probe.tar.gz"
printf 'data: %s files, %.1f MB of content, from %s\n' "$files" "$(jq -n "$bytes / 1e6")" "${paths[*]}"

# Same gzip level everywhere: export's default is 6, as are gzip's and pigz's.
# q (printf %q) keeps the commands intact whatever the paths hold.
q() { printf '%q ' "$@"; }
names=("opc-store export" "tar -czf" "tar -I pigz -cf")
files_out=("$OUT/opc.tar.gz" "$OUT/tar.tar.gz" "$OUT/pigz.tar.gz")
cmds=(
    "OPC_PASSWORD=$(q "$OPC_PASSWORD") $(q "$OPC" --config "$CFG" --cache-dir "$CACHE" export latest -q -o "${files_out[0]}")"
    "$(q tar -czf "${files_out[1]}" -C / "${rel[@]}")"
    "$(q tar -I pigz -cf "${files_out[2]}" -C / "${rel[@]}")"
)

# 3. Timing: median of RUNS runs after one warm-up run.
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -a secs
if need hyperfine; then
    tool="hyperfine $(hyperfine --version | awk '{print $2}')"
    args=()
    for i in 0 1 2; do
        args+=(--command-name "${names[$i]}" "rm -f $(q "${files_out[$i]}"); ${cmds[$i]}")
    done
    hyperfine --warmup 1 --runs "$RUNS" --export-json "$WORK/hyperfine.json" --style basic \
        "${args[@]}" >"$WORK/hyperfine.log"
    for i in 0 1 2; do
        secs[$i]=$(jq -r ".results[$i].median" "$WORK/hyperfine.json")
    done
else
    tool="date +%s.%N"
    declare -a times
    for run in $(seq 0 "$RUNS"); do # run 0 is the warm-up
        for i in 0 1 2; do          # interleaved, so drift hits all alike
            rm -f "${files_out[$i]}"
            t0=$(date +%s.%N)
            bash -c "${cmds[$i]}"
            t1=$(date +%s.%N)
            [ "$run" -eq 0 ] || times[$i]+="$(jq -n "$t1 - $t0") "
        done
    done
    for i in 0 1 2; do
        secs[$i]=$(tr ' ' '\n' <<<"${times[$i]}" | grep . | median)
    done
fi

# The archives must hold the same files.
for i in 0 1 2; do
    n=$(tar -tvzf "${files_out[$i]}" | grep -c '^-')
    [ "$i" -eq 0 ] && n=$((n - 1)) # manifest.json
    [ "$n" -eq "$files" ] || echo "warning: ${names[$i]} archive holds $n files, the snapshot $files" >&2
done

# 4. Table.
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
echo
echo "Machine: $(nproc) cores${cpu:+ ($cpu)}, $(free -g | awk '/Mem:/ {print $2}') GiB RAM;" \
    "$(tar --version | head -1), gzip $(gzip --version | head -1 | awk '{print $2}')," \
    "pigz $(pigz --version 2>&1 | awk '{print $2}'); timed with $tool;" \
    "load average $load_before before, $load_after after (other work on the machine skews the figures)."
echo "Data: demo scale $SCALE, $files files, $(printf '%.1f' "$(jq -n "$bytes / 1e6")") MB of content; median of $RUNS runs, warm page cache, gzip level 6."
echo
echo "| command | wall time, s | content MB/s | time vs opc-store | archive, MB | size vs opc-store |"
echo "| --- | --- | --- | --- | --- | --- |"
opc_s=${secs[0]}
opc_size=$(stat -c %s "${files_out[0]}")
for i in 0 1 2; do
    s=${secs[$i]}
    size=$(stat -c %s "${files_out[$i]}")
    printf '| `%s` | %.2f | %.0f | %.2fx | %.1f | %.3fx |\n' "${names[$i]}" "$s" \
        "$(jq -n "$bytes / 1e6 / $s")" "$(jq -n "$s / $opc_s")" \
        "$(jq -n "$size / 1e6")" "$(jq -n "$size / $opc_size")"
done
