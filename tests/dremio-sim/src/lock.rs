//! The master lock: a POSIX record lock (fcntl `F_SETLK`, write lock over the whole file) on
//! `<paths.local>/db/catalog/LOCK`, like RocksDB's. `flock()` would not conflict with it on Linux.
//!
//! POSIX record locks belong to the process and are dropped when ANY descriptor of the file in this
//! process is closed, so the simulator opens the LOCK file exactly once and keeps it open.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Path of the lock file under a `paths.local`.
pub fn lock_path(paths_local: &Path) -> PathBuf {
    paths_local.join("db").join("catalog").join("LOCK")
}

/// A held master lock (released when dropped or when the process ends).
#[derive(Debug)]
pub struct MasterLock {
    file: File,
}

impl MasterLock {
    /// The descriptor holding the lock.
    pub fn raw_fd(&self) -> i32 {
        self.file.as_raw_fd()
    }
}

/// Tries once to take the lock. `Ok(None)` when another process holds it.
pub fn try_lock(path: &Path) -> io::Result<Option<MasterLock>> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    // SAFETY: `flock` is a plain C struct; all-zero is a valid value we then fill in.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    // SAFETY: valid descriptor and a valid pointer to an initialised flock struct.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) };
    if rc == 0 {
        return Ok(Some(MasterLock { file }));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(None),
        _ => Err(err),
    }
}

/// Polls [`try_lock`] every `interval` until the lock is ours.
pub fn wait_lock(path: &Path, interval: Duration) -> io::Result<MasterLock> {
    loop {
        if let Some(l) = try_lock(path)? {
            return Ok(l);
        }
        std::thread::sleep(interval);
    }
}

/// The lock as a coordinator takes it at start: at once, or (printing a standby line) once the
/// active coordinator lets go.
pub fn take_or_wait(path: &Path) -> io::Result<MasterLock> {
    if let Some(l) = try_lock(path)? {
        return Ok(l);
    }
    println!(
        "dremio-sim: standby, waiting for the lock on {}",
        path.display()
    );
    io::stdout().flush()?;
    wait_lock(path, Duration::from_millis(200))
}

/// Pid of the process holding a conflicting lock (F_GETLK), if any.
pub fn holder_pid(path: &Path) -> io::Result<Option<i32>> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    // SAFETY: as above.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: valid descriptor and pointer.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(if fl.l_type == libc::F_UNLCK as libc::c_short {
        None
    } else {
        Some(fl.l_pid)
    })
}
