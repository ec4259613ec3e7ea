//! `lifeboat restore`: Dremio's documented restore procedure, automated and safe. Every check runs
//! before anything changes; the backup is extracted and verified in a staging folder beside the
//! target and flushed to disk; only then are folders put in place, each by one atomic rename, with
//! what was there kept aside (never deleted). The steps that actually happened drive the undo, and
//! a journal lets the next run finish or undo a restore that was killed.

pub mod druid;
mod load;
mod plan;
mod stage;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::json;

use super::{CommandError, Ctx};
use crate::archive::ArchiveError;
use crate::archive::unpack;
use crate::dremio::Installation;
use crate::fsutil::{
    self,
    txn::{Fs, Previous, RealFs, Txn},
};
use crate::repo::Repo;
use crate::repo::manifest::Manifest;
use crate::repo::read::{self, Target};
use crate::store::location::Access;
use crate::units::human_bytes;

pub use plan::Plan;

/// Options of `lifeboat restore`.
#[derive(Debug, Clone)]
pub struct RestoreArgs {
    pub from: String,
    pub cluster: String,
    pub backup: String,
    pub dremio_home: Option<PathBuf>,
    pub paths_local: Option<PathBuf>,
    pub dremio_version: Option<String>,
    pub replace: bool,
    pub owner: Option<String>,
    pub dry_run: bool,
    /// The target of a Druid backup: its metadata store (the Dremio inputs are then unused).
    pub druid: Option<druid::DruidRestoreArgs>,
    /// A logical backup's catalog fingerprint (the archive member
    /// [`crate::repo::manifest::CATALOG_MEMBER`], digest-checked like every member) is moved here
    /// once extracted; without it, it is left out of what dremio-admin loads.
    pub catalog_to: Option<PathBuf>,
    /// Every restored folder lies beneath `paths_local` (a drill's scratch copy): the layout is
    /// Dremio's defaults under it, whatever the home's dremio.conf says (the home only provides
    /// dremio-admin and the version), and so is the conf dremio-admin loads with.
    pub confine: bool,
    /// `--identity FILE`: the age identities of an encrypted backup (else
    /// [`crate::crypto::IDENTITY_FILE_VAR`] names the file).
    pub identity: Option<PathBuf>,
}

/// What a restore did: a Dremio installation's or a Druid metadata store's.
#[derive(Debug, Clone)]
pub enum Restored {
    Dremio(RestoreReport),
    Druid(Box<druid::DruidRestoreReport>),
}

/// What a restore did (or, in a dry run, would do).
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub id: String,
    pub paths_local: PathBuf,
    pub safety_copies: Vec<PathBuf>,
    /// (folder, its safety copy) for each folder whose previous contents were kept aside, in
    /// the order they were put in place: what [`put_back`] exchanges back.
    pub replaced: Vec<(PathBuf, PathBuf)>,
    /// The KV store's RocksDB lock: [`put_back`] refuses while a coordinator holds it.
    pub lock_file: PathBuf,
    /// Where the backup's catalog fingerprint was put (`RestoreArgs::catalog_to`), when the
    /// backup held one.
    pub catalog: Option<PathBuf>,
    pub kv_files: u64,
    pub uploaded_files: u64,
    pub security_files: u64,
    pub raw_bytes: u64,
    pub seconds: f64,
}

pub async fn run(ctx: &Ctx, args: &RestoreArgs) -> anyhow::Result<Restored> {
    let started = Instant::now();
    let repo = ctx
        .repo(&args.from, &args.cluster, Access::Read)
        .await
        .with_context(|| format!("restore from {}", args.from))?;
    let manifest = repo
        .manifest(&args.backup)
        .await
        .with_context(|| format!("restore of backup {} from {}", args.backup, repo.loc.url()))?;
    let context = || format!("restore of backup {} from {}", manifest.id, repo.loc.url());
    // Format 2: every object is looked for and the index (and what an encrypted manifest seals)
    // is read and decrypted now, so that a missing object or a missing or wrong key fails before
    // anything about the target is touched.
    let keys = identities(args.identity.as_deref())?;
    let opened = read::open(&repo, manifest.clone(), keys)
        .await
        .with_context(context)?;
    let manifest = &opened.manifest;
    match (manifest.cluster.kind.as_str(), &args.druid) {
        ("druid", Some(d)) => druid::restore(ctx, d, args.dry_run, &repo, &opened, started)
            .await
            .map(|r| Restored::Druid(Box::new(r)))
            .with_context(context),
        ("druid", None) => Err(CommandError::Usage(format!(
            "backup {} is of a Druid cluster's metadata store: restore it with --druid-metadata postgres://USER@HOST:PORT/DB (or mysql://...), an empty database",
            manifest.id
        ))
        .into()),
        (kind, Some(_)) => Err(CommandError::Usage(format!(
            "backup {} is of a {kind} cluster, not of a Druid metadata store: --druid-metadata does not apply",
            manifest.id
        ))
        .into()),
        (_, None) => restore(ctx, args, &repo, &opened, started)
            .await
            .map(Restored::Dremio)
            .with_context(context),
    }
}

