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
use druid_sim::security::Names;
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
    /// The supervisor spec types whose extensions are loaded; others are refused at parse time.
    #[arg(long, value_delimiter = ',', default_value = "kafka,kinesis")]
    supervisor_types: Vec<String>,
    /// The authentication scheme every request but health and isLeader must pass.
    #[arg(long, value_enum, requires = "admin_password_file")]
    auth: Option<Auth>,
    /// A file holding the `admin` user's password (`initialAdminPassword`), set at first start.
    #[arg(long, requires = "auth")]
    admin_password_file: Option<PathBuf>,
    /// The basic-security authenticator's name.
    #[arg(long, default_value = "MyBasicMetadataAuthenticator")]
    authenticator: String,
    /// The basic-security authorizer's name.
    #[arg(long, default_value = "MyBasicMetadataAuthorizer")]
    authorizer: String,
    /// Every answer waits this long first, for benchmarks against a remote-like cluster.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[derive(clap::ValueEnum, Clone, Debug)]
enum Auth {
    Basic,
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
    let mut node = Node::new(me.clone(), cli.version.clone(), leaders.clone(), store)?;
    configure(&mut node, &cli)?;
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

/// The runtime properties a node takes from its flags: extensions, security, latency.
fn configure(node: &mut Node, cli: &Cli) -> Result<()> {
    node.settings.supervisor_types = cli.supervisor_types.clone();
    node.settings.latency = std::time::Duration::from_millis(cli.latency_ms);
    node.settings.security = Names {
        authenticator: cli.authenticator.clone(),
        authorizer: cli.authorizer.clone(),
    };
    if let (Some(Auth::Basic), Some(file)) = (&cli.auth, &cli.admin_password_file) {
        let password = std::fs::read_to_string(file)
            .with_context(|| format!("reading the admin password from {}", file.display()))?;
        let password = password.trim_end_matches(['\r', '\n']);
        anyhow::ensure!(!password.is_empty(), "{} holds no password", file.display());
        node.enable_basic_auth(password)?;
    }
    Ok(())
}
