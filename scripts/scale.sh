#!/usr/bin/env bash
# The scale section: lifeboat on a big tree and on a tree of many files, anyone can run it.
#
#   scripts/scale.sh [--gib N] [--files N] [--dir DIR] [--format 1|2] [--keep] [--results FILE]
#                    [--only big|files|all]
#
#   --gib N      size of the big tree in GiB (default 20): 64 MiB SST files and 1 MiB blob files
#   --files N    number of files of the many-files tree (default 2000000; 0..4 KiB each)
#   --dir DIR    work folder (default: a fresh mktemp dir under ${TMPDIR:-/tmp}); everything the
#                script makes goes there and is removed at the end (unless --keep)
#   --format F   the repository format asked for (default 2); a binary that refuses --format
#                is run without it, and the report says which format it wrote
#   --only W     big, files or all (default)
#   --results F  the report is also written here (default <repo>/target/bench/scale-<UTC>.txt)
#   Try it small first: scripts/scale.sh --gib 1 --files 100000
#
# Environment: LIFEBOAT_BIN (run this binary; default: `cargo build --release` and
# <repo>/target/release/lifeboat, copied into DIR), LIFEBOAT_CACHE_DIR (default DIR/cache: the
# writer's index cache stays inside DIR).
#
# What it does, for each tree: generates it (scripts/lib/scale_tree.py, stdlib Python only, not
# timed), reads it once (warm page cache for every run), then under /usr/bin/time -v:
#   backup  --format F --paths-local TREE --dremio-version 25.2.0 --to DIR/repo-<tree>
#   restore --from DIR/repo-<tree> --paths-local DIR/restored-<tree>
# then compares the restored tree with the source (diff -r, not timed), and prints per step the
# wall time, CPU time, throughput (raw bytes / wall s, files / wall s) and peak RSS (the
# "Maximum resident set size" of /usr/bin/time -v). Before anything it checks the free space and
# inodes of DIR's filesystem and refuses when short (needed: the tree, its restored copy and the
# backup, with 10% to spare; the backup is counted at the tree's size, as for incompressible data).
#
# Exit status: 0 when every step ran and every restore matched; non-zero otherwise.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "scale.sh: $*" >&2; exit 1; }
note() { echo "scale.sh [+${SECONDS}s]: $*" >&2; }
usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}

