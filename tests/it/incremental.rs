//! Format 2 as written by `lifeboat backup --format 2`: restored with no lifeboat at all
//! (`sha256sum -c`, `zstd -d`, GNU tar, the `age` CLI), incremental reuse of unchanged shared
//! files, `--full`, and encryption to two recipients that names no file.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A format-2 backup of the fixture, its `--json` report.
fn backup2(fx: &Fixture, loc: &TestLocation, extra: &[&str], cache: &Path) -> serde_json::Value {
    let mut args = vec![
        "--json",
        "backup",
        "--dremio-home",
        fx.home.to_str().unwrap(),
        "--paths-local",
        fx.paths_local.to_str().unwrap(),
        "--to",
        &loc.url,
        "--format",
        "2",
    ];
    args.extend_from_slice(extra);
    ok_json(&lifeboat(
        &args,
        &[("LIFEBOAT_CACHE_DIR", cache.to_str().unwrap())],
    ))
}

fn manifest_of(loc: &TestLocation, id: &str) -> serde_json::Value {
    serde_json::from_slice(&loc.read(&format!("dremio/{id}/manifest.json"))).unwrap()
}

/// Every stored object of the location, mirrored into a local folder (the cluster's folder).
fn mirror(loc: &TestLocation) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for key in loc.keys() {
        let path = dir.path().join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, loc.read(&key)).unwrap();
    }
    dir
}

fn sh(script: &str, dir: &Path) -> String {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Restores backup `id` with sha256sum, zstd and GNU tar (decrypting each object with `age -d
/// -i key` when given) into a new folder.
fn restore_by_hand(loc: &TestLocation, id: &str, key: Option<&Path>) -> tempfile::TempDir {
    let m = mirror(loc);
    let cluster = m.path().join("dremio");
    let out = tempfile::tempdir().unwrap();
    let target = out.path().display();
    sh(&format!("sha256sum --quiet -c {id}/SHA256SUMS"), &cluster);
    let script = match key {
        None => format!("cat $(awk '{{print $2}}' {id}/SHA256SUMS) | zstd -d | tar -x -C {target}"),
        Some(k) => format!(
            "for o in $(awk '{{print $2}}' {id}/SHA256SUMS); do age -d -i {} \"$o\"; done | zstd -d | tar -x -C {target}",
            k.display()
        ),
    };
    sh(&script, &cluster);
    out
}

fn same_tree(restored: &Path, original: &Path, what: &str) {
    assert_same(&snapshot(original), &snapshot(restored), what);
}

fn shared_sst_sizes(db: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(db).sort_by_file_name() {
        let e = e.unwrap();
        let len = e.metadata().unwrap().len();
        if e.file_type().is_file()
            && e.path().extension().is_some_and(|x| x == "sst")
            && len >= 64 << 10
        {
            out.push((e.path().to_path_buf(), len));
        }
    }
    out
}

fn objects_of(m: &serde_json::Value, kind: &str) -> Vec<serde_json::Value> {
    m["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == kind)
        .cloned()
        .collect()
}

fn random_file(path: &Path, len: usize) {
    let mut data = vec![0u8; len];
    getrandom::fill(&mut data).unwrap();
    std::fs::write(path, data).unwrap();
}

fn incremental_backups_reuse_unchanged_tables(kind: StoreKind) {
    let fx = fixture(8, 20);
    let loc = TestLocation::new(kind, "incremental");
    let cache = tempfile::tempdir().unwrap();
    let first = backup2(&fx, &loc, &[], cache.path());
    let id1 = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["objects"]["reused"], 0, "{first}");
    let m1 = manifest_of(&loc, &id1);
    assert_eq!(m1["format"], "lifeboat-backup/2");
    let shared1 = objects_of(&m1, "shared");
    let tables = shared_sst_sizes(&fx.db);
    assert!(
        tables.len() >= 2,
        "the fixture has shared tables: {tables:?}"
    );
    assert!(shared1.len() >= tables.len(), "{m1}");
    let restored = restore_by_hand(&loc, &id1, None);
    same_tree(&restored.path().join("db"), &fx.db, "db of backup 1");
    same_tree(
        &restored.path().join("uploads"),
        &fx.uploads,
        "uploads of backup 1",
    );

    // About 2% of the tables' bytes change: one table goes, a new one comes.
    let sst_bytes: u64 = tables.iter().map(|t| t.1).sum();
    let smallest = tables.iter().min_by_key(|t| t.1).unwrap();
    std::fs::remove_file(&smallest.0).unwrap();
    let new_len = (sst_bytes / 50).max(64 << 10) as usize;
    random_file(&smallest.0.with_file_name("999999.sst"), new_len);
    let second = backup2(&fx, &loc, &[], cache.path());
    let id2 = second["id"].as_str().unwrap().to_string();
    let m2 = manifest_of(&loc, &id2);
    assert_eq!(m2["base"], id1.as_str());
    assert_eq!(
        second["objects"]["reused"].as_u64().unwrap(),
        shared1.len() as u64 - 1,
        "{second}"
    );
    let names1: Vec<&str> = shared1
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    let new_shared: Vec<serde_json::Value> = objects_of(&m2, "shared")
        .into_iter()
        .filter(|o| !names1.contains(&o["name"].as_str().unwrap()))
        .collect();
    assert_eq!(new_shared.len(), 1, "only the new table: {m2}");
    let bundles: u64 = objects_of(&m2, "bundle")
        .iter()
        .chain(objects_of(&m2, "tail").iter())
        .map(|o| o["bytes"].as_u64().unwrap())
        .sum();
    let stored1 = m1["stored_bytes"].as_u64().unwrap();
    let stored2 = m2["stored_bytes"].as_u64().unwrap();
    // The new table (2% of the tables), the bundles (logs, uploads, security) and the index.
    assert!(
        stored2 <= stored1 * 5 / 100 + bundles + (256 << 10),
        "{stored2} of {stored1} (bundles {bundles})"
    );
    assert!(stored2 < stored1 / 4, "{stored2} of {stored1}");
    let restored = restore_by_hand(&loc, &id2, None);
    same_tree(&restored.path().join("db"), &fx.db, "db of backup 2");

    let full = backup2(&fx, &loc, &["--full"], cache.path());
    assert_eq!(full["objects"]["reused"], 0, "{full}");
    let m3 = manifest_of(&loc, full["id"].as_str().unwrap());
    assert!(m3.get("base").is_none() || m3["base"].is_null(), "{m3}");
    let names2: Vec<String> = m2["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        m3["objects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| !names2.contains(&o["name"].as_str().unwrap().to_string())),
        "--full reuses nothing"
    );
}

