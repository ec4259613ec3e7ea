//! `lifeboat standby refresh`: the pilot-light cycle under the standby's lock. Checks first (the
//! standby's version is the primary's; the newest backup is newer than what the standby holds,
//! else nothing to do), then stop, restore (with a safety copy), start, wait for serving, clone
//! from the primary (live, else `clone_tree`), validate; any failure after the stop puts the
//! previous state back and starts it again (exit 13), or says exactly what is down (exit 14).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::validate::{self, CONCURRENCY};
use super::{Common, Pair, backup_json, class_of, reported, round3, rpo_seconds, standby_creds};
use crate::clone::filter::Filter;
use crate::clone::plan::Mode;
use crate::commands::Ctx;
use crate::commands::clone::{Conn, Kind, PlanArgs, Source};
use crate::commands::restore::{self, RestoreArgs, RestoreReport, Restored};
use crate::dr::service::{self, Vars};
use crate::dr::serving::{self, Answer, Probe};
use crate::dr::state::{self, StandbyState};
use crate::dr::timeline::Timeline;
use crate::dremio::Installation;
use crate::dremio::rest::{self, Coordinator, Credentials};
use crate::error::ExitClass;
use crate::metrics::Sample;
use crate::repo::Manifest;

/// How long the store's lock may stay held after the stop command returned.
const LOCK_FREE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a node has to answer whether it serves.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct RefreshArgs {
    pub pair: Pair,
    pub dry_run: bool,
    pub wait_lock: Option<Duration>,
    pub common: Common,
}

/// A standby's coordinator as the procedures drive it: its installation, its commands, its URLs.
pub(super) struct Standby<'a> {
    pub ctx: &'a Ctx,
    pub pair: &'a Pair,
    pub common: &'a Common,
    pub inst: Installation,
    pub client: reqwest::Client,
}

