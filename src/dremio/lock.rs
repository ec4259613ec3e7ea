//! RocksDB's lock on `catalog/LOCK`: a POSIX record lock (fcntl), which `flock()` cannot see.
//!
//! POSIX record locks belong to the process and are released when ANY descriptor of the file is
//! closed by it, so nothing else in lifeboat may open a LOCK file while a [`HeldLock`] is alive.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Who holds the lock, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's pid (0 when the kernel does not say, e.g. across NFS).
    pub pid: i32,
}

/// Asks the kernel whether another process holds a record lock on `lock_file` (F_GETLK).
/// A missing file means nobody holds it.
pub fn holder(lock_file: &Path) -> io::Result<Option<Holder>> {
    let file = match File::open(lock_file) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // Whole file (l_len 0 from the start): the range RocksDB locks.
    let mut fl = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETLK(&mut fl))?;
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
    // F_SETLK on the whole file, as RocksDB takes it; EACCES/EAGAIN: someone else holds it.
    if let Err(err) =
        rustix::fs::fcntl_lock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
    {
        return if err == rustix::io::Errno::ACCESS || err == rustix::io::Errno::AGAIN {
            Ok(TakeLock::Busy(
                holder(lock_file)?.unwrap_or(Holder { pid: 0 }),
            ))
        } else {
            Err(err.into())
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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    use super::*;

    /// Another process holds a POSIX record lock (as RocksDB does, through Python's lockf) until
    /// its stdin closes; it says "held" once it has it.
    #[test]
    fn a_lock_held_elsewhere_is_seen_with_its_pid_and_is_free_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("LOCK");
        std::fs::write(&lock, b"").unwrap();
        assert_eq!(holder(&lock).unwrap(), None);

        let script = "import fcntl,sys\nf=open(sys.argv[1],'r+')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('held',flush=True)\nsys.stdin.read()\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(&lock)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "held");

        let pid = child.id() as i32;
        assert_eq!(holder(&lock).unwrap(), Some(Holder { pid }));
        match take(&lock).unwrap() {
            TakeLock::Busy(h) => assert_eq!(h.pid, pid),
            other => panic!("expected Busy, got {other:?}"),
        }

        child.stdin.take().unwrap().write_all(b"").unwrap();
        child.wait().unwrap();
        assert!(matches!(take(&lock).unwrap(), TakeLock::Taken(_)));
    }

    #[test]
    fn a_missing_lock_file_is_free_and_created_when_taken() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("LOCK");
        assert_eq!(holder(&lock).unwrap(), None);
        let TakeLock::Taken(held) = take(&lock).unwrap() else {
            panic!("a missing lock is free");
        };
        assert!(held.path.exists());
    }
}
