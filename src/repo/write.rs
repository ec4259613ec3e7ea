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
    /// A Druid metadata backup's section; each table's digest is filled in from the archive
    /// index once packed.
    pub druid: Option<manifest::Druid>,
    /// The catalog's fingerprint, when the producer put one in the sources (online backups).
    pub catalog: Option<manifest::CatalogRef>,
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
        druid,
        catalog,
    } = shipment;
    for note in &notes {
        progress.note(&format!("note: {note}"));
    }
    let packed = pack_and_upload(repo, &id, sources, options, progress).await?;
    let (index_ref, files) = store_index(repo, &id, &packed.index, options.level).await?;
    let index_bytes = index_ref.bytes.unwrap_or(0);
    let druid = druid.map(|d| d.with_digests(&files)).transpose()?;
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
        druid,
        catalog,
        files,
        notes,
        objects: Vec::new(),
        encryption: None,
        sealed: None,
        base: None,
    };
    commit_while_locked(repo, lock, &manifest).await?;
    Ok(manifest)
}

/// Commits `manifest`, unless `lock` may no longer be ours (another run may have taken it, and a
/// prune there may have swept what this backup needs): shared by both formats' writers.
pub(super) async fn commit_while_locked(
    repo: &Repo,
    lock: &Lock,
    manifest: &Manifest,
) -> anyhow::Result<()> {
    if let Some(why) = lock.lost_because() {
        return Err(StoreError::LockLost {
            action: format!(
                "backup {} of cluster {} was not committed to {}",
                manifest.id,
                repo.cluster,
                repo.loc.url()
            ),
            why,
            advice: ". Run the backup again; `lifeboat prune` removes what this run left",
        }
        .into());
    }
    repo.commit(manifest).await?;
    Ok(())
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
    let (writer, rx) = upload::channel(1 << 20, 8, repo.cancel.clone());
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
    first_cause(packed, uploaded, repo.cancel.is_cancelled())
}

