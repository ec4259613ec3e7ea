//! Command-line definitions (clap). Secrets are never flags: they come from the environment.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The version with the commit it was built from: bug reports then name the exact source.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LIFEBOAT_GIT_COMMIT"),
    ", ",
    env!("LIFEBOAT_GIT_DATE"),
    ")"
);

#[derive(Debug, Parser)]
#[command(name = "lifeboat", version = VERSION, about = "Disaster recovery for Dremio clusters: \
    back up, ship, verify and restore", long_about = None)]
pub struct Cli {
    /// Configuration file (TOML) naming clusters and locations; see configs/lifeboat.example.toml.
    #[arg(long, global = true, env = "LIFEBOAT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

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
    /// Copy committed backups to another location (catch-up replication; idempotent).
    Copy(CopyCmd),
    /// Delete backups that a retention policy no longer keeps, and leftovers of failed runs.
    Prune(PruneCmd),
    /// Newest backup per location, its age against the RPO, and whether copies keep up.
    Status(StatusCmd),
    /// Clone artefacts (catalog, reflections, wikis, tags, users) between clusters through REST.
    #[command(subcommand)]
    Clone(CloneCmd),
    /// Is this Dremio deployment HA and DR-ready? Checks the configuration, ZooKeeper, the
    /// coordinators, the shared volume (with lock and throughput probes) and the backups.
    /// Exit 0 all pass, 10 warnings only, 11 failures.
    Doctor(DoctorCmd),
    /// The lock probe's other process: holds a POSIX lock on FILE until stdin closes.
    #[command(hide = true)]
    DoctorLockHolder(LockHolderCmd),
    /// Rehearse a restore: the newest backup into a scratch copy, a coordinator started on it,
    /// what it serves compared with the backup's catalog, everything removed after. Touches no
    /// live cluster. Reports RTO by phase and the RPO the backup represents.
    Drill(DrillCmd),
    /// A pilot-light standby (a cluster with `standby_for` in the config).
    #[command(subcommand)]
    Standby(StandbyCmd),
    /// Make a standby the primary: confirms the primary is down, checks the standby, restores
    /// the newest backup when it is newer, starts and validates; measures RTO.
    Failover(FailoverCmd),
    /// Run the whole job on a generated Dremio-like tree: backup, list, verify, restore, compare.
    Demo(DemoCmd),
    /// Print a shell completion script on stdout, e.g. `lifeboat completions bash >
    /// /etc/bash_completion.d/lifeboat`.
    Completions(CompletionsCmd),
    /// Print the man page (roff) on stdout, or write one page per subcommand into a folder.
    Man(ManCmd),
}

#[derive(Debug, Subcommand)]
pub enum CloneCmd {
    /// Export a cluster into a git-friendly tree (updated in place), or a dremio-cloner JSON file.
    Export(CloneExportCmd),
    /// Compare a source (tree, dremio-cloner file or live cluster) with the live target: what
    /// `apply` would do, per object.
    Plan(ClonePlanCmd),
    /// Make the target match the source, in dependency order, and report the outcome per object.
    Apply(CloneApplyCmd),
}

/// A cluster reached through REST. Credentials: LIFEBOAT_DREMIO_USER + LIFEBOAT_DREMIO_PASSWORD[_FILE]
/// or LIFEBOAT_DREMIO_TOKEN[_FILE]; for Druid LIFEBOAT_DRUID_USER + LIFEBOAT_DRUID_PASSWORD[_FILE].
#[derive(Debug, Args)]
pub struct CloneTarget {
    /// Coordinator URLs (comma-separated or repeated; the active one is found), or a cluster name
    /// from the config file (its dremio_urls, or its druid_urls for a kind = "druid" cluster).
    #[arg(
        long = "dremio-url",
        env = "LIFEBOAT_DREMIO_URL",
        value_delimiter = ',',
        value_name = "URL|NAME",
        required_unless_present = "druid_urls"
    )]
    pub dremio_urls: Vec<String>,
    /// A Druid cluster instead: Coordinator/Overlord URLs (comma-separated or repeated; each
    /// role's leader is found), or a kind = "druid" cluster name from the config file.
    #[arg(
        long = "druid-url",
        value_delimiter = ',',
        value_name = "URL|NAME",
        conflicts_with = "dremio_urls"
    )]
    pub druid_urls: Vec<String>,
    /// PEM file of the CA that signed the coordinators' TLS certificates.
    #[arg(long, env = "LIFEBOAT_DREMIO_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not check the coordinators' TLS certificates (explicit opt-in; prefer --ca-file).
    #[arg(long)]
    pub insecure: bool,
}

