//! Druid's side of cloning: its artefact kinds and normal forms ([`model`]), the export of a live
//! cluster ([`export`]), applying one item over REST ([`cluster`]), host fields and passwords
//! ([`mapping`]). [`DruidSchema`] and [`DruidCluster`] plug them into the engine
//! (`crate::clone`).

pub mod cluster;
pub mod export;
pub mod mapping;
pub mod model;

use serde_json::{Map, Value};

use crate::clone::cluster::Schema;
use crate::clone::kind::PartValue;
use crate::clone::tree::Tree;
use mapping::Mapping;
use model::{DEFAULT_RULES, HOST_FIELDS, Kind, Object, Part};

pub use cluster::DruidCluster;

/// A clone tree of Druid's artefacts.
pub type DruidTree = Tree<Kind>;

/// Druid's rules over a tree, with the run's mapping.
#[derive(Debug, Default, Clone)]
pub struct DruidSchema {
    pub mapping: Mapping,
}

impl Schema for DruidSchema {
    type Kind = Kind;
    type Part = Part;

    fn own_fields(&self, o: &Object) -> Map<String, Value> {
        model::own_fields(o, &self.mapping.host_fields)
    }

    fn parts(&self, _o: &Object) -> Vec<(Part, PartValue)> {
        vec![]
    }

    /// A datasource's rules come after `_default`'s (the documented order).
    fn references(&self, o: &Object) -> Vec<Vec<Vec<String>>> {
        match o.kind {
            Kind::Rules if o.path != [DEFAULT_RULES] => vec![vec![vec![DEFAULT_RULES.into()]]],
            _ => vec![],
        }
    }

    /// The dynamic config loses the host fields the mapping does not give, and takes the
    /// mapping's values of the others: Druid merges a POST over the current config, so the
    /// target keeps its own.
    fn to_target(&self, mut o: Object, _source: &Tree<Kind>) -> Object {
        if o.kind == Kind::DynamicConfig {
            for f in HOST_FIELDS {
                match self.mapping.host_fields.get(f) {
                    Some(v) => o.body.insert(f.into(), v.clone()),
                    None => o.body.remove(f),
                };
            }
        }
        o
    }

    fn source_path(&self, _kind: Kind, path: &[String]) -> Vec<String> {
        path.to_vec()
    }
}
