#!/usr/bin/env bash
# `scripts/bench.sh --only metadata`: backing up and restoring a Druid metadata store of
# METADATA_ROWS segment rows (1,000,000 by default) with lifeboat, against pg_dump / pg_restore on
# the same database, in one run, alternating the tools run by run.
#
#   scripts/lib/metadata_bench.sh LIFEBOAT_BIN BENCH_DIR RUNS RESULTS
#
# It starts its own PostgreSQL (scripts/postgres.sh, loopback, fsync off for both tools alike),
# seeds a database with Druid's tables as Druid creates them (druid_segments with its two
# indexes, rules, configs, datasource offsets, supervisors, audit) and METADATA_ROWS segments whose
# payloads are DataSegment JSON of the usual size (~750 bytes, s3_zip loadSpecs), then per run:
#   lifeboat backup   --druid-metadata ... --to BENCH_DIR/repo        (zstd -3, one transaction)
#   pg_dump -Fc       -t 'druid_*' -f BENCH_DIR/pg-N.dump             (its default gzip level)
#   lifeboat restore  into a new database                             (one transaction)
#   pg_restore        --single-transaction into a new database        (the same guarantee)
# each under /usr/bin/time -v (wall, CPU, peak RSS of the client process; the server's own work is
# not in the client's figures, for either tool). Every restored database is checked: the same rows
# (count and an md5 over id || payload ordered by id) as the source. Results: a table of medians
# and ratios, appended to RESULTS.
set -euo pipefail

LB="$1"
BENCH_DIR="$2"
RUNS="$3"
RESULTS="$4"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROWS="${METADATA_ROWS:-1000000}"
[[ "$ROWS" =~ ^[0-9]+$ && "$ROWS" -ge 1000 ]] || { echo "METADATA_ROWS must be >= 1000" >&2; exit 2; }

MB="$BENCH_DIR/metadata"
LOGS="$MB/logs"
mkdir -p "$MB" "$LOGS"
MEAS="$MB/measurements.tsv"
: >"$MEAS"
note() { echo "metadata-bench: $*" >&2; }
die() { echo "metadata-bench: $*" >&2; exit 1; }

PG_STATE="$MB/pg"
mkdir -p "$PG_STATE"
stop_pg() { "$REPO/scripts/postgres.sh" stop "$PG_STATE" >/dev/null 2>&1 || true; }
trap stop_pg EXIT
"$REPO/scripts/postgres.sh" start "$PG_STATE" >/dev/null
# shellcheck disable=SC1091
source "$PG_STATE/env"
# postgres://lifeboat:<pw>@127.0.0.1:<port>/druid
rest="${LIFEBOAT_PG_URL#postgres://lifeboat:}"
PGPASSWORD="${rest%%@*}"
hostport="${rest#*@}"
hostport="${hostport%%/*}"
export PGPASSWORD PGHOST="${hostport%%:*}" PGPORT="${hostport##*:}" PGUSER=lifeboat
export LIFEBOAT_DRUID_METADATA_PASSWORD="$PGPASSWORD"
export LIFEBOAT_PROGRESS=none
BIN="$(ls -d /usr/lib/postgresql/*/bin | head -n 1)"
PSQL=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -d druid)
meta_url() { echo "postgres://lifeboat@$PGHOST:$PGPORT/$1"; }

note "seeding $ROWS segment rows"
"${PSQL[@]}" -c "CREATE DATABASE bench_src"
"$BIN/psql" -X -q -v ON_ERROR_STOP=1 -d bench_src -v rows="$ROWS" <<'SQL'
CREATE TABLE druid_segments (id VARCHAR(255) NOT NULL, dataSource VARCHAR(255) NOT NULL,
  created_date VARCHAR(255) NOT NULL, start VARCHAR(255) NOT NULL, "end" VARCHAR(255) NOT NULL,
  partitioned BOOLEAN NOT NULL, version VARCHAR(255) NOT NULL, used BOOLEAN NOT NULL,
  payload BYTEA NOT NULL, used_status_last_updated VARCHAR(255) NOT NULL,
  schema_fingerprint VARCHAR(255), num_rows BIGINT, PRIMARY KEY (id));
CREATE INDEX idx_druid_segments_used ON druid_segments(used);
CREATE INDEX idx_druid_segments_datasource_used_end_start ON druid_segments(dataSource, used, "end", start);
CREATE TABLE druid_rules (id VARCHAR(255) NOT NULL, dataSource VARCHAR(255) NOT NULL,
  version VARCHAR(255) NOT NULL, payload BYTEA NOT NULL, PRIMARY KEY (id));
CREATE TABLE druid_config (name VARCHAR(255) NOT NULL, payload BYTEA NOT NULL, PRIMARY KEY (name));
CREATE TABLE druid_dataSource (dataSource VARCHAR(255) NOT NULL, created_date VARCHAR(255) NOT NULL,
  commit_metadata_payload BYTEA NOT NULL, commit_metadata_sha1 VARCHAR(255) NOT NULL,
  PRIMARY KEY (dataSource));
