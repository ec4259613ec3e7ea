//! Unpacking: read a tar+zstd stream, check every member against the index (path, kind, size,
//! SHA-256) and against what an archive may hold (`guard`), and optionally extract into a staging
//! folder without ever leaving it (`beneath`): folders and files first, symbolic links last.

use std::cell::Cell;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::Counts;
use super::beneath::{self, Beneath, Followed};
use super::guard::{self, Links, WalkOrder, refuse};
use super::index::Index;
use super::writer::{self, Expect, Writer, set_mode_and_mtime};
use super::{ArchiveError, EntryKind, FileEntry, Layout, Problem};
use crate::fsutil::Owner;
use crate::progress::Progress;

/// Roots whose members get owner-only permissions whatever the archive says.
pub const PRIVATE_ROOTS: [&str; 1] = ["security"];

/// Check only, or check and write into `staging` (which must exist and be empty), giving what is
/// written to `owner` as it is created.
#[derive(Debug, Clone, Copy)]
pub enum Mode<'a> {
    Verify {
        max_problems: usize,
    },
    Extract {
        staging: &'a Path,
        owner: Option<Owner>,
    },
}

/// What an unpack found.
#[derive(Debug, Default)]
pub struct Unpacked {
    pub counts: Counts,
    pub raw_bytes: u64,
    /// The first problems found (at most the `max_problems` asked for).
    pub problems: Vec<Problem>,
    /// How many problems there were in all.
    pub problem_count: usize,
}

struct Run {
    max_problems: Option<usize>,
    /// The staging folder, in extract mode.
    target: Option<Beneath>,
    out: Unpacked,
    order: WalkOrder,
    links: Links,
    buf: Vec<u8>,
    /// Extract mode: the thread that hashes, writes and checks the files (and starts large ones
    /// on their way to the disk).
    writer: Option<Writer>,
}

/// One member as the archive holds it, admitted by the guard.
struct Member {
    path: String,
    kind: EntryKind,
    /// A link's target.
    target: Option<String>,
}

/// Reads the whole compressed stream and checks it against `index`. In extract mode the first problem
/// is an error (the caller discards the staging folder); in verify mode problems are collected.
/// Either way a member no archive of lifeboat's can hold is an error ([`ArchiveError::UnsafeEntry`]).
pub fn unpack<R: Read>(
    compressed: R,
    index: &Index,
    mode: Mode<'_>,
    layout: Layout,
    progress: &dyn Progress,
) -> Result<Unpacked, ArchiveError> {
    let decoder = zstd::stream::read::Decoder::new(compressed)
        .map_err(|e| ArchiveError::Corrupt(format!("zstd: {e}")))?;
    unpack_tar(decoder, index, mode, layout, progress)
}

/// [`unpack`] of a stream already decompressed (format 2 decompresses each object on its own
/// thread). The stream is read to its end.
pub fn unpack_tar<R: Read>(
    stream: R,
    index: &Index,
    mode: Mode<'_>,
    layout: Layout,
    progress: &dyn Progress,
) -> Result<Unpacked, ArchiveError> {
    let allowance = Rc::new(Cell::new(METADATA_BUDGET));
    let mut archive = tar::Archive::new(Allowance {
        inner: stream,
        left: allowance.clone(),
    });
    let (max_problems, target) = match mode {
        Mode::Extract { staging, owner } => {
            let target = Beneath::open(staging).map_err(|source| ArchiveError::WriteTarget {
                path: staging.to_path_buf(),
                source,
            })?;
            (None, Some(target.owned_by(owner)))
        }
        Mode::Verify { max_problems } => (Some(max_problems), None),
    };
    let writer = match mode {
        Mode::Extract { staging, .. } => Some(Writer::start(staging)),
        Mode::Verify { .. } => None,
    };
    let mut run = Run {
        max_problems,
        target,
        out: Unpacked::default(),
        order: WalkOrder::default(),
        links: Links::default(),
        buf: vec![0u8; 256 * 1024],
        writer,
    };
    let read = read_all(&mut archive, &allowance, index, layout, &mut run, progress);
    // The writer is behind the reader: its error concerns an earlier member, so it comes first.
    let written = run.writer.take().map_or(Ok(()), Writer::finish);
    written?;
    read?;
    let mut rest = archive.into_inner().inner;
    // Reading a zstd decoder to its end makes zstd check that the frame (and its checksum) is
    // whole; format 2's chain checks every object so.
    io::copy(&mut rest, &mut io::sink()).map_err(corrupt)?;
    run.links.resolve_all()?;
    if let Some(target) = &mut run.target {
        make_links(target, &run.links)?;
    }
    Ok(run.out)
}

