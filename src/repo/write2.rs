//! Writing a format-2 backup: one tar stream cut into objects (`archive::fragments`), each cut
//! into zstd frames that a pool compresses (`archive::frames`; then an age file when encrypting),
//! uploading while the next is packed; unchanged shared files of the base backup reused; then
//! the index, the sealed sections, `SHA256SUMS`, and the manifest, last, while the lock holds.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::Utc;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;
use tokio::task::JoinHandle;

use super::layout::{self, INDEX_OBJECT, SEALED_INDEX_OBJECT, SEALED_OBJECT, SUMS_OBJECT};
use super::manifest::{self, Manifest, ObjectKind, ObjectRef};
use super::write::{Shipment, WriteOptions};
use super::{Repo, cache};
use crate::archive::ArchiveError;
use crate::archive::digest::HashingWriter;
use crate::archive::fragments::{self, MergeJoin, NoReuse, Objects, Part};
use crate::archive::frames::{FRAME_RAW, FramePool, Ticket};
use crate::archive::index::{Index, MAX_LINE_BYTES};
use crate::crypto::{Identities, Recipients, Sealer};
use crate::progress::Progress;
use crate::store::lock::Lock;
use crate::store::upload::{self, ChunkWriter, UploadOptions};
use crate::store::{StoreError, classify_error};

/// What a format-2 backup adds to format 1's options.
pub struct Shape {
    /// Encrypt every object, the index and the sealed sections to these.
    pub recipients: Option<Recipients>,
    /// To read an encrypted base's index when the local cache does not hold it.
    pub identities: Option<Identities>,
    /// Reuse nothing.
    pub full: bool,
    /// The local index cache's folder for this location and cluster ([`cache::dir_for`]).
    pub cache: Option<std::path::PathBuf>,
    /// Copy locations (of the same cluster) that get every new object as it is uploaded, so that
    /// the copy after the commit has only reused objects they lack and the backup's folder left.
    pub copies: Vec<Repo>,
}

/// What one copy location got while the backup was packed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Teed {
    pub objects: u64,
    /// Stored bytes.
    pub bytes: u64,
    /// Why its uploads stopped (the rest of its objects were no longer sent to it).
    pub failed: Option<String>,
}

/// What a format-2 backup reused and uploaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reuse {
    pub reused_objects: u64,
    /// Stored bytes of the reused objects.
    pub reused_bytes: u64,
    pub uploaded_objects: u64,
    /// Stored bytes of the new objects (the manifest's `stored_bytes` adds index, sums, sealed).
    pub uploaded_bytes: u64,
    /// Per copy location of [`Shape::copies`], in order: what it got while packing.
    pub teed: Vec<Teed>,
}

