//! Copying a committed backup to another location, object by object (see
//! [`crate::store::copy::copy_object`]). Each object's digest is checked against the manifest
//! before the copy's manifest is committed, last. A format-2 backup's shared objects are copied
//! only when the destination lacks them (one listing of its `objects/`), a few at a time, as
//! stored (ciphertext stays ciphertext: no key is needed); then its folder's objects.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;

use super::layout::is_object_name;
use super::{Manifest, Repo};
use crate::archive::{ArchiveError, Problem};
use crate::progress::Progress;
use crate::store::copy::copy_object;
use crate::store::{StoreError, classify_error};

/// How many objects of a format-2 backup are copied at once: server-side copies hold no bytes;
/// a streamed copy holds up to 4 ranges of 8 MiB, so two at once stay within the memory budget.
const SERVER_COPIES_IN_FLIGHT: usize = 8;
const STREAMED_COPIES_IN_FLIGHT: usize = 2;

/// A copy's objects: how many were copied and how many the destination held already.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfer {
    pub copied: u64,
    pub copied_bytes: u64,
    pub already_there: u64,
    pub already_there_bytes: u64,
}

/// What happened to one backup at one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Copied {
    /// Copied now, this many bytes.
    Now(u64),
    /// The destination already had it, committed.
    AlreadyThere,
}

/// Copies backup `manifest` from `src` to `dst` and commits it there.
/// Bytes copied are reported to `progress` (its phase is the caller's business).
pub async fn copy_backup(
    src: &Repo,
    dst: &Repo,
    manifest: &Manifest,
    progress: &dyn Progress,
) -> anyhow::Result<Copied> {
    Ok(copy_backup_counted(src, dst, manifest, progress).await?.0)
}

/// Every byte a backup needs in its location: for format 2, every object it lists (shared with
/// other backups or not) and its folder's objects; for format 1, what it stored.
pub fn needed_bytes(manifest: &Manifest) -> u64 {
    if !manifest.is_format_2() {
        return manifest.stored_bytes;
    }
    manifest.objects.iter().map(|o| o.bytes).sum::<u64>()
        + manifest.archive.bytes
        + manifest.index.bytes.unwrap_or(0)
        + manifest.sealed.as_ref().map_or(0, |s| s.bytes)
}

/// [`copy_backup`], with what happened to the format-2 objects (none for format 1).
pub async fn copy_backup_counted(
    src: &Repo,
    dst: &Repo,
    manifest: &Manifest,
    progress: &dyn Progress,
) -> anyhow::Result<(Copied, Transfer)> {
    if dst.has(&manifest.id).await? {
        return Ok((Copied::AlreadyThere, Transfer::default()));
    }
    let mut transfer = Transfer::default();
    let archive = (
        manifest.archive.object.clone(),
        manifest.archive.bytes,
        manifest.archive.sha256.clone(),
    );
    let index = (manifest.index.location != "inline").then(|| {
        (
            manifest.index.location.clone(),
            manifest.index.bytes.unwrap_or(0),
            manifest.index.sha256.clone().unwrap_or_default(),
        )
    });
    let mut objects = Vec::new();
    if manifest.is_format_2() {
        // The shared objects first, then the folder's: index, sealed, SHA256SUMS last.
        transfer = copy_shared_objects(src, dst, manifest, progress).await?;
        objects.extend(index);
        if let Some(s) = &manifest.sealed {
            objects.push((s.object.clone(), s.bytes, s.sha256.clone()));
        }
        objects.push(archive);
    } else {
        objects.push(archive);
        objects.extend(index);
    }
    let mut total = transfer.copied_bytes;
    for (object, bytes, sha256) in &objects {
        let from = src.key(&manifest.id, object);
        let to = dst.key(&manifest.id, object);
        copy_checked(src, &from, dst, &to, *bytes, sha256, progress).await?;
        total += bytes;
    }
    // What is committed is what the source holds: an encrypted backup's sealed sections stay in
    // `sealed.json.age`, whatever a reader with a key filled into its copy of the manifest.
    match dst.commit(&manifest.as_stored()).await {
        Ok(()) => Ok((Copied::Now(total), transfer)),
        // A concurrent copy of the same backup committed first: the same bytes are there.
        Err(StoreError::Other { error, .. })
            if matches!(*error, object_store::Error::AlreadyExists { .. }) =>
        {
            Ok((Copied::AlreadyThere, transfer))
        }
        Err(e) => Err(e.into()),
    }
}

