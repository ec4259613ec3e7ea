//! The command line itself: help, usage errors and the demo.

use crate::support::*;

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    // An existing location, so that what is refused is the missing installation, not the folder.
    let to = tempfile::tempdir().unwrap();
    let to = to.path().to_str().unwrap();
    let out = lifeboat(&["backup", "--to", to], &[]);
    fails_with(&out, 2, &["--dremio-home", "--paths-local"]);
    let out = lifeboat(&["list", "--from", "ftp://x/y"], &[]);
    fails_with(&out, 2, &["unknown scheme"]);
    let out = lifeboat(
        &[
            "backup",
            "--paths-local",
            "/nonexistent-lifeboat",
            "--dremio-version",
            "25.2.0",
            "--to",
            to,
        ],
        &[],
    );
    fails_with(&out, 2, &["no RocksDB store"]);
}

#[test]
fn json_errors_are_json_on_stdout() {
    let out = lifeboat(
        &["--json", "list", "--from", "/nonexistent-lifeboat-repo"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["class"], "usage");
    assert_eq!(v["exit_code"], 2);
}

#[test]
fn demo_runs_the_whole_job() {
    let dir = tempfile::tempdir().unwrap();
    let out = lifeboat(
        &[
            "demo",
            "--dir",
            dir.path().to_str().unwrap(),
            "--size-mib",
            "4",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("identical to the original"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_copy_to_the_backups_own_location_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let repo = repo.to_str().unwrap();
    let out = lifeboat(
        &[
            "backup",
            "--paths-local",
            "/nonexistent-lifeboat",
            "--dremio-version",
            "25.2.0",
            "--to",
            repo,
            "--copy-to",
            repo,
        ],
        &[],
    );
    fails_with(&out, 2, &["is the backup's own location"]);
}

#[test]
fn demo_in_a_relative_folder_backs_up_the_uploads_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args([
            "--progress",
            "none",
            "demo",
            "--dir",
            "demo",
            "--size-mib",
            "4",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("4 uploaded files"),
        "uploads are on local disk: {}",
        stdout(&out)
    );
}

/// `lifeboat list | head -1` and the like: a reader that is gone before the result is printed
/// ends the run quietly with success, not with a panic (exit 101).
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["list", "--from", dir.path().to_str().unwrap()])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}
