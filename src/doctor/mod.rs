//! `lifeboat doctor`: is a Dremio or Druid deployment HA and DR-ready? Each check gives pass /
//! warn / fail / skip, its evidence in figures, and a remedy line.

pub mod check;
pub mod coordinators;
pub mod deepstore;
pub mod druid;
pub mod election;
pub mod homes;
pub mod leaders;
pub mod lock;
pub mod metastore;
pub mod mountinfo;
pub mod throughput;
pub mod volume;
pub mod zookeeper;

pub use check::{Area, Check, Master, Status, overall};
