//! Flaky storage: lifeboat through a fault-injecting proxy (tests/faultproxy) in front of real
//! SeaweedFS and Azurite. A transient fault is survived, retried as the request it hit (a part as a
//! part, a range resumed where it broke), and every retry is a note on stderr; a fault that outlasts
//! the retry budget fails cleanly, naming the location and the backup, with nothing committed, and
//! a rerun without the fault succeeds.

use std::process::Output;
use std::time::Duration;

use faultproxy::{Fault, Kind, Match};

use crate::support::*;

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod s3 {
            $(#[test] fn $name() { super::$name(crate::support::StoreKind::S3) })*
        }
        mod azure {
            $(#[test] fn $name() { super::$name(crate::support::StoreKind::Azure) })*
        }
    };
}

on_both_stores!(
    slowdown_bursts_are_retried_part_by_part,
    resets_mid_upload_are_retried_part_by_part,
    stalled_requests_time_out_and_are_retried,
    downloads_cut_mid_body_resume_their_range,
    a_commit_whose_answer_was_lost_is_recognised,
    an_upload_that_exhausts_its_budget_commits_nothing_and_a_rerun_succeeds,
    a_format_2_backup_whose_object_uploads_fail_is_a_storage_error_and_commits_nothing,
    a_restore_that_exhausts_its_budget_leaves_the_target_untouched,
    a_format_2_restore_whose_object_downloads_fail_leaves_the_target_untouched,
    a_format_2_restore_resumes_whole_object_gets_cut_mid_body,
    prune_survives_failing_deletes_and_finishes_on_a_rerun,
    a_format_2_prune_whose_deletes_keep_failing_is_finished_by_a_rerun,
    a_same_store_copy_above_the_copy_limit_is_streamed,
);

/// A bound for any one run: a hung run fails its test instead of the suite.
const LIMIT: Duration = Duration::from_secs(120);
const MIB: u64 = 1 << 20;
/// Ranged GETs of 1 MiB: a small archive still takes several.
const RANGE: u64 = MIB;

/// One test's world: a fixture, an empty location, and a proxy in front of its server.
struct World {
    fx: Fixture,
    loc: TestLocation,
    via: Proxied,
}

fn world(kind: StoreKind, name: &str) -> World {
    // Stored: about 6.7 MiB on S3, two parts of 5 MiB (its smallest); about 4.5 MiB on Azure, five
    // blocks of 1 MiB.
    let size_mib = if kind == StoreKind::Azure { 8 } else { 12 };
    World {
        fx: fixture(size_mib, 10),
        loc: TestLocation::new(kind, name),
        via: Proxied::start(kind),
    }
}

impl World {
    fn azure(&self) -> bool {
        self.loc.kind == StoreKind::Azure
    }

    fn part_size(&self) -> u64 {
        if self.azure() { MIB } else { 5 * MIB }
    }

    fn home(&self) -> &str {
        self.fx.home.to_str().unwrap()
    }

    /// Through the proxy, with a budget generous enough for the bursts below and small sizes.
    fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.via.env();
        for (k, v) in [
            ("LIFEBOAT_MAX_RETRIES", "6"),
            ("LIFEBOAT_RETRY_TIMEOUT", "60s"),
            ("LIFEBOAT_REQUEST_TIMEOUT", "10s"),
            ("LIFEBOAT_RANGE_SIZE", "1MiB"),
        ] {
            env.push((k.into(), v.into()));
        }
        env.push(("LIFEBOAT_PART_SIZE".into(), self.part_size().to_string()));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        lifeboat_within(args, &self.env(extra), LIMIT)
    }

    fn backup(&self, extra: &[(&str, &str)]) -> Output {
        self.run(
            &[
                "--json",
                "backup",
                "--format",
                "1",
                "--dremio-home",
                self.home(),
                "--to",
                &self.loc.url,
            ],
            extra,
        )
    }

    /// A format-1 backup made around the proxy, for tests whose faults are elsewhere.
    fn backup_directly(&self) -> serde_json::Value {
        self.backup_directly_as("1")
    }

    /// A backup of `format` made around the proxy.
    fn backup_directly_as(&self, format: &str) -> serde_json::Value {
        let made = ok_json(&lifeboat(
            &[
                "--json",
                "backup",
                "--format",
                format,
                "--dremio-home",
                self.home(),
                "--to",
                &self.loc.url,
            ],
            &[],
        ));
        assert_eq!(
            made["format"].as_u64().unwrap_or(1).to_string(),
            format,
            "{made}"
        );
        made
    }

    fn listed(&self) -> Vec<String> {
        let listed = ok_json(&lifeboat(&["--json", "list", "--from", &self.loc.url], &[]));
        listed["backups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_string())
            .collect()
    }

    fn verify_directly(&self, id: &str) {
        let out = lifeboat(
            &["--json", "verify", "--from", &self.loc.url, "--backup", id],
            &[],
        );
        assert_eq!(ok_json(&out)["ok"], true);
    }

    /// The archive (a key ending in `archive`) went up as one upload, completed once, never aborted
    /// or restarted, each of its `parts` relayed exactly once (the failed attempts never reached the
    /// server).
    fn assert_one_upload(&self, archive: &str, parts: u64) {
        let p = &self.via.proxy;
        if !self.azure() {
            assert_eq!(
                p.count_on(Kind::CreateMultipart, archive),
                1,
                "{:?}",
                p.counts()
            );
            assert_eq!(p.count_on(Kind::AbortMultipart, archive), 0);
        }
        assert_eq!(
            p.count_on(Kind::CompleteMultipart, archive),
            1,
            "{:?}",
            p.counts()
        );
        assert_eq!(
            p.count_on(Kind::UploadPart, archive),
            parts as usize,
            "{:?}",
            p.counts()
        );
    }

    fn parts_of(&self, stored: u64) -> u64 {
        stored.div_ceil(self.part_size())
    }

    /// The 503 an S3 server or Azure sends when it throttles.
    fn slowdown(&self) -> &'static str {
        if self.azure() {
            "503 ServerBusy"
        } else {
            "503 SlowDown"
        }
    }
}

