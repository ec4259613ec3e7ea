//! `lifeboat status`: for a cluster's primary location and its copies, the newest committed backup,
//! its age against the RPO, and whether every copy holds the primary's newest backup. Exit 0 when
//! all is well, 8 when a location is older than the RPO, a copy lags, or a location cannot be read.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;

use super::{CommandError, Ctx};
use crate::error::ExitClass;
use crate::metrics::Sample;
use crate::store::location::Access;

#[derive(Debug, Clone)]
pub struct StatusArgs {
    pub cluster: String,
    pub from: String,
    pub copies: Vec<String>,
    pub rpo: Option<Duration>,
    pub metrics_file: Option<PathBuf>,
}

/// What status found in one location.
pub(crate) struct Row {
    pub name: String,
    pub role: &'static str,
    pub newest: Option<(String, chrono::TimeDelta)>,
    pub ids: Vec<String>,
    /// The newest backup's format (`1`, `2`, `2+age`) and its shape for `--json` (see
    /// [`super::list::shape_json`]): read from its manifest, no key needed.
    pub newest_format: Option<(String, serde_json::Value)>,
    /// Why this location fails the check: no backup, older than the RPO, lagging, unreadable.
    pub problem: Option<String>,
}

/// Each location's newest backup judged against the RPO and the primary (`doctor` shares it).
pub(crate) async fn survey(
    ctx: &Ctx,
    cluster: &str,
    from: &str,
    copies: &[String],
    rpo_limit: Option<Duration>,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let names = std::iter::once((from.to_string(), "primary"))
        .chain(copies.iter().map(|c| (c.clone(), "copy")));
    let now = Utc::now();
    for (name, role) in names {
        let listed = async {
            let repo = ctx.repo(&name, cluster, Access::Read).await?;
            Ok::<_, anyhow::Error>(repo.list().await?.0)
        }
        .await;
        rows.push(match listed {
            Ok(backups) => Row {
                name,
                role,
                newest: backups.first().map(|m| (m.id.clone(), now - m.created_at)),
                ids: backups.iter().map(|m| m.id.clone()).collect(),
                newest_format: backups
                    .first()
                    .map(|m| (super::list::format_label(m), super::list::shape_json(m))),
                problem: None,
            },
            Err(e) => Row {
                name,
                role,
                newest: None,
                ids: Vec::new(),
                newest_format: None,
                problem: Some(format!("cannot read it: {e:#}")),
            },
        });
    }
    let primary_newest = rows[0].newest.as_ref().map(|(id, _)| id.clone());
    let rpo = rpo_limit.map(|d| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
    for row in rows.iter_mut().filter(|r| r.problem.is_none()) {
        row.problem = match (&row.newest, row.role, &primary_newest) {
            (None, _, _) => Some("no committed backup".into()),
            (Some((_, age)), _, _) if rpo.is_some_and(|r| *age > r) => Some(format!(
                "newest backup is {} old, older than the RPO of {}",
                crate::units::age(*age),
                humantime::format_duration(rpo_limit.unwrap_or_default())
            )),
            (Some((id, _)), "copy", Some(p)) if lacks(&row.ids, p) => {
                Some(format!("lags: newest here is {id}, the primary has {p}"))
            }
            _ => None,
        };
    }
    rows
}

/// Whether a copy holding backups `ids` lacks the primary's newest, `primary`. Not by comparing
/// ids: they sort by time only to the second, and two backups of one second sort by their suffix.
fn lacks(ids: &[String], primary: &str) -> bool {
    !ids.iter().any(|id| id == primary)
}

pub async fn run(ctx: &Ctx, args: &StatusArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let rows = survey(ctx, &args.cluster, &args.from, &args.copies, args.rpo).await;

    let mut samples = Vec::new();
    for row in &rows {
        let labels = [
            ("cluster", args.cluster.as_str()),
            ("location", row.name.as_str()),
        ];
        if let Some((_, age)) = &row.newest {
            samples.push(Sample::new(
                "lifeboat_newest_backup_age_seconds",
                &labels,
                age.num_seconds() as f64,
            ));
        }
        samples.push(Sample::new(
            "lifeboat_rpo_ok",
            &labels,
            if row.problem.is_none() { 1.0 } else { 0.0 },
        ));
        if row.role == "copy" {
            samples.push(Sample::new(
                "lifeboat_copy_ok",
                &labels,
                if row.problem.is_none() { 1.0 } else { 0.0 },
            ));
        }
    }
    let bad = rows.iter().filter(|r| r.problem.is_some()).count();
    let run_labels = [
        ("cluster", args.cluster.as_str()),
        ("location", args.from.as_str()),
        ("command", "status"),
    ];
    samples.push(Sample::new(
        "lifeboat_last_run_success",
        &run_labels,
        if bad == 0 { 1.0 } else { 0.0 },
    ));
    samples.push(Sample::new(
        "lifeboat_last_run_duration_seconds",
        &run_labels,
        started.elapsed().as_secs_f64(),
    ));
    ctx.metrics(args.metrics_file.as_deref(), &samples);

    let json = json!({
        "cluster": args.cluster,
        "rpo_seconds": args.rpo.map(|d| d.as_secs()),
        "ok": bad == 0,
        "locations": rows.iter().map(|r| json!({
            "location": r.name,
            "role": r.role,
            "backups": r.ids.len(),
            "newest": r.newest.as_ref().map(|(id, _)| id.clone()),
            "age_seconds": r.newest.as_ref().map(|(_, a)| a.num_seconds()),
            "newest_shape": r.newest_format.as_ref().map(|(_, shape)| shape.clone()),
            "ok": r.problem.is_none(),
            "problem": r.problem,
        })).collect::<Vec<_>>(),
    });
    let mut human = format!(
        "{:<8} {:<28} {:<22} {:>8} {:<6}  VERDICT",
        "ROLE", "LOCATION", "NEWEST", "AGE", "FORMAT"
    );
    for r in &rows {
        let (id, age) = match &r.newest {
            Some((id, a)) => (id.clone(), crate::units::age(*a)),
            None => ("-".into(), "-".into()),
        };
        let verdict = r.problem.clone().unwrap_or_else(|| "ok".into());
        let format = r
            .newest_format
            .as_ref()
            .map_or("-", |(label, _)| label.as_str());
        human.push_str(&format!(
            "\n{:<8} {:<28} {:<22} {:>8} {format:<6}  {verdict}",
            r.role, r.name, id, age
        ));
    }
    ctx.emit(&json, &human);
    if bad == 0 {
        Ok(())
    } else {
        Err(CommandError::Reported {
            class: ExitClass::RpoBreach,
            message: format!(
                "{bad} location(s) of cluster {:?} fail the RPO check",
                args.cluster
            ),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_lags_when_it_lacks_the_primarys_newest_even_within_one_second() {
        let copy = vec!["20261203T084021Z-cf55".to_string()];
        // Made later in the same second, with a suffix that sorts first.
        assert!(lacks(&copy, "20261203T084021Z-9c0c"));
        assert!(!lacks(&copy, "20261203T084021Z-cf55"));
        let both = vec![
            "20261203T084021Z-9c0c".to_string(),
            "20261203T084021Z-cf55".to_string(),
        ];
        assert!(!lacks(&both, "20261203T084021Z-9c0c"));
    }
}
