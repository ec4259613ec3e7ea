//! `lifeboat failover`: confirm that no node of the primary answers (else refuse without
//! `--force`), run doctor's checks on the standby, restore the newest backup when it is newer
//! than what the standby holds, start, validate, resume Druid supervisors (only here), mark the
//! standby promoted, and print the one step left: route traffic to it. RTO is measured from the
//! command's start to serving.

use std::time::Duration;

use serde_json::{Value, json};

use super::standby::{Standby, check_version, clone_tree};
use super::validate::{self, Reference};
use super::{Common, Pair, backup_json, class_of, reported, round3, rpo_seconds};
use crate::commands::Ctx;
use crate::commands::doctor::{self, DoctorArgs};
use crate::doctor::{Check, Status};
use crate::dr::serving::{self, Answer, Probe};
use crate::dr::state::{self, StandbyState};
use crate::dr::timeline::Timeline;
use crate::error::ExitClass;
use crate::repo::Manifest;

/// How long each of the primary's nodes has to say it serves.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct FailoverArgs {
    pub pair: Pair,
    pub dry_run: bool,
    pub force: bool,
    pub wait_lock: Option<Duration>,
    pub common: Common,
}

type Failure = (ExitClass, String);

/// What the report is made of.
struct Facts {
    manifest: Option<Manifest>,
    fields: serde_json::Map<String, Value>,
}

pub async fn run(ctx: &Ctx, args: &FailoverArgs) -> anyhow::Result<()> {
    let mut tl = Timeline::new();
    let mut facts = Facts {
        manifest: None,
        fields: serde_json::Map::new(),
    };
    let p = &args.pair;
    if p.cc.kind.as_deref() == Some("druid") {
        let result = druid(ctx, args, &mut tl, &mut facts).await;
        return finish(ctx, args, &tl, facts, result);
    }
    let sb = Standby::new(ctx, p, &args.common)?;
    let lock_path = crate::dr::lock::path_for(sb.paths_local(), &p.standby);
    let _lock =
        crate::dr::lock::acquire(&lock_path, "lifeboat failover", args.wait_lock, &ctx.cancel)
            .await?;
    let result = dremio(ctx, args, &sb, &mut tl, &mut facts).await;
    finish(ctx, args, &tl, facts, result)
}

/// `confirm`: no node of the primary serves (or `--force`).
async fn confirm(
    ctx: &Ctx,
    args: &FailoverArgs,
    probe: Probe,
    urls: &[String],
    tl: &mut Timeline,
    facts: &mut Facts,
) -> Result<(), Failure> {
    let p = &args.pair;
    tl.begin("confirm");
    let client = crate::dremio::rest::client(&args.common.tls)
        .map_err(|e| (ExitClass::Usage, e.to_string()))?;
    if urls.is_empty() {
        let why = format!(
            "cannot confirm that the primary {0} is down: the config gives none of its URLs (clusters.{0}.{1})",
            p.primary,
            if probe == Probe::Druid {
                "druid_urls"
            } else {
                "dremio_urls"
            }
        );
        if !args.force {
            tl.fail(why.clone());
            return Err((ExitClass::Refused, format!("{why}; or pass --force")));
        }
        ctx.progress
            .note(&format!("warning: {why}; going on (--force)"));
        tl.end(format!("{why}; --force"));
        return Ok(());
    }
    let answers = serving::ask(&client, probe, urls, CONFIRM_TIMEOUT).await;
    facts.fields.insert(
        "primary_answers".into(),
        Value::Object(
            answers
                .iter()
                .map(|(u, a)| {
                    let word = match a {
                        Answer::Serving => "serving".to_string(),
                        Answer::Not(why) => why.clone(),
                    };
                    (u.clone(), json!(word))
                })
                .collect(),
        ),
    );
    let serving: Vec<&str> = answers
        .iter()
        .filter(|(_, a)| *a == Answer::Serving)
        .map(|(u, _)| u.as_str())
        .collect();
    if serving.is_empty() {
        tl.end(format!(
            "the primary {} is down: {}",
            p.primary,
            answers
                .iter()
                .map(|(u, a)| match a {
                    Answer::Serving => format!("{u}: serving"),
                    Answer::Not(why) => format!("{u}: {why}"),
                })
                .collect::<Vec<_>>()
                .join("; ")
        ));
        return Ok(());
    }
    let why = format!(
        "the primary {} still serves at {}",
        p.primary,
        serving.join(", ")
    );
    if args.force {
        ctx.progress.note(&format!(
            "warning: {why}; failing over anyway (--force): make sure it no longer takes writes"
        ));
        tl.end(format!("{why}; --force"));
        return Ok(());
    }
    tl.fail(why.clone());
    Err((
        ExitClass::Refused,
        format!(
            "{why}: a failover while it serves splits the clusters; stop it first, or pass --force if it is unusable although it answers"
        ),
    ))
}

