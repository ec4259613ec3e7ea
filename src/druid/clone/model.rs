//! Druid's artefacts as the clone engine sees them: each kind, where it lives in the tree, and how
//! an object is normalised so that what Druid answers compares equal to what was sent.
//!
//! ```text
//! rules/_default.rules.json               {"rules": [...]} per datasource, `_default` too
//! config/coordinator.dynamic-config.json  the Coordinator's dynamic config
//! config/overlord.worker-config.json      the Overlord's worker config ({} when unset)
//! lookups/<tier>/<name>.lookup.json       {"lookupExtractorFactory": ..., "version": ...}
//! config/compaction.compaction-cluster.json  the cluster-level compaction config
//! compaction/<datasource>.compaction.json  a datasource's auto-compaction config
//! supervisors/<id>.supervisor.json         {"type", "spec", "context", "suspended"}
//! authentication/<authenticator>/<user>.authn-user.json          {} (passwords never leave Druid)
//! authorization/<authorizer>/roles/<role>.role.json              {"permissions": [...]}
//! authorization/<authorizer>/users/<user>.authz-user.json        {"roles": [...]}
//! ```

use serde_json::{Map, Value, json};

use crate::clone::kind::{ArtefactKind, KindSpec, Parent, PartKind, PartSpec};

/// The path of the rules that apply to every datasource without its own.
pub const DEFAULT_RULES: &str = "_default";
/// The one object of the dynamic-config and worker-config kinds.
pub const COORDINATOR: &str = "coordinator";
pub const OVERLORD: &str = "overlord";
/// The one object of the cluster-level compaction kind.
pub const COMPACTION: &str = "compaction";
/// The middle components of authorizer paths.
pub const ROLES: &str = "roles";
pub const USERS: &str = "users";

/// Fields of the Coordinator's dynamic config that name this cluster's own hosts or state: never
/// copied unless the mapping gives the target's value.
pub const HOST_FIELDS: [&str; 3] = [
    "decommissioningNodes",
    "killDataSourceWhitelist",
    "pauseCoordination",
];

/// In the documented order of application: security, lookups, dynamic configs, rules,
/// compaction, supervisors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    AuthnUser,
    Role,
    AuthzUser,
    Lookup,
    DynamicConfig,
    WorkerConfig,
    Rules,
    CompactionCluster,
    Compaction,
    Supervisor,
}

/// Words of `--skip` for Druid.
pub const SKIP_LOOKUPS: &str = "lookups";
pub const SKIP_RULES: &str = "rules";
pub const SKIP_CONFIG: &str = "config";
pub const SKIP_COMPACTION: &str = "compaction";
pub const SKIP_SUPERVISORS: &str = "supervisors";
pub const SKIP_SECURITY: &str = "security";

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

const COMPACTION_CLUSTER: KindSpec = KindSpec {
    word: "compaction-cluster",
    skip: Some(SKIP_COMPACTION),
    rank: 40,
    ..DYNAMIC
};
const COMPACTION_DS: KindSpec = KindSpec {
    word: "compaction",
    folder: "compaction",
    skip: Some(SKIP_COMPACTION),
    glob_prefix: Some("@compaction"),
    rank: 41,
    ..RULES
};
const SUPERVISOR: KindSpec = KindSpec {
    word: "supervisor",
    folder: "supervisors",
    skip: Some(SKIP_SUPERVISORS),
    glob_prefix: Some("@supervisors"),
    rank: 50,
    ..RULES
};
const AUTHN_USER: KindSpec = KindSpec {
    word: "authn-user",
    folder: "authentication",
    nested: true,
    skip: Some(SKIP_SECURITY),
    glob_prefix: Some("@authentication"),
    rank: 0,
    ..RULES
};
const ROLE: KindSpec = KindSpec {
    word: "role",
    folder: "authorization",
    glob_prefix: Some("@authorization"),
    rank: 1,
    ..AUTHN_USER
};
const AUTHZ_USER: KindSpec = KindSpec {
    word: "authz-user",
    rank: 2,
    ..ROLE
};

impl ArtefactKind for Kind {
    fn all() -> &'static [Kind] {
        &[
            Kind::AuthnUser,
            Kind::Role,
            Kind::AuthzUser,
            Kind::Lookup,
            Kind::DynamicConfig,
            Kind::WorkerConfig,
            Kind::Rules,
            Kind::CompactionCluster,
            Kind::Compaction,
            Kind::Supervisor,
        ]
    }

    fn spec(self) -> &'static KindSpec {
        match self {
            Kind::Rules => &RULES,
            Kind::DynamicConfig => &DYNAMIC,
            Kind::WorkerConfig => &WORKER,
            Kind::Lookup => &LOOKUP,
            Kind::CompactionCluster => &COMPACTION_CLUSTER,
            Kind::Compaction => &COMPACTION_DS,
            Kind::Supervisor => &SUPERVISOR,
            Kind::AuthnUser => &AUTHN_USER,
            Kind::Role => &ROLE,
            Kind::AuthzUser => &AUTHZ_USER,
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

/// A datasource's compaction config as Druid stores it: the defaults it fills in.
fn normal_compaction(m: &mut Map<String, Value>) {
    for (k, v) in [
        ("taskPriority", json!(25)),
        ("inputSegmentSizeBytes", json!(100_000_000_000_000_i64)),
        ("skipOffsetFromLatest", json!("P1D")),
    ] {
        m.entry(k).or_insert(v);
    }
}

/// The fields a plan compares; `resume`: supervisors are to run as on the source (failover),
/// so whether one is suspended counts.
pub fn own_fields(
    o: &Object,
    mapped_host_fields: &Map<String, Value>,
    resume: bool,
) -> Map<String, Value> {
    let mut m = o.body.clone();
    match o.kind {
        Kind::Compaction => normal_compaction(&mut m),
        Kind::Supervisor if !resume => {
            m.remove("suspended");
        }
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
        _ => {}
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
        assert_eq!(
            own_fields(&sent, &none, false),
            own_fields(&stored, &none, false)
        );
        let dynamic = object(
            Kind::DynamicConfig,
            vec![COORDINATOR.into()],
            map_of(json!({"maxSegmentsToMove": 5, "pauseCoordination": true})),
        );
        assert_eq!(
            own_fields(&dynamic, &none, false),
            map_of(json!({"maxSegmentsToMove": 5}))
        );
        let mapped = map_of(json!({"pauseCoordination": false}));
        assert!(own_fields(&dynamic, &mapped, false).contains_key("pauseCoordination"));
        let running = object(
            Kind::Supervisor,
            vec!["wiki".into()],
            map_of(json!({"type": "kafka", "suspended": false})),
        );
        assert!(!own_fields(&running, &none, false).contains_key("suspended"));
        assert!(own_fields(&running, &none, true).contains_key("suspended"));
    }
}