/// The retry notes a run printed.
fn retry_notes(out: &Output) -> Vec<String> {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with("retry"))
        .map(str::to_string)
        .collect()
}

fn notes_with(out: &Output, fragments: &[&str]) -> usize {
    retry_notes(out)
        .iter()
        .filter(|n| fragments.iter().all(|f| n.contains(f)))
        .count()
}

fn stored_bytes(made: &serde_json::Value) -> u64 {
    made["stored_bytes"].as_u64().unwrap()
}

fn slowdown_bursts_are_retried_part_by_part(kind: StoreKind) {
    let w = world(kind, "slowdown");
    let slow = w.via.proxy.inject(
        Match::kind(Kind::UploadPart).nth(2).times(3),
        Fault::SlowDown,
    );
    let out = w.backup(&[]);
    let made = ok_json(&out);
    let id = made["id"].as_str().unwrap();
    assert_eq!(slow.count(), 3);
    let archive = format!("{id}/data.tar.zst");
    assert_eq!(
        notes_with(&out, &[&archive, w.slowdown(), "waiting"]),
        3,
        "{}",
        stderr(&out)
    );
    w.assert_one_upload(
        &format!("{id}/data.tar.zst"),
        w.parts_of(stored_bytes(&made)),
    );
    w.verify_directly(id);
}

fn resets_mid_upload_are_retried_part_by_part(kind: StoreKind) {
    let w = world(kind, "reset-upload");
    let reset = w.via.proxy.inject(
        Match::kind(Kind::UploadPart).nth(2).times(2),
        Fault::ResetUpload { after: 256 << 10 },
    );
    let out = w.backup(&[]);
    let made = ok_json(&out);
    let id = made["id"].as_str().unwrap();
    assert_eq!(reset.count(), 2);
    assert_eq!(
        notes_with(&out, &[&format!("{id}/data.tar.zst"), "connection"]),
        2,
        "{}",
        stderr(&out)
    );
    w.assert_one_upload(
        &format!("{id}/data.tar.zst"),
        w.parts_of(stored_bytes(&made)),
    );
    w.verify_directly(id);
}

fn stalled_requests_time_out_and_are_retried(kind: StoreKind) {
    let w = world(kind, "stall");
    let fast = [("LIFEBOAT_REQUEST_TIMEOUT", "2s")];
    // Far longer than the request timeout: only giving up on it gets the run through.
    let stall = Fault::Stall(Duration::from_secs(600));
    let stalled = w
        .via
        .proxy
        .inject(Match::kind(Kind::UploadPart).nth(2), stall.clone());
    let out = w.backup(&fast);
    let made = ok_json(&out);
    let id = made["id"].as_str().unwrap();
    assert_eq!(stalled.count(), 1);
    assert_eq!(
        notes_with(&out, &[&format!("{id}/data.tar.zst"), "no answer in time"]),
        1,
        "{}",
        stderr(&out)
    );
    w.assert_one_upload(
        &format!("{id}/data.tar.zst"),
        w.parts_of(stored_bytes(&made)),
    );

    let stalled = w
        .via
        .proxy
        .inject(Match::kind(Kind::GetRange).nth(3), stall);
    let out = w.run(&["--json", "verify", "--from", &w.loc.url], &fast);
    assert_eq!(ok_json(&out)["ok"], true);
    assert_eq!(stalled.count(), 1);
    assert_eq!(
        notes_with(&out, &["GET", "no answer in time"]),
        1,
        "{}",
        stderr(&out)
    );
}

