//! Copying one object to another location: server-side when both are in the same store, streamed
//! (ranged GETs into a multipart PUT, bounded memory) otherwise; either way its digest is returned.

use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

use super::upload::UploadOptions;
use super::{Location, StoreError, classify_error};
use crate::progress::Progress;

const RANGE: u64 = 8 * 1024 * 1024;
const IN_FLIGHT: usize = 4;

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
