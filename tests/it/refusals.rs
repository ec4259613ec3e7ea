//! The ways users fail: each refusal has a clear error and an exit code, and leaves the target and
//! the location exactly as they were.

use std::os::unix::fs::PermissionsExt;

use crate::support::*;

fn backup_ok(fx: &Fixture, url: &str) -> String {
    let made = ok_json(&lifeboat(
        &[
            "--json",
            "backup",
            "--format",
            "1",
            "--dremio-home",
            fx.home.to_str().unwrap(),
            "--to",
            url,
        ],
        &[],
    ));
    made["id"].as_str().unwrap().to_string()
}

#[test]
fn backup_refuses_a_store_held_by_a_live_coordinator() {
    let fx = fixture(1, 2);
    let loc = TestLocation::new(StoreKind::Local, "live");
    let holder = hold_lock(&fx.db.join("catalog"));
    let before = snapshot(&fx.paths_local);
    let out = lifeboat(
        &[
            "backup",
            "--format",
            "1",
            "--dremio-home",
            fx.home.to_str().unwrap(),
            "--to",
            &loc.url,
        ],
        &[],
    );
    fails_with(
        &out,
        3,
        &[
            "locked by a running process",
            &format!("pid {}", holder.pid),
            "Stop the coordinator",
        ],
    );
    assert!(
        loc.keys().is_empty(),
        "nothing written to the location: {:?}",
        loc.keys()
    );
    assert_same(
        &snapshot(&fx.paths_local),
        &before,
        "the store is untouched",
    );
    drop(holder);
    // Once the coordinator is gone, the same command works.
    backup_ok(&fx, &loc.url);
}

#[test]
fn restore_refuses_a_target_held_by_a_live_coordinator() {
    let fx = fixture(1, 2);
    let loc = TestLocation::new(StoreKind::Local, "live-target");
    backup_ok(&fx, &loc.url);
    let holder = hold_lock(&fx.db.join("catalog"));
    let before = snapshot(&fx.paths_local);
    let out = lifeboat(
        &[
            "restore",
            "--from",
            &loc.url,
            "--dremio-home",
            fx.home.to_str().unwrap(),
            "--replace",
        ],
        &[],
    );
    fails_with(
        &out,
        3,
        &[
            "open in a running coordinator",
            &format!("pid {}", holder.pid),
            &format!(
                "Stop the coordinator that uses {}",
                fx.paths_local.display()
            ),
        ],
    );
    assert!(
        !stderr(&out).contains("standby") && !stderr(&out).contains("online backup"),
        "restore-side advice is not the backup's: {}",
        stderr(&out)
    );
    assert_same(
        &snapshot(&fx.paths_local),
        &before,
        "the live store is untouched",
    );
    let siblings = names(fx.paths_local.parent().unwrap());
    assert!(
        !siblings
            .iter()
            .any(|n| n.starts_with(".lifeboat") || n.contains("before-restore")),
        "no staging or safety copy: {siblings:?}"
    );
    drop(holder);
}

#[test]
fn restore_refuses_another_dremio_version_and_names_both() {
    let fx = fixture(1, 2);
    let loc = TestLocation::new(StoreKind::Local, "version");
    backup_ok(&fx, &loc.url);
    let target = tempfile::tempdir().unwrap();
    let t = target.path().join("data");
    let out = lifeboat(
        &[
            "restore",
            "--from",
            &loc.url,
            "--paths-local",
            t.to_str().unwrap(),
            "--dremio-version",
            "25.1.0",
        ],
        &[],
    );
    fails_with(&out, 3, &["25.2.0", "25.1.0", "dremio-admin upgrade"]);
    assert!(names(target.path()).is_empty());
    // Same release, different build: also refused.
    let out = lifeboat(
        &[
            "restore",
            "--from",
            &loc.url,
            "--paths-local",
            t.to_str().unwrap(),
            "--dremio-version",
            "25.2.0-209912310000000000-deadbeef",
        ],
        &[],
    );
    fails_with(&out, 3, &["209912310000000000"]);
    // Without any version for the target, it says how to give one.
    let out = lifeboat(
        &[
            "restore",
            "--from",
            &loc.url,
            "--paths-local",
            t.to_str().unwrap(),
        ],
        &[],
    );
    fails_with(&out, 2, &["--dremio-version"]);
}

