//! Retention rules: `/druid/coordinator/v1/rules[/{datasource}][/history]`.
//!
//! Druid's ObjectMapper ignores unknown properties, but `Rule` is polymorphic on `type`, so an
//! unknown type id fails at parse time (druid.md, "Artefact quirks": an unknown `type` is
//! rejected at parse time); since Druid 27 the list itself is validated ("newer versions
//! validate the list"). What Druid stores is its re-serialisation: unknown fields vanish and
//! defaults appear.

use anyhow::Result;
use serde_json::{Map, Value, json};

use crate::history;
use crate::server::{Reply, Request};
use crate::store::{AuditInfo, MetadataStore};

/// The cluster-wide rules' key.
pub const DEFAULT: &str = "_default";

/// What a new metadata store starts with.
pub fn default_rule() -> Value {
    json!([{"type": "loadForever", "tieredReplicants": {"_default_tier": 2}, "useDefaultTierForNull": true}])
}

/// Answers a rules request; `rest` is the path after `/rules`.
pub fn handle(
    store: &mut dyn MetadataStore,
    req: &Request,
    rest: &str,
    audit: &AuditInfo,
) -> Option<Result<Reply>> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    Some(match (req.method.as_str(), segs.as_slice()) {
        ("GET", []) => store.rules().map(|r| Reply::json(200, &json!(r))),
        ("GET", ["history"]) => history::reply(store, "rules", None, req),
        ("GET", [ds, "history"]) => history::reply(store, "rules", Some(ds), req),
        ("GET", [ds]) => one(store, ds, req.query("full").is_some()),
        ("POST", [ds]) => set(store, ds, &req.body, audit),
        _ => return None,
    })
}

/// One datasource's rules (`[]` when it has none); with `full`, the `_default` ones follow.
fn one(store: &dyn MetadataStore, ds: &str, full: bool) -> Result<Reply> {
    let all = store.rules()?;
    let mut list = all.get(ds).cloned().unwrap_or_else(|| json!([]));
    if full
        && ds != DEFAULT
        && let (Some(l), Some(Value::Array(d))) = (list.as_array_mut(), all.get(DEFAULT))
    {
        l.extend(d.iter().cloned());
    }
    Ok(Reply::json(200, &list))
}

/// Overwrites a datasource's rules (an empty list clears them); 200 even for an unknown one.
fn set(store: &mut dyn MetadataStore, ds: &str, body: &[u8], audit: &AuditInfo) -> Result<Reply> {
    let parsed = match parse_rules(body) {
        Ok(r) => r,
        Err(msg) => return Ok(Reply::error(400, msg)),
    };
    store.set_rules(ds, Value::Array(parsed), audit)?;
    Ok(Reply::raw(200, String::new()))
}

/// The rules as Druid would store them, or the message of Druid's 400.
pub fn parse_rules(body: &[u8]) -> Result<Vec<Value>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let Value::Array(items) = v else {
        return Err("Cannot deserialize value of type `java.util.ArrayList` from non-array".into());
    };
    let rules = items
        .iter()
        .map(parse_rule)
        .collect::<Result<Vec<_>, _>>()?;
    validate_order(&rules)?;
    Ok(rules)
}

/// The fields a rule type has, past `type`: (name, kind).
fn fields_of(kind: &str) -> Option<&'static [(&'static str, Field)]> {
    use Field::*;
    Some(match kind {
        "loadForever" => &[
            ("tieredReplicants", Replicants),
            ("useDefaultTierForNull", Bool),
        ],
        "loadByPeriod" => &[
            ("period", Req),
            ("includeFuture", Bool),
            ("tieredReplicants", Replicants),
            ("useDefaultTierForNull", Bool),
        ],
        "loadByInterval" => &[
            ("interval", Req),
            ("tieredReplicants", Replicants),
            ("useDefaultTierForNull", Bool),
        ],
        "dropForever" | "broadcastForever" => &[],
        "dropByPeriod" | "broadcastByPeriod" => &[("period", Req), ("includeFuture", Bool)],
        "dropBeforeByPeriod" => &[("period", Req)],
        "dropByInterval" | "broadcastByInterval" => &[("interval", Req)],
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy)]
enum Field {
    /// A required string (ISO period or interval).
    Req,
    Bool,
    /// `{tier: replicas}`, replicas a non-negative integer.
    Replicants,
}

fn parse_rule(v: &Value) -> Result<Value, String> {
    let obj = v.as_object().ok_or("a rule must be a JSON object")?;
    let kind = obj.get("type").and_then(Value::as_str).ok_or(
        "missing type id when trying to resolve subtype of Rule: missing type id property 'type'",
    )?;
    let fields = fields_of(kind).ok_or_else(|| {
        format!("Could not resolve type id '{kind}' as a subtype of `org.apache.druid.server.coordinator.rules.Rule`")
    })?;
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    for (name, f) in fields {
        if let Some(val) = checked(obj.get(*name), name, *f, kind)? {
            out.insert((*name).to_string(), val);
        }
    }
    Ok(Value::Object(with_defaults(out, fields)))
}

/// A field's value after Jackson's type checks; `None` when absent and optional.
fn checked(v: Option<&Value>, name: &str, f: Field, kind: &str) -> Result<Option<Value>, String> {
    let bad = || format!("Rule[{kind}]: field '{name}' has the wrong type");
    match (f, v) {
        (Field::Req, None | Some(Value::Null)) => {
            Err(format!("Rule[{kind}]: '{name}' is required"))
        }
        (_, None | Some(Value::Null)) => Ok(None),
        (Field::Req, Some(s @ Value::String(_))) | (Field::Bool, Some(s @ Value::Bool(_))) => {
            Ok(Some(s.clone()))
        }
        (Field::Replicants, Some(Value::Object(m))) => {
            if m.values().all(|n| n.as_u64().is_some()) {
                Ok(Some(Value::Object(m.clone())))
            } else {
                Err(format!(
                    "Rule[{kind}]: replicants must be non-negative integers"
                ))
            }
        }
        _ => Err(bad()),
    }
}

/// Druid serialises `includeFuture` and `useDefaultTierForNull` even when they were not sent.
fn with_defaults(mut out: Map<String, Value>, fields: &[(&str, Field)]) -> Map<String, Value> {
    for (name, _) in fields {
        if matches!(*name, "includeFuture" | "useDefaultTierForNull") && !out.contains_key(*name) {
            out.insert((*name).to_string(), json!(true));
        }
    }
    out
}

/// A forever rule matches every interval, so any rule after it could never apply.
fn validate_order(rules: &[Value]) -> Result<(), String> {
    let last = rules.len().saturating_sub(1);
    match rules
        .iter()
        .position(|r| r["type"].as_str().is_some_and(|t| t.ends_with("Forever")))
    {
        Some(i) if i < last => Err(format!(
            "Rule[{}] matches all intervals and makes the rules after it redundant",
            rules[i]
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_vanish_and_defaults_appear() {
        let got =
            parse_rules(br#"[{"type":"loadByPeriod","period":"P1M","colour":"red"}]"#).unwrap();
        assert_eq!(
            got,
            vec![
                json!({"type":"loadByPeriod","period":"P1M","includeFuture":true,"useDefaultTierForNull":true})
            ]
        );
    }

    #[test]
    fn a_period_rule_without_its_period_is_refused() {
        let e = parse_rules(br#"[{"type":"dropByPeriod"}]"#).unwrap_err();
        assert!(e.contains("'period' is required"), "{e}");
    }
}
