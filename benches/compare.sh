#!/usr/bin/env bash
# opc-store beside restic, borg, bupstash, rustic and tar on the same One-Place-Chat data, in one
# run, on the same machine; prints medians and ratios (opc-store / restic, / best peer).
#
#   benches/compare.sh DATA WORK [TOOL ...]
#
#   DATA  a tree made by make-dataset.py (../shared/bench/make-dataset.py; it is copied, never
#         modified); WORK a scratch folder (about 4x DATA free).
#   TOOL  opc-store restic borg-lz4 borg-zstd3 bupstash rustic tar-gz tar-pigz (default: all of
#         them that are installed; opc-store and restic are required).
# Env: RUNS (3); PY, a Python with chromadb and numpy for --mutate (default python3);
#      MAKE (the make-dataset.py to mutate with); SEED (42); SCALE (1); SMOKE=1 runs one pass
#      on whatever DATA is, with a simple in-place mutation instead of make-dataset.py.
#      OPC_UNLOCK (keyfile): opc-store opens with a key file like bupstash; "password" uses
#      the password and Argon2id as restic, rustic and borg must.
#      RESTORE_DIR (WORK/restore): where restores land. On ext4, creating the 28,000 files of a
#      restore within a minute or so of deleting as many spends most of its time in the kernel's
#      inode allocator (ext4's recently_deleted() scan: 60-70% of a profiled restore, and 4-20 s
#      instead of 4), and a tool whose backups finish sooner restores sooner after the last
#      deletion. RESTORE_DIR=/dev/shm/... (tmpfs) measures the tools, not that.
# Steps per tool and run, each on a fresh repository and a fresh copy of DATA:
#   a first backup   c backup with nothing changed   (mutate: "the next day", untimed)
#   d backup after the mutation   e1 full restore   e2 chromadb-only restore   x export tar.gz
#   (opc-store only; compared with tar-pigz's backup)   and each restore verified against the tree.
# Timing: GNU time (wall, user, sys, peak RSS of the largest process); warm page cache (a `sync`
# before each step). Raw rows: WORK/raw.tsv; table: WORK/summary.md.
set -euo pipefail

DATA=$(realpath "$1"); WORK=$(realpath -m "$2"); shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RUNS=${RUNS:-3}; SEED=${SEED:-42}; SCALE=${SCALE:-1}; PY=${PY:-python3}
MAKE=${MAKE:-$ROOT/../shared/bench/make-dataset.py}
[ "${SMOKE:-0}" = 1 ] && RUNS=1

