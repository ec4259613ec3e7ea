//! The Overlord's streaming supervisors: `/druid/indexer/v1/supervisor[...]`.
//!
//! Each change inserts a `druid_supervisors` row (Druid never updates one): a POST, a suspend or
//! resume (Druid stops the supervisor and starts it again from a new spec), and a terminate's
//! tombstone. So every row after the first since the last tombstone is a restart, and the count
//! is derived from the table, the same for every node on one store. `SupervisorSpec` is
//! polymorphic on `type`: a type whose extension the node does not load is a 400 at parse time.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{Map, Value, json};

use crate::parse::{self, Kind};
use crate::server::{Reply, Request};
use crate::store::{MetadataStore, SupervisorRow, now_iso};

/// What a terminated supervisor's tombstone row holds.
const TOMBSTONE: &str = "NoopSupervisorSpec";

/// Answers a supervisor request; `rest` is the path after `/supervisor`, `types` the spec types
/// whose extensions this node loads.
pub fn handle(
    store: &mut dyn MetadataStore,
    req: &Request,
    rest: &str,
    types: &[String],
) -> Option<Result<Reply>> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    Some(match (req.method.as_str(), segs.as_slice()) {
        ("GET", []) => list(store, req),
        ("POST", []) => post(store, req, types),
        ("GET", ["history"]) => all_history(store),
        ("GET", [id]) => with_live(store, id, |s| Ok(Reply::json(200, &s.spec))),
        ("GET", [id, "status"]) => with_live(store, id, |s| Ok(Reply::json(200, &s.status()))),
        ("GET", [id, "history"]) => history(store, id),
        ("POST", [id, "suspend"]) => set_suspended(store, id, true),
        ("POST", [id, "resume"]) => set_suspended(store, id, false),
        ("POST", [id, "terminate"]) => terminate(store, id),
        _ => return None,
    })
}

/// A supervisor that has not been terminated: its newest spec and how often it was restarted.
struct Live {
    id: String,
    spec: Value,
    restarts: usize,
}

impl Live {
    fn suspended(&self) -> bool {
        self.spec["suspended"] == true
    }

    fn state(&self) -> &'static str {
        if self.suspended() {
            "SUSPENDED"
        } else {
            "RUNNING"
        }
    }

    fn full(&self) -> Value {
        json!({"id": self.id, "state": self.state(), "detailedState": self.state(), "healthy": true,
               "spec": self.spec, "suspended": self.suspended()})
    }

    /// Druid's status report; `restarts` is the simulator's own, for tests that must prove a
    /// POST did not restart a supervisor.
    fn status(&self) -> Value {
        let io = &self.spec["ioConfig"];
        json!({"id": self.id, "generationTime": now_iso(), "payload": {
            "dataSource": self.spec["dataSchema"]["dataSource"],
            "stream": io.get("topic").or_else(|| io.get("stream")).unwrap_or(&Value::Null),
            "partitions": 0, "replicas": io["replicas"], "durationSeconds": 3600,
            "activeTasks": [], "publishingTasks": [], "suspended": self.suspended(),
            "healthy": true, "state": self.state(), "detailedState": self.state(),
            "recentErrors": [], "restarts": self.restarts,
        }})
    }
}

/// Every live supervisor by id, from its rows.
fn live(store: &dyn MetadataStore) -> Result<BTreeMap<String, Live>> {
    let mut out: BTreeMap<String, Live> = BTreeMap::new();
    for row in store.supervisor_rows(None)? {
        if row.payload["type"] == TOMBSTONE {
            out.remove(&row.spec_id);
            continue;
        }
        let restarts = out.get(&row.spec_id).map_or(0, |l| l.restarts + 1);
        out.insert(
            row.spec_id.clone(),
            Live {
                id: row.spec_id,
                spec: row.payload,
                restarts,
            },
        );
    }
    Ok(out)
}

fn with_live(
    store: &dyn MetadataStore,
    id: &str,
    f: impl FnOnce(&Live) -> Result<Reply>,
) -> Result<Reply> {
    match live(store)?.get(id) {
        Some(l) => f(l),
        None => Ok(Reply::error(404, format!("[{id}] does not exist"))),
    }
}

/// Ids; with `?full` ids, states and specs; with `?state=true` ids and states.
fn list(store: &dyn MetadataStore, req: &Request) -> Result<Reply> {
    let all = live(store)?;
    let items: Vec<Value> = if req.query("full").is_some() {
        all.values().map(Live::full).collect()
    } else if req.query("state") == Some("true") {
        all.values()
            .map(|l| {
                let mut v = l.full();
                v.as_object_mut().map(|m| m.remove("spec"));
                v
            })
            .collect()
    } else {
        all.keys().map(|id| json!(id)).collect()
    };
    Ok(Reply::json(200, &Value::Array(items)))
}

