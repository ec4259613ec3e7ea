//! The walk and reading ahead: the source folders are walked in a stable order on a thread of
//! their own, and a small pool reads and hashes the small files ahead of the packer, a batch of
//! members at a time, while tar appends every member in walk order. Memory is bounded: at most
//! [`SLOTS`] batches wait for the packer, each holding at most [`BATCH_BYTES`] of file contents.
//! Empty files are never opened (see `pack::append`).

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::Scope;

use sha2::{Digest, Sha256};
use walkdir::WalkDir;

use super::ArchiveError;

/// Regular files smaller than this are read ahead, whole; larger ones are streamed by the packer.
pub const AHEAD_MAX: u64 = 64 << 10;
/// A batch ends after this many members...
const BATCH_ENTRIES: usize = 256;
/// ...or once its small files hold this many bytes.
const BATCH_BYTES: u64 = 1 << 20;
/// Batches walked but not yet taken by the packer, at most.
const SLOTS: usize = 8;

/// A folder to archive under a top-level name (`db`, `uploads`, `security`).
#[derive(Debug, Clone)]
pub struct Source {
    pub root: &'static str,
    pub dir: PathBuf,
    /// Sub-folders (relative to `dir`) whose contents are skipped, e.g. Dremio's temporary checkpoints.
    pub skip_contents_of: Vec<PathBuf>,
}

/// Walks `source` in sorted order, yielding (path on disk, metadata), the root folder first.
pub fn walk(
    source: &Source,
) -> impl Iterator<Item = Result<(PathBuf, Metadata), ArchiveError>> + '_ {
    let skip: Vec<PathBuf> = source
        .skip_contents_of
        .iter()
        .map(|p| source.dir.join(p))
        .collect();
    WalkDir::new(&source.dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(move |e| {
            !e.path()
                .parent()
                .is_some_and(|parent| skip.iter().any(|s| s == parent))
        })
        .map(|entry| {
            let entry = entry.map_err(|e| {
                let path = e.path().map(Path::to_path_buf).unwrap_or_default();
                ArchiveError::ReadSource {
                    path,
                    source: e.into(),
                }
            })?;
            // A root given as a link (paths.db on another disk) is archived as the folder it
            // points to, which the walk descends into: an archive's roots are always folders.
            let meta = if entry.depth() == 0 {
                entry.path().metadata()
            } else {
                entry.path().symlink_metadata()
            }
            .map_err(|source| ArchiveError::ReadSource {
                path: entry.path().to_path_buf(),
                source,
            })?;
            Ok((entry.into_path(), meta))
        })
}

/// A member's name: `<root>/<relative path>`; with an empty root, the relative path itself (the
/// source folder's own entry then has no name and is not archived).
fn archive_name(root: &str, rel: &Path, full: &Path) -> Result<String, ArchiveError> {
    let rel = rel.to_str().ok_or_else(|| ArchiveError::NonUtf8Name {
        path: full.to_path_buf(),
    })?;
    Ok(match (root.is_empty(), rel.is_empty()) {
        (_, true) => root.to_string(),
        (true, false) => rel.to_string(),
        (false, false) => format!("{root}/{rel}"),
    })
}

pub(super) fn times_of(meta: &Metadata) -> [(i64, i64); 2] {
    [
        (meta.mtime(), meta.mtime_nsec()),
        (meta.ctime(), meta.ctime_nsec()),
    ]
}

/// One member of the walk, in walk order.
pub struct Walked {
    pub path: PathBuf,
    /// Its name in the archive (`db/...`).
    pub name: String,
    pub meta: Metadata,
    /// A small file's contents and SHA-256, read ahead; `None` for anything else.
    pub contents: Option<Result<Contents, ArchiveError>>,
}

/// A small file as read: exactly its listed size, unchanged while it was read. The files of one
/// batch share one buffer (one allocation per batch, not one per file).
pub struct Contents {
    buf: Arc<Vec<u8>>,
    start: usize,
    len: usize,
    pub sha256: String,
}