/// Which objects, and how many requests at once.
#[derive(Debug, Args)]
pub struct CloneFilters {
    /// Only objects whose catalog path matches (repeatable): `/` between components, `*` within
    /// one, `**` across; users are `@users/<name>`. Parents of matches come along.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out objects (and everything below them) whose path matches (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Leave out whole kinds (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KIND")]
    pub skip: Vec<CloneSkip>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub concurrency: usize,
}

/// `--skip`'s values: Dremio's [`Skip`](crate::dremio::clone::Skip), then Druid's kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CloneSkip {
    Users,
    Reflections,
    Wikis,
    Tags,
    /// Promoted datasets: sources are then not walked (their storage may hold millions of files).
    Promoted,
    Functions,
    /// Druid: retention rules.
    Rules,
    /// Druid: the dynamic and worker configs.
    Config,
    /// Druid: lookups.
    Lookups,
    /// Druid: compaction configs (per datasource and cluster level).
    Compaction,
    /// Druid: streaming supervisors.
    Supervisors,
    /// Druid: basic-security users, roles and permissions.
    Security,
}

impl CloneSkip {
    /// Whether the word leaves out a kind of Druid's (else of Dremio's).
    pub fn is_druid(self) -> bool {
        matches!(
            self,
            CloneSkip::Rules
                | CloneSkip::Config
                | CloneSkip::Lookups
                | CloneSkip::Compaction
                | CloneSkip::Supervisors
                | CloneSkip::Security
        )
    }
}

/// What a filter keeps of `--skip`: its word.
impl std::convert::From<CloneSkip> for &'static str {
    fn from(s: CloneSkip) -> Self {
        use crate::dremio::clone::Skip;
        use crate::druid::clone::model;
        match s {
            CloneSkip::Users => Skip::Users.word(),
            CloneSkip::Reflections => Skip::Reflections.word(),
            CloneSkip::Wikis => Skip::Wikis.word(),
            CloneSkip::Tags => Skip::Tags.word(),
            CloneSkip::Promoted => Skip::Promoted.word(),
            CloneSkip::Functions => Skip::Functions.word(),
            CloneSkip::Rules => model::SKIP_RULES,
            CloneSkip::Config => model::SKIP_CONFIG,
            CloneSkip::Lookups => model::SKIP_LOOKUPS,
            CloneSkip::Compaction => model::SKIP_COMPACTION,
            CloneSkip::Supervisors => model::SKIP_SUPERVISORS,
            CloneSkip::Security => model::SKIP_SECURITY,
        }
    }
}

/// `--mode`'s values: the engine's [`Mode`](crate::clone::plan::Mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CloneMode {
    /// Create what the target lacks; leave what differs.
    CreateOnly,
    /// Create what the target lacks and update what differs (never removes anything).
    Update,
    /// Also delete, inside the filters, what the source lacks (needs --allow-delete).
    Mirror,
}

