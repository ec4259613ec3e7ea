#!/usr/bin/env python3
"""Hold a RocksDB store open read-write, like a live Dremio coordinator.

Usage: hold_lock.py DB_DIR [--churn-ms N] [--compactions]

Opens DB_DIR read-write with all of its column families, so RocksDB holds its POSIX record
lock (fcntl) on DB_DIR/LOCK, prints `ready` on stdout (flushed), then waits until stdin reaches
EOF (or SIGTERM/SIGINT), closes the store and exits 0.

--churn-ms N    while waiting, write one small record (with WAL) to column family `jobs` (if
                present, else `default`) every N ms, like a coordinator at work. Default 0.
--compactions   let RocksDB compact in the background as a real coordinator does. By default
                automatic compactions and the periodic stats dump to LOG are off, so that the
                files stay still once `ready` is printed (tests snapshot the tree while the
                lock is held). The open itself, before `ready`, still changes files: a new
                MANIFEST, OPTIONS and WAL, the LOG rotated to LOG.old.*, an old WAL replayed
                into a new .sst, and rocksdict's own rocksdict-config.json (removed again at
                exit if it was not there before).
Exits 2 if the store cannot be opened (for instance because another process holds the lock).
"""

import argparse
import os
import select
import signal
import sys
import time

CONFIG = "rocksdict-config.json"


class Stop(Exception):
    pass


def on_signal(signum, frame):
    raise Stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Hold a RocksDB store open (and its LOCK).")
    ap.add_argument("db_dir")
    ap.add_argument("--churn-ms", type=int, default=0)
    ap.add_argument("--compactions", action="store_true")
    args = ap.parse_args(argv)
    path = args.db_dir
    try:
        from rocksdict import Options, Rdict, WriteOptions
    except ImportError as exc:
        sys.stderr.write(f"hold_lock.py: cannot import rocksdict ({exc})\n")
        return 2
    if not os.path.isfile(os.path.join(path, "CURRENT")):
        sys.stderr.write(f"hold_lock.py: {path}: not a RocksDB directory (no CURRENT file)\n")
        return 2
    had_config = os.path.exists(os.path.join(path, CONFIG))
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    db = None
    try:
        def opts():
            o = Options(raw_mode=True)
            if not args.compactions:
                o.set_disable_auto_compactions(True)
                o.set_stats_dump_period_sec(0)
                o.set_stats_persist_period_sec(0)
            return o

        try:
            names = Rdict.list_cf(path)
            db = Rdict(path, opts(),
                       column_families={n: opts() for n in names if n != "default"})
        except Stop:
            return 0
        except Exception as exc:
            sys.stderr.write(f"hold_lock.py: cannot open {path}: {exc}\n")
            return 2
        sys.stdout.write("ready\n")
        sys.stdout.flush()

        fd = sys.stdin.fileno()
        churn = args.churn_ms / 1000.0 if args.churn_ms > 0 else None
        target = db.get_column_family("jobs") if "jobs" in names else db
        wo = WriteOptions()
        n = 0
        next_write = time.monotonic() + churn if churn else None
        try:
            while True:
                timeout = None if churn is None else max(0.0, next_write - time.monotonic())
                ready, _, _ = select.select([fd], [], [], timeout)
                if ready:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    continue
                if churn is not None and time.monotonic() >= next_write:
                    key = f"hold-lock-churn-{os.getpid()}-{n:08d}".encode()
                    target.put(key, os.urandom(64) + key, wo)
                    n += 1
                    next_write += churn
        except Stop:
            pass
        if target is not db:
            target.close()
        del target
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
    sys.exit(main())
