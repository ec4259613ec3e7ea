//! A hostile format-2 backup: the objects of an honest one (plain, or age-encrypted) flipped,
//! cut, exchanged or dropped, with the manifest and SHA256SUMS re-digested to match or not,
//! read by restore's and verify's reader (`repo::read::open`, then the chained object stream
//! into `unpack`, in verify and in extract mode). Nothing panics, memory stays bounded, and an
//! object whose stored bytes no longer match the manifest is never read as intact.

use std::io::Write;
use std::sync::{Arc, OnceLock};

use lifeboat::archive::Layout;
use lifeboat::crypto::{Identities, Recipients};
use lifeboat::progress::NotesOnly;
use lifeboat::repo::read::{self, Target};
use lifeboat::repo::{Manifest, Repo};
use lifeboat::store::Location;
use lifeboat::store::location::Access;
use object_store::{ObjectStoreExt, PutPayload};
use proptest::prelude::*;
use proptest::sample::Index as Pick;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::alloc::{MIB, peak};
use crate::harness::{bounded, fuzz};

const ID: &str = "20261122T013000Z-7f3a";

fn hex_sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// What a builder wrote, without the end-of-archive blocks `into_inner` adds.
fn members_only(b: tar::Builder<Vec<u8>>) -> Vec<u8> {
    let mut out = b.into_inner().unwrap();
    out.truncate(out.len() - 1024);
    out
}

/// The members of the backup, one tar fragment each, and the index lines for them.
fn members() -> (Vec<Vec<u8>>, Vec<serde_json::Value>) {
    let mut fragments = Vec::new();
    let mut lines = Vec::new();
    let dir = |path: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_mtime(1_763_775_000);
        h.set_size(0);
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(&mut h, path, &[][..]).unwrap();
        members_only(b)
    };
    for d in ["db", "db/catalog"] {
        fragments.push(dir(d));
        lines.push(json!({"path": d, "type": "dir", "mode": 0o755, "mtime": 1_763_775_000}));
    }
    for (n, size) in [(12, 70_000usize), (13, 300), (14, 140_000)] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + n) as u8).collect();
        let path = format!("db/catalog/{n:06}.sst");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(1_763_775_000);
        h.set_size(size as u64);
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(&mut h, &path, &data[..]).unwrap();
        fragments.push(members_only(b));
        lines.push(
            json!({"path": path, "type": "file", "mode": 0o644, "mtime": 1_763_775_000,
            "size": size, "sha256": hex_sha(&data)}),
        );
    }
    fragments.push(vec![0u8; 1024]);
    (fragments, lines)
}

/// The key every encrypted case is written to, and its identities.
fn key() -> &'static (Recipients, Arc<Identities>, tempfile::TempDir) {
    static KEY: OnceLock<(Recipients, Arc<Identities>, tempfile::TempDir)> = OnceLock::new();
    KEY.get_or_init(|| {
        use age::secrecy::ExposeSecret;
        let dir = tempfile::tempdir().unwrap();
        let id = age::x25519::Identity::generate();
        let path = dir.path().join("key.txt");
        std::fs::write(&path, format!("{}\n", id.to_string().expose_secret())).unwrap();
        let r = Recipients::parse(&[id.to_public().to_string()], "test").unwrap();
        (r, Arc::new(Identities::from_file(&path).unwrap()), dir)
    })
}

fn seal(plain: &[u8], encrypted: bool) -> Vec<u8> {
    if !encrypted {
        return plain.to_vec();
    }
    let mut s = key().0.seal(Vec::new()).unwrap();
    s.write_all(plain).unwrap();
    s.finish().unwrap()
}

#[derive(Debug, Clone)]
enum Damage {
    Flip(Pick, Pick, u8),
    Cut(Pick, Pick),
    Exchange(Pick, Pick),
    Drop(Pick),
    Index(Pick, u8),
}