fn downloads_cut_mid_body_resume_their_range(kind: StoreKind) {
    let w = world(kind, "cut-download");
    let made = w.backup_directly();
    let id = made["id"].as_str().unwrap();
    let ranges = stored_bytes(&made).div_ceil(RANGE) as usize;
    let p = &w.via.proxy;
    let archive = format!("{id}/data.tar.zst");
    let ranges_of_archive = Match::kind(Kind::GetRange).contains(&archive);
    let reset = p.inject(
        ranges_of_archive.clone().nth(2).times(2),
        Fault::ResetDownload { after: 100 << 10 },
    );
    let truncated = p.inject(
        ranges_of_archive.clone().nth(3),
        Fault::Truncate { after: 300 << 10 },
    );
    let manifest_cut = p.inject(
        Match::kind(Kind::GetObject).contains("manifest.json"),
        Fault::Truncate { after: 10 },
    );
    let out = w.run(&["--json", "verify", "--from", &w.loc.url], &[]);
    let verified = ok_json(&out);
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(
        (reset.count(), truncated.count(), manifest_cut.count()),
        (2, 1, 1)
    );
    assert_eq!(
        notes_with(&out, &[&archive, "cut off mid-body"]),
        3,
        "{}",
        stderr(&out)
    );
    // Each cut range was asked again for what it lacked, never the archive from the start.
    let relayed = p
        .requests()
        .into_iter()
        .filter(|r| r.kind == Kind::GetRange && r.target.contains(&archive) && r.forwarded)
        .count();
    assert_eq!(relayed, ranges + 3);

    // Restore under the same kind of faults: every byte arrives.
    p.inject(
        ranges_of_archive.nth(3).times(2),
        Fault::ResetDownload { after: 64 << 10 },
    );
    let target_dir = tempfile::tempdir().unwrap();
    let target = target_dir.path().join("restored");
    let out = w.run(
        &[
            "--json",
            "restore",
            "--from",
            &w.loc.url,
            "--dremio-home",
            w.home(),
            "--paths-local",
            target.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(ok_json(&out)["id"], id);
    assert_eq!(notes_with(&out, &[&archive, "cut off mid-body"]), 2);
    assert_same(
        &snapshot(&target.join("db")),
        &snapshot(&w.fx.db),
        "restored db",
    );
}

fn a_commit_whose_answer_was_lost_is_recognised(kind: StoreKind) {
    let w = world(kind, "lost-commit");
    // The manifest lands, its answer never comes back: the retry finds it there, byte for byte.
    let lost = w.via.proxy.inject(
        Match::kind(Kind::PutObject).contains("manifest.json"),
        Fault::LoseAnswer,
    );
    let out = w.backup(&[]);
    let made = ok_json(&out);
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(lost.count(), 1);
    assert_eq!(
        notes_with(&out, &[&format!("{id}/manifest.json"), "(create)"]),
        1,
        "{}",
        stderr(&out)
    );
    // The manifest write broken off before it landed is simply sent again.
    let reset = w.via.proxy.inject(
        Match::kind(Kind::PutObject).contains("manifest.json"),
        Fault::ResetUpload { after: 100 },
    );
    let second = ok_json(&w.backup(&[]))["id"].as_str().unwrap().to_string();
    assert_eq!(reset.count(), 1);
    let mut listed = w.listed();
    listed.sort();
    let mut expected = vec![id.clone(), second.clone()];
    expected.sort();
    assert_eq!(listed, expected);
    w.verify_directly(&id);
    w.verify_directly(&second);
}

fn an_upload_that_exhausts_its_budget_commits_nothing_and_a_rerun_succeeds(kind: StoreKind) {
    let w = world(kind, "exhausted-upload");
    let failing = w.via.proxy.inject(
        Match::kind(Kind::UploadPart).nth(2).always(),
        Fault::SlowDown,
    );
    let out = w.backup(&[("LIFEBOAT_MAX_RETRIES", "2")]);
    fails_with(
        &out,
        5,
        &[
            &format!("{}: upload ", w.loc.url),
            &format!("data.tar.zst failed after 2 retries ({})", w.slowdown()),
            "LIFEBOAT_MAX_RETRIES",
        ],
    );
    // The first try and two retries of each part in flight, each a note but the last.
    assert!(failing.count() >= 3);
    assert!(notes_with(&out, &[w.slowdown()]) >= 2, "{}", stderr(&out));
    if !w.azure() {
        // The only part that fails (S3 gets two): one try, two retries.
        assert_eq!(failing.count(), 3);
    }
    if !w.azure() {
        assert_eq!(
            w.via.proxy.count_on(Kind::AbortMultipart, "data.tar.zst"),
            1
        );
    }
    assert_eq!(w.via.proxy.count(Kind::CompleteMultipart), 0);
    // Nothing committed, nothing visible left behind.
    assert!(w.listed().is_empty());
    assert_eq!(w.loc.keys(), Vec::<String>::new());

    w.via.proxy.clear();
    let made = ok_json(&w.backup(&[]));
    assert_eq!(w.listed(), vec![made["id"].as_str().unwrap().to_string()]);
}

/// Format 2 (the default): objects upload while the next ones are packed and compressed, so the
/// failure reaches the packer as a broken pipe; the store's error must still be what is reported,
/// with its exit code (5) and advice.
fn a_format_2_backup_whose_object_uploads_fail_is_a_storage_error_and_commits_nothing(
    kind: StoreKind,
) {
    let w = world(kind, "exhausted-objects");
    let failing = w.via.proxy.inject(
        Match::any()
            .method("PUT")
            .contains("/objects/")
            .nth(2)
            .always(),
        Fault::SlowDown,
    );
    let args = [
        "--json",
        "backup",
        "--dremio-home",
        w.home(),
        "--to",
        &w.loc.url,
    ];
    let out = w.run(&args, &[("LIFEBOAT_MAX_RETRIES", "2")]);
    fails_with(
        &out,
        5,
        &[
            &format!("{}: upload ", w.loc.url),
            &format!("failed after 2 retries ({})", w.slowdown()),
            "LIFEBOAT_MAX_RETRIES",
        ],
    );
    assert!(failing.count() >= 3, "one try and two retries at least");
    assert!(w.listed().is_empty(), "nothing committed");
    assert!(
        !w.loc
            .keys()
            .iter()
            .any(|k| k.ends_with("manifest.json") || k.ends_with("lock.json")),
        "no manifest, and the lock released: {:?}",
        w.loc.keys()
    );

    w.via.proxy.clear();
    let made = ok_json(&w.run(&args, &[]));
    assert_eq!(w.listed(), vec![made["id"].as_str().unwrap().to_string()]);
}

fn a_restore_that_exhausts_its_budget_leaves_the_target_untouched(kind: StoreKind) {
    let w = world(kind, "exhausted-restore");
    let id = w.backup_directly()["id"].as_str().unwrap().to_string();
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("data");
    put_file(&target.join("db/catalog/CURRENT"), b"the live store");
    put_file(&target.join("security/keystore"), b"secret");
    let before = snapshot(parent.path());
    w.via.proxy.inject(
        Match::kind(Kind::GetRange).nth(2).always(),
        Fault::ResetDownload { after: 1000 },
    );
    let out = w.run(
        &[
            "restore",
            "--from",
            &w.loc.url,
            "--dremio-home",
            w.home(),
            "--paths-local",
            target.to_str().unwrap(),
            "--replace",
        ],
        &[("LIFEBOAT_MAX_RETRIES", "1")],
    );
    fails_with(
        &out,
        5,
        &[
            &format!("{}: download ", w.loc.url),
            &format!("{id}/data.tar.zst failed"),
        ],
    );
    assert_same(
        &snapshot(parent.path()),
        &before,
        "the target and its parent",
    );
}

/// Format 2 on a remote store: an object up to the range size is one streamed GET. Cut off mid-body,
/// it is asked again for what it lacked (object_store resumes it), and the restore is whole.
fn a_format_2_restore_resumes_whole_object_gets_cut_mid_body(kind: StoreKind) {
    let w = world(kind, "cut-f2");
    let made = w.backup_directly_as("2");
    let objects = Match::any().method("GET").contains("/objects/");
    let cut = w.via.proxy.inject(
        objects.clone().nth(2).times(2),
        Fault::ResetDownload { after: 700 },
    );
    let target_dir = tempfile::tempdir().unwrap();
    let target = target_dir.path().join("restored");
    // Every object fits in one GET.
    let whole = [("LIFEBOAT_RANGE_SIZE", "64MiB")];
    let out = w.run(
        &[
            "--json",
            "restore",
            "--from",
            &w.loc.url,
            "--dremio-home",
            w.home(),
            "--paths-local",
            target.to_str().unwrap(),
        ],
        &whole,
    );
    assert_eq!(ok_json(&out)["id"], made["id"]);
    assert_eq!(cut.count(), 2);
    assert_eq!(
        notes_with(&out, &["objects/", "cut off mid-body"]),
        2,
        "{}",
        stderr(&out)
    );
    // One GET per object (each is under 64 MiB), plus the two resumptions of the cut one.
    let gets: Vec<String> = w
        .via
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.target.contains("/objects/") && r.forwarded)
        .map(|r| r.target)
        .collect();
    let distinct: std::collections::BTreeSet<&String> = gets.iter().collect();
    assert!(distinct.len() > 2, "{gets:?}");
    assert_eq!(gets.len(), distinct.len() + 2, "{gets:?}");
    assert_same(
        &snapshot(&target.join("db")),
        &snapshot(&w.fx.db),
        "restored db",
    );
}

/// Format 2: each object downloads on a thread of its own, several ahead; one whose GETs keep
/// breaking fails the restore as a storage error before anything replaces the target.
fn a_format_2_restore_whose_object_downloads_fail_leaves_the_target_untouched(kind: StoreKind) {
    let w = world(kind, "exhausted-restore-f2");
    w.backup_directly_as("2");
    let parent = tempfile::tempdir().unwrap();
    let target = parent.path().join("data");
    put_file(&target.join("db/catalog/CURRENT"), b"the live store");
    put_file(&target.join("security/keystore"), b"secret");
    let before = snapshot(parent.path());
    let failing = w.via.proxy.inject(
        Match::any()
            .method("GET")
            .contains("/objects/")
            .nth(2)
            .always(),
        Fault::ResetDownload { after: 1000 },
    );
    let out = w.run(
        &[
            "restore",
            "--from",
            &w.loc.url,
            "--dremio-home",
            w.home(),
            "--paths-local",
            target.to_str().unwrap(),
            "--replace",
        ],
        &[("LIFEBOAT_MAX_RETRIES", "1")],
    );
    fails_with(&out, 5, &[&format!("{}: download ", w.loc.url), "objects/"]);
    assert!(failing.count() >= 2, "a try and a retry");
    assert_same(
        &snapshot(parent.path()),
        &before,
        "the target and its parent",
    );
}

fn prune_survives_failing_deletes_and_finishes_on_a_rerun(kind: StoreKind) {
    let w = world(kind, "prune");
    let real = w.backup_directly()["id"].as_str().unwrap().to_string();
    let now = chrono::Utc::now();
    let old: Vec<String> = (1..=3)
        .map(|days| {
            w.loc
                .fabricate("dremio", &real, now - chrono::Duration::days(days))
        })
        .collect();
    let p = &w.via.proxy;
    // object_store deletes through the bulk APIs, one key at a time (S3 DeleteObjects, Azure batch).
    let throttled = p.inject(
        Match::kind(Kind::DeleteObjects).nth(2).times(2),
        Fault::SlowDown,
    );
    let failing_list = p.inject(Match::kind(Kind::List), Fault::InternalError);
    let prune = |extra: &[(&str, &str)]| {
        w.run(
            &[
                "--json",
                "prune",
                "--from",
                &w.loc.url,
                "--keep-last",
                "2",
                "--grace",
                "0s",
            ],
            extra,
        )
    };
    let out = prune(&[]);
    ok_json(&out);
    assert_eq!((throttled.count(), failing_list.count()), (2, 1));
    assert_eq!(notes_with(&out, &[w.slowdown()]), 2, "{}", stderr(&out));
    assert_eq!(
        notes_with(&out, &["500 InternalError"]),
        1,
        "{}",
        stderr(&out)
    );
    let mut expected = vec![real.clone(), old[0].clone()];
    expected.sort();
    let mut listed = w.listed();
    listed.sort();
    assert_eq!(listed, expected);

    // Deletes that keep failing: the backup being deleted lost its manifest first, so it is gone
    // from `list` and its leftover objects go on the next run.
    p.clear();
    let failing = p.inject(
        Match::kind(Kind::DeleteObjects).nth(2).always(),
        Fault::SlowDown,
    );
    let out = w.run(
        &[
            "prune",
            "--from",
            &w.loc.url,
            "--keep-last",
            "1",
            "--grace",
            "0s",
        ],
        &[("LIFEBOAT_MAX_RETRIES", "1")],
    );
    fails_with(&out, 5, &[&format!("{}: delete ", w.loc.url), &old[0]]);
    assert!(failing.count() >= 2);
    assert_eq!(
        w.listed(),
        vec![real.clone()],
        "only complete backups are listed"
    );
    w.verify_directly(&real);
    p.clear();
    let out = w.run(
        &[
            "--json",
            "prune",
            "--from",
            &w.loc.url,
            "--keep-last",
            "1",
            "--grace",
            "0s",
        ],
        &[],
    );
    ok_json(&out);
    assert_eq!(w.listed(), vec![real.clone()]);
    let keys = w.loc.keys();
    assert!(
        keys.iter().all(|k| k.contains(&real)),
        "only the kept backup's objects remain: {keys:?}"
    );
}

/// Format 2: prune deletes the manifest first, then the backup's folder, then sweeps the objects
/// no kept manifest references. Deletes that keep failing stop it as a storage error with the kept
/// backup intact; the next run sweeps what was left.
fn a_format_2_prune_whose_deletes_keep_failing_is_finished_by_a_rerun(kind: StoreKind) {
    let w = world(kind, "prune-f2");
    let backup = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "backup",
            "--dremio-home",
            w.home(),
            "--to",
            &w.loc.url,
        ];
        args.extend_from_slice(extra);
        ok_json(&lifeboat(&args, &[]))
    };
    let first = backup(&[])["id"].as_str().unwrap().to_string();
    // --full: new objects for everything, so every object of the first is swept with it.
    let kept = backup(&["--full"]);
    let kept_id = kept["id"].as_str().unwrap().to_string();
    let kept_objects = kept["objects"]["uploaded"].as_u64().unwrap();
    let objects = || {
        w.loc
            .keys()
            .into_iter()
            .filter(|k| k.contains("/objects/"))
            .count() as u64
    };
    assert!(objects() > kept_objects, "both backups' objects are stored");
    let p = &w.via.proxy;
    // The manifest's delete passes; every delete after it fails.
    let failing = p.inject(
        Match::kind(Kind::DeleteObjects).nth(2).always(),
        Fault::SlowDown,
    );
    let prune = |extra: &[(&str, &str)]| {
        w.run(
            &[
                "--json",
                "prune",
                "--from",
                &w.loc.url,
                "--keep-last",
                "1",
                "--grace",
                "0s",
            ],
            extra,
        )
    };
    let out = prune(&[("LIFEBOAT_MAX_RETRIES", "1")]);
    fails_with(&out, 5, &[&format!("{}: delete ", w.loc.url)]);
    assert!(failing.count() >= 2);
    assert_eq!(w.listed(), vec![kept_id.clone()], "the pruned one is gone");
    w.verify_directly(&kept_id);
    assert!(objects() > kept_objects, "the sweep did not run");

    p.clear();
    ok_json(&prune(&[]));
    assert_eq!(w.listed(), vec![kept_id.clone()]);
    assert_eq!(
        objects(),
        kept_objects,
        "only the kept backup's objects remain"
    );
    let keys = w.loc.keys();
    assert!(
        !keys.iter().any(|k| k.contains(&first)),
        "nothing of the pruned backup's folder: {keys:?}"
    );
    w.verify_directly(&kept_id);
}

