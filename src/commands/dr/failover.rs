//! `lifeboat failover`: confirm that no node of the primary answers (else refuse without
//! `--force`), run doctor's checks on the standby, restore the newest backup when it is newer
//! than what the standby holds, start, validate, resume Druid supervisors (only here), mark the
//! standby promoted, and print the one step left: route traffic to it. RTO is measured from the
//! command's start to serving.
#![allow(unused_variables, dead_code)] // SKELETON: helper C fills this in

use std::time::Duration;

use super::{Common, Pair};
use crate::commands::Ctx;

#[derive(Debug, Clone)]
pub struct FailoverArgs {
    pub pair: Pair,
    pub dry_run: bool,
    pub force: bool,
    pub wait_lock: Option<Duration>,
    pub common: Common,
}

pub async fn run(ctx: &Ctx, args: &FailoverArgs) -> anyhow::Result<()> {
    todo!()
}
