//! `lifeboat verify`: re-reads a backup's archive and checks its digest and every member's digest
//! against the manifest, naming the first problems precisely. With `--deep-storage` (a Druid
//! backup), the archive is extracted into a private staging folder instead and every used
//! segment's object is looked for in deep storage (`druid/deepstore.rs`): a missing object, or one
//! of the wrong size, fails the verify as an integrity problem of the backup.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use super::{CommandError, Ctx};
use crate::druid::deepstore::{self, CheckOptions, Consistency};
use crate::druid::loadspec::DeepStorageMap;
use crate::druid::metastore::dump::Column;
use crate::repo::read::{self, Target};
use crate::repo::{Manifest, Repo};
use crate::store::location::Access;
use crate::units::human_bytes;

/// How many problems are listed (all are counted).
const MAX_PROBLEMS: usize = 20;
/// Deep-storage requests in flight.
const DEEP_STORAGE_CONCURRENCY: usize = 32;

/// `--deep-storage`: what the check of a Druid backup's segments is given.
#[derive(Debug, Clone, Default)]
pub struct DeepStorage {
    /// `--deep-storage-map FROM=TO`: check the objects at their mapped locations (a replica).
    pub map: Vec<String>,
    /// Roots listed for orphans; empty: the segments' own locations.
    pub roots: Vec<String>,
    /// Where the private staging folder is made (default: the temporary folder).
    pub staging: Option<PathBuf>,
}

pub async fn run(ctx: &Ctx, from: &str, cluster: &str, backup: &str) -> anyhow::Result<()> {
    run_with(ctx, from, cluster, backup, None).await
}

/// [`run`], with the deep-storage check of a Druid backup when `deep` is given.
pub async fn run_with(
    ctx: &Ctx,
    from: &str,
    cluster: &str,
    backup: &str,
    deep: Option<&DeepStorage>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // A bad map is a usage error before anything is read.
    let map = match deep {
        Some(d) => DeepStorageMap::parse(&d.map).map_err(|e| CommandError::Usage(e.to_string()))?,
        None => DeepStorageMap::default(),
    };
    let repo = ctx.repo(from, cluster, Access::Read).await?;
    let manifest = repo
        .manifest(backup)
        .await
        .with_context(|| format!("verify of backup {backup} in {}", repo.loc.url()))?;
    if deep.is_some() && (manifest.cluster.kind != "druid" || manifest.druid.is_none()) {
        return Err(CommandError::Usage(format!(
            "--deep-storage checks the segments of a Druid metadata-store backup; backup {} is a {} backup of mode {}",
            manifest.id, manifest.cluster.kind, manifest.mode
        ))
        .into());
    }
    let deep = deep.map(|d| (d, map));
    check(
        ctx,
        &repo,
        &manifest,
        started,
        deep.as_ref().map(|(d, m)| (*d, m)),
    )
    .await
    .with_context(|| format!("verify of backup {} in {}", manifest.id, repo.loc.url()))
}

