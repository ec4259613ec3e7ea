//! `lifeboat backup`: an offline snapshot of a stopped coordinator's KV store, uploads and security
//! files, streamed as one tar+zstd object into a location and committed by its manifest; an
//! online (logical) one through the coordinator; or a Druid metadata store's snapshot ([`druid`]).

pub mod druid;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use super::clone::Conn;
use super::{CommandError, Ctx};
use crate::archive::pack::Source;
use crate::clone::fingerprint::Fingerprint;
use crate::dremio::lock::{self, TakeLock};
use crate::dremio::logical;
use crate::dremio::rest::{self, Coordinator, Credentials, Tls};
use crate::dremio::{DremioError, DremioVersion, Installation};
use crate::error::ExitClass;
use crate::metrics::Sample;
use crate::repo::copy::{self, Copied};
use crate::repo::manifest;
use crate::repo::write::{self, Shipment, WriteOptions};
use crate::repo::write2;
use crate::repo::{Manifest, Repo};
use crate::store::location::Access;
use crate::store::lock as store_lock;
use crate::units::human_bytes;

/// Options of `lifeboat backup`.
#[derive(Debug, Clone)]
pub struct BackupArgs {
    pub dremio_home: Option<PathBuf>,
    pub paths_local: Option<PathBuf>,
    pub dremio_version: Option<String>,
    /// The primary location (a configured name or a URL).
    pub to: String,
    /// Locations that get a copy once the backup is committed.
    pub copy_to: Vec<String>,
    pub cluster: String,
    pub level: i32,
    pub threads: u32,
    pub parts_in_flight: usize,
    /// Create missing local folder locations (primary and copies).
    pub create_location: bool,
    pub wait_lock: Option<Duration>,
    pub metrics_file: Option<PathBuf>,
    /// Coordinators of an HA group: when given, the backup is an online (logical) one.
    pub dremio_urls: Vec<String>,
    /// Where the coordinator writes its logical backup (shared with lifeboat).
    pub staging: Option<PathBuf>,
    pub tls: Tls,
    /// A Druid cluster's metadata store instead of Dremio: then the Dremio inputs are unused.
    pub druid: Option<druid::DruidBackupArgs>,
    /// The repository format and, for format 2, reuse and encryption.
    pub shape: BackupShape,
}

/// How a backup is laid out in the repository.
#[derive(Debug, Clone)]
pub struct BackupShape {
    /// 1 or 2.
    pub format: u8,
    /// Format 2: reuse nothing.
    pub full: bool,
    /// Format 2: the age recipients (already resolved from the flags or the config), none for
    /// no encryption.
    pub encrypt_to: Vec<String>,
    /// Format 2: the identity file that opens an encrypted base backup's index.
    pub identity: Option<PathBuf>,
}

impl Default for BackupShape {
    fn default() -> Self {
        BackupShape {
            format: crate::config::resolve::DEFAULT_FORMAT,
            full: false,
            encrypt_to: Vec::new(),
            identity: None,
        }
    }
}

/// What a finished backup reports.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub manifest: Manifest,
    /// Format 2: what was reused and uploaded.
    pub reuse: Option<write2::Reuse>,
    pub location: String,
    pub seconds: f64,
    pub copies: Vec<CopyResult>,
}

/// The outcome of one copy to another location.
#[derive(Debug, Clone)]
pub struct CopyResult {
    pub location: String,
    /// Format 2: the new objects it got while the backup was packed.
    pub streamed: Option<write2::Teed>,
    pub outcome: Result<Copied, String>,
}

