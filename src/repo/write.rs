//! Writing a backup: its sources packed into the archive while the archive uploads, its index kept
//! inline or uploaded as its own object, then its manifest committed, last, while the lock holds.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::Repo;
use super::layout::{self, ARCHIVE_OBJECT, INDEX_OBJECT, INLINE_INDEX_LIMIT};
use super::manifest::{self, Manifest};
use crate::archive::index::Index;
use crate::archive::pack::{self, PackOptions, Source};
use crate::archive::{ArchiveError, FileEntry};
use crate::progress::Progress;
use crate::store::StoreError;
use crate::store::lock::Lock;
use crate::store::upload::{self, UploadOptions};

/// What one backup ships: the folders to archive and what its manifest says about them. The
/// producer (a cluster kind) fills it in; writing it needs to know nothing about that producer.
#[derive(Debug, Clone)]
pub struct Shipment {
    pub sources: Vec<Source>,
    /// Warnings recorded in the manifest; each is also shown as a note.
    pub notes: Vec<String>,
    /// The manifest's `mode` (`offline`, `logical`).
    pub mode: &'static str,
    pub cluster: manifest::Cluster,
    pub source: manifest::Source,
    pub logical: Option<manifest::Logical>,
}

/// How a backup is packed and uploaded.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// zstd level.
    pub level: i32,
    /// zstd worker threads.
    pub threads: u32,
    /// Upload parts in flight.
    pub parts_in_flight: usize,
}

/// Packs, uploads and indexes a shipment as a new backup of `repo`, then commits its manifest,
/// unless `lock` may no longer be ours by then.
pub async fn write(
    repo: &Repo,
    shipment: Shipment,
    options: WriteOptions,
    lock: &Lock,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<Manifest> {
    let created_at = Utc::now();
    let id = layout::new_backup_id(created_at);
    let stamp = (id.clone(), created_at);
    pack_upload_commit(repo, shipment, options, lock, progress, stamp)
        .await
        .with_context(|| format!("backup {id} to {}", repo.loc.url()))
}

/// The body of [`write`] for the backup `stamp` names (id, creation time).
async fn pack_upload_commit(
    repo: &Repo,
    shipment: Shipment,
    options: WriteOptions,
    lock: &Lock,
    progress: Arc<dyn Progress>,
    (id, created_at): (String, DateTime<Utc>),
) -> anyhow::Result<Manifest> {
    let Shipment {
        sources,
        notes,
        mode,
        cluster,
        source,
        logical,
    } = shipment;
    for note in &notes {
        progress.note(&format!("note: {note}"));
    }
    let packed = pack_and_upload(repo, &id, sources, options, progress).await?;
    let (index_ref, files) = store_index(repo, &id, &packed.index, options.level).await?;
    let index_bytes = index_ref.bytes.unwrap_or(0);
    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        id: id.clone(),
        created_at,
        finished_at: Utc::now(),
        cluster,
        mode: mode.into(),
        host: crate::host::hostname(),
        tool: manifest::Tool {
            name: "lifeboat".into(),
            version: crate::TOOL_VERSION.into(),
        },
        source,
        counts: packed.counts.clone(),
        raw_bytes: packed.raw_bytes,
        stored_bytes: packed.stored_bytes + index_bytes,
        archive: manifest::ArchiveRef {
            object: ARCHIVE_OBJECT.into(),
            bytes: packed.stored_bytes,
            sha256: packed.sha256.clone(),
            compression: "zstd".into(),
            level: options.level,
        },
        index: index_ref,
        logical,
        files,
        notes,
    };
    if let Some(why) = lock.lost_because() {
        return Err(StoreError::LockLost {
            action: format!(
                "backup {id} of cluster {} was not committed to {}",
                repo.cluster,
                repo.loc.url()
            ),
            why,
            advice: ". Run the backup again; `lifeboat prune` removes what this run left",
        }
        .into());
    }
    repo.commit(&manifest).await?;
    Ok(manifest)
}