/// The identities `--identity` (else the environment) names, if any; a bad file is a usage error.
pub fn identities(flag: Option<&Path>) -> anyhow::Result<Option<Arc<crate::crypto::Identities>>> {
    let env = |k: &str| std::env::var(k).ok();
    crate::crypto::Identities::from_flag_or_env(flag, &env)
        .map(|k| k.map(Arc::new))
        .map_err(|e| CommandError::Usage(e.to_string()).into())
}

async fn restore(
    ctx: &Ctx,
    args: &RestoreArgs,
    repo: &Repo,
    opened: &read::Opened,
    started: Instant,
) -> anyhow::Result<RestoreReport> {
    let manifest = &opened.manifest;
    let inst = installation(args, manifest)?;
    // A coordinator (or a dremio-admin a killed run left behind) using the target comes first:
    // nothing about the target, not even an earlier run's journal, is touched under it.
    plan::check_not_in_use(&inst)?;
    if args.dry_run {
        for leftover in stage::leftovers(&inst.paths_local) {
            if let stage::Leftover::Journal(dir, journal) = leftover {
                ctx.progress.note(&format!(
                    "note: {} holds an interrupted restore of backup {} ({:?}); a real run settles it first",
                    dir.display(),
                    journal.backup,
                    journal.state
                ));
            }
        }
    } else {
        // A restore killed earlier is finished or discarded first, as its journal says.
        for done in stage::recover(&inst.paths_local)? {
            ctx.progress.note(&format!("note: {done}"));
        }
    }
    let plan = Plan::check(manifest, &inst, args)?;
    if args.dry_run {
        return Ok(print_dry_run(ctx, manifest, &plan, &inst, started));
    }

    let mut txn = Txn::new(&RealFs);
    txn.create_dir_all(&plan.parent, 0o755)
        .map_err(|source| ArchiveError::WriteTarget {
            path: plan.parent.clone(),
            source,
        })?;
    let mut staging = stage::Staging::create(&plan, &manifest.id)?;
    let unpacked = extract(ctx, repo, opened, &staging.archive(), &plan).await?;
    let logical = manifest.mode == "logical";
    // Extracted and digest-checked; dremio-admin must never see it among its table files.
    let catalog = if logical {
        take_catalog(&staging.archive(), args.catalog_to.as_deref())?
    } else {
        None
    };
    staging.assemble(&plan, logical)?;
    if logical {
        load::into_staging(ctx, &plan, &inst, &mut staging)?;
    }
    // Durable before visible: everything staged reaches the disk before any of it is put in place.
    fsutil::sync_filesystem(&staging.dir).map_err(|source| ArchiveError::WriteTarget {
        path: staging.dir.clone(),
        source,
    })?;
    staging.plan_swaps(&plan)?;
    staging.set_state(stage::State::Swapping)?;
    let swapped = staging.swap_in(&mut txn);
    let swapped = settle(&mut staging, txn, swapped)?;
    let replaced: Vec<(PathBuf, PathBuf)> = swapped
        .into_iter()
        .filter_map(|(dest, previous)| match previous {
            Previous::KeptAt(copy) => Some((dest, copy)),
            _ => None,
        })
        .collect();
    let safety_copies = replaced.iter().map(|(_, copy)| copy.clone()).collect();
    // Recorded before the staging folder goes, so that a kill now is not mistaken for a swap.
    if let Err(e) = staging.set_state(stage::State::Done) {
        ctx.progress.note(&format!(
            "warning: restored, but cannot update {}: {e:#}",
            staging.dir.display()
        ));
    }
    drop(staging);

    let c = &unpacked.counts;
    let report = RestoreReport {
        id: manifest.id.clone(),
        paths_local: inst.paths_local.clone(),
        safety_copies,
        replaced,
        lock_file: inst.lock_file(),
        catalog,
        kv_files: c.kv_files,
        uploaded_files: c.uploaded_files,
        security_files: c.security_files,
        raw_bytes: unpacked.raw_bytes,
        seconds: started.elapsed().as_secs_f64(),
    };
    print_report(ctx, repo, &inst, &report);
    Ok(report)
}

