//! Packing: walk the source folders in a stable order and write one tar stream through zstd into a
//! sink, hashing every file on the way. Memory stays bounded whatever the tree's size.

use std::fs::{File, Metadata};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::Counts;
pub use super::ahead::Source;
use super::ahead::{self, Contents};
use super::digest::HashingWriter;
use super::index::{Index, IndexSpool};
use super::{ArchiveError, EntryKind, FileEntry};
use crate::progress::Progress;

/// Bytes of input per zstd worker job.
const JOB_SIZE: u32 = 4 << 20;

#[derive(Debug, Clone, Copy)]
pub struct PackOptions {
    pub level: i32,
    pub threads: u32,
}

/// What a pack wrote.
pub struct Packed {
    pub counts: Counts,
    pub raw_bytes: u64,
    pub index: Index,
    /// SHA-256 and size of the compressed stream.
    pub sha256: String,
    pub stored_bytes: u64,
}

/// Sizes a walk would archive, for progress totals and part sizing. Cheap: metadata only.
pub fn measure(sources: &[Source]) -> Result<(u64, u64), ArchiveError> {
    let (mut bytes, mut entries) = (0u64, 0u64);
    for source in sources {
        for entry in ahead::walk(source) {
            let entry = entry?;
            entries += 1;
            if entry.1.is_file() {
                bytes += entry.1.len();
            }
        }
    }
    Ok((bytes, entries))
}

/// Writes the tar+zstd stream of `sources` into `sink`. Returns what was written and the sink.
pub fn pack<W: Write>(
    sources: &[Source],
    sink: W,
    options: PackOptions,
    progress: &dyn Progress,
) -> Result<(Packed, W), ArchiveError> {
    let hashed = HashingWriter::new(sink);
    let mut encoder =
        zstd::stream::write::Encoder::new(hashed, options.level).map_err(ArchiveError::Stream)?;
    encoder
        .include_checksum(true)
        .map_err(ArchiveError::Stream)?;
    if options.threads > 1 {
        encoder
            .multithread(options.threads)
            .map_err(ArchiveError::Stream)?;
        // zstd's default job is 4x the window (8 MiB at level 3), and it keeps several jobs' input
        // and output per worker: 4 MiB jobs cut peak memory by a third for about 0.5% in ratio.
        encoder
            .set_parameter(zstd::stream::raw::CParameter::JobSize(JOB_SIZE))
            .map_err(ArchiveError::Stream)?;
    }
    let mut tar = tar::Builder::new(encoder);
    tar.mode(tar::HeaderMode::Complete);
    let mut tally = Tally::new()?;
    // One reader and one 256 KiB buffer for every file: a buffer per file costs an mmap/munmap
    // pair per file, which dominated backups of many small files.
    let mut reader = BufReader::with_capacity(256 * 1024, FileSlot::new(progress));
    ahead::for_each(sources, |w| {
        let entry = append(&mut tar, &w.path, &w.name, &w.meta, w.contents, &mut reader)?;
        tally.record(entry, &w.path, progress)
    })?;

    let encoder = tar.into_inner().map_err(ArchiveError::Stream)?;
    let hashed = encoder.finish().map_err(ArchiveError::Stream)?;
    let (mut sink, sha256, stored_bytes) = hashed.finish();
    sink.flush().map_err(ArchiveError::Stream)?;
    let Tally {
        counts,
        raw_bytes,
        spool,
    } = tally;
    let index = spool.into_index().map_err(ArchiveError::Stream)?;
    Ok((
        Packed {
            counts,
            raw_bytes,
            index,
            sha256,
            stored_bytes,
        },
        sink,
    ))
}

/// What a pack has appended so far: the counts, the raw bytes and the index.
pub(super) struct Tally {
    pub counts: Counts,
    pub raw_bytes: u64,
    pub spool: IndexSpool,
}

impl Tally {
    pub(super) fn new() -> Result<Self, ArchiveError> {
        Ok(Tally {
            counts: Counts::default(),
            raw_bytes: 0,
            spool: IndexSpool::new().map_err(ArchiveError::Stream)?,
        })
    }

