//! File system calls that cannot leave a folder: every path is resolved beneath a directory handle
//! with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), and every file,
//! folder and link is created relative to its parent's handle, following nothing. Paths given
//! here are relative, without `.`, `..` or empty parts (`guard::check_relative`).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::guard::{name_of, parent_of};
use crate::fsutil::Owner;

/// Set once openat2 answers ENOSYS, as on Linux before 5.6 (RHEL 8's 4.18) or under an old seccomp
/// profile: from then on paths are walked one part at a time, none of them followed.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// openat2 answers EAGAIN when a rename elsewhere races a lookup; a few retries are enough.
const EAGAIN_RETRIES: usize = 16;

const NO_LINKS: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// Whether an error of these calls means the path met a link or tried to leave the folder.
pub fn is_escape(e: &io::Error) -> bool {
    [Errno::LOOP, Errno::XDEV, Errno::NOTDIR]
        .iter()
        .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
}

/// How a link resolved when followed beneath its root.
#[derive(Debug, PartialEq, Eq)]
pub enum Followed {
    Inside,
    /// Some part of the way does not exist (yet); nothing on the way left the root.
    Dangling,
    Escapes,
    Loops,
    /// The kernel cannot say (no openat2): the archive-level resolution is all there is.
    Unchecked,
}

/// A folder, and the handle of the last folder inside it that was opened: members arrive in walk
/// order, so most share their parent with the member before. With an owner, everything created
/// is given to it as it is made (no second walk over the tree).
pub struct Beneath {
    root: OwnedFd,
    path: PathBuf,
    cached: Option<(String, OwnedFd)>,
    owner: Option<Owner>,
}

