#!/usr/bin/env bash
# Start or stop a throwaway ZooKeeper quorum on loopback for lifeboat's tests.
#
#   scripts/zookeeper.sh start STATE_DIR [N]     install Debian's zookeeper (and Curator, for the
#                                                LeaderLatch proof) if missing, start an N-node
#                                                quorum (default 3) with each node's files in
#                                                STATE_DIR/node<i>/, wait until `srvr` shows one
#                                                leader and N-1 followers, write STATE_DIR/env and
#                                                print it
#   scripts/zookeeper.sh stop STATE_DIR          stop every node by its recorded pid
#   scripts/zookeeper.sh stop-node STATE_DIR I   stop node I only (tests that kill servers)
#   scripts/zookeeper.sh start-node STATE_DIR I  start node I again on its old ports
#   scripts/zookeeper.sh wait STATE_DIR          wait until the whole quorum serves again
#   scripts/zookeeper.sh status STATE_DIR        exit 0 if every node runs
#
# STATE_DIR/env holds `export LIFEBOAT_ZK_SERVERS=127.0.0.1:P1,...` (the client ports) and
# LIFEBOAT_ZK_STATE (STATE_DIR). Several quorums with different STATE_DIRs can run at once.
# tickTime is 500 ms so that sessions of 1-10 s are allowed and elections take about a second;
# the admin server is off; nodes listen on 127.0.0.1 only. ZOOKEEPER_4LW_WHITELIST (default `*`)
# is 4lw.commands.whitelist: `srvr` alone is ZooKeeper's own default since 3.5.3.
# Nodes are only ever stopped by the pid in STATE_DIR/node<i>/pid after checking its command line.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LIFEBOAT_VENV:-$REPO/.venv}"
START_TIMEOUT="${ZOOKEEPER_START_TIMEOUT:-60}"  # seconds to wait for a quorum
STOP_TIMEOUT="${ZOOKEEPER_STOP_TIMEOUT:-10}"    # seconds between SIGTERM and SIGKILL
WHITELIST="${ZOOKEEPER_4LW_WHITELIST:-*}"
JAVA_DIR=/usr/share/java

SERVER_NAME="zookeeper.sh"
SERVER_LOG="zookeeper.log"
# shellcheck source=SCRIPTDIR/lib/server.sh
source "$REPO/scripts/lib/server.sh"

usage() {
    echo "usage: $0 start STATE_DIR [N] | stop|wait|status STATE_DIR | stop-node|start-node STATE_DIR I" >&2
    exit 2
}