/// Packs, uploads and indexes a shipment as a new format-2 backup of `repo`, then commits its
/// manifest, unless `lock` may no longer be ours by then.
pub async fn write(
    repo: &Repo,
    shipment: Shipment,
    options: WriteOptions,
    shape: Shape,
    lock: &Lock,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<(Manifest, Reuse)> {
    let created_at = Utc::now();
    let id = layout::new_backup_id(created_at);
    body(
        repo, shipment, options, shape, lock, progress, &id, created_at,
    )
    .await
    .with_context(|| format!("backup {id} to {}", repo.loc.url()))
}

/// The base backup: its manifest, its index spooled, and its shared objects by name.
struct Base {
    manifest: Manifest,
    index: Index,
}

#[allow(clippy::too_many_arguments)]
async fn body(
    repo: &Repo,
    shipment: Shipment,
    options: WriteOptions,
    shape: Shape,
    lock: &Lock,
    progress: Arc<dyn Progress>,
    id: &str,
    created_at: chrono::DateTime<Utc>,
) -> anyhow::Result<(Manifest, Reuse)> {
    let Shipment {
        sources,
        mut notes,
        mode,
        cluster,
        source,
        logical,
        druid,
        catalog,
    } = shipment;
    let recipients = shape.recipients.filter(|r| !r.is_empty());
    let wanted: Option<Vec<String>> = recipients.as_ref().map(Recipients::strings);
    let cache_dir = shape.cache.clone();
    let (base, why_full) = if shape.full {
        (None, None)
    } else {
        find_base(
            repo,
            wanted.as_deref(),
            shape.identities.as_ref(),
            cache_dir.as_deref(),
        )
        .await?
    };
    if let Some(why) = why_full {
        notes.push(format!("a full backup: {why}"));
    }
    for note in &notes {
        progress.note(&format!("note: {note}"));
    }
    progress.phase("backup", base.as_ref().map(|b| b.manifest.raw_bytes));
    let base_id = base.as_ref().map(|b| b.manifest.id.clone());
    let known: HashMap<String, ObjectRef> = base
        .as_ref()
        .map(|b| {
            b.manifest
                .objects
                .iter()
                .filter(|o| o.kind == ObjectKind::Shared)
                .map(|o| (o.name.clone(), o.clone()))
                .collect()
        })
        .unwrap_or_default();
    let known = Arc::new(known);
    let mut frames = FramePool::start(options.level, options.threads as usize)?;
    // A store's failure outlives the packer: it is the cause to report (exit class "storage"),
    // not the broken pipe the tar writer saw.
    let failed: Arc<Mutex<Option<StoreError>>> = Arc::default();
    let uploads = Uploads {
        handle: tokio::runtime::Handle::current(),
        repo: repo.clone(),
        recipients: recipients.clone(),
        chunk: frames.buffer(),
        frames,
        pending: VecDeque::new(),
        // Several objects upload at once, each with half the parts in flight: memory is
        // objects x parts x part size (4 x 4 x 8 MiB peaked at 170 MiB on 64 MiB tables).
        parts_in_flight: options.parts_in_flight.div_ceil(2).max(1),
        max_in_flight: options.parts_in_flight.max(2),
        in_flight: VecDeque::new(),
        held: 0,
        objects: Vec::new(),
        known: known.clone(),
        reuse: Reuse {
            teed: vec![Teed::default(); shape.copies.len()],
            ..Reuse::default()
        },
        copies: shape.copies,
        failed: failed.clone(),
    };
    let packer_progress = progress.clone();
    let packed = tokio::task::spawn_blocking(move || {
        let base_index = base.map(|b| b.index);
        let result = match &base_index {
            Some(index) => {
                let entries = index.iter()?;
                let known = known.clone();
                // Each base object stands in one place at most (a forged index could list one twice).
                let mut used = std::collections::HashSet::new();
                let mut join = MergeJoin::new(entries, move |o: &str| {
                    known.contains_key(o) && used.insert(o.to_string())
                });
                fragments::pack_fragments(&sources, uploads, &mut join, packer_progress.as_ref())
            }
            None => {
                fragments::pack_fragments(&sources, uploads, &mut NoReuse, packer_progress.as_ref())
            }
        };
        match result {
            Ok((packed, mut uploads)) => match uploads.drain() {
                // A store's failure is reported below, with its advice.
                Err(e) if !uploads.has_failed() => Err(ArchiveError::Stream(e)),
                _ => Ok((packed, uploads)),
            },
            Err(e) => Err(e),
        }
    })
    .await?;
    progress.finish();
    let (packed, mut uploads) = match packed {
        Ok(p) => p,
        Err(e) if repo.cancel.is_cancelled() => {
            drop(e);
            return Err(StoreError::Interrupted.into());
        }
        Err(e) => return Err(take_failure(&failed).map_or_else(|| e.into(), Into::into)),
    };
    if let Some(e) = take_failure(&failed) {
        return Err(e.into());
    }
    let objects = std::mem::take(&mut uploads.objects);
    let reuse = uploads.reuse.clone();
    let level = options.level;

    // The index: zstd JSON lines (kept for the cache), stored as is or sealed.
    let entries = packed.index.len();
    let druid_files = match &druid {
        Some(_) => packed.index.to_vec()?,
        None => Vec::new(),
    };
    let index_file =
        tokio::task::spawn_blocking(move || compress_index(&packed.index, level)).await??;
    let index_name = if recipients.is_some() {
        SEALED_INDEX_OBJECT
    } else {
        INDEX_OBJECT
    };
    let index_key = repo.key(id, index_name);
    let (index_sha, index_bytes) =
        upload_file(repo, &index_key, &index_file, recipients.clone()).await?;
    let druid = druid.map(|d| d.with_digests(&druid_files)).transpose()?;

    // Encrypted: the sections that name tables or files go into sealed.json.age, and so do the
    // notes (a skipped table's, a path's).
    let sealed = match &recipients {
        Some(r) => {
            let json = serde_json::to_vec(&serde_json::json!({
                "logical": logical,
                "druid": druid,
                "catalog": catalog,
                "notes": notes,
            }))?;
            let mut sealer = r.seal(Vec::new())?;
            sealer.write_all(&json)?;
            let stored = sealer.finish()?;
            let sha256 = crate::archive::digest::sha256_hex(&stored);
            let bytes = stored.len() as u64;
            put(repo, &repo.key(id, SEALED_OBJECT), stored).await?;
            let sealed = manifest::SealedRef {
                object: SEALED_OBJECT.into(),
                bytes,
                sha256,
            };
            Some(sealed)
        }
        None => None,
    };
    let sealed_bytes = sealed.as_ref().map_or(0, |s| s.bytes);
    let mut manifest = Manifest {
        format: manifest::FORMAT_2.into(),
        id: id.to_string(),
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
        stored_bytes: 0,
        archive: manifest::ArchiveRef {
            object: SUMS_OBJECT.into(),
            bytes: 0,
            sha256: String::new(),
            compression: "zstd".into(),
            level,
        },
        index: manifest::IndexRef {
            entries,
            location: index_name.into(),
            bytes: Some(index_bytes),
            sha256: Some(index_sha),
        },
        logical,
        druid,
        catalog,
        files: Vec::new(),
        notes,
        objects,
        encryption: wanted.map(|recipients| manifest::Encryption {
            scheme: crate::crypto::SCHEME.into(),
            recipients,
        }),
        sealed,
        base: base_id,
    };
    let sums = manifest.sha256sums().into_bytes();
    manifest.archive.bytes = sums.len() as u64;
    manifest.archive.sha256 = crate::archive::digest::sha256_hex(&sums);
    manifest.stored_bytes = reuse.uploaded_bytes + index_bytes + sealed_bytes + sums.len() as u64;
    put(repo, &repo.key(id, SUMS_OBJECT), sums).await?;
    manifest.finished_at = Utc::now();
    // Stored without what is sealed; returned with it, for the report.
    super::write::commit_while_locked(repo, lock, &manifest.as_stored()).await?;
    if let Some(dir) = &cache_dir {
        let mut file = index_file;
        if let Err(e) = cache::keep(dir, id, &mut file) {
            progress.note(&format!(
                "note: the index was not kept in the local cache {}: {e}",
                dir.display()
            ));
        }
    }
    Ok((manifest, reuse))
}

/// The newest committed format-2 backup with these recipients, and its index; or why there is
/// none (a note for a full backup).
async fn find_base(
    repo: &Repo,
    recipients: Option<&[String]>,
    identities: Option<&Identities>,
    cache_dir: Option<&std::path::Path>,
) -> anyhow::Result<(Option<Base>, Option<String>)> {
    let (manifests, _) = repo.list().await?;
    let Some(manifest) = manifests.into_iter().find(|m| {
        m.is_format_2() && m.encryption.as_ref().map(|e| e.recipients.as_slice()) == recipients
    }) else {
        return Ok((
            None,
            Some("no earlier format-2 backup with the same recipients in this location".into()),
        ));
    };
    if manifest.encryption.is_none() {
        let index = super::read::load_index(repo, &manifest).await?;
        return Ok((Some(Base { manifest, index }), None));
    }
    if let Some(file) = cache_dir.and_then(|d| cache::open(d, &manifest.id)) {
        let entries = manifest.index.entries;
        let index = tokio::task::spawn_blocking(move || {
            let decoder = zstd::stream::read::Decoder::new(file).map_err(ArchiveError::Stream)?;
            spool_index(decoder, entries)
        })
        .await?;
        if let Ok(index) = index
            && index.len() == manifest.index.entries
        {
            return Ok((Some(Base { manifest, index }), None));
        }
    }
    let Some(identities) = identities else {
        return Ok((
            None,
            Some(format!(
                "the index of the base backup {} is encrypted, and neither an identity (--identity, {}) nor the local index cache can open it",
                manifest.id,
                crate::crypto::IDENTITY_FILE_VAR
            )),
        ));
    };
    let stored = download(repo, &manifest).await?;
    let entries = manifest.index.entries;
    let what = format!("the index of backup {}", manifest.id);
    // Identities are not Send: open them on this thread (the index is a bounded local file).
    let opened = identities.open(stored, &what)?;
    let decoder = zstd::stream::read::Decoder::new(opened)?;
    let index = spool_index(decoder, entries)?;
    if index.len() != entries {
        return Err(ArchiveError::BadManifest(format!(
            "{what} has {} entries, its manifest says {entries}",
            index.len()
        ))
        .into());
    }
    Ok((Some(Base { manifest, index }), None))
}

/// Spools a decompressed index, bounded by what its entries can take.
fn spool_index<R: Read>(r: R, entries: u64) -> Result<Index, ArchiveError> {
    let mut spool = tempfile::tempfile().map_err(ArchiveError::Stream)?;
    let limit = entries.saturating_mul(MAX_LINE_BYTES as u64 + 1);
    let copied = io::copy(&mut r.take(limit + 1), &mut spool)
        .map_err(|e| ArchiveError::Corrupt(format!("index: {e}")))?;
    if copied > limit {
        return Err(ArchiveError::BadManifest(
            "the base index is larger than its entries can be".into(),
        ));
    }
    Index::from_jsonl_file(spool)
}

/// Downloads an encrypted base index into a temporary file, checking its size and digest.
async fn download(repo: &Repo, manifest: &Manifest) -> anyhow::Result<File> {
    let key = repo.key(&manifest.id, &manifest.index.location);
    let expected = manifest.index.bytes.unwrap_or(0);
    let got = repo
        .loc
        .store
        .get(&key)
        .await
        .map_err(|e| classify_error(&repo.loc, "download", key.as_ref(), e))?;
    let mut stream = got.into_stream();
    let mut file = tempfile::tempfile()?;
    let mut hashed = HashingWriter::new(&mut file);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| classify_error(&repo.loc, "download", key.as_ref(), e))?;
        hashed.write_all(&chunk)?;
    }
    let (_, sha256, bytes) = hashed.finish();
    if bytes != expected || Some(sha256.as_str()) != manifest.index.sha256.as_deref() {
        return Err(ArchiveError::BadManifest(format!(
            "the index of backup {} does not match its manifest's size and digest",
            manifest.id
        ))
        .into());
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// The index as zstd JSON lines in a temporary file.
fn compress_index(index: &Index, level: i32) -> Result<File, ArchiveError> {
    let file = tempfile::tempfile().map_err(ArchiveError::Stream)?;
    let mut encoder =
        zstd::stream::write::Encoder::new(file, level).map_err(ArchiveError::Stream)?;
    encoder
        .include_checksum(true)
        .map_err(ArchiveError::Stream)?;
    index.write_jsonl(&mut encoder)?;
    let mut file = encoder.finish().map_err(ArchiveError::Stream)?;
    file.seek(SeekFrom::Start(0))
        .map_err(ArchiveError::Stream)?;
    Ok(file)
}

/// Uploads a local file (sealed to `recipients` when given); returns its stored digest and size.
async fn upload_file(
    repo: &Repo,
    key: &ObjPath,
    file: &File,
    recipients: Option<Recipients>,
) -> anyhow::Result<(String, u64)> {
    let (writer, rx) = upload::channel(1 << 20, 4, repo.cancel.clone());
    let mut file = file.try_clone()?;
    let producer = tokio::task::spawn_blocking(move || -> io::Result<(String, u64)> {
        file.seek(SeekFrom::Start(0))?;
        let hashed = HashingWriter::new(writer);
        let hashed = match recipients {
            Some(r) => {
                let mut sealer = r.seal(hashed)?;
                io::copy(&mut file, &mut sealer)?;
                sealer.finish()?
            }
            None => {
                let mut hashed = hashed;
                io::copy(&mut file, &mut hashed)?;
                hashed
            }
        };
        let (writer, sha256, bytes) = hashed.finish();
        writer.finish()?;
        Ok((sha256, bytes))
    });
    let uploaded = upload::upload(&repo.loc, key, rx, UploadOptions::for_size(0, 2)).await;
    let produced = producer.await?;
    match (produced, uploaded) {
        (Ok(p), Ok(_)) => Ok(p),
        (Err(e), Err(StoreError::Interrupted)) => Err(e.into()),
        (_, Err(e)) => Err(e.into()),
        (Err(e), Ok(_)) => Err(e.into()),
    }
}

/// One small object in one PUT.
async fn put(repo: &Repo, key: &ObjPath, bytes: Vec<u8>) -> anyhow::Result<()> {
    repo.loc.prepare_parent(key)?;
    repo.loc
        .store
        .put(key, bytes.into())
        .await
        .map_err(|e| classify_error(&repo.loc, "upload", key.as_ref(), e))?;
    repo.loc.tighten(key)?;
    Ok(())
}

/// The stored side of one object: hashed, after age when encrypting.
enum Stored {
    Plain(HashingWriter<ChunkWriter>),
    Sealed(Sealer<HashingWriter<ChunkWriter>>),
}

impl Write for Stored {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Stored::Plain(w) => w.write(data),
            Stored::Sealed(w) => w.write(data),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stored::Plain(w) => w.flush(),
            Stored::Sealed(w) => w.flush(),
        }
    }
}