    /// Counts an appended member and adds it to the index; a member of a kind that is not
    /// archived (`None`) is noted instead.
    pub(super) fn record(
        &mut self,
        entry: Option<FileEntry>,
        path: &Path,
        progress: &dyn Progress,
    ) -> Result<(), ArchiveError> {
        let Some(entry) = entry else {
            progress.note(&format!(
                "skipped {} (not a file, folder or link)",
                path.display()
            ));
            return Ok(());
        };
        match entry.kind {
            EntryKind::Dir => self.counts.directories += 1,
            EntryKind::Symlink => self.counts.symlinks += 1,
            EntryKind::File => {
                self.raw_bytes += entry.size;
                self.counts.count_file(&entry.path);
            }
        }
        self.spool.push(&entry).map_err(ArchiveError::Stream)
    }
}

/// Appends one member, a small file from the `contents` read ahead of it, any other file streamed
/// through `reader`; returns its index entry, or None for kinds that are not archived.
pub(super) fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    name: &str,
    meta: &Metadata,
    contents: Option<Result<Contents, ArchiveError>>,
    reader: &mut BufReader<FileSlot<'_>>,
) -> Result<Option<FileEntry>, ArchiveError> {
    let io_err = |source| ArchiveError::ReadSource {
        path: path.to_path_buf(),
        source,
    };
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    let mut entry = FileEntry {
        size: 0,
        ..listed_entry(name, meta)
    };
    let ft = meta.file_type();
    if ft.is_dir() {
        entry.kind = EntryKind::Dir;
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        tar.append_data(&mut header, name, io::empty())
            .map_err(ArchiveError::Stream)?;
    } else if ft.is_symlink() {
        let target = std::fs::read_link(path).map_err(io_err)?;
        let target_str = target.to_str().ok_or_else(|| ArchiveError::NonUtf8Name {
            path: path.to_path_buf(),
        })?;
        entry.kind = EntryKind::Symlink;
        entry.target = Some(target_str.to_string());
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        tar.append_link(&mut header, name, &target)
            .map_err(ArchiveError::Stream)?;
    } else if ft.is_file() {
        let size = meta.len();
        entry.size = size;
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        if size == 0 {
            // Empty files are never opened: closing any descriptor of RocksDB's LOCK file would
            // drop the record lock this process holds on it.
            tar.append_data(&mut header, name, io::empty())
                .map_err(ArchiveError::Stream)?;
            entry.sha256 = Some(super::digest::sha256_hex(b""));
        } else if let Some(contents) = contents {
            let contents = contents?;
            tar.append_data(&mut header, name, contents.data())
                .map_err(ArchiveError::Stream)?;
            reader.get_ref().progress.advance(size);
            entry.sha256 = Some(contents.sha256);
        } else {
            let file = File::open(path).map_err(io_err)?;
            reader.get_mut().load(file, meta);
            tar.append_data(&mut header, name, &mut *reader)
                .map_err(|e| changed_or_stream(e, path))?;
            entry.sha256 = Some(reader.get_mut().finish(path)?);
        }
    } else {
        return Ok(None);
    }
    Ok(Some(entry))
}

/// A file's entry as listed, before it is read (no digest yet).
pub(super) fn listed_entry(name: &str, meta: &Metadata) -> FileEntry {
    FileEntry {
        path: name.to_string(),
        kind: EntryKind::File,
        size: meta.len(),
        mode: meta.mode() & 0o7777,
        mtime: meta.mtime(),
        sha256: None,
        target: None,
        object: None,
    }
}

fn changed_or_stream(e: io::Error, path: &Path) -> ArchiveError {
    if e.kind() == io::ErrorKind::UnexpectedEof || e.kind() == io::ErrorKind::InvalidData {
        ArchiveError::SourceChanged {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }
    } else {
        ArchiveError::Stream(e)
    }
}

/// The source of the file being archived: reads exactly its expected size (a file that shrinks is
/// an error; bytes past the size are reported as growth), hashing and reporting progress as it goes.
/// Reused for every file, behind one buffer.
pub(crate) struct FileSlot<'a> {
    file: Option<File>,
    hasher: Sha256,
    expected: u64,
    /// Modification and change times (seconds, nanoseconds) when the file was listed.
    times: [(i64, i64); 2],
    read: u64,
    progress: &'a dyn Progress,
}