GIB=20
FILES=2000000
DIR=
FORMAT=2
KEEP=0
ONLY=all
RESULTS=
while [[ $# -gt 0 ]]; do
    case "$1" in
        --gib) [[ $# -ge 2 ]] || usage 2; GIB="$2"; shift 2 ;;
        --files) [[ $# -ge 2 ]] || usage 2; FILES="$2"; shift 2 ;;
        --dir) [[ $# -ge 2 ]] || usage 2; DIR="$2"; shift 2 ;;
        --format) [[ $# -ge 2 ]] || usage 2; FORMAT="$2"; shift 2 ;;
        --only) [[ $# -ge 2 ]] || usage 2; ONLY="$2"; shift 2 ;;
        --results) [[ $# -ge 2 ]] || usage 2; RESULTS="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) usage 0 ;;
        *) echo "scale.sh: unknown argument: $1" >&2; usage 2 ;;
    esac
done
if ! [[ "$GIB" =~ ^[0-9]+(\.[0-9]+)?$ ]] || ! awk -v g="$GIB" 'BEGIN {exit !(g > 0)}'; then
    die "--gib must be a positive number (got '$GIB')"
fi
[[ "$FILES" =~ ^[0-9]+$ && "$FILES" -gt 0 ]] || die "--files must be a positive integer (got '$FILES')"
[[ "$FORMAT" == 1 || "$FORMAT" == 2 ]] || die "--format must be 1 or 2 (got '$FORMAT')"
case "$ONLY" in
    all) TREES=(big files) ;;
    big | files) TREES=("$ONLY") ;;
    *) die "--only must be big, files or all (got '$ONLY')" ;;
esac
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) is missing: apt-get install time"
command -v python3 >/dev/null 2>&1 || die "python3 is missing"
[[ -n "$RESULTS" ]] || RESULTS="$REPO/target/bench/scale-$(date -u +%Y%m%dT%H%M%SZ).txt"
RESULTS="$(realpath -m "$RESULTS")"

# ---------------------------------------------------------------------------------- space
KIB_PER_GIB=$((1024 * 1024))
# The big tree: GIB GiB. The files tree: at most 4 KiB of data per file, but a 4 KiB block each
# on disk plus the folders; 8 KiB per file covers both.
need_kib=0
need_inodes=0
for t in "${TREES[@]}"; do
    if [[ $t == big ]]; then
        tree_kib=$(awk -v g="$GIB" -v k="$KIB_PER_GIB" 'BEGIN {printf "%d", g * k + 16384}')
        tree_inodes=$(awk -v g="$GIB" 'BEGIN {printf "%d", g * 1024 * 0.12 + g * 16 + 1000}')
    else
        tree_kib=$((FILES * 8 + 16384))
        tree_inodes=$((FILES + FILES / 1000 + 1000))
    fi
    # tree + restored copy + backup (the backup of many files is a few bundles: few inodes).
    need_kib=$((need_kib + 3 * tree_kib))
    need_inodes=$((need_inodes + 2 * tree_inodes + 10000))
done
need_kib=$((need_kib + need_kib / 10))
need_inodes=$((need_inodes + need_inodes / 10))

created_dir=0
if [[ -z "$DIR" ]]; then
    DIR="$(mktemp -d "${TMPDIR:-/tmp}/lifeboat-scale-XXXXXX")"
    created_dir=1
else
    mkdir -p "$DIR"
    [[ -z "$(ls -A "$DIR")" ]] || die "--dir $DIR is not empty"
fi
DIR="$(realpath "$DIR")"
cleanup() {
    local rc=$?
    set +e
    if [[ $KEEP == 1 ]]; then
        note "kept $DIR"
    elif [[ $created_dir == 1 ]]; then
        rm -rf "$DIR"
    else
        find "$DIR" -mindepth 1 -delete
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

avail_kib=$(df -Pk "$DIR" | awk 'NR == 2 {print $4}')
avail_inodes=$(df -Pi "$DIR" | awk 'NR == 2 {print $4}')
if [[ "$avail_kib" -lt "$need_kib" ]]; then
    die "$DIR has $((avail_kib / 1024)) MiB free, this run needs about $((need_kib / 1024)) MiB (tree, restored copy and backup, +10%): free space, pick another --dir, or lower --gib / --files"
fi
# Filesystems without a fixed inode table (btrfs, ...) report 0 or '-': nothing to check then.
if [[ "$avail_inodes" =~ ^[0-9]+$ && "$avail_inodes" -gt 0 && "$avail_inodes" -lt "$need_inodes" ]]; then
    die "$DIR has $avail_inodes free inodes, this run needs about $need_inodes: pick another --dir or lower --files"
fi
note "work folder $DIR: $((avail_kib / 1024)) MiB free, about $((need_kib / 1024)) MiB needed"

# ---------------------------------------------------------------------------------- binary
mkdir -p "$DIR/bin" "$DIR/logs"
if [[ -n "${LIFEBOAT_BIN:-}" ]]; then
    [[ -x "$LIFEBOAT_BIN" ]] || die "LIFEBOAT_BIN=$LIFEBOAT_BIN is not executable"
    origin="$LIFEBOAT_BIN"
else
    command -v cargo >/dev/null 2>&1 || die "no cargo on PATH (or set LIFEBOAT_BIN)"
    note "cargo build --release -p lifeboat"
    (cd "$REPO" && cargo build --release --quiet -p lifeboat)
    LIFEBOAT_BIN="$REPO/target/release/lifeboat"
    origin="commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
fi
cp "$LIFEBOAT_BIN" "$DIR/bin/lifeboat"
LB="$DIR/bin/lifeboat"
export LIFEBOAT_PROGRESS=none
export LIFEBOAT_CACHE_DIR="${LIFEBOAT_CACHE_DIR:-$DIR/cache}"

# Which format the binary writes: a probe backup of a tiny tree with --format F; if that is
# refused, the run goes on without the flag (the binary's default format) and says so. The
# report names the format each backup's manifest records either way.
probe="$DIR/probe"
python3 "$REPO/scripts/lib/scale_tree.py" files --out "$probe/tree" --files 10 >/dev/null
FORMAT_ARGS=(--format "$FORMAT")
format_note="asked for --format $FORMAT"
if ! "$LB" backup --paths-local "$probe/tree" --dremio-version 25.2.0 --to "$probe/repo" \
    --create-location "${FORMAT_ARGS[@]}" >"$DIR/logs/probe.out" 2>"$DIR/logs/probe.err"; then
    format_note="this binary refused --format $FORMAT ($(grep -m 1 . "$DIR/logs/probe.err" || echo 'no message')): run without --format, in its default format"
    note "$format_note"
    FORMAT_ARGS=()
    "$LB" backup --paths-local "$probe/tree" --dremio-version 25.2.0 --to "$probe/repo2" \
        --create-location >"$DIR/logs/probe.out" 2>"$DIR/logs/probe.err" \
        || { cat "$DIR/logs/probe.err" >&2; die "the probe backup of a 10-file tree fails even without --format"; }
fi
rm -rf "$probe"

# ---------------------------------------------------------------------------------- measure
MEAS="$DIR/measurements.tsv"   # tree step wall_s cpu_s maxrss_kib
: >"$MEAS"

# measure TREE STEP CMD...: CMD under /usr/bin/time -v, its output in logs/TREE-STEP.*.
measure() {
    local tree="$1" step="$2"
    shift 2
    local base="$DIR/logs/$tree-$step"
    sync
    note "$tree: $step"
    if ! /usr/bin/time -v -o "$base.time" "$@" >"$base.out" 2>"$base.err"; then
        tail -n 30 "$base.err" >&2 || true
        die "$tree: $step failed: $*"
    fi
    awk -F': ' -v t="$tree" -v s="$step" '
        /Elapsed \(wall clock\) time/ {
            n = split($NF, p, ":")
            w = (n == 3) ? p[1] * 3600 + p[2] * 60 + p[3] : p[1] * 60 + p[2]
        }
        /User time \(seconds\)/ { u = $NF }
        /System time \(seconds\)/ { y = $NF }
        /Maximum resident set size \(kbytes\)/ { r = $NF }
        END {
            if (w == "" || r == "") exit 1
            printf "%s\t%s\t%.2f\t%.2f\t%d\n", t, s, w, u + y, r
        }' "$base.time" >>"$MEAS" || die "cannot parse $base.time"
}

jget() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

INFO="$DIR/info.tsv"   # tree key value
: >"$INFO"
info() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$INFO"; }

for t in "${TREES[@]}"; do
    src="$DIR/tree-$t"
    if [[ $t == big ]]; then
        note "generating the big tree ($GIB GiB; not timed)"
        python3 "$REPO/scripts/lib/scale_tree.py" big --out "$src" --gib "$GIB" >"$DIR/tree-$t.json"
    else
        note "generating the many-files tree ($FILES files; not timed)"
        python3 "$REPO/scripts/lib/scale_tree.py" files --out "$src" --files "$FILES" >"$DIR/tree-$t.json"
    fi
    info "$t" files "$(jget "$DIR/tree-$t.json" files)"
    info "$t" bytes "$(jget "$DIR/tree-$t.json" bytes)"
    # Warm-up: every file read once, into a pipe (GNU tar skips the data when writing to /dev/null).
    tar -C "$src" -cf - . | cat >/dev/null

    repo="$DIR/repo-$t"
    measure "$t" backup "$LB" --json backup --paths-local "$src" --dremio-version 25.2.0 \
        --to "$repo" --create-location "${FORMAT_ARGS[@]}"
    out="$DIR/logs/$t-backup.out"
    info "$t" stored "$(jget "$out" stored_bytes)"
    info "$t" raw "$(jget "$out" raw_bytes)"
    manifest="$(find "$repo" -name manifest.json -print -quit)"
    [[ -n "$manifest" ]] || die "$t: no manifest.json under $repo"
    info "$t" format "$(jget "$manifest" format)"
    info "$t" objects "$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1])).get("objects") or []) or 1)' "$manifest")"

    dst="$DIR/restored-$t"
    measure "$t" restore "$LB" --json restore --from "$repo" --backup latest --paths-local "$dst" \
        --dremio-version 25.2.0
    note "$t: comparing the restored tree with the source (not timed)"
    for d in db pdfs/uploads/_uploads security; do
        diff -r -q --no-dereference "$src/$d" "$dst/$d" >"$DIR/logs/$t-diff" 2>&1 \
            || { head -n 20 "$DIR/logs/$t-diff" >&2; die "$t: restored $d differs from the source"; }
    done
    # Room for the next tree.
    rm -rf "$src" "$dst" "$repo"
done

# ---------------------------------------------------------------------------------- report
mkdir -p "$(dirname "$RESULTS")"
python3 - "$MEAS" "$INFO" "$RESULTS" "$("$LB" --version) ($origin)" "$format_note" \
    "${FORMAT_ARGS[1]:-}" <<'EOF'
import sys

meas_path, info_path, results_path, version, format_note, asked = sys.argv[1:7]
MIB = 1 << 20
info = {}
for line in open(info_path):
    t, k, v = line.rstrip("\n").split("\t")
    info.setdefault(t, {})[k] = v
out = []
p = out.append
p("lifeboat scale section")
p(f"  lifeboat  {version}; {format_note}")
for t, d in info.items():
    what = "big tree" if t == "big" else "many files"
    p(f"  {what:<10} {int(d['files']):,} files, {int(d['bytes']) / MIB:,.1f} MiB; backup format "
      f"{d['format']}, {d['objects']} objects, {int(d['stored']) / MIB:,.1f} MiB stored")
for t, d in info.items():
    if asked and d["format"] != f"lifeboat-backup/{asked}":
        p(f"  NOTE      asked for --format {asked}, but the {t} backup's manifest says {d['format']}")
p("")
hdr = (f"{'tree':<6} {'step':<8} {'wall s':>9} {'CPU s':>9} {'MiB/s':>8} {'files/s':>10}"
       f" {'max RSS MiB':>12}")
p(hdr)
p("-" * len(hdr))
peak = 0.0
for line in open(meas_path):
    t, step, w, c, r = line.rstrip("\n").split("\t")
    w, c, rss = float(w), float(c), int(r) / 1024.0
    peak = max(peak, rss)
    raw, files = int(info[t]["raw"]), int(info[t]["files"])
    mibs = raw / MIB / w if w > 0 else float("inf")
    fps = files / w if w > 0 else float("inf")
    p(f"{t:<6} {step:<8} {w:9.2f} {c:9.2f} {mibs:8.1f} {fps:10.0f} {rss:12.1f}")
p("")
p(f"peak RSS of lifeboat: {peak:.1f} MiB (target <= 128 MiB, flat in size and file count): "
  + ("PASS" if peak <= 128 else "MISS"))
p("Notes: wall and RSS from /usr/bin/time -v (RSS: ru_maxrss); MiB/s = the manifest's raw bytes /")
p("  wall s; one run each, page cache warm (each tree read once before); the trees are not real")
p("  RocksDB stores (scripts/lib/scale_tree.py); restores were compared with the source (diff -r).")
text = "\n".join(out) + "\n"
print(text, end="")
with open(results_path, "w") as f:
    f.write(text + "\nRaw measurements (tree, step, wall s, CPU s, max RSS KiB):\n")
    f.write("".join("  " + l for l in open(meas_path)))
EOF
echo "results written to $RESULTS"
