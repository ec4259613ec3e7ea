//! The storage conformance suite: every scenario runs against every store kind.

use std::os::unix::fs::PermissionsExt;

use crate::support::*;

macro_rules! for_each_store {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(#[test] fn $name() { super::$name(crate::support::StoreKind::Local) })*
        }
        mod s3 {
            $(#[test] fn $name() { super::$name(crate::support::StoreKind::S3) })*
        }
        mod azure {
            $(#[test] fn $name() { super::$name(crate::support::StoreKind::Azure) })*
        }
    };
}

for_each_store!(
    round_trip_restores_every_key_and_byte,
    corrupted_archive_is_named_and_restore_changes_nothing,
    truncated_archive_fails_verify_and_restore,
    missing_archive_object_is_an_integrity_failure,
    backup_without_manifest_does_not_exist,
    unparsable_manifest_is_reported,
    large_index_goes_to_its_own_object,
    large_files_come_back_exactly_and_past_the_page_cache,
);

fn backup(fx: &Fixture, loc: &TestLocation) -> serde_json::Value {
    ok_json(&lifeboat(
        &[
            "--json",
            "backup",
            "--format",
            "1",
            "--dremio-home",
            fx.home.to_str().unwrap(),
            "--to",
            &loc.url,
        ],
        &[],
    ))
}

fn restore_args<'a>(
    loc: &'a TestLocation,
    fx: &'a Fixture,
    target: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "--json",
        "restore",
        "--from",
        &loc.url,
        "--dremio-home",
        fx.home.to_str().unwrap(),
        "--paths-local",
        target,
    ];
    args.extend_from_slice(extra);
    args
}

