//! lifeboat's integration tests: the real binary against real RocksDB stores, a local folder and a
//! real S3 server (SeaweedFS, started by scripts/test.sh).

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod clone;
mod conformance;
mod deepstore;
mod doctor;
mod doctor_druid;
mod dr;
mod druid_backup;
mod druid_clone;
mod faults;
mod format2_read;
mod hostile;
mod incremental;
mod metastore_dump;
mod metastore_load;
mod metastore_tls;
mod online;
mod recipe;
mod refusals;
mod replication;
mod zk;