impl Contents {
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

enum Slot {
    Batch(Receiver<Vec<Walked>>),
    Failed(ArchiveError),
}

type Job = (Vec<Walked>, SyncSender<Vec<Walked>>);

/// The members of `sources` in walk order, small files already read. Dropping it stops the walk
/// and the readers (the scope then joins them).
struct ReadAhead {
    slots: Receiver<Slot>,
    current: std::vec::IntoIter<Walked>,
}

/// Calls `each` with every member of `sources` in walk order, small files read ahead; stops at the
/// first error, the walk's or its own (the walk and the readers then end, and are joined).
pub fn for_each(
    sources: &[Source],
    mut each: impl FnMut(Walked) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    std::thread::scope(|scope| ReadAhead::start(scope, sources).try_for_each(|item| each(item?)))
}

/// Readers in the pool: the cores, at least two (reads block on I/O), at most four.
fn readers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, usize::from)
        .clamp(2, 4)
}

impl ReadAhead {
    /// Starts the walk and the readers on threads of `scope`.
    fn start<'scope>(scope: &'scope Scope<'scope, '_>, sources: &'scope [Source]) -> Self {
        let (slot_tx, slots) = mpsc::sync_channel(SLOTS);
        let (job_tx, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let failed = |e: io::Error| {
            // The packer then sees the start fail, nothing else; threads already started end
            // as the job queue closes.
            let (tx, rx) = mpsc::sync_channel(1);
            let _ = tx.send(Slot::Failed(ArchiveError::Stream(e)));
            ReadAhead {
                slots: rx,
                current: Vec::new().into_iter(),
            }
        };
        for i in 0..readers() {
            let jobs = Arc::clone(&jobs);
            let spawned = std::thread::Builder::new()
                .name(format!("lifeboat-read-{i}"))
                .spawn_scoped(scope, move || read_jobs(&jobs));
            if let Err(e) = spawned {
                return failed(e);
            }
        }
        let walker = std::thread::Builder::new()
            .name("lifeboat-walk".into())
            .spawn_scoped(scope, move || walk_all(sources, &job_tx, &slot_tx));
        if let Err(e) = walker {
            return failed(e);
        }
        ReadAhead {
            slots,
            current: Vec::new().into_iter(),
        }
    }
}

impl Iterator for ReadAhead {
    type Item = Result<Walked, ArchiveError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(w) = self.current.next() {
                return Some(Ok(w));
            }
            match self.slots.recv() {
                Ok(Slot::Batch(rx)) => match rx.recv() {
                    Ok(batch) => self.current = batch.into_iter(),
                    Err(_) => {
                        return Some(Err(ArchiveError::Stream(io::Error::other(
                            "a read-ahead thread stopped (a lifeboat bug)",
                        ))));
                    }
                },
                Ok(Slot::Failed(e)) => return Some(Err(e)),
                // The walk is over.
                Err(_) => return None,
            }
        }
    }
}

fn wants_reading(meta: &Metadata) -> bool {
    meta.is_file() && meta.len() > 0 && meta.len() < AHEAD_MAX
}

/// The walker: batches members in order; a batch with small files goes to the pool, its result's
/// receiver into the packer's queue (the queue bounds the work ahead). Stops at the first error
/// or when the packer has gone.
fn walk_all(sources: &[Source], jobs: &Sender<Job>, slots: &SyncSender<Slot>) {
    let mut batch = Vec::with_capacity(BATCH_ENTRIES);
    // The bytes of the batch's small files: none, and it needs no reader.
    let mut bytes = 0u64;
    // Hands the batch on (false: the packer has gone).
    let flush = |batch: &mut Vec<Walked>, bytes: &mut u64| -> bool {
        let batch = std::mem::replace(batch, Vec::with_capacity(BATCH_ENTRIES));
        let (tx, rx) = mpsc::sync_channel(1);
        let handed = if std::mem::take(bytes) > 0 {
            jobs.send((batch, tx)).is_ok()
        } else {
            tx.send(batch).is_ok()
        };
        handed && slots.send(Slot::Batch(rx)).is_ok()
    };
    for source in sources {
        for item in walk(source) {
            let walked = item.and_then(|(path, meta)| {
                let rel = path
                    .strip_prefix(&source.dir)
                    .map_err(|_| ArchiveError::ReadSource {
                        path: path.clone(),
                        source: io::Error::other("the walk left its root"),
                    })?;
                let name = archive_name(source.root, rel, &path)?;
                Ok(Walked {
                    path,
                    name,
                    meta,
                    contents: None,
                })
            });
            let walked = match walked {
                Ok(w) => w,
                Err(e) => {
                    // The members before the error first, then the error in its place.
                    if batch.is_empty() || flush(&mut batch, &mut bytes) {
                        let _ = slots.send(Slot::Failed(e));
                    }
                    return;
                }
            };
            if walked.name.is_empty() {
                continue;
            }
            if wants_reading(&walked.meta) {
                bytes += walked.meta.len();
            }
            batch.push(walked);
            if (batch.len() >= BATCH_ENTRIES || bytes >= BATCH_BYTES)
                && !flush(&mut batch, &mut bytes)
            {
                return;
            }
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut bytes);
    }
}

