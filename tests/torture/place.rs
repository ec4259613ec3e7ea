//! A backup location under torture, and what must hold of it after any kill: only complete
//! backups are listed, each passes `verify`, every format-2 object a committed manifest
//! references exists with its size, every object lies where the layout puts a backup's objects,
//! a shared object (`objects/<ab>/<ab..>`) or the lock; and after `prune --grace 0s`, nothing
//! but the kept backups (and the objects they reference) remains.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::support::{StoreKind, TestLocation, lifeboat_env, stderr, stdout};

/// The objects a backup folder may hold (docs/ARCHITECTURE.md, "Repository layout"; format 2's
/// SHA256SUMS, encrypted index and sealed sections too).
const BACKUP_OBJECTS: [&str; 6] = [
    "data.tar.zst",
    "index.jsonl.zst",
    "manifest.json",
    "SHA256SUMS",
    "index.jsonl.zst.age",
    "sealed.json.age",
];

pub struct Place {
    pub loc: TestLocation,
    /// What lifeboat is told: the URL, or a location's name in `config`.
    pub name: String,
    pub config: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub cluster: String,
}

impl Place {
    /// A fresh location of this kind, reached by its URL.
    pub fn new(kind: StoreKind, label: &str) -> Place {
        let loc = TestLocation::new(kind, label);
        Place {
            name: loc.url.clone(),
            loc,
            config: None,
            env: Vec::new(),
            cluster: "dremio".into(),
        }
    }

    /// `args` with the config file in front, as every command on this place needs.
    pub fn args(&self, args: &[&str]) -> Vec<String> {
        let mut full = Vec::new();
        if let Some(cfg) = &self.config {
            full.push("--config".to_string());
            full.push(cfg.display().to_string());
        }
        full.extend(args.iter().map(|a| a.to_string()));
        full
    }

    fn lifeboat(&self, args: &[&str]) -> Output {
        let full = self.args(args);
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        lifeboat_env(&refs, &self.env)
    }