/// `checks`: doctor's checks on the standby; a failing one refuses (or `--force`).
async fn checks(
    ctx: &Ctx,
    args: &FailoverArgs,
    tl: &mut Timeline,
    facts: &mut Facts,
) -> Result<(), Failure> {
    let p = &args.pair;
    tl.begin("checks");
    let d = DoctorArgs {
        // The backups the DR checks look at are the primary's.
        cluster: p.primary.clone(),
        homes: p.cc.dremio_home.iter().cloned().collect(),
        dremio_urls: p.cc.dremio_urls.clone(),
        tls: args.common.tls.clone(),
        zookeeper: p.cc.zookeeper.clone(),
        zk_root: crate::config::resolve::zk_root(None, &p.cc),
        druid: None,
        from: Some(p.from.clone()),
        copies: Vec::new(),
        rpo: args.common.rpo,
        secondary_urls: Vec::new(),
        mountinfo: None,
        no_probe: true,
        min_throughput: 30.0,
        metrics_file: None,
    };
    let found: Vec<Check> = doctor::standby_checks(ctx, &d).await.map_err(|e| {
        let why = format!("{e:#}");
        tl.fail(why.clone());
        (class_of(&e), why)
    })?;
    facts.fields.insert(
        "checks".into(),
        serde_json::to_value(&found).unwrap_or(Value::Null),
    );
    facts
        .fields
        .insert("checks_text".into(), json!(doctor::to_text(&found, false)));
    let ha = !p.cc.zookeeper.is_empty() || p.cc.dremio_homes.len() > 1;
    let failed: Vec<&str> = found
        .iter()
        .filter(|c| c.status == Status::Fail && blocks(c, ha))
        .map(|c| c.id.as_str())
        .collect();
    let count = |s: Status| found.iter().filter(|c| c.status == s).count();
    let summary = format!(
        "{} pass, {} warn, {} fail, {} skip",
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail),
        count(Status::Skip)
    );
    if failed.is_empty() {
        tl.end(summary);
        return Ok(());
    }
    let why = format!(
        "the standby {} fails doctor's checks ({}): {summary}",
        p.standby,
        failed.join(", ")
    );
    if args.force {
        ctx.progress
            .note(&format!("warning: {why}; going on (--force)"));
        tl.end(format!("{why}; --force"));
        return Ok(());
    }
    tl.fail(why.clone());
    Err((
        ExitClass::Refused,
        format!("{why}; fix them (see `lifeboat doctor`) or pass --force"),
    ))
}

/// Whether a failing check refuses the failover. A pilot-light standby is often one coordinator
/// on its own disk: the HA group's checks (external ZooKeeper, a shared NFS paths.local) only
/// count when its config makes it an HA group (`zookeeper`, several `dremio_homes`).
fn blocks(check: &Check, ha: bool) -> bool {
    use crate::doctor::Area;
    let ha_only = match check.area {
        Area::Zookeeper | Area::Election | Area::Volume => true,
        Area::Configuration => !matches!(
            check.id.as_str(),
            "conf.read" | "conf.master" | "conf.version"
        ),
        _ => false,
    };
    ha || !ha_only
}

