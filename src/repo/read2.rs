//! Reading a format-2 backup: its objects checked to exist with their sizes before anything is
//! read, `SHA256SUMS` against the manifest, the index and the sealed sections decrypted when the
//! backup is encrypted, then one chained reader over the objects in archive order, each
//! downloaded (the next ones start while the current one is consumed, within a bound), its size
//! and SHA-256 checked at its end and, when encrypted, opened as its own age file. Each object is
//! decompressed on a thread of its own (its tar length checked too), and the chain of their tar
//! bytes goes to `archive::unpack_tar`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::layout::{INDEX_OBJECT, SUMS_OBJECT, object_path};
use super::manifest::{CatalogRef, Druid, Logical, MAX_MANIFEST_BYTES, ObjectRef};
use super::read_common::{ReadBack, Target, stream_key};
use super::{Manifest, Repo};
use crate::archive::index::{Index, MAX_LINE_BYTES};
use crate::archive::unpack::{self, Mode, Unpacked};
use crate::archive::{ArchiveError, Layout, Problem};
use crate::crypto::{CryptoError, Identities};
use crate::progress::Progress;
use crate::store::StoreError;
use crate::store::download::{self, ChunkReader};

/// HEAD requests in flight while the objects are checked.
const HEADS_IN_FLIGHT: usize = 16;
/// From a local folder, objects are read in ranges of 1 MiB, 4 in flight per object (with 4
/// objects started ahead, 16 reads): 4 MiB ranges gave the same speed on a 1 GiB restore and 47 MiB
/// more RSS. Remote stores size their own GETs (see [`download::start`]).
const OBJECT_RANGE: u64 = 1 << 20;
const OBJECT_RANGES_IN_FLIGHT: usize = 4;
/// Downloads started ahead of the object being read: at most this many objects, and beyond the
/// first of them at most this many bytes (small objects are latency-bound; memory stays bounded).
const READ_AHEAD_OBJECTS: usize = 4;
const READ_AHEAD_BYTES: u64 = 32 << 20;
/// How many problems a check lists (all are counted).
const MAX_LISTED: usize = 20;
/// Objects downloaded at once by a digest check.
const CHECKS_IN_FLIGHT: usize = 4;

/// Object `n` (from 0) of a backup, as errors name it: its position and its key.
pub fn label(n: usize, total: usize, o: &ObjectRef) -> String {
    format!("object {} of {total} ({})", n + 1, object_path(&o.name))
}

fn mismatch(count: usize, problems: Vec<Problem>) -> ArchiveError {
    ArchiveError::Mismatch {
        count,
        first: problems[0].clone(),
        problems,
    }
}

/// Checks that every object of the backup exists with the size the manifest gives, with
/// bounded-concurrency HEADs, before anything is read: a missing or cut object is one
/// [`ArchiveError::Mismatch`] naming how many and the first (in archive order).
pub async fn check_objects(repo: &Repo, manifest: &Manifest) -> anyhow::Result<()> {
    let total = manifest.objects.len();
    let mut heads = futures::stream::iter(manifest.objects.iter().enumerate())
        .map(|(n, o)| async move {
            let key = repo.object_key(&o.name);
            let found = match repo.object_size(&key).await {
                Ok(size) => Ok(Some(size)),
                Err(StoreError::MissingObject { .. }) => Ok(None),
                Err(e) => Err(e),
            };
            (n, o, found)
        })
        .buffered(HEADS_IN_FLIGHT);
    let mut problems = Vec::new();
    let mut count = 0;
    while let Some((n, o, found)) = heads.next().await {
        let found = match found? {
            Some(size) if size == o.bytes => continue,
            Some(size) => format!("{size} bytes"),
            None => "no such object".to_string(),
        };
        count += 1;
        if problems.len() < MAX_LISTED {
            problems.push(Problem {
                path: label(n, total, o),
                expected: format!("{} bytes", o.bytes),
                found,
            });
        }
    }
    if count > 0 {
        return Err(mismatch(count, problems).into());
    }
    Ok(())
}

