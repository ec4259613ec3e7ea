//! Extraction's writer thread: the thread that reads the archive (decrypting, decompressing and
//! parsing tar) hands each file's bytes here, where they are hashed, written, checked against the
//! index and given their mode and time, so that the two halves of a restore use two cores. At most
//! [`QUEUE`] buffers are in flight (bounded memory); they come back through a pool, so the reading
//! thread does not allocate per chunk.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::direct::{self, Direct};
use super::flush::{self, Flusher};
use super::{ArchiveError, Problem};

/// The largest buffer handed over.
pub const CHUNK: usize = 128 * 1024;
/// Buffers in flight at once (2 MiB at most).
const QUEUE: usize = 16;

/// What a file must turn out to be, from the index.
pub struct Expect {
    pub path: String,
    pub size: u64,
    pub sha256: Option<String>,
    /// Applied once the file is whole and checked.
    pub mode: u32,
    pub mtime: i64,
}

enum Job {
    File(File, Expect),
    Data(Vec<u8>),
    End,
}

pub struct Writer {
    tx: Option<SyncSender<Job>>,
    pool: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<Result<(), ArchiveError>>>,
}

impl Writer {
    /// Starts the thread for the files of `staging` (named in errors below it).
    pub fn start(staging: &Path) -> Writer {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let (back, pool) = sync_channel::<Vec<u8>>(QUEUE + 2);
        let root = staging.to_path_buf();
        let worker = std::thread::Builder::new()
            .name("lifeboat-extract-writer".into())
            .spawn(move || work(&root, rx, back))
            .expect("a thread starts");
        Writer {
            tx: Some(tx),
            pool,
            worker: Some(worker),
        }
    }

    /// A buffer of `left` bytes, at most [`CHUNK`] (a returned one when there is one, so that it
    /// is zeroed once, not per chunk): a small file takes a small buffer. Read into it with
    /// [`super::read_up_to`] and cut it to what was read.
    pub fn buffer(&self, left: u64) -> Vec<u8> {
        let len = usize::try_from(left).unwrap_or(CHUNK).clamp(1, CHUNK);
        super::pooled_buffer(&self.pool, len)
    }

    /// Starts a file; its bytes follow with [`Writer::data`], then [`Writer::end`].
    pub fn file(&mut self, file: File, expect: Expect) -> Result<(), ArchiveError> {
        self.send(Job::File(file, expect))
    }

    /// The next bytes of the current file (`buf` holds exactly them).
    pub fn data(&mut self, buf: Vec<u8>) -> Result<(), ArchiveError> {
        self.send(Job::Data(buf))
    }

    /// The current file is complete: the thread checks it against its [`Expect`].
    pub fn end(&mut self) -> Result<(), ArchiveError> {
        self.send(Job::End)
    }

    /// A thread that stopped did so on an error: that error, which concerns an earlier member
    /// than the one being read.
    fn send(&mut self, job: Job) -> Result<(), ArchiveError> {
        let sent = self.tx.as_ref().map(|tx| tx.send(job));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(self.join().err().unwrap_or_else(|| {
                ArchiveError::Stream(io::Error::other("the extraction writer stopped"))
            })),
        }
    }

    /// Waits for every file to be written, checked and its early flush done; the first error.
    pub fn finish(mut self) -> Result<(), ArchiveError> {
        self.join()
    }

    fn join(&mut self) -> Result<(), ArchiveError> {
        self.tx.take();
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(ArchiveError::Stream(io::Error::other(
                "the extraction writer panicked",
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // An abandoned extraction (an error while reading): the thread ends with the channel,
        // mid-file or not, and the caller discards the staging folder.
        let _ = self.join();
    }
}

/// The current file on the thread.
struct Open {
    file: File,
    expect: Expect,
    hasher: Sha256,
    size: u64,
    /// Written through [`Direct`].
    direct: bool,
}

fn work(root: &Path, jobs: Receiver<Job>, back: SyncSender<Vec<u8>>) -> Result<(), ArchiveError> {
    let flusher = Flusher::start();
    let may_go_direct = direct::supported(root);
    let mut direct = Direct::default();
    let failed = |path: &str, source: io::Error| ArchiveError::WriteTarget {
        path: root.join(path),
        source,
    };
    let mut open: Option<Open> = None;
    for job in jobs {
        match job {
            Job::File(file, expect) => {
                // The index's size (hostile or not) only picks the way: the bytes are the same.
                let goes_direct =
                    may_go_direct && expect.size >= flush::MIN_BYTES && direct.begin(&file);
                open = Some(Open {
                    file,
                    expect,
                    hasher: Sha256::new(),
                    size: 0,
                    direct: goes_direct,
                });
            }
            Job::Data(buf) => {
                if let Some(o) = open.as_mut() {
                    o.hasher.update(&buf);
                    if o.direct {
                        direct.write(&mut o.file, &buf)
                    } else {
                        o.file.write_all(&buf)
                    }
                    .map_err(|e| failed(&o.expect.path, e))?;
                    o.size += buf.len() as u64;
                }
                let _ = back.try_send(buf);
            }
            Job::End => {
                if let Some(mut o) = open.take() {
                    if o.direct {
                        direct
                            .end(&mut o.file)
                            .map_err(|e| failed(&o.expect.path, e))?;
                    }
                    check(o, &flusher).map_err(|e| match e {
                        Done::Mismatch(p) => ArchiveError::Mismatch {
                            count: 1,
                            first: p.clone(),
                            problems: vec![p],
                        },
                        Done::Io(path, source) => failed(&path, source),
                    })?;
                }
            }
        }
    }
    // The channel closed: every file sent was ended (or the run was abandoned, which the reading
    // thread reports).
    flusher
        .finish()
        .map_err(|(name, source)| failed(&name, source))
}

enum Done {
    Mismatch(Problem),
    Io(String, io::Error),
}

fn check(o: Open, flusher: &Flusher) -> Result<(), Done> {
    let want = &o.expect;
    let sha256 = hex::encode(o.hasher.finalize());
    if let Some((expected, found)) = verdict(want.size, want.sha256.as_deref(), o.size, &sha256) {
        return Err(Done::Mismatch(Problem {
            path: want.path.clone(),
            expected,
            found,
        }));
    }
    set_mode_and_mtime(&o.file, want.mode, want.mtime)
        .map_err(|e| Done::Io(want.path.clone(), e))?;
    if o.size >= flush::MIN_BYTES {
        flusher.push(o.file, o.size, o.expect.path);
    }
    Ok(())
}

/// Gives an open file (or folder) its mode and modification time.
pub fn set_mode_and_mtime(file: &File, mode: u32, mtime: i64) -> io::Result<()> {
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    let when = if mtime >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(mtime as u64)
    } else {
        SystemTime::UNIX_EPOCH
    };
    file.set_modified(when)
}

/// What a file read back differs in from what the index says (its size first, then its digest):
/// the problem's expected and found, or `None` when it is the file the index names.
pub fn verdict(
    size: u64,
    sha256: Option<&str>,
    read: u64,
    read_sha256: &str,
) -> Option<(String, String)> {
    if read != size {
        Some((format!("{size} bytes"), format!("{read} bytes")))
    } else if sha256 != Some(read_sha256) {
        Some((
            format!("sha256 {}", sha256.unwrap_or("(none)")),
            format!("sha256 {read_sha256}"),
        ))
    } else {
        None
    }
}
