//! Reads a live Druid cluster's artefacts into objects of the tree, and keeps what applying to it
//! later needs to know (whether its lookups are initialised, their versions).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::endpoints::{
    COMPACTION, COMPACTION_CLUSTER, DYNAMIC, LOOKUPS, RULES, SUPERVISORS, WORKER,
};
use super::model::{
    self, COMPACTION as CLUSTER, COORDINATOR, DEFAULT_RULES, Kind, OVERLORD, Object, map_of,
};
use crate::clone::cluster::{ExportRun, Exported, Known};
use crate::clone::filter::Filter;
use crate::clone::kind::{ArtefactKind, CatPath, key};
use crate::clone::tree::{Tree, Written};
use crate::druid::rest::{Druid, DruidError};

/// Fields of Druid's answers that repeat what the tree's path already says, or that it derives.
const SUPERVISOR_DERIVED: [&str; 3] = ["dataSchema", "ioConfig", "tuningConfig"];

/// What the target's export learnt that applying needs.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// `POST /lookups/config {}` was done (Druid refuses lookups before it).
    pub lookups_ready: bool,
    /// The current version of each lookup, by (tier, name).
    pub versions: HashMap<(String, String), String>,
}

fn not_object(what: &str, url: &str) -> DruidError {
    DruidError::Api {
        url: url.to_string(),
        message: format!("{what} is not a JSON object"),
    }
}

async fn rules(d: &Druid, out: &mut Vec<Object>) -> Result<(), DruidError> {
    let Value::Object(all) = d.get(RULES).await? else {
        return Err(not_object("the rules", RULES));
    };
    for (ds, rules) in all {
        // An emptied datasource's rules are what a deletion leaves: no object (but `_default`
        // always is one).
        let empty = rules.as_array().is_some_and(Vec::is_empty);
        if empty && ds != DEFAULT_RULES {
            continue;
        }
        let mut body = Map::new();
        body.insert("rules".into(), rules);
        out.push(model::object(Kind::Rules, vec![ds], body));
    }
    Ok(())
}

async fn configs(d: &Druid, out: &mut Vec<Object>) -> Result<(), DruidError> {
    let dynamic = d.get(DYNAMIC).await?;
    if !dynamic.is_object() {
        return Err(not_object("the dynamic config", DYNAMIC));
    }
    out.push(model::object(
        Kind::DynamicConfig,
        vec![COORDINATOR.into()],
        map_of(dynamic),
    ));
    // Unset, the worker config is an empty body: no object, as Druid cannot unset one.
    let worker = d.get(WORKER).await?;
    if !(worker.is_object() || worker.is_null()) {
        return Err(not_object("the worker config", WORKER));
    }
    if worker.as_object().is_none_or(Map::is_empty) {
        return Ok(());
    }
    out.push(model::object(
        Kind::WorkerConfig,
        vec![OVERLORD.into()],
        map_of(worker),
    ));
    Ok(())
}

async fn lookups(d: &Druid, out: &mut Vec<Object>, seen: &mut Seen) -> Result<(), DruidError> {
    let url = format!("{LOOKUPS}/all");
    // Before the first `POST {}` Druid answers 404: nothing to export, and the target needs it.
    let Some(all) = d.get_opt(&url).await? else {
        return Ok(());
    };
    let Value::Object(tiers) = all else {
        return Err(not_object("the lookups", &url));
    };
    seen.lookups_ready = true;
    for (tier, lookups) in tiers {
        let Value::Object(lookups) = lookups else {
            return Err(not_object(&format!("lookup tier {tier:?}"), &url));
        };
        for (name, spec) in lookups {
            let Value::Object(spec) = spec else {
                return Err(not_object(&format!("lookup {tier}/{name}"), &url));
            };
            if let Some(v) = spec.get("version").and_then(Value::as_str) {
                seen.versions
                    .insert((tier.clone(), name.clone()), v.to_string());
            }
            out.push(model::object(Kind::Lookup, vec![tier.clone(), name], spec));
        }
    }
    Ok(())
}

/// Per-datasource compaction configs, and the cluster level (the Overlord's).
async fn compaction(d: &Druid, out: &mut Vec<Object>) -> Result<(), DruidError> {
    let all = d.get(COMPACTION).await?;
    let configs = all
        .get("compactionConfigs")
        .and_then(Value::as_array)
        .ok_or_else(|| not_object("compactionConfigs", COMPACTION))?;
    for c in configs {
        let mut c = map_of(c.clone());
        let Some(Value::String(ds)) = c.remove("dataSource") else {
            return Err(not_object("a compaction config's dataSource", COMPACTION));
        };
        out.push(model::object(Kind::Compaction, vec![ds], c));
    }
    // Druid before 31 keeps the cluster level in the Coordinator's answer only.
    let Some(cluster) = d.get_opt(COMPACTION_CLUSTER).await? else {
        return Ok(());
    };
    if !cluster.is_object() {
        return Err(not_object(
            "the cluster compaction config",
            COMPACTION_CLUSTER,
        ));
    }
    out.push(model::object(
        Kind::CompactionCluster,
        vec![CLUSTER.into()],
        map_of(cluster),
    ));
    Ok(())
}

