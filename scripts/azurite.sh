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

die() { echo "azurite.sh: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 start|stop|status STATE_DIR" >&2
    echo "       $0 install" >&2
    exit 2
}

find_python() {
    command -v python3 >/dev/null 2>&1 || die "python3 is needed (standard library only)"
    command -v python3
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

# Is this pid alive (a zombie is not)?
alive() {
    local st
    [[ -r "/proc/$1/status" ]] || return 1
    st="$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null || true)"
    [[ -n "$st" && "$st" != "Z" ]]
}

# Is the pid in STATE_DIR/pid a live azurite-blob started for this STATE_DIR?
# (Checks the command line so that a recycled pid is never signalled.)
running_pid() {
    local state="$1" pid cmd
    [[ -f "$state/pid" ]] || return 1
    pid="$(cat "$state/pid")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmd" == *"azurite-blob"* && "$cmd" == *" -l $state/data "* ]] || return 1
    alive "$pid" || return 1
    echo "$pid"
}

# SIGTERM the pid, wait up to STOP_TIMEOUT s, then SIGKILL.
terminate() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    echo "azurite.sh: pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    echo "azurite.sh: pid $pid survived SIGKILL?" >&2
    return 1
}

# Ask the OS for a free loopback port.
pick_port() {
    "$1" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Poll the blob endpoint until it answers HTTP (any status) or the server dies; bounded.
wait_blob() {
    local py="$1" url="$2" pid="$3" i
    for ((i = 0; i < START_TIMEOUT * 4; i++)); do
        if ! alive "$pid"; then
            return 2
        fi
        if "$py" - "$url" <<'EOF' 2>/dev/null; then
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1] + "/devstoreaccount1?comp=list", timeout=1)
except urllib.error.HTTPError:
    pass  # it answers (unauthenticated: 403): good enough
sys.exit(0)
EOF
            return 0
        fi
        sleep 0.25
    done
    return 1
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
    local state="$1"
    mkdir -p "$state"
    state="$(cd "$state" && pwd)"
    local pid
    if pid="$(running_pid "$state")"; then
        echo "azurite.sh: already running (pid $pid) for $state" >&2
        cat "$state/env"
        return 0
    fi
    local py azurite
    py="$(find_python)"
    install_azurite
    azurite="$(find_azurite)"
    mkdir -p "$state/data"
    rm -f "$state/pid" "$state/env"

    local attempt port rc
    for attempt in 1 2 3; do
        port="$(pick_port "$py")"
        # The `-l DIR` spelling is what running_pid looks for: keep the two in step.
        "$azurite" \
            --blobHost 127.0.0.1 --blobPort "$port" \
            -l "$state/data" \
            --skipApiVersionCheck --disableTelemetry \
            </dev/null >>"$state/azurite.log" 2>&1 &
        pid=$!
        echo "$pid" >"$state/pid"
        echo "$port" >"$state/port"
        rc=0
        wait_blob "$py" "http://127.0.0.1:$port" "$pid" || rc=$?
        if [[ $rc -eq 0 ]]; then
            break
        fi
        if [[ $rc -eq 2 && $attempt -lt 3 ]]; then
            # died at start (port taken meanwhile?): try again with another port
            echo "azurite.sh: azurite-blob exited at start, retrying with another port" >&2
            wait "$pid" 2>/dev/null || true
            rm -f "$state/pid"
            continue
        fi
        if [[ $rc -eq 2 ]]; then
            echo "azurite.sh: azurite-blob exited at start; last log lines:" >&2
        else
            echo "azurite.sh: blob endpoint http://127.0.0.1:$port did not answer within" \
                 "${START_TIMEOUT}s; last log lines:" >&2
        fi
        tail -n 30 "$state/azurite.log" >&2 || true
        terminate "$pid" 2>/dev/null || true
        rm -f "$state/pid"
        exit 1
    done

    cat >"$state/env.tmp" <<EOF
export AZURITE_BLOB_STORAGE_URL=http://127.0.0.1:$port
export AZURE_STORAGE_USE_EMULATOR=true
export AZURE_STORAGE_ACCOUNT_NAME=$ACCOUNT
export AZURE_STORAGE_ACCOUNT_KEY=$ACCOUNT_KEY
export LIFEBOAT_TEST_AZURE_CONTAINER=$CONTAINER
EOF
    if ! (AZURITE_BLOB_STORAGE_URL="http://127.0.0.1:$port" AZURE_STORAGE_ACCOUNT_NAME="$ACCOUNT" \
          AZURE_STORAGE_ACCOUNT_KEY="$ACCOUNT_KEY" make_container "$py"); then
        echo "azurite.sh: last log lines:" >&2
        tail -n 30 "$state/azurite.log" >&2 || true
        terminate "$pid" 2>/dev/null || true
        rm -f "$state/pid"
        exit 1
    fi
    mv "$state/env.tmp" "$state/env"
    cat "$state/env"
}

cmd_stop() {
    local state="$1"
    [[ -d "$state" ]] || { echo "azurite.sh: no state dir $state" >&2; return 0; }
    state="$(cd "$state" && pwd)"
    local pid
    if ! pid="$(running_pid "$state")"; then
        echo "azurite.sh: not running ($state)" >&2
        rm -f "$state/pid"
        return 0
    fi
    terminate "$pid" || return 1
    rm -f "$state/pid"
    echo "azurite.sh: stopped pid $pid" >&2
}

cmd_status() {
    local state="$1" pid
    [[ -d "$state" ]] || return 1
    state="$(cd "$state" && pwd)"
    if pid="$(running_pid "$state")"; then
        echo "running pid $pid"
        return 0
    fi
    echo "not running"
    return 1
}

case "${1:-}" in
    start) [[ $# -eq 2 ]] || usage; cmd_start "$2" ;;
    stop) [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
    status) [[ $# -eq 2 ]] || usage; cmd_status "$2" ;;
    install) [[ $# -eq 1 ]] || usage; install_azurite ;;
    *) usage ;;
esac
