//! `lifeboat backup --druid-metadata` and `lifeboat restore --druid-metadata` end to end: real
//! PostgreSQL 15 and MariaDB 10.11 (a second server of each as the restore's target), SeaweedFS
//! as deep storage, the CLI as an operator runs it. The store is seeded here with the test's own
//! DDL (old Druid's nullable `used_status_last_updated`) and rows as Druid writes them, payloads
//! with backslashes, quotes, newlines, NUL and non-UTF-8 bytes; segments' objects are real objects
//! in a bucket, their sizes in the payloads.

use std::collections::BTreeMap;

use lifeboat::druid::metastore::{DbKind, tables};
use serde_json::{Value, json};

use crate::support::metastore::{self as ms, DbUrl};
use crate::support::{
    StoreKind, TestLocation, block, druid, fails_with, lifeboat_env, ok_json, stderr,
};

/// One row as the comparisons see it: lower-cased column names, values as text (bytes in hex).
type Row = BTreeMap<String, String>;

const SEGMENTS: usize = 6;

/// A seeded store and where its segments' objects are.
struct Seeded {
    /// The deep-storage location holding the objects (`s3://bucket/seg-xxxx`).
    deep: TestLocation,
    /// The objects' paths relative to `deep`.
    objects: Vec<String>,
}

fn hex_lit(kind: DbKind, bytes: &[u8]) -> String {
    let h = hex::encode(bytes);
    match kind {
        DbKind::Postgresql => format!("decode('{h}', 'hex')"),
        DbKind::Mysql => format!("UNHEX('{h}')"),
    }
}

/// Text literals here never hold a backslash (MySQL would read it as an escape) or a quote.
fn lit(s: &str) -> String {
    assert!(!s.contains('\\') && !s.contains('\''), "{s}");
    format!("'{s}'")
}

/// The test's own DDL, as Druid before `used_status_last_updated` became NOT NULL made it.
fn ddl(kind: DbKind) -> Vec<String> {
    let (p, serial, end, opts) = match kind {
        DbKind::Postgresql => ("BYTEA", "BIGSERIAL", "\"end\"", ""),
        DbKind::Mysql => (
            "LONGBLOB",
            "BIGINT(20) AUTO_INCREMENT",
            "`end`",
            " ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4",
        ),
    };
    vec![
        format!(
            "CREATE TABLE druid_segments (id VARCHAR(255) NOT NULL, dataSource VARCHAR(255) NOT NULL, \
             created_date VARCHAR(255) NOT NULL, start VARCHAR(255) NOT NULL, {end} VARCHAR(255) NOT NULL, \
             partitioned BOOLEAN NOT NULL, version VARCHAR(255) NOT NULL, used BOOLEAN NOT NULL, \
             payload {p} NOT NULL, used_status_last_updated VARCHAR(255), PRIMARY KEY (id)){opts}"
        ),
        format!(
            "CREATE TABLE druid_rules (id VARCHAR(255) NOT NULL, dataSource VARCHAR(255) NOT NULL, \
             version VARCHAR(255) NOT NULL, payload {p} NOT NULL, PRIMARY KEY (id)){opts}"
        ),
        format!(
            "CREATE TABLE druid_config (name VARCHAR(255) NOT NULL, payload {p} NOT NULL, \
             PRIMARY KEY (name)){opts}"
        ),
        format!(
            "CREATE TABLE druid_dataSource (dataSource VARCHAR(255) NOT NULL, created_date VARCHAR(255) NOT NULL, \
             commit_metadata_payload {p} NOT NULL, commit_metadata_sha1 VARCHAR(255) NOT NULL, \
             PRIMARY KEY (dataSource)){opts}"
        ),
        format!(
            "CREATE TABLE druid_supervisors (id {serial} NOT NULL, spec_id VARCHAR(255) NOT NULL, \
             created_date VARCHAR(255) NOT NULL, payload {p} NOT NULL, PRIMARY KEY (id)){opts}"
        ),
        format!(
            "CREATE TABLE druid_audit (id {serial} NOT NULL, audit_key VARCHAR(255) NOT NULL, \
             type VARCHAR(255) NOT NULL, author VARCHAR(255) NOT NULL, comment VARCHAR(2048) NOT NULL, \
             created_date VARCHAR(255) NOT NULL, payload {p} NOT NULL, PRIMARY KEY (id)){opts}"
        ),
        format!(
            "CREATE TABLE druid_tasks (id VARCHAR(255) NOT NULL, created_date VARCHAR(255) NOT NULL, \
             datasource VARCHAR(255) NOT NULL, payload {p} NOT NULL, status_payload {p} NOT NULL, \
             active BOOLEAN NOT NULL, PRIMARY KEY (id)){opts}"
        ),
    ]
}

