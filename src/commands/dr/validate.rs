//! Does a coordinator serve what it should? Against a reference fingerprint (the backup's own,
//! an export tree's): export it into a scratch tree and diff the fingerprints. Against a live
//! primary: clone's plan in mirror mode, which must change nothing.
#![allow(unused_variables, dead_code)] // SKELETON: helper C fills this in

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::commands::Ctx;
use crate::commands::clone::Conn;

/// What a coordinator is compared with.
#[derive(Debug, Clone)]
pub enum Reference {
    /// A fingerprint file (a backup's, extracted by the restore).
    Fingerprint(PathBuf),
    /// An export tree (`--expect-tree`, `clone_tree`).
    Tree(PathBuf),
    /// Nothing to compare with: only serving and logging in are checked (a warning).
    None,
}

/// The verdict.
#[derive(Debug, Clone)]
pub struct Validation {
    pub ok: bool,
    /// One line for the timeline.
    pub summary: String,
    pub json: Value,
}

/// Exports `conn` into `scratch` (a new folder) and compares its fingerprint with `reference`.
pub async fn against(
    ctx: &Ctx,
    conn: &Conn,
    reference: &Reference,
    scratch: &Path,
) -> anyhow::Result<Validation> {
    todo!()
}
