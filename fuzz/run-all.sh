#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for N seconds (default 10).
# Usage: fuzz/run-all.sh [SECONDS]
# Exits non-zero if any target crashes, leaks past the RSS limit or hangs;
# the failing input is left in fuzz/artifacts/TARGET/.
set -euo pipefail

secs="${1:-10}"
cd "$(dirname "$0")/.."   # cargo fuzz looks for ./fuzz

# cargo fuzz passes -Z flags (sanitizers, coverage) that need nightly. A
# machine with only stable can still build them when told it is a nightly.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

"${fuzz[@]}" build -O

passed=0
failed=()
for t in $("${fuzz[@]}" list); do
    corpus=(fuzz/corpus/"$t")   # libFuzzer adds new inputs to the first dir
    mkdir -p "${corpus[0]}"
    [ -d fuzz/seeds/"$t" ] && corpus+=(fuzz/seeds/"$t")
    echo "== fuzz $t for ${secs}s"
    # -timeout: one input slower than 10 s is a denial-of-service bug here.
    if "${fuzz[@]}" run -O "$t" "${corpus[@]}" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1; then
        passed=$((passed + 1))
    else
        failed+=("$t")
    fi
done

echo "fuzz: $passed passed, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed targets: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
