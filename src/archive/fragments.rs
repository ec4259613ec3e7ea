//! Format 2's packing: ONE tar stream, its bytes routed into a sequence of objects that are cut
//! only at member boundaries. A shared file (an immutable RocksDB table or blob file) is an object
//! of its own; the other members between shared ones go into bundles; the end-of-archive blocks
//! are the tail. Concatenated, the objects are exactly the tar one `tar::Builder` writes.
//! Unchanged shared files of an earlier backup are not read at all: the [`Reuse`] found them.

use std::io::{self, BufReader, Write};

use super::Counts;
use super::ahead::{self, AHEAD_MAX, Walked};
use super::index::Index;
use super::pack::{self, FileSlot, Source, Tally};
use super::{ArchiveError, EntryKind, FileEntry};
use crate::progress::Progress;

/// Files smaller than this are bundled even when they are immutable table files (and are read
/// ahead of the packer: never a file an incremental backup reuses unread).
pub const SHARED_MIN_BYTES: u64 = AHEAD_MAX;
/// A bundle is closed once it holds this many tar bytes.
pub const BUNDLE_MAX_RAW: u64 = 64 << 20;

/// What an object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Shared,
    Bundle,
    Tail,
}

/// Where the objects go (the repository's uploads, or memory in tests).
pub trait Objects {
    /// Starts a new object; returns its name. `member_size` is the shared file's size.
    fn open(&mut self, part: Part, member_size: Option<u64>) -> io::Result<String>;
    /// Writes tar bytes into the open object.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// Ends the open object, which decompresses to `raw` tar bytes.
    fn close(&mut self, raw: u64) -> io::Result<()>;
    /// An earlier backup's object `name` stands at this place of the archive.
    fn reuse(&mut self, name: &str) -> io::Result<()>;
}

/// The tar builder's writer: routes bytes into the open object.
pub struct Router<O: Objects> {
    objects: O,
    open: Option<(Part, String, u64)>,
}

impl<O: Objects> Router<O> {
    pub fn new(objects: O) -> Self {
        Router {
            objects,
            open: None,
        }
    }

    fn close(&mut self) -> io::Result<()> {
        if let Some((_, _, raw)) = self.open.take() {
            self.objects.close(raw)?;
        }
        Ok(())
    }

    fn start(&mut self, part: Part, size: Option<u64>) -> io::Result<String> {
        self.close()?;
        let name = self.objects.open(part, size)?;
        self.open = Some((part, name.clone(), 0));
        Ok(name)
    }

    /// Before a shared member: a new object of its own; returns its name.
    pub fn shared(&mut self, size: u64) -> io::Result<String> {
        self.start(Part::Shared, Some(size))
    }

    /// Before any other member: the open bundle unless it is full, else a new one.
    pub fn bundled(&mut self) -> io::Result<()> {
        match &self.open {
            Some((Part::Bundle, _, raw)) if *raw < BUNDLE_MAX_RAW => Ok(()),
            _ => self.start(Part::Bundle, None).map(|_| ()),
        }
    }

    /// After a shared member: its object is complete.
    pub fn end_shared(&mut self) -> io::Result<()> {
        self.close()
    }

    /// In place of a member: an earlier object.
    pub fn reused(&mut self, name: &str) -> io::Result<()> {
        self.close()?;
        self.objects.reuse(name)
    }

    /// Before the end-of-archive blocks.
    pub fn tail(&mut self) -> io::Result<()> {
        self.start(Part::Tail, None).map(|_| ())
    }

    /// Closes the open object and hands the objects back.
    pub fn finish(mut self) -> io::Result<O> {
        self.close()?;
        Ok(self.objects)
    }
}

impl<O: Objects> Write for Router<O> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let Some((_, _, raw)) = self.open.as_mut() else {
            return Err(io::Error::other(
                "tar bytes written with no object open (a lifeboat bug)",
            ));
        };
        *raw += data.len() as u64;
        self.objects.write_all(data)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Finds what an earlier backup already holds.
pub trait Reuse {
    /// For a shared file about to be packed (`candidate` has no digest yet): the earlier entry
    /// (with its `sha256` and `object`) when the file is unchanged.
    fn lookup(&mut self, candidate: &FileEntry) -> Result<Option<FileEntry>, ArchiveError>;
}

/// No earlier backup: everything is packed.
pub struct NoReuse;

