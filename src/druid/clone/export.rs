//! Reads a live Druid cluster's artefacts into objects of the tree, and keeps what applying to it
//! later needs to know (whether its lookups are initialised, their versions).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::model::{self, COORDINATOR, DEFAULT_RULES, Kind, OVERLORD, Object, map_of};
use crate::clone::cluster::{ExportRun, Exported, Known};
use crate::clone::filter::Filter;
use crate::clone::kind::{ArtefactKind, CatPath, key};
use crate::clone::tree::{Tree, Written};
use crate::druid::rest::{Druid, DruidError};

pub const RULES: &str = "/druid/coordinator/v1/rules";
pub const DYNAMIC: &str = "/druid/coordinator/v1/config";
pub const WORKER: &str = "/druid/indexer/v1/worker";
pub const LOOKUPS: &str = "/druid/coordinator/v1/lookups/config";

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
