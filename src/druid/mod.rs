//! Apache Druid, the second system lifeboat serves: its leader-aware REST client ([`rest`]) and
//! its artefacts for the clone engine ([`clone`]).

pub mod clone;
pub mod rest;
