//! `drill`, `standby refresh` and `failover`: Dremio's DR procedures (backup & restore,
//! pilot-light, failover) as one command each, on one timeline that RTO is measured on. The steps
//! are the other commands' (`restore`, `clone`, `doctor`) and `dr/`'s building blocks.

pub mod drill;
pub mod failover;
pub mod standby;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::{CommandError, Ctx};
use crate::config::{ClusterConfig, Config};
use crate::dr::timeline::Timeline;
use crate::error::ExitClass;
use crate::repo::{Manifest, Repo};
use crate::store::location::Access;

/// How long a started coordinator may take to serve unless told.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a start or stop command may take to return.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);
/// The environment prefix of the primary's Dremio credentials, and of a standby's own.
pub(crate) const PRIMARY_CREDS: &str = "LIFEBOAT_DREMIO_";
pub(crate) const SECONDARY_CREDS: &str = "LIFEBOAT_SECONDARY_DREMIO_";

/// A standby and its primary, as the config file names them.
#[derive(Debug, Clone)]
pub struct Pair {
    pub standby: String,
    pub cc: ClusterConfig,
    pub primary: String,
    pub pcc: ClusterConfig,
    /// Where the standby restores from: its `restore_from`, else the primary's `to`.
    pub from: String,
}

/// The standby `name` (or the file's only cluster with `standby_for`) and its primary; a
/// cluster without `standby_for`, or with no `start`/`stop`, is a usage error saying what to add.
pub fn pair(config: &Config, name: Option<&str>) -> Result<Pair, CommandError> {
    let standbys: Vec<&String> = config
        .clusters
        .iter()
        .filter(|(_, c)| c.standby_for.is_some())
        .map(|(n, _)| n)
        .collect();
    let name = match name {
        Some(n) => n.to_string(),
        None => match standbys.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(CommandError::Usage(
                    "no cluster of the config file is a standby: add `standby_for = \"<primary>\"` (with `start` and `stop` commands) to the standby's [clusters.<name>] section, and pass --config".into(),
                ));
            }
            many => {
                let names: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                return Err(CommandError::Usage(format!(
                    "several clusters are standbys ({}): say which with --cluster",
                    names.join(", ")
                )));
            }
        },
    };
    let Some(cc) = config.clusters.get(&name) else {
        return Err(CommandError::Usage(format!(
            "the config file has no cluster {name:?}: add a [clusters.{name}] section with `standby_for`, `start` and `stop`"
        )));
    };
    let Some(primary) = cc.standby_for.as_ref().map(|p| p.get_ref().clone()) else {
        return Err(CommandError::Usage(format!(
            "cluster {name:?} is not a standby: add `standby_for = \"<primary>\"` to [clusters.{name}]"
        )));
    };
    let Some(pcc) = config.clusters.get(&primary) else {
        return Err(CommandError::Usage(format!(
            "clusters.{name}.standby_for names {primary:?}, which the config file lacks"
        )));
    };
    let missing: Vec<&str> = [("start", &cc.start), ("stop", &cc.stop)]
        .into_iter()
        .filter(|(_, v)| v.as_deref().is_none_or(|s| s.trim().is_empty()))
        .map(|(k, _)| k)
        .collect();
    if !missing.is_empty() {
        return Err(CommandError::Usage(format!(
            "standby {name:?} needs {} in [clusters.{name}]: the shell commands that start and stop its coordinator (e.g. start = \"systemctl start dremio\")",
            missing.join(" and ")
        )));
    }
    let from = cc
        .restore_from
        .as_ref()
        .or(pcc.to.as_ref())
        .map(|t| t.get_ref().clone())
        .ok_or_else(|| {
            CommandError::Usage(format!(
                "standby {name:?} has nowhere to restore from: set clusters.{name}.restore_from (the copy nearest to it) or clusters.{primary}.to"
            ))
        })?;
    Ok(Pair {
        standby: name,
        cc: cc.clone(),
        primary,
        pcc: pcc.clone(),
        from,
    })
}