impl<'a> Standby<'a> {
    pub fn new(ctx: &'a Ctx, pair: &'a Pair, common: &'a Common) -> anyhow::Result<Standby<'a>> {
        use anyhow::Context;
        let cc = &pair.cc;
        let inst = Installation::discover(
            cc.dremio_home.as_deref(),
            cc.paths_local.as_deref(),
            cc.dremio_version.as_deref(),
        )
        .with_context(|| {
            format!(
                "the standby {}'s installation (clusters.{}.dremio_home / paths_local)",
                pair.standby, pair.standby
            )
        })?;
        if cc.dremio_urls.is_empty() {
            return Err(crate::commands::CommandError::Usage(format!(
                "the standby {0} needs its coordinator's URL to be watched: set clusters.{0}.dremio_urls",
                pair.standby
            ))
            .into());
        }
        Ok(Standby {
            ctx,
            pair,
            common,
            inst,
            client: rest::client(&common.tls)?,
        })
    }

    pub fn paths_local(&self) -> &Path {
        &self.inst.paths_local
    }

    pub fn url(&self) -> &str {
        self.pair
            .cc
            .dremio_urls
            .first()
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The `start` or `stop` command, filled in.
    pub fn command(&self, which: &str) -> anyhow::Result<String> {
        let cc = &self.pair.cc;
        let template = match which {
            "start" => cc.start.as_deref(),
            _ => cc.stop.as_deref(),
        }
        .unwrap_or_default();
        let vars = Vars {
            paths_local: self.inst.paths_local.clone(),
            home: self.inst.home.clone(),
            port: super::port_of(&cc.dremio_urls),
        };
        Ok(service::expand(
            &format!("clusters.{}.{which}", self.pair.standby),
            template,
            &vars,
        )?)
    }

    /// Runs the stop command, then waits (bounded) until no process holds the KV store's lock.
    pub async fn stop(&self) -> anyhow::Result<String> {
        let cmd = self.command("stop")?;
        let lock = self.inst.db.join("catalog").join("LOCK");
        let held = crate::dremio::lock::holder(&lock)
            .map(|h| h.is_some())
            .unwrap_or(true);
        if !held && !self.serves().await {
            // Nothing runs on the store: a stop command of a stopped service may fail.
            return Ok(format!(
                "not running (nobody holds {}, no URL serves): nothing to stop",
                lock.display()
            ));
        }
        let what = format!("the stop command of {}", self.pair.standby);
        service::run(&what, &cmd, super::COMMAND_TIMEOUT, &self.ctx.cancel).await?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            match crate::dremio::lock::holder(&lock) {
                Ok(None) => break,
                Ok(Some(h)) if started.elapsed() >= LOCK_FREE_TIMEOUT => {
                    anyhow::bail!(
                        "the stop command returned, but pid {} still holds {} after {}s: the coordinator did not stop",
                        h.pid,
                        lock.display(),
                        LOCK_FREE_TIMEOUT.as_secs()
                    );
                }
                Ok(Some(_)) => {}
                Err(e) => anyhow::bail!("cannot tell who holds {}: {e}", lock.display()),
            }
            if self.ctx.cancel.is_cancelled() {
                return Err(crate::dr::DrError::Interrupted.into());
            }
            // Polling a lock the kernel holds for another process; not a synchronisation sleep.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
        Ok(format!("`{cmd}`; the KV store is free"))
    }

    /// Restores `manifest` over the standby's paths.local (what was there is kept aside).
    pub async fn restore(
        &self,
        manifest: &Manifest,
        catalog_to: Option<PathBuf>,
    ) -> anyhow::Result<RestoreReport> {
        let cc = &self.pair.cc;
        let args = RestoreArgs {
            from: self.pair.from.clone(),
            cluster: self.pair.primary.clone(),
            backup: manifest.id.clone(),
            dremio_home: cc.dremio_home.clone(),
            paths_local: Some(self.inst.paths_local.clone()),
            dremio_version: cc.dremio_version.clone(),
            replace: true,
            owner: None,
            dry_run: false,
            druid: None,
            catalog_to,
            confine: false,
            identity: None,
        };
        let restored = restore::run(&self.ctx.silenced(), &args).await?;
        match restored {
            Restored::Dremio(r) => Ok(r),
            Restored::Druid(_) => anyhow::bail!("backup {} is not a Dremio backup", manifest.id),
        }
    }

    /// Runs the start command, then waits for one of the standby's URLs to serve.
    pub async fn start(&self) -> anyhow::Result<String> {
        let cmd = self.command("start")?;
        let what = format!("the start command of {}", self.pair.standby);
        service::run(&what, &cmd, super::COMMAND_TIMEOUT, &self.ctx.cancel).await?;
        let url = self.wait_serving().await?;
        Ok(format!("`{cmd}`; {url} serves"))
    }

    pub async fn wait_serving(&self) -> anyhow::Result<String> {
        Ok(serving::wait(
            &self.client,
            Probe::Dremio,
            &self.pair.cc.dremio_urls,
            self.common.start_timeout,
            &self.ctx.cancel,
            &mut || None,
        )
        .await?)
    }

    /// Whether one of the standby's URLs serves now.
    pub async fn serves(&self) -> bool {
        serving::ask(
            &self.client,
            Probe::Dremio,
            &self.pair.cc.dremio_urls,
            ASK_TIMEOUT,
        )
        .await
        .iter()
        .any(|(_, a)| *a == Answer::Serving)
    }

    /// The standby's coordinator, for clone and validation.
    pub fn conn(&self) -> Conn {
        Conn {
            urls: self.pair.cc.dremio_urls.clone(),
            tls: self.common.tls.clone(),
            env_prefix: standby_creds(),
        }
    }

    /// After a failure past the stop: stop again, put the previous contents back (when the
    /// restore had completed), start, wait. `Ok(what was done)` when it serves again.
    pub async fn roll_back(
        &self,
        tl: &mut Timeline,
        restored: Option<&RestoreReport>,
    ) -> Result<String, String> {
        tl.begin("rollback");
        let mut done = Vec::new();
        if let Err(e) = self.stop().await {
            // Whatever runs now is stopped before anything is put back; if it cannot be, nothing
            // is moved under it.
            if restored.is_some() {
                let why = format!("the stop before putting back failed: {e:#}");
                tl.fail(why.clone());
                return Err(why);
            }
            done.push(format!("stop failed ({e:#}), starting anyway"));
        } else {
            done.push("stopped".into());
        }
        if let Some(report) = restored {
            match restore::put_back(report) {
                Ok(kept) => done.push(format!(
                    "previous contents put back{}",
                    kept.first()
                        .map(|k| format!(" (the refreshed ones kept at {})", k.display()))
                        .unwrap_or_default()
                )),
                Err(e) => {
                    let why = format!("putting the previous contents back failed: {e:#}");
                    tl.fail(why.clone());
                    return Err(why);
                }
            }
        }
        match self.start().await {
            Ok(s) => {
                done.push(format!("started: {s}"));
                let text = done.join("; ");
                tl.end(text.clone());
                Ok(text)
            }
            Err(e) => {
                let why = format!("starting the previous state failed: {e:#}");
                tl.fail(why.clone());
                Err(why)
            }
        }
    }

    /// Exactly what an operator does when the standby is down.
    pub fn manual_steps(&self, restored: Option<&RestoreReport>) -> String {
        let stop = self
            .command("stop")
            .unwrap_or_else(|_| "<stop command>".into());
        let start = self
            .command("start")
            .unwrap_or_else(|_| "<start command>".into());
        let mut steps = vec![format!("stop it: {stop}")];
        if let Some(r) = restored {
            for copy in &r.safety_copies {
                let name = copy
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let original = name
                    .split_once(".before-restore-")
                    .map(|(o, _)| copy.with_file_name(o))
                    .unwrap_or_else(|| copy.clone());
                steps.push(format!(
                    "if {} is not the previous contents yet: mv {} {}.failed; mv {} {}",
                    original.display(),
                    original.display(),
                    original.display(),
                    copy.display(),
                    original.display()
                ));
            }
        }
        steps.push(format!("start it: {start}"));
        steps.push(format!(
            "check that {}/apiv2/server_status answers OK",
            self.url().trim_end_matches('/')
        ));
        steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{}. {s}", i + 1))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Where a standby's catalog comes from after a restore: the live primary, else a clone tree.
pub(super) async fn clone_source(
    client: &reqwest::Client,
    pair: &Pair,
    tls: &crate::dremio::rest::Tls,
) -> Option<(Source, String)> {
    if !pair.pcc.dremio_urls.is_empty() {
        let answers = serving::ask(client, Probe::Dremio, &pair.pcc.dremio_urls, ASK_TIMEOUT).await;
        if let Some((url, _)) = answers.iter().find(|(_, a)| *a == Answer::Serving) {
            return Some((
                Source::Live(Conn {
                    urls: pair.pcc.dremio_urls.clone(),
                    tls: tls.clone(),
                    env_prefix: super::PRIMARY_CREDS,
                }),
                format!("the primary {} ({url})", pair.primary),
            ));
        }
    }
    clone_tree(pair).map(|t| {
        let shown = format!("the clone tree {}", t.display());
        (Source::Path(t), shown)
    })
}

/// The pair's clone tree: the standby's `clone_tree`, else the primary's.
pub(super) fn clone_tree(pair: &Pair) -> Option<PathBuf> {
    pair.cc.clone_tree.clone().or(pair.pcc.clone_tree.clone())
}

/// The primary's live version, when it answers and lifeboat may log in.
async fn primary_version(pair: &Pair, tls: &crate::dremio::rest::Tls, ctx: &Ctx) -> Option<String> {
    let client = rest::client(tls).ok()?;
    let active = rest::find_active(&client, &pair.pcc.dremio_urls)
        .await
        .ok()?;
    let creds = Credentials::from_env(&|k: &str| std::env::var(k).ok()).ok()?;
    let progress = ctx.progress.clone();
    let notify: rest::Notify = std::sync::Arc::new(move |l: &str| progress.note(l));
    let coord = Coordinator::login(client, &active, &creds, notify)
        .await
        .ok()?;
    coord.version().await.ok().map(|(v, _)| v.release())
}

/// The backup is of the standby's version (`restorable_onto`), else a refusal.
pub(super) fn check_version(
    inst: &Installation,
    standby: &str,
    manifest: &Manifest,
) -> Result<String, String> {
    let Some(mine) = &inst.version else {
        return Err(format!(
            "cannot tell the standby {standby}'s Dremio version: set clusters.{standby}.dremio_version or dremio_home"
        ));
    };
    let backup = crate::dremio::version::DremioVersion::parse(&manifest.cluster.version);
    match backup {
        Some(b) if b.restorable_onto(mine) => Ok(mine.release()),
        _ => Err(format!(
            "the standby {standby} runs Dremio {mine} but backup {} is of Dremio {}: Dremio restores only onto the version that made the backup; upgrade the standby to the primary's version first",
            manifest.id, manifest.cluster.version
        )),
    }
}

pub async fn refresh(ctx: &Ctx, args: &RefreshArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut tl = Timeline::new();
    let p = &args.pair;
    let sb = Standby::new(ctx, p, &args.common)?;
    let lock_path = crate::dr::lock::path_for(sb.paths_local(), &p.standby);
    let _lock = crate::dr::lock::acquire(
        &lock_path,
        "lifeboat standby refresh",
        args.wait_lock,
        &ctx.cancel,
    )
    .await?;

    let mut out = Outcome {
        pair: p,
        common: &args.common,
        manifest: None,
        previous: None,
        fields: serde_json::Map::new(),
        started,
    };

    // checks
    tl.begin("checks");
    let checked = checks(ctx, &sb, &mut out).await;
    let (manifest, previous) = match checked {
        Ok(x) => x,
        Err((class, why)) => {
            tl.fail(why.clone());
            return out.finish(ctx, &tl, "refused", Err((class, why)));
        }
    };
    if let Some(prev) = &previous
        && (prev.backup_created_at, prev.backup.as_str())
            >= (manifest.created_at, manifest.id.as_str())
    {
        tl.end(format!(
            "the standby holds backup {}, the newest: nothing to do",
            prev.backup
        ));
        return out.finish(ctx, &tl, "current", Ok(()));
    }
    tl.end(format!(
        "Dremio {} on both; backup {} ({} old) is newer than the standby's {}",
        sb.inst
            .version
            .as_ref()
            .map(|v| v.release())
            .unwrap_or_default(),
        manifest.id,
        crate::units::age(chrono::Utc::now() - manifest.created_at),
        previous
            .as_ref()
            .map(|s| s.backup.as_str())
            .unwrap_or("(none)")
    ));
    if args.dry_run {
        let plan = plan_lines(ctx, &sb, &manifest).await;
        out.fields.insert("plan".into(), json!(plan));
        out.fields.insert("dry_run".into(), json!(true));
        return out.finish(ctx, &tl, "dry run", Ok(()));
    }

    // stop .. validate: any failure rolls back.
    let mut restored: Option<RestoreReport> = None;
    let result = cycle(ctx, &sb, &manifest, &mut tl, &mut restored, &mut out).await;
    if let Err((_, why)) = result {
        return rolled_back(ctx, &sb, &mut tl, restored.as_ref(), out, why, "refresh").await;
    }
    let report = restored.expect("a completed cycle restored");

    // The new state, then the previous refresh's safety copies go.
    let st = StandbyState {
        format: state::FORMAT.into(),
        cluster: p.standby.clone(),
        primary: p.primary.clone(),
        backup: manifest.id.clone(),
        backup_created_at: manifest.created_at,
        location: p.from.clone(),
        restored_at: chrono::Utc::now(),
        kept: report.safety_copies.clone(),
        promoted_at: None,
    };
    if let Err(e) = state::write(sb.paths_local(), &st) {
        ctx.progress.note(&format!(
            "warning: the standby was refreshed but its state file cannot be written ({e}); the next refresh will restore again"
        ));
    }
    let removed = remove_kept(ctx, previous.as_ref());
    out.fields.insert("removed".into(), json!(removed));
    out.fields
        .insert("kept".into(), json!(report.safety_copies));
    out.finish(ctx, &tl, "refreshed", Ok(()))
}

/// Removes the previous state's safety copies that still exist and are named as restores name them.
fn remove_kept(ctx: &Ctx, previous: Option<&StandbyState>) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for kept in previous.map(|s| s.kept.as_slice()).unwrap_or_default() {
        let named = kept
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains(".before-restore-"));
        let Ok(meta) = std::fs::symlink_metadata(kept) else {
            continue;
        };
        if !named || !kept.is_absolute() || !meta.is_dir() {
            ctx.progress.note(&format!(
                "note: leaving {} alone: not a safety copy folder a restore made",
                kept.display()
            ));
            continue;
        }
        match std::fs::remove_dir_all(kept) {
            Ok(()) => removed.push(kept.clone()),
            Err(e) => ctx.progress.note(&format!(
                "warning: cannot remove the previous safety copy {}: {e}",
                kept.display()
            )),
        }
    }
    removed
}

type Failure = (ExitClass, String);

/// The checks before anything changes: the installation, the versions, the state file, the
/// newest backup.
async fn checks(
    ctx: &Ctx,
    sb: &Standby<'_>,
    out: &mut Outcome<'_>,
) -> Result<(Manifest, Option<StandbyState>), Failure> {
    let p = sb.pair;
    let failed = |e: anyhow::Error| (class_of(&e), format!("{e:#}"));
    let (_repo, manifest) = super::choose(ctx, &p.from, &p.primary, "latest")
        .await
        .map_err(failed)?;
    out.manifest = Some(manifest.clone());
    check_version(&sb.inst, &p.standby, &manifest).map_err(|w| (ExitClass::Refused, w))?;
    if let Some(live) = primary_version(p, &sb.common.tls, ctx).await
        && Some(&live) != sb.inst.version.as_ref().map(|v| v.release()).as_ref()
    {
        return Err((
            ExitClass::Refused,
            format!(
                "the primary {} runs Dremio {live} but the standby {} runs {}: upgrade the standby first (a standby must run the primary's version)",
                p.primary,
                p.standby,
                sb.inst
                    .version
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            ),
        ));
    }
    let previous = state::read(sb.paths_local()).map_err(|e| failed(e.into()))?;
    if let Some(s) = &previous {
        if let Some(at) = s.promoted_at {
            return Err((
                ExitClass::Refused,
                format!(
                    "the standby {} was promoted by a failover at {at}: it is the primary now and a refresh would overwrite it; remove standby_for from its config (and protect it with backups) or, to make it a standby again, delete {}",
                    p.standby,
                    sb.paths_local().join(state::STATE_FILE).display()
                ),
            ));
        }
        out.fields.insert("previous_backup".into(), json!(s.backup));
    }
    out.previous = previous.clone();
    Ok((manifest, previous))
}

/// What a refresh would do, one line per step.
async fn plan_lines(ctx: &Ctx, sb: &Standby<'_>, manifest: &Manifest) -> Vec<String> {
    let _ = ctx;
    let source = clone_source(&sb.client, sb.pair, &sb.common.tls)
        .await
        .map(|(_, s)| s)
        .unwrap_or_else(|| {
            "nothing (the primary does not answer and there is no clone_tree): skipped".into()
        });
    vec![
        format!(
            "stop: {}",
            sb.command("stop").unwrap_or_else(|e| format!("{e:#}"))
        ),
        format!(
            "restore: backup {} ({} old) from {} into {}, the previous contents kept aside",
            manifest.id,
            crate::units::age(chrono::Utc::now() - manifest.created_at),
            sb.pair.from,
            sb.paths_local().display()
        ),
        format!(
            "start: {}",
            sb.command("start").unwrap_or_else(|e| format!("{e:#}"))
        ),
        format!("clone: from {source}, mirror mode"),
        "validate: clone's plan from the same source changes nothing".into(),
    ]
}

/// stop, restore, start, clone, validate.
async fn cycle(
    ctx: &Ctx,
    sb: &Standby<'_>,
    manifest: &Manifest,
    tl: &mut Timeline,
    restored: &mut Option<RestoreReport>,
    out: &mut Outcome<'_>,
) -> Result<(), Failure> {
    let failed = |tl: &mut Timeline, e: anyhow::Error| {
        let why = format!("{e:#}");
        tl.fail(why.clone());
        (class_of(&e), why)
    };
    tl.begin("stop");
    let s = sb.stop().await.map_err(|e| failed(tl, e))?;
    tl.end(s);

    tl.begin("restore");
    let r = sb
        .restore(manifest, None)
        .await
        .map_err(|e| failed(tl, e))?;
    tl.end(super::restored_line(&r));
    *restored = Some(r);

    tl.begin("start");
    let s = sb.start().await.map_err(|e| failed(tl, e))?;
    tl.end(s);

    tl.begin("clone");
    let Some((source, shown)) = clone_source(&sb.client, sb.pair, &sb.common.tls).await else {
        let why = "the primary does not answer and the pair has no clone_tree: artefacts created since the backup are not copied".to_string();
        ctx.progress.note(&format!("warning: {why}"));
        tl.end(format!("skipped: {why}"));
        out.fields.insert("clone".into(), json!({"skipped": why}));
        return Ok(());
    };
    let plan = PlanArgs {
        source: source.clone(),
        target: sb.conn(),
        filter: Filter::new::<&'static str>(&[], &[], &[]),
        mode: Mode::Mirror,
        mapping: None,
        concurrency: CONCURRENCY,
    };
    let applied = crate::commands::clone::apply_quiet(ctx, Kind::Dremio, &plan, true)
        .await
        .map_err(|e| failed(tl, e))?;
    out.fields.insert(
        "clone".into(),
        json!({"source": shown, "counts": applied.counts, "failed": applied.failed, "seconds": round3(applied.seconds)}),
    );
    if !applied.failed.is_empty() {
        let why = format!(
            "the clone from {shown} failed for {} object(s): {}",
            applied.failed.len(),
            applied.failed.join("; ")
        );
        tl.fail(why.clone());
        return Err((ExitClass::NotServing, why));
    }
    let counts: Vec<String> = applied
        .counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    tl.end(format!(
        "from {shown}: {}",
        if counts.is_empty() {
            "nothing to change".to_string()
        } else {
            counts.join(", ")
        }
    ));

    tl.begin("validate");
    let v = validate::against_source(ctx, source, &sb.conn())
        .await
        .map_err(|e| failed(tl, e))?;
    out.fields.insert("validation".into(), v.json.clone());
    if !v.ok {
        tl.fail(v.summary.clone());
        return Err((ExitClass::NotServing, v.summary));
    }
    tl.end(v.summary);
    Ok(())
}

/// A failure after the stop: roll back, then the report with 13 (serves again) or 14 (down).
async fn rolled_back(
    ctx: &Ctx,
    sb: &Standby<'_>,
    tl: &mut Timeline,
    restored: Option<&RestoreReport>,
    mut out: Outcome<'_>,
    why: String,
    what: &str,
) -> anyhow::Result<()> {
    match sb.roll_back(tl, restored).await {
        Ok(done) => {
            out.fields.insert("rollback".into(), json!(done));
            out.finish(
                ctx,
                tl,
                "rolled back",
                Err((
                    ExitClass::RolledBack,
                    format!(
                        "the {what} failed ({why}); the standby's previous state was put back and serves again"
                    ),
                )),
            )
        }
        Err(again) => {
            let steps = sb.manual_steps(restored);
            out.fields.insert("rollback".into(), json!(again));
            out.fields.insert("manual_steps".into(), json!(steps));
            out.finish(
                ctx,
                tl,
                "standby down",
                Err((
                    ExitClass::StandbyDown,
                    format!(
                        "the {what} failed ({why}) and so did the rollback ({again}): the standby {} is DOWN. Act now:\n{steps}",
                        sb.pair.standby
                    ),
                )),
            )
        }
    }
}

/// What the refresh's report is made of.
struct Outcome<'a> {
    pair: &'a Pair,
    common: &'a Common,
    manifest: Option<Manifest>,
    previous: Option<StandbyState>,
    fields: serde_json::Map<String, Value>,
    started: Instant,
}

impl Outcome<'_> {
    fn finish(
        mut self,
        ctx: &Ctx,
        tl: &Timeline,
        word: &str,
        result: Result<(), Failure>,
    ) -> anyhow::Result<()> {
        let p = self.pair;
        let seconds = self.started.elapsed().as_secs_f64();
        let refreshed = word == "refreshed";
        // The RPO of what the standby holds now.
        let rpo = match (
            refreshed || word == "dry run",
            &self.manifest,
            &self.previous,
        ) {
            (true, Some(m), _) => Some(rpo_seconds(m)),
            (false, _, Some(prev)) => Some(
                ((chrono::Utc::now() - prev.backup_created_at)
                    .num_milliseconds()
                    .max(0) as f64)
                    / 1000.0,
            ),
            (false, Some(m), None) if word == "current" => Some(rpo_seconds(m)),
            _ => None,
        };
        let mut fields = json!({
            "cluster": p.standby,
            "primary": p.primary,
            "backup": self.manifest.as_ref().map(|m| backup_json(m, &p.from)),
            "rto_seconds": Value::Null,
            "rpo_seconds": rpo.map(round3),
            "rpo_target_seconds": self.common.rpo.map(|d| d.as_secs_f64()),
            "outcome": word,
            "seconds": round3(seconds),
            "standby_url": p.cc.dremio_urls.first(),
            "error": result.as_ref().err().map(|(_, w)| w.clone()),
        });
        if let Value::Object(map) = &mut fields {
            map.append(&mut self.fields);
        }
        let head = format!(
            "Standby refresh of {} (standby of {}) from {}: {word}",
            p.standby, p.primary, p.from
        );
        let mut text_head = head;
        if let Some(plan) = fields.get("plan").and_then(Value::as_array) {
            text_head.push_str("\nwould:");
            for line in plan.iter().filter_map(Value::as_str) {
                text_head.push_str(&format!("\n  {line}"));
            }
            text_head.push_str("\nnothing was changed");
        }
        text_head.push_str(&format!("\nduration {}", super::secs(seconds)));
        let skipped_clone = fields_skipped_clone(&fields);
        super::report(ctx, "standby refresh", tl, fields, &text_head);

        if word != "dry run" {
            let labels = [
                ("cluster", p.standby.as_str()),
                ("location", p.from.as_str()),
            ];
            let ok = result.is_ok();
            let mut samples = vec![
                Sample::new(
                    "lifeboat_standby_refresh_success",
                    &labels,
                    if ok { 1.0 } else { 0.0 },
                ),
                Sample::new("lifeboat_standby_refresh_seconds", &labels, seconds),
            ];
            if ok {
                samples.push(Sample::new(
                    "lifeboat_standby_refresh_last_success_timestamp_seconds",
                    &labels,
                    chrono::Utc::now().timestamp() as f64,
                ));
            }
            if let Some(r) = rpo {
                samples.push(Sample::new("lifeboat_standby_rpo_seconds", &labels, r));
            }
            ctx.metrics(self.common.metrics_file.as_deref(), &samples);
        }
        match result {
            Err((class, why)) => Err(reported(class, why)),
            Ok(()) if refreshed && super::missed(rpo, self.common.rpo) => Err(reported(
                ExitClass::Warnings,
                format!(
                    "the standby was refreshed, but the backup it holds is {} old, over the RPO {}",
                    super::secs(rpo.unwrap_or(0.0)),
                    super::secs(self.common.rpo.map(|d| d.as_secs_f64()).unwrap_or(0.0))
                ),
            )),
            Ok(()) if refreshed && skipped_clone => Err(reported(
                ExitClass::Warnings,
                "the standby was refreshed, but nothing was cloned or compared: the primary does not answer and the pair has no clone_tree",
            )),
            Ok(()) => Ok(()),
        }
    }
}

