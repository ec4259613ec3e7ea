//! The lifeboat binary: parses flags, runs one command, and maps failures to exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use lifeboat::cli::{Cli, Command, ProgressMode};
use lifeboat::commands::{self, CommandError, Ctx, backup::BackupArgs, restore::RestoreArgs};
use lifeboat::commands::{copy::CopyArgs, prune::PruneArgs, status::StatusArgs};
use lifeboat::config::Config;
use lifeboat::config::resolve::{self, Installation, cluster, copies, location};
use lifeboat::dremio::rest::Tls;
use lifeboat::error::ExitClass;
use lifeboat::progress::{Bars, Lines, NotesOnly, Progress};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    bound_malloc_arenas();
    let cli = Cli::parse();
    let progress: Arc<dyn Progress> = match cli.progress {
        ProgressMode::None => Arc::new(NotesOnly),
        ProgressMode::Bars => Arc::new(Bars::new()),
        ProgressMode::Lines => Arc::new(Lines::new(cli.json)),
        ProgressMode::Auto if std::io::stderr().is_terminal() && !cli.json => Arc::new(Bars::new()),
        ProgressMode::Auto => Arc::new(Lines::new(cli.json)),
    };
    lifeboat::store::retries::install(progress.clone());
    let config = match &cli.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(ExitClass::Usage.code());
            }
        },
        None => Config::default(),
    };
    let ctx = Ctx::new(cli.json, progress, config);
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
        tokio::spawn(watch_signals(ctx.cancel.clone()));
        run(&ctx, cli.command).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let class = commands::class_of(&err);
            let reported = err
                .downcast_ref::<CommandError>()
                .is_some_and(|e| matches!(e, CommandError::Reported { .. }));
            if ctx.json && !reported {
                lifeboat::output::line(&format!(
                    "{}",
                    serde_json::json!({"error": format!("{err:#}"), "class": class.to_string(), "exit_code": class.code()})
                ));
            }
            eprintln!("error: {err:#}");
            ExitCode::from(class.code())
        }
    }
}

/// SIGINT/SIGTERM stop the pipeline at its next chunk: uploads abort, restores roll back.
async fn watch_signals(cancel: CancellationToken) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("lifeboat: signal received, stopping (nothing half-done is kept)");
    cancel.cancel();
}

/// The installation flags, completed from the cluster's config.
fn installation(
    flags: lifeboat::cli::Target,
    cc: &lifeboat::config::ClusterConfig,
) -> Installation {
    let flags = Installation {
        dremio_home: flags.dremio_home,
        paths_local: flags.paths_local,
        dremio_version: flags.dremio_version,
    };
    resolve::installation(flags, cc)
}

