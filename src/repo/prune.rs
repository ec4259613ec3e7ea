//! What prune removes besides the backups its policy drops: folders that failed runs left without
//! a manifest, on a local folder what interrupted uploads left, and (format 2) the shared objects
//! no remaining backup references. A backup is deleted manifest first, so that it vanishes at once
//! for every reader; objects are swept after, mark (every remaining manifest) then sweep (a
//! streamed listing of `objects/`), and only when every manifest could be read.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;

use super::layout::{MANIFEST_OBJECT, OBJECTS_DIR, is_object_name, time_of_id};
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
    // Format 2: killed uploads of objects leave their staging files in `objects/<ab>/`.
    let objects = cluster.join(OBJECTS_DIR);
    for fan in crate::fsutil::entries(&objects).unwrap_or_default() {
        let folder = objects.join(&fan);
        for name in crate::fsutil::entries(&folder).unwrap_or_default() {
            let path = folder.join(&name);
            if is_staging(&name) && path.symlink_metadata().is_ok_and(|m| m.is_file()) && old(&path)
            {
                found.push(path);
            }
        }
    }
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

/// What the sweep of `objects/` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Unreferenced objects older than the grace: deleted (or, in a dry run, to be deleted).
    pub swept: u64,
    pub swept_bytes: u64,
    /// Objects a remaining manifest references.
    pub kept: u64,
    pub kept_bytes: u64,
    /// Unreferenced objects younger than the grace: maybe a backup in flight's; left alone.
    pub young: u64,
    pub young_bytes: u64,
    /// Keys under `objects/` lifeboat did not write (not `objects/<ab>/<ab..32 hex>`); left alone.
    pub foreign: u64,
    /// Why nothing was swept, when a manifest could not be read (it may reference objects).
    pub refused: Option<String>,
}

/// How many deletes of the sweep are in flight at once.
const SWEEP_DELETES: usize = 8;

/// Mark and sweep of a cluster's format-2 objects. The marks are the objects of `remaining`
/// (every committed manifest left); an object is deleted when no mark names it and its
/// `last_modified` is older than `grace`, so that the objects of a backup in flight (uploaded,
/// its manifest not yet written) are never swept. Any `unreadable` manifest refuses the whole
/// sweep: it may reference objects. `still_ours` is asked before each batch of deletes (the lock
/// may have been lost); its `Some(why)` stops the sweep with that error. `dry_run` counts only.
pub async fn sweep_objects(
    repo: &Repo,
    remaining: &[Manifest],
    unreadable: &[Broken],
    grace: Duration,
    dry_run: bool,
    still_ours: &(dyn Fn() -> Option<String> + Sync),
) -> anyhow::Result<Sweep> {
    let mut sweep = Sweep::default();
    let dir = repo.objects_dir();
    if !unreadable.is_empty() && any_object(repo, &dir).await? {
        let ids: Vec<&str> = unreadable.iter().map(|b| b.id.as_str()).collect();
        sweep.refused = Some(format!(
            "no object swept: the manifest of {} cannot be read, and it may reference objects",
            ids.join(", ")
        ));
        return Ok(sweep);
    }
    let marked: HashSet<&str> = remaining
        .iter()
        .flat_map(|m| m.objects.iter().map(|o| o.name.as_str()))
        .collect();
    let cutoff = Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let mut listing = repo.loc.store.list(Some(&dir));
    let mut doomed: Vec<ObjPath> = Vec::new();
    while let Some(meta) = listing
        .try_next()
        .await
        .map_err(|e| classify_error(&repo.loc, "list", dir.as_ref(), e))?
    {
        let name = meta.location.filename().unwrap_or("");
        if !is_object_name(name) || meta.location != repo.object_key(name) {
            sweep.foreign += 1;
            continue;
        }
        if marked.contains(name) {
            sweep.kept += 1;
            sweep.kept_bytes += meta.size;
        } else if meta.last_modified > cutoff {
            sweep.young += 1;
            sweep.young_bytes += meta.size;
        } else {
            sweep.swept += 1;
            sweep.swept_bytes += meta.size;
            if !dry_run {
                doomed.push(meta.location);
                if doomed.len() >= 256 {
                    delete_all(repo, std::mem::take(&mut doomed), still_ours).await?;
                }
            }
        }
    }
    delete_all(repo, doomed, still_ours).await?;
    Ok(sweep)
}

