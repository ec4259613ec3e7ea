//! The catalog (`/api/v3/catalog`), reflections (`/api/v3/reflection`) and collaboration
//! (wiki, tags) endpoints, all persisted in the store's tables so that a `dremio-admin`
//! backup/restore carries them.
//!
//! Storage (the simulator's own shapes, not Dremio's protobufs):
//! * `dac-namespace`: key = lower-cased path joined by U+001F, value = the entity as stored
//!   (secrets in clear). Spaces, folders, sources, views, promoted datasets and functions.
//! * `reflection_goals`: key = reflection id, value = the reflection.
//! * `collaboration_wiki` / `collaboration_tags`: key = entity id, value =
//!   `{"entityId", "text"|"tags", "version"}`.
//!
//! In memory, [`Catalog`] keeps indexes beside the store (entity id -> namespace key, dataset id
//! -> reflection ids), rebuilt on open and maintained on every change, and finds the children
//! of a container by a range over the ordered namespace keys: no request scans the catalog.
//!
//! The simulator does not model the files in a source's storage: any path under an existing
//! source may be promoted (`POST /api/v3/catalog/{dremio:/source/a/b}`), and the folders of a
//! source are only those leading to promoted datasets (synthesized, with `dremio:/...` ids).

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use serde_json::{Map, Value, json};

use crate::fields::{self, Kind};
use crate::server::Reply;
use crate::store::{Store, Table};
use crate::util::{now_ms, random_bytes, uuid};

mod collab;
mod entities;
mod reflections;
mod sql;

pub use collab::Collab;
pub use sql::table_refs;

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
/// Prefix of the ids of files and folders in a source.
pub const FILE_ID_PREFIX: &str = "dremio:/";

/// Separator of the path components in a namespace key.
const SEP: char = '\u{1f}';
/// The character after [`SEP`]: `<key>` + this bounds the keys of a subtree.
const AFTER_SEP: char = '\u{20}';

type Res = anyhow::Result<Reply>;

static EMPTY: Table = Table::new();