impl Stored {
    fn finish(self) -> io::Result<HashingWriter<ChunkWriter>> {
        match self {
            Stored::Plain(w) => Ok(w),
            Stored::Sealed(w) => w.finish(),
        }
    }
}

type UploadTask = JoinHandle<Result<u64, StoreError>>;

/// An object from its open until its upload has all its bytes: its frames compress on the pool
/// while the next object is packed, and are written into `stored` in order as they come back.
struct Pending {
    /// Its place in [`Uploads::objects`], filled in once complete.
    slot: usize,
    stored: Stored,
    uploads: InFlight,
    frames: VecDeque<Ticket>,
    /// Compressed bytes written into `stored` so far.
    written: u64,
    /// Its tar bytes, once closed.
    raw: Option<u64>,
}

/// Upload buffers all objects in flight may hold at once, at most: each holds its stored bytes, or
/// less when large ([`max_held`]). Four 64 MiB tables in flight at once held 108 MiB on S3.
const HELD_MAX: u64 = 48 << 20;

/// The most one upload holds: the part being filled, the parts in flight, two chunks queued
/// and the chunk being written.
fn max_held(part_size: usize, parts_in_flight: usize) -> u64 {
    (part_size as u64) * (parts_in_flight as u64 + 1) + (3 << 20)
}