#[test]
fn restore_into_a_non_empty_target_needs_replace_and_keeps_a_safety_copy() {
    let fx = fixture(1, 3);
    let loc = TestLocation::new(StoreKind::Local, "replace");
    let id = backup_ok(&fx, &loc.url);
    let original = rocks_dump(&fx.db.join("catalog"));

    // The coordinator's state changes after the backup...
    put_file(
        &fx.paths_local.join("db/catalog/999999.sst"),
        b"written after the backup",
    );
    put_file(&fx.paths_local.join("log/server.log"), b"log");
    let changed = snapshot(&fx.paths_local);

    let home = fx.home.to_str().unwrap();
    let out = lifeboat(&["restore", "--from", &loc.url, "--dremio-home", home], &[]);
    fails_with(&out, 3, &["not empty", "--replace", "nothing is deleted"]);
    assert_same(&snapshot(&fx.paths_local), &changed, "tree");

    let dry = ok_json(&lifeboat(
        &[
            "--json",
            "restore",
            "--from",
            &loc.url,
            "--dremio-home",
            home,
            "--replace",
            "--dry-run",
        ],
        &[],
    ));
    assert_eq!(dry["dry_run"], true);
    assert_same(
        &snapshot(&fx.paths_local),
        &changed,
        "a dry run changes nothing",
    );

    let done = ok_json(&lifeboat(
        &[
            "--json",
            "restore",
            "--from",
            &loc.url,
            "--dremio-home",
            home,
            "--replace",
        ],
        &[],
    ));
    assert_eq!(done["id"], id.as_str());
    let safety = std::path::PathBuf::from(done["safety_copies"][0].as_str().unwrap());
    assert_eq!(
        safety.parent(),
        fx.paths_local.parent(),
        "the safety copy is a sibling"
    );
    assert_same(
        &snapshot(&safety),
        &changed,
        "the previous contents are kept whole",
    );
    assert_eq!(rocks_dump(&fx.db.join("catalog")), original);
    assert!(!fx.db.join("catalog/999999.sst").exists());
}

#[test]
fn a_restore_whose_move_aside_fails_puts_back_exactly_what_was_there() {
    let fx = fixture(1, 3);
    let loc = TestLocation::new(StoreKind::Local, "aside-fails");
    let id = backup_ok(&fx, &loc.url);
    put_file(&fx.paths_local.join("log/server.log"), b"log");
    let before = snapshot(&fx.paths_local);
    let parent = fx.paths_local.parent().unwrap();
    let siblings = names(parent);
    let out = {
        let _pinned = Immutable::set(&fx.paths_local);
        lifeboat(
            &[
                "restore",
                "--from",
                &loc.url,
                "--dremio-home",
                fx.home.to_str().unwrap(),
                "--replace",
            ],
            &[],
        )
    };
    fails_with(&out, 3, &[&id, &loc.url, "put back as it was"]);
    assert_same(
        &snapshot(&fx.paths_local),
        &before,
        "every old file is there",
    );
    assert_eq!(names(parent), siblings, "no staging folder or safety copy");
}

#[test]
fn missing_bucket_is_a_storage_error_that_says_so() {
    let fx = fixture(1, 1);
    let url = format!("s3://lifeboat-no-such-bucket-{}/x", std::process::id());
    let _ = s3_bucket();
    let out = lifeboat(
        &[
            "backup",
            "--format",
            "1",
            "--dremio-home",
            fx.home.to_str().unwrap(),
            "--to",
            &url,
        ],
        &[],
    );
    fails_with(&out, 5, &["does not exist"]);
}

#[test]
fn wrong_credentials_are_a_storage_error_that_says_so() {
    let fx = fixture(1, 1);
    let loc = TestLocation::new(StoreKind::S3, "creds");
    let out = lifeboat(
        &[
            "backup",
            "--format",
            "1",
            "--dremio-home",
            fx.home.to_str().unwrap(),
            "--to",
            &loc.url,
        ],
        &[("AWS_SECRET_ACCESS_KEY", "definitely-wrong")],
    );
    fails_with(&out, 5, &["access denied"]);
    assert!(
        !stderr(&out).contains("definitely-wrong"),
        "the secret is never printed"
    );
    assert!(loc.keys().is_empty());
}

#[test]
fn unreachable_endpoint_is_a_storage_error_that_says_so() {
    let fx = fixture(1, 1);
    let _ = s3_bucket();
    let out = lifeboat(
        &[
            "backup",
            "--format",
            "1",
            "--dremio-home",
            fx.home.to_str().unwrap(),
            "--to",
            "s3://lifeboat-test/unreachable",
        ],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("LIFEBOAT_MAX_RETRIES", "0"),
        ],
    );
    fails_with(&out, 5, &["cannot reach"]);
}

