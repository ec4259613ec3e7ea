#!/usr/bin/env bash
# Benchmark lifeboat against the obvious alternatives, in one run: BACKUP (backup, restore and
# verify of generated Dremio-like trees, against tar|zstd, aws and restic), CLONE (`lifeboat
# clone export|apply` of a catalog between two Dremio simulators, concurrent vs one request at a
# time), DRUID (the same between two Druid simulators, against a hand-written sync script), and
# for repository format 2 INCREMENTAL, ENCRYPTED and RESTIC (below).
# Apart (not in `all`): METADATA (a Druid metadata store against pg_dump) and DRILL (the DR outcome
# figure: a restore drill of a SIZE_MIB KV store, its RTO phase by phase; scripts/lib/drill_bench.sh).
#
#   scripts/bench.sh [--only GROUP] [--dir DIR] [--runs N] [--keep]
#                    [--results FILE] [--no-check] [--size-mib N] [--small-files N]
#                    [--clone-objects N] [--clone-concurrency N] [--clone-latency-ms N]
#                    [--druid-artefacts N]
#
# GROUP: backup, incremental, encrypted, restic, clone, druid, metadata, drill, or all (every one
# but metadata and drill); several comma-separated, e.g. --only incremental,encrypted.
#   INCREMENTAL (--only incremental): a format-2 full backup of tree A to a folder, then a simulated
#      RocksDB compaction (new SST files holding 2% of tree A's SST bytes, copied from an existing
#      SST so they compress alike; the smallest SST deleted; MANIFEST and LOG appended to), then the
#      hourly backup (timed; its stored bytes and time as % of the full), then a restore of it
#      (timed, compared with the changed tree); tree A is put back exactly afterwards.
#   ENCRYPTED (--only encrypted): a format-2 full backup of tree A to a folder encrypted to two age
#      recipients (keys from Debian's age-keygen) against the same backup unencrypted, and its
#      restore with --identity (compared with the source).
#   RESTIC (--only restic): restic init, backup, hourly backup after the same compaction, and
#      restore of tree A to a local repository and to S3, beside lifeboat's format-2 full, hourly
#      and restore on the same two locations. RESTIC_PASSWORD_FILE (a temp file; never argv);
#      RESTIC_CACHE_DIR inside BENCH_DIR, emptied before each full backup and each restore (a new
#      host) and kept for the hourly backup (the same host an hour later). restic has no telemetry.
#   Every row has its peak RSS (max RSS column), lifeboat's format-2 rows included.
# Environment (flags win): BENCH_ONLY (as --only),
# BENCH_DIR (default: a fresh mktemp dir under /tmp), RUNS (1; with more, every line is the
# median of the runs), KEEP=1 (keep BENCH_DIR at the end; else it is removed), RESULTS (default:
# <repo>/target/bench/bench-<UTC time>.txt), CHECK=0 (skip comparing restored trees with the
# source, and cloned catalogs with their source), LIFEBOAT_BIN (benchmark this lifeboat binary
# instead of building <repo>/target/release/lifeboat; no cargo needed then if DREMIO_SIM_BIN is
# set too or the clone section is not run).
#   BACKUP only: SIZE_MIB (1024), SMALL_FILES (200000), LIFEBOAT_VENV (default <repo>/.venv).
#   DRILL only:  SIZE_MIB (1024: the KV store restored), DRILL_OBJECTS (1000: the seeded catalog),
#                DREMIO_SIM_BIN as for CLONE; RUNS drills of one offline backup in a folder.
#   METADATA only: METADATA_ROWS (1000000: segment rows of the seeded Druid metadata store; see
#                scripts/lib/metadata_bench.sh). Needs Debian's postgresql (installed if missing).
#   DRUID only:  DRUID_ARTEFACTS (1000: artefacts seeded in the primary), DRUID_SIM_BIN (use this
#                druid-sim binary instead of building <repo>/target/release/druid-sim); it uses
#                CLONE_CONCURRENCY and CLONE_LATENCY_MS too.
#   CLONE only:  CLONE_OBJECTS (10000: catalog objects seeded in the primary), CLONE_CONCURRENCY
#                (16: lifeboat's --concurrency for the concurrent runs), CLONE_LATENCY_MS (5:
#                the simulators' --latency-ms, a simulated network + planning time per request),
#                DREMIO_SIM_BIN (use this dremio-sim binary instead of building
#                <repo>/target/release/dremio-sim).
#
# What it does:
#   1. installs what the selected sections need, idempotently, with apt-get (only the missing
#      ones; `apt-get update` once first): GNU time; for ENCRYPTED age; for BACKUP, INCREMENTAL,
#      ENCRYPTED and RESTIC restic, zstd and tar, and the
#      Python venv (scripts/setup-venv.sh); for CLONE curl, python3 and diff. Then
#      `cargo build --release -p lifeboat [-p dremio-sim]` unless LIFEBOAT_BIN (and, for CLONE,
#      DREMIO_SIM_BIN) are set; the binaries are copied into BENCH_DIR, so a rebuild by someone
#      else during the run changes nothing.
#   BACKUP (--only backup):
#   2. generates tree A (--size-mib SIZE_MIB --small-files 50) and tree B (--size-mib 8
#      --small-files SMALL_FILES) with scripts/gen_fixture.py;
#   3. starts one SeaweedFS on 127.0.0.1 (scripts/seaweedfs.sh; stopped by the EXIT trap
#      whatever happens) and sources its env;
#   4. warms up without timing: reads each tree once through tar (into a pipe: GNU tar does not
#      even open the files when its archive is /dev/null itself), and writes and reads a
#      64 MiB object through S3, so that every tool sees the same warm page cache and server;
#   5. measures, each command in its own process under `/usr/bin/time -v` (pipelines as one
#      `bash -c '...'`), with `sync` before each and all at zstd level 3 on all cores:
#        backup A to a folder : lifeboat  vs  tar | zstd -T0 -3 > file
#        backup A to S3       : lifeboat  vs  tar | zstd -T0 -3 | aws s3 cp -  vs  restic backup
#        restore A from S3    : lifeboat  vs  aws s3 cp - | zstd -d | tar -x  vs  restic restore
#        verify A from S3     : lifeboat
#        tree B               : lifeboat backup to a folder (and tar|zstd for reference),
#                               lifeboat backup to S3 and restore from it
#      plus the bytes stored by each, and checks every restored tree against the source (diff -r,
#      not timed).
#   CLONE (--only clone):
#   6. seeds two stores with `dremio-sim seed` (admin / Passw0rd!): the primary with CLONE_OBJECTS
#      objects and a small primary with CLONE_OBJECTS/10, and serves each with a dremio-sim on a
#      free 127.0.0.1 port (--latency-ms CLONE_LATENCY_MS --threads 32, like every simulator
#      here; all of them are stopped by pid, at the latest by the EXIT trap);
#   7. measures under `/usr/bin/time -v`, as above, with a mapping file giving the new sources
#      their secrets:
#        clone export of the primary, --concurrency CLONE_CONCURRENCY and --concurrency 1 (one
#          request at a time, as dremio-cloner does) into two trees, which must be identical
#          (diff -r, not timed);
#        clone apply of that tree to a fresh secondary (first admin made through
#          /apiv2/bootstrap/firstuser), --concurrency CLONE_CONCURRENCY, and to another fresh one
#          with --concurrency 1; both must apply everything (exit 0; with 9 the failed items are
#          shown and the script fails);
#        a second apply to the first secondary, which must find everything unchanged (the hourly
#          CI/CD case);
#        memory growth: export and apply (concurrent, to a third fresh secondary) of the small
#          primary;
#      then (CHECK=1, not timed) exports both secondaries and compares them with the applied tree.
#   DRUID (--only druid):
#   7b. starts a druid-sim primary (basic auth, --latency-ms CLONE_LATENCY_MS) and seeds it with
#      DRUID_ARTEFACTS artefacts through its REST API (scripts/lib/druid_bench.py seed: rules,
#      lookups in two tiers, compaction, Kafka supervisors, users with roles; untimed), then
#      measures: clone export -c N and -c 1; clone apply of that tree to fresh secondaries, -c N
#      and -c 1; a second apply (must change nothing); and the peer, a hand-written sync script
#      (druid_bench.py handcopy: GET everything, POST everything, one request at a time) to a
#      fresh secondary, run twice. The writes each target recorded (audit rows + supervisor
#      versions, druid_bench.py writes) are counted after each second run.
#   8. prints a table per section and the ratios next to the targets, marked PASS or MISS, and
#      writes it (with the raw numbers) to the results file, whose path it prints.
#
# Exit status: 0 when every command ran (even with MISS lines: this is a measurement, not a
# test); non-zero when a command, an install step, a restore check or a clone check fails.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() { echo "bench.sh: $*" >&2; exit 1; }
note() { echo "bench.sh [+${SECONDS}s]: $*" >&2; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}

