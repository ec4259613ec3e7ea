#!/usr/bin/env python3
"""Build a realistic (but fake) Dremio installation and data tree for lifeboat tests.

Usage:
  gen_fixture.py --out DIR [--version 25.2.0] [--build 202410241428100111-a963b970]
                 [--size-mib N] [--small-files N] [--seed S]
                 [--sst-compression snappy|none|lz4|zstd]

Layout written under DIR (which must be missing or empty):
  DIR/home   DREMIO_HOME: conf/dremio.conf (paths.local -> DIR/data), jars/, bin/, log/
  DIR/data   paths.local: db/ (RocksDB in db/catalog, blob/, metadata/, search/, checkpoints/),
             pdfs/uploads/_uploads/ (awkward names, empty file and folder, many small files),
             security/ (0700, files 0600), and things a backup skips (pdfs/results, log, ...).

--size-mib is the approximate size on disk of DIR/data without the --small-files files (about
78% RocksDB, 12% blobs, 8% uploads, 2% search). Values are JSON/SQL-like text with some random
bytes: about 5x with zstd before RocksDB compresses its blocks. RocksDB blocks use snappy by
default (RocksDB's and so Dremio's default): `tar cf - data | zstd -3` then gives about 1.9x;
with --sst-compression none about 5x. The catalog holds a few records only in its WAL (*.log),
as after a coordinator's clean stop; the JSON summary's "records" counts every (cf, key) pair
that scripts/rocks_dump.py lists.

Everything is derived from --seed, so two runs with the same arguments hold the same logical
content (same RocksDB keys and values, same file names and bytes; RocksDB's own files differ).
Prints a JSON summary on stdout; nothing else goes to stdout.

Needs the `rocksdict` package (see scripts/setup-venv.sh); run it with the venv's python.
"""

import argparse
import gc
import json
import math
import os
import random
import sys
import time
import uuid

try:
    from rocksdict import (DBCompressionType, Options, Rdict, WriteBatch,
                           WriteOptions)
except ImportError as exc:  # pragma: no cover
    sys.exit(f"gen_fixture.py: cannot import rocksdict ({exc}); run scripts/setup-venv.sh "
             "and use the venv's python")

MIB = 1 << 20
BASE_TS_MS = 1729780000000  # fixed "now" so that values are deterministic

# KV tables (column families) of a 25.x coordinator.
# name: (share of the RocksDB byte budget, mean value size, spread (lognormal sigma),
#        fraction of incompressible bytes in a value, key style)
TABLES = {
    "dac-namespace":           (0.100, 1500, 0.6, 0.06, "nspath"),
    "userGroup":               (0.004, 450, 0.3, 0.05, "uuid"),
    "configuration":           (0.001, 300, 0.3, 0.05, "confkey"),
    "jobs":                    (0.200, 2500, 0.7, 0.03, "uuid"),
    "profiles":                (0.200, 48000, 1.0, 0.04, "jobattempt"),
    "tokens":                  (0.004, 220, 0.2, 0.25, "token"),
    "datasetVersions":         (0.070, 1800, 0.6, 0.03, "dsversion"),
    "collaboration_wiki":      (0.010, 3000, 0.8, 0.00, "uuid"),
    "collaboration_tags":      (0.003, 160, 0.3, 0.03, "uuid"),
    "reflection_goals":        (0.010, 900, 0.4, 0.10, "uuid"),
    "reflection_entries":      (0.010, 700, 0.4, 0.10, "uuid"),
    "reflection_settings":     (0.003, 200, 0.3, 0.05, "nspath"),
    "materialization_store":   (0.030, 1200, 0.5, 0.06, "uuid"),
    "refresh_store":           (0.010, 600, 0.4, 0.15, "uuid"),
    "dependencies":            (0.010, 300, 0.4, 0.05, "uuid"),
    "catalog-source-data":     (0.010, 2500, 0.5, 0.10, "source"),
    "metadata-dataset-splits": (0.180, 1200, 0.5, 0.07, "split"),
    "metadata-multi-splits":   (0.050, 6000, 0.7, 0.07, "split"),
    "options":                 (0.001, 180, 0.3, 0.00, "option"),
    "sys.options":             (0.001, 180, 0.3, 0.00, "option"),
    "upgrade":                 (0.001, 250, 0.3, 0.00, "upgrade"),
    "search_document_id":      (0.010, 60, 0.3, 0.15, "uuid"),
    "script":                  (0.010, 1500, 0.7, 0.03, "uuid"),
    "user_preference":         (0.002, 300, 0.3, 0.03, "uuid"),
    "intermediate_profiles":   (0.020, 20000, 0.9, 0.04, "jobattempt"),
}
BLOB_TABLES = ["profiles", "materialization_store", "script"]
SEARCH_INDEXES = ["dac-namespace", "jobs"]