/// Every member of the archive, against the index, in order.
fn read_all<R: Read>(
    archive: &mut tar::Archive<Allowance<R>>,
    allowance: &Cell<u64>,
    index: &Index,
    layout: Layout,
    run: &mut Run,
    progress: &dyn Progress,
) -> Result<(), ArchiveError> {
    let mut expected = index.iter()?;
    let mut aligned = true;

    let mut entries = archive.entries().map_err(corrupt)?;
    loop {
        allowance.set(METADATA_BUDGET);
        let Some(entry) = entries.next() else { break };
        let mut entry = entry.map_err(corrupt)?;
        allowance.set(entry.size());
        let member = run.admit(&entry, layout)?;
        let want = if aligned {
            expected.next().transpose()?
        } else {
            None
        };
        let Some(want) = want else {
            if aligned {
                run.problem(
                    &member.path,
                    "no such member (the manifest ends before it)",
                    "an extra member",
                )?;
                aligned = false;
            }
            drain(&mut entry, &mut run.buf)?;
            continue;
        };
        if want.path != member.path {
            run.problem(
                &want.path,
                &format!("member {:?} next", want.path),
                &format!("{:?}", member.path),
            )?;
            aligned = false;
            drain(&mut entry, &mut run.buf)?;
            continue;
        }
        run.member(&mut entry, &member, &want, progress)?;
    }
    if aligned && let Some(missing) = expected.next().transpose()? {
        let rest = expected.count();
        run.problem(
            &missing.path,
            "this member",
            &format!("the archive ends before it ({} more missing)", rest),
        )?;
    }
    Ok(())
}

/// Bytes the tar reader may take before each member: its headers, GNU long names, PAX records and
/// the previous member's padding. The tar crate holds long names and PAX records in memory whole,
/// and a stream of zeros compresses so well that a forged size could otherwise claim gigabytes.
const METADATA_BUDGET: u64 = 1 << 20;

/// The decompressed stream, readable only as far as the current allowance: the metadata budget
/// before a member, then exactly the member's size.
struct Allowance<R> {
    inner: R,
    left: Rc<Cell<u64>>,
}

impl<R: Read> Read for Allowance<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left.get();
        if left == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a member's headers (long name or extended records) run past 1 MiB",
            ));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left.set(left - n as u64);
        Ok(n)
    }
}

fn corrupt(e: io::Error) -> ArchiveError {
    ArchiveError::Corrupt(e.to_string())
}

fn drain<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<(), ArchiveError> {
    while r.read(buf).map_err(corrupt)? > 0 {}
    Ok(())
}

/// A failed write: refused if it met a link or the way out of the staging folder (which the guard
/// rules out, so the kernel's word is a second line), else an I/O failure.
fn write_error(target: &Beneath, path: &str, source: io::Error) -> ArchiveError {
    if beneath::is_escape(&source) {
        refuse(
            path,
            format!("it would be written through a link or outside the staging folder ({source})"),
        )
    } else {
        ArchiveError::WriteTarget {
            path: target.display(path),
            source,
        }
    }
}

