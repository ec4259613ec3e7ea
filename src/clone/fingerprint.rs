//! A tree's fingerprint: every file's path, size and SHA-256, sorted by path. An online backup
//! records the catalog's at backup time (the archive member [`FILE_NAME`], one JSON line per
//! file); a drill or failover compares a restored coordinator's export with it (or with a kept
//! clone tree's) and names what is missing, differs or is extra. Export trees are deterministic
//! (keys sorted, no ids, tags or timestamps), so equal catalogs have equal fingerprints.
#![allow(unused_variables, dead_code)] // SKELETON: helper B fills this in

use std::io::{Read, Write};
use std::path::Path;

use serde_json::Value;

use super::CloneError;

/// The archive member (top level of a logical backup) holding the catalog's fingerprint.
pub const FILE_NAME: &str = "lifeboat-catalog.jsonl";
/// The most files a fingerprint may list (a catalog of two million objects and their SQL files).
pub const MAX_ENTRIES: usize = 4_000_000;
/// The largest fingerprint file read (a line is at most ~4.2 KiB: a 4 KiB path and a digest).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// One file of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, `/`-separated, as the tree names it (never the marker file).
    pub path: String,
    pub bytes: u64,
    pub sha256: [u8; 32],
}

/// Every file of a tree but its marker ([`crate::clone::tree::MARKER`]), sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub entries: Vec<Entry>,
}

impl Fingerprint {
    /// Walks `root` (not following links: a link, a socket or a path over 4 KiB is an error),
    /// hashing each file; memory is the entries only.
    pub fn of_tree(root: &Path) -> Result<Fingerprint, CloneError> {
        todo!()
    }

    /// `{"path":..,"bytes":..,"sha256":"<hex>"}` per line, in order.
    pub fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        todo!()
    }

    /// Reads what [`Fingerprint::write_to`] wrote, as hostile input: at most [`MAX_FILE_BYTES`]
    /// and [`MAX_ENTRIES`], every path relative with plain components, sorted and unique.
    pub fn read_from(input: &mut dyn Read) -> Result<Fingerprint, CloneError> {
        todo!()
    }

    pub fn read_file(path: &Path) -> Result<Fingerprint, CloneError> {
        todo!()
    }
}

/// How an actual tree differs from a reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// In the reference, not in the actual tree.
    pub missing: Vec<String>,
    /// In both, with other bytes.
    pub differs: Vec<String>,
    /// In the actual tree only.
    pub extra: Vec<String>,
    /// Whole counts (the lists keep their first [`MAX_LISTED`] paths).
    pub counts: DiffCounts,
}

/// The first this-many paths of each list are kept; the counts are always whole.
pub const MAX_LISTED: usize = 50;

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.counts.missing == 0 && self.counts.differs == 0 && self.counts.extra == 0
    }

    /// e.g. "1,204 identical; 2 missing (catalog/Sales.space.json, ...), 1 differs (...)".
    pub fn summary(&self) -> String {
        todo!()
    }

    /// `{"same", "missing": {"count", "paths"}, "differs": ..., "extra": ...}`.
    pub fn to_json(&self) -> Value {
        todo!()
    }
}

/// Compares in one merge pass over both sorted lists.
pub fn diff(reference: &Fingerprint, actual: &Fingerprint) -> Diff {
    todo!()
}

/// Whole counts, whatever was listed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffCounts {
    pub same: usize,
    pub missing: usize,
    pub differs: usize,
    pub extra: usize,
}
