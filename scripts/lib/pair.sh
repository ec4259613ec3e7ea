# shellcheck shell=bash
# Shared parts of scripts/postgres.sh and scripts/mariadb.sh: a database primary and, optionally,
# its replica, each with its pid and data folder's name in STATE_DIR/primary and STATE_DIR/replica,
# their data under the folder STATE_DIR/root names. Sourced after lib/server.sh, whose
# server_cmd_matches hook the sourcing script defines. It also sets:
#   PAIR_ROOT_GLOB     what the data folder's path must match before it is removed (a guard)
#   PAIR_STOP_SIGNAL   the signal of a clean shutdown (default TERM)

new_password() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# pair_stop_server SRV: stop the server recorded in SRV (PAIR_STOP_SIGNAL, then SIGKILL).
pair_stop_server() {
    local srv="$1" pid
    [[ -d "$srv" ]] || return 0
    if pid="$(running_pid "$srv")"; then
        terminate "$pid" "${PAIR_STOP_SIGNAL:-TERM}"
        echo "$SERVER_NAME: stopped pid $pid" >&2
    fi
    rm -f "$srv/pid"
}

# pair_stop STATE: the replica first (so that it does not log a lost primary), then the primary;
# then their data and the env file.
pair_stop() {
    local state="$1" root
    [[ -d "$state" ]] || return 0
    state="$(cd "$state" && pwd)"
    pair_stop_server "$state/replica"
    pair_stop_server "$state/primary"
    if [[ -f "$state/root" ]]; then
        root="$(cat "$state/root")"
        # shellcheck disable=SC2053
        [[ "$root" == $PAIR_ROOT_GLOB ]] && rm -rf "$root"
        rm -f "$state/root"
    fi
    rm -f "$state/env"
}

# pair_status STATE: "running" and 0 if every server started runs.
pair_status() {
    local state="$1" srv any=0
    [[ -d "$state" ]] || return 1
    for srv in "$state/primary" "$state/replica"; do
        [[ -d "$srv" ]] || continue
        running_pid "$srv" >/dev/null || { echo "not running: $srv"; return 1; }
        any=1
    done
    ((any)) && echo "running"
}