TOOLS=("$@")
if [ ${#TOOLS[@]} -eq 0 ]; then
    TOOLS=(opc-store restic)
    command -v borg >/dev/null && TOOLS+=(borg-lz4 borg-zstd3)
    command -v bupstash >/dev/null && TOOLS+=(bupstash)
    command -v rustic >/dev/null && TOOLS+=(rustic)
    command -v pigz >/dev/null && TOOLS+=(tar-pigz)
    TOOLS+=(tar-gz)
fi

(cd "$ROOT" && cargo build --release -q)
OPC=$ROOT/target/release/opc-store
LIVE=$WORK/live; REPO=$WORK/repo; RAW=$WORK/raw.tsv; RESTORE=${RESTORE_DIR:-$WORK/restore}
mkdir -p "$WORK/logs"
printf 'tool\trun\tstep\twall_s\tuser_s\tsys_s\tmaxrss_kib\trepo_bytes\tdata_bytes\tnote\n' > "$RAW"

export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$REPO RESTIC_CACHE_DIR=$WORK/cache/restic
export BORG_PASSPHRASE=bench BORG_REPO=$REPO BORG_BASE_DIR=$WORK/cache/borg
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export RUSTIC_PASSWORD=bench RUSTIC_REPOSITORY=$REPO RUSTIC_CACHE_DIR=$WORK/cache/rustic
export BUPSTASH_REPOSITORY=$REPO BUPSTASH_KEY=$WORK/cache/bupstash.key
export BUPSTASH_SEND_LOG=$WORK/cache/bupstash/send.log BUPSTASH_QUERY_CACHE=$WORK/cache/bupstash/query
export OPC_PASSWORD=bench OPC_CACHE_DIR=$WORK/cache/opc OPC_CONFIG=$WORK/opc.yml
# opc-store opens its repository with a key file, as bupstash does (OPC_UNLOCK=password: with
# the password and its Argon2id instead; restic, rustic and borg only have passwords).
OPC_KEY=$WORK/cache/opc.key
[ "${OPC_UNLOCK:-keyfile}" = keyfile ] && export OPC_PASSWORD_FILE=$OPC_KEY

# Like the peers, opc-store stores the data as it is: sanitization (on by default) would
# rewrite the dataset's fake secrets and make the restored tree differ.
cat > "$WORK/opc.yml" <<YML
repository: $REPO
sanitize: { enabled: false }
components:
  chromadb: { paths: [$LIVE/chromadb] }
  application: { paths: [$LIVE/application] }
  volumes: { paths: [$LIVE/volumes] }
YML

log() { echo "[$(date +%T)] $*" >&2; }
bytes() { du -sb "$1" | cut -f1; }

init_cmd() {
    case $1 in
        opc-store) echo "env -u OPC_PASSWORD_FILE $OPC init -q && env -u OPC_PASSWORD_FILE $OPC key add -q --new-key-file $OPC_KEY" ;;
        restic) echo "restic init --repository-version 2 -q" ;;
        rustic) echo "rustic init --no-progress" ;;
        bupstash) echo "mkdir -p $WORK/cache/bupstash && bupstash init -q && bupstash new-key -o $BUPSTASH_KEY" ;;
        borg-*) echo "borg init -e repokey" ;;
        tar-*) echo "mkdir -p $REPO" ;;
    esac
}
backup_cmd() { # TOOL NAME
    case $1 in
        opc-store) echo "$OPC snapshot full -q --tag $2" ;;
        restic) echo "restic backup --compression auto --host bench -q $LIVE" ;;
        rustic) echo "rustic backup --no-progress --host bench $LIVE" ;;
        bupstash) echo "bupstash put -q snap=$2 $LIVE" ;;
        borg-lz4) echo "cd $WORK && borg create --compression lz4 ::$2 live" ;;
        borg-zstd3) echo "cd $WORK && borg create --compression zstd,3 ::$2 live" ;;
        tar-gz) echo "tar -czf $REPO/$2.tar.gz -C $WORK live" ;;
        tar-pigz) echo "tar -I pigz -cf $REPO/$2.tar.gz -C $WORK live" ;;
    esac
}
restore_cmd() { # TOOL DEST [chromadb] -> the tree (or its chromadb/) lands at DEST/live
    local sub=${3:-}
    case $1 in
        opc-store) echo "$OPC restore latest -q --target $2/live ${sub:+--component $sub}" ;;
        restic) echo "restic restore latest -q --target $2 ${sub:+--include $LIVE/$sub}" ;;
        rustic) echo "rustic restore --no-progress latest${sub:+:$LIVE/$sub} $2${sub:+$LIVE/$sub}" ;;
        bupstash) echo "mkdir -p $2/live${sub:+/$sub} && bupstash restore -q ${sub:+--pick $sub} --into $2/live${sub:+/$sub} snap=day1" ;;
        borg-*) echo "mkdir -p $2 && cd $2 && borg extract ::day1 ${sub:+live/$sub}" ;;
        tar-gz) echo "mkdir -p $2 && tar -xzf $REPO/day1.tar.gz -C $2 ${sub:+live/$sub}" ;;
        tar-pigz) echo "mkdir -p $2 && tar -I pigz -xf $REPO/day1.tar.gz -C $2 ${sub:+live/$sub}" ;;
    esac
}
restored() { case $1 in restic | rustic) echo "$2$LIVE" ;; *) echo "$2/live" ;; esac; }

