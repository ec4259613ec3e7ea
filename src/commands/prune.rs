//! `lifeboat prune`: applies a location's retention policy, and removes what failed runs left
//! behind (backup folders without a manifest, older than a grace period). A backup disappears at once
//! when its manifest is deleted (first), then its data is deleted. Then format 2's shared objects
//! that no remaining backup references and that are older than the grace are swept.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use super::{CommandError, Ctx};
use crate::error::ExitClass;
use crate::repo::Repo;
use crate::repo::prune::{Sweep, delete_backup, local_leftovers, orphans, sweep_objects};
use crate::retention::{self, Policy};
use crate::store::location::Access;
use crate::store::lock;
use crate::units::human_bytes;

#[derive(Debug, Clone, Default)]
pub struct PruneArgs {
    pub from: String,
    pub cluster: String,
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_within: Option<Duration>,
    /// Folders without a manifest younger than this may belong to a running backup or copy.
    pub grace: Duration,
    pub dry_run: bool,
    pub wait_lock: Option<Duration>,
    pub metrics_file: Option<PathBuf>,
}

pub async fn run(ctx: &Ctx, args: &PruneArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let result = prune(ctx, args).await;
    if !args.dry_run {
        let labels = [
            ("cluster", args.cluster.as_str()),
            ("location", args.from.as_str()),
            ("command", "prune"),
        ];
        let samples =
            crate::metrics::run_samples(&labels, result.is_ok(), started.elapsed().as_secs_f64());
        ctx.metrics(args.metrics_file.as_deref(), &samples);
    }
    result
}

/// Flags win over the location's `[locations.X.retention]` in the config file.
fn policy(ctx: &Ctx, args: &PruneArgs) -> Result<Policy, CommandError> {
    let file = ctx
        .config
        .retention(&args.from)
        .cloned()
        .unwrap_or_default();
    let within = match (&args.keep_within, &file.keep_within) {
        (Some(d), _) => Some(*d),
        (None, Some(s)) => {
            Some(crate::units::parse_duration(s.get_ref()).map_err(CommandError::Usage)?)
        }
        (None, None) => None,
    };
    let policy = Policy {
        keep_last: args.keep_last.or(file.keep_last).unwrap_or(0),
        keep_hourly: args.keep_hourly.or(file.keep_hourly).unwrap_or(0),
        keep_daily: args.keep_daily.or(file.keep_daily).unwrap_or(0),
        keep_weekly: args.keep_weekly.or(file.keep_weekly).unwrap_or(0),
        keep_monthly: args.keep_monthly.or(file.keep_monthly).unwrap_or(0),
        keep_within: within,
    };
    if policy.is_empty() {
        return Err(CommandError::Usage(format!(
            "no retention policy for {}: give --keep-last/--keep-daily/... or a [locations.<name>.retention] table in the config file",
            args.from
        )));
    }
    Ok(policy)
}

async fn prune(ctx: &Ctx, args: &PruneArgs) -> anyhow::Result<()> {
    let policy = policy(ctx, args)?;
    // Pruning never creates a location: a missing folder is an error to report, not to fix.
    let repo = ctx.repo(&args.from, &args.cluster, Access::Read).await?;
    let lock = if args.dry_run {
        None
    } else {
        Some(repo.lock("prune", args.wait_lock).await?)
    };
    let outcome = plan_and_apply(ctx, args, &repo, &policy, lock.as_ref()).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    outcome
}