CREATE TABLE druid_supervisors (id BIGSERIAL NOT NULL, spec_id VARCHAR(255) NOT NULL,
  created_date VARCHAR(255) NOT NULL, payload BYTEA NOT NULL, PRIMARY KEY (id));
CREATE TABLE druid_audit (id BIGSERIAL NOT NULL, audit_key VARCHAR(255) NOT NULL,
  type VARCHAR(255) NOT NULL, author VARCHAR(255) NOT NULL, comment VARCHAR(2048) NOT NULL,
  created_date VARCHAR(255) NOT NULL, payload BYTEA NOT NULL, PRIMARY KEY (id));
INSERT INTO druid_segments
SELECT ds || '_' || s || '_' || e || '_2026-11-01T00:00:00.000Z' || CASE WHEN p > 0 THEN '_' || p ELSE '' END,
  ds, '2026-11-01T00:00:00.000Z', s, e, true, '2026-11-01T00:00:00.000Z', g % 10 <> 0,
  convert_to(json_build_object(
    'dataSource', ds, 'interval', s || '/' || e, 'version', '2026-11-01T00:00:00.000Z',
    'loadSpec', json_build_object('type', 's3_zip', 'bucket', 'druid-deep-storage',
       'key', 'druid/segments/' || ds || '/' || s || '_' || e || '/2026-11-01T00:00:00.000Z/' || p || '/index.zip',
       'S3Schema', 's3n'),
    'dimensions', 'channel,cityName,comment,countryIsoCode,countryName,isAnonymous,isMinor,isNew,isRobot,isUnpatrolled,metroCode,namespace,page,regionIsoCode,regionName,user',
    'metrics', 'count,added,deleted,delta,sum_added',
    'shardSpec', json_build_object('type', 'numbered', 'partitionNum', p, 'partitions', 4),
    'lastCompactionState', NULL, 'binaryVersion', 9, 'size', 1000000 + g,
    'identifier', ds || '_' || s || '_' || e || '_2026-11-01T00:00:00.000Z')::text, 'UTF8'),
  '2026-11-01T00:00:00.000Z', NULL, 100000 + g