/// Downloads a small object of the backup's folder whole, checking its size (before the download,
/// against `cap` too) and its digest.
async fn fetch_small(
    repo: &Repo,
    manifest: &Manifest,
    object: &str,
    bytes: u64,
    sha256: &str,
    cap: u64,
) -> anyhow::Result<Vec<u8>> {
    if bytes > cap {
        return Err(ArchiveError::BadManifest(format!(
            "{object} is said to be {bytes} bytes, more than the {cap} it can take"
        ))
        .into());
    }
    let key = repo.key(&manifest.id, object);
    let (body, problem) = stream_key(repo, &key, bytes, sha256, move |r| {
        let mut out = Vec::new();
        r.take(cap + 1).read_to_end(&mut out)?;
        Ok(out)
    })
    .await?;
    if let Some(mut p) = problem {
        p.path = object.to_string();
        return Err(mismatch(1, vec![p]).into());
    }
    Ok(body)
}

/// Checks `SHA256SUMS` (its size and digest as the manifest's `archive` gives them) and that it
/// lists exactly the manifest's objects, in order.
pub async fn check_sums(repo: &Repo, manifest: &Manifest) -> anyhow::Result<()> {
    let want = manifest.sha256sums();
    let a = &manifest.archive;
    let got = fetch_small(
        repo,
        manifest,
        SUMS_OBJECT,
        a.bytes,
        &a.sha256,
        want.len() as u64,
    )
    .await?;
    if got != want.as_bytes() {
        return Err(mismatch(
            1,
            vec![Problem {
                path: SUMS_OBJECT.into(),
                expected: format!("the {} objects of the manifest", manifest.objects.len()),
                found: "another list".into(),
            }],
        )
        .into());
    }
    Ok(())
}

/// Checks the stored bytes of the index and of the sealed sections (their sizes and digests)
/// without decrypting them: what a verify without a key can check of them.
pub async fn check_ciphertexts(repo: &Repo, manifest: &Manifest) -> anyhow::Result<()> {
    let mut stored = vec![(
        manifest.index.location.clone(),
        manifest.index.bytes.unwrap_or(0),
        manifest.index.sha256.clone().unwrap_or_default(),
    )];
    if let Some(s) = &manifest.sealed {
        stored.push((s.object.clone(), s.bytes, s.sha256.clone()));
    }
    for (object, bytes, sha) in stored {
        let key = repo.key(&manifest.id, &object);
        let ((), problem) = stream_key(repo, &key, bytes, &sha, |r| {
            io::copy(r, &mut io::sink())?;
            Ok(())
        })
        .await?;
        if let Some(mut p) = problem {
            p.path = object;
            return Err(mismatch(1, vec![p]).into());
        }
    }
    Ok(())
}

/// The checks of [`open`] that come before any key is used, and need none.
pub async fn check_stored(repo: &Repo, manifest: &Manifest) -> anyhow::Result<()> {
    check_objects(repo, manifest).await?;
    check_sums(repo, manifest).await
}

/// Opens a format-2 backup: its objects are checked to exist with their sizes and `SHA256SUMS`
/// against the manifest, then its index is loaded (decrypted with `keys` when encrypted) and the
/// sealed sections are put back into the manifest returned. A missing identity is
/// [`CryptoError::MissingIdentity`] before anything is read; a wrong one
/// [`CryptoError::WrongKey`] when the index is opened.
pub async fn open(
    repo: &Repo,
    manifest: &Manifest,
    keys: Option<Arc<Identities>>,
) -> anyhow::Result<(Manifest, Index)> {
    if manifest.encryption.is_some() && keys.is_none() {
        return Err(CryptoError::MissingIdentity.into());
    }
    check_stored(repo, manifest).await?;
    let index = load_index(repo, manifest, keys.clone()).await?;
    let mut out = manifest.clone();
    if let (Some(_), Some(keys)) = (&manifest.encryption, &keys) {
        unseal(repo, &mut out, keys).await?;
    }
    Ok((out, index))
}

