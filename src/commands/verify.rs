//! `lifeboat verify`: re-reads a backup's archive and checks its digest and every member's digest
//! against the manifest, naming the first problems precisely.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use super::{CommandError, Ctx};
use crate::repo::read::{self, Target};
use crate::repo::{Manifest, Repo};
use crate::store::location::Access;
use crate::units::human_bytes;

/// How many problems are listed (all are counted).
const MAX_PROBLEMS: usize = 20;

pub async fn run(ctx: &Ctx, from: &str, cluster: &str, backup: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let repo = ctx.repo(from, cluster, Access::Read).await?;
    let manifest = repo
        .manifest(backup)
        .await
        .with_context(|| format!("verify of backup {backup} in {}", repo.loc.url()))?;
    check(ctx, &repo, &manifest, started)
        .await
        .with_context(|| format!("verify of backup {} in {}", manifest.id, repo.loc.url()))
}

async fn check(
    ctx: &Ctx,
    repo: &Repo,
    manifest: &Manifest,
    started: Instant,
) -> anyhow::Result<()> {
    let index = Arc::new(read::load_index(repo, manifest).await?);
    let read = read::read_archive(
        repo,
        manifest,
        index,
        super::archive_layout(manifest),
        Target::Verify {
            max_problems: MAX_PROBLEMS,
        },
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
    let seconds = started.elapsed().as_secs_f64();
    let ok = count == 0;
    let json = json!({
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
    ctx.emit(&json, &human);
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