# javac compiles the Curator participant of tests/curator at test time.
install_packages() {
    local missing=()
    [[ -f "$JAVA_DIR/zookeeper.jar" ]] || missing+=(zookeeper)
    [[ -f "$JAVA_DIR/curator-recipes.jar" ]] || missing+=(libcurator-recipes-java)
    command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
    ((${#missing[@]})) || return 0
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
    echo "$SERVER_NAME: installing ${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# Hook for running_pid: is CMD the node whose zoo.cfg is in STATE (a node's own folder)?
server_cmd_matches() {
    [[ "$2" == *"QuorumPeerMain $1/zoo.cfg"* ]]
}

# write_configs STATE N PY: one folder per node with myid and zoo.cfg; 3 fresh ports per node.
write_configs() {
    local state="$1" n="$2" py="$3" ports i servers=""
    read -r -a ports <<<"$(server_pick_ports "$py" $((3 * n)))"
    for ((i = 1; i <= n; i++)); do
        servers+="server.$i=127.0.0.1:${ports[3 * i - 2]}:${ports[3 * i - 1]}"$'\n'
    done
    for ((i = 1; i <= n; i++)); do
        local node="$state/node$i"
        mkdir -p "$node/data"
        echo "$i" >"$node/data/myid"
        cat >"$node/zoo.cfg" <<EOF
tickTime=500
initLimit=10
syncLimit=5
dataDir=$node/data
clientPort=${ports[3 * i - 3]}
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=$WHITELIST
$servers
EOF
        echo "${ports[3 * i - 3]}" >"$node/port"
    done
}

launch_node() {
    local node="$1"
    java -Xmx128m -Dzookeeper.log.dir="$node" \
        -cp "$JAVA_DIR/zookeeper.jar:$JAVA_DIR/slf4j-simple.jar" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$node/zoo.cfg" \
        </dev/null >>"$node/$SERVER_LOG" 2>&1 &
    echo $! >"$node/pid"
}

nodes() { find "$1" -maxdepth 1 -name 'node*' -type d | sort; }

# The `srvr` answer of the node listening on PORT (empty if none within 2 s). Read to EOF: a
# client that closes early (like nc) loses answers.
srvr() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && cat <&3' _ "$1" \
        2>/dev/null || true
}

# Wait until one node leads and all others follow.
wait_quorum() {
    local state="$1" deadline=$((SECONDS + START_TIMEOUT)) node modes
    while ((SECONDS < deadline)); do
        modes=""
        for node in $(nodes "$state"); do
            modes+="$(srvr "$(cat "$node/port")" | sed -n 's/^Mode: //p') "
        done
        local total leaders followers
        total=$(nodes "$state" | wc -l)
        leaders=$(grep -o leader <<<"$modes" | wc -l || true)
        followers=$(grep -o follower <<<"$modes" | wc -l || true)
        if ((leaders == 1 && followers == total - 1)) || [[ $total -eq 1 && "$modes" == standalone* ]]; then
            return 0
        fi
        sleep 0.25
    done
    echo "$SERVER_NAME: no quorum within ${START_TIMEOUT}s (modes: $modes); last log lines:" >&2
    for node in $(nodes "$state"); do tail -n 10 "$node/$SERVER_LOG" >&2 || true; done
    return 1
}

write_env() {
    local state="$1" node list=""
    for node in $(nodes "$state"); do
        list+="${list:+,}127.0.0.1:$(cat "$node/port")"
    done
    cat >"$state/env.tmp" <<EOF
export LIFEBOAT_ZK_SERVERS=$list
export LIFEBOAT_ZK_STATE=$state
EOF
    server_publish_env "$state"
}

cmd_start() {
    local state n="${2:-3}" py node
    [[ "$n" =~ ^[1-9]$ ]] || usage
    state="$(server_state_dir "$1")"
    if cmd_status "$state" >/dev/null 2>&1; then
        cat "$state/env"
        return 0
    fi
    install_packages
    py="$(server_find_python "no python3 to pick ports" "$VENV")"
    rm -rf "$state"/node* "$state/env"
    write_configs "$state" "$n" "$py"
    for node in $(nodes "$state"); do launch_node "$node"; done
    if ! wait_quorum "$state"; then
        cmd_stop "$state"
        exit 1
    fi
    write_env "$state"
}

cmd_stop() {
    local state="$1" node
    [[ -d "$state" ]] || return 0
    state="$(cd "$state" && pwd)"
    for node in $(nodes "$state"); do server_stop "$node"; done
}

cmd_stop_node() { server_stop "$(cd "$1" && pwd)/node$2"; }

cmd_start_node() {
    local node
    node="$(cd "$1" && pwd)/node$2"
    [[ -f "$node/zoo.cfg" ]] || die "no node $2 in $1"
    running_pid "$node" >/dev/null && return 0
    launch_node "$node"
}

cmd_status() {
    local state="$1" node any=0
    [[ -d "$state" ]] || return 1
    for node in $(nodes "$(cd "$state" && pwd)"); do
        running_pid "$node" >/dev/null || { echo "not running: $node"; return 1; }
        any=1
    done
    ((any)) && echo "running"
}

[[ $# -ge 2 ]] || usage
case "$1" in
    start) cmd_start "$2" "${3:-3}" ;;
    stop) cmd_stop "$2" ;;
    stop-node) [[ $# -eq 3 ]] || usage; cmd_stop_node "$2" "$3" ;;
    start-node) [[ $# -eq 3 ]] || usage; cmd_start_node "$2" "$3" ;;
    wait) wait_quorum "$(cd "$2" && pwd)" ;;
    status) cmd_status "$2" ;;
    *) usage ;;
esac