# Share of the --size-mib budget for each part of the tree.
SHARE_ROCKS = 0.78
SHARE_BLOB = 0.12
SHARE_UPLOADS = 0.08
SHARE_SEARCH = 0.02

SPACES = ["Sales", "Marketing", "Finance", "Samples", "Analytics", "Ops", "HR", "Supply Chain",
          "Risk", "Product"]
FOLDERS = ["raw", "staging", "curated", "reports", "archive", "sandbox", "gold", "silver", "bronze"]
NOUNS = ["orders", "customers", "invoices", "trips", "events", "sessions", "inventory", "claims",
         "payments", "shipments", "returns", "clicks", "accounts", "ledger", "forecast"]
COLUMNS = ["id", "customer_id", "order_date", "amount", "currency", "region", "country", "city",
           "product_sku", "quantity", "unit_price", "discount", "status", "created_at",
           "updated_at", "user_agent", "latitude", "longitude", "passenger_count",
           "fare_amount", "tip_amount", "store_id", "category", "segment"]
TYPES = ["VARCHAR", "BIGINT", "INTEGER", "DOUBLE", "DECIMAL(18,2)", "DATE", "TIMESTAMP",
         "BOOLEAN", "FLOAT"]
USERS = ["dremio", "alice.smith", "bob", "carol_jones", "dave", "erin.o'neil", "frank",
         "grace", "heidi", "ivan", "judy", "mallory", "svc_etl", "svc_bi"]
STATES = ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED", "CANCELED", "RUNNING"]
QTYPES = ["UI_RUN", "UI_PREVIEW", "ODBC", "JDBC", "REST", "FLIGHT", "ACCELERATOR_CREATE",
          "METADATA_REFRESH", "INTERNAL_ICEBERG_METADATA_DROP"]
OPERATORS = ["SCREEN", "PROJECT", "FILTER", "HASH_AGGREGATE", "HASH_JOIN", "PARQUET_ROW_GROUP_SCAN",
             "EXTERNAL_SORT", "UNION_EXCHANGE", "HASH_PARTITION_SENDER", "ARROW_WRITER",
             "TABLE_FUNCTION", "STREAMING_AGGREGATE", "LIMIT", "SELECTION_VECTOR_REMOVER"]
WORDS = ("the of and to in is for on with as by this data table view report daily weekly "
         "monthly revenue customer order source refresh reflection query owner team finance "
         "marketing pipeline dashboard metric dimension measure partition cluster schema "
         "description note deprecated verified certified contact updated joins filters").split()


def rng_for(seed, part):
    """Independent deterministic stream per part, so one option does not shift the others."""
    return random.Random(f"lifeboat-fixture:{seed}:{part}")


