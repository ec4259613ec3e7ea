//! The backup of a Druid cluster: its metadata store's consistent snapshot (one CSV file per
//! durable table, with the scripts that load them without lifeboat) written into a private
//! staging folder, then packed, uploaded and committed by the same path as a Dremio backup, with
//! the manifest's `druid` section (tables, digests, skipped tables, deep-storage locations).

use std::path::Path;

use super::{BackupArgs, CommandError, Ctx, Shipped, ship};
use crate::archive::pack::Source;
use crate::druid::metastore::dump::Dump;
use crate::druid::metastore::{self, Db, MetaConfig, MetaError};
use crate::repo::Repo;
use crate::repo::manifest::{self, MODE_METADATA};
use crate::repo::write::Shipment;
use crate::store::lock as store_lock;
use crate::units::human_bytes;

/// The Druid side of `lifeboat backup`.
#[derive(Debug, Clone)]
pub struct DruidBackupArgs {
    /// Where the metadata store is, with its password and TLS.
    pub metadata: MetaConfig,
    /// Coordinator/Overlord URLs, for the version; empty: `unknown`.
    pub urls: Vec<String>,
}

/// What the manifest records as the Druid version when no `--druid-url` was given.
pub const UNKNOWN_VERSION: &str = "unknown";

/// Dumps the metadata store into a private staging folder and ships it as a `metadata` backup.
pub(super) async fn snapshot(
    ctx: &Ctx,
    args: &BackupArgs,
    druid: &DruidBackupArgs,
    repo: &Repo,
    location_lock: &store_lock::Lock,
    tees: &[Repo],
) -> anyhow::Result<Shipped> {
    let (version, leader) = druid_version(ctx, &druid.urls).await?;
    let mut db = metastore::connect(&druid.metadata).await?;
    let db_version = db.server_version().await?;
    let staging = private_staging(args.staging.as_deref())?;
    let dir = staging.path().join("dump");
    std::fs::create_dir(&dir).map_err(|e| staging_error(&dir, e))?;
    check_space(&mut db, &dir).await?;
    ctx.progress.note(&format!(
        "metadata store {} ({}), Druid {version}",
        druid.metadata.url.shown(),
        db_version
    ));
    let dump = metastore::dump::dump(&mut db, &dir, ctx.progress.as_ref(), &ctx.cancel).await;
    db.close().await;
    let dump = dump?;
    let section = section(&dump, &version, &druid.metadata, &db_version);
    let mut notes = Vec::new();
    if leader.is_none() {
        notes.push(
            "no --druid-url given: the Druid version is recorded as unknown, and a restore cannot compare it with its target's"
                .to_string(),
        );
    }
    for s in &dump.skipped {
        notes.push(format!(
            "{} not backed up ({}{})",
            s.name,
            s.reason,
            s.rows.map(|r| format!(", {r} rows")).unwrap_or_default()
        ));
    }
    let shipment = Shipment {
        sources: vec![Source {
            root: "",
            dir: dir.clone(),
            skip_contents_of: vec![],
        }],
        notes,
        mode: MODE_METADATA,
        cluster: manifest::Cluster {
            name: args.cluster.clone(),
            kind: "druid".into(),
            version,
            build: None,
            edition: None,
        },
        source: manifest::Source {
            dremio_home: None,
            paths_local: String::new(),
            db: druid.metadata.url.shown(),
            uploads: None,
            security: String::new(),
            coordinator: leader,
        },
        logical: None,
        druid: Some(section),
        catalog: None,
    };
    let made = ship(ctx, args, repo, location_lock, shipment, tees).await;
    drop(staging);
    made
}

/// The version the Coordinator leader's `/status` reports, and the leader's label.
async fn druid_version(ctx: &Ctx, urls: &[String]) -> anyhow::Result<(String, Option<String>)> {
    if urls.is_empty() {
        return Ok((UNKNOWN_VERSION.into(), None));
    }
    let version = leader_version(ctx, urls).await?;
    Ok((version, Some(urls[0].clone())))
}

