//! Loading a logical backup: the installation's own `dremio-admin restore -d <staged backup>` runs
//! against the staged tree, through a copy of the installation's conf that points paths.local
//! there (`DREMIO_CONF_DIR`). The target is not touched until the load is complete; then the
//! staged tree is put in place like an offline restore's.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

use super::plan::Plan;
use super::stage::{Staging, State};
use crate::commands::{CommandError, Ctx};
use crate::dremio::Installation;
use crate::fsutil;

/// Runs dremio-admin into the staged tree and checks that it wrote there.
pub fn into_staging(
    ctx: &Ctx,
    plan: &Plan,
    inst: &Installation,
    staging: &mut Staging,
) -> anyhow::Result<()> {
    let home = inst.home.as_ref().expect("checked by the plan");
    let conf = staging.conf_for_loading(&home.join("conf"), plan)?;
    staging.set_state(State::Loading)?;
    let loaded = run_dremio_admin(ctx, home, &conf, &staging.archive(), staging);
    staging.set_loader(None)?;
    loaded.map_err(|why| CommandError::Refused(format!("{why}; the target was not touched")))?;
    let staged_db = staging
        .staged_parts(plan)
        .into_iter()
        .find(|(root, _)| *root == "db")
        .map(|(_, dir)| dir)
        .expect("every plan has a db");
    if fsutil::entries(&staged_db).unwrap_or_default().is_empty() {
        return Err(CommandError::Refused(format!(
            "dremio-admin restore ended well but wrote nothing into {} (does its bin/ script ignore DREMIO_CONF_DIR?); the target was not touched",
            staged_db.display()
        ))
        .into());
    }
    if let Some(owner) = plan.owner {
        fsutil::chown_tree(&staging.dir, owner).map_err(|e| {
            CommandError::Refused(format!(
                "cannot give the restored store to uid {}: {e}",
                owner.uid
            ))
        })?;
    }
    Ok(())
}

fn run_dremio_admin(
    ctx: &Ctx,
    home: &Path,
    conf: &Path,
    backup_dir: &Path,
    staging: &mut Staging,
) -> Result<(), String> {
    let tool = home.join("bin").join("dremio-admin");
    let mut child = Command::new(&tool)
        .arg("restore")
        .arg("-d")
        .arg(backup_dir)
        .env("DREMIO_HOME", home)
        .env("DREMIO_CONF_DIR", conf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    // A run killed now leaves dremio-admin running: the next run waits for it to end.
    if let Err(e) = staging.set_loader(Some(child.id())) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("cannot record the dremio-admin process: {e:#}"));
    }
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
