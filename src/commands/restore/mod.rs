//! `lifeboat restore`: Dremio's documented restore procedure, automated and safe. Every check runs
//! before anything changes; the backup is extracted and verified in a staging folder beside the
//! target and flushed to disk; only then are folders put in place, each by one atomic rename, with
//! what was there kept aside (never deleted). The steps that actually happened drive the undo, and
//! a journal lets the next run finish or undo a restore that was killed.

pub mod druid;
mod load;
mod plan;
mod stage;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use super::{CommandError, Ctx};
use crate::archive::ArchiveError;
use crate::archive::unpack;
use crate::dremio::Installation;
use crate::fsutil::{
    self,
    txn::{RealFs, Txn},
};
use crate::repo::Repo;
use crate::repo::manifest::Manifest;
use crate::repo::read::{self, Target};
use crate::store::location::Access;
use crate::units::human_bytes;

pub use plan::Plan;

/// Options of `lifeboat restore`.
#[derive(Debug, Clone)]
pub struct RestoreArgs {
    pub from: String,
    pub cluster: String,
    pub backup: String,
    pub dremio_home: Option<PathBuf>,
    pub paths_local: Option<PathBuf>,
    pub dremio_version: Option<String>,
    pub replace: bool,
    pub owner: Option<String>,
    pub dry_run: bool,
    /// The target of a Druid backup: its metadata store (the Dremio inputs are then unused).
    pub druid: Option<druid::DruidRestoreArgs>,
    /// A logical backup's catalog fingerprint (the archive member
    /// [`crate::clone::fingerprint::FILE_NAME`], digest-checked like every member) is moved here
    /// once extracted; without it, it is left out of what dremio-admin loads.
    pub catalog_to: Option<PathBuf>,
    /// Every restored folder lies beneath `paths_local` (a drill's scratch copy): the layout is
    /// Dremio's defaults under it, whatever the home's dremio.conf says (the home only provides
    /// dremio-admin and the version), and so is the conf dremio-admin loads with.
    pub confine: bool,
}

/// What a restore did: a Dremio installation's or a Druid metadata store's.
#[derive(Debug, Clone)]
pub enum Restored {
    Dremio(RestoreReport),
    Druid(Box<druid::DruidRestoreReport>),
}

/// What a restore did (or, in a dry run, would do).
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub id: String,
    pub paths_local: PathBuf,
    pub safety_copies: Vec<PathBuf>,
    pub kv_files: u64,
    pub uploaded_files: u64,
    pub security_files: u64,
    pub raw_bytes: u64,
    pub seconds: f64,
}

pub async fn run(ctx: &Ctx, args: &RestoreArgs) -> anyhow::Result<Restored> {
    let started = Instant::now();
    let repo = ctx
        .repo(&args.from, &args.cluster, Access::Read)
        .await
        .with_context(|| format!("restore from {}", args.from))?;
    let manifest = repo
        .manifest(&args.backup)
        .await
        .with_context(|| format!("restore of backup {} from {}", args.backup, repo.loc.url()))?;
    let context = || format!("restore of backup {} from {}", manifest.id, repo.loc.url());
    match (manifest.cluster.kind.as_str(), &args.druid) {
        ("druid", Some(d)) => druid::restore(ctx, d, args.dry_run, &repo, &manifest, started)
            .await
            .map(|r| Restored::Druid(Box::new(r)))
            .with_context(context),
        ("druid", None) => Err(CommandError::Usage(format!(
            "backup {} is of a Druid cluster's metadata store: restore it with --druid-metadata postgres://USER@HOST:PORT/DB (or mysql://...), an empty database",
            manifest.id
        ))
        .into()),
        (kind, Some(_)) => Err(CommandError::Usage(format!(
            "backup {} is of a {kind} cluster, not of a Druid metadata store: --druid-metadata does not apply",
            manifest.id
        ))
        .into()),
        (_, None) => restore(ctx, args, &repo, &manifest, started)
            .await
            .map(Restored::Dremio)
            .with_context(context),
    }
}

