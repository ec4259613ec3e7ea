//! Everything a restore checks before it changes anything, and the decisions it takes from that:
//! where each part of the backup goes, what must be kept aside, where the staging folder lives.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::RestoreArgs;
use crate::archive::ArchiveError;
use crate::commands::CommandError;
use crate::dremio::lock;
use crate::dremio::{DremioError, DremioVersion, Installation};
use crate::fsutil::{self, Owner};
use crate::repo::Manifest;
use crate::units::human_bytes;

/// Extra room asked for beyond the backup's size (filesystem overhead, Dremio's first start).
const SPACE_MARGIN: u64 = 64 * 1024 * 1024;

/// Where each part goes, decided and checked before anything changes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub paths_local: PathBuf,
    /// (archive root, final folder) for each part the backup holds.
    pub parts: Vec<(&'static str, PathBuf)>,
    /// Folders that hold something now and will be kept aside (`--replace` was given).
    pub move_aside: Vec<PathBuf>,
    /// The folder that holds paths.local: staging goes there, so that every move is a rename.
    pub parent: PathBuf,
    pub owner: Option<Owner>,
    pub needed_bytes: u64,
    pub free_bytes: u64,
    /// Every destination lies beneath paths.local (`RestoreArgs::confine`): dremio-admin's conf
    /// points everything there too.
    pub confine: bool,
}

fn refused(msg: String) -> anyhow::Error {
    CommandError::Refused(msg).into()
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> DremioError + '_ {
    move |source| DremioError::Read {
        path: path.to_path_buf(),
        source,
    }
}

impl Plan {
    pub fn check(
        manifest: &Manifest,
        inst: &Installation,
        args: &RestoreArgs,
    ) -> anyhow::Result<Plan> {
        check_kind(manifest)?;
        if manifest.mode == "logical" {
            check_logical_target(inst, args)?;
        }
        check_version(manifest, inst)?;
        check_not_in_use(inst)?;
        let parts = parts_of(manifest, inst)?;
        let local = &inst.paths_local;
        if args.confine {
            check_confined(local, &parts)?;
        }
        let move_aside = occupied(local, &parts)?;
        if !move_aside.is_empty() && !args.replace {
            return Err(not_empty(local, &move_aside)?);
        }
        let parent = local
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        check_one_filesystem(&parent, &parts)?;
        let free_bytes =
            fsutil::free_bytes(&fsutil::existing_ancestor(&parent)).map_err(read_err(&parent))?;
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
            parent,
            owner,
            needed_bytes,
            free_bytes,
            confine: args.confine,
        })
    }

    /// The parts whose final folder is not inside paths.local (each is put in place on its own).
    pub fn outside_parts(&self) -> impl Iterator<Item = &(&'static str, PathBuf)> {
        self.parts
            .iter()
            .filter(|(_, dest)| !dest.starts_with(&self.paths_local))
    }
}

fn check_kind(manifest: &Manifest) -> anyhow::Result<()> {
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
    Ok(())
}

