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

    /// Checks a view's or function's SQL against the catalog.
    fn check_sql(&self, sql: &str, ctx: &[String]) -> Result<(), Reply> {
        match self.missing_table(sql, ctx) {
            Some(m) => Err(view_refused(&m)),
            None => Ok(()),
        }
    }

    /// Checks the fields of a function (UDF) into `e`.
    fn function_fields(&self, body: &Value, e: &mut Value) -> Result<(), Reply> {
        for k in ["isScalar", "functionArgList", "functionBody", "returnType"] {
            if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
                e[k] = v.clone();
            }
        }
        if e.get("functionArgList").is_none_or(|v| v.is_null()) {
            e["functionArgList"] = json!("");
        }
        if !e["isScalar"].is_boolean() {
            return Err(Reply::error(400, "Field isScalar must be a boolean"));
        }
        if !e["functionArgList"].is_string() {
            return Err(Reply::error(400, "Field functionArgList must be a string"));
        }
        for k in ["functionBody", "returnType"] {
            if s(e, k).is_none_or(|x| x.trim().is_empty()) {
                return Err(Reply::error(400, &format!("Missing field {k}")));
            }
        }
        self.check_sql(s(e, "functionBody").unwrap_or_default(), &[])
    }

    /// `POST /api/v3/catalog`: spaces, sources, folders (in spaces), views and functions.
    /// Physical datasets are promoted with [`Catalog::promote`] instead.
    pub fn create(&mut self, body: &Value) -> Res {
        let kind = match s(body, "entityType") {
            Some(k @ ("space" | "folder" | "source" | "dataset" | "function")) => k,
            Some(t) => {
                return Ok(Reply::error(
                    400,
                    &format!("entityType {t} is not supported by the simulator yet"),
                ));
            }
            None => return Ok(Reply::error(400, "Missing field entityType")),
        };
        if let Some(k) = Kind::of_entity(kind)
            && let Err(r) = fields::check(body, k, self.version)
        {
            return Ok(r);
        }
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
        // namespace keys join names with U+001F
        if path.iter().any(|p| p.chars().any(char::is_control)) {
            return Ok(Reply::error(400, "Names cannot contain control characters"));
        }
        if self.by_path(&path).is_some() {
            return Ok(Reply::error(
                409,
                &format!("The entity [{}] already exists.", path.join(".")),
            ));
        }
        let root = self.by_path(&path[..1]);
        let root_kind = root
            .as_ref()
            .and_then(|r| s(r, "entityType").map(str::to_string));
        let dtype = s(body, "type").unwrap_or("");
        if kind == "dataset" && dtype == "PHYSICAL_DATASET" {
            return Ok(Reply::error(
                400,
                "Physical datasets cannot be created: promote a file or folder of a source with \
                 POST /api/v3/catalog/{id} (id dremio:/<source>/<path>)",
            ));
        }
        if matches!(kind, "folder" | "dataset" | "function") {
            if root_kind.as_deref() == Some("source") {
                let what = match kind {
                    "folder" => "Folders",
                    "function" => "Functions",
                    _ => "Views",
                };
                return Ok(Reply::error(
                    400,
                    &format!(
                        "{what} cannot be created in source [{}] (the simulator has no versioned sources)",
                        path[0]
                    ),
                ));
            }
            match self.by_path(&path[..path.len() - 1]) {
                None => return Ok(missing_parent(&path)),
                Some(p) if !is_container(&p) => {
                    return Ok(Reply::error(
                        400,
                        &format!(
                            "Cannot create a {kind} under {} [{}]",
                            s(&p, "entityType").unwrap_or(""),
                            path_of(&p).join(".")
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let mut e = json!({
            "entityType": kind,
            "id": uuid(),
            "path": path,
            "tag": new_tag(),
            "createdAt": now_ms()
        });
        match kind {
            "space" => {
                e["name"] = json!(path[0]);
                if let Some(d) = body.get("description").filter(|d| !d.is_null()) {
                    e["description"] = d.clone();
                }
            }
            "folder" => {}
            "source" => {
                let Some(t) = s(body, "type").filter(|t| !t.is_empty()) else {
                    return Ok(Reply::error(400, "Missing field type"));
                };
                let mut config = body.get("config").cloned().unwrap_or(json!({}));
                if !config.is_object() {
                    return Ok(Reply::error(400, "Field config must be an object"));
                }
                if let Err(m) = unmask(t, &mut config, None, "config") {
                    return Ok(Reply::error(400, &m));
                }
                let mut m = body.as_object().cloned().unwrap_or_default();
                for k in [
                    "id",
                    "tag",
                    "createdAt",
                    "children",
                    "path",
                    "nextPageToken",
                ] {
                    m.remove(k);
                }
                for (k, v) in m {
                    e[k] = v;
                }
                e["name"] = json!(path[0]);
                e["type"] = json!(t);
                e["config"] = config;
            }
            "function" => {
                if let Err(r) = self.function_fields(body, &mut e) {
                    return Ok(r);
                }
            }
            _ => {
                // dataset: a view
                match dtype {
                    "VIRTUAL_DATASET" => {}
                    "" => return Ok(Reply::error(400, "Missing field type")),
                    t => {
                        return Ok(Reply::error(
                            400,
                            &format!(
                                "Unknown dataset type {t}: VIRTUAL_DATASET or PHYSICAL_DATASET"
                            ),
                        ));
                    }
                }
                let Some(sql) = s(body, "sql").filter(|q| !q.trim().is_empty()) else {
                    return Ok(Reply::error(400, "Missing field sql"));
                };
                let ctx = match sql_context(body.get("sqlContext")) {
                    Ok(c) => c,
                    Err(r) => return Ok(r),
                };
                if let Err(r) = self.check_sql(sql, &ctx) {
                    return Ok(r);
                }
                e["type"] = json!("VIRTUAL_DATASET");
                e["sql"] = json!(sql);
                e["sqlContext"] = json!(ctx);
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
        self.put_entity(&e)?;
        Ok(self.present(e, ""))
    }

    /// `POST /api/v3/catalog/{id}`: promotes the file or folder `dremio:/<source>/<path>` to a
    /// physical dataset. The body is the dataset: `entityType` dataset, the same `id`, `type`
    /// PHYSICAL_DATASET, `path` the id's path, `format` an object with a `type`.
    pub fn promote(&mut self, id: &str, body: &Value) -> Res {
        if let Err(r) = fields::check(body, Kind::Dataset, self.version) {
            return Ok(r);
        }
        if !id.starts_with(FILE_ID_PREFIX) {
            return Ok(Reply::error(
                400,
                &format!(
                    "Entity [{id}] is not a file or folder of a source: only those can be promoted"
                ),
            ));
        }
        let Some(path) = parse_file_id(id).filter(|p| p.len() >= 2) else {
            return Ok(Reply::error(
                400,
                &format!("Invalid file or folder id [{id}]"),
            ));
        };
        if path.iter().any(|p| p.chars().any(char::is_control)) {
            return Ok(Reply::error(400, "Names cannot contain control characters"));
        }
        match self.by_path(&path[..1]) {
            None => return Ok(not_found_id(id)),
            Some(r) if s(&r, "entityType") != Some("source") => {
                return Ok(Reply::error(
                    400,
                    &format!(
                        "[{}] is not a source: only files and folders of sources can be promoted",
                        path[0]
                    ),
                ));
            }
            Some(_) => {}
        }
        if s(body, "entityType") != Some("dataset") {
            return Ok(Reply::error(400, "Field entityType must be dataset"));
        }
        if s(body, "id") != Some(id) {
            return Ok(Reply::error(
                400,
                &format!(
                    "Id in the body [{}] differs from the id in the URL [{id}]",
                    s(body, "id").unwrap_or("")
                ),
            ));
        }
        if s(body, "type") != Some("PHYSICAL_DATASET") {
            return Ok(Reply::error(400, "Field type must be PHYSICAL_DATASET"));
        }
        if str_list(&body["path"]).as_deref() != Some(path.as_slice()) {
            return Ok(Reply::error(
                400,
                &format!("Field path must be the path of [{id}]: {path:?}"),
            ));
        }
        let format = match body.get("format") {
            Some(f) if f.is_object() && s(f, "type").is_some() => f.clone(),
            _ => {
                return Ok(Reply::error(
                    400,
                    "Field format must be an object with a type",
                ));
            }
        };
        if let Some(e) = self.by_path(&path) {
            return Ok(Reply::error(
                409,
                &format!(
                    "[{}] is already a dataset (id {})",
                    path.join("."),
                    s(&e, "id").unwrap_or("")
                ),
            ));
        }
        // a dataset inside a promoted folder, or a folder holding promoted datasets: refused
        // (a guess: the simulator keeps one dataset per subtree)
        for i in 2..path.len() {
            if self.by_path(&path[..i]).is_some() {
                return Ok(Reply::error(
                    400,
                    &format!(
                        "Cannot promote [{}]: [{}] is already a dataset",
                        path.join("."),
                        path[..i].join(".")
                    ),
                ));
            }
        }
        if self.first_descendant(&path).is_some() {
            return Ok(Reply::error(
                400,
                &format!(
                    "Cannot promote [{}]: it holds promoted datasets",
                    path.join(".")
                ),
            ));
        }
        let mut e = json!({
            "entityType": "dataset",
            "id": uuid(),
            "type": "PHYSICAL_DATASET",
            "path": path,
            "tag": new_tag(),
            "createdAt": now_ms(),
            "format": format,
            "fields": body.get("fields").filter(|f| !f.is_null()).cloned().unwrap_or(json!([]))
        });
        if let Some(p) = body
            .get("accelerationRefreshPolicy")
            .filter(|p| !p.is_null())
        {
            e["accelerationRefreshPolicy"] = p.clone();
        }
        self.put_entity(&e)?;
        Ok(self.present(e, ""))
    }

    /// `PUT /api/v3/catalog/{id}`: needs the current `tag`; path, name, type and id are fixed.
    pub fn update(&mut self, id: &str, body: &Value) -> Res {
        let Some(old) = self.by_id(id) else {
            return Ok(not_found_id(id));
        };
        let kind = s(body, "entityType")
            .and_then(Kind::of_entity)
            .or_else(|| s(&old, "entityType").and_then(Kind::of_entity));
        if let Some(k) = kind
            && let Err(r) = fields::check(body, k, self.version)
        {
            return Ok(r);
        }
        if let Some(bid) = s(body, "id")
            && bid != id
        {
            return Ok(Reply::error(
                400,
                &format!("Id in the body [{bid}] differs from the id in the URL [{id}]"),
            ));
        }
        if s(body, "tag") != s(&old, "tag") {
            return Ok(tag_mismatch(
                s(body, "tag").unwrap_or(""),
                s(&old, "tag").unwrap_or(""),
                id,
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
        let etype = s(&old, "entityType").unwrap_or("").to_string();
        let allowed: &[&str] = match (etype.as_str(), s(&old, "type")) {
            ("source", _) => &[],
            ("dataset", Some("VIRTUAL_DATASET")) => {
                &["sql", "sqlContext", "accelerationRefreshPolicy", "fields"]
            }
            ("dataset", _) => &["format", "accelerationRefreshPolicy", "fields"],
            ("function", _) => &[],
            _ => &["description"],
        };
        for (k, v) in body.as_object().into_iter().flatten() {
            if fixed.contains(&k.as_str()) {
                continue;
            }
            if etype == "source" || allowed.contains(&k.as_str()) {
                e[k] = v.clone();
            }
        }
        match etype.as_str() {
            "source" => {
                if !e["config"].is_object() {
                    return Ok(Reply::error(400, "Field config must be an object"));
                }
                let t = s(&old, "type").unwrap_or("").to_string();
                if let Err(m) = unmask(&t, &mut e["config"], old.get("config"), "config") {
                    return Ok(Reply::error(400, &m));
                }
            }
            "function" => {
                if let Err(r) = self.function_fields(body, &mut e) {
                    return Ok(r);
                }
            }
            "dataset" if s(&old, "type") == Some("VIRTUAL_DATASET") => {
                let Some(sql) = s(&e, "sql")
                    .filter(|q| !q.trim().is_empty())
                    .map(str::to_string)
                else {
                    return Ok(Reply::error(400, "Missing field sql"));
                };
                let ctx = match sql_context(e.get("sqlContext")) {
                    Ok(c) => c,
                    Err(r) => return Ok(r),
                };
                if let Err(r) = self.check_sql(&sql, &ctx) {
                    return Ok(r);
                }
                e["sqlContext"] = json!(ctx);
            }
            "dataset" if !e["format"].is_object() || s(&e["format"], "type").is_none() => {
                return Ok(Reply::error(
                    400,
                    "Field format must be an object with a type",
                ));
            }
            _ => {}
        }
        e["tag"] = json!(new_tag());
        self.put_entity(&e)?;
        Ok(self.present(e, ""))
    }

    /// `DELETE /api/v3/catalog/{id}?tag=`: a given tag must be current; removes the descendants
    /// and the reflections, wiki and tags of everything removed. Deleting a promoted dataset
    /// unpromotes it.
    pub fn delete(&mut self, id: &str, query: &str) -> Res {
        let old = match self.resolve_id(id) {
            None => return Ok(not_found_id(id)),
            Some(Found::SourceFolder(p)) => {
                return Ok(Reply::error(
                    400,
                    &format!(
                        "[{}] is a folder of a source: it cannot be deleted through the catalog",
                        p.join(".")
                    ),
                ));
            }
            Some(Found::Entity(e)) => e,
        };
        if let Some(t) = query_param(query, "tag")
            && Some(t.as_str()) != s(&old, "tag")
        {
            return Ok(tag_mismatch(&t, s(&old, "tag").unwrap_or(""), id));
        }
        self.delete_subtree(&path_of(&old))?;
        Ok(no_content())
    }
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

impl Catalog {
    /// The first table the SQL reads that is not a dataset (resolved against `ctx`, then as
    /// absolute), shown dotted as written.
    fn missing_table(&self, sql: &str, ctx: &[String]) -> Option<String> {
        let exists = |p: &[String]| self.by_path(p).is_some_and(|e| is_dataset(&e));
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

fn reflection_not_found(id: &str) -> Reply {
    Reply::error(404, &format!("Reflection with id [{id}] not found"))
}

impl Catalog {
    fn arrow_caching(&self) -> bool {
        self.version >= fields::ARROW_CACHING_SINCE
    }

    /// A reflection as answered: without the fields this version does not know.
    fn reflection_out(&self, mut r: Value) -> Value {
        if !self.arrow_caching()
            && let Some(m) = r.as_object_mut()
        {
            for k in fields::REFLECTION_SINCE_25 {
                m.remove(*k);
            }
        }
        r
    }

    /// Checks and normalises the editable fields of a reflection into `r`.
    fn reflection_fields(&self, body: &Value, r: &mut Value) -> Result<(), Reply> {
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
        let flags: &[&str] = if self.arrow_caching() {
            &["enabled", "arrowCachingEnabled"]
        } else {
            &["enabled"]
        };
        for k in flags {
            match body.get(*k) {
                None | Some(Value::Null) => {
                    if r.get(*k).is_none() {
                        r[*k] = json!(*k == "enabled");
                    }
                }
                Some(Value::Bool(b)) => r[*k] = json!(b),
                Some(_) => {
                    return Err(Reply::error(400, &format!("Field {k} must be a boolean")));
                }
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

    /// `POST /api/v3/reflection`.
    pub fn reflection_create(&mut self, body: &Value) -> Res {
        if let Err(r) = fields::check(body, Kind::Reflection, self.version) {
            return Ok(r);
        }
        let Some(ds) = s(body, "datasetId").filter(|d| !d.is_empty()) else {
            return Ok(Reply::error(400, "Missing field datasetId"));
        };
        if !self.by_id(ds).is_some_and(|e| is_dataset(&e)) {
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
        if let Err(e) = self.reflection_fields(body, &mut r) {
            return Ok(e);
        }
        self.put_reflection(&r)?;
        Ok(Reply::ok(self.reflection_out(r)))
    }

    /// `GET /api/v3/reflection/{id}`.
    pub fn reflection_get(&self, id: &str) -> Reply {
        match self.store.get_json(REFLECTIONS, id) {
            Some(r) => Reply::ok(self.reflection_out(r)),
            None => reflection_not_found(id),
        }
    }

    /// `GET /api/v3/reflection`: every reflection.
    pub fn reflection_list(&self) -> Reply {
        if self.version < fields::REFLECTION_LIST_SINCE {
            return Reply::error(404, "HTTP 404 Not Found");
        }
        let data: Vec<Value> = self
            .store
            .values_json(REFLECTIONS)
            .into_iter()
            .map(|r| self.reflection_out(r))
            .collect();
        Reply::ok(json!({ "data": data }))
    }

    /// `PUT /api/v3/reflection/{id}`: needs the current `tag`; `datasetId` is fixed.
    pub fn reflection_update(&mut self, id: &str, body: &Value) -> Res {
        if let Err(r) = fields::check(body, Kind::Reflection, self.version) {
            return Ok(r);
        }
        let Some(old) = self.store.get_json(REFLECTIONS, id) else {
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
        if let Err(e) = self.reflection_fields(body, &mut r) {
            return Ok(e);
        }
        r["tag"] = json!(new_tag());
        r["updatedAt"] = json!(now_ms());
        self.put_reflection(&r)?;
        Ok(Reply::ok(self.reflection_out(r)))
    }

    /// `DELETE /api/v3/reflection/{id}`.
    pub fn reflection_delete(&mut self, id: &str) -> Res {
        if self.store.get(REFLECTIONS, id).is_none() {
            return Ok(reflection_not_found(id));
        }
        self.delete_reflection(id)?;
        Ok(no_content())
    }

    /// `GET /api/v3/dataset/{id}/reflection`.
    pub fn dataset_reflections(&self, id: &str) -> Reply {
        if !self.by_id(id).is_some_and(|e| is_dataset(&e)) {
            return Reply::error(404, &format!("Dataset with id [{id}] not found"));
        }
        let data: Vec<Value> = self
            .reflections_of
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|r| self.store.get_json(REFLECTIONS, r))
            .map(|r| self.reflection_out(r))
            .collect();
        Reply::ok(json!({ "data": data }))
    }
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

impl Catalog {
    /// `GET /api/v3/catalog/{id}/collaboration/{wiki|tag}`.
    pub fn collab_get(&self, c: Collab, id: &str) -> Reply {
        if self.by_id(id).is_none() {
            return not_found_id(id);
        }
        match self.store.get_json(c.table(), id) {
            Some(v) => Reply::ok(collab_answer(c, &v)),
            None => Reply::error(404, &format!("{} for entity [{id}] not found", c.what())),
        }
    }

    /// `POST /api/v3/catalog/{id}/collaboration/{wiki|tag}`: the first without a version, then
    /// with the current one; each save increments it.
    pub fn collab_set(&mut self, c: Collab, id: &str, body: &Value) -> Res {
        let Some(e) = self.by_id(id) else {
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
                    None => {
                        return Ok(Reply::error(400, "Field tags must be a list of strings"));
                    }
                }
            }
        };
        let sent = body.get("version").filter(|v| !v.is_null());
        let old = self.store.get_json(c.table(), id);
        let version = match (&old, sent) {
            (None, None) => 0,
            (Some(o), Some(v)) if o.get("version") == Some(v) => {
                o["version"].as_i64().unwrap_or(0) + 1
            }
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
        self.store.put_json(c.table(), id, &v)?;
        Ok(Reply::ok(collab_answer(c, &v)))
    }
}
