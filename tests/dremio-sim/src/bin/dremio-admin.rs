//! `dremio-admin` of the simulator: `backup` (over REST) and `restore` (offline).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use dremio_sim::client::Session;

#[derive(Parser, Debug)]
#[command(name = "dremio-admin", about = "dremio-admin of the Dremio simulator")]
struct Cli {
    /// paths.local of the node.
    #[arg(long, global = true)]
    paths_local: Option<PathBuf>,
    /// Base URL of the running coordinator (backup).
    #[arg(long, global = true, default_value = "http://127.0.0.1:9047")]
    url: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Logical backup through the running coordinator's REST API.
    Backup {
        #[arg(short = 'd', long = "backupdir")]
        backupdir: String,
        #[arg(short = 'u', long = "user")]
        user: Option<String>,
        #[arg(short = 'p', long = "password")]
        password: Option<String>,
        #[arg(short = 'j', long = "json")]
        json: bool,
        #[arg(short = 'i', long = "include-profiles")]
        include_profiles: bool,
        #[arg(short = 'l', long = "local-attach")]
        local_attach: bool,
        #[arg(short = 'a', long = "accept-all")]
        accept_all: bool,
    },
    /// Restore a backup into an empty paths.db (coordinator stopped).
    Restore {
        #[arg(short = 'd', long = "backupdir")]
        backupdir: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<()> {
    let paths_local = cli
        .paths_local
        .context("--paths-local is required (set by DREMIO_HOME/bin/dremio-admin)")?;
    match cli.cmd {
        Cmd::Backup {
            backupdir,
            user,
            password,
            json,
            include_profiles,
            local_attach,
            accept_all: _,
        } => {
            if local_attach {
                bail!("--local-attach is not supported by the simulator");
            }
            let user = user.context("-u/--user is required (no prompt in the simulator)")?;
            let password =
                password.context("-p/--password is required (no prompt in the simulator)")?;
            let dir = if backupdir.contains("://") {
                backupdir
            } else {
                let p = Path::new(&backupdir);
                let abs = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    std::env::current_dir()?.join(p)
                };
                format!("file://{}", abs.display())
            };
            let s = Session::login(&cli.url, &user, &password)?;
            let body = serde_json::json!({
                "backupDir": dir, "binary": !json, "includeProfiles": include_profiles,
                "compression": "", "table": "", "key": ""
            });
            let r = s.call("POST", "/apiv2/backup", Some(&body.to_string()))?;
            if r.status != 200 {
                let v = r.json();
                let msg = v["errorMessage"].as_str().unwrap_or(&r.body).to_string();
                bail!("Backup failed: {} {msg}", r.status);
            }
            let v = r.json();
            println!(
                "Backup created at {}, dremio tables {}, files {}",
                v["backupPath"].as_str().unwrap_or_default(),
                v["tables"],
                v["files"]
            );
            Ok(())
        }
        Cmd::Restore { backupdir } => {
            let db = paths_local.join("db");
            let non_empty = db.is_dir()
                && std::fs::read_dir(&db)
                    .with_context(|| format!("reading {}", db.display()))?
                    .next()
                    .is_some();
            if non_empty || (db.exists() && !db.is_dir()) {
                bail!("Path {} must be an empty directory.", db.display());
            }
            std::fs::create_dir_all(&db)?;
            match dremio_sim::backup::restore(&paths_local, &backupdir) {
                Ok((tables, files)) => {
                    println!(
                        "Restored from backup at {}, {tables} dremio tables, {files} files.",
                        backupdir.display()
                    );
                    Ok(())
                }
                Err(e) => {
                    eprintln!("{e:#}");
                    bail!(
                        "Restore failed. Please make sure the backup is compatible with this version."
                    )
                }
            }
        }
    }
}
