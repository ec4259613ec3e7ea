//! Druid's metadata store (PostgreSQL or MySQL/MariaDB) as a backup's content: where it is and how
//! to connect ([`MetaUrl`], [`connect`], TLS with a CA file), its tables and Druid's DDL
//! ([`tables`]), the open CSV dialect of the table files ([`csv`]), the consistent snapshot into
//! one file per table ([`dump`]), the scripts that load them without lifeboat ([`scripts`]) and
//! the load into an empty database in one transaction ([`load`]).

pub mod csv;
pub mod dump;
pub mod load;
pub mod scripts;
pub mod tables;

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::error::{Classify, ExitClass};
use crate::secrets::Secret;

/// `LIFEBOAT_DRUID_METADATA_PASSWORD` (or its `_FILE` twin): the only source of the password.
pub const PASSWORD_VAR: &str = "LIFEBOAT_DRUID_METADATA_PASSWORD";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    Postgresql,
    Mysql,
}

/// Where the store is, from `--druid-metadata` or the config (never with a password in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaUrl {
    pub kind: DbKind,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub db: Option<String>,
}

/// TLS to the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Tls {
    /// Plain TCP (the default, as Druid's own connector).
    #[default]
    Off,
    /// TLS, the server's certificate checked against this CA file (PEM) and its name.
    CaFile(PathBuf),
}

/// Everything needed to connect.
#[derive(Debug, Clone)]
pub struct MetaConfig {
    pub url: MetaUrl,
    pub password: Option<Secret>,
    pub tls: Tls,
    pub connect_timeout: Duration,
    /// `application_name` / program name shown by the server (`lifeboat-backup`, ...).
    pub application: &'static str,
}

/// A connection to either kind.
pub enum Db {
    Pg(tokio_postgres::Client),
    My(mysql_async::Conn),
}

#[derive(Debug, Error)]
pub enum MetaError {
    /// Unreachable, TLS, refused credentials: what failed and what to do.
    #[error("metadata store {url}: {why}; {remedy}")]
    Connect {
        url: String,
        why: String,
        remedy: String,
    },
    /// The target holds Druid rows: restore only goes into an empty store.
    #[error(
        "metadata store {url} is not empty: {table} has {rows} rows{more}; restore only loads into an empty database: give a new database, or drop Druid's tables after making sure nothing needs them"
    )]
    NotEmpty {
        url: String,
        table: String,
        rows: u64,
        more: String,
    },
    /// A refusal that is not about emptiness (privileges, version, space, a newer Druid schema).
    #[error("{0}")]
    Refused(String),
    /// A table file of the backup is not what its manifest says (rows, columns, CSV).
    #[error("{0}")]
    Corrupt(String),
    /// A statement failed.
    #[error("{what}: {why}")]
    Query { what: String, why: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("interrupted")]
    Interrupted,
}

impl Classify for MetaError {
    fn exit_class(&self) -> ExitClass {
        match self {
            MetaError::Connect { .. } | MetaError::Query { .. } => ExitClass::Storage,
            MetaError::NotEmpty { .. } | MetaError::Refused(_) => ExitClass::Refused,
            MetaError::Corrupt(_) => ExitClass::Integrity,
            MetaError::Io(_) => ExitClass::Internal,
            MetaError::Interrupted => ExitClass::Interrupted,
        }
    }
}

impl MetaUrl {
    /// `postgres[ql]://user@host[:port][/db]` or `mysql|mariadb://...`; a password is refused.
    pub fn parse(text: &str) -> Result<MetaUrl, String> {
        let _ = text;
        todo!("helper A1: moved from doctor/metastore.rs")
    }

    /// The URL as given (it has no password), for reports.
    pub fn shown(&self) -> String {
        todo!("helper A1")
    }
}

/// Connects, with TLS when asked, within the config's timeout.
pub async fn connect(config: &MetaConfig) -> Result<Db, MetaError> {
    let _ = config;
    todo!("helper A1")
}

impl Db {
    pub fn kind(&self) -> DbKind {
        match self {
            Db::Pg(_) => DbKind::Postgresql,
            Db::My(_) => DbKind::Mysql,
        }
    }

    /// `SELECT version()`.
    pub async fn server_version(&mut self) -> Result<String, MetaError> {
        todo!("helper A1")
    }
}
