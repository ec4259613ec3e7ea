//! The per-file index: one entry per archive member, in archive order, with its SHA-256.
//! Written to a spool file while packing so memory never grows with the number of files.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

use super::ArchiveError;

/// What kind of member an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// One archive member as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    pub mode: u32,
    pub mtime: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Format 2: the shared object that holds this file alone (`None` for members of bundles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl FileEntry {
    /// The top-level folder (`db`, `uploads`, `security`) the entry lives in.
    pub fn root(&self) -> &str {
        self.path.split('/').next().unwrap_or("")
    }
}

/// Index entries spooled to an anonymous temporary file as JSON lines.
pub struct IndexSpool {
    out: BufWriter<File>,
    entries: u64,
}

impl IndexSpool {
    pub fn new() -> io::Result<Self> {
        Ok(IndexSpool {
            out: BufWriter::new(tempfile::tempfile()?),
            entries: 0,
        })
    }

    pub fn push(&mut self, entry: &FileEntry) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, entry)?;
        self.out.write_all(b"\n")?;
        self.entries += 1;
        Ok(())
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Finishes writing and returns the spool as a readable index.
    pub fn into_index(self) -> io::Result<Index> {
        let mut file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Index::Spooled {
            file,
            entries: self.entries,
        })
    }
}

/// The longest index line a reader accepts: an entry whose 4 KiB path and 4 KiB link target have
/// every byte escaped (`\u00XX`) takes 49 KiB.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// The non-empty lines of an index, each read into one reused buffer of at most
/// [`MAX_LINE_BYTES`]: a forged index without newlines cannot make a line fill memory.
struct Lines<R> {
    r: BufReader<R>,
    line: Vec<u8>,
    /// The 1-based number of the line last returned.
    number: u64,
}

impl<R: Read> Lines<R> {
    fn new(r: R) -> Self {
        Lines {
            r: BufReader::with_capacity(256 * 1024, r),
            line: Vec::new(),
            number: 0,
        }
    }

    fn next_line(&mut self) -> Result<Option<&[u8]>, ArchiveError> {
        loop {
            self.line.clear();
            let n = (&mut self.r)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut self.line)
                .map_err(ArchiveError::Stream)?;
            if n == 0 {
                return Ok(None);
            }
            self.number += 1;
            if self.line.last() == Some(&b'\n') {
                self.line.pop();
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
            } else if self.line.len() > MAX_LINE_BYTES {
                return Err(ArchiveError::BadManifest(format!(
                    "index line {} is longer than {MAX_LINE_BYTES} bytes, which no entry lifeboat writes is",
                    self.number
                )));
            }
            if !self.line.is_empty() {
                return Ok(Some(&self.line));
            }
        }
    }
}

/// An index that can be read any number of times, in archive order.
pub enum Index {
    Inline(Vec<FileEntry>),
    /// JSON lines in a (temporary) file.
    Spooled {
        file: File,
        entries: u64,
    },
}

impl Index {
    /// Loads an index stored as JSON lines (uncompressed) from a file.
    pub fn from_jsonl_file(mut file: File) -> Result<Index, ArchiveError> {
        file.seek(SeekFrom::Start(0))
            .map_err(ArchiveError::Stream)?;
        let mut lines = Lines::new(&file);
        let mut count = 0;
        while lines.next_line()?.is_some() {
            count += 1;
        }
        Ok(Index::Spooled {
            file,
            entries: count,
        })
    }

    pub fn len(&self) -> u64 {
        match self {
            Index::Inline(v) => v.len() as u64,
            Index::Spooled { entries, .. } => *entries,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates the entries from the start.
    pub fn iter(
        &self,
    ) -> Result<Box<dyn Iterator<Item = Result<FileEntry, ArchiveError>> + '_>, ArchiveError> {
        match self {
            Index::Inline(v) => Ok(Box::new(v.iter().cloned().map(Ok))),
            Index::Spooled { file, .. } => {
                let mut f = file.try_clone().map_err(ArchiveError::Stream)?;
                f.seek(SeekFrom::Start(0)).map_err(ArchiveError::Stream)?;
                let mut lines = Lines::new(f);
                let mut failed = false;
                Ok(Box::new(std::iter::from_fn(move || {
                    if failed {
                        return None;
                    }
                    let entry = match lines.next_line() {
                        Ok(None) => return None,
                        Ok(Some(line)) => serde_json::from_slice(line).map_err(|e| {
                            ArchiveError::BadManifest(format!(
                                "index entry {} unreadable: {e}",
                                lines.number
                            ))
                        }),
                        Err(e) => Err(e),
                    };
                    failed = entry.is_err();
                    Some(entry)
                })))
            }
        }
    }

    /// Reads every entry into memory (only for small indexes that go inline in the manifest).
    pub fn to_vec(&self) -> Result<Vec<FileEntry>, ArchiveError> {
        self.iter()?.collect()
    }

    /// Streams the index as JSON lines into `out`.
    pub fn write_jsonl(&self, out: &mut dyn Write) -> Result<(), ArchiveError> {
        for entry in self.iter()? {
            serde_json::to_writer(&mut *out, &entry?)
                .map_err(|e| ArchiveError::Stream(e.into()))?;
            out.write_all(b"\n").map_err(ArchiveError::Stream)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> FileEntry {
        FileEntry {
            path: path.into(),
            kind: EntryKind::File,
            size: 3,
            mode: 0o644,
            mtime: 1,
            sha256: Some("ab".into()),
            target: None,
            object: None,
        }
    }

    #[test]
    fn spool_round_trips_and_rereads() {
        let mut spool = IndexSpool::new().unwrap();
        spool.push(&entry("db/a")).unwrap();
        spool.push(&entry("uploads/b c")).unwrap();
        let index = spool.into_index().unwrap();
        assert_eq!(index.len(), 2);
        let first: Vec<_> = index.iter().unwrap().map(|e| e.unwrap().path).collect();
        let second: Vec<_> = index.iter().unwrap().map(|e| e.unwrap().path).collect();
        assert_eq!(first, vec!["db/a", "uploads/b c"]);
        assert_eq!(first, second);
        assert_eq!(index.to_vec().unwrap()[1].root(), "uploads");
    }

    #[test]
    fn entry_json_is_compact_and_stable() {
        let dir = FileEntry {
            path: "db".into(),
            kind: EntryKind::Dir,
            size: 0,
            mode: 0o755,
            mtime: 5,
            sha256: None,
            target: None,
            object: None,
        };
        assert_eq!(
            serde_json::to_string(&dir).unwrap(),
            r#"{"path":"db","type":"dir","mode":493,"mtime":5}"#
        );
    }
}