def rand_uuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def build_text_pool(rng, size):
    """JSON-ish and SQL-ish text: what Dremio's values and profiles mostly look like."""
    out = []
    total = 0
    while total < size:
        kind = rng.randrange(7)
        sp = rng.choice(SPACES)
        fo = rng.choice(FOLDERS)
        no = rng.choice(NOUNS)
        cols = rng.sample(COLUMNS, rng.randrange(2, 7))
        if kind == 0:
            line = (f'{{"jobId":"{rand_uuid(rng)}","user":"{rng.choice(USERS)}",'
                    f'"queryType":"{rng.choice(QTYPES)}","state":"{rng.choice(STATES)}",'
                    f'"startTime":{BASE_TS_MS - rng.randrange(10**9)},'
                    f'"sql":"SELECT {", ".join(cols)} FROM \\"{sp}\\".{fo}.{no} WHERE '
                    f'{cols[0]} > {rng.randrange(10**6)} ORDER BY {cols[-1]} LIMIT '
                    f'{rng.choice([100, 1000, 10000])}","outputRecords":{rng.randrange(10**7)},'
                    f'"engine":"default","queueName":"{rng.choice(["Low Cost User Queries", "High Cost User Queries", "UI Previews"])}"}}\n')
        elif kind == 1:
            fields = ",".join(f'{{"name":"{c}","type":"{rng.choice(TYPES)}","nullable":true}}'
                              for c in cols)
            line = (f'{{"datasetPath":["{sp}","{fo}","{no}"],"type":"PHYSICAL_DATASET_SOURCE_FOLDER",'
                    f'"format":{{"type":"Parquet","autoCorrectCorruptDates":true}},'
                    f'"readDefinition":{{"lastRefreshDate":{BASE_TS_MS - rng.randrange(10**8)},'
                    f'"splitVersion":{rng.randrange(10**6)}}},"fields":[{fields}]}}\n')
        elif kind == 2:
            ops = ",".join(
                f'{{"operatorId":{i},"operatorType":"{rng.choice(OPERATORS)}",'
                f'"setupNanos":{rng.randrange(10**7)},"processNanos":{rng.randrange(10**9)},'
                f'"peakLocalMemoryAllocated":{rng.randrange(10**8)},'
                f'"inputProfile":[{{"records":{rng.randrange(10**7)},"batches":{rng.randrange(10**4)}}}]}}'
                for i in range(rng.randrange(2, 6)))
            line = (f'{{"majorFragmentId":{rng.randrange(40)},"minorFragmentId":{rng.randrange(64)},'
                    f'"state":"FINISHED","endpoint":{{"address":"10.0.{rng.randrange(256)}.{rng.randrange(256)}",'
                    f'"fabricPort":45678}},"operatorProfile":[{ops}]}}\n')
        elif kind == 3:
            line = (f'{{"splitKey":"{sp}.{fo}.{no}/part-{rng.randrange(10**5):05d}.parquet",'
                    f'"size":{rng.randrange(10**9)},"rowCount":{rng.randrange(10**7)},'
                    f'"start":0,"length":{rng.randrange(10**8)},'
                    f'"partitionValues":[{{"column":"dir0","stringValue":"{2015 + rng.randrange(10)}"}}],'
                    f'"modificationTime":{BASE_TS_MS - rng.randrange(10**9)}}}\n')
        elif kind == 4:
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(20, 80)))
            line = (f"## {no.title()} ({sp})\n\nOwner: @{rng.choice(USERS)}. {words}.\n\n"
                    f"| column | meaning |\n|---|---|\n"
                    + "".join(f"| {c} | {rng.choice(WORDS)} {rng.choice(WORDS)} |\n" for c in cols))
        elif kind == 5:
            line = (f'{{"reflectionId":"{rand_uuid(rng)}","datasetId":"{rand_uuid(rng)}",'
                    f'"type":"{rng.choice(["RAW", "AGGREGATION"])}","enabled":true,'
                    f'"displayFields":[{",".join(json.dumps(c) for c in cols)}],'
                    f'"state":"ACTIVE","refreshPeriod":{rng.choice([3600000, 7200000, 86400000])},'
                    f'"lastSubmitted":{BASE_TS_MS - rng.randrange(10**8)}}}\n')
        else:
            line = (f'CREATE VDS "{sp}"."{fo}"."{no}_v{rng.randrange(100)}" AS SELECT '
                    f'{", ".join(cols)}, SUM({cols[0]}) AS total FROM "{sp}".{fo}.{no} t '
                    f'JOIN "{rng.choice(SPACES)}".{rng.choice(FOLDERS)}.{rng.choice(NOUNS)} u '
                    f'ON t.{cols[0]} = u.{cols[-1]} GROUP BY {", ".join(cols)};\n')
        b = line.encode()
        out.append(b)
        total += len(b)
    return b"".join(out)


