//! ZooKeeper as Dremio and Druid clusters use it: the four-letter words over TCP (`words`) and their
//! answers (`stats`); the master latch (`latch`) and the discovery payloads (`payload`) read
//! through a real client (`registry`).

pub mod latch;
pub mod payload;
pub mod registry;
pub mod stats;
pub mod words;

pub use registry::{Registration, Snapshot, ZkError};
pub use stats::{Mntr, Mode, Reply, Srvr};
