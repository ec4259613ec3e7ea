//! `lifeboat restore`: Dremio's documented restore procedure, automated and safe. Every check runs
//! before anything changes; the backup is extracted and verified in a staging folder beside the
//! target; only then is the old state moved aside (never deleted) and the new one moved in by
//! renames. Any failure puts the target back exactly as it was.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use serde_json::json;

use super::{CommandError, Ctx, fetch};
use crate::archive::unpack;
use crate::archive::{ArchiveError, Manifest};
use crate::dremio::lock;
use crate::dremio::{DremioError, DremioVersion, Installation};
use crate::fsutil::{self, Owner};
use crate::progress::human_bytes;
use crate::store::Repo;
use crate::store::location::Access;

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
}

/// What a restore did (or, in a dry run, would do).
#[derive(Debug, Clone)]
pub struct RestoreReport {
    pub id: String,
    pub paths_local: PathBuf,
    pub safety_copies: Vec<PathBuf>,
    pub kv_files: u64,
    pub uploaded_files: u64,
    pub security_files: u64,
    pub raw_bytes: u64,
    pub seconds: f64,
}

/// Extra room asked for beyond the backup's size (filesystem overhead, Dremio's first start).
const SPACE_MARGIN: u64 = 64 * 1024 * 1024;

fn refused(msg: String) -> anyhow::Error {
    CommandError::Refused(msg).into()
}

pub async fn run(ctx: &Ctx, args: &RestoreArgs) -> anyhow::Result<RestoreReport> {
    let started = Instant::now();
    let repo = ctx.repo(&args.from, &args.cluster, Access::Read).await?;
    let manifest = repo.manifest(&args.backup).await?;
    let inst = Installation::discover(
        args.dremio_home.as_deref(),
        args.paths_local.as_deref(),
        args.dremio_version.as_deref(),
    )?;
    let plan = Plan::check(&manifest, &inst, args)?;
    if args.dry_run {
        return Ok(print_dry_run(ctx, &manifest, &plan, started));
    }

    let staging = Staging::create(&plan.staging)?;
    let index = Arc::new(fetch::load_index(&repo, &manifest).await?);
    let read = fetch::read_archive(
        &repo,
        &manifest,
        index.clone(),
        Some(staging.path.clone()),
        1,
        ctx.progress.clone(),
    )
    .await;
    ctx.progress.finish();
    let read = read?;
    if let Some(p) = read.object_problem {
        return Err(ArchiveError::Mismatch {
            count: 1,
            first: p.clone(),
            problems: vec![p],
        }
        .into());
    }
    unpack::finish_directories(&staging.path, &index)?;
    if let Some(owner) = plan.owner {
        fsutil::chown_tree(&staging.path, owner).map_err(|e| {
            refused(format!(
                "cannot give the restored files to uid {}: {e}",
                owner.uid
            ))
        })?;
    }

    let safety_copies = if manifest.mode == "logical" {
        load_with_dremio_admin(ctx, &plan, &inst, &staging.path, &manifest.id)?
    } else {
        swap_into_place(&plan, &staging.path, &manifest.id)?
    };
    drop(staging);

    let c = &read.unpacked.counts;
    let report = RestoreReport {
        id: manifest.id.clone(),
        paths_local: inst.paths_local.clone(),
        safety_copies,
        kv_files: c.kv_files,
        uploaded_files: c.uploaded_files,
        security_files: c.security_files,
        raw_bytes: read.unpacked.raw_bytes,
        seconds: started.elapsed().as_secs_f64(),
    };
    print_report(ctx, &repo, &inst, &report);
    Ok(report)
}

