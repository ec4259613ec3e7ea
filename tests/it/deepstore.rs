//! Deep-storage consistency against a real S3 server (SeaweedFS): segment objects under a prefix,
//! a segments file in the backup's CSV dialect or a live `druid_segments` table in PostgreSQL,
//! and `druid::deepstore::check` / `lifeboat doctor --druid-metadata` over them: all present,
//! one deleted (reported by name), one of the wrong size, an orphan, and a map to a copy of the
//! objects in a second bucket.

use std::path::Path;
use std::sync::Arc;

use lifeboat::druid::deepstore::{self, CheckOptions, Consistency, Opener};
use lifeboat::druid::loadspec::DeepStorageMap;
use lifeboat::druid::metastore::DbKind;
use lifeboat::druid::metastore::csv::{CsvWriter, Field};
use lifeboat::druid::metastore::dump::Column;
use lifeboat::store::Location;
use lifeboat::store::location::Access;
use serde_json::{Value, json};

use crate::support::metastore::{fresh, pg_client};
use crate::support::{StoreKind, TestLocation, block, env, lifeboat_env, stderr};

const IV: &str = "2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z";

/// Druid's key of partition `n` of datasource `wiki` under a location's base key.
fn key(n: u32) -> String {
    format!("druid/segments/wiki/{IV}/2024-01-03T00:00:00.000Z/{n}/index.zip")
}

/// `s3://bucket/prefix` split.
fn bucket_and_prefix(url: &str) -> (String, String) {
    let rest = url.strip_prefix("s3://").unwrap();
    let (b, p) = rest.split_once('/').unwrap();
    (b.to_string(), p.to_string())
}

/// A segment payload as Druid writes it, its s3_zip loadSpec at `key` under `url`.
fn payload(url: &str, key: &str, size: u64) -> Vec<u8> {
    let (bucket, prefix) = bucket_and_prefix(url);
    serde_json::to_vec(&json!({
        "dataSource": "wiki",
        "interval": "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z",
        "version": "2024-01-03T00:00:00.000Z",
        "loadSpec": {"type": "s3_zip", "bucket": bucket, "key": format!("{prefix}/{key}"), "S3Schema": "s3n"},
        "dimensions": "page,user",
        "metrics": "count",
        "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 0},
        "binaryVersion": 9,
        "size": size,
    }))
    .unwrap()
}

/// (id, used, partition): the segments of the tests.
fn segments() -> Vec<(String, bool, u32)> {
    let mut s: Vec<(String, bool, u32)> = (0..4)
        .map(|n| (format!("wiki_{IV}_v1_{n}"), true, n))
        .collect();
    // An unused segment's object is not an orphan.
    s.push((format!("wiki_{IV}_v1_9"), false, 9));
    s
}

fn put_objects(loc: &TestLocation) {
    for (_, _, n) in segments() {
        loc.write(&key(n), vec![n as u8; 1000]);
    }
}

fn columns() -> Vec<Column> {
    ["id", "dataSource", "used", "payload"]
        .iter()
        .map(|n| Column {
            name: n.to_string(),
            sql_type: "text".into(),
            nullable: false,
        })
        .collect()
}

/// A druid_segments.csv in the backup's dialect, pointing at `url`.
fn segments_csv(dir: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("druid_segments.csv");
    let mut w = CsvWriter::new(std::fs::File::create(&path).unwrap());
    w.write_header(&["id", "dataSource", "used", "payload"])
        .unwrap();
    for (id, used, n) in segments() {
        let p = payload(url, &key(n), 4000);
        w.write_record(&[
            Field::Text(id.as_bytes()),
            Field::Text(b"wiki"),
            Field::Bool(used),
            Field::Bytes(&p),
        ])
        .unwrap();
    }
    w.flush().unwrap();
    path
}

fn options(roots: Vec<String>) -> CheckOptions {
    let open: Opener = Arc::new(|url: &str| Ok(Location::open(url, Access::Read)?));
    CheckOptions {
        open,
        roots,
        concurrency: 8,
    }
}