impl std::convert::From<CloneMode> for crate::clone::plan::Mode {
    fn from(m: CloneMode) -> Self {
        use crate::clone::plan::Mode;
        match m {
            CloneMode::CreateOnly => Mode::CreateOnly,
            CloneMode::Update => Mode::Update,
            CloneMode::Mirror => Mode::Mirror,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CloneFormat {
    /// A folder with one file per object (for git).
    Tree,
    /// dremio-cloner's single JSON file.
    Cloner,
}

#[derive(Debug, Args)]
pub struct CloneExportCmd {
    #[command(flatten)]
    pub cluster: CloneTarget,
    /// The tree's folder (made if missing; an existing export is updated in place), or the
    /// dremio-cloner file with --format cloner.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = CloneFormat::Tree)]
    pub format: CloneFormat,
    #[command(flatten)]
    pub filters: CloneFilters,
}

#[derive(Debug, Args)]
pub struct ClonePlanCmd {
    /// The source: an export tree, or a dremio-cloner JSON file.
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "source_urls",
        conflicts_with = "source_urls"
    )]
    pub source: Option<PathBuf>,
    /// The source: a live cluster's coordinator URLs (or a cluster name from the config file),
    /// of the target's kind. Credentials: LIFEBOAT_SOURCE_DREMIO_USER +
    /// LIFEBOAT_SOURCE_DREMIO_PASSWORD[_FILE] or LIFEBOAT_SOURCE_DREMIO_TOKEN[_FILE]; for Druid
    /// LIFEBOAT_SOURCE_DRUID_USER + LIFEBOAT_SOURCE_DRUID_PASSWORD[_FILE].
    #[arg(long = "source-url", value_delimiter = ',', value_name = "URL|NAME")]
    pub source_urls: Vec<String>,
    /// PEM file of the CA of the source cluster's certificates.
    #[arg(long, value_name = "FILE")]
    pub source_ca_file: Option<PathBuf>,
    /// Do not check the source cluster's TLS certificates (explicit opt-in; prefer --source-ca-file).
    #[arg(long)]
    pub source_insecure: bool,
    /// The target cluster.
    #[command(flatten)]
    pub target: CloneTarget,
    #[command(flatten)]
    pub filters: CloneFilters,
    /// create-only, update (create and update, never delete) or mirror (also delete inside the filters).
    #[arg(long, value_enum, default_value_t = CloneMode::Update)]
    pub mode: CloneMode,
    /// Renames (sources, spaces, users), source secrets and user passwords: see
    /// configs/clone-mapping.example.toml (Druid: configs/druid-mapping.example.toml).
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// Druid: supervisors run or stay suspended as on the source (a failover). Without it every
    /// supervisor written is suspended: a DR cluster must not ingest alongside the primary.
    #[arg(long)]
    pub resume_supervisors: bool,
}

#[derive(Debug, Args)]
pub struct CloneApplyCmd {
    #[command(flatten)]
    pub plan: ClonePlanCmd,
    /// Show the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirms that --mode mirror may delete objects on the target.
    #[arg(long)]
    pub allow_delete: bool,
    /// Write Prometheus text-format metrics here (atomically): success, duration, objects by outcome.
    #[arg(long, env = "LIFEBOAT_METRICS_FILE", value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
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
    /// Location: a name from the config file, a folder, file://, s3://bucket/prefix, gs://... or az://...
    #[arg(long, env = "LIFEBOAT_TO", value_name = "URL|NAME")]
    pub to: Option<String>,
    /// Also copy the backup to this location (repeatable): format 2 uploads each new object there
    /// as it is packed, then the rest once the backup is committed; its lock is held throughout.
    #[arg(long = "copy-to", value_name = "URL|NAME")]
    pub copy_to: Vec<String>,
    /// The cluster's name inside the location (default: the config's only cluster, else "dremio").
    #[arg(long, env = "LIFEBOAT_CLUSTER")]
    pub cluster: Option<String>,
    /// zstd compression level (1-19; default 3, fast with a good ratio).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: Option<i32>,
    /// Compression threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<u32>,
    /// Upload parts in flight at once (memory is about this many times the part size).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub parts_in_flight: usize,
    /// Create a local folder location (and copy locations) that does not exist yet. Without it a
    /// missing folder is refused: an unmounted backup volume would otherwise fill the root disk.
    #[arg(long)]
    pub create_location: bool,
    #[command(flatten)]
    pub online: Online,
    #[command(flatten)]
    pub druid: DruidBackup,
    #[command(flatten)]
    pub shape: Shape,
    #[command(flatten)]
    pub run: RunOpts,
}

/// The repository format of a new backup, and its encryption.
#[derive(Debug, Args)]
pub struct Shape {
    /// Repository format: 2 (shared objects: incremental, optionally encrypted) or 1 (one
    /// self-contained archive object). Default: the config's `format`, else 2.
    #[arg(long, value_name = "1|2", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub format: Option<u8>,
    /// Format 2: upload every file again instead of reusing the objects of earlier backups (a
    /// self-contained backup).
    #[arg(long)]
    pub full: bool,
    /// Format 2: encrypt every object to this age recipient (age1..., repeatable). Give two: an
    /// operational key and an offline break-glass key. Default: the config's `recipients` and
    /// `recipients_file`.
    #[arg(long = "encrypt-to", value_name = "AGE1...")]
    pub encrypt_to: Vec<String>,
    /// Age identity file of an encrypted repository, for reading the previous backup's index
    /// (default: $LIFEBOAT_AGE_IDENTITY_FILE; without one, the local index cache is used).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

/// A Druid cluster's metadata store instead of a Dremio coordinator. The password comes from
/// LIFEBOAT_DRUID_METADATA_PASSWORD[_FILE] (or the config's metadata_password_env/_file), never
/// from the URL or a flag.
#[derive(Debug, Args)]
pub struct DruidBackup {
    /// Druid's metadata store: postgres://USER@HOST:PORT/DB or mysql://USER@HOST:PORT/DB
    /// (default: the config cluster's druid_metadata). `--staging` is the local folder the
    /// table files are written to before they are shipped (default: $TMPDIR).
    #[arg(
        long = "druid-metadata",
        value_name = "URL",
        conflicts_with_all = ["dremio_urls", "dremio_home", "paths_local"]
    )]
    pub druid_metadata: Option<String>,
    /// Coordinator/Overlord URLs (comma-separated or repeated): the backup records the
    /// leader's version (`/status`). Credentials: LIFEBOAT_DRUID_USER + LIFEBOAT_DRUID_PASSWORD[_FILE].
    #[arg(long = "druid-url", value_delimiter = ',', value_name = "URL")]
    pub druid_urls: Vec<String>,
    /// PEM file of the CA of the metadata database's TLS certificate (TLS is off without it).
    #[arg(long = "druid-metadata-ca-file", value_name = "FILE")]
    pub druid_metadata_ca_file: Option<PathBuf>,
}