FROM (SELECT g, 'wikipedia_' || (g % 20) AS ds, (g / 20) % 4 AS p,
        to_char(timestamp '2020-01-01' + (g / 80) * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS s,
        to_char(timestamp '2020-01-01' + (g / 80 + 1) * interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS e
      FROM generate_series(1, :rows) AS g) AS t;
INSERT INTO druid_rules SELECT 'wikipedia_' || i || '_2026-11-01', 'wikipedia_' || i, '2026-11-01T00:00:00.000Z',
  convert_to('[{"type":"loadByPeriod","period":"P1M","tieredReplicants":{"_default_tier":2}},{"type":"dropForever"}]', 'UTF8')
  FROM generate_series(0, 19) AS i;
INSERT INTO druid_config VALUES ('coordinator.config', convert_to('{"millisToWaitBeforeDeleting":900000,"maxSegmentsToMove":100}', 'UTF8')),
  ('lookupsConfig', convert_to('{"__default":{"country":{"version":"v1","lookupExtractorFactory":{"type":"map","map":{"a\\b":"c\"d"}}}}}', 'UTF8'));
INSERT INTO druid_dataSource SELECT 'wikipedia_' || i, '2026-11-01T00:00:00.000Z',
  convert_to('{"type":"kafka","partitions":{"type":"end","stream":"wiki","partitionOffsetMap":{"0":' || (1000 * i) || '}}}', 'UTF8'), md5(i::text)
  FROM generate_series(0, 19) AS i;
INSERT INTO druid_supervisors (spec_id, created_date, payload) SELECT 'wikipedia_' || (i % 20), '2026-11-01T00:00:00.000Z',
  convert_to('{"type":"kafka","spec":{"dataSchema":{"dataSource":"wikipedia_' || (i % 20) || '"}},"suspended":false}', 'UTF8')
  FROM generate_series(0, 59) AS i;
INSERT INTO druid_audit (audit_key, type, author, comment, created_date, payload)
  SELECT 'wikipedia_' || (i % 20), 'rules', 'admin', 'bench', '2026-11-01T00:00:00.000Z', convert_to('[]', 'UTF8')
  FROM generate_series(0, 999) AS i;
VACUUM ANALYZE druid_segments;
SQL
src_size="$("$BIN/psql" -X -At -d bench_src -c "SELECT pg_database_size('bench_src')")"

# fingerprint DB: rows and an md5 over every segment's md5 of id and payload, in id order (one
# 1 GiB string of them all would exceed PostgreSQL's limit).
fingerprint() {
    "$BIN/psql" -X -At -d "$1" -c "SELECT count(*) || ' ' || md5(string_agg(md5(id || encode(payload, 'hex')), '' ORDER BY id)) FROM druid_segments"
}
want="$(fingerprint bench_src)"

# measure NAME RUN CMD...: CMD under /usr/bin/time -v; wall, CPU, peak RSS appended to MEAS.
measure() {
    local name="$1" run="$2" base="$LOGS/$1-$2"
    shift 2
    sync
    note "run $run: $name"
    if ! /usr/bin/time -v -o "$base.time" "$@" >"$base.out" 2>"$base.err"; then
        tail -n 20 "$base.err" >&2
        die "$name (run $run) failed: $*"
    fi
    awk -F': ' -v n="$name" -v r="$run" '
        /Elapsed \(wall clock\) time/ { k = split($NF, p, ":"); w = (k == 3) ? p[1] * 3600 + p[2] * 60 + p[3] : p[1] * 60 + p[2] }
        /User time \(seconds\)/ { u = $NF }
        /System time \(seconds\)/ { s = $NF }
        /Maximum resident set size \(kbytes\)/ { m = $NF }
        END { printf "%s\t%s\t%.2f\t%.2f\t%d\n", n, r, w, u + s, m }' "$base.time" >>"$MEAS"
}

check_db() {
    local got
    got="$(fingerprint "$1")"
    [[ "$got" == "$want" ]] || die "$2: restored segments differ from the source ($got, want $want)"
}

mkdir -m 700 "$MB/repo"
for run in $(seq 1 "$RUNS"); do
    order=(lifeboat pg)
    ((run % 2 == 0)) && order=(pg lifeboat)
    for tool in "${order[@]}"; do
        if [[ $tool == lifeboat ]]; then
            measure lifeboat_backup "$run" "$LB" --json --progress none backup \
                --druid-metadata "$(meta_url bench_src)" --to "$MB/repo" --cluster bench
        else
            measure pg_dump "$run" "$BIN/pg_dump" -Fc -d bench_src -t 'druid_*' -f "$MB/pg-$run.dump"
        fi
    done
    for tool in "${order[@]}"; do
        if [[ $tool == lifeboat ]]; then
            "${PSQL[@]}" -c "CREATE DATABASE lb_dst_$run"
            measure lifeboat_restore "$run" "$LB" --json --progress none restore --from "$MB/repo" \
                --cluster bench --backup latest --druid-metadata "$(meta_url "lb_dst_$run")"
            check_db "lb_dst_$run" "lifeboat restore (run $run)"
            "${PSQL[@]}" -c "DROP DATABASE lb_dst_$run"
        else
            "${PSQL[@]}" -c "CREATE DATABASE pg_dst_$run"
            measure pg_restore "$run" "$BIN/pg_restore" --single-transaction --no-owner \
                -d "pg_dst_$run" "$MB/pg-$run.dump"
            check_db "pg_dst_$run" "pg_restore (run $run)"
            "${PSQL[@]}" -c "DROP DATABASE pg_dst_$run"
        fi
    done
done

lb_bytes="$(find "$MB/repo" -name data.tar.zst -printf '%s\n' | sort -n | tail -n 1)"
pg_bytes="$(stat -c %s "$MB/pg-1.dump")"
raw_bytes="$(find "$MB/repo" -name manifest.json | head -n 1 | xargs python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["raw_bytes"])')"

python3 - "$MEAS" "$ROWS" "$src_size" "$lb_bytes" "$pg_bytes" "$raw_bytes" "$RESULTS" <<'PYEOF'
import statistics, sys
meas, rows, src, lb_bytes, pg_bytes, raw, results = sys.argv[1:]
rows, src, lb_bytes, pg_bytes, raw = int(rows), int(src), int(lb_bytes), int(pg_bytes), int(raw)
by = {}
for line in open(meas):
    name, run, wall, cpu, rss = line.split("\t")
    by.setdefault(name, []).append((float(wall), float(cpu), int(rss)))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3)) for k, v in by.items()}
out = [f"DRUID METADATA STORE: {rows:,} segment rows, database {src / 2**20:.0f} MiB on disk, "
       f"{raw / 2**20:.0f} MiB of table files, runs {len(by['pg_dump'])} (medians)", ""]
hdr = f"{'command':<18} {'wall s':>8} {'CPU s':>7} {'rows/s':>10} {'MiB/s':>7} {'max RSS MiB':>12}"
out += [hdr, "-" * len(hdr)]
for k in ["lifeboat_backup", "pg_dump", "lifeboat_restore", "pg_restore"]:
    w, c, r = med[k]
    out.append(f"{k:<18} {w:>8.2f} {c:>7.2f} {rows / w:>10,.0f} {src / 2**20 / w:>7.1f} {r / 1024:>12.1f}")
out.append("")
for a, b in [("lifeboat_backup", "pg_dump"), ("lifeboat_restore", "pg_restore")]:
    out.append(f"{a} / {b}: wall {med[a][0] / med[b][0]:.2f}x, peak RSS {med[a][2] / med[b][2]:.2f}x")
out.append(f"stored: lifeboat {lb_bytes / 2**20:.1f} MiB (zstd -3), pg_dump -Fc {pg_bytes / 2**20:.1f} MiB "
           f"(gzip), ratio {lb_bytes / pg_bytes:.2f}x")
out += ["", "MiB/s is the source database's size on disk (tables and indexes) over wall time.",
        "pg_restore runs with --single-transaction, the guarantee lifeboat's restore gives.", ""]
text = "\n".join(out) + "\n"
print(text, end="")
with open(results, "a") as f:
    f.write(text)
PYEOF