/// What an upload that has been given `written` bytes may hold.
fn held_for(written: u64, max_held: u64) -> u64 {
    (written + (3 << 20)).min(max_held)
}

/// One object's upload, and its copies' (by their place in [`Uploads::copies`]); `held` is
/// what its buffers may hold (see [`HELD_MAX`]).
struct InFlight {
    upload: UploadTask,
    copies: Vec<(usize, UploadTask)>,
    held: u64,
    max_held: u64,
}

/// The objects of one backup: each cut into zstd frames that a pool compresses (then sealed),
/// into its own upload, a bounded number in flight.
struct Uploads {
    handle: tokio::runtime::Handle,
    repo: Repo,
    recipients: Option<Recipients>,
    parts_in_flight: usize,
    max_in_flight: usize,
    frames: FramePool,
    /// The open object's tar bytes not yet handed to the pool (at most one frame's).
    chunk: Vec<u8>,
    /// Objects whose frames are not all written yet, in archive order; the last may be open.
    pending: VecDeque<Pending>,
    /// Objects whose uploads have all their bytes, in archive order.
    in_flight: VecDeque<InFlight>,
    /// The sum of the in-flight objects' `held`.
    held: u64,
    objects: Vec<ObjectRef>,
    known: Arc<HashMap<String, ObjectRef>>,
    reuse: Reuse,
    copies: Vec<Repo>,
    /// The first store failure of an upload (shared with [`body`]).
    failed: Arc<Mutex<Option<StoreError>>>,
}