async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    let config = ctx.config.clone();
    match command {
        Command::Backup(c) => {
            let (name, cc) = cluster(&config, c.cluster)?;
            let inst = installation(c.target, &cc);
            let metadata = resolve::druid_metadata(c.druid.druid_metadata, &cc);
            let druid = match resolve::is_druid(&metadata, &cc) {
                false => None,
                true => Some(commands::backup::druid::DruidBackupArgs {
                    metadata: meta_config(
                        metadata,
                        resolve::metadata_ca_file(c.druid.druid_metadata_ca_file, &cc),
                        &cc,
                        "lifeboat-backup",
                    )?,
                    urls: resolve::druid_urls(c.druid.druid_urls, &cc),
                }),
            };
            let args = BackupArgs {
                dremio_home: inst.dremio_home,
                paths_local: inst.paths_local,
                dremio_version: inst.dremio_version,
                to: location(c.to, &cc, "--to")?,
                copy_to: copies(c.copy_to, &cc),
                cluster: name,
                level: resolve::level(c.level, &cc),
                threads: resolve::threads(c.threads),
                parts_in_flight: c.parts_in_flight,
                create_location: c.create_location,
                wait_lock: c.run.wait_lock,
                metrics_file: c.run.metrics_file,
                dremio_urls: resolve::dremio_urls(c.online.dremio_urls, &cc),
                staging: c.online.staging.or(cc.staging.clone()),
                tls: Tls {
                    ca_file: c.online.ca_file.or(cc.ca_file.clone()),
                    insecure: c.online.insecure,
                },
                druid,
                shape: commands::backup::BackupShape {
                    format: resolve::format(c.shape.format, &cc),
                    full: c.shape.full,
                    encrypt_to: resolve::recipients(&c.shape.encrypt_to, &cc)?
                        .map(|r| r.strings())
                        .unwrap_or_default(),
                    identity: c.shape.identity,
                },
            };
            commands::backup::run(ctx, &args).await.map(|_| ())
        }
        Command::List(c) => {
            let (name, cc) = cluster(&config, c.from.cluster)?;
            commands::list::run(ctx, &location(c.from.from, &cc, "--from")?, &name).await
        }
        Command::Verify(c) => {
            let (name, cc) = cluster(&config, c.from.cluster)?;
            let deep = c.deep_storage.then(|| commands::verify::DeepStorage {
                map: c.deep_storage_map,
                roots: if c.deep_storage_roots.is_empty() {
                    cc.deep_storage.clone()
                } else {
                    c.deep_storage_roots
                },
                staging: c.staging,
            });
            commands::verify::run_with(
                ctx,
                &location(c.from.from, &cc, "--from")?,
                &name,
                &c.backup,
                &commands::verify::Options {
                    deep: deep.as_ref(),
                    identity: c.identity.as_deref(),
                    read_data_subset: c.read_data_subset,
                },
            )
            .await
        }
        Command::Restore(c) => {
            let (name, cc) = cluster(&config, c.from.cluster)?;
            let inst = installation(c.target, &cc);
            let args = RestoreArgs {
                from: location(c.from.from, &cc, "--from")?,
                cluster: name,
                backup: c.backup,
                dremio_home: inst.dremio_home,
                paths_local: inst.paths_local,
                dremio_version: inst.dremio_version,
                replace: c.replace,
                owner: c.owner,
                dry_run: c.dry_run,
                druid: match c.druid.druid_metadata {
                    None => None,
                    metadata => Some(commands::restore::druid::DruidRestoreArgs {
                        metadata: meta_config(
                            metadata,
                            resolve::metadata_ca_file(c.druid.druid_metadata_ca_file, &cc),
                            &cc,
                            "lifeboat-restore",
                        )?,
                        urls: c.druid.druid_urls,
                        map: resolve::deep_storage_map(c.druid.deep_storage_map, &cc),
                        resume_supervisors: c.druid.resume_supervisors,
                        strict: c.druid.strict,
                        staging: c.druid.staging,
                    }),
                },
                catalog_to: None,
                confine: false,
                identity: c.identity,
            };
            commands::restore::run(ctx, &args).await.map(|_| ())
        }
        Command::Copy(c) => {
            let (name, cc) = cluster(&config, c.from.cluster)?;
            let args = CopyArgs {
                from: location(c.from.from, &cc, "--from")?,
                to: c.to,
                cluster: name,
                backup: c.backup,
                wait_lock: c.run.wait_lock,
                metrics_file: c.run.metrics_file,
                create_location: c.create_location,
            };
            commands::copy::run(ctx, &args).await
        }
        Command::Prune(c) => {
            let (name, cc) = cluster(&config, c.from.cluster)?;
            let args = PruneArgs {
                from: location(c.from.from, &cc, "--from")?,
                cluster: name,
                keep_last: c.keep_last,
                keep_hourly: c.keep_hourly,
                keep_daily: c.keep_daily,
                keep_weekly: c.keep_weekly,
                keep_monthly: c.keep_monthly,
                keep_within: c.keep_within,
                grace: c.grace,
                dry_run: c.dry_run,
                wait_lock: c.run.wait_lock,
                metrics_file: c.run.metrics_file,
            };
            commands::prune::run(ctx, &args).await
        }
        Command::Status(c) => {
            let (name, cc) = cluster(&config, c.from.cluster)?;
            let rpo = resolve::rpo(c.rpo, &cc)?;
            let args = StatusArgs {
                from: location(c.from.from, &cc, "--from")?,
                copies: copies(c.copy_to, &cc),
                cluster: name,
                rpo,
                metrics_file: c.metrics_file,
            };
            commands::status::run(ctx, &args).await
        }
        Command::Clone(c) => run_clone(ctx, c).await,
        Command::Doctor(c) => run_doctor(ctx, c).await,
        Command::DoctorLockHolder(c) => Ok(lifeboat::doctor::lock::hold(&c.file)?),
        Command::Drill(c) => run_drill(ctx, c).await,
        Command::Standby(lifeboat::cli::StandbyCmd::Refresh(c)) => run_refresh(ctx, c).await,
        Command::Failover(c) => run_failover(ctx, c).await,
        Command::Demo(c) => commands::demo::run(ctx, c.dir, c.size_mib).await,
        Command::Completions(c) => print_text(&lifeboat::cli::completions(c.shell)),
        Command::Man(c) => match c.dir {
            Some(dir) => lifeboat::cli::man_pages_to(&dir).map_err(|e| {
                CommandError::Usage(format!(
                    "cannot write the man pages into {}: {e}",
                    dir.display()
                ))
                .into()
            }),
            None => print_text(&lifeboat::cli::man_page()?),
        },
    }
}