    /// A lifeboat command on this place that must succeed with a JSON answer.
    fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let out = self.lifeboat(args);
        ensure!(
            out.status.success(),
            "`lifeboat {}` failed ({}): {}",
            args.join(" "),
            out.status,
            stderr(&out).trim()
        );
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("`lifeboat {}` printed {}", args.join(" "), stdout(&out)))
    }

    fn local_root(&self) -> Option<PathBuf> {
        (self.loc.kind == StoreKind::Local).then(|| PathBuf::from(&self.loc.url))
    }

    /// The committed backups, newest first; fails unless `list` names nothing unusable, every
    /// object lies in a backup folder or is the lock, and each listed backup passes `verify`.
    pub fn complete_backups(&self) -> anyhow::Result<Vec<String>> {
        let ids = self.listed()?;
        for key in self.loc.keys() {
            ensure!(
                self.belongs(&key),
                "{} holds {key}, which is neither a backup's object nor the lock",
                self.loc.url
            );
        }
        self.referenced_objects_present(&ids)?;
        for id in &ids {
            let v = self.json(&[
                "--json",
                "verify",
                "--from",
                &self.name,
                "--cluster",
                &self.cluster,
                "--backup",
                id,
            ])?;
            ensure!(v["ok"] == true, "verify of listed backup {id}: {v}");
        }
        Ok(ids)
    }

    fn listed(&self) -> anyhow::Result<Vec<String>> {
        let v = self.json(&[
            "--json",
            "list",
            "--from",
            &self.name,
            "--cluster",
            &self.cluster,
        ])?;
        let unusable = v["unusable"].as_array().map(Vec::len).unwrap_or(0);
        ensure!(
            unusable == 0,
            "list names unusable backups: {}",
            v["unusable"]
        );
        Ok(v["backups"]
            .as_array()
            .context("list --json has backups")?
            .iter()
            .filter_map(|b| b["id"].as_str().map(str::to_string))
            .collect())
    }

    fn belongs(&self, key: &str) -> bool {
        let Some(rest) = key.strip_prefix(&format!("{}/", self.cluster)) else {
            return false;
        };
        rest == "lock.json"
            || is_object_path(rest)
            || rest
                .split_once('/')
                .is_some_and(|(id, object)| is_backup_id(id) && BACKUP_OBJECTS.contains(&object))
    }

    /// The manifest of committed backup `id`, as JSON.
    pub fn manifest(&self, id: &str) -> anyhow::Result<Value> {
        let raw = self
            .loc
            .read(&format!("{}/{id}/manifest.json", self.cluster));
        Ok(serde_json::from_slice(&raw)?)
    }

    /// Nothing referenced was lost: every object each format-2 manifest of `ids` lists exists,
    /// with the size the manifest gives (verify then checks their digests).
    pub fn referenced_objects_present(&self, ids: &[String]) -> anyhow::Result<()> {
        let keys: BTreeSet<String> = self.loc.keys().into_iter().collect();
        for id in ids {
            let manifest = self.manifest(id)?;
            for o in manifest["objects"].as_array().into_iter().flatten() {
                let name = o["name"].as_str().context("an object has a name")?;
                let key = format!("{}/{}", self.cluster, object_path(name));
                ensure!(
                    keys.contains(&key),
                    "backup {id} references object {name}, which {} no longer holds",
                    self.loc.url
                );
            }
        }
        Ok(())
    }

    /// `prune --grace 0s` with a policy that keeps `ids`; afterwards the listing is still `ids`,
    /// the location holds exactly their objects (no lock, no orphan), and on a local folder the
    /// disk holds nothing else either (no multipart staging file, no empty backup folder).
    pub fn prune_leftovers(&self, ids: &[String]) -> anyhow::Result<()> {
        let keep = ids.len().max(1).to_string();
        self.json(&[
            "--json",
            "prune",
            "--from",
            &self.name,
            "--cluster",
            &self.cluster,
            "--keep-last",
            &keep,
            "--grace",
            "0s",
        ])?;
        let after: BTreeSet<String> = self.listed()?.into_iter().collect();
        let wanted: BTreeSet<String> = ids.iter().cloned().collect();
        ensure!(
            after == wanted,
            "after prune the backups are {after:?}, not {wanted:?}"
        );
        let expected = self.objects_of(ids)?;
        let found: BTreeSet<String> = self.loc.keys().into_iter().collect();
        ensure!(
            found == expected,
            "after prune {} holds {:?} beyond the kept backups and lacks {:?}",
            self.loc.url,
            found.difference(&expected).collect::<Vec<_>>(),
            expected.difference(&found).collect::<Vec<_>>()
        );
        if let Some(root) = self.local_root() {
            self.only_on_disk(&root, ids, &expected)?;
        }
        Ok(())
    }

    /// The keys of these backups: archive, manifest, and the index where the manifest names one.
    fn objects_of(&self, ids: &[String]) -> anyhow::Result<BTreeSet<String>> {
        let mut keys = BTreeSet::new();
        for id in ids {
            let key = |o: &str| format!("{}/{id}/{o}", self.cluster);
            let manifest: Value = serde_json::from_slice(&self.loc.read(&key("manifest.json")))?;
            keys.insert(key("manifest.json"));
            let objects = manifest["objects"].as_array().cloned().unwrap_or_default();
            if objects.is_empty() {
                keys.insert(key("data.tar.zst"));
                if manifest["index"]["location"] != "inline" {
                    keys.insert(key("index.jsonl.zst"));
                }
                continue;
            }
            // Format 2: the folder's SHA256SUMS, index, sealed sections, and the shared objects.
            for folder_object in [
                &manifest["archive"]["object"],
                &manifest["index"]["location"],
                &manifest["sealed"]["object"],
            ] {
                if let Some(name) = folder_object.as_str() {
                    keys.insert(key(name));
                }
            }
            for o in &objects {
                let name = o["name"].as_str().context("an object has a name")?;
                keys.insert(format!("{}/{}", self.cluster, object_path(name)));
            }
        }
        Ok(keys)
    }

    fn only_on_disk(
        &self,
        root: &Path,
        ids: &[String],
        expected: &BTreeSet<String>,
    ) -> anyhow::Result<()> {
        for entry in walkdir::WalkDir::new(root).min_depth(1) {
            let entry = entry?;
            let rel = entry.path().strip_prefix(root)?.display().to_string();
            let fine = if entry.file_type().is_dir() {
                rel == self.cluster
                    || ids.iter().any(|id| rel == format!("{}/{id}", self.cluster))
                    || is_objects_folder(&rel, &self.cluster)
            } else {
                expected.contains(&rel)
            };
            if !fine {
                bail!("after prune {} still holds {rel} on disk", root.display());
            }
        }
        Ok(())
    }
}

/// `objects/ab/ab<30 more hex>`: where format 2 keeps a shared object (relative to the cluster).
pub fn is_object_path(rest: &str) -> bool {
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(parts.as_slice(), ["objects", fan, name]
        if name.len() == 32
            && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && name.get(..2) == Some(*fan))
}

/// The key of object `name` relative to the cluster's folder.
pub fn object_path(name: &str) -> String {
    format!("objects/{}/{name}", name.get(..2).unwrap_or(name))
}

/// `<cluster>/objects` or one of its fan-out folders `<cluster>/objects/ab` (a sweep may leave
/// one empty on a local folder).
fn is_objects_folder(rel: &str, cluster: &str) -> bool {
    let Some(rest) = rel.strip_prefix(&format!("{cluster}/")) else {
        return false;
    };
    rest == "objects"
        || rest.strip_prefix("objects/").is_some_and(|fan| {
            fan.len() == 2 && fan.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// Where run `run` of a command that alternates works: SeaweedFS, then a local folder, ...
pub fn alternating(run: usize) -> StoreKind {
    if run % 2 == 1 {
        StoreKind::Local
    } else {
        StoreKind::S3
    }
}

/// The name of that choice, as a [`crate::Scenario::variant`].
pub fn alternating_variant(run: usize) -> &'static str {
    match alternating(run) {
        StoreKind::Local => "local",
        _ => "s3",
    }
}

/// `20261122T023444Z-b3cd`: the shape of a backup id (time to the second, then a random part).
pub fn is_backup_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 17
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
}
