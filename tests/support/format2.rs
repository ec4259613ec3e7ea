//! A format-2 backup built by hand, without lifeboat's writer: the members of a real format-1
//! backup's tar cut at their boundaries into objects as the contract lays them out (one zstd
//! frame with its checksum per object, shared objects of one file each, bundles of the rest,
//! a tail of the end-of-archive blocks), optionally each encrypted by the `age` CLI; the index
//! (format 1's lines with "object"), SHA256SUMS, sealed.json.age and manifest.json last.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::TestLocation;

/// How to cut the backup.
pub struct Shape {
    /// Regular files under `db/` of at least this many bytes are shared objects of their own
    /// (the contract's rule is 64 KiB for `*.sst`/`*.blob`; smaller here to make more objects).
    pub shared_min: u64,
    /// `age1...` recipients: when given, every object, the index and the sealed sections are
    /// age files made by the age CLI.
    pub recipients: Vec<String>,
}

/// One object as written.
#[derive(Debug, Clone)]
pub struct Object {
    pub name: String,
    pub kind: &'static str,
    /// The stored bytes.
    pub stored: Vec<u8>,
    /// The tar bytes it holds.
    pub raw: Vec<u8>,
}

impl Object {
    pub fn key(&self, cluster: &str) -> String {
        format!("{cluster}/objects/{}/{}", &self.name[..2], self.name)
    }
}

/// A backup written by [`build`].
pub struct Built {
    pub id: String,
    pub cluster: String,
    pub objects: Vec<Object>,
    pub manifest: serde_json::Value,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).unwrap();
    hex::encode(b)
}

/// One zstd frame (with its checksum) of `raw`.
pub fn frame(raw: &[u8]) -> Vec<u8> {
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    enc.include_checksum(true).unwrap();
    enc.write_all(raw).unwrap();
    enc.finish().unwrap()
}

