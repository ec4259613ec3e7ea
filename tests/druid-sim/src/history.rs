//! Druid's history endpoints: `druid_audit` rows of one type, newest first, `?count=N` the last N
//! or `?interval=start/end` those created in it (the interval wins when both are given, as in
//! Druid's resources).

use anyhow::Result;
use serde_json::Value;

use crate::server::{Reply, Request};
use crate::store::{AuditEntry, MetadataStore};

/// The audit rows of `kind` (and `key`), as the history endpoints answer them.
pub fn reply(
    store: &dyn MetadataStore,
    kind: &str,
    key: Option<&str>,
    req: &Request,
) -> Result<Reply> {
    let rows = match select(store.audit(kind, key)?, req) {
        Ok(rows) => rows,
        Err(msg) => return Ok(Reply::error(400, msg)),
    };
    Ok(Reply::json(
        200,
        &Value::Array(rows.iter().map(AuditEntry::to_json).collect()),
    ))
}

/// The simulator's own `GET /druid-sim/v1/audit?type=T[&key=K]`: any type's audit rows, for
/// tests that must prove no write happened where Druid has no history endpoint (lookups, basic
/// security).
/// Password hashes, which the users row and so its audit rows hold, are redacted.
pub fn audit(store: &dyn MetadataStore, req: &Request) -> Result<Reply> {
    let Some(kind) = req.query("type") else {
        return Ok(Reply::error(400, "type is required"));
    };
    let rows = match select(store.audit(kind, req.query("key"))?, req) {
        Ok(rows) => rows,
        Err(msg) => return Ok(Reply::error(400, msg)),
    };
    let shown: Vec<Value> = rows
        .into_iter()
        .map(|mut r| {
            r.payload = redacted(&r.payload);
            r.to_json()
        })
        .collect();
    Ok(Reply::json(200, &Value::Array(shown)))
}

/// A payload with every `credentials` object in it replaced by `"<redacted>"`.
fn redacted(payload: &str) -> String {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == "credentials" && !x.is_null() {
                        *x = Value::String("<redacted>".into());
                    } else {
                        walk(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    match serde_json::from_str::<Value>(payload) {
        Ok(mut v) => {
            walk(&mut v);
            v.to_string()
        }
        Err(_) => payload.to_string(),
    }
}

/// `rows` (oldest first) as `?count` or `?interval` pick them, newest first.
pub fn select(rows: Vec<AuditEntry>, req: &Request) -> Result<Vec<AuditEntry>, String> {
    if let Some(iv) = req.query("interval") {
        let (start, end) = interval(iv)?;
        return Ok(rows
            .into_iter()
            .rev()
            .filter(|r| r.created >= start && r.created < end)
            .collect());
    }
    let count = match req.query("count").map(str::parse::<usize>) {
        None => usize::MAX,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return Err("count must be greater than zero".into()),
    };
    Ok(rows.into_iter().rev().take(count).collect())
}

/// An ISO interval `start/end` (instants or dates, `/` possibly sent as `%2F`) as the bounds in
/// `created_date`'s own form, so that they compare as strings.
fn interval(iv: &str) -> Result<(String, String), String> {
    let iv = iv
        .replace("%2F", "/")
        .replace("%2f", "/")
        .replace("%3A", ":")
        .replace("%2B", "+");
    let bad = || format!("Invalid interval [{iv}]: expected start/end in ISO-8601");
    let (a, b) = iv.split_once('/').ok_or_else(bad)?;
    let (start, end) = (instant(a).ok_or_else(bad)?, instant(b).ok_or_else(bad)?);
    if start > end {
        return Err(format!(
            "Invalid interval [{iv}]: the end is before the start"
        ));
    }
    Ok((start, end))
}

fn instant(s: &str) -> Option<String> {
    let utc = match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&chrono::Utc),
        Err(_) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0)?
            .and_utc(),
    };
    Some(utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}
