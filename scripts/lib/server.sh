# shellcheck shell=bash
# Shared parts of scripts/seaweedfs.sh and scripts/azurite.sh: start, watch and stop one throwaway
# server on 127.0.0.1 whose state (pid file, log, data) lives in a STATE_DIR. Sourced, not run.
#
# The sourcing script sets, before calling anything here:
#   SERVER_NAME        prefix of every message, e.g. "seaweedfs.sh"
#   SERVER_PROG        the server's name in messages, e.g. "weed"
#   SERVER_LOG         log file name inside STATE_DIR (output is appended to it)
#   SERVER_ENDPOINT    what is polled, in messages, e.g. "S3 endpoint"
#   SERVER_PROBE_PATH  appended to the base URL when polling, e.g. "/healthz"
#   SERVER_RETRY_WITH  in "retrying with ...": "other ports" / "another port"
#   START_TIMEOUT      seconds to wait for the endpoint to answer
#   STOP_TIMEOUT       seconds between SIGTERM and SIGKILL
# and defines two hooks:
#   server_cmd_matches STATE CMD  exit 0 if CMD (a command line, NULs turned into spaces) is this
#                                 script's server for STATE
#   server_launch STATE PY        pick free ports (with server_pick_ports), start the server in
#                                 the background (in this shell, not a subshell, so that `wait`
#                                 works) with stdin from /dev/null and stdout and stderr appended
#                                 to STATE/SERVER_LOG, record its ports in STATE, and set
#                                 SERVER_PID to its pid and SERVER_URL to its base URL
#
# Servers are only ever stopped by the pid recorded in STATE_DIR/pid, after checking that the
# process's command line is the expected one; never by name.

die() { echo "$SERVER_NAME: $*" >&2; exit 1; }

# server_find_python MESSAGE [VENV]: print VENV/bin/python if it is executable, else python3
# from PATH; die with MESSAGE if there is neither.
server_find_python() {
    local msg="$1" venv="${2:-}"
    if [[ -n "$venv" && -x "$venv/bin/python" ]]; then
        echo "$venv/bin/python"
    elif command -v python3 >/dev/null 2>&1; then
        command -v python3
    else
        die "$msg"
    fi
}

# Is this pid alive (a zombie is not)?
alive() {
    local st
    [[ -r "/proc/$1/status" ]] || return 1
    st="$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null || true)"
    [[ -n "$st" && "$st" != "Z" ]]
}

# Print the pid in STATE_DIR/pid if it is alive and its command line is the server started for
# this STATE_DIR (server_cmd_matches), so that a recycled pid is never signalled.
running_pid() {
    local state="$1" pid cmd
    [[ -f "$state/pid" ]] || return 1
    pid="$(cat "$state/pid")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    server_cmd_matches "$state" "$cmd" || return 1
    alive "$pid" || return 1
    echo "$pid"
}

# terminate PID [SIGNAL]: SIGNAL (default TERM) to the pid, wait up to STOP_TIMEOUT s, then SIGKILL.
terminate() {
    local pid="$1" sig="${2:-TERM}" i
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    echo "$SERVER_NAME: pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    echo "$SERVER_NAME: pid $pid survived SIGKILL?" >&2
    return 1
}

# server_pick_ports PY COUNT [OFFSET]: print COUNT distinct loopback ports that are free now;
# with OFFSET > 0, P + OFFSET is free too for each of them (and not among the others).
server_pick_ports() {
    "$1" - "$2" "${3:-0}" <<'EOF'
import socket, sys
count, offset = int(sys.argv[1]), int(sys.argv[2])
held, ports = [], []
try:
    while len(ports) < count:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        held.append(s)
        if offset:
            if p + offset > 65535 or p in ports or p + offset in ports or p - offset in ports:
                continue
            g = socket.socket()
            try:
                g.bind(("127.0.0.1", p + offset))
            except OSError:
                g.close()
                continue
            held.append(g)
        elif p in ports:
            continue
        ports.append(p)
finally:
    for s in held:
        s.close()
print(" ".join(map(str, ports)))
EOF
}