async fn check(
    ctx: &Ctx,
    repo: &Repo,
    manifest: &Manifest,
    started: Instant,
    deep: Option<(&DeepStorage, &DeepStorageMap)>,
) -> anyhow::Result<()> {
    let index = Arc::new(read::load_index(repo, manifest).await?);
    // With --deep-storage the members are extracted (and checked on the way) into a private
    // folder, removed when the verify ends.
    let staging = match deep {
        Some((d, _)) => {
            let staging = super::backup::druid::staging_for(
                d.staging.as_deref(),
                &manifest.id,
                manifest.raw_bytes,
            )?;
            Some(staging)
        }
        None => None,
    };
    let target = match &staging {
        Some(s) => Target::Extract {
            staging: s.path().to_path_buf(),
        },
        None => Target::Verify {
            max_problems: MAX_PROBLEMS,
        },
    };
    let read = read::read_archive(
        repo,
        manifest,
        index,
        super::archive_layout(manifest),
        target,
        ctx.progress.clone(),
    )
    .await;
    ctx.progress.finish();
    let read = read?;
    let mut problems = read.unpacked.problems.clone();
    let mut count = read.unpacked.problem_count;
    if let Some(p) = read.object_problem {
        problems.insert(0, p);
        count += 1;
    }
    let counts = &read.unpacked.counts;
    let ok = count == 0;
    let consistency = match (deep, &staging) {
        (Some((d, map)), Some(s)) if ok => {
            Some(deep_storage(ctx, s.path(), manifest, d, map).await?)
        }
        _ => None,
    };
    drop(staging);
    let seconds = started.elapsed().as_secs_f64();
    let mut json = json!({
        "id": manifest.id,
        "ok": ok,
        "problem_count": count,
        "problems": problems,
        "files_checked": counts.files(),
        "raw_bytes": read.unpacked.raw_bytes,
        "stored_bytes": manifest.archive.bytes,
        "seconds": (seconds * 1000.0).round() / 1000.0,
    });
    let mut human = if ok {
        format!(
            "Backup {} is intact: archive sha256 matches, {} files ({}) match their digests ({:.1}s)",
            manifest.id,
            counts.files(),
            human_bytes(read.unpacked.raw_bytes),
            seconds
        )
    } else {
        format!(
            "Backup {} FAILED verification: {count} problem(s)",
            manifest.id
        )
    };
    for p in &problems {
        human.push_str(&format!("\n  {p}"));
    }
    if let Some(c) = &consistency {
        json["deep_storage"] = serde_json::to_value(c)?;
        json["ok"] = (ok && c.ok()).into();
        human.push_str(&format!("\nDeep storage: {}", c.summary()));
        for line in c.sample_lines() {
            human.push_str(&format!("\n  {line}"));
        }
    } else if deep.is_some() {
        human.push_str("\nDeep storage: not checked, the archive has problems");
    }
    ctx.emit(&json, &human);
    if let Some(c) = consistency.as_ref().filter(|c| !c.ok()) {
        return Err(CommandError::Reported {
            class: crate::error::ExitClass::Integrity,
            message: format!(
                "backup {}: {} of {} used segments have no object in deep storage and {} an object of the wrong size{}; a restore of it would serve incomplete data: restore the objects from a copy (or check against one with --deep-storage-map FROM=TO)",
                manifest.id,
                c.missing,
                c.checked,
                c.wrong_size,
                c.missing_sample
                    .first()
                    .map(|m| format!(" (first: {m})"))
                    .unwrap_or_default()
            ),
        }
        .into());
    }
    if ok {
        Ok(())
    } else {
        Err(CommandError::Reported {
            class: crate::error::ExitClass::Integrity,
            message: format!(
                "backup {} does not match its manifest ({count} problem(s))",
                manifest.id
            ),
        }
        .into())
    }
}

/// The check of the extracted `druid_segments.csv` against deep storage.
async fn deep_storage(
    ctx: &Ctx,
    dir: &Path,
    manifest: &Manifest,
    d: &DeepStorage,
    map: &DeepStorageMap,
) -> anyhow::Result<Consistency> {
    let Some(table) = manifest
        .druid
        .as_ref()
        .and_then(|s| s.table("druid_segments"))
    else {
        return Ok(Consistency::default());
    };
    let columns: Vec<Column> = table
        .columns
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            sql_type: c.sql_type.clone(),
            nullable: c.nullable,
        })
        .collect();
    let opener = ctx.clone();
    let options = CheckOptions {
        open: Arc::new(move |url: &str| opener.open(url, Access::Read)),
        roots: d.roots.clone(),
        concurrency: DEEP_STORAGE_CONCURRENCY,
    };
    ctx.progress.note(&format!(
        "checking the deep-storage objects of {} segments",
        table.rows
    ));
    let segments = deepstore::segments_of_csv(&dir.join(&table.file), &columns, map)?;
    deepstore::check(segments, &options, ctx.cancel.clone()).await
}