/// `drill`: the cluster's settings, else its standby's (where drills often run).
async fn run_drill(ctx: &Ctx, c: lifeboat::cli::DrillCmd) -> anyhow::Result<()> {
    use commands::dr::{self, drill::DrillArgs};
    let (name, cc) = cluster(&ctx.config, c.cluster)?;
    let standby = resolve::standby_of(&ctx.config, &name);
    let sc = standby.as_ref().map(|(_, s)| s);
    let drill_start = resolve::drill_start(c.drill_start, &cc, sc).ok_or_else(|| {
        CommandError::Usage(format!(
            "a drill needs the command that runs a coordinator on its scratch copy in the foreground: set clusters.{name}.drill_start (with {{paths_local}} and {{port}}, e.g. \"{{home}}/bin/dremio start-fg\" on a conf that uses them), or pass --drill-start"
        ))
    })?;
    let args = DrillArgs {
        from: location(c.from, &cc, "--from")?,
        backup: c.backup,
        scratch: c.scratch,
        drill_start,
        drill_stop: resolve::drill_stop(&cc, sc),
        dremio_home: resolve::drill_home(c.dremio_home, &cc, sc),
        expect_tree: c.expect_tree,
        clone_tree: resolve::clone_tree(&cc, sc),
        keep_scratch: c.keep_scratch,
        common: dr::Common {
            start_timeout: resolve::start_timeout(
                c.dr.start_timeout,
                &cc,
                dr::DEFAULT_START_TIMEOUT,
            )?,
            rto: resolve::rto(&cc, None)?,
            rpo: resolve::rpo(None, &cc)?,
            metrics_file: c.dr.metrics_file,
            tls: Tls::default(),
        },
        cluster: name,
    };
    dr::drill::run(ctx, &args).await
}

/// What `standby refresh` and `failover` share: the pair, its targets and TLS.
fn dr_common(
    pair: &commands::dr::Pair,
    opts: lifeboat::cli::DrOpts,
) -> anyhow::Result<commands::dr::Common> {
    Ok(commands::dr::Common {
        start_timeout: resolve::start_timeout(
            opts.start_timeout,
            &pair.cc,
            commands::dr::DEFAULT_START_TIMEOUT,
        )?,
        rto: resolve::rto(&pair.cc, Some(&pair.pcc))?,
        rpo: match resolve::rpo(None, &pair.cc)? {
            Some(r) => Some(r),
            None => resolve::rpo(None, &pair.pcc)?,
        },
        metrics_file: opts.metrics_file,
        tls: Tls {
            ca_file: pair.cc.ca_file.clone().or(pair.pcc.ca_file.clone()),
            insecure: false,
        },
    })
}

async fn run_refresh(ctx: &Ctx, c: lifeboat::cli::StandbyRefreshCmd) -> anyhow::Result<()> {
    use commands::dr::standby::{RefreshArgs, refresh};
    let pair = commands::dr::pair(&ctx.config, c.cluster.as_deref())?;
    let args = RefreshArgs {
        common: dr_common(&pair, c.dr)?,
        pair,
        dry_run: c.dry_run,
        wait_lock: c.wait_lock,
    };
    refresh(ctx, &args).await
}

async fn run_failover(ctx: &Ctx, c: lifeboat::cli::FailoverCmd) -> anyhow::Result<()> {
    use commands::dr::failover::{FailoverArgs, run};
    let pair = commands::dr::pair(&ctx.config, c.cluster.as_deref())?;
    let args = FailoverArgs {
        common: dr_common(&pair, c.dr)?,
        pair,
        dry_run: c.dry_run,
        force: c.force,
        wait_lock: c.wait_lock,
    };
    run(ctx, &args).await
}

