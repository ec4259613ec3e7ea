//! `lifeboat drill`: restore the newest backup into a scratch copy (never a live cluster), start a
//! coordinator on it with `drill_start`, wait until it serves, log in, compare its catalog with
//! the backup's fingerprint (or `--expect-tree`, or `clone_tree`), stop it and remove the scratch.
//! Phases: fetch, verify, extract, start, validate (RTO is the time to the end of `start`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::validate::{self, Reference};
use super::{Common, backup_json, class_of, missed, reported, round3, rpo_seconds};
use crate::commands::Ctx;
use crate::commands::clone::Conn;
use crate::commands::restore::{self, RestoreArgs};
use crate::dr::service::{self, Foreground, Vars};
use crate::dr::serving::{self, Probe};
use crate::dr::timeline::Timeline;
use crate::error::ExitClass;
use crate::metrics::Sample;
use crate::repo::Manifest;

/// How long the drill's coordinator has to end after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// How much of the coordinator's log a failure shows.
const LOG_TAIL: u64 = 4096;

#[derive(Debug, Clone)]
pub struct DrillArgs {
    pub cluster: String,
    pub from: String,
    pub backup: String,
    pub scratch: Option<PathBuf>,
    pub drill_start: String,
    pub drill_stop: Option<String>,
    pub dremio_home: Option<PathBuf>,
    pub expect_tree: Option<PathBuf>,
    /// The cluster's (or its standby's) `clone_tree`.
    pub clone_tree: Option<PathBuf>,
    pub keep_scratch: bool,
    pub common: Common,
}

/// The drill's scratch folder and its coordinator: dropping it (on any path, errors included)
/// kills the coordinator's process group first, then removes the folder (unless kept).
struct Scratch {
    coordinator: Option<Foreground>,
    dir: Option<tempfile::TempDir>,
    keep: bool,
}

impl Scratch {
    fn path(&self) -> &Path {
        self.dir.as_ref().map(|d| d.path()).unwrap_or(Path::new(""))
    }

    /// Removes the folder (or keeps it); says what happened.
    fn clean(&mut self) -> Result<String, String> {
        drop(self.coordinator.take());
        let Some(dir) = self.dir.take() else {
            return Ok("nothing to remove".into());
        };
        if self.keep {
            let path = dir.keep();
            return Ok(format!("kept {} (--keep-scratch)", path.display()));
        }
        let shown = dir.path().display().to_string();
        dir.close()
            .map(|()| format!("removed {shown}"))
            .map_err(|e| format!("cannot remove {shown}: {e}"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        drop(self.coordinator.take());
        if self.keep
            && let Some(dir) = self.dir.take()
        {
            let _ = dir.keep();
        }
        // A TempDir still held removes itself here.
    }
}

/// A port nobody listens on now, on 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| anyhow::anyhow!("cannot find a free port on 127.0.0.1: {e}"))?;
    Ok(listener.local_addr()?.port())
}

/// What the drill has learnt so far, for its report.
struct Facts<'a> {
    args: &'a DrillArgs,
    manifest: Option<Manifest>,
    url: Option<String>,
    validation: Option<Value>,
    scratch: Option<PathBuf>,
    cleanup: Option<String>,
}

pub async fn run(ctx: &Ctx, args: &DrillArgs) -> anyhow::Result<()> {
    let mut tl = Timeline::new();
    let mut facts = Facts {
        args,
        manifest: None,
        url: None,
        validation: None,
        scratch: None,
        cleanup: None,
    };
    let mut scratch = Scratch {
        coordinator: None,
        dir: None,
        keep: args.keep_scratch,
    };
    let result = steps(ctx, args, &mut tl, &mut facts, &mut scratch).await;

    // stop and cleanup run whatever happened before.
    let stopped = stop(ctx, args, &mut tl, &mut scratch).await;
    tl.begin("cleanup");
    match scratch.clean() {
        Ok(done) => {
            tl.end(done.clone());
            facts.cleanup = Some(done);
        }
        Err(why) => {
            tl.fail(why.clone());
            facts.cleanup = Some(why);
        }
    }
    let outcome: Result<&'static str, (ExitClass, String)> = match (result, stopped) {
        (Err((class, why)), _) => Err((class, why)),
        (Ok(_), Err(why)) => Err((ExitClass::NotServing, why)),
        (Ok(compared), Ok(())) => Ok(if compared {
            "ok"
        } else {
            "serving, not compared"
        }),
    };
    finish(ctx, &tl, &facts, outcome)
}