/// An online (logical) backup through the coordinators' REST API. Credentials come from
/// LIFEBOAT_DREMIO_USER + LIFEBOAT_DREMIO_PASSWORD[_FILE] or LIFEBOAT_DREMIO_TOKEN[_FILE].
#[derive(Debug, Args)]
pub struct Online {
    /// Coordinator URLs of the cluster (comma-separated or repeated); the active one is found.
    #[arg(
        long = "dremio-url",
        env = "LIFEBOAT_DREMIO_URL",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub dremio_urls: Vec<String>,
    /// A folder the coordinator can write and lifeboat can read (e.g. on the shared volume).
    #[arg(long, env = "LIFEBOAT_STAGING", value_name = "DIR")]
    pub staging: Option<PathBuf>,
    /// PEM file of the CA that signed the coordinators' TLS certificates.
    #[arg(long, env = "LIFEBOAT_DREMIO_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not check the coordinators' TLS certificates (explicit opt-in; prefer --ca-file).
    #[arg(long)]
    pub insecure: bool,
}

/// Options of commands that cron runs: lock waiting and metrics.
#[derive(Debug, Args)]
pub struct RunOpts {
    /// If another run holds the lock, wait up to this long (e.g. 10m) instead of failing at once.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_lock: Option<std::time::Duration>,
    /// Write Prometheus text-format metrics here (atomically), for node_exporter's textfile collector.
    #[arg(long, env = "LIFEBOAT_METRICS_FILE", value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::units::parse_duration(s)
}

/// Which backups in which location.
#[derive(Debug, Args)]
pub struct From {
    /// Location to read from (same forms as --to; default: the config cluster's `to`).
    #[arg(long, env = "LIFEBOAT_FROM", value_name = "URL|NAME")]
    pub from: Option<String>,
    /// The cluster's name inside the location (default: the config's only cluster, else "dremio").
    #[arg(long, env = "LIFEBOAT_CLUSTER")]
    pub cluster: Option<String>,
}

#[derive(Debug, Args)]
pub struct CopyCmd {
    #[command(flatten)]
    pub from: From,
    /// The location to copy to.
    #[arg(long, value_name = "URL|NAME")]
    pub to: String,
    /// A backup id, `latest`, or `all-missing` (every backup the destination lacks).
    #[arg(long, default_value = "all-missing", value_name = "ID")]
    pub backup: String,
    /// Create the destination folder when it is a local folder that does not exist yet.
    #[arg(long)]
    pub create_location: bool,
    #[command(flatten)]
    pub run: RunOpts,
}

#[derive(Debug, Args)]
pub struct PruneCmd {
    #[command(flatten)]
    pub from: From,
    /// Keep the N newest backups.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest backup of each of the last N hours that have one.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest backup of each of the last N days that have one.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest backup of each of the last N ISO weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest backup of each of the last N months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep every backup within this duration of the newest one (e.g. 2d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub keep_within: Option<std::time::Duration>,
    /// Leftovers of failed runs (no manifest) are removed once older than this.
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = parse_duration)]
    pub grace: std::time::Duration,
    /// Show what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub run: RunOpts,
}

