//! `druid-sim`: one process serving Druid's Coordinator and Overlord APIs.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use druid_sim::api::Node;
use druid_sim::leader::Leaders;
use druid_sim::server::serve;
use druid_sim::store::{FileStore, MetadataStore};
use druid_sim::zk::{ZkConfig, run};

#[derive(Parser, Debug)]
#[command(
    name = "druid-sim",
    about = "A strict Apache Druid Coordinator/Overlord simulator"
)]
struct Cli {
    /// Port to serve on (127.0.0.1 only); 0 picks a free one (printed in the active line).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The Druid version `/status` reports.
    #[arg(long, default_value = "31.0.0")]
    version: String,
    /// Directory of the embedded metadata store; without it the state lives in memory.
    #[arg(long, conflicts_with = "metadata_url")]
    state: Option<PathBuf>,
    /// The metadata store in PostgreSQL or MySQL/MariaDB: `postgres://user:pw@host:port/db` or
    /// `mysql://...` (Druid's tables are created when missing).
    #[arg(long)]
    metadata_url: Option<String>,
    /// ZooKeeper `host:port,...[/chroot]`: elect the leaders there; without it this node leads.
    #[arg(long)]
    zookeeper: Option<String>,
    /// `druid.zk.paths.base`.
    #[arg(long, default_value = "/druid")]
    zk_root: String,
    /// The ZooKeeper session timeout (Druid's default: 30 s).
    #[arg(long, default_value_t = 30_000)]
    zk_session_timeout_ms: u64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let store = open_store(&cli, &rt)?;
    let listener = TcpListener::bind(("127.0.0.1", cli.port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", cli.port))?;
    let port = listener.local_addr()?.port();
    let me = format!("http://127.0.0.1:{port}");
    let leaders = Arc::new(match &cli.zookeeper {
        Some(_) => Leaders::default(),
        None => Leaders::sole(&me),
    });
    let node = Node::new(me.clone(), cli.version.clone(), leaders.clone(), store)?;
    if let Some(connect) = cli.zookeeper.clone() {
        let cfg = ZkConfig {
            connect,
            root: cli.zk_root.clone(),
            session_timeout: Duration::from_millis(cli.zk_session_timeout_ms),
            me,
            host_port: format!("127.0.0.1:{port}"),
        };
        rt.spawn(run(cfg, leaders));
    }
    println!("druid-sim: active on 127.0.0.1:{port}");
    std::io::stdout().flush()?;
    rt.block_on(serve(listener, node))
}

fn open_store(cli: &Cli, rt: &tokio::runtime::Runtime) -> Result<Box<dyn MetadataStore>> {
    Ok(match (&cli.metadata_url, &cli.state) {
        (Some(url), _) => druid_sim::sql::open(url, rt.handle().clone())?,
        (None, Some(dir)) => Box::new(FileStore::open(dir)?),
        (None, None) => Box::new(FileStore::memory()),
    })
}
