//! The catalog (`/api/v3/catalog`), reflections (`/api/v3/reflection`) and collaboration
//! (wiki, tags) endpoints, all persisted in the store's tables so that a `dremio-admin`
//! backup/restore carries them.
//!
//! Storage (the simulator's own shapes, not Dremio's protobufs):
//! * `dac-namespace`: key = lower-cased path joined by U+001F, value = the entity as stored
//!   (secrets in clear).
//! * `reflection_goals`: key = reflection id, value = the reflection.
//! * `collaboration_wiki` / `collaboration_tags`: key = entity id, value =
//!   `{"entityId", "text"|"tags", "version"}`.

use serde_json::{Map, Value, json};

use crate::server::Reply;
use crate::store::Store;
use crate::util::{now_ms, random_bytes, uuid};

/// The namespace table.
pub const NS: &str = "dac-namespace";
/// The reflections table.
pub const REFLECTIONS: &str = "reflection_goals";
/// The wiki table.
pub const WIKI: &str = "collaboration_wiki";
/// The tags table.
pub const TAGS: &str = "collaboration_tags";
/// What secrets look like on GET; sent back on PUT, it keeps the stored secret.
pub const MASK: &str = "$DREMIO_EXISTING_VALUE$";
/// Longest wiki text Dremio accepts.
pub const WIKI_MAX: usize = 100_000;

type Res = anyhow::Result<Reply>;

