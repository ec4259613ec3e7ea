//! Loading a logical backup: the installation's own `dremio-admin restore -d <staged backup>` runs
//! against an empty store that was put in place like any restored folder, so that its failure (or
//! a crash while it runs) puts the previous state back.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::plan::Plan;
use super::stage::Staging;
use crate::commands::Ctx;
use crate::dremio::Installation;
use crate::fsutil::{
    self,
    txn::{RealFs, Txn},
};

/// Puts an empty store in place, runs dremio-admin into it, and undoes everything if it fails.
pub fn swap_and_load(
    ctx: &Ctx,
    plan: &Plan,
    inst: &Installation,
    staging: &mut Staging,
    mut txn: Txn<'_, RealFs>,
) -> anyhow::Result<Vec<PathBuf>> {
    let home = inst.home.as_ref().expect("checked by the plan");
    let loaded = staging
        .swap_in(&mut txn)
        .map_err(|e| format!("cannot put an empty store in place ({e})"))
        .and_then(|kept| {
            run_dremio_admin(ctx, home, &staging.archive())?;
            Ok(kept)
        })
        .and_then(|kept| match plan.owner {
            Some(owner) => fsutil::chown_tree(&plan.paths_local, owner)
                .map(|()| kept)
                .map_err(|e| format!("cannot give the restored store to uid {}: {e}", owner.uid)),
            None => Ok(kept),
        })
        .and_then(|kept| {
            // dremio-admin's writes reach the disk before the restore says it is done.
            fsutil::sync_filesystem(&plan.paths_local)
                .map(|()| kept)
                .map_err(|e| format!("cannot flush {}: {e}", plan.paths_local.display()))
        });
    // On failure the rollback brings the staged tree back into the staging folder, with whatever
    // dremio-admin wrote into it, and the staging folder goes with it.
    super::settle(staging, txn, loaded)
}

fn run_dremio_admin(ctx: &Ctx, home: &Path, backup_dir: &Path) -> Result<(), String> {
    let tool = home.join("bin").join("dremio-admin");
    let mut child = Command::new(&tool)
        .arg("restore")
        .arg("-d")
        .arg(backup_dir)
        .env("DREMIO_HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
