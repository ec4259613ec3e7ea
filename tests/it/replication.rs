//! Cron-driven operation: copies to another region (a second S3 server with its own endpoint and
//! credentials), catch-up copies, locks, retention and RPO status with metrics.

use std::io::BufRead;
use std::path::Path;
use std::process::Child;

use crate::support::*;

/// A config file with cluster `prod` backing up `fx` to `us` and (optionally) copying to `eu`.
fn config(
    dir: &Path,
    fx: &Fixture,
    us: &TestLocation,
    eu: &TestLocation,
    copy: bool,
    rpo: &str,
) -> String {
    let copy_to = if copy { "copy_to = [\"eu\"]\n" } else { "" };
    let text = format!(
        "[clusters.prod]\ndremio_home = \"{}\"\nto = \"us\"\n{copy_to}rpo = \"{rpo}\"\n\n[locations.us]\n{}\n[locations.eu]\n{}",
        fx.home.display(),
        us.toml(),
        eu.toml()
    );
    let path = dir.join("lifeboat.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn run(cfg: &str, args: &[&str]) -> std::process::Output {
    let mut full = vec!["--config", cfg];
    full.extend_from_slice(args);
    lifeboat_env(&full, &eu_env())
}

/// One test's world: a fixture, a scratch folder, the two regions and a config file naming them.
struct Setup {
    fx: Fixture,
    dir: tempfile::TempDir,
    us: TestLocation,
    eu: TestLocation,
    cfg: String,
}

fn setup(size_mib: u64, small_files: u64, name: &str, copy: bool) -> Setup {
    let fx = fixture(size_mib, small_files);
    let dir = tempfile::tempdir().unwrap();
    let us = TestLocation::new(StoreKind::S3, &format!("us-{name}"));
    let eu = TestLocation::new(StoreKind::S3Eu, &format!("eu-{name}"));
    let cfg = config(dir.path(), &fx, &us, &eu, copy, "1h");
    Setup {
        fx,
        dir,
        us,
        eu,
        cfg,
    }
}

/// Starts a lifeboat command with the config in the background, once it printed `marker`.
fn start_with_config(cfg: &str, args: &[&str], marker: &str) -> Child {
    let mut full = vec!["--config", cfg];
    full.extend_from_slice(args);
    let (child, reader) = start_until(&full, &eu_env(), marker);
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || reader.lines().for_each(drop));
    child
}

