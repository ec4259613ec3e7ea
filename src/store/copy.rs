//! Copying a committed backup to another location: server-side when both are in the same store,
//! streamed (ranged GETs into a multipart PUT, bounded memory) otherwise. Each object's digest is
//! checked against the manifest before the copy's manifest is committed, last.

use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

use super::upload::UploadOptions;
use super::{Location, StoreError, classify_error};
use crate::archive::{ArchiveError, Problem};
use crate::repo::{Manifest, Repo};
use crate::progress::Progress;

const RANGE: u64 = 8 * 1024 * 1024;
const IN_FLIGHT: usize = 4;

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

/// Copies one object and returns the SHA-256 of what the destination now holds (server-side copies
/// are read back; streamed copies are hashed on the way). Objects above the store's single-request
/// copy limit (AWS: 5 GiB) are streamed even within one store.
pub async fn copy_object(
    src: &Location,
    from: &ObjPath,
    dst: &Location,
    to: &ObjPath,
    size: u64,
    progress: &dyn Progress,
) -> Result<String, StoreError> {
    dst.prepare_parent(to)?;
    if src.same_store(dst) && size <= super::location::server_copy_limit() {
        src.store
            .copy(from, to)
            .await
            .map_err(|e| classify_error(src, "copy", from.as_ref(), e))?;
        dst.tighten(to)?;
        progress.advance(size);
        return hash_object(dst, to, size).await;
    }
    let options = UploadOptions::for_size(size, IN_FLIGHT);
    let upload = dst
        .store
        .put_multipart(to)
        .await
        .map_err(|e| classify_error(dst, "upload", to.as_ref(), e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, options.part_size);
    let mut hasher = Sha256::new();
    let mut parts = ranges(src, from, size);
    while let Some(part) = parts.next().await {
        let result = match part {
            Ok(bytes) => writer
                .wait_for_capacity(options.parts_in_flight)
                .await
                .map(|()| bytes)
                .map_err(|e| classify_error(dst, "upload", to.as_ref(), e)),
            Err(e) => Err(e),
        };
        match result {
            Ok(bytes) => {
                hasher.update(&bytes);
                progress.advance(bytes.len() as u64);
                writer.put(bytes);
            }
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e);
            }
        }
    }
    writer
        .finish()
        .await
        .map_err(|e| classify_error(dst, "upload", to.as_ref(), e))?;
    dst.tighten(to)?;
    Ok(hex::encode(hasher.finalize()))
}

/// The object's bytes in order, by ranged GETs of 8 MiB (or `LIFEBOAT_RANGE_SIZE`), a few in flight;
/// a range whose answer breaks off is resumed where it broke (see [`super::download::start`]).
fn ranges<'a>(
    loc: &'a Location,
    key: &'a ObjPath,
    size: u64,
) -> impl futures::Stream<Item = Result<bytes::Bytes, StoreError>> + 'a {
    let range = super::location::range_size().unwrap_or(RANGE);
    futures::stream::iter(
        (0..size.div_ceil(range)).map(move |i| i * range..((i + 1) * range).min(size)),
    )
    .map(move |r| async move {
        loc.store
            .get_range(key, r)
            .await
            .map_err(|e| classify_error(loc, "download", key.as_ref(), e))
    })
    .buffered(IN_FLIGHT)
}

/// SHA-256 of an object, read with ranged GETs.
pub async fn hash_object(loc: &Location, key: &ObjPath, size: u64) -> Result<String, StoreError> {
    let mut hasher = Sha256::new();
    let mut parts = ranges(loc, key, size);
    while let Some(part) = parts.next().await {
        hasher.update(&part?);
    }
    Ok(hex::encode(hasher.finalize()))
}

impl Repo {
    /// Whether backup `id` is committed here with a manifest that parses.
    pub async fn has(&self, id: &str) -> Result<bool, StoreError> {
        match self.read_manifest(id).await {
            Ok(found) => Ok(found.is_some()),
            Err(crate::repo::list::ManifestError::Invalid(_)) => Ok(false),
            Err(crate::repo::list::ManifestError::Store(e)) => Err(e),
        }
    }
}