/// A confined restore (a drill's scratch copy) writes nothing outside paths.local.
fn check_confined(local: &Path, parts: &[(&'static str, PathBuf)]) -> anyhow::Result<()> {
    for (root, dest) in parts {
        if !dest.starts_with(local) {
            return Err(refused(format!(
                "a confined restore writes only beneath {}, but the backup's {root}/ would go to {}: restore into a scratch paths.local laid out with Dremio's defaults",
                local.display(),
                dest.display()
            )));
        }
    }
    Ok(())
}

/// A coordinator that has the target's store open would have it changed under its feet.
pub fn check_not_in_use(inst: &Installation) -> anyhow::Result<()> {
    let lock_file = inst.lock_file();
    if let Some(holder) = lock::holder(&lock_file).map_err(read_err(&lock_file))? {
        return Err(DremioError::TargetInUse {
            lock: lock_file,
            paths_local: inst.paths_local.clone(),
            pid: holder.pid,
        }
        .into());
    }
    Ok(())
}

fn parts_of(
    manifest: &Manifest,
    inst: &Installation,
) -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
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
    Ok(parts)
}

/// The folders that hold something now: paths.local itself, and parts that live outside it.
fn occupied(local: &Path, parts: &[(&'static str, PathBuf)]) -> anyhow::Result<Vec<PathBuf>> {
    let mut held = Vec::new();
    if !fsutil::entries(local).map_err(read_err(local))?.is_empty() {
        held.push(local.to_path_buf());
    }
    for (_, dest) in parts {
        if !dest.starts_with(local) && !fsutil::entries(dest).map_err(read_err(dest))?.is_empty() {
            held.push(dest.clone());
        }
    }
    Ok(held)
}

fn not_empty(local: &Path, move_aside: &[PathBuf]) -> anyhow::Result<anyhow::Error> {
    let held = fsutil::entries(local).map_err(read_err(local))?;
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
    Ok(refused(format!(
        "the target is not empty: {}{what}. Dremio restores only into an empty store: pass --replace to move the current contents aside to a safety copy first (nothing is deleted)",
        move_aside
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// Everything moves by rename, which cannot cross filesystems: check that up front.
fn check_one_filesystem(parent: &Path, parts: &[(&'static str, PathBuf)]) -> anyhow::Result<()> {
    let staging_dev = fsutil::device_of(parent).map_err(read_err(parent))?;
    for (_, dest) in parts {
        let dev = fsutil::device_of(dest).map_err(read_err(dest))?;
        if dev != staging_dev {
            return Err(refused(format!(
                "{} is on another filesystem than {}: lifeboat restores by atomic renames and cannot move the restored files there. Mount it at the same place as paths.local, or restore with --paths-local on that filesystem and move the folder yourself",
                dest.display(),
                parent.display()
            )));
        }
    }
    Ok(())
}

/// The Dremio version that made the backup, as text (`25.2.0` or `25.2.0-<build>`).
pub(super) fn backup_version_text(manifest: &Manifest) -> String {
    match &manifest.cluster.build {
        Some(b) => format!("{}-{b}", manifest.cluster.version),
        None => manifest.cluster.version.clone(),
    }
}

fn check_version(manifest: &Manifest, inst: &Installation) -> anyhow::Result<()> {
    let target = inst.require_version()?;
    let backup_text = backup_version_text(manifest);
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
    // A confined restore points every path of dremio-admin's conf at the staged tree itself.
    if args.paths_local.is_some() && !args.confine {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::manifest::tests::sample;

    fn args(replace: bool) -> RestoreArgs {
        RestoreArgs {
            from: "memory://bucket/p".into(),
            cluster: "dremio".into(),
            backup: "latest".into(),
            dremio_home: None,
            paths_local: None,
            dremio_version: Some("25.2.0".into()),
            replace,
            owner: None,
            dry_run: false,
            druid: None,
            catalog_to: None,
            confine: false,
            identity: None,
        }
    }

    /// A target paths.local in a new temporary folder, holding `files` (relative paths).
    fn target(files: &[&str]) -> (tempfile::TempDir, Installation) {
        let root = tempfile::tempdir().unwrap();
        let local = root.path().join("dremio");
        fs::create_dir(&local).unwrap();
        for f in files {
            let path = local.join(f);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"x").unwrap();
        }
        let inst = Installation::discover(None, Some(&local), Some("25.2.0")).unwrap();
        (root, inst)
    }

    fn refusal(result: anyhow::Result<Plan>) -> String {
        let err = result.expect_err("refused");
        assert!(
            matches!(err.downcast_ref(), Some(CommandError::Refused(_))),
            "{err:#}"
        );
        err.to_string()
    }

    #[test]
    fn an_empty_target_takes_every_part_in_place_and_keeps_nothing_aside() {
        let (root, inst) = target(&[]);
        let plan = Plan::check(&sample(), &inst, &args(false)).unwrap();
        assert!(plan.move_aside.is_empty());
        assert_eq!(plan.parent, root.path());
        let roots: Vec<&str> = plan.parts.iter().map(|(r, _)| *r).collect();
        assert_eq!(roots, ["db", "security", "uploads"]);
        assert_eq!(plan.parts[0].1, inst.db);
        assert_eq!(plan.outside_parts().count(), 0);
        assert_eq!(plan.needed_bytes, SPACE_MARGIN);
    }

    #[test]
    fn a_target_that_holds_something_is_kept_aside_only_with_replace() {
        let (_root, inst) = target(&["db/catalog/CURRENT", "security/key"]);
        let why = refusal(Plan::check(&sample(), &inst, &args(false)));
        assert!(why.contains("the target is not empty"), "{why}");
        assert!(why.contains("holds db, security"), "{why}");
        assert!(why.contains("--replace"), "{why}");
        let plan = Plan::check(&sample(), &inst, &args(true)).unwrap();
        assert_eq!(plan.move_aside, std::slice::from_ref(&inst.paths_local));
    }

    #[test]
    fn a_part_that_lives_outside_paths_local_is_put_in_place_and_kept_aside_on_its_own() {
        let root = tempfile::tempdir().unwrap();
        let (home, local, db) = (
            root.path().join("home"),
            root.path().join("local"),
            root.path().join("elsewhere/db"),
        );
        fs::create_dir_all(home.join("conf")).unwrap();
        fs::create_dir_all(&local).unwrap();
        fs::create_dir_all(&db).unwrap();
        fs::write(db.join("CURRENT"), b"x").unwrap();
        let conf = format!(
            "paths.local: \"{}\"\npaths.db: \"{}\"\n",
            local.display(),
            db.display()
        );
        fs::write(home.join("conf/dremio.conf"), conf).unwrap();
        let inst = Installation::discover(Some(&home), None, Some("25.2.0")).unwrap();
        let plan = Plan::check(&sample(), &inst, &args(true)).unwrap();
        let outside: Vec<_> = plan.outside_parts().cloned().collect();
        assert_eq!(outside, [("db", db.clone())]);
        assert_eq!(plan.move_aside, [db]);
    }

    #[test]
    fn a_backup_of_another_version_kind_or_mode_is_refused() {
        let (_root, inst) = target(&[]);
        let mut older = sample();
        older.cluster.version = "25.1.0".into();
        let why = refusal(Plan::check(&older, &inst, &args(false)));
        assert!(why.contains("install Dremio 25.1.0 on this host"), "{why}");
        let mut druid = sample();
        druid.cluster.kind = "druid".into();
        let why = refusal(Plan::check(&druid, &inst, &args(false)));
        assert!(why.contains("of a druid cluster, not Dremio"), "{why}");
        let mut newer = sample();
        newer.mode = "incremental".into();
        let why = refusal(Plan::check(&newer, &inst, &args(false)));
        assert!(why.contains("use a newer lifeboat"), "{why}");
    }

    #[test]
    fn a_backup_larger_than_the_free_disk_is_refused_before_anything_changes() {
        let (_root, inst) = target(&[]);
        let mut huge = sample();
        huge.raw_bytes = u64::MAX / 4;
        let why = refusal(Plan::check(&huge, &inst, &args(false)));
        assert!(why.contains("not enough free disk"), "{why}");
        assert_eq!(fsutil::entries(&inst.paths_local).unwrap().len(), 0);
    }

    #[test]
    fn a_confined_restore_refuses_a_destination_outside_paths_local() {
        let root = tempfile::tempdir().unwrap();
        let (home, local, db) = (
            root.path().join("home"),
            root.path().join("local"),
            root.path().join("elsewhere/db"),
        );
        fs::create_dir_all(home.join("conf")).unwrap();
        fs::create_dir_all(&local).unwrap();
        fs::create_dir_all(&db).unwrap();
        let conf = format!(
            "paths.local: \"{}\"\npaths.db: \"{}\"\n",
            local.display(),
            db.display()
        );
        fs::write(home.join("conf/dremio.conf"), conf).unwrap();
        let inst = Installation::discover(Some(&home), None, Some("25.2.0")).unwrap();
        let confined = RestoreArgs {
            confine: true,
            ..args(false)
        };
        let why = refusal(Plan::check(&sample(), &inst, &confined));
        assert!(
            why.contains("a confined restore writes only beneath"),
            "{why}"
        );
        assert!(why.contains("db/ would go to"), "{why}");
        let (_root, inside) = target(&[]);
        let plan = Plan::check(&sample(), &inside, &confined).unwrap();
        assert!(plan.confine);
    }

    #[test]
    fn uploads_cannot_be_restored_into_a_remote_uploads_store() {
        let root = tempfile::tempdir().unwrap();
        let (home, local) = (root.path().join("home"), root.path().join("local"));
        fs::create_dir_all(home.join("conf")).unwrap();
        fs::create_dir_all(&local).unwrap();
        let conf = format!(
            "paths.local: \"{}\"\npaths.dist: \"s3://bucket/dist\"\n",
            local.display()
        );
        fs::write(home.join("conf/dremio.conf"), conf).unwrap();
        let inst = Installation::discover(Some(&home), None, Some("25.2.0")).unwrap();
        let mut with_uploads = sample();
        with_uploads.counts.uploaded_files = 1;
        let why = refusal(Plan::check(&with_uploads, &inst, &args(false)));
        assert!(why.contains("s3://bucket/dist/uploads"), "{why}");
        let plan = Plan::check(&sample(), &inst, &args(false)).unwrap();
        let roots: Vec<&str> = plan.parts.iter().map(|(r, _)| *r).collect();
        assert_eq!(roots, ["db", "security"]);
    }
}
