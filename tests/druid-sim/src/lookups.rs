//! Lookups: `/druid/coordinator/v1/lookups/config[/all|/{tier}[/{id}]]`, one `lookupsConfig`
//! row `{tier: {name: {"version", "lookupExtractorFactory"}}}`.
//!
//! Druid's quirks: nothing works until a first `POST /lookups/config` of `{}`; a version must
//! compare higher than the current one as a Java string (`v10` < `v9`); writes answer 202.
//! The coordinator keeps `lookupExtractorFactory` as a plain map, so its type is not checked here.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{Map, Value, json};

use crate::server::{Reply, Request};
use crate::store::{AuditInfo, MetadataStore};

/// The `druid_config` row, also the audit key and type.
pub const KEY: &str = "lookupsConfig";

type Tiers = BTreeMap<String, BTreeMap<String, Value>>;

/// Answers a lookups request; `rest` is the path after `/lookups/config`.
pub fn handle(
    store: &mut dyn MetadataStore,
    req: &Request,
    rest: &str,
    audit: &AuditInfo,
) -> Option<Result<Reply>> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let tiers = match load(store) {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    let Some(mut tiers) = tiers else {
        return Some(Ok(uninitialised(store, req, &segs, audit)));
    };
    Some(Ok(match (req.method.as_str(), segs.as_slice()) {
        ("GET", []) => Reply::json(200, &json!(tiers.keys().collect::<Vec<_>>())),
        ("GET", ["all"]) => Reply::json(200, &json!(tiers)),
        ("GET", [tier]) => match tiers.get(*tier) {
            Some(t) => Reply::json(200, &json!(t.keys().collect::<Vec<_>>())),
            None => not_found(tier, None),
        },
        ("GET", [tier, id]) => match tiers.get(*tier).and_then(|t| t.get(*id)) {
            Some(l) => Reply::json(200, l),
            None => not_found(tier, Some(id)),
        },
        ("POST", []) => return Some(update(store, &mut tiers, parse_all(&req.body), audit)),
        ("POST", [tier, id]) => {
            let one = parse_container(&req.body).map(|c| single(tier, id, c));
            return Some(update(store, &mut tiers, one, audit));
        }
        ("DELETE", [tier]) => match tiers.remove(*tier) {
            Some(_) => return Some(save(store, &tiers, audit)),
            None => not_found(tier, None),
        },
        ("DELETE", [tier, id]) => match tiers.get_mut(*tier).and_then(|t| t.remove(*id)) {
            Some(_) => return Some(save(store, &tiers, audit)),
            None => not_found(tier, Some(id)),
        },
        _ => return None,
    }))
}

fn load(store: &dyn MetadataStore) -> Result<Option<Tiers>> {
    Ok(match store.config(KEY)? {
        Some(v) => Some(serde_json::from_value(v)?),
        None => None,
    })
}

/// Before the first `{}`: that POST initialises, every other call is refused.
fn uninitialised(
    store: &mut dyn MetadataStore,
    req: &Request,
    segs: &[&str],
    audit: &AuditInfo,
) -> Reply {
    let empty = serde_json::from_slice::<Value>(&req.body).ok() == Some(json!({}));
    match (req.method.as_str(), segs) {
        ("POST", []) if empty => save(store, &Tiers::new(), audit)
            .unwrap_or_else(|e| Reply::error(500, format!("{e:#}"))),
        ("GET", _) => Reply::error(404, "Lookups not initialized"),
        _ => Reply::error(
            400,
            "Not allowed to update lookups: lookups are not initialized, POST {} to /lookups/config first",
        ),
    }
}

fn update(
    store: &mut dyn MetadataStore,
    tiers: &mut Tiers,
    change: Result<Tiers, String>,
    audit: &AuditInfo,
) -> Result<Reply> {
    let change = match change.and_then(|c| newer(tiers, c)) {
        Ok(c) => c,
        Err(msg) => return Ok(Reply::error(400, msg)),
    };
    for (tier, lookups) in change {
        tiers.entry(tier).or_default().extend(lookups);
    }
    save(store, tiers, audit)
}

/// `change`, when every lookup in it has a version above the one it replaces.
fn newer(tiers: &Tiers, change: Tiers) -> Result<Tiers, String> {
    for (tier, lookups) in &change {
        for (id, c) in lookups {
            let (new, old) = (
                version(c),
                tiers.get(tier).and_then(|t| t.get(id)).map(version),
            );
            if let Some(old) = old.filter(|old| new <= *old) {
                return Err(format!(
                    "Can't update lookup[{id}] in tier[{tier}]: version[{new}] is not newer than version[{old}]"
                ));
            }
        }
    }
    Ok(change)
}

fn version(container: &Value) -> &str {
    container["version"].as_str().unwrap_or_default()
}

fn save(store: &mut dyn MetadataStore, tiers: &Tiers, audit: &AuditInfo) -> Result<Reply> {
    store.set_config(KEY, json!(tiers), audit)?;
    Ok(Reply::json(202, &json!({})))
}

fn single(tier: &str, id: &str, container: Value) -> Tiers {
    Tiers::from([(
        tier.to_string(),
        BTreeMap::from([(id.to_string(), container)]),
    )])
}

/// A bulk body `{tier: {name: container}}`.
fn parse_all(body: &[u8]) -> Result<Tiers, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let tiers = v
        .as_object()
        .ok_or("lookups must be a JSON object of tiers")?;
    let mut out = Tiers::new();
    for (tier, lookups) in tiers {
        let lookups = lookups
            .as_object()
            .ok_or_else(|| format!("tier[{tier}] must be a JSON object of lookups"))?;
        let parsed = lookups
            .iter()
            .map(|(id, c)| Ok((id.clone(), container(c)?)))
            .collect::<Result<BTreeMap<_, _>, String>>()?;
        out.insert(tier.clone(), parsed);
    }
    Ok(out)
}

fn parse_container(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    container(&v)
}

/// A lookup as Druid re-serialises it: its version and factory; other fields are dropped.
fn container(v: &Value) -> Result<Value, String> {
    let version = v["version"]
        .as_str()
        .ok_or("a lookup needs a string 'version'")?;
    let factory = v["lookupExtractorFactory"]
        .as_object()
        .ok_or("a lookup needs a 'lookupExtractorFactory' object")?;
    let mut out = Map::new();
    out.insert("version".into(), json!(version));
    out.insert(
        "lookupExtractorFactory".into(),
        Value::Object(factory.clone()),
    );
    Ok(Value::Object(out))
}

fn not_found(tier: &str, id: Option<&&str>) -> Reply {
    match id {
        Some(id) => Reply::error(404, format!("lookup [{id}] not found in tier [{tier}]")),
        None => Reply::error(404, format!("tier [{tier}] not found")),
    }
}