/// A reader of the pool: fills in each batch's small files and hands the batch back.
fn read_jobs(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((mut batch, done)) = job else {
            return;
        };
        // Room for every small file and the byte that tells one grew.
        let room = batch
            .iter()
            .filter(|w| wants_reading(&w.meta))
            .map(|w| usize::try_from(w.meta.len()).unwrap_or(0) + 1)
            .sum();
        let mut buf = Vec::with_capacity(room);
        let mut read = Vec::new();
        for (i, w) in batch.iter().enumerate() {
            if wants_reading(&w.meta) {
                read.push((i, read_into(&w.path, &w.meta, &mut buf)));
            }
        }
        let buf = Arc::new(buf);
        for (i, r) in read {
            batch[i].contents = Some(r.map(|(start, len, sha256)| Contents {
                buf: Arc::clone(&buf),
                start,
                len,
                sha256,
            }));
        }
        // The packer may have gone: the batch is then dropped.
        let _ = done.send(batch);
    }
}

/// Reads a small file whole onto the end of `buf` and hashes it; its place in `buf` and its
/// SHA-256. As the packer's streaming read: a file that shrank, grew or was modified while it was
/// read is an error (and leaves `buf` as it was).
fn read_into(
    path: &Path,
    listed: &Metadata,
    buf: &mut Vec<u8>,
) -> Result<(usize, usize, String), ArchiveError> {
    let start = buf.len();
    let read = read_file(path, listed, buf);
    if read.is_err() {
        buf.truncate(start);
    }
    read.map(|()| {
        let sha256 = hex::encode(Sha256::digest(&buf[start..]));
        (start, buf.len() - start, sha256)
    })
}