/// Packs `sources` on a blocking thread straight into the upload of the archive object.
async fn pack_and_upload(
    repo: &Repo,
    id: &str,
    sources: Vec<Source>,
    options: WriteOptions,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<pack::Packed> {
    let (estimated_raw, _) = pack::measure(&sources)?;
    let upload_opts = UploadOptions::for_size(estimated_raw, options.parts_in_flight);
    progress.phase("backup", Some(estimated_raw));
    let archive_key = repo.key(id, ARCHIVE_OBJECT);
    let (writer, rx) = upload::channel(1 << 20, 8);
    let pack_opts = PackOptions {
        level: options.level,
        threads: options.threads,
    };
    let packer_progress = progress.clone();
    let packer = tokio::task::spawn_blocking(move || {
        let (packed, writer) = pack::pack(&sources, writer, pack_opts, packer_progress.as_ref())?;
        writer.finish().map_err(ArchiveError::Stream)?;
        Ok::<_, ArchiveError>(packed)
    });
    let uploaded = upload::upload(&repo.loc, &archive_key, rx, upload_opts).await;
    let packed = packer.await?;
    progress.finish();
    first_cause(packed, uploaded)
}

/// The one error that explains a failed streamed upload. A producer that fails closes its end of
/// the pipe, which the uploader reports as "stopped early"; an upload that fails makes the
/// producer see a closed pipe. So the producer's error is the cause when the uploader only saw it
/// stop, and the uploader's otherwise; a signal is reported as a signal.
fn first_cause<T>(
    produced: Result<T, ArchiveError>,
    uploaded: Result<u64, StoreError>,
) -> anyhow::Result<T> {
    if upload::INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(StoreError::Interrupted.into());
    }
    match (produced, uploaded) {
        (Err(e), Err(StoreError::Interrupted)) => Err(e.into()),
        (_, Err(e)) => Err(e.into()),
        (Err(e), Ok(_)) => Err(e.into()),
        (Ok(p), Ok(_)) => Ok(p),
    }
}

/// Puts small indexes inline; uploads large ones as their own zstd-compressed object.
async fn store_index(
    repo: &Repo,
    id: &str,
    index: &Index,
    level: i32,
) -> anyhow::Result<(manifest::IndexRef, Vec<FileEntry>)> {
    if index.len() <= INLINE_INDEX_LIMIT {
        let files = index.to_vec()?;
        return Ok((
            manifest::IndexRef {
                entries: index.len(),
                location: "inline".into(),
                bytes: None,
                sha256: None,
            },
            files,
        ));
    }
    let key = repo.key(id, INDEX_OBJECT);
    let (writer, rx) = upload::channel(1 << 20, 4);
    let Index::Spooled { file, entries } = index else {
        unreachable!("large indexes are spooled")
    };
    let file = file.try_clone()?;
    let entries = *entries;
    let writer_task =
        tokio::task::spawn_blocking(move || -> Result<(String, u64), ArchiveError> {
            let index = Index::Spooled { file, entries };
            let hashed = crate::archive::digest::HashingWriter::new(writer);
            let mut encoder =
                zstd::stream::write::Encoder::new(hashed, level).map_err(ArchiveError::Stream)?;
            index.write_jsonl(&mut encoder)?;
            let hashed = encoder.finish().map_err(ArchiveError::Stream)?;
            let (writer, sha256, bytes) = hashed.finish();
            writer.finish().map_err(ArchiveError::Stream)?;
            Ok((sha256, bytes))
        });
    let uploaded = upload::upload(&repo.loc, &key, rx, UploadOptions::for_size(0, 2)).await;
    let (sha256, bytes) = first_cause(writer_task.await?, uploaded)?;
    Ok((
        manifest::IndexRef {
            entries,
            location: INDEX_OBJECT.into(),
            bytes: Some(bytes),
            sha256: Some(sha256),
        },
        Vec::new(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Classify, ExitClass};
    use crate::store::Location;
    use crate::store::location::Access;

    #[tokio::test]
    async fn an_index_that_cannot_be_read_is_reported_as_itself_not_as_a_signal() {
        let loc = Location::open("memory://bucket/p", Access::Write).unwrap();
        let repo = Repo::new(loc, "dremio").unwrap();
        let dir = tempfile::tempdir().unwrap();
        // Opened for writing only: every read of it fails, as a broken spool would.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.path().join("spool"))
            .unwrap();
        let index = Index::Spooled {
            file,
            entries: INLINE_INDEX_LIMIT + 1,
        };
        let err = store_index(&repo, "20261201T000000Z-abcd", &index, 3)
            .await
            .unwrap_err();
        let class = err
            .chain()
            .find_map(|c| c.downcast_ref::<ArchiveError>().map(|e| e.exit_class()));
        assert!(class.is_some(), "the index error itself: {err:#}");
        assert_ne!(class, Some(ExitClass::Interrupted));
        assert!(!format!("{err:#}").contains("signal"), "{err:#}");
    }
}