/// `plain` encrypted by the age CLI to `recipients`.
pub fn age_encrypt(plain: &[u8], recipients: &[String]) -> Vec<u8> {
    let mut cmd = Command::new("age");
    for r in recipients {
        cmd.args(["-r", r]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the age CLI (apt install age)");
    let mut stdin = child.stdin.take().unwrap();
    let data = plain.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    writer.join().unwrap();
    assert!(child.wait().unwrap().success(), "age failed");
    out
}

/// A new age identity made by age-keygen in `dir/name`, and its recipient.
pub fn keygen(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .expect("age-keygen (apt install age)");
    assert!(out.status.success(), "age-keygen failed");
    let text = std::fs::read_to_string(&path).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .trim()
        .to_string();
    (path, recipient)
}

/// The index lines of format-1 backup `m` (inline or its own object).
fn index_lines(loc: &TestLocation, cluster: &str, m: &serde_json::Value) -> Vec<serde_json::Value> {
    if m["index"]["location"] == "inline" {
        return m["files"].as_array().cloned().unwrap_or_default();
    }
    let id = m["id"].as_str().unwrap();
    let stored = loc.read(&format!("{cluster}/{id}/index.jsonl.zst"));
    let text = zstd::decode_all(&stored[..]).unwrap();
    String::from_utf8(text)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Writes a format-2 backup of the files of format-1 backup `real` of `cluster` in `loc`.
pub fn build(loc: &TestLocation, cluster: &str, real: &str, shape: &Shape) -> Built {
    let m1: serde_json::Value =
        serde_json::from_slice(&loc.read(&format!("{cluster}/{real}/manifest.json"))).unwrap();
    assert_eq!(m1["format"], "lifeboat-backup/1");
    let tar_bytes =
        zstd::decode_all(&loc.read(&format!("{cluster}/{real}/data.tar.zst"))[..]).unwrap();
    let mut lines = index_lines(loc, cluster, &m1);

    // Every member's span: from the end of the one before (its long-name headers included) to
    // the end of its padded data.
    let mut members = Vec::new();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut start = 0u64;
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().to_string();
        let size = entry.size();
        let end = entry.raw_file_position() + size.div_ceil(512) * 512;
        let regular = entry.header().entry_type().is_file();
        members.push((path, size, regular, start as usize..end as usize));
        start = end;
    }
    let tail = tar_bytes[start as usize..].to_vec();
    assert!(
        tail.len() >= 1024 && tail.iter().all(|&b| b == 0),
        "the tail is zeros"
    );

    let encrypted = !shape.recipients.is_empty();
    let seal = |plain: &[u8]| -> Vec<u8> {
        if encrypted {
            age_encrypt(plain, &shape.recipients)
        } else {
            plain.to_vec()
        }
    };
    let mut objects: Vec<Object> = Vec::new();
    let mut bundle: Vec<u8> = Vec::new();
    let close = |raw: Vec<u8>, kind: &'static str, objects: &mut Vec<Object>| {
        let stored = seal(&frame(&raw));
        objects.push(Object {
            name: random_hex(16),
            kind,
            stored,
            raw,
        });
    };
    for (path, size, regular, span) in &members {
        let shared = *regular && path.starts_with("db/") && *size >= shape.shared_min;
        if shared {
            if !bundle.is_empty() {
                close(std::mem::take(&mut bundle), "bundle", &mut objects);
            }
            close(tar_bytes[span.clone()].to_vec(), "shared", &mut objects);
            let name = objects.last().unwrap().name.clone();
            for l in lines.iter_mut().filter(|l| l["path"] == path.as_str()) {
                l["object"] = name.clone().into();
            }
        } else {
            bundle.extend_from_slice(&tar_bytes[span.clone()]);
            if bundle.len() >= 64 << 20 {
                close(std::mem::take(&mut bundle), "bundle", &mut objects);
            }
        }
    }
    if !bundle.is_empty() {
        close(bundle, "bundle", &mut objects);
    }
    close(tail, "tail", &mut objects);

    let when = chrono::Utc::now();
    let id = format!("{}-{}", when.format("%Y%m%dT%H%M%SZ"), random_hex(2));
    for o in &objects {
        loc.write(&o.key(cluster), o.stored.clone());
    }
    let mut text = String::new();
    for l in &lines {
        text.push_str(&serde_json::to_string(l).unwrap());
        text.push('\n');
    }
    let index = seal(&zstd::encode_all(text.as_bytes(), 3).unwrap());
    let index_name = if encrypted {
        "index.jsonl.zst.age"
    } else {
        "index.jsonl.zst"
    };
    loc.write(&format!("{cluster}/{id}/{index_name}"), index.clone());

    let mut m = m1.clone();
    m["format"] = "lifeboat-backup/2".into();
    m["id"] = id.clone().into();
    m["created_at"] = when.to_rfc3339().into();
    m["finished_at"] = when.to_rfc3339().into();
    let obj = m.as_object_mut().unwrap();
    obj.remove("files");
    obj.insert(
        "index".into(),
        serde_json::json!({
            "entries": lines.len(),
            "location": index_name,
            "bytes": index.len(),
            "sha256": sha256_hex(&index),
        }),
    );
    if encrypted {
        let sealed = serde_json::json!({
            "logical": m1.get("logical"),
            "druid": m1.get("druid"),
            "catalog": m1.get("catalog"),
        });
        let stored = seal(&serde_json::to_vec(&sealed).unwrap());
        loc.write(&format!("{cluster}/{id}/sealed.json.age"), stored.clone());
        let mut recipients = shape.recipients.clone();
        recipients.sort();
        let obj = m.as_object_mut().unwrap();
        for k in ["logical", "druid", "catalog"] {
            obj.remove(k);
        }
        obj.insert(
            "encryption".into(),
            serde_json::json!({"scheme": "age-v1-x25519", "recipients": recipients}),
        );
        obj.insert(
            "sealed".into(),
            serde_json::json!({"object": "sealed.json.age", "bytes": stored.len(), "sha256": sha256_hex(&stored)}),
        );
    }
    let mut built = Built {
        id,
        cluster: cluster.to_string(),
        objects,
        manifest: m,
    };
    built.commit(loc);
    built
}

impl Built {
    /// Writes `objects` into the manifest, SHA256SUMS from them, then the manifest (as a writer
    /// ends a backup): after an edit of `objects`, a consistent backup of those objects.
    pub fn commit(&mut self, loc: &TestLocation) {
        let mut sums = String::new();
        for o in &self.objects {
            sums.push_str(&format!(
                "{}  objects/{}/{}\n",
                sha256_hex(&o.stored),
                &o.name[..2],
                o.name
            ));
        }
        let (cluster, id) = (&self.cluster, &self.id);
        loc.write(
            &format!("{cluster}/{id}/SHA256SUMS"),
            sums.clone().into_bytes(),
        );
        let m = &mut self.manifest;
        m["objects"] = self
            .objects
            .iter()
            .map(|o| {
                serde_json::json!({
                    "name": o.name,
                    "kind": o.kind,
                    "bytes": o.stored.len(),
                    "sha256": sha256_hex(&o.stored),
                    "raw": o.raw.len(),
                })
            })
            .collect();
        m["archive"] = serde_json::json!({
            "object": "SHA256SUMS",
            "bytes": sums.len(),
            "sha256": sha256_hex(sums.as_bytes()),
            "compression": "zstd",
            "level": 3,
        });
        m["stored_bytes"] = self
            .objects
            .iter()
            .map(|o| o.stored.len() as u64)
            .sum::<u64>()
            .into();
        loc.write(
            &format!("{cluster}/{id}/manifest.json"),
            serde_json::to_vec_pretty(&self.manifest).unwrap(),
        );
    }
}