/// The backup a procedure uses (`latest` or an id) in `from`, for `cluster`.
pub async fn choose(
    ctx: &Ctx,
    from: &str,
    cluster: &str,
    selector: &str,
) -> anyhow::Result<(Repo, Manifest)> {
    use anyhow::Context;
    let repo = ctx
        .repo(from, cluster, Access::Read)
        .await
        .with_context(|| format!("open the backups of {cluster} in {from}"))?;
    let manifest = repo
        .manifest(selector)
        .await
        .with_context(|| format!("backup {selector} of {cluster} in {from}"))?;
    Ok((repo, manifest))
}

/// The RPO a backup represents now: how old its snapshot is (now - created_at), in seconds.
pub fn rpo_seconds(manifest: &Manifest) -> f64 {
    let ms = (chrono::Utc::now() - manifest.created_at).num_milliseconds();
    (ms.max(0) as f64) / 1000.0
}

/// The port of the first URL (9047, Dremio's, when it has none): `{port}` of a standby's commands.
pub fn port_of(urls: &[String]) -> u16 {
    urls.first()
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| u.port())
        .unwrap_or(9047)
}

/// Rounded to milliseconds, for JSON.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `backup` of the report: {id, created_at, age_seconds, location}.
pub(crate) fn backup_json(manifest: &Manifest, location: &str) -> Value {
    json!({
        "id": manifest.id,
        "created_at": manifest.created_at,
        "age_seconds": round3(rpo_seconds(manifest)),
        "mode": manifest.mode,
        "version": manifest.cluster.version,
        "location": location,
    })
}

