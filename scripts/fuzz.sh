#!/usr/bin/env bash
# Fuzz the readers of untrusted input (tests/fuzz) for longer than the test suite does, in a
# release build, and print how many inputs each target tried.
#
#   scripts/fuzz.sh [--seconds N] [--seed S] [--cases N] [-- ARGS...]
#
# --seconds N   how long EACH target runs (default 60). The targets run two at a time (one per
#               core), so the whole run takes about N x targets / 2 seconds, plus the build.
# --seed S      replay a run (every target line prints its seed; a failure prints the one to use).
# --cases N     stop each target after N inputs, whatever the time.
# ARGS          go to the test binary: a filter (`tar_`), or `--include-ignored` to add the targets
#               kept off until the hardened unpack.rs is merged (they fail on today's code).
#
# The same targets run in `scripts/test.sh` (cargo test) for LIFEBOAT_FUZZ_SECONDS each (5 by
# default). Exit status: that of the test binary.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
seconds=60
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --seed) export LIFEBOAT_FUZZ_SEED=$2; shift 2 ;;
        --cases) export LIFEBOAT_FUZZ_CASES=$2; shift 2 ;;
        --) shift; args+=("$@"); break ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "fuzz.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
export LIFEBOAT_FUZZ_SECONDS=$seconds

log=$(mktemp "${TMPDIR:-/tmp}/lifeboat-fuzz-XXXXXX")
trap 'rm -f "$log"' EXIT
cd "$repo"
status=0
cargo test --release --test fuzz -- "${args[@]}" 2>&1 | tee "$log" || status=$?

echo
echo "fuzz summary (${seconds} s per target):"
awk '/^fuzz [a-z_]+: [0-9]+ executions in/ {
        name = $2; sub(":", "", name); n = $3; total += n;
        printf "  %-28s %10d executions in %s s\n", name, n, $6
     }
     END { printf "  %-28s %10d executions\n", "total", total }' "$log"
exit "$status"