/// fetch, verify, extract, start, validate; `Ok(compared)`.
async fn steps(
    ctx: &Ctx,
    args: &DrillArgs,
    tl: &mut Timeline,
    facts: &mut Facts<'_>,
    scratch: &mut Scratch,
) -> Result<bool, (ExitClass, String)> {
    let fail = |tl: &mut Timeline, class: ExitClass, why: String| {
        tl.fail(why.clone());
        (class, why)
    };
    let failed = |tl: &mut Timeline, e: anyhow::Error| {
        let why = format!("{e:#}");
        tl.fail(why.clone());
        (class_of(&e), why)
    };

    tl.begin("fetch");
    if args.drill_start.trim().is_empty() {
        return Err(fail(
            tl,
            ExitClass::Usage,
            format!(
                "a drill needs the command that runs a coordinator on the scratch copy: set clusters.{}.drill_start (e.g. \"{{home}}/bin/dremio start-fg\" with {{paths_local}} and {{port}}), or pass --drill-start",
                args.cluster
            ),
        ));
    }
    let (repo, manifest) = super::choose(ctx, &args.from, &args.cluster, &args.backup)
        .await
        .map_err(|e| failed(tl, e))?;
    tl.end(format!(
        "backup {} ({}, {}, Dremio {}) from {}",
        manifest.id,
        manifest.mode,
        crate::units::age(chrono::Utc::now() - manifest.created_at),
        manifest.cluster.version,
        repo.loc.url()
    ));
    facts.manifest = Some(manifest.clone());

    tl.begin("verify");
    match manifest.mode.as_str() {
        "offline" => {}
        "logical" => {
            let admin = args
                .dremio_home
                .as_ref()
                .map(|h| h.join("bin").join("dremio-admin"));
            if !admin.as_ref().is_some_and(|a| a.is_file()) {
                return Err(fail(
                    tl,
                    ExitClass::Refused,
                    format!(
                        "backup {} is a logical (online) backup, which dremio-admin loads: give a DREMIO_HOME with bin/dremio-admin of Dremio {} (--dremio-home, or dremio_home in the config){}",
                        manifest.id,
                        manifest.cluster.version,
                        admin
                            .map(|a| format!("; {} is not there", a.display()))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        other => {
            return Err(fail(
                tl,
                ExitClass::Refused,
                format!(
                    "backup {} is a {other} backup: a drill restores Dremio backups (offline or logical)",
                    manifest.id
                ),
            ));
        }
    }
    let base = args.scratch.clone().unwrap_or_else(std::env::temp_dir);
    if !base.is_dir() {
        return Err(fail(
            tl,
            ExitClass::Usage,
            format!(
                "--scratch {}: not a folder (the drill makes a new folder inside it)",
                base.display()
            ),
        ));
    }
    tl.end(format!(
        "{} backup of Dremio {}; scratch in {}",
        manifest.mode,
        manifest.cluster.version,
        base.display()
    ));

    tl.begin("extract");
    let dir = tempfile::Builder::new()
        .prefix(&format!("lifeboat-drill-{}-", manifest.id))
        .tempdir_in(&base)
        .map_err(|e| {
            fail(
                tl,
                ExitClass::Refused,
                format!("cannot make a scratch folder in {}: {e}", base.display()),
            )
        })?;
    let root = dir.path().to_path_buf();
    scratch.dir = Some(dir);
    facts.scratch = Some(root.clone());
    let paths_local = root.join("paths.local");
    let catalog = root.join("catalog.jsonl");
    let restore_args = RestoreArgs {
        from: args.from.clone(),
        cluster: args.cluster.clone(),
        backup: manifest.id.clone(),
        dremio_home: args.dremio_home.clone(),
        paths_local: Some(paths_local.clone()),
        dremio_version: None,
        replace: false,
        owner: None,
        dry_run: false,
        druid: None,
        catalog_to: Some(catalog.clone()),
        confine: true,
        identity: None,
    };
    let restored = restore::run(&ctx.silenced(), &restore_args).await;
    let restored = restored.map_err(|e| failed(tl, e))?;
    let detail = match &restored {
        restore::Restored::Dremio(r) => format!(
            "{} KV files, {} uploaded, {} security files ({}) into {}",
            r.kv_files,
            r.uploaded_files,
            r.security_files,
            crate::units::human_bytes(r.raw_bytes),
            paths_local.display()
        ),
        restore::Restored::Druid(_) => "restored".into(),
    };
    tl.end(detail);

    tl.begin("start");
    let port = free_port().map_err(|e| failed(tl, e))?;
    let vars = Vars {
        paths_local: paths_local.clone(),
        home: args.dremio_home.clone(),
        port,
    };
    let key = format!("clusters.{}.drill_start", args.cluster);
    let command =
        service::expand(&key, &args.drill_start, &vars).map_err(|e| failed(tl, e.into()))?;
    let log = root.join("coordinator.log");
    let fg = Foreground::spawn("the drill's coordinator", &command, &log)
        .map_err(|e| failed(tl, e.into()))?;
    let url = format!("http://127.0.0.1:{port}");
    let coordinator = scratch.coordinator.insert(fg);
    let client = crate::dremio::rest::client(&crate::dremio::rest::Tls::default())
        .map_err(|e| failed(tl, e.into()))?;
    let waited = serving::wait(
        &client,
        Probe::Dremio,
        std::slice::from_ref(&url),
        args.common.start_timeout,
        &ctx.cancel,
        &mut || coordinator.ended(),
    )
    .await;
    if let Err(e) = waited {
        let class = match &e {
            crate::dr::DrError::Interrupted => ExitClass::Interrupted,
            _ => ExitClass::NotServing,
        };
        let tail = coordinator.log_tail(LOG_TAIL);
        let why = if tail.trim().is_empty() {
            format!("{e}; its log {} is empty", log.display())
        } else {
            format!("{e}; its log ends with:\n{}", tail.trim_end())
        };
        return Err(fail(tl, class, why));
    }
    tl.end(format!(
        "{url} serves (pid {})",
        coordinator.pid().unwrap_or(0)
    ));
    facts.url = Some(url.clone());

    tl.begin("validate");
    let reference = if let Some(tree) = &args.expect_tree {
        Reference::Tree(tree.clone())
    } else if catalog.is_file() {
        Reference::Fingerprint(catalog.clone())
    } else if let Some(tree) = &args.clone_tree {
        Reference::Tree(tree.clone())
    } else {
        Reference::None
    };
    let conn = Conn {
        urls: vec![url],
        tls: crate::dremio::rest::Tls::default(),
        env_prefix: super::PRIMARY_CREDS,
    };
    let v = validate::against(ctx, &conn, &reference, &root.join("export"))
        .await
        .map_err(|e| {
            let why = format!("{e:#}");
            tl.fail(why.clone());
            // A coordinator that serves but cannot be logged in to or exported does not serve
            // what it should.
            let class = match class_of(&e) {
                ExitClass::Interrupted => ExitClass::Interrupted,
                ExitClass::Usage => ExitClass::Usage,
                _ => ExitClass::NotServing,
            };
            (class, why)
        })?;
    facts.validation = Some(v.json.clone());
    if !v.ok {
        return Err(fail(tl, ExitClass::NotServing, v.summary));
    }
    let compared = !matches!(reference, Reference::None);
    if compared {
        tl.end(v.summary);
    } else {
        ctx.progress.note(&format!("warning: {}", v.summary));
        tl.end(v.summary);
    }
    Ok(compared)
}

/// `stop`: the drill's stop command when given, then the group is ended (SIGTERM, then SIGKILL).
async fn stop(
    ctx: &Ctx,
    args: &DrillArgs,
    tl: &mut Timeline,
    scratch: &mut Scratch,
) -> Result<(), String> {
    let paths_local = scratch.path().join("paths.local");
    let Some(coordinator) = scratch.coordinator.as_mut() else {
        return Ok(());
    };
    tl.begin("stop");
    let mut problems = Vec::new();
    if let Some(template) = &args.drill_stop {
        let vars = Vars {
            paths_local,
            home: args.dremio_home.clone(),
            port: 0,
        };
        let key = format!("clusters.{}.drill_stop", args.cluster);
        match service::expand(&key, template, &vars) {
            Ok(cmd) => {
                if let Err(e) = service::run(
                    "the drill's stop command",
                    &cmd,
                    super::COMMAND_TIMEOUT,
                    &ctx.cancel,
                )
                .await
                {
                    problems.push(e.to_string());
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    match coordinator.stop(STOP_GRACE).await {
        Ok(how) => {
            if problems.is_empty() {
                tl.end(format!("coordinator {how}"));
                return Ok(());
            }
            problems.push(format!("the coordinator then {how}"));
        }
        Err(e) => problems.push(e.to_string()),
    }
    let why = problems.join("; ");
    tl.fail(why.clone());
    Err(why)
}

fn finish(
    ctx: &Ctx,
    tl: &Timeline,
    facts: &Facts<'_>,
    outcome: Result<&'static str, (ExitClass, String)>,
) -> anyhow::Result<()> {
    let args = facts.args;
    let rto = match &outcome {
        Ok(_) => tl.until_end_of("start"),
        Err(_) => None,
    };
    let validate_seconds = tl
        .phases()
        .iter()
        .rev()
        .find(|p| p.name == "validate")
        .map(|p| round3(p.seconds));
    let rpo = facts.manifest.as_ref().map(rpo_seconds);
    let word = match &outcome {
        Ok(w) => *w,
        Err(_) => "failed",
    };
    let fields = json!({
        "cluster": args.cluster,
        "backup": facts.manifest.as_ref().map(|m| backup_json(m, &args.from)),
        "rto_seconds": rto.map(round3),
        "rpo_seconds": rpo.map(round3),
        "rto_target_seconds": args.common.rto.map(|d| d.as_secs_f64()),
        "rpo_target_seconds": args.common.rpo.map(|d| d.as_secs_f64()),
        "outcome": word,
        "validate_seconds": validate_seconds,
        "coordinator": facts.url,
        "validation": facts.validation,
        "scratch": facts.scratch,
        "cleanup": facts.cleanup,
        "error": outcome.as_ref().err().map(|(_, why)| why.clone()),
    });
    let head = match &facts.manifest {
        Some(m) => format!("Drill of {} backup {} ({}):", args.cluster, m.id, m.mode),
        None => format!("Drill of {}:", args.cluster),
    };
    super::report(ctx, "drill", tl, fields, &head);

    let labels = [
        ("cluster", args.cluster.as_str()),
        ("location", args.from.as_str()),
    ];
    let ok = outcome.is_ok();
    let mut samples = vec![Sample::new(
        "lifeboat_drill_success",
        &labels,
        if ok { 1.0 } else { 0.0 },
    )];
    if ok {
        samples.push(Sample::new(
            "lifeboat_drill_last_success_timestamp_seconds",
            &labels,
            chrono::Utc::now().timestamp() as f64,
        ));
    }
    if let Some(r) = rto {
        samples.push(Sample::new("lifeboat_drill_rto_seconds", &labels, r));
    }
    if let Some(r) = rpo {
        samples.push(Sample::new("lifeboat_drill_rpo_seconds", &labels, r));
    }
    ctx.metrics(args.common.metrics_file.as_deref(), &samples);

    match outcome {
        Err((class, why)) => Err(reported(class, format!("the drill failed: {why}"))),
        Ok("ok") if missed(rto, args.common.rto) => Err(reported(
            ExitClass::Warnings,
            format!(
                "the drill succeeded but its RTO {} misses the target {}",
                super::secs(rto.unwrap_or(0.0)),
                super::secs(args.common.rto.map(|d| d.as_secs_f64()).unwrap_or(0.0))
            ),
        )),
        Ok("ok") => Ok(()),
        Ok(_) => Err(reported(
            ExitClass::Warnings,
            "the drill's coordinator served, but nothing was compared: the backup has no catalog fingerprint and the cluster no clone_tree (or pass --expect-tree)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_in(base: &Path, keep: bool) -> (Scratch, PathBuf) {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-drill-x-")
            .tempdir_in(base)
            .unwrap();
        let path = dir.path().to_path_buf();
        std::fs::create_dir_all(path.join("paths.local/db")).unwrap();
        (
            Scratch {
                coordinator: None,
                dir: Some(dir),
                keep,
            },
            path,
        )
    }

    #[test]
    fn the_scratch_goes_on_every_path_unless_kept() {
        let base = tempfile::tempdir().unwrap();
        // Dropped (an error path): removed.
        let (s, path) = scratch_in(base.path(), false);
        drop(s);
        assert!(!path.exists());
        // Cleaned: removed, and says so.
        let (mut s, path) = scratch_in(base.path(), false);
        assert!(s.clean().unwrap().starts_with("removed"));
        assert!(!path.exists());
        // Kept, whether cleaned or dropped.
        let (mut s, path) = scratch_in(base.path(), true);
        assert!(s.clean().unwrap().starts_with("kept"));
        assert!(path.is_dir());
        let (s, kept) = scratch_in(base.path(), true);
        drop(s);
        assert!(kept.is_dir());
        // Nothing else of the base folder is touched.
        let mut left: Vec<PathBuf> = std::fs::read_dir(base.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        left.sort();
        let mut want = vec![path, kept];
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn a_free_port_is_found() {
        assert!(free_port().unwrap() > 0);
    }
}