/// "12.3s", "4m05s".
pub(crate) fn secs(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        let whole = s.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// The outcome every procedure prints: with `--json` one object (`command`, `cluster`,
/// `backup` {id, created_at, age_seconds}, `phases`, `rto_seconds`, `rpo_seconds`, `outcome`,
/// plus `fields`); else `head`, the timeline, and the RTO/RPO lines (with their targets).
///
/// `fields` carries `cluster`, `backup`, `rto_seconds`, `rpo_seconds` and `outcome` (and the
/// targets `rto_target_seconds`, `rpo_target_seconds` when set); anything else is passed on.
pub fn report(ctx: &Ctx, command: &str, timeline: &Timeline, fields: Value, head: &str) {
    let mut object = serde_json::Map::new();
    object.insert("command".into(), json!(command));
    for key in ["cluster", "backup"] {
        object.insert(key.into(), fields.get(key).cloned().unwrap_or(Value::Null));
    }
    object.insert("phases".into(), timeline.to_json());
    for key in ["rto_seconds", "rpo_seconds", "outcome"] {
        object.insert(key.into(), fields.get(key).cloned().unwrap_or(Value::Null));
    }
    if let Value::Object(rest) = &fields {
        for (k, v) in rest {
            object.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let mut human = String::new();
    if !head.is_empty() {
        human.push_str(head);
        human.push('\n');
    }
    human.push_str(timeline.to_text().trim_end());
    let num = |k: &str| fields.get(k).and_then(Value::as_f64);
    for (what, value, target) in [
        ("RTO", num("rto_seconds"), num("rto_target_seconds")),
        ("RPO", num("rpo_seconds"), num("rpo_target_seconds")),
    ] {
        let Some(value) = value else { continue };
        human.push_str(&format!("\n{what} {}", secs(value)));
        if let Some(t) = target {
            let verdict = if value <= t { "met" } else { "MISSED" };
            human.push_str(&format!(" (target {}: {verdict})", secs(t)));
        }
    }
    if let Some(outcome) = fields.get("outcome").and_then(Value::as_str) {
        human.push_str(&format!("\noutcome: {outcome}"));
    }
    if let Some(next) = fields.get("next").and_then(Value::as_str) {
        human.push_str(&format!(
            "\nnext: {next} (the one step lifeboat cannot do: DNS, the load balancer or the clients' settings)"
        ));
    }
    ctx.emit(&Value::Object(object), &human);
}

/// Whether a measured figure misses its target (a warning, exit 10).
pub(crate) fn missed(value: Option<f64>, target: Option<Duration>) -> bool {
    matches!((value, target), (Some(v), Some(t)) if v > t.as_secs_f64())
}

/// The error that only sets the exit code once the report is printed.
pub(crate) fn reported(class: ExitClass, message: impl Into<String>) -> anyhow::Error {
    CommandError::Reported {
        class,
        message: message.into(),
    }
    .into()
}

pub(crate) use super::class_of;

/// The credentials' prefix of a standby: its own when set, else the primary's.
pub(crate) fn standby_creds() -> &'static str {
    let own = ["USER", "TOKEN", "TOKEN_FILE"]
        .iter()
        .any(|s| std::env::var_os(format!("{SECONDARY_CREDS}{s}")).is_some());
    if own { SECONDARY_CREDS } else { PRIMARY_CREDS }
}

/// Options every procedure shares, resolved from flags and the config.
#[derive(Debug, Clone)]
pub struct Common {
    pub start_timeout: Duration,
    pub rto: Option<Duration>,
    pub rpo: Option<Duration>,
    pub metrics_file: Option<PathBuf>,
    pub tls: crate::dremio::rest::Tls,
}

/// The timeline's line for a standby's completed restore: what came in and where the previous
/// contents are kept.
fn restored_line(r: &crate::commands::restore::RestoreReport) -> String {
    let kept: Vec<String> = r
        .safety_copies
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    format!(
        "backup {}: {} KV files ({}), previous contents kept at {}",
        r.id,
        r.kv_files,
        crate::units::human_bytes(r.raw_bytes),
        kept.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("t.toml")).unwrap()
    }

    const PAIR: &str = r#"
        [clusters.prod]
        dremio_urls = ["https://dremio-a:9047"]
        to = "/backups/us"
        rpo = "1h"
        rto = "15m"
        [clusters.dr]
        standby_for = "prod"
        restore_from = "/backups/eu"
        dremio_urls = ["https://dremio-dr:9443"]
        start = "systemctl start dremio"
        stop = "systemctl stop dremio"
    "#;

    #[test]
    fn the_pair_is_the_standby_and_its_primary() {
        let c = config(PAIR);
        let p = pair(&c, None).unwrap();
        assert_eq!((p.standby.as_str(), p.primary.as_str()), ("dr", "prod"));
        assert_eq!(p.from, "/backups/eu");
        assert_eq!(pair(&c, Some("dr")).unwrap().standby, "dr");
        let err = pair(&c, Some("prod")).unwrap_err().to_string();
        assert!(
            err.contains("not a standby") && err.contains("standby_for"),
            "{err}"
        );
        let err = pair(&c, Some("nope")).unwrap_err().to_string();
        assert!(err.contains("no cluster \"nope\""), "{err}");
        assert_eq!(port_of(&p.cc.dremio_urls), 9443);
        assert_eq!(port_of(&p.pcc.dremio_urls), 9047);
        assert_eq!(port_of(&["http://h".to_string()]), 9047);
        assert_eq!(port_of(&[]), 9047);
    }

    #[test]
    fn a_standby_needs_its_commands_and_a_location() {
        let c = config("[clusters.prod]\n[clusters.dr]\nstandby_for = \"prod\"\nstart = \"x\"\n");
        let err = pair(&c, None).unwrap_err().to_string();
        assert!(err.contains("needs stop"), "{err}");
        let c = config(
            "[clusters.prod]\n[clusters.dr]\nstandby_for = \"prod\"\nstart = \"x\"\nstop = \"y\"\n",
        );
        let err = pair(&c, None).unwrap_err().to_string();
        assert!(err.contains("restore_from"), "{err}");
        // Without restore_from, the primary's `to`.
        let c = config(
            "[clusters.prod]\nto = \"/b\"\n[clusters.dr]\nstandby_for = \"prod\"\nstart = \"x\"\nstop = \"y\"\n",
        );
        assert_eq!(pair(&c, None).unwrap().from, "/b");
        let err = pair(&config("[clusters.prod]\n"), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no cluster of the config file is a standby"),
            "{err}"
        );
    }

    #[test]
    fn figures_print_short_and_targets_are_compared() {
        assert_eq!(secs(1.25), "1.2s");
        assert_eq!(secs(245.0), "4m05s");
        assert!(missed(Some(10.0), Some(Duration::from_secs(5))));
        assert!(!missed(Some(1.0), Some(Duration::from_secs(5))));
        assert!(!missed(Some(10.0), None));
        assert!(!missed(None, Some(Duration::from_secs(5))));
    }
}
