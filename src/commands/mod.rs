//! One file per subcommand: read options, call the layers below, print results.

pub mod backup;
pub mod demo;
pub mod fetch;
pub mod list;
pub mod restore;
pub mod verify;

use std::sync::Arc;

use crate::error::{Classify, ExitClass};
use crate::progress::Progress;

/// Refusals and failures decided by the commands themselves.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Integrity(String),
}

impl Classify for CommandError {
    fn exit_class(&self) -> ExitClass {
        match self {
            CommandError::Refused(_) => ExitClass::Refused,
            CommandError::Usage(_) => ExitClass::Usage,
            CommandError::Integrity(_) => ExitClass::Integrity,
        }
    }
}

/// What every command gets: how to report progress and whether to print JSON.
#[derive(Clone)]
pub struct Ctx {
    pub json: bool,
    pub progress: Arc<dyn Progress>,
}

impl Ctx {
    /// Prints the command's result: the JSON object with `--json`, else the human text.
    pub fn emit(&self, json: &serde_json::Value, human: &str) {
        if self.json {
            println!("{json}");
        } else if !human.is_empty() {
            println!("{human}");
        }
    }
}
