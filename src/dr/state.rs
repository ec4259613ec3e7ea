//! What a standby holds, in `<paths.local>/lifeboat-standby.json` (0600): the backup it was
//! restored from, when, and the safety copy that refresh kept. A restore replaces paths.local
//! whole, so the file always describes the folder it is in (a put-back brings the old one back).
//! The file is input like any other: read capped and checked.
#![allow(unused_variables, dead_code)] // SKELETON: helper A fills this in

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::DrError;

pub const STATE_FILE: &str = "lifeboat-standby.json";
pub const FORMAT: &str = "lifeboat-standby/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandbyState {
    pub format: String,
    /// The standby's cluster name and its primary's.
    pub cluster: String,
    pub primary: String,
    /// The backup restored (its id), when it was taken, and from where.
    pub backup: String,
    pub backup_created_at: DateTime<Utc>,
    pub location: String,
    pub restored_at: DateTime<Utc>,
    /// The previous contents that this refresh kept (a `.before-restore-` folder), which the
    /// next successful refresh removes.
    #[serde(default)]
    pub kept: Vec<PathBuf>,
    /// Set by `failover`: this standby is the primary now, and `standby refresh` refuses to
    /// overwrite it.
    #[serde(default)]
    pub promoted_at: Option<DateTime<Utc>>,
}

/// The state in `paths_local`, `None` when there is none. A file that is too large (64 KiB),
/// not this format, or names paths that are not absolute is an error.
pub fn read(paths_local: &Path) -> Result<Option<StandbyState>, DrError> {
    todo!()
}

/// Writes it durably (temporary file, fsync, rename, fsync of the folder), 0600.
pub fn write(paths_local: &Path, state: &StandbyState) -> Result<(), DrError> {
    todo!()
}