# timed TOOL RUN STEP NOTE CMD
timed() {
    local tool=$1 run=$2 step=$3 note=$4 cmd=$5 rc=0
    sync
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.out" bash -c "$cmd" \
        >"$WORK/logs/$tool-$run-$step.log" 2>&1 || rc=$?
    [ $rc -eq 0 ] || { note="${note:+$note;}rc=$rc"; log "WARN $tool $step rc=$rc"; }
    local rb=0
    [ -e "$REPO" ] && rb=$(bytes "$REPO")
    read -r w u s m < <(tail -n1 "$WORK/time.out")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$run" "$step" "$w" "$u" "$s" "$m" \
        "$rb" "$(bytes "$LIVE")" "$note" >>"$RAW"
    log "$tool run $run $step: ${w}s rss=${m}KiB repo=$rb $note"
}

# Content, type, mode, size, mtime (seconds) and link target of every entry must match
# (SQLite databases: page for page, see tree-equal.py).
verify() { python3 "$HERE/tree-equal.py" "$1" "$2"; }

mutate() {
    if [ "${SMOKE:-0}" = 1 ]; then
        find "$LIVE" -type f -size +100k | head -n 5 | while read -r f; do
            printf 'next day' | dd of="$f" bs=1 seek=4096 conv=notrunc status=none
        done
        mkdir -p "$LIVE/application/day1" && head -c 300000 /dev/urandom >"$LIVE/application/day1/new.bin"
    else
        "$PY" "$MAKE" --target "$LIVE" --mutate --seed "$SEED" --scale "$SCALE" --day 1 \
            >"$WORK/logs/mutate.log" 2>&1
    fi
}

{
    echo "opc-store $("$OPC" --version | awk '{print $2}'); $(restic version | head -1)"
    command -v borg >/dev/null && borg --version
    command -v bupstash >/dev/null && bupstash version
    command -v rustic >/dev/null && rustic --version
    tar --version | head -1
    command -v pigz >/dev/null && pigz --version 2>&1
    echo "$(nproc) cores, $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) MiB, $(uname -r)"
} >"$WORK/versions.txt" 2>&1 || true

# Run k of every tool, then run k+1 of every tool: on a machine whose speed drifts (a VM
# whose host reclaims memory makes fresh pages slow to fault in for minutes at a time), a
# slow period then costs one run of several tools, not every run of one tool, and the
# medians stay comparable.
for run in $(seq 1 "$RUNS"); do
    for tool in "${TOOLS[@]}"; do
        log "=== $tool run $run"
        rm -rf "$LIVE" "$REPO" "$WORK/cache" "$RESTORE" "$WORK/export"
        mkdir -p "$WORK/cache"
        cp -a "$DATA" "$LIVE"
        bash -c "$(init_cmd "$tool")" >"$WORK/logs/$tool-$run-init.log" 2>&1
        timed "$tool" "$run" a_initial "" "$(backup_cmd "$tool" day0)"
        timed "$tool" "$run" c_nochange "" "$(backup_cmd "$tool" day0b)"
        mutate
        timed "$tool" "$run" d_mutated "" "$(backup_cmd "$tool" day1)"
        timed "$tool" "$run" e1_restore_full "" "$(restore_cmd "$tool" "$RESTORE")"
        v=$(verify "$(restored "$tool" "$RESTORE")" "$LIVE")
        printf '%s\t%s\tf_verify_full\t\t\t\t\t\t\t%s\n' "$tool" "$run" "$v" >>"$RAW"
        rm -rf "$RESTORE"
        timed "$tool" "$run" e2_restore_chromadb "chromadb_bytes=$(bytes "$LIVE/chromadb")" \
            "$(restore_cmd "$tool" "$RESTORE" chromadb)"
        v=$(verify "$(restored "$tool" "$RESTORE")/chromadb" "$LIVE/chromadb")
        printf '%s\t%s\tf_verify_chromadb\t\t\t\t\t\t\t%s\n' "$tool" "$run" "$v" >>"$RAW"
        rm -rf "$RESTORE"
        if [ "$tool" = opc-store ]; then
            mkdir -p "$WORK/export"
            timed "$tool" "$run" x_export "" "$OPC export latest -q --output-dir $WORK/export"
            rm -rf "$WORK/export"
        fi
    done
done
rm -rf "$LIVE" "$REPO" "$RESTORE"
python3 "$HERE/compare-summary.py" "$RAW" | tee "$WORK/summary.md"
