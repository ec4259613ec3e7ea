#!/usr/bin/env bash
# Start or stop a throwaway MariaDB (a Druid metadata store) on loopback for lifeboat's tests.
#
#   scripts/mariadb.sh start STATE_DIR [--replica]   install Debian's mariadb-server if missing,
#                                                    start a primary with a binary log on a free
#                                                    port (and with --replica a replica of it,
#                                                    waited for until both of its threads run and
#                                                    it has caught up), write STATE_DIR/env (0600)
#                                                    and print it
#   scripts/mariadb.sh stop STATE_DIR                stop what start started, by recorded pid
#   scripts/mariadb.sh status STATE_DIR              exit 0 if every server started runs
#
# STATE_DIR/env: LIFEBOAT_MARIADB_URL=mysql://lifeboat:<pw>@127.0.0.1:<port>/druid (all
# privileges: tests create databases of their own), LIFEBOAT_MARIADB_REPLICA_URL with --replica
# (the user reaches the replica through replication), LIFEBOAT_MARIADB_STATE, LIFEBOAT_MARIADB_CA_FILE (TLS is on,
# optional for clients, the certificate for 127.0.0.1 signed by that CA). The servers run as
# `mysql` on data folders it owns (named in STATE_DIR/<server>/datadir), with --no-defaults so that
# /etc/mysql is never read. They are stopped by the pid recorded in STATE_DIR/<server>/pid after
# checking its command line, never by name.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIFEBOAT_VENV:-$REPO/.venv}"
START_TIMEOUT="${MARIADB_START_TIMEOUT:-60}"
STOP_TIMEOUT="${MARIADB_STOP_TIMEOUT:-10}"

SERVER_NAME="mariadb.sh"
# shellcheck source=SCRIPTDIR/lib/server.sh
source "$REPO/scripts/lib/server.sh"
# shellcheck source=SCRIPTDIR/lib/debian.sh
source "$REPO/scripts/lib/debian.sh"
# shellcheck source=SCRIPTDIR/lib/pair.sh
source "$REPO/scripts/lib/pair.sh"
PAIR_ROOT_GLOB='*/lifeboat-mariadb-*'

usage() {
    echo "usage: $0 start STATE_DIR [--replica] | stop|status STATE_DIR" >&2
    exit 2
}

# Hook for running_pid: is CMD the mariadbd of the data folder named in STATE/datadir?
server_cmd_matches() {
    [[ -f "$1/datadir" && "$2" == *"mariadbd --no-defaults --datadir=$(cat "$1/datadir") "* ]]
}

# The client as root over the server's socket (root authenticates by its unix user).
sql() {
    local srv="$1"
    shift
    mariadb --no-defaults -S "$(cat "$srv/datadir")/sock" -u root "$@"
}

# launch SRV PORT ID: create the data folder and start mariadbd in the background (it drops to
# `mysql` itself, so $! is the server); wait until it answers.
launch() {
    local srv="$1" port="$2" id="$3" data i
    data="$(cat "$srv/datadir")"
    echo "$port" >"$srv/port"
    mariadb-install-db --no-defaults --datadir="$data" --user=mysql \
        --auth-root-authentication-method=socket --skip-test-db >>"$srv/mariadb.log" 2>&1 \
        || { tail -n 20 "$srv/mariadb.log" >&2; die "mariadb-install-db failed"; }
    mariadbd --no-defaults --datadir="$data" --user=mysql --bind-address=127.0.0.1 \
        --port="$port" --socket="$data/sock" --pid-file="$data/pid" --skip-name-resolve \
        --server-id="$id" --log-bin=mysql-bin --binlog-format=ROW \
        --report-host=127.0.0.1 --report-port="$port" --innodb-flush-log-at-trx-commit=2 \
        --ssl-ca="$PAIR_TLS/ca.pem" --ssl-cert="$PAIR_TLS/server.pem" --ssl-key="$PAIR_TLS/server.key" \
        </dev/null >>"$srv/mariadb.log" 2>&1 &
    echo $! >"$srv/pid"
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        alive "$(cat "$srv/pid")" || { tail -n 20 "$srv/mariadb.log" >&2; die "mariadbd exited at start"; }
        sql "$srv" -e 'SELECT 1' >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tail -n 20 "$srv/mariadb.log" >&2
    die "mariadbd on port $port not ready within ${START_TIMEOUT}s"
}

start_primary() {
    local state="$1" root="$2" port="$3" pw="$4" replpw="$5" srv="$1/primary"
    mkdir -p "$srv"
    echo "$root/primary" >"$srv/datadir"
    launch "$srv" "$port" 1
    sql "$srv" <<EOF
CREATE USER 'lifeboat'@'127.0.0.1' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON *.* TO 'lifeboat'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE druid;
CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY '$replpw';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';
EOF
}

# The replica starts from the primary's first binary log (an empty slave_pos), so it replays
# the users and the database created above: it is caught up once `lifeboat` exists there.
start_replica() {
    local state="$1" root="$2" port="$3" replpw="$4" srv="$1/replica" primary="$1/primary" i
    mkdir -p "$srv"
    echo "$root/replica" >"$srv/datadir"
    launch "$srv" "$port" 2
    sql "$srv" <<EOF
CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$(cat "$primary/port"),
  MASTER_USER='repl', MASTER_PASSWORD='$replpw', MASTER_USE_GTID=slave_pos;
START REPLICA;
EOF
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        [[ "$(sql "$srv" -N -e "SELECT count(*) FROM mysql.user WHERE user = 'lifeboat'")" == 1 ]] \
            && return 0
        sleep 0.1
    done
    sql "$srv" -e 'SHOW REPLICA STATUS\G' >&2 || true
    die "the replica on port $port did not catch up within ${START_TIMEOUT}s"
}

cmd_start() {
    local state replica="${2:-}"
    [[ -z "$replica" || "$replica" == --replica ]] || usage
    state="$(server_state_dir "$1")"
    if cmd_status "$state" >/dev/null 2>&1 && [[ -f "$state/env" ]]; then
        cat "$state/env"
        return 0
    fi
    command -v mariadbd >/dev/null 2>&1 || debian_install "$SERVER_NAME" mariadb-server mariadb-client \
        || die "cannot install mariadb-server"
    pair_start "$state" "$replica" mysql mariadb LIFEBOAT_MARIADB mysql
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
