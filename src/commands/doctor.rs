//! `lifeboat doctor`: gathers each area's inputs (a Dremio deployment's, or with `--druid-url` a
//! Druid cluster's), runs its checks (`doctor/`), and prints them grouped (a table with ✓ ! ✗ on
//! a terminal, plain words otherwise, or one JSON object). Exit 0 when every check that ran
//! passed, 10 with warnings only, 11 with a failure.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::clone::{Conn, PlanArgs, Source};
use super::{CommandError, Ctx};
use crate::clone::filter::Filter;
use crate::clone::plan::Mode;
use crate::doctor::coordinators::{self, Answer};
use crate::doctor::homes::{self, Home};
use crate::doctor::metastore::{self, Target};
use crate::doctor::throughput::{self, Limits};
use crate::doctor::{Area, Check, Master, Status, lock, mountinfo, overall, volume};
use crate::doctor::{druid, election, leaders, zookeeper};
use crate::dremio::rest::{self, Credentials, Tls};
use crate::error::ExitClass;
use crate::metrics::Sample;

/// Everything doctor may be given; each input turns on the checks that need it.
#[derive(Debug, Clone)]
pub struct DoctorArgs {
    pub cluster: String,
    pub homes: Vec<PathBuf>,
    pub dremio_urls: Vec<String>,
    pub tls: Tls,
    pub zookeeper: Vec<String>,
    pub zk_root: String,
    /// Druid mode: its inputs replace the Dremio installation's.
    pub druid: Option<DruidArgs>,
    pub from: Option<String>,
    pub copies: Vec<String>,
    pub rpo: Option<Duration>,
    pub secondary_urls: Vec<String>,
    pub mountinfo: Option<PathBuf>,
    pub no_probe: bool,
    /// MB/s.
    pub min_throughput: f64,
    pub metrics_file: Option<PathBuf>,
}

/// What doctor is given about a Druid cluster.
#[derive(Debug, Clone)]
pub struct DruidArgs {
    /// The Coordinator/Overlord nodes.
    pub urls: Vec<String>,
    pub brokers: Vec<String>,
    /// `--druid-metadata`'s URL, not yet parsed.
    pub metadata: Option<String>,
    /// `--deep-storage`: roots listed for orphaned objects (empty: the segments' own locations).
    pub deep_storage: Vec<String>,
}

/// How long one network question (a ZooKeeper word, a server_status) may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// A copy of mountinfo from a busy host is a few hundred KiB.
const MAX_MOUNTINFO_BYTES: u64 = 4 << 20;
const PRIMARY_CREDS: &str = "LIFEBOAT_DREMIO_";
const SECONDARY_CREDS: &str = "LIFEBOAT_SECONDARY_DREMIO_";

pub async fn run(ctx: &Ctx, args: &DoctorArgs) -> anyhow::Result<()> {
    if let Some(d) = &args.druid {
        let checks = druid_checks(ctx, args, d).await?;
        return finish(ctx, args, &checks);
    }
    let (mut checks, paths_local) = dremio_checks(ctx, args).await?;
    let probed = probes(ctx, args, paths_local.as_deref()).await?;
    // The probes' checks come before the DR ones, in the order the areas are listed.
    let at = checks
        .iter()
        .position(|c| c.area == Area::Dr)
        .unwrap_or(checks.len());
    checks.splice(at..at, probed);
    finish(ctx, args, &checks)
}

/// The checks of [`run`] without the probes (no files written, nothing timed) and without
/// printing: for `failover`, which judges a standby before it acts (print them with
/// [`to_text`] or [`to_json`]). With `args.druid`, Druid's checks.
pub async fn standby_checks(ctx: &Ctx, args: &DoctorArgs) -> anyhow::Result<Vec<Check>> {
    if let Some(d) = &args.druid {
        return druid_checks(ctx, args, d).await;
    }
    Ok(dremio_checks(ctx, args).await?.0)
}