fn round_trip_restores_every_key_and_byte(kind: StoreKind) {
    let fx = fixture(4, 40);
    let loc = TestLocation::new(kind, "round-trip");
    let made = backup(&fx, &loc);
    let id = made["id"].as_str().unwrap().to_string();
    assert!(made["kv_files"].as_u64().unwrap() > 5, "{made}");
    assert!(made["uploaded_files"].as_u64().unwrap() >= 40, "{made}");
    assert!(made["security_files"].as_u64().unwrap() >= 1, "{made}");
    assert!(made["stored_bytes"].as_u64().unwrap() < made["raw_bytes"].as_u64().unwrap());

    // The layout other tools rely on, the manifest written last and valid.
    let keys = loc.keys();
    assert_eq!(
        keys,
        vec![
            format!("dremio/{id}/data.tar.zst"),
            format!("dremio/{id}/manifest.json")
        ]
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&loc.read(&format!("dremio/{id}/manifest.json"))).unwrap();
    assert_eq!(manifest["format"], "lifeboat-backup/1");
    assert_eq!(manifest["mode"], "offline");
    assert_eq!(manifest["cluster"]["kind"], "dremio");
    assert_eq!(
        manifest["cluster"]["version"],
        fx.version.split('-').next().unwrap()
    );
    assert_eq!(manifest["tool"]["name"], "lifeboat");

    let listed = ok_json(&lifeboat(&["--json", "list", "--from", &loc.url], &[]));
    assert_eq!(listed["backups"][0]["id"], id.as_str());
    let verified = ok_json(&lifeboat(&["--json", "verify", "--from", &loc.url], &[]));
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["problem_count"], 0);

    let target_dir = tempfile::tempdir().unwrap();
    let target = target_dir.path().join("restored");
    let restored = ok_json(&lifeboat(
        &restore_args(&loc, &fx, target.to_str().unwrap(), &[]),
        &[],
    ));
    assert_eq!(restored["id"], id.as_str());
    assert_eq!(restored["kv_files"], made["kv_files"]);

    // Every key and value of every column family, then every file byte for byte.
    let original = rocks_dump(&fx.db.join("catalog"));
    assert!(original.lines().count() > 100, "the fixture store has data");
    assert_eq!(rocks_dump(&target.join("db/catalog")), original);
    assert_same(&snapshot(&target.join("db")), &snapshot(&fx.db), "tree");
    assert_same(
        &snapshot(&target.join("pdfs/uploads/_uploads")),
        &snapshot(&fx.uploads),
        "tree",
    );
    assert_same(
        &snapshot(&target.join("security")),
        &snapshot(&fx.security),
        "tree",
    );
    let sec_mode = std::fs::metadata(target.join("security"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(sec_mode, 0o700);
    for f in std::fs::read_dir(target.join("security")).unwrap() {
        assert_eq!(
            f.unwrap().metadata().unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // No staging folder is left beside the target.
    assert_eq!(names(target_dir.path()), vec!["restored"]);
}

/// Flips one byte in the middle of the archive object.
fn corrupt_middle(loc: &TestLocation, key: &str) {
    let mut data = loc.read(key);
    let at = data.len() / 2;
    data[at] ^= 0x5a;
    loc.write(key, data);
}

fn corrupted_archive_is_named_and_restore_changes_nothing(kind: StoreKind) {
    let fx = fixture(2, 5);
    let loc = TestLocation::new(kind, "corrupt");
    let id = backup(&fx, &loc)["id"].as_str().unwrap().to_string();
    corrupt_middle(&loc, &format!("dremio/{id}/data.tar.zst"));

    let out = lifeboat(&["verify", "--from", &loc.url, "--backup", &id], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("corrupt") || text.contains("sha256"),
        "names the damage: {text}"
    );

    // A target with content, restored with --replace: the failure must leave it exactly as it was.
    let target_dir = tempfile::tempdir().unwrap();
    let target = target_dir.path().join("data");
    put_file(&target.join("db/catalog/CURRENT"), b"old store");
    put_file(&target.join("notes.txt"), b"keep me");
    let before = snapshot(target_dir.path());
    let out = lifeboat(
        &restore_args(&loc, &fx, target.to_str().unwrap(), &["--replace"]),
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_same(
        &snapshot(target_dir.path()),
        &before,
        "target untouched, no staging or safety copy left",
    );
}

fn truncated_archive_fails_verify_and_restore(kind: StoreKind) {
    let fx = fixture(2, 5);
    let loc = TestLocation::new(kind, "truncated");
    let id = backup(&fx, &loc)["id"].as_str().unwrap().to_string();
    let key = format!("dremio/{id}/data.tar.zst");
    let data = loc.read(&key);
    loc.write(&key, data[..data.len() * 2 / 3].to_vec());

    let out = lifeboat(&["verify", "--from", &loc.url], &[]);
    fails_with(&out, 4, &["truncated"]);
    let target_dir = tempfile::tempdir().unwrap();
    let target = target_dir.path().join("data");
    let out = lifeboat(&restore_args(&loc, &fx, target.to_str().unwrap(), &[]), &[]);
    fails_with(&out, 4, &["truncated"]);
    assert!(
        names(target_dir.path()).is_empty(),
        "nothing created: {:?}",
        names(target_dir.path())
    );
}

fn missing_archive_object_is_an_integrity_failure(kind: StoreKind) {
    let fx = fixture(1, 2);
    let loc = TestLocation::new(kind, "missing-archive");
    let id = backup(&fx, &loc)["id"].as_str().unwrap().to_string();
    loc.delete(&format!("dremio/{id}/data.tar.zst"));
    fails_with(
        &lifeboat(&["verify", "--from", &loc.url], &[]),
        4,
        &["missing"],
    );
}

fn backup_without_manifest_does_not_exist(kind: StoreKind) {
    let fx = fixture(1, 2);
    let loc = TestLocation::new(kind, "no-manifest");
    let id = backup(&fx, &loc)["id"].as_str().unwrap().to_string();
    loc.delete(&format!("dremio/{id}/manifest.json"));
    let listed = ok_json(&lifeboat(&["--json", "list", "--from", &loc.url], &[]));
    assert_eq!(listed["backups"].as_array().unwrap().len(), 0);
    fails_with(
        &lifeboat(&["verify", "--from", &loc.url, "--backup", &id], &[]),
        2,
        &["no backup"],
    );
    fails_with(
        &lifeboat(&["verify", "--from", &loc.url], &[]),
        2,
        &["no backups"],
    );
}

fn unparsable_manifest_is_reported(kind: StoreKind) {
    let fx = fixture(1, 2);
    let loc = TestLocation::new(kind, "bad-manifest");
    let id = backup(&fx, &loc)["id"].as_str().unwrap().to_string();
    loc.write(
        &format!("dremio/{id}/manifest.json"),
        b"{\"format\": \"lifeboat-backup/1\", \"id\": ".to_vec(),
    );
    let listed = ok_json(&lifeboat(&["--json", "list", "--from", &loc.url], &[]));
    assert_eq!(listed["backups"].as_array().unwrap().len(), 0);
    assert_eq!(listed["unusable"][0]["id"], id.as_str());
    fails_with(
        &lifeboat(&["verify", "--from", &loc.url, "--backup", &id], &[]),
        4,
        &["manifest is invalid"],
    );
}

fn large_index_goes_to_its_own_object(kind: StoreKind) {
    let fx = fixture(1, 1500);
    let loc = TestLocation::new(kind, "large-index");
    let id = backup(&fx, &loc)["id"].as_str().unwrap().to_string();
    assert!(loc.keys().contains(&format!("dremio/{id}/index.jsonl.zst")));
    let manifest: serde_json::Value =
        serde_json::from_slice(&loc.read(&format!("dremio/{id}/manifest.json"))).unwrap();
    assert_eq!(manifest["index"]["location"], "index.jsonl.zst");
    assert!(manifest.get("files").is_none(), "no inline file list");
    let verified = ok_json(&lifeboat(&["--json", "verify", "--from", &loc.url], &[]));
    assert!(verified["files_checked"].as_u64().unwrap() > 1500);

    // A damaged index is caught by its digest.
    let key = format!("dremio/{id}/index.jsonl.zst");
    corrupt_middle(&loc, &key);
    fails_with(
        &lifeboat(&["verify", "--from", &loc.url], &[]),
        4,
        &["index.jsonl.zst"],
    );
}

/// Files on either side of the 4 KiB and 1 MiB boundaries of restore's direct writes come back byte
/// for byte, in both formats. Where the target is ext4 or XFS they were written with O_DIRECT,
/// which leaves at most their last partial page in the page cache (buffered writes leave them all).
/// On S3 the request bodies go unsigned, as they do over TLS, and the server takes them.
fn large_files_come_back_exactly_and_past_the_page_cache(kind: StoreKind) {
    let fx = fixture(1, 5);
    let big = fx.uploads.join("@big");
    std::fs::create_dir(&big).unwrap();
    let sizes: [usize; 5] = [
        1 << 20,
        (1 << 20) - 1,
        (5 << 20) + 17,
        (9 << 20) + 4095,
        3 << 20,
    ];
    for (i, size) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*size)
            .map(|j| ((j * 7 + i) ^ (j >> 12)) as u8)
            .collect();
        std::fs::write(big.join(format!("f{i}.bin")), data).unwrap();
    }
    let unsigned = [("AWS_UNSIGNED_PAYLOAD", "true")];
    for format in ["1", "2"] {
        let loc = TestLocation::new(kind, &format!("large-files-{format}"));
        let home = fx.home.to_str().unwrap();
        let args = [
            "--json",
            "backup",
            "--format",
            format,
            "--dremio-home",
            home,
        ];
        let made = ok_json(&lifeboat(
            &[&args[..], &["--to", &loc.url]].concat(),
            &unsigned,
        ));
        let target_dir = tempfile::tempdir().unwrap();
        let target = target_dir.path().join("restored");
        let restored = ok_json(&lifeboat(
            &restore_args(&loc, &fx, target.to_str().unwrap(), &[]),
            &unsigned,
        ));
        assert_eq!(restored["id"], made["id"]);
        let restored_big = target.join("pdfs/uploads/_uploads/@big");
        // Before anything reads them back into the cache.
        let direct = rustix::fs::statfs(target_dir.path())
            .is_ok_and(|s| [0xEF53, 0x5846_5342].contains(&{ s.f_type }));
        for (i, size) in sizes.iter().enumerate() {
            let path = restored_big.join(format!("f{i}.bin"));
            let cached = resident_bytes(&path);
            if direct && *size >= 1 << 20 {
                assert!(
                    cached <= 4096,
                    "format {format}: {path:?} has {cached} bytes cached"
                );
            }
        }
        assert_same(&snapshot(&restored_big), &snapshot(&big), "tree");
        assert_same(&snapshot(&target.join("db")), &snapshot(&fx.db), "tree");
    }
}

/// The bytes of `path` in the page cache, as util-linux's fincore counts them.
fn resident_bytes(path: &std::path::Path) -> u64 {
    let out = std::process::Command::new("fincore")
        .args(["--bytes", "--noheadings", "--output", "RES"])
        .arg(path)
        .output()
        .expect("fincore (util-linux) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