/// `/status` of the Coordinator leader among `urls` (credentials from `LIFEBOAT_DRUID_*`).
pub(crate) async fn leader_version(ctx: &Ctx, urls: &[String]) -> anyhow::Result<String> {
    use crate::druid::rest::{Credentials, Druid};
    let creds = Credentials::from_env(&|k| std::env::var(k).ok(), "LIFEBOAT_DRUID_")?;
    let progress = ctx.progress.clone();
    let notify: crate::dremio::rest::Notify = std::sync::Arc::new(move |l: &str| progress.note(l));
    let tls = crate::dremio::rest::Tls::default();
    let druid = Druid::connect(urls, &tls, creds, "LIFEBOAT_DRUID_", notify).await?;
    Ok(druid.version().await?)
}

/// A new 0700 folder under `under` (default: the temporary folder), removed when dropped.
pub(crate) fn private_staging(under: Option<&Path>) -> anyhow::Result<tempfile::TempDir> {
    let parent = under
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix(".lifeboat-druid-")
        .tempdir_in(&parent)
        .map_err(|e| staging_error(&parent, e))?;
    // tempfile makes it 0700 already; say so where it matters.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(|e| staging_error(dir.path(), e))?;
    Ok(dir)
}

/// [`private_staging`] with room for the `raw_bytes` table files of the backup `id` (a restore's
/// or a verify's extraction), refused before anything is read when the disk has less.
pub(crate) fn staging_for(
    under: Option<&Path>,
    id: &str,
    raw_bytes: u64,
) -> anyhow::Result<tempfile::TempDir> {
    let staging = private_staging(under)?;
    let free = crate::fsutil::free_bytes(staging.path()).unwrap_or(u64::MAX);
    if raw_bytes > free {
        return Err(CommandError::Refused(format!(
            "the staging folder {} has {} free; the table files of backup {id} need {}: give --staging DIR on a larger disk",
            staging.path().display(),
            crate::units::human_bytes(free),
            crate::units::human_bytes(raw_bytes)
        ))
        .into());
    }
    Ok(staging)
}

fn staging_error(path: &Path, e: std::io::Error) -> anyhow::Error {
    CommandError::Refused(format!(
        "cannot make the staging folder {}: {e}; give --staging DIR, a local folder with room for the table files",
        path.display()
    ))
    .into()
}

/// The bytes the Druid tables take in the database (tables and indexes).
async fn store_bytes(db: &mut Db) -> Result<u64, MetaError> {
    let query = |why: String| MetaError::Query {
        what: "the size of Druid's tables".into(),
        why,
    };
    match db {
        Db::Pg(c) => {
            let row = c
                .query_one(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::bigint \
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE c.relkind = 'r' AND n.nspname = current_schema() \
                     AND lower(c.relname) LIKE 'druid%'",
                    &[],
                )
                .await
                .map_err(|e| query(crate::error::chain(&e)))?;
            let bytes: i64 = row.get(0);
            Ok(bytes.max(0) as u64)
        }
        Db::My(c) => {
            use mysql_async::prelude::Queryable;
            let bytes: Option<Option<u64>> = c
                .query_first(
                    "SELECT CAST(COALESCE(SUM(data_length + index_length), 0) AS UNSIGNED) \
                     FROM information_schema.tables \
                     WHERE table_schema = DATABASE() AND lower(table_name) LIKE 'druid%'",
                )
                .await
                .map_err(|e| query(crate::error::chain(&e)))?;
            Ok(bytes.flatten().unwrap_or(0))
        }
    }
}

