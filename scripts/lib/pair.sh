# shellcheck shell=bash
# Shared parts of scripts/postgres.sh and scripts/mariadb.sh: a database primary and, optionally,
# its replica, each with its pid and data folder's name in STATE_DIR/primary and STATE_DIR/replica,
# their data under the folder STATE_DIR/root names. Sourced after lib/server.sh, whose
# server_cmd_matches hook the sourcing script defines. It also sets:
#   PAIR_ROOT_GLOB     what the data folder's path must match before it is removed (a guard)
#   PAIR_STOP_SIGNAL   the signal of a clean shutdown (default TERM)

new_password() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# pair_tls DIR OWNER: a throwaway CA (DIR/ca.pem) and a server certificate it signed for 127.0.0.1
# and localhost (DIR/server.pem, DIR/server.key: OWNER's, 0600), so that tests can connect with
# TLS and a CA file. The CA's key is deleted: nothing else can be signed with it.
pair_tls() {
    local dir="$1" owner="$2"
    mkdir -p "$dir"
    (
        umask 077
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=lifeboat test CA" \
            -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
            -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$dir/ext"
        openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
            -CAcreateserial -days 30 -extfile "$dir/ext" -out "$dir/server.pem" 2>/dev/null
    ) || die "openssl could not make the test certificates"
    rm -f "$dir/ca.key" "$dir/server.csr" "$dir/ext" "$dir/ca.srl"
    chmod 0644 "$dir/ca.pem" "$dir/server.pem"
    chown "$owner": "$dir" "$dir/server.key" "$dir/server.pem"
}

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

# pair_start STATE REPLICA OWNER NAME VAR SCHEME: start a primary (and a replica when REPLICA is
# `--replica`) on free ports, their data in a new folder lifeboat-NAME-* owned by OWNER, through
# the sourcing script's hooks `start_primary STATE ROOT PORT PASSWORD REPL_PASSWORD` and
# `start_replica STATE ROOT PORT REPL_PASSWORD`; then publish STATE/env (0600) with
# VAR_URL=SCHEME://lifeboat:<pw>@127.0.0.1:<port>/druid, VAR_STATE, VAR_CA_FILE (the CA of the
# servers' TLS certificate, see pair_tls; PAIR_TLS names its folder for the hooks) and
# VAR_REPLICA_URL. A failed
# start stops what it started.
pair_start() {
    local state="$1" replica="$2" owner="$3" name="$4" var="$5" scheme="$6" py root pw replpw ports
    py="$(server_find_python "no python3 to pick ports" "$VENV")"
    read -r -a ports <<<"$(server_pick_ports "$py" 2)"
    root="$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-$name-XXXXXX")"
    chown "$owner": "$root"
    echo "$root" >"$state/root"
    pw="$(new_password)"
    replpw="$(new_password)"
    # die exits, so an ERR trap would not fire; the state's path is fixed now.
    # shellcheck disable=SC2064
    trap "rc=\$?; ((rc == 0)) || { set +e; pair_stop $(printf %q "$state"); }" EXIT
    pair_tls "$root/tls" "$owner"
    PAIR_TLS="$root/tls"
    start_primary "$state" "$root" "${ports[0]}" "$pw" "$replpw"
    # The env file holds the password: created 0600 (the umask must apply when it is opened).
    (
        umask 077
        {
            echo "export ${var}_URL=$scheme://lifeboat:$pw@127.0.0.1:${ports[0]}/druid"
            echo "export ${var}_STATE=$state"
            echo "export ${var}_CA_FILE=$root/tls/ca.pem"
            if [[ -n "$replica" ]]; then
                echo "export ${var}_REPLICA_URL=$scheme://lifeboat:$pw@127.0.0.1:${ports[1]}/druid"
            fi
        } >"$state/env.tmp"
    )
    if [[ -n "$replica" ]]; then
        start_replica "$state" "$root" "${ports[1]}" "$replpw"
    fi
    server_publish_env "$state"
    trap - EXIT
}
