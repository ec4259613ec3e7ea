//! `dremio-sim`: a strict simulator of a Dremio coordinator.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use dremio_sim::election::ZkConfig;
use dremio_sim::seed::{DEFAULT_ADMIN_PASSWORD, SeedOptions};
use dremio_sim::server::{Config, DEFAULT_BUILD, DEFAULT_THREADS, DEFAULT_TOKEN_TTL_SECS};

#[derive(Parser, Debug)]
#[command(name = "dremio-sim", about = "A strict Dremio coordinator simulator")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// The node's paths.local (shared by HA nodes).
    #[arg(long)]
    paths_local: Option<PathBuf>,
    /// Port to serve on (127.0.0.1 only); 0 picks a free one (printed in the active line).
    #[arg(long)]
    port: Option<u16>,
    /// Dremio version, major.minor.patch.
    #[arg(long, default_value = "25.2.0")]
    version: String,
    /// Build stamp following the version.
    #[arg(long, default_value = DEFAULT_BUILD)]
    build: String,
    /// Lifetime of login tokens, in seconds.
    #[arg(long, default_value_t = DEFAULT_TOKEN_TTL_SECS)]
    token_ttl: u64,
    /// Request threads: requests in flight at once (at least 1). Requests are handled one at a
    /// time under a lock, and overlap in --latency-ms; the N+1th waits for a free slot (idle
    /// kept-alive connections take none).
    #[arg(long, default_value_t = DEFAULT_THREADS)]
    threads: usize,
    /// Milliseconds every answer waits (after handling, outside the lock) before it is sent:
    /// models a real coordinator's network and planning time, so a client's concurrency counts.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Answer every Nth request 429 Too Many Requests without handling it (a rate-limiting
    /// proxy in front of the coordinator); 0: never.
    #[arg(long, default_value_t = 0)]
    throttle_every: u64,
    /// Join Dremio's master election in this ZooKeeper (`host:port,...[/chroot]`): a standby
    /// neither takes the lock nor listens until it leads.
    #[arg(long)]
    zookeeper: Option<String>,
    /// ZooKeeper session timeout in milliseconds (Dremio's is 90 s; tests want failover fast).
    #[arg(long, default_value_t = 90_000)]
    zk_session_timeout_ms: u64,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Lay out a test DREMIO_HOME.
    MakeHome {
        #[arg(long)]
        home: PathBuf,
        #[arg(long)]
        paths_local: PathBuf,
        #[arg(long, default_value = "25.2.0")]
        version: String,
        #[arg(long, default_value = DEFAULT_BUILD)]
        build: String,
        /// The dremio-admin binary the home's bin/dremio-admin runs.
        #[arg(long)]
        admin_bin: PathBuf,
        /// Web port written to dremio.conf (used by bin/dremio-admin backup).
        #[arg(long, default_value_t = 9047)]
        port: u16,
    },
    /// Write a realistic catalog of about N objects into a fresh store (no server; the
    /// coordinator of that paths.local must be stopped), with a first admin user `admin`.
    Seed {
        #[arg(long)]
        paths_local: PathBuf,
        /// Catalog objects to write (sources, promoted datasets, spaces, folders, views,
        /// functions); wikis, tags and reflections come on top.
        #[arg(long)]
        objects: usize,
        #[arg(long, default_value = "25.2.0")]
        version: String,
        #[arg(long, default_value = DEFAULT_BUILD)]
        build: String,
        /// Password of the `admin` user (printed).
        #[arg(long, default_value = DEFAULT_ADMIN_PASSWORD)]
        admin_password: String,
    },
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("dremio-sim: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Some(Cmd::MakeHome {
            home,
            paths_local,
            version,
            build,
            admin_bin,
            port,
        }) => dremio_sim::home::make_home(&home, &paths_local, &version, &build, &admin_bin, port),
        Some(Cmd::Seed {
            paths_local,
            objects,
            version,
            build,
            admin_password,
        }) => {
            dremio_sim::server::parse_version(&version)?;
            let c = dremio_sim::seed::seed(&SeedOptions {
                paths_local: paths_local.clone(),
                objects,
                version,
                build,
                admin_password: admin_password.clone(),
            })?;
            println!(
                "dremio-sim: seeded {} objects in {}: {} sources, {} promoted datasets, {} spaces, \
                 {} folders, {} views, {} functions; {} wikis, {} tags, {} reflections; \
                 admin user admin, password {admin_password}",
                c.objects(),
                paths_local.display(),
                c.sources,
                c.promoted,
                c.spaces,
                c.folders,
                c.views,
                c.functions,
                c.wikis,
                c.tags,
                c.reflections
            );
            Ok(())
        }
        None => {
            let (Some(paths_local), Some(port)) = (cli.paths_local, cli.port) else {
                bail!("--paths-local and --port are required");
            };
            if cli.threads == 0 {
                bail!("--threads must be at least 1");
            }
            dremio_sim::server::parse_version(&cli.version)?;
            dremio_sim::server::run(Config {
                paths_local,
                port,
                version: cli.version,
                build: cli.build,
                token_ttl_secs: cli.token_ttl,
                threads: cli.threads,
                latency_ms: cli.latency_ms,
                throttle_every: cli.throttle_every,
                zookeeper: cli.zookeeper.map(|connect| ZkConfig {
                    connect,
                    session_timeout: Duration::from_millis(cli.zk_session_timeout_ms),
                }),
            })
        }
    }
}