async fn dremio(
    ctx: &Ctx,
    args: &FailoverArgs,
    sb: &Standby<'_>,
    tl: &mut Timeline,
    facts: &mut Facts,
) -> Result<&'static str, Failure> {
    let p = &args.pair;
    confirm(ctx, args, Probe::Dremio, &p.pcc.dremio_urls, tl, facts).await?;
    checks(ctx, args, tl, facts).await?;

    tl.begin("plan");
    let failed = |tl: &mut Timeline, e: anyhow::Error| {
        let why = format!("{e:#}");
        tl.fail(why.clone());
        (class_of(&e), why)
    };
    let (_repo, manifest) = super::choose(ctx, &p.from, &p.primary, "latest")
        .await
        .map_err(|e| failed(tl, e))?;
    facts.manifest = Some(manifest.clone());
    let previous = state::read(sb.paths_local()).map_err(|e| failed(tl, e.into()))?;
    if let Some(s) = &previous {
        facts
            .fields
            .insert("previous_backup".into(), json!(s.backup));
        if let Some(at) = s.promoted_at {
            facts.fields.insert("promoted_before".into(), json!(at));
        }
    }
    let needs_restore = previous.as_ref().is_none_or(|s| {
        (manifest.created_at, manifest.id.as_str()) > (s.backup_created_at, s.backup.as_str())
    });
    if needs_restore {
        check_version(&sb.inst, &p.standby, &manifest).map_err(|w| {
            tl.fail(w.clone());
            (ExitClass::Refused, w)
        })?;
    }
    let serves = sb.serves().await;
    let age = crate::units::age(chrono::Utc::now() - manifest.created_at);
    let mut plan = Vec::new();
    if needs_restore {
        plan.push(format!(
            "stop: {}",
            sb.command("stop").unwrap_or_else(|e| format!("{e:#}"))
        ));
        plan.push(format!(
            "restore: backup {} ({age} old) from {} into {} (the standby holds {}), the previous contents kept aside",
            manifest.id,
            p.from,
            sb.paths_local().display(),
            previous.as_ref().map(|s| s.backup.as_str()).unwrap_or("no backup lifeboat restored")
        ));
    }
    if needs_restore || !serves {
        plan.push(format!(
            "start: {}",
            sb.command("start").unwrap_or_else(|e| format!("{e:#}"))
        ));
    } else {
        plan.push(format!(
            "start: nothing to do, the standby serves backup {} ({age} old) already",
            manifest.id
        ));
    }
    plan.push(
        "validate: compare its catalog with the backup's fingerprint or the clone_tree".into(),
    );
    plan.push(format!(
        "promote: mark {} as promoted in {}",
        sb.paths_local().display(),
        state::STATE_FILE
    ));
    plan.push(format!("next: route traffic to {}", sb.url()));
    facts.fields.insert("plan".into(), json!(plan));
    tl.end(format!(
        "backup {} ({age} old); {}",
        manifest.id,
        if needs_restore {
            "newer than what the standby holds: restore it"
        } else {
            "the standby holds it already"
        }
    ));
    if args.dry_run {
        facts.fields.insert("dry_run".into(), json!(true));
        return Ok("dry run");
    }

    let scratch = tempfile::Builder::new()
        .prefix("lifeboat-failover-")
        .tempdir()
        .map_err(|e| failed(tl, anyhow::anyhow!("cannot make a temporary folder: {e}")))?;
    let catalog = scratch.path().join("catalog.jsonl");
    let mut restored = None;
    let steps: Result<(), Failure> = async {
        if needs_restore {
            tl.begin("stop");
            let s = sb.stop().await.map_err(|e| failed(tl, e))?;
            tl.end(s);
            tl.begin("restore");
            let r = sb
                .restore(&manifest, Some(catalog.clone()))
                .await
                .map_err(|e| failed(tl, e))?;
            tl.end(super::restored_line(&r));
            restored = Some(r);
        }
        tl.begin("start");
        if needs_restore || !serves {
            let s = sb.start().await.map_err(|e| failed(tl, e))?;
            tl.end(s);
        } else {
            let url = sb.wait_serving().await.map_err(|e| failed(tl, e))?;
            tl.end(format!("{url} serves already"));
        }
        Ok(())
    }
    .await;
    if let Err((_, why)) = steps {
        return match sb.roll_back(tl, restored.as_ref()).await {
            Ok(done) => {
                facts.fields.insert("rollback".into(), json!(done));
                Err((
                    ExitClass::RolledBack,
                    format!(
                        "the failover failed ({why}); the standby's previous state was put back and serves again: it is NOT promoted"
                    ),
                ))
            }
            Err(again) => {
                let steps = sb.manual_steps(restored.as_ref());
                facts.fields.insert("rollback".into(), json!(again));
                facts.fields.insert("manual_steps".into(), json!(steps));
                Err((
                    ExitClass::StandbyDown,
                    format!(
                        "the failover failed ({why}) and so did the rollback ({again}): the standby {} is DOWN. Act now:\n{steps}",
                        p.standby
                    ),
                ))
            }
        };
    }

    tl.begin("validate");
    let reference = if restored.is_some() && catalog.is_file() {
        Reference::Fingerprint(catalog.clone())
    } else if let Some(tree) = clone_tree(p) {
        Reference::Tree(tree)
    } else {
        Reference::None
    };
    let v = validate::against(ctx, &sb.conn(), &reference, &scratch.path().join("export"))
        .await
        .map_err(|e| {
            let why = format!("{e:#}");
            tl.fail(why.clone());
            (ExitClass::NotServing, why)
        })?;
    facts.fields.insert("validation".into(), v.json.clone());
    if !v.ok {
        tl.fail(v.summary.clone());
        return Err((
            ExitClass::NotServing,
            format!(
                "the standby serves, but not what the backup holds: {}; it is NOT marked promoted",
                v.summary
            ),
        ));
    }
    let compared = !matches!(reference, Reference::None);
    if !compared {
        ctx.progress.note(&format!("warning: {}", v.summary));
    }
    tl.end(v.summary);

    tl.begin("promote");
    let now = chrono::Utc::now();
    let st = match (&restored, previous) {
        (Some(r), _) => StandbyState {
            format: state::FORMAT.into(),
            cluster: p.standby.clone(),
            primary: p.primary.clone(),
            backup: manifest.id.clone(),
            backup_created_at: manifest.created_at,
            location: p.from.clone(),
            restored_at: now,
            kept: r.safety_copies.clone(),
            promoted_at: Some(now),
        },
        (None, Some(mut prev)) => {
            prev.promoted_at = Some(now);
            prev
        }
        (None, None) => StandbyState {
            format: state::FORMAT.into(),
            cluster: p.standby.clone(),
            primary: p.primary.clone(),
            backup: manifest.id.clone(),
            backup_created_at: manifest.created_at,
            location: p.from.clone(),
            restored_at: now,
            kept: Vec::new(),
            promoted_at: Some(now),
        },
    };
    state::write(sb.paths_local(), &st).map_err(|e| failed(tl, e.into()))?;
    tl.end(format!(
        "{} marked promoted: standby refresh refuses to overwrite it",
        sb.paths_local().display()
    ));
    Ok(if compared {
        "promoted"
    } else {
        "promoted, not compared"
    })
}