/// A supervisor's spec as the tree keeps it: `{type, spec, context, suspended}`, without the
/// copies of `spec`'s parts Druid also answers at the top.
fn supervisor(entry: &Value) -> Option<(String, Map<String, Value>)> {
    let id = entry.get("id")?.as_str()?.to_string();
    let mut spec = map_of(entry.get("spec")?.clone());
    let inner = spec.get("spec").cloned();
    for f in SUPERVISOR_DERIVED {
        if inner.as_ref().and_then(|i| i.get(f)) == spec.get(f) {
            spec.remove(f);
        }
    }
    Some((id, spec))
}

async fn supervisors(d: &Druid, out: &mut Vec<Object>) -> Result<(), DruidError> {
    let url = format!("{SUPERVISORS}?full");
    let Value::Array(all) = d.get(&url).await? else {
        return Err(not_object("the supervisors", &url));
    };
    for entry in &all {
        let (id, spec) = supervisor(entry).ok_or_else(|| DruidError::Api {
            url: url.clone(),
            message: "a supervisor without an id or spec".into(),
        })?;
        out.push(model::object(Kind::Supervisor, vec![id], spec));
    }
    Ok(())
}

/// Reads every artefact the filter selects (kinds it skips are not even asked for).
pub async fn read_all(d: &Druid, filter: &Filter) -> Result<(Vec<Object>, Seen), DruidError> {
    let mut out = Vec::new();
    let mut seen = Seen::default();
    let wants = |k: Kind| k.spec().skip.is_none_or(|w| !filter.skips(w));
    if wants(Kind::Lookup) {
        lookups(d, &mut out, &mut seen).await?;
    }
    if wants(Kind::DynamicConfig) {
        configs(d, &mut out).await?;
    }
    if wants(Kind::Rules) {
        rules(d, &mut out).await?;
    }
    if wants(Kind::Compaction) {
        compaction(d, &mut out).await?;
    }
    if wants(Kind::Supervisor) {
        supervisors(d, &mut out).await?;
    }
    if wants(Kind::AuthnUser) {
        super::security::read(d, &mut out).await?;
    }
    Ok((out, seen))
}

/// Writes what `read_all` found into the tree and removes the files of what is gone (inside the
/// filter only).
pub fn write(
    tree: &Tree<Kind>,
    objects: Vec<Object>,
    filter: &Filter,
    run: &ExportRun<'_>,
) -> anyhow::Result<Exported<Kind, model::Part>> {
    let mut out = Exported::default();
    let mut kept = Written::default();
    for o in objects {
        if !filter.selects(o.kind, &o.path) {
            continue;
        }
        *out.counts.entry(o.kind).or_default() += 1;
        if run.keep_index {
            out.index.insert(
                key(o.kind, &o.path),
                Known {
                    kind: o.kind,
                    path: CatPath::new(&o.path),
                },
            );
        }
        tree.write(&o)?.iter().for_each(|f| kept.add(f));
    }
    if (run.stop)() {
        return Err(crate::clone::CloneError::Interrupted.into());
    }
    out.removed_files = tree.remove_stale(&kept, &|k, p| filter.selects(k, p))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_supervisor_keeps_its_spec_once_and_a_hostile_entry_is_refused() {
        let inner = json!({"dataSchema": {"dataSource": "w"}, "ioConfig": {"topic": "t"}});
        let entry = json!({"id": "w", "spec": {"type": "kafka", "spec": inner.clone(),
            "dataSchema": inner["dataSchema"], "ioConfig": {"topic": "other"},
            "suspended": true}});
        let (id, spec) = supervisor(&entry).unwrap();
        assert_eq!(id, "w");
        assert!(!spec.contains_key("dataSchema"), "a copy of spec's");
        assert_eq!(spec["ioConfig"]["topic"], "other", "not a copy: kept");
        assert_eq!(spec["suspended"], true);
        assert!(supervisor(&json!({"spec": {}})).is_none());
        assert!(supervisor(&json!({"id": 7, "spec": {}})).is_none());
    }
}