pub async fn run(ctx: &Ctx, args: &BackupArgs) -> anyhow::Result<BackupReport> {
    let started = Instant::now();
    let result = backup_and_copy(ctx, args, started).await;
    let labels = [
        ("cluster", args.cluster.as_str()),
        ("location", args.to.as_str()),
        ("command", "backup"),
    ];
    let seconds = started.elapsed().as_secs_f64();
    let mut samples = vec![
        Sample::new(
            "lifeboat_last_run_success",
            &labels,
            if result.is_ok() { 1.0 } else { 0.0 },
        ),
        Sample::new("lifeboat_last_run_duration_seconds", &labels, seconds),
    ];
    if let Ok(report) = &result {
        let m = &report.manifest;
        samples.push(Sample::new(
            "lifeboat_last_success_timestamp_seconds",
            &labels,
            m.finished_at.timestamp() as f64,
        ));
        samples.push(Sample::new(
            "lifeboat_backup_raw_bytes",
            &labels,
            m.raw_bytes as f64,
        ));
        samples.push(Sample::new(
            "lifeboat_backup_stored_bytes",
            &labels,
            m.stored_bytes as f64,
        ));
        samples.push(Sample::new(
            "lifeboat_backup_files",
            &labels,
            m.counts.files() as f64,
        ));
        for c in &report.copies {
            let copy_labels = [
                ("cluster", args.cluster.as_str()),
                ("location", c.location.as_str()),
            ];
            samples.push(Sample::new(
                "lifeboat_copy_ok",
                &copy_labels,
                if c.outcome.is_ok() { 1.0 } else { 0.0 },
            ));
        }
    }
    ctx.metrics(args.metrics_file.as_deref(), &samples);
    let report = result?;
    let failed: Vec<&CopyResult> = report
        .copies
        .iter()
        .filter(|c| c.outcome.is_err())
        .collect();
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|c| c.location.as_str()).collect();
        return Err(CommandError::Reported {
            class: ExitClass::CopyFailed,
            message: format!(
                "backup {} is committed in {}, but its copy to {} failed; run `lifeboat copy --from {} --to <location>` once the cause is fixed",
                report.manifest.id,
                args.to,
                names.join(", "),
                args.to
            ),
        }
        .into());
    }
    Ok(report)
}

async fn backup_and_copy(
    ctx: &Ctx,
    args: &BackupArgs,
    started: Instant,
) -> anyhow::Result<BackupReport> {
    let access = Access::writing(args.create_location);
    let repo = ctx.repo(&args.to, &args.cluster, access).await?;
    // Open every copy location first: a typo in a name should fail before an hour of work.
    let mut copies = Vec::new();
    for name in &args.copy_to {
        let dst =
            Repo::new(ctx.open(name, access)?, &args.cluster)?.cancelled_by(ctx.cancel.clone());
        if dst.loc.url() == repo.loc.url() && dst.loc.same_store(&repo.loc) {
            return Err(CommandError::Usage(format!(
                "copy location {name} is the backup's own location ({})",
                repo.loc.url()
            ))
            .into());
        }
        copies.push((name.clone(), dst));
    }
    let lock = repo.lock("backup", args.wait_lock).await?;
    // Each copy location's lock, taken before the backup: a prune there must not sweep an
    // object this copy relies on (streamed while packing, or found present and skipped) before
    // the copy's manifest is committed. A location that cannot be locked gets no copy.
    let mut prepared = Vec::new();
    for (name, dst) in copies {
        let ready = async {
            dst.loc.check_access().await?;
            dst.lock("copy", args.wait_lock).await
        }
        .await
        .map_err(|e| format!("{e:#}"));
        prepared.push((name, dst, ready));
    }
    // Format 2 uploads every new object to the copies too, as it is packed.
    let mut tees = Vec::new();
    let mut tee_of = Vec::new();
    for (_, dst, ready) in &prepared {
        let streamed = args.shape.format == 2 && ready.is_ok();
        tee_of.push(streamed.then_some(tees.len()));
        if streamed {
            tees.push(dst.clone());
        }
    }
    let made = if let Some(d) = &args.druid {
        druid::snapshot(ctx, args, d, &repo, &lock, &tees).await
    } else if args.dremio_urls.is_empty() {
        offline_snapshot(ctx, args, &repo, &lock, &tees).await
    } else {
        online_snapshot(ctx, args, &repo, &lock, &args.dremio_urls, &tees).await
    };
    lock.release().await;
    let (manifest, reuse) = match made {
        Ok(made) => made,
        Err(e) => {
            for (_, _, ready) in prepared {
                if let Ok(lock) = ready {
                    lock.release().await;
                }
            }
            return Err(e);
        }
    };
    if !prepared.is_empty() {
        ctx.progress
            .phase("copy", Some(manifest.stored_bytes * prepared.len() as u64));
    }
    let copied = futures::future::join_all(prepared.into_iter().zip(tee_of).map(
        |((name, dst, ready), tee)| {
            let manifest = &manifest;
            let repo = &repo;
            let streamed = tee.and_then(|i| reuse.as_ref().and_then(|r| r.teed.get(i).cloned()));
            async move {
                if let Some(why) = streamed.as_ref().and_then(|t| t.failed.as_deref()) {
                    ctx.progress.note(&format!(
                        "note: streaming the new objects to {name} stopped ({why}); the copy after the commit sends the rest"
                    ));
                }
                let outcome = match ready {
                    Ok(lock) => {
                        let copied =
                            copy::copy_backup(repo, &dst, manifest, ctx.progress.as_ref()).await;
                        lock.release().await;
                        copied.map_err(|e| format!("{e:#}"))
                    }
                    Err(why) => Err(why),
                };
                CopyResult {
                    location: name,
                    streamed,
                    outcome,
                }
            }
        },
    ))
    .await;
    if !copied.is_empty() {
        ctx.progress.finish();
    }
    let report = BackupReport {
        manifest,
        reuse,
        location: repo.loc.url().to_string(),
        seconds: started.elapsed().as_secs_f64(),
        copies: copied,
    };
    print_report(ctx, &report);
    Ok(report)
}

