//! lifeboat: disaster recovery for Dremio clusters — snapshot, ship, verify and restore.
//!
//! The binary (`main.rs`) is a thin shell over these layers; see docs/ARCHITECTURE.md.

pub mod archive;
pub mod cli;
pub mod clone;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod doctor;
pub mod dr;
pub mod dremio;
pub mod druid;
pub mod error;
pub mod fsutil;
pub mod host;
pub mod limits;
pub mod metrics;
pub mod output;
pub mod progress;
pub mod repo;
pub mod retention;
pub mod secrets;
pub mod store;
pub mod units;
pub mod zk;

/// The version recorded in every manifest this build writes.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