/// A Dremio deployment's checks but the probes (homes, ZooKeeper, coordinators, volume, DR),
/// and the paths.local the probes would run in.
async fn dremio_checks(
    ctx: &Ctx,
    args: &DoctorArgs,
) -> anyhow::Result<(Vec<Check>, Option<PathBuf>)> {
    let (mut checks, homes) = homes::configuration(&args.homes);
    let (zk, master) = zookeeper_checks(&args.zookeeper, &args.zk_root, ASK_TIMEOUT).await;
    checks.extend(zk);
    let (coord, rest_version) = coordinator_checks(args, &homes, master.as_ref()).await?;
    checks.extend(coord);
    let paths_local = homes.first().map(|h| h.paths_local.clone());
    checks.extend(volume_checks(args, paths_local.as_deref()));
    let primary_version = rest_version.or_else(|| homes.iter().find_map(|h| h.version.clone()));
    checks.extend(dr_checks(ctx, args, primary_version.as_deref()).await);
    Ok((checks, paths_local))
}

/// The ZooKeeper checks: the ensemble over four-letter words, then the master election and
/// discovery through a ZooKeeper client; the master it names feeds the coordinators' cross-check.
/// `servers` is the connect string's hosts (a trailing `/chroot` on the last is honoured).
pub async fn zookeeper_checks(
    servers: &[String],
    root: &str,
    timeout: Duration,
) -> (Vec<Check>, Option<Master>) {
    if servers.is_empty() {
        let why = "give --zookeeper (the coordinators' `zookeeper` connect string)";
        return (
            vec![
                Check::skip("zk.ensemble", Area::Zookeeper, why),
                Check::skip("election.master", Area::Election, why),
            ],
            None,
        );
    }
    let connect = servers.join(",");
    let mut checks = zookeeper::ensemble(&crate::zk::registry::servers(&connect), timeout).await;
    let election = election::election(&connect, root, timeout).await;
    checks.extend(election.checks);
    (checks, election.master)
}

