//! Druid's side of cloning: its artefact kinds and normal forms ([`model`]), the export of a live
//! cluster ([`export`]), applying one item over REST ([`cluster`]), host fields and passwords
//! ([`mapping`]). [`DruidSchema`] and [`DruidCluster`] plug them into the engine
//! (`crate::clone`).

pub mod cluster;
pub mod endpoints;
pub mod export;
pub mod mapping;
pub mod model;
pub mod security;

use serde_json::{Map, Value};

use crate::clone::cluster::Schema;
use crate::clone::kind::PartValue;
use crate::clone::tree::Tree;
use mapping::Mapping;
use model::{DEFAULT_RULES, HOST_FIELDS, Kind, Object, Part, ROLES};

pub use cluster::DruidCluster;

/// A clone tree of Druid's artefacts.
pub type DruidTree = Tree<Kind>;

/// Druid's rules over a tree, with the run's mapping.
#[derive(Debug, Default, Clone)]
pub struct DruidSchema {
    pub mapping: Mapping,
    /// Supervisors run (or stay suspended) as on the source: a failover. Otherwise every
    /// supervisor written is suspended, as a DR cluster must not ingest alongside the primary.
    pub resume_supervisors: bool,
}

impl Schema for DruidSchema {
    type Kind = Kind;
    type Part = Part;

    fn own_fields(&self, o: &Object) -> Map<String, Value> {
        model::own_fields(o, &self.mapping.host_fields, self.resume_supervisors)
    }

    fn parts(&self, _o: &Object) -> Vec<(Part, PartValue)> {
        vec![]
    }

    /// Druid's documented order is a sequence of stages (security, lookups, dynamic configs,
    /// rules, compaction, supervisors last): a supervisor resumed on failover must find its
    /// datasource's rules and compaction in place.
    fn staged(&self) -> bool {
        true
    }

    /// A datasource's rules come after `_default`'s (the documented order); a user's role
    /// assignments need the roles.
    fn references(&self, o: &Object) -> Vec<Vec<Vec<String>>> {
        match o.kind {
            Kind::Rules if o.path != [DEFAULT_RULES] => vec![vec![vec![DEFAULT_RULES.into()]]],
            Kind::AuthzUser => security::roles_of(o)
                .into_iter()
                .map(|r| vec![vec![o.path[0].clone(), ROLES.into(), r]])
                .collect(),
            _ => vec![],
        }
    }

    /// The dynamic config loses the host fields the mapping does not give, and takes the
    /// mapping's values of the others: Druid merges a POST over the current config, so the
    /// target keeps its own.
    /// Supervisors are written suspended unless the run resumes them.
    fn to_target(&self, mut o: Object, _source: &Tree<Kind>) -> Object {
        match o.kind {
            Kind::DynamicConfig => {
                for f in HOST_FIELDS {
                    match self.mapping.host_fields.get(f) {
                        Some(v) => o.body.insert(f.into(), v.clone()),
                        None => o.body.remove(f),
                    };
                }
            }
            Kind::Supervisor if !self.resume_supervisors => {
                o.body.insert("suspended".into(), Value::Bool(true));
            }
            // A spec that does not say runs, as Druid reads it.
            Kind::Supervisor => {
                o.body.entry("suspended").or_insert(Value::Bool(false));
            }
            _ => {}
        }
        o
    }

    fn source_path(&self, _kind: Kind, path: &[String]) -> Vec<String> {
        path.to_vec()
    }
}