/// Streams the archive into `dir`, checking every member and giving each to the plan's owner as it
/// is created, then sets folder modes and times.
async fn extract(
    ctx: &Ctx,
    repo: &Repo,
    opened: &read::Opened,
    dir: &std::path::Path,
    plan: &Plan,
) -> anyhow::Result<unpack::Unpacked> {
    let index = opened.index(repo).await?;
    let read = opened
        .read(
            repo,
            index.clone(),
            super::archive_layout(&opened.manifest),
            Target::Extract {
                staging: dir.to_path_buf(),
                owner: plan.owner,
            },
            ctx.progress.clone(),
        )
        .await;
    ctx.progress.finish();
    let read = read?;
    read.extracted()?;
    unpack::finish_directories(dir, &index)?;
    Ok(read.unpacked)
}

/// Keeps the transaction when every step succeeded; otherwise undoes what was done and says
/// whether the target is back as it was (the staging folder is kept when it is not).
fn settle<T, E: std::fmt::Display>(
    staging: &mut stage::Staging,
    txn: Txn<'_, RealFs>,
    outcome: Result<T, E>,
) -> anyhow::Result<T> {
    match outcome {
        Ok(kept) => {
            txn.commit();
            Ok(kept)
        }
        Err(why) => {
            let problems = txn.rollback();
            if problems.is_empty() {
                Err(CommandError::Refused(format!(
                    "putting the restored folders in place failed ({why}); the target was put back as it was"
                ))
                .into())
            } else {
                staging.keep();
                Err(CommandError::Refused(format!(
                    "putting the restored folders in place failed ({why}) AND could not put everything back: {}. Nothing was deleted: {} and the names above hold every folder",
                    problems.join("; "),
                    staging.dir.display()
                ))
                .into())
            }
        }
    }
}

/// The target's layout. A confined restore's comes from paths.local alone (Dremio's defaults
/// beneath it, whatever the home's dremio.conf says), and its version, unless given, is the
/// backup's own (a drill's coordinator runs the backup's version by definition); the home only
/// provides dremio-admin.
fn installation(args: &RestoreArgs, manifest: &Manifest) -> anyhow::Result<Installation> {
    if !args.confine {
        return Ok(Installation::discover(
            args.dremio_home.as_deref(),
            args.paths_local.as_deref(),
            args.dremio_version.as_deref(),
        )?);
    }
    let Some(local) = args.paths_local.as_deref() else {
        return Err(CommandError::Usage(
            "a confined restore (a drill's) needs the scratch paths.local to restore into".into(),
        )
        .into());
    };
    let version = args
        .dremio_version
        .clone()
        .unwrap_or_else(|| plan::backup_version_text(manifest));
    let mut inst = Installation::discover(None, Some(local), Some(&version))?;
    inst.home =
        match args.dremio_home.as_deref() {
            Some(home) => Some(std::path::absolute(home).map_err(|source| {
                crate::dremio::DremioError::Read {
                    path: home.to_path_buf(),
                    source,
                }
            })?),
            None => None,
        };
    Ok(inst)
}

/// Takes the catalog fingerprint out of an extracted logical backup: moved to `to`, or removed.
/// Returns where it went.
fn take_catalog(archive: &Path, to: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    use std::os::unix::fs::PermissionsExt;
    let from = archive.join(crate::repo::manifest::CATALOG_MEMBER);
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::WriteTarget { path, source }
    };
    match from.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(write_err(&from)(e).into()),
        Ok(m) if !m.is_file() => {
            return Err(CommandError::Integrity(format!(
                "the backup's {} is not a file",
                crate::repo::manifest::CATALOG_MEMBER
            ))
            .into());
        }
        Ok(_) => {}
    }
    let Some(to) = to else {
        std::fs::remove_file(&from).map_err(write_err(&from))?;
        return Ok(None);
    };
    match std::fs::rename(&from, to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            std::fs::copy(&from, to).map_err(write_err(to))?;
            std::fs::remove_file(&from).map_err(write_err(&from))?;
        }
        Err(e) => return Err(write_err(to)(e).into()),
    }
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600)).map_err(write_err(to))?;
    Ok(Some(to.to_path_buf()))
}

