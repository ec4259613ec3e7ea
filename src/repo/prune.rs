//! What prune removes besides the backups its policy drops: folders that failed runs left without
//! a manifest, and on a local folder what interrupted uploads left. A backup is deleted manifest
//! first, so that it vanishes at once for every reader.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::layout::{MANIFEST_OBJECT, time_of_id};
use super::list::Broken;
use super::{Manifest, Repo};
use crate::store::{StoreError, classify_error};

/// Backup folders without a manifest whose newest object is older than `grace`.
pub async fn orphans(
    repo: &Repo,
    good: &[Manifest],
    broken: &[Broken],
    grace: Duration,
) -> Result<Vec<(String, chrono::TimeDelta)>, StoreError> {
    let dir = repo.cluster_dir();
    let mut newest: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut listing = repo.loc.store.list(Some(&dir));
    while let Some(meta) = listing
        .try_next()
        .await
        .map_err(|e| classify_error(&repo.loc, "list", dir.as_ref(), e))?
    {
        let rel = meta
            .location
            .as_ref()
            .strip_prefix(dir.as_ref())
            .unwrap_or("")
            .trim_start_matches('/');
        let Some((id, _)) = rel.split_once('/') else {
            continue;
        };
        if time_of_id(id).is_none() {
            continue;
        }
        let entry = newest.entry(id.to_string()).or_insert(meta.last_modified);
        *entry = (*entry).max(meta.last_modified);
    }
    let now = Utc::now();
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    Ok(newest
        .into_iter()
        .filter(|(id, _)| !good.iter().any(|m| &m.id == id) && !broken.iter().any(|b| &b.id == id))
        .filter(|(_, t)| now - *t > grace)
        .map(|(id, t)| (id, now - t))
        .collect())
}

/// On a local location: multipart staging files (`<name>#<n>`) of killed uploads and empty backup
/// folders, older than `grace`. object_store hides both from listings, so they are found on disk.
pub fn local_leftovers(repo: &Repo, grace: Duration) -> Vec<PathBuf> {
    let Some(root) = repo.loc.local_root() else {
        return Vec::new();
    };
    let cutoff = std::time::SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(std::time::UNIX_EPOCH);
    let old = |p: &std::path::Path| {
        p.symlink_metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t <= cutoff)
    };
    let mut found = Vec::new();
    for dir in crate::fsutil::entries(&root.join(&repo.cluster)).unwrap_or_default() {
        if time_of_id(&dir).is_none() {
            continue;
        }
        let folder = root.join(&repo.cluster).join(&dir);
        let names = crate::fsutil::entries(&folder).unwrap_or_default();
        let staging: Vec<PathBuf> = names
            .iter()
            .filter(|n| {
                n.rsplit_once('#')
                    .is_some_and(|(_, d)| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|n| folder.join(n))
            .filter(|p| old(p))
            .collect();
        let emptied = names.len() == staging.len();
        found.extend(staging);
        if emptied && old(&folder) {
            found.push(folder);
        }
    }
    found
}

/// Deletes the manifest first (the backup vanishes at once), then everything else of the backup.
pub async fn delete_backup(repo: &Repo, id: &str) -> Result<(), StoreError> {
    let err = |key: &str, e| classify_error(&repo.loc, "delete", key, e);
    let manifest = repo.key(id, MANIFEST_OBJECT);
    match repo.loc.store.delete(&manifest).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(err(manifest.as_ref(), e)),
    }
    let dir = repo.backup_dir(id);
    let keys: Vec<_> = repo
        .loc
        .store
        .list(Some(&dir))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .map_err(|e| err(dir.as_ref(), e))?;
    for key in keys {
        match repo.loc.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(err(key.as_ref(), e)),
        }
    }
    Ok(())
}
