#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL (a Druid metadata store) on loopback for lifeboat's tests.
#
#   scripts/postgres.sh start STATE_DIR [--replica]   install Debian's postgresql if missing, start a
#                                                     primary on a free port (and with --replica a
#                                                     streaming replica of it, waited for until the
#                                                     primary shows it streaming), write
#                                                     STATE_DIR/env (0600) and print it
#   scripts/postgres.sh stop STATE_DIR                stop what start started, by recorded pid
#   scripts/postgres.sh status STATE_DIR              exit 0 if every server started runs
#
# STATE_DIR/env: LIFEBOAT_PG_URL=postgres://lifeboat:<pw>@127.0.0.1:<port>/druid (role lifeboat:
# LOGIN, CREATEDB, member of pg_monitor; database druid owned by it), LIFEBOAT_PG_REPLICA_URL with
# --replica (the same role, read-only), LIFEBOAT_PG_STATE, LIFEBOAT_PG_CA_FILE (TLS is on, optional
# for clients, with a certificate for 127.0.0.1 signed by that CA). PostgreSQL refuses to run as root, so
# its files live in a folder owned by `postgres` (named in STATE_DIR/<server>/datadir) and the
# server runs as that user; fsync is off (test data). Servers are stopped by the pid recorded in
# STATE_DIR/<server>/pid after checking its command line, with SIGINT (PostgreSQL's fast
# shutdown: SIGTERM would wait for every client to leave), never by name.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIFEBOAT_VENV:-$REPO/.venv}"
START_TIMEOUT="${POSTGRES_START_TIMEOUT:-60}"
STOP_TIMEOUT="${POSTGRES_STOP_TIMEOUT:-10}"

SERVER_NAME="postgres.sh"
# shellcheck source=SCRIPTDIR/lib/server.sh
source "$REPO/scripts/lib/server.sh"
# shellcheck source=SCRIPTDIR/lib/debian.sh
source "$REPO/scripts/lib/debian.sh"
# shellcheck source=SCRIPTDIR/lib/pair.sh
source "$REPO/scripts/lib/pair.sh"
PAIR_ROOT_GLOB='*/lifeboat-pg-*'
# PostgreSQL's fast shutdown: SIGTERM would wait for every client to leave.
PAIR_STOP_SIGNAL=INT

usage() {
    echo "usage: $0 start STATE_DIR [--replica] | stop|status STATE_DIR" >&2
    exit 2
}

bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" ]] && { echo "$d"; return 0; }
    done
    return 1
}

# Hook for running_pid: is CMD the postgres serving the data folder named in STATE/datadir?
server_cmd_matches() {
    [[ -f "$1/datadir" && "$2" == *"postgres -D $(cat "$1/datadir") "* ]]
}

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

# psql as the superuser over the server's socket (local connections are trusted).
sql() {
    local srv="$1"
    shift
    "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(cat "$srv/datadir")" -p "$(cat "$srv/port")" \
        -U postgres -d postgres "$@"
}

# launch SRV PORT: start the server of SRV's data folder in the background as `postgres`, so that
# $! is the server itself; wait until it accepts connections.
launch() {
    local srv="$1" port="$2" data i
    data="$(cat "$srv/datadir")"
    echo "$port" >"$srv/port"
    # setpriv execs the server: $! is the postmaster, not a subshell.
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$BIN/postgres" -D "$data" -c listen_addresses=127.0.0.1 -p "$port" \
        -c unix_socket_directories="$data" -c fsync=off -c full_page_writes=off \
        -c max_wal_senders=4 -c wal_level=replica \
        -c ssl=on -c ssl_cert_file="$PAIR_TLS/server.pem" -c ssl_key_file="$PAIR_TLS/server.key" \
        </dev/null >>"$srv/postgres.log" 2>&1 &
    echo $! >"$srv/pid"
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        alive "$(cat "$srv/pid")" || { tail -n 20 "$srv/postgres.log" >&2; die "postgres exited at start"; }
        "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port" && return 0
        sleep 0.1
    done
    tail -n 20 "$srv/postgres.log" >&2
    die "postgres on port $port not ready within ${START_TIMEOUT}s"
}

start_primary() {
    local state="$1" root="$2" port="$3" pw="$4" replpw="$5" srv="$1/primary"
    mkdir -p "$srv"
    echo "$root/primary" >"$srv/datadir"
    as_postgres "$BIN/initdb" -D "$root/primary" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 --no-sync -N >>"$srv/postgres.log" 2>&1 \
        || { tail -n 20 "$srv/postgres.log" >&2; die "initdb failed"; }
    launch "$srv" "$port"
    sql "$srv" <<EOF
CREATE ROLE lifeboat LOGIN CREATEDB PASSWORD '$pw';
GRANT pg_monitor TO lifeboat;
CREATE DATABASE druid OWNER lifeboat;
CREATE ROLE repl LOGIN REPLICATION PASSWORD '$replpw';
EOF
}

# The replica is a base backup of the primary with a slot (-C -S) and standby settings (-R);
# `-c fast` checkpoints at once (the default spread checkpoint takes about 90 s).
start_replica() {
    local state="$1" root="$2" port="$3" replpw="$4" srv="$1/replica" primary="$1/primary" i
    mkdir -p "$srv"
    echo "$root/replica" >"$srv/datadir"
    PGPASSWORD="$replpw" as_postgres "$BIN/pg_basebackup" -h 127.0.0.1 -p "$(cat "$primary/port")" \
        -U repl -D "$root/replica" -R -X stream -C -S replica1 --no-sync -c fast >>"$srv/postgres.log" 2>&1 \
        || { tail -n 20 "$srv/postgres.log" >&2; die "pg_basebackup failed"; }
    launch "$srv" "$port"
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        [[ "$(sql "$primary" -At -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" == 1 ]] \
            && return 0
        sleep 0.1
    done
    die "the replica on port $port is not streaming within ${START_TIMEOUT}s"
}

cmd_start() {
    local state replica="${2:-}"
    [[ -z "$replica" || "$replica" == --replica ]] || usage
    state="$(server_state_dir "$1")"
    if cmd_status "$state" >/dev/null 2>&1 && [[ -f "$state/env" ]]; then
        cat "$state/env"
        return 0
    fi
    BIN="$(bindir)" || { debian_install "$SERVER_NAME" postgresql && BIN="$(bindir)"; } \
        || die "no PostgreSQL server binaries under /usr/lib/postgresql"
    pair_start "$state" "$replica" postgres pg LIFEBOAT_PG postgres
}

cmd_stop() { pair_stop "$1"; }

cmd_status() { pair_status "$1"; }

[[ $# -ge 2 ]] || usage
case "$1" in
    start) cmd_start "$2" "${3:-}" ;;
    stop) cmd_stop "$2" ;;
    status) cmd_status "$2" ;;
    *) usage ;;
esac
