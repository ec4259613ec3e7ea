//! Apache Druid, the second system lifeboat serves: its leader-aware REST client ([`rest`]), its
//! artefacts for the clone engine ([`clone`]), its metadata store as a backup's content
//! ([`metastore`]: connection, tables and DDL, the CSV dialect, dump and load), segments'
//! `loadSpec`s and their rewrite ([`loadspec`]), the deep-storage consistency check
//! ([`deepstore`]) and resuming suspended supervisors at failover ([`supervisors`]).

pub mod clone;
pub mod deepstore;
pub mod loadspec;
pub mod metastore;
pub mod rest;
pub mod supervisors;