/// How to reach a Druid metadata store: its URL (never with a password), the password from the
/// environment or the file the config names, TLS when a CA file is given.
fn meta_config(
    url: Option<String>,
    ca_file: Option<std::path::PathBuf>,
    cc: &lifeboat::config::ClusterConfig,
    application: &'static str,
) -> anyhow::Result<lifeboat::druid::metastore::MetaConfig> {
    use lifeboat::druid::metastore::{MetaConfig, MetaUrl, Tls};
    let url = url.ok_or_else(|| {
        CommandError::Usage(
            "a Druid cluster needs its metadata store: --druid-metadata postgres://USER@HOST:PORT/DB (or mysql://...), or druid_metadata in the config".into(),
        )
    })?;
    let url = MetaUrl::parse(&url)
        .map_err(|why| CommandError::Usage(format!("--druid-metadata: {why}")))?;
    Ok(MetaConfig {
        url,
        password: resolve::metadata_password(cc, &|k| std::env::var(k).ok())?,
        tls: ca_file.map(Tls::CaFile).unwrap_or_default(),
        connect_timeout: std::time::Duration::from_secs(10),
        application,
    })
}

/// `doctor`: every input from its flag, else the cluster's config.
async fn run_doctor(ctx: &Ctx, c: lifeboat::cli::DoctorCmd) -> anyhow::Result<()> {
    let (name, cc) = cluster(&ctx.config, c.cluster)?;
    let druid = (!c.druid_urls.is_empty() || c.druid_metadata.is_some()).then(|| {
        commands::doctor::DruidArgs {
            urls: c.druid_urls,
            brokers: c.druid_brokers,
            metadata: c.druid_metadata,
            deep_storage: if c.deep_storage.is_empty() {
                cc.deep_storage.clone()
            } else {
                c.deep_storage
            },
        }
    });
    let zk_root = match (&druid, c.zk_root) {
        (Some(_), root) => root.unwrap_or_else(|| "/druid".into()),
        (None, root) => resolve::zk_root(root, &cc),
    };
    let args = commands::doctor::DoctorArgs {
        homes: resolve::doctor_homes(c.dremio_homes, &cc),
        dremio_urls: resolve::dremio_urls(c.dremio_urls, &cc),
        tls: Tls {
            ca_file: c.ca_file.or(cc.ca_file.clone()),
            insecure: c.insecure,
        },
        zookeeper: resolve::zookeeper(c.zookeeper, &cc),
        zk_root,
        druid,
        from: resolve::optional_location(c.from, &cc),
        copies: copies(c.copy_to, &cc),
        rpo: resolve::rpo(c.rpo, &cc)?,
        secondary_urls: resolve::secondary_urls(c.secondary_urls, &cc),
        mountinfo: c.mountinfo,
        no_probe: c.no_probe,
        min_throughput: resolve::min_throughput(c.min_throughput, &cc)?,
        metrics_file: c.metrics_file,
        cluster: name,
    };
    commands::doctor::run(ctx, &args).await
}