/// The index of a format-2 backup (zstd JSON lines; age first when encrypted), spooled to a
/// temporary file under the bound its entry count sets.
pub async fn load_index(
    repo: &Repo,
    manifest: &Manifest,
    keys: Option<Arc<Identities>>,
) -> anyhow::Result<Index> {
    let encrypted = manifest.encryption.is_some();
    if encrypted && keys.is_none() {
        return Err(CryptoError::MissingIdentity.into());
    }
    let entries = manifest.index.entries;
    let key = repo.key(&manifest.id, &manifest.index.location);
    let sha = manifest.index.sha256.clone().unwrap_or_default();
    let object = manifest.index.location.clone();
    let object2 = object.clone();
    let (index, problem) = stream_key(
        repo,
        &key,
        manifest.index.bytes.unwrap_or(0),
        &sha,
        move |r| {
            let plain: Box<dyn Read + '_> = match (&keys, encrypted) {
                (Some(k), true) => Box::new(k.open(r, "the backup's index")?),
                _ => Box::new(r),
            };
            let decoder = zstd::stream::read::Decoder::new(plain)
                .map_err(|e| ArchiveError::Corrupt(format!("index {object}: {e}")))?;
            let limit = entries.saturating_mul(MAX_LINE_BYTES as u64 + 1);
            let mut spool = tempfile::tempfile().map_err(ArchiveError::Stream)?;
            let copied = io::copy(&mut decoder.take(limit + 1), &mut spool)
                .map_err(|e| ArchiveError::Corrupt(format!("index {object2}: {e}")))?;
            if copied > limit {
                return Err(ArchiveError::BadManifest(format!(
                    "the index decompresses to more than {limit} bytes, more than {entries} entries can take"
                ))
                .into());
            }
            Ok(Index::from_jsonl_file(spool)?)
        },
    )
    .await?;
    if let Some(mut p) = problem {
        p.path = manifest.index.location.clone();
        return Err(mismatch(1, vec![p]).into());
    }
    if index.len() != entries {
        return Err(ArchiveError::BadManifest(format!(
            "the index has {} entries, the manifest says {entries}",
            index.len()
        ))
        .into());
    }
    Ok(index)
}

/// What `sealed.json.age` holds: the sections an encrypted manifest leaves out.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    #[serde(default)]
    logical: Option<Logical>,
    #[serde(default)]
    druid: Option<Druid>,
    #[serde(default)]
    catalog: Option<CatalogRef>,
    #[serde(default)]
    notes: Vec<String>,
}

/// Decrypts the sealed sections and puts them back into `manifest`, checked by the manifest's
/// own rules (they are hostile input like the rest of it).
async fn unseal(repo: &Repo, manifest: &mut Manifest, keys: &Identities) -> anyhow::Result<()> {
    let Some(s) = manifest.sealed.clone() else {
        return Ok(());
    };
    let stored = fetch_small(
        repo,
        manifest,
        &s.object,
        s.bytes,
        &s.sha256,
        MAX_MANIFEST_BYTES,
    )
    .await?;
    let mut plain = Vec::new();
    keys.open(&stored[..], &s.object)?
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut plain)
        .map_err(|e| ArchiveError::Corrupt(e.to_string()))?;
    if plain.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ArchiveError::BadManifest(format!(
            "{} is too large to be lifeboat's",
            s.object
        ))
        .into());
    }
    Manifest::check_text(&plain)
        .map_err(|e| ArchiveError::BadManifest(format!("{}: {e}", s.object)))?;
    let sealed: Sealed = serde_json::from_slice(&plain)
        .map_err(|e| ArchiveError::BadManifest(format!("{}: {e}", s.object)))?;
    // The manifest's rules, applied to the manifest as it would read in the clear.
    let mut clear = manifest.clone();
    clear.encryption = None;
    clear.sealed = None;
    clear.index.location = INDEX_OBJECT.into();
    clear.logical = sealed.logical;
    clear.druid = sealed.druid;
    clear.catalog = sealed.catalog;
    clear.notes.extend(sealed.notes);
    let checked = Manifest::from_json(&clear.to_json(), Some(&manifest.id))
        .map_err(|e| ArchiveError::BadManifest(format!("{} with the manifest: {e}", s.object)))?;
    manifest.logical = checked.logical;
    manifest.druid = checked.druid;
    manifest.catalog = checked.catalog;
    manifest.notes = checked.notes;
    Ok(())
}

