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

/// On a local location: staging files (`<name>#<n>`) of killed uploads, in backup folders and
/// beside the cluster's lock (a run killed while writing `lock.json`), and empty backup folders,
/// older than `grace`. object_store hides both from listings, so they are found on disk.
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
    let cluster = root.join(&repo.cluster);
    for name in crate::fsutil::entries(&cluster).unwrap_or_default() {
        let path = cluster.join(&name);
        if is_staging(&name) && path.symlink_metadata().is_ok_and(|m| m.is_file()) && old(&path) {
            found.push(path);
            continue;
        }
        if time_of_id(&name).is_none() {
            continue;
        }
        let folder = path;
        let names = crate::fsutil::entries(&folder).unwrap_or_default();
        let staging: Vec<PathBuf> = names
            .iter()
            .filter(|n| is_staging(n))
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

/// object_store's local store writes `<name>#<n>` and renames it into place.
fn is_staging(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, d)| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
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

#[cfg(test)]
mod tests {
    use object_store::PutPayload;

    use super::*;
    use crate::repo::layout::ARCHIVE_OBJECT;
    use crate::repo::write::tests::{memory_repo, store_of, write_store};

    #[tokio::test]
    async fn orphans_are_folders_without_a_manifest_older_than_the_grace() {
        let repo = memory_repo();
        let db = store_of(2);
        let kept = write_store(&repo, db.path()).await;
        let failed = "20261201T000000Z-dead";
        let partial = repo.key(failed, ARCHIVE_OBJECT);
        let bytes = PutPayload::from_static(b"part of an archive");
        repo.loc.store.put(&partial, bytes).await.unwrap();
        let (good, broken) = repo.list().await.unwrap();
        let young = orphans(&repo, &good, &broken, Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(young.is_empty(), "{young:?}");
        let old = orphans(&repo, &good, &broken, Duration::ZERO)
            .await
            .unwrap();
        let ids: Vec<&str> = old.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, [failed], "never {}", kept.id);
    }

    #[tokio::test]
    async fn a_deleted_backup_leaves_no_object_and_deleting_it_again_is_harmless() {
        let repo = memory_repo();
        let db = store_of(crate::repo::layout::INLINE_INDEX_LIMIT as usize);
        let m = write_store(&repo, db.path()).await;
        let other = write_store(&repo, db.path()).await;
        delete_backup(&repo, &m.id).await.unwrap();
        delete_backup(&repo, &m.id).await.unwrap();
        let left: Vec<_> = repo
            .loc
            .store
            .list(Some(&repo.backup_dir(&m.id)))
            .try_collect()
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
        let (good, _) = repo.list().await.unwrap();
        let ids: Vec<&str> = good.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, [other.id.as_str()]);
    }

    #[test]
    fn on_a_local_folder_staging_files_and_emptied_folders_are_leftovers() {
        let root = tempfile::tempdir().unwrap();
        let loc = crate::store::Location::open(
            root.path().to_str().unwrap(),
            crate::store::location::Access::Write,
        )
        .unwrap();
        let repo = Repo::new(loc, "dremio").unwrap();
        let cluster = root.path().join("dremio");
        let staged = cluster.join("20261201T000000Z-aaaa");
        let emptied = cluster.join("20261201T000000Z-bbbb");
        let whole = cluster.join("20261201T000000Z-cccc");
        for dir in [&staged, &emptied, &whole, &cluster.join("not-an-id")] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(staged.join("data.tar.zst#3"), b"part").unwrap();
        std::fs::write(staged.join("manifest.json"), b"{}").unwrap();
        std::fs::write(whole.join("data.tar.zst"), b"whole").unwrap();
        // A run killed while writing its lock leaves this beside the lock.
        std::fs::write(cluster.join("lock.json#1"), b"{}").unwrap();
        std::fs::write(cluster.join("lock.json"), b"{}").unwrap();
        let mut found = local_leftovers(&repo, Duration::ZERO);
        found.sort();
        assert_eq!(
            found,
            [
                staged.join("data.tar.zst#3"),
                emptied,
                cluster.join("lock.json#1")
            ]
        );
        assert!(local_leftovers(&repo, Duration::from_secs(3600)).is_empty());
    }
}
