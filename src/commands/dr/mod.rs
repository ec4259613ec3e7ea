//! `drill`, `standby refresh` and `failover`: Dremio's DR procedures (backup & restore,
//! pilot-light, failover) as one command each, on one timeline that RTO is measured on. The steps
//! are the other commands' (`restore`, `clone`, `doctor`) and `dr/`'s building blocks.
#![allow(unused_variables, dead_code)] // SKELETON: helper C fills this in

pub mod drill;
pub mod failover;
pub mod standby;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{CommandError, Ctx};
use crate::config::{ClusterConfig, Config};
use crate::dr::timeline::Timeline;
use crate::repo::{Manifest, Repo};

/// How long a started coordinator may take to serve unless told.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a start or stop command may take to return.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// A standby and its primary, as the config file names them.
#[derive(Debug, Clone)]
pub struct Pair {
    pub standby: String,
    pub cc: ClusterConfig,
    pub primary: String,
    pub pcc: ClusterConfig,
    /// Where the standby restores from: its `restore_from`, else the primary's `to`.
    pub from: String,
}

/// The standby `name` (or the file's only cluster with `standby_for`) and its primary; a
/// cluster without `standby_for`, or with no `start`/`stop`, is a usage error saying what to add.
pub fn pair(config: &Config, name: Option<&str>) -> Result<Pair, CommandError> {
    todo!()
}

/// The backup a procedure uses (`latest` or an id) in `from`, for `cluster`.
pub async fn choose(
    ctx: &Ctx,
    from: &str,
    cluster: &str,
    selector: &str,
) -> anyhow::Result<(Repo, Manifest)> {
    todo!()
}

/// The RPO a backup represents now: how old its snapshot is (now - created_at), in seconds.
pub fn rpo_seconds(manifest: &Manifest) -> f64 {
    todo!()
}

/// The port of the first URL (9047, Dremio's, when it has none): `{port}` of a standby's commands.
pub fn port_of(urls: &[String]) -> u16 {
    todo!()
}

/// The outcome every procedure prints: with `--json` one object (`command`, `cluster`,
/// `backup` {id, created_at, age_seconds}, `phases`, `rto_seconds`, `rpo_seconds`, `outcome`,
/// plus `fields`); else `head`, the timeline, and the RTO/RPO lines (with their targets).
pub fn report(ctx: &Ctx, command: &str, timeline: &Timeline, fields: Value, head: &str) {
    todo!()
}

/// Options every procedure shares, resolved from flags and the config.
#[derive(Debug, Clone)]
pub struct Common {
    pub start_timeout: Duration,
    pub rto: Option<Duration>,
    pub rpo: Option<Duration>,
    pub metrics_file: Option<PathBuf>,
    pub tls: crate::dremio::rest::Tls,
}