/// Druid mode: the ensemble, each role's leader and standbys (and its latch with
/// `--zookeeper`), the Brokers, and the metadata store's replication.
async fn druid_checks(ctx: &Ctx, args: &DoctorArgs, d: &DruidArgs) -> anyhow::Result<Vec<Check>> {
    let env = |name: &str| std::env::var(name).ok();
    let target = d
        .metadata
        .as_deref()
        .map(Target::parse)
        .transpose()
        .map_err(CommandError::Usage)?;
    let auth = crate::druid::rest::Credentials::from_env(&env, "LIFEBOAT_DRUID_")?;
    let password = crate::secrets::from_var_or_file(&env, metastore::PASSWORD_VAR)
        .map_err(|(path, e)| CommandError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let client = rest::client(&args.tls)?;
    let connect = args.zookeeper.join(",");
    let (mut checks, latches) = if connect.is_empty() {
        let why = "give --zookeeper (Druid's druid.zk.service.host)";
        (vec![Check::skip("zk.ensemble", Area::Zookeeper, why)], None)
    } else {
        let servers = crate::zk::registry::servers(&connect);
        let (ensemble, latches) = tokio::join!(
            zookeeper::ensemble(&servers, ASK_TIMEOUT),
            druid_latches(&connect, &args.zk_root)
        );
        (ensemble, Some(latches))
    };
    if d.urls.is_empty() {
        // --druid-metadata alone: the metadata store and deep storage only.
        checks.push(Check::skip(
            "druid.nodes",
            Area::Druid,
            "give --druid-url with every Coordinator/Overlord URL to check the leaders",
        ));
    } else {
        let nodes = druid::survey(&client, &d.urls, auth.as_ref(), ASK_TIMEOUT).await;
        checks.extend(leaders::judge(&nodes, latches.as_ref()));
        checks.push(druid::brokers(&client, &d.brokers, auth.as_ref(), ASK_TIMEOUT).await);
    }
    checks.extend(match &target {
        Some(t) => metastore::checks(t, password.as_ref(), ASK_TIMEOUT).await,
        None => vec![Check::skip(
            "metastore.replication",
            Area::Metastore,
            "give --druid-metadata postgres://USER@HOST:PORT/DB (or mysql://...) and \
             LIFEBOAT_DRUID_METADATA_PASSWORD[_FILE]",
        )],
    });
    checks.extend(match &d.metadata {
        Some(url) => deep_storage_checks(ctx, url, password, &d.deep_storage).await?,
        None => vec![Check::skip(
            "deepstore.segments",
            Area::Metastore,
            "give --druid-metadata (and optionally --deep-storage s3://BUCKET/PREFIX) to check the segments' deep-storage objects",
        )],
    });
    Ok(checks)
}

/// Deep-storage requests in flight for `deepstore.segments`.
const DEEP_STORAGE_CONCURRENCY: usize = 32;

/// `deepstore.segments`: the live segments' objects in deep storage, through the locations this
/// command opens (the environment's or the config file's credentials).
async fn deep_storage_checks(
    ctx: &Ctx,
    url: &str,
    password: Option<crate::secrets::Secret>,
    roots: &[String],
) -> anyhow::Result<Vec<Check>> {
    use crate::druid::metastore::{MetaConfig, MetaUrl, Tls as MetaTls};
    let config = MetaConfig {
        url: MetaUrl::parse(url).map_err(CommandError::Usage)?,
        password,
        tls: MetaTls::Off,
        connect_timeout: ASK_TIMEOUT,
        application: "lifeboat-doctor",
    };
    let opener = ctx.clone();
    let options = crate::druid::deepstore::CheckOptions {
        open: std::sync::Arc::new(move |url: &str| {
            opener.open(url, crate::store::location::Access::Read)
        }),
        roots: roots.to_vec(),
        concurrency: DEEP_STORAGE_CONCURRENCY,
    };
    Ok(crate::doctor::deepstore::checks(&config, &options, ctx.cancel.clone()).await)
}

/// Both roles' latches under Druid's base path, read at once.
async fn druid_latches(connect: &str, base: &str) -> [(String, leaders::Latch); 2] {
    let read = |role: druid::Role| async move {
        let path = role.latch(base);
        let members = crate::zk::registry::latch_members(connect, &path, ASK_TIMEOUT)
            .await
            .map(|(members, _)| members)
            .map_err(|e| e.to_string());
        (path, members)
    };
    let (c, o) = tokio::join!(read(druid::Role::Coordinator), read(druid::Role::Overlord));
    [c, o]
}

fn credentials(prefix: &str) -> Option<Credentials> {
    Credentials::from_env(&|name: &str| std::env::var(name.replacen(PRIMARY_CREDS, prefix, 1)).ok())
        .ok()
}

/// The REST checks, and the active coordinator's version when it could be read.
async fn coordinator_checks(
    args: &DoctorArgs,
    homes: &[Home],
    master: Option<&Master>,
) -> anyhow::Result<(Vec<Check>, Option<String>)> {
    if args.dremio_urls.is_empty() {
        let why =
            "give --dremio-url with every coordinator's URL (or dremio_urls in the config file)";
        let ids = [
            "coord.active",
            "coord.standbys",
            "coord.master",
            "coord.version",
        ];
        return Ok((
            ids.iter()
                .map(|id| Check::skip(id, Area::Coordinators, why))
                .collect(),
            None,
        ));
    }
    let client = rest::client(&args.tls)?;
    let answers = coordinators::survey(&client, &args.dremio_urls, ASK_TIMEOUT).await;
    let mut checks = coordinators::roles(&answers);
    checks.push(coordinators::is_master(&answers, master).await);
    let active = answers
        .iter()
        .find(|(_, a)| *a == Answer::Active)
        .map(|(u, _)| u.clone());
    let Some(base) = active else {
        let why = "no active coordinator to ask its version";
        checks.push(Check::skip("coord.version", Area::Coordinators, why));
        return Ok((checks, None));
    };
    let rest_version = match credentials(PRIMARY_CREDS) {
        Some(creds) => Some(coordinators::rest_version(client, &base, &creds).await),
        None => None,
    };
    let home_versions: Vec<String> = homes.iter().filter_map(|h| h.version.clone()).collect();
    checks.push(coordinators::versions(
        rest_version.clone(),
        &home_versions,
        master,
    ));
    Ok((checks, rest_version.and_then(Result::ok)))
}

fn volume_checks(args: &DoctorArgs, paths_local: Option<&Path>) -> Vec<Check> {
    let Some(local) = paths_local else {
        return vec![Check::skip(
            "volume.nfs",
            Area::Volume,
            "give --dremio-home: paths.local comes from its dremio.conf",
        )];
    };
    let (source, path) = match &args.mountinfo {
        Some(file) => (file.clone(), local.to_path_buf()),
        // Here the path itself can be resolved: a symbolic link may lead onto another mount.
        None => (
            PathBuf::from("/proc/self/mountinfo"),
            std::fs::canonicalize(crate::fsutil::existing_ancestor(local))
                .unwrap_or(local.to_path_buf()),
        ),
    };
    match crate::limits::read_capped_string(&source, MAX_MOUNTINFO_BYTES, "a mountinfo file") {
        Ok(text) => {
            let mounts = mountinfo::parse(&text);
            volume::volume(&path.to_string_lossy(), mountinfo::mount_of(&mounts, &path))
        }
        Err(e) => vec![
            Check::fail(
                "volume.nfs",
                Area::Volume,
                format!("cannot read {}: {e}", source.display()),
            )
            .remedy("give --mountinfo a copy of the coordinator's /proc/self/mountinfo"),
        ],
    }
}

/// Why the probes do not run, if they do not.
fn probe_skip(args: &DoctorArgs, paths_local: Option<&Path>) -> Option<String> {
    match paths_local {
        _ if args.no_probe => Some("left out with --no-probe".into()),
        _ if args.mountinfo.is_some() => {
            Some("the probes need the volume on this host: left out with --mountinfo".into())
        }
        None => Some("give --dremio-home: the probes run in its paths.local".into()),
        Some(p) if !p.is_dir() => Some(format!(
            "paths.local {} is not on this host: run doctor on a coordinator",
            p.display()
        )),
        Some(_) => None,
    }
}

fn interrupted() -> anyhow::Error {
    CommandError::Reported {
        class: ExitClass::Interrupted,
        message: "doctor interrupted: the probes' files were removed".into(),
    }
    .into()
}

/// The lock and throughput probes, in paths.local (never inside db/).
async fn probes(
    ctx: &Ctx,
    args: &DoctorArgs,
    paths_local: Option<&Path>,
) -> anyhow::Result<Vec<Check>> {
    if let Some(why) = probe_skip(args, paths_local) {
        let ids = [
            ("lock.probe", Area::Lock),
            ("throughput.rate", Area::Throughput),
            ("throughput.latency", Area::Throughput),
        ];
        return Ok(ids
            .iter()
            .map(|(id, a)| Check::skip(id, *a, why.clone()))
            .collect());
    }
    let dir = paths_local.map(Path::to_path_buf).unwrap_or_default();
    let mut holder = Command::new(std::env::current_exe()?);
    holder.arg("doctor-lock-holder");
    let lock_dir = dir.clone();
    let mut checks =
        vec![tokio::task::spawn_blocking(move || lock::probe(&lock_dir, holder)).await?];
    if ctx.cancel.is_cancelled() {
        return Err(interrupted());
    }
    ctx.progress.note(&format!(
        "doctor: probing the throughput of {} (at most 10 s, 256 MiB)",
        dir.display()
    ));
    let token = ctx.cancel.clone();
    let required = args.min_throughput;
    let measured = tokio::task::spawn_blocking(move || {
        throughput::probe(&dir, required, Limits::default(), &|| token.is_cancelled())
    })
    .await?;
    checks.extend(measured.map_err(|_| interrupted())?);
    Ok(checks)
}

async fn dr_checks(ctx: &Ctx, args: &DoctorArgs, primary_version: Option<&str>) -> Vec<Check> {
    let mut checks = vec![rpo_check(ctx, args).await];
    if args.secondary_urls.is_empty() {
        let why = "give --secondary-url with the DR cluster's coordinators";
        checks.push(Check::skip("dr.secondary", Area::Dr, why));
        checks.push(Check::skip("dr.drift", Area::Dr, why));
        return checks;
    }
    let secondary_prefix = if credentials(SECONDARY_CREDS).is_some() {
        SECONDARY_CREDS
    } else {
        PRIMARY_CREDS
    };
    checks.push(secondary_check(args, primary_version, secondary_prefix).await);
    checks.push(drift_check(ctx, args, secondary_prefix).await);
    checks
}

/// The newest backup's age against the RPO, copies current: `status`'s own judgement.
async fn rpo_check(ctx: &Ctx, args: &DoctorArgs) -> Check {
    let (Some(from), Some(rpo)) = (&args.from, args.rpo) else {
        return Check::skip(
            "dr.rpo",
            Area::Dr,
            "give --from and --rpo (or to and rpo in the config file)",
        );
    };
    let rows = super::status::survey(ctx, &args.cluster, from, &args.copies, Some(rpo)).await;
    let problems: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            r.problem
                .as_ref()
                .map(|p| format!("{} {}: {p}", r.role, r.name))
        })
        .collect();
    let newest = rows[0].newest.as_ref();
    let c = if problems.is_empty() {
        let (id, age) = newest
            .map(|(id, a)| (id.as_str(), crate::units::age(*a)))
            .unwrap_or(("-", "-".into()));
        Check::pass(
            "dr.rpo",
            Area::Dr,
            format!(
                "newest backup {id} is {age} old (RPO {}){}",
                humantime::format_duration(rpo),
                match args.copies.len() {
                    0 => String::new(),
                    n => format!("; {n} copy location(s) hold it"),
                }
            ),
        )
    } else {
        Check::fail("dr.rpo", Area::Dr, problems.join("; "))
            .remedy("run the backup job (and lifeboat copy) now, then check its schedule and logs")
    };
    c.evidence("rpo_seconds", rpo.as_secs())
        .evidence("age_seconds", newest.map(|(_, a)| a.num_seconds()))
        .evidence("newest", newest.map(|(id, _)| id.clone()))
}