impl Reuse for NoReuse {
    fn lookup(&mut self, _: &FileEntry) -> Result<Option<FileEntry>, ArchiveError> {
        Ok(None)
    }
}

/// Walk order: paths compared component by component (what a sorted depth-first walk yields).
fn walk_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

/// A merge-join of the walk with an earlier backup's index (both in walk order): O(1) memory.
/// Roots come in the sources' order (`db`, `uploads`, `security`), not sorted, and within a
/// root entries follow `walk_cmp`.
pub struct MergeJoin<I: Iterator, F> {
    base: std::iter::Peekable<I>,
    /// Whether the earlier backup lists this object as a shared one.
    known: F,
    /// Entries reused.
    pub reused: u64,
    /// The roots the walk has left behind, and the one it is in.
    passed: Vec<String>,
    current: Option<String>,
}

impl<I, F> MergeJoin<I, F>
where
    I: Iterator<Item = Result<FileEntry, ArchiveError>>,
    F: FnMut(&str) -> bool,
{
    pub fn new(base: I, known: F) -> Self {
        MergeJoin {
            base: base.peekable(),
            known,
            reused: 0,
            passed: Vec::new(),
            current: None,
        }
    }
}

impl<I, F> Reuse for MergeJoin<I, F>
where
    I: Iterator<Item = Result<FileEntry, ArchiveError>>,
    F: FnMut(&str) -> bool,
{
    fn lookup(&mut self, candidate: &FileEntry) -> Result<Option<FileEntry>, ArchiveError> {
        let root = candidate.root();
        if self.current.as_deref() != Some(root) {
            if let Some(left) = self.current.take() {
                self.passed.push(left);
            }
            self.current = Some(root.to_string());
        }
        loop {
            let ord = match self.base.peek() {
                None => return Ok(None),
                Some(Err(_)) => {
                    return Err(self
                        .base
                        .next()
                        .and_then(Result::err)
                        .unwrap_or_else(|| ArchiveError::Corrupt("base index".into())));
                }
                Some(Ok(e)) if e.root() == root => walk_cmp(&e.path, &candidate.path),
                // A root the walk has left: behind. Any other: ahead (a root this walk has
                // not reached, or one it does not have).
                Some(Ok(e)) if self.passed.iter().any(|p| p == e.root()) => {
                    std::cmp::Ordering::Less
                }
                Some(Ok(_)) => std::cmp::Ordering::Greater,
            };
            match ord {
                std::cmp::Ordering::Less => {
                    self.base.next();
                }
                std::cmp::Ordering::Greater => return Ok(None),
                std::cmp::Ordering::Equal => {
                    let Some(Ok(base)) = self.base.next() else {
                        return Ok(None);
                    };
                    let same = base.kind == EntryKind::File
                        && base.size == candidate.size
                        && base.mtime == candidate.mtime
                        && base.mode == candidate.mode
                        && base.sha256.as_deref().is_some_and(is_sha256)
                        && base.object.as_deref().is_some_and(|o| (self.known)(o));
                    if same {
                        self.reused += 1;
                        return Ok(Some(base));
                    }
                    return Ok(None);
                }
            }
        }
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a file of the archive is shared, i.e. written once and never changed in place, and of
/// at least [`SHARED_MIN_BYTES`]: under the `db` root, a RocksDB table (`*.sst`), a blob file
/// (`*.blob`), anything in a `blob/` folder, or a file of the Lucene indexes in `search/` (Lucene
/// writes its segment files once); and every uploaded file (`uploads/`, which Dremio writes once).
pub fn is_shared(name: &str, size: u64) -> bool {
    if size < SHARED_MIN_BYTES {
        return false;
    }
    if name.starts_with("uploads/") {
        return true;
    }
    let Some(rel) = name.strip_prefix("db/") else {
        return false;
    };
    let mut parts: Vec<&str> = rel.split('/').collect();
    let file = parts.pop().unwrap_or("");
    file.ends_with(".sst")
        || file.ends_with(".blob")
        || parts.contains(&"blob")
        || parts.first() == Some(&"search")
}

/// What a fragmented pack wrote.
pub struct Fragmented {
    pub counts: Counts,
    pub raw_bytes: u64,
    pub index: Index,
    /// Shared files taken from the earlier backup (not read), and their bytes.
    pub reused_files: u64,
    pub reused_raw: u64,
}

/// Packs `sources` as one tar stream cut into objects (see the module's comment).
pub fn pack_fragments<O: Objects>(
    sources: &[Source],
    objects: O,
    reuse: &mut dyn Reuse,
    progress: &dyn Progress,
) -> Result<(Fragmented, O), ArchiveError> {
    let mut tar = tar::Builder::new(Router::new(objects));
    tar.mode(tar::HeaderMode::Complete);
    let mut tally = Tally::new()?;
    let mut reader = BufReader::with_capacity(256 * 1024, FileSlot::new(progress));
    let (mut reused_files, mut reused_raw) = (0u64, 0u64);
    ahead::for_each(sources, |w| {
        let Walked {
            path,
            name,
            meta,
            contents,
        } = w;
        let shared = meta.file_type().is_file() && is_shared(&name, meta.len());
        let entry = if shared {
            let candidate = pack::listed_entry(&name, &meta);
            if let Some(base) = reuse.lookup(&candidate)? {
                let object = base.object.clone().unwrap_or_default();
                tar.get_mut()
                    .reused(&object)
                    .map_err(ArchiveError::Stream)?;
                progress.advance(base.size);
                reused_files += 1;
                reused_raw += base.size;
                Some(base)
            } else {
                let object = tar
                    .get_mut()
                    .shared(meta.len())
                    .map_err(ArchiveError::Stream)?;
                let entry = pack::append(&mut tar, &path, &name, &meta, None, &mut reader)?;
                tar.get_mut().end_shared().map_err(ArchiveError::Stream)?;
                entry.map(|e| FileEntry {
                    object: Some(object),
                    ..e
                })
            }
        } else {
            tar.get_mut().bundled().map_err(ArchiveError::Stream)?;
            pack::append(&mut tar, &path, &name, &meta, contents, &mut reader)?
        };
        tally.record(entry, &path, progress)
    })?;
    tar.get_mut().tail().map_err(ArchiveError::Stream)?;
    let router = tar.into_inner().map_err(ArchiveError::Stream)?;
    let objects = router.finish().map_err(ArchiveError::Stream)?;
    let Tally {
        counts,
        raw_bytes,
        spool,
    } = tally;
    let index = spool.into_index().map_err(ArchiveError::Stream)?;
    Ok((
        Fragmented {
            counts,
            raw_bytes,
            index,
            reused_files,
            reused_raw,
        },
        objects,
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::progress::NotesOnly;

    /// Objects kept in memory: (part, name, bytes), and reused names in place.
    #[derive(Default)]
    struct Memory {
        objects: Vec<(Part, String, Vec<u8>, u64)>,
        order: Vec<String>,
        next: u32,
    }

    impl Objects for Memory {
        fn open(&mut self, part: Part, _: Option<u64>) -> io::Result<String> {
            self.next += 1;
            let name = format!("{:032x}", self.next);
            self.objects.push((part, name.clone(), Vec::new(), 0));
            self.order.push(name.clone());
            Ok(name)
        }
        fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
            let last = self
                .objects
                .last_mut()
                .ok_or_else(|| io::Error::other("none"))?;
            last.2.extend_from_slice(data);
            Ok(())
        }
        fn close(&mut self, raw: u64) -> io::Result<()> {
            let last = self
                .objects
                .last_mut()
                .ok_or_else(|| io::Error::other("none"))?;
            assert_eq!(last.2.len() as u64, raw);
            last.3 = raw;
            Ok(())
        }
        fn reuse(&mut self, name: &str) -> io::Result<()> {
            self.order.push(name.to_string());
            Ok(())
        }
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir_all(db.join("catalog")).unwrap();
        std::fs::create_dir_all(db.join("blob/x")).unwrap();
        for (name, len) in [
            ("catalog/000010.sst", 100_000),
            ("catalog/000011.sst", 70_000),
            ("catalog/000012.sst", 10),
            ("catalog/CURRENT", 16),
            ("catalog/MANIFEST-000005", 2000),
            ("blob/x/data", 90_000),
            ("a.c", 5),
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            std::fs::write(db.join(name), data).unwrap();
        }
        dir
    }

    fn sources(dir: &Path) -> Vec<Source> {
        vec![Source {
            root: "db",
            dir: dir.join("db"),
            skip_contents_of: vec![],
        }]
    }

    fn members(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let p = e.path().unwrap().display().to_string();
                let mut data = Vec::new();
                io::Read::read_to_end(&mut e, &mut data).unwrap();
                (p, data)
            })
            .collect()
    }

    #[test]
    fn shared_files_stand_alone_members_are_never_split_and_the_tail_is_the_end_blocks() {
        let dir = tree();
        let (packed, mem) = pack_fragments(
            &sources(dir.path()),
            Memory::default(),
            &mut NoReuse,
            &NotesOnly,
        )
        .unwrap();
        let parts: Vec<Part> = mem.objects.iter().map(|o| o.0).collect();
        // db/, db/a.c, db/blob/, db/blob/x/ | blob/x/data | db/catalog/ | 000010 | 000011 | 000012.sst.. | tail
        assert_eq!(
            parts,
            [
                Part::Bundle,
                Part::Shared,
                Part::Bundle,
                Part::Shared,
                Part::Shared,
                Part::Bundle,
                Part::Tail
            ]
        );
        let tail = &mem.objects.last().unwrap().2;
        assert_eq!(tail.len(), 1024);
        assert!(tail.iter().all(|b| *b == 0));
        // Each non-tail object is whole members: it reads as a tar on its own.
        for (part, _, bytes, _) in &mem.objects[..mem.objects.len() - 1] {
            let mut with_end = bytes.clone();
            with_end.extend_from_slice(&[0u8; 1024]);
            let m = members(&with_end);
            assert!(!m.is_empty(), "{part:?}");
            if *part == Part::Shared {
                assert_eq!(m.len(), 1);
            }
        }
        let all: Vec<u8> = mem.objects.iter().flat_map(|o| o.2.clone()).collect();
        let m = members(&all);
        assert_eq!(m.len() as u64, packed.index.len());
        let data = m
            .iter()
            .find(|(p, _)| p == "db/catalog/000010.sst")
            .unwrap();
        assert_eq!(
            data.1,
            std::fs::read(dir.path().join("db/catalog/000010.sst")).unwrap()
        );
        let shared: Vec<FileEntry> = packed
            .index
            .iter()
            .unwrap()
            .map(Result::unwrap)
            .filter(|e| e.object.is_some())
            .collect();
        assert_eq!(shared.len(), 3);
    }

    #[test]
    fn unchanged_shared_files_are_reused_without_being_packed() {
        let dir = tree();
        let (first, _) = pack_fragments(
            &sources(dir.path()),
            Memory::default(),
            &mut NoReuse,
            &NotesOnly,
        )
        .unwrap();
        // One table changes (new mtime), the others stay.
        let changed = dir.path().join("db/catalog/000011.sst");
        std::fs::write(&changed, vec![9u8; 80_000]).unwrap();
        let f = std::fs::File::options().write(true).open(&changed).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(99))
            .unwrap();
        let base = first.index.iter().unwrap();
        let mut join = MergeJoin::new(base, |_: &str| true);
        let (second, mem) = pack_fragments(
            &sources(dir.path()),
            Memory::default(),
            &mut join,
            &NotesOnly,
        )
        .unwrap();
        assert_eq!((second.reused_files, join.reused), (2, 2));
        let shared_written = mem.objects.iter().filter(|o| o.0 == Part::Shared).count();
        assert_eq!(shared_written, 1);
        assert_eq!(second.index.len(), first.index.len());
        assert_eq!(mem.order.len(), mem.objects.len() + 2);
        // An unknown object is never reused.
        let mut join = MergeJoin::new(second.index.iter().unwrap(), |_: &str| false);
        let (third, _) = pack_fragments(
            &sources(dir.path()),
            Memory::default(),
            &mut join,
            &NotesOnly,
        )
        .unwrap();
        assert_eq!(third.reused_files, 0);
    }

    #[test]
    fn walk_order_is_by_component() {
        assert!(walk_cmp("db/a/b", "db/a.c").is_lt());
        assert!(walk_cmp("db", "db/a").is_lt());
        assert!(is_shared("db/catalog/1.sst", 1 << 20));
        assert!(!is_shared("db/catalog/1.sst", 10));
        assert!(is_shared("db/blob/a/b", 1 << 20));
        assert!(is_shared("uploads/x.sst", 1 << 20));
        assert!(!is_shared("uploads/small.csv", 10));
        assert!(is_shared("db/search/dac/_0.cfs", 1 << 20));
        assert!(!is_shared("security/keystore", 1 << 20));
        assert!(!is_shared("db/catalog/LOG", 1 << 20));
    }
}