#[test]
fn backup_copies_to_another_region_with_its_own_endpoint_and_credentials() {
    let Setup {
        fx: _fx,
        dir,
        us,
        eu,
        cfg,
    } = setup(2, 20, "copy", true);
    let metrics = dir.path().join("backup.prom");
    let made = ok_json(&run(
        &cfg,
        &[
            "--json",
            "backup",
            "--format",
            "1",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
    ));
    let id = made["id"].as_str().unwrap();
    assert_eq!(made["copies"][0]["status"], "copied", "{made}");
    assert!(
        eu.keys().contains(&format!("prod/{id}/manifest.json")),
        "{:?}",
        eu.keys()
    );
    assert_eq!(
        eu.read(&format!("prod/{id}/data.tar.zst")),
        us.read(&format!("prod/{id}/data.tar.zst"))
    );
    ok_json(&run(&cfg, &["--json", "verify", "--from", "eu"]));
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains(
            "lifeboat_last_run_success{cluster=\"prod\",location=\"us\",command=\"backup\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("lifeboat_copy_ok{cluster=\"prod\",location=\"eu\"} 1"),
        "{text}"
    );
    assert!(text.contains(
        "lifeboat_backup_raw_bytes{cluster=\"prod\",location=\"us\",command=\"backup\"}"
    ));

    // Status: fresh everywhere.
    let status_metrics = dir.path().join("status.prom");
    let st = ok_json(&run(
        &cfg,
        &[
            "--json",
            "status",
            "--metrics-file",
            status_metrics.to_str().unwrap(),
        ],
    ));
    assert_eq!(st["ok"], true, "{st}");
    let text = std::fs::read_to_string(&status_metrics).unwrap();
    assert!(
        text.contains("lifeboat_rpo_ok{cluster=\"prod\",location=\"eu\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("lifeboat_newest_backup_age_seconds{cluster=\"prod\",location=\"us\"}"),
        "{text}"
    );
}

#[test]
fn a_failed_copy_keeps_the_primary_backup_and_exits_7() {
    let fx = fixture(1, 5);
    let dir = tempfile::tempdir().unwrap();
    let us = TestLocation::new(StoreKind::S3, "us-only");
    let eu = TestLocation::new(StoreKind::S3Eu, "eu-missing");
    let cfg = config(dir.path(), &fx, &us, &eu, true, "1h");
    // Point eu at a bucket that does not exist on its server.
    let broken = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&eu.url, "s3://lifeboat-no-such-bucket/x");
    std::fs::write(&cfg, broken).unwrap();
    let out = run(&cfg, &["--json", "backup", "--format", "1"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["copies"][0]["status"], "failed");
    assert!(
        stderr(&out).contains("is committed in us"),
        "{}",
        stderr(&out)
    );
    let listed = ok_json(&run(&cfg, &["--json", "list", "--from", "us"]));
    assert_eq!(listed["backups"][0]["id"], report["id"]);
    // Status alerts: the copy location cannot be read.
    let out = run(&cfg, &["status"]);
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn copy_catches_up_is_idempotent_and_status_sees_the_lag_go() {
    let Setup {
        fx: _fx,
        dir: _dir,
        us: _us,
        eu: _eu,
        cfg,
    } = setup(1, 5, "cu", false);
    let first = ok_json(&run(&cfg, &["--json", "backup", "--format", "1"]))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let second = ok_json(&run(&cfg, &["--json", "backup", "--format", "1"]))["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    // The copy location lags: status says so with exit 8.
    let out = run(&cfg, &["--json", "status", "--copy-to", "eu"]);
    assert_eq!(out.status.code(), Some(8));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["locations"][1]["ok"], false, "{st}");

    let copied = ok_json(&run(
        &cfg,
        &["--json", "copy", "--from", "us", "--to", "eu"],
    ));
    let statuses: Vec<&str> = copied["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["copied", "copied"]);
    assert_eq!(copied["backups"][0]["id"], first.as_str(), "oldest first");
    let again = ok_json(&run(
        &cfg,
        &["--json", "copy", "--from", "us", "--to", "eu"],
    ));
    assert_eq!(
        again["backups"].as_array().unwrap().len(),
        0,
        "nothing left to copy: {again}"
    );
    let again = ok_json(&run(
        &cfg,
        &[
            "--json", "copy", "--from", "us", "--to", "eu", "--backup", "latest",
        ],
    ));
    assert_eq!(again["backups"][0]["status"], "already-there");
    let st = ok_json(&run(&cfg, &["--json", "status", "--copy-to", "eu"]));
    assert_eq!(st["ok"], true, "{st}");
}

#[test]
fn an_interrupted_copy_leaves_no_manifest_and_a_rerun_completes() {
    let Setup {
        fx: _fx,
        dir: _dir,
        us: _us,
        eu,
        cfg,
    } = setup(48, 5, "kill", false);
    let id = ok_json(&run(&cfg, &["--json", "backup", "--format", "1"]))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut child = start_with_config(
        &cfg,
        &["copy", "--from", "us", "--to", "eu"],
        "copy: progress",
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !eu.keys().iter().any(|k| k.ends_with("manifest.json")),
        "no manifest after the kill: {:?}",
        eu.keys()
    );
    let listed = ok_json(&run(&cfg, &["--json", "list", "--from", "eu"]));
    assert_eq!(listed["backups"].as_array().unwrap().len(), 0);
    // The killed run's lock expires by itself; a rerun may have to wait for it.
    let done = ok_json(&run(
        &cfg,
        &[
            "--json",
            "copy",
            "--from",
            "us",
            "--to",
            "eu",
            "--wait-lock",
            "1m",
        ],
    ));
    assert_eq!(done["backups"][0]["id"], id.as_str());
    assert_eq!(done["backups"][0]["status"], "copied");
    ok_json(&run(&cfg, &["--json", "verify", "--from", "eu"]));
}

#[test]
fn a_corrupted_source_is_caught_by_the_copy_digest_check() {
    let Setup {
        fx: _fx,
        dir: _dir,
        us,
        eu,
        cfg,
    } = setup(2, 5, "bad", false);
    let id = ok_json(&run(&cfg, &["--json", "backup", "--format", "1"]))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = format!("prod/{id}/data.tar.zst");
    let mut data = us.read(&key);
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    us.write(&key, data);
    let out = run(&cfg, &["--json", "copy", "--from", "us", "--to", "eu"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["backups"][0]["error"]
            .as_str()
            .unwrap()
            .contains("sha256"),
        "{report}"
    );
    assert!(
        eu.keys().is_empty(),
        "no manifest and no data at the destination: {:?}",
        eu.keys()
    );
}

#[test]
fn a_second_backup_while_one_runs_fails_with_the_lock_code() {
    let Setup {
        fx: _fx,
        dir: _dir,
        us,
        eu: _eu,
        cfg,
    } = setup(48, 5, "lock", false);
    let mut first = start_with_config(
        &cfg,
        &["backup", "--format", "1", "--threads", "1", "--level", "9"],
        "backup: progress",
    );
    let out = run(&cfg, &["backup"]);
    fails_with(
        &out,
        6,
        &[
            "is locked by backup",
            &format!("pid {}", first.id()),
            "--wait-lock",
        ],
    );
    assert!(first.wait().unwrap().success(), "the first backup finishes");
    let listed = ok_json(&run(&cfg, &["--json", "list"]));
    assert_eq!(listed["backups"].as_array().unwrap().len(), 1);
    assert!(
        !us.keys().iter().any(|k| k.ends_with("lock.json")),
        "the lock is released: {:?}",
        us.keys()
    );
}

#[test]
fn a_lock_left_by_a_dead_run_is_taken_over_once_expired() {
    let Setup {
        fx: _fx,
        dir: _dir,
        us,
        eu: _eu,
        cfg,
    } = setup(1, 2, "dead", false);
    let lock = |expires: chrono::DateTime<chrono::Utc>| {
        serde_json::to_vec(&serde_json::json!({
            "host": "gone-host", "pid": 999999, "command": "backup",
            "acquired_at": "2026-01-01T00:00:00Z", "expires_at": expires.to_rfc3339(), "token": "dead"
        }))
        .unwrap()
    };
    us.write(
        "prod/lock.json",
        lock(chrono::Utc::now() + chrono::Duration::hours(1)),
    );
    fails_with(&run(&cfg, &["backup"]), 6, &["gone-host", "999999"]);
    fails_with(
        &run(&cfg, &["backup", "--format", "1", "--wait-lock", "1s"]),
        6,
        &["gone-host"],
    );
    us.write(
        "prod/lock.json",
        lock(chrono::Utc::now() - chrono::Duration::seconds(5)),
    );
    ok_json(&run(&cfg, &["--json", "backup", "--format", "1"]));
    assert!(!us.keys().iter().any(|k| k.ends_with("lock.json")));
}

#[test]
fn prune_applies_retention_removes_leftovers_and_dry_run_changes_nothing() {
    let Setup {
        fx: _fx,
        dir: _dir,
        us,
        eu: _eu,
        cfg,
    } = setup(1, 2, "prune", false);
    let real = ok_json(&run(&cfg, &["--json", "backup", "--format", "1"]))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let now = chrono::Utc::now();
    let old: Vec<String> = (1..=5)
        .map(|days| us.fabricate("prod", &real, now - chrono::Duration::days(days)))
        .collect();
    // A failed run's leftover: data, no manifest.
    let orphan = format!(
        "{}-dead",
        (now - chrono::Duration::days(9)).format("%Y%m%dT%H%M%SZ")
    );
    us.write(&format!("prod/{orphan}/data.tar.zst"), b"partial".to_vec());
    let before = us.keys();

    let dry = ok_json(&run(
        &cfg,
        &[
            "--json",
            "prune",
            "--keep-last",
            "2",
            "--keep-within",
            "36h",
            "--grace",
            "0s",
            "--dry-run",
        ],
    ));
    assert_eq!(us.keys(), before, "a dry run deletes nothing");
    let mut doomed: Vec<String> = dry["delete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    doomed.sort();
    let mut expected: Vec<String> = old[1..].to_vec();
    expected.sort();
    assert_eq!(
        doomed, expected,
        "keeps the real backup and the day-old one"
    );
    assert_eq!(dry["orphans"][0], orphan.as_str());

    let done = ok_json(&run(
        &cfg,
        &[
            "--json",
            "prune",
            "--keep-last",
            "2",
            "--keep-within",
            "36h",
            "--grace",
            "0s",
        ],
    ));
    assert_eq!(done["deleted"].as_array().unwrap().len(), 4);
    let listed = ok_json(&run(&cfg, &["--json", "list"]));
    let ids: Vec<&str> = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![real.as_str(), old[0].as_str()]);
    assert!(
        !us.keys().iter().any(|k| k.contains(&orphan)),
        "leftovers removed"
    );
    assert!(
        !us.keys().iter().any(|k| k.contains(&old[2])),
        "data of pruned backups removed too"
    );
    // Without any policy, prune refuses rather than deleting everything.
    fails_with(&run(&cfg, &["prune"]), 2, &["no retention policy"]);
}

#[test]
fn status_fails_when_the_newest_backup_is_older_than_the_rpo() {
    let Setup {
        fx: _fx,
        dir,
        us,
        eu: _eu,
        cfg,
    } = setup(1, 2, "stale", false);
    let real = ok_json(&run(&cfg, &["--json", "backup", "--format", "1"]))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let stale = us.fabricate(
        "prod",
        &real,
        chrono::Utc::now() - chrono::Duration::hours(3),
    );
    for key in us.keys().into_iter().filter(|k| k.contains(&real)) {
        us.delete(&key);
    }
    let metrics = dir.path().join("status.prom");
    let out = run(
        &cfg,
        &[
            "--json",
            "status",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["locations"][0]["newest"], stale.as_str());
    assert!(
        st["locations"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("older than the RPO"),
        "{st}"
    );
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains("lifeboat_rpo_ok{cluster=\"prod\",location=\"us\"} 0"),
        "{text}"
    );
    // A longer RPO on the command line wins over the file's.
    ok_json(&run(&cfg, &["--json", "status", "--rpo", "4h"]));
}

/// Format 2 uploads every new object to the copy location while the archive is packed: the copy
/// after the commit sends only the backup's own folder (index and SHA256SUMS). A copy location
/// whose lock is held gets nothing streamed, the primary backup still commits (exit 7), and
/// `copy` catches up later.
#[test]
fn format_2_streams_new_objects_to_the_copy_while_packing() {
    let Setup {
        fx,
        dir: _dir,
        us,
        eu,
        cfg,
    } = setup(3, 20, "tee", true);
    let made = ok_json(&run(&cfg, &["--json", "backup", "--format", "2"]));
    let id = made["id"].as_str().unwrap().to_string();
    let copy = &made["copies"][0];
    assert_eq!(copy["status"], "copied", "{made}");
    assert_eq!(
        copy["streamed"]["objects"], made["objects"]["uploaded"],
        "{made}"
    );
    assert_eq!(
        copy["streamed"]["bytes"], made["objects"]["uploaded_bytes"],
        "{made}"
    );
    let after = copy["bytes"].as_u64().unwrap();
    let stored = made["stored_bytes"].as_u64().unwrap();
    let uploaded = made["objects"]["uploaded_bytes"].as_u64().unwrap();
    assert_eq!(
        after,
        stored - uploaded,
        "only the folder's objects after: {made}"
    );
    for key in us.keys().iter().filter(|k| k.starts_with("prod/objects/")) {
        assert_eq!(eu.read(key), us.read(key), "{key}");
    }
    ok_json(&run(
        &cfg,
        &["--json", "verify", "--from", "eu", "--backup", &id],
    ));

    // The copy location is locked by a live run elsewhere: nothing goes there.
    let objects_at_eu = |eu: &TestLocation| {
        eu.keys()
            .iter()
            .filter(|k| k.starts_with("prod/objects/"))
            .count()
    };
    let before = objects_at_eu(&eu);
    let lock = serde_json::json!({
        "host": "other-host", "pid": 4242, "command": "prune",
        "acquired_at": "2026-01-01T00:00:00Z",
        "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
        "token": "theirs"
    });
    eu.write("prod/lock.json", serde_json::to_vec(&lock).unwrap());
    std::fs::write(fx.db.join("catalog/000999.sst"), vec![7u8; 300_000]).unwrap();
    let out = run(&cfg, &["--json", "backup", "--format", "2"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["copies"][0]["status"], "failed", "{report}");
    assert!(report["copies"][0]["streamed"].is_null(), "{report}");
    assert!(
        report["copies"][0]["error"]
            .as_str()
            .unwrap()
            .contains("other-host"),
        "{report}"
    );
    assert_eq!(
        objects_at_eu(&eu),
        before,
        "nothing streamed to a locked copy"
    );
    let second = report["id"].as_str().unwrap();
    eu.delete("prod/lock.json");
    ok_json(&run(
        &cfg,
        &["--json", "copy", "--from", "us", "--to", "eu"],
    ));
    ok_json(&run(
        &cfg,
        &["--json", "verify", "--from", "eu", "--backup", second],
    ));
}
