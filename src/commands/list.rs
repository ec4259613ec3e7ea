//! `lifeboat list`: committed backups of a cluster in a location, newest first.

use chrono::Utc;
use serde_json::json;

use super::Ctx;
use crate::store::location::Access;
use crate::units::{age, human_bytes};

pub async fn run(ctx: &Ctx, from: &str, cluster: &str) -> anyhow::Result<()> {
    let repo = ctx.repo(from, cluster, Access::Read).await?;
    let (backups, broken) = repo.list().await?;
    let now = Utc::now();
    let rows: Vec<serde_json::Value> = backups
        .iter()
        .map(|m| {
            let mut row = json!({
                "id": m.id,
                "created_at": m.created_at.to_rfc3339(),
                "age_seconds": (now - m.created_at).num_seconds(),
                "mode": m.mode,
                "dremio_version": m.cluster.version,
                "dremio_build": m.cluster.build,
                "raw_bytes": m.raw_bytes,
                "stored_bytes": m.stored_bytes,
                "kv_files": m.counts.kv_files,
                "uploaded_files": m.counts.uploaded_files,
                "security_files": m.counts.security_files,
                "host": m.host,
                "kind": m.cluster.kind,
            });
            // A Druid backup: its tables' rows and segments instead of KV files.
            if let Some(d) = &m.druid {
                row["druid"] = json!({
                    "druid_version": d.druid_version,
                    "database": d.database.kind,
                    "tables": d.tables.len(),
                    "rows": d.tables.iter().map(|t| t.rows).sum::<u64>(),
                    "segments": d.segments.total,
                });
            }
            row
        })
        .collect();
    let unusable: Vec<serde_json::Value> = broken
        .iter()
        .map(|b| json!({"id": b.id, "problem": b.why}))
        .collect();
    let mut human = String::new();
    if backups.is_empty() {
        human.push_str(&format!(
            "No committed backups of cluster {cluster:?} in {}",
            repo.loc.url()
        ));
    } else {
        human.push_str(&format!(
            "{:<22} {:>8} {:<10} {:<8} {:>10} {:>10} {:>8} {:>8}\n",
            "ID", "AGE", "VERSION", "MODE", "RAW", "STORED", "KV", "UPLOADS"
        ));
        for m in &backups {
            // A Druid backup has table rows, not KV or uploaded files.
            let (kv, uploads) = match &m.druid {
                Some(d) => (
                    format!("{} rows", d.tables.iter().map(|t| t.rows).sum::<u64>()),
                    "-".to_string(),
                ),
                None => (
                    m.counts.kv_files.to_string(),
                    m.counts.uploaded_files.to_string(),
                ),
            };
            human.push_str(&format!(
                "{:<22} {:>8} {:<10} {:<8} {:>10} {:>10} {:>8} {:>8}\n",
                m.id,
                age(now - m.created_at),
                m.cluster.version,
                m.mode,
                human_bytes(m.raw_bytes),
                human_bytes(m.stored_bytes),
                kv,
                uploads
            ));
        }
        human.pop();
    }
    for b in &broken {
        human.push_str(&format!(
            "\nwarning: {} has an unusable manifest: {}",
            b.id, b.why
        ));
    }
    ctx.emit(&json!({"location": repo.loc.url(), "cluster": cluster, "backups": rows, "unusable": unusable}), &human);
    Ok(())
}