#[derive(Debug, Args)]
pub struct StatusCmd {
    #[command(flatten)]
    pub from: From,
    /// A copy location that should hold the primary's newest backup (repeatable; default: the config's copy_to).
    #[arg(long = "copy-to", value_name = "URL|NAME")]
    pub copy_to: Vec<String>,
    /// The recovery point objective (e.g. 26h; default: the config cluster's rpo).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub rpo: Option<std::time::Duration>,
    /// Write Prometheus text-format metrics here (atomically).
    #[arg(long, env = "LIFEBOAT_METRICS_FILE", value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
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
    /// A Druid backup: also check that every used segment's object exists in deep storage (with
    /// its size where the payload records it), and count orphaned objects. Missing objects fail
    /// the verify (exit 4). Credentials: the store's standard environment or a configured location.
    #[arg(long)]
    pub deep_storage: bool,
    /// With --deep-storage: check the segments at mapped locations, e.g. a replicated copy
    /// (`s3://old-bucket/prefix=s3://new-bucket/prefix`, repeatable; the longest FROM wins).
    #[arg(
        long = "deep-storage-map",
        value_name = "FROM=TO",
        requires = "deep_storage"
    )]
    pub deep_storage_map: Vec<String>,
    /// With --deep-storage: a root listed for orphans (repeatable; default: the cluster's
    /// `deep_storage` in the config, else the segments' own locations).
    #[arg(
        long = "deep-storage-root",
        value_name = "URL",
        requires = "deep_storage"
    )]
    pub deep_storage_roots: Vec<String>,
    /// With --deep-storage: where the table files are extracted (default: the temporary folder).
    #[arg(long, value_name = "DIR", requires = "deep_storage")]
    pub staging: Option<PathBuf>,
    /// Format 2: read and check only this share of the backup's objects, chosen at random (e.g.
    /// 5%), after checking that every object exists with its size. Default: all of them.
    #[arg(long, value_name = "N%", value_parser = parse_percent)]
    pub read_data_subset: Option<f64>,
    /// Age identity file of an encrypted backup (default: $LIFEBOAT_AGE_IDENTITY_FILE). Without
    /// one, an encrypted backup's objects are checked against their ciphertext digests only.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

/// `5%`, `0.5%` or `100` (a share of objects, in percent).
fn parse_percent(s: &str) -> Result<f64, String> {
    let n: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage such as 5%"))?;
    if n > 0.0 && n <= 100.0 {
        Ok(n)
    } else {
        Err(format!("{s:?} is not a percentage above 0 and at most 100"))
    }
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
    /// Age identity file of an encrypted backup (default: $LIFEBOAT_AGE_IDENTITY_FILE); never a
    /// key on the command line.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    #[command(flatten)]
    pub druid: DruidRestore,
}

