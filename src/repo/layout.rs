//! The repository layout inside a location (a contract other tools rely on):
//! `<prefix>/<cluster>/<backup-id>/{data.tar.zst, index.jsonl.zst, manifest.json}` and
//! `<prefix>/<cluster>/lock.json`; backup ids that sort by time. No key is a prefix of another.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

use chrono::{DateTime, Utc};
use object_store::path::Path as ObjPath;

use crate::store::lock::{self, Lock};
use crate::store::{Location, StoreError};

/// Object names inside a backup's folder.
pub const ARCHIVE_OBJECT: &str = "data.tar.zst";
pub const INDEX_OBJECT: &str = "index.jsonl.zst";
pub const MANIFEST_OBJECT: &str = "manifest.json";
/// Format 2: the checksum list of a backup's objects, in archive order (`sha256sum -c` reads it).
pub const SUMS_OBJECT: &str = "SHA256SUMS";
/// Format 2, encrypted: the index, and the manifest's sealed sections.
pub const SEALED_INDEX_OBJECT: &str = "index.jsonl.zst.age";
pub const SEALED_OBJECT: &str = "sealed.json.age";
/// Format 2: the folder of shared objects inside a cluster's folder.
pub const OBJECTS_DIR: &str = "objects";
/// The lock's object name inside a cluster's folder.
pub const LOCK_OBJECT: &str = "lock.json";
/// Indexes with at most this many entries are kept inside the manifest.
pub const INLINE_INDEX_LIMIT: u64 = 1000;

/// The backups of one cluster in one location.
#[derive(Debug, Clone)]
pub struct Repo {
    pub loc: Location,
    pub cluster: String,
    /// The command's cancellation (SIGINT/SIGTERM): streams to and from the repository stop at
    /// their next chunk once it is cancelled.
    pub cancel: CancellationToken,
}

impl Repo {
    pub fn new(loc: Location, cluster: &str) -> Result<Repo, StoreError> {
        let ok = !cluster.is_empty()
            && cluster
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !cluster.starts_with('.');
        if !ok {
            return Err(StoreError::BadUrl {
                url: cluster.to_string(),
                why: "a cluster name uses letters, digits, '-', '_' and '.'".into(),
            });
        }
        Ok(Repo {
            loc,
            cluster: cluster.to_string(),
            cancel: CancellationToken::new(),
        })
    }

    /// The same repository, its streams stopped by `cancel` (the command's).
    pub fn cancelled_by(mut self, cancel: CancellationToken) -> Repo {
        self.cancel = cancel;
        self
    }

    /// The key of an object of backup `id`.
    pub fn key(&self, id: &str, object: &str) -> ObjPath {
        self.loc.key(&[&self.cluster, id, object])
    }

    /// The folder of every backup of the cluster.
    pub fn cluster_dir(&self) -> ObjPath {
        self.loc.key(&[&self.cluster])
    }

    /// The lock object of backup, copy and prune on this cluster's backups.
    pub fn lock_key(&self) -> ObjPath {
        self.loc.key(&[&self.cluster, LOCK_OBJECT])
    }

    /// Takes this cluster's lock for `command`, waiting up to `wait` for a live holder.
    pub async fn lock(&self, command: &str, wait: Option<Duration>) -> anyhow::Result<Lock> {
        lock::acquire(
            &self.loc,
            self.lock_key(),
            &self.cluster,
            command,
            lock::ttl(),
            wait,
        )
        .await
    }

    /// The key of format-2 object `name` (see [`object_path`]).
    pub fn object_key(&self, name: &str) -> ObjPath {
        let fan = name.get(..2).unwrap_or(name);
        self.loc.key(&[&self.cluster, OBJECTS_DIR, fan, name])
    }

    /// The folder of every format-2 object of the cluster.
    pub fn objects_dir(&self) -> ObjPath {
        self.loc.key(&[&self.cluster, OBJECTS_DIR])
    }

    /// The folder of backup `id`.
    pub fn backup_dir(&self, id: &str) -> ObjPath {
        self.loc.key(&[&self.cluster, id])
    }
}

/// A new backup id that sorts by time: `20261122T013000Z-7f3a`.
pub fn new_backup_id(now: DateTime<Utc>) -> String {
    let mut rnd = [0u8; 2];
    getrandom::fill(&mut rnd).expect("the OS has a random source");
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), hex::encode(rnd))
}

/// A new format-2 object name: 32 random hexadecimal characters.
pub fn new_object_name() -> String {
    let mut rnd = [0u8; 16];
    getrandom::fill(&mut rnd).expect("the OS has a random source");
    hex::encode(rnd)
}

/// Whether `name` is one [`new_object_name`] could have made (manifests are hostile input).
pub fn is_object_name(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Object `name`'s path relative to the cluster's folder, as `SHA256SUMS` lists it:
/// `objects/ab/ab12...`.
pub fn object_path(name: &str) -> String {
    let fan = name.get(..2).unwrap_or(name);
    format!("{OBJECTS_DIR}/{fan}/{name}")
}

/// The time encoded in a backup id, if it is one.
pub fn time_of_id(id: &str) -> Option<DateTime<Utc>> {
    let stamp = id.get(..16)?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_carry_it() {
        let t: DateTime<Utc> = "2026-11-22T01:30:00Z".parse().unwrap();
        let id = new_backup_id(t);
        assert!(id.starts_with("20261122T013000Z-"));
        assert_eq!(id.len(), 21);
        assert_eq!(time_of_id(&id), Some(t));
        assert_eq!(time_of_id("latest"), None);
    }
}