fn take_failure(failed: &Mutex<Option<StoreError>>) -> Option<StoreError> {
    failed.lock().ok().and_then(|mut f| f.take())
}

impl Uploads {
    fn fail(&mut self, e: StoreError) -> io::Error {
        let msg = e.to_string();
        if let Ok(mut failed) = self.failed.lock() {
            failed.get_or_insert(e);
        }
        io::Error::new(io::ErrorKind::BrokenPipe, msg)
    }

    /// Waits for uploads until at most `keep` are in flight, holding at most `keep_bytes`.
    fn wait_until(&mut self, keep: usize, keep_bytes: u64) -> io::Result<()> {
        while self.in_flight.len() > keep || (self.held > keep_bytes && !self.in_flight.is_empty())
        {
            let Some(next) = self.in_flight.pop_front() else {
                break;
            };
            self.finish_upload(next)?;
        }
        Ok(())
    }

    /// Waits for one object's upload and its copies'. A copy's failure is recorded (its later
    /// objects go to the copy after the commit); the backup's own fails the backup.
    fn finish_upload(&mut self, next: InFlight) -> io::Result<()> {
        self.held -= next.held;
        match self.handle.block_on(next.upload) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(self.fail(e)),
            Err(_) => return Err(self.fail(StoreError::Interrupted)),
        }
        for (i, copy) in next.copies {
            let done = match self.handle.block_on(copy) {
                Ok(done) => done,
                Err(_) => Err(StoreError::Interrupted),
            };
            let teed = &mut self.reuse.teed[i];
            match done {
                Ok(bytes) => {
                    teed.objects += 1;
                    teed.bytes += bytes;
                }
                Err(e) => {
                    teed.failed.get_or_insert_with(|| e.to_string());
                }
            }
        }
        Ok(())
    }

    /// Before a new object whose upload may hold `most`: waits (for uploads, else for frames)
    /// until fewer than `max_in_flight` objects are open, pending or uploading and their buffers
    /// leave room for it.
    fn make_room(&mut self, most: u64) -> io::Result<()> {
        loop {
            self.settle(false)?;
            let pending_held: u64 = self
                .pending
                .iter()
                .map(|p| held_for(p.written, p.uploads.max_held))
                .sum();
            let alive = self.pending.len() + self.in_flight.len();
            if alive == 0
                || (alive < self.max_in_flight
                    && self.held + pending_held <= HELD_MAX.saturating_sub(most))
            {
                return Ok(());
            }
            if let Some(next) = self.in_flight.pop_front() {
                self.finish_upload(next)?;
            } else {
                self.settle(true)?;
            }
        }
    }

    /// The error of an object's upload when it has one (the real cause of a pipe that broke),
    /// else `e`. Its writer is dropped first, so an upload still waiting for bytes ends.
    fn cause_of(&mut self, e: io::Error, pending: Pending) -> io::Error {
        let Pending {
            stored, uploads, ..
        } = pending;
        drop(stored);
        self.upload_error(e, uploads.upload)
    }

    fn upload_error(&mut self, e: io::Error, upload: UploadTask) -> io::Error {
        match self.handle.block_on(upload) {
            Ok(Err(store)) if !matches!(store, StoreError::Interrupted) => self.fail(store),
            _ => e,
        }
    }

    /// Hands the open object's gathered bytes to the pool as one frame (waiting for room).
    fn submit_chunk(&mut self) -> io::Result<()> {
        while !self.frames.has_room() {
            self.settle(true)?;
        }
        if !matches!(self.pending.back(), Some(p) if p.raw.is_none()) {
            return Err(no_object_open());
        }
        let next = self.frames.buffer();
        let raw = std::mem::replace(&mut self.chunk, next);
        let ticket = self.frames.submit(raw)?;
        if let Some(p) = self.pending.back_mut() {
            p.frames.push_back(ticket);
        }
        self.settle(false)
    }

    /// Writes the frames that are back, in archive order, into their objects' uploads, and ends
    /// each closed object whose frames are all written. With `block`, waits for the oldest frame
    /// first (when there is one).
    fn settle(&mut self, mut block: bool) -> io::Result<()> {
        loop {
            let Some(front) = self.pending.front_mut() else {
                return Ok(());
            };
            if let Some(ticket) = front.frames.pop_front() {
                let frame = if block {
                    block = false;
                    self.frames.wait(ticket)
                } else {
                    match self.frames.try_wait(ticket) {
                        Ok(frame) => frame,
                        Err(ticket) => {
                            front.frames.push_front(ticket);
                            return Ok(());
                        }
                    }
                };
                let written = frame.and_then(|out| {
                    let done = front.stored.write_all(&out);
                    let n = out.len() as u64;
                    self.frames.recycle(out);
                    done.map(|()| n)
                });
                match written {
                    Ok(n) => front.written += n,
                    Err(e) => {
                        let p = self.pending.pop_front().expect("the front object");
                        return Err(self.cause_of(e, p));
                    }
                }
                continue;
            }
            if front.raw.is_none() {
                // The open object, every frame of it written so far.
                return Ok(());
            }
            let p = self.pending.pop_front().expect("the front object");
            self.complete(p)?;
        }
    }

    /// A closed object whose frames are all written: its upload gets its end, and its place in
    /// the manifest's list its size and digest.
    fn complete(&mut self, p: Pending) -> io::Result<()> {
        let Pending {
            slot,
            stored,
            mut uploads,
            raw,
            ..
        } = p;
        let finished = stored.finish().and_then(|hashed| {
            let (writer, sha256, bytes) = hashed.finish();
            writer.finish().map(|()| (sha256, bytes))
        });
        let (sha256, bytes) = match finished {
            Ok(done) => done,
            // The upload that stopped holds the cause.
            Err(e) => return Err(self.upload_error(e, uploads.upload)),
        };
        uploads.held = held_for(bytes, uploads.max_held);
        self.held += uploads.held;
        self.in_flight.push_back(uploads);
        self.reuse.uploaded_objects += 1;
        self.reuse.uploaded_bytes += bytes;
        let o = &mut self.objects[slot];
        o.bytes = bytes;
        o.sha256 = sha256;
        o.raw = raw.unwrap_or(0);
        Ok(())
    }

    fn failed_message(&self) -> Option<String> {
        let failed = self.failed.lock().ok()?;
        failed.as_ref().map(ToString::to_string)
    }

    fn has_failed(&self) -> bool {
        self.failed_message().is_some()
    }

    /// Writes every frame and waits for every upload. A store's failure is in `failed`.
    fn drain(&mut self) -> io::Result<()> {
        while let Some(front) = self.pending.front() {
            if front.raw.is_none() && front.frames.is_empty() {
                return Err(io::Error::other(
                    "an object was never closed (a lifeboat bug)",
                ));
            }
            self.settle(true)?;
        }
        self.wait_until(0, 0)
    }
}

