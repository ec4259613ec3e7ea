//! Unpacking: read a tar+zstd stream, check every member against the index (path, kind, size,
//! SHA-256), refuse members that could escape the target, and optionally extract into a staging folder.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::index::Index;
use super::manifest::Counts;
use super::{ArchiveError, EntryKind, FileEntry, Layout, Problem, ROOTS};
use crate::progress::Progress;

/// Roots whose members get owner-only permissions whatever the archive says.
pub const PRIVATE_ROOTS: [&str; 1] = ["security"];

/// Check only, or check and write into `staging` (which must exist and be empty).
#[derive(Debug, Clone, Copy)]
pub enum Mode<'a> {
    Verify { max_problems: usize },
    Extract { staging: &'a Path },
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

struct Run<'a> {
    mode: Mode<'a>,
    out: Unpacked,
    links_made: bool,
    staging_real: Option<PathBuf>,
    buf: Vec<u8>,
}

/// Reads the whole compressed stream and checks it against `index`. In extract mode the first problem
/// is an error (the caller discards the staging folder); in verify mode problems are collected.
pub fn unpack<R: Read>(
    compressed: R,
    index: &Index,
    mode: Mode<'_>,
    layout: Layout,
    progress: &dyn Progress,
) -> Result<Unpacked, ArchiveError> {
    let decoder = zstd::stream::read::Decoder::new(compressed)
        .map_err(|e| ArchiveError::Corrupt(format!("zstd: {e}")))?;
    let mut archive = tar::Archive::new(decoder);
    let staging_real = match mode {
        Mode::Extract { staging } => {
            Some(
                fs::canonicalize(staging).map_err(|source| ArchiveError::WriteTarget {
                    path: staging.to_path_buf(),
                    source,
                })?,
            )
        }
        Mode::Verify { .. } => None,
    };
    let mut run = Run {
        mode,
        out: Unpacked::default(),
        links_made: false,
        staging_real,
        buf: vec![0u8; 256 * 1024],
    };
    let mut expected = index.iter()?;
    let mut aligned = true;

    let entries = archive.entries().map_err(corrupt)?;
    for entry in entries {
        let mut entry = entry.map_err(corrupt)?;
        let path = member_path(&entry, layout)?;
        let want = if aligned {
            expected.next().transpose()?
        } else {
            None
        };
        let Some(want) = want else {
            if aligned {
                run.problem(
                    &path,
                    "no such member (the manifest ends before it)",
                    "an extra member",
                )?;
                aligned = false;
            }
            drain(&mut entry, &mut run.buf)?;
            continue;
        };
        if want.path != path {
            run.problem(
                &want.path,
                &format!("member {:?} next", want.path),
                &format!("{path:?}"),
            )?;
            aligned = false;
            drain(&mut entry, &mut run.buf)?;
            continue;
        }
        run.member(&mut entry, &want, progress)?;
    }
    if aligned && let Some(missing) = expected.next().transpose()? {
        let rest = expected.count();
        run.problem(
            &missing.path,
            "this member",
            &format!("the archive ends before it ({} more missing)", rest),
        )?;
    }
    // Reading the decoder to its end makes zstd check that the frame (and its checksum) is whole.
    let mut decoder = archive.into_inner();
    io::copy(&mut decoder, &mut io::sink()).map_err(corrupt)?;
    Ok(run.out)
}

fn corrupt(e: io::Error) -> ArchiveError {
    ArchiveError::Corrupt(e.to_string())
}

fn drain<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<(), ArchiveError> {
    while r.read(buf).map_err(corrupt)? > 0 {}
    Ok(())
}

/// The member's path, refused if it is not a plain relative path under one of the known roots.
fn member_path<R: Read>(entry: &tar::Entry<'_, R>, layout: Layout) -> Result<String, ArchiveError> {
    let raw = entry.path_bytes();
    let path = std::str::from_utf8(&raw).map_err(|_| ArchiveError::UnsafeEntry {
        path: String::from_utf8_lossy(&raw).into(),
        why: "name is not UTF-8".into(),
    })?;
    let path = path.trim_end_matches('/').to_string();
    check_relative(&path)?;
    let root = path.split('/').next().unwrap_or("");
    let top_level_file = !path.contains('/')
        && entry.header().entry_type().is_file()
        && (layout.top_level_file)(&path);
    if !ROOTS.contains(&root) && !top_level_file {
        return Err(ArchiveError::UnsafeEntry {
            path,
            why: format!("outside the known folders ({})", ROOTS.join(", ")),
        });
    }
    Ok(path)
}