async fn restore(
    ctx: &Ctx,
    args: &RestoreArgs,
    repo: &Repo,
    manifest: &Manifest,
    started: Instant,
) -> anyhow::Result<RestoreReport> {
    let inst = Installation::discover(
        args.dremio_home.as_deref(),
        args.paths_local.as_deref(),
        args.dremio_version.as_deref(),
    )?;
    // A coordinator (or a dremio-admin a killed run left behind) using the target comes first:
    // nothing about the target, not even an earlier run's journal, is touched under it.
    plan::check_not_in_use(&inst)?;
    if args.dry_run {
        for leftover in stage::leftovers(&inst.paths_local) {
            if let stage::Leftover::Journal(dir, journal) = leftover {
                ctx.progress.note(&format!(
                    "note: {} holds an interrupted restore of backup {} ({:?}); a real run settles it first",
                    dir.display(),
                    journal.backup,
                    journal.state
                ));
            }
        }
    } else {
        // A restore killed earlier is finished or discarded first, as its journal says.
        for done in stage::recover(&inst.paths_local)? {
            ctx.progress.note(&format!("note: {done}"));
        }
    }
    let plan = Plan::check(manifest, &inst, args)?;
    if args.dry_run {
        return Ok(print_dry_run(ctx, manifest, &plan, started));
    }

    let mut txn = Txn::new(&RealFs);
    txn.create_dir_all(&plan.parent, 0o755)
        .map_err(|source| ArchiveError::WriteTarget {
            path: plan.parent.clone(),
            source,
        })?;
    let mut staging = stage::Staging::create(&plan, &manifest.id)?;
    let unpacked = extract(ctx, repo, manifest, &staging.archive(), &plan).await?;
    let logical = manifest.mode == "logical";
    staging.assemble(&plan, logical)?;
    if logical {
        load::into_staging(ctx, &plan, &inst, &mut staging)?;
    }
    // Durable before visible: everything staged reaches the disk before any of it is put in place.
    fsutil::sync_filesystem(&staging.dir).map_err(|source| ArchiveError::WriteTarget {
        path: staging.dir.clone(),
        source,
    })?;
    staging.plan_swaps(&plan)?;
    staging.set_state(stage::State::Swapping)?;
    let swapped = staging.swap_in(&mut txn);
    let safety_copies = settle(&mut staging, txn, swapped)?;
    // Recorded before the staging folder goes, so that a kill now is not mistaken for a swap.
    if let Err(e) = staging.set_state(stage::State::Done) {
        ctx.progress.note(&format!(
            "warning: restored, but cannot update {}: {e:#}",
            staging.dir.display()
        ));
    }
    drop(staging);

    let c = &unpacked.counts;
    let report = RestoreReport {
        id: manifest.id.clone(),
        paths_local: inst.paths_local.clone(),
        safety_copies,
        kv_files: c.kv_files,
        uploaded_files: c.uploaded_files,
        security_files: c.security_files,
        raw_bytes: unpacked.raw_bytes,
        seconds: started.elapsed().as_secs_f64(),
    };
    print_report(ctx, repo, &inst, &report);
    Ok(report)
}

/// Streams the archive into `dir`, checking every member, then sets folder modes and owners.
async fn extract(
    ctx: &Ctx,
    repo: &Repo,
    manifest: &Manifest,
    dir: &std::path::Path,
    plan: &Plan,
) -> anyhow::Result<unpack::Unpacked> {
    let index = Arc::new(read::load_index(repo, manifest).await?);
    let read = read::read_archive(
        repo,
        manifest,
        index.clone(),
        super::archive_layout(manifest),
        Target::Extract {
            staging: dir.to_path_buf(),
        },
        ctx.progress.clone(),
    )
    .await;
    ctx.progress.finish();
    let read = read?;
    read.extracted()?;
    unpack::finish_directories(dir, &index)?;
    if let Some(owner) = plan.owner {
        fsutil::chown_tree(dir, owner).map_err(|e| {
            CommandError::Refused(format!(
                "cannot give the restored files to uid {}: {e}",
                owner.uid
            ))
        })?;
    }
    Ok(read.unpacked)
}