/// Where each part goes, decided and checked before anything changes.
struct Plan {
    paths_local: PathBuf,
    /// (archive root, final folder) for each part the backup holds.
    parts: Vec<(&'static str, PathBuf)>,
    /// Folders to move aside first (they hold something and `--replace` was given).
    move_aside: Vec<PathBuf>,
    staging: PathBuf,
    owner: Option<Owner>,
    needed_bytes: u64,
    free_bytes: u64,
}

impl Plan {
    fn check(manifest: &Manifest, inst: &Installation, args: &RestoreArgs) -> anyhow::Result<Plan> {
        if manifest.cluster.kind != "dremio" {
            return Err(refused(format!(
                "backup {} is of a {} cluster, not Dremio",
                manifest.id, manifest.cluster.kind
            )));
        }
        if manifest.mode != "offline" && manifest.mode != "logical" {
            return Err(refused(format!(
                "backup {} is a {} backup, which this lifeboat cannot restore; use a newer lifeboat",
                manifest.id, manifest.mode
            )));
        }
        if manifest.mode == "logical" {
            check_logical_target(inst, args)?;
        }
        check_version(manifest, inst)?;
        if let Some(holder) =
            lock::holder(&inst.lock_file()).map_err(|source| DremioError::Read {
                path: inst.lock_file(),
                source,
            })?
        {
            return Err(DremioError::store_locked(inst.lock_file(), &holder).into());
        }

        let has_uploads = manifest.counts.uploaded_files > 0
            || manifest.files.iter().any(|f| f.root() == "uploads")
            || manifest.source.uploads.is_some();
        let mut parts = vec![("db", inst.db.clone()), ("security", inst.security.clone())];
        match &inst.uploads {
            Some(dir) => parts.push(("uploads", dir.clone())),
            None if has_uploads => {
                return Err(refused(format!(
                    "the backup holds uploaded files but the target's uploads live in {} (not on local disk); restore them with a target whose paths.dist is pdfs:// or file://",
                    inst.remote_uploads.as_deref().unwrap_or("a remote store")
                )));
            }
            None => {}
        }

        let local = &inst.paths_local;
        let mut move_aside = Vec::new();
        let held = fsutil::entries(local).map_err(|source| DremioError::Read {
            path: local.clone(),
            source,
        })?;
        if !held.is_empty() {
            move_aside.push(local.clone());
        }
        for (_, dest) in &parts {
            if !dest.starts_with(local)
                && !fsutil::entries(dest)
                    .map_err(|source| DremioError::Read {
                        path: dest.clone(),
                        source,
                    })?
                    .is_empty()
            {
                move_aside.push(dest.clone());
            }
        }
        if !move_aside.is_empty() && !args.replace {
            let shown: Vec<String> = held.iter().take(6).cloned().collect();
            let what = if held.is_empty() {
                String::new()
            } else {
                format!(
                    " (holds {}{})",
                    shown.join(", "),
                    if held.len() > 6 { ", ..." } else { "" }
                )
            };
            return Err(refused(format!(
                "the target is not empty: {}{what}. Dremio restores only into an empty store: pass --replace to move the current contents aside to a safety copy first (nothing is deleted)",
                move_aside
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }

        let parent = local
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let staging = parent.join(format!(".lifeboat-restore-{}", manifest.id));
        // Everything moves by rename, which cannot cross filesystems: check that up front.
        let staging_dev = fsutil::device_of(&parent).map_err(|source| DremioError::Read {
            path: parent.clone(),
            source,
        })?;
        for (_, dest) in &parts {
            let dev = fsutil::device_of(dest).map_err(|source| DremioError::Read {
                path: dest.clone(),
                source,
            })?;
            if dev != staging_dev {
                return Err(refused(format!(
                    "{} is on another filesystem than {}: lifeboat restores by atomic renames and cannot move the restored files there. Mount it at the same place as paths.local, or restore with --paths-local on that filesystem and move the folder yourself",
                    dest.display(),
                    parent.display()
                )));
            }
        }
        let free_bytes =
            fsutil::free_bytes(&fsutil::existing_ancestor(&parent)).map_err(|source| {
                DremioError::Read {
                    path: parent.clone(),
                    source,
                }
            })?;
        // A logical backup is staged and then loaded into a new store by dremio-admin: room for both.
        let factor = if manifest.mode == "logical" { 2 } else { 1 };
        let needed_bytes = manifest.raw_bytes * factor + SPACE_MARGIN;
        if free_bytes < needed_bytes {
            return Err(refused(format!(
                "not enough free disk beside {}: the backup needs {} and {} is free. Free some space or restore elsewhere with --paths-local",
                local.display(),
                human_bytes(needed_bytes),
                human_bytes(free_bytes)
            )));
        }
        let owner = pick_owner(args.owner.as_deref(), local)?;
        Ok(Plan {
            paths_local: local.clone(),
            parts,
            move_aside,
            staging,
            owner,
            needed_bytes,
            free_bytes,
        })
    }
}

fn check_version(manifest: &Manifest, inst: &Installation) -> anyhow::Result<()> {
    let target = inst.require_version()?;
    let backup_text = match &manifest.cluster.build {
        Some(b) => format!("{}-{b}", manifest.cluster.version),
        None => manifest.cluster.version.clone(),
    };
    let backup = DremioVersion::parse(&backup_text).ok_or_else(|| {
        ArchiveError::BadManifest(format!(
            "cluster.version {backup_text:?} is not a Dremio version"
        ))
    })?;
    if !backup.restorable_onto(target) {
        return Err(refused(format!(
            "backup {} was made by Dremio {backup} but the target installation is Dremio {target}. Dremio restores only onto the version that made the backup: install Dremio {} on this host, restore, start it once, then upgrade it with `dremio-admin upgrade`",
            manifest.id,
            backup.release()
        )));
    }
    Ok(())
}

/// The owner of restored files: `--owner`, or (as root) the owner of the current paths.local or its
/// parent, so that Dremio's own user can open its store.
fn pick_owner(spec: Option<&str>, local: &Path) -> anyhow::Result<Option<Owner>> {
    if let Some(spec) = spec {
        let owner =
            fsutil::parse_owner(spec).map_err(|e| CommandError::Usage(format!("--owner: {e}")))?;
        if !fsutil::is_root() {
            return Err(CommandError::Usage(
                "--owner needs root (only root can give files away)".into(),
            )
            .into());
        }
        return Ok(Some(owner));
    }
    if !fsutil::is_root() {
        return Ok(None);
    }
    let meta = fs::metadata(fsutil::existing_ancestor(local))?;
    Ok((meta.uid() != 0).then_some(Owner {
        uid: meta.uid(),
        gid: meta.gid(),
    }))
}

/// The staging folder; removed on drop, so every failure path cleans it up.
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn create(path: &Path) -> anyhow::Result<Staging> {
        if path.exists() {
            // Only a previous interrupted restore of this same backup makes this name.
            fs::remove_dir_all(path).map_err(|source| DremioError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        }
        DirBuilder::new()
            .mode(0o700)
            .create(path)
            .map_err(|source| ArchiveError::WriteTarget {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Staging {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// One step of the swap, remembered so that it can be undone.
enum Step {
    MovedAside { from: PathBuf, to: PathBuf },
    Created(PathBuf),
    MovedIn { from: PathBuf, to: PathBuf },
}

/// A logical backup is loaded by the installation's own `dremio-admin restore`, which reads
/// `conf/dremio.conf`: the target must be that installation's paths.local.
fn check_logical_target(inst: &Installation, args: &RestoreArgs) -> anyhow::Result<()> {
    let Some(home) = &inst.home else {
        return Err(CommandError::Usage("a logical backup is restored with <DREMIO_HOME>/bin/dremio-admin restore: give --dremio-home".into()).into());
    };
    if !home.join("bin").join("dremio-admin").is_file() {
        return Err(CommandError::Usage(format!(
            "no {} to load the logical backup with",
            home.join("bin/dremio-admin").display()
        ))
        .into());
    }
    if args.paths_local.is_some() {
        let conf = Installation::discover(Some(home), None, args.dremio_version.as_deref())?;
        if conf.paths_local != inst.paths_local {
            return Err(CommandError::Usage(format!(
                "dremio-admin restores into its own paths.local ({}), not into --paths-local {}: drop --paths-local or change conf/dremio.conf",
                conf.paths_local.display(),
                inst.paths_local.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// Moves the old state aside, creates an empty `db`, and runs `dremio-admin restore -d <staging>`,
/// passing its output on. If it fails, the new state is removed and the old one put back.
fn load_with_dremio_admin(
    ctx: &Ctx,
    plan: &Plan,
    inst: &Installation,
    staging: &Path,
    id: &str,
) -> anyhow::Result<Vec<PathBuf>> {
    let home = inst.home.as_ref().expect("checked before");
    let mut steps: Vec<Step> = Vec::new();
    let prepared = move_aside(plan, &mut steps).and_then(|()| {
        create_dir_recording(&inst.db, 0o755, &mut steps)?;
        match plan.owner {
            Some(owner) => fsutil::chown_tree(&plan.paths_local, owner),
            None => Ok(()),
        }
    });
    let outcome = prepared
        .map_err(|e| format!("cannot prepare an empty store ({e})"))
        .and_then(|()| run_dremio_admin(ctx, home, staging))
        .and_then(|()| match plan.owner {
            Some(owner) => fsutil::chown_tree(&plan.paths_local, owner)
                .map_err(|e| format!("cannot give the restored store to uid {}: {e}", owner.uid)),
            None => Ok(()),
        });
    if outcome.is_err() {
        // What dremio-admin wrote goes: all of a paths.local that was moved aside (it comes back),
        // or the contents of one that was empty or missing.
        if plan.move_aside.contains(&plan.paths_local) {
            let _ = fs::remove_dir_all(&plan.paths_local);
        } else {
            for sub in fsutil::entries(&plan.paths_local).unwrap_or_default() {
                let path = plan.paths_local.join(&sub);
                let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
            }
        }
    }
    settle(id, steps, outcome.err())
}

fn run_dremio_admin(ctx: &Ctx, home: &Path, staging: &Path) -> Result<(), String> {
    use std::io::BufRead;
    let tool = home.join("bin").join("dremio-admin");
    let mut child = std::process::Command::new(&tool)
        .arg("restore")
        .arg("-d")
        .arg(staging)
        .env("DREMIO_HOME", home)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    let stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    for line in std::io::BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
    {
        ctx.progress.note(&format!("dremio-admin: {line}"));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let errors = errors.join().unwrap_or_default();
    for line in &errors {
        ctx.progress.note(&format!("dremio-admin: {line}"));
    }
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "dremio-admin restore exited with {status}: {}",
            errors.last().map(String::as_str).unwrap_or("no message")
        ))
    }
}

/// Moves the old state aside and the staged one in. On failure, undoes every step in reverse.
fn swap_into_place(plan: &Plan, staging: &Path, id: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut steps: Vec<Step> = Vec::new();
    let result = move_aside(plan, &mut steps).and_then(|()| {
        if !plan.paths_local.exists() {
            create_dir_recording(&plan.paths_local, 0o755, &mut steps)?;
        }
        for (root, dest) in &plan.parts {
            let from = staging.join(root);
            if !from.exists() {
                continue;
            }
            if let Some(parent) = dest.parent() {
                create_dir_recording(parent, 0o755, &mut steps)?;
            }
            // rename(2) replaces an empty folder and refuses a non-empty one: nothing can be overwritten.
            fs::rename(&from, dest)?;
            steps.push(Step::MovedIn {
                from,
                to: dest.clone(),
            });
        }
        Ok(())
    });
    settle(
        id,
        steps,
        result
            .err()
            .map(|e| format!("moving files into place ({e})")),
    )
}

/// Renames every folder of the plan's `move_aside` to `<name>.before-restore-<stamp>`, recording each.
fn move_aside(plan: &Plan, steps: &mut Vec<Step>) -> std::io::Result<()> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    for dir in &plan.move_aside {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "target".into());
        let to = dir.with_file_name(format!("{name}.before-restore-{stamp}"));
        fs::rename(dir, &to)?;
        steps.push(Step::MovedAside {
            from: dir.clone(),
            to,
        });
    }
    Ok(())
}

/// On success, the safety copies made; on failure, every step undone and an error that says whether
/// the target is back as it was.
fn settle(id: &str, steps: Vec<Step>, failure: Option<String>) -> anyhow::Result<Vec<PathBuf>> {
    if let Some(why) = failure {
        let undo_problems = undo(steps);
        let msg = if undo_problems.is_empty() {
            format!("restore of {id} failed: {why}; the target was put back as it was")
        } else {
            format!(
                "restore of {id} failed: {why} AND could not put everything back: {}",
                undo_problems.join("; ")
            )
        };
        return Err(CommandError::Refused(msg).into());
    }
    Ok(steps
        .into_iter()
        .filter_map(|s| match s {
            Step::MovedAside { to, .. } => Some(to),
            _ => None,
        })
        .collect())
}

/// Creates `dir` and any missing parents, recording the topmost one created.
fn create_dir_recording(dir: &Path, mode: u32, steps: &mut Vec<Step>) -> std::io::Result<()> {
    let top = fsutil::existing_ancestor(dir);
    if top == dir {
        return Ok(());
    }
    let first_new = dir
        .ancestors()
        .find(|a| a.parent() == Some(top.as_path()))
        .unwrap_or(dir)
        .to_path_buf();
    DirBuilder::new().recursive(true).mode(mode).create(dir)?;
    steps.push(Step::Created(first_new));
    Ok(())
}

fn undo(steps: Vec<Step>) -> Vec<String> {
    let mut problems = Vec::new();
    for step in steps.into_iter().rev() {
        let r = match &step {
            Step::MovedIn { from, to } => fs::rename(to, from),
            Step::Created(dir) => fs::remove_dir_all(dir),
            Step::MovedAside { from, to } => fs::rename(to, from),
        };
        if let Err(e) = r.or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        }) {
            let what = match step {
                Step::MovedIn { to, .. } => to,
                Step::Created(d) => d,
                Step::MovedAside { to, .. } => to,
            };
            problems.push(format!("{}: {e}", what.display()));
        }
    }
    problems
}

fn print_dry_run(ctx: &Ctx, manifest: &Manifest, plan: &Plan, started: Instant) -> RestoreReport {
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
