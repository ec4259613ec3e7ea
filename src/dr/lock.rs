//! The host-local lock of a standby: `flock` on a file beside paths.local, so that overlapping
//! cron runs wait or exit, and a killed run never wedges it (the kernel releases it). The file
//! names the holder (host, pid, command, since) for the refusal.
#![allow(unused_variables, dead_code)] // SKELETON: helper A fills this in

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::DrError;

/// Held until dropped.
#[derive(Debug)]
pub struct LocalLock {
    file: std::fs::File,
    pub path: PathBuf,
}

/// `<parent of paths_local>/.lifeboat-<cluster>.lock`.
pub fn path_for(paths_local: &Path, cluster: &str) -> PathBuf {
    todo!()
}

/// Takes the lock, waiting up to `wait` (polling every 250 ms) when another holds it; without a
/// wait a held lock is [`DrError::Busy`] at once.
pub async fn acquire(
    path: &Path,
    command: &str,
    wait: Option<Duration>,
    cancel: &CancellationToken,
) -> Result<LocalLock, DrError> {
    todo!()
}