fn check_csv(path: &Path, map: &DeepStorageMap) -> Consistency {
    block(async {
        let stream = deepstore::segments_of_csv(path, &columns(), map).unwrap();
        deepstore::check(
            stream,
            &options(vec![]),
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap()
    })
}

#[test]
fn a_segments_file_is_checked_against_s3_by_name_size_and_orphans() {
    let loc = TestLocation::new(StoreKind::S3, "deepstore");
    put_objects(&loc);
    let dir = tempfile::tempdir().unwrap();
    let csv = segments_csv(dir.path(), &loc.url);
    let none = DeepStorageMap::default();

    let all = check_csv(&csv, &none);
    assert_eq!(
        (all.checked, all.missing, all.wrong_size, all.orphaned),
        (4, 0, 0, Some(0)),
        "{all:#?}"
    );
    assert_eq!(all.roots, vec![format!("{}/druid/segments", loc.url)]);
    assert!(all.ok());

    // One deleted, one replaced by an object no zip of 4,000 bytes can be, one orphan.
    loc.delete(&key(1));
    loc.write(&key(2), vec![0u8; 200 << 10]);
    loc.write(&key(7), b"left behind".to_vec());
    let found = check_csv(&csv, &none);
    assert_eq!(
        (found.checked, found.missing, found.wrong_size),
        (4, 1, 1),
        "{found:#?}"
    );
    assert_eq!(
        found.missing_sample,
        vec![format!("{}/{} (segment wiki_{IV}_v1_1)", loc.url, key(1))]
    );
    assert!(
        found.wrong_size_sample[0].contains(&key(2))
            && found.wrong_size_sample[0].contains("204800 bytes"),
        "{found:#?}"
    );
    assert_eq!(found.orphaned, Some(1));
    assert_eq!(
        found.orphaned_sample,
        vec![format!("{}/{}", loc.url, key(7))]
    );
    assert!(!found.ok());
}

/// A second bucket on the SeaweedFS server, made with the venv's awscli.
fn second_bucket() -> String {
    let mut rnd = [0u8; 4];
    getrandom::fill(&mut rnd).unwrap();
    let name = format!("lifeboat-deepstore-{}", hex::encode(rnd));
    let aws = Path::new(&env("LIFEBOAT_VENV")).join("bin/aws");
    let out = std::process::Command::new(aws)
        .args(["--endpoint-url", &env("AWS_ENDPOINT_URL"), "s3", "mb"])
        .arg(format!("s3://{name}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "aws s3 mb: {}", stderr(&out));
    name
}

#[test]
fn a_map_checks_the_copied_objects_in_a_second_bucket() {
    let loc = TestLocation::new(StoreKind::S3, "deepstore-src");
    put_objects(&loc);
    let copy_url = format!("s3://{}/dr-copy", second_bucket());
    let copy = Location::open(&copy_url, Access::Write).unwrap();
    block(async {
        use object_store::ObjectStoreExt;
        for (_, _, n) in segments() {
            let path = copy.key(&key(n).split('/').collect::<Vec<_>>());
            copy.store
                .put(&path, vec![n as u8; 1000].into())
                .await
                .unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let csv = segments_csv(dir.path(), &loc.url);
    let map = DeepStorageMap::parse(&[format!("{}={copy_url}/", loc.url)]).unwrap();

    let c = check_csv(&csv, &map);
    assert_eq!(
        (c.checked, c.missing, c.wrong_size, c.orphaned),
        (4, 0, 0, Some(0)),
        "{c:#?}"
    );
    assert_eq!(c.roots, vec![format!("{copy_url}/druid/segments")]);

    // An object that was not copied is missing at its NEW location, by name.
    block(async {
        use object_store::ObjectStoreExt;
        let path = copy.key(&key(3).split('/').collect::<Vec<_>>());
        copy.store.delete(&path).await.unwrap();
    });
    let c = check_csv(&csv, &map);
    assert_eq!(c.missing, 1, "{c:#?}");
    assert_eq!(
        c.missing_sample,
        vec![format!("{copy_url}/{} (segment wiki_{IV}_v1_3)", key(3))]
    );
}

/// A live metadata store as Druid makes it (its own DDL text, not lifeboat's), with the segments.
fn seeded_pg(url: &str) -> crate::support::metastore::DbUrl {
    let db = fresh(DbKind::Postgresql);
    block(async {
        let client = pg_client(&db).await;
        client
            .batch_execute(
                "CREATE TABLE druid_segments (id VARCHAR(255) NOT NULL, dataSource VARCHAR(255) NOT NULL, \
                 created_date VARCHAR(255) NOT NULL, start VARCHAR(255) NOT NULL, \"end\" VARCHAR(255) NOT NULL, \
                 partitioned BOOLEAN NOT NULL, version VARCHAR(255) NOT NULL, used BOOLEAN NOT NULL, \
                 payload BYTEA NOT NULL, used_status_last_updated VARCHAR(255) NOT NULL, \
                 schema_fingerprint VARCHAR(255), num_rows BIGINT, PRIMARY KEY (id))",
            )
            .await
            .unwrap();
        for (id, used, n) in segments() {
            client
                .execute(
                    "INSERT INTO druid_segments VALUES ($1, 'wiki', '2024-01-03T00:00:00.000Z', \
                     '2024-01-01T00:00:00.000Z', '2024-01-02T00:00:00.000Z', true, \
                     '2024-01-03T00:00:00.000Z', $2, $3, '2024-01-03T00:00:00.000Z', NULL, 10)",
                    &[&id, &used, &payload(url, &key(n), 4000)],
                )
                .await
                .unwrap();
        }
    });
    db
}

fn doctor(db: &crate::support::metastore::DbUrl, root: &str) -> (Option<i32>, Value, String) {
    let args = [
        "--json",
        "doctor",
        "--druid-metadata",
        &db.shown,
        "--deep-storage",
        root,
    ];
    let out = lifeboat_env(&args, &db.password_env());
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), report, stderr(&out))
}

fn deepstore_check(report: &Value) -> &Value {
    report["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == "deepstore.segments"))
        .unwrap_or_else(|| panic!("no deepstore.segments in {report:#}"))
}

#[test]
fn doctor_checks_the_live_segments_objects() {
    let loc = TestLocation::new(StoreKind::S3, "deepstore-doctor");
    put_objects(&loc);
    let db = seeded_pg(&loc.url);
    let root = format!("{}/druid/segments", loc.url);

    let (_, report, err) = doctor(&db, &root);
    let c = deepstore_check(&report);
    assert_eq!(c["status"], "pass", "{c:#}\n{err}");
    assert_eq!(c["evidence"]["checked"], 4);
    assert_eq!(c["evidence"]["orphaned"], 0);
    // Without --druid-url the nodes are not asked.
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "druid.nodes" && c["status"] == "skip")
    );

    loc.write(&key(5), b"orphan".to_vec());
    let (_, report, err) = doctor(&db, &root);
    let c = deepstore_check(&report);
    assert_eq!(c["status"], "warn", "{c:#}\n{err}");
    assert_eq!(c["evidence"]["orphaned"], 1);

    loc.delete(&key(0));
    let (code, report, err) = doctor(&db, &root);
    assert_eq!(code, Some(11), "{err}");
    let c = deepstore_check(&report);
    assert_eq!(c["status"], "fail", "{c:#}");
    let summary = c["summary"].as_str().unwrap();
    assert!(
        summary.contains("1 of 4") && summary.contains(&key(0)),
        "{summary}"
    );
    assert_eq!(
        c["evidence"]["missing_sample"][0],
        format!("{}/{} (segment wiki_{IV}_v1_0)", loc.url, key(0))
    );
}

#[test]
fn doctor_skips_the_check_when_the_store_cannot_be_read() {
    let db = fresh(DbKind::Postgresql);
    let wrong = vec![(
        lifeboat::druid::metastore::PASSWORD_VAR.to_string(),
        "not-the-password".to_string(),
    )];
    let out = lifeboat_env(&["--json", "doctor", "--druid-metadata", &db.shown], &wrong);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let c = deepstore_check(&report);
    assert_eq!(c["status"], "skip", "{c:#}");
    assert!(
        c["remedy"].as_str().unwrap().contains("cannot be read"),
        "{c:#}"
    );
}

/// `lifeboat --json verify --deep-storage` of the newest backup of `cluster` in `repo`.
fn verify_deep(repo: &TestLocation, cluster: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--json",
        "verify",
        "--from",
        &repo.url,
        "--cluster",
        cluster,
        "--deep-storage",
    ];
    args.extend_from_slice(extra);
    lifeboat_env(&args, &[])
}

#[test]
fn verify_deep_storage_checks_a_druid_backups_segments() {
    let objects = TestLocation::new(StoreKind::S3, "deepstore-verify");
    put_objects(&objects);
    let db = seeded_pg(&objects.url);
    let repo = TestLocation::new(StoreKind::Local, "deepstore-verify-repo");
    let out = lifeboat_env(
        &[
            "--json",
            "backup",
            "--druid-metadata",
            &db.shown,
            "--to",
            &repo.url,
            "--cluster",
            "wiki",
        ],
        &db.password_env(),
    );
    assert!(out.status.success(), "backup: {}", stderr(&out));

    let ok = verify_deep(&repo, "wiki", &[]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["deep_storage"]["checked"], 4, "{report:#}");
    assert_eq!(report["deep_storage"]["missing"], 0);

    // An object deleted from deep storage: the backup cannot be restored whole.
    objects.delete(&key(2));
    let bad = verify_deep(&repo, "wiki", &[]);
    assert_eq!(bad.status.code(), Some(4), "{}", stderr(&bad));
    let report: Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["deep_storage"]["missing"], 1);
    let name = format!("{}/{}", objects.url, key(2));
    assert!(
        report["deep_storage"]["missing_sample"][0]
            .as_str()
            .unwrap()
            .starts_with(&name),
        "{report:#}"
    );
    assert!(stderr(&bad).contains(&name), "{}", stderr(&bad));

    // Against a replica that has every object, through a map.
    let copy = TestLocation::new(StoreKind::S3, "deepstore-verify-copy");
    put_objects(&copy);
    let map = format!("{}={}", objects.url, copy.url);
    let ok = verify_deep(&repo, "wiki", &["--deep-storage-map", &map]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(
        report["deep_storage"]["roots"][0],
        format!("{}/druid/segments", copy.url)
    );

    // A map that is not FROM=TO is a usage error before anything is read.
    let out = verify_deep(&repo, "wiki", &["--deep-storage-map", "s3://only-one-side"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn verify_deep_storage_of_a_dremio_backup_is_a_usage_error() {
    let fx = crate::support::fixture(1, 1);
    let repo = TestLocation::new(StoreKind::Local, "deepstore-dremio");
    let out = lifeboat_env(
        &[
            "backup",
            "--dremio-home",
            fx.home.to_str().unwrap(),
            "--to",
            &repo.url,
            "--cluster",
            "dremio",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = verify_deep(&repo, "dremio", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("Druid"), "{}", stderr(&out));
}
