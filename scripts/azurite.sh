#!/usr/bin/env bash
# Start or stop a throwaway Azurite (Azure Blob emulator) on loopback for lifeboat's tests.
#
#   scripts/azurite.sh start STATE_DIR   install Azurite if needed, start `azurite-blob` with its
#                                        data in STATE_DIR/data on a free port, wait until it
#                                        answers, create container `lifeboat-test`, write
#                                        STATE_DIR/env and print it on stdout
#   scripts/azurite.sh stop STATE_DIR    stop the server whose pid is in STATE_DIR/pid
#                                        (SIGTERM, up to 10 s, then SIGKILL)
#   scripts/azurite.sh status STATE_DIR  exit 0 if that server is running
#   scripts/azurite.sh install           only install Azurite (idempotent)
#
# STATE_DIR/env holds `export AZURITE_BLOB_STORAGE_URL=...`, AZURE_STORAGE_USE_EMULATOR,
# AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY and LIFEBOAT_TEST_AZURE_CONTAINER; source
# it, then object_store's MicrosoftAzureBuilder::from_env() with `az://lifeboat-test/<prefix>`
# talks to this server (emulator mode: the endpoint comes from AZURITE_BLOB_STORAGE_URL, which
# object_store reads from the process environment when the store is built).
# Every start picks a free port, so several instances with different STATE_DIRs can run at once.
#
# Environment: LIFEBOAT_NPM_PREFIX (default: <repo>/.npm) is where `npm install --prefix` puts
# azurite@3.35.0 (newer releases need a newer Node than v20); AZURITE_BLOB overrides the
# `azurite-blob` executable (then nothing is installed). python3 (standard library only) picks the
# port and makes the Shared Key signed requests. Telemetry is always off. The server listens on
# 127.0.0.1 only. The account is Azurite's built-in `devstoreaccount1` with its published key.
# The start/stop/status machinery shared with scripts/seaweedfs.sh is in scripts/lib/server.sh.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NPM_PREFIX="${LIFEBOAT_NPM_PREFIX:-$REPO/.npm}"
AZURITE_VERSION="3.35.0"
CONTAINER="lifeboat-test"
ACCOUNT="devstoreaccount1"
# Azurite's well-known development key (public; it only ever protects a local emulator).
ACCOUNT_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT="${AZURITE_START_TIMEOUT:-30}"  # seconds to wait for the blob endpoint
STOP_TIMEOUT="${AZURITE_STOP_TIMEOUT:-10}"    # seconds between SIGTERM and SIGKILL

SERVER_NAME="azurite.sh"
SERVER_PROG="azurite-blob"
SERVER_LOG="azurite.log"
SERVER_ENDPOINT="blob endpoint"
SERVER_PROBE_PATH="/$ACCOUNT?comp=list"  # unauthenticated: 403, which is an answer
SERVER_RETRY_WITH="another port"
# shellcheck source=SCRIPTDIR/lib/server.sh
source "$REPO/scripts/lib/server.sh"

usage() {
    echo "usage: $0 start|stop|status STATE_DIR" >&2
    echo "       $0 install" >&2
    exit 2
}

find_python() {
    server_find_python "python3 is needed (standard library only)"
}

installed_version() {
    local pkg="$NPM_PREFIX/node_modules/azurite/package.json"
    [[ -f "$pkg" && -x "$NPM_PREFIX/node_modules/.bin/azurite-blob" ]] || return 1
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' "$pkg" 2>/dev/null
}

# Install azurite@AZURITE_VERSION into NPM_PREFIX unless that exact version is already there.
# Serialised with flock so that parallel starts do not run two npm installs into one prefix.
install_azurite() {
    if [[ -n "${AZURITE_BLOB:-}" ]]; then
        return 0
    fi
    if [[ "$(installed_version || true)" == "$AZURITE_VERSION" ]]; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || die "npm is needed to install azurite@$AZURITE_VERSION"
    mkdir -p "$NPM_PREFIX"
    (
        if command -v flock >/dev/null 2>&1; then
            flock -w 600 9 || die "timed out waiting for another install into $NPM_PREFIX"
        fi
        if [[ "$(installed_version || true)" == "$AZURITE_VERSION" ]]; then
            exit 0
        fi
        echo "azurite.sh: installing azurite@$AZURITE_VERSION into $NPM_PREFIX" >&2
        # npm's chatter goes to stderr: stdout of `start` is the env file only.
        if ! npm install --prefix "$NPM_PREFIX" "azurite@$AZURITE_VERSION" \
                --no-audit --no-fund >&2; then
            die "npm install azurite@$AZURITE_VERSION failed"
        fi
        [[ "$(installed_version || true)" == "$AZURITE_VERSION" ]] \
            || die "azurite@$AZURITE_VERSION not found in $NPM_PREFIX after npm install"
    ) 9>"$NPM_PREFIX/.azurite-install.lock"
}

find_azurite() {
    if [[ -n "${AZURITE_BLOB:-}" ]]; then
        [[ -x "$AZURITE_BLOB" ]] || die "AZURITE_BLOB=$AZURITE_BLOB is not executable"
        echo "$AZURITE_BLOB"
    else
        echo "$NPM_PREFIX/node_modules/.bin/azurite-blob"
    fi
}