/// Namespace key of a path (case-insensitive, like Dremio's namespace).
pub fn ns_key(path: &[String]) -> String {
    path.iter()
        .map(|p| p.to_lowercase())
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

fn new_tag() -> String {
    hex::encode(random_bytes::<8>())
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(|x| x.as_str())
}

fn path_of(e: &Value) -> Vec<String> {
    e["path"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn str_list(v: &Value) -> Option<Vec<String>> {
    let a = v.as_array()?;
    a.iter().map(|x| x.as_str().map(str::to_string)).collect()
}

/// A value of the query string (percent-decoded).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| crate::server::percent_decode(&v.replace('+', " ")))
}

fn by_id(store: &Store, id: &str) -> Option<Value> {
    store
        .values_json(NS)
        .into_iter()
        .find(|e| s(e, "id") == Some(id))
}

fn not_found_id(id: &str) -> Reply {
    Reply::error(404, &format!("Could not find entity with id [{id}]"))
}

fn is_container(e: &Value) -> bool {
    matches!(s(e, "entityType"), Some("space" | "folder" | "source"))
}

fn is_dataset(e: &Value) -> bool {
    s(e, "entityType") == Some("dataset")
}

/// The catalog item (summary) of an entity.
pub fn item(e: &Value) -> Value {
    let mut it = json!({
        "id": e["id"],
        "path": e["path"],
        "tag": e["tag"],
        "createdAt": e["createdAt"]
    });
    if is_dataset(e) {
        it["type"] = json!("DATASET");
        it["datasetType"] = json!(if s(e, "type") == Some("VIRTUAL_DATASET") {
            "VIRTUAL"
        } else {
            "PROMOTED"
        });
    } else {
        it["type"] = json!("CONTAINER");
        it["containerType"] = json!(s(e, "entityType").unwrap_or("").to_uppercase());
    }
    it
}

/// Whether a config key names a secret (masked on GET).
pub fn is_secret_key(k: &str) -> bool {
    let l = k.to_ascii_lowercase();
    l.contains("password") || l.contains("secret") || l.contains("accesskey")
}

/// Replaces every non-empty secret string with [`MASK`].
pub fn mask_secrets(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if is_secret_key(k) && x.as_str().is_some_and(|s| !s.is_empty()) {
                    *x = json!(MASK);
                } else {
                    mask_secrets(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// Replaces every [`MASK`] sent for a secret key by the value stored at the same place in
/// `old`; errs (naming the field) when there is none.
fn unmask(new: &mut Value, old: Option<&Value>, at: &str) -> Result<(), String> {
    match new {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let here = format!("{at}.{k}");
                let prev = old.and_then(|o| o.get(k));
                if is_secret_key(k) && x.as_str() == Some(MASK) {
                    match prev.and_then(|p| p.as_str()).filter(|p| *p != MASK) {
                        Some(p) => *x = json!(p),
                        None => {
                            return Err(format!(
                                "Field [{here}] is {MASK} but there is no existing value to keep"
                            ));
                        }
                    }
                } else {
                    unmask(x, prev, &here)?;
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                unmask(x, old.and_then(|o| o.get(i)), &format!("{at}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Paging of children: `(maxChildren, pageToken)` from the query.
fn paging(query: &str) -> Result<(Option<usize>, Option<String>), Reply> {
    let max = match query_param(query, "maxChildren") {
        None => None,
        Some(m) => match m.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => {
                return Err(Reply::error(
                    400,
                    &format!("Invalid maxChildren [{m}]: not a non-negative integer"),
                ));
            }
        },
    };
    let token = match query_param(query, "pageToken").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => match hex::decode(&t).ok().and_then(|b| String::from_utf8(b).ok()) {
            Some(k) => Some(k),
            None => return Err(Reply::error(400, &format!("Invalid pageToken [{t}]"))),
        },
    };
    Ok((max, token))
}

/// The entity as answered: secrets masked, children (paged) for containers.
fn present(store: &Store, mut e: Value, query: &str) -> Reply {
    if s(&e, "entityType") == Some("source") {
        mask_secrets(&mut e["config"]);
    }
    if is_container(&e) {
        let (max, token) = match paging(query) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let pp = path_of(&e);
        let pk = ns_key(&pp);
        let mut kids: Vec<(String, Value)> = store
            .table(NS)
            .map(|t| {
                t.values()
                    .filter_map(|v| {
                        let c: Value = serde_json::from_str(v).ok()?;
                        let cp = path_of(&c);
                        (cp.len() == pp.len() + 1 && ns_key(&cp[..pp.len()]) == pk)
                            .then(|| (cp[pp.len()].to_lowercase(), c))
                    })
                    .collect()
            })
            .unwrap_or_default();
        kids.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(t) = &token {
            kids.retain(|(k, _)| k > t);
        }
        let mut next = None;
        if let Some(m) = max
            && kids.len() > m
        {
            kids.truncate(m);
            if m > 0 {
                next = kids.last().map(|(k, _)| hex::encode(k.as_bytes()));
            }
        }
        e["children"] = Value::Array(kids.iter().map(|(_, c)| item(c)).collect());
        if let Some(n) = next {
            e["nextPageToken"] = json!(n);
        }
    }
    Reply::ok(e)
}

/// `GET /api/v3/catalog`: the top-level containers.
pub fn root(store: &Store) -> Reply {
    let data: Vec<Value> = store
        .values_json(NS)
        .iter()
        .filter(|e| e["path"].as_array().is_some_and(|p| p.len() == 1))
        .map(item)
        .collect();
    Reply::ok(json!({ "data": data }))
}

/// `GET /api/v3/catalog/{id}`.
pub fn get_by_id(store: &Store, id: &str, query: &str) -> Reply {
    match by_id(store, id) {
        Some(e) => present(store, e, query),
        None => not_found_id(id),
    }
}

/// `GET /api/v3/catalog/by-path/...`.
pub fn get_by_path(store: &Store, path: &[String], query: &str) -> Reply {
    match store.get_json(NS, &ns_key(path)) {
        Some(e) => present(store, e, query),
        None => Reply::error(
            404,
            &format!("Could not find entity with path [{}]", path.join(".")),
        ),
    }
}

fn missing_parent(path: &[String]) -> Reply {
    Reply::error(
        404,
        &format!(
            "Could not find entity with path [{}]",
            path[..path.len() - 1].join(".")
        ),
    )
}

/// `POST /api/v3/catalog`.
pub fn create(store: &mut Store, body: &Value) -> Res {
    let kind = match s(body, "entityType") {
        Some(k @ ("space" | "folder" | "source" | "dataset")) => k,
        Some(t) => {
            return Ok(Reply::error(
                400,
                &format!("entityType {t} is not supported by the simulator yet"),
            ));
        }
        None => return Ok(Reply::error(400, "Missing field entityType")),
    };
    let path: Vec<String> = match kind {
        "space" | "source" => match s(body, "name").filter(|n| !n.is_empty()) {
            Some(n) => vec![n.to_string()],
            None => return Ok(Reply::error(400, "Missing field name")),
        },
        _ => match str_list(&body["path"]) {
            Some(p) if p.len() >= 2 && p.iter().all(|x| !x.is_empty()) => p,
            _ => {
                return Ok(Reply::error(
                    400,
                    &format!("A {kind} needs a path of at least two non-empty strings"),
                ));
            }
        },
    };
    let key = ns_key(&path);
    if store.get(NS, &key).is_some() {
        return Ok(Reply::error(
            409,
            &format!("The entity [{}] already exists.", path.join(".")),
        ));
    }
    let root = store.get_json(NS, &ns_key(&path[..1]));
    let parent = (path.len() > 1)
        .then(|| store.get_json(NS, &ns_key(&path[..path.len() - 1])))
        .flatten();
    let mut e = json!({
        "entityType": kind,
        "id": uuid(),
        "path": path,
        "tag": new_tag(),
        "createdAt": now_ms()
    });
    match kind {
        "space" => e["name"] = json!(path[0]),
        "folder" => match parent {
            None => return Ok(missing_parent(&path)),
            Some(p) if is_dataset(&p) => {
                return Ok(Reply::error(
                    400,
                    &format!(
                        "Cannot create a folder under dataset [{}]",
                        path_of(&p).join(".")
                    ),
                ));
            }
            Some(_) => {}
        },
        "source" => {
            let Some(t) = s(body, "type").filter(|t| !t.is_empty()) else {
                return Ok(Reply::error(400, "Missing field type"));
            };
            let mut config = body.get("config").cloned().unwrap_or(json!({}));
            if !config.is_object() {
                return Ok(Reply::error(400, "Field config must be an object"));
            }
            if let Err(m) = unmask(&mut config, None, "config") {
                return Ok(Reply::error(400, &m));
            }
            let mut m = body.as_object().cloned().unwrap_or_default();
            for k in ["id", "tag", "createdAt", "children", "path"] {
                m.remove(k);
            }
            for (k, v) in m {
                e[k] = v;
            }
            e["name"] = json!(path[0]);
            e["type"] = json!(t);
            e["config"] = config;
        }
        _ => {
            // dataset
            let dtype = s(body, "type").unwrap_or("");
            let root_kind = root
                .as_ref()
                .and_then(|r| s(r, "entityType").map(str::to_string));
            match dtype {
                "VIRTUAL_DATASET" => {
                    if root_kind.as_deref() == Some("source") {
                        return Ok(Reply::error(
                            400,
                            "Views cannot be created in a source (the simulator has no versioned sources)",
                        ));
                    }
                    match &parent {
                        None => return Ok(missing_parent(&path)),
                        Some(p) if is_dataset(p) => {
                            return Ok(Reply::error(
                                400,
                                &format!(
                                    "Cannot create a view under dataset [{}]",
                                    path_of(p).join(".")
                                ),
                            ));
                        }
                        Some(_) => {}
                    }
                    let Some(sql) = s(body, "sql").filter(|q| !q.trim().is_empty()) else {
                        return Ok(Reply::error(400, "Missing field sql"));
                    };
                    let ctx = match body.get("sqlContext") {
                        None | Some(Value::Null) => vec![],
                        Some(v) => match str_list(v) {
                            Some(c) => c,
                            None => {
                                return Ok(Reply::error(
                                    400,
                                    "Field sqlContext must be a list of strings",
                                ));
                            }
                        },
                    };
                    if let Some(missing) = missing_table(store, sql, &ctx) {
                        return Ok(view_refused(&missing));
                    }
                    e["type"] = json!("VIRTUAL_DATASET");
                    e["sql"] = json!(sql);
                    e["sqlContext"] = json!(ctx);
                }
                "PHYSICAL_DATASET" => {
                    if root_kind.as_deref() != Some("source") {
                        return Ok(Reply::error(
                            400,
                            &format!(
                                "A physical dataset must be inside a source: no source [{}]",
                                path[0]
                            ),
                        ));
                    }
                    if let Some(f) = body.get("format").filter(|f| !f.is_null()) {
                        if !f.is_object() || s(f, "type").is_none() {
                            return Ok(Reply::error(
                                400,
                                "Field format must be an object with a type",
                            ));
                        }
                        e["format"] = f.clone();
                    }
                    e["type"] = json!("PHYSICAL_DATASET");
                }
                "" => return Ok(Reply::error(400, "Missing field type")),
                t => {
                    return Ok(Reply::error(
                        400,
                        &format!("Unknown dataset type {t}: VIRTUAL_DATASET or PHYSICAL_DATASET"),
                    ));
                }
            }
            for k in ["accelerationRefreshPolicy", "fields"] {
                if let Some(v) = body.get(k) {
                    e[k] = v.clone();
                }
            }
            if e.get("fields").is_none() {
                e["fields"] = json!([]);
            }
        }
    }
    store.put_json(NS, &key, &e)?;
    Ok(present(store, e, ""))
}

fn view_refused(missing: &str) -> Reply {
    Reply::error(
        400,
        &format!("Validation of view sql failed. Table '{missing}' not found"),
    )
}

/// `PUT /api/v3/catalog/{id}`: needs the current `tag`; path, name, type and id are fixed.
pub fn update(store: &mut Store, id: &str, body: &Value) -> Res {
    let Some(old) = by_id(store, id) else {
        return Ok(not_found_id(id));
    };
    if let Some(bid) = s(body, "id")
        && bid != id
    {
        return Ok(Reply::error(
            400,
            &format!("Id in the body [{bid}] differs from the id in the URL [{id}]"),
        ));
    }
    if s(body, "tag") != s(&old, "tag") {
        return Ok(Reply::error(
            409,
            &format!(
                "Tag [{}] does not match the current tag [{}] of entity [{id}]",
                s(body, "tag").unwrap_or(""),
                s(&old, "tag").unwrap_or("")
            ),
        ));
    }
    for k in ["entityType", "type", "name"] {
        if let Some(v) = body.get(k)
            && !v.is_null()
            && old.get(k) != Some(v)
        {
            return Ok(Reply::error(400, &format!("Field {k} cannot be changed")));
        }
    }
    if let Some(p) = body.get("path")
        && !p.is_null()
        && str_list(p).map(|p| ns_key(&p)) != Some(ns_key(&path_of(&old)))
    {
        return Ok(Reply::error(
            400,
            "Moving or renaming entities is not supported by the simulator",
        ));
    }
    let mut e = old.clone();
    let fixed = [
        "id",
        "entityType",
        "type",
        "name",
        "path",
        "tag",
        "createdAt",
        "children",
        "nextPageToken",
    ];
    let allowed: &[&str] = match (s(&old, "entityType"), s(&old, "type")) {
        (Some("source"), _) => &[],
        (Some("dataset"), Some("VIRTUAL_DATASET")) => {
            &["sql", "sqlContext", "accelerationRefreshPolicy", "fields"]
        }
        (Some("dataset"), _) => &["format", "accelerationRefreshPolicy", "fields"],
        _ => &["description"],
    };
    for (k, v) in body.as_object().into_iter().flatten() {
        if fixed.contains(&k.as_str()) {
            continue;
        }
        if s(&old, "entityType") == Some("source") || allowed.contains(&k.as_str()) {
            e[k] = v.clone();
        }
    }
    if s(&old, "entityType") == Some("source") {
        if !e["config"].is_object() {
            return Ok(Reply::error(400, "Field config must be an object"));
        }
        if let Err(m) = unmask(&mut e["config"], old.get("config"), "config") {
            return Ok(Reply::error(400, &m));
        }
    }
    if s(&old, "type") == Some("VIRTUAL_DATASET") {
        let Some(sql) = s(&e, "sql")
            .filter(|q| !q.trim().is_empty())
            .map(str::to_string)
        else {
            return Ok(Reply::error(400, "Missing field sql"));
        };
        let Some(ctx) = (if e["sqlContext"].is_null() {
            Some(vec![])
        } else {
            str_list(&e["sqlContext"])
        }) else {
            return Ok(Reply::error(
                400,
                "Field sqlContext must be a list of strings",
            ));
        };
        if let Some(missing) = missing_table(store, &sql, &ctx) {
            return Ok(view_refused(&missing));
        }
        e["sqlContext"] = json!(ctx);
    }
    e["tag"] = json!(new_tag());
    store.put_json(NS, &ns_key(&path_of(&old)), &e)?;
    Ok(present(store, e, ""))
}

/// `DELETE /api/v3/catalog/{id}?tag=`: a given tag must be current; removes the descendants
/// and the reflections, wiki and tags of everything removed.
pub fn delete(store: &mut Store, id: &str, query: &str) -> Res {
    let Some(old) = by_id(store, id) else {
        return Ok(not_found_id(id));
    };
    if let Some(t) = query_param(query, "tag")
        && Some(t.as_str()) != s(&old, "tag")
    {
        return Ok(Reply::error(
            409,
            &format!(
                "Tag [{t}] does not match the current tag [{}] of entity [{id}]",
                s(&old, "tag").unwrap_or("")
            ),
        ));
    }
    let pk = path_of(&old)
        .iter()
        .map(|p| p.to_lowercase())
        .collect::<Vec<_>>();
    let doomed: Vec<(String, String)> = store
        .values_json(NS)
        .iter()
        .filter(|e| {
            let p = path_of(e);
            p.len() >= pk.len()
                && p[..pk.len()]
                    .iter()
                    .map(|x| x.to_lowercase())
                    .eq(pk.clone())
        })
        .map(|e| (ns_key(&path_of(e)), s(e, "id").unwrap_or("").to_string()))
        .collect();
    for (key, eid) in doomed {
        store.delete(NS, &key)?;
        store.delete(WIKI, &eid)?;
        store.delete(TAGS, &eid)?;
        let refl: Vec<String> = store
            .values_json(REFLECTIONS)
            .iter()
            .filter(|r| s(r, "datasetId") == Some(eid.as_str()))
            .filter_map(|r| s(r, "id").map(str::to_string))
            .collect();
        for r in refl {
            store.delete(REFLECTIONS, &r)?;
        }
    }
    Ok(Reply {
        status: 204,
        body: String::new(),
        json: false,
    })
}

// ---------------------------------------------------------------------------------------------
// View SQL: table references

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokenize(sql: &str) -> Vec<Tok> {
    let c: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '-' && c.get(i + 1) == Some(&'-') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            i += 2;
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if ch == '\'' || ch == '"' || ch == '`' {
            let mut t = String::new();
            i += 1;
            while i < c.len() {
                if c[i] == ch {
                    if c.get(i + 1) == Some(&ch) {
                        t.push(ch);
                        i += 2;
                        continue;
                    }
                    break;
                }
                t.push(c[i]);
                i += 1;
            }
            i += 1;
            if ch != '\'' {
                out.push(Tok::Quoted(t));
            }
        } else if ch.is_alphanumeric() || ch == '_' || ch == '$' || ch == '@' {
            let st = i;
            while i < c.len() && (c[i].is_alphanumeric() || matches!(c[i], '_' | '$' | '@')) {
                i += 1;
            }
            out.push(Tok::Word(c[st..i].iter().collect()));
        } else {
            out.push(Tok::Punct(ch));
            i += 1;
        }
    }
    out
}

fn word_is(t: Option<&Tok>, w: &str) -> bool {
    matches!(t, Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
}

const CLAUSE_WORDS: &[&str] = &[
    "WHERE",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "OUTER",
    "FULL",
    "CROSS",
    "ON",
    "GROUP",
    "ORDER",
    "LIMIT",
    "UNION",
    "HAVING",
    "WINDOW",
    "EXCEPT",
    "INTERSECT",
    "OFFSET",
    "FETCH",
    "USING",
    "NATURAL",
    "QUALIFY",
    "MINUS",
    "AT",
    "TABLESAMPLE",
    "LATERAL",
    "UNNEST",
    "TABLE",
    "SELECT",
];

/// Functions whose arguments use `FROM` (not a table reference).
const FROM_FUNCTIONS: &[&str] = &[
    "EXTRACT",
    "TRIM",
    "SUBSTRING",
    "SUBSTR",
    "OVERLAY",
    "POSITION",
];

/// The tables a view's SQL reads (FROM / JOIN targets, dotted or quoted), CTE names excepted.
pub fn table_refs(sql: &str) -> Vec<Vec<String>> {
    let t = tokenize(sql);
    let ident = |x: Option<&Tok>| match x {
        Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => Some(w.clone()),
        _ => None,
    };
    // CTE names: `WITH x AS (` / `, x AS (`
    let mut ctes = vec![];
    for i in 1..t.len() {
        if (word_is(t.get(i - 1), "WITH") || t[i - 1] == Tok::Punct(','))
            && word_is(t.get(i + 1), "AS")
            && t.get(i + 2) == Some(&Tok::Punct('('))
            && let Some(n) = ident(t.get(i))
        {
            ctes.push(n.to_lowercase());
        }
    }
    // Paren stack: true when the paren is a FROM-taking function's argument list.
    let mut stack: Vec<bool> = vec![];
    let mut refs = vec![];
    for i in 0..t.len() {
        match &t[i] {
            Tok::Punct('(') => {
                let f = matches!(i.checked_sub(1).and_then(|j| t.get(j)),
                    Some(Tok::Word(w)) if FROM_FUNCTIONS.iter().any(|f| w.eq_ignore_ascii_case(f)));
                stack.push(f);
            }
            Tok::Punct(')') => {
                stack.pop();
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("FROM") || w.eq_ignore_ascii_case("JOIN") => {
                if w.eq_ignore_ascii_case("FROM")
                    && (stack.last() == Some(&true)
                        || i.checked_sub(1)
                            .is_some_and(|j| word_is(t.get(j), "DISTINCT")))
                {
                    continue;
                }
                let from = w.eq_ignore_ascii_case("FROM");
                let mut j = i + 1;
                loop {
                    if let Some(Tok::Word(w)) = t.get(j)
                        && CLAUSE_WORDS.iter().any(|c| w.eq_ignore_ascii_case(c))
                    {
                        break;
                    }
                    let Some(first) = ident(t.get(j)) else { break };
                    let mut parts = vec![first];
                    j += 1;
                    while t.get(j) == Some(&Tok::Punct('.')) {
                        match ident(t.get(j + 1)) {
                            Some(p) => {
                                parts.push(p);
                                j += 2;
                            }
                            None => break,
                        }
                    }
                    if t.get(j) != Some(&Tok::Punct('('))
                        && !(parts.len() == 1 && ctes.contains(&parts[0].to_lowercase()))
                    {
                        refs.push(parts);
                    }
                    if word_is(t.get(j), "AS") {
                        j += 2;
                    } else if let Some(Tok::Word(a)) = t.get(j) {
                        if !CLAUSE_WORDS.iter().any(|c| a.eq_ignore_ascii_case(c)) {
                            j += 1;
                        }
                    } else if let Some(Tok::Quoted(_)) = t.get(j) {
                        j += 1;
                    }
                    if from && t.get(j) == Some(&Tok::Punct(',')) {
                        j += 1;
                        continue;
                    }
                    break;
                }
            }
            _ => {}
        }
    }
    refs
}

/// The first table the SQL reads that is not a dataset (resolved against `ctx`, then as
/// absolute), shown dotted as written.
fn missing_table(store: &Store, sql: &str, ctx: &[String]) -> Option<String> {
    let exists = |p: &[String]| {
        store
            .get_json(NS, &ns_key(p))
            .is_some_and(|e| is_dataset(&e))
    };
    for r in table_refs(sql) {
        let root = r[0].to_ascii_lowercase();
        if root == "sys" || root == "information_schema" {
            continue;
        }
        let mut with_ctx = ctx.to_vec();
        with_ctx.extend(r.iter().cloned());
        if (!ctx.is_empty() && exists(&with_ctx)) || exists(&r) {
            continue;
        }
        return Some(r.join("."));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Reflections

const REFLECTION_LISTS: &[&str] = &[
    "dimensionFields",
    "measureFields",
    "displayFields",
    "distributionFields",
    "partitionFields",
    "sortFields",
];

/// Checks and normalises the editable fields of a reflection into `r`.
fn reflection_fields(body: &Value, r: &mut Value) -> Result<(), Reply> {
    match s(body, "type") {
        Some("RAW" | "AGGREGATION") => r["type"] = body["type"].clone(),
        Some(t) => {
            return Err(Reply::error(
                400,
                &format!("Unknown reflection type {t}: RAW or AGGREGATION"),
            ));
        }
        None => return Err(Reply::error(400, "Missing field type")),
    }
    match s(body, "name").filter(|n| !n.trim().is_empty()) {
        Some(n) => r["name"] = json!(n),
        None => return Err(Reply::error(400, "Missing field name")),
    }
    for k in REFLECTION_LISTS {
        let v = body.get(*k).cloned().unwrap_or(Value::Null);
        let v = if v.is_null() { json!([]) } else { v };
        let ok = v.as_array().is_some_and(|a| {
            a.iter()
                .all(|f| s(f, "name").is_some_and(|n| !n.is_empty()))
        });
        if !ok {
            return Err(Reply::error(
                400,
                &format!("Field {k} must be a list of objects with a name"),
            ));
        }
        r[*k] = v;
    }
    for k in ["enabled", "arrowCachingEnabled"] {
        match body.get(k) {
            None | Some(Value::Null) => {
                if r.get(k).is_none() {
                    r[k] = json!(k == "enabled");
                }
            }
            Some(Value::Bool(b)) => r[k] = json!(b),
            Some(_) => return Err(Reply::error(400, &format!("Field {k} must be a boolean"))),
        }
    }
    match s(body, "partitionDistributionStrategy") {
        None => {
            if r.get("partitionDistributionStrategy").is_none() {
                r["partitionDistributionStrategy"] = json!("CONSOLIDATED");
            }
        }
        Some(p @ ("CONSOLIDATED" | "STRIPED")) => r["partitionDistributionStrategy"] = json!(p),
        Some(p) => {
            return Err(Reply::error(
                400,
                &format!("Unknown partitionDistributionStrategy {p}: CONSOLIDATED or STRIPED"),
            ));
        }
    }
    Ok(())
}

fn reflection_not_found(id: &str) -> Reply {
    Reply::error(404, &format!("Reflection with id [{id}] not found"))
}

/// `POST /api/v3/reflection`.
pub fn reflection_create(store: &mut Store, body: &Value) -> Res {
    let Some(ds) = s(body, "datasetId").filter(|d| !d.is_empty()) else {
        return Ok(Reply::error(400, "Missing field datasetId"));
    };
    if !by_id(store, ds).is_some_and(|e| is_dataset(&e)) {
        return Ok(Reply::error(
            400,
            &format!("Dataset with id [{ds}] not found"),
        ));
    }
    let now = now_ms();
    let mut r = json!({
        "entityType": "reflection",
        "id": uuid(),
        "tag": new_tag(),
        "datasetId": ds,
        "createdAt": now,
        "updatedAt": now
    });
    if let Err(e) = reflection_fields(body, &mut r) {
        return Ok(e);
    }
    store.put_json(REFLECTIONS, s(&r, "id").unwrap_or_default(), &r)?;
    Ok(Reply::ok(r))
}

/// `GET /api/v3/reflection/{id}`.
pub fn reflection_get(store: &Store, id: &str) -> Reply {
    match store.get_json(REFLECTIONS, id) {
        Some(r) => Reply::ok(r),
        None => reflection_not_found(id),
    }
}

/// `GET /api/v3/reflection`: every reflection.
pub fn reflection_list(store: &Store) -> Reply {
    Reply::ok(json!({"data": store.values_json(REFLECTIONS)}))
}

/// `PUT /api/v3/reflection/{id}`: needs the current `tag`; `datasetId` is fixed.
pub fn reflection_update(store: &mut Store, id: &str, body: &Value) -> Res {
    let Some(old) = store.get_json(REFLECTIONS, id) else {
        return Ok(reflection_not_found(id));
    };
    if s(body, "tag") != s(&old, "tag") {
        return Ok(Reply::error(
            409,
            &format!(
                "Tag [{}] does not match the current tag [{}] of reflection [{id}]",
                s(body, "tag").unwrap_or(""),
                s(&old, "tag").unwrap_or("")
            ),
        ));
    }
    for k in ["id", "datasetId"] {
        if let Some(v) = body.get(k)
            && !v.is_null()
            && old.get(k) != Some(v)
        {
            return Ok(Reply::error(400, &format!("Field {k} cannot be changed")));
        }
    }
    let mut r = old.clone();
    if let Err(e) = reflection_fields(body, &mut r) {
        return Ok(e);
    }
    r["tag"] = json!(new_tag());
    r["updatedAt"] = json!(now_ms());
    store.put_json(REFLECTIONS, id, &r)?;
    Ok(Reply::ok(r))
}

/// `DELETE /api/v3/reflection/{id}`.
pub fn reflection_delete(store: &mut Store, id: &str) -> Res {
    if store.get(REFLECTIONS, id).is_none() {
        return Ok(reflection_not_found(id));
    }
    store.delete(REFLECTIONS, id)?;
    Ok(Reply {
        status: 204,
        body: String::new(),
        json: false,
    })
}

/// `GET /api/v3/dataset/{id}/reflection`.
pub fn dataset_reflections(store: &Store, id: &str) -> Reply {
    if !by_id(store, id).is_some_and(|e| is_dataset(&e)) {
        return Reply::error(404, &format!("Dataset with id [{id}] not found"));
    }
    let data: Vec<Value> = store
        .values_json(REFLECTIONS)
        .into_iter()
        .filter(|r| s(r, "datasetId") == Some(id))
        .collect();
    Reply::ok(json!({ "data": data }))
}

// ---------------------------------------------------------------------------------------------
// Collaboration: wiki and tags

/// Which collaboration document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Collab {
    Wiki,
    Tags,
}

impl Collab {
    fn table(self) -> &'static str {
        match self {
            Collab::Wiki => WIKI,
            Collab::Tags => TAGS,
        }
    }
    fn field(self) -> &'static str {
        match self {
            Collab::Wiki => "text",
            Collab::Tags => "tags",
        }
    }
    fn what(self) -> &'static str {
        match self {
            Collab::Wiki => "Wiki",
            Collab::Tags => "Tags",
        }
    }
}

fn collab_answer(c: Collab, v: &Value) -> Value {
    let mut m = Map::new();
    m.insert(c.field().into(), v[c.field()].clone());
    m.insert("version".into(), v["version"].clone());
    Value::Object(m)
}

/// `GET /api/v3/catalog/{id}/collaboration/{wiki|tag}`.
pub fn collab_get(store: &Store, c: Collab, id: &str) -> Reply {
    if by_id(store, id).is_none() {
        return not_found_id(id);
    }
    match store.get_json(c.table(), id) {
        Some(v) => Reply::ok(collab_answer(c, &v)),
        None => Reply::error(404, &format!("{} for entity [{id}] not found", c.what())),
    }
}

/// `POST /api/v3/catalog/{id}/collaboration/{wiki|tag}`: the first without a version, then
/// with the current one; each save increments it.
pub fn collab_set(store: &mut Store, c: Collab, id: &str, body: &Value) -> Res {
    let Some(e) = by_id(store, id) else {
        return Ok(not_found_id(id));
    };
    let value = match c {
        Collab::Wiki => match s(body, "text") {
            Some(t) if t.chars().count() > WIKI_MAX => {
                return Ok(Reply::error(
                    400,
                    &format!("Wiki text cannot exceed {WIKI_MAX} characters"),
                ));
            }
            Some(t) => json!(t),
            None => return Ok(Reply::error(400, "Missing field text")),
        },
        Collab::Tags => {
            if !is_dataset(&e) {
                return Ok(Reply::error(
                    400,
                    &format!(
                        "Tags can only be set on datasets but found [{}]",
                        s(&e, "entityType").unwrap_or("")
                    ),
                ));
            }
            match str_list(&body["tags"]) {
                Some(t) => json!(t),
                None => return Ok(Reply::error(400, "Field tags must be a list of strings")),
            }
        }
    };
    let sent = body.get("version").filter(|v| !v.is_null());
    let old = store.get_json(c.table(), id);
    let version = match (&old, sent) {
        (None, None) => 0,
        (Some(o), Some(v)) if o.get("version") == Some(v) => o["version"].as_i64().unwrap_or(0) + 1,
        (None, Some(v)) => {
            return Ok(Reply::error(
                409,
                &format!(
                    "{} for entity [{id}] does not exist yet: send no version (got {v})",
                    c.what()
                ),
            ));
        }
        (Some(o), _) => {
            return Ok(Reply::error(
                409,
                &format!(
                    "{} version mismatch for entity [{id}]: current version is {}, got {}",
                    c.what(),
                    o["version"],
                    sent.map(|v| v.to_string()).unwrap_or_else(|| "none".into())
                ),
            ));
        }
    };
    let mut v = json!({"entityId": id, "version": version});
    v[c.field()] = value;
    store.put_json(c.table(), id, &v)?;
    Ok(Reply::ok(collab_answer(c, &v)))
}
