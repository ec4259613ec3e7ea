#!/usr/bin/env bash
# `scripts/bench.sh --only drill`: the DR outcome figure. A restore drill of a SIZE_MIB (1024 by
# default) KV store from an offline backup in a folder location, with its RTO phase by phase.
#
#   scripts/lib/drill_bench.sh LIFEBOAT_BIN DREMIO_SIM_BIN PYTHON BENCH_DIR RUNS RESULTS
#
# Untimed setup:
#   1. scripts/gen_fixture.py makes a Dremio installation with a real RocksDB store of SIZE_MIB
#      (and 50 small uploaded files);
#   2. `dremio-sim seed` writes a catalog of DRILL_OBJECTS (1000) objects into the same
#      paths.local (db/sim beside the RocksDB store's db/catalog), with the admin `admin`;
#   3. a dremio-sim serves it once, `lifeboat clone export` keeps its tree (the drill's
#      `clone_tree` reference), and it is stopped (by pid);
#   4. `lifeboat backup` takes an offline backup of the stopped installation to a folder.
# Timed, RUNS times (each under /usr/bin/time -v):
#   lifeboat --json drill --cluster bench --scratch BENCH_DIR/drill/scratch
#   with drill_start = dremio-sim on the scratch copy: fetch, verify, extract (the restore of the
#   whole store into the scratch paths.local), start (until server_status is OK), validate (a
#   clone export of the drill's coordinator compared with the tree); then the coordinator is
#   stopped and the scratch removed (checked after each run).
# Printed and appended to RESULTS: each run's phases (lifeboat's own clock), RTO (the end of
# `start`), the command's wall clock and peak RSS, and RTO against the 60 s target (PASS/MISS).
set -euo pipefail

LB="$1"
SIM="$2"
PY="$3"
BENCH_DIR="$4"
RUNS="$5"
RESULTS="$6"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SIZE_MIB="${SIZE_MIB:-1024}"
OBJECTS="${DRILL_OBJECTS:-1000}"
TARGET_S=60
[[ "$OBJECTS" =~ ^[0-9]+$ && "$OBJECTS" -ge 20 ]] || { echo "DRILL_OBJECTS must be >= 20" >&2; exit 2; }

DB="$BENCH_DIR/drill"
LOGS="$DB/logs"
mkdir -p "$DB" "$LOGS" "$DB/repo" "$DB/scratch"
note() { echo "drill-bench [+${SECONDS}s]: $*" >&2; }
die() { echo "drill-bench: $*" >&2; exit 1; }

SIM_PID=
stop_sim() {
    local i
    [[ -n "$SIM_PID" ]] || return 0
    kill -TERM "$SIM_PID" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$SIM_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
    SIM_PID=
}
trap stop_sim EXIT

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# 1. the store
note "generating a ${SIZE_MIB} MiB RocksDB store"
"$PY" "$REPO/scripts/gen_fixture.py" --out "$DB/fixture" --size-mib "$SIZE_MIB" --small-files 50 \
    >"$DB/fixture.json"
field() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
HOME_DIR="$(field "$DB/fixture.json" home)"
PATHS_LOCAL="$(field "$DB/fixture.json" paths_local)"
FULL_VERSION="$(field "$DB/fixture.json" version)"
# The simulator takes major.minor.patch.
VERSION="$(printf '%s\n' "$FULL_VERSION" | grep -oE '^[0-9]+\.[0-9]+\.[0-9]+')" \
    || die "cannot read a version from '$FULL_VERSION'"

# 2. the catalog
"$SIM" seed --paths-local "$PATHS_LOCAL" --objects "$OBJECTS" --version "$VERSION" \
    >"$LOGS/seed.out" 2>"$LOGS/seed.err" || { cat "$LOGS/seed.err" >&2; die "dremio-sim seed failed"; }
note "$(cat "$LOGS/seed.out")"
export LIFEBOAT_DREMIO_USER=admin LIFEBOAT_DREMIO_PASSWORD='Passw0rd!' LIFEBOAT_PROGRESS=none

# 3. the reference tree
port="$(free_port)"
"$SIM" --paths-local "$PATHS_LOCAL" --port "$port" --version "$VERSION" \
    </dev/null >"$LOGS/sim.out" 2>"$LOGS/sim.err" &
