//! The repository contract: `<location>/<cluster>/<backup-id>/{data.tar.zst, index.jsonl.zst,
//! manifest.json}`, the manifest written last. Listing, committing, writing, reading and copying
//! backups, on top of `store` (bytes) and `archive` (tar+zstd). Knows nothing of Dremio.

pub mod list;
pub mod manifest;
pub mod read;

pub use list::Repo;
pub use manifest::Manifest;
