//! Command-line definitions (clap). Secrets are never flags: they come from the environment.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, about = "Disaster recovery for Dremio clusters: back up, ship, verify and restore", long_about = None)]
pub struct Cli {
    /// Print one JSON object on stdout (progress and notes go to stderr as JSON lines).
    #[arg(long, global = true)]
    pub json: bool,

    /// How to show progress: bars on a terminal, plain lines otherwise (auto), or nothing.
    #[arg(long, global = true, value_enum, default_value_t = ProgressMode::Auto, env = "LIFEBOAT_PROGRESS")]
    pub progress: ProgressMode,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    Bars,
    Lines,
    None,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Snapshot a stopped coordinator's KV store, uploads and security files into a location.
    Backup(BackupCmd),
    /// List the committed backups of a cluster in a location, newest first.
    List(ListCmd),
    /// Re-read a backup and check every digest against its manifest.
    Verify(VerifyCmd),
    /// Restore a backup into a stopped coordinator's (emptied) paths.local.
    Restore(RestoreCmd),
    /// Run the whole job on a generated Dremio-like tree: backup, list, verify, restore, compare.
    Demo(DemoCmd),
}

/// Where the coordinator's installation and state are.
#[derive(Debug, Args)]
pub struct Target {
    /// DREMIO_HOME: conf/dremio.conf gives the paths, jars/ the version.
    #[arg(long, env = "LIFEBOAT_DREMIO_HOME", value_name = "DIR")]
    pub dremio_home: Option<PathBuf>,
    /// paths.local, overriding dremio.conf (db, uploads and security follow it).
    #[arg(long, env = "LIFEBOAT_PATHS_LOCAL", value_name = "DIR")]
    pub paths_local: Option<PathBuf>,
    /// The Dremio version, overriding the jars (e.g. 25.2.0 or 25.2.0-<build>).
    #[arg(long, env = "LIFEBOAT_DREMIO_VERSION", value_name = "V")]
    pub dremio_version: Option<String>,
}

#[derive(Debug, Args)]
pub struct BackupCmd {
    #[command(flatten)]
    pub target: Target,
    /// Location: a folder, file://, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix.
    #[arg(long, env = "LIFEBOAT_TO", value_name = "URL")]
    pub to: String,
    /// The cluster's name inside the location.
    #[arg(long, env = "LIFEBOAT_CLUSTER", default_value = "dremio")]
    pub cluster: String,
    /// zstd compression level (1-19; 3 is fast with a good ratio).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,
    /// Compression threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<u32>,
    /// Upload parts in flight at once (memory is about this many times the part size).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub parts_in_flight: usize,
}

/// Which backups in which location.
#[derive(Debug, Args)]
pub struct From {
    /// Location to read from (same forms as --to).
    #[arg(long, env = "LIFEBOAT_FROM", value_name = "URL")]
    pub from: String,
    /// The cluster's name inside the location.
    #[arg(long, env = "LIFEBOAT_CLUSTER", default_value = "dremio")]
    pub cluster: String,
}

#[derive(Debug, Args)]
pub struct ListCmd {
    #[command(flatten)]
    pub from: From,
}

#[derive(Debug, Args)]
pub struct VerifyCmd {
    #[command(flatten)]
    pub from: From,
    /// A backup id, or `latest`.
    #[arg(long, default_value = "latest", value_name = "ID")]
    pub backup: String,
}

#[derive(Debug, Args)]
pub struct RestoreCmd {
    #[command(flatten)]
    pub from: From,
    /// A backup id, or `latest`.
    #[arg(long, default_value = "latest", value_name = "ID")]
    pub backup: String,
    #[command(flatten)]
    pub target: Target,
    /// If paths.local holds anything, move it aside to a safety copy first (nothing is deleted).
    #[arg(long)]
    pub replace: bool,
    /// Give the restored files to USER[:GROUP] (root only; default as root: the current owner of paths.local).
    #[arg(long, value_name = "USER[:GROUP]")]
    pub owner: Option<String>,
    /// Run every check and show what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct DemoCmd {
    /// Keep everything in this folder instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Size of the generated data in MiB.
    #[arg(long, default_value_t = 32)]
    pub size_mib: u64,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
