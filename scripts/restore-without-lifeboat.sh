#!/usr/bin/env bash
# Restores a format-2 lifeboat backup with plain tools only: sha256sum, zstd, tar, and age when
# the backup is encrypted (grep, awk, mktemp and cat besides). No lifeboat is needed.
#
#   scripts/restore-without-lifeboat.sh BACKUP_DIR TARGET [--identity KEY_FILE]
#
# BACKUP_DIR is a backup's folder inside a local copy of the cluster's folder, for example after
#   aws s3 sync s3://bucket/prefix/<cluster> ./c
# it is ./c/<backup-id> (a backup id alone is taken as a folder of the current directory, which
# is then the cluster's folder). The cluster's folder holds objects/<ab>/<ab...>, which the
# backup's SHA256SUMS names in archive order, the tail last. TARGET is an empty (or new) folder.
#
# What it does, and refuses:
#   1. the backup must be committed: BACKUP_DIR/manifest.json exists, and its archive digest
#      (the first "sha256" of the manifest: archive.sha256) is the digest of SHA256SUMS;
#   2. every line of SHA256SUMS names an object as lifeboat does (objects/ab/<32 hex>);
#   3. `sha256sum -c` of SHA256SUMS in the cluster's folder: any missing or altered object fails,
#      BEFORE anything is written (a missing object would otherwise restore silently incomplete);
#   4. then the objects, in order, each decrypted by `age -d -i KEY_FILE` when the backup is
#      encrypted (BACKUP_DIR/index.jsonl.zst.age exists), are concatenated into
#      `zstd -d | tar -x -C TARGET` (zstd checks every frame's checksum).
# An encrypted backup without --identity (or LIFEBOAT_AGE_IDENTITY_FILE) is refused before step 3.
# tar restores owners only when run as root; lifeboat's own restore sets --owner itself. The files
# land under TARGET as the archive names them: db/..., uploads/..., security/...
#
# Exit status: 0 restored; 1 refused or failed (the message says why); 2 usage.
set -euo pipefail

usage() {
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
die() {
    echo "restore-without-lifeboat: $*" >&2
    exit 1
}

backup=""
target=""
identity=${LIFEBOAT_AGE_IDENTITY_FILE:-}
while [ $# -gt 0 ]; do
    case "$1" in
        --identity)
            [ $# -ge 2 ] || usage
            identity=$2
            shift 2
            ;;
        --identity=*)
            identity=${1#--identity=}
            shift
            ;;
        -h | --help) usage ;;
        -*) usage ;;
        *)
            if [ -z "$backup" ]; then
                backup=$1
            elif [ -z "$target" ]; then
                target=$1
            else
                usage
            fi
            shift
            ;;
    esac
done
[ -n "$backup" ] && [ -n "$target" ] || usage

[ -d "$backup" ] || die "$backup is not a folder (give a backup's folder: <cluster folder>/<backup id>)"
backup=$(cd "$backup" && pwd)
cluster=$(dirname "$backup")
sums=$backup/SHA256SUMS
manifest=$backup/manifest.json

[ -f "$manifest" ] || die "$backup has no manifest.json: it is not a committed backup (a failed or running backup's folder)"
[ -f "$sums" ] || die "$backup has no SHA256SUMS: it is not a format-2 backup (format 1: zstd -d < data.tar.zst | tar -x)"

# 1. SHA256SUMS is the one the manifest committed.
expected=$(grep -o '"sha256": *"[0-9a-f]*"' "$manifest" | head -n 1 | grep -o '[0-9a-f]\{64\}' || true)
[ -n "$expected" ] || die "$manifest names no archive digest"
found=$(sha256sum < "$sums" | awk '{print $1}')
[ "$found" = "$expected" ] || die "SHA256SUMS has digest $found, the manifest says $expected: it was altered"

# 2. Every line names an object where lifeboat puts them, nothing else (no ../, no absolute path).
[ -s "$sums" ] || die "SHA256SUMS is empty"
if grep -qvE '^[0-9a-f]{64}  objects/([0-9a-f]{2})/[0-9a-f]{32}$' "$sums"; then
    die "SHA256SUMS holds a line that is not '<sha256>  objects/<ab>/<32 hex>'"
fi
if awk '{ split($2, p, "/"); if (substr(p[3], 1, 2) != p[2]) bad = 1 } END { exit !bad }' "$sums"; then
    die "SHA256SUMS names an object outside its folder objects/<first two characters>/"
fi

encrypted=no
if [ -e "$backup/index.jsonl.zst.age" ] || grep -q '"encryption"' "$manifest"; then
    encrypted=yes
    [ -n "$identity" ] || die "the backup is encrypted: give --identity KEY_FILE (or LIFEBOAT_AGE_IDENTITY_FILE)"
    [ -r "$identity" ] || die "cannot read the identity file $identity"
    command -v age > /dev/null || die "the backup is encrypted and age is not installed"
fi
for tool in sha256sum zstd tar; do
    command -v "$tool" > /dev/null || die "$tool is not installed"
done

# 3. Every object exists and is intact, before anything is written.
if ! (cd "$cluster" && sha256sum --check --strict --quiet "$sums") >&2; then
    die "objects of $backup are missing or altered (above); nothing was restored"
fi

mkdir -p "$target"
if [ -n "$(ls -A "$target")" ]; then
    die "$target is not empty"
fi

# 4. The objects in order, decrypted one by one when encrypted, make one tar+zstd stream.
objects() {
    local sum path
    while read -r sum path; do
        if [ "$encrypted" = yes ]; then
            age -d -i "$identity" "$cluster/$path" || exit 1
        else
            cat "$cluster/$path" || exit 1
        fi
    done < "$sums"
}
if ! objects | zstd -d -q | tar -x -C "$target"; then
    die "the restore into $target failed (above); remove what it left there"
fi
count=$(wc -l < "$sums")
echo "restore-without-lifeboat: restored $(basename "$backup") ($count objects) into $target"
