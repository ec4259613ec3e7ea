//! scripts/restore-without-lifeboat.sh: a format-2 cluster folder built by hand as the contract
//! lays it out (each object one zstd frame of whole GNU tar members, the tail the end-of-archive
//! blocks; age files of those when encrypted) restores identically with plain tools, and the
//! script refuses a missing or altered object, an altered SHA256SUMS and an uncommitted folder
//! before it writes anything. Plain and encrypted (the age CLI, /usr/bin/age).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use crate::support::{repo_root, stderr};

/// A tar member: a folder (None) or a file with its content.
type Member = (&'static str, Option<Vec<u8>>);

/// Pseudo-random bytes (an SST file's stand-in that zstd cannot shrink to nothing).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The members of each object, in archive order (the tail comes after).
fn objects_members() -> Vec<Vec<Member>> {
    vec![
        vec![
            ("db/", None),
            ("db/catalog/", None),
            ("db/catalog/CURRENT", Some(b"MANIFEST-000005\n".to_vec())),
            ("db/catalog/MANIFEST-000005", Some(noise(3000, 1))),
        ],
        vec![("db/catalog/000012.sst", Some(noise(200 << 10, 2)))],
        vec![("db/catalog/000013.sst", Some(noise(100 << 10, 3)))],
        vec![
            ("security/", None),
            ("security/keystore", Some(b"secret keys".to_vec())),
        ],
    ]
}

/// Whole GNU tar members, as one `tar::Builder` writes them, without end-of-archive blocks.
fn tar_of(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, content) in members {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_mtime(1_700_000_000);
        match content {
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o700);
                h.set_size(0);
            }
            Some(c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o600);
                h.set_size(c.len() as u64);
            }
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        if let Some(c) = content {
            out.extend_from_slice(c);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out
}

/// One zstd frame with its checksum.
fn frame(raw: &[u8]) -> Vec<u8> {
    let mut enc = zstd::Encoder::new(Vec::new(), 3).unwrap();
    enc.include_checksum(true).unwrap();
    enc.write_all(raw).unwrap();
    enc.finish().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn object_name(n: usize) -> String {
    // Random-looking, as lifeboat's are; distinct first characters spread them over fans.
    sha256(format!("object {n}").as_bytes())[..32].to_string()
}

/// A cluster folder holding one committed format-2 backup; returns the backup's folder.
struct Cluster {
    _dir: tempfile::TempDir,
    backup: PathBuf,
    /// In archive order: the objects' paths inside the cluster folder.
    objects: Vec<PathBuf>,
}

/// Builds it; `recipient` encrypts every object with the age CLI.
fn cluster(recipient: Option<&str>) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("dremio");
    let id = "20261202T010000Z-ab12";
    let backup = root.join(id);
    std::fs::create_dir_all(&backup).unwrap();
    let mut frames: Vec<Vec<u8>> = objects_members()
        .iter()
        .map(|m| frame(&tar_of(m)))
        .collect();
    frames.push(frame(&[0u8; 1024]));
    let mut sums = String::new();
    let mut objects = Vec::new();
    for (n, f) in frames.iter().enumerate() {
        let name = object_name(n);
        let rel = format!("objects/{}/{name}", &name[..2]);
        let path = root.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        match recipient {
            None => std::fs::write(&path, f).unwrap(),
            Some(r) => {
                let plain = dir.path().join("plain");
                std::fs::write(&plain, f).unwrap();
                let out = Command::new("age")
                    .args(["-r", r, "-o"])
                    .arg(&path)
                    .arg(&plain)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "age: {}", stderr(&out));
            }
        }
        let stored = std::fs::read(&path).unwrap();
        sums.push_str(&format!("{}  {rel}\n", sha256(&stored)));
        objects.push(path);
    }
    std::fs::write(backup.join("SHA256SUMS"), &sums).unwrap();
    let mut manifest = serde_json::json!({
        "format": "lifeboat-backup/2",
        "id": id,
        "archive": {
            "object": "SHA256SUMS",
            "bytes": sums.len(),
            "sha256": sha256(sums.as_bytes()),
            "compression": "zstd",
            "level": 3,
        },
    });
    let index = if let Some(r) = recipient {
        manifest["encryption"] = serde_json::json!({"scheme": "age-v1-x25519", "recipients": [r]});
        "index.jsonl.zst.age"
    } else {
        "index.jsonl.zst"
    };
    std::fs::write(
        backup.join(index),
        b"the index; the recipe does not need it",
    )
    .unwrap();
    std::fs::write(
        backup.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    Cluster {
        _dir: dir,
        backup,
        objects,
    }
}

fn recipe(backup: &Path, target: &Path, identity: Option<&Path>) -> Output {
    let mut cmd = Command::new(repo_root().join("scripts/restore-without-lifeboat.sh"));
    cmd.arg(backup)
        .arg(target)
        .env_remove("LIFEBOAT_AGE_IDENTITY_FILE");
    if let Some(key) = identity {
        cmd.arg("--identity").arg(key);
    }
    cmd.output().unwrap()
}