/// The offline snapshot: a stopped coordinator's files, held under its own RocksDB lock.
async fn offline_snapshot(
    ctx: &Ctx,
    args: &BackupArgs,
    repo: &Repo,
    location_lock: &store_lock::Lock,
    tees: &[Repo],
) -> anyhow::Result<Shipped> {
    let inst = Installation::discover(
        args.dremio_home.as_deref(),
        args.paths_local.as_deref(),
        args.dremio_version.as_deref(),
    )?;
    let version = inst.require_version()?.clone();
    if !inst.db.join("catalog").join("CURRENT").is_file() {
        return Err(DremioError::NotAStore {
            db: inst.db.clone(),
        }
        .into());
    }
    // Holding the coordinator's own lock for the whole copy keeps it from starting mid-copy.
    let _held = match lock::take(&inst.lock_file()).map_err(|source| DremioError::Read {
        path: inst.lock_file(),
        source,
    })? {
        TakeLock::Taken(held) => Some(held),
        TakeLock::Busy(holder) => {
            return Err(DremioError::store_locked(inst.lock_file(), &holder).into());
        }
        TakeLock::ProbedOnly => {
            ctx.progress.note(&format!(
                "note: cannot lock {} (no write permission); checked that no process holds it",
                inst.lock_file().display()
            ));
            None
        }
    };
    let (sources, notes) = sources_of(&inst);
    let shipment = Shipment {
        sources,
        notes,
        mode: "offline",
        cluster: dremio_cluster(args, &version, inst.edition.clone()),
        source: manifest::Source {
            dremio_home: inst.home.as_ref().map(|h| h.display().to_string()),
            paths_local: inst.paths_local.display().to_string(),
            db: inst.db.display().to_string(),
            uploads: inst.uploads.as_ref().map(|u| u.display().to_string()),
            security: inst.security.display().to_string(),
            coordinator: None,
        },
        logical: None,
        druid: None,
        catalog: None,
    };
    ship(ctx, args, repo, location_lock, shipment, tees).await
}

