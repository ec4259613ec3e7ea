//! Copying a committed backup to another location, object by object (see
//! [`crate::store::copy::copy_object`]). Each object's digest is checked against the manifest
//! before the copy's manifest is committed, last.

use object_store::ObjectStoreExt;

use super::{Manifest, Repo};
use crate::archive::{ArchiveError, Problem};
use crate::progress::Progress;
use crate::store::StoreError;
use crate::store::copy::copy_object;

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
    if dst.has(&manifest.id).await? {
        return Ok(Copied::AlreadyThere);
    }
    let mut objects = vec![(
        manifest.archive.object.clone(),
        manifest.archive.bytes,
        manifest.archive.sha256.clone(),
    )];
    if manifest.index.location != "inline" {
        objects.push((
            manifest.index.location.clone(),
            manifest.index.bytes.unwrap_or(0),
            manifest.index.sha256.clone().unwrap_or_default(),
        ));
    }
    let mut total = 0;
    for (object, bytes, sha256) in &objects {
        let from = src.key(&manifest.id, object);
        let to = dst.key(&manifest.id, object);
        let found = copy_object(&src.loc, &from, &dst.loc, &to, *bytes, progress).await?;
        if &found != sha256 {
            // Never leave a copy that disagrees with its manifest where a later run could trust it.
            let _ = dst.loc.store.delete(&to).await;
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
        total += bytes;
    }
    match dst.commit(manifest).await {
        Ok(()) => Ok(Copied::Now(total)),
        // A concurrent copy of the same backup committed first: the same bytes are there.
        Err(StoreError::Other { error, .. })
            if matches!(*error, object_store::Error::AlreadyExists { .. }) =>
        {
            Ok(Copied::AlreadyThere)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NotesOnly;
    use crate::repo::write::tests::{memory_repo, store_of, write_store};

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
