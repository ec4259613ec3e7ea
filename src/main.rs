//! The lifeboat binary: parses flags, runs one command, and maps failures to exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use clap::Parser;

use lifeboat::cli::{Cli, Command, ProgressMode};
use lifeboat::commands::{self, Ctx, backup::BackupArgs, restore::RestoreArgs};
use lifeboat::error::classify;
use lifeboat::progress::{Bars, Lines, Progress, Silent};
use lifeboat::store::upload::INTERRUPTED;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let progress: Arc<dyn Progress> = match cli.progress {
        ProgressMode::None => Arc::new(Silent),
        ProgressMode::Bars => Arc::new(Bars::new()),
        ProgressMode::Lines => Arc::new(Lines::new(cli.json)),
        ProgressMode::Auto if std::io::stderr().is_terminal() && !cli.json => Arc::new(Bars::new()),
        ProgressMode::Auto => Arc::new(Lines::new(cli.json)),
    };
    let ctx = Ctx {
        json: cli.json,
        progress,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        tokio::spawn(watch_signals());
        run(&ctx, cli.command).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let class = classify(&err);
            if ctx.json {
                println!(
                    "{}",
                    serde_json::json!({"error": format!("{err:#}"), "class": class.to_string(), "exit_code": class.code()})
                );
            }
            eprintln!("error: {err:#}");
            ExitCode::from(class.code())
        }
    }
}

/// SIGINT/SIGTERM stop the pipeline at its next chunk: uploads abort, restores roll back.
async fn watch_signals() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("lifeboat: signal received, stopping (nothing half-done is kept)");
    INTERRUPTED.store(true, Ordering::Relaxed);
}

async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Backup(c) => {
            let args = BackupArgs {
                dremio_home: c.target.dremio_home,
                paths_local: c.target.paths_local,
                dremio_version: c.target.dremio_version,
                to: c.to,
                cluster: c.cluster,
                level: c.level,
                threads: c.threads.unwrap_or_else(|| {
                    std::thread::available_parallelism()
                        .map(|n| n.get() as u32)
                        .unwrap_or(1)
                }),
                parts_in_flight: c.parts_in_flight,
            };
            commands::backup::run(ctx, &args).await.map(|_| ())
        }
        Command::List(c) => commands::list::run(ctx, &c.from.from, &c.from.cluster).await,
        Command::Verify(c) => {
            commands::verify::run(ctx, &c.from.from, &c.from.cluster, &c.backup).await
        }
        Command::Restore(c) => {
            let args = RestoreArgs {
                from: c.from.from,
                cluster: c.from.cluster,
                backup: c.backup,
                dremio_home: c.target.dremio_home,
                paths_local: c.target.paths_local,
                dremio_version: c.target.dremio_version,
                replace: c.replace,
                owner: c.owner,
                dry_run: c.dry_run,
            };
            commands::restore::run(ctx, &args).await.map(|_| ())
        }
        Command::Demo(c) => commands::demo::run(ctx, c.dir, c.size_mib).await,
    }
}
