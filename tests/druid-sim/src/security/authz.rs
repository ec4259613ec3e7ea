//! An authorizer's users, roles, permissions and role assignments:
//! `.../authorization/db/{name}/users[/{u}[/roles/{r}]]`, `roles[/{r}[/permissions]]`.
//!
//! A permission is a resource type, a name regex that must match a whole resource name, and an
//! action; a POST of permissions replaces the role's list.

use std::collections::BTreeMap;

use anyhow::Result;
use regex::Regex;
use serde_json::{Value, json};

use super::{load, names, refuse, save};
use crate::server::{Reply, Request};
use crate::store::{AuditInfo, MetadataStore};

/// Druid's resource types.
pub const TYPES: [&str; 7] = [
    "DATASOURCE",
    "VIEW",
    "CONFIG",
    "STATE",
    "SYSTEM_TABLE",
    "QUERY_CONTEXT",
    "EXTERNAL",
];

/// A name pattern larger than this is refused rather than compiled.
const MAX_PATTERN: usize = 1024;

/// The rows of an authorizer's users and roles.
pub fn rows(authorizer: &str) -> (String, String) {
    (
        format!("basic_authorization_{authorizer}_users"),
        format!("basic_authorization_{authorizer}_roles"),
    )
}

struct State {
    users_row: String,
    roles_row: String,
    users: BTreeMap<String, Value>,
    roles: BTreeMap<String, Value>,
}

impl State {
    fn load(store: &dyn MetadataStore, authorizer: &str) -> Result<State> {
        let (users_row, roles_row) = rows(authorizer);
        Ok(State {
            users: load(store, &users_row)?,
            roles: load(store, &roles_row)?,
            users_row,
            roles_row,
        })
    }

