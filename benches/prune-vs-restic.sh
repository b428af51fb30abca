#!/usr/bin/env bash
# Prune time and peak memory on a repository of many snapshots, opc-store
# beside restic on the same data and the same history.
#
#   benches/prune-vs-restic.sh            # SCALE=1 DAYS=30 KEEP=7
#   SCALE=3 DAYS=60 benches/prune-vs-restic.sh
#
# Each simulated day rewrites some 4 KiB pages of the databases in place
# and adds a few files, then both tools snapshot the tree. Then both forget
# all but the last KEEP snapshots and prune; wall time and peak RSS of the
# prune are reported, with the repository size before and after.
# Needs restic (apt-get install -y restic); installs it when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE="${SCALE:-1}"
DAYS="${DAYS:-30}"
KEEP="${KEEP:-7}"
WORK="${WORK:-$(mktemp -d /tmp/opc-prune-bench.XXXXXX)}"

if ! command -v restic >/dev/null; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq restic
fi
cargo build --release -q
OPC="$PWD/target/release/opc-store"

# The demo repository uses the demo password (src/demo/mod.rs).
export OPC_PASSWORD="opc-store demo password" RESTIC_PASSWORD=bench OPC_CACHE_DIR="$WORK/demo/cache"
echo "work: $WORK (scale $SCALE, $DAYS days, keep $KEEP)"
"$OPC" demo --dir "$WORK/demo" --scale "$SCALE" -q >/dev/null
DATA="$WORK/demo/data"
CFG="$WORK/demo/backup-config.yml"
REPO="$WORK/demo/repo"
RREPO="$WORK/restic"
restic init -q -r "$RREPO"

mutate() { # day
    python3 - "$DATA" "$1" <<'PY'
import os, random, sys
root, day = sys.argv[1], int(sys.argv[2])
rng = random.Random(day)
files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
files.sort()
big = [f for f in files if os.path.getsize(f) >= 1 << 20]
for f in rng.sample(big, min(3, len(big))):          # in-place page rewrites
    size = os.path.getsize(f)
    with open(f, "r+b") as fh:
        for _ in range(max(1, size // (4096 * 50))):     # ~2% of pages
            fh.seek(rng.randrange(size // 4096) * 4096)
            fh.write(os.urandom(4096))
new = os.path.join(root, "application", f"day-{day:04d}")
os.makedirs(new, exist_ok=True)
for i in range(20):                                       # new chat files
    with open(os.path.join(new, f"conv-{i}.json"), "wb") as fh:
        fh.write(os.urandom(rng.randrange(2000, 60000)))
PY
}

for day in $(seq 1 "$DAYS"); do
    mutate "$day"
    when=$(date -d "-$((DAYS - day)) days" -Iseconds)
    "$OPC" --config "$CFG" snapshot full -q --time "$when" --retention-days 1
    restic -q -r "$RREPO" backup "$DATA" --time "$(date -d "$when" '+%Y-%m-%d %H:%M:%S')" >/dev/null
done

size() { du -sb "$1" | cut -f1; }
opc_before=$(size "$REPO"); restic_before=$(size "$RREPO")
"$OPC" --config "$CFG" forget -q --keep-last "$KEEP" --now "$(date -Iseconds -d '+30 days')"
restic -q -r "$RREPO" forget --keep-last "$KEEP" >/dev/null

opc=$( { /usr/bin/time -f '%e %M' "$OPC" --config "$CFG" prune -q; } 2>&1 | tail -1)
res=$( { /usr/bin/time -f '%e %M' restic -q -r "$RREPO" prune; } 2>&1 | tail -1)
opc_after=$(size "$REPO"); restic_after=$(size "$RREPO")

read -r ot om <<<"$opc"
read -r rt rm <<<"$res"
printf '\n| prune after %s daily snapshots, keep %s | opc-store | restic %s | ratio |\n' "$DAYS" "$KEEP" "$(restic version | awk '{print $2}')"
printf '| --- | --- | --- | --- |\n'
printf '| wall time, s | %s | %s | %.2f |\n' "$ot" "$rt" "$(echo "$ot / $rt" | bc -l)"
printf '| peak RSS, MiB | %.0f | %.0f | %.2f |\n' "$(echo "$om/1024" | bc -l)" "$(echo "$rm/1024" | bc -l)" "$(echo "$om / $rm" | bc -l)"
printf '| repository before, MB | %.0f | %.0f | %.2f |\n' "$(echo "$opc_before/1000000" | bc -l)" "$(echo "$restic_before/1000000" | bc -l)" "$(echo "$opc_before / $restic_before" | bc -l)"
printf '| repository after, MB | %.0f | %.0f | %.2f |\n' "$(echo "$opc_after/1000000" | bc -l)" "$(echo "$restic_after/1000000" | bc -l)" "$(echo "$opc_after / $restic_after" | bc -l)"
echo "(2-core machine; compare only within one run)"
[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