/// The one error that explains a failed streamed upload. A producer that fails closes its end of
/// the pipe, which the uploader reports as "stopped early"; an upload that fails makes the
/// producer see a closed pipe. So the producer's error is the cause when the uploader only saw it
/// stop, and the uploader's otherwise; a signal is reported as a signal.
fn first_cause<T>(
    produced: Result<T, ArchiveError>,
    uploaded: Result<u64, StoreError>,
    cancelled: bool,
) -> anyhow::Result<T> {
    if cancelled {
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
    let (writer, rx) = upload::channel(1 << 20, 4, repo.cancel.clone());
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
    let (sha256, bytes) = first_cause(writer_task.await?, uploaded, repo.cancel.is_cancelled())?;
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
pub(crate) mod tests {
    use std::path::Path;

    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;

    use super::*;
    use crate::error::{Classify, ExitClass};
    use crate::progress::NotesOnly;
    use crate::store::Location;
    use crate::store::location::Access;

    const OPTIONS: WriteOptions = WriteOptions {
        level: 3,
        threads: 0,
        parts_in_flight: 2,
    };

    pub fn memory_repo() -> Repo {
        let loc = Location::open("memory://bucket/p", Access::Write).unwrap();
        Repo::new(loc, "dremio").unwrap()
    }

    /// A KV store folder of `files` small files, in a new temporary folder.
    pub fn store_of(files: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("catalog")).unwrap();
        for i in 0..files {
            let name = dir.path().join("catalog").join(format!("{i:05}.sst"));
            std::fs::write(name, format!("table {i}")).unwrap();
        }
        dir
    }

    pub fn shipment_of(db: &Path) -> Shipment {
        Shipment {
            sources: vec![Source {
                root: "db",
                dir: db.to_path_buf(),
                skip_contents_of: vec![],
            }],
            notes: vec!["no uploads folder".into()],
            mode: "offline",
            cluster: manifest::Cluster {
                name: "dremio".into(),
                kind: "dremio".into(),
                version: "25.2.0".into(),
                build: None,
                edition: None,
            },
            source: manifest::Source {
                dremio_home: None,
                paths_local: String::new(),
                db: db.display().to_string(),
                uploads: None,
                security: String::new(),
                coordinator: None,
            },
            logical: None,
            druid: None,
            catalog: None,
        }
    }

    /// Writes the KV store `db` as a new backup of `repo` under its lock.
    pub async fn write_store(repo: &Repo, db: &Path) -> Manifest {
        let lock = repo.lock("backup", None).await.unwrap();
        let written = write(repo, shipment_of(db), OPTIONS, &lock, Arc::new(NotesOnly)).await;
        lock.release().await;
        written.unwrap()
    }

    async fn keys_under(repo: &Repo, dir: &object_store::path::Path) -> Vec<String> {
        let mut keys: Vec<String> = repo
            .loc
            .store
            .list(Some(dir))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }

    #[tokio::test]
    async fn a_small_backup_keeps_its_index_inline_and_is_committed_as_laid_out() {
        let repo = memory_repo();
        let db = store_of(3);
        let m = write_store(&repo, db.path()).await;
        assert_eq!(m.index.location, "inline");
        assert_eq!(m.index.entries, 5, "db/, db/catalog/ and three files");
        assert_eq!(m.files.len(), 5);
        assert_eq!((m.counts.kv_files, m.counts.directories), (3, 2));
        assert_eq!(m.stored_bytes, m.archive.bytes);
        assert_eq!(m.notes, ["no uploads folder"]);
        assert_eq!(m.cluster.name, "dremio");
        let keys = keys_under(&repo, &repo.backup_dir(&m.id)).await;
        let dir = format!("p/dremio/{}", m.id);
        assert_eq!(
            keys,
            [
                format!("{dir}/data.tar.zst"),
                format!("{dir}/manifest.json")
            ]
        );
        assert_eq!(repo.manifest(&m.id).await.unwrap(), m);
    }

    #[tokio::test]
    async fn a_large_index_is_uploaded_as_its_own_object() {
        let repo = memory_repo();
        let db = store_of(INLINE_INDEX_LIMIT as usize);
        let m = write_store(&repo, db.path()).await;
        assert_eq!(m.index.location, INDEX_OBJECT);
        assert_eq!(m.index.entries, INLINE_INDEX_LIMIT + 2);
        assert!(m.files.is_empty());
        let index_bytes = m.index.bytes.unwrap();
        assert_eq!(m.stored_bytes, m.archive.bytes + index_bytes);
        let key = repo.key(&m.id, INDEX_OBJECT);
        let stored = repo
            .loc
            .store
            .get(&key)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(stored.len() as u64, index_bytes);
        assert_eq!(
            Some(crate::archive::digest::sha256_hex(&stored)),
            m.index.sha256
        );
        let lines = zstd::decode_all(&stored[..]).unwrap();
        assert_eq!(
            lines
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count() as u64,
            m.index.entries
        );
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_committed_once_the_lock_may_no_longer_be_ours() {
        let repo = memory_repo();
        let db = store_of(2);
        let lock = repo.lock("backup", None).await.unwrap();
        repo.loc.store.delete(&repo.lock_key()).await.unwrap();
        // Paused time: the renewer runs at its next tick and finds the lock gone.
        tokio::time::sleep(crate::store::lock::ttl()).await;
        assert!(!lock.held());
        let err = write(
            &repo,
            shipment_of(db.path()),
            OPTIONS,
            &lock,
            Arc::new(NotesOnly),
        )
        .await
        .unwrap_err();
        let lost = err
            .chain()
            .find_map(|c| c.downcast_ref::<StoreError>())
            .expect("a StoreError");
        assert_eq!(lost.exit_class(), ExitClass::Refused);
        let text = format!("{err:#}");
        assert!(text.contains("of cluster dremio was not committed to memory://bucket/p: the lock may no longer be ours (the lock object was deleted by someone else). Run the backup again"), "{text}");
        assert!(repo.list().await.unwrap().0.is_empty());
    }

    #[test]
    fn the_cause_of_a_failed_stream_is_the_producer_only_when_the_upload_saw_it_stop() {
        let archive = || ArchiveError::Corrupt("producer".into());
        let store = || StoreError::MissingObject { key: "k".into() };
        let cause = |r: anyhow::Result<()>| format!("{:#}", r.unwrap_err());
        assert!(
            cause(first_cause(
                Err(archive()),
                Err(StoreError::Interrupted),
                false
            ))
            .contains("producer")
        );
        assert!(
            cause(first_cause(Err(archive()), Err(store()), false)).contains("object k is missing")
        );
        assert!(cause(first_cause(Ok(()), Err(store()), false)).contains("object k is missing"));
        assert!(cause(first_cause::<()>(Err(archive()), Ok(1), false)).contains("producer"));
        assert_eq!(first_cause(Ok(7), Ok(1), false).unwrap(), 7);
    }

    #[tokio::test]
    async fn an_index_that_cannot_be_read_is_reported_as_itself_not_as_a_signal() {
        let repo = memory_repo();
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