class ValueMaker:
    """Cheap values: a unique header, a slice of the shared text pool, fresh random bytes."""

    def __init__(self, rng, pool):
        self.rng = rng
        self.pool = pool
        self.pool_mv = memoryview(pool)

    def size(self, mean, sigma, cap):
        # lognormal with the requested mean
        s = mean * math.exp(self.rng.gauss(0.0, sigma) - sigma * sigma / 2.0)
        return max(24, min(int(s), cap))

    def make(self, header, size, rand_frac):
        rng = self.rng
        n_rand = int(size * rand_frac)
        n_text = max(0, size - n_rand - len(header))
        if n_text > len(self.pool) - 1:
            # very large value: several slices of the pool
            parts = [header]
            left = n_text
            while left > 0:
                n = min(left, len(self.pool) // 2)
                off = rng.randrange(len(self.pool) - n)
                parts.append(self.pool_mv[off:off + n])
                left -= n
            parts.append(rng.randbytes(n_rand))
            return b"".join(parts)
        off = rng.randrange(len(self.pool) - n_text) if n_text else 0
        return b"".join((header, self.pool_mv[off:off + n_text], rng.randbytes(n_rand)))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_field(num, wire, payload):
    if wire == 0:
        return varint(num << 3) + varint(payload)
    return varint((num << 3) | 2) + varint(len(payload)) + payload


def cluster_identity(rng, version):
    """configuration/clusterId: a protobuf-encoded ClusterIdentity. The field layout is a
    plausible guess (identity, serial, created, version{major, minor, patch, buildNumber,
    qualifier}), not taken from Dremio."""
    parts = (version.split("-", 1)[0].split(".") + ["0", "0", "0"])[:3]
    major, minor, patch = (int(p) if p.isdigit() else 0 for p in parts)
    qualifier = version.split("-", 1)[1] if "-" in version else ""
    ver = (pb_field(1, 0, major) + pb_field(2, 0, minor) + pb_field(3, 0, patch)
           + pb_field(4, 0, 0) + pb_field(5, 2, qualifier.encode()))
    return (pb_field(1, 2, rand_uuid(rng).encode()) + pb_field(2, 0, 1)
            + pb_field(3, 0, BASE_TS_MS - 86400000 * 90) + pb_field(4, 2, ver))


def make_key(style, rng, i, table):
    if style == "uuid":
        return rand_uuid(rng).encode()
    if style == "nspath":
        return (f"{rng.choice(SPACES).lower()}.{rng.choice(FOLDERS)}.{rng.choice(NOUNS)}_{i}"
                .encode())
    if style == "jobattempt":
        return f"{rand_uuid(rng)}:{rng.randrange(3)}".encode()
    if style == "token":
        return rng.randbytes(24).hex().encode()
    if style == "dsversion":
        return (f"{rng.choice(SPACES)}.{rng.choice(NOUNS)}_{i}/{rng.getrandbits(64):016x}"
                .encode())
    if style == "source":
        return f"source-{i}-{rng.choice(['s3', 'nas', 'postgres', 'hive', 'nessie'])}".encode()
    if style == "split":
        return (f"{rand_uuid(rng)}_{rng.randrange(1, 50)}_{i:08d}").encode()
    if style == "confkey":
        return f"config.{rng.choice(WORDS)}.{i}".encode()
    if style == "option":
        return f"{rng.choice(['planner', 'exec', 'store', 'dremio', 'support'])}.{rng.choice(WORDS)}.{i}".encode()
    if style == "upgrade":
        return f"upgrade-task-{i:04d}".encode()
    raise ValueError(style)


def rocks_options(compression, write_buffer):
    o = Options(raw_mode=True)
    o.create_if_missing(True)
    o.create_missing_column_families(True)
    o.set_compression_type(compression)
    o.set_write_buffer_size(write_buffer)
    o.set_max_write_buffer_number(3)
    o.set_target_file_size_base(64 * MIB)
    # Bulk load: no compactions while loading (L0 file-count stalls are off as well).
    o.set_disable_auto_compactions(True)
    o.increase_parallelism(max(2, os.cpu_count() or 2))
    o.set_keep_log_file_num(10)
    return o


def write_rocksdb(catalog, budget, seed, pool, compression, version):
    os.makedirs(os.path.dirname(catalog), exist_ok=True)
    write_buffer = 32 * MIB if budget > 256 * MIB else 16 * MIB
    # Two opens, each in its own function so that every handle is gone before the next open.
    counts = _bulk_load(catalog, budget, seed, pool, compression, version, write_buffer)
    gc.collect()
    _wal_tail(catalog, seed, compression, write_buffer, counts)
    gc.collect()
    # rocksdict leaves its own config file in the directory; a Dremio store has no such file.
    try:
        os.unlink(os.path.join(catalog, "rocksdict-config.json"))
    except FileNotFoundError:
        pass
    return counts


def _bulk_load(catalog, budget, seed, pool, compression, version, write_buffer):
    opts = rocks_options(compression, write_buffer)
    cfs = {name: rocks_options(compression, write_buffer) for name in TABLES}
    db = Rdict(catalog, opts, column_families=cfs)
    bulk = WriteOptions()
    bulk.disable_wal = True
    counts = {}
    share_total = sum(t[0] for t in TABLES.values())
    try:
        # 'default' holds per-table metadata in Dremio.
        default = db.get_column_family_handle("default")
        wb = WriteBatch(raw_mode=True)
        for name in TABLES:
            info = {"tablename": name, "keyFormat": {"type": 0}, "valueFormat": {"type": 1},
                    "version": 1}
            wb.put(f"$table.{name}".encode(), json.dumps(info, sort_keys=True).encode(), default)
        db.write(wb, bulk)
        counts["default"] = len(TABLES)

        for name, (share, mean, sigma, rand_frac, style) in TABLES.items():
            rng = rng_for(seed, "kv:" + name)
            vm = ValueMaker(rng, pool)
            handle = db.get_column_family_handle(name)
            target = int(budget * share / share_total)
            cap = 1 * MIB if mean > 10000 else 64 * 1024
            written = 0
            n = 0
            seen = set()
            wb = WriteBatch(raw_mode=True)
            while written < target or n < 5:
                key = make_key(style, rng, n, name)
                if key in seen:
                    continue
                seen.add(key)
                header = (b"\x0a" + varint(len(key)) + key + b"\x10" + varint(n)
                          + b"\x1a" + f'{{"tag":"{rng.getrandbits(40):010x}","ts":{BASE_TS_MS - n * 997}}}'.encode())
                val = vm.make(header, vm.size(mean, sigma, cap), rand_frac)
                wb.put(key, val, handle)
                written += len(key) + len(val)
                n += 1
                if wb.size_in_bytes() >= 4 * MIB:
                    db.write(wb, bulk)
                    wb = WriteBatch(raw_mode=True)
            if name == "configuration":
                wb.put(b"clusterId", cluster_identity(rng, version), handle)
                n += 1
            if not wb.is_empty():
                db.write(wb, bulk)
            counts[name] = n
        # The bulk writes skipped the WAL: flush every column family before anything else.
        for name in ["default"] + list(TABLES):
            cf = db.get_column_family(name)
            cf.flush(True)
            cf.close()
            del cf
        del default, handle, wb
    finally:
        db.close()
        del db
    return counts


def _wal_tail(catalog, seed, compression, write_buffer, counts):
    # A few last writes that go through the WAL, as a coordinator that just did some work and
    # then stopped: RocksDB keeps them in the *.log file (not in an .sst) until the next open
    # replays them. Dropping the handle without close() keeps rocksdict from flushing them.
    db = Rdict(catalog, rocks_options(compression, write_buffer),
               column_families={name: rocks_options(compression, write_buffer) for name in TABLES})
    try:
        rng = rng_for(seed, "kv:wal")
        wal = WriteOptions()
        wal.sync = True
        for name in ("jobs", "options", "userGroup", "dac-namespace"):
            handle = db.get_column_family_handle(name)
            wb = WriteBatch(raw_mode=True)
            for j in range(8):
                key = f"wal-tail-{name}-{j:02d}".encode()
                wb.put(key, json.dumps({"n": j, "table": name, "v": rng.getrandbits(64)}).encode(),
                       handle)
            db.write(wb, wal)
            del handle
            counts[name] += 8
        del wb
    finally:
        del db


def write_file(path, data, mode=None):
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)


