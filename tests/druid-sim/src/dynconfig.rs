//! Coordinator dynamic config: `GET|POST /druid/coordinator/v1/config`, `.../config/history`.
//!
//! Druid deserialises a POST into a builder and builds it over the current config, so fields
//! left out keep their values; unknown fields are ignored (Druid's ObjectMapper does not fail on
//! them) and a known field of the wrong type is a Jackson error, a 400.

use anyhow::Result;
use serde_json::{Map, Value, json};

use crate::history;
use crate::server::{Reply, Request};
use crate::store::{AuditInfo, MetadataStore};

/// The `druid_config` row, also the audit key and type.
pub const KEY: &str = "coordinator.config";

#[derive(Debug, Clone, Copy)]
enum Kind {
    Int,
    Number,
    Bool,
    /// A set of strings; Druid also takes a comma-separated string.
    Names,
    /// Any object, or null.
    Object,
}

/// Druid 31's fields and defaults.
fn fields() -> [(&'static str, Kind, Value); 16] {
    use Kind::*;
    [
        ("millisToWaitBeforeDeleting", Int, json!(900_000)),
        ("maxSegmentsToMove", Int, json!(100)),
        ("replicantLifetime", Int, json!(15)),
        ("replicationThrottleLimit", Int, json!(500)),
        ("balancerComputeThreads", Int, json!(1)),
        ("killDataSourceWhitelist", Names, json!([])),
        ("killTaskSlotRatio", Number, json!(0.1)),
        ("maxKillTaskSlots", Int, json!(i32::MAX)),
        ("killPendingSegmentsSkipList", Names, json!([])),
        ("maxSegmentsInNodeLoadingQueue", Int, json!(500)),
        ("decommissioningNodes", Names, json!([])),
        ("pauseCoordination", Bool, json!(false)),
        ("replicateAfterLoadTimeout", Bool, json!(false)),
        ("useRoundRobinSegmentAssignment", Bool, json!(true)),
        ("smartSegmentLoading", Bool, json!(true)),
        ("debugDimensions", Object, Value::Null),
    ]
}

/// Answers a dynamic-config request; `rest` is the path after `/config`.
pub fn handle(
    store: &mut dyn MetadataStore,
    req: &Request,
    rest: &str,
    audit: &AuditInfo,
) -> Option<Result<Reply>> {
    Some(match (req.method.as_str(), rest) {
        ("GET", "") => current(store).map(|c| Reply::json(200, &c)),
        ("POST", "") => set(store, &req.body, audit),
        ("GET", "/history") => history::reply(store, KEY, Some(KEY), req),
        _ => return None,
    })
}

/// The stored config over Druid's defaults.
fn current(store: &dyn MetadataStore) -> Result<Value> {
    let stored = store.config(KEY)?.unwrap_or_else(|| json!({}));
    let mut out = Map::new();
    for (name, _, default) in fields() {
        out.insert(name.into(), stored.get(name).cloned().unwrap_or(default));
    }
    Ok(Value::Object(out))
}

fn set(store: &mut dyn MetadataStore, body: &[u8], audit: &AuditInfo) -> Result<Reply> {
    let mut next = current(store)?;
    match merge(&mut next, body) {
        Ok(()) => {
            store.set_config(KEY, next, audit)?;
            Ok(Reply::raw(200, String::new()))
        }
        Err(msg) => Ok(Reply::error(400, msg)),
    }
}

/// Lays the body's known fields over `cfg`, or says why Jackson would refuse it.
fn merge(cfg: &mut Value, body: &[u8]) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("the dynamic config must be a JSON object")?;
    for (name, kind, _) in fields() {
        if let Some(val) = obj.get(name) {
            cfg[name] =
                typed(val, kind).ok_or_else(|| format!("field '{name}' has the wrong type"))?;
        }
    }
    Ok(())
}

fn typed(v: &Value, kind: Kind) -> Option<Value> {
    let ok = match kind {
        Kind::Int => v.is_i64(),
        Kind::Number => v.is_number(),
        Kind::Bool => v.is_boolean(),
        Kind::Object => v.is_object() || v.is_null(),
        Kind::Names => return names(v),
    };
    ok.then(|| v.clone())
}

fn names(v: &Value) -> Option<Value> {
    match v {
        Value::Null => Some(json!([])),
        Value::String(s) => Some(json!(
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        )),
        Value::Array(a) if a.iter().all(Value::is_string) => Some(v.clone()),
        _ => None,
    }
}
