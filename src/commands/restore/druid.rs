//! The restore of a Druid metadata backup into an EMPTY metadata database. Every check first:
//! the target's Druid version against the backup's, local space for the table files, the
//! connection, privileges and emptiness of the target. Then the archive is extracted into a
//! private staging folder (every digest checked, so a corrupt backup is refused before the
//! database is touched), each table file checked against the manifest, the deep-storage map's
//! new locations checked on the staged segments (with `--strict`, a missing object refuses the
//! restore before anything is written), and the tables loaded in ONE transaction.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::{CommandError, Ctx};
use crate::archive::ArchiveError;
use crate::druid::deepstore::{self, CheckOptions, Consistency};
use crate::druid::loadspec::DeepStorageMap;
use crate::druid::metastore::dump::{Column, TableDump};
use crate::druid::metastore::load::{self, LoadOptions, LoadReport};
use crate::druid::metastore::{self, MetaConfig};
use crate::repo::Repo;
use crate::repo::manifest;
use crate::repo::read::{self, Target};
use crate::store::location::Access;

/// The Druid side of `lifeboat restore`.
#[derive(Debug, Clone)]
pub struct DruidRestoreArgs {
    /// The target metadata store.
    pub metadata: MetaConfig,
    /// The target cluster's Coordinator/Overlord URLs, for its version.
    pub urls: Vec<String>,
    /// `--deep-storage-map FROM=TO` values.
    pub map: Vec<String>,
    pub resume_supervisors: bool,
    pub strict: bool,
    /// Where the private staging folder is made (default: the temporary folder).
    pub staging: Option<PathBuf>,
}

/// What a Druid restore did (or, in a dry run, would do).
#[derive(Debug, Clone)]
pub struct DruidRestoreReport {
    pub id: String,
    pub dry_run: bool,
    pub load: LoadReport,
    /// The deep-storage check of the mapped locations (only with a map).
    pub consistency: Option<Consistency>,
    pub warnings: Vec<String>,
    pub seconds: f64,
}

/// Requests in flight of the deep-storage check.
const CHECK_CONCURRENCY: usize = 32;

pub(super) async fn restore(
    ctx: &Ctx,
    druid: &DruidRestoreArgs,
    dry_run: bool,
    repo: &Repo,
    opened: &read::Opened,
    started: Instant,
) -> anyhow::Result<DruidRestoreReport> {
    let manifest = &opened.manifest;
    let section = manifest.druid.as_ref().ok_or_else(|| {
        ArchiveError::BadManifest("a Druid backup without its druid section".into())
    })?;
    let map = DeepStorageMap::parse(&druid.map)
        .map_err(|e| CommandError::Usage(format!("--deep-storage-map: {e}")))?;
    let mut warnings = Vec::new();

    // 1. The target's Druid version.
    if !druid.urls.is_empty() {
        let target = crate::commands::backup::druid::leader_version(ctx, &druid.urls).await?;
        if let Some(w) = compare_versions(&section.druid_version, &target)? {
            ctx.progress.note(&format!("note: {w}"));
        }
    } else {
        ctx.progress.note(
            "note: no --druid-url: the target's Druid version is not compared with the backup's",
        );
    }
    // 2. Local space for the table files.
    let staging = crate::commands::backup::druid::staging_for(
        druid.staging.as_deref(),
        &manifest.id,
        manifest.raw_bytes,
    )?;
    // 3. The target: reachable, privileges, every druid_* table empty, known columns.
    let tables = table_dumps(section);
    let mut db = metastore::connect(&druid.metadata).await?;
    load::check_target(&mut db, &tables).await?;

    // 4. The archive, every digest checked, into the staging folder.
    let dir = staging.path().join("archive");
    std::fs::create_dir(&dir).map_err(|source| ArchiveError::WriteTarget {
        path: dir.clone(),
        source,
    })?;
    extract(ctx, repo, opened, &dir).await?;
    check_files(&dir, section)?;

    // 5. With a map, the new locations of the staged segments, before anything is written.
    let consistency = if map.rules.is_empty() {
        None
    } else {
        let found = check_deep_storage(ctx, &dir, section, &map).await?;
        if found.missing > 0 {
            let what = format!(
                "{} of {} used segments have no object at their mapped location: {}{}",
                found.missing,
                found.checked,
                found.missing_sample.join(", "),
                if found.missing as usize > found.missing_sample.len() {
                    ", ..."
                } else {
                    ""
                }
            );
            if druid.strict {
                return Err(CommandError::Refused(format!(
                    "{what}; --strict: nothing was written to {}. Copy the objects (or fix the map) and run the restore again",
                    druid.metadata.url.shown()
                ))
                .into());
            }
            ctx.progress.note(&format!("warning: {what}"));
            warnings.push(what);
        }
        if found.wrong_size > 0 {
            let what = format!(
                "{} segment objects have another size than their segment records: {}",
                found.wrong_size,
                found.wrong_size_sample.join(", ")
            );
            ctx.progress.note(&format!("warning: {what}"));
            warnings.push(what);
        }
        Some(found)
    };

    // 6. The load, in one transaction.
    let options = LoadOptions {
        now: chrono::Utc::now(),
        resume_supervisors: druid.resume_supervisors,
        map,
        dry_run,
    };
    ctx.progress.note(&format!(
        "{} {} tables into {} in one transaction",
        if dry_run { "checking" } else { "loading" },
        tables.len(),
        druid.metadata.url.shown()
    ));
    let loaded = load::load(
        &mut db,
        &dir,
        &tables,
        &options,
        ctx.progress.as_ref(),
        &ctx.cancel,
    )
    .await;
    db.close().await;
    let loaded = loaded?;
    drop(staging);
    if !loaded.datasource_offsets.is_empty() {
        warnings.push(format!(
            "druid_dataSource holds stream offsets of {}: check them against the streams (Kafka/Kinesis retention) before supervisors resume, or reset them",
            loaded.datasource_offsets.join(", ")
        ));
    }
    let report = DruidRestoreReport {
        id: manifest.id.clone(),
        dry_run,
        load: loaded,
        consistency,
        warnings,
        seconds: started.elapsed().as_secs_f64(),
    };
    print_report(ctx, repo, druid, &report);
    Ok(report)
}