/// Reads the backup's objects in order as one stream into `archive::unpack`, against `index`.
pub async fn read_archive(
    repo: &Repo,
    manifest: &Manifest,
    keys: Option<Arc<Identities>>,
    index: Arc<Index>,
    layout: Layout,
    target: Target,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<ReadBack> {
    if manifest.encryption.is_some() && keys.is_none() {
        return Err(CryptoError::MissingIdentity.into());
    }
    progress.phase(
        match target {
            Target::Extract { .. } => "restore",
            Target::Verify { .. } => "verify",
        },
        Some(manifest.raw_bytes),
    );
    let keys = keys.filter(|_| manifest.encryption.is_some());
    let objects = manifest.objects.clone();
    let repo = repo.clone();
    let handle = tokio::runtime::Handle::current();
    let (result, failure) = tokio::task::spawn_blocking(move || {
        let failure = Rc::new(RefCell::new(None));
        let mut chain = Chain {
            handle,
            repo,
            objects,
            keys,
            next_start: 0,
            pending: VecDeque::new(),
            failure: failure.clone(),
        };
        let mode = match &target {
            Target::Extract { staging, owner } => Mode::Extract {
                staging,
                owner: *owner,
            },
            Target::Verify { max_problems } => Mode::Verify {
                max_problems: *max_problems,
            },
        };
        let result = unpack::unpack_tar(&mut chain, &index, mode, layout, progress.as_ref());
        // unpack reads the stream to its end; whatever it left is read so that every object's
        // digest is checked.
        let result = result.and_then(|u| {
            io::copy(&mut chain, &mut io::sink())
                .map(|_| u)
                .map_err(|e| ArchiveError::Corrupt(e.to_string()))
        });
        drop(chain);
        let failure = failure.borrow_mut().take();
        (result, failure)
    })
    .await?;
    match failure {
        Some(Failure::Store(e)) => Err(e),
        Some(Failure::Object(p)) => Ok(ReadBack {
            unpacked: Unpacked::default(),
            object_problem: Some(p),
        }),
        None => Ok(ReadBack {
            unpacked: result?,
            object_problem: None,
        }),
    }
}

/// Why the chain stopped: what the caller reports rather than what the decoder saw of it.
enum Failure {
    /// The storage failed (or the command was interrupted).
    Store(anyhow::Error),
    /// An object is not what the manifest says (cut, altered, another backup's, undecryptable).
    Object(Problem),
}

/// The backup's tar bytes, object after object. Each object is downloaded, hashed, decrypted
/// and decompressed on a thread of its own, started ahead of its turn within the read-ahead
/// bounds, so that a restore decompresses on one core while it writes on the other.
struct Chain {
    handle: tokio::runtime::Handle,
    repo: Repo,
    objects: Vec<ObjectRef>,
    keys: Option<Arc<Identities>>,
    /// The next object to start.
    next_start: usize,
    /// Started and not yet read to their end, in order (the first is being read).
    pending: VecDeque<Opening>,
    failure: Rc<RefCell<Option<Failure>>>,
}

/// One object on its thread: its tar bytes in chunks, then the thread's verdict. Dropped early
/// (the reader failed), the thread ends at its next send and its download with it.
struct Opening {
    chunks: Receiver<Vec<u8>>,
    /// Chunks read to their end go back to the thread, to be filled again.
    spent: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
    job: Option<std::thread::JoinHandle<Result<(), Failure>>>,
}

/// Tar bytes decoded ahead per object: at most this many chunks of [`CHUNK`] bytes.
const DECODED_AHEAD: usize = 8;
/// Read chunks waiting to be reused by their object's thread, at most.
const SPENT: usize = 2;
const CHUNK: usize = 128 << 10;

/// An object's stored bytes as they are read, hashed and counted.
struct Tapped {
    inner: ChunkReader,
    hasher: Sha256,
    bytes: u64,
}

struct Tap(Rc<RefCell<Tapped>>);

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut t = self.0.borrow_mut();
        let n = t.inner.read(buf)?;
        t.hasher.update(&buf[..n]);
        t.bytes += n as u64;
        Ok(n)
    }
}