impl<'a> FileSlot<'a> {
    pub(crate) fn new(progress: &'a dyn Progress) -> Self {
        FileSlot {
            file: None,
            hasher: Sha256::new(),
            expected: 0,
            times: [(0, 0); 2],
            read: 0,
            progress,
        }
    }

    fn load(&mut self, file: File, listed: &Metadata) {
        self.file = Some(file);
        self.hasher = Sha256::new();
        self.expected = listed.len();
        self.times = ahead::times_of(listed);
        self.read = 0;
    }

    /// Checks the file did not grow or change while it was read (uploads and `security/` are not
    /// protected by the KV store's lock), closes it and returns its SHA-256.
    fn finish(&mut self, path: &Path) -> Result<String, ArchiveError> {
        let mut file = self.file.take().expect("a file is loaded");
        let mut probe = [0u8; 1];
        let read_err = |source| ArchiveError::ReadSource {
            path: path.to_path_buf(),
            source,
        };
        match file.read(&mut probe) {
            Ok(0) => {
                let now = file.metadata().map_err(read_err)?;
                if ahead::times_of(&now) != self.times {
                    return Err(ArchiveError::SourceChanged {
                        path: path.to_path_buf(),
                        detail: "it was modified while it was being read".into(),
                    });
                }
                Ok(hex::encode(std::mem::take(&mut self.hasher).finalize()))
            }
            Ok(_) => Err(ArchiveError::SourceChanged {
                path: path.to_path_buf(),
                detail: format!("it grew past {} bytes", self.expected),
            }),
            Err(source) => Err(read_err(source)),
        }
    }
}

impl Read for FileSlot<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.expected - self.read;
        let Some(file) = self.file.as_mut() else {
            return Ok(0);
        };
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(left as usize);
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("it shrank to {} of {} bytes", self.read, self.expected),
            ));
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::progress::NotesOnly;

    /// A sink that, the first time compressed bytes reach it (the packer is then in the middle of
    /// the big file, since zstd emits output long before it has read 8 MiB), changes that file the
    /// way an upload landing in `_uploads` would.
    struct ChangesTheSource {
        victim: PathBuf,
        changed: bool,
        out: Vec<u8>,
    }

    impl Write for ChangesTheSource {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if !self.changed {
                self.changed = true;
                let f = std::fs::OpenOptions::new().write(true).open(&self.victim)?;
                std::os::unix::fs::FileExt::write_at(&f, b"X", 0)?;
                // A distinct time, so that the change is visible whatever the clock's granularity.
                f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(12_345))?;
            }
            self.out.extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn random_file(path: &Path, len: usize) {
        let mut data = vec![0u8; len];
        getrandom::fill(&mut data).unwrap();
        std::fs::write(path, data).unwrap();
    }

    #[test]
    fn a_file_changed_while_it_is_read_fails_the_pack() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = dir.path().join("uploads");
        std::fs::create_dir(&uploads).unwrap();
        let victim = uploads.join("big.csv");
        random_file(&victim, 8 << 20);
        let sources = [Source {
            root: "uploads",
            dir: uploads,
            skip_contents_of: vec![],
        }];
        let sink = ChangesTheSource {
            victim: victim.clone(),
            changed: false,
            out: Vec::new(),
        };
        let options = PackOptions {
            level: 1,
            threads: 1,
        };
        let err = match pack(&sources, sink, options, &NotesOnly) {
            Ok(_) => panic!("a changed source must fail the pack"),
            Err(e) => e,
        };
        assert!(
            matches!(&err, ArchiveError::SourceChanged { path, .. } if *path == victim),
            "{err}"
        );
        assert!(err.to_string().contains("modified while"), "{err}");
    }

    #[test]
    fn an_unchanged_tree_packs() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = dir.path().join("uploads");
        std::fs::create_dir(&uploads).unwrap();
        random_file(&uploads.join("a"), 1000);
        let sources = [Source {
            root: "uploads",
            dir: uploads,
            skip_contents_of: vec![],
        }];
        let options = PackOptions {
            level: 1,
            threads: 1,
        };
        let (packed, _) = pack(&sources, Vec::new(), options, &NotesOnly).unwrap();
        assert_eq!(packed.counts.uploaded_files, 1);
    }
}