/// The restore of a Druid backup into an EMPTY metadata database. The password comes from
/// LIFEBOAT_DRUID_METADATA_PASSWORD[_FILE] (or the config's metadata_password_env/_file).
#[derive(Debug, Args)]
pub struct DruidRestore {
    /// The target metadata store: postgres://USER@HOST:PORT/DB or mysql://USER@HOST:PORT/DB.
    /// Every druid_* table there must be empty; missing tables are created with Druid's DDL.
    #[arg(
        long = "druid-metadata",
        value_name = "URL",
        conflicts_with_all = ["dremio_home", "paths_local", "replace", "owner"]
    )]
    pub druid_metadata: Option<String>,
    /// The target cluster's Coordinator/Overlord URLs: its version must not be older than the
    /// backup's. Credentials: LIFEBOAT_DRUID_USER + LIFEBOAT_DRUID_PASSWORD[_FILE].
    #[arg(
        long = "druid-url",
        value_delimiter = ',',
        value_name = "URL",
        requires = "druid_metadata"
    )]
    pub druid_urls: Vec<String>,
    /// PEM file of the CA of the target database's TLS certificate.
    #[arg(
        long = "druid-metadata-ca-file",
        value_name = "FILE",
        requires = "druid_metadata"
    )]
    pub druid_metadata_ca_file: Option<PathBuf>,
    /// Rewrite segments' loadSpecs: FROM=TO deep-storage prefixes (repeatable; the longest FROM
    /// wins), e.g. s3://primary/druid=s3://replica/druid. The new locations are then checked.
    #[arg(
        long = "deep-storage-map",
        value_name = "FROM=TO",
        requires = "druid_metadata"
    )]
    pub deep_storage_map: Vec<String>,
    /// Restore supervisors as they were; without it every supervisor is restored suspended.
    #[arg(long, requires = "druid_metadata")]
    pub resume_supervisors: bool,
    /// With --deep-storage-map: a segment object missing at its new location refuses the
    /// restore (checked before anything is written); without it, a warning listing them.
    #[arg(long, requires = "druid_metadata")]
    pub strict: bool,
    /// The local folder the backup is extracted into before the load (default: $TMPDIR).
    #[arg(long, value_name = "DIR", requires = "druid_metadata")]
    pub staging: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DoctorCmd {
    /// The cluster's name in the config file (which can name every input below) and in locations.
    #[arg(long, env = "LIFEBOAT_CLUSTER")]
    pub cluster: Option<String>,
    /// A coordinator's DREMIO_HOME (repeatable: one per master candidate): conf/dremio.conf and
    /// the jars' version.
    #[arg(long = "dremio-home", value_name = "DIR")]
    pub dremio_homes: Vec<PathBuf>,
    /// Every coordinator's URL (comma-separated or repeated). Credentials for the version:
    /// LIFEBOAT_DREMIO_USER + LIFEBOAT_DREMIO_PASSWORD[_FILE] or LIFEBOAT_DREMIO_TOKEN[_FILE].
    #[arg(long = "dremio-url", value_delimiter = ',', value_name = "URL")]
    pub dremio_urls: Vec<String>,
    /// PEM file of the CA that signed the coordinators' TLS certificates.
    #[arg(long, env = "LIFEBOAT_DREMIO_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not check the coordinators' TLS certificates (explicit opt-in; prefer --ca-file).
    #[arg(long)]
    pub insecure: bool,
    /// The ZooKeeper ensemble Dremio (or Druid: druid.zk.service.host) uses.
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT")]
    pub zookeeper: Vec<String>,
    /// Dremio's root in ZooKeeper (its cluster id; default /dremio); with --druid-url, Druid's
    /// druid.zk.paths.base (default /druid).
    #[arg(long, value_name = "PATH")]
    pub zk_root: Option<String>,
    /// Druid mode: every Coordinator/Overlord node's URL (comma-separated or repeated). The
    /// Dremio installation checks do not run. Credentials: LIFEBOAT_DRUID_USER +
    /// LIFEBOAT_DRUID_PASSWORD[_FILE].
    #[arg(
        long = "druid-url",
        value_delimiter = ',',
        value_name = "URL",
        conflicts_with_all = ["dremio_homes", "dremio_urls", "secondary_urls", "mountinfo", "from", "rpo", "copy_to"]
    )]
    pub druid_urls: Vec<String>,
    /// A Druid Broker's URL (repeatable, or comma-separated): it must answer /status/health.
    #[arg(
        long = "druid-broker",
        value_delimiter = ',',
        value_name = "URL",
        requires = "druid_urls"
    )]
    pub druid_brokers: Vec<String>,
    /// Druid's metadata store, postgres://USER@HOST:PORT/DB or mysql://USER@HOST:PORT/DB, whose
    /// replication is checked. The password comes from LIFEBOAT_DRUID_METADATA_PASSWORD[_FILE],
    /// never from the URL.
    /// Given alone (without --druid-url), only the metadata store and deep storage are checked.
    /// With it, every used segment's deep-storage object is looked for (check `deepstore.segments`).
    #[arg(
        long = "druid-metadata",
        value_name = "URL",
        conflicts_with_all = ["dremio_homes", "dremio_urls", "secondary_urls", "mountinfo", "from", "rpo", "copy_to"]
    )]
    pub druid_metadata: Option<String>,
    /// With --druid-metadata: a deep-storage root listed for orphaned objects, `s3://bucket/prefix`
    /// (repeatable; default: the cluster's `deep_storage` in the config, else the segments' own
    /// locations).
    #[arg(long = "deep-storage", value_name = "URL", requires = "druid_metadata")]
    pub deep_storage: Vec<String>,
    /// The backups' primary location (with --rpo: the newest backup's age).
    #[arg(long, value_name = "URL|NAME")]
    pub from: Option<String>,
    /// A copy location that should hold the primary's newest backup (repeatable).
    #[arg(long = "copy-to", value_name = "URL|NAME")]
    pub copy_to: Vec<String>,
    /// The recovery point objective (e.g. 26h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub rpo: Option<std::time::Duration>,
    /// The DR secondary's coordinator URLs: it must answer, run the primary's version, and its
    /// catalog's drift is counted. Credentials: LIFEBOAT_SECONDARY_DREMIO_* (else LIFEBOAT_DREMIO_*).
    #[arg(long = "secondary-url", value_delimiter = ',', value_name = "URL")]
    pub secondary_urls: Vec<String>,
    /// Judge a copy of another host's /proc/self/mountinfo (the live probes are then skipped).
    #[arg(long, value_name = "FILE")]
    pub mountinfo: Option<PathBuf>,
    /// Skip the lock and throughput probes (nothing is written to the volume).
    #[arg(long)]
    pub no_probe: bool,
    /// The lowest acceptable throughput of the volume in MB/s (default 30, Dremio's HA minimum).
    #[arg(long, value_name = "MB/S")]
    pub min_throughput: Option<f64>,
    /// Write one Prometheus gauge per check here (0 pass, 1 warn, 2 fail, -1 skip).
    #[arg(long, env = "LIFEBOAT_METRICS_FILE", value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LockHolderCmd {
    pub file: PathBuf,
}

