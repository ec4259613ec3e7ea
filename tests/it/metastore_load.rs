//! `metastore::load` against real servers, both kinds: a Druid-like store seeded on the first
//! server, dumped, and loaded into a fresh database on the SECOND server (PostgreSQL's and
//! MariaDB's solo servers). Every row must come back equal (payload bytes included) but for the
//! documented transforms; a non-empty target is refused untouched; a damaged file, a failure in
//! the middle (a duplicate key) and an interruption leave every table empty; a dry run writes
//! nothing; a deep-storage map rewrites every loadSpec.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use lifeboat::druid::loadspec::{self, DeepStorageMap};
use lifeboat::druid::metastore::csv::{CsvWriter, Field};
use lifeboat::druid::metastore::dump::TableDump;
use lifeboat::druid::metastore::load::{self, LoadOptions, LoadReport};
use lifeboat::druid::metastore::{self, Db, DbKind, MetaError};
use lifeboat::progress::Progress;
use mysql_async::prelude::Queryable;
use tokio_util::sync::CancellationToken;

use crate::support::block;
use crate::support::metastore::{self as ms, DbUrl};

type Rows = Vec<Vec<Option<Vec<u8>>>>;

/// The restore time of every test, so the backfilled values are known.
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-02T04:15:00Z")
        .unwrap()
        .with_timezone(&Utc)
}
const NOW: &str = "2026-12-02T04:15:00.000Z";

fn options() -> LoadOptions {
    LoadOptions {
        now: now(),
        resume_supervisors: false,
        map: DeepStorageMap::default(),
        dry_run: false,
    }
}

/// Notes kept; cancels `cancel` once `cancel_after` bytes were read.
#[derive(Default)]
struct Probe {
    notes: std::sync::Mutex<Vec<String>>,
    advanced: AtomicU64,
    cancel: Option<CancellationToken>,
    cancel_after: u64,
}

impl Progress for Probe {
    fn phase(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, bytes: u64) {
        let total = self.advanced.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(c) = &self.cancel {
            if total >= self.cancel_after {
                c.cancel();
            }
        }
    }
    fn finish(&self) {}
    fn note(&self, line: &str) {
        self.notes.lock().unwrap().push(line.to_string());
    }
}

/// lifeboat's connection to `db`, made by the test (so these tests do not depend on `connect`).
async fn connect(db: &DbUrl) -> Db {
    match db.kind {
        DbKind::Postgresql => Db::Pg(ms::pg_client(db).await),
        DbKind::Mysql => Db::My(ms::my_conn(db).await),
    }
}

/// A seeded store on the first server of `kind` and its table files in a temporary folder.
struct Dumped {
    source: DbUrl,
    dir: tempfile::TempDir,
    tables: Vec<TableDump>,
}

/// A value of the test's own seed, written both as SQL (into the source) and as the table
/// files' dialect (through lifeboat's CsvWriter).
#[derive(Clone)]
enum Val {
    Null,
    Text(String),
    Bin(Vec<u8>),
    Bool(bool),
    Int(i64),
}

fn text(s: &str) -> Val {
    Val::Text(s.to_string())
}

fn sql_literal(kind: DbKind, v: &Val) -> String {
    match (kind, v) {
        (_, Val::Null) => "NULL".into(),
        (_, Val::Text(t)) => format!("'{}'", t.replace('\'', "''")),
        (DbKind::Postgresql, Val::Bin(b)) => format!("'\\x{}'::bytea", hex::encode(b)),
        (DbKind::Mysql, Val::Bin(b)) if b.is_empty() => "''".into(),
        (DbKind::Mysql, Val::Bin(b)) => format!("X'{}'", hex::encode(b)),
        (DbKind::Postgresql, Val::Bool(b)) => b.to_string(),
        (DbKind::Mysql, Val::Bool(b)) => (*b as u8).to_string(),
        (_, Val::Int(n)) => n.to_string(),
    }
}

/// (table, [(column, type)], rows): an old Druid's store (`used_status_last_updated` may be
/// NULL), with payloads that break naive loads (backslashes, quotes, newlines, NUL, non-UTF-8).
type SeedTable = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<Vec<Val>>,
);