/// Creates or replaces a supervisor, restarting an existing one unless it is unchanged and
/// `skipRestartIfUnmodified=true`.
fn post(store: &mut dyn MetadataStore, req: &Request, types: &[String]) -> Result<Reply> {
    let spec = match parse_spec(&req.body, types) {
        Ok(s) => s,
        Err(msg) => return Ok(Reply::error(400, msg)),
    };
    let id = spec["dataSchema"]["dataSource"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let skip = req.query("skipRestartIfUnmodified") == Some("true");
    let unchanged = live(store)?.get(&id).is_some_and(|l| l.spec == spec);
    if !(skip && unchanged) {
        store.insert_supervisor(&id, spec)?;
    }
    Ok(Reply::json(200, &json!({"id": id})))
}

fn set_suspended(store: &mut dyn MetadataStore, id: &str, suspend: bool) -> Result<Reply> {
    let Some(l) = live(store)?.remove(id) else {
        return Ok(Reply::error(404, format!("[{id}] does not exist")));
    };
    if l.suspended() == suspend {
        let already = if suspend { "suspended" } else { "running" };
        return Ok(Reply::error(400, format!("[{id}] is already {already}")));
    }
    let mut spec = l.spec;
    spec["suspended"] = json!(suspend);
    store.insert_supervisor(id, spec.clone())?;
    Ok(Reply::json(200, &spec))
}

fn terminate(store: &mut dyn MetadataStore, id: &str) -> Result<Reply> {
    let Some(l) = live(store)?.remove(id) else {
        return Ok(Reply::error(404, format!("[{id}] does not exist")));
    };
    let ds = l.spec["dataSchema"]["dataSource"].clone();
    store.insert_supervisor(
        id,
        json!({"type": TOMBSTONE, "id": null, "dataSources": [ds], "suspended": false}),
    )?;
    Ok(Reply::json(200, &json!({"id": id})))
}

fn versions(rows: &[SupervisorRow]) -> Value {
    Value::Array(
        rows.iter()
            .rev()
            .map(|r| json!({"spec": r.payload, "version": r.created}))
            .collect(),
    )
}

/// Every supervisor's versions, terminated ones too, newest first.
fn all_history(store: &dyn MetadataStore) -> Result<Reply> {
    let mut by_id: BTreeMap<String, Vec<SupervisorRow>> = BTreeMap::new();
    for row in store.supervisor_rows(None)? {
        by_id.entry(row.spec_id.clone()).or_default().push(row);
    }
    let out: Map<String, Value> = by_id
        .iter()
        .map(|(id, rows)| (id.clone(), versions(rows)))
        .collect();
    Ok(Reply::json(200, &Value::Object(out)))
}

fn history(store: &dyn MetadataStore, id: &str) -> Result<Reply> {
    let rows = store.supervisor_rows(Some(id))?;
    if rows.is_empty() {
        return Ok(Reply::error(404, format!("No history for [{id}].")));
    }
    Ok(Reply::json(200, &versions(&rows)))
}

/// The spec as Druid re-serialises it, from either `{"type", "spec": {...}}` or the flat form:
/// the ingestion parts both inside `spec` and at the top, defaults filled in.
pub fn parse_spec(body: &[u8], types: &[String]) -> Result<Value, String> {
    let obj = parse::object(body, "a supervisor spec")?;
    let kind = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        _ => return Err("missing type id when trying to resolve subtype of SupervisorSpec: missing type id property 'type'".into()),
    };
    if !types.iter().any(|t| t == kind) {
        return Err(format!(
            "Could not resolve type id '{kind}' as a subtype of SupervisorSpec: known type ids = [{}]",
            types.join(", ")
        ));
    }
    let inner = match obj.get("spec") {
        Some(Value::Object(s)) => s,
        Some(Value::Null) | None => &obj,
        Some(_) => return Err("'spec' must be an object".into()),
    };
    let data_schema = data_schema(inner.get("dataSchema"))?;
    let io = io_config(kind, inner.get("ioConfig"))?;
    let tuning = tuning_config(kind, inner.get("tuningConfig"))?;
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    out.insert(
        "spec".into(),
        json!({"dataSchema": data_schema, "ioConfig": io, "tuningConfig": tuning}),
    );
    out.insert("dataSchema".into(), data_schema);
    out.insert("ioConfig".into(), io);
    out.insert("tuningConfig".into(), tuning);
    out.insert("suspended".into(), json!(false));
    let top: &[(&str, Kind)] = &[("context", Kind::Object), ("suspended", Kind::Bool)];
    parse::fields(&obj, &mut out, top, "SupervisorSpec")?;
    Ok(Value::Object(out))
}