SIM_PID=$!
for ((i = 0; i < 300; i++)); do
    grep -qF "active on 127.0.0.1:$port" "$LOGS/sim.out" && break
    kill -0 "$SIM_PID" 2>/dev/null || { cat "$LOGS/sim.err" >&2; die "dremio-sim ended at start"; }
    sleep 0.1
done
grep -qF "active on 127.0.0.1:$port" "$LOGS/sim.out" || die "dremio-sim did not serve within 30 s"
"$LB" --json clone export --dremio-url "http://127.0.0.1:$port" --out "$DB/tree" \
    >"$LOGS/export.json" 2>"$LOGS/export.err" || { cat "$LOGS/export.err" >&2; die "clone export failed"; }
stop_sim

# 4. the backup, and the config the drill reads
cat >"$DB/lifeboat.toml" <<EOF
[clusters.bench]
dremio_home = "$HOME_DIR"
to = "$DB/repo"
drill_start = "'$SIM' --paths-local {paths_local} --port {port} --version $VERSION"
clone_tree = "$DB/tree"
rto = "${TARGET_S}s"
EOF
note "offline backup of $PATHS_LOCAL"
"$LB" --config "$DB/lifeboat.toml" --json backup --cluster bench >"$LOGS/backup.json" 2>"$LOGS/backup.err" \
    || { tail -n 20 "$LOGS/backup.err" >&2; die "backup failed"; }

# 5. the drills
for ((run = 1; run <= RUNS; run++)); do
    sync
    note "run $run: lifeboat drill"
    base="$LOGS/drill-$run"
    if ! /usr/bin/time -v -o "$base.time" "$LB" --config "$DB/lifeboat.toml" --json drill \
        --cluster bench --scratch "$DB/scratch" >"$base.json" 2>"$base.err"; then
        tail -n 30 "$base.err" >&2 || true
        cat "$base.json" >&2 || true
        die "the drill (run $run) failed"
    fi
    [[ -z "$(ls -A "$DB/scratch")" ]] || die "run $run left something in $DB/scratch: $(ls -A "$DB/scratch")"
done

"$PY" - "$LOGS" "$RUNS" "$RESULTS" "$SIZE_MIB" "$OBJECTS" "$TARGET_S" "$LOGS/backup.json" <<'PYEOF'
import json, re, statistics, sys

logs, runs, results, size_mib, objects, target, backup = sys.argv[1:8]
runs, target = int(runs), float(target)
b = json.load(open(backup))
out = []
p = out.append
p(f"DR DRILL: offline backup of a {size_mib} MiB KV store ({b['raw_bytes'] / 2**20:.0f} MiB raw, "
  f"{b['stored_bytes'] / 2**20:.0f} MiB stored, {b['kv_files']} KV files) + a seeded catalog of "
  f"{objects} objects, from a folder location; drill_start = dremio-sim; runs {runs}")
p("")
rtos, walls = [], []
for run in range(1, runs + 1):
    r = json.load(open(f"{logs}/drill-{run}.json"))
    t = open(f"{logs}/drill-{run}.time").read()
    m = re.search(r"Elapsed \(wall clock\) time.*: (.*)", t).group(1).split(":")
    wall = float(m[0]) * 60 + float(m[1]) if len(m) == 2 else float(m[0]) * 3600 + float(m[1]) * 60 + float(m[2])
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
    p(f"run {run}: backup {r['backup']['id']}, outcome {r.get('outcome')}")
    p(f"  {'phase':<10} {'at s':>7} {'seconds':>8}  detail")
    for ph in r["phases"]:
        mark = "" if ph["ok"] else "  FAIL"
        p(f"  {ph['phase']:<10} {ph['at']:7.2f} {ph['seconds']:8.2f}  {ph['detail'][:90]}{mark}")
    rto = r["rto_seconds"]
    rtos.append(rto)
    walls.append(wall)
    p(f"  RTO {rto:.2f} s (to serving), RPO {r['rpo_seconds']:.0f} s; the command: wall {wall:.2f} s, "
      f"peak RSS {rss:.1f} MiB")
    p("")
rto = statistics.median(rtos)
p(f"RTO (median of {runs}): {rto:.2f} s   target < {target:.0f} s   {'PASS' if rto < target else 'MISS'}")
p(f"whole drill wall clock (median, incl. validate, stop, cleanup): {statistics.median(walls):.2f} s")
text = "\n".join(out) + "\n"
print(text, end="")
with open(results, "a") as f:
    f.write(text)
PYEOF
