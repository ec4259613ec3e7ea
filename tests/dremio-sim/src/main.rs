//! `dremio-sim`: a strict simulator of a Dremio coordinator.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use dremio_sim::server::{Config, DEFAULT_BUILD, DEFAULT_TOKEN_TTL_SECS};

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
        None => {
            let (Some(paths_local), Some(port)) = (cli.paths_local, cli.port) else {
                bail!("--paths-local and --port are required");
            };
            dremio_sim::server::parse_version(&cli.version)?;
            dremio_sim::server::run(Config {
                paths_local,
                port,
                version: cli.version,
                build: cli.build,
                token_ttl_secs: cli.token_ttl,
            })
        }
    }
}