/// A Druid standby: confirm, then resume its suspended supervisors (the only place lifeboat
/// does), then route traffic.
async fn druid(
    ctx: &Ctx,
    args: &FailoverArgs,
    tl: &mut Timeline,
    facts: &mut Facts,
) -> Result<&'static str, Failure> {
    let p = &args.pair;
    confirm(ctx, args, Probe::Druid, &p.pcc.druid_urls, tl, facts).await?;
    let mut plan = vec![format!(
        "resume: the suspended supervisors of {}",
        p.cc.druid_urls.join(", ")
    )];
    plan.push(format!(
        "next: route traffic to {}",
        p.cc.druid_urls.first().map(String::as_str).unwrap_or("")
    ));
    facts.fields.insert("plan".into(), json!(plan));
    if args.dry_run {
        facts.fields.insert("dry_run".into(), json!(true));
        return Ok("dry run");
    }
    tl.begin("start");
    let client = crate::dremio::rest::client(&args.common.tls)
        .map_err(|e| (ExitClass::Usage, e.to_string()))?;
    let url = serving::wait(
        &client,
        Probe::Druid,
        &p.cc.druid_urls,
        args.common.start_timeout,
        &ctx.cancel,
        &mut || None,
    )
    .await
    .map_err(|e| {
        let why = e.to_string();
        tl.fail(why.clone());
        (ExitClass::NotServing, why)
    })?;
    tl.end(format!("{url} serves"));
    tl.begin("resume");
    let resumed = resume_supervisors(ctx, args).await.map_err(|e| {
        let why = format!("{e:#}");
        tl.fail(why.clone());
        (class_of(&e), why)
    })?;
    facts.fields.insert("resumed".into(), json!(resumed));
    tl.end(if resumed.is_empty() {
        "no supervisor was suspended".to_string()
    } else {
        format!("resumed {}", resumed.join(", "))
    });
    Ok("promoted")
}