/// The online backup: the active coordinator writes a logical backup (what `dremio-admin backup`
/// asks for) into a staging folder both can reach; lifeboat checks it, ships it, and removes it.
async fn online_snapshot(
    ctx: &Ctx,
    args: &BackupArgs,
    repo: &Repo,
    location_lock: &store_lock::Lock,
    urls: &[String],
    tees: &[Repo],
) -> anyhow::Result<Shipped> {
    let staging = args.staging.clone().ok_or_else(|| CommandError::Usage("an online backup needs --staging DIR: a folder the coordinator can write and lifeboat can read (e.g. on the shared volume)".into()))?;
    let creds = Credentials::from_env(&|k| std::env::var(k).ok())?;
    if args.tls.insecure {
        ctx.progress
            .note("warning: --insecure: the coordinator's TLS certificate is not checked");
    }
    let client = rest::client(&args.tls)?;
    let active = rest::find_active(&client, urls).await?;
    ctx.progress.note(&format!("active coordinator: {active}"));
    let progress = ctx.progress.clone();
    let notify: rest::Notify = std::sync::Arc::new(move |line: &str| progress.note(line));
    let coordinator = Coordinator::login(client, &active, &creds, notify).await?;
    let (version, _) = coordinator.version().await?;
    // Each run asks for its backup in a folder of its own, so that a run killed mid-way leaves
    // nothing in the way of the next, which removes what dead runs of this host left.
    for note in clear_dead_runs(&staging) {
        ctx.progress.note(&note);
    }
    let run_dir = staging.join(run_folder_name());
    let cleanup = RemoveOnDrop(run_dir.clone());
    ctx.progress.phase("dremio backup", None);
    let reply = coordinator.backup(&run_dir, true).await;
    ctx.progress.finish();
    let reply = reply?;
    let dir = checked_backup_path(&run_dir, &reply.backup_path)?;
    let summary = logical::check_backup_dir(&dir)?;
    if summary.tables != reply.tables {
        return Err(DremioError::IncompleteBackup {
            path: dir,
            problem: format!(
                "{} tables on disk, the coordinator reported {}",
                summary.tables, reply.tables
            ),
        }
        .into());
    }
    // The catalog as the clone engine exports it, for drills to compare a restore with. It
    // never fails the backup: without it, a drill compares with the clone tree instead.
    let mut notes = Vec::new();
    let catalog = match record_catalog(ctx, args, urls, &staging, &dir, &active).await {
        Ok(c) => Some(c),
        Err(e) => {
            notes.push(format!(
                "no catalog fingerprint: {e:#}; drills compare with clone_tree instead"
            ));
            None
        }
    };
    let shipment = Shipment {
        sources: vec![Source {
            root: "",
            dir: dir.clone(),
            skip_contents_of: vec![],
        }],
        notes,
        mode: "logical",
        cluster: dremio_cluster(args, &version, None),
        source: manifest::Source {
            dremio_home: None,
            paths_local: String::new(),
            db: String::new(),
            uploads: None,
            security: String::new(),
            coordinator: Some(active.clone()),
        },
        logical: Some(manifest::Logical {
            tables: summary.tables,
            records: summary.records,
            binary: summary.binary,
            backup_path: reply.backup_path.clone(),
        }),
        druid: None,
        catalog,
    };
    let made = ship(ctx, args, repo, location_lock, shipment, tees).await;
    drop(cleanup);
    made
}

/// How many requests the catalog export keeps in flight (`clone export`'s default).
const CATALOG_EXPORT_CONCURRENCY: usize = 16;

/// Exports the live catalog into a temporary folder beside the run's (removed after), and
/// writes its fingerprint into the backup folder `dir` as [`crate::repo::manifest::CATALOG_MEMBER`] (0600).
async fn record_catalog(
    ctx: &Ctx,
    args: &BackupArgs,
    urls: &[String],
    staging: &std::path::Path,
    dir: &std::path::Path,
    coordinator: &str,
) -> anyhow::Result<manifest::CatalogRef> {
    // Named like a run folder: a run killed mid-export leaves one the next run removes.
    let tree = staging.join(run_folder_name());
    let _cleanup = RemoveOnDrop(tree.clone());
    let conn = Conn {
        urls: urls.to_vec(),
        tls: args.tls.clone(),
        env_prefix: "LIFEBOAT_DREMIO_",
    };
    let taken_at = chrono::Utc::now();
    ctx.progress
        .note("exporting the catalog for its fingerprint (drills compare with it)");
    let objects = super::clone::export_quiet(ctx, &conn, &tree, CATALOG_EXPORT_CONCURRENCY).await?;
    let print = Fingerprint::of_tree(&tree)?;
    print.write_file(&dir.join(crate::repo::manifest::CATALOG_MEMBER))?;
    ctx.progress.note(&format!(
        "catalog: {objects} objects in {} files fingerprinted",
        print.entries.len()
    ));
    Ok(manifest::CatalogRef {
        member: crate::repo::manifest::CATALOG_MEMBER.into(),
        files: print.entries.len() as u64,
        taken_at,
        coordinator: coordinator.to_string(),
    })
}

const RUN_PREFIX: &str = "lifeboat-";

/// `lifeboat-<pid>-<random>-<host>`: names the run that asked for it, so a later run can tell a
/// dead run's folder from a live one's.
fn run_folder_name() -> String {
    let mut rand = [0u8; 3];
    getrandom::fill(&mut rand).expect("the OS has a random source");
    format!(
        "{RUN_PREFIX}{}-{}-{}",
        std::process::id(),
        hex::encode(rand),
        crate::host::hostname()
    )
}

