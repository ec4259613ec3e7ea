//! The backup archive format: one standard tar stream compressed with zstd, its per-member index,
//! digests and the safety of entries. Knows nothing of object storage, manifests or Dremio.

pub mod ahead;
pub mod beneath;
pub mod digest;
mod direct;
pub mod flush;
pub mod fragments;
pub mod frames;
pub mod guard;
pub mod index;
pub mod pack;
pub mod unpack;
pub mod writer;

use std::io::{self, Read};
use std::path::PathBuf;

use crate::error::{Classify, ExitClass};

pub use index::{EntryKind, FileEntry};

/// Reads from `r` until `buf` is full or `r` ends; how many bytes it read. Into an initialised,
/// reused buffer: `read_to_end` into a buffer's spare room zeroes that room first on every call
/// (the readers here do not implement `read_buf`), which cost 5% of a restore's CPU.
pub fn read_up_to<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A buffer of `len` bytes (zeroes or earlier data) to [`read_up_to`] into: one from `pool` when it has
/// one big enough (zeroed only where it grows), else a new zeroed one.
pub fn pooled_buffer(pool: &std::sync::mpsc::Receiver<Vec<u8>>, len: usize) -> Vec<u8> {
    match pool.try_recv() {
        Ok(mut b) if b.capacity() >= len => {
            b.resize(len, 0);
            b
        }
        _ => vec![0; len],
    }
}

/// One precise difference between what an archive holds and what its manifest says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub path: String,
    pub expected: String,
    pub found: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}, found {}",
            self.path, self.expected, self.found
        )
    }
}

/// Failures of the archive layer.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read {path}: {source}")]
    ReadSource {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} changed while it was being archived ({detail}); stop whatever writes to it and run again"
    )]
    SourceChanged { path: PathBuf, detail: String },
    #[error("{path}: file name is not valid UTF-8; rename it or move it out of the backed-up tree")]
    NonUtf8Name { path: PathBuf },
    #[error("the archive is corrupt or truncated: {0}")]
    Corrupt(String),
    #[error("the archive does not match its manifest ({count} problem(s)); first: {first}")]
    Mismatch {
        count: usize,
        first: Problem,
        problems: Vec<Problem>,
    },
    /// A member no archive written by lifeboat holds: the archive was forged or altered.
    #[error(
        "refused archive entry {path:?}: {why}. lifeboat never writes such an archive: it was altered by someone who can write to the location (nothing was written outside the staging folder); use another backup"
    )]
    UnsafeEntry { path: String, why: String },
    #[error("manifest is invalid: {0}")]
    BadManifest(String),
    #[error("cannot write {path}: {source}")]
    WriteTarget {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("archive stream failed: {0}")]
    Stream(#[source] std::io::Error),
}

impl Classify for ArchiveError {
    fn exit_class(&self) -> ExitClass {
        match self {
            ArchiveError::ReadSource { .. }
            | ArchiveError::WriteTarget { .. }
            | ArchiveError::Stream(_) => ExitClass::Internal,
            ArchiveError::SourceChanged { .. } | ArchiveError::NonUtf8Name { .. } => {
                ExitClass::Refused
            }
            ArchiveError::Corrupt(_)
            | ArchiveError::Mismatch { .. }
            | ArchiveError::UnsafeEntry { .. }
            | ArchiveError::BadManifest(_) => ExitClass::Integrity,
        }
    }
}

/// The top-level folders an archive may hold.
pub const ROOTS: [&str; 3] = ["db", "uploads", "security"];

/// What else an archive may hold at its top level: an offline backup nothing; a logical backup the
/// files its producer names (the caller, who knows the producer, says which).
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub top_level_file: fn(&str) -> bool,
}

impl Layout {
    pub const FOLDERS_ONLY: Layout = Layout {
        top_level_file: |_| false,
    };
}

/// What an archive holds, by kind and by top-level folder (recorded in the manifest).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Regular files under `db/` (the KV store).
    pub kv_files: u64,
    /// Regular files under `uploads/`.
    pub uploaded_files: u64,
    /// Regular files under `security/`.
    pub security_files: u64,
    pub directories: u64,
    #[serde(default)]
    pub symlinks: u64,
}

impl Counts {
    pub fn files(&self) -> u64 {
        self.kv_files + self.uploaded_files + self.security_files
    }

    /// Counts a regular file by where it lives: `uploads/`, `security/`, else the KV store's.
    pub fn count_file(&mut self, path: &str) {
        match path.split('/').next() {
            Some("uploads") => self.uploaded_files += 1,
            Some("security") => self.security_files += 1,
            _ => self.kv_files += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives its bytes a few at a time, with an interruption before each read.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        interrupt: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(3).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn read_up_to_fills_the_buffer_across_short_and_interrupted_reads_and_stops_at_the_end() {
        let data: Vec<u8> = (0..20).collect();
        let mut r = Trickle {
            data: data.clone(),
            at: 0,
            interrupt: false,
        };
        let mut buf = vec![0xff; 8];
        assert_eq!(read_up_to(&mut r, &mut buf).unwrap(), 8);
        assert_eq!(buf, data[..8]);
        let mut buf = vec![0xff; 16];
        assert_eq!(read_up_to(&mut r, &mut buf).unwrap(), 12);
        assert_eq!(buf[..12], data[8..]);
        assert_eq!(buf[12..], [0xff; 4], "nothing past the end is touched");
        assert_eq!(read_up_to(&mut r, &mut buf).unwrap(), 0);
        let mut failing = io::repeat(0).take(0).chain(FailingReader);
        assert!(read_up_to(&mut failing, &mut buf).is_err());
    }

    struct FailingReader;

    impl Read for FailingReader {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("broken"))
        }
    }
}