fn fields_skipped_clone(fields: &Value) -> bool {
    fields.get("clone").and_then(|c| c.get("skipped")).is_some()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn ctx() -> Ctx {
        Ctx::new(
            false,
            Arc::new(crate::progress::NotesOnly),
            crate::config::Config::default(),
        )
    }

    fn state_with(kept: Vec<PathBuf>) -> StandbyState {
        StandbyState {
            format: state::FORMAT.into(),
            cluster: "dr".into(),
            primary: "prod".into(),
            backup: "20261122T013000Z-7f3a".into(),
            backup_created_at: chrono::Utc::now(),
            location: "/b".into(),
            restored_at: chrono::Utc::now(),
            kept,
            promoted_at: None,
        }
    }

    #[test]
    fn only_the_previous_safety_copies_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir
            .path()
            .join("paths.local.before-restore-20261122T013000Z");
        let other = dir.path().join("paths.local");
        let file = dir.path().join("x.before-restore-1");
        std::fs::create_dir_all(copy.join("db")).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(&file, b"not a folder").unwrap();
        let gone = dir.path().join("gone.before-restore-2");
        let st = state_with(vec![
            copy.clone(),
            other.clone(),
            file.clone(),
            gone,
            PathBuf::from("relative.before-restore-3"),
        ]);
        let removed = remove_kept(&ctx(), Some(&st));
        assert_eq!(removed, vec![copy.clone()]);
        assert!(!copy.exists());
        assert!(other.is_dir() && file.is_file());
        assert!(remove_kept(&ctx(), None).is_empty());
    }
}