fn a_same_store_copy_above_the_copy_limit_is_streamed(kind: StoreKind) {
    let w = world(kind, "big-copy");
    let made = w.backup_directly();
    let id = made["id"].as_str().unwrap();
    let p = &w.via.proxy;

    // Below the limit: one server-side copy (which the proxy sees).
    let small = TestLocation::new(kind, "big-copy-server-side");
    let out = w.run(
        &["--json", "copy", "--from", &w.loc.url, "--to", &small.url],
        &[],
    );
    ok_json(&out);
    assert_eq!(
        p.count_on(Kind::CopyObject, &format!("{id}/data.tar.zst")),
        1
    );

    // Above it (lowered to 1 MiB here, 5 GiB by default): streamed, as parts, never one CopyObject.
    p.reset_counts();
    let big = TestLocation::new(kind, "big-copy-streamed");
    let slow = p.inject(Match::kind(Kind::UploadPart).nth(2), Fault::SlowDown);
    let out = w.run(
        &["--json", "copy", "--from", &w.loc.url, "--to", &big.url],
        &[("LIFEBOAT_SERVER_COPY_LIMIT", "1MiB")],
    );
    ok_json(&out);
    assert_eq!(p.count(Kind::CopyObject), 0, "{:?}", p.counts());
    assert_eq!(p.count(Kind::UploadPartCopy), 0);
    assert_eq!(slow.count(), 1);
    assert_eq!(notes_with(&out, &[w.slowdown()]), 1, "{}", stderr(&out));
    let prefix = big.url.rsplit('/').next().unwrap();
    w.assert_one_upload(
        &format!("{prefix}/dremio/{id}/data.tar.zst"),
        w.parts_of(stored_bytes(&made)),
    );
    let verified = ok_json(&lifeboat(
        &["--json", "verify", "--from", &big.url, "--backup", id],
        &[],
    ));
    assert_eq!(verified["ok"], true);
}