/// What the archive holds: path -> content (None for a folder) and mode.
fn expected() -> BTreeMap<String, (Option<Vec<u8>>, u32)> {
    objects_members()
        .into_iter()
        .flatten()
        .map(|(p, c)| {
            let mode = if c.is_some() { 0o600 } else { 0o700 };
            (p.trim_end_matches('/').to_string(), (c, mode))
        })
        .collect()
}

fn restored(target: &Path) -> BTreeMap<String, (Option<Vec<u8>>, u32)> {
    walkdir::WalkDir::new(target)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(target).unwrap().display().to_string();
            let meta = e.path().symlink_metadata().unwrap();
            let content = meta.is_file().then(|| std::fs::read(e.path()).unwrap());
            (rel, (content, meta.permissions().mode() & 0o7777))
        })
        .collect()
}

fn refused(out: &Output, says: &str, target: &Path) {
    assert!(!out.status.success(), "the recipe should refuse ({says})");
    assert!(stderr(out).contains(says), "{says}: {}", stderr(out));
    assert!(
        !target.exists(),
        "a refused restore wrote {}",
        target.display()
    );
}

/// The refusals both variants share: a missing middle object, an altered one, an altered
/// SHA256SUMS, a folder without its manifest. Each is undone before the next.
fn refusals(c: &Cluster, scratch: &Path, identity: Option<&Path>) {
    let middle = &c.objects[2];
    let aside = scratch.join("aside");
    std::fs::rename(middle, &aside).unwrap();
    let t = scratch.join("missing");
    refused(&recipe(&c.backup, &t, identity), "missing or altered", &t);
    std::fs::rename(&aside, middle).unwrap();

    let good = std::fs::read(middle).unwrap();
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x40;
    std::fs::write(middle, &bad).unwrap();
    let t = scratch.join("altered");
    let out = recipe(&c.backup, &t, identity);
    refused(&out, "missing or altered", &t);
    assert!(stderr(&out).contains("FAILED"), "{}", stderr(&out));
    std::fs::write(middle, &good).unwrap();

    // Objects swapped in SHA256SUMS: each still matches its digest, the list is not the manifest's.
    let sums_path = c.backup.join("SHA256SUMS");
    let sums = std::fs::read_to_string(&sums_path).unwrap();
    let mut lines: Vec<&str> = sums.lines().collect();
    lines.swap(1, 2);
    std::fs::write(&sums_path, format!("{}\n", lines.join("\n"))).unwrap();
    let t = scratch.join("swapped");
    refused(&recipe(&c.backup, &t, identity), "it was altered", &t);
    std::fs::write(&sums_path, &sums).unwrap();

    let manifest = c.backup.join("manifest.json");
    let kept = std::fs::read(&manifest).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    let t = scratch.join("uncommitted");
    refused(
        &recipe(&c.backup, &t, identity),
        "not a committed backup",
        &t,
    );
    std::fs::write(&manifest, kept).unwrap();
}

#[test]
fn a_plain_format_2_backup_restores_with_plain_tools_and_gaps_are_refused() {
    let c = cluster(None);
    let scratch = tempfile::tempdir().unwrap();
    refusals(&c, scratch.path(), None);
    let target = scratch.path().join("restored");
    let out = recipe(&c.backup, &target, None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(restored(&target), expected());
    // A second restore into the now full target is refused.
    let again = recipe(&c.backup, &target, None);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("is not empty"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn an_encrypted_format_2_backup_restores_with_age_and_needs_its_key() {
    let scratch = tempfile::tempdir().unwrap();
    let key = scratch.path().join("key.txt");
    let made = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "age-keygen: {}", stderr(&made));
    let shown = Command::new("age-keygen")
        .arg("-y")
        .arg(&key)
        .output()
        .unwrap();
    let recipient = String::from_utf8(shown.stdout).unwrap().trim().to_string();
    assert!(recipient.starts_with("age1"), "{recipient}");
    let c = cluster(Some(&recipient));
    // Ciphertext: no member's bytes are in the clear.
    let stored = std::fs::read(&c.objects[3]).unwrap();
    assert!(!stored.windows(11).any(|w| w == b"secret keys"));

    refusals(&c, scratch.path(), Some(&key));
    let t = scratch.path().join("no-key");
    refused(&recipe(&c.backup, &t, None), "the backup is encrypted", &t);

    let other = scratch.path().join("other.txt");
    let made = Command::new("age-keygen")
        .arg("-o")
        .arg(&other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let wrong = recipe(&c.backup, &scratch.path().join("wrong-key"), Some(&other));
    assert!(!wrong.status.success(), "a wrong key restored");

    let target = scratch.path().join("restored");
    let out = recipe(&c.backup, &target, Some(&key));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(restored(&target), expected());
}