#[test]
fn incremental_backups_reuse_unchanged_tables_in_a_folder() {
    incremental_backups_reuse_unchanged_tables(StoreKind::Local);
}

#[test]
fn incremental_backups_reuse_unchanged_tables_on_s3() {
    incremental_backups_reuse_unchanged_tables(StoreKind::S3);
}

#[test]
fn incremental_backups_reuse_unchanged_tables_on_azure() {
    incremental_backups_reuse_unchanged_tables(StoreKind::Azure);
}

pub(crate) fn age_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("age-keygen")
        .args(["-o", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let public = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    (path, public)
}

#[test]
fn an_encrypted_backup_opens_with_each_key_and_names_no_file() {
    let fx = fixture(4, 10);
    let loc = TestLocation::new(StoreKind::Local, "encrypted");
    let cache = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (ops, ops_pub) = age_key(keys.path(), "ops.key");
    let (glass, glass_pub) = age_key(keys.path(), "glass.key");
    let two = [
        "--encrypt-to",
        ops_pub.as_str(),
        "--encrypt-to",
        glass_pub.as_str(),
    ];
    let made = backup2(&fx, &loc, &two, cache.path());
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["encrypted"], true);
    let m = manifest_of(&loc, &id);
    let mut want = vec![ops_pub.clone(), glass_pub.clone()];
    want.sort();
    assert_eq!(m["encryption"]["recipients"], serde_json::json!(want));
    assert_eq!(m["index"]["location"], "index.jsonl.zst.age");
    assert_eq!(m["sealed"]["object"], "sealed.json.age");
    for key in [&ops, &glass] {
        let restored = restore_by_hand(&loc, &id, Some(key));
        same_tree(&restored.path().join("db"), &fx.db, "db, decrypted");
        same_tree(
            &restored.path().join("uploads"),
            &fx.uploads,
            "uploads, decrypted",
        );
    }
    // No uploaded file's or security file's name in any key or stored byte.
    let mut secret_names: Vec<String> = names(&fx.uploads)
        .into_iter()
        .filter(|n| n.len() >= 6)
        .collect();
    secret_names.extend(names(&fx.security).into_iter().filter(|n| n.len() >= 6));
    assert!(!secret_names.is_empty());
    for key in loc.keys() {
        let bytes = loc.read(&key);
        for name in &secret_names {
            assert!(!key.contains(name.as_str()), "{key} names {name}");
            assert!(
                !bytes.windows(name.len()).any(|w| w == name.as_bytes()),
                "{key} holds {name}"
            );
        }
    }

    // The same recipients again: the cache opens the encrypted base without a key.
    let again = backup2(&fx, &loc, &two, cache.path());
    assert!(again["objects"]["reused"].as_u64().unwrap() >= 1, "{again}");
    assert_eq!(again["base"], id.as_str());
    // One recipient fewer: no reuse across recipient sets.
    let one = backup2(&fx, &loc, &["--encrypt-to", ops_pub.as_str()], cache.path());
    assert_eq!(one["objects"]["reused"], 0, "{one}");
    assert!(one["base"].is_null(), "{one}");
    // Without the cache, an identity opens the base's index.
    let empty_cache = tempfile::tempdir().unwrap();
    let with_key = backup2(
        &fx,
        &loc,
        &[
            "--encrypt-to",
            ops_pub.as_str(),
            "--identity",
            ops.to_str().unwrap(),
        ],
        empty_cache.path(),
    );
    assert!(
        with_key["objects"]["reused"].as_u64().unwrap() >= 1,
        "{with_key}"
    );
    // Neither: a full backup, and a note says why.
    let other_cache = tempfile::tempdir().unwrap();
    let blind = backup2(
        &fx,
        &loc,
        &["--encrypt-to", ops_pub.as_str()],
        other_cache.path(),
    );
    assert_eq!(blind["objects"]["reused"], 0, "{blind}");
    let notes = blind["notes"].to_string();
    assert!(
        notes.contains("encrypted") && notes.contains("identity"),
        "{notes}"
    );

    // Across the recipient change: a backup from before it opens with the break-glass key, one
    // from after it with the operational key.
    let restore = |id: &str, key: &Path| {
        let target = tempfile::tempdir().unwrap();
        let args = [
            "--json",
            "restore",
            "--from",
            &loc.url,
            "--backup",
            id,
            "--paths-local",
            target.path().to_str().unwrap(),
            "--dremio-version",
            &fx.version,
            "--identity",
            key.to_str().unwrap(),
        ];
        ok_json(&lifeboat(&args, &[]));
        same_tree(&target.path().join("db"), &fx.db, "db, restored");
    };
    let with_key_id = with_key["id"].as_str().unwrap();
    restore(&id, &glass);
    restore(with_key_id, &ops);

    // Prune keeps the newest two (after the change) and sweeps the objects of the rest, the
    // two-recipient ones included; what is kept still restores.
    let prune = |extra: &[&str]| {
        let mut args = vec!["--json", "prune", "--from", &loc.url, "--grace", "0s"];
        args.extend_from_slice(extra);
        lifeboat(&args, &[])
    };
    let pruned = ok_json(&prune(&["--keep-last", "2"]));
    assert_eq!(pruned["deleted"].as_array().unwrap().len(), 3, "{pruned}");
    assert!(
        pruned["objects"]["swept"].as_u64().unwrap() >= 1,
        "{pruned}"
    );
    let referenced = |keys: &[String]| -> std::collections::BTreeSet<String> {
        keys.iter()
            .filter(|k| k.ends_with("/manifest.json"))
            .flat_map(|k| {
                let m: serde_json::Value = serde_json::from_slice(&loc.read(k)).unwrap();
                m["objects"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o["name"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let stored = |keys: &[String]| -> std::collections::BTreeSet<String> {
        keys.iter()
            .filter(|k| k.starts_with("dremio/objects/"))
            .map(|k| k.rsplit('/').next().unwrap().to_string())
            .collect()
    };
    let keys = loc.keys();
    assert_eq!(
        stored(&keys),
        referenced(&keys),
        "every object left is referenced"
    );
    restore(blind["id"].as_str().unwrap(), &ops);
    restore(with_key_id, &ops);

    // A manifest that cannot be read refuses the sweep (it may reference objects), and prune
    // says so with the integrity code, so that cron notices the objects piling up.
    let broken = "20261122T013000Z-cccc";
    loc.write(
        &format!("dremio/{broken}/manifest.json"),
        b"{ not json".to_vec(),
    );
    let before = stored(&loc.keys());
    let refused = prune(&["--keep-last", "1"]);
    fails_with(&refused, 4, &["no object swept", broken, "by hand"]);
    let report: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(report["deleted"].as_array().unwrap().len(), 1, "{report}");
    assert!(stored(&loc.keys()) == before, "nothing swept");
}

/// `restore --owner` gives every folder, file and link to the owner as extraction creates them
/// (one pass, no second walk); without root it is refused before anything is read.
#[test]
fn a_restore_with_an_owner_gives_it_every_entry() {
    use std::os::unix::fs::MetadataExt;
    let fx = fixture(2, 30);
    std::os::unix::fs::symlink("000001.log", fx.db.join("catalog/LINK-TO-LOG")).unwrap();
    let loc = TestLocation::new(StoreKind::Local, "owner");
    let cache = tempfile::tempdir().unwrap();
    let made = backup2(&fx, &loc, &[], cache.path());
    let id = made["id"].as_str().unwrap();
    let target = tempfile::tempdir().unwrap();
    let local = target.path().join("local");
    let args = [
        "--json",
        "restore",
        "--from",
        &loc.url,
        "--backup",
        id,
        "--paths-local",
        local.to_str().unwrap(),
        "--dremio-version",
        &fx.version,
        "--owner",
        "4242:4343",
    ];
    let out = lifeboat(&args, &[]);
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    if !root {
        fails_with(&out, 2, &["--owner needs root"]);
        assert!(!local.exists(), "nothing is written before the refusal");
        return;
    }
    ok_json(&out);
    same_tree(&local.join("db"), &fx.db, "db, restored with an owner");
    let mut seen = 0;
    for e in walkdir::WalkDir::new(&local).follow_links(false) {
        let e = e.unwrap();
        let meta = e.path().symlink_metadata().unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (4242, 4343),
            "{} is not the owner's",
            e.path().display()
        );
        seen += 1;
    }
    let link = local
        .join("db/catalog/LINK-TO-LOG")
        .symlink_metadata()
        .unwrap();
    assert!(link.file_type().is_symlink());
    assert!(seen > 30, "{seen} entries");
}
