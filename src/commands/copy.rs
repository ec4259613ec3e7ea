//! `lifeboat copy`: catch-up replication of committed backups to another location. Idempotent: what
//! the destination already holds (committed) is skipped; safe beside running backups, because only
//! committed backups are copied and a copy's manifest is written last, create-only.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{CommandError, Ctx};
use crate::error::ExitClass;
use crate::repo::copy::{Copied, Transfer, copy_backup_counted, needed_bytes};
use crate::store::location::Access;
use crate::units::human_bytes;

#[derive(Debug, Clone)]
pub struct CopyArgs {
    pub from: String,
    pub to: String,
    pub cluster: String,
    /// A backup id, `latest`, or `all-missing`.
    pub backup: String,
    pub wait_lock: Option<Duration>,
    pub metrics_file: Option<PathBuf>,
    /// Create a missing local destination folder.
    pub create_location: bool,
}

pub async fn run(ctx: &Ctx, args: &CopyArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let result = copy_all(ctx, args).await;
    let labels = [
        ("cluster", args.cluster.as_str()),
        ("location", args.to.as_str()),
        ("command", "copy"),
    ];
    let ok = matches!(&result, Ok(failed) if failed.is_empty());
    let samples = crate::metrics::run_samples(&labels, ok, started.elapsed().as_secs_f64());
    ctx.metrics(args.metrics_file.as_deref(), &samples);
    let failed = result?;
    if failed.is_empty() {
        return Ok(());
    }
    Err(CommandError::Reported {
        class: ExitClass::CopyFailed,
        message: format!(
            "{} backup(s) could not be copied to {} ({}); run the same command again once the cause is fixed",
            failed.len(),
            args.to,
            failed.join(", ")
        ),
    }
    .into())
}

/// Copies and reports; returns the ids whose copy failed.
async fn copy_all(ctx: &Ctx, args: &CopyArgs) -> anyhow::Result<Vec<String>> {
    let src = ctx.repo(&args.from, &args.cluster, Access::Read).await?;
    let dst = ctx
        .repo(
            &args.to,
            &args.cluster,
            Access::writing(args.create_location),
        )
        .await?;
    if src.loc.url() == dst.loc.url() && src.loc.same_store(&dst.loc) {
        return Err(CommandError::Usage(format!(
            "--from and --to are the same location ({})",
            src.loc.url()
        ))
        .into());
    }
    let lock = dst.lock("copy", args.wait_lock).await?;
    let outcome = async {
        let ids: Vec<String> = match args.backup.as_str() {
            "all-missing" => {
                let (have, _) = dst.list().await?;
                let (mut wanted, _) = src.list().await?;
                wanted.retain(|m| !have.iter().any(|h| h.id == m.id));
                // Oldest first: an interrupted catch-up leaves the newest gap, which the next backup fills.
                wanted.iter().rev().map(|m| m.id.clone()).collect()
            }
            selector => vec![src.manifest(selector).await?.id],
        };
        let mut rows = Vec::new();
        for id in ids {
            let result = async {
                let manifest = src.manifest(&id).await?;
                ctx.progress.phase("copy", Some(needed_bytes(&manifest)));
                let copied =
                    copy_backup_counted(&src, &dst, &manifest, ctx.progress.as_ref()).await;
                ctx.progress.finish();
                copied
            }
            .await;
            rows.push((id, result.map_err(|e| format!("{e:#}"))));
        }
        Ok::<_, anyhow::Error>(rows)
    }
    .await;
    lock.release().await;
    let rows = outcome?;

    let failed: Vec<String> = rows
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(id, _)| id.clone())
        .collect();
    let json_rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|(id, r)| match r {
            Ok((Copied::Now(bytes), t)) => {
                json!({"id": id, "status": "copied", "bytes": bytes, "objects": objects_json(t)})
            }
            Ok((Copied::AlreadyThere, _)) => json!({"id": id, "status": "already-there"}),
            Err(e) => json!({"id": id, "status": "failed", "error": e}),
        })
        .collect();
    let mut human = if rows.is_empty() {
        format!(
            "{} already holds every backup of {:?} that {} has",
            dst.loc.url(),
            args.cluster,
            src.loc.url()
        )
    } else {
        format!("Copy {} -> {}:", src.loc.url(), dst.loc.url())
    };
    for (id, r) in &rows {
        human.push_str(&match r {
            Ok((Copied::Now(bytes), t)) if t.copied + t.already_there > 0 => format!(
                "\n  {id}: copied ({}), digest verified; objects: {} copied ({}), {} already there ({})",
                human_bytes(*bytes),
                t.copied,
                human_bytes(t.copied_bytes),
                t.already_there,
                human_bytes(t.already_there_bytes)
            ),
            Ok((Copied::Now(bytes), _)) => format!(
                "\n  {id}: copied ({}), digest verified",
                human_bytes(*bytes)
            ),
            Ok((Copied::AlreadyThere, _)) => format!("\n  {id}: already there"),
            Err(e) => format!("\n  {id}: FAILED: {e}"),
        });
    }
    ctx.emit(&json!({"from": src.loc.url(), "to": dst.loc.url(), "cluster": args.cluster, "backups": json_rows, "failed": failed.len()}), &human);
    Ok(failed)
}

/// A copy's format-2 objects in `--json` output.
fn objects_json(t: &Transfer) -> serde_json::Value {
    json!({
        "copied": t.copied,
        "copied_bytes": t.copied_bytes,
        "already_there": t.already_there,
        "already_there_bytes": t.already_there_bytes,
    })
}