/// How long a started coordinator may take to serve, and where metrics go.
#[derive(Debug, Args)]
pub struct DrOpts {
    /// How long a started coordinator may take to answer server_status OK (default: the
    /// config's start_timeout, else 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub start_timeout: Option<std::time::Duration>,
    /// Write Prometheus text-format metrics here (atomically), for node_exporter's textfile collector.
    #[arg(long, env = "LIFEBOAT_METRICS_FILE", value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DrillCmd {
    /// The cluster whose backups are rehearsed (its `to`, `drill_start`, `dremio_home` and
    /// `clone_tree` from the config file).
    #[arg(long, env = "LIFEBOAT_CLUSTER")]
    pub cluster: Option<String>,
    /// Location to read from (default: the cluster's `to`).
    #[arg(long, env = "LIFEBOAT_FROM", value_name = "URL|NAME")]
    pub from: Option<String>,
    /// Backup id, or "latest".
    #[arg(long, default_value = "latest", value_name = "ID")]
    pub backup: String,
    /// Folder the scratch copy is made in (a new folder inside it, removed after; default: the
    /// system's temporary folder). It needs room for the restored store.
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
    /// The drill's start command, instead of the config's `drill_start`.
    #[arg(long, value_name = "COMMAND")]
    pub drill_start: Option<String>,
    /// DREMIO_HOME whose bin/dremio-admin loads a logical backup (default: the cluster's).
    #[arg(long, value_name = "DIR")]
    pub dremio_home: Option<PathBuf>,
    /// Compare with this export tree instead of the backup's own catalog or `clone_tree`.
    #[arg(long, value_name = "DIR")]
    pub expect_tree: Option<PathBuf>,
    /// Keep the scratch copy (and its coordinator's log) after the drill, for a look.
    #[arg(long)]
    pub keep_scratch: bool,
    #[command(flatten)]
    pub dr: DrOpts,
}

#[derive(Debug, Subcommand)]
pub enum StandbyCmd {
    /// The pilot-light cycle: stop, restore the newest backup (when newer than what the standby
    /// holds), start, clone from the primary, validate. Any failure after the stop puts the
    /// previous state back and starts it. Safe to run every hour from cron.
    Refresh(StandbyRefreshCmd),
}

#[derive(Debug, Args)]
pub struct StandbyRefreshCmd {
    /// The standby's cluster name in the config file (it has `standby_for`).
    #[arg(long, env = "LIFEBOAT_CLUSTER")]
    pub cluster: Option<String>,
    /// Run every check and print what would be done, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// If another run holds the standby's lock, wait up to this long instead of exiting 6.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_lock: Option<std::time::Duration>,
    #[command(flatten)]
    pub dr: DrOpts,
}