# server_wait_http PY URL PID: poll URL+SERVER_PROBE_PATH until it answers HTTP (any status:
# 0), the server dies (2) or START_TIMEOUT runs out (1).
server_wait_http() {
    local py="$1" url="$2" pid="$3" i
    for ((i = 0; i < START_TIMEOUT * 4; i++)); do
        if ! alive "$pid"; then
            return 2
        fi
        if "$py" - "$url$SERVER_PROBE_PATH" <<'EOF' 2>/dev/null; then
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass  # it answers (even 403 or 404): good enough
sys.exit(0)
EOF
            return 0
        fi
        sleep 0.25
    done
    return 1
}

# Print the absolute path of STATE_DIR, creating it if needed.
server_state_dir() {
    mkdir -p "$1"
    (cd "$1" && pwd)
}

# If the server for STATE_DIR is already running, say so and print its env file (exit 0).
server_already_running() {
    local state="$1" pid
    pid="$(running_pid "$state")" || return 1
    echo "$SERVER_NAME: already running (pid $pid) for $state" >&2
    cat "$state/env"
}

# server_fail STATE PID MESSAGE: print MESSAGE and the log's tail, stop PID, forget it, exit 1.
server_fail() {
    local state="$1" pid="$2"
    shift 2
    echo "$SERVER_NAME: $*" >&2
    tail -n 30 "$state/$SERVER_LOG" >&2 || true
    terminate "$pid" 2>/dev/null || true
    rm -f "$state/pid"
    exit 1
}

# server_launch_with_retries STATE PY: server_launch, record the pid in STATE/pid and wait for
# the endpoint; if the server dies at start (a port taken meanwhile?) try twice more with other
# ports. Exits 1 on failure; on success SERVER_PID and SERVER_URL describe the running server.
server_launch_with_retries() {
    local state="$1" py="$2" attempt rc
    for attempt in 1 2 3; do
        server_launch "$state" "$py"
        echo "$SERVER_PID" >"$state/pid"
        rc=0
        server_wait_http "$py" "$SERVER_URL" "$SERVER_PID" || rc=$?
        if [[ $rc -eq 0 ]]; then
            return 0
        fi
        if [[ $rc -eq 2 && $attempt -lt 3 ]]; then
            echo "$SERVER_NAME: $SERVER_PROG exited at start, retrying with $SERVER_RETRY_WITH" >&2
            wait "$SERVER_PID" 2>/dev/null || true
            rm -f "$state/pid"
            continue
        fi
        if [[ $rc -eq 2 ]]; then
            server_fail "$state" "$SERVER_PID" "$SERVER_PROG exited at start; last log lines:"
        fi
        server_fail "$state" "$SERVER_PID" "$SERVER_ENDPOINT $SERVER_URL did not answer within" \
            "${START_TIMEOUT}s; last log lines:"
    done
}

# Move STATE_DIR/env.tmp (written complete) to STATE_DIR/env and print it.
server_publish_env() {
    mv "$1/env.tmp" "$1/env"
    cat "$1/env"
}

# server_stop STATE [CLEANUP]: stop the server recorded in STATE_DIR/pid (terminate), then run
# CLEANUP STATE if given and remove the pid file. Not running is not an error.
server_stop() {
    local state="$1" cleanup="${2:-}" pid
    [[ -d "$state" ]] || { echo "$SERVER_NAME: no state dir $state" >&2; return 0; }
    state="$(cd "$state" && pwd)"
    if ! pid="$(running_pid "$state")"; then
        echo "$SERVER_NAME: not running ($state)" >&2
        rm -f "$state/pid"
        return 0
    fi
    terminate "$pid" || return 1
    if [[ -n "$cleanup" ]]; then
        "$cleanup" "$state"
    fi
    rm -f "$state/pid"
    echo "$SERVER_NAME: stopped pid $pid" >&2
}

# Print "running pid N" and exit 0 if the server for STATE_DIR runs, else "not running", 1.
server_status() {
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
