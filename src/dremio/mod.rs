//! Everything that knows a Dremio installation: dremio.conf, the version from jars, the KV store's lock.

pub mod clone;
pub mod conf;
pub mod install;
pub mod lock;
pub mod logical;
pub mod rest;
pub mod version;

use std::path::PathBuf;

use crate::error::{Classify, ExitClass};

pub use install::Installation;
pub use version::DremioVersion;

/// Failures while reading an installation or its store.
#[derive(Debug, thiserror::Error)]
pub enum DremioError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {message}")]
    ConfSyntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{path}: key '{key}' refers to ${{{reference}}}, which is neither a key nor an environment variable"
    )]
    ConfUnresolved {
        path: PathBuf,
        key: String,
        reference: String,
    },
    #[error("{path}: substitutions for '{key}' refer to each other in a loop")]
    ConfCycle { path: PathBuf, key: String },
    #[error(
        "{path}: substitutions for '{key}' nest more than 32 deep or expand to more than 1 MiB; write the value out"
    )]
    ConfTooLarge { path: PathBuf, key: String },
    #[error("'{value}' is not a Dremio version (expected e.g. 25.2.0 or 25.2.0-<build>)")]
    BadVersion { value: String },
    #[error(
        "cannot tell which Dremio version this is: {why}. Pass --dremio-version (e.g. 25.2.0) or --dremio-home of an installation whose jars/ holds dremio-dac-backend-<version>-*.jar"
    )]
    NoVersion { why: String },
    #[error("{what}: give --dremio-home (reads conf/dremio.conf) or --paths-local")]
    NoLayout { what: String },
    #[error(
        "paths.db {db} has no RocksDB store (no catalog/CURRENT): check paths.local / paths.db, or --paths-local"
    )]
    NotAStore { db: PathBuf },
    #[error(
        "no active Dremio coordinator: {tried}. Check that the coordinators run (`GET /apiv2/server_status` answers 200 on the master) and the URLs"
    )]
    NoActiveCoordinator { tried: String },
    #[error("{url}: {message}")]
    Auth { url: String, message: String },
    #[error("{url}: {}{message}", status.map(|s| format!("HTTP {s}: ")).unwrap_or_default())]
    Api {
        url: String,
        status: Option<u16>,
        message: String,
    },
    #[error(
        "no Dremio credentials: set LIFEBOAT_DREMIO_USER and LIFEBOAT_DREMIO_PASSWORD (or LIFEBOAT_DREMIO_PASSWORD_FILE), or LIFEBOAT_DREMIO_TOKEN (or LIFEBOAT_DREMIO_TOKEN_FILE)"
    )]
    NoCredentials,
    #[error("the coordinator's backup at {path} is incomplete: {problem}; nothing was committed")]
    IncompleteBackup { path: PathBuf, problem: String },
    #[error(
        "the KV store at {lock} is locked by a running process{pid}: a live coordinator cannot be copied consistently. Stop the coordinator (or back up a standby's store, or use an online backup), then run again"
    )]
    StoreLocked { lock: PathBuf, pid: String },
    #[error(
        "the restore target's KV store {lock} is open in a running coordinator{}: restoring under it would corrupt it. Stop the coordinator that uses {paths_local} (e.g. `dremio stop` or `systemctl stop dremio` on its host), then run the restore again",
        if *pid > 0 { format!(" (pid {pid})") } else { String::new() }
    )]
    TargetInUse {
        lock: PathBuf,
        paths_local: PathBuf,
        pid: i32,
    },
}

impl DremioError {
    pub(crate) fn store_locked(lock: PathBuf, holder: &lock::Holder) -> Self {
        let pid = if holder.pid > 0 {
            format!(" (pid {})", holder.pid)
        } else {
            String::new()
        };
        DremioError::StoreLocked { lock, pid }
    }
}

impl Classify for DremioError {
    fn exit_class(&self) -> ExitClass {
        match self {
            DremioError::Read { .. } => ExitClass::Usage,
            DremioError::StoreLocked { .. } | DremioError::TargetInUse { .. } => ExitClass::Refused,
            DremioError::NoActiveCoordinator { .. }
            | DremioError::Auth { .. }
            | DremioError::Api { .. } => ExitClass::Storage,
            DremioError::IncompleteBackup { .. } => ExitClass::Integrity,
            _ => ExitClass::Usage,
        }
    }
}
