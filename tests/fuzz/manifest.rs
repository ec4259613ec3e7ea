//! The manifest (`Manifest::from_json`, as read from a bucket) and the per-file index (JSON
//! lines, spooled to a file as restore and verify do).

use std::io::{Seek, Write};

use lifeboat::archive::index::Index;
use lifeboat::repo::Manifest;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::alloc::{MIB, peak};
use crate::harness::{bounded, fuzz};
use crate::inputs::{Bytes, JSON, apply, json_from, ops, or_bytes};

pub const ID: &str = "20261122T013000Z-7f3a";

fn entry(path: &str, kind: &str) -> Value {
    let mut e = json!({"path": path, "type": kind, "mode": 420, "mtime": 1_763_775_000});
    match kind {
        "file" => {
            e["size"] = json!(3);
            e["sha256"] = json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        }
        "symlink" => e["target"] = json!("000012.sst"),
        _ => {}
    }
    e
}

pub fn entries() -> Vec<Value> {
    vec![
        entry("db", "dir"),
        entry("db/catalog", "dir"),
        entry("db/catalog/000012.sst", "file"),
        entry("db/catalog/CURRENT", "symlink"),
        entry("uploads/a b.csv", "file"),
        entry("security/keystore.jks", "file"),
    ]
}

/// Manifests as lifeboat writes them: offline with an inline index, logical with a separate one.
pub fn manifests() -> Vec<Value> {
    let digest = "ab".repeat(32);
    let offline = json!({
        "format": "lifeboat-backup/1", "id": ID,
        "created_at": "2026-11-22T01:30:00Z", "finished_at": "2026-11-22T01:30:09.5Z",
        "cluster": {"name": "prod", "kind": "dremio", "version": "25.2.0", "build": "202411201234", "edition": "oss"},
        "mode": "offline", "host": "coordinator-1",
        "tool": {"name": "lifeboat", "version": "0.1.0"},
        "source": {"dremio_home": "/opt/dremio", "paths_local": "/var/lib/dremio", "db": "/var/lib/dremio/db",
                   "uploads": "/var/lib/dremio/pdfs/uploads/_uploads", "security": "/var/lib/dremio/security"},
        "counts": {"kv_files": 1, "uploaded_files": 1, "security_files": 1, "directories": 2, "symlinks": 1},
        "raw_bytes": 9, "stored_bytes": 700,
        "archive": {"object": "data.tar.zst", "bytes": 700, "sha256": digest, "compression": "zstd", "level": 3},
        "index": {"entries": 6, "location": "inline"},
        "files": entries(),
        "notes": ["uploads are not on local disk (s3://bucket/uploads): not in this backup"],
    });
    let mut logical = offline.clone();
    logical["mode"] = json!("logical");
    logical["source"] = json!({"coordinator": "https://dremio-1:9047"});
    logical["logical"] = json!({"tables": 12, "records": 3400, "binary": true, "backup_path": "/mnt/shared/dremio_backup_2026-11-22_01.30"});
    logical["index"] = json!({"entries": 5000, "location": "index.jsonl.zst", "bytes": 4096, "sha256": "cd".repeat(32)});
    logical.as_object_mut().map(|m| m.remove("files"));
    vec![offline, logical]
}

fn check_manifest(Bytes(bytes): Bytes) -> Result<(), TestCaseError> {
    let (parsed, held) = peak(|| Manifest::from_json(&bytes, Some(ID)));
    // A manifest holds at most 100,000 JSON values (checked before parsing), each a few dozen
    // bytes once parsed: memory is the text's plus a fixed amount.
    bounded("manifest", held, bytes.len(), 8 * MIB, 1)?;
    if let Ok(m) = parsed {
        let again = Manifest::from_json(&m.to_json(), Some(&m.id));
        crate::ensure!(
            again.as_ref().ok() == Some(&m),
            "an accepted manifest does not read back as itself: {again:?}"
        );
    }
    Ok(())
}

#[test]
fn manifest() {
    fuzz("manifest", or_bytes(json_from(manifests())), check_manifest);
}

/// Index text: the entries as JSON lines, mutated as a whole, or lines mixed and repeated.
fn index_text() -> impl Strategy<Value = Vec<u8>> {
    let lines = entries()
        .iter()
        .map(|e| serde_json::to_vec(e).expect("an entry serialises"))
        .collect::<Vec<_>>();
    let whole = lines.join(&b"\n"[..]);
    let picked = prop::collection::vec(prop::sample::select(lines), 0..40)
        .prop_map(|l| l.join(&b"\r\n"[..]));
    (prop_oneof![Just(whole), picked], ops()).prop_map(|(text, ops)| apply(&JSON, text, &ops))
}

fn check_index(Bytes(bytes): Bytes) -> Result<(), TestCaseError> {
    let mut file = tempfile::tempfile().expect("a temporary file");
    file.write_all(&bytes).expect("the spool is written");
    file.rewind().expect("the spool rewinds");
    let (read, held) = peak(|| {
        let index = Index::from_jsonl_file(file)?;
        let mut ok = 0u64;
        for e in index.iter()? {
            e?;
            ok += 1;
        }
        Ok::<_, lifeboat::archive::ArchiveError>((index.len(), ok))
    });
    // Streamed: one buffer and one line at a time, whatever the index's size.
    bounded("index", held, bytes.len(), MIB, 0)?;
    if let Ok((len, ok)) = read {
        crate::ensure!(len == ok, "the index says {len} entries but {ok} read");
    }
    Ok(())
}

#[test]
fn index() {
    fuzz("index", or_bytes(index_text()), check_index);
}
