//! The lock probe: do POSIX record locks on the shared volume exclude another process? RocksDB's
//! `LOCK` (an fcntl write lock) is all that keeps two masters off one KV store. Record locks never
//! conflict within one process, so a child process holds the lock while this one tries to take it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::check::{Area, Check};

const A: Area = Area::Lock;
/// What the holder prints once it holds the lock.
const HELD: &str = "held";
/// A lock request over NFS waits on the server's lock manager; longer than this is broken.
const WAIT: Duration = Duration::from_secs(15);

/// Whole-file write lock without waiting (F_SETLK), or its release.
fn set_lock(file: &File, lock: bool) -> io::Result<()> {
    let kind = if lock { libc::F_WRLCK } else { libc::F_UNLCK };
    let fl = libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_SETLK(&fl))?;
    Ok(())
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// The child's side (run by the hidden `lifeboat doctor-lock-holder FILE`): takes the lock, says
/// so on stdout, and holds it until stdin closes.
pub fn hold(path: &Path) -> io::Result<()> {
    let file = open(path)?;
    set_lock(&file, true)?;
    let mut out = io::stdout().lock();
    writeln!(out, "{HELD}")?;
    out.flush()?;
    let mut rest = Vec::new();
    io::stdin().lock().read_to_end(&mut rest)?;
    drop(file);
    Ok(())
}

/// Removes the probe file however the probe ends.
struct ProbeFile(PathBuf);

impl Drop for ProbeFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(dir) = self.0.parent() {
            let _ = crate::fsutil::sync_dir(dir);
        }
    }
}

/// Runs the probe in `dir` (paths.local, never its `db/`). `holder` is the command that runs
/// [`hold`] on the file given as its last argument.
pub fn probe(dir: &Path, mut holder: Command) -> Check {
    let mut tag = [0u8; 4];
    let _ = getrandom::fill(&mut tag);
    let file = ProbeFile(dir.join(format!(".lifeboat-doctor-lock-{}", hex::encode(tag))));
    let verdict = run(&file.0, &mut holder);
    let (summary, remedy) = match verdict {
        Ok(()) => {
            let held =
                "a lock held by another process excludes this one, and is free once released";
            return Check::pass("lock.probe", A, held)
                .evidence("file", file.0.display().to_string());
        }
        Err(Refusal::NoLocks(e)) => (
            format!("the volume has no working locks: {e}"),
            "start the NFS lock service (rpc.statd and lockd for v3); mount without nolock or local_lock",
        ),
        Err(Refusal::NotExclusive) => (
            "a second process took a lock another one held: two masters could open the KV store"
                .into(),
            "mount without nolock and with local_lock=none; check the NFS server's lock manager",
        ),
        Err(Refusal::Other(e)) => (
            e,
            "paths.local must be writable by lifeboat's user to probe it (or give --no-probe)",
        ),
    };
    let c = Check::fail("lock.probe", A, summary).remedy(remedy);
    c.evidence("file", file.0.display().to_string())
}

enum Refusal {
    NoLocks(io::Error),
    NotExclusive,
    Other(String),
}

fn refusal(what: &str, e: io::Error) -> Refusal {
    if e.raw_os_error() == Some(libc::ENOLCK) {
        Refusal::NoLocks(e)
    } else {
        Refusal::Other(format!("{what}: {e}"))
    }
}

fn run(path: &Path, holder: &mut Command) -> Result<(), Refusal> {
    let mine = open(path).map_err(|e| refusal(&format!("cannot create {}", path.display()), e))?;
    let mut child = holder
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Refusal::Other(format!("cannot start the lock holder: {e}")))?;
    let outcome = against_holder(&mine, &mut child);
    // Closing stdin releases the holder; kill() only reaps one that already failed.
    drop(child.stdin.take());
    if outcome.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
    outcome?;
    set_lock(&mine, true)
        .map_err(|e| refusal("the lock was not free after its holder ended", e))?;
    set_lock(&mine, false).map_err(|e| refusal("cannot release the lock", e))
}

/// Waits (bounded) until the child holds the lock, then must be refused it.
fn against_holder(mine: &File, child: &mut Child) -> Result<(), Refusal> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Refusal::Other("no holder output".into()))?;
    let stderr = child.stderr.take();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let mut err = String::new();
        if line.trim() != HELD
            && let Some(mut e) = stderr
        {
            let _ = e.read_to_string(&mut err);
        }
        let _ = tx.send((line, err));
    });
    let (line, err) = rx.recv_timeout(WAIT).map_err(|_| {
        Refusal::Other(format!(
            "the holder did not get the lock within {} s",
            WAIT.as_secs()
        ))
    })?;
    if line.trim() != HELD {
        if err.contains("No locks available") {
            return Err(Refusal::NoLocks(io::Error::from_raw_os_error(libc::ENOLCK)));
        }
        return Err(Refusal::Other(format!(
            "the holder could not lock: {}",
            err.trim()
        )));
    }
    match set_lock(mine, true) {
        Ok(()) => Err(Refusal::NotExclusive),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(()),
        Err(e) => Err(refusal("locking while another process holds the lock", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A holder that takes no lock at all: the probe must see that nothing excluded it.
    #[test]
    fn a_holder_that_holds_nothing_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = Command::new("sh");
        fake.args(["-c", "echo held; cat >/dev/null", "sh"]);
        let c = probe(dir.path(), fake);
        assert_eq!(c.status, super::super::Status::Fail, "{c:?}");
        assert!(
            c.summary.contains("took a lock another one held"),
            "{}",
            c.summary
        );
        assert!(crate::fsutil::entries(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn a_holder_that_cannot_start_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = probe(dir.path(), Command::new("/nonexistent/holder"));
        assert_eq!(c.status, super::super::Status::Fail);
        assert!(crate::fsutil::entries(dir.path()).unwrap().is_empty());
    }
}