/// The secondary answers, and runs the primary's version.
async fn secondary_check(args: &DoctorArgs, primary_version: Option<&str>, prefix: &str) -> Check {
    let client = match rest::client(&args.tls) {
        Ok(c) => c,
        Err(e) => return Check::fail("dr.secondary", Area::Dr, e.to_string()),
    };
    let answers = coordinators::survey(&client, &args.secondary_urls, ASK_TIMEOUT).await;
    let Some((base, _)) = answers.iter().find(|(_, a)| *a == Answer::Active) else {
        return Check::fail(
            "dr.secondary",
            Area::Dr,
            format!(
                "no secondary coordinator answers server_status OK ({})",
                args.secondary_urls.join(", ")
            ),
        )
        .remedy("start the DR cluster's master coordinator (a warm standby must answer)");
    };
    let Some(creds) = credentials(prefix) else {
        return Check::warn(
            "dr.secondary",
            Area::Dr,
            format!("{base} answers; its version needs credentials"),
        )
        .remedy(
            "set LIFEBOAT_SECONDARY_DREMIO_USER and _PASSWORD (or _TOKEN) to compare versions",
        );
    };
    let version = coordinators::rest_version(client, base, &creds).await;
    let release = |v: &str| v.split('-').next().unwrap_or(v).to_string();
    let (status, summary, remedy) = match (version, primary_version) {
        (Err(e), _) => (
            Status::Warn,
            format!("{base} answers, but its version cannot be read: {e}"),
            "check the secondary's credentials",
        ),
        (Ok(v), Some(p)) if release(&v) != release(p) => (
            Status::Fail,
            format!("{base} runs Dremio {v}, the primary {p}"),
            "run the primary's Dremio version on the secondary: a backup restores only onto its own",
        ),
        (Ok(v), Some(_)) => (
            Status::Pass,
            format!("{base} answers and runs Dremio {v}, as the primary does"),
            "",
        ),
        (Ok(v), None) => (
            Status::Warn,
            format!("{base} answers and runs Dremio {v}; the primary's version is unknown"),
            "give --dremio-home, or --dremio-url with credentials, for the primary's version",
        ),
    };
    let mut c = Check::new("dr.secondary", Area::Dr, status, summary);
    if !remedy.is_empty() {
        c = c.remedy(remedy);
    }
    c.evidence("url", base.as_str())
}