/// Keeps the transaction when every step succeeded; otherwise undoes what was done and says
/// whether the target is back as it was (the staging folder is kept when it is not).
fn settle<E: std::fmt::Display>(
    staging: &mut stage::Staging,
    txn: Txn<'_, RealFs>,
    outcome: Result<Vec<PathBuf>, E>,
) -> anyhow::Result<Vec<PathBuf>> {
    match outcome {
        Ok(kept) => {
            txn.commit();
            Ok(kept)
        }
        Err(why) => {
            let problems = txn.rollback();
            if problems.is_empty() {
                Err(CommandError::Refused(format!(
                    "putting the restored folders in place failed ({why}); the target was put back as it was"
                ))
                .into())
            } else {
                staging.keep();
                Err(CommandError::Refused(format!(
                    "putting the restored folders in place failed ({why}) AND could not put everything back: {}. Nothing was deleted: {} and the names above hold every folder",
                    problems.join("; "),
                    staging.dir.display()
                ))
                .into())
            }
        }
    }
}

fn print_dry_run(ctx: &Ctx, manifest: &Manifest, plan: &Plan, started: Instant) -> RestoreReport {
    let json = json!({
        "dry_run": true,
        "id": manifest.id,
        "paths_local": plan.paths_local,
        "would_move_aside": plan.move_aside,
        "parts": plan.parts.iter().map(|(r, d)| json!({"root": r, "to": d})).collect::<Vec<_>>(),
        "needed_bytes": plan.needed_bytes,
        "free_bytes": plan.free_bytes,
    });
    let mut human = format!(
        "Dry run: backup {} passes every check and would be restored into {}",
        manifest.id,
        plan.paths_local.display()
    );
    for dir in &plan.move_aside {
        human.push_str(&format!(
            "\n  would move {} aside to a safety copy",
            dir.display()
        ));
    }
    for (root, dest) in &plan.parts {
        human.push_str(&format!("\n  {root}/ -> {}", dest.display()));
    }
    human.push_str(&format!(
        "\n  needs {} of {} free; nothing was changed",
        human_bytes(plan.needed_bytes),
        human_bytes(plan.free_bytes)
    ));
    ctx.emit(&json, &human);
    RestoreReport {
        id: manifest.id.clone(),
        paths_local: plan.paths_local.clone(),
        safety_copies: Vec::new(),
        kv_files: manifest.counts.kv_files,
        uploaded_files: manifest.counts.uploaded_files,
        security_files: manifest.counts.security_files,
        raw_bytes: manifest.raw_bytes,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn print_report(ctx: &Ctx, repo: &Repo, inst: &Installation, r: &RestoreReport) {
    let at = format!(
        "{}/{}/{}",
        repo.loc.url().trim_end_matches('/'),
        repo.cluster,
        r.id
    );
    let json = json!({
        "id": r.id,
        "restored_from": at,
        "paths_local": r.paths_local,
        "db": inst.db,
        "safety_copies": r.safety_copies,
        "kv_files": r.kv_files,
        "uploaded_files": r.uploaded_files,
        "security_files": r.security_files,
        "raw_bytes": r.raw_bytes,
        "seconds": (r.seconds * 1000.0).round() / 1000.0,
    });
    let mut human = format!(
        "Restored from backup at {at}: {} KV store files, {} uploaded files, {} security files ({}, {:.1}s)",
        r.kv_files,
        r.uploaded_files,
        r.security_files,
        human_bytes(r.raw_bytes),
        r.seconds
    );
    for copy in &r.safety_copies {
        human.push_str(&format!("\n  previous contents kept at {}", copy.display()));
    }
    if let Some(home) = &inst.home {
        human.push_str(&format!(
            "\n  next: start the coordinator ({}/bin/dremio start)",
            home.display()
        ));
    }
    ctx.emit(&json, &human);
}