/// A copy between stores (SeaweedFS to Azurite) streams through lifeboat: faults on the download
/// side and on the upload side are both retried, and the copy's digest still verifies.
#[test]
fn a_copy_between_stores_survives_faults_on_both_sides() {
    let w = world(StoreKind::S3, "copy-from");
    let made = w.backup_directly();
    let id = made["id"].as_str().unwrap();
    let dst = TestLocation::new(StoreKind::Azure, "copy-to");
    let azure = Proxied::start(StoreKind::Azure);
    let cut = w.via.proxy.inject(
        Match::kind(Kind::GetRange).nth(2),
        Fault::ResetDownload { after: 100 << 10 },
    );
    let slow = azure.proxy.inject(
        Match::kind(Kind::UploadPart).nth(2).times(2),
        Fault::SlowDown,
    );
    let mut env = w.env(&[]);
    env.extend(azure.env());
    let copy = |env: &[(String, String)]| {
        lifeboat_within(
            &["--json", "copy", "--from", &w.loc.url, "--to", &dst.url],
            env,
            LIMIT,
        )
    };
    let out = copy(&env);
    ok_json(&out);
    assert_eq!((cut.count(), slow.count()), (1, 2));
    assert_eq!(
        notes_with(&out, &["cut off mid-body"]),
        1,
        "{}",
        stderr(&out)
    );
    assert_eq!(notes_with(&out, &["503 ServerBusy"]), 2, "{}", stderr(&out));
    assert_eq!(
        azure
            .proxy
            .count_on(Kind::CompleteMultipart, "data.tar.zst"),
        1
    );
    let verified = ok_json(&lifeboat(
        &["--json", "verify", "--from", &dst.url, "--backup", id],
        &[],
    ));
    assert_eq!(verified["ok"], true);

    // A destination that keeps failing: the copy fails (exit 7, as every failed copy), nothing is
    // committed there, and the next run copies it.
    let dst2 = TestLocation::new(StoreKind::Azure, "copy-to-failing");
    azure
        .proxy
        .inject(Match::kind(Kind::UploadPart).always(), Fault::InternalError);
    let failed = lifeboat_within(
        &["copy", "--from", &w.loc.url, "--to", &dst2.url],
        &[
            env.clone(),
            vec![("LIFEBOAT_MAX_RETRIES".into(), "1".into())],
        ]
        .concat(),
        LIMIT,
    );
    fails_with(&failed, 7, &["500 InternalError", id]);
    assert!(
        dst2.keys().iter().all(|k| !k.ends_with("manifest.json")),
        "{:?}",
        dst2.keys()
    );
    azure.proxy.clear();
    let out = lifeboat_within(
        &["--json", "copy", "--from", &w.loc.url, "--to", &dst2.url],
        &env,
        LIMIT,
    );
    ok_json(&out);
    let verified = ok_json(&lifeboat(
        &["--json", "verify", "--from", &dst2.url, "--backup", id],
        &[],
    ));
    assert_eq!(verified["ok"], true);
}