    fn role_names(&self, user: &str) -> Vec<String> {
        self.users.get(user).map_or_else(Vec::new, |u| {
            u["roles"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    fn users_of(&self, role: &str) -> Vec<&String> {
        self.users
            .keys()
            .filter(|u| self.role_names(u).iter().any(|r| r == role))
            .collect()
    }
}

/// Answers `users...` and `roles...`; `tail` is the path after `/db/{name}`.
pub fn handle(
    store: &mut dyn MetadataStore,
    req: &Request,
    name: &str,
    tail: &[&str],
    audit: &AuditInfo,
) -> Option<Result<Reply>> {
    let st = match State::load(store, name) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    let full = req.query("full").is_some();
    Some(match (req.method.as_str(), tail) {
        ("GET", ["users"]) if full => Ok(every(&st, st.users.keys(), user_json)),
        ("GET", ["users"]) => Ok(names(&st.users)),
        ("GET", ["users", u]) => user(&st, u, full),
        ("POST", ["users", u]) => create_user(store, st, u, audit),
        ("DELETE", ["users", u]) => delete_user(store, st, u, audit),
        ("POST", ["users", u, "roles", r]) => assign(store, st, u, r, true, audit),
        ("DELETE", ["users", u, "roles", r]) => assign(store, st, u, r, false, audit),
        ("GET", ["roles"]) if full => Ok(every(&st, st.roles.keys(), role_json)),
        ("GET", ["roles"]) => Ok(names(&st.roles)),
        ("GET", ["roles", r]) => role(&st, r, full),
        ("POST", ["roles", r]) => create_role(store, st, r, audit),
        ("DELETE", ["roles", r]) => delete_role(store, st, r, audit),
        ("GET", ["roles", r, "permissions"]) => match st.roles.get(*r) {
            Some(role) => Ok(Reply::json(200, &role["permissions"])),
            None => no_role(r),
        },
        ("POST", ["roles", r, "permissions"]) => set_permissions(store, st, r, &req.body, audit),
        _ => return None,
    })
}

fn no_user(u: &str) -> Result<Reply> {
    refuse(format!("User [{u}] does not exist."))
}

fn no_role(r: &str) -> Result<Reply> {
    refuse(format!("Role [{r}] does not exist."))
}

/// `{name, roles: [names]}`, or with `full` the roles with their permissions.
fn user_json(st: &State, u: &str, full: bool) -> Value {
    let roles: Vec<Value> = st
        .role_names(u)
        .into_iter()
        .map(|r| match (full, st.roles.get(&r)) {
            (true, Some(role)) => role.clone(),
            _ => json!(r),
        })
        .collect();
    json!({"name": u, "roles": roles})
}

/// `{name, users}`, with `full` also the permissions.
fn role_json(st: &State, r: &str, full: bool) -> Value {
    let mut out = json!({"name": r, "users": st.users_of(r)});
    if full {
        out["permissions"] = st
            .roles
            .get(r)
            .map_or(Value::Null, |role| role["permissions"].clone());
    }
    out
}

/// `?full` on a list: every entry in full, in name order.
fn every<'a>(
    st: &State,
    names: impl Iterator<Item = &'a String>,
    one: fn(&State, &str, bool) -> Value,
) -> Reply {
    Reply::json(
        200,
        &Value::Array(names.map(|n| one(st, n, true)).collect()),
    )
}

fn user(st: &State, u: &str, full: bool) -> Result<Reply> {
    if !st.users.contains_key(u) {
        return no_user(u);
    }
    Ok(Reply::json(200, &user_json(st, u, full)))
}

fn role(st: &State, r: &str, full: bool) -> Result<Reply> {
    if !st.roles.contains_key(r) {
        return no_role(r);
    }
    Ok(Reply::json(200, &role_json(st, r, full)))
}

fn create_user(
    store: &mut dyn MetadataStore,
    mut st: State,
    u: &str,
    audit: &AuditInfo,
) -> Result<Reply> {
    if st.users.contains_key(u) {
        return refuse(format!("User [{u}] already exists."));
    }
    st.users
        .insert(u.to_string(), json!({"name": u, "roles": []}));
    save(store, &st.users_row, st.users, audit)
}

fn delete_user(
    store: &mut dyn MetadataStore,
    mut st: State,
    u: &str,
    audit: &AuditInfo,
) -> Result<Reply> {
    if st.users.remove(u).is_none() {
        return no_user(u);
    }
    save(store, &st.users_row, st.users, audit)
}

fn create_role(
    store: &mut dyn MetadataStore,
    mut st: State,
    r: &str,
    audit: &AuditInfo,
) -> Result<Reply> {
    if st.roles.contains_key(r) {
        return refuse(format!("Role [{r}] already exists."));
    }
    st.roles
        .insert(r.to_string(), json!({"name": r, "permissions": []}));
    save(store, &st.roles_row, st.roles, audit)
}

/// Deleting a role also takes it from every user that had it.
fn delete_role(
    store: &mut dyn MetadataStore,
    mut st: State,
    r: &str,
    audit: &AuditInfo,
) -> Result<Reply> {
    if st.roles.remove(r).is_none() {
        return no_role(r);
    }
    let holders: Vec<String> = st.users_of(r).into_iter().cloned().collect();
    for u in &holders {
        let kept: Vec<String> = st.role_names(u).into_iter().filter(|x| x != r).collect();
        st.users
            .insert(u.clone(), json!({"name": u, "roles": kept}));
    }
    if !holders.is_empty() {
        save(store, &st.users_row, st.users, audit)?;
    }
    save(store, &st.roles_row, st.roles, audit)
}

fn assign(
    store: &mut dyn MetadataStore,
    mut st: State,
    u: &str,
    r: &str,
    add: bool,
    audit: &AuditInfo,
) -> Result<Reply> {
    if !st.users.contains_key(u) {
        return no_user(u);
    }
    if !st.roles.contains_key(r) {
        return no_role(r);
    }
    let mut roles = st.role_names(u);
    let has = roles.iter().any(|x| x == r);
    match (add, has) {
        (true, true) => return refuse(format!("User [{u}] already has role [{r}].")),
        (false, false) => return refuse(format!("User [{u}] does not have role [{r}].")),
        (true, false) => roles.push(r.to_string()),
        (false, true) => roles.retain(|x| x != r),
    }
    st.users
        .insert(u.to_string(), json!({"name": u, "roles": roles}));
    save(store, &st.users_row, st.users, audit)
}

fn set_permissions(
    store: &mut dyn MetadataStore,
    mut st: State,
    r: &str,
    body: &[u8],
    audit: &AuditInfo,
) -> Result<Reply> {
    if !st.roles.contains_key(r) {
        return no_role(r);
    }
    let perms = match parse_permissions(body) {
        Ok(p) => p,
        Err(msg) => return refuse(msg),
    };
    st.roles
        .insert(r.to_string(), json!({"name": r, "permissions": perms}));
    save(store, &st.roles_row, st.roles, audit)
}

/// A list of `ResourceAction`s as Druid stores them: `{resourceAction, resourceNamePattern}`.
fn parse_permissions(body: &[u8]) -> Result<Vec<Value>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let Value::Array(items) = v else {
        return Err("permissions must be a JSON array of resource actions".into());
    };
    items.iter().map(permission).collect()
}

fn permission(v: &Value) -> Result<Value, String> {
    let name = v["resource"]["name"]
        .as_str()
        .ok_or("resource.name is required")?;
    let kind = v["resource"]["type"]
        .as_str()
        .ok_or("resource.type is required")?;
    if !TYPES.contains(&kind) {
        return Err(format!("Unknown resource type [{kind}]: one of {TYPES:?}"));
    }
    let action = v["action"].as_str().unwrap_or_default();
    if !matches!(action, "READ" | "WRITE") {
        return Err(format!(
            "Cannot deserialize Action from [{action}]: not one of [READ, WRITE]"
        ));
    }
    pattern(name).map_err(|e| format!("Invalid permission pattern [{name}]: {e}"))?;
    Ok(
        json!({"resourceAction": {"resource": {"name": name, "type": kind}, "action": action},
              "resourceNamePattern": name}),
    )
}

/// Whether a stored pattern matches a whole resource name, as Druid matches it (`.*`, the
/// admin's every pattern, without compiling a regex per request).
fn matches(pattern_text: &str, name: &str) -> bool {
    pattern_text == ".*" || pattern(pattern_text).is_ok_and(|re| re.is_match(name))
}

/// Druid matches a name pattern against the whole resource name.
fn pattern(p: &str) -> Result<Regex, String> {
    if p.len() > MAX_PATTERN {
        return Err(format!("longer than {MAX_PATTERN} bytes"));
    }
    regex::RegexBuilder::new(&format!("^(?:{p})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string())
}

/// Whether `user` holds a role with a permission for `action` on the resource `kind`/`name`.
pub fn allowed(
    store: &dyn MetadataStore,
    authorizer: &str,
    user: &str,
    kind: &str,
    name: &str,
    action: &str,
) -> Result<bool> {
    let st = State::load(store, authorizer)?;
    let perms = st
        .role_names(user)
        .into_iter()
        .filter_map(|r| st.roles.get(&r)?["permissions"].as_array().cloned())
        .flatten();
    for p in perms {
        let ra = &p["resourceAction"];
        if ra["resource"]["type"] == kind
            && ra["action"] == action
            && p["resourceNamePattern"]
                .as_str()
                .is_some_and(|pat| matches(pat, name))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The `admin` role (every action on every resource) and the `admin` user holding it, unless
/// they exist (Druid's first start with `initialAdminPassword`).
pub fn seed_admin(
    store: &mut dyn MetadataStore,
    authorizer: &str,
    audit: &AuditInfo,
) -> Result<()> {
    let mut st = State::load(store, authorizer)?;
    if !st.roles.contains_key("admin") {
        let all: Vec<Value> = TYPES
            .iter()
            .flat_map(|t| ["READ", "WRITE"].map(|a| (t, a)))
            .map(|(t, a)| {
                json!({"resourceAction": {"resource": {"name": ".*", "type": t}, "action": a},
                                 "resourceNamePattern": ".*"})
            })
            .collect();
        st.roles
            .insert("admin".into(), json!({"name": "admin", "permissions": all}));
        save(store, &st.roles_row, st.roles, audit)?;
    }
    if !st.users.contains_key("admin") {
        st.users
            .insert("admin".into(), json!({"name": "admin", "roles": ["admin"]}));
        save(store, &st.users_row, st.users, audit)?;
    }
    Ok(())
}