fn no_object_open() -> io::Error {
    io::Error::other("tar bytes with no object open (a lifeboat bug)")
}

impl Objects for Uploads {
    fn open(&mut self, part: Part, member_size: Option<u64>) -> io::Result<String> {
        if let Some(msg) = self.failed_message() {
            return Err(io::Error::other(msg));
        }
        let options = UploadOptions::for_size(member_size.unwrap_or(0), self.parts_in_flight);
        let most = max_held(options.part_size, options.parts_in_flight);
        self.make_room(most)?;
        let name = layout::new_object_name();
        let key = self.repo.object_key(&name);
        let (mut writer, rx) = upload::channel(1 << 20, 2, self.repo.cancel.clone());
        let loc = self.repo.loc.clone();
        let upload = self
            .handle
            .spawn(async move { upload::upload(&loc, &key, rx, options).await });
        // The copies take the same chunks, one part in flight each (memory: objects in flight x
        // copies x (2 chunks + 2 parts)).
        let mut copies = Vec::new();
        for (i, dst) in self.copies.iter().enumerate() {
            if self.reuse.teed[i].failed.is_some() {
                continue;
            }
            let rx = writer.also(2);
            let (loc, key) = (dst.loc.clone(), dst.object_key(&name));
            let options = UploadOptions::for_size(member_size.unwrap_or(0), 1);
            let task = self
                .handle
                .spawn(async move { upload::upload(&loc, &key, rx, options).await });
            copies.push((i, task));
        }
        let hashed = HashingWriter::new(writer);
        let stored = match &self.recipients {
            Some(r) => Stored::Sealed(r.seal(hashed)?),
            None => Stored::Plain(hashed),
        };
        let kind = match part {
            Part::Shared => ObjectKind::Shared,
            Part::Bundle => ObjectKind::Bundle,
            Part::Tail => ObjectKind::Tail,
        };
        self.objects.push(ObjectRef {
            name: name.clone(),
            kind,
            bytes: 0,
            sha256: String::new(),
            raw: 0,
        });
        self.pending.push_back(Pending {
            slot: self.objects.len() - 1,
            stored,
            uploads: InFlight {
                upload,
                copies,
                held: 0,
                max_held: most,
            },
            frames: VecDeque::new(),
            written: 0,
            raw: None,
        });
        Ok(name)
    }

    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        if !matches!(self.pending.back(), Some(p) if p.raw.is_none()) {
            return Err(no_object_open());
        }
        while !data.is_empty() {
            let n = (FRAME_RAW - self.chunk.len()).min(data.len());
            self.chunk.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.chunk.len() == FRAME_RAW {
                self.submit_chunk()?;
            }
        }
        Ok(())
    }

    fn close(&mut self, raw: u64) -> io::Result<()> {
        let empty = match self.pending.back() {
            Some(p) if p.raw.is_none() => p.frames.is_empty() && p.written == 0,
            _ => return Ok(()),
        };
        // An object with no bytes at all is still one (empty) frame.
        if !self.chunk.is_empty() || empty {
            self.submit_chunk()?;
        }
        if let Some(p) = self.pending.back_mut() {
            p.raw = Some(raw);
        }
        self.settle(false)
    }

    fn reuse(&mut self, name: &str) -> io::Result<()> {
        let Some(o) = self.known.get(name) else {
            return Err(io::Error::other(format!(
                "object {name} is not one of the base backup's"
            )));
        };
        self.reuse.reused_objects += 1;
        self.reuse.reused_bytes += o.bytes;
        self.objects.push(o.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NotesOnly;
    use crate::repo::write::tests::{memory_repo, shipment_of};

    const OPTIONS: WriteOptions = WriteOptions {
        level: 3,
        threads: 0,
        parts_in_flight: 2,
    };

    fn plain() -> Shape {
        Shape {
            recipients: None,
            identities: None,
            full: false,
            cache: None,
            copies: Vec::new(),
        }
    }

    fn db_with_tables(dir: &std::path::Path, tables: &[(&str, usize)]) {
        let cat = dir.join("catalog");
        std::fs::create_dir_all(&cat).unwrap();
        std::fs::write(cat.join("CURRENT"), "MANIFEST-000001\n").unwrap();
        for (name, len) in tables {
            let mut data = vec![0u8; *len];
            getrandom::fill(&mut data).unwrap();
            std::fs::write(cat.join(name), data).unwrap();
        }
    }

    async fn stored(repo: &Repo, key: &ObjPath) -> Vec<u8> {
        repo.loc
            .store
            .get(key)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn objects_concatenate_to_the_archive_and_unchanged_tables_are_reused() {
        let repo = memory_repo();
        let db = tempfile::tempdir().unwrap();
        db_with_tables(
            db.path(),
            &[("000010.sst", 200_000), ("000011.sst", 300_000)],
        );
        let lock = repo.lock("backup", None).await.unwrap();
        let (first, r1) = write(
            &repo,
            shipment_of(db.path()),
            OPTIONS,
            plain(),
            &lock,
            Arc::new(NotesOnly),
        )
        .await
        .unwrap();
        assert_eq!(r1.reused_objects, 0);
        assert!(first.base.is_none());
        assert_eq!(first.objects.last().unwrap().kind, ObjectKind::Tail);
        let mut all = Vec::new();
        for o in &first.objects {
            let bytes = stored(&repo, &repo.object_key(&o.name)).await;
            assert_eq!(crate::archive::digest::sha256_hex(&bytes), o.sha256);
            all.extend(bytes);
        }
        let tar_bytes = zstd::decode_all(&all[..]).unwrap();
        let mut names = Vec::new();
        for e in tar::Archive::new(&tar_bytes[..]).entries().unwrap() {
            names.push(e.unwrap().path().unwrap().display().to_string());
        }
        assert!(
            names.contains(&"db/catalog/000011.sst".to_string()),
            "{names:?}"
        );
        let sums = stored(&repo, &repo.key(&first.id, SUMS_OBJECT)).await;
        assert_eq!(String::from_utf8(sums).unwrap(), first.sha256sums());

        db_with_tables(db.path(), &[("000012.sst", 100_000)]);
        std::fs::remove_file(db.path().join("catalog/000010.sst")).unwrap();
        let (second, r2) = write(
            &repo,
            shipment_of(db.path()),
            OPTIONS,
            plain(),
            &lock,
            Arc::new(NotesOnly),
        )
        .await
        .unwrap();
        lock.release().await;
        assert_eq!(second.base.as_deref(), Some(first.id.as_str()));
        assert_eq!(r2.reused_objects, 1, "000011.sst");
        assert!(second.stored_bytes < 200_000, "{}", second.stored_bytes);
    }

    /// The frames an object's stored bytes hold, each found by its own header.
    fn frames_in(mut bytes: &[u8]) -> usize {
        let mut n = 0;
        while !bytes.is_empty() {
            let len = zstd::zstd_safe::find_frame_compressed_size(bytes).unwrap();
            bytes = &bytes[len..];
            n += 1;
        }
        n
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_table_larger_than_a_frame_is_several_frames_that_verify_and_decode_to_its_member() {
        let repo = memory_repo();
        let db = tempfile::tempdir().unwrap();
        let big = 2 * FRAME_RAW + 12_345;
        db_with_tables(db.path(), &[("000010.sst", big), ("000011.sst", 70_000)]);
        let lock = repo.lock("backup", None).await.unwrap();
        let options = WriteOptions {
            threads: 2,
            ..OPTIONS
        };
        let (m, _) = write(
            &repo,
            shipment_of(db.path()),
            options,
            plain(),
            &lock,
            Arc::new(NotesOnly),
        )
        .await
        .unwrap();
        lock.release().await;
        let shared: Vec<&ObjectRef> = m
            .objects
            .iter()
            .filter(|o| o.kind == ObjectKind::Shared)
            .collect();
        assert_eq!(shared.len(), 2, "{:?}", m.objects);
        let mut all = Vec::new();
        for (o, member, frames) in [(shared[0], big, 3), (shared[1], 70_000, 1)] {
            let bytes = stored(&repo, &repo.object_key(&o.name)).await;
            assert_eq!(frames_in(&bytes), frames, "{}", o.name);
            // One header block, the data padded to a block.
            assert_eq!(o.raw, 512 + (member as u64).div_ceil(512) * 512);
            let plain = zstd::decode_all(&bytes[..]).unwrap();
            assert_eq!(plain.len() as u64, o.raw);
            let check = super::super::read2::content_problem;
            assert_eq!(check(&mut &bytes[..], None, "it", o.raw), None);
            assert!(check(&mut &bytes[..], None, "it", o.raw + 1).is_some());
        }
        for o in &m.objects {
            all.extend(stored(&repo, &repo.object_key(&o.name)).await);
        }
        let tar_bytes = zstd::decode_all(&all[..]).unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut found = None;
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().ends_with("000010.sst") {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                found = Some(data);
            }
        }
        let on_disk = std::fs::read(db.path().join("catalog/000010.sst")).unwrap();
        assert!(found == Some(on_disk), "the big table's bytes differ");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_location_that_refuses_every_upload_fails_the_backup_with_frames_in_flight() {
        let db = tempfile::tempdir().unwrap();
        // Several objects, one of several frames: frames are out when the first upload fails.
        db_with_tables(
            db.path(),
            &[
                ("000010.sst", 3 * FRAME_RAW),
                ("000011.sst", 300_000),
                ("000012.sst", 300_000),
            ],
        );
        // A folder location whose `objects` is a file: every object's upload fails.
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::new(
            crate::store::location::Location::open(
                dir.path().to_str().unwrap(),
                crate::store::location::Access::Write,
            )
            .unwrap(),
            "dremio",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("dremio")).unwrap();
        std::fs::write(dir.path().join("dremio/objects"), b"not a folder").unwrap();
        let lock = repo.lock("backup", None).await.unwrap();
        let options = WriteOptions {
            threads: 2,
            ..OPTIONS
        };
        let failed = write(
            &repo,
            shipment_of(db.path()),
            options,
            plain(),
            &lock,
            Arc::new(NotesOnly),
        )
        .await
        .unwrap_err();
        lock.release().await;
        let chain = format!("{failed:#}");
        assert!(chain.contains("objects"), "{chain}");
        assert!(
            failed
                .chain()
                .any(|e| e.downcast_ref::<StoreError>().is_some()),
            "the store's error, with its advice: {chain}"
        );
        let (manifests, _) = repo.list().await.unwrap();
        assert!(manifests.is_empty(), "nothing committed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn copies_get_every_new_object_and_one_that_fails_does_not_fail_the_backup() {
        let repo = memory_repo();
        let db = tempfile::tempdir().unwrap();
        db_with_tables(
            db.path(),
            &[("000010.sst", 200_000), ("000011.sst", 300_000)],
        );
        let good = Repo::new(
            crate::store::location::Location::open(
                "memory://copy/p",
                crate::store::location::Access::Write,
            )
            .unwrap(),
            "dremio",
        )
        .unwrap();
        // A folder location whose `objects` is a file: every upload to it fails.
        let broken_dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(broken_dir.path().join("dremio")).unwrap();
        std::fs::write(broken_dir.path().join("dremio/objects"), b"not a folder").unwrap();
        let broken = Repo::new(
            crate::store::location::Location::open(
                broken_dir.path().to_str().unwrap(),
                crate::store::location::Access::Write,
            )
            .unwrap(),
            "dremio",
        )
        .unwrap();
        let lock = repo.lock("backup", None).await.unwrap();
        let shape = Shape {
            copies: vec![good.clone(), broken],
            ..plain()
        };
        let (m, reuse) = write(
            &repo,
            shipment_of(db.path()),
            OPTIONS,
            shape,
            &lock,
            Arc::new(NotesOnly),
        )
        .await
        .unwrap();
        lock.release().await;
        assert_eq!(reuse.teed.len(), 2);
        let (ok, failed) = (&reuse.teed[0], &reuse.teed[1]);
        assert_eq!(ok.objects, reuse.uploaded_objects);
        assert_eq!(ok.bytes, reuse.uploaded_bytes);
        assert!(ok.failed.is_none(), "{ok:?}");
        assert!(failed.failed.is_some(), "{failed:?}");
        assert_eq!(failed.objects, 0);
        for o in &m.objects {
            let here = stored(&repo, &repo.object_key(&o.name)).await;
            let there = stored(&good, &good.object_key(&o.name)).await;
            assert_eq!(here, there, "{}", o.name);
            assert_eq!(crate::archive::digest::sha256_hex(&there), o.sha256);
        }
    }
}