# Hook for running_pid: is CMD an azurite-blob started for STATE?
# The `-l DIR` spelling is what server_launch passes: keep the two in step.
server_cmd_matches() {
    [[ "$2" == *"azurite-blob"* && "$2" == *" -l $1/data "* ]]
}

# Hook for server_launch_with_retries: start azurite-blob on a fresh port. AZURITE_BIN is set by
# cmd_start.
server_launch() {
    local state="$1" py="$2" port
    port="$(server_pick_ports "$py" 1)"
    "$AZURITE_BIN" \
        --blobHost 127.0.0.1 --blobPort "$port" \
        -l "$state/data" \
        --skipApiVersionCheck --disableTelemetry \
        </dev/null >>"$state/$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    SERVER_URL="http://127.0.0.1:$port"
    echo "$port" >"$state/port"
}

# Create the container (201, or 409 if it exists) and check that a blob can be written and
# deleted, with Shared Key signed requests made with the standard library only.
make_container() {
    local py="$1"
    "$py" - "$CONTAINER" <<'EOF'
import base64, hashlib, hmac, os, sys, time, urllib.error, urllib.parse, urllib.request
from email.utils import formatdate

endpoint = os.environ["AZURITE_BLOB_STORAGE_URL"].rstrip("/")
account = os.environ["AZURE_STORAGE_ACCOUNT_NAME"]
key = base64.b64decode(os.environ["AZURE_STORAGE_ACCOUNT_KEY"])
container = sys.argv[1]


def request(method, path, query=None, body=b"", headers=None):
    """Shared Key signed request; path is below the account (emulator URLs are path-style)."""
    query = query or {}
    headers = dict(headers or {})
    headers["x-ms-date"] = formatdate(usegmt=True)
    headers["x-ms-version"] = "2021-08-06"
    # urllib adds a Content-Type to every request with a body: set it so it is signed.
    ctype = headers.pop("Content-Type", "application/octet-stream")
    url_path = "/" + account + path
    canon_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
    canon_resource = "/" + account + url_path + "".join(
        f"\n{k.lower()}:{query[k]}" for k in sorted(query, key=str.lower))
    to_sign = "\n".join([
        method, "", "", str(len(body)) if body else "", "", ctype, "",
        "", "", "", "", "",
    ]) + "\n" + canon_headers + canon_resource
    sig = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
    url = endpoint + urllib.parse.quote(url_path)
    if query:
        url += "?" + urllib.parse.urlencode(query)
    req = urllib.request.Request(url, data=body, method=method)
    for k, v in headers.items():
        req.add_header(k, v)
    req.add_header("Content-Type", ctype)
    req.add_header("Authorization", f"SharedKey {account}:{sig}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


deadline = time.monotonic() + 30
last = None
while time.monotonic() < deadline:
    try:
        st, body = request("PUT", f"/{container}", {"restype": "container"})
        if st not in (201, 409):
            raise RuntimeError(f"create container: HTTP {st} {body[:300]!r}")
        probe = f"/{container}/.lifeboat-probe"
        st, body = request("PUT", probe, body=b"probe", headers={"x-ms-blob-type": "BlockBlob"})
        if st != 201:
            raise RuntimeError(f"put probe: HTTP {st} {body[:300]!r}")
        st, body = request("DELETE", probe)
        if st != 202:
            raise RuntimeError(f"delete probe: HTTP {st} {body[:300]!r}")
        sys.exit(0)
    except Exception as exc:  # not ready yet
        last = exc
        time.sleep(0.5)
sys.exit(f"azurite.sh: cannot create container {container}: {last}")
EOF
}

cmd_start() {
    local state
    state="$(server_state_dir "$1")"
    if server_already_running "$state"; then
        return 0
    fi
    local py
    py="$(find_python)"
    install_azurite
    AZURITE_BIN="$(find_azurite)"
    mkdir -p "$state/data"
    rm -f "$state/pid" "$state/env"

    server_launch_with_retries "$state" "$py"

    cat >"$state/env.tmp" <<EOF
export AZURITE_BLOB_STORAGE_URL=$SERVER_URL
export AZURE_STORAGE_USE_EMULATOR=true
export AZURE_STORAGE_ACCOUNT_NAME=$ACCOUNT
export AZURE_STORAGE_ACCOUNT_KEY=$ACCOUNT_KEY
export LIFEBOAT_TEST_AZURE_CONTAINER=$CONTAINER
EOF
    if ! (AZURITE_BLOB_STORAGE_URL="$SERVER_URL" AZURE_STORAGE_ACCOUNT_NAME="$ACCOUNT" \
          AZURE_STORAGE_ACCOUNT_KEY="$ACCOUNT_KEY" make_container "$py"); then
        server_fail "$state" "$SERVER_PID" "last log lines:"
    fi
    server_publish_env "$state"
}

cmd_stop() { server_stop "$1"; }

cmd_status() { server_status "$1"; }

case "${1:-}" in
    start) [[ $# -eq 2 ]] || usage; cmd_start "$2" ;;
    stop) [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
    status) [[ $# -eq 2 ]] || usage; cmd_status "$2" ;;
    install) [[ $# -eq 1 ]] || usage; install_azurite ;;
    *) usage ;;
esac