async fn resume_supervisors(ctx: &Ctx, args: &FailoverArgs) -> anyhow::Result<Vec<String>> {
    use crate::druid::rest::{Credentials, Druid};
    let env = |k: &str| std::env::var(k).ok();
    let creds = Credentials::from_env(&env, "LIFEBOAT_DRUID_")?;
    let progress = ctx.progress.clone();
    let notify: crate::dremio::rest::Notify = std::sync::Arc::new(move |l: &str| progress.note(l));
    let d = Druid::connect(
        &args.pair.cc.druid_urls,
        &args.common.tls,
        creds,
        "LIFEBOAT_DRUID_",
        notify,
    )
    .await?;
    Ok(crate::druid::supervisors::resume_suspended(&d).await?)
}

fn finish(
    ctx: &Ctx,
    args: &FailoverArgs,
    tl: &Timeline,
    mut facts: Facts,
    result: Result<&'static str, Failure>,
) -> anyhow::Result<()> {
    let p = &args.pair;
    let rto = match &result {
        Ok(w) if w.starts_with("promoted") => tl.until_end_of("start"),
        _ => None,
    };
    let word = match &result {
        Ok(w) => *w,
        Err((ExitClass::Refused, _)) => "refused",
        Err((ExitClass::RolledBack, _)) => "rolled back",
        Err((ExitClass::StandbyDown, _)) => "standby down",
        Err(_) => "failed",
    };
    let url = match p.cc.kind.as_deref() {
        Some("druid") => p.cc.druid_urls.first().cloned(),
        _ => p.cc.dremio_urls.first().cloned(),
    }
    .unwrap_or_default();
    let promoted = word.starts_with("promoted");
    let next = promoted.then(|| format!("route traffic to {url}"));
    let mut fields = json!({
        "cluster": p.standby,
        "primary": p.primary,
        "backup": facts.manifest.as_ref().map(|m| backup_json(m, &p.from)),
        "rto_seconds": rto.map(round3),
        "rpo_seconds": facts.manifest.as_ref().map(|m| round3(rpo_seconds(m))),
        "rto_target_seconds": args.common.rto.map(|d| d.as_secs_f64()),
        "rpo_target_seconds": args.common.rpo.map(|d| d.as_secs_f64()),
        "outcome": word,
        "standby_url": url,
        "next": next,
        "error": result.as_ref().err().map(|(_, w)| w.clone()),
    });
    let checks_text = facts
        .fields
        .remove("checks_text")
        .and_then(|v| v.as_str().map(str::to_string));
    if let Value::Object(map) = &mut fields {
        map.append(&mut facts.fields);
    }
    let mut head = format!("Failover of {} to the standby {}:", p.primary, p.standby);
    if let Some(text) = checks_text {
        head.push_str("\nchecks of the standby:\n");
        head.push_str(text.trim_end());
    }
    if let Some(plan) = fields.get("plan").and_then(Value::as_array)
        && word == "dry run"
    {
        head.push_str("\nwould:");
        for line in plan.iter().filter_map(Value::as_str) {
            head.push_str(&format!("\n  {line}"));
        }
        head.push_str("\nnothing was changed (dry run)");
    }
    super::report(ctx, "failover", tl, fields, &head);
    if let Some(n) = next.as_ref().filter(|_| ctx.json) {
        ctx.progress.note(&format!(
            "next: {n} (the one step lifeboat cannot do: DNS, the load balancer or the clients' configuration)"
        ));
    }
    match result {
        Err((class, why)) => Err(reported(class, why)),
        Ok("promoted") if super::missed(rto, args.common.rto) => Err(reported(
            ExitClass::Warnings,
            format!(
                "the standby is promoted, but the RTO {} misses the target {}",
                super::secs(rto.unwrap_or(0.0)),
                super::secs(args.common.rto.map(|d| d.as_secs_f64()).unwrap_or(0.0))
            ),
        )),
        Ok("promoted, not compared") => Err(reported(
            ExitClass::Warnings,
            "the standby is promoted, but what it serves was not compared with anything: the backup has no catalog fingerprint and the pair no clone_tree",
        )),
        Ok(_) => Ok(()),
    }
}
