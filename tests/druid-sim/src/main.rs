//! `druid-sim`: one process serving Druid's Coordinator and Overlord APIs.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use druid_sim::api::Node;
use druid_sim::leader::Leaders;
use druid_sim::server::serve;
use druid_sim::store::{FileStore, MetadataStore};

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
    #[arg(long)]
    state: Option<PathBuf>,
    /// The supervisor spec types whose extensions are loaded; others are refused at parse time.
    #[arg(long, value_delimiter = ',', default_value = "kafka,kinesis")]
    supervisor_types: Vec<String>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let store: Box<dyn MetadataStore> = match &cli.state {
        Some(dir) => Box::new(FileStore::open(dir)?),
        None => Box::new(FileStore::memory()),
    };
    let listener = TcpListener::bind(("127.0.0.1", cli.port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", cli.port))?;
    let port = listener.local_addr()?.port();
    let me = format!("http://127.0.0.1:{port}");
    let mut node = Node::new(me.clone(), cli.version, Arc::new(Leaders::sole(&me)), store)?;
    node.settings.supervisor_types = cli.supervisor_types;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    println!("druid-sim: active on 127.0.0.1:{port}");
    std::io::stdout().flush()?;
    rt.block_on(serve(listener, node))
}