fn check_relative(path: &str) -> Result<(), ArchiveError> {
    let unsafe_entry = |why: &str| {
        Err(ArchiveError::UnsafeEntry {
            path: path.to_string(),
            why: why.to_string(),
        })
    };
    if path.is_empty() {
        return unsafe_entry("empty name");
    }
    for c in Path::new(path).components() {
        match c {
            Component::Normal(_) => {}
            Component::ParentDir => return unsafe_entry("contains '..'"),
            Component::RootDir | Component::Prefix(_) => return unsafe_entry("absolute path"),
            Component::CurDir => return unsafe_entry("contains '.'"),
        }
    }
    Ok(())
}

/// A symlink target is safe when it is relative and, resolved from the link's folder, stays inside
/// the link's own root (`db/`, `uploads/`, `security/`).
fn check_link_target(link: &str, target: &str) -> Result<(), ArchiveError> {
    let refuse = |why: String| {
        Err(ArchiveError::UnsafeEntry {
            path: link.to_string(),
            why,
        })
    };
    if target.is_empty() || target.starts_with('/') {
        return refuse(format!("link to absolute path {target:?}"));
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for piece in target.split('/') {
        match piece {
            "" | "." => {}
            ".." => {
                parts.pop();
                if parts.is_empty() {
                    return refuse(format!("link {target:?} points outside its folder"));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(())
}

impl Run<'_> {
    /// Records a problem; in extract mode the first one ends the run.
    fn problem(&mut self, path: &str, expected: &str, found: &str) -> Result<(), ArchiveError> {
        let problem = Problem {
            path: path.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        };
        self.out.problem_count += 1;
        match self.mode {
            Mode::Extract { .. } => Err(ArchiveError::Mismatch {
                count: 1,
                first: problem.clone(),
                problems: vec![problem],
            }),
            Mode::Verify { max_problems } => {
                if self.out.problems.len() < max_problems {
                    self.out.problems.push(problem);
                }
                Ok(())
            }
        }
    }

    fn member<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        want: &FileEntry,
        progress: &dyn Progress,
    ) -> Result<(), ArchiveError> {
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink,
            other => {
                return Err(ArchiveError::UnsafeEntry {
                    path: want.path.clone(),
                    why: format!("member type {other:?} is never restored"),
                });
            }
        };
        if kind != want.kind {
            drain(entry, &mut self.buf)?;
            return self.problem(
                &want.path,
                &format!("a {:?}", want.kind),
                &format!("a {kind:?}"),
            );
        }
        let dest = match self.mode {
            Mode::Extract { staging } => Some(self.destination(staging, &want.path)?),
            Mode::Verify { .. } => None,
        };
        match kind {
            EntryKind::Dir => {
                self.out.counts.directories += 1;
                if let Some(dest) = dest {
                    DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(&dest)
                        .map_err(|source| ArchiveError::WriteTarget { path: dest, source })?;
                }
            }
            EntryKind::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                check_link_target(&want.path, &target)?;
                self.out.counts.symlinks += 1;
                if want.target.as_deref() != Some(target.as_str()) {
                    return self.problem(
                        &want.path,
                        &format!("link to {:?}", want.target.as_deref().unwrap_or("")),
                        &format!("link to {target:?}"),
                    );
                }
                if let Some(dest) = dest {
                    std::os::unix::fs::symlink(&target, &dest)
                        .map_err(|source| ArchiveError::WriteTarget { path: dest, source })?;
                    self.links_made = true;
                }
            }
            EntryKind::File => self.file(entry, want, dest, progress)?,
        }
        Ok(())
    }

    fn destination(&self, staging: &Path, path: &str) -> Result<PathBuf, ArchiveError> {
        let dest = staging.join(path);
        // Only once the archive has made links can a parent folder be a link; check then (cheap otherwise).
        if self.links_made
            && let (Some(parent), Some(root)) = (dest.parent(), &self.staging_real)
            && let Ok(real) = fs::canonicalize(parent)
            && !real.starts_with(root)
        {
            return Err(ArchiveError::UnsafeEntry {
                path: path.to_string(),
                why: "it would be written through a link outside the target".into(),
            });
        }
        Ok(dest)
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut R,
        want: &FileEntry,
        dest: Option<PathBuf>,
        progress: &dyn Progress,
    ) -> Result<(), ArchiveError> {
        let private = PRIVATE_ROOTS.contains(&want.path.split('/').next().unwrap_or(""));
        let mut out = match &dest {
            Some(dest) => Some(create_file(dest)?),
            None => None,
        };
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let n = entry.read(&mut self.buf).map_err(corrupt)?;
            if n == 0 {
                break;
            }
            hasher.update(&self.buf[..n]);
            if let Some(file) = out.as_mut() {
                file.write_all(&self.buf[..n])
                    .map_err(|source| ArchiveError::WriteTarget {
                        path: dest.clone().unwrap_or_default(),
                        source,
                    })?;
            }
            size += n as u64;
            progress.advance(n as u64);
        }
        let sha256 = hex::encode(hasher.finalize());
        self.out.counts.count_file(&want.path);
        self.out.raw_bytes += size;
        if size != want.size {
            return self.problem(
                &want.path,
                &format!("{} bytes", want.size),
                &format!("{size} bytes"),
            );
        }
        if want.sha256.as_deref() != Some(sha256.as_str()) {
            return self.problem(
                &want.path,
                &format!("sha256 {}", want.sha256.as_deref().unwrap_or("(none)")),
                &format!("sha256 {sha256}"),
            );
        }
        if let (Some(file), Some(dest)) = (out, dest) {
            let mode = if private { 0o600 } else { want.mode & 0o777 };
            // On the open descriptor: no second open per file.
            set_mode_and_mtime(&file, mode, want.mtime)
                .map_err(|source| ArchiveError::WriteTarget { path: dest, source })?;
        }
        Ok(())
    }
}

