#!/usr/bin/env python3
"""Dump a RocksDB database's logical content, to compare a restored store with the original.

Usage: rocks_dump.py DB_DIR

Opens DB_DIR read-only with all of its column families (works while another process holds
the LOCK, e.g. a live coordinator or scripts/hold_lock.py; the WAL is replayed in memory, not
written back) and prints, sorted by column family name then by key bytes:

    <cf>\t<hex(key)>\t<sha256(value) hex>

then a last line `TOTAL <n>`. Exits 2 with a message on stderr if the store cannot be opened.
Needs the `rocksdict` package (see scripts/setup-venv.sh).
"""

import hashlib
import os
import sys

CONFIG = "rocksdict-config.json"


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: rocks_dump.py DB_DIR\n")
        return 2
    path = argv[1]
    try:
        from rocksdict import AccessType, Options, Rdict
    except ImportError as exc:
        sys.stderr.write(f"rocks_dump.py: cannot import rocksdict ({exc}); "
                         "run scripts/setup-venv.sh and use the venv's python\n")
        return 2
    if not os.path.isfile(os.path.join(path, "CURRENT")):
        sys.stderr.write(f"rocks_dump.py: {path}: not a RocksDB directory (no CURRENT file)\n")
        return 2
    # rocksdict writes its own config file into the directory even on a read-only open:
    # remove it again afterwards if it was not there before.
    had_config = os.path.exists(os.path.join(path, CONFIG))
    db = None
    total = 0
    try:
        try:
            names = Rdict.list_cf(path)
            opts = Options(raw_mode=True)
            db = Rdict(path, opts,
                       column_families={n: Options(raw_mode=True) for n in names if n != "default"},
                       access_type=AccessType.read_only())
        except Exception as exc:  # rocksdict raises plain Exception subclasses
            sys.stderr.write(f"rocks_dump.py: cannot open {path}: {exc}\n")
            return 2
        out = sys.stdout
        sha = hashlib.sha256
        for name in sorted(names):
            cf = db.get_column_family(name)
            # RocksDB's default comparator is bytewise, so iteration is already in key order;
            # sort anyway in case a store uses another comparator.
            rows = [(bytes(k), sha(v).hexdigest()) for k, v in cf.items()]
            rows.sort()
            buf = [f"{name}\t{k.hex()}\t{h}\n" for k, h in rows]
            out.write("".join(buf))
            total += len(rows)
            del cf, rows, buf
        out.write(f"TOTAL {total}\n")
        out.flush()
        return 0
    finally:
        if db is not None:
            db.close()
            del db
        if not had_config:
            try:
                os.unlink(os.path.join(path, CONFIG))
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main(sys.argv))
