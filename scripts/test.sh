#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: sets up the Python venv (rocksdict for real RocksDB
# fixtures, SeaweedFS for a real S3 server), starts SeaweedFS on 127.0.0.1, runs `cargo test`, and
# stops the server it started (by pid) whatever happens. Extra arguments go to `cargo test`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${LIFEBOAT_VENV:-$repo/.venv}
export LIFEBOAT_VENV=$venv

"$repo/scripts/setup-venv.sh" "$venv"

state=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-test-XXXXXX")
cleanup() {
    "$repo/scripts/seaweedfs.sh" stop "$state" || true
    rm -rf "$state"
}
trap cleanup EXIT
"$repo/scripts/seaweedfs.sh" start "$state"
# shellcheck disable=SC1091
source "$state/env"
export LIFEBOAT_TEST_PYTHON=$venv/bin/python
export LIFEBOAT_TEST_S3_BUCKET=lifeboat-test

cd "$repo"
cargo test "$@"
