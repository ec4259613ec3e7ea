//! The host-local lock of a standby: `flock` on a file beside paths.local, so that overlapping
//! cron runs wait or exit, and a killed run never wedges it (the kernel releases it). The file
//! names the holder (host, pid, command, since) for the refusal.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::DrError;

/// How often a held lock is tried again while waiting.
const POLL: Duration = Duration::from_millis(250);
/// The most of a lock file read to name its holder.
const MAX_HOLDER_BYTES: u64 = 4096;

/// Held until dropped.
#[derive(Debug)]
pub struct LocalLock {
    /// Holds the `flock`: closing it (dropping the lock) releases it.
    #[allow(dead_code)]
    file: std::fs::File,
    pub path: PathBuf,
}

/// `<parent of paths_local>/.lifeboat-<cluster>.lock`; the cluster's name keeps only
/// `[A-Za-z0-9._-]` (anything else becomes `_`).
pub fn path_for(paths_local: &Path, cluster: &str) -> PathBuf {
    let safe: String = cluster
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let parent = match paths_local.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    parent.join(format!(".lifeboat-{safe}.lock"))
}

/// Who holds the lock, from its file: "pid 12 on host-a (lifeboat standby refresh) since ...",
/// or what the file says when it is not lifeboat's JSON.
fn holder(file: &File) -> String {
    let mut buf = vec![0u8; MAX_HOLDER_BYTES as usize];
    let n = file.read_at(&mut buf, 0).unwrap_or(0);
    let text = &buf[..n];
    #[derive(serde::Deserialize)]
    struct Holder {
        host: String,
        pid: u32,
        command: String,
        since: String,
    }
    match serde_json::from_slice::<Holder>(text) {
        Ok(h) => {
            let clip = |s: &str| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            };
            format!(
                "pid {} on {} ({}) since {}",
                h.pid,
                clip(&h.host),
                clip(&h.command),
                clip(&h.since)
            )
        }
        Err(_) => {
            let shown: String = String::from_utf8_lossy(text)
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            if shown.trim().is_empty() {
                "a holder that has not written its name yet".into()
            } else {
                format!("it says {:?}", shown.trim())
            }
        }
    }
}

/// Takes the lock, waiting up to `wait` (polling every 250 ms) when another holds it; without a
/// wait a held lock is [`DrError::Busy`] at once.
pub async fn acquire(
    path: &Path,
    command: &str,
    wait: Option<Duration>,
    cancel: &CancellationToken,
) -> Result<LocalLock, DrError> {
    let io = |source| DrError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is not a regular file; remove it",
        )));
    }
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => break,
            Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(io(e.into())),
        }
        let now = tokio::time::Instant::now();
        let busy = || DrError::Busy {
            path: path.to_path_buf(),
            holder: holder(&file),
        };
        let Some(deadline) = deadline.filter(|d| *d > now) else {
            return Err(busy());
        };
        tokio::select! {
            () = tokio::time::sleep(POLL.min(deadline - now)) => {}
            () = cancel.cancelled() => return Err(DrError::Interrupted),
        }
    }
    let me = serde_json::json!({
        "host": crate::host::hostname(),
        "pid": std::process::id(),
        "command": command,
        "since": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    let mut text = me.to_string().into_bytes();
    text.push(b'\n');
    file.set_len(0).map_err(io)?;
    file.write_all_at(&text, 0).map_err(io)?;
    Ok(LocalLock {
        file,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_sits_beside_paths_local_with_a_safe_name() {
        assert_eq!(
            path_for(Path::new("/var/lib/dremio/"), "dr"),
            PathBuf::from("/var/lib/.lifeboat-dr.lock")
        );
        assert_eq!(
            path_for(Path::new("/srv/db"), "../a b/ü"),
            PathBuf::from("/srv/.lifeboat-.._a_b__.lock")
        );
        assert_eq!(
            path_for(Path::new("db"), "x"),
            PathBuf::from("./.lifeboat-x.lock")
        );
    }

    #[tokio::test]
    async fn a_held_lock_is_busy_names_its_holder_and_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lifeboat-dr.lock");
        let cancel = CancellationToken::new();
        let held = acquire(&path, "lifeboat standby refresh", None, &cancel)
            .await
            .unwrap();
        let e = acquire(&path, "other", None, &cancel).await.unwrap_err();
        let DrError::Busy { holder, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(
            holder.starts_with(&format!("pid {} on ", std::process::id()))
                && holder.contains("(lifeboat standby refresh) since "),
            "{holder}"
        );
        assert_eq!(
            crate::error::Classify::exit_class(&e),
            crate::error::ExitClass::LockBusy
        );
        // A wait that elapses is Busy too.
        let e = acquire(&path, "other", Some(Duration::from_millis(300)), &cancel)
            .await
            .unwrap_err();
        assert!(matches!(e, DrError::Busy { .. }), "{e:?}");
        drop(held);
        let again = acquire(&path, "second", None, &cancel).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["command"], "second");
        assert_eq!(v["pid"], std::process::id());
        drop(again);
    }

    #[tokio::test]
    async fn a_waiting_acquire_takes_the_lock_once_released_and_a_cancel_stops_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.lock");
        let cancel = CancellationToken::new();
        let held = acquire(&path, "first", None, &cancel).await.unwrap();
        let mut waiting = Box::pin(acquire(
            &path,
            "second",
            Some(Duration::from_secs(600)),
            &cancel,
        ));
        // Its first try found the lock held, and it waits.
        assert!(futures::poll!(&mut waiting).is_pending());
        drop(held);
        let taken = waiting.await.unwrap();

        let stopped = CancellationToken::new();
        let mut waiting = Box::pin(acquire(
            &path,
            "third",
            Some(Duration::from_secs(600)),
            &stopped,
        ));
        assert!(futures::poll!(&mut waiting).is_pending());
        stopped.cancel();
        assert!(matches!(waiting.await, Err(DrError::Interrupted)));
        drop(taken);
        // A planted non-file is refused.
        let fifo = dir.path().join("fifo.lock");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        assert!(acquire(&fifo, "x", None, &cancel).await.is_err());
    }
}