/// Undoes a completed restore (a standby refresh that failed after it): each folder's safety
/// copy is put back in its place, and what the restore had put there is kept at
/// `<folder>.failed-refresh-<stamp>` (nothing is deleted). Every step is one rename or atomic
/// exchange with its parents fsynced; a failure undoes the steps already taken. Refused while
/// a coordinator holds the restored store. Returns the kept paths. A folder that was empty or
/// missing before the restore has no safety copy and is left as the restore made it.
pub fn put_back(report: &RestoreReport) -> anyhow::Result<Vec<PathBuf>> {
    put_back_with(&RealFs, report)
}

fn put_back_with<F: Fs>(fs: &F, report: &RestoreReport) -> anyhow::Result<Vec<PathBuf>> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| crate::dremio::DremioError::Read { path, source }
    };
    if let Some(holder) =
        crate::dremio::lock::holder(&report.lock_file).map_err(read_err(&report.lock_file))?
    {
        return Err(CommandError::Refused(format!(
            "cannot put the previous state of {} back: process {} holds {} (stop the coordinator first)",
            report.paths_local.display(),
            holder.pid,
            report.lock_file.display()
        ))
        .into());
    }
    for (dest, copy) in &report.replaced {
        match copy.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            _ => {
                return Err(CommandError::Refused(format!(
                    "cannot put the previous state of {} back: its safety copy {} is not there (any more); nothing was changed",
                    dest.display(),
                    copy.display()
                ))
                .into());
            }
        }
    }
    let mut txn = Txn::new(fs);
    let mut kept = Vec::new();
    // Newest first, as an undo goes.
    for (dest, copy) in report.replaced.iter().rev() {
        let failed = stage::free_name(dest, "failed-refresh");
        match txn.replace(copy, dest, &failed) {
            Ok(Previous::KeptAt(p)) => kept.push(p),
            Ok(_) => {}
            Err(e) => {
                let problems = txn.rollback();
                let state = if problems.is_empty() {
                    "everything is as the restore left it".to_string()
                } else {
                    format!(
                        "AND could not undo every step: {}. Nothing was deleted",
                        problems.join("; ")
                    )
                };
                return Err(CommandError::Refused(format!(
                    "cannot put {} back at {}: {e}; {state}",
                    copy.display(),
                    dest.display()
                ))
                .into());
            }
        }
    }
    txn.commit();
    Ok(kept)
}