#[derive(Debug, Clone)]
struct Case {
    encrypted: bool,
    damage: Vec<Damage>,
    /// The manifest and SHA256SUMS are re-digested after the damage (a forger who can write
    /// the whole location), else left as the honest writer made them.
    redigest: bool,
    extract: bool,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<Pick>(), any::<Pick>(), any::<u8>()).prop_map(|(o, i, b)| Damage::Flip(o, i, b)),
        2 => (any::<Pick>(), any::<Pick>()).prop_map(|(o, i)| Damage::Cut(o, i)),
        1 => (any::<Pick>(), any::<Pick>()).prop_map(|(a, b)| Damage::Exchange(a, b)),
        1 => any::<Pick>().prop_map(Damage::Drop),
        1 => (any::<Pick>(), any::<u8>()).prop_map(|(i, b)| Damage::Index(i, b)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        proptest::collection::vec(damage(), 0..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(encrypted, damage, redigest, extract)| Case {
            encrypted,
            damage,
            redigest,
            extract,
        })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Writes the case's backup into a fresh memory location; returns the repo, the manifest bytes
/// and whether any stored byte differs from what the manifest (as written) describes.
fn write(case: &Case) -> (Repo, Vec<u8>, bool) {
    let (fragments, lines) = members();
    let enc = case.encrypted;
    let mut objects: Vec<(String, Vec<u8>, u64, &str)> = fragments
        .iter()
        .enumerate()
        .map(|(n, raw)| {
            let mut e = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
            e.include_checksum(true).unwrap();
            e.write_all(raw).unwrap();
            let kind = if n + 1 == fragments.len() {
                "tail"
            } else if n >= 2 {
                "shared"
            } else {
                "bundle"
            };
            (
                format!("{n:02}{}", "ab".repeat(15)),
                seal(&e.finish().unwrap(), enc),
                raw.len() as u64,
                kind,
            )
        })
        .collect();
    let mut text = String::new();
    for l in &lines {
        text.push_str(&l.to_string());
        text.push('\n');
    }
    let mut index = seal(&zstd::encode_all(text.as_bytes(), 3).unwrap(), enc);
    let honest: Vec<(String, u64, String, u64, String)> = objects
        .iter()
        .map(|(n, s, raw, k)| (n.clone(), s.len() as u64, hex_sha(s), *raw, k.to_string()))
        .collect();
    let honest_index = (index.len() as u64, hex_sha(&index));
    for d in &case.damage {
        let len = objects.len();
        match d {
            // An earlier cut may have left an object empty: nothing to flip or cut there.
            Damage::Flip(o, i, b) => {
                let s = &mut objects[o.index(len)].1;
                if !s.is_empty() {
                    let at = i.index(s.len());
                    s[at] ^= b | 1;
                }
            }
            Damage::Cut(o, i) => {
                let s = &mut objects[o.index(len)].1;
                if !s.is_empty() {
                    let at = i.index(s.len());
                    s.truncate(at);
                }
            }
            Damage::Exchange(a, b) => {
                let (a, b) = (a.index(len), b.index(len));
                let t = objects[a].1.clone();
                objects[a].1 = objects[b].1.clone();
                objects[b].1 = t;
            }
            Damage::Drop(o) if len > 1 => {
                objects.remove(o.index(len));
            }
            Damage::Drop(_) => {}
            Damage::Index(i, b) => {
                let at = i.index(index.len());
                index[at] ^= b | 1;
            }
        }
    }
    let listed: Vec<(String, u64, String, u64, String)> = if case.redigest {
        objects
            .iter()
            .map(|(n, s, raw, k)| (n.clone(), s.len() as u64, hex_sha(s), *raw, k.to_string()))
            .collect()
    } else {
        honest.clone()
    };
    let index_ref = if case.redigest {
        (index.len() as u64, hex_sha(&index))
    } else {
        honest_index.clone()
    };
    let damaged = !case.redigest && {
        let now: Vec<_> = objects
            .iter()
            .map(|(n, s, ..)| (n.clone(), hex_sha(s)))
            .collect();
        now.len() != honest.len()
            || now
                .iter()
                .zip(&honest)
                .any(|(a, b)| a.0 != b.0 || a.1 != b.2)
            || hex_sha(&index) != honest_index.1
    };
    let loc = Location::open("memory://bucket/p", Access::Write).unwrap();
    let repo = Repo::new(loc, "dremio").unwrap();
    let mut sums = String::new();
    for (name, _, sha, _, _) in &listed {
        sums.push_str(&format!("{sha}  objects/{}/{name}\n", &name[..2]));
    }
    let index_name = if enc {
        "index.jsonl.zst.age"
    } else {
        "index.jsonl.zst"
    };
    let manifest = json!({
        "format": "lifeboat-backup/2", "id": ID,
        "created_at": "2026-11-22T01:30:00Z", "finished_at": "2026-11-22T01:30:09Z",
        "cluster": {"name": "dremio", "kind": "dremio", "version": "25.2.0"},
        "mode": "offline", "host": "h",
        "tool": {"name": "lifeboat", "version": "0.1.0"},
        "source": {"paths_local": "/d", "db": "/d/db", "security": "/d/security"},
        "counts": {"kv_files": 3, "uploaded_files": 0, "security_files": 0, "directories": 2, "symlinks": 0},
        "raw_bytes": 210_300, "stored_bytes": 1,
        "archive": {"object": "SHA256SUMS", "bytes": sums.len(), "sha256": hex_sha(sums.as_bytes()),
                    "compression": "zstd", "level": 3},
        "index": {"entries": lines.len(), "location": index_name, "bytes": index_ref.0, "sha256": index_ref.1},
        "objects": listed.iter().map(|(name, bytes, sha, raw, kind)| json!({
            "name": name, "kind": kind, "bytes": bytes, "sha256": sha, "raw": raw})).collect::<Vec<_>>(),
        "encryption": if enc { json!({"scheme": "age-v1-x25519", "recipients": key().0.strings()}) }
                      else { serde_json::Value::Null },
    });
    let mut manifest = manifest;
    if !enc {
        manifest.as_object_mut().unwrap().remove("encryption");
    }
    let store = repo.loc.store.clone();
    let put = |key: object_store::path::Path, data: Vec<u8>| {
        let store = store.clone();
        runtime().block_on(async move { store.put(&key, PutPayload::from(data)).await.unwrap() });
    };
    for (name, stored, ..) in &objects {
        put(repo.object_key(name), stored.clone());
    }
    put(repo.key(ID, "SHA256SUMS"), sums.into_bytes());
    put(repo.key(ID, index_name), index);
    (repo, serde_json::to_vec(&manifest).unwrap(), damaged)
}

fn check(case: Case) -> Result<(), TestCaseError> {
    let (repo, manifest, damaged) = write(&case);
    let staging = tempfile::tempdir().unwrap();
    let (verdict, held) = peak(|| {
        runtime().block_on(async {
            let m = Manifest::from_json(&manifest, Some(ID))?;
            let keys = case.encrypted.then(|| key().1.clone());
            let opened = read::open(&repo, m, keys).await?;
            let index = opened.index(&repo).await?;
            let target = if case.extract {
                Target::Extract {
                    staging: staging.path().to_path_buf(),
                    owner: None,
                }
            } else {
                Target::Verify { max_problems: 5 }
            };
            let read = opened
                .read(
                    &repo,
                    index,
                    Layout::FOLDERS_ONLY,
                    target,
                    Arc::new(NotesOnly),
                )
                .await?;
            let intact = read.object_problem.is_none() && read.unpacked.problem_count == 0;
            if case.damage.is_empty() && !intact {
                anyhow::bail!(
                    "problems: {:?} {:?}",
                    read.object_problem,
                    read.unpacked.problems
                );
            }
            anyhow::Ok(intact)
        })
    });
    crate::ensure!(
        !(damaged && matches!(verdict, Ok(true))),
        "a damaged backup read as intact: {case:?}"
    );
    if case.damage.is_empty() {
        crate::ensure!(
            matches!(verdict, Ok(true)),
            "the honest backup did not read: {:?}",
            verdict.err()
        );
    }
    bounded("format-2 read", held, manifest.len(), 64 * MIB, 64)
}

#[test]
fn format2_read() {
    fuzz("format2_read", case(), check);
}