/// The backup's tables as the load takes them.
fn table_dumps(section: &manifest::Druid) -> Vec<TableDump> {
    section
        .tables
        .iter()
        .map(|t| TableDump {
            name: t.name.clone(),
            file: t.file.clone(),
            columns: t
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    sql_type: c.sql_type.clone(),
                    nullable: c.nullable,
                })
                .collect(),
            rows: t.rows,
            bytes: t.bytes,
        })
        .collect()
}

/// `None` when the versions agree, a note when the target is newer or either is unknown; an
/// older target is a refusal (its Druid may not read what a newer one wrote).
fn compare_versions(backup: &str, target: &str) -> Result<Option<String>, CommandError> {
    let (Some(b), Some(t)) = (numeric(backup), numeric(target)) else {
        return Ok(Some(format!(
            "the backup's Druid version ({backup}) and the target's ({target}) cannot be compared"
        )));
    };
    match t.cmp(&b) {
        std::cmp::Ordering::Equal => Ok(None),
        std::cmp::Ordering::Greater => Ok(Some(format!(
            "the target runs Druid {target}, newer than the backup's {backup}: Druid upgrades its metadata tables on start"
        ))),
        std::cmp::Ordering::Less => Err(CommandError::Refused(format!(
            "the target runs Druid {target}, older than the backup's {backup}: an older Druid may not read what a newer one wrote; restore into a cluster of {backup} or newer"
        ))),
    }
}

/// `31.0.1` (or `31.0.1-SNAPSHOT`) as numbers.
fn numeric(version: &str) -> Option<Vec<u64>> {
    let core = version.split(['-', '+', ' ']).next()?;
    let parts: Option<Vec<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| !p.is_empty() && p.len() <= 4)
}

/// Streams the archive into `dir`, checking every member against the index and the digests.
async fn extract(ctx: &Ctx, repo: &Repo, opened: &read::Opened, dir: &Path) -> anyhow::Result<()> {
    let index = opened.index(repo).await?;
    let read = opened
        .read(
            repo,
            index,
            crate::commands::archive_layout(&opened.manifest),
            Target::Extract {
                staging: dir.to_path_buf(),
                owner: None,
            },
            ctx.progress.clone(),
        )
        .await;
    ctx.progress.finish();
    read?.extracted()?;
    Ok(())
}

/// Each table file as the manifest describes it: its size and SHA-256.
fn check_files(dir: &Path, section: &manifest::Druid) -> anyhow::Result<()> {
    for t in &section.tables {
        let path = dir.join(&t.file);
        let corrupt =
            |why: String| CommandError::Integrity(format!("backup table file {}: {why}", t.file));
        let mut file =
            std::fs::File::open(&path).map_err(|e| corrupt(format!("not in the archive ({e})")))?;
        let mut hasher = crate::archive::digest::HashingReader::new(&mut file);
        let bytes =
            std::io::copy(&mut hasher, &mut std::io::sink()).map_err(|e| corrupt(e.to_string()))?;
        let (_, sha256, _) = hasher.finish();
        if bytes != t.bytes {
            return Err(corrupt(format!("{bytes} bytes, the manifest says {}", t.bytes)).into());
        }
        if sha256 != t.sha256 {
            return Err(corrupt(format!("sha256 {sha256}, the manifest says {}", t.sha256)).into());
        }
    }
    Ok(())
}