fn print_dry_run(
    ctx: &Ctx,
    manifest: &Manifest,
    plan: &Plan,
    inst: &Installation,
    started: Instant,
) -> RestoreReport {
    let json = json!({
        "dry_run": true,
        "id": manifest.id,
        "paths_local": plan.paths_local,
        "would_move_aside": plan.move_aside,
        "parts": plan.parts.iter().map(|(r, d)| json!({"root": r, "to": d})).collect::<Vec<_>>(),
        "needed_bytes": plan.needed_bytes,
        "free_bytes": plan.free_bytes,
    });
    let mut human = format!(
        "Dry run: backup {} passes every check and would be restored into {}",
        manifest.id,
        plan.paths_local.display()
    );
    for dir in &plan.move_aside {
        human.push_str(&format!(
            "\n  would move {} aside to a safety copy",
            dir.display()
        ));
    }
    for (root, dest) in &plan.parts {
        human.push_str(&format!("\n  {root}/ -> {}", dest.display()));
    }
    human.push_str(&format!(
        "\n  needs {} of {} free; nothing was changed",
        human_bytes(plan.needed_bytes),
        human_bytes(plan.free_bytes)
    ));
    ctx.emit(&json, &human);
    RestoreReport {
        id: manifest.id.clone(),
        paths_local: plan.paths_local.clone(),
        safety_copies: Vec::new(),
        replaced: Vec::new(),
        lock_file: inst.lock_file(),
        catalog: None,
        kv_files: manifest.counts.kv_files,
        uploaded_files: manifest.counts.uploaded_files,
        security_files: manifest.counts.security_files,
        raw_bytes: manifest.raw_bytes,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn print_report(ctx: &Ctx, repo: &Repo, inst: &Installation, r: &RestoreReport) {
    let at = format!(
        "{}/{}/{}",
        repo.loc.url().trim_end_matches('/'),
        repo.cluster,
        r.id
    );
    let json = json!({
        "id": r.id,
        "restored_from": at,
        "paths_local": r.paths_local,
        "db": inst.db,
        "safety_copies": r.safety_copies,
        "kv_files": r.kv_files,
        "uploaded_files": r.uploaded_files,
        "security_files": r.security_files,
        "raw_bytes": r.raw_bytes,
        "seconds": (r.seconds * 1000.0).round() / 1000.0,
    });
    let mut human = format!(
        "Restored from backup at {at}: {} KV store files, {} uploaded files, {} security files ({}, {:.1}s)",
        r.kv_files,
        r.uploaded_files,
        r.security_files,
        human_bytes(r.raw_bytes),
        r.seconds
    );
    for copy in &r.safety_copies {
        human.push_str(&format!("\n  previous contents kept at {}", copy.display()));
    }
    if let Some(home) = &inst.home {
        human.push_str(&format!(
            "\n  next: start the coordinator ({}/bin/dremio start)",
            home.display()
        ));
    }
    ctx.emit(&json, &human);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn put(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// A completed restore of `root/data` (and of `root/elsewhere`, a folder outside it) whose
    /// previous contents were kept aside.
    fn restored(root: &Path) -> RestoreReport {
        let (local, other) = (root.join("data"), root.join("elsewhere"));
        let (local_copy, other_copy) = (
            root.join("data.before-restore-20261201T000000Z"),
            root.join("elsewhere.before-restore-20261201T000000Z"),
        );
        put(&local.join("db/CURRENT"), "restored");
        put(&local_copy.join("db/CURRENT"), "previous");
        put(&other.join("x"), "restored");
        put(&other_copy.join("x"), "previous");
        RestoreReport {
            id: "20261201T000000Z-abcd".into(),
            paths_local: local.clone(),
            safety_copies: vec![local_copy.clone(), other_copy.clone()],
            replaced: vec![(local.clone(), local_copy), (other, other_copy)],
            lock_file: local.join("db/catalog/LOCK"),
            catalog: None,
            kv_files: 1,
            uploaded_files: 0,
            security_files: 0,
            raw_bytes: 1,
            seconds: 0.0,
        }
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn put_back_returns_every_safety_copy_and_keeps_what_the_restore_made() {
        let root = tempfile::tempdir().unwrap();
        let report = restored(root.path());
        let kept = put_back(&report).unwrap();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(read(&root.path().join("data/db/CURRENT")), "previous");
        assert_eq!(read(&root.path().join("elsewhere/x")), "previous");
        for copy in &report.safety_copies {
            assert!(!copy.exists(), "{} was put back", copy.display());
        }
        let local_kept = kept.iter().find(|k| {
            k.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("data.failed-refresh-")
        });
        assert_eq!(read(&local_kept.unwrap().join("db/CURRENT")), "restored");
        let other_kept = kept.iter().find(|k| {
            k.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("elsewhere.failed-refresh-")
        });
        assert_eq!(read(&other_kept.unwrap().join("x")), "restored");
    }

    #[test]
    fn put_back_without_a_safety_copy_changes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let report = restored(root.path());
        fs::remove_dir_all(&report.replaced[1].1).unwrap();
        let err = put_back(&report).unwrap_err();
        assert!(err.to_string().contains("nothing was changed"), "{err}");
        assert_eq!(read(&root.path().join("data/db/CURRENT")), "restored");
        assert!(report.replaced[0].1.exists());
    }

    /// Real calls, except that the `fail_at`-th rename or exchange (from 0) fails, once.
    struct FailOnce {
        calls: std::cell::Cell<usize>,
        fail_at: usize,
    }

    impl FailOnce {
        fn tick(&self) -> std::io::Result<()> {
            let n = self.calls.get();
            self.calls.set(n + 1);
            if n == self.fail_at {
                return Err(std::io::Error::other("injected"));
            }
            Ok(())
        }
    }

    impl Fs for FailOnce {
        fn exchange(&self, a: &Path, b: &Path) -> std::io::Result<()> {
            self.tick()?;
            RealFs.exchange(a, b)
        }
        fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
            self.tick()?;
            RealFs.rename(from, to)
        }
        fn mkdir(&self, dir: &Path, mode: u32) -> std::io::Result<()> {
            RealFs.mkdir(dir, mode)
        }
        fn rmdir(&self, dir: &Path) -> std::io::Result<()> {
            RealFs.rmdir(dir)
        }
        fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
            RealFs.sync_dir(dir)
        }
    }

    #[test]
    fn put_back_that_fails_half_way_undoes_its_own_steps() {
        // Two exchanges and two renames; whichever fails, the steps before it are undone.
        for fail_at in 0..4 {
            let root = tempfile::tempdir().unwrap();
            let report = restored(root.path());
            let fs_ = FailOnce {
                calls: std::cell::Cell::new(0),
                fail_at,
            };
            let err = put_back_with(&fs_, &report).unwrap_err();
            assert!(err.to_string().contains("as the restore left it"), "{err}");
            assert_eq!(read(&root.path().join("data/db/CURRENT")), "restored");
            assert_eq!(read(&root.path().join("elsewhere/x")), "restored");
            assert_eq!(read(&report.replaced[0].1.join("db/CURRENT")), "previous");
            assert_eq!(read(&report.replaced[1].1.join("x")), "previous");
        }
    }

    #[test]
    fn the_catalog_fingerprint_leaves_the_extraction_for_its_destination_or_is_removed() {
        let root = tempfile::tempdir().unwrap();
        let archive = root.path().join("archive");
        put(&archive.join(crate::repo::manifest::CATALOG_MEMBER), "{}\n");
        put(&archive.join("users_backup.json"), "x");
        let to = root.path().join("catalog.jsonl");
        assert_eq!(take_catalog(&archive, Some(&to)).unwrap(), Some(to.clone()));
        assert_eq!(read(&to), "{}\n");
        assert!(!archive.join(crate::repo::manifest::CATALOG_MEMBER).exists());
        assert!(archive.join("users_backup.json").exists());
        assert_eq!(take_catalog(&archive, Some(&to)).unwrap(), None);
        put(&archive.join(crate::repo::manifest::CATALOG_MEMBER), "{}\n");
        assert_eq!(take_catalog(&archive, None).unwrap(), None);
        assert!(!archive.join(crate::repo::manifest::CATALOG_MEMBER).exists());
        fs::create_dir(archive.join(crate::repo::manifest::CATALOG_MEMBER)).unwrap();
        assert!(take_catalog(&archive, None).is_err());
    }

    #[test]
    fn a_confined_restore_lays_out_paths_local_alone_with_the_backups_version() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let conf = "paths.local: \"/somewhere/else\"\npaths.db: \"/other/db\"\n";
        put(&home.join("conf/dremio.conf"), conf);
        let scratch = root.path().join("scratch");
        let args = RestoreArgs {
            from: "x".into(),
            cluster: "dremio".into(),
            backup: "latest".into(),
            dremio_home: Some(home.clone()),
            paths_local: Some(scratch.clone()),
            dremio_version: None,
            replace: false,
            owner: None,
            dry_run: false,
            druid: None,
            catalog_to: None,
            confine: true,
            identity: None,
        };
        let manifest = crate::repo::manifest::tests::sample();
        let inst = installation(&args, &manifest).unwrap();
        assert_eq!(inst.paths_local, scratch);
        assert_eq!(inst.db, scratch.join("db"));
        assert!(inst.uploads.as_ref().unwrap().starts_with(&scratch));
        assert_eq!(inst.home.as_deref(), Some(home.as_path()));
        assert_eq!(
            inst.version.as_ref().unwrap().to_string(),
            plan::backup_version_text(&manifest)
        );
        let unconfined = installation(
            &RestoreArgs {
                confine: false,
                paths_local: None,
                ..args.clone()
            },
            &manifest,
        )
        .unwrap();
        assert_eq!(unconfined.db, Path::new("/other/db"));
        let err = installation(
            &RestoreArgs {
                paths_local: None,
                ..args
            },
            &manifest,
        )
        .unwrap_err();
        assert!(err.to_string().contains("paths.local"), "{err}");
    }
}