/// Creates every link once all files and folders exist (so no member is ever written through
/// one), then has the kernel follow each beneath its root: a chain the archive-level resolution
/// missed would show here as EXDEV or ELOOP.
fn make_links(target: &mut Beneath, links: &Links) -> Result<(), ArchiveError> {
    for (path, to) in links.iter() {
        target
            .symlink(path, to)
            .map_err(|e| write_error(target, path, e))?;
    }
    for (path, to) in links.iter() {
        let (root, rel) = path.split_once('/').expect("links live inside a root");
        let followed = target
            .follow_link(root, rel)
            .map_err(|e| write_error(target, path, e))?;
        let why = match followed {
            Followed::Inside | Followed::Dangling | Followed::Unchecked => continue,
            Followed::Escapes => format!("its target {to:?} leads outside {root}/"),
            Followed::Loops => format!("its target {to:?} does not resolve (a loop of links)"),
        };
        return Err(refuse(path, why));
    }
    Ok(())
}

impl Run {
    /// Records a problem; in extract mode the first one ends the run.
    fn problem(&mut self, path: &str, expected: &str, found: &str) -> Result<(), ArchiveError> {
        let problem = Problem {
            path: path.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        };
        self.out.problem_count += 1;
        match self.max_problems {
            None => Err(ArchiveError::Mismatch {
                count: 1,
                first: problem.clone(),
                problems: vec![problem],
            }),
            Some(max_problems) => {
                if self.out.problems.len() < max_problems {
                    self.out.problems.push(problem);
                }
                Ok(())
            }
        }
    }

    /// Checks what the member is, its name, its place in the walk and (for a link) its target,
    /// whatever the index says: the index is as hostile as the archive.
    fn admit<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        layout: Layout,
    ) -> Result<Member, ArchiveError> {
        let raw = entry.path_bytes();
        let link_name = entry.link_name_bytes();
        let kind = guard::kind_of(
            &String::from_utf8_lossy(&raw),
            entry.header().entry_type(),
            link_name.as_deref(),
        )?;
        let path = guard::member_name(&raw, kind, layout)?;
        self.order.admit(&path, kind)?;
        let target = match kind {
            EntryKind::Symlink => Some(
                self.links
                    .admit(&path, link_name.as_deref().unwrap_or_default())?
                    .to_string(),
            ),
            _ => None,
        };
        Ok(Member { path, kind, target })
    }

    fn member<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        member: &Member,
        want: &FileEntry,
        progress: &dyn Progress,
    ) -> Result<(), ArchiveError> {
        if member.kind != want.kind {
            drain(entry, &mut self.buf)?;
            return self.problem(
                &want.path,
                &format!("a {:?}", want.kind),
                &format!("a {:?}", member.kind),
            );
        }
        match member.kind {
            EntryKind::Dir => {
                self.out.counts.directories += 1;
                if let Some(target) = &mut self.target {
                    // Owner-only until finish_directories gives it the archive's mode.
                    target
                        .mkdir(&member.path, 0o700)
                        .map_err(|e| write_error(target, &member.path, e))?;
                }
            }
            EntryKind::Symlink => {
                self.out.counts.symlinks += 1;
                let target = member.target.as_deref().unwrap_or_default();
                if want.target.as_deref() != Some(target) {
                    return self.problem(
                        &want.path,
                        &format!("link to {:?}", want.target.as_deref().unwrap_or("")),
                        &format!("link to {target:?}"),
                    );
                }
            }
            EntryKind::File => {
                let len = entry.size();
                self.file(entry, len, want, progress)?
            }
        }
        Ok(())
    }

    /// A file member of `len` bytes (as its header says).
    fn file<R: Read>(
        &mut self,
        entry: &mut R,
        len: u64,
        want: &FileEntry,
        progress: &dyn Progress,
    ) -> Result<(), ArchiveError> {
        if let (Some(target), Some(writer)) = (&mut self.target, &mut self.writer) {
            // Extract: the writer thread hashes, writes and checks; this one reads on.
            let file = target
                .create_file(&want.path)
                .map_err(|e| write_error(target, &want.path, e))?;
            let private = PRIVATE_ROOTS.contains(&want.root());
            writer.file(
                file,
                Expect {
                    path: want.path.clone(),
                    size: want.size,
                    sha256: want.sha256.clone(),
                    mode: if private { 0o600 } else { want.mode & 0o777 },
                    mtime: want.mtime,
                },
            )?;
            let mut size = 0u64;
            loop {
                let want = len.saturating_sub(size).clamp(1, writer::CHUNK as u64);
                let mut buf = writer.buffer(want);
                let n = super::read_up_to(entry, &mut buf).map_err(corrupt)?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                writer.data(buf)?;
                size += n as u64;
                progress.advance(n as u64);
            }
            writer.end()?;
            self.out.counts.count_file(&want.path);
            self.out.raw_bytes += size;
            return Ok(());
        }
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let n = entry.read(&mut self.buf).map_err(corrupt)?;
            if n == 0 {
                break;
            }
            hasher.update(&self.buf[..n]);
            size += n as u64;
            progress.advance(n as u64);
        }
        let sha256 = hex::encode(hasher.finalize());
        self.out.counts.count_file(&want.path);
        self.out.raw_bytes += size;
        match writer::verdict(want.size, want.sha256.as_deref(), size, &sha256) {
            Some((expected, found)) => self.problem(&want.path, &expected, &found),
            None => Ok(()),
        }
    }
}

