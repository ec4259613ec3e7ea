//! Disaster-recovery procedures' building blocks, cluster-neutral where they can be: the start
//! and stop commands of a coordinator (`service`), waiting until it serves and telling whether a
//! primary is down (`serving`), the timeline of phases that RTO is measured on (`timeline`), what
//! a standby holds (`state`) and the host-local lock that keeps two refreshes apart (`lock`).

pub mod lock;
pub mod service;
pub mod serving;
pub mod state;
pub mod timeline;

use std::path::PathBuf;

use crate::error::{Classify, ExitClass};

/// Failures of the DR building blocks.
#[derive(Debug, thiserror::Error)]
pub enum DrError {
    /// A `start`/`stop`/`drill_start` template that cannot be filled in.
    #[error("{key} {template:?}: {why}")]
    Template {
        key: String,
        template: String,
        why: String,
    },
    /// A start or stop command that failed or did not finish in time; `tail` is the end of its
    /// output (at most 4 KiB, secrets are the command's own business: it never sees lifeboat's).
    #[error("{what} `{command}` {outcome}{}", if tail.is_empty() { String::new() } else { format!("; its output ends with:\n{tail}") })]
    CommandFailed {
        what: String,
        command: String,
        outcome: String,
        tail: String,
    },
    /// The coordinator never answered `server_status` OK in time, or its process ended first.
    #[error("{what} did not serve: {why}")]
    NotServing { what: String, why: String },
    /// Another run holds the host-local lock.
    #[error(
        "another run holds {path} ({holder}): wait for it (or pass --wait-lock 1h); the lock is released when that process ends, however it ends"
    )]
    Busy { path: PathBuf, holder: String },
    #[error("{path}: {why}")]
    State { path: PathBuf, why: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Stopped by SIGINT/SIGTERM.
    #[error("interrupted")]
    Interrupted,
}

impl Classify for DrError {
    fn exit_class(&self) -> ExitClass {
        match self {
            DrError::Template { .. } => ExitClass::Usage,
            DrError::CommandFailed { .. } | DrError::NotServing { .. } => ExitClass::NotServing,
            DrError::Busy { .. } => ExitClass::LockBusy,
            DrError::State { .. } => ExitClass::Integrity,
            DrError::Io { .. } => ExitClass::Internal,
            DrError::Interrupted => ExitClass::Interrupted,
        }
    }
}
