//! One file per subcommand: read options, call the layers below, print results.

pub mod backup;
pub mod clone;
pub mod copy;
pub mod demo;
pub mod doctor;
pub mod dr;
pub mod list;
pub mod prune;
pub mod restore;
pub mod status;
pub mod verify;

use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use crate::archive::Layout;
use crate::config::Config;
use crate::error::{Classify, ExitClass};
use crate::progress::Progress;
use crate::repo::{Manifest, Repo};
use crate::store::Location;
use crate::store::location::Access;

/// Refusals and failures decided by the commands themselves.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Integrity(String),
    /// The command already printed its result (with `--json`, its JSON object); this only sets
    /// the exit code and says why on stderr.
    #[error("{message}")]
    Reported { class: ExitClass, message: String },
}

impl Classify for CommandError {
    fn exit_class(&self) -> ExitClass {
        match self {
            CommandError::Refused(_) => ExitClass::Refused,
            CommandError::Usage(_) => ExitClass::Usage,
            CommandError::Integrity(_) => ExitClass::Integrity,
            CommandError::Reported { class, .. } => *class,
        }
    }
}

/// The top-level entries an archive of this backup may hold besides its folders: a logical
/// backup's are dremio-admin's table files and the catalog's fingerprint; a Druid metadata
/// backup's its table files, load scripts and README.
pub(crate) fn archive_layout(manifest: &Manifest) -> Layout {
    if manifest.mode == "logical" {
        Layout {
            top_level_file: |name| {
                crate::dremio::logical::is_table_file(name)
                    || name == crate::repo::manifest::CATALOG_MEMBER
            },
        }
    } else if manifest.mode == crate::repo::manifest::MODE_METADATA {
        Layout {
            top_level_file: crate::druid::metastore::scripts::is_backup_file,
        }
    } else {
        Layout::FOLDERS_ONLY
    }
}

/// What every command gets: how to report progress, whether to print JSON, the configuration.
#[derive(Clone)]
pub struct Ctx {
    pub json: bool,
    pub progress: Arc<dyn Progress>,
    pub config: Arc<Config>,
    /// Cancelled on SIGINT/SIGTERM: pipelines stop at their next chunk, restores roll back.
    pub cancel: CancellationToken,
    /// Results are not printed: the command runs as a step of another that prints its own
    /// (a drill's restore), so stdout keeps one result, one JSON object with `--json`.
    pub silent: bool,
}

impl Ctx {
    pub fn new(json: bool, progress: Arc<dyn Progress>, config: Config) -> Ctx {
        Ctx {
            json,
            progress,
            config: Arc::new(config),
            cancel: CancellationToken::new(),
            silent: false,
        }
    }

    /// This context for a step whose result the calling command reports itself.
    pub fn silenced(&self) -> Ctx {
        Ctx {
            silent: true,
            ..self.clone()
        }
    }

    /// Opens a location given by its name in the configuration file, or by URL.
    pub fn open(&self, name_or_url: &str, access: Access) -> anyhow::Result<Location> {
        let spec = self
            .config
            .location(name_or_url, &|var| std::env::var(var).ok())?;
        Ok(Location::open_spec(&spec, access)?)
    }

    /// Opens the backups of `cluster` in a location, checking access first.
    pub async fn repo(
        &self,
        name_or_url: &str,
        cluster: &str,
        access: Access,
    ) -> anyhow::Result<Repo> {
        let repo =
            Repo::new(self.open(name_or_url, access)?, cluster)?.cancelled_by(self.cancel.clone());
        repo.loc.check_access().await?;
        Ok(repo)
    }

    /// Writes metrics when a file was asked for; a metrics failure is reported, never fatal.
    pub fn metrics(&self, file: Option<&std::path::Path>, samples: &[crate::metrics::Sample]) {
        if let Some(path) = file
            && let Err(e) = crate::metrics::write(path, samples)
        {
            self.progress.note(&format!(
                "warning: cannot write metrics to {}: {e}",
                path.display()
            ));
        }
    }
    /// Prints the command's result: the JSON object with `--json`, else the human text.
    pub fn emit(&self, json: &serde_json::Value, human: &str) {
        if self.silent {
            return;
        }
        if self.json {
            crate::output::line(&json.to_string());
        } else if !human.is_empty() {
            crate::output::line(human);
        }
    }
}

/// The class of the first classified error in an `anyhow` chain: the commands know every layer's
/// error type. `main` picks the exit code with it; the DR procedures their steps' classes.
pub fn class_of(err: &anyhow::Error) -> ExitClass {
    for cause in err.chain() {
        let class = if let Some(e) = cause.downcast_ref::<crate::dr::DrError>() {
            e.exit_class()
        } else if let Some(e) = cause.downcast_ref::<crate::store::StoreError>() {
            e.exit_class()
        } else if let Some(e) = cause.downcast_ref::<crate::archive::ArchiveError>() {
            e.exit_class()
        } else if let Some(e) = cause.downcast_ref::<crate::dremio::DremioError>() {
            e.exit_class()
        } else if let Some(e) = cause.downcast_ref::<crate::druid::rest::DruidError>() {
            e.exit_class()
        } else if let Some(e) = cause.downcast_ref::<crate::druid::metastore::MetaError>() {
            e.exit_class()
        } else if let Some(e) = cause.downcast_ref::<CommandError>() {
            e.exit_class()
        } else if let Some(e) = cause.downcast_ref::<crate::clone::CloneError>() {
            e.exit_class()
        } else if let Some(e) = cause.downcast_ref::<crate::config::ConfigError>() {
            e.exit_class()
        } else if let Some(e) = cause.downcast_ref::<crate::crypto::CryptoError>() {
            e.exit_class()
        } else if cause
            .downcast_ref::<crate::store::lock::LockBusy>()
            .is_some()
        {
            ExitClass::LockBusy
        } else {
            continue;
        };
        return class;
    }
    ExitClass::Internal
}
