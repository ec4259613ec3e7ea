# shellcheck shell=bash
# scripts/bench.sh's INCREMENTAL, ENCRYPTED and RESTIC groups: repository format 2 against a full
# backup, encrypted against plain, and restic on the same data. Sourced by bench.sh after its
# helpers (measure, stored, jget, check_restore, s3_total, die, note) and trees_setup's variables
# (LB, A_HOME, A_DATA, OUT, RESTORES, LOGS, BENCH_DIR, PARTS, ZSTD_LEVEL, BUCKET, RESTIC_S3).
#
#   f2_series local|s3 RUN   lifeboat --format 2: full backup of tree A, mutate_A, the hourly
#                            backup, restore of it (compared with the changed tree), unmutate_A
#   restic_series local|s3 RUN   the same with restic: init, backup, hourly backup, restore
#   f2_encrypted RUN         a format-2 full backup encrypted to two age recipients, and its restore
#
# Line names (bench.sh's report knows them): lb_f2_{full,incr,restore}_{local,s3}_A,
# restic_{init,full,incr,restore}_{local,s3}[_A], lb_f2_enc_local_A, lb_f2_enc_restore_local_A.

MUT_DIR="$BENCH_DIR/mutation"

# mutate_A: a simulated RocksDB compaction of tree A's store. New SST files (numbered above the
# highest one, at most 16 MiB each, at least 64 KiB, so that each is a shared object) hold 2% of
# the bytes of the SST files; their bytes are copied from the largest SST, so they compress like
# the others (each object is its own zstd frame: nothing is deduplicated across files). The
# smallest SST is deleted (moved aside), MANIFEST-* and LOG are appended to. unmutate_A puts tree A
# back exactly as it was (the moved file keeps its mtime; the appended ones are copied back with
# theirs), so the next line starts from the same tree.
mutate_A() {
    local db="$A_DATA/db" lines total want src srcsize victim dir max next left size name off
    rm -rf "$MUT_DIR"
    mkdir -p "$MUT_DIR/aside" "$MUT_DIR/saved"
    lines="$(find "$db" -type f -name '*.sst' -size +64k -printf '%s\t%p\n' | sort -n)"
    [[ "$(wc -l <<<"$lines")" -ge 2 ]] || die "tree A has fewer than two SST files of 64 KiB or more: nothing to compact"
    total="$(awk -F'\t' '{s += $1} END {printf "%d", s}' <<<"$lines")"
    want=$((total / 50))
    victim="$(head -n 1 <<<"$lines" | cut -f 2)"
    src="$(tail -n 1 <<<"$lines" | cut -f 2)"
    srcsize="$(tail -n 1 <<<"$lines" | cut -f 1)"
    dir="$(dirname "$src")"
    max="$(find "$dir" -maxdepth 1 -name '[0-9]*.sst' -printf '%f\n' | sed 's/\.sst$//' | sort -n | tail -n 1)"
    next=$((10#$max + 1))
    left=$want
    off=0
    : >"$MUT_DIR/new"
    while [[ $left -gt 0 ]]; do
        size=$((left < (16 << 20) ? left : (16 << 20)))
        [[ $size -ge 65536 ]] || size=65536
        [[ $size -le $srcsize ]] || size=$srcsize
        [[ $((off + size)) -le $srcsize ]] || off=0
        name="$(printf '%s/%06d.sst' "$dir" "$next")"
        dd if="$src" of="$name" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$size" status=none
        echo "$name" >>"$MUT_DIR/new"
        off=$((off + size))
        next=$((next + 1))
        left=$((left - size))
    done
    echo "$victim" >"$MUT_DIR/victim"
    mv "$victim" "$MUT_DIR/aside/"
    find "$db" -type f \( -name 'MANIFEST-*' -o -name LOG \) -print0 >"$MUT_DIR/appended"
    while IFS= read -r -d '' name; do
        mkdir -p "$MUT_DIR/saved$(dirname "$name")"
        cp -p "$name" "$MUT_DIR/saved$name"
        head -c 4096 /dev/urandom | base64 >>"$name"
    done <"$MUT_DIR/appended"
    note "mutate_A: $(wc -l <"$MUT_DIR/new") new SST files ($((want >> 10)) KiB, 2% of $((total >> 20)) MiB of SSTs), $(basename "$victim") deleted"
}

unmutate_A() {
    local name victim
    [[ -f "$MUT_DIR/victim" ]] || return 0
    while IFS= read -r name; do
        rm -f "$name"
    done <"$MUT_DIR/new"
    victim="$(cat "$MUT_DIR/victim")"
    mv "$MUT_DIR/aside/$(basename "$victim")" "$victim"
    while IFS= read -r -d '' name; do
        cp -p "$MUT_DIR/saved$name" "$name"
    done <"$MUT_DIR/appended"
    rm -rf "$MUT_DIR"
}

# f2_location local|s3 RUN TAG: the location of a format-2 series (a fresh one per run and tag).
f2_location() {
    if [[ $1 == local ]]; then
        echo "$OUT/lb-f2$3-$2"
    else
        echo "s3://$BUCKET/bench-lb-f2$3-$2"
    fi
}

# f2_backup NAME RUN LOCATION [ARGS...]: one timed `lifeboat backup --format 2` of tree A; its
# stored bytes (what this backup uploaded, from its --json report) recorded under NAME.
f2_backup() {
    local name="$1" run="$2" to="$3" create=()
    shift 3
    [[ "$to" == s3://* ]] || create=(--create-location)
    measure "$name" "$run" "$LB" --json --progress none backup --dremio-home "$A_HOME" --to "$to" \
        "${create[@]}" --level "$ZSTD_LEVEL" --format 2 "$@"
    stored "$name" "$run" "$(jget "$LOGS/$name-$run.out" stored_bytes)"
    f2_check_manifest "$name" "$run" "$to" "$@"
}

# f2_check_manifest NAME RUN LOCATION [--encrypt-to ...]: the backup just made must be format 2
# (and encrypted when asked): a binary that ignores the flags would make every ratio meaningless.
f2_check_manifest() {
    local name="$1" run="$2" to="$3" id cluster m="$LOGS/$1-$2.manifest.json" want_enc=0
    shift 3
    [[ $# -gt 0 ]] && want_enc=1
    id="$(jget "$LOGS/$name-$run.out" id)"
    cluster="$(jget "$LOGS/$name-$run.out" cluster)"
    if [[ "$to" == s3://* ]]; then
        "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" --only-show-errors s3 cp "$to/$cluster/$id/manifest.json" "$m"
    else
        cp "$to/$cluster/$id/manifest.json" "$m"
    fi
    "$PY" - "$m" "$want_enc" "$name" <<'PYEOF' || exit 1
import json, sys
m = json.load(open(sys.argv[1]))
if m.get("format") != "lifeboat-backup/2":
    sys.exit(f"bench.sh: {sys.argv[3]}: asked for --format 2, the binary wrote {m.get('format')!r}")
if sys.argv[2] == "1" and not m.get("encryption"):
    sys.exit(f"bench.sh: {sys.argv[3]}: asked for --encrypt-to, the manifest has no encryption section")
PYEOF
}

f2_series() {
    local kind="$1" run="$2" to id
    to="$(f2_location "$kind" "$run" "")"
    f2_backup "lb_f2_full_${kind}_A" "$run" "$to"
    mutate_A
    f2_backup "lb_f2_incr_${kind}_A" "$run" "$to"
    # By id: two backups within one second would make `latest` a coin toss.
    id="$(jget "$LOGS/lb_f2_incr_${kind}_A-$run.out" id)"
    measure "lb_f2_restore_${kind}_A" "$run" \
        "$LB" --json --progress none restore --from "$to" --backup "$id" \
        --dremio-home "$A_HOME" --paths-local "$RESTORES/lb-f2-$kind-$run"
    check_restore "$A_DATA" "$RESTORES/lb-f2-$kind-$run" "lifeboat restore of the hourly format-2 backup ($kind)"
    rm -rf "$RESTORES/lb-f2-$kind-$run"
    unmutate_A
    [[ $kind == local ]] && rm -rf "$to"
    return 0
}

# The two recipients of ENCRYPTED: an operational key and a break-glass key, as README advises.
f2_keys() {
    local k
    [[ -f "$BENCH_DIR/keys/ops.key" ]] && return 0
    mkdir -m 700 "$BENCH_DIR/keys"
    for k in ops breakglass; do
        age-keygen -o "$BENCH_DIR/keys/$k.key" 2>/dev/null
        age-keygen -y "$BENCH_DIR/keys/$k.key" >"$BENCH_DIR/keys/$k.pub"
    done
}

f2_encrypted() {
    local run="$1" to id
    f2_keys
    # The unencrypted line to compare with, right before (f2_series local ran it in this run
    # already when INCREMENTAL or RESTIC is selected).
    if [[ $DO_INCR -eq 0 && $DO_RESTIC -eq 0 ]]; then
        to="$(f2_location local "$run" "-plain")"
        f2_backup lb_f2_full_local_A "$run" "$to"
        rm -rf "$to"
    fi
    to="$(f2_location local "$run" "-enc")"
    f2_backup lb_f2_enc_local_A "$run" "$to" \
        --encrypt-to "$(cat "$BENCH_DIR/keys/ops.pub")" --encrypt-to "$(cat "$BENCH_DIR/keys/breakglass.pub")"
    id="$(jget "$LOGS/lb_f2_enc_local_A-$run.out" id)"
    measure lb_f2_enc_restore_local_A "$run" \
        "$LB" --json --progress none restore --from "$to" --backup "$id" --identity "$BENCH_DIR/keys/ops.key" \
        --dremio-home "$A_HOME" --paths-local "$RESTORES/lb-f2-enc-$run"
    check_restore "$A_DATA" "$RESTORES/lb-f2-enc-$run" "lifeboat restore of the encrypted format-2 backup"
    rm -rf "$RESTORES/lb-f2-enc-$run" "$to"
}

# restic_size local|s3 REPO: the bytes a restic repository holds.
restic_size() {
    if [[ $1 == local ]]; then
        du -sb --apparent-size "$2" | cut -f 1
    else
        s3_total "$2"
    fi
}

restic_series() {
    local kind="$1" run="$2" repo where before after rroot
    if [[ $kind == local ]]; then
        where="$OUT/restic-f2-$run"
        repo="$where"
    else
        where="bench-restic-f2-$run"
        repo="$RESTIC_S3/$where"
    fi
    rm -rf "$RESTIC_CACHE_DIR"
    measure "restic_init_$kind" "$run" restic -r "$repo" --quiet init --repository-version 2
    rm -rf "$RESTIC_CACHE_DIR"   # the full backup starts cold, as on a new host
    measure "restic_full_${kind}_A" "$run" --cd "$A_DATA" \
        restic -r "$repo" --quiet backup --compression auto "${PARTS[@]}"
    before="$(restic_size "$kind" "$where")"
    stored "restic_full_${kind}_A" "$run" "$before"
    mutate_A
    # The hourly backup keeps the cache: the same host, an hour later.
    measure "restic_incr_${kind}_A" "$run" --cd "$A_DATA" \
        restic -r "$repo" --quiet backup --compression auto "${PARTS[@]}"
    after="$(restic_size "$kind" "$where")"
    stored "restic_incr_${kind}_A" "$run" "$((after - before))"
    rm -rf "$RESTIC_CACHE_DIR"   # a restore runs on a new host
    measure "restic_restore_${kind}_A" "$run" \
        restic -r "$repo" --quiet restore latest --target "$RESTORES/restic-f2-$kind-$run"
    # restic versions differ in whether the snapshot's absolute path is kept under --target.
    rroot="$RESTORES/restic-f2-$kind-$run"
    [[ -d "$rroot/db" ]] || rroot="$rroot$A_DATA"
    check_restore "$A_DATA" "$rroot" "restic restore of the hourly backup ($kind)"
    rm -rf "$RESTORES/restic-f2-$kind-$run"
    unmutate_A
    [[ $kind == local ]] && rm -rf "$where"
    return 0
}