impl Chain {
    /// Starts the objects after the one being read, within the read-ahead bounds.
    fn start_ahead(&mut self) {
        let mut ahead: u64 = self
            .pending
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, _)| self.objects[self.next_start - self.pending.len() + i].bytes)
            .sum();
        while self.next_start < self.objects.len() && self.pending.len() < READ_AHEAD_OBJECTS {
            let n = self.next_start;
            let o = self.objects[n].clone();
            if !self.pending.is_empty() {
                if ahead.saturating_add(o.bytes) > READ_AHEAD_BYTES {
                    break;
                }
                ahead += o.bytes;
            }
            let (reader, task) = {
                let _runtime = self.handle.enter();
                download::start(
                    &self.repo.loc,
                    &self.repo.object_key(&o.name),
                    o.bytes,
                    OBJECT_RANGE,
                    OBJECT_RANGES_IN_FLIGHT,
                    self.repo.cancel.clone(),
                )
            };
            let (tx, chunks) = sync_channel(DECODED_AHEAD);
            let (spent_tx, spent) = sync_channel(SPENT);
            let job = ObjectJob {
                handle: self.handle.clone(),
                label: label(n, self.objects.len(), &o),
                object: o,
                keys: self.keys.clone(),
                task: Some(task),
            };
            let job = std::thread::Builder::new()
                .name("lifeboat-object".into())
                .spawn(move || job.run(reader, tx, spent))
                .expect("a thread starts");
            self.pending.push_back(Opening {
                chunks,
                spent: spent_tx,
                chunk: Vec::new(),
                at: 0,
                job: Some(job),
            });
            self.next_start += 1;
        }
    }

    fn fail(&self, failure: Failure) -> io::Error {
        let message = match &failure {
            Failure::Store(e) => format!("{e:#}"),
            Failure::Object(p) => p.to_string(),
        };
        let mut slot = self.failure.borrow_mut();
        if slot.is_none() {
            *slot = Some(failure);
        }
        io::Error::new(io::ErrorKind::InvalidData, message)
    }
}

impl Read for Chain {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.failure.borrow().is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the backup's objects failed their checks",
                ));
            }
            if self.pending.is_empty() {
                self.start_ahead();
            }
            let Some(current) = self.pending.front_mut() else {
                return Ok(0);
            };
            if current.at < current.chunk.len() {
                let n = buf.len().min(current.chunk.len() - current.at);
                buf[..n].copy_from_slice(&current.chunk[current.at..current.at + n]);
                current.at += n;
                return Ok(n);
            }
            if let Ok(chunk) = current.chunks.recv() {
                let spent = std::mem::replace(&mut current.chunk, chunk);
                if spent.capacity() > 0 {
                    // Full (the thread has buffers enough) or gone: the chunk is just freed.
                    let _ = current.spent.try_send(spent);
                }
                current.at = 0;
                continue;
            }
            // The object's thread is done: its verdict, then the next object.
            let mut done = self.pending.pop_front().expect("the current object");
            let verdict = match done.job.take().map(std::thread::JoinHandle::join) {
                Some(Ok(verdict)) => verdict,
                _ => Err(Failure::Store(anyhow::anyhow!(
                    "an object's reading thread panicked"
                ))),
            };
            if let Err(failure) = verdict {
                return Err(self.fail(failure));
            }
            // Not on every read: only when an object ends can another one start.
            self.start_ahead();
        }
    }
}

