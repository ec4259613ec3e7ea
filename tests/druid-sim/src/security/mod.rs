//! The basic-security extension's metadata-store endpoints: authenticator users and their
//! credentials (`authn`), authorizer users, roles, permissions and assignments (`authz`).
//!
//! Each authenticator and authorizer keeps its state in `druid_config` rows named as Druid names
//! them (`basic_authentication_<name>_users`, `basic_authorization_<name>_users|roles`), so every
//! change is a row write with its audit row. Druid answers its own refusals here with 400
//! (`BasicSecurityDBResourceException`), a missing user or role included.

pub mod authn;
pub mod authz;

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{Value, json};

use crate::server::{Reply, Request};
use crate::store::{AuditInfo, MetadataStore};

/// Where the endpoints live.
pub const PREFIX: &str = "/druid-ext/basic-security";

/// The names of the one authenticator and authorizer this node configures.
#[derive(Debug, Clone)]
pub struct Names {
    pub authenticator: String,
    pub authorizer: String,
}

impl Default for Names {
    /// The names in Druid's basic-security documentation examples.
    fn default() -> Names {
        Names {
            authenticator: "MyBasicMetadataAuthenticator".into(),
            authorizer: "MyBasicMetadataAuthorizer".into(),
        }
    }
}

/// Answers a request under [`PREFIX`]; `rest` is the path after it.
pub fn handle(
    store: &mut dyn MetadataStore,
    req: &Request,
    rest: &str,
    audit: &AuditInfo,
    names: &Names,
) -> Option<Result<Reply>> {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["authentication", "loadStatus"] => Some(Ok(loaded(&names.authenticator))),
        ["authorization", "loadStatus"] => Some(Ok(loaded(&names.authorizer))),
        ["authentication", "db", name, tail @ ..] => Some(if *name == names.authenticator {
            authn::handle(store, req, name, tail, audit)?
        } else {
            Ok(unknown("authenticator", name))
        }),
        ["authorization", "db", name, tail @ ..] => Some(if *name == names.authorizer {
            authz::handle(store, req, name, tail, audit)?
        } else {
            Ok(unknown("authorizer", name))
        }),
        _ => None,
    }
}

fn loaded(name: &str) -> Reply {
    Reply::json(200, &json!({ name: true }))
}

fn unknown(what: &str, name: &str) -> Reply {
    Reply::error(
        400,
        format!("Basic {what} with name [{name}] does not exist."),
    )
}

/// A row holding a map by name (users or roles); empty when the row does not exist yet.
pub(crate) fn load(store: &dyn MetadataStore, row: &str) -> Result<BTreeMap<String, Value>> {
    Ok(match store.config(row)? {
        Some(Value::Object(m)) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    })
}

pub(crate) fn save(
    store: &mut dyn MetadataStore,
    row: &str,
    map: BTreeMap<String, Value>,
    audit: &AuditInfo,
) -> Result<Reply> {
    store.set_config(row, json!(map), audit)?;
    Ok(Reply::raw(200, String::new()))
}

/// Druid's 400 for a refused security change.
pub(crate) fn refuse(msg: impl std::fmt::Display) -> Result<Reply> {
    Ok(Reply::error(400, msg))
}

pub(crate) fn names(map: &BTreeMap<String, Value>) -> Reply {
    Reply::json(200, &json!(map.keys().collect::<Vec<_>>()))
}