/// Sets folder modes and times after extraction (a read-only folder must not block its contents,
/// and writing into a folder changes its mtime). Streams the index again: bounded memory.
pub fn finish_directories(staging: &Path, index: &Index) -> Result<(), ArchiveError> {
    for entry in index.iter()? {
        let entry = entry?;
        if entry.kind != EntryKind::Dir {
            continue;
        }
        let private = PRIVATE_ROOTS.contains(&entry.root());
        let mode = if private { 0o700 } else { entry.mode & 0o777 };
        apply_mode_and_mtime(&staging.join(&entry.path), mode, entry.mtime)?;
    }
    Ok(())
}

/// Creates a new file (never through a link); its folder is made only when missing, since the
/// archive's folder entries normally come first.
fn create_file(dest: &Path) -> Result<File, ArchiveError> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dest)
    };
    let err = |source| ArchiveError::WriteTarget {
        path: dest.to_path_buf(),
        source,
    };
    match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dest.parent() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(err)?;
            }
            open().map_err(err)
        }
        other => other.map_err(err),
    }
}

fn set_mode_and_mtime(file: &File, mode: u32, mtime: i64) -> io::Result<()> {
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    let when = if mtime >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(mtime as u64)
    } else {
        SystemTime::UNIX_EPOCH
    };
    file.set_modified(when)
}

fn apply_mode_and_mtime(path: &Path, mode: u32, mtime: i64) -> Result<(), ArchiveError> {
    // Opened before its mode changes: a folder restored as 0o500 can still be opened for reading.
    File::open(path)
        .and_then(|f| set_mode_and_mtime(&f, mode, mtime))
        .map_err(|source| ArchiveError::WriteTarget {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_only() {
        assert!(check_relative("db/catalog/000012.sst").is_ok());
        assert!(check_relative("db/../etc/passwd").is_err());
        assert!(check_relative("/etc/passwd").is_err());
        assert!(check_relative("db/./x").is_ok() || check_relative("./db").is_err());
        assert!(check_relative("").is_err());
    }

    #[test]
    fn link_targets_must_stay_in_their_root() {
        assert!(check_link_target("db/catalog/link", "000012.sst").is_ok());
        assert!(check_link_target("db/catalog/link", "../blob/x").is_ok());
        assert!(check_link_target("db/link", "../security/key").is_err());
        assert!(check_link_target("db/a/link", "../../../etc").is_err());
        assert!(check_link_target("uploads/link", "/etc/passwd").is_err());
    }
}