def write_blobs(db_dir, budget, seed, pool):
    rng = rng_for(seed, "blob")
    vm = ValueMaker(rng, pool)
    written = 0
    n = 0
    for t in BLOB_TABLES:
        os.makedirs(os.path.join(db_dir, "blob", t), exist_ok=True)
    while written < budget or n < len(BLOB_TABLES):
        t = BLOB_TABLES[n % len(BLOB_TABLES)]
        size = vm.size(max(64 * 1024, min(1 * MIB, budget // 8 or 1)), 0.8, 16 * MIB)
        size = max(1024, min(size, max(1024, budget - written)))
        data = vm.make(f"BLOB {t} {n}\n".encode(), size, 0.1)
        write_file(os.path.join(db_dir, "blob", t, rand_uuid(rng) + ".blob"), data)
        written += len(data)
        n += 1


def write_kv_metadata(db_dir):
    os.makedirs(os.path.join(db_dir, "metadata"), exist_ok=True)
    for name in TABLES:
        meta = {"tableName": name, "version": 1, "keyFormat": "STRING",
                "valueFormat": "PROTOSTUFF", "indexed": name in SEARCH_INDEXES}
        write_file(os.path.join(db_dir, "metadata", f"{name}_metadata.json"),
                   json.dumps(meta, indent=2).encode())


def write_search(db_dir, budget, seed):
    rng = rng_for(seed, "search")
    per = max(4096, budget // len(SEARCH_INDEXES))
    for idx in SEARCH_INDEXES:
        d = os.path.join(db_dir, "search", idx)
        os.makedirs(d, exist_ok=True)
        gen = rng.randrange(2, 40)
        write_file(os.path.join(d, f"segments_{gen:x}"), b"\x3f\xd7\x6c\x17" + rng.randbytes(300))
        write_file(os.path.join(d, "write.lock"), b"")
        for seg in range(3):
            size = per // 3
            body = rng.randbytes(size // 2) + (b"term\x00posting\x01" * (size // 28))
            write_file(os.path.join(d, f"_{seg}.cfs"), b"\x3f\xd7\x6c\x17" + body)
            write_file(os.path.join(d, f"_{seg}.cfe"), b"\x3f\xd7\x6c\x17" + rng.randbytes(150))
            write_file(os.path.join(d, f"_{seg}.si"), b"\x3f\xd7\x6c\x17" + rng.randbytes(360))


AWKWARD = [
    ("@dremio", "données été.csv"),
    ("@dremio", "日本語.json"),
    ("@dremio", "sub folder/report 2024 (final).csv"),
    ("@dremio", "l'été & co = 50% + more.txt"),
    ("@dremio", "#hash,comma;semi[brackets]{braces}.tsv"),
    ("@dremio", "📊 chart ünïcödé.json"),
    ("@alice.smith", "nested/deeper/deepest/data.parquet"),
    ("@alice.smith", "Quarterly  Report   (double  spaces).csv"),
    ("@alice.smith", "-leading-dash.csv"),
    ("@alice.smith", "trailing space .csv"),
    ("@carol_jones", "Ünïcode Földer/Ñandú/señal.json"),
    ("@carol_jones", "x" * 180 + ".csv"),
    ("@erin.o'neil", "q?a*b:c.csv"),
]


def write_uploads(uploads_root, budget, small_files, seed, pool):
    rng = rng_for(seed, "uploads")
    vm = ValueMaker(rng, pool)
    up = os.path.join(uploads_root, "_uploads")
    os.makedirs(up, exist_ok=True)
    per = max(256, budget // (len(AWKWARD) + 2))
    for home, rel in AWKWARD:
        path = os.path.join(up, home, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        frac = 0.9 if rel.endswith(".parquet") else 0.05
        write_file(path, vm.make(f"# {rel}\n".encode(), vm.size(per, 0.5, 4 * per), frac))
    # an empty file and an empty folder
    os.makedirs(os.path.join(up, "@alice.smith"), exist_ok=True)
    write_file(os.path.join(up, "@alice.smith", "empty.csv"), b"")
    os.makedirs(os.path.join(up, "@alice.smith", "empty folder"), exist_ok=True)
    os.makedirs(os.path.join(up, "@bob", "nothing here yet"), exist_ok=True)
    # one bigger upload
    big = max(0, budget - per * len(AWKWARD))
    if big:
        os.makedirs(os.path.join(up, "@bob"), exist_ok=True)
        write_file(os.path.join(up, "@bob", "big export.csv"),
                   vm.make(b"id,customer_id,amount,region\n", big, 0.1))
    # many small files spread over many folders
    srng = rng_for(seed, "small-files")
    pool_len = len(pool)
    base = os.path.join(up, "@svc_etl", "landing")
    exts = (".csv", ".json", ".txt", ".tsv", ".xlsx")
    files_per_dir = 100
    dirs_per_batch = 40
    d = None
    for i in range(small_files):
        if i % files_per_dir == 0:
            b, r = divmod(i // files_per_dir, dirs_per_batch)
            d = os.path.join(base, f"batch-{b:04d}", f"part {r:02d}")
            os.makedirs(d, exist_ok=True)
        r = srng.random()
        size = 0 if r < 0.02 else (srng.randrange(1, 2048) if r < 0.98 else srng.randrange(2048, 32768))
        if size:
            n_rand = size // 10
            off = srng.randrange(pool_len - size)
            data = pool[off:off + size - n_rand] + srng.randbytes(n_rand)
        else:
            data = b""
        with open(os.path.join(d, f"file_{i:07d}{exts[i % len(exts)]}"), "wb") as f:
            f.write(data)


def write_security(sec, seed):
    rng = rng_for(seed, "security")
    os.makedirs(sec, exist_ok=True)
    os.chmod(sec, 0o700)
    write_file(os.path.join(sec, "keystore.p12"), b"\x30\x82" + rng.randbytes(2600), 0o600)
    write_file(os.path.join(sec, "truststore.p12"), b"\x30\x82" + rng.randbytes(1300), 0o600)
    write_file(os.path.join(sec, "system.key"), rng.randbytes(32).hex().encode() + b"\n", 0o600)


def write_skipped(data, seed):
    """Things in paths.local that a backup does not take."""
    rng = rng_for(seed, "skipped")
    res = os.path.join(data, "pdfs", "results", rand_uuid(rng))
    os.makedirs(res, exist_ok=True)
    write_file(os.path.join(res, "0_0_0.arrow"), b"ARROW1\x00\x00" + rng.randbytes(8192))
    acc = os.path.join(data, "pdfs", "accelerator", rand_uuid(rng), rand_uuid(rng))
    os.makedirs(acc, exist_ok=True)
    write_file(os.path.join(acc, "0_0_0.parquet"), b"PAR1" + rng.randbytes(4096) + b"PAR1")
    os.makedirs(os.path.join(data, "pdfs", "scratch"), exist_ok=True)
    os.makedirs(os.path.join(data, "log"), exist_ok=True)
    write_file(os.path.join(data, "log", "server.log"),
               b"2024-10-24 14:28:10,011 [main] INFO  c.dremio.dac.daemon.DremioDaemon - "
               b"Dremio Daemon Started as master\n" * 20)
    write_file(os.path.join(data, "log", "queries.json"), b'{"queryId":"x","outcome":"COMPLETED"}\n' * 10)


def write_home(home, data, version, build):
    for d in ("conf", "jars", os.path.join("jars", "3rdparty"), "bin", "lib", "log"):
        os.makedirs(os.path.join(home, d), exist_ok=True)
    conf = (
        "#\n"
        "# Dremio configuration (HOCON). Fixture written by lifeboat's scripts/gen_fixture.py:\n"
        "# a test fixture, not a real installation.\n"
        "#\n"
        "\n"
        "paths: {\n"
        "  # the local path for dremio to store data.\n"
        f"  local: {json.dumps(data)}\n"
        "\n"
        "  # the distributed path Dremio data including job results, downloads, uploads, etc\n"
        '  dist: "pdfs://"${paths.local}"/pdfs"\n'
        "}\n"
        "\n"
        "services: {\n"
        "  coordinator.enabled: true,\n"
        "  coordinator.master.enabled: true,\n"
        "  executor.enabled: false,\n"
        "  flight.use_session_service: true\n"
        "}\n"
    )
    write_file(os.path.join(home, "conf", "dremio.conf"), conf.encode())
    write_file(os.path.join(home, "conf", "dremio-env"),
               b"#DREMIO_MAX_HEAP_MEMORY_SIZE_MB=\n#DREMIO_MAX_DIRECT_MEMORY_SIZE_MB=\n"
               b"DREMIO_LOG_DIR=${DREMIO_HOME}/log\n")
    write_file(os.path.join(home, "conf", "logback.xml"),
               b'<?xml version="1.0" encoding="UTF-8"?>\n<configuration/>\n')
    stamp = f"{version}-{build}"
    for art in ("dremio-dac-backend", "dremio-common", "dremio-services-datastore",
                "dremio-sabot-kernel", "dremio-ce-jdbc-plugin"):
        write_file(os.path.join(home, "jars", f"{art}-{stamp}.jar"), b"")
    for jar in ("guava-33.0.jar", "jackson-databind-2.17.2.jar"):
        write_file(os.path.join(home, "jars", jar), b"")
    for jar in ("rocksdbjni-8.10.0.jar", "netty-common-4.1.114.Final.jar",
                "protostuff-core-1.8.0.jar", "guava-33.0.jar"):
        write_file(os.path.join(home, "jars", "3rdparty", jar), b"")
    write_file(os.path.join(home, "log", "server.out"), b"")


def tree_stats(root):
    files = 0
    size = 0
    stack = [root]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    files += 1
                    size += e.stat(follow_symlinks=False).st_size
    return {"files": files, "bytes": size}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Build a fake Dremio installation + data tree.")
    ap.add_argument("--out", required=True, help="output directory (missing or empty)")
    ap.add_argument("--version", default="25.2.0")
    ap.add_argument("--build", default="202410241428100111-a963b970",
                    help="build stamp and commit, as in the jar names")
    ap.add_argument("--size-mib", type=float, default=8, help="approximate size on disk of DIR/data (default 8)")
    ap.add_argument("--small-files", type=int, default=50,
                    help="extra small uploaded files (default 50)")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--sst-compression", default="snappy",
                    choices=["snappy", "none", "lz4", "zstd"],
                    help="RocksDB block compression (default snappy, RocksDB's default)")
    args = ap.parse_args(argv)
    if args.size_mib <= 0 or args.small_files < 0:
        ap.error("--size-mib must be > 0 and --small-files >= 0")

    t0 = time.monotonic()
    out = os.path.abspath(args.out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        sys.exit(f"gen_fixture.py: {out} exists and is not an empty directory")
    os.makedirs(out, exist_ok=True)
    home = os.path.join(out, "home")
    data = os.path.join(out, "data")
    db_dir = os.path.join(data, "db")
    uploads = os.path.join(data, "pdfs", "uploads")
    security = os.path.join(data, "security")

    budget = int(args.size_mib * MIB)
    pool_size = int(min(2 * MIB, max(256 * 1024, budget // 4)))
    pool = build_text_pool(rng_for(args.seed, "pool"), pool_size)

    write_home(home, data, args.version, args.build)
    os.makedirs(db_dir, exist_ok=True)
    compression = getattr(DBCompressionType, args.sst_compression)()
    # The budget is for bytes on disk; RocksDB compresses its blocks, so write more.
    inflate = {"none": 1.0, "snappy": 1.75, "lz4": 1.75, "zstd": 3.0}[args.sst_compression]
    counts = write_rocksdb(os.path.join(db_dir, "catalog"), int(budget * SHARE_ROCKS * inflate), args.seed,
                           pool, compression, args.version)
    write_blobs(db_dir, int(budget * SHARE_BLOB), args.seed, pool)
    write_kv_metadata(db_dir)
    write_search(db_dir, int(budget * SHARE_SEARCH), args.seed)
    os.makedirs(os.path.join(db_dir, "checkpoints"), exist_ok=True)
    write_uploads(uploads, int(budget * SHARE_UPLOADS), args.small_files, args.seed, pool)
    write_security(security, args.seed)
    write_skipped(data, args.seed)

    whole = tree_stats(out)
    summary = {
        "home": home,
        "paths_local": data,
        "db": db_dir,
        "catalog": os.path.join(db_dir, "catalog"),
        "uploads": uploads,
        "security": security,
        "version": args.version,
        "build": args.build,
        "seed": args.seed,
        "files": whole["files"],
        "bytes": whole["bytes"],
        "parts": {
            "db": tree_stats(db_dir),
            "uploads": tree_stats(uploads),
            "security": tree_stats(security),
        },
        "records": sum(counts.values()),
        "records_per_cf": counts,
        "elapsed_s": round(time.monotonic() - t0, 2),
    }
    json.dump(summary, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