#[derive(Debug, Args)]
pub struct FailoverCmd {
    /// The standby's cluster name in the config file (it has `standby_for`).
    #[arg(long, env = "LIFEBOAT_CLUSTER")]
    pub cluster: Option<String>,
    /// Print the whole plan, with the backup it would use and its age, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Go on although the primary still answers, or the standby's checks fail.
    #[arg(long)]
    pub force: bool,
    /// If another run holds the standby's lock, wait up to this long instead of exiting 6.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_lock: Option<std::time::Duration>,
    #[command(flatten)]
    pub dr: DrOpts,
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

#[derive(Debug, Args)]
pub struct CompletionsCmd {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManCmd {
    /// Write lifeboat.1 and lifeboat-<subcommand>.1 pages into this (existing) folder instead.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The completion script for `shell` (built whole: the generator panics on a failed write, and
/// `| head` must not make it).
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "lifeboat", &mut out);
    out
}

/// The man page of lifeboat, its subcommands listed (roff).
pub fn man_page() -> std::io::Result<Vec<u8>> {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(out)
}

/// Writes lifeboat.1 and one page per subcommand (lifeboat-clone-apply.1, ...) into `dir`.
pub fn man_pages_to(dir: &std::path::Path) -> std::io::Result<()> {
    use clap::CommandFactory;
    clap_mangen::generate_to(Cli::command(), dir)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn druid_mode_excludes_the_dremio_inputs_and_its_flags_need_druid_urls() {
        use clap::Parser;
        let parse =
            |args: &[&str]| super::Cli::try_parse_from([&["lifeboat", "doctor"], args].concat());
        let ok = parse(&[
            "--druid-url",
            "http://a:8081,http://b:8081",
            "--druid-broker",
            "http://c:8082",
        ])
        .unwrap();
        let super::Command::Doctor(d) = ok.command else {
            panic!("not doctor")
        };
        assert_eq!(d.druid_urls, ["http://a:8081", "http://b:8081"]);
        assert!(parse(&["--druid-broker", "http://c:8082"]).is_err());
        // The metadata store (and deep storage) may be checked alone.
        assert!(
            parse(&[
                "--druid-metadata",
                "postgres://u@h/d",
                "--deep-storage",
                "s3://b/p"
            ])
            .is_ok()
        );
        assert!(parse(&["--deep-storage", "s3://b/p"]).is_err());
        assert!(
            parse(&[
                "--druid-metadata",
                "postgres://u@h/d",
                "--dremio-url",
                "http://d:9047"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "--druid-url",
                "http://a:8081",
                "--dremio-url",
                "http://d:9047"
            ])
            .is_err()
        );
    }

    #[test]
    fn druid_backup_and_restore_flags_exclude_the_dremio_inputs() {
        use clap::Parser;
        let parse = |args: &[&str]| super::Cli::try_parse_from([&["lifeboat"], args].concat());
        let ok = parse(&[
            "backup",
            "--druid-metadata",
            "postgres://druid@db/druid",
            "--druid-url",
            "http://a:8081,http://b:8081",
            "--to",
            "/b",
        ])
        .unwrap();
        let super::Command::Backup(b) = ok.command else {
            panic!("not backup")
        };
        assert_eq!(b.druid.druid_urls.len(), 2);
        assert!(
            parse(&[
                "backup",
                "--druid-metadata",
                "postgres://u@h/d",
                "--dremio-url",
                "http://d:9047"
            ])
            .is_err()
        );
        let ok = parse(&[
            "restore",
            "--druid-metadata",
            "mysql://u@h/d",
            "--deep-storage-map",
            "s3://a/p=s3://b/p",
            "--strict",
            "--dry-run",
        ])
        .unwrap();
        let super::Command::Restore(r) = ok.command else {
            panic!("not restore")
        };
        assert!(r.druid.strict && r.dry_run);
        assert_eq!(r.druid.deep_storage_map, ["s3://a/p=s3://b/p"]);
        assert!(
            parse(&["restore", "--strict"]).is_err(),
            "druid flags need --druid-metadata"
        );
        assert!(parse(&["restore", "--druid-metadata", "mysql://u@h/d", "--replace"]).is_err());
    }

    #[test]
    fn completions_know_every_subcommand() {
        let script = String::from_utf8(super::completions(clap_complete::Shell::Bash)).unwrap();
        for sub in super::Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
        {
            assert!(
                script.contains(sub.get_name()),
                "{} missing",
                sub.get_name()
            );
        }
        assert!(script.contains("--paths-local"));
    }

    #[test]
    fn man_pages_cover_the_tool_and_each_subcommand() {
        let page = String::from_utf8(super::man_page().unwrap()).unwrap();
        assert!(
            page.starts_with(".ie") || page.contains(".TH lifeboat"),
            "{page:.200}"
        );
        assert!(page.contains(super::VERSION));
        let dir = tempfile::tempdir().unwrap();
        super::man_pages_to(dir.path()).unwrap();
        for name in ["lifeboat.1", "lifeboat-restore.1", "lifeboat-clone-apply.1"] {
            assert!(dir.path().join(name).is_file(), "{name} not written");
        }
    }

    #[test]
    fn the_version_names_the_commit() {
        let commit = env!("LIFEBOAT_GIT_COMMIT");
        assert!(super::VERSION.contains(commit));
        // Built from a checkout (as here and in CI), the commit is a hash, not "unknown".
        if std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.git")).exists() {
            assert!(
                commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()),
                "{commit}"
            );
        }
    }
}
