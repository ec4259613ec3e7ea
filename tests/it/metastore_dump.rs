//! The metadata-store dump against real PostgreSQL 15 and MariaDB 10.11 (scripts/test.sh starts
//! them): a store seeded as Druid fills it is dumped through the library, the files are loaded
//! WITHOUT lifeboat (psql and the mariadb client with the dump's own scripts) into a fresh
//! database on the second server, and every row comes back byte for byte; a write committed
//! while the dump runs stays out of it; refused credentials are a clear error.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use lifeboat::druid::metastore::dump::{self, Dump};
use lifeboat::druid::metastore::{self, DbKind, MetaConfig, MetaError, MetaUrl, PASSWORD_VAR};
use lifeboat::secrets::Secret;

use crate::support::block;
use crate::support::metastore::{DbUrl, Seeded, execute, fresh, fresh_solo, seed, table_rows};

fn config(db: &DbUrl, password: &str) -> MetaConfig {
    MetaConfig::new(
        MetaUrl::parse(&db.shown).unwrap(),
        Some(Secret(password.into())),
        "lifeboat-test",
    )
}

fn dump_into(db: &DbUrl, dir: &Path, hook: &(dyn Fn(&str) + Sync)) -> Dump {
    block(async {
        let mut conn = metastore::connect(&config(db, &db.password)).await.unwrap();
        let cancel = tokio_util::sync::CancellationToken::new();
        let d = dump::dump_with(
            &mut conn,
            dir,
            &lifeboat::progress::NotesOnly,
            &cancel,
            hook,
        )
        .await
        .unwrap();
        conn.close().await;
        d
    })
}