#[test]
fn a_backup_killed_halfway_leaves_nothing_that_lists_and_the_next_run_works() {
    for kind in [StoreKind::Local, StoreKind::S3] {
        let fx = fixture(48, 10);
        let loc = TestLocation::new(kind, "killed");
        // Progress lines on stderr tell when the upload is under way: kill it then, no timing guess.
        let home = fx.home.to_str().unwrap();
        let (mut child, _stderr) =
            start_until(&slow_backup_args(home, &loc.url), &[], "backup: progress");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            !loc.keys().iter().any(|k| k.ends_with("manifest.json")),
            "{kind:?}: no manifest after a kill: {:?}",
            loc.keys()
        );
        let listed = ok_json(&lifeboat(&["--json", "list", "--from", &loc.url], &[]));
        assert_eq!(listed["backups"].as_array().unwrap().len(), 0);
        if kind == StoreKind::Local {
            // object_store hides a killed upload's staging file from listings; prune finds it on disk.
            let staged = |root: &std::path::Path| {
                walkdir::WalkDir::new(root)
                    .into_iter()
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().contains('#'))
                    .count()
            };
            // Whether the kill came after the first part began (a staging file) or before
            // (nothing at all) depends on how far the upload got; prune must clear either.
            let left = staged(std::path::Path::new(&loc.url));
            let pruned = ok_json(&lifeboat(
                &[
                    "--json",
                    "prune",
                    "--from",
                    &loc.url,
                    "--keep-last",
                    "3",
                    "--grace",
                    "0s",
                ],
                &[],
            ));
            if left > 0 {
                assert!(
                    !pruned["upload_leftovers"].as_array().unwrap().is_empty(),
                    "{pruned}"
                );
            }
            assert_eq!(staged(std::path::Path::new(&loc.url)), 0);
        }
        let id = backup_ok(&fx, &loc.url);
        let listed = ok_json(&lifeboat(&["--json", "list", "--from", &loc.url], &[]));
        assert_eq!(listed["backups"][0]["id"], id.as_str());
    }
}

#[test]
fn sigterm_aborts_the_upload_and_commits_nothing() {
    let fx = fixture(48, 10);
    let loc = TestLocation::new(StoreKind::Local, "sigterm");
    let home = fx.home.to_str().unwrap();
    let (mut child, mut reader) =
        start_until(&slow_backup_args(home, &loc.url), &[], "backup: progress");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted backup exits 130");
    assert!(rest.contains("signal"), "says why it stopped: {rest}");
    assert!(
        loc.keys().is_empty(),
        "the aborted upload left nothing: {:?}",
        loc.keys()
    );
}

#[test]
fn a_missing_local_location_is_refused_unless_creation_is_asked_for() {
    let fx = fixture(1, 1);
    let root = tempfile::tempdir().unwrap();
    // What an unmounted DR volume looks like: its mount point's folder is not there.
    let missing = root.path().join("mnt/dr-volume/backups");
    let url = missing.to_str().unwrap();
    let home = fx.home.to_str().unwrap();
    let out = lifeboat(
        &[
            "backup",
            "--format",
            "1",
            "--dremio-home",
            home,
            "--to",
            url,
        ],
        &[],
    );
    fails_with(
        &out,
        2,
        &["no such folder", "not mounted", "--create-location"],
    );
    assert!(!root.path().join("mnt").exists(), "nothing was created");

    let made = ok_json(&lifeboat(
        &[
            "--json",
            "backup",
            "--format",
            "1",
            "--dremio-home",
            home,
            "--to",
            url,
            "--create-location",
        ],
        &[],
    ));
    assert!(made["id"].is_string());
    let mode = std::fs::metadata(&missing).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "a created location is owner-only");

    // The same holds for a copy destination, and the config file can allow it per location.
    let copy_dir = root.path().join("copy-here");
    let copy_url = copy_dir.to_str().unwrap();
    let out = lifeboat(&["copy", "--from", url, "--to", copy_url], &[]);
    fails_with(&out, 2, &["no such folder"]);
    let config = root.path().join("lifeboat.toml");
    std::fs::write(
        &config,
        format!("[locations.dr]\nurl = {copy_url:?}\ncreate = true\n"),
    )
    .unwrap();
    let out = lifeboat(
        &[
            "--config",
            config.to_str().unwrap(),
            "copy",
            "--from",
            url,
            "--to",
            "dr",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(copy_dir.is_dir());
}