# ---------------------------------------------------------------------------------- settings
BENCH_ONLY="${BENCH_ONLY:-all}"
BENCH_DIR="${BENCH_DIR:-}"
SIZE_MIB="${SIZE_MIB:-1024}"
SMALL_FILES="${SMALL_FILES:-200000}"
RUNS="${RUNS:-1}"
KEEP="${KEEP:-0}"
RESULTS="${RESULTS:-}"
CHECK="${CHECK:-1}"
CLONE_OBJECTS="${CLONE_OBJECTS:-10000}"
CLONE_CONCURRENCY="${CLONE_CONCURRENCY:-16}"
CLONE_LATENCY_MS="${CLONE_LATENCY_MS:-5}"
CLONE_SIM_THREADS=32
DRUID_ARTEFACTS="${DRUID_ARTEFACTS:-1000}"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --only) [[ $# -ge 2 ]] || usage 2; BENCH_ONLY="$2"; shift 2 ;;
        --dir) [[ $# -ge 2 ]] || usage 2; BENCH_DIR="$2"; shift 2 ;;
        --size-mib) [[ $# -ge 2 ]] || usage 2; SIZE_MIB="$2"; shift 2 ;;
        --small-files) [[ $# -ge 2 ]] || usage 2; SMALL_FILES="$2"; shift 2 ;;
        --runs) [[ $# -ge 2 ]] || usage 2; RUNS="$2"; shift 2 ;;
        --results) [[ $# -ge 2 ]] || usage 2; RESULTS="$2"; shift 2 ;;
        --clone-objects) [[ $# -ge 2 ]] || usage 2; CLONE_OBJECTS="$2"; shift 2 ;;
        --clone-concurrency) [[ $# -ge 2 ]] || usage 2; CLONE_CONCURRENCY="$2"; shift 2 ;;
        --clone-latency-ms) [[ $# -ge 2 ]] || usage 2; CLONE_LATENCY_MS="$2"; shift 2 ;;
        --druid-artefacts) [[ $# -ge 2 ]] || usage 2; DRUID_ARTEFACTS="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --no-check) CHECK=0; shift ;;
        -h | --help) usage 0 ;;
        *) echo "bench.sh: unknown argument: $1" >&2; usage 2 ;;
    esac
done

DO_BACKUP=0; DO_CLONE=0; DO_DRUID=0; DO_INCR=0; DO_ENC=0; DO_RESTIC=0
IFS=, read -r -a only_groups <<<"$BENCH_ONLY"
[[ ${#only_groups[@]} -gt 0 ]] || die "--only / BENCH_ONLY is empty"
for g in "${only_groups[@]}"; do
    case "$g" in
        all) DO_BACKUP=1; DO_CLONE=1; DO_DRUID=1; DO_INCR=1; DO_ENC=1; DO_RESTIC=1 ;;
        backup) DO_BACKUP=1 ;;
        incremental) DO_INCR=1 ;;
        encrypted) DO_ENC=1 ;;
        restic) DO_RESTIC=1 ;;
        clone) DO_CLONE=1 ;;
        druid) DO_DRUID=1 ;;
        metadata | drill)
            [[ ${#only_groups[@]} -eq 1 ]] || die "--only $g runs alone (got '$BENCH_ONLY')" ;;
        *) die "--only / BENCH_ONLY must be backup, incremental, encrypted, restic, clone, druid, metadata, drill or all, or a comma-separated list of them (got '$BENCH_ONLY')" ;;
    esac
done
# The groups that back up tree A (and so need the venv, restic, zstd and tar).
DO_TREES=$((DO_BACKUP | DO_INCR | DO_ENC | DO_RESTIC))
[[ "$DRUID_ARTEFACTS" =~ ^[0-9]+$ && "$DRUID_ARTEFACTS" -ge 100 ]] \
    || die "DRUID_ARTEFACTS must be an integer >= 100 (got '$DRUID_ARTEFACTS')"
[[ "$SIZE_MIB" =~ ^[0-9]+$ && "$SIZE_MIB" -gt 0 ]] || die "SIZE_MIB must be a positive integer (got '$SIZE_MIB')"
[[ "$SMALL_FILES" =~ ^[0-9]+$ ]] || die "SMALL_FILES must be a non-negative integer (got '$SMALL_FILES')"
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -gt 0 ]] || die "RUNS must be a positive integer (got '$RUNS')"
[[ "$CLONE_OBJECTS" =~ ^[0-9]+$ && "$CLONE_OBJECTS" -ge 100 ]] \
    || die "CLONE_OBJECTS must be an integer >= 100 (got '$CLONE_OBJECTS')"
[[ "$CLONE_CONCURRENCY" =~ ^[0-9]+$ && "$CLONE_CONCURRENCY" -gt 0 ]] \
    || die "CLONE_CONCURRENCY must be a positive integer (got '$CLONE_CONCURRENCY')"
[[ "$CLONE_LATENCY_MS" =~ ^[0-9]+$ ]] || die "CLONE_LATENCY_MS must be a non-negative integer (got '$CLONE_LATENCY_MS')"
CLONE_OBJECTS_SMALL=$((CLONE_OBJECTS / 10))
DO_DRILL=0
[[ "$BENCH_ONLY" == drill ]] && DO_DRILL=1

VENV="${LIFEBOAT_VENV:-$REPO/.venv}"
export LIFEBOAT_VENV="$VENV"
[[ -n "$RESULTS" ]] || RESULTS="$REPO/target/bench/bench-$(date -u +%Y%m%dT%H%M%SZ).txt"
RESULTS="$(realpath -m "$RESULTS")"

BUCKET=lifeboat-test
ZSTD_LEVEL=3
# restic's password comes from a file made in BENCH_DIR (RESTIC_PASSWORD_FILE, set there), never argv.
unset RESTIC_PASSWORD RESTIC_PASSWORD_COMMAND
# Progress output off everywhere; lifeboat also reads LIFEBOAT_PROGRESS.
export LIFEBOAT_PROGRESS=none

# ---------------------------------------------------------------------------------- 1. tools
install_packages() {
    local missing=()
    [[ -x /usr/bin/time ]] || missing+=(time)
    if [[ $DO_ENC -eq 1 ]]; then
        { command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1; } || missing+=(age)
    fi
    if [[ $DO_TREES -eq 1 ]]; then
        command -v restic >/dev/null 2>&1 || missing+=(restic)
        command -v zstd >/dev/null 2>&1 || missing+=(zstd)
        command -v tar >/dev/null 2>&1 || missing+=(tar)
    fi
    if [[ $DO_CLONE -eq 1 || $DO_DRUID -eq 1 ]]; then
        command -v curl >/dev/null 2>&1 || missing+=(curl)
        command -v python3 >/dev/null 2>&1 || missing+=(python3)
        command -v diff >/dev/null 2>&1 || missing+=(diffutils)
    fi
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}, and not root and no sudo: install them"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them"
    note "installing ${missing[*]} with apt-get"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
}

install_packages
restic_version=
if [[ $DO_TREES -eq 1 ]]; then
    # restic only compresses (zstd) in repository format 2, which appeared in 0.14.
    restic_version="$(restic version | awk '{print $2}')"
    if ! printf '%s\n' "0.14.0" "$restic_version" | sort -V -C; then
        die "restic $restic_version is too old: 0.14 or newer is needed for a compressed repository"
    fi

    note "venv: $VENV"
    "$REPO/scripts/setup-venv.sh" "$VENV"
    PY="$VENV/bin/python"
    AWS="$VENV/bin/aws"
elif [[ $DO_DRILL -eq 1 ]]; then
    # The drill's store is a real RocksDB one (scripts/gen_fixture.py needs rocksdict).
    note "venv: $VENV"
    "$REPO/scripts/setup-venv.sh" "$VENV"
    PY="$VENV/bin/python"
else
    PY="$(command -v python3)"
fi

build=()
if [[ -n "${LIFEBOAT_BIN:-}" ]]; then
    [[ -x "$LIFEBOAT_BIN" ]] || die "LIFEBOAT_BIN=$LIFEBOAT_BIN is not executable"
    note "using $LIFEBOAT_BIN (no build)"
else
    build+=(-p lifeboat)
    LIFEBOAT_BIN="$REPO/target/release/lifeboat"
fi
if [[ $DO_CLONE -eq 1 || $DO_DRILL -eq 1 ]]; then
    if [[ -n "${DREMIO_SIM_BIN:-}" ]]; then
        [[ -x "$DREMIO_SIM_BIN" ]] || die "DREMIO_SIM_BIN=$DREMIO_SIM_BIN is not executable"
        note "using $DREMIO_SIM_BIN (no build)"
    else
        build+=(-p dremio-sim)
        DREMIO_SIM_BIN="$REPO/target/release/dremio-sim"
    fi
fi
if [[ $DO_DRUID -eq 1 ]]; then
    if [[ -n "${DRUID_SIM_BIN:-}" ]]; then
        [[ -x "$DRUID_SIM_BIN" ]] || die "DRUID_SIM_BIN=$DRUID_SIM_BIN is not executable"
        note "using $DRUID_SIM_BIN (no build)"
    else
        build+=(-p druid-sim)
        DRUID_SIM_BIN="$REPO/target/release/druid-sim"
    fi
fi
if [[ ${#build[@]} -gt 0 ]]; then
    command -v cargo >/dev/null 2>&1 || die "no cargo on PATH (install Rust: https://rustup.rs)"
    note "cargo build --release ${build[*]}"
    (cd "$REPO" && cargo build --release --quiet "${build[@]}")
fi

# origin REPO_BUILD GIVEN: where the binary GIVEN comes from, taken right after the build: "commit X
# [+ uncommitted changes]" (to the sources, not to scripts/ or docs) when GIVEN is REPO_BUILD,
# else GIVEN itself.
origin() {
    local o="$2"
    if [[ "$2" == "$1" ]]; then
        o="commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
        if [[ -n "$(git -C "$REPO" status --porcelain --untracked-files=no -- \
            Cargo.toml Cargo.lock src tests/dremio-sim tests/druid-sim 2>/dev/null || true)" ]]; then
            o+=" + uncommitted changes"
        fi
    fi
    echo "$o"
}
LB_ORIGIN="$(origin "$REPO/target/release/lifeboat" "$LIFEBOAT_BIN")"
SIM_ORIGIN=
if [[ $DO_CLONE -eq 1 || $DO_DRILL -eq 1 ]]; then
    SIM_ORIGIN="$(origin "$REPO/target/release/dremio-sim" "$DREMIO_SIM_BIN")"
fi
DSIM_ORIGIN=
if [[ $DO_DRUID -eq 1 ]]; then
    DSIM_ORIGIN="$(origin "$REPO/target/release/druid-sim" "$DRUID_SIM_BIN")"
fi

# ---------------------------------------------------------------------------------- work dir
created_dir=0
if [[ -z "$BENCH_DIR" ]]; then
    BENCH_DIR="$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-bench.XXXXXX")"
    created_dir=1
elif [[ -e "$BENCH_DIR" ]]; then
    [[ -d "$BENCH_DIR" ]] || die "BENCH_DIR $BENCH_DIR is not a directory"
    [[ -z "$(ls -A "$BENCH_DIR")" ]] || die "BENCH_DIR $BENCH_DIR is not empty"
    BENCH_DIR="$(cd "$BENCH_DIR" && pwd)"
else
    mkdir -p "$BENCH_DIR"
    BENCH_DIR="$(cd "$BENCH_DIR" && pwd)"
    created_dir=1
fi

SW_STATE="$BENCH_DIR/seaweedfs"
sw_started=0
SIM_PIDS=()   # dremio-sim and druid-sim processes started by this script and not stopped yet

cleanup() {
    local rc=$? pid
    set +e
    for pid in ${SIM_PIDS[@]+"${SIM_PIDS[@]}"}; do
        sim_stop "$pid"
    done
    if [[ $sw_started -eq 1 ]]; then
        "$REPO/scripts/seaweedfs.sh" stop "$SW_STATE"
    fi
    if [[ "$KEEP" == 1 ]]; then
        note "kept $BENCH_DIR"
    elif [[ $created_dir -eq 1 ]]; then
        rm -rf "$BENCH_DIR"
    else
        find "$BENCH_DIR" -mindepth 1 -delete
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

LOGS="$BENCH_DIR/logs"
OUT="$BENCH_DIR/out"          # local backup folders and archives
RESTORES="$BENCH_DIR/restore"
mkdir -p "$LOGS" "$OUT" "$RESTORES" "$BENCH_DIR/bin"
MEAS="$BENCH_DIR/measurements.tsv"   # name run wall_s cpu_s maxrss_kib
STORED="$BENCH_DIR/stored.tsv"       # name run bytes
CLONED="$BENCH_DIR/clone.tsv"        # name run objects requests lifeboat_s lifeboat_objects_per_s counts
DWRITES="$BENCH_DIR/druid-writes.tsv" # name run writes refused
META="$BENCH_DIR/meta.tsv"           # key value
: >"$MEAS"
: >"$STORED"
: >"$CLONED"
: >"$DWRITES"
: >"$META"

cp "$LIFEBOAT_BIN" "$BENCH_DIR/bin/lifeboat"
LB="$BENCH_DIR/bin/lifeboat"
if [[ $DO_CLONE -eq 1 || $DO_DRILL -eq 1 ]]; then
    cp "$DREMIO_SIM_BIN" "$BENCH_DIR/bin/dremio-sim"
    SIM="$BENCH_DIR/bin/dremio-sim"
fi
if [[ $DO_DRUID -eq 1 ]]; then
    cp "$DRUID_SIM_BIN" "$BENCH_DIR/bin/druid-sim"
    DSIM="$BENCH_DIR/bin/druid-sim"
fi

meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }

# METADATA (--only metadata, not part of `all`): a Druid metadata store of METADATA_ROWS segment
# rows backed up and restored by lifeboat and by pg_dump / pg_restore (scripts/lib/metadata_bench.sh).
if [[ "$BENCH_ONLY" == metadata ]]; then
    mkdir -p "$(dirname "$RESULTS")"
    "$REPO/scripts/lib/metadata_bench.sh" "$LB" "$BENCH_DIR" "$RUNS" "$RESULTS"
    echo "results written to $RESULTS"
    exit 0
fi

# DRILL (--only drill, not part of `all`): the DR outcome figure (scripts/lib/drill_bench.sh).
if [[ $DO_DRILL -eq 1 ]]; then
    mkdir -p "$(dirname "$RESULTS")"
    printf 'lifeboat: %s; dremio-sim: %s\n' "$LB_ORIGIN" "$SIM_ORIGIN" >"$RESULTS"
    SIZE_MIB="$SIZE_MIB" "$REPO/scripts/lib/drill_bench.sh" "$LB" "$SIM" "$PY" "$BENCH_DIR" "$RUNS" "$RESULTS"
    echo "results written to $RESULTS"
    exit 0
fi

# ---------------------------------------------------------------------------------- helpers
# jget FILE KEY: a top-level value of the JSON object in FILE.
jget() {
    "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# measure NAME RUN [--cd DIR] [--on-fail FN] CMD...: run CMD under /usr/bin/time -v in its own
# process (stdout and stderr to LOGS/NAME-RUN.{out,err}) and append wall clock, CPU and max RSS
# to MEAS. Any failure ends the script (after FN LOGS/NAME-RUN, if given, has shown details).
measure() {
    local name="$1" run="$2"
    shift 2
    local dir="." on_fail=""
    while [[ "$1" == --cd || "$1" == --on-fail ]]; do
        if [[ "$1" == --cd ]]; then
            dir="$2"
        else
            on_fail="$2"
        fi
        shift 2
    done
    local base="$LOGS/$name-$run"
    sync
    note "run $run: $name"
    if ! (cd "$dir" && exec /usr/bin/time -v -o "$base.time" "$@" >"$base.out" 2>"$base.err"); then
        echo "bench.sh: '$name' (run $run) failed: $*" >&2
        tail -n 30 "$base.err" >&2 || true
        grep -E 'exit|signal' "$base.time" >&2 || true
        if [[ -n "$on_fail" ]]; then
            "$on_fail" "$base" >&2 || true
        fi
        exit 1
    fi
    local vals
    vals="$(awk -F': ' '
        /Elapsed \(wall clock\) time/ {
            n = split($NF, p, ":")
            w = (n == 3) ? p[1] * 3600 + p[2] * 60 + p[3] : p[1] * 60 + p[2]
        }
        /User time \(seconds\)/ { u = $NF }
        /System time \(seconds\)/ { s = $NF }
        /Maximum resident set size \(kbytes\)/ { r = $NF }
        END {
            if (w == "" || r == "") exit 1
            printf "%.2f\t%.2f\t%d\n", w, u + s, r
        }' "$base.time")" || die "cannot parse $base.time"
    printf '%s\t%s\t%s\n' "$name" "$run" "$vals" >>"$MEAS"
}

# ================================================================================== BACKUP
# stored NAME RUN BYTES
stored() {
    [[ "$3" =~ ^[0-9]+$ ]] || die "$1 (run $2): could not read the stored bytes (got '$3')"
    printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$STORED"
}

# s3_total PREFIX: bytes stored under s3://BUCKET/PREFIX/.
s3_total() {
    "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" s3 ls --recursive --summarize "s3://$BUCKET/$1/" \
        | awk '/Total Size:/ {print $3}'
}

# check_restore SRC_PATHS_LOCAL RESTORED_ROOT WHAT: the three restored folders must equal the
# source (names, contents, symlinks, empty folders). Not timed.
check_restore() {
    [[ "$CHECK" == 1 ]] || return 0
    local src="$1" dst="$2" what="$3" d
    for d in db pdfs/uploads/_uploads security; do
        if ! diff -r -q --no-dereference "$src/$d" "$dst/$d" >"$LOGS/check.diff" 2>&1; then
            head -n 20 "$LOGS/check.diff" >&2
            die "$what: restored $d differs from the source"
        fi
    done
}

PARTS=(db pdfs/uploads/_uploads security)

# The peers, as scripts run by `bash -c` under /usr/bin/time (arguments: $1, $2, ...).
# shellcheck disable=SC2016
TAR_ZSTD_FILE='set -euo pipefail
tar -C "$1" -cf - db pdfs/uploads/_uploads security | zstd -T0 -'"$ZSTD_LEVEL"' -q -c >"$2"'
# shellcheck disable=SC2016
TAR_ZSTD_AWS='set -euo pipefail
tar -C "$1" -cf - db pdfs/uploads/_uploads security | zstd -T0 -'"$ZSTD_LEVEL"' -q -c \
    | "$3" --endpoint-url "$AWS_ENDPOINT_URL" --only-show-errors s3 cp - "$2"'
# shellcheck disable=SC2016
AWS_ZSTD_TAR='set -euo pipefail
mkdir "$3"
"$2" --endpoint-url "$AWS_ENDPOINT_URL" --only-show-errors s3 cp "$1" - | zstd -d -q -c | tar -x -C "$3"'

# Tree A (every backup group), tree B (BACKUP only), SeaweedFS (BACKUP and RESTIC), warm-up.
trees_setup() {
    # ------------------------------------------------------------------------------ 2. trees
    gen_tree() {
        local name="$1" size="$2" small="$3"
        note "generating tree $name (--size-mib $size --small-files $small)"
        "$PY" "$REPO/scripts/gen_fixture.py" --out "$BENCH_DIR/tree$name" \
            --size-mib "$size" --small-files "$small" >"$BENCH_DIR/tree$name.json"
    }
    TREES=(A)
    gen_tree A "$SIZE_MIB" 50
    A_HOME="$(jget "$BENCH_DIR/treeA.json" home)"
    A_DATA="$(jget "$BENCH_DIR/treeA.json" paths_local)"
    if [[ $DO_BACKUP -eq 1 ]]; then
        TREES+=(B)
        gen_tree B 8 "$SMALL_FILES"
        B_HOME="$(jget "$BENCH_DIR/treeB.json" home)"
        B_DATA="$(jget "$BENCH_DIR/treeB.json" paths_local)"
    fi
    for t in "${TREES[@]}"; do
        data="$(jget "$BENCH_DIR/tree$t.json" paths_local)"
        meta "tree${t}_bytes" "$(cd "$data" && du -sb --apparent-size "${PARTS[@]}" | awk '{s += $1} END {print s}')"
        meta "tree${t}_files" "$(cd "$data" && find "${PARTS[@]}" -type f | wc -l)"
    done

    # ------------------------------------------------------------------------------ 3. S3
    export RESTIC_CACHE_DIR="$BENCH_DIR/restic-cache"
    RESTIC_PASSWORD_FILE="$BENCH_DIR/restic-password"
    (umask 077 && echo "lifeboat-bench-not-a-secret" >"$RESTIC_PASSWORD_FILE")
    export RESTIC_PASSWORD_FILE
    # lifeboat's format-2 index cache stays inside BENCH_DIR too.
    export LIFEBOAT_CACHE_DIR="$BENCH_DIR/lifeboat-cache"
    if [[ $DO_BACKUP -eq 1 || $DO_RESTIC -eq 1 ]]; then
        note "starting SeaweedFS"
        sw_started=1
        "$REPO/scripts/seaweedfs.sh" start "$SW_STATE" >/dev/null
        # shellcheck disable=SC1091
        source "$SW_STATE/env"
        RESTIC_S3="s3:$AWS_ENDPOINT_URL/$BUCKET"
    fi

    # ------------------------------------------------------------------------------ 4. warm-up
    note "warm-up (not timed)"
    for t in "${TREES[@]}"; do
        data="$(jget "$BENCH_DIR/tree$t.json" paths_local)"
        # Into a pipe on purpose: with its archive on /dev/null GNU tar skips reading file data.
        tar -C "$data" -cf - "${PARTS[@]}" | cat >/dev/null
    done
    "$LB" --version >/dev/null
    restic version >/dev/null
    if [[ $sw_started -eq 1 ]]; then
        head -c $((64 << 20)) /dev/urandom \
            | "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" --only-show-errors s3 cp - "s3://$BUCKET/bench-warmup/blob"
        "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" --only-show-errors s3 cp "s3://$BUCKET/bench-warmup/blob" - >/dev/null
    fi
}

# ------------------------------------------------------------------------------ 5. runs
# lb_local_A RUN / tar_local_A RUN: backup A to a local folder, by lifeboat and by tar | zstd.
lb_local_A() {
        measure lb_backup_local_A "$1" \
            "$LB" --json --progress none backup --dremio-home "$A_HOME" --to "$OUT/lb-A-$1" --create-location --level "$ZSTD_LEVEL"
        stored lb_backup_local_A "$1" "$(jget "$LOGS/lb_backup_local_A-$1.out" stored_bytes)"
}
tar_local_A() {
        measure tar_zstd_local_A "$1" bash -c "$TAR_ZSTD_FILE" bash "$A_DATA" "$OUT/tar-A-$1.tar.zst"
        stored tar_zstd_local_A "$1" "$(stat -c %s "$OUT/tar-A-$1.tar.zst")"
}

# backup_run RUN: the BACKUP group's lines of one run.
backup_run() {
        local run="$1"
        # a. backup A to a local folder; the two in turn, first one then the other from run to
        # run, so that neither always runs on what the other left (dirty pages, a warmer cache)
        local pair=(lb_local_A tar_local_A)
        (( run % 2 == 0 )) && pair=(tar_local_A lb_local_A)
        "${pair[0]}" "$run"
        "${pair[1]}" "$run"

        # b. backup A to S3
        measure lb_backup_s3_A "$run" \
            "$LB" --json --progress none backup --dremio-home "$A_HOME" --to "s3://$BUCKET/bench-lb-$run" --level "$ZSTD_LEVEL"
        stored lb_backup_s3_A "$run" "$(s3_total "bench-lb-$run")"
        measure tar_zstd_aws_A "$run" \
            bash -c "$TAR_ZSTD_AWS" bash "$A_DATA" "s3://$BUCKET/bench-aws-$run/data.tar.zst" "$AWS"
        stored tar_zstd_aws_A "$run" "$(s3_total "bench-aws-$run")"
        restic -r "$RESTIC_S3/bench-restic-$run" init --repository-version 2 >"$LOGS/restic-init-$run.log" 2>&1 \
            || { cat "$LOGS/restic-init-$run.log" >&2; die "restic init failed"; }
        rm -rf "$RESTIC_CACHE_DIR"   # every restic command starts cold, as on a new host
        measure restic_backup_A "$run" --cd "$A_DATA" \
            restic -r "$RESTIC_S3/bench-restic-$run" --quiet backup --compression auto "${PARTS[@]}"
        stored restic_backup_A "$run" "$(s3_total "bench-restic-$run")"

        # c. restore A from S3 into fresh folders
        measure lb_restore_s3_A "$run" \
            "$LB" --json --progress none restore --from "s3://$BUCKET/bench-lb-$run" --backup latest \
            --dremio-home "$A_HOME" --paths-local "$RESTORES/lb-A-$run"
        check_restore "$A_DATA" "$RESTORES/lb-A-$run" "lifeboat restore"
        rm -rf "$RESTORES/lb-A-$run"
        measure aws_zstd_tar_A "$run" \
            bash -c "$AWS_ZSTD_TAR" bash "s3://$BUCKET/bench-aws-$run/data.tar.zst" "$AWS" "$RESTORES/aws-A-$run"
        check_restore "$A_DATA" "$RESTORES/aws-A-$run" "aws|zstd|tar restore"
        rm -rf "$RESTORES/aws-A-$run"
        rm -rf "$RESTIC_CACHE_DIR"
        measure restic_restore_A "$run" \
            restic -r "$RESTIC_S3/bench-restic-$run" --quiet restore latest --target "$RESTORES/restic-A-$run"
        # restic versions differ in whether the snapshot's absolute path is kept under --target.
        rroot="$RESTORES/restic-A-$run"
        [[ -d "$rroot/db" ]] || rroot="$rroot$A_DATA"
        check_restore "$A_DATA" "$rroot" "restic restore"
        rm -rf "$RESTORES/restic-A-$run"

        # e. verify A from S3
        measure lb_verify_s3_A "$run" \
            "$LB" --json --progress none verify --from "s3://$BUCKET/bench-lb-$run" --backup latest
        [[ "$(jget "$LOGS/lb_verify_s3_A-$run.out" ok)" == True ]] || die "lifeboat verify did not report ok"

        # d. tree B: memory must not grow with the number of files
        measure lb_backup_local_B "$run" \
            "$LB" --json --progress none backup --dremio-home "$B_HOME" --to "$OUT/lb-B-$run" --create-location --level "$ZSTD_LEVEL"
        stored lb_backup_local_B "$run" "$(jget "$LOGS/lb_backup_local_B-$run.out" stored_bytes)"
        measure tar_zstd_local_B "$run" bash -c "$TAR_ZSTD_FILE" bash "$B_DATA" "$OUT/tar-B-$run.tar.zst"
        stored tar_zstd_local_B "$run" "$(stat -c %s "$OUT/tar-B-$run.tar.zst")"
        measure lb_backup_s3_B "$run" \
            "$LB" --json --progress none backup --dremio-home "$B_HOME" --to "s3://$BUCKET/bench-lb-B-$run" --level "$ZSTD_LEVEL"
        stored lb_backup_s3_B "$run" "$(s3_total "bench-lb-B-$run")"
        measure lb_restore_s3_B "$run" \
            "$LB" --json --progress none restore --from "s3://$BUCKET/bench-lb-B-$run" --backup latest \
            --dremio-home "$B_HOME" --paths-local "$RESTORES/lb-B-$run"
        check_restore "$B_DATA" "$RESTORES/lb-B-$run" "lifeboat restore (tree B)"
        # Kept until the bench ends: on ext4 without a journal (as here), creating files within
        # minutes of deleting 200,000 scans the deleted inodes for every new one (tar -x of tree B
        # took 2.9 s on a fresh folder and 21.8 s right after an rm -rf of another copy).

        # the local archives are not needed any more
        rm -rf "$OUT/lb-A-$run" "$OUT/tar-A-$run.tar.zst" "$OUT/lb-B-$run" "$OUT/tar-B-$run.tar.zst"
}

# INCREMENTAL, ENCRYPTED and RESTIC: f2_series, f2_encrypted, restic_series.
# shellcheck source=SCRIPTDIR/lib/format2_bench.sh
source "$REPO/scripts/lib/format2_bench.sh"

# Each run alternates the tools line by line, so that all of them see the same drift of the host.
backup_section() {
    trees_setup
    for ((run = 1; run <= RUNS; run++)); do
        if [[ $DO_BACKUP -eq 1 ]]; then
            backup_run "$run"
        fi
        if [[ $DO_INCR -eq 1 || $DO_RESTIC -eq 1 ]]; then
            f2_series local "$run"
        fi
        if [[ $DO_RESTIC -eq 1 ]]; then
            restic_series local "$run"
            f2_series s3 "$run"
            restic_series s3 "$run"
        fi
        if [[ $DO_ENC -eq 1 ]]; then
            f2_encrypted "$run"
        fi
    done
}

# ================================================================================== CLONE
CL="$BENCH_DIR/clone"
CLONE_MAPPING="$CL/mapping.toml"
BOOTSTRAP_ADMIN='{"userName":"admin","firstName":"A","lastName":"D","email":"a@example.com","createdAt":0,"password":"Passw0rd!"}'

# Is this pid alive (a zombie is not)? Only asked about our own children, whose pids cannot be
# reused before we `wait` for them.
alive() {
    local st
    [[ -r "/proc/$1/status" ]] || return 1
    st="$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null || true)"
    [[ -n "$st" && "$st" != "Z" ]]
}

# A loopback port that is free now.
free_port() {
    "$PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# sim_start NAME PATHS_LOCAL: serve PATHS_LOCAL with a dremio-sim on a free loopback port and wait
# (bounded) for its "active" line; sets SIM_PID and SIM_URL. A start that fails because the port
# was taken meanwhile is retried twice with other ports. With PATHS_LOCAL `--druid`, a druid-sim
# (state in memory, basic auth with DRUID_ADMIN_FILE's password) instead.
sim_start() {
    local name="$1" dir="$2" attempt port log i prog=dremio-sim
    [[ "$dir" == --druid ]] && prog=druid-sim
    for attempt in 1 2 3; do
        port="$(free_port)"
        log="$LOGS/sim-$name.$attempt"
        if [[ $prog == druid-sim ]]; then
            "$DSIM" --port "$port" --latency-ms "$CLONE_LATENCY_MS" --auth basic \
                --admin-password-file "$DRUID_ADMIN_FILE" </dev/null >"$log.out" 2>"$log.err" &
        else
            "$SIM" --paths-local "$dir" --port "$port" --latency-ms "$CLONE_LATENCY_MS" \
                --threads "$CLONE_SIM_THREADS" </dev/null >"$log.out" 2>"$log.err" &
        fi
        SIM_PID=$!
        SIM_PIDS+=("$SIM_PID")
        for ((i = 0; i < 300; i++)); do
            if grep -qxF "$prog: active on 127.0.0.1:$port" "$log.out"; then
                SIM_URL="http://127.0.0.1:$port"
                note "$prog $name: pid $SIM_PID on $SIM_URL"
                return 0
            fi
            alive "$SIM_PID" || break
            sleep 0.1
        done
        if alive "$SIM_PID"; then
            tail -n 20 "$log.err" >&2 || true
            die "$prog $name (pid $SIM_PID) did not say it was active on port $port within 30 s"
        fi
        sim_stop "$SIM_PID"
        echo "bench.sh: $prog $name exited at start (port $port taken meanwhile?):" >&2
        tail -n 5 "$log.err" >&2 || true
    done
    die "$prog $name could not start (3 attempts); logs: $LOGS/sim-$name.*"
}

# sim_stop PID: stop a simulator this script started (SIGTERM, SIGKILL after 15 s), reap it and
# forget it.
sim_stop() {
    local pid="$1" i p rest=()
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            note "simulator pid $pid still alive after 15 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    for p in ${SIM_PIDS[@]+"${SIM_PIDS[@]}"}; do
        [[ "$p" == "$pid" ]] || rest+=("$p")
    done
    SIM_PIDS=(${rest[@]+"${rest[@]}"})
}

# sim_secondary NAME: a fresh, empty simulator with its first admin user; sets SIM_PID, SIM_URL.
sim_secondary() {
    local name="$1"
    mkdir -p "$CL/$name"
    sim_start "$name" "$CL/$name"
    curl -sS -f --max-time 30 -X PUT -H 'Authorization: _dremionull' -H 'Content-Type: application/json' \
        -d "$BOOTSTRAP_ADMIN" "$SIM_URL/apiv2/bootstrap/firstuser" >"$LOGS/firstuser-$name.json" \
        || die "could not create the first admin of $name ($SIM_URL)"
}

# clone_counts NAME RUN: from lifeboat's JSON report in LOGS/NAME-RUN.out, append to CLONED the
# objects it handled (export: the sum of its object counts; apply: of its summary), its requests
# (apply only), its own seconds and objects/s, and the counts themselves.
clone_counts() {
    "$PY" - "$LOGS/$1-$2.out" "$1" "$2" >>"$CLONED" <<'EOF' || die "cannot read lifeboat's report $LOGS/$1-$2.out"
import json, sys
path, name, run = sys.argv[1:4]
d = json.load(open(path))
counts = d["summary"] if "summary" in d else d["objects"]
print("\t".join(str(v) for v in [
    name, run, sum(counts.values()), d.get("requests", "-"), d["seconds"], d["objects_per_second"],
    " ".join(f"{k}={v}" for k, v in sorted(counts.items()))]))
EOF
}

# show_apply_failures BASE: the summary and the items that were not applied (failed, then
# skipped) of the apply report BASE.out.
show_apply_failures() {
    "$PY" - "$1.out" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    sys.exit(f"no JSON report in {sys.argv[1]}: {e}")
print("summary:", json.dumps(d.get("summary")))
bad = [i for i in d.get("items", []) if i.get("outcome") not in ("created", "updated", "unchanged", "deleted")]
# failed items first, then the skipped ones that are blocked themselves (not by another item)
bad.sort(key=lambda i: (i.get("outcome") != "failed", "blocked" not in i))
print(f"{len(bad)} item(s) not applied" + (" (the first 40):" if len(bad) > 40 else ":"))
for i in bad[:40]:
    print("  " + json.dumps(i))
for w in d.get("warnings", [])[:20]:
    print("warning:", json.dumps(w))
EOF
}

# clone_export NAME RUN URL TREE CONCURRENCY (timed)
clone_export() {
    local name="$1" run="$2" url="$3" tree="$4" conc="$5"
    measure "$name" "$run" \
        "$LB" --json --progress none clone export --dremio-url "$url" --out "$tree" --concurrency "$conc"
    clone_counts "$name" "$run"
}

# clone_apply NAME RUN TREE URL CONCURRENCY (timed): must apply everything (exit 0).
clone_apply() {
    local name="$1" run="$2" tree="$3" url="$4" conc="$5"
    measure "$name" "$run" --on-fail show_apply_failures \
        "$LB" --json --progress none clone apply --source "$tree" --dremio-url "$url" \
        --mapping "$CLONE_MAPPING" --concurrency "$conc"
    clone_counts "$name" "$run"
}

# same_tree A B WHAT: the two export trees must be identical (diff -r). Not timed.
same_tree() {
    if ! diff -r --no-dereference "$1" "$2" >"$LOGS/clone-check.diff" 2>&1; then
        head -n 60 "$LOGS/clone-check.diff" >&2
        die "$3: the trees differ ($(grep -c -e '^diff ' -e '^Only in ' "$LOGS/clone-check.diff") files; the first 60 lines of diff -r above)"
    fi
}

clone_section() {
    # Credentials of every simulator (the same admin everywhere); nothing else from the caller's
    # environment may choose another cluster or credential.
    unset LIFEBOAT_CONFIG LIFEBOAT_CLUSTER LIFEBOAT_DREMIO_URL LIFEBOAT_DREMIO_TOKEN \
        LIFEBOAT_DREMIO_TOKEN_FILE LIFEBOAT_DREMIO_PASSWORD_FILE LIFEBOAT_DREMIO_CA_FILE
    export LIFEBOAT_DREMIO_USER=admin LIFEBOAT_DREMIO_PASSWORD='Passw0rd!'
    export BENCH_LAKE_SECRET=bench-lake-secret-not-a-secret BENCH_PG_PASSWORD=bench-pg-not-a-secret
    mkdir -p "$CL"
    cat >"$CLONE_MAPPING" <<'EOF'
# The secrets that an export leaves out, for the sources that apply creates.
[secrets.lake]
accessSecret = { env = "BENCH_LAKE_SECRET" }
[secrets.pg]
password = { env = "BENCH_PG_PASSWORD" }
EOF

    # ------------------------------------------------------------------------------ 6. primaries
    local n="$CLONE_OBJECTS" small="$CLONE_OBJECTS_SMALL" c="$CLONE_CONCURRENCY"
    note "seeding the primaries: $n and $small objects"
    "$SIM" seed --paths-local "$CL/primary" --objects "$n" >"$LOGS/seed-primary.out" 2>&1 \
        || { cat "$LOGS/seed-primary.out" >&2; die "dremio-sim seed failed"; }
    "$SIM" seed --paths-local "$CL/primary-small" --objects "$small" >"$LOGS/seed-primary-small.out" 2>&1 \
        || { cat "$LOGS/seed-primary-small.out" >&2; die "dremio-sim seed failed"; }
    meta clone_seed "$(tail -n 1 "$LOGS/seed-primary.out")"
    meta clone_seed_small "$(tail -n 1 "$LOGS/seed-primary-small.out")"
    sim_start primary "$CL/primary"
    local primary_pid="$SIM_PID" primary_url="$SIM_URL"
    sim_start primary-small "$CL/primary-small"
    local small_pid="$SIM_PID" small_url="$SIM_URL"
    "$LB" --version >/dev/null

    # ------------------------------------------------------------------------------ 7. runs
    local sec1_pid sec1_url sec2_pid sec2_url
    for ((run = 1; run <= RUNS; run++)); do
        local tc="$CL/tree-c-$run" t1="$CL/tree-1-$run" ts="$CL/tree-small-$run"

        # a. export, concurrent and one request at a time: the same tree
        clone_export clone_export_c "$run" "$primary_url" "$tc" "$c"
        clone_export clone_export_1 "$run" "$primary_url" "$t1" 1
        same_tree "$tc" "$t1" "clone export --concurrency $c vs --concurrency 1"

        # b. apply to fresh secondaries, concurrent and one request at a time; then again
        sim_secondary "secondary-c-$run"
        sec1_pid="$SIM_PID" sec1_url="$SIM_URL"
        clone_apply clone_apply_c "$run" "$tc" "$sec1_url" "$c"
        sim_secondary "secondary-1-$run"
        sec2_pid="$SIM_PID" sec2_url="$SIM_URL"
        clone_apply clone_apply_1 "$run" "$tc" "$sec2_url" 1
        clone_apply clone_reapply_c "$run" "$tc" "$sec1_url" "$c"
        "$PY" - "$LOGS/clone_reapply_c-$run.out" <<'EOF' || die "the second apply changed something (it should find everything unchanged)"
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
changed = {k: v for k, v in s.items() if k != "unchanged" and v}
if changed:
    print("second apply, summary:", json.dumps(s), file=sys.stderr)
    sys.exit(1)
EOF

        # c. the secondaries now hold what the primary does: their exports equal the tree
        if [[ "$CHECK" == 1 ]]; then
            note "run $run: exporting both secondaries for a check (not timed)"
            "$LB" --json --progress none clone export --dremio-url "$sec1_url" --out "$CL/check-c-$run" \
                --concurrency "$c" >"$LOGS/check-export-c-$run.out" 2>"$LOGS/check-export-c-$run.err" \
                || { tail -n 20 "$LOGS/check-export-c-$run.err" >&2; die "exporting secondary-c-$run failed"; }
            same_tree "$tc" "$CL/check-c-$run" "primary's tree vs secondary-c-$run (applied --concurrency $c)"
            "$LB" --json --progress none clone export --dremio-url "$sec2_url" --out "$CL/check-1-$run" \
                --concurrency "$c" >"$LOGS/check-export-1-$run.out" 2>"$LOGS/check-export-1-$run.err" \
                || { tail -n 20 "$LOGS/check-export-1-$run.err" >&2; die "exporting secondary-1-$run failed"; }
            same_tree "$tc" "$CL/check-1-$run" "primary's tree vs secondary-1-$run (applied --concurrency 1)"
        fi
        sim_stop "$sec1_pid"
        sim_stop "$sec2_pid"

        # d. memory growth: the same with a tenth of the objects
        clone_export clone_export_small_c "$run" "$small_url" "$ts" "$c"
        sim_secondary "secondary-small-$run"
        clone_apply clone_apply_small_c "$run" "$ts" "$SIM_URL" "$c"
        sim_stop "$SIM_PID"

        rm -rf "$t1" "$ts" "$CL/check-c-$run" "$CL/check-1-$run"
    done
    sim_stop "$primary_pid"
    sim_stop "$small_pid"
    meta clone_objects "$n"
    meta clone_objects_small "$small"
    meta clone_concurrency "$c"
    meta clone_latency_ms "$CLONE_LATENCY_MS"
    meta clone_sim_threads "$CLONE_SIM_THREADS"
    meta clone_checked "$([[ "$CHECK" == 1 ]] && echo yes || echo no)"
}

# ================================================================================== DRUID
DR="$BENCH_DIR/druid"
DRUID_ADMIN_FILE="$DR/admin-password"
DRUID_PY="$REPO/scripts/lib/druid_bench.py"

# druid_writes NAME RUN URL [REFUSED]: append to DWRITES the writes URL's cluster has recorded.
druid_writes() {
    local n
    n="$("$PY" "$DRUID_PY" writes "$3" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["total"])')" \
        || die "cannot count the writes of $3"
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$n" "${4:--}" >>"$DWRITES"
}

# druid_apply NAME RUN TREE URL CONCURRENCY (timed): must apply everything (exit 0).
druid_apply() {
    local name="$1" run="$2" tree="$3" url="$4" conc="$5"
    measure "$name" "$run" --on-fail show_apply_failures \
        "$LB" --json --progress none clone apply --source "$tree" --druid-url "$url" \
        --mapping "$DR/mapping.toml" --concurrency "$conc"
    clone_counts "$name" "$run"
}

# druid_unchanged REPORT WHAT: the plan or apply report must find nothing to do.
druid_unchanged() {
    "$PY" - "$1" "$2" <<'EOF' || die "$2 changed something (it should find everything unchanged)"
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
changed = {k: v for k, v in s.items() if k != "unchanged" and v}
if changed:
    print(sys.argv[2] + ", summary:", json.dumps(s), file=sys.stderr)
    sys.exit(1)
EOF
}

druid_section() {
    unset LIFEBOAT_CONFIG LIFEBOAT_CLUSTER LIFEBOAT_DRUID_PASSWORD_FILE
    export LIFEBOAT_DRUID_USER=admin LIFEBOAT_DRUID_PASSWORD='bench-druid-admin-not-a-secret'
    export BENCH_DRUID_PASSWORD="$LIFEBOAT_DRUID_PASSWORD"
    export BENCH_DRUID_USER_PASSWORD='bench-druid-user-not-a-secret'
    mkdir -p "$DR"
    (umask 077 && printf '%s\n' "$LIFEBOAT_DRUID_PASSWORD" >"$DRUID_ADMIN_FILE")
    local n="$DRUID_ARTEFACTS" c="$CLONE_CONCURRENCY" run users i
    sim_start druid-primary --druid
    local primary_pid="$SIM_PID" primary_url="$SIM_URL"
    note "seeding the Druid primary with about $n artefacts"
    "$PY" "$DRUID_PY" seed "$primary_url" "$n" >"$LOGS/druid-seed.out" 2>"$LOGS/druid-seed.err" \
        || { tail -n 20 "$LOGS/druid-seed.err" >&2; die "seeding the Druid primary failed"; }
    meta druid_seed "$(cat "$LOGS/druid-seed.out")"
    users="$(jget "$LOGS/druid-seed.out" users)"
    {
        echo "# The passwords of the seeded users, which Druid never gives back."
        echo "[passwords]"
        for ((i = 0; i < users; i++)); do
            printf 'analyst_%03d = { env = "BENCH_DRUID_USER_PASSWORD" }\n' "$i"
        done
    } >"$DR/mapping.toml"

    local s1 s1_url s2 s2_url h h_url k
    for ((run = 1; run <= RUNS; run++)); do
        local tc="$DR/tree-c-$run" t1="$DR/tree-1-$run"
        measure druid_export_c "$run" "$LB" --json --progress none clone export \
            --druid-url "$primary_url" --out "$tc" --concurrency "$c"
        clone_counts druid_export_c "$run"
        measure druid_export_1 "$run" "$LB" --json --progress none clone export \
            --druid-url "$primary_url" --out "$t1" --concurrency 1
        clone_counts druid_export_1 "$run"
        same_tree "$tc" "$t1" "druid clone export --concurrency $c vs --concurrency 1"

        sim_start "druid-secondary-c-$run" --druid
        s1="$SIM_PID" s1_url="$SIM_URL"
        druid_apply druid_apply_c "$run" "$tc" "$s1_url" "$c"
        sim_start "druid-secondary-1-$run" --druid
        s2="$SIM_PID" s2_url="$SIM_URL"
        druid_apply druid_apply_1 "$run" "$tc" "$s2_url" 1
        druid_writes druid_apply_c "$run" "$s1_url"
        druid_apply druid_reapply_c "$run" "$tc" "$s1_url" "$c"
        druid_unchanged "$LOGS/druid_reapply_c-$run.out" "the second Druid apply"
        druid_writes druid_reapply_c "$run" "$s1_url"

        sim_start "druid-handcopy-$run" --druid
        h="$SIM_PID" h_url="$SIM_URL"
        measure druid_handcopy "$run" "$PY" "$DRUID_PY" handcopy "$primary_url" "$h_url"
        druid_writes druid_handcopy "$run" "$h_url" "$(jget "$LOGS/druid_handcopy-$run.out" refused)"
        measure druid_handcopy_again "$run" "$PY" "$DRUID_PY" handcopy "$primary_url" "$h_url"
        druid_writes druid_handcopy_again "$run" "$h_url" "$(jget "$LOGS/druid_handcopy_again-$run.out" refused)"

        if [[ "$CHECK" == 1 ]]; then
            note "run $run: planning the Druid secondaries against the tree (not timed)"
            for k in c 1; do
                local url="$s1_url"
                [[ $k == 1 ]] && url="$s2_url"
                "$LB" --json --progress none clone plan --source "$tc" --druid-url "$url" \
                    --mapping "$DR/mapping.toml" >"$LOGS/druid-check-$k-$run.out" \
                    2>"$LOGS/druid-check-$k-$run.err" \
                    || { tail -n 20 "$LOGS/druid-check-$k-$run.err" >&2; die "planning against a Druid secondary failed"; }
                druid_unchanged "$LOGS/druid-check-$k-$run.out" "the plan against druid-secondary-$k-$run"
            done
        fi
        sim_stop "$s1"
        sim_stop "$s2"
        sim_stop "$h"
        rm -rf "$t1"
    done
    sim_stop "$primary_pid"
    meta druid_artefacts "$n"
    meta druid_concurrency "$c"
    meta druid_latency_ms "$CLONE_LATENCY_MS"
    meta druid_checked "$([[ "$CHECK" == 1 ]] && echo yes || echo no)"
}

# ================================================================================== run
if [[ $DO_TREES -eq 1 ]]; then
    backup_section
fi
if [[ $DO_CLONE -eq 1 ]]; then
    clone_section
fi
if [[ $DO_DRUID -eq 1 ]]; then
    druid_section
fi

# ---------------------------------------------------------------------------------- 8. report
meta only "$BENCH_ONLY"
meta runs "$RUNS"
meta host "$(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)"
meta cpu "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
meta lifeboat "$("$LB" --version) ($LB_ORIGIN)"
meta do_backup "$DO_BACKUP"
if [[ $DO_TREES -eq 1 ]]; then
    meta size_mib "$SIZE_MIB"
    meta small_files "$SMALL_FILES"
    meta restores_checked "$([[ "$CHECK" == 1 ]] && echo yes || echo no)"
    meta tools "$(tar --version | head -n 1); zstd $(zstd --version | grep -o 'v[0-9.]*' | head -n 1); restic $restic_version; $("$AWS" --version 2>&1 | awk '{print $1, $2}'); weed $("$VENV/bin/weed" version 2>/dev/null | grep -o '[0-9]\+\.[0-9]\+' | head -n 1)"
fi
if [[ $DO_CLONE -eq 1 ]]; then
    meta dremio_sim "$SIM_ORIGIN"
fi
if [[ $DO_DRUID -eq 1 ]]; then
    meta druid_sim "$DSIM_ORIGIN"
fi

mkdir -p "$(dirname "$RESULTS")"
"$PY" - "$MEAS" "$STORED" "$CLONED" "$META" "$RESULTS" "$DWRITES" <<'EOF'
import statistics, sys

meas_path, stored_path, cloned_path, meta_path, results_path, dwrites_path = sys.argv[1:7]


def rows(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


meta = {k: v for k, v in rows(meta_path)}
wall, cpu, rss, stored, objs = {}, {}, {}, {}, {}
for name, _run, w, c, r in rows(meas_path):
    wall.setdefault(name, []).append(float(w))
    cpu.setdefault(name, []).append(float(c))
    rss.setdefault(name, []).append(int(r) / 1024.0)  # KiB -> MiB
for name, _run, b in rows(stored_path):
    stored.setdefault(name, []).append(int(b))
for name, _run, n, req, _s, _ops, _counts in rows(cloned_path):
    objs.setdefault(name, []).append((int(n), None if req == "-" else int(req)))

med = statistics.median
W = {k: med(v) for k, v in wall.items()}
C = {k: med(v) for k, v in cpu.items()}
R = {k: med(v) for k, v in rss.items()}
S = {k: med(v) for k, v in stored.items()}
N = {k: med(n for n, _ in v) for k, v in objs.items()}
Q = {k: med(q for _, q in v) for k, v in objs.items() if all(q is not None for _, q in v)}
MIB = 1 << 20
has_trees = "treeA_bytes" in meta
has_backup = meta.get("do_backup") == "1"
has_clone = "clone_objects" in meta
has_druid = "druid_artefacts" in meta
DW = {}
for name, _run, n, refused in rows(dwrites_path):
    DW.setdefault(name, []).append((int(n), None if refused == "-" else int(refused)))
DWN = {k: med(n for n, _ in v) for k, v in DW.items()}
DWR = {k: med(r for _, r in v) for k, v in DW.items() if all(r is not None for _, r in v)}

out = []
p = out.append
p("lifeboat benchmark")
p(f"  host      {meta['host']}; {meta['cpu']}")
p(f"  lifeboat  {meta['lifeboat']}")
if has_trees:
    ta = int(meta["treeA_bytes"])
    p(f"  tools     {meta['tools']}")
    p(f"  tree A    {ta / MIB:.1f} MiB in {meta['treeA_files']} files (SIZE_MIB={meta['size_mib']}, 50 small files)")
    if "treeB_bytes" in meta:
        tb = int(meta["treeB_bytes"])
        p(f"  tree B    {tb / MIB:.1f} MiB in {meta['treeB_files']} files (8 MiB + SMALL_FILES={meta['small_files']})")
if has_clone:
    cn, cs, cc = int(meta["clone_objects"]), int(meta["clone_objects_small"]), int(meta["clone_concurrency"])
    p(f"  clone     between Dremio simulators (dremio-sim, {meta['dremio_sim']}) on 127.0.0.1, each with")
    p(f"            --latency-ms {meta['clone_latency_ms']} (SIMULATED network + planning time per request) --threads {meta['clone_sim_threads']}")
    for label, key in [("primary", "clone_seed"), ("small", "clone_seed_small")]:
        seed = meta[key].removeprefix("dremio-sim: ").split("; admin user")[0]
        p(f"  {label:<9} {seed}")
if has_druid:
    p(f"  druid     between Druid simulators (druid-sim, {meta['druid_sim']}) on 127.0.0.1, basic auth, each")
    p(f"            with --latency-ms {meta['druid_latency_ms']} (SIMULATED network time per request)")
    p(f"  seeded    {meta['druid_seed']}")
runs = int(meta["runs"])
checked = []
if has_trees:
    checked.append(f"restored trees compared with the source: {meta['restores_checked']}")
if has_clone:
    checked.append("clone exports compared (--concurrency 1 vs N): yes; "
                   f"secondaries exported and compared with the applied tree: {meta['clone_checked']}")
if has_druid:
    checked.append(f"Druid secondaries planned against the tree (nothing to do): {meta['druid_checked']}")
p(f"  runs      {runs}" + (" (each line: the median)" if runs > 1 else "") + "; " + "; ".join(checked))
p("")

LINES = [
    ("lb_backup_local_A", "backup A -> folder", "lifeboat backup"),
    ("tar_zstd_local_A", "backup A -> folder", "tar | zstd -T0 -3 > file"),
    ("lb_backup_s3_A", "backup A -> S3", "lifeboat backup"),
    ("tar_zstd_aws_A", "backup A -> S3", "tar | zstd -T0 -3 | aws s3 cp -"),
    ("restic_backup_A", "backup A -> S3", "restic backup"),
    ("lb_restore_s3_A", "restore A <- S3", "lifeboat restore"),
    ("aws_zstd_tar_A", "restore A <- S3", "aws s3 cp - | zstd -d | tar -x"),
    ("restic_restore_A", "restore A <- S3", "restic restore"),
    ("lb_verify_s3_A", "verify A <- S3", "lifeboat verify"),
    ("lb_backup_local_B", "backup B -> folder", "lifeboat backup"),
    ("tar_zstd_local_B", "backup B -> folder", "tar | zstd -T0 -3 > file"),
    ("lb_backup_s3_B", "backup B -> S3", "lifeboat backup"),
    ("lb_restore_s3_B", "restore B <- S3", "lifeboat restore"),
    # INCREMENTAL, ENCRYPTED, RESTIC (A' = tree A after the simulated compaction)
    ("lb_f2_full_local_A", "f2 full A -> folder", "lifeboat backup --format 2"),
    ("lb_f2_enc_local_A", "f2 full A -> folder", "lifeboat --format 2, 2 recipients"),
    ("restic_init_local", "init folder repo", "restic init"),
    ("restic_full_local_A", "f2 full A -> folder", "restic backup"),
    ("lb_f2_incr_local_A", "hourly A' -> folder", "lifeboat backup --format 2"),
    ("restic_incr_local_A", "hourly A' -> folder", "restic backup"),
    ("lb_f2_restore_local_A", "restore A' <- folder", "lifeboat restore (format 2)"),
    ("restic_restore_local_A", "restore A' <- folder", "restic restore"),
    ("lb_f2_enc_restore_local_A", "restore A <- folder", "lifeboat restore (encrypted)"),
    ("lb_f2_full_s3_A", "f2 full A -> S3", "lifeboat backup --format 2"),
    ("restic_init_s3", "init S3 repo", "restic init"),
    ("restic_full_s3_A", "f2 full A -> S3", "restic backup"),
    ("lb_f2_incr_s3_A", "hourly A' -> S3", "lifeboat backup --format 2"),
    ("restic_incr_s3_A", "hourly A' -> S3", "restic backup"),
    ("lb_f2_restore_s3_A", "restore A' <- S3", "lifeboat restore (format 2)"),
    ("restic_restore_s3_A", "restore A' <- S3", "restic restore"),
]
if has_trees:
    hdr = f"{'operation':<20} {'tool':<34} {'wall s':>8} {'CPU s':>8} {'max RSS MiB':>12} {'stored MiB':>11}"
    p(hdr)
    p("-" * len(hdr))
    for key, op, tool in LINES:
        if key not in W:
            continue
        st = f"{S[key] / MIB:11.2f}" if key in S else f"{'':>11}"
        p(f"{op:<20} {tool:<34} {W[key]:8.2f} {C[key]:8.2f} {R[key]:12.1f} {st}")
    p("")

if has_clone:
    CLINES = [
        ("clone_export_c", "export primary", f"lifeboat clone export -c {cc}"),
        ("clone_export_1", "export primary", "lifeboat clone export -c 1"),
        ("clone_apply_c", "apply -> fresh secondary", f"lifeboat clone apply -c {cc}"),
        ("clone_apply_1", "apply -> fresh secondary", "lifeboat clone apply -c 1"),
        ("clone_reapply_c", "apply again (unchanged)", f"lifeboat clone apply -c {cc}"),
        ("clone_export_small_c", "export small primary", f"lifeboat clone export -c {cc}"),
        ("clone_apply_small_c", "apply small -> fresh", f"lifeboat clone apply -c {cc}"),
    ]
    hdr = (f"{'clone operation':<25} {'tool':<31} {'objects':>8} {'requests':>9} {'wall s':>8} {'CPU s':>8}"
           f" {'max RSS MiB':>12} {'objects/s':>10}")
    p(hdr)
    p("-" * len(hdr))
    for key, op, tool in CLINES:
        if key not in W:
            continue
        req = f"{Q[key]:9.0f}" if key in Q else f"{'-':>9}"
        ops = N[key] / W[key] if W[key] > 0 else float("inf")
        p(f"{op:<25} {tool:<31} {N[key]:8.0f} {req} {W[key]:8.2f} {C[key]:8.2f} {R[key]:12.1f} {ops:10.0f}")
    p("")

if has_druid:
    dc = int(meta["druid_concurrency"])
    DLINES = [
        ("druid_export_c", "export primary", f"lifeboat clone export -c {dc}"),
        ("druid_export_1", "export primary", "lifeboat clone export -c 1"),
        ("druid_apply_c", "apply -> fresh secondary", f"lifeboat clone apply -c {dc}"),
        ("druid_apply_1", "apply -> fresh secondary", "lifeboat clone apply -c 1"),
        ("druid_reapply_c", "apply again (unchanged)", f"lifeboat clone apply -c {dc}"),
        ("druid_handcopy", "copy -> fresh secondary", "hand-written sync script"),
        ("druid_handcopy_again", "copy again (unchanged)", "hand-written sync script"),
    ]
    hdr = (f"{'druid operation':<25} {'tool':<31} {'objects':>8} {'wall s':>8} {'CPU s':>8}"
           f" {'max RSS MiB':>12} {'writes':>7} {'refused':>8}")
    p(hdr)
    p("-" * len(hdr))
    for key, op, tool in DLINES:
        if key not in W:
            continue
        nobj = f"{N[key]:8.0f}" if key in N else f"{'-':>8}"
        wr = f"{DWN[key]:7.0f}" if key in DWN else f"{'':>7}"
        rf = f"{DWR[key]:8.0f}" if key in DWR else f"{'':>8}"
        p(f"{op:<25} {tool:<31} {nobj} {W[key]:8.2f} {C[key]:8.2f} {R[key]:12.1f} {wr} {rf}")
    p("  writes: audit rows + supervisor versions the target holds after the line (cumulative per target)")
    p("")

results = []


def ratio(a, b):
    return a / b if b > 0 else float("inf")


def check(label, value, target_txt, ok, unit="x"):
    mark = "-" if ok is None else ("PASS" if ok else "MISS")
    v = f"{value:.2f}{unit}" if unit == "x" else f"{value:.1f} {unit}"
    results.append((label, v, target_txt, mark))


def time_cmp(label, lb, peer, limit):
    r = ratio(W[lb], W[peer])
    check(label, r, f"<= {limit:.2f}x" if limit else "(info)", (r <= limit) if limit else None)


if has_backup:
    # The targets of repository format 2 (its issue): lifeboat hashes every file and object and
    # makes the restore durable (syncfs), which none of the pipelines does.
    time_cmp("backup A -> folder: lifeboat / tar|zstd", "lb_backup_local_A", "tar_zstd_local_A", 1.0)
    time_cmp("backup A -> S3: lifeboat / tar|zstd|aws", "lb_backup_s3_A", "tar_zstd_aws_A", 0.7)
    time_cmp("backup A -> S3: lifeboat / restic", "lb_backup_s3_A", "restic_backup_A", 0.5)
    time_cmp("restore A <- S3: lifeboat / aws|zstd|tar", "lb_restore_s3_A", "aws_zstd_tar_A", 0.6)
    time_cmp("restore A <- S3: lifeboat / restic", "lb_restore_s3_A", "restic_restore_A", None)
    time_cmp("backup B -> folder: lifeboat / tar|zstd", "lb_backup_local_B", "tar_zstd_local_B", None)

    for a, b, what in [("lb_backup_local_B", "lb_backup_local_A", "backup -> folder"),
                       ("lb_restore_s3_B", "lb_restore_s3_A", "restore <- S3")]:
        r = ratio(R[a], R[b])
        check(f"RSS tree B / tree A, lifeboat {what}", r, "0.90x .. 1.10x", abs(r - 1) <= 0.10)
    check("stored bytes A: lifeboat / tar|zstd (same zstd -3)",
          ratio(S["lb_backup_local_A"], S["tar_zstd_local_A"]), "~1.00x (info)", None)
    check("stored bytes A on S3: lifeboat / restic",
          ratio(S["lb_backup_s3_A"], S["restic_backup_A"]), "(info)", None)

if "lb_f2_incr_local_A" in W:
    full, incr = "lb_f2_full_local_A", "lb_f2_incr_local_A"
    check("hourly A' -> folder: time, % of the format-2 full", 100 * ratio(W[incr], W[full]), "<= 5 %",
          100 * ratio(W[incr], W[full]) <= 5, unit="%")
    check("hourly A' -> folder: stored bytes, % of the full", 100 * ratio(S[incr], S[full]), "<= 5 %",
          100 * ratio(S[incr], S[full]) <= 5, unit="%")
if "lb_f2_incr_s3_A" in W:
    full, incr = "lb_f2_full_s3_A", "lb_f2_incr_s3_A"
    check("hourly A' -> S3: time, % of the format-2 full", 100 * ratio(W[incr], W[full]), "<= 5 %",
          100 * ratio(W[incr], W[full]) <= 5, unit="%")
    check("hourly A' -> S3: stored bytes, % of the full", 100 * ratio(S[incr], S[full]), "<= 5 %",
          100 * ratio(S[incr], S[full]) <= 5, unit="%")
if "lb_f2_enc_local_A" in W:
    time_cmp("f2 full A -> folder: encrypted / unencrypted", "lb_f2_enc_local_A", "lb_f2_full_local_A", 1.1)
    check("stored bytes A: encrypted / unencrypted", ratio(S["lb_f2_enc_local_A"], S["lb_f2_full_local_A"]),
          "(info)", None)
    if "lb_f2_restore_local_A" in W:
        time_cmp("restore: encrypted A / plain A' (format 2)", "lb_f2_enc_restore_local_A",
                 "lb_f2_restore_local_A", None)
for where in ["local", "s3"]:
    label = "folder" if where == "local" else "S3"
    for what, lb, rs in [("f2 full A", "lb_f2_full", "restic_full"),
                         ("hourly A'", "lb_f2_incr", "restic_incr"),
                         ("restore A'", "lb_f2_restore", "restic_restore")]:
        lbk, rsk = f"{lb}_{where}_A", f"{rs}_{where}_A"
        if lbk in W and rsk in W:
            arrow = "<-" if what.startswith("restore") else "->"
            time_cmp(f"{what} {arrow} {label}: lifeboat / restic", lbk, rsk, 0.99)
    for what, lb, rs in [("full", "lb_f2_full", "restic_full"), ("hourly", "lb_f2_incr", "restic_incr")]:
        lbk, rsk = f"{lb}_{where}_A", f"{rs}_{where}_A"
        if lbk in S and rsk in S:
            check(f"stored bytes, {what} -> {label}: lifeboat / restic", ratio(S[lbk], S[rsk]), "(info)", None)

lb_keys = [k for k, _, _ in LINES if k.startswith("lb_") and k in R]
if lb_keys:
    peak_key = max(lb_keys, key=lambda k: R[k])
    check(f"peak RSS of lifeboat (max over its lines: {peak_key})", R[peak_key], "<= 128 MiB",
          R[peak_key] <= 128, unit="MiB")

if has_clone:
    for what, conc, seq in [("export", "clone_export_c", "clone_export_1"),
                            ("apply", "clone_apply_c", "clone_apply_1")]:
        check(f"clone {what} {cn}: objects/s, -c {cc}", ratio(N[conc], W[conc]), "(info)", None, unit="obj/s")
        r = ratio(W[seq], W[conc])
        check(f"clone {what} {cn}: speed-up, wall -c 1 / -c {cc}", r, ">= 10.00x", r >= 10)
    check(f"clone apply again (unchanged) {cn}: objects/s", ratio(N["clone_reapply_c"], W["clone_reapply_c"]),
          "(info)", None, unit="obj/s")
    for what, big, little in [("export", "clone_export_c", "clone_export_small_c"),
                              ("apply", "clone_apply_c", "clone_apply_small_c")]:
        r = ratio(R[big], R[little])
        check(f"clone {what}: RSS {cn} / {cs} objects ({R[big]:.1f} / {R[little]:.1f} MiB)", r, "<= 1.50x", r <= 1.5)

if has_druid:
    dn = int(meta["druid_artefacts"])
    # An export reads whole collections (all rules, all lookups, ...): a few requests, so its
    # concurrency hardly matters; an apply writes one object per request.
    r = ratio(W["druid_export_1"], W["druid_export_c"])
    check(f"druid export ~{dn}: speed-up, wall -c 1 / -c {dc}", r, "(info)", None)
    r = ratio(W["druid_apply_1"], W["druid_apply_c"])
    check(f"druid apply ~{dn}: speed-up, wall -c 1 / -c {dc}", r, ">= 5.00x", r >= 5)
    r = ratio(W["druid_apply_c"], W["druid_handcopy"])
    check(f"druid apply ~{dn}: lifeboat -c {dc} / hand-written script", r, "<= 0.50x", r <= 0.5)
    extra = DWN["druid_reapply_c"] - DWN["druid_apply_c"]
    check("druid apply again: writes made by lifeboat", extra, "0", extra == 0, unit="writes")
    extra = DWN["druid_handcopy_again"] - DWN["druid_handcopy"]
    check("druid copy again: writes made by the script", extra, "(info)", None, unit="writes")

w1 = max(len(r[0]) for r in results)
hdr2 = f"{'comparison':<{w1}} {'value':>12}  {'target':<15} result"
p(hdr2)
p("-" * len(hdr2))
for label, v, t, mark in results:
    p(f"{label:<{w1}} {v:>12}  {t:<15} {mark}")
misses = sum(1 for r in results if r[3] == "MISS")
p("")
p(f"{sum(1 for r in results if r[3] == 'PASS')} PASS, {misses} MISS (a MISS is a finding, not a failure)")
p("")
p("Notes:")
p("  * wall s: 'Elapsed (wall clock) time' of /usr/bin/time -v (10 ms resolution); CPU s: user + system.")
p("  * max RSS: 'Maximum resident set size' of /usr/bin/time -v, i.e. ru_maxrss from wait4().")
if has_trees:
    p("    A pipeline is timed as one `bash -c '...'`: Linux then reports the peak of the largest single")
    p("    process in the tree (the shell or a waited-for child), not the sum of tar + zstd + aws running")
    p("    at once, so for pipelines it is a lower bound of their real footprint.")
    p("  * page cache: not dropped (not reliably possible); each tree was read once untimed beforehand, and")
    p("    a 64 MiB object written and read through S3, so every tool starts with the same warm cache.")
    p("    `sync` runs (untimed) before every measurement. The restic cache is emptied before each restic")
    p("    command (a new host); restic compresses with --compression auto (zstd, its fast default level).")
    p("  * A' is tree A after a simulated RocksDB compaction: new SST files holding 2% of its SST bytes,")
    p("    the smallest SST deleted, MANIFEST and LOG appended to (scripts/lib/format2_bench.sh). For the")
    p("    hourly lines restic keeps its cache (the same host an hour later); 'stored' of an hourly line is")
    p("    what it added (lifeboat: its manifest's stored_bytes; restic: the repository's growth).")
    p("  * encrypted: age v1 (X25519) to two recipients; the restore uses one identity (--identity FILE).")
    p("  * S3: one local SeaweedFS on 127.0.0.1 (no network latency): S3 figures mostly measure CPU and")
    p("    local disk, not bandwidth. 'stored' on S3 is everything under the tool's prefix.")
if has_clone:
    p(f"  * clone: the latency is SIMULATED: every answer of dremio-sim waits {meta['clone_latency_ms']} ms (outside its lock)")
    p("    to model a real coordinator's network and planning time; the simulator handles requests one at")
    p("    a time under a lock, with up to --threads answers waiting at once. Real clusters differ.")
    p("  * clone -c 1 is lifeboat with --concurrency 1: one request at a time, which is how dremio-cloner")
    p("    works (dremio-cloner itself is not run). The speed-up is wall(-c 1) / wall(-c N).")
    p("  * clone objects: export: the sum of the object counts of lifeboat's report (users and")
    p("    reflections included); apply: the sum of its summary (wikis and tags included). objects/s =")
    p("    objects / wall s of the whole process (login, reading the target, ...); lifeboat's own")
    p("    'seconds' and 'objects_per_second' are in the raw numbers below. requests: apply's report.")
    p("  * clone secondaries are fresh simulators (first admin made through the bootstrap API, untimed);")
    p("    the mapping gives the new sources `lake` and `pg` their secrets from the environment.")

raw = ["", "Raw measurements (name, run, wall s, CPU s, max RSS KiB):"]
raw += ["  " + "\t".join(r) for r in rows(meas_path)]
if has_trees:
    raw += ["Stored bytes (name, run, bytes):"]
    raw += ["  " + "\t".join(r) for r in rows(stored_path)]
if has_druid:
    raw += ["Druid writes (name, run, writes held by the target, requests refused):"]
    raw += ["  " + "\t".join(r) for r in rows(dwrites_path)]
if has_clone or has_druid:
    raw += ["Clone reports (name, run, objects, requests, lifeboat seconds, lifeboat objects/s, counts):"]
    raw += ["  " + "\t".join(r) for r in rows(cloned_path)]

text = "\n".join(out) + "\n"
print(text, end="")
with open(results_path, "w") as f:
    f.write(text + "\n".join(raw) + "\n")
EOF
echo
echo "results written to $RESULTS"