/// Removes the run folders that lifeboat processes of this host left in `staging` and that are
/// gone; returns a note per folder removed or that could not be.
fn clear_dead_runs(staging: &std::path::Path) -> Vec<String> {
    let host = crate::host::hostname();
    let mut notes = Vec::new();
    for name in crate::fsutil::entries(staging).unwrap_or_default() {
        let Some(rest) = name.strip_prefix(RUN_PREFIX) else {
            continue;
        };
        let mut parts = rest.splitn(3, '-');
        let (Some(pid), Some(_), Some(of)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if of != host || crate::host::process_alive(pid) {
            continue;
        }
        let dir = staging.join(&name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => notes.push(format!(
                "note: removed {} (left by an online backup that was killed)",
                dir.display()
            )),
            Err(e) => notes.push(format!(
                "warning: cannot remove {} left by a killed online backup: {e}",
                dir.display()
            )),
        }
    }
    notes
}

/// The coordinator's answer names the folder it wrote; it must be inside the run's own folder,
/// since lifeboat reads it and then removes it (a wrong answer must never point it elsewhere).
fn checked_backup_path(run_dir: &std::path::Path, answered: &str) -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from(answered);
    let inside = dir.parent() == Some(run_dir)
        && dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("dremio_backup_"));
    let real = std::fs::canonicalize(&dir).ok();
    let real_run = std::fs::canonicalize(run_dir).ok();
    if !inside || real.as_deref().and_then(|r| r.parent()) != real_run.as_deref() {
        return Err(DremioError::IncompleteBackup {
            path: dir,
            problem: format!(
                "the coordinator says it wrote its backup there, not in {} where it was asked to",
                run_dir.display()
            ),
        }
        .into());
    }
    Ok(dir)
}

/// Removes a folder when dropped (on success and on every failure path).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The manifest's record of the Dremio cluster backed up.
fn dremio_cluster(
    args: &BackupArgs,
    version: &DremioVersion,
    edition: Option<String>,
) -> manifest::Cluster {
    manifest::Cluster {
        name: args.cluster.clone(),
        kind: "dremio".into(),
        version: version.release(),
        build: version.build.clone(),
        edition,
    }
}

/// A committed backup, and for format 2 what it reused.
pub(crate) type Shipped = (Manifest, Option<write2::Reuse>);

/// Writes a shipment into the repository with this run's pack and upload options.
async fn ship(
    ctx: &Ctx,
    args: &BackupArgs,
    repo: &Repo,
    location_lock: &store_lock::Lock,
    shipment: Shipment,
    tees: &[Repo],
) -> anyhow::Result<Shipped> {
    let options = WriteOptions {
        level: args.level,
        threads: args.threads,
        parts_in_flight: args.parts_in_flight,
    };
    let shape = &args.shape;
    if shape.format != 2 {
        if shape.full || !shape.encrypt_to.is_empty() {
            return Err(CommandError::Usage(
                "--full and encryption (--encrypt-to, the config's recipients) need --format 2"
                    .into(),
            )
            .into());
        }
        let m = write::write(repo, shipment, options, location_lock, ctx.progress.clone()).await?;
        return Ok((m, None));
    }
    let recipients = if shape.encrypt_to.is_empty() {
        None
    } else {
        Some(crate::crypto::Recipients::parse(
            &shape.encrypt_to,
            "--encrypt-to",
        )?)
    };
    let identities =
        crate::crypto::Identities::from_flag_or_env(shape.identity.as_deref(), &|k| {
            std::env::var(k).ok()
        })?;
    let shape = write2::Shape {
        recipients,
        identities,
        full: shape.full,
        cache: crate::repo::cache::dir_for(repo.loc.url(), &repo.cluster),
        copies: tees.to_vec(),
    };
    let (m, reuse) = write2::write(
        repo,
        shipment,
        options,
        shape,
        location_lock,
        ctx.progress.clone(),
    )
    .await?;
    Ok((m, Some(reuse)))
}