/// A segment's payload as Druid writes it, its loadSpec naming `bucket`/`key`.
fn segment_payload(id: &str, interval: &str, bucket: &str, key: &str, size: usize) -> Vec<u8> {
    let mut p = serde_json::to_vec(&json!({
        "dataSource": "wiki",
        "interval": interval,
        "version": "2024-02-01T00:00:00.000Z",
        "loadSpec": {"type": "s3_zip", "bucket": bucket, "key": key, "S3Schema": "s3n"},
        "dimensions": "page,user",
        "metrics": "count,added",
        "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 1},
        "binaryVersion": 9,
        "size": size,
        "identifier": id,
        "note": "a \\ backslash, a \"quote\", a\nnewline and é",
    }))
    .unwrap();
    p.push(b' ');
    p
}

/// Seeds `db` as Druid would populate it; the segments' objects go into a new S3 location.
fn seed(db: &DbUrl) -> Seeded {
    let kind = db.kind;
    let deep = TestLocation::new(StoreKind::S3, "seg");
    let (bucket, base) = deep
        .url
        .strip_prefix("s3://")
        .unwrap()
        .split_once('/')
        .unwrap();
    let mut stmts = ddl(kind);
    let mut objects = Vec::new();
    for i in 0..SEGMENTS {
        let start = format!("2024-01-{:02}T00:00:00.000Z", i + 1);
        let end = format!("2024-01-{:02}T00:00:00.000Z", i + 2);
        let id = format!("wiki_{start}_{end}_2024-02-01T00:00:00.000Z");
        let rel = format!("druid/segments/wiki/{start}_{end}/2024-02-01T00:00:00.000Z/0/index.zip");
        let size = 100 + i * 17;
        deep.write(&rel, vec![i as u8; size]);
        let payload = segment_payload(
            &id,
            &format!("{start}/{end}"),
            bucket,
            &format!("{base}/{rel}"),
            size,
        );
        let used = i < 4;
        // One segment of an old Druid without the column's value: restore backfills it.
        let last = if i == 5 {
            "NULL".to_string()
        } else {
            lit("2024-02-01T00:00:00.000Z")
        };
        stmts.push(format!(
            "INSERT INTO druid_segments (id, dataSource, created_date, start, {end_col}, partitioned, version, used, payload, used_status_last_updated) \
             VALUES ({}, 'wiki', '2024-02-01T00:00:00.000Z', {}, {}, TRUE, '2024-02-01T00:00:00.000Z', {}, {}, {last})",
            lit(&id),
            lit(&start),
            lit(&end),
            if used { "TRUE" } else { "FALSE" },
            hex_lit(kind, &payload),
            end_col = if kind == DbKind::Postgresql { "\"end\"" } else { "`end`" },
        ));
        objects.push(rel);
    }
    let rules = br#"[{"type":"loadByPeriod","period":"P1M","tieredReplicants":{"_default_tier":2}},{"type":"dropForever"}]"#;
    stmts.push(format!(
        "INSERT INTO druid_rules (id, dataSource, version, payload) VALUES \
         ('wiki_2024-02-01T00:00:00.000Z', 'wiki', '2024-02-01T00:00:00.000Z', {}), \
         ('_default_2024-01-01T00:00:00.000Z', '_default', '2024-01-01T00:00:00.000Z', {})",
        hex_lit(kind, rules),
        hex_lit(
            kind,
            br#"[{"type":"loadForever","tieredReplicants":{"_default_tier":2}}]"#
        )
    ));
    let users: Vec<u8> = [b"\x00\x01basic\xff\xfe\\x00\"'\n".as_slice(), &[0u8; 8]].concat();
    stmts.push(format!(
        "INSERT INTO druid_config (name, payload) VALUES ('coordinator.config', {}), ('lookupsConfig', {}), \
         ('basic_authentication_basic_users', {})",
        hex_lit(kind, br#"{"maxSegmentsToMove":50,"pauseCoordination":false}"#),
        hex_lit(kind, br#"{"__default":{"country":{"version":"v1","lookupExtractorFactory":{"type":"map","map":{"FR":"France \\ \"Fr\""}}}}}"#),
        hex_lit(kind, &users)
    ));
    stmts.push(format!(
        "INSERT INTO druid_dataSource (dataSource, created_date, commit_metadata_payload, commit_metadata_sha1) \
         VALUES ('wiki', '2024-02-01T00:00:00.000Z', {}, 'b1946ac92492d2347c6235b4d2611184')",
        hex_lit(kind, br#"{"type":"kafka","partitions":{"type":"end","stream":"wiki-edits","partitionOffsetMap":{"0":4242,"1":17}}}"#)
    ));
    for (spec, n) in [("wiki", 1), ("wiki", 2), ("koalas", 1)] {
        let payload = json!({"type": "kafka", "spec": {"dataSchema": {"dataSource": spec}, "ioConfig": {"topic": format!("{spec}-{n}")}}, "suspended": false});
        stmts.push(format!(
            "INSERT INTO druid_supervisors (spec_id, created_date, payload) VALUES ({}, '2024-02-0{n}T00:00:00.000Z', {})",
            lit(spec),
            hex_lit(kind, payload.to_string().as_bytes())
        ));
    }
    for n in 0..2 {
        stmts.push(format!(
            "INSERT INTO druid_audit (audit_key, type, author, comment, created_date, payload) \
             VALUES ('wiki', 'rules', 'alice', 'tightened, \"quoted\" comment', '2024-02-0{}T00:00:00.000Z', {})",
            n + 1,
            hex_lit(kind, b"{\"x\":\"a\\\\b\\n\"}\x00\xff end")
        ));
    }
    stmts.push(format!(
        "INSERT INTO druid_tasks (id, created_date, datasource, payload, status_payload, active) \
         VALUES ('index_kafka_wiki_1', '2024-02-01T00:00:00.000Z', 'wiki', {}, {}, TRUE)",
        hex_lit(kind, b"{}"),
        hex_lit(kind, br#"{"status":"RUNNING"}"#)
    ));
    let refs: Vec<&str> = stmts.iter().map(String::as_str).collect();
    ms::execute(db, &refs);
    Seeded { deep, objects }
}

/// Every row of `table` (empty when the table does not exist), sorted.
fn rows(db: &DbUrl, table: &str) -> Vec<Row> {
    let mut out: Vec<Row> = block(async {
        match db.kind {
            DbKind::Postgresql => {
                let c = ms::pg_client(db).await;
                let q = format!("SELECT row_to_json(t)::text FROM {table} t");
                match c.query(&q, &[]).await {
                    Err(_) => Vec::new(),
                    Ok(found) => found
                        .iter()
                        .map(|r| {
                            let v: Value = serde_json::from_str(r.get::<_, &str>(0)).unwrap();
                            v.as_object()
                                .unwrap()
                                .iter()
                                .map(|(k, v)| {
                                    let text = match v {
                                        Value::String(s) => s.clone(),
                                        Value::Null => "NULL".into(),
                                        other => other.to_string(),
                                    };
                                    (k.to_lowercase(), text)
                                })
                                .collect()
                        })
                        .collect(),
                }
            }
            DbKind::Mysql => {
                use mysql_async::prelude::Queryable;
                let mut c = ms::my_conn(db).await;
                let found: Result<Vec<mysql_async::Row>, _> =
                    c.query(format!("SELECT * FROM {table}")).await;
                match found {
                    Err(_) => Vec::new(),
                    Ok(found) => found
                        .into_iter()
                        .map(|r| {
                            let names: Vec<String> = r
                                .columns_ref()
                                .iter()
                                .map(|c| c.name_str().to_lowercase())
                                .collect();
                            names
                                .into_iter()
                                .zip(r.unwrap())
                                .map(|(k, v)| {
                                    let text = match v {
                                        mysql_async::Value::NULL => "NULL".into(),
                                        mysql_async::Value::Bytes(b) => hex::encode(b),
                                        mysql_async::Value::Int(i) => i.to_string(),
                                        mysql_async::Value::UInt(i) => i.to_string(),
                                        other => format!("{other:?}"),
                                    };
                                    (k, text)
                                })
                                .collect()
                        })
                        .collect(),
                }
            }
        }
    });
    out.sort();
    out
}

/// The druid_* tables that hold rows.
fn counts(db: &DbUrl) -> BTreeMap<String, usize> {
    [
        "druid_segments",
        "druid_rules",
        "druid_config",
        "druid_dataSource",
        "druid_supervisors",
        "druid_audit",
        "druid_tasks",
    ]
    .iter()
    .map(|t| (t.to_string(), rows(db, t).len()))
    .filter(|(_, n)| *n > 0)
    .collect()
}

fn env_of(db: &DbUrl) -> Vec<(String, String)> {
    db.password_env()
}

/// `lifeboat --json backup` of `db` into `to`; the JSON report.
fn backup(db: &DbUrl, to: &TestLocation, cluster: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "--json",
        "backup",
        "--format",
        "1",
        "--druid-metadata",
        &db.shown,
        "--to",
        &to.url,
        "--cluster",
        cluster,
    ];
    args.extend_from_slice(extra);
    ok_json(&lifeboat_env(&args, &env_of(db)))
}

fn restore_out(
    to: &DbUrl,
    from: &TestLocation,
    cluster: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "--json",
        "restore",
        "--from",
        &from.url,
        "--cluster",
        cluster,
        "--druid-metadata",
        &to.shown,
    ];
    args.extend_from_slice(extra);
    lifeboat_env(&args, &env_of(to))
}

fn manifest_of(loc: &TestLocation, cluster: &str, id: &str) -> Value {
    serde_json::from_slice(&loc.read(&format!("{cluster}/{id}/manifest.json"))).unwrap()
}

/// `rows` without the documented changes of a restore: the supervisors' suspended versions
/// (rows past the original ids) and the backfilled `used_status_last_updated`.
fn comparable(table: &str, mut rows: Vec<Row>, original: usize) -> Vec<Row> {
    if table == "druid_supervisors" {
        rows.truncate(original);
    }
    if table == "druid_segments" {
        for r in &mut rows {
            r.remove("used_status_last_updated");
        }
    }
    rows
}

/// Backs up a seeded store, restores it into a fresh database on the other server and compares.
fn round_trip(kind: DbKind) {
    let source = ms::fresh(kind);
    let seeded = seed(&source);
    let repo = TestLocation::new(StoreKind::S3, "druid-repo");
    let made = backup(&source, &repo, "events", &[]);
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["mode"], "metadata", "{made}");

    // The manifest: tables, counts, digests, deep storage, the transient table skipped.
    let m = manifest_of(&repo, "events", &id);
    assert_eq!(m["cluster"]["kind"], "druid");
    assert_eq!(m["cluster"]["version"], "unknown");
    let d = &m["druid"];
    assert_eq!(d["druid_version"], "unknown");
    let kind_word = if kind == DbKind::Postgresql {
        "postgresql"
    } else {
        "mysql"
    };
    assert_eq!(d["database"]["kind"], kind_word);
    assert!(
        !d["database"]["url"]
            .as_str()
            .unwrap()
            .contains(&source.password)
    );
    let tables: BTreeMap<String, u64> = d["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: BTreeMap<String, u64> = [
        ("druid_segments", SEGMENTS as u64),
        ("druid_rules", 2),
        ("druid_config", 3),
        ("druid_dataSource", 1),
        ("druid_supervisors", 3),
        ("druid_audit", 2),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect();
    assert_eq!(tables, expected, "{d}");
    for t in d["tables"].as_array().unwrap() {
        assert_eq!(t["file"], format!("{}.csv", t["name"].as_str().unwrap()));
        assert_eq!(t["sha256"].as_str().unwrap().len(), 64);
    }
    let skipped: Vec<&str> = d["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(skipped.contains(&"druid_tasks"), "{d}");
    let deep = d["deep_storage"].as_array().unwrap();
    assert_eq!(deep.len(), 1, "{d}");
    assert!(
        deep[0].as_str().unwrap().starts_with(&seeded.deep.url),
        "{d} vs {}",
        seeded.deep.url
    );
    assert_eq!(d["segments"], json!({"total": SEGMENTS, "used": 4}));

    let target = ms::fresh_solo(kind);
    let out = restore_out(&target, &repo, "events", &[]);
    let report = ok_json(&out);
    assert!(
        stderr(&out).contains("stream offsets")
            || report["warnings"].to_string().contains("offsets"),
        "the offsets warning: {report}"
    );
    for table in [
        "druid_segments",
        "druid_rules",
        "druid_config",
        "druid_dataSource",
        "druid_supervisors",
        "druid_audit",
    ] {
        let before = rows(&source, table);
        // Druid's DDL of today has columns the old source lacks (num_rows, schema_fingerprint):
        // NULL in every restored row, and left out of the comparison.
        let columns: Vec<String> = before[0].keys().cloned().collect();
        let after: Vec<Row> = rows(&target, table)
            .into_iter()
            .map(|mut r| {
                let extra: Vec<(&String, &String)> =
                    r.iter().filter(|(k, _)| !columns.contains(k)).collect();
                assert!(
                    extra.iter().all(|(_, v)| *v == "NULL"),
                    "{table}: an extra column with a value: {extra:?}"
                );
                r.retain(|k, _| columns.contains(k));
                r
            })
            .collect();
        assert_eq!(
            comparable(table, after.clone(), before.len()),
            comparable(table, before.clone(), before.len()),
            "{table} differs"
        );
        if table == "druid_supervisors" {
            // One suspended version per spec that ran, after the restored ones.
            assert_eq!(after.len(), before.len() + 2, "{after:?}");
        }
        if table == "druid_segments" {
            assert!(
                after
                    .iter()
                    .all(|r| r["used_status_last_updated"] != "NULL")
            );
        }
    }
    assert!(
        rows(&target, "druid_tasks").is_empty(),
        "transient rows never come back"
    );
    assert_eq!(report["backfilled_used_status_last_updated"], 1, "{report}");
}

#[test]
fn druid_backup_and_restore_on_postgresql_keep_every_row() {
    round_trip(DbKind::Postgresql);
}

#[test]
fn druid_backup_and_restore_on_mariadb_keep_every_row() {
    round_trip(DbKind::Mysql);
}

#[test]
fn druid_restore_with_a_deep_storage_map_rewrites_and_checks_the_copies() {
    let source = ms::fresh(DbKind::Postgresql);
    let seeded = seed(&source);
    let repo = TestLocation::new(StoreKind::S3, "druid-repo");
    backup(&source, &repo, "events", &[]);
    let copy = TestLocation::new(StoreKind::S3, "seg-dr");
    // Every object copied but the first (used) segment's.
    for rel in &seeded.objects[1..] {
        copy.write(rel, seeded.deep.read(rel));
    }
    let map = format!("{}={}", seeded.deep.url, copy.url);

    // --strict: the missing object refuses the restore before anything is written.
    let target = ms::fresh_solo(DbKind::Postgresql);
    let out = restore_out(
        &target,
        &repo,
        "events",
        &["--deep-storage-map", &map, "--strict"],
    );
    fails_with(
        &out,
        3,
        &[
            "--strict",
            "nothing was written",
            "2024-01-01T00:00:00.000Z",
        ],
    );
    assert!(counts(&target).is_empty(), "{:?}", counts(&target));

    // Without it: a warning naming the missing object, and the restore goes on.
    let out = restore_out(&target, &repo, "events", &["--deep-storage-map", &map]);
    let report = ok_json(&out);
    assert_eq!(report["deep_storage"]["missing"], 1, "{report}");
    let text = format!("{}{}", report["warnings"], stderr(&out));
    assert!(
        text.contains("2024-01-01T00:00:00.000Z"),
        "the missing segment's name: {text}"
    );

    // Every object copied: every loadSpec rewritten, the check passes.
    copy.write(&seeded.objects[0], seeded.deep.read(&seeded.objects[0]));
    let other = ms::fresh_solo(DbKind::Postgresql);
    let report = ok_json(&restore_out(
        &other,
        &repo,
        "events",
        &["--deep-storage-map", &map],
    ));
    assert_eq!(report["deep_storage"]["missing"], 0, "{report}");
    assert_eq!(
        report["deep_storage"]["checked"], 4,
        "the used segments: {report}"
    );
    assert_eq!(report["rewritten_load_specs"], SEGMENTS, "{report}");
    let (_, new_base) = copy
        .url
        .strip_prefix("s3://")
        .unwrap()
        .split_once('/')
        .unwrap();
    for r in rows(&other, "druid_segments") {
        let payload = hex::decode(r["payload"].trim_start_matches("\\x")).unwrap();
        let v: Value = serde_json::from_slice(&payload).unwrap();
        assert!(
            v["loadSpec"]["key"].as_str().unwrap().starts_with(new_base),
            "{v}"
        );
    }
}

#[test]
fn druid_restore_refusals_leave_the_target_as_it_was() {
    let source = ms::fresh(DbKind::Postgresql);
    seed(&source);
    let repo = TestLocation::new(StoreKind::S3, "druid-repo");
    let made = backup(&source, &repo, "events", &[]);
    let id = made["id"].as_str().unwrap().to_string();

    // A target with Druid rows: refused, untouched.
    let busy = ms::fresh_solo(DbKind::Postgresql);
    ms::execute(
        &busy,
        &[
            "CREATE TABLE druid_rules (id VARCHAR(255) PRIMARY KEY, dataSource VARCHAR(255) NOT NULL, version VARCHAR(255) NOT NULL, payload BYTEA NOT NULL)",
            "INSERT INTO druid_rules VALUES ('x', 'x', 'v', decode('00', 'hex'))",
        ],
    );
    let before = counts(&busy);
    let out = restore_out(&busy, &repo, "events", &[]);
    fails_with(&out, 3, &["not empty", "druid_rules has 1 rows"]);
    assert_eq!(counts(&busy), before);

    // A wrong password: a clear error naming the variable.
    let target = ms::fresh_solo(DbKind::Postgresql);
    let out = lifeboat_env(
        &[
            "restore",
            "--from",
            &repo.url,
            "--cluster",
            "events",
            "--druid-metadata",
            &target.shown,
        ],
        &[(
            lifeboat::druid::metastore::PASSWORD_VAR.to_string(),
            "wrong".to_string(),
        )],
    );
    fails_with(&out, 5, &["LIFEBOAT_DRUID_METADATA_PASSWORD"]);

    // A password in the URL: refused before any connection.
    let with_pw = target.url.clone();
    let out = lifeboat_env(
        &[
            "restore",
            "--from",
            &repo.url,
            "--cluster",
            "events",
            "--druid-metadata",
            &with_pw,
        ],
        &env_of(&target),
    );
    fails_with(&out, 2, &["--druid-metadata"]);
    assert!(
        !stderr(&out).contains(&target.password),
        "the password is never echoed"
    );

    // A corrupt archive: refused before anything is written.
    let key = format!("events/{id}/data.tar.zst");
    let mut data = repo.read(&key);
    let mid = data.len() / 2;
    data[mid] ^= 0x55;
    repo.write(&key, data);
    let out = restore_out(&target, &repo, "events", &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(counts(&target).is_empty());
    assert!(rows(&target, "druid_segments").is_empty());
}

/// SIGKILLed while its one transaction is open, the restore leaves every table empty: the test
/// holds a SHARE lock on druid_audit (read allowed, write blocked), so the load is caught after
/// it wrote the tables before it, and waits there until killed.
#[test]
fn druid_restore_killed_mid_load_leaves_the_target_empty() {
    let source = ms::fresh(DbKind::Postgresql);
    seed(&source);
    let repo = TestLocation::new(StoreKind::S3, "druid-repo");
    backup(&source, &repo, "events", &[]);
    let target = ms::fresh_solo(DbKind::Postgresql);
    ms::execute(
        &target,
        &ddl(DbKind::Postgresql)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    block(async {
        let holder = ms::pg_client(&target).await;
        holder
            .batch_execute("BEGIN; LOCK TABLE druid_audit IN SHARE MODE")
            .await
            .unwrap();
        let args = [
            "restore",
            "--from",
            &repo.url,
            "--cluster",
            "events",
            "--druid-metadata",
            &target.shown,
        ];
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(args)
            .envs(env_of(&target))
            .env("LIFEBOAT_PROGRESS", "none")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The load waits on the lock: its rows of the tables before druid_audit are written.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let waiting: i64 = holder
                .query_one(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                     WHERE NOT l.granted AND c.relname = 'druid_audit'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the restore ended before it reached druid_audit"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "the load never reached druid_audit"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        holder.batch_execute("COMMIT").await.unwrap();
    });
    assert!(counts(&target).is_empty(), "{:?}", counts(&target));
}

/// A druid-sim on the restored database serves what one on the original served.
#[test]
fn druid_sim_on_the_restored_store_serves_the_same_rules_configs_and_lookups() {
    let source = ms::fresh(DbKind::Postgresql);
    let (mut primary, url) = druid::spawn(&["--metadata-url", &source.url]);
    let post = |path: &str, body: Value| {
        let (status, text) =
            crate::support::http("POST", &format!("{url}{path}"), None, Some(&body));
        assert!((200..300).contains(&status), "POST {path}: {status} {text}");
    };
    post(
        "/druid/coordinator/v1/rules/wiki",
        json!([{"type": "loadByPeriod", "period": "P1M", "tieredReplicants": {"_default_tier": 1}}, {"type": "dropForever"}]),
    );
    post(
        "/druid/coordinator/v1/config",
        json!({"maxSegmentsToMove": 7, "pauseCoordination": false}),
    );
    post("/druid/coordinator/v1/lookups/config", json!({}));
    post(
        "/druid/coordinator/v1/lookups/config",
        json!({"__default": {"country": {"version": "v1", "lookupExtractorFactory": {"type": "map", "map": {"FR": "France \\ \"Fr\""}}}}}),
    );
    let paths = [
        "/druid/coordinator/v1/rules",
        "/druid/coordinator/v1/config",
        "/druid/coordinator/v1/lookups/config/all",
    ];
    let get = |base: &str| -> Vec<String> {
        paths
            .iter()
            .map(|p| {
                let (status, body) = crate::support::http("GET", &format!("{base}{p}"), None, None);
                assert_eq!(status, 200, "GET {p}: {body}");
                body
            })
            .collect()
    };
    let served = get(&url);
    let repo = TestLocation::new(StoreKind::Local, "druid-repo");
    let made = backup(&source, &repo, "events", &["--druid-url", &url]);
    assert_ne!(made["druid"]["druid_version"], "unknown", "{made}");
    let _ = primary.kill();
    let _ = primary.wait();
    let target = ms::fresh_solo(DbKind::Postgresql);
    ok_json(&restore_out(&target, &repo, "events", &[]));
    let (mut restored, url2) = druid::spawn(&["--metadata-url", &target.url]);
    assert_eq!(get(&url2), served);
    let _ = restored.kill();
    let _ = restored.wait();
}

/// Format 2, encrypted: no table name, load script or segment id in any stored key or byte (the
/// manifest's druid section is sealed); without the key a restore fails before the target is
/// touched, and with it every row comes back.
#[test]
fn an_encrypted_druid_backup_names_no_table_and_restores_only_with_its_key() {
    let source = ms::fresh(DbKind::Postgresql);
    seed(&source);
    let repo = TestLocation::new(StoreKind::Local, "druid-sealed");
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = crate::incremental::age_key(keys.path(), "ops.key");
    let args = [
        "--json",
        "backup",
        "--format",
        "2",
        "--encrypt-to",
        public.as_str(),
        "--druid-metadata",
        &source.shown,
        "--to",
        &repo.url,
        "--cluster",
        "events",
    ];
    let made = ok_json(&lifeboat_env(&args, &env_of(&source)));
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["encrypted"], true, "{made}");
    let m = manifest_of(&repo, "events", &id);
    assert!(m["druid"].is_null(), "the druid section is sealed: {m}");

    let secret: Vec<&str> = (tables::DURABLE.iter().chain(&tables::TRANSIENT))
        .copied()
        .chain(["load-postgresql", "wiki_2024-01-01"])
        .collect();
    let stored = repo.keys();
    assert!(stored.len() >= 4, "{stored:?}");
    for k in &stored {
        let bytes = repo.read(k);
        for name in &secret {
            assert!(!k.contains(name), "{k} names {name}");
            assert!(
                !bytes.windows(name.len()).any(|w| w == name.as_bytes()),
                "{k} holds {name}"
            );
        }
    }

    let target = ms::fresh_solo(DbKind::Postgresql);
    let keyless = restore_out(&target, &repo, "events", &[]);
    fails_with(&keyless, 2, &["identity"]);
    assert!(
        rows(&target, "druid_segments").is_empty(),
        "nothing loaded without the key"
    );
    let out = restore_out(
        &target,
        &repo,
        "events",
        &["--identity", key.to_str().unwrap()],
    );
    ok_json(&out);
    assert_eq!(
        rows(&target, "druid_segments").len(),
        rows(&source, "druid_segments").len()
    );
    assert_eq!(rows(&target, "druid_rules"), rows(&source, "druid_rules"));
}
