//! The Overlord's worker config: `GET|POST /druid/indexer/v1/worker`, `.../worker/history`.
//!
//! `WorkerBehaviorConfig` is polymorphic on `type` with `default` as the only core type (and the
//! one taken when `type` is left out); its `selectStrategy` is polymorphic too, so an unknown type
//! in either is a Jackson error, a 400. Until one is set, GET answers an empty body (druid.md).

use anyhow::Result;
use serde_json::{Map, Value, json};

use crate::history;
use crate::server::{Reply, Request};
use crate::store::{AuditInfo, MetadataStore};

/// The `druid_config` row, also the audit key and type.
pub const KEY: &str = "worker.config";

const STRATEGIES: [&str; 5] = [
    "fillCapacity",
    "fillCapacityWithCategorySpec",
    "equalDistribution",
    "equalDistributionWithCategorySpec",
    "javascript",
];

/// Answers a worker-config request; `rest` is the path after `/worker`.
pub fn handle(
    store: &mut dyn MetadataStore,
    req: &Request,
    rest: &str,
    audit: &AuditInfo,
) -> Option<Result<Reply>> {
    Some(match (req.method.as_str(), rest) {
        ("GET", "") => store.config(KEY).map(|c| match c {
            Some(c) => Reply::json(200, &c),
            None => Reply::raw(200, String::new()),
        }),
        ("POST", "") => match parse(&req.body) {
            Ok(cfg) => store
                .set_config(KEY, cfg, audit)
                .map(|()| Reply::raw(200, String::new())),
            Err(msg) => Ok(Reply::error(400, msg)),
        },
        ("GET", "/history") => history::reply(store, KEY, Some(KEY), req),
        _ => return None,
    })
}

/// The config as Druid re-serialises it (unknown top-level fields dropped), or why not.
fn parse(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("the worker config must be a JSON object")?;
    let kind = obj.get("type").map_or(Some("default"), Value::as_str);
    if kind != Some("default") {
        return Err(format!(
            "Could not resolve type id '{}' as a subtype of WorkerBehaviorConfig",
            obj["type"]
        ));
    }
    let mut out = Map::new();
    out.insert("type".into(), json!("default"));
    if let Some(s) = obj.get("selectStrategy").filter(|s| !s.is_null()) {
        let t = s["type"].as_str().unwrap_or_default();
        if !STRATEGIES.contains(&t) {
            return Err(format!(
                "Could not resolve type id '{t}' as a subtype of WorkerSelectStrategy"
            ));
        }
        out.insert("selectStrategy".into(), s.clone());
    }
    if let Some(a) = obj.get("autoScaler").filter(|a| !a.is_null()) {
        out.insert("autoScaler".into(), a.clone());
    }
    Ok(Value::Object(out))
}
