//! The repository contract: `<location>/<cluster>/<backup-id>/{data.tar.zst, index.jsonl.zst,
//! manifest.json}`, the manifest written last. Listing, committing, writing, reading and copying
//! backups, on top of `store` (bytes) and `archive` (tar+zstd). Knows nothing of Dremio.

pub mod cache;
pub mod copy;
pub mod layout;
pub mod list;
pub mod manifest;
pub mod prune;
pub mod read;
pub mod read2;
mod read_common;
pub mod write;
pub mod write2;

pub use layout::Repo;
pub use manifest::Manifest;