fn data_schema(v: Option<&Value>) -> Result<Value, String> {
    let Some(Value::Object(ds)) = v else {
        return Err("dataSchema is required".into());
    };
    match ds.get("dataSource") {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => return Err("dataSource cannot be null or empty. Please provide a dataSource.".into()),
    }
    let mut out = ds.clone();
    out.entry("granularitySpec").or_insert_with(|| {
        json!({"type": "uniform", "segmentGranularity": "DAY", "queryGranularity": {"type": "none"},
               "rollup": true, "intervals": []})
    });
    Ok(Value::Object(out))
}

/// The IO config with its stream named and Druid's defaults filled in.
fn io_config(kind: &str, v: Option<&Value>) -> Result<Value, String> {
    let Some(Value::Object(io)) = v else {
        return Err("ioConfig is required".into());
    };
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    let defaults = json!({"replicas": 1, "taskCount": 1, "taskDuration": "PT3600S", "startDelay": "PT5S",
                          "period": "PT30S", "completionTimeout": "PT1800S"});
    let known: &[(&str, Kind)] = &[
        ("replicas", Kind::Int),
        ("taskCount", Kind::Int),
        ("taskDuration", Kind::Period),
        ("startDelay", Kind::Period),
        ("period", Kind::Period),
        ("completionTimeout", Kind::Period),
        ("lateMessageRejectionPeriod", Kind::Period),
        ("earlyMessageRejectionPeriod", Kind::Period),
        ("inputFormat", Kind::Object),
        ("autoScalerConfig", Kind::Object),
    ];
    if let Value::Object(d) = defaults {
        out.extend(d);
    }
    parse::fields(io, &mut out, known, "ioConfig")?;
    match kind {
        "kafka" => kafka_io(io, &mut out)?,
        "kinesis" => kinesis_io(io, &mut out)?,
        _ => out.extend(io.iter().map(|(k, v)| (k.clone(), v.clone()))),
    }
    Ok(Value::Object(out))
}

fn kafka_io(io: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<(), String> {
    let known: &[(&str, Kind)] = &[
        ("topic", Kind::Str),
        ("topicPattern", Kind::Str),
        ("consumerProperties", Kind::Object),
        ("pollTimeout", Kind::Int),
        ("useEarliestOffset", Kind::Bool),
    ];
    out.insert("pollTimeout".into(), json!(100));
    out.insert("useEarliestOffset".into(), json!(false));
    parse::fields(io, out, known, "KafkaSupervisorIOConfig")?;
    if out.contains_key("topic") == out.contains_key("topicPattern") {
        return Err("Either topic or topicPattern must be specified, and not both".into());
    }
    if out
        .get("consumerProperties")
        .and_then(|c| c.get("bootstrap.servers"))
        .is_none()
    {
        return Err("consumerProperties must contain entry for [bootstrap.servers]".into());
    }
    Ok(())
}

fn kinesis_io(io: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<(), String> {
    let known: &[(&str, Kind)] = &[
        ("stream", Kind::Str),
        ("endpoint", Kind::Str),
        ("useEarliestSequenceNumber", Kind::Bool),
    ];
    out.insert("endpoint".into(), json!("kinesis.us-east-1.amazonaws.com"));
    out.insert("useEarliestSequenceNumber".into(), json!(false));
    parse::fields(io, out, known, "KinesisSupervisorIOConfig")?;
    if !out.contains_key("stream") {
        return Err("stream cannot be null".into());
    }
    Ok(())
}

fn tuning_config(kind: &str, v: Option<&Value>) -> Result<Value, String> {
    let given = match v {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(t)) => t.clone(),
        Some(_) => return Err("tuningConfig must be an object".into()),
    };
    if given.get("type").is_some_and(|t| t != kind) {
        return Err(format!(
            "tuningConfig type {} does not match the supervisor type [{kind}]",
            given["type"]
        ));
    }
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    out.insert("maxRowsInMemory".into(), json!(150_000));
    out.insert("maxRowsPerSegment".into(), json!(5_000_000));
    out.insert("intermediatePersistPeriod".into(), json!("PT10M"));
    out.insert("resetOffsetAutomatically".into(), json!(false));
    let known: &[(&str, Kind)] = &[
        ("maxRowsInMemory", Kind::Int),
        ("maxBytesInMemory", Kind::Int),
        ("maxRowsPerSegment", Kind::Int),
        ("maxTotalRows", Kind::Int),
        ("intermediatePersistPeriod", Kind::Period),
        ("resetOffsetAutomatically", Kind::Bool),
        ("workerThreads", Kind::Int),
        ("partitionsSpec", Kind::Object),
        ("indexSpec", Kind::Object),
    ];
    parse::fields(&given, &mut out, known, "tuningConfig")?;
    Ok(Value::Object(out))
}