/// Sets folder modes and times after extraction (a read-only folder must not block its contents,
/// and writing into a folder changes its mtime). Streams the index again: bounded memory. Each
/// folder is opened beneath `staging` without following any link.
pub fn finish_directories(staging: &Path, index: &Index) -> Result<(), ArchiveError> {
    let target = Beneath::open(staging).map_err(|source| ArchiveError::WriteTarget {
        path: staging.to_path_buf(),
        source,
    })?;
    for entry in index.iter()? {
        let entry = entry?;
        if entry.kind != EntryKind::Dir {
            continue;
        }
        guard::check_relative(&entry.path)?;
        let private = PRIVATE_ROOTS.contains(&entry.root());
        let mode = if private { 0o700 } else { entry.mode & 0o777 };
        // Opened before its mode changes: a folder restored as 0o500 can still be opened for reading.
        target
            .open_dir(&entry.path)
            .and_then(|dir| set_mode_and_mtime(&dir, mode, entry.mtime))
            .map_err(|e| write_error(&target, &entry.path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, symlink};
    use std::path::PathBuf;

    use super::*;
    use crate::archive::pack::{self, PackOptions, Source};
    use crate::progress::NotesOnly;

    fn put(path: &Path, data: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }

    /// path -> what it is: a file's mode and bytes, a folder, a link's target.
    fn tree(root: &Path) -> BTreeMap<String, String> {
        walkdir::WalkDir::new(root)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                let meta = e.path().symlink_metadata().unwrap();
                let what = if meta.is_symlink() {
                    format!("link {}", fs::read_link(e.path()).unwrap().display())
                } else if meta.is_dir() {
                    "folder".to_string()
                } else {
                    let bytes = fs::read(e.path()).unwrap();
                    format!(
                        "file {:o} {}",
                        meta.mode() & 0o777,
                        String::from_utf8_lossy(&bytes)
                    )
                };
                (rel, what)
            })
            .collect()
    }

    fn pack_all(sources: &[Source]) -> (Vec<u8>, Index) {
        let options = PackOptions {
            level: 1,
            threads: 1,
        };
        let (packed, bytes) = pack::pack(sources, Vec::new(), options, &NotesOnly).unwrap();
        (bytes, packed.index)
    }

    fn extract(bytes: &[u8], index: &Index, layout: Layout) -> (tempfile::TempDir, PathBuf) {
        let out = tempfile::tempdir().unwrap();
        let staging = out.path().join("staging");
        fs::create_dir(&staging).unwrap();
        let mode = Mode::Extract {
            staging: &staging,
            owner: None,
        };
        unpack(bytes, index, mode, layout, &NotesOnly).unwrap();
        finish_directories(&staging, index).unwrap();
        (out, staging)
    }

    fn verify(bytes: &[u8], index: &Index, layout: Layout) -> Result<Unpacked, ArchiveError> {
        unpack(
            bytes,
            index,
            Mode::Verify { max_problems: 10 },
            layout,
            &NotesOnly,
        )
    }

    #[test]
    fn names_that_sort_differently_as_text_and_by_part_round_trip() {
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        // As text "a-b" < "a.b" < "a/x"; the walk visits a/x right after a.
        put(&s.join("db/a/x"), b"ax");
        put(&s.join("db/a/x-y/z"), b"axyz");
        put(&s.join("db/a-b"), b"a-b");
        put(&s.join("db/a.b/c"), b"a.b/c");
        symlink("c", s.join("db/a.b/l")).unwrap();
        symlink("../a/x", s.join("db/a.b/up")).unwrap();
        symlink("later", s.join("db/dangling")).unwrap();
        put(&s.join("uploads/u"), b"u");
        put(&s.join("security/k"), b"k");
        let sources: Vec<Source> = ["db", "uploads", "security"]
            .into_iter()
            .map(|root| Source {
                root,
                dir: s.join(root),
                skip_contents_of: vec![],
            })
            .collect();
        let (bytes, index) = pack_all(&sources);
        let found = verify(&bytes, &index, Layout::FOLDERS_ONLY).unwrap();
        assert_eq!(found.problem_count, 0, "{:?}", found.problems);
        assert_eq!(found.counts.symlinks, 3);
        let (_out, staging) = extract(&bytes, &index, Layout::FOLDERS_ONLY);
        let mut want = tree(s);
        // security/ is made owner-only whatever its source said.
        want.insert("security/k".into(), "file 600 k".into());
        assert_eq!(tree(&staging), want);
    }

    #[test]
    fn a_logical_backups_single_walk_round_trips() {
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        for name in [
            "acl_backup.json",
            "acl_info.json",
            "t_info.json",
            "users_info.json",
        ] {
            put(&s.join(name), name.as_bytes());
        }
        put(&s.join("security/k"), b"k");
        put(&s.join("uploads/a/b"), b"b");
        let sources = [Source {
            root: "",
            dir: s.to_path_buf(),
            skip_contents_of: vec![],
        }];
        let (bytes, index) = pack_all(&sources);
        // The producer names its top-level files; this one's end in `.json`.
        let layout = Layout {
            top_level_file: |name| name.ends_with(".json"),
        };
        assert_eq!(verify(&bytes, &index, layout).unwrap().problem_count, 0);
        let (_out, staging) = extract(&bytes, &index, layout);
        assert_eq!(tree(&staging).len(), tree(s).len());
        assert_eq!(
            fs::read(staging.join("users_info.json")).unwrap(),
            b"users_info.json"
        );
    }

    #[test]
    fn a_root_given_as_a_link_is_archived_and_restored_as_a_folder() {
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        put(&s.join("elsewhere/catalog/CURRENT"), b"MANIFEST-1");
        symlink(s.join("elsewhere"), s.join("db")).unwrap();
        let sources = [Source {
            root: "db",
            dir: s.join("db"),
            skip_contents_of: vec![],
        }];
        let (bytes, index) = pack_all(&sources);
        let (_out, staging) = extract(&bytes, &index, Layout::FOLDERS_ONLY);
        assert!(staging.join("db").symlink_metadata().unwrap().is_dir());
        assert_eq!(
            fs::read(staging.join("db/catalog/CURRENT")).unwrap(),
            b"MANIFEST-1"
        );
    }

    /// A tar of raw members (name, type, link target, bytes) and an index that matches it.
    fn forge(members: &[(&str, tar::EntryType, &str, &[u8])]) -> (Vec<u8>, Index) {
        let mut tar = tar::Builder::new(Vec::new());
        let mut entries = Vec::new();
        for &(name, kind, link, data) in members {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_cksum();
            tar.append(&h, data).unwrap();
            let kind = match kind {
                tar::EntryType::Directory => EntryKind::Dir,
                tar::EntryType::Symlink => EntryKind::Symlink,
                _ => EntryKind::File,
            };
            entries.push(FileEntry {
                path: name.trim_end_matches('/').to_string(),
                kind,
                size: data.len() as u64,
                mode: 0o644,
                mtime: 0,
                sha256: (kind == EntryKind::File).then(|| hex::encode(Sha256::digest(data))),
                target: (kind == EntryKind::Symlink).then(|| link.to_string()),
                object: None,
            });
        }
        let raw = tar.into_inner().unwrap();
        (
            zstd::encode_all(&raw[..], 1).unwrap(),
            Index::Inline(entries),
        )
    }

    fn refusal(r: Result<Unpacked, ArchiveError>) -> (String, String) {
        match r {
            Err(ArchiveError::UnsafeEntry { path, why }) => (path, why),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    use tar::EntryType::{Directory as D, Regular as F, Symlink as L};

    #[test]
    fn the_issues_chain_of_links_is_refused_in_both_modes_and_writes_nothing() {
        let chain: &[(&str, tar::EntryType, &str, &[u8])] = &[
            ("db/", D, "", b""),
            ("db/s", L, ".", b""),
            ("db/t", L, "s/s/..", b""),
            ("db/t2", L, "t/..", b""),
            ("db/t2/x/", D, "", b""),
            ("db/t2/x/pwned.txt", F, "", b"pwned"),
        ];
        let (bytes, index) = forge(chain);
        let (path, why) = refusal(verify(&bytes, &index, Layout::FOLDERS_ONLY));
        assert_eq!(
            (path.as_str(), why.contains("through a link")),
            ("db/t2/x", true),
            "{why}"
        );
        let out = tempfile::tempdir().unwrap();
        let staging = out.path().join("staging");
        fs::create_dir(&staging).unwrap();
        let mode = Mode::Extract {
            staging: &staging,
            owner: None,
        };
        refusal(unpack(
            &bytes[..],
            &index,
            mode,
            Layout::FOLDERS_ONLY,
            &NotesOnly,
        ));
        assert_eq!(
            tree(out.path()).into_keys().collect::<Vec<_>>(),
            ["staging", "staging/db"]
        );

        // The links alone: every one is fine as text, db/t leads to the staging folder.
        let (bytes, index) = forge(&chain[..4]);
        let (path, why) = refusal(verify(&bytes, &index, Layout::FOLDERS_ONLY));
        assert_eq!(path, "db/t", "{why}");
        let mode = Mode::Extract {
            staging: &staging,
            owner: None,
        };
        fs::remove_dir_all(staging.join("db")).unwrap();
        assert_eq!(
            refusal(unpack(
                &bytes[..],
                &index,
                mode,
                Layout::FOLDERS_ONLY,
                &NotesOnly
            ))
            .0,
            "db/t"
        );
        assert_eq!(
            tree(&staging).into_keys().collect::<Vec<_>>(),
            ["db"],
            "no link was made"
        );
    }

    #[test]
    fn a_forged_long_name_cannot_make_the_reader_hold_it() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut long = tar::Header::new_gnu();
        long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        long.set_entry_type(tar::EntryType::GNULongName);
        long.set_size(8 << 20);
        long.set_cksum();
        tar.append(&long, &vec![b'a'; 8 << 20][..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(0);
        h.set_cksum();
        tar.append(&h, io::empty()).unwrap();
        let bytes = zstd::encode_all(&tar.into_inner().unwrap()[..], 1).unwrap();
        let err = verify(&bytes, &Index::Inline(vec![]), Layout::FOLDERS_ONLY).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::Corrupt(why) if why.contains("past 1 MiB")),
            "{err}"
        );
    }

    #[test]
    fn finishing_folders_never_follows_a_link() {
        let (bytes, index) = forge(&[("db/", D, "", b""), ("db/a/", D, "", b"")]);
        let (_out, staging) = extract(&bytes, &index, Layout::FOLDERS_ONLY);
        let outside = tempfile::tempdir().unwrap();
        fs::remove_dir(staging.join("db/a")).unwrap();
        symlink(outside.path(), staging.join("db/a")).unwrap();
        let before = fs::metadata(outside.path()).unwrap().mode();
        let err = finish_directories(&staging, &index).unwrap_err();
        assert!(
            matches!(err, ArchiveError::UnsafeEntry { ref path, .. } if path == "db/a"),
            "{err}"
        );
        assert_eq!(fs::metadata(outside.path()).unwrap().mode(), before);
    }
}