/// Refuses a dump that may not fit: the tables' size in the database, twice over (binary
/// payloads are written as hex), against the staging folder's free space.
async fn check_space(db: &mut Db, dir: &Path) -> anyhow::Result<()> {
    let needed = store_bytes(db).await?.saturating_mul(2);
    let free = crate::fsutil::free_bytes(dir).map_err(|e| staging_error(dir, e))?;
    if needed > free {
        return Err(CommandError::Refused(format!(
            "the staging folder {} has {} free; the table files may need {} (twice the tables' {} in the database, for hex payloads): give --staging DIR on a larger disk",
            dir.display(),
            human_bytes(free),
            human_bytes(needed),
            human_bytes(needed / 2)
        ))
        .into());
    }
    Ok(())
}

/// The manifest's `druid` section of a dump (digests are filled in once packed).
fn section(dump: &Dump, version: &str, metadata: &MetaConfig, db_version: &str) -> manifest::Druid {
    manifest::Druid {
        druid_version: version.to_string(),
        database: manifest::Database {
            kind: kind_word(dump.db_kind).into(),
            version: db_version.chars().take(256).collect(),
            url: metadata.url.shown(),
        },
        tables: dump
            .tables
            .iter()
            .map(|t| manifest::Table {
                name: t.name.clone(),
                file: t.file.clone(),
                rows: t.rows,
                bytes: t.bytes,
                sha256: String::new(),
                columns: t
                    .columns
                    .iter()
                    .map(|c| manifest::TableColumn {
                        name: c.name.clone(),
                        sql_type: c.sql_type.clone(),
                        nullable: c.nullable,
                    })
                    .collect(),
            })
            .collect(),
        skipped: dump
            .skipped
            .iter()
            .map(|s| manifest::SkippedTable {
                name: s.name.clone(),
                reason: s.reason.clone(),
                rows: s.rows,
            })
            .collect(),
        deep_storage: dump.deep_storage.clone(),
        segments: manifest::Segments {
            total: dump.segments,
            used: dump.used_segments,
        },
    }
}

pub(crate) fn kind_word(kind: metastore::DbKind) -> &'static str {
    match kind {
        metastore::DbKind::Postgresql => "postgresql",
        metastore::DbKind::Mysql => "mysql",
    }
}

/// The report's lines and JSON about a Druid backup's tables.
pub(super) fn summary(d: &manifest::Druid) -> (serde_json::Value, String) {
    let rows: u64 = d.tables.iter().map(|t| t.rows).sum();
    let json = serde_json::json!({
        "druid_version": d.druid_version,
        "database": {"kind": d.database.kind, "version": d.database.version, "url": d.database.url},
        "tables": d.tables.iter().map(|t| serde_json::json!({"name": t.name, "rows": t.rows, "bytes": t.bytes})).collect::<Vec<_>>(),
        "skipped": d.skipped.iter().map(|s| serde_json::json!({"name": s.name, "reason": s.reason, "rows": s.rows})).collect::<Vec<_>>(),
        "deep_storage": d.deep_storage,
        "segments": {"total": d.segments.total, "used": d.segments.used},
    });
    let mut human = format!(
        "  Druid {}, metadata store {} ({}): {} tables, {rows} rows",
        d.druid_version,
        d.database.url,
        d.database.kind,
        d.tables.len()
    );
    for t in &d.tables {
        human.push_str(&format!(
            "\n    {:<22} {:>10} rows  {:>10}",
            t.name,
            t.rows,
            human_bytes(t.bytes)
        ));
    }
    for s in &d.skipped {
        human.push_str(&format!(
            "\n    {:<22} skipped ({}{})",
            s.name,
            s.reason,
            s.rows.map(|r| format!(", {r} rows")).unwrap_or_default()
        ));
    }
    human.push_str(&format!(
        "\n  {} segments ({} used) in {}",
        d.segments.total,
        d.segments.used,
        if d.deep_storage.is_empty() {
            "no deep storage lifeboat knows".to_string()
        } else {
            d.deep_storage.join(", ")
        }
    ));
    (json, human)
}