/// The deep-storage check of the staged segments at their mapped locations.
async fn check_deep_storage(
    ctx: &Ctx,
    dir: &Path,
    section: &manifest::Druid,
    map: &DeepStorageMap,
) -> anyhow::Result<Consistency> {
    let Some(segments) = section.table("druid_segments") else {
        return Ok(Consistency::default());
    };
    let columns: Vec<Column> = table_dumps(section)
        .into_iter()
        .find(|t| t.name == "druid_segments")
        .map(|t| t.columns)
        .unwrap_or_default();
    let opener_ctx = ctx.clone();
    let options = CheckOptions {
        open: Arc::new(move |url: &str| opener_ctx.open(url, Access::Read)),
        roots: Vec::new(),
        concurrency: CHECK_CONCURRENCY,
    };
    ctx.progress.note(&format!(
        "checking the mapped deep-storage objects of {} segments",
        segments.rows
    ));
    let stream = deepstore::segments_of_csv(&dir.join(&segments.file), &columns, map)?;
    deepstore::check(stream, &options, ctx.cancel.clone()).await
}

fn print_report(ctx: &Ctx, repo: &Repo, druid: &DruidRestoreArgs, r: &DruidRestoreReport) {
    let at = format!(
        "{}/{}/{}",
        repo.loc.url().trim_end_matches('/'),
        repo.cluster,
        r.id
    );
    let l = &r.load;
    let rows: u64 = l.tables.iter().map(|(_, n)| n).sum();
    let json = json!({
        "id": r.id,
        "dry_run": r.dry_run,
        "restored_from": at,
        "metadata": druid.metadata.url.shown(),
        "tables": l.tables.iter().map(|(t, n)| json!({"name": t, "rows": n})).collect::<Vec<_>>(),
        "rows": rows,
        "created_tables": l.created,
        "backfilled_used_status_last_updated": l.backfilled_used_status,
        "rewritten_load_specs": l.rewritten_load_specs,
        "suspended_supervisors": l.suspended_supervisors,
        "datasource_offsets": l.datasource_offsets,
        "deep_storage": r.consistency,
        "warnings": r.warnings,
        "seconds": (r.seconds * 1000.0).round() / 1000.0,
    });
    let mut human = if r.dry_run {
        format!(
            "Dry run: backup {} passes every check and would load {rows} rows into {}; nothing was written",
            r.id,
            druid.metadata.url.shown()
        )
    } else {
        format!(
            "Restored backup {at} into {}: {rows} rows in {} tables ({:.1}s)",
            druid.metadata.url.shown(),
            l.tables.len(),
            r.seconds
        )
    };
    for (t, n) in &l.tables {
        human.push_str(&format!("\n  {t:<22} {n:>10} rows"));
    }
    if !l.created.is_empty() {
        human.push_str(&format!(
            "\n  {} tables with Druid's DDL: {}",
            if r.dry_run { "would create" } else { "created" },
            l.created.join(", ")
        ));
    }
    if l.backfilled_used_status > 0 {
        human.push_str(&format!(
            "\n  used_status_last_updated backfilled with the restore time on {} segments",
            l.backfilled_used_status
        ));
    }
    if l.rewritten_load_specs > 0 {
        human.push_str(&format!(
            "\n  {} loadSpecs rewritten by the deep-storage map",
            l.rewritten_load_specs
        ));
    }
    if let Some(c) = &r.consistency {
        human.push_str(&format!(
            "\n  deep storage: {} used segments checked, {} missing, {} of another size",
            c.checked, c.missing, c.wrong_size
        ));
    }
    if !l.suspended_supervisors.is_empty() {
        human.push_str(&format!(
            "\n  supervisors restored SUSPENDED: {} (resume them once the streams' offsets are checked)",
            l.suspended_supervisors.join(", ")
        ));
    }
    for w in &r.warnings {
        human.push_str(&format!("\n  WARNING: {w}"));
    }
    ctx.emit(&json, &human);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_target_is_refused_a_newer_noted_and_an_unknown_one_noted() {
        assert_eq!(compare_versions("31.0.0", "31.0.0").unwrap(), None);
        assert!(
            compare_versions("31.0.0", "32.0.1")
                .unwrap()
                .unwrap()
                .contains("newer")
        );
        let older = compare_versions("31.0.1", "31.0.0")
            .unwrap_err()
            .to_string();
        assert!(older.contains("older than the backup's 31.0.1"), "{older}");
        assert!(
            compare_versions("unknown", "31.0.0")
                .unwrap()
                .unwrap()
                .contains("cannot be compared")
        );
        assert_eq!(numeric("31.0.1-SNAPSHOT"), Some(vec![31, 0, 1]));
        assert_eq!(numeric("x.1"), None);
    }

    #[test]
    fn table_files_must_match_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let mut section = manifest::tests::druid_sample().druid.unwrap();
        section.tables.truncate(1);
        let body = b"\"id\",\"payload\"\n";
        std::fs::write(dir.path().join("druid_segments.csv"), body).unwrap();
        section.tables[0].bytes = body.len() as u64;
        section.tables[0].sha256 = crate::archive::digest::sha256_hex(body);
        check_files(dir.path(), &section).unwrap();
        section.tables[0].sha256 = "0".repeat(64);
        let err = check_files(dir.path(), &section).unwrap_err().to_string();
        assert!(err.contains("the manifest says"), "{err}");
        std::fs::remove_file(dir.path().join("druid_segments.csv")).unwrap();
        assert!(check_files(dir.path(), &section).is_err());
    }
}
