//! A strict simulator of an Apache Druid Coordinator that is also the Overlord, for lifeboat's
//! tests: the leader endpoints every node answers, and the artefacts lifeboat syncs (retention
//! rules, coordinator dynamic config, lookups, the Overlord's worker config, compaction,
//! supervisors, basic-security users and roles) with Druid's strictness and audit history.
//!
//! Layers: `server` (HTTP) -> `api` (auth, local endpoints, leader routing, the `proxy`) ->
//! `auth` -> `rules`, `dynconfig`, `lookups`, `worker`, `compaction`, `supervisors`, `security`
//! (artefacts) -> `history`, `parse` -> `store` (the metadata tables behind a trait); `leader`
//! says who leads, `zk` keeps it from Curator latches in ZooKeeper, and `sql` is the store in
//! PostgreSQL or MySQL/MariaDB. The tests talk to it with dremio-sim's HTTP client.

pub mod api;
pub mod auth;
pub mod compaction;
pub mod dynconfig;
pub mod history;
pub mod leader;
pub mod lookups;
pub mod parse;
pub mod proxy;
pub mod rules;
pub mod security;
pub mod server;
pub mod sql;
pub mod store;
pub mod supervisors;
pub mod worker;
pub mod zk;