/// The folders an offline backup takes, and notes about what it cannot take.
fn sources_of(inst: &Installation) -> (Vec<Source>, Vec<String>) {
    let mut notes = Vec::new();
    // Dremio's temporary RocksDB checkpoints are hard-linked copies of the store: never back them up.
    let mut sources = vec![Source {
        root: "db",
        dir: inst.db.clone(),
        skip_contents_of: vec![PathBuf::from("checkpoints")],
    }];
    match (&inst.uploads, &inst.remote_uploads) {
        (Some(dir), _) if dir.is_dir() => sources.push(Source { root: "uploads", dir: dir.clone(), skip_contents_of: vec![] }),
        (Some(dir), _) => notes.push(format!("no uploads folder at {} (nothing uploaded yet)", dir.display())),
        (None, Some(url)) => notes.push(format!("uploads live in the distributed store {url}, not on local disk: they are not in this backup")),
        (None, None) => {}
    }
    if inst.security.is_dir() {
        sources.push(Source {
            root: "security",
            dir: inst.security.clone(),
            skip_contents_of: vec![],
        });
    } else {
        notes.push(format!("no security folder at {}", inst.security.display()));
    }
    (sources, notes)
}

/// What a copy got while the backup was packed (format 2), for the JSON report.
fn streamed_json(c: &CopyResult) -> serde_json::Value {
    match &c.streamed {
        Some(t) => json!({"objects": t.objects, "bytes": t.bytes, "stopped": t.failed}),
        None => serde_json::Value::Null,
    }
}

