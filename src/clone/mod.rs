//! The clone engine, which knows no cluster kind: export a cluster's artefacts to a git-friendly
//! tree, plan the difference with a live target, apply it in dependency order, report per object.
//!
//! Everything goes through the tree format ([`tree`]): a live source is first exported into a
//! temporary tree, and the target is exported into another one to be compared against; so memory
//! holds small per-object summaries, never the bodies. A cluster kind plugs in by describing its
//! kinds ([`kind`]) and implementing [`cluster::Schema`] and [`cluster::Cluster`]; Dremio's is in
//! `crate::dremio::clone`.

pub mod apply;
pub mod cluster;
pub mod filter;
pub mod fingerprint;
mod graph;
pub mod item;
pub mod kind;
#[cfg(test)]
mod notes;
pub mod plan;
pub mod tree;

use crate::error::{Classify, ExitClass};

/// Failures of the clone commands as a whole (one object's failure is in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum CloneError {
    #[error("{path}: {message}")]
    Tree {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Mapping(String),
    /// The cluster could not be read completely (after retries).
    #[error("{0}")]
    Incomplete(String),
    #[error(
        "interrupted: the export stopped before the end and removed nothing from the tree; run it again"
    )]
    Interrupted,
    #[error("{0}")]
    Refused(String),
}

impl Classify for CloneError {
    fn exit_class(&self) -> ExitClass {
        match self {
            CloneError::Tree { .. } | CloneError::Mapping(_) => ExitClass::Usage,
            CloneError::Refused(_) => ExitClass::Refused,
            CloneError::Incomplete(_) => ExitClass::Storage,
            CloneError::Interrupted => ExitClass::Interrupted,
            CloneError::Write { .. } | CloneError::Read { .. } => ExitClass::Internal,
        }
    }
}