/// Format 2 across stores: cut downloads and throttled uploads are retried; a destination that
/// keeps failing fails the copy (exit 7) with nothing committed there, and the rerun sends only the
/// objects that are still missing.
#[test]
fn a_format_2_copy_survives_faults_and_a_failed_one_resumes_with_the_missing_objects() {
    let w = world(StoreKind::S3, "copy-f2-from");
    let made = ok_json(&lifeboat(
        &[
            "--json",
            "backup",
            "--dremio-home",
            w.home(),
            "--to",
            &w.loc.url,
        ],
        &[],
    ));
    let id = made["id"].as_str().unwrap().to_string();
    let total = made["objects"]["uploaded"].as_u64().unwrap();
    assert!(total > 3, "{made}");
    let azure = Proxied::start(StoreKind::Azure);
    let mut env = w.env(&[]);
    env.extend(azure.env());
    let copy = |to: &str, extra: &[(String, String)]| {
        lifeboat_within(
            &["--json", "copy", "--from", &w.loc.url, "--to", to],
            &[env.clone(), extra.to_vec()].concat(),
            LIMIT,
        )
    };
    let objects_of = |out: &Output| {
        let row = ok_json(out)["backups"][0].clone();
        assert_eq!(row["id"], id.as_str(), "{row}");
        assert_eq!(row["status"], "copied", "{row}");
        (
            row["objects"]["copied"].as_u64().unwrap(),
            row["objects"]["already_there"].as_u64().unwrap(),
        )
    };

    let dst = TestLocation::new(StoreKind::Azure, "copy-f2-to");
    let cut = w.via.proxy.inject(
        Match::any().method("GET").contains("/objects/").nth(2),
        Fault::ResetDownload { after: 1000 },
    );
    let slow = azure.proxy.inject(
        Match::any()
            .method("PUT")
            .contains("/objects/")
            .nth(2)
            .times(2),
        Fault::SlowDown,
    );
    let out = copy(&dst.url, &[]);
    assert_eq!(objects_of(&out), (total, 0));
    assert_eq!((cut.count(), slow.count()), (1, 2));
    assert_eq!(notes_with(&out, &["503 ServerBusy"]), 2, "{}", stderr(&out));
    let verified = ok_json(&lifeboat(
        &["--json", "verify", "--from", &dst.url, "--backup", &id],
        &[],
    ));
    assert_eq!(verified["ok"], true);

    w.via.proxy.clear();
    azure.proxy.clear();
    let dst2 = TestLocation::new(StoreKind::Azure, "copy-f2-failing");
    // Every upload of the tail (the manifest's last object) fails: the copy stops there, with
    // objects before it copied.
    let manifest: serde_json::Value =
        serde_json::from_slice(&w.loc.read(&format!("dremio/{id}/manifest.json"))).unwrap();
    let tail = manifest["objects"].as_array().unwrap().last().unwrap();
    assert_eq!(tail["kind"], "tail", "{tail}");
    let one = tail["name"].as_str().unwrap().to_string();
    let failing = azure.proxy.inject(
        Match::any().method("PUT").contains(&one).always(),
        Fault::InternalError,
    );
    let failed = copy(&dst2.url, &[("LIFEBOAT_MAX_RETRIES".into(), "1".into())]);
    fails_with(&failed, 7, &["run the same command again"]);
    assert!(failing.count() >= 2, "a try and a retry");
    let listed = ok_json(&lifeboat(&["--json", "list", "--from", &dst2.url], &[]));
    assert_eq!(
        listed["backups"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    let there: Vec<String> = dst2
        .keys()
        .into_iter()
        .filter(|k| k.contains("/objects/"))
        .collect();
    let there = there.len() as u64;
    assert!(
        there >= 1 && there < total,
        "{there} of {total} objects copied"
    );

    azure.proxy.clear();
    let out = copy(&dst2.url, &[]);
    assert_eq!(
        objects_of(&out),
        (1, total - 1),
        "only the missing one is sent"
    );
    let verified = ok_json(&lifeboat(
        &["--json", "verify", "--from", &dst2.url, "--backup", &id],
        &[],
    ));
    assert_eq!(verified["ok"], true);
}

/// Uploads and `security/` are not under the KV store's lock: a file that changes while the backup
/// reads it must fail the backup. The proxy holds the archive's upload, so the packer blocks (back
/// pressure) in the middle of a large uploaded file and stays there while the test changes it.
#[test]
fn a_source_file_that_changes_while_it_is_read_fails_the_backup() {
    let fx = fixture(1, 2);
    let loc = TestLocation::new(StoreKind::S3, "changed-source");
    let via = Proxied::start(StoreKind::S3);
    // Incompressible, and larger than everything the pipeline can buffer (the channel, one 5 MiB
    // part in flight, zstd's window): the packer must still be inside it when the upload blocks.
    let big = fx.uploads.join("zz-large-upload.bin");
    std::fs::create_dir_all(&fx.uploads).unwrap();
    let mut data = vec![0u8; 48 << 20];
    getrandom::fill(&mut data).unwrap();
    std::fs::write(&big, &data).unwrap();
    drop(data);

    let held = via.proxy.hold(Match::kind(Kind::UploadPart));
    let mut env = via.env();
    env.push(("LIFEBOAT_PART_SIZE".into(), (5 * MIB).to_string()));
    let home = fx.home.to_str().unwrap().to_string();
    let url = loc.url.clone();
    let run = std::thread::spawn(move || {
        let args = [
            "backup",
            "--format",
            "1",
            "--dremio-home",
            &home,
            "--to",
            &url,
            "--threads",
            "1",
            "--parts-in-flight",
            "1",
        ];
        lifeboat_within(&args, &env, LIMIT)
    });
    assert!(
        held.wait_held(LIMIT),
        "the upload of a part reached the proxy"
    );
    // Blocked on the held part, the packer keeps the file open: wait until the process has it.
    let opened = (0..2000).any(|_| {
        let found = lifeboat_has_open(&big);
        if !found {
            std::thread::sleep(Duration::from_millis(10));
        }
        found
    });
    assert!(opened, "the packer is reading {}", big.display());
    {
        let f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
        std::os::unix::fs::FileExt::write_at(&f, b"changed", 0).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(86_400))
            .unwrap();
    }
    held.release();
    let out = run.join().unwrap();
    fails_with(
        &out,
        3,
        &[
            "zz-large-upload.bin",
            "modified while it was being read",
            &loc.url,
        ],
    );
    let listed = ok_json(&lifeboat(&["--json", "list", "--from", &loc.url], &[]));
    assert_eq!(
        listed["backups"].as_array().unwrap().len(),
        0,
        "nothing committed"
    );
}

/// Whether some lifeboat process of this test run has `path` open (its /proc fd links name it).
fn lifeboat_has_open(path: &std::path::Path) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.filter_map(Result::ok).any(|p| {
        let exe = std::fs::read_link(p.path().join("exe")).unwrap_or_default();
        exe.file_name().is_some_and(|n| n == "lifeboat")
            && std::fs::read_dir(p.path().join("fd")).is_ok_and(|fds| {
                fds.filter_map(Result::ok)
                    .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == path))
            })
    })
}
