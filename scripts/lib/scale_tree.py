#!/usr/bin/env python3
"""A fast generator of large Dremio-like paths.local trees for scripts/scale.sh (stdlib only).

Usage:
  scale_tree.py big   --out DIR --gib N          N GiB: RocksDB-like SSTs of 64 MiB in db/catalog,
                                                 12% as blob files of 1 MiB in db/blob, a few uploads
  scale_tree.py files --out DIR --files N        N small files (0..4 KiB, 1,000 per folder) under
                                                 pdfs/uploads/_uploads, beside a small db/catalog

DIR becomes a paths.local: db/catalog (CURRENT, LOCK, MANIFEST-000001, OPTIONS-000005, *.sst),
pdfs/uploads/_uploads/, security/ (0700, files 0600). The SSTs are not a real RocksDB store
(scripts/gen_fixture.py makes real ones, but takes far too long at 20 GiB): lifeboat copies bytes,
so what matters here is their number, sizes and compressibility. Contents are derived from a fixed
seed and compress about 2x with zstd -3 (like snappy-compressed RocksDB blocks), never across
files (each file's bytes come from a different offset of a pool larger than zstd's window).
Prints a JSON summary (paths_local, files, bytes) on stdout; nothing else.
"""

import argparse
import json
import os
import random
import sys

MIB = 1 << 20
POOL_BYTES = 32 * MIB
CHUNK = 1 * MIB
SST_BYTES = 64 * MIB
BLOB_BYTES = 1 * MIB


def make_pool(rng):
    """POOL_BYTES of half random, half text-like bytes, in 4 KiB runs."""
    words = [("%s_%d" % (w, i)).encode() for i, w in
             enumerate(["dataset", "space", "folder", "reflection", "job", "profile", "split",
                        "\"path\":", "\"version\":", "SELECT", "FROM", "WHERE"] * 8)]
    out = bytearray()
    while len(out) < POOL_BYTES:
        out += rng.randbytes(2048)
        run = bytearray()
        while len(run) < 2048:
            run += rng.choice(words) + b" "
        out += run[:2048]
    return bytes(out[:POOL_BYTES])


class Writer:
    def __init__(self, pool, rng):
        self.pool = pool
        self.rng = rng
        self.files = 0
        self.bytes = 0

    def write(self, path, size, mode=0o644):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            off = self.rng.randrange(0, POOL_BYTES - CHUNK)
            left = size
            while left > 0:
                n = min(left, CHUNK, POOL_BYTES - off)
                os.write(fd, self.pool[off:off + n])
                left -= n
                off = (off + n) % (POOL_BYTES - CHUNK)
        finally:
            os.close(fd)
        self.files += 1
        self.bytes += size


def skeleton(w, root, ssts):
    """db/catalog with RocksDB's small files and SSTS (a list of sizes); security/; uploads root."""
    cat = os.path.join(root, "db", "catalog")
    os.makedirs(cat)
    for name, text in [("CURRENT", b"MANIFEST-000001\n"), ("IDENTITY", b"9b1c5e3a-scale\n")]:
        with open(os.path.join(cat, name), "wb") as f:
            f.write(text)
        w.files += 1
        w.bytes += len(text)
    open(os.path.join(cat, "LOCK"), "wb").close()
    w.files += 1
    w.write(os.path.join(cat, "MANIFEST-000001"), 64 * 1024)
    w.write(os.path.join(cat, "OPTIONS-000005"), 7 * 1024)
    for i, size in enumerate(ssts):
        w.write(os.path.join(cat, "%06d.sst" % (10 + i)), size)
    sec = os.path.join(root, "security")
    os.makedirs(sec, mode=0o700)
    os.chmod(sec, 0o700)
    for name in ["dremio.keystore", "ssl.crt"]:
        w.write(os.path.join(sec, name), 4096, mode=0o600)
    up = os.path.join(root, "pdfs", "uploads", "_uploads")
    os.makedirs(up)
    return up


def big(w, root, gib):
    total = int(gib * 1024 * MIB)
    blob_total = total * 12 // 100
    sst_total = total - blob_total - 8 * MIB
    ssts = [SST_BYTES] * (sst_total // SST_BYTES)
    if sst_total % SST_BYTES >= 64 * 1024:
        ssts.append(sst_total % SST_BYTES)
    up = skeleton(w, root, ssts)
    blob = os.path.join(root, "db", "blob")
    os.makedirs(blob)
    for i in range(max(1, blob_total // BLOB_BYTES)):
        sub = os.path.join(blob, "%02x" % (i % 256))
        os.makedirs(sub, exist_ok=True)
        w.write(os.path.join(sub, "%08d.blob" % i), BLOB_BYTES)
    for i in range(8):
        w.write(os.path.join(up, "upload-%d.csv" % i), MIB)


def files(w, root, count):
    up = skeleton(w, root, [4 * MIB, 4 * MIB])
    per_dir = 1000
    for d in range((count + per_dir - 1) // per_dir):
        sub = os.path.join(up, "home", "user%04d" % (d // 100), "folder%06d" % d)
        os.makedirs(sub)
        for i in range(min(per_dir, count - d * per_dir)):
            w.write(os.path.join(sub, "f%04d.json" % i), w.rng.randrange(0, 4096))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=["big", "files"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--gib", type=float, default=20)
    ap.add_argument("--files", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if os.path.exists(a.out) and os.listdir(a.out):
        sys.exit(f"scale_tree.py: {a.out} is not empty")
    if a.kind == "big" and a.gib <= 0:
        sys.exit("scale_tree.py: --gib must be positive")
    if a.kind == "files" and a.files <= 0:
        sys.exit("scale_tree.py: --files must be positive")
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    w = Writer(make_pool(rng), rng)
    root = os.path.abspath(a.out)
    if a.kind == "big":
        big(w, root, a.gib)
    else:
        files(w, root, a.files)
    json.dump({"paths_local": root, "files": w.files, "bytes": w.bytes}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
