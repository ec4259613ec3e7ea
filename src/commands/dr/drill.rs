//! `lifeboat drill`: restore the newest backup into a scratch copy (never a live cluster), start a
//! coordinator on it with `drill_start`, wait until it serves, log in, compare its catalog with
//! the backup's fingerprint (or `--expect-tree`, or `clone_tree`), stop it and remove the scratch.
//! Phases: fetch, verify, extract, start, validate (RTO is the time to the end of `start`).
#![allow(unused_variables, dead_code)] // SKELETON: helper C fills this in

use std::path::PathBuf;

use super::Common;
use crate::commands::Ctx;

#[derive(Debug, Clone)]
pub struct DrillArgs {
    pub cluster: String,
    pub from: String,
    pub backup: String,
    pub scratch: Option<PathBuf>,
    pub drill_start: String,
    pub drill_stop: Option<String>,
    pub dremio_home: Option<PathBuf>,
    pub expect_tree: Option<PathBuf>,
    /// The cluster's (or its standby's) `clone_tree`.
    pub clone_tree: Option<PathBuf>,
    pub keep_scratch: bool,
    pub common: Common,
}

pub async fn run(ctx: &Ctx, args: &DrillArgs) -> anyhow::Result<()> {
    todo!()
}
