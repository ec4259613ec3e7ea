#!/usr/bin/env bash
# Benchmark lifeboat against the obvious alternatives on generated Dremio-like trees, in one run.
#
#   scripts/bench.sh [--dir DIR] [--size-mib N] [--small-files N] [--runs N] [--keep]
#                    [--results FILE] [--no-check]
#
# Environment (flags win): BENCH_DIR (default: a fresh mktemp dir under /tmp), SIZE_MIB (1024),
# SMALL_FILES (200000), RUNS (1; with more, every line is the median of the runs), KEEP=1 (keep
# BENCH_DIR at the end; else it is removed), RESULTS (default:
# <repo>/target/bench/bench-<UTC time>.txt), CHECK=0 (skip comparing restored trees with the
# source), LIFEBOAT_VENV (default <repo>/.venv), LIFEBOAT_BIN (benchmark this lifeboat binary
# instead of building <repo>/target/release/lifeboat; no cargo needed then).
#
# What it does:
#   1. installs what it needs, idempotently: restic, GNU time and zstd with apt-get (only the
#      missing ones; `apt-get update` once first), the Python venv (scripts/setup-venv.sh), and
#      `cargo build --release` unless LIFEBOAT_BIN is set (the binary is then copied into
#      BENCH_DIR, so a rebuild by someone else during the run changes nothing);
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
#      plus the bytes stored by each;
#   6. checks every restored tree against the source (diff -r, not timed), then prints a table
#      with the ratios lifeboat/peer next to the targets, marked PASS or MISS, and writes it
#      (with the raw numbers) to the results file, whose path it prints.
#
# Exit status: 0 when every command ran (even with MISS lines: this is a measurement, not a
# test); non-zero when a command, an install step or a restore check fails.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() { echo "bench.sh: $*" >&2; exit 1; }
note() { echo "bench.sh [+${SECONDS}s]: $*" >&2; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}