fn seed_tables(kind: DbKind) -> Vec<SeedTable> {
    let (vc, bin, boolean, big) = match kind {
        DbKind::Postgresql => ("character varying", "bytea", "boolean", "bigint"),
        DbKind::Mysql => ("varchar", "longblob", "tinyint", "bigint"),
    };
    let interval = "2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z";
    let segment = |i: usize, used: bool, status: Val| {
        let id = format!("wiki_{interval}_v1_{i}");
        let payload = format!(
            r#"{{"dataSource":"wiki","interval":"2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z","version":"v1","loadSpec":{{"type":"s3_zip","bucket":"lb-src","key":"druid/segments/wiki/{interval}/v1/{i}/index.zip","S3Schema":"s3n"}},"dimensions":"a\\b\"c\u00e9\n","metrics":"{pad}","shardSpec":{{"type":"numbered","partitionNum":{i}}},"size":{size}}}"#,
            pad = "x".repeat(700),
            size = 1000 + i
        );
        vec![
            Val::Text(id),
            text("wiki"),
            text("2024-01-02T00:00:00.000Z"),
            text("2024-01-01T00:00:00.000Z"),
            text("2024-01-02T00:00:00.000Z"),
            Val::Bool(true),
            text("v1"),
            Val::Bool(used),
            Val::Bin(payload.into_bytes()),
            status,
            if i % 2 == 0 { Val::Null } else { text("fp1") },
            if i % 3 == 0 {
                Val::Null
            } else {
                Val::Int(i as i64 * 10)
            },
        ]
    };
    let mut segments: Vec<Vec<Val>> = (0..1500)
        .map(|i| segment(i, i % 5 != 0, text("2026-01-01T00:00:00.000Z")))
        .collect();
    segments.push(segment(1500, false, Val::Null));
    segments.push(segment(1501, false, text("")));
    let junk = vec![0u8, 0xff, b'\\', b'"', b'\n', b',', b'\r', 0xc3];
    let sup = |id: i64, spec: &str, payload: &str| {
        vec![
            Val::Int(id),
            text(spec),
            text("2025-06-01T00:00:00.000Z"),
            Val::Bin(payload.as_bytes().to_vec()),
        ]
    };
    vec![
        (
            "druid_segments",
            vec![
                ("id", vc),
                ("dataSource", vc),
                ("created_date", vc),
                ("start", vc),
                ("end", vc),
                ("partitioned", boolean),
                ("version", vc),
                ("used", boolean),
                ("payload", bin),
                ("used_status_last_updated", vc),
                ("schema_fingerprint", vc),
                ("num_rows", big),
            ],
            segments,
        ),
        (
            "druid_rules",
            vec![("id", vc), ("dataSource", vc), ("version", vc), ("payload", bin)],
            vec![
                vec![
                    text("_default_2024"),
                    text("_default"),
                    text("2024"),
                    Val::Bin(br#"[{"type":"loadForever","tieredReplicants":{"_default_tier":2}}]"#.to_vec()),
                ],
                vec![text("wiki_2024"), text("wiki"), text("2024"), Val::Bin(junk.clone())],
            ],
        ),
        (
            "druid_config",
            vec![("name", vc), ("payload", bin)],
            vec![
                vec![
                    text("coordinator.config"),
                    Val::Bin(br#"{"maxSegmentsToMove":5,"killDataSourceWhitelist":[]}"#.to_vec()),
                ],
                vec![
                    text("lookupsConfig"),
                    Val::Bin(br#"{"__default":{"country":{"version":"v1","lookupExtractorFactory":{"type":"map","map":{"a\\b":"\"q\""}}}}}"#.to_vec()),
                ],
                vec![text("basic_authentication_basic_users"), Val::Bin(junk.clone())],
                vec![text("NULL"), Val::Bin(Vec::new())],
            ],
        ),
        (
            "druid_dataSource",
            vec![
                ("dataSource", vc),
                ("created_date", vc),
                ("commit_metadata_payload", bin),
                ("commit_metadata_sha1", vc),
            ],
            vec![vec![
                text("wiki"),
                text("2025-06-01T00:00:00.000Z"),
                Val::Bin(br#"{"type":"kafka","partitions":{"type":"end","stream":"wiki","partitionOffsetMap":{"0":1234,"1":5678}}}"#.to_vec()),
                text("3f786850e387550fdab836ed7e6dc881de23001b"),
            ]],
        ),
        (
            "druid_supervisors",
            vec![("id", big), ("spec_id", vc), ("created_date", vc), ("payload", bin)],
            vec![
                sup(1, "wiki-kafka", r#"{"type":"kafka","spec":{"dataSchema":{"dataSource":"wiki"}},"suspended":false}"#),
                sup(2, "wiki-kafka", r#"{"type":"kafka","spec":{"dataSchema":{"dataSource":"wiki"},"v":2},"suspended":false}"#),
                sup(3, "paused", r#"{"type":"kafka","spec":{},"suspended":true}"#),
                sup(4, "gone", r#"{"type":"kafka","spec":{},"suspended":false}"#),
                sup(5, "gone", r#"{"type":"NoopSupervisorSpec","id":"gone","dataSources":["x"]}"#),
                sup(7, "plain", r#"{"type":"kinesis","spec":{"x":"a\\b"}}"#),
            ],
        ),
        (
            "druid_audit",
            vec![
                ("id", big),
                ("audit_key", vc),
                ("type", vc),
                ("author", vc),
                ("comment", vc),
                ("created_date", vc),
                ("payload", bin),
            ],
            (1..=3)
                .map(|i| {
                    vec![
                        Val::Int(i),
                        text("wiki"),
                        text("rules"),
                        text("admin"),
                        text("it's \"quoted\",\nwith a newline"),
                        text("2025-06-01T00:00:00.000Z"),
                        Val::Bin(junk.clone()),
                    ]
                })
                .collect(),
        ),
    ]
}

fn seeded_dump(kind: DbKind) -> Dumped {
    let source = ms::fresh(kind);
    let seed = seed_tables(kind);
    let mut stmts: Vec<String> = Vec::new();
    for (table, _, _) in &seed {
        stmts.extend(metastore::tables::ddl(kind, table).unwrap());
    }
    // An older Druid's segments table: the column may be NULL.
    stmts.push(match kind {
        DbKind::Postgresql => {
            "ALTER TABLE druid_segments ALTER COLUMN used_status_last_updated DROP NOT NULL".into()
        }
        DbKind::Mysql => {
            "ALTER TABLE druid_segments MODIFY used_status_last_updated VARCHAR(255) NULL".into()
        }
    });
    let quote = |c: &str| match kind {
        DbKind::Postgresql => format!("\"{}\"", c.to_ascii_lowercase()),
        DbKind::Mysql => format!("`{c}`"),
    };
    let dir = tempfile::tempdir().unwrap();
    let mut tables = Vec::new();
    for (table, cols, rows) in &seed {
        let names: Vec<String> = cols.iter().map(|(c, _)| quote(c)).collect();
        for chunk in rows.chunks(200) {
            let values: Vec<String> = chunk
                .iter()
                .map(|r| {
                    let v: Vec<String> = r.iter().map(|v| sql_literal(kind, v)).collect();
                    format!("({})", v.join(", "))
                })
                .collect();
            stmts.push(format!(
                "INSERT INTO {table} ({}) VALUES {}",
                names.join(", "),
                values.join(", ")
            ));
        }
        // The file, as a dump from this kind writes it: the source's column names.
        let shown: Vec<String> = cols
            .iter()
            .map(|(c, _)| match kind {
                DbKind::Postgresql => c.to_ascii_lowercase(),
                DbKind::Mysql => c.to_string(),
            })
            .collect();
        let file = format!("{table}.csv");
        let mut w = CsvWriter::new(std::fs::File::create(dir.path().join(&file)).unwrap());
        w.write_header(&shown.iter().map(String::as_str).collect::<Vec<_>>())
            .unwrap();
        for r in rows {
            let fields: Vec<Field<'_>> = r
                .iter()
                .map(|v| match v {
                    Val::Null => Field::Null,
                    Val::Text(t) => Field::Text(t.as_bytes()),
                    Val::Bin(b) => Field::Bytes(b),
                    Val::Bool(b) => Field::Bool(*b),
                    Val::Int(n) => Field::Int(*n),
                })
                .collect();
            w.write_record(&fields).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        tables.push(TableDump {
            name: table.to_string(),
            file: file.clone(),
            columns: cols
                .iter()
                .zip(&shown)
                .map(|((c, t), name)| lifeboat::druid::metastore::dump::Column {
                    name: name.clone(),
                    sql_type: t.to_string(),
                    nullable: !matches!(*c, "id" | "name" | "payload"),
                })
                .collect(),
            rows: rows.len() as u64,
            bytes: std::fs::metadata(dir.path().join(&file)).unwrap().len(),
        });
    }
    let refs: Vec<&str> = stmts.iter().map(String::as_str).collect();
    ms::execute(&source, &refs);
    Dumped {
        source,
        dir,
        tables,
    }
}

fn run_load(
    target: &DbUrl,
    dir: &Path,
    tables: &[TableDump],
    options: &LoadOptions,
    probe: &Probe,
    cancel: &CancellationToken,
) -> Result<LoadReport, MetaError> {
    block(async {
        let mut db = connect(target).await;
        load::check_target(&mut db, tables).await?;
        load::load(&mut db, dir, tables, options, probe, cancel).await
    })
}

fn load_simply(target: &DbUrl, d: &Dumped, options: &LoadOptions) -> Result<LoadReport, MetaError> {
    run_load(
        target,
        d.dir.path(),
        &d.tables,
        options,
        &Probe::default(),
        &CancellationToken::new(),
    )
}

/// The `druid_*` tables of `db` (as the server names them) with their columns in order.
fn druid_tables(db: &DbUrl) -> BTreeMap<String, Vec<String>> {
    block(async {
        let pairs: Vec<(String, String)> = match db.kind {
            DbKind::Postgresql => {
                let c = ms::pg_client(db).await;
                c.query(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name LIKE 'druid\\_%' \
                     ORDER BY table_name, ordinal_position",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
            }
            DbKind::Mysql => {
                let mut c = ms::my_conn(db).await;
                let v = c
                    .query(
                        "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR) \
                         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
                         AND TABLE_NAME LIKE 'druid\\_%' ORDER BY TABLE_NAME, ORDINAL_POSITION",
                    )
                    .await
                    .unwrap();
                c.disconnect().await.unwrap();
                v
            }
        };
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (t, c) in pairs {
            out.entry(t).or_default().push(c);
        }
        out
    })
}

/// The target's table named like `table` in any case.
fn name_in(tables: &BTreeMap<String, Vec<String>>, table: &str) -> Option<String> {
    tables
        .keys()
        .find(|t| t.eq_ignore_ascii_case(table))
        .cloned()
}

/// Every row of `table` as bytes (PostgreSQL: each value's text, bytea as `\x` hex), the
/// columns `columns` (matched in any case), sorted.
fn rows(db: &DbUrl, table: &str, columns: &[String]) -> Rows {
    let tables = druid_tables(db);
    let Some(name) = name_in(&tables, table) else {
        return Vec::new();
    };
    let have = &tables[&name];
    let cols: Vec<String> = columns
        .iter()
        .map(|c| {
            have.iter()
                .find(|h| h.eq_ignore_ascii_case(c))
                .unwrap_or_else(|| panic!("{table} of {} has no column {c}", db.shown))
                .clone()
        })
        .collect();
    let mut out: Rows = block(async {
        match db.kind {
            DbKind::Postgresql => {
                let list: Vec<String> = cols.iter().map(|c| format!("\"{c}\"::text")).collect();
                let c = ms::pg_client(db).await;
                c.query(&format!("SELECT {} FROM \"{name}\"", list.join(", ")), &[])
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| {
                        (0..cols.len())
                            .map(|i| r.get::<_, Option<String>>(i).map(String::into_bytes))
                            .collect()
                    })
                    .collect()
            }
            DbKind::Mysql => {
                let list: Vec<String> = cols.iter().map(|c| format!("`{c}`")).collect();
                let mut c = ms::my_conn(db).await;
                let rows: Vec<mysql_async::Row> = c
                    .query(format!("SELECT {} FROM `{name}`", list.join(", ")))
                    .await
                    .unwrap();
                c.disconnect().await.unwrap();
                rows.into_iter()
                    .map(|r| {
                        r.unwrap()
                            .into_iter()
                            .map(|v| match v {
                                mysql_async::Value::NULL => None,
                                mysql_async::Value::Bytes(b) => Some(b),
                                other => Some(other.as_sql(true).into_bytes()),
                            })
                            .collect()
                    })
                    .collect()
            }
        }
    });
    out.sort();
    out
}

/// Rows per `druid_*` table of `db`.
fn counts(db: &DbUrl) -> BTreeMap<String, u64> {
    druid_tables(db)
        .keys()
        .map(|t| {
            let n = block(async {
                match db.kind {
                    DbKind::Postgresql => {
                        let c = ms::pg_client(db).await;
                        let n: i64 = c
                            .query_one(&format!("SELECT count(*) FROM \"{t}\""), &[])
                            .await
                            .unwrap()
                            .get(0);
                        n as u64
                    }
                    DbKind::Mysql => {
                        let mut c = ms::my_conn(db).await;
                        let n: Option<u64> = c
                            .query_first(format!("SELECT COUNT(*) FROM `{t}`"))
                            .await
                            .unwrap();
                        c.disconnect().await.unwrap();
                        n.unwrap_or(0)
                    }
                }
            });
            (t.clone(), n)
        })
        .collect()
}

#[track_caller]
fn assert_all_empty(db: &DbUrl) {
    let c = counts(db);
    assert!(
        c.values().all(|n| *n == 0),
        "rows left in {}: {c:?}",
        db.shown
    );
}

fn columns_of(d: &Dumped, table: &str) -> Vec<String> {
    d.tables
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(table))
        .unwrap_or_else(|| panic!("the dump has no {table}"))
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect()
}

fn index(columns: &[String], name: &str) -> usize {
    columns
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("no column {name} in {columns:?}"))
}

/// PostgreSQL shows bytea as `\x` + hex; MySQL gives the bytes.
fn payload_bytes(kind: DbKind, v: &[u8]) -> Vec<u8> {
    match kind {
        DbKind::Postgresql => hex::decode(&v[2..]).unwrap(),
        DbKind::Mysql => v.to_vec(),
    }
}

fn round_trip(kind: DbKind, d: Dumped) {
    let target = ms::fresh_solo(kind);
    let report = load_simply(&target, &d, &options()).unwrap();

    // Every table of the dump, in load order, with its count.
    let want: Vec<(String, u64)> = d.tables.iter().map(|t| (t.name.clone(), t.rows)).collect();
    let mut got = report.tables.clone();
    got.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort_by_key(|(n, _)| n.to_ascii_lowercase());
    got.sort_by_key(|(n, _)| n.to_ascii_lowercase());
    assert_eq!(
        got.iter()
            .map(|(n, r)| (n.to_ascii_lowercase(), *r))
            .collect::<Vec<_>>(),
        want_sorted
            .iter()
            .map(|(n, r)| (n.to_ascii_lowercase(), *r))
            .collect::<Vec<_>>()
    );
    assert_eq!(report.tables[0].0, "druid_segments");
    assert_eq!(report.created.len(), d.tables.len(), "{report:?}");

    // Transient tables are not brought back.
    let target_tables = druid_tables(&target);
    assert!(name_in(&target_tables, "druid_tasks").is_none());

    for t in &d.tables {
        let cols = columns_of(&d, &t.name);
        let mut src = rows(&d.source, &t.name, &cols);
        let mut dst = rows(&target, &t.name, &cols);
        match t.name.as_str() {
            "druid_segments" => {
                let i = index(&cols, "used_status_last_updated");
                let mut backfilled = 0;
                for r in &mut src {
                    if r[i].as_deref().is_none_or(|v| v.is_empty()) {
                        r[i] = Some(NOW.as_bytes().to_vec());
                        backfilled += 1;
                    }
                }
                src.sort();
                assert!(backfilled > 0, "the seed has a segment to backfill");
                assert_eq!(report.backfilled_used_status, backfilled);
            }
            "druid_supervisors" => {
                // The suspended versions: one new row per running supervisor, newest of all.
                let id = index(&cols, "id");
                let spec = index(&cols, "spec_id");
                let created = index(&cols, "created_date");
                let payload = index(&cols, "payload");
                let max_src: i64 = src
                    .iter()
                    .map(|r| {
                        String::from_utf8_lossy(r[id].as_ref().unwrap())
                            .parse::<i64>()
                            .unwrap()
                    })
                    .max()
                    .unwrap();
                let (new, old): (Vec<_>, Vec<_>) = dst.into_iter().partition(|r| {
                    String::from_utf8_lossy(r[id].as_ref().unwrap())
                        .parse::<i64>()
                        .unwrap()
                        > max_src
                });
                dst = old;
                assert!(!new.is_empty(), "a running supervisor is suspended");
                let mut specs: Vec<String> = new
                    .iter()
                    .map(|r| String::from_utf8(r[spec].clone().unwrap()).unwrap())
                    .collect();
                specs.sort();
                let mut reported = report.suspended_supervisors.clone();
                reported.sort();
                assert_eq!(specs, reported);
                for r in &new {
                    assert_eq!(r[created].as_deref(), Some(NOW.as_bytes()));
                    let p = payload_bytes(kind, r[payload].as_ref().unwrap());
                    let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
                    assert_eq!(v["suspended"], serde_json::Value::Bool(true), "{v}");
                    assert!(v.get("spec").is_some(), "{v}");
                }
            }
            "druid_dataSource" => {
                assert_eq!(report.datasource_offsets.len() as u64, t.rows);
            }
            _ => {}
        }
        assert_eq!(src, dst, "{}: rows differ", t.name);
    }

    // The sequences (PostgreSQL) and AUTO_INCREMENT (MySQL) are past the restored ids.
    for table in ["druid_supervisors", "druid_audit"] {
        let cols = columns_of(&d, table);
        let id = index(&cols, "id");
        let max: i64 = rows(&target, table, &cols)
            .iter()
            .map(|r| {
                String::from_utf8_lossy(r[id].as_ref().unwrap())
                    .parse::<i64>()
                    .unwrap()
            })
            .max()
            .unwrap();
        let next = insert_without_id(&target, table);
        assert_eq!(next, max + 1, "{table}: the next id after a restore");
    }
}

/// Inserts a row as Druid does (no id) and returns the id it got.
fn insert_without_id(db: &DbUrl, table: &str) -> i64 {
    let name = name_in(&druid_tables(db), table).unwrap();
    block(async {
        match (db.kind, table) {
            (DbKind::Postgresql, "druid_supervisors") => ms::pg_client(db)
                .await
                .query_one(
                    &format!(
                        "INSERT INTO {name} (spec_id, created_date, payload) VALUES ('x', 'y', '\\x7b7d') RETURNING id"
                    ),
                    &[],
                )
                .await
                .unwrap()
                .get(0),
            (DbKind::Postgresql, _) => ms::pg_client(db)
                .await
                .query_one(
                    &format!(
                        "INSERT INTO {name} (audit_key, type, author, comment, created_date, payload) VALUES ('k', 't', 'a', 'c', 'd', '\\x7b7d') RETURNING id"
                    ),
                    &[],
                )
                .await
                .unwrap()
                .get(0),
            (DbKind::Mysql, t) => {
                let mut c = ms::my_conn(db).await;
                let sql = if t == "druid_supervisors" {
                    format!("INSERT INTO `{name}` (spec_id, created_date, payload) VALUES ('x', 'y', '{{}}')")
                } else {
                    format!(
                        "INSERT INTO `{name}` (audit_key, type, author, comment, created_date, payload) VALUES ('k', 't', 'a', 'c', 'd', '{{}}')"
                    )
                };
                c.query_drop(sql).await.unwrap();
                let id: Option<i64> = c.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
                c.disconnect().await.unwrap();
                id.unwrap()
            }
        }
    })
}

#[test]
fn metastore_load_round_trip_postgresql() {
    round_trip(DbKind::Postgresql, seeded_dump(DbKind::Postgresql));
}

#[test]
fn metastore_load_round_trip_mariadb() {
    round_trip(DbKind::Mysql, seeded_dump(DbKind::Mysql));
}

/// The store as helper fixtures fill it (tests/support/metastore.rs), dumped by lifeboat's own
/// dump through lifeboat's connect: the backup's path end to end, short of the archive.
fn dumped_by_lifeboat(kind: DbKind) -> Dumped {
    let source = ms::fresh(kind);
    ms::seed(&source, None);
    let dir = tempfile::tempdir().unwrap();
    let dump = block(async {
        let mut db = lifeboat_connect(&source).await;
        metastore::dump::dump(
            &mut db,
            dir.path(),
            &Probe::default(),
            &CancellationToken::new(),
        )
        .await
        .unwrap()
    });
    Dumped {
        source,
        dir,
        tables: dump.tables,
    }
}

async fn lifeboat_connect(db: &DbUrl) -> Db {
    let config = metastore::MetaConfig::new(
        metastore::MetaUrl::parse(&db.shown).unwrap(),
        Some(lifeboat::secrets::Secret(db.password.clone())),
        "lifeboat-test",
    );
    metastore::connect(&config)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", db.shown))
}

#[test]
fn metastore_load_round_trip_of_a_dump_postgresql() {
    round_trip(DbKind::Postgresql, dumped_by_lifeboat(DbKind::Postgresql));
}

#[test]
fn metastore_load_round_trip_of_a_dump_mariadb() {
    round_trip(DbKind::Mysql, dumped_by_lifeboat(DbKind::Mysql));
}

/// A dump's description without its files: enough for the checks, which come first.
fn described(kind: DbKind) -> Vec<TableDump> {
    let (text, bytes, boolean) = match kind {
        DbKind::Postgresql => ("character varying", "bytea", "boolean"),
        DbKind::Mysql => ("varchar", "longblob", "tinyint(1)"),
    };
    let table = |name: &str, cols: &[(&str, &str)]| TableDump {
        name: name.into(),
        file: format!("{name}.csv"),
        columns: cols
            .iter()
            .map(|(c, t)| lifeboat::druid::metastore::dump::Column {
                name: c.to_string(),
                sql_type: t.to_string(),
                nullable: false,
            })
            .collect(),
        rows: 1,
        bytes: 100,
    };
    vec![
        table(
            "druid_segments",
            &[
                ("id", text),
                ("dataSource", text),
                ("used", boolean),
                ("payload", bytes),
            ],
        ),
        table(
            "druid_rules",
            &[
                ("id", text),
                ("dataSource", text),
                ("version", text),
                ("payload", bytes),
            ],
        ),
    ]
}

fn check_only(target: &DbUrl, tables: &[TableDump]) -> Result<(), MetaError> {
    block(async {
        let mut db = connect(target).await;
        load::check_target(&mut db, tables).await
    })
}

fn refuses_non_empty(kind: DbKind) {
    let target = ms::fresh_solo(kind);
    // A transient table with rows is enough to refuse, and a Druid table is named first.
    ms::execute(
        &target,
        &[
            "CREATE TABLE druid_tasks (id VARCHAR(255) PRIMARY KEY, payload VARCHAR(255))",
            "INSERT INTO druid_tasks VALUES ('t1', 'x'), ('t2', 'y')",
            "CREATE TABLE druid_rules (id VARCHAR(255) PRIMARY KEY, dataSource VARCHAR(255) NOT NULL, version VARCHAR(255) NOT NULL, payload VARCHAR(255) NOT NULL)",
            "INSERT INTO druid_rules VALUES ('r1', 'wiki', 'v1', '[]')",
        ],
    );
    let before = counts(&target);
    let tables = described(kind);
    let e = check_only(&target, &tables).unwrap_err();
    match &e {
        MetaError::NotEmpty {
            table, rows, more, ..
        } => {
            assert_eq!(table, "druid_rules");
            assert_eq!(*rows, 1);
            assert!(more.contains("1 other table"), "{more}");
        }
        other => panic!("not a NotEmpty refusal: {other}"),
    }
    assert!(e.to_string().contains("druid_rules has 1 rows"), "{e}");
    // The load refuses the same way before reading any file (there are none).
    let none = tempfile::tempdir().unwrap();
    let e = run_load(
        &target,
        none.path(),
        &tables,
        &options(),
        &Probe::default(),
        &CancellationToken::new(),
    )
    .unwrap_err();
    assert!(matches!(e, MetaError::NotEmpty { .. }), "{e}");
    assert_eq!(counts(&target), before, "the refusal touched the target");
    assert_eq!(druid_tables(&target).len(), 2, "no table was created");

    // Only transient rows: still refused, naming the transient table.
    ms::execute(&target, &["DELETE FROM druid_rules"]);
    let e = check_only(&target, &tables).unwrap_err();
    assert!(
        matches!(&e, MetaError::NotEmpty { table, rows: 2, more, .. } if table == "druid_tasks" && more.is_empty()),
        "{e}"
    );

    // Empty: the existing druid_rules lacks nothing the dump has, so the checks pass...
    ms::execute(&target, &["DELETE FROM druid_tasks"]);
    check_only(&target, &tables).unwrap();
    // ... but a table without a column of the dump is a Druid version mismatch.
    ms::execute(&target, &["ALTER TABLE druid_rules DROP COLUMN version"]);
    let e = check_only(&target, &tables).unwrap_err();
    assert!(
        matches!(&e, MetaError::Refused(m) if m.contains("version")),
        "{e}"
    );
}

#[test]
fn metastore_load_refuses_a_non_empty_target_postgresql() {
    refuses_non_empty(DbKind::Postgresql);
}

#[test]
fn metastore_load_refuses_a_non_empty_target_mariadb() {
    refuses_non_empty(DbKind::Mysql);
}

/// Copies the dump, applies `damage` to it and loads the copy: the load must fail and leave every
/// table empty.
fn damaged(kind: DbKind, d: &Dumped, damage: impl FnOnce(&Path, &mut Vec<TableDump>)) -> MetaError {
    let copy = tempfile::tempdir().unwrap();
    for t in &d.tables {
        std::fs::copy(d.dir.path().join(&t.file), copy.path().join(&t.file)).unwrap();
    }
    let mut tables = d.tables.clone();
    damage(copy.path(), &mut tables);
    let target = ms::fresh_solo(kind);
    let e = run_load(
        &target,
        copy.path(),
        &tables,
        &options(),
        &Probe::default(),
        &CancellationToken::new(),
    )
    .unwrap_err();
    assert_all_empty(&target);
    e
}

fn file_of<'t>(tables: &'t mut [TableDump], name: &str) -> &'t mut TableDump {
    tables.iter_mut().find(|t| t.name == name).unwrap()
}

fn append(dir: &Path, file: &str, bytes: &[u8]) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(file))
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn corrupt_files(kind: DbKind) {
    let d = seeded_dump(kind);
    // A row count that is not the file's: found at the end of druid_audit, after segments,
    // rules, configs... were written in the transaction.
    let e = damaged(kind, &d, |_, tables| {
        file_of(tables, "druid_audit").rows += 1
    });
    assert!(
        matches!(&e, MetaError::Corrupt(m) if m.contains("druid_audit")),
        "{e}"
    );
    let e = damaged(kind, &d, |_, tables| {
        let t = file_of(tables, "druid_audit");
        t.rows = t.rows.saturating_sub(1);
    });
    assert!(matches!(&e, MetaError::Corrupt(_)), "{e}");
    // Bad CSV at the very end of the last table.
    let e = damaged(kind, &d, |dir, tables| {
        let t = file_of(tables, "druid_audit");
        append(dir, &t.file.clone(), b"\"1\",\"unterminated\n");
        t.rows += 1;
    });
    assert!(matches!(&e, MetaError::Corrupt(_)), "{e}");
    // A header that is not the recorded columns.
    let e = damaged(kind, &d, |_, tables| {
        let t = file_of(tables, "druid_supervisors");
        t.columns.swap(0, 1);
    });
    assert!(
        matches!(&e, MetaError::Corrupt(m) if m.contains("header")),
        "{e}"
    );
    // A record with a field too few.
    let e = damaged(kind, &d, |dir, tables| {
        let t = file_of(tables, "druid_config");
        append(dir, &t.file.clone(), b"\"only-a-name\"\n");
        t.rows += 1;
    });
    assert!(
        matches!(&e, MetaError::Corrupt(m) if m.contains("fields")),
        "{e}"
    );
    // A missing file.
    let e = damaged(kind, &d, |dir, tables| {
        std::fs::remove_file(dir.join(&file_of(tables, "druid_rules").file)).unwrap();
    });
    assert!(matches!(&e, MetaError::Corrupt(_)), "{e}");
}

#[test]
fn metastore_load_refuses_damaged_files_and_leaves_nothing_postgresql() {
    corrupt_files(DbKind::Postgresql);
}

#[test]
fn metastore_load_refuses_damaged_files_and_leaves_nothing_mariadb() {
    corrupt_files(DbKind::Mysql);
}

/// The last line of a file (its last record, when no field holds a newline).
fn last_line(dir: &Path, file: &str) -> Vec<u8> {
    let bytes = std::fs::read(dir.join(file)).unwrap();
    let body = bytes.strip_suffix(b"\n").unwrap();
    let start = body.iter().rposition(|b| *b == b'\n').unwrap() + 1;
    let mut line = body[start..].to_vec();
    line.push(b'\n');
    line
}

fn fails_midway(kind: DbKind) {
    let d = seeded_dump(kind);
    // The same rule twice: the server refuses the second (a primary key), after the segments
    // and the first rules were written.
    let e = damaged(kind, &d, |dir, tables| {
        let t = file_of(tables, "druid_rules");
        let line = last_line(dir, &t.file);
        append(dir, &t.file.clone(), &line);
        t.rows += 1;
    });
    assert!(matches!(&e, MetaError::Query { .. }), "{e}");
    let text = e.to_string();
    assert!(text.to_ascii_lowercase().contains("dup"), "{text}");
}

#[test]
fn metastore_load_failure_midway_leaves_nothing_postgresql() {
    fails_midway(DbKind::Postgresql);
}

#[test]
fn metastore_load_failure_midway_leaves_nothing_mariadb() {
    fails_midway(DbKind::Mysql);
}

fn interrupted(kind: DbKind) {
    let d = seeded_dump(kind);
    let target = ms::fresh_solo(kind);
    let cancel = CancellationToken::new();
    // Past the first COPY chunk (PostgreSQL) and INSERT batches (MySQL): rows were written.
    let probe = Probe {
        cancel: Some(cancel.clone()),
        cancel_after: 2 << 20,
        ..Probe::default()
    };
    let e = run_load(
        &target,
        d.dir.path(),
        &d.tables,
        &options(),
        &probe,
        &cancel,
    )
    .unwrap_err();
    assert!(matches!(e, MetaError::Interrupted), "{e}");
    assert!(probe.advanced.load(Ordering::Relaxed) >= 2 << 20);
    assert_all_empty(&target);
    // And the target still takes the restore afterwards.
    load_simply(&target, &d, &options()).unwrap();
}

#[test]
fn metastore_load_interrupted_leaves_nothing_postgresql() {
    interrupted(DbKind::Postgresql);
}

#[test]
fn metastore_load_interrupted_leaves_nothing_mariadb() {
    interrupted(DbKind::Mysql);
}

fn dry_run(kind: DbKind) {
    let d = seeded_dump(kind);
    let target = ms::fresh_solo(kind);
    let dry = load_simply(
        &target,
        &d,
        &LoadOptions {
            dry_run: true,
            ..options()
        },
    )
    .unwrap();
    assert!(druid_tables(&target).is_empty(), "a dry run created tables");
    let real = load_simply(&target, &d, &options()).unwrap();
    assert_eq!(dry, real, "a dry run reports what the load does");
    // A damaged file fails the dry run too.
    let copy = tempfile::tempdir().unwrap();
    for t in &d.tables {
        std::fs::copy(d.dir.path().join(&t.file), copy.path().join(&t.file)).unwrap();
    }
    let mut tables = d.tables.clone();
    file_of(&mut tables, "druid_audit").rows += 1;
    let empty = ms::fresh_solo(kind);
    let e = run_load(
        &empty,
        copy.path(),
        &tables,
        &LoadOptions {
            dry_run: true,
            ..options()
        },
        &Probe::default(),
        &CancellationToken::new(),
    )
    .unwrap_err();
    assert!(matches!(e, MetaError::Corrupt(_)), "{e}");
}

#[test]
fn metastore_load_dry_run_writes_nothing_postgresql() {
    dry_run(DbKind::Postgresql);
}

#[test]
fn metastore_load_dry_run_writes_nothing_mariadb() {
    dry_run(DbKind::Mysql);
}

fn mapped(kind: DbKind, d: Dumped) {
    let target = ms::fresh_solo(kind);
    // Every location the segments point at, moved to another bucket.
    let cols = columns_of(&d, "druid_segments");
    let payload = index(&cols, "payload");
    let before: Vec<String> = rows(&d.source, "druid_segments", &cols)
        .iter()
        .filter_map(|r| {
            let p = payload_bytes(kind, r[payload].as_ref().unwrap());
            loadspec::object_of(&p).unwrap().map(|o| o.url)
        })
        .collect();
    assert!(!before.is_empty());
    let mut froms: Vec<String> = before
        .iter()
        .map(|u| {
            let (bucket, _) = loadspec::split_url(u).unwrap();
            bucket.to_string()
        })
        .collect();
    froms.sort();
    froms.dedup();
    let rules: Vec<String> = froms.iter().map(|f| format!("{f}={f}-dr/moved")).collect();
    let map = DeepStorageMap::parse(&rules).unwrap();
    let report = load_simply(
        &target,
        &d,
        &LoadOptions {
            map: map.clone(),
            ..options()
        },
    )
    .unwrap();
    assert_eq!(report.rewritten_load_specs, before.len() as u64);
    let mut after: Vec<String> = rows(&target, "druid_segments", &cols)
        .iter()
        .filter_map(|r| {
            let p = payload_bytes(kind, r[payload].as_ref().unwrap());
            loadspec::object_of(&p).unwrap().map(|o| o.url)
        })
        .collect();
    after.sort();
    let mut want: Vec<String> = before.iter().map(|u| map.map_url(u).unwrap()).collect();
    want.sort();
    assert_eq!(after, want);
    assert!(after.iter().all(|u| {
        froms
            .iter()
            .any(|f| u.starts_with(&format!("{f}-dr/moved/")))
    }));
}

#[test]
fn metastore_load_rewrites_every_load_spec_postgresql() {
    mapped(DbKind::Postgresql, seeded_dump(DbKind::Postgresql));
}

#[test]
fn metastore_load_rewrites_every_load_spec_mariadb() {
    mapped(DbKind::Mysql, seeded_dump(DbKind::Mysql));
}

#[test]
fn metastore_load_rewrites_every_load_spec_of_a_dump_postgresql() {
    mapped(DbKind::Postgresql, dumped_by_lifeboat(DbKind::Postgresql));
}

#[test]
fn metastore_load_rewrites_every_load_spec_of_a_dump_mariadb() {
    mapped(DbKind::Mysql, dumped_by_lifeboat(DbKind::Mysql));
}

#[test]
fn metastore_load_refuses_without_privileges_postgresql() {
    let target = ms::fresh_solo(DbKind::Postgresql);
    let tables = described(DbKind::Postgresql);
    // The owner gives up its own INSERT on an existing table.
    ms::execute(
        &target,
        &[
            "CREATE TABLE druid_rules (id VARCHAR(255) PRIMARY KEY, dataSource VARCHAR(255) NOT NULL, version VARCHAR(255) NOT NULL, payload BYTEA NOT NULL)",
            &format!("REVOKE INSERT ON druid_rules FROM {}", target.user),
        ],
    );
    let e = check_only(&target, &tables).unwrap_err();
    assert!(
        matches!(&e, MetaError::Refused(m) if m.contains("INSERT") && m.contains("druid_rules")),
        "{e}"
    );
    // A schema the role may not create in, where the tables are missing.
    ms::execute(
        &target,
        &[
            "CREATE SCHEMA lbro",
            &format!("REVOKE CREATE ON SCHEMA lbro FROM {}", target.user),
            &format!("ALTER DATABASE {} SET search_path = lbro", target.db),
        ],
    );
    let e = check_only(&target, &tables).unwrap_err();
    assert!(
        matches!(&e, MetaError::Refused(m) if m.contains("create")),
        "{e}"
    );
    assert!(druid_tables(&target).is_empty());
}

#[test]
fn metastore_load_refuses_without_privileges_mariadb() {
    let target = ms::fresh_solo(DbKind::Mysql);
    let tables = described(DbKind::Mysql);
    let mut rnd = [0u8; 4];
    getrandom::fill(&mut rnd).unwrap();
    let user = format!("lbro_{}", hex::encode(rnd));
    let host = &target.host;
    let limited = DbUrl {
        url: format!(
            "mysql://{user}:pw-{user}@{host}:{}/{}",
            target.port, target.db
        ),
        user: user.clone(),
        password: format!("pw-{user}"),
        ..target.clone()
    };
    let account = format!("'{user}'@'{host}'");
    ms::execute(
        &target,
        &[
            &format!("CREATE USER {account} IDENTIFIED BY 'pw-{user}'"),
            &format!("GRANT SELECT ON `{}`.* TO {account}", target.db),
        ],
    );
    let e = check_only(&limited, &tables).unwrap_err();
    assert!(
        matches!(&e, MetaError::Refused(m) if m.contains("INSERT")),
        "{e}"
    );
    ms::execute(
        &target,
        &[&format!("GRANT INSERT ON `{}`.* TO {account}", target.db)],
    );
    let e = check_only(&limited, &tables).unwrap_err();
    assert!(
        matches!(&e, MetaError::Refused(m) if m.contains("CREATE")),
        "{e}"
    );
    ms::execute(
        &target,
        &[&format!("GRANT CREATE ON `{}`.* TO {account}", target.db)],
    );
    check_only(&limited, &tables).unwrap();
    ms::execute(&target, &[&format!("DROP USER {account}")]);
}