/// What one object's thread needs.
struct ObjectJob {
    handle: tokio::runtime::Handle,
    object: ObjectRef,
    label: String,
    keys: Option<Arc<Identities>>,
    task: Option<JoinHandle<Result<(), StoreError>>>,
}

impl ObjectJob {
    /// Downloads, hashes, decrypts and decompresses the object, sending its tar bytes in order;
    /// then checks its size, digest and tar length. A consumer that stops (its receiver dropped)
    /// ends the thread without a verdict of its own.
    fn run(
        mut self,
        reader: ChunkReader,
        tx: SyncSender<Vec<u8>>,
        spent: Receiver<Vec<u8>>,
    ) -> Result<(), Failure> {
        let tap = Rc::new(RefCell::new(Tapped {
            inner: reader,
            hasher: Sha256::new(),
            bytes: 0,
        }));
        let top: Box<dyn Read> = match &self.keys {
            None => Box::new(Tap(tap.clone())),
            Some(keys) => match keys.open(Tap(tap.clone()), &self.label) {
                Ok(opened) => Box::new(opened),
                // A cut download looks like a cut header: the storage's word comes first.
                Err(e) => return Err(self.store_failure().unwrap_or_else(|| self.crypto(e))),
            },
        };
        let mut raw = 0u64;
        let decoded = zstd::stream::read::Decoder::new(top).and_then(|mut decoder| {
            loop {
                // A chunk the reader is done with, zeroed only when it was first made.
                let mut chunk = crate::archive::pooled_buffer(&spent, CHUNK);
                let n = crate::archive::read_up_to(&mut decoder, &mut chunk)?;
                if n == 0 {
                    return Ok(true);
                }
                chunk.truncate(n);
                raw += n as u64;
                if tx.send(chunk).is_err() {
                    return Ok(false);
                }
            }
        });
        match decoded {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => {
                return Err(self
                    .store_failure()
                    .unwrap_or_else(|| self.problem("a whole object".into(), e.to_string())));
            }
        }
        let drained = io::copy(&mut Tap(tap.clone()), &mut io::sink());
        if let Some(store) = self.store_failure() {
            return Err(store);
        }
        drained.map_err(|e| self.problem("a whole object".into(), e.to_string()))?;
        let t = Rc::try_unwrap(tap)
            .map_err(|_| Failure::Store(anyhow::anyhow!("an object's reader is still in use")))?
            .into_inner();
        let o = &self.object;
        let sha256 = hex::encode(t.hasher.finalize());
        if t.bytes != o.bytes {
            return Err(self.problem(format!("{} bytes", o.bytes), format!("{} bytes", t.bytes)));
        }
        if sha256 != o.sha256 {
            return Err(self.problem(format!("sha256 {}", o.sha256), format!("sha256 {sha256}")));
        }
        if raw != o.raw {
            return Err(self.problem(format!("{} tar bytes", o.raw), format!("{raw} tar bytes")));
        }
        Ok(())
    }

    fn problem(&self, expected: String, found: String) -> Failure {
        Failure::Object(Problem {
            path: self.label.clone(),
            expected,
            found,
        })
    }

    fn crypto(&self, e: CryptoError) -> Failure {
        match e {
            CryptoError::Corrupt { why, .. } => self.problem("an age file".into(), why),
            // Another key than the index's: not the object this backup wrote.
            other => Failure::Store(other.into()),
        }
    }

    /// The download's own error, once it has ended (asked once).
    fn store_failure(&mut self) -> Option<Failure> {
        let task = self.task.take()?;
        match self.handle.block_on(task) {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(Failure::Store(e.into())),
            Err(e) => Some(Failure::Store(e.into())),
        }
    }
}

/// What a digest check of some objects found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Objects read.
    pub read: usize,
    /// Their stored bytes.
    pub bytes: u64,
    pub problems: Vec<Problem>,
    pub problem_count: usize,
}

