//! Apache Druid, the second system lifeboat serves: its leader-aware REST client ([`rest`]).

pub mod rest;