fn read_file(path: &Path, listed: &Metadata, buf: &mut Vec<u8>) -> Result<(), ArchiveError> {
    let read_err = |source| ArchiveError::ReadSource {
        path: path.to_path_buf(),
        source,
    };
    let changed = |detail: String| ArchiveError::SourceChanged {
        path: path.to_path_buf(),
        detail,
    };
    let want = listed.len();
    let mut file = File::open(path).map_err(read_err)?;
    // One byte more than listed tells a file that grew.
    let got = (&mut file)
        .take(want + 1)
        .read_to_end(buf)
        .map_err(read_err)? as u64;
    if got < want {
        return Err(changed(format!("it shrank to {got} of {want} bytes")));
    }
    if got > want {
        return Err(changed(format!("it grew past {want} bytes")));
    }
    let now = file.metadata().map_err(read_err)?;
    if times_of(&now) != times_of(listed) {
        return Err(changed("it was modified while it was being read".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn tree(n: usize) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..n {
            let sub = dir.path().join(format!("d{:02}", i % 7));
            std::fs::create_dir_all(&sub).unwrap();
            // Empty, small and large files, mixed.
            let len = match i % 5 {
                0 => 0,
                1 => 100 << 10,
                _ => i * 37 % 9000 + 1,
            };
            let data: Vec<u8> = (0..len).map(|k| (k * 31 + i) as u8).collect();
            std::fs::write(sub.join(format!("f{i:04}")), data).unwrap();
        }
        dir
    }

    fn sources(dir: &Path) -> Vec<Source> {
        vec![Source {
            root: "db",
            dir: dir.to_path_buf(),
            skip_contents_of: vec![],
        }]
    }

    #[test]
    fn members_come_in_walk_order_with_small_files_read_and_hashed() {
        let dir = tree(1500);
        let sources = sources(dir.path());
        let walked: Vec<(PathBuf, String)> = walk(&sources[0])
            .map(|r| r.unwrap().0)
            .map(|p| {
                let rel = p.strip_prefix(dir.path()).unwrap().to_str().unwrap();
                let name = if rel.is_empty() {
                    "db".to_string()
                } else {
                    format!("db/{rel}")
                };
                (p.clone(), name)
            })
            .collect();
        let (mut read, mut streamed) = (0, 0);
        let ahead: Vec<(PathBuf, String)> = std::thread::scope(|s| {
            ReadAhead::start(s, &sources)
                .map(|w| {
                    let w = w.unwrap();
                    match w.contents {
                        Some(c) => {
                            let c = c.unwrap();
                            let on_disk = std::fs::read(&w.path).unwrap();
                            assert_eq!(c.data(), on_disk, "{}", w.name);
                            assert_eq!(c.sha256, hex::encode(Sha256::digest(&on_disk)));
                            read += 1;
                        }
                        None => {
                            assert!(!wants_reading(&w.meta), "{} was not read", w.name);
                            streamed += 1;
                        }
                    }
                    (w.path, w.name)
                })
                .collect()
        });
        assert_eq!(ahead, walked);
        assert!(
            read > 800 && streamed > 500,
            "read {read}, streamed {streamed}"
        );
    }

    #[test]
    fn a_packer_that_stops_early_stops_the_walk_and_the_readers() {
        let dir = tree(3000);
        let sources = sources(dir.path());
        let (done, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let taken = std::thread::scope(|s| ReadAhead::start(s, &sources).take(3).count());
            // The scope returned: every thread it started has ended.
            let _ = done.send(taken);
        });
        // A bound on a hang (a walker or reader left blocked on a full queue), never a wait for
        // something to happen: the scope returns as soon as its threads have ended.
        let taken = ended.recv_timeout(std::time::Duration::from_secs(120));
        assert_eq!(
            taken,
            Ok(3),
            "the walk and the readers must end with the packer"
        );
        drop(dir);
    }

    #[test]
    fn a_walk_error_comes_in_its_place_after_the_members_before_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"x").unwrap();
        let sources = vec![
            Source {
                root: "db",
                dir: dir.path().to_path_buf(),
                skip_contents_of: vec![],
            },
            Source {
                root: "uploads",
                dir: dir.path().join("missing"),
                skip_contents_of: vec![],
            },
        ];
        let items: Vec<_> = std::thread::scope(|s| ReadAhead::start(s, &sources).collect());
        assert_eq!(items.len(), 3, "root, a, then the error");
        assert!(matches!(&items[1], Ok(w) if w.name == "db/a"));
        assert!(matches!(&items[2], Err(ArchiveError::ReadSource { .. })));
    }

    #[test]
    fn a_small_file_that_changed_after_it_was_listed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let listed = std::fs::symlink_metadata(&path).unwrap();
        let mut buf = b"before".to_vec();
        let read = |buf: &mut Vec<u8>| read_into(&path, &listed, buf);
        let (start, len, sha) = read(&mut buf).unwrap();
        assert_eq!(&buf[start..start + len], b"0123456789");
        assert_eq!(sha, hex::encode(Sha256::digest(b"0123456789")));
        buf.truncate(6);

        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"more").unwrap();
        let err = read(&mut buf).err().unwrap();
        assert!(err.to_string().contains("grew past 10 bytes"), "{err}");

        std::fs::write(&path, b"0123").unwrap();
        let err = read(&mut buf).err().unwrap();
        assert!(err.to_string().contains("shrank to 4 of 10 bytes"), "{err}");

        // Same size, rewritten, its modification time set elsewhere (not left to the clock).
        std::fs::write(&path, b"abcdefghij").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000))
            .unwrap();
        let err = read(&mut buf).err().unwrap();
        assert!(err.to_string().contains("modified while"), "{err}");
        // A failed read leaves the buffer as it was.
        assert_eq!(buf, b"before");
        assert!(matches!(err, ArchiveError::SourceChanged { .. }));
    }
}
