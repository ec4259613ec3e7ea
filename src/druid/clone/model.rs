//! Druid's artefacts as the clone engine sees them: each kind, where it lives in the tree, and how
//! an object is normalised so that what Druid answers compares equal to what was sent.
//!
//! ```text
//! rules/_default.rules.json               {"rules": [...]} per datasource, `_default` too
//! config/coordinator.dynamic-config.json  the Coordinator's dynamic config
//! config/overlord.worker-config.json      the Overlord's worker config ({} when unset)
//! lookups/<tier>/<name>.lookup.json       {"lookupExtractorFactory": ..., "version": ...}
//! ```

use serde_json::{Map, Value, json};

use crate::clone::kind::{ArtefactKind, KindSpec, Parent, PartKind, PartSpec};

/// The path of the rules that apply to every datasource without its own.
pub const DEFAULT_RULES: &str = "_default";
/// The one object of the dynamic-config and worker-config kinds.
pub const COORDINATOR: &str = "coordinator";
pub const OVERLORD: &str = "overlord";

/// Fields of the Coordinator's dynamic config that name this cluster's own hosts or state: never
/// copied unless the mapping gives the target's value.
pub const HOST_FIELDS: [&str; 3] = [
    "decommissioningNodes",
    "killDataSourceWhitelist",
    "pauseCoordination",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Lookup,
    DynamicConfig,
    WorkerConfig,
    Rules,
}

/// Words of `--skip` for Druid.
pub const SKIP_LOOKUPS: &str = "lookups";
pub const SKIP_RULES: &str = "rules";
pub const SKIP_CONFIG: &str = "config";

const RULES: KindSpec = KindSpec {
    word: "rules",
    folder: "rules",
    nested: false,
    text: None,
    container: false,
    deletable: true,
    skip: Some(SKIP_RULES),
    holds: &[],
    glob_prefix: Some("@rules"),
    fold_case: false,
    parent: Parent::None,
    rank: 30,
};
const DYNAMIC: KindSpec = KindSpec {
    word: "dynamic-config",
    folder: "config",
    deletable: false,
    skip: Some(SKIP_CONFIG),
    glob_prefix: Some("@config"),
    rank: 20,
    ..RULES
};
const WORKER: KindSpec = KindSpec {
    word: "worker-config",
    rank: 21,
    ..DYNAMIC
};
const LOOKUP: KindSpec = KindSpec {
    word: "lookup",
    folder: "lookups",
    nested: true,
    skip: Some(SKIP_LOOKUPS),
    glob_prefix: Some("@lookups"),
    rank: 10,
    ..RULES
};

impl ArtefactKind for Kind {
    fn all() -> &'static [Kind] {
        &[
            Kind::Lookup,
            Kind::DynamicConfig,
            Kind::WorkerConfig,
            Kind::Rules,
        ]
    }

    fn spec(self) -> &'static KindSpec {
        match self {
            Kind::Rules => &RULES,
            Kind::DynamicConfig => &DYNAMIC,
            Kind::WorkerConfig => &WORKER,
            Kind::Lookup => &LOOKUP,
        }
    }
}

/// Druid's artefacts have no parts applied apart: a role's permissions and a user's roles are
/// fields of their object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {}

impl PartKind for Part {
    fn spec(self) -> &'static PartSpec {
        match self {}
    }
}

pub type Object = crate::clone::kind::Object<Kind>;

/// An object of `kind` at `path` with `body`.
pub fn object(kind: Kind, path: Vec<String>, body: Map<String, Value>) -> Object {
    Object {
        kind,
        path,
        body,
        text: None,
        wiki: None,
    }
}

/// A rule as Druid stores it: the load rules' defaults filled in, so that a hand-written tree
/// compares equal to what Druid answers for it.
fn normal_rule(rule: &Value) -> Value {
    let mut r = rule.clone();
    if let Some(m) = r.as_object_mut() {
        let ty = m
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if ty.starts_with("load") && !m.contains_key("useDefaultTierForNull") {
            m.insert("useDefaultTierForNull".into(), json!(true));
        }
        if ty.ends_with("ByPeriod") && !m.contains_key("includeFuture") {
            m.insert("includeFuture".into(), json!(true));
        }
    }
    r
}

/// The fields a plan compares.
pub fn own_fields(o: &Object, mapped_host_fields: &Map<String, Value>) -> Map<String, Value> {
    let mut m = o.body.clone();
    match o.kind {
        Kind::Rules => {
            if let Some(Value::Array(rules)) = m.get_mut("rules") {
                *rules = rules.iter().map(normal_rule).collect();
            }
        }
        // The target chooses its own version: one that sorts above its current one.
        Kind::Lookup => {
            m.remove("version");
        }
        Kind::DynamicConfig => {
            for f in HOST_FIELDS {
                if !mapped_host_fields.contains_key(f) {
                    m.remove(f);
                }
            }
        }
        Kind::WorkerConfig => {}
    }
    m
}

/// A JSON object's map, or an empty one.
pub fn map_of(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_compare_with_druids_defaults_and_host_fields_only_when_mapped() {
        let sent = object(
            Kind::Rules,
            vec!["wiki".into()],
            map_of(json!({"rules": [{"type": "loadByPeriod", "period": "P1M"}]})),
        );
        let stored = object(
            Kind::Rules,
            vec!["wiki".into()],
            map_of(json!({"rules": [{"type": "loadByPeriod", "period": "P1M",
                "includeFuture": true, "useDefaultTierForNull": true}]})),
        );
        let none = Map::new();
        assert_eq!(own_fields(&sent, &none), own_fields(&stored, &none));
        let dynamic = object(
            Kind::DynamicConfig,
            vec![COORDINATOR.into()],
            map_of(json!({"maxSegmentsToMove": 5, "pauseCoordination": true})),
        );
        assert_eq!(
            own_fields(&dynamic, &none),
            map_of(json!({"maxSegmentsToMove": 5}))
        );
        let mapped = map_of(json!({"pauseCoordination": false}));
        assert!(own_fields(&dynamic, &mapped).contains_key("pauseCoordination"));
    }
}