/// Namespace key of a path (case-insensitive, like Dremio's namespace).
pub fn ns_key(path: &[String]) -> String {
    path.iter()
        .map(|p| p.to_lowercase())
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// The `dremio:/source/a/b` id of a path in a source.
pub fn file_id(path: &[String]) -> String {
    format!("{FILE_ID_PREFIX}{}", path.join("/"))
}

/// The path of a `dremio:/source/a/b` id (no empty component).
pub fn parse_file_id(id: &str) -> Option<Vec<String>> {
    let rest = id.strip_prefix(FILE_ID_PREFIX)?;
    let p: Vec<String> = rest.split('/').map(str::to_string).collect();
    p.iter().all(|c| !c.is_empty()).then_some(p)
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

fn parse(v: &str) -> Value {
    serde_json::from_str(v).unwrap_or(Value::Null)
}

/// A value of the query string (percent-decoded).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| crate::server::percent_decode(&v.replace('+', " ")))
}

fn not_found_id(id: &str) -> Reply {
    Reply::error(404, &format!("Could not find entity with id [{id}]"))
}

fn not_found_path(path: &[String]) -> Reply {
    Reply::error(
        404,
        &format!("Could not find entity with path [{}]", path.join(".")),
    )
}

fn no_content() -> Reply {
    Reply {
        status: 204,
        body: String::new(),
        json: false,
    }
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

/// The item of a folder of a source (no tag: it is not in the namespace).
fn folder_item(path: &[String]) -> Value {
    json!({"id": file_id(path), "path": path, "type": "CONTAINER", "containerType": "FOLDER"})
}

/// Whether a config key of a source of type `source_type` names a secret (masked on GET).
/// Dremio masks the fields its plugin configs mark `@Secret`; the simulator guesses them by name,
/// except S3's `accessKey`, the AWS access key id, which Dremio shows in clear (its
/// `accessSecret` is the secret).
pub fn is_secret_key(source_type: &str, k: &str) -> bool {
    let l = k.to_ascii_lowercase();
    if source_type.eq_ignore_ascii_case("S3") && l == "accesskey" {
        return false;
    }
    l.contains("password") || l.contains("secret") || l.contains("accesskey")
}

/// Replaces every non-empty secret string of a source's config with [`MASK`].
pub fn mask_secrets(source_type: &str, v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if is_secret_key(source_type, k) && x.as_str().is_some_and(|s| !s.is_empty()) {
                    *x = json!(MASK);
                } else {
                    mask_secrets(source_type, x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| mask_secrets(source_type, x)),
        _ => {}
    }
}

/// Replaces every [`MASK`] sent for a secret key by the value stored at the same place in
/// `old`; errs (naming the field) when there is none.
fn unmask(source_type: &str, new: &mut Value, old: Option<&Value>, at: &str) -> Result<(), String> {
    match new {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let here = format!("{at}.{k}");
                let prev = old.and_then(|o| o.get(k));
                if is_secret_key(source_type, k) && x.as_str() == Some(MASK) {
                    match prev.and_then(|p| p.as_str()).filter(|p| *p != MASK) {
                        Some(p) => *x = json!(p),
                        None => {
                            return Err(format!(
                                "Field [{here}] is {MASK} but there is no existing value to keep"
                            ));
                        }
                    }
                } else {
                    unmask(source_type, x, prev, &here)?;
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                unmask(
                    source_type,
                    x,
                    old.and_then(|o| o.get(i)),
                    &format!("{at}[{i}]"),
                )?;
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

fn missing_parent(path: &[String]) -> Reply {
    not_found_path(&path[..path.len() - 1])
}

fn view_refused(missing: &str) -> Reply {
    Reply::error(
        400,
        &format!("Validation of view sql failed. Table '{missing}' not found"),
    )
}

fn tag_mismatch(sent: &str, current: &str, id: &str) -> Reply {
    Reply::error(
        409,
        &format!("Tag [{sent}] does not match the current tag [{current}] of entity [{id}]"),
    )
}

/// What an id or a path names: an entity of the namespace, or a folder of a source.
enum Found {
    Entity(Value),
    SourceFolder(Vec<String>),
}

/// The `sqlContext` of a body (absent or null: none).
fn sql_context(v: Option<&Value>) -> Result<Vec<String>, Reply> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(v) => str_list(v)
            .ok_or_else(|| Reply::error(400, "Field sqlContext must be a list of strings")),
    }
}

/// The catalog: the store plus the indexes that keep lookups off full scans.
pub struct Catalog {
    pub store: Store,
    version: (u64, u64, u64),
    /// entity id -> namespace key
    ids: HashMap<String, String>,
    /// dataset id -> its reflections' ids
    reflections_of: HashMap<String, BTreeSet<String>>,
}

impl Catalog {
    /// Wraps a store, indexing its namespace and reflections; `version` gates the fields.
    pub fn new(store: Store, version: (u64, u64, u64)) -> Catalog {
        let mut c = Catalog {
            store,
            version,
            ids: HashMap::new(),
            reflections_of: HashMap::new(),
        };
        let mut ids = HashMap::new();
        for (k, v) in c.ns() {
            if let Some(id) = s(&parse(v), "id") {
                ids.insert(id.to_string(), k.clone());
            }
        }
        let mut refl: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (k, v) in c.store.table(REFLECTIONS).unwrap_or(&EMPTY) {
            if let Some(ds) = s(&parse(v), "datasetId") {
                refl.entry(ds.to_string()).or_default().insert(k.clone());
            }
        }
        c.ids = ids;
        c.reflections_of = refl;
        c
    }

    fn ns(&self) -> &Table {
        self.store.table(NS).unwrap_or(&EMPTY)
    }

    fn by_id(&self, id: &str) -> Option<Value> {
        self.ids.get(id).and_then(|k| self.store.get_json(NS, k))
    }

    fn by_path(&self, path: &[String]) -> Option<Value> {
        self.store.get_json(NS, &ns_key(path))
    }

    /// The first entity strictly below `path` (any depth), if any.
    fn first_descendant(&self, path: &[String]) -> Option<Value> {
        let from = format!("{}{SEP}", ns_key(path));
        let (k, v) = self
            .ns()
            .range::<str, _>((Bound::Included(from.as_str()), Bound::Unbounded))
            .next()?;
        k.starts_with(&from).then(|| parse(v))
    }

    fn root_is_source(&self, path: &[String]) -> bool {
        !path.is_empty()
            && self
                .by_path(&path[..1])
                .is_some_and(|r| s(&r, "entityType") == Some("source"))
    }

    /// An entity by path, or a folder of a source that leads to promoted datasets (named with
    /// the case of the datasets below it).
    fn resolve_path(&self, path: &[String]) -> Option<Found> {
        if path.is_empty() {
            return None;
        }
        if let Some(e) = self.by_path(path) {
            return Some(Found::Entity(e));
        }
        if path.len() < 2 || !self.root_is_source(path) {
            return None;
        }
        let d = self.first_descendant(path)?;
        Some(Found::SourceFolder(path_of(&d)[..path.len()].to_vec()))
    }

    /// An entity by id; `dremio:/...` ids name paths in sources.
    fn resolve_id(&self, id: &str) -> Option<Found> {
        if id.starts_with(FILE_ID_PREFIX) {
            let p = parse_file_id(id)?;
            if !self.root_is_source(&p) {
                return None;
            }
            return self.resolve_path(&p);
        }
        self.by_id(id).map(Found::Entity)
    }

    fn put_entity(&mut self, e: &Value) -> anyhow::Result<()> {
        let key = ns_key(&path_of(e));
        if let Some(old) = self.store.get_json(NS, &key)
            && let Some(oid) = s(&old, "id")
        {
            self.ids.remove(oid);
        }
        if let Some(id) = s(e, "id") {
            self.ids.insert(id.to_string(), key.clone());
        }
        self.store.put_json(NS, &key, e)
    }

    fn put_reflection(&mut self, r: &Value) -> anyhow::Result<()> {
        let id = s(r, "id").unwrap_or_default().to_string();
        if let Some(old) = self.store.get_json(REFLECTIONS, &id)
            && let Some(ds) = s(&old, "datasetId")
            && let Some(set) = self.reflections_of.get_mut(ds)
        {
            set.remove(&id);
        }
        if let Some(ds) = s(r, "datasetId") {
            self.reflections_of
                .entry(ds.to_string())
                .or_default()
                .insert(id.clone());
        }
        self.store.put_json(REFLECTIONS, &id, r)
    }

    fn delete_reflection(&mut self, id: &str) -> anyhow::Result<()> {
        if let Some(old) = self.store.get_json(REFLECTIONS, id)
            && let Some(ds) = s(&old, "datasetId")
            && let Some(set) = self.reflections_of.get_mut(ds)
        {
            set.remove(id);
            if set.is_empty() {
                self.reflections_of.remove(ds);
            }
        }
        self.store.delete(REFLECTIONS, id)
    }

    /// Removes the entity at `path` and everything below it, with the reflections, wiki and
    /// tags of everything removed.
    fn delete_subtree(&mut self, path: &[String]) -> anyhow::Result<()> {
        let key = ns_key(path);
        let from = format!("{key}{SEP}");
        let to = format!("{key}{AFTER_SEP}");
        let mut doomed: Vec<(String, String)> = self
            .ns()
            .range::<str, _>((Bound::Included(from.as_str()), Bound::Excluded(to.as_str())))
            .map(|(k, v)| (k.clone(), s(&parse(v), "id").unwrap_or("").to_string()))
            .collect();
        if let Some(v) = self.store.get(NS, &key) {
            doomed.push((key.clone(), s(&parse(v), "id").unwrap_or("").to_string()));
        }
        for (k, eid) in doomed {
            self.store.delete(NS, &k)?;
            self.ids.remove(&eid);
            self.store.delete(WIKI, &eid)?;
            self.store.delete(TAGS, &eid)?;
            let refl: Vec<String> = self
                .reflections_of
                .get(&eid)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for r in refl {
                self.delete_reflection(&r)?;
            }
        }
        Ok(())
    }

    /// The direct children of the container at `path` (the root when empty), in name order,
    /// after the (lower-cased) name `after`, at most `limit`: (lower-cased name, item). A child
    /// with no entity of its own but entities below it is a folder of a source.
    fn children(
        &self,
        path: &[String],
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Vec<(String, Value)> {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{}{SEP}", ns_key(path))
        };
        let mut from = match after {
            // past `after` and its whole subtree
            Some(a) => format!("{prefix}{a}{AFTER_SEP}"),
            None => prefix.clone(),
        };
        let mut out = vec![];
        while limit.is_none_or(|l| out.len() < l) {
            let Some((k, v)) = self
                .ns()
                .range::<str, _>((Bound::Included(from.as_str()), Bound::Unbounded))
                .next()
            else {
                break;
            };
            let Some(rest) = k.strip_prefix(prefix.as_str()) else {
                break;
            };
            let e = parse(v);
            let (name, it) = match rest.find(SEP) {
                None => (rest, item(&e)),
                Some(i) => {
                    let p = path_of(&e);
                    (&rest[..i], folder_item(&p[..path.len() + 1]))
                }
            };
            out.push((name.to_string(), it));
            from = format!("{prefix}{name}{AFTER_SEP}");
        }
        out
    }

    /// One page of children per the query's `maxChildren` / `pageToken`: (items, next token).
    fn page(&self, path: &[String], query: &str) -> Result<(Vec<Value>, Option<String>), Reply> {
        let (max, token) = paging(query)?;
        let mut kids = self.children(path, token.as_deref(), max.map(|m| m + 1));
        let mut next = None;
        if let Some(m) = max
            && kids.len() > m
        {
            kids.truncate(m);
            if m > 0 {
                next = kids.last().map(|(k, _)| hex::encode(k.as_bytes()));
            }
        }
        Ok((kids.into_iter().map(|(_, it)| it).collect(), next))
    }

    /// The entity as answered: secrets masked, children (paged) for containers.
    fn present(&self, mut e: Value, query: &str) -> Reply {
        if s(&e, "entityType") == Some("source") {
            let t = s(&e, "type").unwrap_or("").to_string();
            mask_secrets(&t, &mut e["config"]);
        }
        if is_container(&e) {
            match self.page(&path_of(&e), query) {
                Ok((kids, next)) => {
                    e["children"] = Value::Array(kids);
                    if let Some(n) = next {
                        e["nextPageToken"] = json!(n);
                    }
                }
                Err(r) => return r,
            }
        }
        Reply::ok(e)
    }

    fn present_found(&self, f: Found, query: &str) -> Reply {
        match f {
            Found::Entity(e) => self.present(e, query),
            Found::SourceFolder(p) => match self.page(&p, query) {
                Ok((kids, next)) => {
                    let mut v = json!({"entityType": "folder", "id": file_id(&p), "path": p,
                                       "children": kids});
                    if let Some(n) = next {
                        v["nextPageToken"] = json!(n);
                    }
                    Reply::ok(v)
                }
                Err(r) => r,
            },
        }
    }

    /// `GET /api/v3/catalog`: the top-level containers.
    pub fn root(&self) -> Reply {
        let data: Vec<Value> = self
            .children(&[], None, None)
            .into_iter()
            .map(|(_, it)| it)
            .collect();
        Reply::ok(json!({ "data": data }))
    }

    /// `GET /api/v3/catalog/{id}` (`dremio:/...` ids name folders and promoted datasets in
    /// sources).
    pub fn get_by_id(&self, id: &str, query: &str) -> Reply {
        match self.resolve_id(id) {
            Some(f) => self.present_found(f, query),
            None => not_found_id(id),
        }
    }

    /// `GET /api/v3/catalog/by-path/...`.
    pub fn get_by_path(&self, path: &[String], query: &str) -> Reply {
        match self.resolve_path(path) {
            Some(f) => self.present_found(f, query),
            None => not_found_path(path),
        }
    }
}