/// Loads the dump in `dir` into `target` with the database's own client and the dump's script.
fn load_by_hand(dir: &Path, target: &DbUrl) {
    let out = match target.kind {
        DbKind::Postgresql => Command::new("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &target.shown,
                "-f",
            ])
            .arg("load-postgresql.sql")
            .env("PGPASSWORD", &target.password)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap(),
        DbKind::Mysql => Command::new("mariadb")
            .args([
                "--no-defaults",
                "--local-infile=1",
                "-h",
                &target.host,
                "-P",
            ])
            .arg(target.port.to_string())
            .args(["-u", &target.user, &target.db])
            .env("MYSQL_PWD", &target.password)
            .current_dir(dir)
            .stdin(std::fs::File::open(dir.join("load-mysql.sql")).unwrap())
            .output()
            .unwrap(),
    };
    assert!(
        out.status.success(),
        "loading by hand failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

fn check_dump(d: &Dump, seeded: &Seeded, kind: DbKind, dir: &Path) {
    assert_eq!(d.db_kind, kind);
    assert!(!d.db_version.is_empty());
    let got: Vec<(&str, u64)> = d.tables.iter().map(|t| (t.name.as_str(), t.rows)).collect();
    let want: Vec<(&str, u64)> = [
        "druid_segments",
        "druid_rules",
        "druid_config",
        "druid_dataSource",
        "druid_supervisors",
        "druid_audit",
    ]
    .into_iter()
    .map(|t| (t, seeded.rows[t]))
    .collect();
    assert_eq!(
        got, want,
        "tables in load order, named as Druid does, with their rows"
    );
    assert_eq!(d.segments, seeded.segments.len() as u64);
    assert_eq!(d.used_segments, seeded.used);
    assert_eq!(d.deep_storage, vec![seeded.location.clone()]);
    assert_eq!(d.skipped.len(), 1, "{:?}", d.skipped);
    assert_eq!(
        (
            d.skipped[0].name.as_str(),
            d.skipped[0].reason.as_str(),
            d.skipped[0].rows
        ),
        ("druid_tasks", "transient", Some(1))
    );
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut expected: Vec<String> = d.tables.iter().map(|t| t.file.clone()).collect();
    expected.extend(["README.txt", "load-mysql.sql", "load-postgresql.sql"].map(String::from));
    expected.sort();
    assert_eq!(files, expected);
    for f in &files {
        let m = std::fs::metadata(dir.join(f)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
        assert!(metastore::scripts::is_backup_file(f), "{f}");
    }
    for t in &d.tables {
        assert_eq!(std::fs::metadata(dir.join(&t.file)).unwrap().len(), t.bytes);
    }
}

/// Every durable row of `from` in `to`, byte for byte; the one NULL `used_status_last_updated`
/// is backfilled with the load's time.
fn same_rows(from: &DbUrl, to: &DbUrl, seeded: &Seeded) {
    for table in seeded.durable() {
        let (a, b) = (table_rows(from, table), table_rows(to, table));
        assert_eq!(a.len(), b.len(), "{table}");
        for (ra, rb) in a.iter().zip(&b) {
            if table == "druid_segments" && ra[9].is_none() {
                let filled = String::from_utf8(rb[9].clone().expect("backfilled")).unwrap();
                assert!(
                    filled.len() == 24 && filled.ends_with('Z') && filled.as_bytes()[10] == b'T',
                    "an ISO instant as Druid writes it: {filled}"
                );
                assert_eq!(ra[..9], rb[..9], "{table}");
                assert_eq!(ra[10..], rb[10..], "{table}");
            } else {
                assert_eq!(ra, rb, "{table}");
            }
        }
    }
}

fn dump_then_load_by_hand(kind: DbKind) {
    let source = fresh(kind);
    let seeded = seed(&source, None);
    let dir = tempfile::tempdir().unwrap();
    let d = dump_into(&source, dir.path(), &|_| ());
    check_dump(&d, &seeded, kind, dir.path());
    let first: Vec<Vec<u8>> = d
        .tables
        .iter()
        .map(|t| std::fs::read(dir.path().join(&t.file)).unwrap())
        .collect();
    // a second dump of the same data is the same bytes
    let again = tempfile::tempdir().unwrap();
    dump_into(&source, again.path(), &|_| ());
    for (t, bytes) in d.tables.iter().zip(&first) {
        assert_eq!(
            &std::fs::read(again.path().join(&t.file)).unwrap(),
            bytes,
            "{} is deterministic",
            t.file
        );
    }
    let target = fresh_solo(kind);
    load_by_hand(dir.path(), &target);
    same_rows(&source, &target, &seeded);
    // the load script set the sequences past the restored ids
    let next = match kind {
        DbKind::Postgresql => {
            "INSERT INTO druid_audit (audit_key, type, author, comment, created_date, payload) VALUES ('k', 't', 'a', 'c', 'd', '\\x00')"
        }
        DbKind::Mysql => {
            "INSERT INTO druid_audit (audit_key, type, author, comment, created_date, payload) VALUES ('k', 't', 'a', 'c', 'd', x'00')"
        }
    };
    execute(&target, &[next]);
    let ids: Vec<Vec<u8>> = table_rows(&target, "druid_audit")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(ids.last().unwrap(), b"4", "{ids:?}");
}

#[test]
fn metastore_dump_postgresql_loads_by_hand_with_every_byte() {
    dump_then_load_by_hand(DbKind::Postgresql);
}

#[test]
fn metastore_dump_mariadb_loads_by_hand_with_every_byte() {
    dump_then_load_by_hand(DbKind::Mysql);
}

/// A transaction that moves a datasource's offsets and adds a segment, committed after the dump
/// took its snapshot and before it reads the segments, is in neither file.
fn concurrent_writes_stay_out(kind: DbKind) {
    let source = fresh(kind);
    let seeded = seed(&source, None);
    let writer = source.clone();
    let (insert, update) = (
        "INSERT INTO druid_segments (id, dataSource, created_date, start, \"end\", partitioned, \
         version, used, payload, used_status_last_updated) VALUES ('late', 'wikipedia', 'c', \
         's', 'e', TRUE, 'v', TRUE, 'x', 'u')",
        "UPDATE druid_dataSource SET commit_metadata_sha1 = 'moved' WHERE dataSource = 'wikipedia'",
    );
    let hook = move |table: &str| {
        if table != "druid_segments" {
            return;
        }
        let w = writer.clone();
        std::thread::spawn(move || {
            let stmts: Vec<String> = ["BEGIN", insert, update, "COMMIT"]
                .iter()
                .map(|s| match w.kind {
                    DbKind::Mysql => s.replace('"', "`"),
                    DbKind::Postgresql => s.to_string(),
                })
                .collect();
            let refs: Vec<&str> = stmts.iter().map(String::as_str).collect();
            execute(&w, &refs);
        })
        .join()
        .unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dump_into(&source, dir.path(), &hook);
    // the write happened
    assert_eq!(
        table_rows(&source, "druid_segments").len(),
        seeded.segments.len() + 1
    );
    // and the dump did not see it
    assert_eq!(d.segments, seeded.segments.len() as u64);
    let segments = std::fs::read_to_string(dir.path().join("druid_segments.csv")).unwrap();
    assert!(!segments.contains("\"late\""), "{segments}");
    let offsets = std::fs::read_to_string(dir.path().join("druid_dataSource.csv")).unwrap();
    assert!(!offsets.contains("moved"), "{offsets}");
}

#[test]
fn metastore_dump_postgresql_is_one_snapshot() {
    concurrent_writes_stay_out(DbKind::Postgresql);
}

#[test]
fn metastore_dump_mariadb_is_one_snapshot() {
    concurrent_writes_stay_out(DbKind::Mysql);
}

#[test]
fn metastore_dump_refused_credentials_and_unknown_databases_say_what_to_do() {
    for kind in [DbKind::Postgresql, DbKind::Mysql] {
        let db = fresh(kind);
        let e = block(metastore::connect(&config(&db, "not-the-password")))
            .err()
            .unwrap();
        let text = e.to_string();
        assert!(matches!(e, MetaError::Connect { .. }), "{text}");
        assert!(text.contains(PASSWORD_VAR), "{text}");
        assert!(!text.contains("not-the-password"), "{text}");
        let mut missing = db.clone();
        missing.shown = format!("{}_gone", db.shown);
        let e = block(metastore::connect(&config(&missing, &db.password)))
            .err()
            .unwrap();
        assert!(e.to_string().contains("does not exist"), "{e}");
        let mut closed = db.clone();
        closed.shown = db.shown.replace(
            &format!(":{}/", db.port),
            &format!(":{}/", crate::support::free_port()),
        );
        let e = block(metastore::connect(&config(&closed, &db.password)))
            .err()
            .unwrap();
        assert!(e.to_string().contains("reaches it"), "{e}");
    }
}