/// How far the secondary's catalog is from the primary's: clone's plan, counted, nothing applied.
async fn drift_check(ctx: &Ctx, args: &DoctorArgs, prefix: &'static str) -> Check {
    if args.dremio_urls.is_empty() || credentials(PRIMARY_CREDS).is_none() {
        return Check::skip(
            "dr.drift",
            Area::Dr,
            "give --dremio-url and set LIFEBOAT_DREMIO_USER/PASSWORD (or TOKEN) to compare the catalogs",
        );
    }
    let plan = PlanArgs {
        source: Source::Live(Conn {
            urls: args.dremio_urls.clone(),
            tls: args.tls.clone(),
            env_prefix: PRIMARY_CREDS,
        }),
        target: Conn {
            urls: args.secondary_urls.clone(),
            tls: args.tls.clone(),
            env_prefix: prefix,
        },
        filter: Filter::new::<&'static str>(&[], &[], &[]),
        mode: Mode::Mirror,
        mapping: None,
        concurrency: 8,
    };
    let summary = match super::clone::plan_summary(ctx, &plan).await {
        Ok(s) => s,
        Err(e) => {
            return Check::warn(
                "dr.drift",
                Area::Dr,
                format!("cannot compare the catalogs: {e:#}"),
            )
            .remedy(
                "check both clusters' credentials and that lifeboat clone plan works between them",
            );
        }
    };
    let n = |k: &str| summary.get(k).and_then(Value::as_u64).unwrap_or(0);
    let drift = n("create") + n("update") + n("delete") + n("blocked");
    let c = if drift == 0 {
        Check::pass(
            "dr.drift",
            Area::Dr,
            format!(
                "the secondary's catalog matches the primary's ({} objects)",
                n("unchanged")
            ),
        )
    } else {
        Check::warn(
            "dr.drift",
            Area::Dr,
            format!(
                "the secondary's catalog differs by {drift} item(s): {} to create, {} to update, \
                 {} to delete, {} blocked",
                n("create"),
                n("update"),
                n("delete"),
                n("blocked")
            ),
        )
        .remedy("lifeboat clone plan, then clone apply, --source-url <primary> --dremio-url <secondary>")
    };
    c.evidence("drift", drift)
        .evidence("plan", Value::Object(summary))
}