fn print_report(ctx: &Ctx, r: &BackupReport) {
    let m = &r.manifest;
    let json = json!({
        "id": m.id,
        "location": r.location,
        "cluster": m.cluster.name,
        "mode": m.mode,
        "dremio_version": m.cluster.version,
        "raw_bytes": m.raw_bytes,
        "stored_bytes": m.stored_bytes,
        "kv_files": m.counts.kv_files,
        "uploaded_files": m.counts.uploaded_files,
        "security_files": m.counts.security_files,
        "directories": m.counts.directories,
        "archive_sha256": m.archive.sha256,
        "seconds": (r.seconds * 1000.0).round() / 1000.0,
        "notes": m.notes,
        "copies": r.copies.iter().map(|c| match &c.outcome {
            Ok(Copied::Now(bytes)) => json!({"location": c.location, "status": "copied", "bytes": bytes, "streamed": streamed_json(c)}),
            Ok(Copied::AlreadyThere) => json!({"location": c.location, "status": "already-there", "streamed": streamed_json(c)}),
            Err(e) => json!({"location": c.location, "status": "failed", "error": e, "streamed": streamed_json(c)}),
        }).collect::<Vec<_>>(),
    });
    let ratio = if m.stored_bytes > 0 {
        m.raw_bytes as f64 / m.stored_bytes as f64
    } else {
        0.0
    };
    let human = format!(
        "Backup {} committed to {}/{}/{}\n  Dremio {} ({}), {} KV store files, {} uploaded files, {} security files\n  {} raw -> {} stored ({ratio:.1}x) in {:.1}s",
        m.id,
        r.location.trim_end_matches('/'),
        m.cluster.name,
        m.id,
        m.cluster.version,
        m.mode,
        m.counts.kv_files,
        m.counts.uploaded_files,
        m.counts.security_files,
        human_bytes(m.raw_bytes),
        human_bytes(m.stored_bytes),
        r.seconds
    );
    let mut human = human;
    let mut json = json;
    if let Some(u) = &r.reuse {
        json["format"] = json!(2);
        json["encrypted"] = json!(m.encryption.is_some());
        json["base"] = json!(m.base);
        json["objects"] = json!({
            "reused": u.reused_objects,
            "reused_bytes": u.reused_bytes,
            "uploaded": u.uploaded_objects,
            "uploaded_bytes": u.uploaded_bytes,
        });
    }
    if let Some(d) = &m.druid {
        let (section, lines) = druid::summary(d);
        json["druid"] = section;
        human = format!(
            "Backup {} committed to {}/{}/{}\n{lines}\n  {} raw -> {} stored ({ratio:.1}x) in {:.1}s",
            m.id,
            r.location.trim_end_matches('/'),
            m.cluster.name,
            m.id,
            human_bytes(m.raw_bytes),
            human_bytes(m.stored_bytes),
            r.seconds
        );
    }
    if let Some(u) = &r.reuse {
        human.push_str(&format!(
            "\n  format 2{}: {} objects reused ({}), {} uploaded ({}){}",
            if m.encryption.is_some() {
                ", encrypted"
            } else {
                ""
            },
            u.reused_objects,
            human_bytes(u.reused_bytes),
            u.uploaded_objects,
            human_bytes(u.uploaded_bytes),
            m.base
                .as_ref()
                .map(|b| format!(", base {b}"))
                .unwrap_or_default()
        ));
    }
    for c in &r.copies {
        match &c.outcome {
            Ok(Copied::Now(bytes)) => match &c.streamed {
                Some(t) if t.objects > 0 => human.push_str(&format!(
                    "\n  copied to {}: {} objects ({}) streamed while packing, {} after, digests verified",
                    c.location,
                    t.objects,
                    human_bytes(t.bytes),
                    human_bytes(*bytes)
                )),
                _ => human.push_str(&format!(
                    "\n  copied to {} ({}), digest verified",
                    c.location,
                    human_bytes(*bytes)
                )),
            },
            Ok(Copied::AlreadyThere) => {
                human.push_str(&format!("\n  {} already had it", c.location))
            }
            Err(e) => human.push_str(&format!("\n  COPY TO {} FAILED: {e}", c.location)),
        }
    }
    ctx.emit(&json, &human);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offline_backup_takes_the_folders_that_exist_and_notes_the_others() {
        let root = tempfile::tempdir().unwrap();
        let local = root.path().join("dremio");
        let inst = Installation::discover(None, Some(&local), Some("25.2.0")).unwrap();
        let (sources, notes) = sources_of(&inst);
        let roots: Vec<&str> = sources.iter().map(|s| s.root).collect();
        assert_eq!(roots, ["db"]);
        assert_eq!(sources[0].skip_contents_of, [PathBuf::from("checkpoints")]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].starts_with("no uploads folder at"), "{notes:?}");
        assert!(notes[1].starts_with("no security folder at"), "{notes:?}");

        let uploads = inst.uploads.clone().unwrap();
        std::fs::create_dir_all(&uploads).unwrap();
        std::fs::create_dir_all(&inst.security).unwrap();
        let (sources, notes) = sources_of(&inst);
        let found: Vec<(&str, &std::path::Path)> =
            sources.iter().map(|s| (s.root, s.dir.as_path())).collect();
        assert_eq!(
            found,
            [
                ("db", inst.db.as_path()),
                ("uploads", uploads.as_path()),
                ("security", inst.security.as_path())
            ]
        );
        assert!(notes.is_empty(), "{notes:?}");

        let remote = Installation {
            uploads: None,
            remote_uploads: Some("s3://bucket/dist/uploads".into()),
            ..inst
        };
        let (sources, notes) = sources_of(&remote);
        assert_eq!(sources.len(), 2);
        assert!(
            notes[0].contains("distributed store s3://bucket/dist/uploads"),
            "{notes:?}"
        );
    }

    #[test]
    fn only_folders_of_dead_runs_of_this_host_are_cleared() {
        let staging = tempfile::tempdir().unwrap();
        let host = crate::host::hostname();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let names = [
            format!("lifeboat-{dead}-aaaaaa-{host}"),
            format!("lifeboat-{}-bbbbbb-{host}", std::process::id()),
            format!("lifeboat-{dead}-cccccc-some-other-host"),
            "dremio_backup_2026-12-01_10.00".to_string(),
        ];
        for n in &names {
            std::fs::create_dir_all(staging.path().join(n).join("inside")).unwrap();
        }
        let notes = clear_dead_runs(staging.path());
        assert_eq!(notes.len(), 1, "{notes:?}");
        let left = crate::fsutil::entries(staging.path()).unwrap();
        assert!(!left.contains(&names[0]), "{left:?}");
        assert_eq!(
            left.len(),
            3,
            "a live run, another host's and a foreign folder stay"
        );
    }

    #[test]
    fn a_backup_path_outside_the_run_folder_is_refused() {
        let staging = tempfile::tempdir().unwrap();
        let run = staging.path().join("lifeboat-1-abcdef-host");
        let good = run.join("dremio_backup_2026-12-01_10.00");
        std::fs::create_dir_all(&good).unwrap();
        assert_eq!(
            checked_backup_path(&run, good.to_str().unwrap()).unwrap(),
            good
        );
        for bad in [
            "/".to_string(),
            staging.path().display().to_string(),
            run.join("elsewhere").display().to_string(),
            format!("{}/../dremio_backup_x", run.display()),
        ] {
            assert!(checked_backup_path(&run, &bad).is_err(), "{bad}");
        }
    }
}
