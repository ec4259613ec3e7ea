//! `lifeboat list`: committed backups of a cluster in a location, newest first, with each one's
//! format, encryption (how many recipients) and, for format 2, the bytes it uploaded and the bytes
//! it reuses from earlier backups. Read from the manifests alone: no key is needed.

use chrono::Utc;
use serde_json::json;

use super::Ctx;
use crate::repo::Manifest;
use crate::repo::copy::needed_bytes;
use crate::store::location::Access;
use crate::units::{age, human_bytes};

/// `1`, `2`, or `2+age` when encrypted.
pub(crate) fn format_label(m: &Manifest) -> String {
    let major = if m.is_format_2() { "2" } else { "1" };
    match &m.encryption {
        Some(_) => format!("{major}+age"),
        None => major.to_string(),
    }
}

/// A backup's shape for `--json` output (list and status): format, encryption, reuse, base.
pub(crate) fn shape_json(m: &Manifest) -> serde_json::Value {
    let needed = needed_bytes(m);
    json!({
        "format": m.format,
        "encrypted": m.encryption.is_some(),
        "recipients": m.encryption.as_ref().map_or(0, |e| e.recipients.len()),
        "objects": m.objects.len(),
        "uploaded_bytes": m.stored_bytes,
        "reused_bytes": needed.saturating_sub(m.stored_bytes),
        "needed_bytes": needed,
        "base": m.base,
    })
}

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
            if let (Some(row), serde_json::Value::Object(shape)) =
                (row.as_object_mut(), shape_json(m))
            {
                row.extend(shape);
            }
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
            "{:<22} {:>8} {:<10} {:<8} {:<6} {:>10} {:>10} {:>10} {:>8} {:>8}\n",
            "ID", "AGE", "VERSION", "MODE", "FORMAT", "RAW", "STORED", "REUSED", "KV", "UPLOADS"
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
            let reused = if m.is_format_2() {
                human_bytes(needed_bytes(m).saturating_sub(m.stored_bytes))
            } else {
                "-".to_string()
            };
            human.push_str(&format!(
                "{:<22} {:>8} {:<10} {:<8} {:<6} {:>10} {:>10} {:>10} {:>8} {:>8}\n",
                m.id,
                age(now - m.created_at),
                m.cluster.version,
                m.mode,
                format_label(m),
                human_bytes(m.raw_bytes),
                human_bytes(m.stored_bytes),
                reused,
                kv,
                uploads
            ));
            if let Some(e) = &m.encryption {
                human.push_str(&format!(
                    "{:<22} encrypted to {} recipient(s){}\n",
                    "",
                    e.recipients.len(),
                    m.base
                        .as_ref()
                        .map(|b| format!(", base {b}"))
                        .unwrap_or_default()
                ));
            } else if let Some(b) = &m.base {
                human.push_str(&format!("{:<22} base {b}\n", ""));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::prune::tests::two_f2_backups;
    use crate::repo::write::tests::memory_repo;

    #[tokio::test]
    async fn a_format_2_backup_shows_what_it_uploaded_and_what_it_reuses() {
        let repo = memory_repo();
        let (first, mut second) = two_f2_backups(&repo).await;
        // The second uploaded all but the first's shared object it reuses.
        second.stored_bytes -= second.objects[0].bytes;
        second.base = Some(first.id.clone());
        let shape = shape_json(&second);
        assert_eq!(shape["format"], "lifeboat-backup/2");
        assert_eq!(shape["encrypted"], false);
        assert_eq!(shape["reused_bytes"], second.objects[0].bytes);
        assert_eq!(shape["uploaded_bytes"], second.stored_bytes);
        assert_eq!(shape["base"], first.id.as_str());
        assert_eq!(format_label(&second), "2");
        second.encryption = Some(crate::repo::manifest::Encryption {
            scheme: crate::crypto::SCHEME.into(),
            recipients: vec!["age1a".into(), "age1b".into()],
        });
        assert_eq!(shape_json(&second)["recipients"], 2);
        assert_eq!(format_label(&second), "2+age");
        let one = crate::repo::manifest::tests::sample();
        assert_eq!(format_label(&one), "1");
        assert_eq!(shape_json(&one)["reused_bytes"], 0);
    }
}