fn counts(checks: &[Check]) -> Value {
    let n = |s: Status| checks.iter().filter(|c| c.status == s).count();
    json!({
        "pass": n(Status::Pass),
        "warn": n(Status::Warn),
        "fail": n(Status::Fail),
        "skip": n(Status::Skip),
    })
}

/// The `--json` object: {status, counts, checks: [{id, area, status, summary, remedy, evidence}]}.
pub fn to_json(checks: &[Check]) -> Value {
    let list: Vec<Value> = checks
        .iter()
        .map(|c| {
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.entry("remedy").or_insert(Value::Null);
            }
            v
        })
        .collect();
    json!({"status": overall(checks).word(), "counts": counts(checks), "checks": list})
}

/// The human report: checks grouped by area, a remedy under each problem, a closing line of
/// counts. `marks`: ✓ ! ✗ for a terminal, words for logs and mail.
pub fn to_text(checks: &[Check], marks: bool) -> String {
    let mut areas: Vec<Area> = checks.iter().map(|c| c.area).collect();
    areas.sort_unstable();
    areas.dedup();
    let width = checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for area in areas {
        out.push_str(area.title());
        out.push('\n');
        for c in checks.iter().filter(|c| c.area == area) {
            let mark = match (c.status, marks) {
                (Status::Pass, true) => "[✓]",
                (Status::Warn, true) => "[!]",
                (Status::Fail, true) => "[✗]",
                (Status::Skip, true) => "[-]",
                (Status::Pass, false) => "PASS",
                (Status::Warn, false) => "WARN",
                (Status::Fail, false) => "FAIL",
                (Status::Skip, false) => "SKIP",
            };
            let remedy = c.remedy.as_deref().unwrap_or("");
            match c.status {
                Status::Skip if c.summary == "skipped" => {
                    out.push_str(&format!("  {mark} {:<width$}  skipped: {remedy}\n", c.id))
                }
                _ => out.push_str(&format!("  {mark} {:<width$}  {}\n", c.id, c.summary)),
            }
            if matches!(c.status, Status::Warn | Status::Fail) && !remedy.is_empty() {
                let arrow = if marks { "→" } else { "fix:" };
                out.push_str(&format!("  {:<4} {:<width$}  {arrow} {remedy}\n", "", ""));
            }
        }
    }
    let n = counts(checks);
    out.push_str(&format!(
        "{}: {} passed, {} warning(s), {} failed, {} skipped",
        overall(checks).word(),
        n["pass"],
        n["warn"],
        n["fail"],
        n["skip"]
    ));
    out
}