/// Prints generated text; a reader that stops early (`| head`) is not an error.
fn print_text(text: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Which system a clone's cluster is, and how to reach its nodes: `--druid-url`, or a config
/// cluster of `kind = "druid"`, is Druid; anything else Dremio (see [`resolve::coordinators`]).
fn clone_target(
    config: &Config,
    t: lifeboat::cli::CloneTarget,
    resume_supervisors: bool,
) -> anyhow::Result<(commands::clone::Kind, commands::clone::Conn)> {
    let druid = !t.druid_urls.is_empty() || resolve::names_druid(config, &t.dremio_urls);
    let urls = if t.druid_urls.is_empty() {
        t.dremio_urls
    } else {
        t.druid_urls
    };
    let kind = if druid {
        commands::clone::Kind::Druid { resume_supervisors }
    } else if resume_supervisors {
        return Err(
            CommandError::Usage("--resume-supervisors is for Druid (--druid-url)".into()).into(),
        );
    } else {
        commands::clone::Kind::Dremio
    };
    Ok((
        kind,
        conn(config, kind, urls, t.ca_file, t.insecure, false)?,
    ))
}

/// How to reach a cluster's nodes for clone; `source`: a live source's credentials.
fn conn(
    config: &Config,
    kind: commands::clone::Kind,
    urls: Vec<String>,
    ca_file: Option<std::path::PathBuf>,
    insecure: bool,
    source: bool,
) -> anyhow::Result<commands::clone::Conn> {
    use commands::clone::Kind;
    let (urls, ca_file) = match kind {
        Kind::Dremio => resolve::coordinators(config, urls, ca_file)?,
        Kind::Druid { .. } => resolve::druid_nodes(config, urls, ca_file)?,
    };
    let env_prefix = match (kind, source) {
        (Kind::Dremio, false) => "LIFEBOAT_DREMIO_",
        (Kind::Dremio, true) => "LIFEBOAT_SOURCE_DREMIO_",
        (Kind::Druid { .. }, false) => "LIFEBOAT_DRUID_",
        (Kind::Druid { .. }, true) => "LIFEBOAT_SOURCE_DRUID_",
    };
    Ok(commands::clone::Conn {
        urls,
        tls: Tls { ca_file, insecure },
        env_prefix,
    })
}

/// The filter of a run; `--skip` words must be the system's own.
fn clone_filter(
    kind: commands::clone::Kind,
    f: &lifeboat::cli::CloneFilters,
) -> anyhow::Result<lifeboat::clone::filter::Filter> {
    let druid = matches!(kind, commands::clone::Kind::Druid { .. });
    if let Some(s) = f.skip.iter().find(|s| s.is_druid() != druid) {
        let word: &str = (*s).into();
        return Err(CommandError::Usage(format!(
            "--skip {word} is not a kind of {}",
            if druid { "Druid" } else { "Dremio" }
        ))
        .into());
    }
    Ok(lifeboat::clone::filter::Filter::new(
        &f.include, &f.exclude, &f.skip,
    ))
}

fn clone_plan_args(
    config: &Config,
    c: lifeboat::cli::ClonePlanCmd,
) -> anyhow::Result<(commands::clone::Kind, commands::clone::PlanArgs)> {
    let (kind, target) = clone_target(config, c.target, c.resume_supervisors)?;
    let source = match c.source {
        Some(p) => commands::clone::Source::Path(p),
        None => commands::clone::Source::Live(conn(
            config,
            kind,
            c.source_urls,
            c.source_ca_file,
            c.source_insecure,
            true,
        )?),
    };
    let args = commands::clone::PlanArgs {
        source,
        filter: clone_filter(kind, &c.filters)?,
        concurrency: c.filters.concurrency,
        target,
        mode: c.mode.into(),
        mapping: c.mapping,
    };
    Ok((kind, args))
}

async fn run_clone(ctx: &Ctx, c: lifeboat::cli::CloneCmd) -> anyhow::Result<()> {
    use lifeboat::cli::{CloneCmd, CloneFormat};
    let config = ctx.config.clone();
    match c {
        CloneCmd::Export(e) => {
            let (kind, conn) = clone_target(&config, e.cluster, false)?;
            let args = commands::clone::ExportArgs {
                filter: clone_filter(kind, &e.filters)?,
                concurrency: e.filters.concurrency,
                conn,
                out: e.out,
                cloner: e.format == CloneFormat::Cloner,
            };
            commands::clone::export(ctx, kind, &args).await
        }
        CloneCmd::Plan(p) => {
            let (kind, args) = clone_plan_args(&config, p)?;
            commands::clone::plan(ctx, kind, &args).await
        }
        CloneCmd::Apply(a) => {
            let (kind, args) = clone_plan_args(&config, a.plan)?;
            let opts = commands::clone::ApplyOpts {
                dry_run: a.dry_run,
                allow_delete: a.allow_delete,
                metrics_file: a.metrics_file,
            };
            commands::clone::apply(ctx, kind, &args, &opts).await
        }
    }
}

/// glibc gives every thread that allocates an arena of its own (up to 8 per core) and keeps what
/// is freed in it for later. Format 2 runs a thread per object in flight, so a restore of many
/// small files touched ever more arenas: peak RSS 60 MiB at 100,000 files, 85 MiB at 400,000,
/// 150 MiB at 2 million. With one arena per core (two at least) it stays at 47-51 MiB.
///
/// glibc also raises its mmap threshold (and with it the heap it keeps untrimmed, twice that)
/// each time a large block is freed: buffers of a few hundred KiB then come from a heap that only
/// grows. A backup of 2 million small files peaked at 147.7 MiB so, and at 110.6 MiB with the
/// threshold fixed at 4 MiB (every 1 MiB chunk still comes from the heap). An operator's own
/// `MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_` wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn bound_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores.clamp(2, 8)).unwrap_or(2);
        // SAFETY: mallopt only sets one of glibc's allocator tunables; it is called first thing
        // in main, before any thread exists, and its result (0 when refused) needs no handling.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_malloc_arenas() {}