# ---------------------------------------------------------------------------------- settings
BENCH_DIR="${BENCH_DIR:-}"
SIZE_MIB="${SIZE_MIB:-1024}"
SMALL_FILES="${SMALL_FILES:-200000}"
RUNS="${RUNS:-1}"
KEEP="${KEEP:-0}"
RESULTS="${RESULTS:-}"
CHECK="${CHECK:-1}"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir) [[ $# -ge 2 ]] || usage 2; BENCH_DIR="$2"; shift 2 ;;
        --size-mib) [[ $# -ge 2 ]] || usage 2; SIZE_MIB="$2"; shift 2 ;;
        --small-files) [[ $# -ge 2 ]] || usage 2; SMALL_FILES="$2"; shift 2 ;;
        --runs) [[ $# -ge 2 ]] || usage 2; RUNS="$2"; shift 2 ;;
        --results) [[ $# -ge 2 ]] || usage 2; RESULTS="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --no-check) CHECK=0; shift ;;
        -h | --help) usage 0 ;;
        *) echo "bench.sh: unknown argument: $1" >&2; usage 2 ;;
    esac
done

[[ "$SIZE_MIB" =~ ^[0-9]+$ && "$SIZE_MIB" -gt 0 ]] || die "SIZE_MIB must be a positive integer (got '$SIZE_MIB')"
[[ "$SMALL_FILES" =~ ^[0-9]+$ ]] || die "SMALL_FILES must be a non-negative integer (got '$SMALL_FILES')"
[[ "$RUNS" =~ ^[0-9]+$ && "$RUNS" -gt 0 ]] || die "RUNS must be a positive integer (got '$RUNS')"

VENV="${LIFEBOAT_VENV:-$REPO/.venv}"
export LIFEBOAT_VENV="$VENV"
[[ -n "$RESULTS" ]] || RESULTS="$REPO/target/bench/bench-$(date -u +%Y%m%dT%H%M%SZ).txt"
RESULTS="$(realpath -m "$RESULTS")"

BUCKET=lifeboat-test
ZSTD_LEVEL=3
export RESTIC_PASSWORD="lifeboat-bench-not-a-secret"
# Progress output off everywhere; lifeboat also reads LIFEBOAT_PROGRESS.
export LIFEBOAT_PROGRESS=none

# ---------------------------------------------------------------------------------- 1. tools
install_packages() {
    local missing=()
    command -v restic >/dev/null 2>&1 || missing+=(restic)
    [[ -x /usr/bin/time ]] || missing+=(time)
    command -v zstd >/dev/null 2>&1 || missing+=(zstd)
    command -v tar >/dev/null 2>&1 || missing+=(tar)
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
# restic only compresses (zstd) in repository format 2, which appeared in 0.14.
restic_version="$(restic version | awk '{print $2}')"
if ! printf '%s\n' "0.14.0" "$restic_version" | sort -V -C; then
    die "restic $restic_version is too old: 0.14 or newer is needed for a compressed repository"
fi

note "venv: $VENV"
"$REPO/scripts/setup-venv.sh" "$VENV"
PY="$VENV/bin/python"
AWS="$VENV/bin/aws"

if [[ -n "${LIFEBOAT_BIN:-}" ]]; then
    [[ -x "$LIFEBOAT_BIN" ]] || die "LIFEBOAT_BIN=$LIFEBOAT_BIN is not executable"
    note "using $LIFEBOAT_BIN (no build)"
else
    command -v cargo >/dev/null 2>&1 || die "no cargo on PATH (install Rust: https://rustup.rs)"
    note "cargo build --release"
    (cd "$REPO" && cargo build --release --quiet)
    LIFEBOAT_BIN="$REPO/target/release/lifeboat"
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

cleanup() {
    local rc=$?
    set +e
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
META="$BENCH_DIR/meta.tsv"           # key value
: >"$MEAS"
: >"$STORED"
: >"$META"

cp "$LIFEBOAT_BIN" "$BENCH_DIR/bin/lifeboat"
LB="$BENCH_DIR/bin/lifeboat"

meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }

# ---------------------------------------------------------------------------------- helpers
# jget FILE KEY: a top-level value of the JSON object in FILE.
jget() {
    "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# measure NAME RUN [--cd DIR] CMD...: run CMD under /usr/bin/time -v in its own process (stdout
# and stderr to LOGS/NAME-RUN.{out,err}) and append wall clock, CPU and max RSS to MEAS.
# Any failure ends the script.
measure() {
    local name="$1" run="$2"
    shift 2
    local dir="."
    if [[ "$1" == --cd ]]; then
        dir="$2"
        shift 2
    fi
    local base="$LOGS/$name-$run"
    sync
    note "run $run: $name"
    if ! (cd "$dir" && exec /usr/bin/time -v -o "$base.time" "$@" >"$base.out" 2>"$base.err"); then
        echo "bench.sh: '$name' (run $run) failed: $*" >&2
        tail -n 30 "$base.err" >&2 || true
        grep -E 'exit|signal' "$base.time" >&2 || true
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

# ---------------------------------------------------------------------------------- 2. trees
gen_tree() {
    local name="$1" size="$2" small="$3"
    note "generating tree $name (--size-mib $size --small-files $small)"
    "$PY" "$REPO/scripts/gen_fixture.py" --out "$BENCH_DIR/tree$name" \
        --size-mib "$size" --small-files "$small" >"$BENCH_DIR/tree$name.json"
}
gen_tree A "$SIZE_MIB" 50
gen_tree B 8 "$SMALL_FILES"
A_HOME="$(jget "$BENCH_DIR/treeA.json" home)"
A_DATA="$(jget "$BENCH_DIR/treeA.json" paths_local)"
B_HOME="$(jget "$BENCH_DIR/treeB.json" home)"
B_DATA="$(jget "$BENCH_DIR/treeB.json" paths_local)"
for t in A B; do
    data="$(jget "$BENCH_DIR/tree$t.json" paths_local)"
    meta "tree${t}_bytes" "$(cd "$data" && du -sb --apparent-size "${PARTS[@]}" | awk '{s += $1} END {print s}')"
    meta "tree${t}_files" "$(cd "$data" && find "${PARTS[@]}" -type f | wc -l)"
done

# ---------------------------------------------------------------------------------- 3. S3
note "starting SeaweedFS"
sw_started=1
"$REPO/scripts/seaweedfs.sh" start "$SW_STATE" >/dev/null
# shellcheck disable=SC1091
source "$SW_STATE/env"
RESTIC_S3="s3:$AWS_ENDPOINT_URL/$BUCKET"
export RESTIC_CACHE_DIR="$BENCH_DIR/restic-cache"

# ---------------------------------------------------------------------------------- 4. warm-up
note "warm-up (not timed)"
for data in "$A_DATA" "$B_DATA"; do
    # Into a pipe on purpose: with its archive on /dev/null GNU tar skips reading file data.
    tar -C "$data" -cf - "${PARTS[@]}" | cat >/dev/null
done
"$LB" --version >/dev/null
restic version >/dev/null
head -c $((64 << 20)) /dev/urandom \
    | "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" --only-show-errors s3 cp - "s3://$BUCKET/bench-warmup/blob"
"$AWS" --endpoint-url "$AWS_ENDPOINT_URL" --only-show-errors s3 cp "s3://$BUCKET/bench-warmup/blob" - >/dev/null

# ---------------------------------------------------------------------------------- 5. runs
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

for ((run = 1; run <= RUNS; run++)); do
    # a. backup A to a local folder
    measure lb_backup_local_A "$run" \
        "$LB" --json --progress none backup --dremio-home "$A_HOME" --to "$OUT/lb-A-$run" --level "$ZSTD_LEVEL"
    stored lb_backup_local_A "$run" "$(jget "$LOGS/lb_backup_local_A-$run.out" stored_bytes)"
    measure tar_zstd_local_A "$run" bash -c "$TAR_ZSTD_FILE" bash "$A_DATA" "$OUT/tar-A-$run.tar.zst"
    stored tar_zstd_local_A "$run" "$(stat -c %s "$OUT/tar-A-$run.tar.zst")"

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
        "$LB" --json --progress none backup --dremio-home "$B_HOME" --to "$OUT/lb-B-$run" --level "$ZSTD_LEVEL"
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
    rm -rf "$RESTORES/lb-B-$run"

    # the local archives are not needed any more
    rm -rf "$OUT/lb-A-$run" "$OUT/tar-A-$run.tar.zst" "$OUT/lb-B-$run" "$OUT/tar-B-$run.tar.zst"
done

# ---------------------------------------------------------------------------------- 6. report
meta size_mib "$SIZE_MIB"
meta small_files "$SMALL_FILES"
meta runs "$RUNS"
meta restores_checked "$([[ "$CHECK" == 1 ]] && echo yes || echo no)"
meta host "$(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)"
meta cpu "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
lb_origin="$LIFEBOAT_BIN"
if [[ "$LIFEBOAT_BIN" == "$REPO/target/release/lifeboat" ]]; then
    lb_origin="commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
    if [[ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null || true)" ]]; then
        lb_origin+=" + uncommitted changes"
    fi
fi
meta lifeboat "$("$LB" --version) ($lb_origin)"
meta tools "$(tar --version | head -n 1); zstd $(zstd --version | grep -o 'v[0-9.]*' | head -n 1); restic $restic_version; $("$AWS" --version 2>&1 | awk '{print $1, $2}'); weed $("$VENV/bin/weed" version 2>/dev/null | grep -o '[0-9]\+\.[0-9]\+' | head -n 1)"

mkdir -p "$(dirname "$RESULTS")"
"$PY" - "$MEAS" "$STORED" "$META" "$RESULTS" <<'EOF'
import statistics, sys

meas_path, stored_path, meta_path, results_path = sys.argv[1:5]


def rows(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


meta = {k: v for k, v in rows(meta_path)}
wall, cpu, rss, stored = {}, {}, {}, {}
for name, _run, w, c, r in rows(meas_path):
    wall.setdefault(name, []).append(float(w))
    cpu.setdefault(name, []).append(float(c))
    rss.setdefault(name, []).append(int(r) / 1024.0)  # KiB -> MiB
for name, _run, b in rows(stored_path):
    stored.setdefault(name, []).append(int(b))

med = statistics.median
W = {k: med(v) for k, v in wall.items()}
C = {k: med(v) for k, v in cpu.items()}
R = {k: med(v) for k, v in rss.items()}
S = {k: med(v) for k, v in stored.items()}
MIB = 1 << 20

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
]

out = []
p = out.append
ta, tb = int(meta["treeA_bytes"]), int(meta["treeB_bytes"])
p("lifeboat benchmark")
p(f"  host      {meta['host']}; {meta['cpu']}")
p(f"  lifeboat  {meta['lifeboat']}")
p(f"  tools     {meta['tools']}")
p(f"  tree A    {ta / MIB:.1f} MiB in {meta['treeA_files']} files (SIZE_MIB={meta['size_mib']}, 50 small files)")
p(f"  tree B    {tb / MIB:.1f} MiB in {meta['treeB_files']} files (8 MiB + SMALL_FILES={meta['small_files']})")
runs = int(meta["runs"])
p(f"  runs      {runs}" + (" (each line: the median)" if runs > 1 else "")
  + f"; restored trees compared with the source: {meta['restores_checked']}")
p("")
hdr = f"{'operation':<20} {'tool':<34} {'wall s':>8} {'CPU s':>8} {'max RSS MiB':>12} {'stored MiB':>11}"
p(hdr)
p("-" * len(hdr))
for key, op, tool in LINES:
    if key not in W:
        continue
    st = f"{S[key] / MIB:11.2f}" if key in S else f"{'':>11}"
    p(f"{op:<20} {tool:<34} {W[key]:8.2f} {C[key]:8.2f} {R[key]:12.1f} {st}")
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


time_cmp("backup A -> folder: lifeboat / tar|zstd", "lb_backup_local_A", "tar_zstd_local_A", 1.1)
time_cmp("backup A -> S3: lifeboat / tar|zstd|aws", "lb_backup_s3_A", "tar_zstd_aws_A", 0.8)
time_cmp("backup A -> S3: lifeboat / restic", "lb_backup_s3_A", "restic_backup_A", 0.5)
time_cmp("restore A <- S3: lifeboat / aws|zstd|tar", "lb_restore_s3_A", "aws_zstd_tar_A", 1.0)
time_cmp("restore A <- S3: lifeboat / restic", "lb_restore_s3_A", "restic_restore_A", None)
time_cmp("backup B -> folder: lifeboat / tar|zstd", "lb_backup_local_B", "tar_zstd_local_B", None)

lb_keys = [k for k, _, _ in LINES if k.startswith("lb_") and k in R]
peak_key = max(lb_keys, key=lambda k: R[k])
check(f"peak RSS of lifeboat (max over its lines: {peak_key})", R[peak_key], "<= 128 MiB",
      R[peak_key] <= 128, unit="MiB")
for a, b, what in [("lb_backup_local_B", "lb_backup_local_A", "backup -> folder"),
                   ("lb_restore_s3_B", "lb_restore_s3_A", "restore <- S3")]:
    r = ratio(R[a], R[b])
    check(f"RSS tree B / tree A, lifeboat {what}", r, "0.90x .. 1.10x", abs(r - 1) <= 0.10)
check("stored bytes A: lifeboat / tar|zstd (same zstd -3)",
      ratio(S["lb_backup_local_A"], S["tar_zstd_local_A"]), "~1.00x (info)", None)
check("stored bytes A on S3: lifeboat / restic",
      ratio(S["lb_backup_s3_A"], S["restic_backup_A"]), "(info)", None)

w1 = max(len(r[0]) for r in results)
hdr2 = f"{'comparison':<{w1}} {'value':>10}  {'target':<15} result"
p(hdr2)
p("-" * len(hdr2))
for label, v, t, mark in results:
    p(f"{label:<{w1}} {v:>10}  {t:<15} {mark}")
misses = sum(1 for r in results if r[3] == "MISS")
p("")
p(f"{sum(1 for r in results if r[3] == 'PASS')} PASS, {misses} MISS (a MISS is a finding, not a failure)")
p("")
p("Notes:")
p("  * wall s: 'Elapsed (wall clock) time' of /usr/bin/time -v (10 ms resolution); CPU s: user + system.")
p("  * max RSS: 'Maximum resident set size' of /usr/bin/time -v, i.e. ru_maxrss from wait4(). A pipeline")
p("    is timed as one `bash -c '...'`: Linux then reports the peak of the largest single process in")
p("    the tree (the shell or a waited-for child), not the sum of tar + zstd + aws running at once, so")
p("    for pipelines it is a lower bound of their real footprint.")
p("  * page cache: not dropped (not reliably possible); each tree was read once untimed beforehand, and")
p("    a 64 MiB object written and read through S3, so every tool starts with the same warm cache.")
p("    `sync` runs (untimed) before every measurement. The restic cache is emptied before each restic")
p("    command (a new host); restic compresses with --compression auto (zstd, its fast default level).")
p("  * S3: one local SeaweedFS on 127.0.0.1 (no network latency): S3 figures mostly measure CPU and")
p("    local disk, not bandwidth. 'stored' on S3 is everything under the tool's prefix.")

raw = ["", "Raw measurements (name, run, wall s, CPU s, max RSS KiB):"]
raw += ["  " + "\t".join(r) for r in rows(meas_path)]
raw += ["Stored bytes (name, run, bytes):"]
raw += ["  " + "\t".join(r) for r in rows(stored_path)]

text = "\n".join(out) + "\n"
print(text, end="")
with open(results_path, "w") as f:
    f.write(text + "\n".join(raw) + "\n")
EOF
echo
echo "results written to $RESULTS"