fn finish(ctx: &Ctx, args: &DoctorArgs, checks: &[Check]) -> anyhow::Result<()> {
    let samples: Vec<Sample> = checks
        .iter()
        .map(|c| {
            let area = area_word(c.area);
            let labels = [
                ("cluster", args.cluster.as_str()),
                ("check", c.id.as_str()),
                ("area", area.as_str()),
            ];
            Sample::new("lifeboat_doctor_check", &labels, c.status.gauge() as f64)
        })
        .collect();
    ctx.metrics(args.metrics_file.as_deref(), &samples);
    ctx.emit(
        &to_json(checks),
        &to_text(checks, std::io::stdout().is_terminal()),
    );
    let n = counts(checks);
    let (class, what) = match overall(checks) {
        Status::Pass | Status::Skip => return Ok(()),
        Status::Warn => (ExitClass::Warnings, format!("{} warning(s)", n["warn"])),
        Status::Fail => (
            ExitClass::Failures,
            format!("{} check(s) failed", n["fail"]),
        ),
    };
    Err(CommandError::Reported {
        class,
        message: format!("doctor: {what}"),
    }
    .into())
}

/// The area's word as `--json` spells it.
fn area_word(a: Area) -> String {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Check> {
        vec![
            Check::pass("conf.master", Area::Configuration, "the master role is on"),
            Check::fail("volume.hard", Area::Volume, "mounted soft").remedy("mount with hard"),
            Check::skip("zk.ensemble", Area::Zookeeper, "give --zookeeper"),
            Check::warn("coord.standbys", Area::Coordinators, "no standby").remedy("run two"),
        ]
    }

    #[test]
    fn the_table_groups_by_area_with_marks_and_a_remedy_under_each_problem() {
        let text = to_text(&sample(), true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Configuration");
        assert!(lines[1].starts_with("  [✓] conf.master "), "{text}");
        // Areas come in their order, not the checks': ZooKeeper before the coordinators.
        assert_eq!(lines[2], "ZooKeeper ensemble");
        assert!(lines[3].ends_with("skipped: give --zookeeper"), "{text}");
        assert!(lines[5].starts_with("  [!] coord.standbys "), "{text}");
        assert!(lines[6].trim_start().starts_with("→ run two"), "{text}");
        assert!(lines[8].starts_with("  [✗] volume.hard "), "{text}");
        assert!(
            lines[9].trim_start().starts_with("→ mount with hard"),
            "{text}"
        );
        assert_eq!(
            lines[10],
            "fail: 1 passed, 1 warning(s), 1 failed, 1 skipped"
        );
        let plain = to_text(&sample(), false);
        assert!(plain.contains("  FAIL volume.hard ") && plain.contains("fix: mount with hard"));
        assert!(!plain.contains('✗'));
    }

    #[test]
    fn the_json_object_has_status_counts_and_every_field_of_each_check() {
        let v = to_json(&sample());
        assert_eq!(v["status"], "fail");
        assert_eq!(
            v["counts"],
            json!({"pass": 1, "warn": 1, "fail": 1, "skip": 1})
        );
        let first = &v["checks"][0];
        for key in ["id", "area", "status", "summary", "remedy", "evidence"] {
            assert!(first.get(key).is_some(), "{key} missing: {first}");
        }
        assert_eq!(first["remedy"], Value::Null);
        assert_eq!(v["checks"][1]["remedy"], "mount with hard");
        assert_eq!(area_word(Area::Dr), "dr");
    }

    #[tokio::test]
    async fn standby_checks_are_runs_checks_without_the_probes() {
        let ctx = Ctx::new(
            true,
            std::sync::Arc::new(crate::progress::NotesOnly),
            crate::config::Config::default(),
        );
        let args = DoctorArgs {
            cluster: "dr".into(),
            homes: vec![],
            dremio_urls: vec![],
            tls: Tls::default(),
            zookeeper: vec![],
            zk_root: "/dremio".into(),
            druid: None,
            from: None,
            copies: vec![],
            rpo: None,
            secondary_urls: vec![],
            mountinfo: None,
            no_probe: false,
            min_throughput: 100.0,
            metrics_file: None,
        };
        let checks = standby_checks(&ctx, &args).await.unwrap();
        let ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
        for id in [
            "zk.ensemble",
            "coord.active",
            "volume.nfs",
            "dr.rpo",
            "dr.secondary",
        ] {
            assert!(ids.contains(&id), "{id} missing: {ids:?}");
        }
        assert!(
            !checks
                .iter()
                .any(|c| matches!(c.area, Area::Lock | Area::Throughput)),
            "{ids:?}"
        );
        // They print as doctor prints them.
        assert!(to_text(&checks, false).contains("SKIP zk.ensemble"));
    }
}
