//! The operator's start and stop commands. Templates are filled in with shell-quoted values; a
//! command runs under `sh -c` in a process group of its own, with no stdin and its output
//! captured (bounded), so that a timeout or a signal stops everything it started.
#![allow(unused_variables, dead_code)] // SKELETON: helper A fills this in

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::DrError;

/// What a template may name.
#[derive(Debug, Clone)]
pub struct Vars {
    pub paths_local: PathBuf,
    pub home: Option<PathBuf>,
    pub port: u16,
}

/// Fills in `{paths_local}`, `{home}` and `{port}`, each value single-quoted for `sh`. Any other
/// `{name}`, an unclosed `{`, or `{home}` without a home is an error naming `key` (the config
/// key, e.g. `clusters.dr.start`).
pub fn expand(key: &str, template: &str, vars: &Vars) -> Result<String, DrError> {
    todo!()
}

/// Runs `command` (filled in) under `sh -c` to its end, at most `timeout`; `what` names it in
/// errors ("the stop command of dr"). A non-zero exit, a timeout (its process group is killed)
/// or a cancel is an error with the end of its output. Returns the end of its output (4 KiB).
pub async fn run(
    what: &str,
    command: &str,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<String, DrError> {
    todo!()
}

/// A command running in the foreground of its own process group (a drill's coordinator), its
/// output appended to a log file (0600). Dropping it kills the whole group.
#[derive(Debug)]
pub struct Foreground {
    child: Option<std::process::Child>,
    log: PathBuf,
    what: String,
}

impl Foreground {
    /// Starts `command` under `sh -c`, output to `log`.
    pub fn spawn(what: &str, command: &str, log: &Path) -> Result<Foreground, DrError> {
        todo!()
    }

    /// The process's pid (also its process group's id).
    pub fn pid(&self) -> Option<u32> {
        todo!()
    }

    /// `Some(description)` once the process has ended ("exited with status 1", "killed by
    /// signal 9"); `None` while it runs.
    pub fn ended(&mut self) -> Option<String> {
        todo!()
    }

    /// The last `bytes` of its log, lossily decoded.
    pub fn log_tail(&self, bytes: u64) -> String {
        todo!()
    }

    /// Stops the group: SIGTERM, up to `grace` for it to end, then SIGKILL; reaps it. Returns
    /// how it ended.
    pub async fn stop(&mut self, grace: Duration) -> Result<String, DrError> {
        todo!()
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        // SKELETON: SIGKILL the group and reap, if still running.
    }
}