async fn plan_and_apply(
    ctx: &Ctx,
    args: &PruneArgs,
    repo: &Repo,
    policy: &Policy,
    lock: Option<&lock::Lock>,
) -> anyhow::Result<()> {
    let (good, broken) = repo.list().await?;
    let decisions = retention::decide(
        &good
            .iter()
            .map(|m| (m.id.clone(), m.created_at))
            .collect::<Vec<_>>(),
        policy,
    );
    let orphans = orphans(repo, &good, &broken, args.grace).await?;
    let leftovers = local_leftovers(repo, args.grace);

    let mut deleted = Vec::new();
    let sweep: Sweep;
    if args.dry_run {
        // What would remain: every committed backup the policy keeps.
        let remaining: Vec<_> = good
            .iter()
            .filter(|m| decisions.iter().any(|d| d.id == m.id && d.keep()))
            .cloned()
            .collect();
        sweep = sweep_objects(repo, &remaining, &broken, args.grace, true, &|| None).await?;
    } else {
        let doomed = decisions
            .iter()
            .filter(|d| !d.keep())
            .map(|d| &d.id)
            .chain(orphans.iter().map(|(id, _)| id));
        for id in doomed {
            still_ours(lock, repo, id)?;
            delete_backup(repo, id)
                .await
                .with_context(|| format!("prune of backup {id} in {}", repo.loc.url()))?;
            if decisions.iter().any(|d| &d.id == id) {
                deleted.push(id.clone());
            }
        }
        for path in &leftovers {
            let gone = if path.is_dir() {
                std::fs::remove_dir(path)
            } else {
                std::fs::remove_file(path)
            };
            gone.map_err(|e| {
                CommandError::Refused(format!("cannot remove {}: {e}", path.display()))
            })?;
        }
        // Mark from what remains now (listed again, after the deletes), then sweep.
        let (remaining, unreadable) = repo.list().await?;
        let lost = || lock.and_then(|l| l.lost_because());
        sweep = sweep_objects(repo, &remaining, &unreadable, args.grace, false, &lost)
            .await
            .with_context(|| format!("prune of the objects in {}", repo.loc.url()))?;
    }

    let verb = if args.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let mut human = format!(
        "Prune {} (cluster {:?}){}:",
        repo.loc.url(),
        args.cluster,
        if args.dry_run {
            ", dry run: nothing changed"
        } else {
            ""
        }
    );
    for d in &decisions {
        if d.keep() {
            human.push_str(&format!("\n  keep   {}  ({})", d.id, d.reasons.join(", ")));
        } else {
            human.push_str(&format!("\n  {verb} {}", d.id));
        }
    }
    for (id, age) in &orphans {
        human.push_str(&format!(
            "\n  {verb} {id}  (left by a failed run {} ago, no manifest)",
            crate::units::age(*age)
        ));
    }
    for path in &leftovers {
        human.push_str(&format!(
            "\n  {verb} {}  (left by an interrupted upload)",
            path.display()
        ));
    }
    for b in &broken {
        human.push_str(&format!(
            "\n  left alone {}  (unusable manifest: {}; inspect it by hand)",
            b.id, b.why
        ));
    }
    if sweep.swept + sweep.kept + sweep.young + sweep.foreign > 0 || sweep.refused.is_some() {
        human.push_str(&format!(
            "\n  objects: {verb} {} ({}), kept {} ({}) referenced",
            sweep.swept,
            human_bytes(sweep.swept_bytes),
            sweep.kept,
            human_bytes(sweep.kept_bytes)
        ));
        if sweep.young > 0 {
            human.push_str(&format!(
                ", {} ({}) unreferenced but younger than the grace",
                sweep.young,
                human_bytes(sweep.young_bytes)
            ));
        }
        if sweep.foreign > 0 {
            human.push_str(&format!(", {} not lifeboat's left alone", sweep.foreign));
        }
    }
    if let Some(why) = &sweep.refused {
        human.push_str(&format!("\n  objects: {why}"));
    }
    let json = json!({
        "location": repo.loc.url(),
        "cluster": args.cluster,
        "dry_run": args.dry_run,
        "keep": decisions.iter().filter(|d| d.keep()).map(|d| json!({"id": d.id, "reasons": d.reasons})).collect::<Vec<_>>(),
        "delete": decisions.iter().filter(|d| !d.keep()).map(|d| d.id.clone()).collect::<Vec<_>>(),
        "orphans": orphans.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        "unusable": broken.iter().map(|b| b.id.clone()).collect::<Vec<_>>(),
        "upload_leftovers": leftovers,
        "deleted": deleted,
        "objects": {
            "swept": sweep.swept,
            "swept_bytes": sweep.swept_bytes,
            "kept": sweep.kept,
            "kept_bytes": sweep.kept_bytes,
            "young": sweep.young,
            "young_bytes": sweep.young_bytes,
            "foreign": sweep.foreign,
            "refused": sweep.refused,
        },
    });
    ctx.emit(&json, &human);
    match &sweep.refused {
        // The backups were pruned, but objects pile up until the manifest is dealt with: cron
        // must notice.
        Some(why) => Err(CommandError::Reported {
            class: ExitClass::Integrity,
            message: format!(
                "{why}; look at that manifest.json by hand, then put it back or delete the backup's folder, and prune again"
            ),
        }
        .into()),
        None => Ok(()),
    }
}

/// Deletes nothing once the lock may be someone else's: what prune decided may no longer hold.
fn still_ours(lock: Option<&lock::Lock>, repo: &Repo, next: &str) -> Result<(), CommandError> {
    match lock.and_then(|l| l.lost_because()) {
        Some(why) => Err(CommandError::Refused(format!(
            "prune of {} stopped before deleting backup {next}: the lock may no longer be ours ({why}); run it again",
            repo.loc.url()
        ))),
        None => Ok(()),
    }
}
