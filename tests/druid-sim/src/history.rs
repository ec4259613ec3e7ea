//! Druid's history endpoints: `druid_audit` rows of one type, newest first, `?count=N` the last N.

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
    let count = match req.query("count").map(str::parse::<usize>) {
        None => usize::MAX,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return Ok(Reply::error(400, "count must be greater than zero")),
    };
    let rows: Vec<Value> = store
        .audit(kind, key)?
        .iter()
        .rev()
        .take(count)
        .map(AuditEntry::to_json)
        .collect();
    Ok(Reply::json(200, &Value::Array(rows)))
}
