//! `lifeboat standby refresh`: the pilot-light cycle under the standby's lock. Checks first (the
//! standby's version is the primary's; the newest backup is newer than what the standby holds,
//! else nothing to do), then stop, restore (with a safety copy), start, wait for serving, clone
//! from the primary (live, else `clone_tree`), validate; any failure after the stop puts the
//! previous state back and starts it again (exit 13), or says exactly what is down (exit 14).
#![allow(unused_variables, dead_code)] // SKELETON: helper C fills this in

use std::time::Duration;

use super::{Common, Pair};
use crate::commands::Ctx;

#[derive(Debug, Clone)]
pub struct RefreshArgs {
    pub pair: Pair,
    pub dry_run: bool,
    pub wait_lock: Option<Duration>,
    pub common: Common,
}

pub async fn refresh(ctx: &Ctx, args: &RefreshArgs) -> anyhow::Result<()> {
    todo!()
}
