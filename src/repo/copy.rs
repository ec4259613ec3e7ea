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