/// Copies one object and checks the digest of what the destination now holds; a copy that
/// disagrees is deleted, never left where a later run could trust it.
async fn copy_checked(
    src: &Repo,
    from: &ObjPath,
    dst: &Repo,
    to: &ObjPath,
    bytes: u64,
    sha256: &str,
    progress: &dyn Progress,
) -> anyhow::Result<()> {
    let found = copy_object(&src.loc, from, &dst.loc, to, bytes, progress).await?;
    if found != sha256 {
        let _ = dst.loc.store.delete(to).await;
        let problem = Problem {
            path: to.to_string(),
            expected: format!("sha256 {sha256}"),
            found: format!("sha256 {found}"),
        };
        return Err(ArchiveError::Mismatch {
            count: 1,
            first: problem.clone(),
            problems: vec![problem],
        }
        .into());
    }
    Ok(())
}

/// The objects of format-2 `manifest` that `dst` lacks (by one streamed listing of its
/// `objects/`: an object of the right name and size is there), copied a few at a time.
async fn copy_shared_objects(
    src: &Repo,
    dst: &Repo,
    manifest: &Manifest,
    progress: &dyn Progress,
) -> anyhow::Result<Transfer> {
    // Name -> (bytes, sha256): only the manifest's objects are held, not the listing.
    let mut missing: HashMap<&str, (u64, &str)> = manifest
        .objects
        .iter()
        .map(|o| (o.name.as_str(), (o.bytes, o.sha256.as_str())))
        .collect();
    let mut transfer = Transfer::default();
    let dir = dst.objects_dir();
    let mut listing = dst.loc.store.list(Some(&dir));
    while let Some(meta) = listing
        .try_next()
        .await
        .map_err(|e| classify_error(&dst.loc, "list", dir.as_ref(), e))?
    {
        let name = meta.location.filename().unwrap_or("");
        if !is_object_name(name) || meta.location != dst.object_key(name) {
            continue;
        }
        // One of another size is not this object's copy: it is copied over.
        if missing
            .get(name)
            .is_some_and(|(bytes, _)| *bytes == meta.size)
        {
            missing.remove(name);
            transfer.already_there += 1;
            transfer.already_there_bytes += meta.size;
        }
    }
    if transfer.already_there_bytes > 0 {
        progress.advance(transfer.already_there_bytes);
    }
    let todo: Vec<(&str, u64, &str)> = manifest
        .objects
        .iter()
        .filter_map(|o| {
            missing
                .get(o.name.as_str())
                .map(|(bytes, sha)| (o.name.as_str(), *bytes, *sha))
        })
        .collect();
    let mut copies = futures::stream::iter(todo)
        .map(|(name, bytes, sha256)| async move {
            let (from, to) = (src.object_key(name), dst.object_key(name));
            copy_checked(src, &from, dst, &to, bytes, sha256, progress)
                .await
                .map(|()| bytes)
        })
        .buffer_unordered(if src.loc.same_store(&dst.loc) {
            SERVER_COPIES_IN_FLIGHT
        } else {
            STREAMED_COPIES_IN_FLIGHT
        });
    while let Some(done) = copies.next().await {
        transfer.copied_bytes += done?;
        transfer.copied += 1;
    }
    Ok(transfer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NotesOnly;
    use crate::repo::layout::SUMS_OBJECT;
    use crate::repo::prune::tests::{sha256, two_f2_backups};
    use crate::repo::write::tests::{memory_repo, store_of, write_store};

    async fn stored(repo: &Repo, key: &ObjPath) -> Vec<u8> {
        let got = repo.loc.store.get(key).await.unwrap();
        got.bytes().await.unwrap().to_vec()
    }

    #[tokio::test]
    async fn a_format_2_backup_copies_only_the_objects_missing_there() {
        let (src, dst) = (memory_repo(), memory_repo());
        let (first, second) = two_f2_backups(&src).await;
        let (copied, t) = copy_backup_counted(&src, &dst, &first, &NotesOnly)
            .await
            .unwrap();
        let all: u64 = first.objects.iter().map(|o| o.bytes).sum();
        assert_eq!((t.copied, t.copied_bytes, t.already_there), (3, all, 0));
        assert_eq!(copied, Copied::Now(needed_bytes(&first)));
        // The second reuses the first's first object: that one is not copied again.
        let (_, t) = copy_backup_counted(&src, &dst, &second, &NotesOnly)
            .await
            .unwrap();
        assert_eq!((t.copied, t.already_there), (2, 1));
        assert_eq!(t.already_there_bytes, second.objects[0].bytes);
        for m in [&first, &second] {
            assert_eq!(&dst.manifest(&m.id).await.unwrap(), m);
            for o in &m.objects {
                let bytes = stored(&dst, &dst.object_key(&o.name)).await;
                assert_eq!(sha256(&bytes), o.sha256, "{}", o.name);
            }
            let sums = stored(&dst, &dst.key(&m.id, SUMS_OBJECT)).await;
            assert_eq!(sums, m.sha256sums().into_bytes());
        }
        let (again, t) = copy_backup_counted(&src, &dst, &second, &NotesOnly)
            .await
            .unwrap();
        assert_eq!((again, t), (Copied::AlreadyThere, Transfer::default()));
    }

    #[tokio::test]
    async fn a_format_2_object_that_disagrees_is_removed_and_nothing_is_committed() {
        let (src, dst) = (memory_repo(), memory_repo());
        let (first, _) = two_f2_backups(&src).await;
        let mut m = first.clone();
        m.objects[1].sha256 = "0".repeat(64);
        let err = copy_backup(&src, &dst, &m, &NotesOnly).await.unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<ArchiveError>(),
                Some(ArchiveError::Mismatch { .. })
            ),
            "{err:#}"
        );
        assert!(!dst.has(&m.id).await.unwrap());
        assert!(matches!(
            dst.loc
                .store
                .head(&dst.object_key(&m.objects[1].name))
                .await,
            Err(object_store::Error::NotFound { .. })
        ));
        // A destination object of another size is not taken for the copy: it is copied over.
        let other = memory_repo();
        let key = other.object_key(&first.objects[1].name);
        let short = object_store::PutPayload::from_static(b"short");
        other.loc.store.put(&key, short).await.unwrap();
        let (_, t) = copy_backup_counted(&src, &other, &first, &NotesOnly)
            .await
            .unwrap();
        assert_eq!((t.copied, t.already_there), (3, 0), "{t:?}");
        assert_eq!(sha256(&stored(&other, &key).await), first.objects[1].sha256);
    }

    #[tokio::test]
    async fn a_backup_is_copied_between_locations_once() {
        let (src, dst) = (memory_repo(), memory_repo());
        for files in [3, crate::repo::layout::INLINE_INDEX_LIMIT as usize] {
            let db = store_of(files);
            let m = write_store(&src, db.path()).await;
            let copied = copy_backup(&src, &dst, &m, &NotesOnly).await.unwrap();
            assert_eq!(copied, Copied::Now(m.stored_bytes));
            assert_eq!(dst.manifest(&m.id).await.unwrap(), m);
            let again = copy_backup(&src, &dst, &m, &NotesOnly).await.unwrap();
            assert_eq!(again, Copied::AlreadyThere);
        }
        assert_eq!(dst.list().await.unwrap().0.len(), 2);
    }

    #[tokio::test]
    async fn a_copy_that_disagrees_with_the_manifest_is_removed_not_committed() {
        let (src, dst) = (memory_repo(), memory_repo());
        let db = store_of(3);
        let mut m = write_store(&src, db.path()).await;
        m.archive.sha256 = "0".repeat(64);
        let err = copy_backup(&src, &dst, &m, &NotesOnly).await.unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<ArchiveError>(),
                Some(ArchiveError::Mismatch { .. })
            ),
            "{err:#}"
        );
        assert!(!dst.has(&m.id).await.unwrap());
        let archive = dst.key(&m.id, &m.archive.object);
        assert!(matches!(
            dst.loc.store.head(&archive).await,
            Err(object_store::Error::NotFound { .. })
        ));
    }
}
