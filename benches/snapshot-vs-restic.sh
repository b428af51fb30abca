#!/usr/bin/env bash
# First snapshot, unchanged re-snapshot, snapshot after a simulated day,
# and full restore: opc-store beside restic on the same data, same order.
#
#   benches/snapshot-vs-restic.sh          # SCALE=2 RUNS=1
# Installs restic with apt-get when missing. Prints a markdown table of
# wall time, peak RSS and repository growth, with opc-store/restic ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE="${SCALE:-2}"
WORK="${WORK:-$(mktemp -d /tmp/opc-snap-bench.XXXXXX)}"
if ! command -v restic >/dev/null; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq restic
fi
cargo build --release -q
OPC="$PWD/target/release/opc-store"
export OPC_PASSWORD=bench RESTIC_PASSWORD=bench OPC_CACHE_DIR="$WORK/cache"

# The demo's generator makes the data; its own repository is not used.
"$OPC" demo --dir "$WORK/demo" --scale "$SCALE" -q >/dev/null
DATA="$WORK/demo/data"
cat > "$WORK/cfg.yml" <<YML
repository: $WORK/opc
components:
  all: { paths: [$DATA] }
YML
"$OPC" --config "$WORK/cfg.yml" init -q
restic init -q -r "$WORK/restic"

t() { /usr/bin/time -o "$WORK/time.out" -f '%e %M' "$@" >/dev/null 2>&1; cat "$WORK/time.out"; }
size() { du -sb "$1" | cut -f1; }
row() { # label opc-"secs kib" restic-"secs kib"
    read -r ot om <<<"$2"; read -r rt rm <<<"$3"
    printf '| %s | %s (%.0f MiB) | %s (%.0f MiB) | %.2f |\n' "$1" "$ot" "$(echo "$om/1024" | bc -l)" \
        "$rt" "$(echo "$rm/1024" | bc -l)" "$(echo "$ot / $rt" | bc -l)"
}
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
echo "data: $(du -sh "$DATA" | cut -f1), $(find "$DATA" -type f | wc -l) files"
printf '| step | opc-store s (peak RSS) | restic %s s (peak RSS) | time ratio |\n| --- | --- | --- | --- |\n' \
    "$(restic version | awk '{print $2}')"
o=$(t "$OPC" --config "$WORK/cfg.yml" snapshot all -q); r=$(t restic -q -r "$WORK/restic" backup "$DATA")
row "first snapshot" "$o" "$r"
o1=$(size "$WORK/opc"); r1=$(size "$WORK/restic")
o=$(t "$OPC" --config "$WORK/cfg.yml" snapshot all -q); r=$(t restic -q -r "$WORK/restic" backup "$DATA")
row "unchanged re-snapshot" "$o" "$r"
# A simulated day: in-place page rewrites in the big files, new chat files.
python3 - "$DATA" <<'PY'
import os, random, sys
root = sys.argv[1]; rng = random.Random(1)
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
for f in [f for f in files if os.path.getsize(f) >= 1 << 20][:6]:
    size = os.path.getsize(f)
    with open(f, "r+b") as fh:
        for _ in range(max(1, size // (4096 * 20))):
            fh.seek(rng.randrange(size // 4096) * 4096); fh.write(os.urandom(4096))
os.makedirs(os.path.join(root, "application", "day-1"), exist_ok=True)
for i in range(200):
    open(os.path.join(root, "application", "day-1", f"c{i}.json"), "wb").write(os.urandom(rng.randrange(2000, 50000)))
PY
o=$(t "$OPC" --config "$WORK/cfg.yml" snapshot all -q); r=$(t restic -q -r "$WORK/restic" backup "$DATA")
row "snapshot after a day" "$o" "$r"
o2=$(size "$WORK/opc"); r2=$(size "$WORK/restic")
o=$(t "$OPC" --config "$WORK/cfg.yml" restore latest --target "$WORK/r-opc" -q)
r=$(t restic -q -r "$WORK/restic" restore latest --target "$WORK/r-restic")
row "full restore (opc-store reads every file back)" "$o" "$r"
printf '| repository after first, MB | %.0f | %.0f | %.2f |\n' "$(echo "$o1/1000000" | bc -l)" "$(echo "$r1/1000000" | bc -l)" "$(echo "$o1/$r1" | bc -l)"
printf '| growth for the day, MB | %.1f | %.1f | %.2f |\n' "$(echo "($o2-$o1)/1000000" | bc -l)" "$(echo "($r2-$r1)/1000000" | bc -l)" "$(echo "($o2-$o1)/($r2-$r1)" | bc -l)"
echo "(2-core machine; both tools run one after the other on the same data)"
[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
