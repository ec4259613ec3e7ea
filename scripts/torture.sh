#!/usr/bin/env bash
# Crash consistency under SIGKILL at random moments (tests/torture): offline and online backup,
# copy, prune, restore and clone apply are each killed N times at moments drawn from a seed, and
# after every kill the location, the restore target or the cluster is checked, the command is
# run again, and the leftovers are pruned. Prints the seed first and one line per command, e.g.
# `backup 20/20 consistent`; exits non-zero if any run is inconsistent.
#
#   scripts/torture.sh [--runs N] [--seed S] [--jobs J] [COMMAND...]
#
# N runs per command (default 20); S replays an earlier invocation (its moments come from the
# seed, the command's name and the run's number); J commands are tortured side by side
# (default 2); COMMANDs (backup, online-backup, copy, prune, restore, clone-apply, and on
# repository format 2 backup-f2 (an incremental backup), copy-f2, prune-f2 (its sweep of shared
# objects)) pick some.
#
# Started alone, it sets up the venv (LIFEBOAT_VENV, default <repo>/.venv) and starts two
# SeaweedFS servers on 127.0.0.1 (two "regions"), which it stops by pid on exit. Run from
# scripts/test.sh's environment (AWS_ENDPOINT_URL and LIFEBOAT_TEST_S3_EU_* exported), it uses
# the servers that are already there. LIFEBOAT_TORTURE_BIN=PATH tortures another lifeboat
# binary (an older build, say) while the checks use this checkout's.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
runs=20
passed=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs)
            [[ $# -ge 2 ]] || { echo "torture.sh: --runs needs a value" >&2; exit 2; }
            runs=$2
            shift 2
            ;;
        --seed | --jobs)
            [[ $# -ge 2 ]] || { echo "torture.sh: $1 needs a value" >&2; exit 2; }
            passed+=("$1" "$2")
            shift 2
            ;;
        -h | --help)
            sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            passed+=("$1")
            shift
            ;;
    esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "torture.sh: --runs must be a positive number" >&2; exit 2; }

venv=${LIFEBOAT_VENV:-$repo/.venv}
export LIFEBOAT_VENV=$venv
"$repo/scripts/setup-venv.sh" "$venv"

if [[ -n "${AWS_ENDPOINT_URL:-}" && -n "${LIFEBOAT_TEST_S3_EU_ENDPOINT:-}" ]]; then
    echo "torture.sh: using the SeaweedFS servers at $AWS_ENDPOINT_URL and $LIFEBOAT_TEST_S3_EU_ENDPOINT"
else
    state=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-torture-XXXXXX")
    cleanup() {
        set +e
        "$repo/scripts/seaweedfs.sh" stop "$state/us"
        "$repo/scripts/seaweedfs.sh" stop "$state/eu"
        rm -rf "$state"
    }
    trap cleanup EXIT
    mkdir -p "$state/us" "$state/eu"
    "$repo/scripts/seaweedfs.sh" start "$state/us" >/dev/null
    "$repo/scripts/seaweedfs.sh" start "$state/eu" >/dev/null
    # As in scripts/test.sh: the second region's endpoint and credentials go under their own
    # names, for a config file; the first region's are the standard AWS_* variables.
    eu_var() { (set +u; . "$state/eu/env"; eval "echo \"\$$1\""); }
    export LIFEBOAT_TEST_S3_EU_ENDPOINT LIFEBOAT_TEST_S3_EU_KEY LIFEBOAT_TEST_S3_EU_SECRET
    LIFEBOAT_TEST_S3_EU_ENDPOINT=$(eu_var AWS_ENDPOINT_URL)
    LIFEBOAT_TEST_S3_EU_KEY=$(eu_var AWS_ACCESS_KEY_ID)
    LIFEBOAT_TEST_S3_EU_SECRET=$(eu_var AWS_SECRET_ACCESS_KEY)
    # shellcheck disable=SC1091
    source "$state/us/env"
fi
export LIFEBOAT_TEST_PYTHON=$venv/bin/python
export LIFEBOAT_TEST_S3_BUCKET=${LIFEBOAT_TEST_S3_BUCKET:-lifeboat-test}

cd "$repo"
# Online backups and clone apply run against the Dremio simulator (tests/dremio-sim).
cargo build -p dremio-sim --bins
export LIFEBOAT_TEST_SIM_DIR="${CARGO_TARGET_DIR:-$repo/target}/debug"
cargo test --test torture -- --runs "$runs" ${passed[@]+"${passed[@]}"}
