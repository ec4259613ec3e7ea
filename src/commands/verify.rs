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
use crate::repo::read2;
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

/// What `lifeboat verify` is asked to check beyond the archive.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// `--deep-storage`: the check of a Druid backup's segments.
    pub deep: Option<&'a DeepStorage>,
    /// `--identity FILE`: the age identities of an encrypted backup.
    pub identity: Option<&'a Path>,
    /// `--read-data-subset N%`: a format-2 backup's share of objects read (all exist-checked).
    pub read_data_subset: Option<f64>,
}

pub async fn run(ctx: &Ctx, from: &str, cluster: &str, backup: &str) -> anyhow::Result<()> {
    run_with(ctx, from, cluster, backup, &Options::default()).await
}

/// [`run`], with the deep-storage check of a Druid backup when `deep` is given.
pub async fn run_with(
    ctx: &Ctx,
    from: &str,
    cluster: &str,
    backup: &str,
    options: &Options<'_>,
) -> anyhow::Result<()> {
    let deep = options.deep;
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
    let context = || format!("verify of backup {} in {}", manifest.id, repo.loc.url());
    let format_2 = manifest.is_format_2();
    if !format_2 && options.read_data_subset.is_some() {
        ctx.progress.note(
            "note: --read-data-subset samples the objects of a format-2 backup; this format-1 backup is one object, read whole",
        );
    }
    if format_2 && deep.is_some() && options.read_data_subset.is_some() {
        return Err(CommandError::Usage(
            "--deep-storage reads the whole backup; it does not go with --read-data-subset".into(),
        )
        .into());
    }
    // Format 1 is never encrypted: no key is looked for.
    let keys = if format_2 {
        super::restore::identities(options.identity)?
    } else {
        None
    };
    let contents = manifest.encryption.is_none() || keys.is_some();
    if deep.is_some() && !contents {
        return Err(crate::crypto::CryptoError::MissingIdentity.into());
    }
    // Everything read and checked: format 1 always, format 2 when its contents can be opened
    // and no subset was asked for.
    if !format_2 || (contents && options.read_data_subset.is_none()) {
        let opened = read::open(&repo, manifest.clone(), keys)
            .await
            .with_context(context)?;
        return check(
            ctx,
            &repo,
            &opened,
            started,
            deep.as_ref().map(|(d, m)| (*d, m)),
        )
        .await
        .with_context(context);
    }
    sample(
        ctx,
        &repo,
        &manifest,
        keys,
        options.read_data_subset,
        started,
    )
    .await
    .with_context(context)
}

/// A format-2 backup checked without reading all of it: every object's existence and size, then
/// `share` percent of them (all when `None`) downloaded and checked against their digests, and
/// with a key (or unencrypted) decrypted and decompressed too.
async fn sample(
    ctx: &Ctx,
    repo: &Repo,
    manifest: &Manifest,
    keys: Option<Arc<crate::crypto::Identities>>,
    share: Option<f64>,
    started: Instant,
) -> anyhow::Result<()> {
    let contents = manifest.encryption.is_none() || keys.is_some();
    if contents {
        // The index and the sealed sections are decrypted: the key is checked.
        read::open(repo, manifest.clone(), keys.clone()).await?;
    } else {
        read2::check_stored(repo, manifest).await?;
        read2::check_ciphertexts(repo, manifest).await?;
    }
    let total = manifest.objects.len();
    let which = read2::sample(total, share.unwrap_or(100.0));
    let want: u64 = which.iter().map(|&n| manifest.objects[n].bytes).sum();
    ctx.progress.phase("verify", Some(want));
    let checked =
        read2::check_objects_data(repo, manifest, &which, keys, ctx.progress.as_ref()).await;
    ctx.progress.finish();
    let checked = checked?;
    let ok = checked.problem_count == 0;
    let seconds = started.elapsed().as_secs_f64();
    let percent = if total == 0 {
        0.0
    } else {
        (checked.read as f64 * 1000.0 / total as f64).round() / 10.0
    };
    let json = json!({
        "id": manifest.id,
        "ok": ok,
        "problem_count": checked.problem_count,
        "problems": checked.problems,
        "objects": total,
        "objects_read": checked.read,
        "share_read_percent": percent,
        "bytes_read": checked.bytes,
        "contents_checked": contents,
        "stored_bytes": manifest.objects.iter().map(|o| o.bytes).sum::<u64>(),
        "seconds": (seconds * 1000.0).round() / 1000.0,
    });
    let what = if contents {
        "match their digests and decompress to their tar bytes"
    } else {
        "match their ciphertext digests"
    };
    let mut human = if ok {
        format!(
            "Backup {}: all {total} objects exist with their sizes, SHA256SUMS matches the manifest; {} of them ({percent}%, {}) were read and {what} ({seconds:.1}s)",
            manifest.id,
            checked.read,
            human_bytes(checked.bytes),
        )
    } else {
        format!(
            "Backup {} FAILED verification: {} problem(s) in the {} objects read of {total}",
            manifest.id, checked.problem_count, checked.read
        )
    };
    if !contents {
        human.push_str(&format!(
            "\n  the contents were not checked: the backup is encrypted and no identity was given (--identity FILE or {})",
            crate::crypto::IDENTITY_FILE_VAR
        ));
    }
    for p in &checked.problems {
        human.push_str(&format!("\n  {p}"));
    }
    ctx.emit(&json, &human);
    if ok {
        Ok(())
    } else {
        Err(CommandError::Reported {
            class: crate::error::ExitClass::Integrity,
            message: format!(
                "backup {} does not match its manifest ({} problem(s))",
                manifest.id, checked.problem_count
            ),
        }
        .into())
    }
}

async fn check(
    ctx: &Ctx,
    repo: &Repo,
    opened: &read::Opened,
    started: Instant,
    deep: Option<(&DeepStorage, &DeepStorageMap)>,
) -> anyhow::Result<()> {
    let manifest = &opened.manifest;
    let index = opened.index(repo).await?;
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
            owner: None,
        },
        None => Target::Verify {
            max_problems: MAX_PROBLEMS,
        },
    };
    let read = opened
        .read(
            repo,
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
    if manifest.is_format_2() {
        json["objects"] = manifest.objects.len().into();
        json["objects_read"] = manifest.objects.len().into();
        json["share_read_percent"] = 100.0.into();
        json["contents_checked"] = true.into();
        json["stored_bytes"] = manifest.objects.iter().map(|o| o.bytes).sum::<u64>().into();
    }
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
