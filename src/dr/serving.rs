//! Whether coordinators serve: waiting (bounded) for a started one, and asking a primary's
//! every node whether any still answers before a failover.
#![allow(unused_variables, dead_code)] // SKELETON: helper A fills this in

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::DrError;

/// The health endpoint of a cluster kind: Dremio's `/apiv2/server_status` (200 "OK" on the
/// active master), Druid's `/status/health` (200 `true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Dremio,
    Druid,
}

impl Probe {
    pub fn path(self) -> &'static str {
        match self {
            Probe::Dremio => "/apiv2/server_status",
            Probe::Druid => "/status/health",
        }
    }
}

/// One node's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Serving.
    Serving,
    /// Anything else: "not listening", "HTTP 503 ...", "timed out".
    Not(String),
}

/// Asks every URL once (concurrently, each within `timeout`).
pub async fn ask(
    client: &reqwest::Client,
    probe: Probe,
    urls: &[String],
    timeout: Duration,
) -> Vec<(String, Answer)> {
    todo!()
}

/// Polls the URLs (every 200 ms at first, backing off to 2 s) until one serves, and returns it.
/// `ended` is asked between polls: `Some(why)` (the started process is gone) ends the wait at
/// once. Waiting longer than `timeout` or a cancel is an error saying what the nodes last said.
pub async fn wait(
    client: &reqwest::Client,
    probe: Probe,
    urls: &[String],
    timeout: Duration,
    cancel: &CancellationToken,
    ended: &mut (dyn FnMut() -> Option<String> + Send),
) -> Result<String, DrError> {
    todo!()
}