/// Whether `objects/` holds anything (a format-1-only cluster has nothing to sweep, so an
/// unreadable manifest refuses nothing there).
async fn any_object(repo: &Repo, dir: &ObjPath) -> anyhow::Result<bool> {
    let mut listing = repo.loc.store.list(Some(dir));
    let first = listing
        .try_next()
        .await
        .map_err(|e| classify_error(&repo.loc, "list", dir.as_ref(), e))?;
    Ok(first.is_some())
}

/// Deletes `keys`, a few at a time, once the lock is known to be still ours.
async fn delete_all(
    repo: &Repo,
    keys: Vec<ObjPath>,
    still_ours: &(dyn Fn() -> Option<String> + Sync),
) -> anyhow::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    if let Some(why) = still_ours() {
        anyhow::bail!(
            "prune of {} stopped before sweeping {} object(s): the lock may no longer be ours ({why}); run it again",
            repo.loc.url(),
            keys.len()
        );
    }
    let mut deletes = futures::stream::iter(keys)
        .map(|key| async move {
            match repo.loc.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(classify_error(&repo.loc, "delete", key.as_ref(), e)),
            }
        })
        .buffer_unordered(SWEEP_DELETES);
    while let Some(done) = deletes.next().await {
        done?;
    }
    Ok(())
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
    // A local folder stays behind its deleted objects: removed when nothing else is in it (a
    // staging file of a killed upload keeps it, for `local_leftovers` to find).
    if let Some(root) = repo.loc.local_root() {
        let _ = std::fs::remove_dir(root.join(dir.as_ref()));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use object_store::PutPayload;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::repo::layout::{
        ARCHIVE_OBJECT, INDEX_OBJECT, SUMS_OBJECT, new_backup_id, new_object_name,
    };
    use crate::repo::manifest::{FORMAT_2, ObjectKind, ObjectRef};
    use crate::repo::write::tests::{memory_repo, store_of, write_store};

    pub fn sha256(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// A new object of `bytes`, stored in `repo`'s `objects/`, as the manifest would name it.
    pub async fn put_object(repo: &Repo, kind: ObjectKind, bytes: &[u8]) -> ObjectRef {
        let name = new_object_name();
        let key = repo.object_key(&name);
        repo.loc.prepare_parent(&key).unwrap();
        let payload = PutPayload::from(bytes.to_vec());
        repo.loc.store.put(&key, payload).await.unwrap();
        ObjectRef {
            name,
            kind,
            bytes: bytes.len() as u64,
            sha256: sha256(bytes),
            raw: bytes.len() as u64,
        }
    }

    /// Commits a format-2 backup of `objects` (stored already; the tail last) taken at `at`,
    /// with its SHA256SUMS and an index object in its folder, as the writer lays them out.
    pub async fn commit_f2(repo: &Repo, objects: Vec<ObjectRef>, at: &str) -> Manifest {
        let mut m = crate::repo::manifest::tests::sample();
        m.format = FORMAT_2.into();
        m.created_at = at.parse().unwrap();
        m.finished_at = m.created_at;
        m.id = new_backup_id(m.created_at);
        m.objects = objects;
        let sums = m.sha256sums();
        let index = b"an index, whatever its content".to_vec();
        for (object, bytes) in [(SUMS_OBJECT, sums.as_bytes()), (INDEX_OBJECT, &index[..])] {
            let key = repo.key(&m.id, object);
            repo.loc.prepare_parent(&key).unwrap();
            let payload = PutPayload::from(bytes.to_vec());
            repo.loc.store.put(&key, payload).await.unwrap();
        }
        m.archive.object = SUMS_OBJECT.into();
        m.archive.bytes = sums.len() as u64;
        m.archive.sha256 = sha256(sums.as_bytes());
        m.index.location = INDEX_OBJECT.into();
        m.index.entries = 3;
        m.index.bytes = Some(index.len() as u64);
        m.index.sha256 = Some(sha256(&index));
        m.stored_bytes =
            m.objects.iter().map(|o| o.bytes).sum::<u64>() + m.archive.bytes + index.len() as u64;
        let m = Manifest::from_json(&m.to_json(), None).expect("a valid format-2 manifest");
        repo.commit(&m).await.unwrap();
        m
    }

    /// Three objects (two shared, then a tail) of a first backup, and a second backup reusing
    /// the first shared one with a new bundle and tail.
    pub async fn two_f2_backups(repo: &Repo) -> (Manifest, Manifest) {
        let a = put_object(repo, ObjectKind::Shared, b"sst one").await;
        let b = put_object(repo, ObjectKind::Shared, b"sst two, deleted later").await;
        let t1 = put_object(repo, ObjectKind::Tail, &[0; 1024]).await;
        let first = commit_f2(repo, vec![a.clone(), b, t1], "2026-11-20T01:00:00Z").await;
        let c = put_object(repo, ObjectKind::Bundle, b"small files").await;
        let t2 = put_object(repo, ObjectKind::Tail, &[0; 1024]).await;
        let second = commit_f2(repo, vec![a, c, t2], "2026-11-21T01:00:00Z").await;
        (first, second)
    }

    async fn object_names(repo: &Repo) -> std::collections::BTreeSet<String> {
        repo.loc
            .store
            .list(Some(&repo.objects_dir()))
            .map_ok(|m| m.location.filename().unwrap_or("").to_string())
            .try_collect()
            .await
            .unwrap()
    }

    fn ours() -> Option<String> {
        None
    }

    #[tokio::test]
    async fn the_sweep_deletes_only_unreferenced_objects_older_than_the_grace() {
        let repo = memory_repo();
        let (first, second) = two_f2_backups(&repo).await;
        // A stray key under objects/ that lifeboat did not write is never touched.
        let stray = repo.loc.key(&["dremio", OBJECTS_DIR, "zz", "notes.txt"]);
        let payload = PutPayload::from_static(b"x");
        repo.loc.store.put(&stray, payload).await.unwrap();
        let all = object_names(&repo).await;
        assert_eq!(all.len(), 6, "{all:?}");

        delete_backup(&repo, &first.id).await.unwrap();
        let (good, broken) = repo.list().await.unwrap();
        // Young: a backup in flight may own them.
        let young = sweep_objects(
            &repo,
            &good,
            &broken,
            Duration::from_secs(3600),
            false,
            &ours,
        )
        .await
        .unwrap();
        assert_eq!((young.swept, young.young, young.kept), (0, 2, 3));
        assert_eq!(object_names(&repo).await, all);
        // A dry run counts what it would sweep and deletes nothing.
        let dry = sweep_objects(&repo, &good, &broken, Duration::ZERO, true, &ours)
            .await
            .unwrap();
        let gone_bytes = first.objects[1].bytes + first.objects[2].bytes;
        assert_eq!(
            (dry.swept, dry.swept_bytes, dry.foreign),
            (2, gone_bytes, 1)
        );
        assert_eq!(object_names(&repo).await, all);
        let done = sweep_objects(&repo, &good, &broken, Duration::ZERO, false, &ours)
            .await
            .unwrap();
        assert_eq!(done, dry);
        let kept_bytes: u64 = second.objects.iter().map(|o| o.bytes).sum();
        assert_eq!((done.kept, done.kept_bytes), (3, kept_bytes));
        let mut left = object_names(&repo).await;
        assert!(left.remove("notes.txt"));
        let wanted: std::collections::BTreeSet<String> =
            second.objects.iter().map(|o| o.name.clone()).collect();
        assert_eq!(left, wanted);
        let again = sweep_objects(&repo, &good, &broken, Duration::ZERO, false, &ours)
            .await
            .unwrap();
        assert_eq!(again.swept, 0);
    }

    #[tokio::test]
    async fn an_unreadable_manifest_refuses_the_sweep() {
        let repo = memory_repo();
        let (first, _) = two_f2_backups(&repo).await;
        let broken = "20261122T013000Z-cccc";
        let junk = PutPayload::from_static(b"{ not json");
        repo.loc
            .store
            .put(&repo.key(broken, MANIFEST_OBJECT), junk)
            .await
            .unwrap();
        delete_backup(&repo, &first.id).await.unwrap();
        let before = object_names(&repo).await;
        let (good, unusable) = repo.list().await.unwrap();
        assert_eq!(unusable.len(), 1);
        let sweep = sweep_objects(&repo, &good, &unusable, Duration::ZERO, false, &ours)
            .await
            .unwrap();
        assert_eq!(sweep.swept, 0);
        assert!(sweep.refused.unwrap().contains(broken));
        assert_eq!(object_names(&repo).await, before);
    }

    #[tokio::test]
    async fn without_objects_an_unreadable_manifest_refuses_nothing() {
        let repo = memory_repo();
        let junk = PutPayload::from_static(b"{ not json");
        let key = repo.key("20261122T013000Z-cccc", MANIFEST_OBJECT);
        repo.loc.store.put(&key, junk).await.unwrap();
        let (good, unusable) = repo.list().await.unwrap();
        assert_eq!(unusable.len(), 1);
        let sweep = sweep_objects(&repo, &good, &unusable, Duration::ZERO, false, &ours)
            .await
            .unwrap();
        assert_eq!(
            sweep,
            Sweep::default(),
            "a format-1 cluster has nothing to sweep"
        );
    }

    #[tokio::test]
    async fn a_lost_lock_stops_the_sweep_before_it_deletes() {
        let repo = memory_repo();
        let (first, _) = two_f2_backups(&repo).await;
        delete_backup(&repo, &first.id).await.unwrap();
        let before = object_names(&repo).await;
        let (good, broken) = repo.list().await.unwrap();
        let lost = || Some("renewal failed".to_string());
        let err = sweep_objects(&repo, &good, &broken, Duration::ZERO, false, &lost)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("renewal failed"), "{err:#}");
        assert_eq!(object_names(&repo).await, before);
    }

    #[tokio::test]
    async fn on_a_local_folder_a_deleted_backup_leaves_no_folder_and_the_sweep_no_object() {
        let root = tempfile::tempdir().unwrap();
        let loc = crate::store::Location::open(
            root.path().to_str().unwrap(),
            crate::store::location::Access::Write,
        )
        .unwrap();
        let repo = Repo::new(loc, "dremio").unwrap();
        let (first, second) = two_f2_backups(&repo).await;
        delete_backup(&repo, &first.id).await.unwrap();
        assert!(!root.path().join("dremio").join(&first.id).exists());
        let (good, broken) = repo.list().await.unwrap();
        let sweep = sweep_objects(&repo, &good, &broken, Duration::ZERO, false, &ours)
            .await
            .unwrap();
        assert_eq!((sweep.swept, sweep.kept), (2, 3));
        let on_disk: Vec<String> = walkdir::WalkDir::new(root.path().join("dremio/objects"))
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let mut wanted: Vec<String> = second.objects.iter().map(|o| o.name.clone()).collect();
        let mut found = on_disk;
        wanted.sort();
        found.sort();
        assert_eq!(found, wanted);
    }

    #[tokio::test]
    async fn format_2_objects_are_neither_orphans_nor_backups() {
        let repo = memory_repo();
        let (first, second) = two_f2_backups(&repo).await;
        let (good, broken) = repo.list().await.unwrap();
        assert_eq!(good.len(), 2);
        assert!(broken.is_empty(), "{broken:?}");
        let found = orphans(&repo, &good, &broken, Duration::ZERO)
            .await
            .unwrap();
        assert!(found.is_empty(), "{found:?}");
        assert!(good.iter().any(|m| m.id == first.id) && good.iter().any(|m| m.id == second.id));
    }

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
