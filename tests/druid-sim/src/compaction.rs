//! Auto-compaction: per-datasource configs under `/druid/coordinator/v1/config/compaction` and
//! the cluster level under `/druid/indexer/v1/compaction/config/cluster`, both kept in one
//! `druid_config` row as Druid 31's `DruidCompactionConfig`.
//!
//! Druid fills defaults on the way in (`taskPriority`, `inputSegmentSizeBytes`,
//! `skipOffsetFromLatest`), so a GET differs from what was POSTed; a POST upserts one datasource
//! and answers 200 even for a datasource that has no segments.

use anyhow::Result;
use serde_json::{Map, Value, json};

use crate::history;
use crate::parse::{self, Kind};
use crate::server::{Reply, Request};
use crate::store::{AuditEntry, AuditInfo, MetadataStore};

/// The `druid_config` row, also the audit key and type.
pub const KEY: &str = "coordinator.compaction.config";

/// `DataSourceCompactionConfig`'s fields past `dataSource`.
const DATASOURCE_FIELDS: [(&str, Kind); 12] = [
    ("taskPriority", Kind::Int),
    ("inputSegmentSizeBytes", Kind::Int),
    ("maxRowsPerSegment", Kind::Int),
    ("skipOffsetFromLatest", Kind::Period),
    ("tuningConfig", Kind::Object),
    ("taskContext", Kind::Object),
    ("granularitySpec", Kind::Object),
    ("dimensionsSpec", Kind::Object),
    ("transformSpec", Kind::Object),
    ("metricsSpec", Kind::Array),
    ("ioConfig", Kind::Object),
    ("engine", Kind::Str),
];

/// `ClusterCompactionConfig`'s fields.
const CLUSTER_FIELDS: [(&str, Kind); 6] = [
    ("compactionTaskSlotRatio", Kind::Number),
    ("maxCompactionTaskSlots", Kind::Int),
    ("useAutoScaleSlots", Kind::Bool),
    ("compactionPolicy", Kind::Object),
    ("useSupervisors", Kind::Bool),
    ("engine", Kind::Str),
];

const ENGINES: [&str; 2] = ["native", "msq"];

/// Answers `/druid/coordinator/v1/config/compaction...`; `rest` is the path after `/compaction`.
pub fn handle(
    store: &mut dyn MetadataStore,
    req: &Request,
    rest: &str,
    audit: &AuditInfo,
) -> Option<Result<Reply>> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    Some(match (req.method.as_str(), segs.as_slice()) {
        ("GET", []) => current(store).map(|c| Reply::json(200, &c)),
        ("POST", []) => upsert(store, &req.body, audit),
        ("POST", ["taskslots"]) => task_slots(store, req, audit),
        ("GET", [ds]) => one(store, ds),
        ("DELETE", [ds]) => delete(store, ds, audit),
        ("GET", [ds, "history"]) => history(store, ds, req),
        _ => return None,
    })
}

/// Answers `/druid/indexer/v1/compaction/config/cluster` (the Overlord's).
pub fn cluster(
    store: &mut dyn MetadataStore,
    req: &Request,
    rest: &str,
    audit: &AuditInfo,
) -> Option<Result<Reply>> {
    Some(match (req.method.as_str(), rest) {
        ("GET", "") => current(store).map(|c| Reply::json(200, &Value::Object(cluster_part(&c)))),
        ("POST", "") => set_cluster(store, &req.body, audit),
        _ => return None,
    })
}

/// The stored config over Druid's defaults.
fn current(store: &dyn MetadataStore) -> Result<Value> {
    let mut cfg = json!({
        "compactionConfigs": [],
        "compactionTaskSlotRatio": 0.1,
        "maxCompactionTaskSlots": i32::MAX,
        "useAutoScaleSlots": false,
        "compactionPolicy": {"type": "newestSegmentFirst"},
        "useSupervisors": false,
        "engine": "native",
    });
    if let Some(Value::Object(stored)) = store.config(KEY)? {
        for (k, v) in stored {
            cfg[k] = v;
        }
    }
    Ok(cfg)
}

fn configs(cfg: &Value) -> Vec<Value> {
    cfg["compactionConfigs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn find(cfg: &Value, ds: &str) -> Option<Value> {
    configs(cfg).into_iter().find(|c| c["dataSource"] == ds)
}

fn cluster_part(cfg: &Value) -> Map<String, Value> {
    CLUSTER_FIELDS
        .iter()
        .map(|(k, _)| ((*k).to_string(), cfg[*k].clone()))
        .collect()
}

fn not_found(ds: &str) -> Reply {
    Reply::error(
        404,
        format!("datasource[{ds}] does not have a compaction config"),
    )
}

fn one(store: &dyn MetadataStore, ds: &str) -> Result<Reply> {
    Ok(match find(&current(store)?, ds) {
        Some(c) => Reply::json(200, &c),
        None => not_found(ds),
    })
}

fn upsert(store: &mut dyn MetadataStore, body: &[u8], audit: &AuditInfo) -> Result<Reply> {
    let new = match parse_datasource(body) {
        Ok(c) => c,
        Err(msg) => return Ok(Reply::error(400, msg)),
    };
    let mut cfg = current(store)?;
    let mut list: Vec<Value> = configs(&cfg)
        .into_iter()
        .filter(|c| c["dataSource"] != new["dataSource"])
        .collect();
    list.push(new);
    cfg["compactionConfigs"] = Value::Array(list);
    store.set_config(KEY, cfg, audit)?;
    Ok(Reply::raw(200, String::new()))
}

fn delete(store: &mut dyn MetadataStore, ds: &str, audit: &AuditInfo) -> Result<Reply> {
    let mut cfg = current(store)?;
    if find(&cfg, ds).is_none() {
        return Ok(not_found(ds));
    }
    let rest: Vec<Value> = configs(&cfg)
        .into_iter()
        .filter(|c| c["dataSource"] != ds)
        .collect();
    cfg["compactionConfigs"] = Value::Array(rest);
    store.set_config(KEY, cfg, audit)?;
    Ok(Reply::raw(200, String::new()))
}

/// One datasource's config as Druid stores it: known fields only, defaults filled in.
fn parse_datasource(body: &[u8]) -> Result<Value, String> {
    let obj = parse::object(body, "a compaction config")?;
    let ds = match obj.get("dataSource") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("dataSource cannot be null or empty".into()),
    };
    let mut out = Map::new();
    out.insert("dataSource".into(), json!(ds));
    out.insert("taskPriority".into(), json!(25));
    out.insert(
        "inputSegmentSizeBytes".into(),
        json!(100_000_000_000_000_i64),
    );
    out.insert("skipOffsetFromLatest".into(), json!("P1D"));
    parse::fields(
        &obj,
        &mut out,
        &DATASOURCE_FIELDS,
        "DataSourceCompactionConfig",
    )?;
    check_engine(out.get("engine"))?;
    Ok(Value::Object(out))
}