impl Beneath {
    /// Opens `dir` itself (not through a link).
    pub fn open(dir: &Path) -> io::Result<Beneath> {
        let root = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Beneath {
            root,
            path: dir.to_path_buf(),
            cached: None,
            owner: None,
        })
    }

    /// Gives every folder, file and link created from now on to `owner` (`None`: the caller's).
    pub fn owned_by(mut self, owner: Option<Owner>) -> Beneath {
        self.owner = owner;
        self
    }

    /// Where `rel` is, for messages.
    pub fn display(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// The handle of folder `rel` (`""`: the folder itself).
    fn folder(&mut self, rel: &str) -> io::Result<BorrowedFd<'_>> {
        if rel.is_empty() {
            return Ok(self.root.as_fd());
        }
        if !matches!(&self.cached, Some((path, _)) if path == rel) {
            let fd = open_beneath(self.root.as_fd(), rel, OFlags::PATH | OFlags::DIRECTORY)?;
            self.cached = Some((rel.to_string(), fd));
        }
        Ok(self.cached.as_ref().expect("cached above").1.as_fd())
    }

    pub fn mkdir(&mut self, rel: &str, mode: u32) -> io::Result<()> {
        let owner = self.owner;
        let dir = self.folder(parent_of(rel))?;
        rustix::fs::mkdirat(dir, name_of(rel), Mode::from_raw_mode(mode))?;
        chown_at(dir, name_of(rel), owner)
    }

    /// Creates a new file, owner-only until its mode is set; never opens an existing one.
    pub fn create_file(&mut self, rel: &str) -> io::Result<File> {
        let dir = self.folder(parent_of(rel))?;
        let fd = rustix::fs::openat(
            dir,
            name_of(rel),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        if let Some(o) = self.owner {
            let (uid, gid) = ids(o)?;
            rustix::fs::fchown(&fd, Some(uid), Some(gid))?;
        }
        Ok(File::from(fd))
    }

    pub fn symlink(&mut self, rel: &str, target: &str) -> io::Result<()> {
        let owner = self.owner;
        let dir = self.folder(parent_of(rel))?;
        rustix::fs::symlinkat(target, dir, name_of(rel))?;
        chown_at(dir, name_of(rel), owner)
    }

    /// Opens folder `rel` for reading (to set its mode and times).
    pub fn open_dir(&self, rel: &str) -> io::Result<File> {
        open_beneath(self.root.as_fd(), rel, OFlags::RDONLY | OFlags::DIRECTORY).map(File::from)
    }

    /// Follows the link `rel` (relative to the root folder `root`) as the kernel would, through
    /// every other link, without ever leaving `root`.
    pub fn follow_link(&self, root: &str, rel: &str) -> io::Result<Followed> {
        let root = open_beneath(self.root.as_fd(), root, OFlags::PATH | OFlags::DIRECTORY)?;
        if NO_OPENAT2.load(Ordering::Relaxed) {
            return Ok(Followed::Unchecked);
        }
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let flags = OFlags::PATH | OFlags::CLOEXEC;
        match retry_eagain(|| rustix::fs::openat2(&root, rel, flags, Mode::empty(), resolve)) {
            Ok(_) => Ok(Followed::Inside),
            Err(Errno::NOENT | Errno::NOTDIR) => Ok(Followed::Dangling),
            Err(Errno::XDEV) => Ok(Followed::Escapes),
            Err(Errno::LOOP) => Ok(Followed::Loops),
            Err(Errno::NOSYS) => {
                NO_OPENAT2.store(true, Ordering::Relaxed);
                Ok(Followed::Unchecked)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Gives `name` in `dir` (the entry itself, never a link's target) to `owner`, if any.
fn chown_at(dir: BorrowedFd<'_>, name: &str, owner: Option<Owner>) -> io::Result<()> {
    if let Some(o) = owner {
        let (uid, gid) = ids(o)?;
        let nofollow = rustix::fs::AtFlags::SYMLINK_NOFOLLOW;
        rustix::fs::chownat(dir, name, Some(uid), Some(gid), nofollow)?;
    }
    Ok(())
}

/// The ids of `owner`; -1 (which chown reads as "leave unchanged") is no owner.
fn ids(owner: Owner) -> io::Result<(rustix::fs::Uid, rustix::fs::Gid)> {
    if owner.uid == u32::MAX || owner.gid == u32::MAX {
        return Err(io::Error::from(Errno::INVAL));
    }
    Ok((
        rustix::fs::Uid::from_raw(owner.uid),
        rustix::fs::Gid::from_raw(owner.gid),
    ))
}

/// Opens `rel` beneath `dir`: a symbolic link anywhere on the way fails (ELOOP, or ENOTDIR without
/// openat2), and so does any way out of `dir` (EXDEV).
fn open_beneath(dir: BorrowedFd<'_>, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let open =
            || rustix::fs::openat2(dir, rel, flags | OFlags::CLOEXEC, Mode::empty(), NO_LINKS);
        match retry_eagain(open) {
            Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            other => return other.map_err(io::Error::from),
        }
    }
    walk_beneath(dir, rel, flags)
}

/// [`open_beneath`] without openat2: one part at a time, each opened with O_NOFOLLOW (a link
/// opened as a folder with O_PATH | O_NOFOLLOW is not a folder: ENOTDIR).
fn walk_beneath(dir: BorrowedFd<'_>, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let (parent, name) = (parent_of(rel), name_of(rel));
    let mut held: Option<OwnedFd> = None;
    if !parent.is_empty() {
        for part in parent.split('/') {
            let at = held.as_ref().map_or(dir, |fd| fd.as_fd());
            let step = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            held = Some(rustix::fs::openat(at, plain(part)?, step, Mode::empty())?);
        }
    }
    let at = held.as_ref().map_or(dir, |fd| fd.as_fd());
    let last = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(at, plain(name)?, last, Mode::empty())?)
}

/// A part that names something inside its folder.
fn plain(part: &str) -> io::Result<&str> {
    match part {
        "" | "." | ".." => Err(io::Error::from(Errno::XDEV)),
        p => Ok(p),
    }
}

fn retry_eagain<T>(mut call: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    let mut tries = 0;
    loop {
        match call() {
            Err(Errno::AGAIN) if tries < EAGAIN_RETRIES => tries += 1,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// t/ holds r/ (a folder with a/ and a file f) and, inside r/, links of every sort.
    fn tree() -> (tempfile::TempDir, Beneath) {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("r");
        std::fs::create_dir_all(r.join("a")).unwrap();
        std::fs::write(r.join("f"), b"f").unwrap();
        for (link, target) in [
            ("la", "a"),
            ("up", ".."),
            ("abs", "/etc"),
            ("dangling", "nowhere/x"),
            ("loop", "loop"),
            ("s", "."),
            ("t", "s/s/.."),
        ] {
            symlink(target, r.join(link)).unwrap();
        }
        let b = Beneath::open(t.path()).unwrap();
        (t, b)
    }

    fn errno(r: io::Result<impl std::fmt::Debug>) -> i32 {
        r.expect_err("refused").raw_os_error().unwrap()
    }

    #[test]
    fn opening_never_follows_a_link_nor_leaves_the_folder() {
        let (_t, b) = tree();
        let root = b.root.as_fd();
        let dir = OFlags::PATH | OFlags::DIRECTORY;
        open_beneath(root, "r/a", dir).unwrap();
        for rel in ["r/la", "r/la/x", "r/s/a", "r/t"] {
            assert_eq!(errno(open_beneath(root, rel, dir)), libc::ELOOP, "{rel}");
        }
        assert_eq!(errno(open_beneath(root, "r/../..", dir)), libc::EXDEV);
        assert!(is_escape(&open_beneath(root, "r/la/x", dir).unwrap_err()));
    }

    #[test]
    fn the_walk_without_openat2_never_follows_a_link_either() {
        let (_t, b) = tree();
        let root = b.root.as_fd();
        walk_beneath(root, "r/a", OFlags::PATH | OFlags::DIRECTORY).unwrap();
        walk_beneath(root, "r/a", OFlags::RDONLY | OFlags::DIRECTORY).unwrap();
        for (rel, flags) in [
            ("r/la", OFlags::PATH | OFlags::DIRECTORY),
            ("r/la", OFlags::RDONLY | OFlags::DIRECTORY),
            ("r/la/x", OFlags::PATH | OFlags::DIRECTORY),
            ("r/s/a", OFlags::RDONLY | OFlags::DIRECTORY),
            ("r/up/r", OFlags::PATH | OFlags::DIRECTORY),
            ("r/../r", OFlags::PATH | OFlags::DIRECTORY),
            ("r/f/x", OFlags::PATH | OFlags::DIRECTORY),
        ] {
            let e = walk_beneath(root, rel, flags).unwrap_err();
            assert!(is_escape(&e), "{rel}: {e}");
        }
    }

    #[test]
    fn creating_never_goes_through_or_replaces_a_link() {
        let (t, mut b) = tree();
        b.mkdir("r/new", 0o700).unwrap();
        drop(b.create_file("r/new/x").unwrap());
        assert!(t.path().join("r/new/x").is_file());
        assert!(is_escape(&b.create_file("r/la/x").unwrap_err()));
        assert!(is_escape(&b.mkdir("r/t/x", 0o700).unwrap_err()));
        assert!(is_escape(&b.symlink("r/up/x", "y").unwrap_err()));
        assert_eq!(errno(b.create_file("r/la")), libc::EEXIST);
        assert_eq!(errno(b.create_file("r/dangling")), libc::EEXIST);
        assert_eq!(errno(b.mkdir("r/up", 0o700)), libc::EEXIST);
        assert!(!t.path().join("r/a/x").exists() && !t.path().join("x").exists());
        b.symlink("r/new/l", "../a").unwrap();
        assert_eq!(
            std::fs::read_link(t.path().join("r/new/l")).unwrap(),
            Path::new("../a")
        );
    }

    #[test]
    fn links_are_followed_by_the_kernel_within_their_root() {
        let (_t, b) = tree();
        let follow = |rel| b.follow_link("r", rel).unwrap();
        assert_eq!(follow("la"), Followed::Inside);
        assert_eq!(follow("s"), Followed::Inside);
        assert_eq!(follow("dangling"), Followed::Dangling);
        assert_eq!(follow("up"), Followed::Escapes);
        assert_eq!(follow("abs"), Followed::Escapes);
        assert_eq!(follow("t"), Followed::Escapes);
        assert_eq!(follow("loop"), Followed::Loops);
    }
}
