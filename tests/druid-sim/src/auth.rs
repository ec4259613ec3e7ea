//! Basic authentication and authorisation of every request, before the leader redirect (a
//! non-leader answers 401/403 first, druid.md). Only `/status/health` and `/isLeader` are open.
//!
//! Druid hashes the presented password on each request; a simulator serving lifeboat's bench
//! must not spend a PBKDF2 run per call, so a password already verified against the current
//! credentials is remembered (by its SHA-256) until those credentials change.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::security::{Names, authn, authz};
use crate::server::{Reply, Request};
use crate::store::MetadataStore;

/// Users remembered at most; past it the memory starts afresh.
const MAX_REMEMBERED: usize = 1024;

/// What one request needs: an action on a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Need {
    pub kind: &'static str,
    pub name: String,
    pub action: &'static str,
}

/// The authenticator and authorizer in front of a node's handlers.
#[derive(Debug, Default)]
pub struct Gate {
    /// user -> (the credentials a password was verified against, that password's SHA-256)
    verified: HashMap<String, (Value, [u8; 32])>,
}

impl Gate {
    /// `Err` with the 401, 403 (or 500) to answer instead of handling the request.
    pub fn check(
        &mut self,
        store: &dyn MetadataStore,
        names: &Names,
        req: &Request,
    ) -> Result<(), Reply> {
        let Some(need) = need(req) else {
            return Ok(());
        };
        let user = self.authenticate(store, &names.authenticator, req)?;
        match authz::allowed(
            store,
            &names.authorizer,
            &user,
            need.kind,
            &need.name,
            need.action,
        ) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Reply::json(
                403,
                &json!({"Access-Check-Result": format!(
                    "Allowed:false, Message:{} on {}[{}]", need.action, need.kind, need.name)}),
            )),
            Err(e) => Err(Reply::error(500, format!("{e:#}"))),
        }
    }

    /// The user named by a valid `Authorization: Basic` header, or the 401.
    fn authenticate(
        &mut self,
        store: &dyn MetadataStore,
        authenticator: &str,
        req: &Request,
    ) -> Result<String, Reply> {
        let unauthorized = || Reply::error(401, "Unauthorized");
        let (user, password) = basic(req).ok_or_else(unauthorized)?;
        let creds = authn::credentials(store, authenticator, &user)
            .map_err(|e| Reply::error(500, format!("{e:#}")))?
            .ok_or_else(unauthorized)?;
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        if self.verified.get(&user) == Some(&(creds.clone(), digest)) {
            return Ok(user);
        }
        if !authn::verify(&creds, &password) {
            return Err(unauthorized());
        }
        if self.verified.len() >= MAX_REMEMBERED {
            self.verified.clear();
        }
        self.verified.insert(user.clone(), (creds, digest));
        Ok(user)
    }
}

/// `(user, password)` from `Authorization: Basic base64(user:password)`.
fn basic(req: &Request) -> Option<(String, String)> {
    let h = req.header("authorization")?;
    let (scheme, b64) = h.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let text = String::from_utf8(B64.decode(b64.trim()).ok()?).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The resource and action a request needs, or `None` when Druid leaves it unsecured.
pub fn need(req: &Request) -> Option<Need> {
    let path = req.path().trim_end_matches('/');
    if path == "/status/health" || path.ends_with("/v1/isLeader") {
        return None;
    }
    let action = if req.method == "GET" { "READ" } else { "WRITE" };
    let (kind, name) = resource(path, req);
    Some(Need { kind, name, action })
}

fn resource(path: &str, req: &Request) -> (&'static str, String) {
    let config = ("CONFIG", "CONFIG".to_string());
    let state = ("STATE", "STATE".to_string());
    let datasource = |name: &str| ("DATASOURCE", name.to_string());
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["druid-ext", "basic-security", ..] => ("CONFIG", "security".to_string()),
        ["druid", "coordinator", "v1", "rules"]
        | ["druid", "coordinator", "v1", "rules", "history"] => state,
        ["druid", "coordinator", "v1", "rules", ds, ..] => datasource(ds),
        ["druid", "coordinator", "v1", "config", "compaction"] if req.method == "POST" => {
            datasource(&body_datasource(req))
        }
        ["druid", "coordinator", "v1", "config", "compaction", ds, ..] if *ds != "taskslots" => {
            datasource(ds)
        }
        ["druid", "indexer", "v1", "supervisor"] if req.method == "POST" => {
            datasource(&body_datasource(req))
        }
        ["druid", "indexer", "v1", "supervisor"]
        | ["druid", "indexer", "v1", "supervisor", "history"] => state,
        ["druid", "indexer", "v1", "supervisor", id, ..] => datasource(id),
        [
            "druid",
            "coordinator" | "indexer",
            "v1",
            "config" | "lookups" | "worker" | "compaction",
            ..,
        ] => config,
        _ => state,
    }
}

/// The datasource a compaction config or supervisor spec in the body is for ("" when none).
fn body_datasource(req: &Request) -> String {
    let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    [
        &v["dataSource"],
        &v["spec"]["dataSchema"]["dataSource"],
        &v["dataSchema"]["dataSource"],
    ]
    .into_iter()
    .find_map(Value::as_str)
    .unwrap_or_default()
    .to_string()
}