fn check_engine(engine: Option<&Value>) -> Result<(), String> {
    match engine.and_then(Value::as_str) {
        Some(e) if !ENGINES.contains(&e) => Err(format!(
            "Cannot deserialize CompactionEngine from [{e}]: not one of {ENGINES:?}"
        )),
        _ => Ok(()),
    }
}

/// The cluster-level fields a POST names replace the current ones; the others stay.
fn set_cluster(store: &mut dyn MetadataStore, body: &[u8], audit: &AuditInfo) -> Result<Reply> {
    let mut cfg = current(store)?;
    let mut part = cluster_part(&cfg);
    let checked = parse::object(body, "the cluster compaction config").and_then(|obj| {
        parse::fields(&obj, &mut part, &CLUSTER_FIELDS, "ClusterCompactionConfig")?;
        check_cluster(&part)
    });
    if let Err(msg) = checked {
        return Ok(Reply::error(400, msg));
    }
    for (k, v) in part {
        cfg[k] = v;
    }
    store.set_config(KEY, cfg, audit)?;
    Ok(Reply::raw(200, String::new()))
}

fn check_cluster(part: &Map<String, Value>) -> Result<(), String> {
    check_engine(part.get("engine"))?;
    let policy = part["compactionPolicy"]["type"]
        .as_str()
        .unwrap_or_default();
    if policy != "newestSegmentFirst" {
        return Err(format!(
            "Could not resolve type id '{policy}' as a subtype of CompactionCandidateSearchPolicy"
        ));
    }
    if part["engine"] == "msq" && part["useSupervisors"] != true {
        return Err("MSQ Compaction engine can be used only with compaction supervisors".into());
    }
    Ok(())
}

/// The deprecated `POST /taskslots?ratio=&max=`: either parameter may be left out.
fn task_slots(store: &mut dyn MetadataStore, req: &Request, audit: &AuditInfo) -> Result<Reply> {
    let mut cfg = current(store)?;
    if let Some(r) = req.query("ratio") {
        match r.parse::<f64>() {
            Ok(r) if r.is_finite() => cfg["compactionTaskSlotRatio"] = json!(r),
            _ => return Ok(Reply::error(400, format!("ratio [{r}] is not a number"))),
        }
    }
    if let Some(m) = req.query("max") {
        match m.parse::<i32>() {
            Ok(m) => cfg["maxCompactionTaskSlots"] = json!(m),
            _ => return Ok(Reply::error(400, format!("max [{m}] is not an integer"))),
        }
    }
    store.set_config(KEY, cfg, audit)?;
    Ok(Reply::raw(200, String::new()))
}

/// `DataSourceCompactionConfigAuditEntry`s: one per audited change of this datasource's config
/// or of the cluster-level fields while it had one, newest first; a deletion shows as a null config.
/// `?interval` picks the audit rows, `?count` the entries.
fn history(store: &dyn MetadataStore, ds: &str, req: &Request) -> Result<Reply> {
    let count = match req.query("count").map(str::parse::<usize>) {
        None => usize::MAX,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return Ok(Reply::error(400, "count must be greater than zero")),
    };
    let mut rows = store.audit(KEY, Some(KEY))?;
    if req.query("interval").is_some() {
        match history::select(rows, req) {
            Ok(picked) => rows = picked.into_iter().rev().collect(),
            Err(msg) => return Ok(Reply::error(400, msg)),
        }
    }
    let mut out: Vec<Value> = Vec::new();
    let mut last: Option<(Value, Value)> = None;
    for row in rows {
        let Ok(cfg) = serde_json::from_str::<Value>(&row.payload) else {
            continue;
        };
        let now = (
            find(&cfg, ds).unwrap_or(Value::Null),
            Value::Object(cluster_part(&cfg)),
        );
        let was_there = last.as_ref().is_some_and(|(c, _)| !c.is_null());
        if last.as_ref() != Some(&now) && (!now.0.is_null() || was_there) {
            out.push(entry(&now, &row));
        }
        last = Some(now);
    }
    out.reverse();
    out.truncate(count);
    Ok(Reply::json(200, &Value::Array(out)))
}

fn entry((config, global): &(Value, Value), row: &AuditEntry) -> Value {
    let audited = row.to_json();
    json!({
        "globalConfig": global,
        "compactionConfig": config,
        "auditInfo": audited["auditInfo"],
        "auditTime": audited["auditTime"],
    })
}
