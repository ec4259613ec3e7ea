//! RocksDB's lock on `catalog/LOCK`: a POSIX record lock (fcntl), which `flock()` cannot see.
//!
//! POSIX record locks belong to the process and are released when ANY descriptor of the file is
//! closed by it, so nothing else in lifeboat may open a LOCK file while a [`HeldLock`] is alive.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Who holds the lock, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's pid (0 when the kernel does not say, e.g. across NFS).
    pub pid: i32,
}

fn flock_struct(kind: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is a plain C struct; all-zero is a valid value for every field.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    fl
}

/// Asks the kernel whether another process holds a record lock on `lock_file` (F_GETLK).
/// A missing file means nobody holds it.
pub fn holder(lock_file: &Path) -> io::Result<Option<Holder>> {
    let file = match File::open(lock_file) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut fl = flock_struct(libc::F_WRLCK as libc::c_short);
    // SAFETY: valid fd and a valid, initialised flock struct.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok((fl.l_type != libc::F_UNLCK as libc::c_short).then_some(Holder { pid: fl.l_pid }))
}

fn give_to_folder_owner(file: &File, lock_file: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(dir) = lock_file.parent() else {
        return Ok(());
    };
    let owner = std::fs::metadata(dir)?;
    let mine = file.metadata()?;
    if (mine.uid(), mine.gid()) != (owner.uid(), owner.gid()) {
        std::os::unix::fs::fchown(file, Some(owner.uid()), Some(owner.gid()))?;
    }
    Ok(())
}

/// The same write lock a coordinator takes; while it is held, no coordinator can start on this store.
#[derive(Debug)]
pub struct HeldLock {
    _file: File,
    pub path: PathBuf,
}

/// Outcome of trying to take the store's lock.
#[derive(Debug)]
pub enum TakeLock {
    Taken(HeldLock),
    /// Another process holds it.
    Busy(Holder),
    /// lifeboat may not open the file for writing (e.g. not the Dremio user); only probed.
    ProbedOnly,
}

/// Takes the write lock without waiting. A missing LOCK file is created, as RocksDB would.
pub fn take(lock_file: &Path) -> io::Result<TakeLock> {
    let existed = lock_file.exists();
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock_file)
    {
        Ok(f) => f,
        // Not the Dremio user, or a read-only sandbox (systemd's ProtectSystem): probe only.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            return Ok(match holder(lock_file)? {
                Some(h) => TakeLock::Busy(h),
                None => TakeLock::ProbedOnly,
            });
        }
        Err(e) => return Err(e),
    };
    let fl = flock_struct(libc::F_WRLCK as libc::c_short);
    // SAFETY: valid fd and a valid, initialised flock struct.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) };
    if rc == -1 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EACCES | libc::EAGAIN) => Ok(TakeLock::Busy(
                holder(lock_file)?.unwrap_or(Holder { pid: 0 }),
            )),
            _ => Err(err),
        };
    }
    if !existed {
        // Created by us (perhaps as root): it must stay usable by Dremio's own user.
        give_to_folder_owner(&file, lock_file)?;
    }
    Ok(TakeLock::Taken(HeldLock {
        _file: file,
        path: lock_file.to_path_buf(),
    }))
}