/// Downloads objects `which` (positions in the manifest's list) and checks each one's size and
/// digest; with `keys`, also decrypts it and decompresses its zstd frames (checksums checked) to
/// the tar bytes the manifest says.
pub async fn check_objects_data(
    repo: &Repo,
    manifest: &Manifest,
    which: &[usize],
    keys: Option<Arc<Identities>>,
    progress: &dyn Progress,
) -> anyhow::Result<Checked> {
    let total = manifest.objects.len();
    let keys = keys.filter(|_| manifest.encryption.is_some());
    let plain = manifest.encryption.is_none() || keys.is_some();
    let mut checks = futures::stream::iter(which.iter().copied())
        .map(|n| {
            let o = manifest.objects[n].clone();
            let keys = keys.clone();
            let what = label(n, total, &o);
            async move {
                let key = repo.object_key(&o.name);
                let raw = o.raw;
                let named = what.clone();
                let (content, problem) = stream_key(repo, &key, o.bytes, &o.sha256, move |r| {
                    Ok(if plain {
                        content_problem(r, keys.as_deref(), &named, raw)
                    } else {
                        io::copy(r, &mut io::sink())?;
                        None
                    })
                })
                .await?;
                let problem = problem.map(|mut p| {
                    p.path = what.clone();
                    p
                });
                let problem = problem.or(content.map(|found| Problem {
                    path: what,
                    expected: format!("zstd frames of {raw} tar bytes"),
                    found,
                }));
                anyhow::Ok((o.bytes, problem))
            }
        })
        .buffered(CHECKS_IN_FLIGHT);
    let mut out = Checked::default();
    while let Some(done) = checks.next().await {
        let (bytes, problem) = done?;
        out.read += 1;
        out.bytes += bytes;
        progress.advance(bytes);
        if let Some(p) = problem {
            out.problem_count += 1;
            if out.problems.len() < MAX_LISTED {
                out.problems.push(p);
            }
        }
    }
    Ok(out)
}

/// What is wrong with an object's content, if anything: decrypted with `keys` when given, zstd
/// frames decompressing to `raw` bytes (one per 4 MiB of tar bytes; earlier backups have one per
/// object).
pub(super) fn content_problem(
    r: &mut dyn Read,
    keys: Option<&Identities>,
    what: &str,
    raw: u64,
) -> Option<String> {
    let plain: Box<dyn Read + '_> = match keys {
        Some(k) => match k.open(r, what) {
            Ok(o) => Box::new(o),
            Err(e) => return Some(e.to_string()),
        },
        None => Box::new(r),
    };
    let decoder = match zstd::stream::read::Decoder::new(plain) {
        Ok(d) => d,
        Err(e) => return Some(format!("zstd: {e}")),
    };
    match io::copy(&mut decoder.take(raw.saturating_add(1)), &mut io::sink()) {
        Ok(n) if n == raw => None,
        Ok(n) if n > raw => Some(format!("more than {raw} tar bytes")),
        Ok(n) => Some(format!("{n} tar bytes")),
        Err(e) => Some(e.to_string()),
    }
}

/// `share` percent of `total` objects (at least one, by count), chosen at random, in order.
pub fn sample(total: usize, share: f64) -> Vec<usize> {
    let want = ((total as f64) * share / 100.0).ceil() as usize;
    let want = want.clamp(total.min(1), total);
    let mut all: Vec<usize> = (0..total).collect();
    for i in 0..want {
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd).expect("the OS has a random source");
        let j = i + (u64::from_le_bytes(rnd) % (total - i) as u64) as usize;
        all.swap(i, j);
    }
    let mut chosen = all[..want].to_vec();
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_takes_its_share_by_count_and_at_least_one() {
        assert_eq!(sample(10, 50.0).len(), 5);
        assert_eq!(sample(10, 1.0).len(), 1);
        assert_eq!(sample(3, 100.0), vec![0, 1, 2]);
        assert_eq!(sample(0, 50.0), Vec::<usize>::new());
        let s = sample(1000, 10.0);
        assert_eq!(s.len(), 100);
        assert!(s.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
        // Two samples of 10% of 1000 are not the same (a chance of about 1 in 10^140).
        assert_ne!(s, sample(1000, 10.0));
    }
}
