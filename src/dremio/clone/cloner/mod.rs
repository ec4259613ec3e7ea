//! Reads and writes dremio-cloner's single-file JSON export, so that its users switch in one step.

// The file is `{ "data": [` then one-key items (`{"sources": [...]}`, `{"vds": [...]}`, ...)
// separated by `",\n"`, then ` ] }`; each item is Python's `json.dump(item, indent=4,
// sort_keys=True)`. Catalog elements are Dremio REST v3 entities, reflections carry the `path` of
// their dataset, tags and wikis carry `entity_id` and `path`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::CloneError;
use super::filter::{Filter, Skip};
use super::model::{Kind, MASK, Object, entity_kind, str_list};
use super::tree::{Tree, Written, encode};
use crate::limits;

/// The `file_version` dremio-cloner has written since 2021 (and still writes).
const FILE_VERSION: &str = "0.3";

/// What an import did.
#[derive(Debug, Default)]
pub struct Imported {
    /// Catalog objects and users written to the tree.
    pub objects: usize,
    /// Reflections attached to the datasets written.
    pub reflections: usize,
    pub warnings: Vec<String>,
}

/// Every section dremio-cloner writes or once wrote (`referenced_groups` and `votes` until
/// mid-2024).
const KNOWN: &[&str] = &[
    "dremio_environment",
    "dremio_get_config",
    "containers",
    "homes",
    "sources",
    "spaces",
    "folders",
    "pds",
    "vds",
    "files",
    "reflections",
    "referenced_users",
    "referenced_groups",
    "referenced_roles",
    "queues",
    "rules",
    "tags",
    "wikis",
    "votes",
    "vds_parents",
];

/// Sections holding something lifeboat does not clone, and why (one warning each when non-empty).
/// `containers`, `vds_parents`, `dremio_get_config` and `dremio_environment` are passed over in
/// silence: they only repeat what the other sections say (the top-level sources and spaces, the
/// parents a view's SQL names) or describe the run that made the file.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("homes", "homes not imported: homes belong to users"),
    (
        "referenced_roles",
        "referenced roles not imported: lifeboat does not clone roles or grants",
    ),
    (
        "referenced_groups",
        "referenced groups not imported (an older dremio-cloner file): lifeboat does not clone groups",
    ),
    (
        "queues",
        "WLM queues not imported: lifeboat does not clone workload management",
    ),
    (
        "rules",
        "WLM rules not imported: lifeboat does not clone workload management",
    ),
    (
        "votes",
        "votes not imported (an older dremio-cloner file): votes belong to users",
    ),
    (
        "files",
        "files not imported: dremio-cloner does not define them",
    ),
];

/// The largest dremio-cloner file read: tens of thousands of datasets with their fields lists.
/// It is held once as text and each element is parsed on its own when it is used; reflections,
/// tags and wikis wait for their object as their text, indexed by path.
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// The most JSON values one element may hold (a dataset's entity with a long fields list has a
/// few thousand): parsed values take up to ~350 bytes each, so this bounds a parse's memory.
const MAX_ELEMENT_VALUES: usize = 100_000;
/// How many unknown section names are named in warnings; the rest are counted.
const UNKNOWN_NAMED: usize = 10;

/// The top-level pieces of a valid JSON array or object's text, split at the commas outside
/// strings and brackets. Only for text serde_json has already checked: it does not validate.
fn split_top(text: &str) -> impl Iterator<Item = &str> {
    let inner = text.get(1..text.len().saturating_sub(1)).unwrap_or("");
    let bytes = inner.as_bytes();
    let mut start = 0;
    let mut done = inner.trim().is_empty();
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let mut i = start;
        while i < bytes.len() {
            let b = bytes[i];
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    b',' if depth == 0 => break,
                    _ => {}
                }
            }
            i += 1;
        }
        let piece = inner[start..i].trim();
        start = i + 1;
        done = i >= bytes.len();
        Some(piece)
    })
}

/// The members (key, value text) of a valid JSON object's text.
fn members(object: &str) -> impl Iterator<Item = (String, &str)> {
    split_top(object).filter_map(|member| {
        let bytes = member.as_bytes();
        let mut escaped = false;
        let end = (1..bytes.len()).find(|&i| {
            let quote = bytes[i] == b'"' && !escaped;
            escaped = !escaped && bytes[i] == b'\\';
            quote
        })?;
        let key = serde_json::from_str::<String>(&member[..=end]).ok()?;
        let value = member[end + 1..].trim_start().strip_prefix(':')?.trim();
        Some((key, value))
    })
}

/// The sections of a file, by name, as text.
struct Sections<'a> {
    lists: HashMap<&'static str, &'a str>,
    warnings: Vec<String>,
}

impl<'a> Sections<'a> {
    /// The elements of a section, each parsed when the iterator reaches it.
    fn get(&self, key: &str) -> impl Iterator<Item = Result<Value, String>> + 'a {
        let list = self.lists.get(key).copied().unwrap_or("[]");
        let key = key.to_string();
        split_top(list).enumerate().map(move |(i, text)| {
            limits::check_json_values(
                text.as_bytes(),
                MAX_ELEMENT_VALUES,
                "a dremio-cloner element",
            )
            .and_then(|()| serde_json::from_str(text).map_err(|e| e.to_string()))
            .map_err(|e| format!("element {} of \"{key}\": {e}", i + 1))
        })
    }

    /// How many elements a section has (none are parsed).
    fn count(&self, key: &str) -> usize {
        self.lists
            .get(key)
            .map_or(0, |list| split_top(list).count())
    }
}

/// Checks that `text` (valid JSON) is `{"data": [{"<section>": [...]}, ...]}` and indexes its
/// sections; the error says why it is not (the caller prefixes it).
fn sections(text: &str) -> Result<Sections<'_>, String> {
    let not_cloner = || "it is not a JSON object with a \"data\" list".to_string();
    let doc = text.trim();
    if !doc.starts_with('{') {
        return Err(not_cloner());
    }
    // As with any JSON object read whole, the last "data" counts.
    let data = members(doc)
        .filter(|(key, _)| key == "data")
        .last()
        .map(|(_, value)| value)
        .filter(|value| value.starts_with('['))
        .ok_or_else(not_cloner)?;
    let mut out = Sections {
        lists: HashMap::new(),
        warnings: Vec::new(),
    };
    let mut unknown = std::collections::BTreeSet::new();
    let mut unknown_more = 0usize;
    let mut repeated = HashSet::new();
    for (i, item) in split_top(data).enumerate() {
        if !item.starts_with('{') {
            return Err(format!("item {} of \"data\" is not an object", i + 1));
        }
        for (key, value) in members(item) {
            let Some(known) = KNOWN.iter().copied().find(|k| *k == key) else {
                if unknown.len() < UNKNOWN_NAMED {
                    unknown.insert(key);
                } else if !unknown.contains(&key) {
                    unknown_more += 1;
                }
                continue;
            };
            if !value.starts_with('[') {
                return Err(format!("its section \"{key}\" is not a list"));
            }
            // dremio-cloner's reader keeps the last one too.
            if out.lists.insert(known, value).is_some() && repeated.insert(known) {
                out.warnings.push(format!(
                    "section \"{key}\" appears more than once: the last one is read"
                ));
            }
        }
    }
    let unknown: Vec<String> = unknown.into_iter().collect();
    if out.lists.is_empty() {
        return Err(format!(
            "none of its items is a dremio-cloner section such as \"dremio_environment\", \"sources\" or \"vds\"{}",
            if unknown.is_empty() {
                String::new()
            } else {
                format!(
                    " (found {})",
                    examples(&unknown, unknown.len() + unknown_more)
                )
            }
        ));
    }
    for key in &unknown {
        out.warnings.push(format!(
            "unknown section \"{key}\" not imported (made by a newer dremio-cloner?)"
        ));
    }
    if unknown_more > 0 {
        out.warnings.push(format!(
            "{unknown_more} more unknown section(s) not imported"
        ));
    }
    Ok(out)
}

/// Up to three examples of `total` items, then how many more.
fn examples<S: AsRef<str>>(items: &[S], total: usize) -> String {
    let mut s = items
        .iter()
        .take(3)
        .map(|x| x.as_ref())
        .collect::<Vec<_>>()
        .join(", ");
    if total > 3 {
        let _ = write!(s, " and {} more", total - 3);
    }
    s
}

/// Whether an entity grants anything to anyone (grants are not cloned).
fn has_grants(e: &Value) -> bool {
    e.get("accessControlList").is_some_and(|acl| {
        ["users", "roles", "groups"].iter().any(|k| {
            acl.get(k)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        })
    })
}

/// Home spaces are named `@user`; their folders and views belong to users and are not cloned.
fn in_home(path: &[String]) -> bool {
    path.first().is_some_and(|p| p.starts_with('@'))
}

/// Whether `kind` at `path` is written, by import and export alike: a container when something
/// below it is wanted, anything else when selected.
fn included(filter: &Filter, kind: Kind, path: &[String]) -> bool {
    if kind.is_container() {
        filter.keeps_container(kind, path)
    } else {
        filter.selects(kind, path)
    }
}

/// Reads a dremio-cloner single-file export into `tree` (objects selected by `filter`; containers
/// kept by `filter.keeps_container`).
///
/// The file is one JSON document: it is checked whole, held as text, and each element is parsed
/// only when it is used, so memory holds the text and one element's values (plus the attachments
/// waiting for their object); the tree is written object by object. Sources, spaces, folders of
/// spaces, promoted datasets (`pds`), views (`vds`) and referenced users become objects;
/// reflections, tags and wikis are attached to the object their `path` names. Secrets in sources
/// are replaced by the mask before anything is written. What lifeboat does not clone (homes,
/// roles, WLM, ...) is named in the warnings.
pub fn import(file: &Path, tree: &Tree, filter: &Filter) -> Result<Imported, CloneError> {
    let bytes =
        limits::read_capped(file, MAX_FILE_BYTES, "a dremio-cloner file").map_err(|source| {
            CloneError::Read {
                path: file.to_path_buf(),
                source,
            }
        })?;
    let refuse = |why: String| CloneError::Tree {
        path: file.to_path_buf(),
        message: format!("not a dremio-cloner single-file export: {why}"),
    };
    // Checked whole first (without building anything), so that the splitting below only ever
    // sees valid JSON.
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .map_err(|e| refuse(format!("not JSON ({e})")))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| refuse(format!("not JSON ({e})")))?;
    let s = sections(text).map_err(refuse)?;
    let mut out = Imported {
        warnings: s.warnings.clone(),
        ..Imported::default()
    };
    let mut file_version = None;
    for e in s.get("dremio_environment") {
        if let Some(v) = e.map_err(refuse)?.get("file_version") {
            file_version = Some(v.clone());
            break;
        }
    }
    if let Some(v) = file_version
        .as_ref()
        .and_then(Value::as_str)
        .filter(|v| *v != FILE_VERSION)
    {
        out.warnings.push(format!(
            "file_version {v}: lifeboat knows {FILE_VERSION}, and read it as such"
        ));
    }

    // Attachments by the path of their object, taken out as objects are written: what is left
    // names objects the file does not hold. Reflections wait as their text, parsed again when
    // their dataset is written.
    let mut reflections: HashMap<Vec<String>, Vec<&str>> = HashMap::new();
    let mut tags: HashMap<Vec<String>, Vec<String>> = HashMap::new();
    let mut wikis: HashMap<Vec<String>, String> = HashMap::new();
    let mut pathless: std::collections::BTreeMap<&str, usize> = Default::default();
    if !filter.skips(Skip::Reflections)
        && let Some(list) = s.lists.get("reflections")
    {
        for (text, r) in split_top(list).zip(s.get("reflections")) {
            match str_list(&r.map_err(refuse)?["path"]) {
                Some(p) if !p.is_empty() => reflections.entry(p).or_default().push(text),
                _ => *pathless.entry("reflections").or_default() += 1,
            }
        }
    }
    if !filter.skips(Skip::Tags) {
        for t in s.get("tags") {
            let t = t.map_err(refuse)?;
            match str_list(&t["path"]) {
                Some(p) if !p.is_empty() => {
                    tags.insert(p, str_list(&t["tags"]).unwrap_or_default());
                }
                _ => *pathless.entry("tags").or_default() += 1,
            }
        }
    }
    if !filter.skips(Skip::Wikis) {
        for w in s.get("wikis") {
            let w = w.map_err(refuse)?;
            match str_list(&w["path"]) {
                Some(p) if !p.is_empty() => {
                    // An empty wiki is no wiki, as in a live export.
                    match w
                        .get("text")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                    {
                        Some(t) => wikis.insert(p, t.to_string()),
                        None => wikis.remove(&p),
                    };
                }
                _ => *pathless.entry("wikis").or_default() += 1,
            }
        }
    }

    // Filled as the sources are read, before the folders that need it.
    let mut sources: HashSet<String> = HashSet::new();
    let mut kept = Written::default();
    let mut written: HashSet<(Kind, Vec<String>)> = HashSet::new();
    let mut masked = 0usize;
    let mut grants = 0usize;
    let mut home_items = 0usize;
    let mut source_folders = 0usize;
    let mut misplaced_tags = Vec::new();
    let sections: [(&str, Kind); 5] = [
        ("sources", Kind::Source),
        ("spaces", Kind::Space),
        ("folders", Kind::Folder),
        ("pds", Kind::Dataset),
        ("vds", Kind::View),
    ];
    for (section, default_kind) in sections {
        for e in s.get(section) {
            let e = &e.map_err(refuse)?;
            if default_kind == Kind::Source
                && let Some(name) = e.get("name").and_then(Value::as_str)
            {
                sources.insert(name.to_string());
            }
            let named = matches!(default_kind, Kind::Source | Kind::Space);
            let path = if named {
                e.get("name")
                    .and_then(Value::as_str)
                    .map(|n| vec![n.to_string()])
                    .or_else(|| str_list(&e["path"]).filter(|p| p.len() == 1))
            } else {
                str_list(&e["path"])
            };
            let Some(path) = path.filter(|p| !p.is_empty()) else {
                *pathless.entry(section).or_default() += 1;
                continue;
            };
            // An entry of `pds` or `vds` says itself whether it is a view.
            let kind = match entity_kind(e) {
                Some(k) if default_kind.is_dataset() && k.is_dataset() => k,
                _ => default_kind,
            };
            if !named && in_home(&path) {
                home_items += 1;
                continue;
            }
            if kind == Kind::Folder && sources.contains(&path[0]) {
                // lifeboat records a source's promoted datasets, not its storage folders.
                source_folders += 1;
                continue;
            }
            // Taken out whether or not the object is selected: an attachment of an object the
            // filter leaves out is left out with it, not reported as missing.
            let refl = reflections.remove(&path);
            let tag_list = tags.remove(&path);
            let wiki = wikis.remove(&path);
            if !included(filter, kind, &path) {
                continue;
            }
            let mut o = if kind == Kind::Source {
                let mut e = e.clone();
                let t = e
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Some(config) = e.get_mut("config") {
                    masked += super::model::mask_config(&t, config);
                }
                Object::from_entity(kind, path, &e)
            } else {
                Object::from_entity(kind, path, e)
            };
            grants += usize::from(has_grants(e));
            if kind.is_dataset() {
                if let Some(texts) = refl {
                    let list = texts
                        .into_iter()
                        .map(|text| {
                            let mut r: Value = serde_json::from_str(text)
                                .map_err(|e| refuse(format!("a reflection: {e}")))?;
                            // dremio-cloner's addition, not a reflection field.
                            if let Some(m) = r.as_object_mut() {
                                m.remove("path");
                            }
                            Ok(r)
                        })
                        .collect::<Result<Vec<Value>, CloneError>>()?;
                    out.reflections += list.len();
                    o.set_reflections(&list);
                }
                if let Some(t) = tag_list {
                    o.set_tags(t);
                }
            } else if tag_list.is_some_and(|t| !t.is_empty()) {
                misplaced_tags.push(o.path.join("/"));
            }
            o.wiki = wiki;
            tree.write(&o)?.iter().for_each(|f| kept.add(f));
            written.insert((o.kind, o.path));
            out.objects += 1;
        }
    }

    if !filter.skips(Skip::Users) {
        for u in s.get("referenced_users") {
            let u = &u.map_err(refuse)?;
            let Some(name) = u
                .get("name")
                .or(u.get("userName"))
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            else {
                *pathless.entry("referenced_users").or_default() += 1;
                continue;
            };
            if !filter.selects(Kind::User, &[name.to_string()]) {
                continue;
            }
            let o = Object::from_user(name.to_string(), u);
            tree.write(&o)?.iter().for_each(|f| kept.add(f));
            written.insert((o.kind, o.path));
            out.objects += 1;
        }
    }

    // The files an object had from an earlier import and no longer has (a wiki removed since).
    tree.remove_stale(&kept, &|kind, path| {
        written.contains(&(kind, path.to_vec()))
    })?;

    let w = &mut out.warnings;
    let left = |m: Vec<String>, what: &str, whose: &str, w: &mut Vec<String>| {
        if !m.is_empty() {
            w.push(format!(
                "{} {what} not imported: {whose} is not among the file's objects ({})",
                m.len(),
                examples(&m, m.len())
            ));
        }
    };
    let lost_reflections: usize = reflections.values().map(Vec::len).sum();
    let mut lost: Vec<String> = reflections.keys().map(|p| p.join("/")).collect();
    lost.sort();
    if lost_reflections > 0 {
        w.push(format!(
            "{lost_reflections} reflection(s) not imported: their dataset is not among the file's objects ({})",
            examples(&lost, lost.len())
        ));
    }
    let mut lost: Vec<String> = tags.keys().map(|p| p.join("/")).collect();
    lost.sort();
    left(lost, "tag list(s)", "their dataset", w);
    let mut lost: Vec<String> = wikis.keys().map(|p| p.join("/")).collect();
    lost.sort();
    left(lost, "wiki(s)", "their object", w);
    if !misplaced_tags.is_empty() {
        w.push(format!(
            "{} tag list(s) not imported: only datasets have tags ({})",
            misplaced_tags.len(),
            examples(&misplaced_tags, misplaced_tags.len())
        ));
    }
    for (section, n) in pathless {
        w.push(format!(
            "{n} item(s) of \"{section}\" not imported: they have no name or path"
        ));
    }
    if home_items > 0 {
        w.push(format!(
            "{home_items} folder(s) and view(s) in home spaces not imported: homes belong to users"
        ));
    }
    if source_folders > 0 {
        w.push(format!(
            "{source_folders} folder(s) inside sources not imported: lifeboat keeps a source's promoted datasets, not its folders"
        ));
    }
    if grants > 0 {
        w.push(format!(
            "the access control lists of {grants} object(s) not imported: lifeboat does not clone grants"
        ));
    }
    for (section, why) in UNSUPPORTED {
        let n = s.count(section);
        if n > 0 {
            w.push(format!("{n} {why}"));
        }
    }
    if masked > 0 {
        w.push(format!(
            "{masked} secret value(s) of sources replaced by {MASK}: the tree never holds secrets; give them to the target through the mapping"
        ));
    }
    Ok(out)
}

/// The id lifeboat gives an object in a cloner file. dremio-cloner's `put` needs ids (it orders
/// views by id and maps grants by user id) but never sends them: any unique string works, and a
/// path-made one keeps the file stable from run to run. Components are encoded as in tree file
/// names so that `a/b` + `c` and `a` + `b/c` differ.
fn id_of(kind: Kind, path: &[String]) -> String {
    let joined = path.iter().map(|p| encode(p)).collect::<Vec<_>>().join("/");
    if kind == Kind::User {
        format!("lifeboat:@users/{joined}")
    } else {
        format!("lifeboat:{joined}")
    }
}

/// The REST entity of an object as dremio-cloner stores it: with an id (its `put` orders views
/// by id), made from the path.
fn entity_with_id(o: &Object) -> Value {
    let mut body = o.create_body();
    body["id"] = json!(id_of(o.kind, &o.path));
    body
}

/// The file being written: sections of elements, streamed.
struct Out {
    w: BufWriter<File>,
    /// The final path, for error messages.
    path: PathBuf,
    items: usize,
    elements: usize,
}

impl Out {
    fn raw(&mut self, s: &str) -> Result<(), CloneError> {
        self.w
            .write_all(s.as_bytes())
            .map_err(|source| CloneError::Write {
                path: self.path.clone(),
                source,
            })
    }

    /// Opens the item `{"key": [`.
    fn begin(&mut self, key: &str) -> Result<(), CloneError> {
        let mut s = String::new();
        if self.items > 0 {
            s.push_str(",\n");
        }
        s.push_str("{\n    ");
        py_string(&mut s, key);
        s.push_str(": [");
        self.elements = 0;
        self.raw(&s)
    }

    fn element(&mut self, v: &Value) -> Result<(), CloneError> {
        let mut s = String::from(if self.elements == 0 { "\n" } else { ",\n" });
        s.push_str(&" ".repeat(8));
        py_json(&mut s, v, 2);
        self.elements += 1;
        self.raw(&s)
    }

    fn end(&mut self) -> Result<(), CloneError> {
        self.items += 1;
        if self.elements == 0 {
            self.raw("]\n}")
        } else {
            self.raw("\n    ]\n}")
        }
    }

    fn section(&mut self, key: &str, elements: &[Value]) -> Result<(), CloneError> {
        self.begin(key)?;
        for e in elements {
            self.element(e)?;
        }
        self.end()
    }
}

/// Calls `f` with every object of `tree` of a kind `want`s and that the filter includes, read one
/// at a time.
fn each(
    tree: &Tree,
    filter: &Filter,
    want: impl Fn(Kind) -> bool,
    mut f: impl FnMut(Object) -> Result<(), CloneError>,
) -> Result<(), CloneError> {
    for item in tree.objects() {
        let (kind, path) = item?;
        if !want(kind) || !included(filter, kind, &path) {
            continue;
        }
        if let Some(o) = tree.read(kind, &path)? {
            f(o)?;
        }
    }
    Ok(())
}

/// `str(datetime.utcnow())`: microseconds only when there are some.
fn python_utc_now() -> String {
    let now = chrono::Utc::now();
    let micros = now.timestamp_subsec_micros();
    let mut s = now.format("%Y-%m-%d %H:%M:%S").to_string();
    if micros > 0 {
        let _ = write!(s, ".{micros:06}");
    }
    s
}

/// A get config as dremio-cloner records it: which kinds were processed. There is no password
/// (dremio-cloner blanks it; lifeboat has none to give).
fn get_config(file: &Path, base_url: &str, filter: &Filter) -> Value {
    let mode = |skip: Option<Skip>| {
        if skip.is_some_and(|s| filter.skips(s)) {
            "skip"
        } else {
            "process"
        }
    };
    let filename = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    json!([
        {"command": "get"},
        {"source": [{"endpoint": base_url}]},
        {"target": [{"filename": filename}]},
        {"options": [
            {"user.process_mode": mode(Some(Skip::Users))},
            {"group.process_mode": "skip"},
            {"space.process_mode": mode(None)},
            {"source.process_mode": mode(None)},
            {"folder.process_mode": mode(None)},
            {"pds.process_mode": mode(Some(Skip::Promoted))},
            {"vds.process_mode": mode(None)},
            {"reflection.process_mode": mode(Some(Skip::Reflections))},
            {"wiki.process_mode": mode(Some(Skip::Wikis))},
            {"tag.process_mode": mode(Some(Skip::Tags))},
            {"home.process_mode": "skip"}
        ]}
    ])
}

/// Writes the objects of `tree` selected by `filter` as one dremio-cloner file, in the item order
/// and layout dremio-cloner writes; returns the number of objects (catalog objects and users)
/// written.
///
/// Functions (UDFs) are left out: dremio-cloner's format has no place for them (the caller can
/// compare the count with the tree's). Homes, roles, WLM queues and rules are not in trees, so their
/// sections are absent, as dremio-cloner leaves them out when it skips them; so are the sections of
/// the kinds `filter` skips. Each section is one pass over the tree, reading one object at a time:
/// nothing but the object at hand is held in memory. The file is written beside its final name
/// and renamed into place, so a failed export leaves no half file.
pub fn export(
    tree: &Tree,
    file: &Path,
    filter: &Filter,
    base_url: &str,
) -> Result<usize, CloneError> {
    let tmp = file.with_file_name(format!(
        ".{}.tmp-{}",
        file.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let werr = |source| CloneError::Write {
        path: file.to_path_buf(),
        source,
    };
    let f = File::create(&tmp).map_err(werr)?;
    let mut out = Out {
        w: BufWriter::new(f),
        path: file.to_path_buf(),
        items: 0,
        elements: 0,
    };
    let written = write_sections(&mut out, tree, file, filter, base_url).and_then(|n| {
        let f = out.w.into_inner().map_err(|e| werr(e.into_error()))?;
        f.sync_all().map_err(werr)?;
        Ok(n)
    });
    match written {
        Ok(n) => {
            fs::rename(&tmp, file).map_err(werr)?;
            Ok(n)
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_sections(
    out: &mut Out,
    tree: &Tree,
    file: &Path,
    filter: &Filter,
    base_url: &str,
) -> Result<usize, CloneError> {
    let mut count = 0usize;
    out.raw("{ \"data\": [")?;
    out.section(
        "dremio_environment",
        &[
            json!({"file_version": FILE_VERSION}),
            json!({"base_url": base_url}),
            json!({"timestamp_utc": python_utc_now()}),
        ],
    )?;
    let config = get_config(file, base_url, filter);
    out.section(
        "dremio_get_config",
        config.as_array().map(Vec::as_slice).unwrap_or_default(),
    )?;

    // The top-level containers, as `GET /api/v3/catalog` lists them; no need to read the files.
    out.begin("containers")?;
    for item in tree.objects() {
        let (kind, path) = item?;
        let container_type = match kind {
            Kind::Source => "SOURCE",
            Kind::Space => "SPACE",
            _ => continue,
        };
        if included(filter, kind, &path) {
            out.element(&json!({
                "containerType": container_type,
                "id": id_of(kind, &path),
                "path": path,
                "type": "CONTAINER",
            }))?;
        }
    }
    out.end()?;

    let mut catalog = [
        ("sources", Kind::Source),
        ("spaces", Kind::Space),
        ("folders", Kind::Folder),
        ("pds", Kind::Dataset),
        ("vds", Kind::View),
    ]
    .to_vec();
    if filter.skips(Skip::Promoted) {
        catalog.retain(|(_, k)| *k != Kind::Dataset);
    }
    for (section, kind) in catalog {
        out.begin(section)?;
        each(
            tree,
            filter,
            |k| k == kind,
            |o| {
                count += 1;
                out.element(&entity_with_id(&o))
            },
        )?;
        out.end()?;
    }
    // dremio-cloner always writes it, always empty.
    out.section("files", &[])?;

    if !filter.skips(Skip::Reflections) {
        out.begin("reflections")?;
        each(tree, filter, Kind::is_dataset, |o| {
            let dataset_id = id_of(o.kind, &o.path);
            for mut r in o.reflections() {
                let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
                let id = format!("{dataset_id}#{}", encode(name));
                r.insert("id".into(), json!(id));
                r.insert("entityType".into(), json!("reflection"));
                r.insert("datasetId".into(), json!(dataset_id));
                r.insert("path".into(), json!(o.path));
                out.element(&Value::Object(r))?;
            }
            Ok(())
        })?;
        out.end()?;
    }
    if !filter.skips(Skip::Users) {
        out.begin("referenced_users")?;
        each(
            tree,
            filter,
            |k| k == Kind::User,
            |o| {
                count += 1;
                out.element(&entity_with_id(&o))
            },
        )?;
        out.end()?;
    }
    if !filter.skips(Skip::Tags) {
        out.begin("tags")?;
        each(tree, filter, Kind::is_dataset, |o| {
            let tags = o.tags();
            if tags.is_empty() {
                return Ok(());
            }
            out.element(&collaboration(&o, "tags", json!(tags)))
        })?;
        out.end()?;
    }
    if !filter.skips(Skip::Wikis) {
        out.begin("wikis")?;
        each(
            tree,
            filter,
            |k| !matches!(k, Kind::User | Kind::Function),
            |o| match o.wiki.as_deref().filter(|w| !w.is_empty()) {
                Some(text) => out.element(&collaboration(&o, "text", json!(text))),
                None => Ok(()),
            },
        )?;
        out.end()?;
    }
    out.raw(" ] }")?;
    Ok(count)
}

/// A tag list or wiki element: dremio-cloner's `put` reads `path` and the value, and ignores
/// `entity_id` and `version`.
fn collaboration(o: &Object, field: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert("entity_id".into(), json!(id_of(o.kind, &o.path)));
    m.insert("path".into(), json!(o.path));
    m.insert(field.into(), value);
    m.insert("version".into(), json!(0));
    Value::Object(m)
}

/// Python's `json.dumps(v, indent=4, sort_keys=True)` (with `ensure_ascii`) at nesting `level`:
/// the bytes dremio-cloner writes, so that a diff between its files and lifeboat's shows only
/// content.
fn py_json(out: &mut String, v: &Value, level: usize) {
    let indent = |out: &mut String, level: usize| {
        for _ in 0..level * 4 {
            out.push(' ');
        }
    };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else {
                out.push_str(&py_float(n.as_f64().unwrap_or_default()));
            }
        }
        Value::String(s) => py_string(out, s),
        Value::Array(a) if a.is_empty() => out.push_str("[]"),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(out, level + 1);
                py_json(out, x, level + 1);
            }
            out.push('\n');
            indent(out, level);
            out.push(']');
        }
        Value::Object(m) if m.is_empty() => out.push_str("{}"),
        Value::Object(m) => {
            // Sorted here, whatever order the map keeps: Python sorts by code point, as does
            // comparing UTF-8 bytes.
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, x)) in entries.into_iter().enumerate() {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                indent(out, level + 1);
                py_string(out, k);
                out.push_str(": ");
                py_json(out, x, level + 1);
            }
            out.push('\n');
            indent(out, level);
            out.push('}');
        }
    }
}

/// A JSON string as Python writes it with `ensure_ascii`: anything outside space..`~` escaped,
/// as UTF-16 units beyond the BMP.
fn py_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest digits that read back the same, in positional notation for
/// exponents -4 to 15 (always with a fraction), otherwise as `1.5e+16` / `1e-05`.
fn py_float(f: f64) -> String {
    // Rust's `{:e}` gives the same shortest digits, as `-1.2345e-7`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut s = sign.to_string();
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                s.push_str(&digits);
                s.push_str(&"0".repeat(int_len - digits.len()));
                s.push_str(".0");
            } else {
                s.push_str(&digits[..int_len]);
                s.push('.');
                s.push_str(&digits[int_len..]);
            }
        } else {
            s.push_str("0.");
            s.push_str(&"0".repeat((-exp - 1) as usize));
            s.push_str(&digits);
        }
    } else {
        s.push_str(&digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        let _ = write!(s, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// target/notes/cloner-example.json (the output of dremio-cloner's own writer), with some
    /// fields lists shortened and the get config's options cut down.
    const EXAMPLE: &str = r##"{ "data": [{
    "dremio_environment": [
        {
            "file_version": "0.3"
        },
        {
            "base_url": "http://localhost:9047/"
        },
        {
            "timestamp_utc": "2024-12-20 10:15:42.123456"
        }
    ]
},
{
    "dremio_get_config": [
        {
            "command": "get"
        },
        {
            "source": [
                {
                    "endpoint": "http://localhost:9047/"
                },
                {
                    "username": "admin"
                },
                {
                    "password": ""
                }
            ]
        },
        {
            "options": [
                {
                    "vds.process_mode": "process"
                }
            ]
        }
    ]
},
{
    "containers": [
        {
            "containerType": "SPACE",
            "id": "3f1e8c2a-7d44-4b8e-9c61-0b2a5d6e7f02",
            "path": [
                "Analytics"
            ],
            "type": "CONTAINER"
        },
        {
            "containerType": "SOURCE",
            "id": "9a0c2f4e-1b7d-4c55-8a43-2f6f7f1d0a01",
            "path": [
                "lake"
            ],
            "type": "CONTAINER"
        }
    ]
},
{
    "sources": [
        {
            "accelerationGracePeriodMs": 10800000,
            "accelerationNeverExpire": false,
            "accelerationNeverRefresh": false,
            "accelerationRefreshPeriodMs": 3600000,
            "allowCrossSourceSelection": false,
            "children": [
                {
                    "containerType": "FOLDER",
                    "id": "dremio:/lake/sales",
                    "path": [
                        "lake",
                        "sales"
                    ],
                    "type": "CONTAINER"
                }
            ],
            "config": {
                "defaultCtasFormat": "ICEBERG",
                "path": "/data/lake"
            },
            "disableMetadataValidityCheck": false,
            "entityType": "source",
            "id": "9a0c2f4e-1b7d-4c55-8a43-2f6f7f1d0a01",
            "metadataPolicy": {
                "authTTLMs": 86400000,
                "autoPromoteDatasets": false,
                "datasetExpireAfterMs": 10800000,
                "datasetRefreshAfterMs": 3600000,
                "datasetUpdateMode": "PREFETCH_QUERIED",
                "deleteUnavailableDatasets": true,
                "namesRefreshMs": 3600000
            },
            "name": "lake",
            "state": {
                "messages": [],
                "status": "good",
                "suggestedUserAction": ""
            },
            "type": "NAS"
        }
    ]
},
{
    "spaces": [
        {
            "children": [
                {
                    "containerType": "FOLDER",
                    "id": "c6b5a4d3-2e1f-4a0b-8c7d-6e5f4a3b2c03",
                    "path": [
                        "Analytics",
                        "Sales"
                    ],
                    "type": "CONTAINER"
                }
            ],
            "entityType": "space",
            "id": "3f1e8c2a-7d44-4b8e-9c61-0b2a5d6e7f02",
            "name": "Analytics"
        }
    ]
},
{
    "folders": [
        {
            "children": [],
            "entityType": "folder",
            "id": "c6b5a4d3-2e1f-4a0b-8c7d-6e5f4a3b2c03",
            "path": [
                "Analytics",
                "Sales"
            ]
        }
    ]
},
{
    "pds": [
        {
            "accelerationRefreshPolicy": {
                "gracePeriodMs": 10800000,
                "method": "FULL",
                "neverExpire": false,
                "neverRefresh": false,
                "refreshPeriodMs": 3600000
            },
            "createdAt": "2024-11-02T09:12:45.120Z",
            "entityType": "dataset",
            "fields": [
                {
                    "name": "order_id",
                    "type": {
                        "name": "VARCHAR"
                    }
                }
            ],
            "format": {
                "ctime": 0,
                "extractHeader": true,
                "fieldDelimiter": ",",
                "fullPath": [
                    "lake",
                    "sales",
                    "orders.csv"
                ],
                "isFolder": false,
                "location": "/data/lake/sales/orders.csv",
                "type": "Text"
            },
            "id": "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b04",
            "path": [
                "lake",
                "sales",
                "orders.csv"
            ],
            "tag": "",
            "type": "PHYSICAL_DATASET"
        }
    ]
},
{
    "vds": [
        {
            "accessControlList": {
                "users": [
                    {
                        "id": "11111111-2222-4333-8444-555555555508",
                        "permissions": [
                            "SELECT",
                            "ALTER"
                        ]
                    }
                ]
            },
            "entityType": "dataset",
            "fields": [
                {
                    "name": "order_id",
                    "type": {
                        "name": "INTEGER"
                    }
                }
            ],
            "id": "e1d2c3b4-a5f6-4e7d-8c9b-0a1b2c3d4e05",
            "owner": {
                "ownerId": "11111111-2222-4333-8444-555555555508",
                "ownerType": "USER"
            },
            "path": [
                "Analytics",
                "Sales",
                "orders_clean"
            ],
            "sql": "SELECT CAST(order_id AS INT) AS order_id, TO_TIMESTAMP(order_ts, 'YYYY-MM-DD HH24:MI:SS') AS order_ts, CAST(amount AS DOUBLE) AS amount FROM lake.sales.\"orders.csv\"",
            "sqlContext": [
                "lake",
                "sales"
            ],
            "type": "VIRTUAL_DATASET"
        },
        {
            "entityType": "dataset",
            "fields": [
                {
                    "name": "order_day",
                    "type": {
                        "name": "TIMESTAMP"
                    }
                }
            ],
            "id": "f0e1d2c3-b4a5-4f6e-8d7c-9b0a1b2c3d06",
            "owner": {
                "ownerId": "11111111-2222-4333-8444-555555555508",
                "ownerType": "USER"
            },
            "path": [
                "Analytics",
                "Sales",
                "orders_by_day"
            ],
            "sql": "SELECT DATE_TRUNC('DAY', order_ts) AS order_day, SUM(amount) AS total FROM orders_clean GROUP BY 1",
            "sqlContext": [
                "Analytics",
                "Sales"
            ],
            "type": "VIRTUAL_DATASET"
        }
    ]
},
{
    "files": []
},
{
    "reflections": [
        {
            "arrowCachingEnabled": false,
            "currentSizeBytes": 20480,
            "datasetId": "f0e1d2c3-b4a5-4f6e-8d7c-9b0a1b2c3d06",
            "displayFields": [
                {
                    "name": "order_day"
                },
                {
                    "name": "total"
                }
            ],
            "distributionFields": [],
            "enabled": true,
            "entityType": "reflection",
            "id": "7b6a5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c07",
            "name": "Raw Reflection",
            "partitionDistributionStrategy": "CONSOLIDATED",
            "partitionFields": [
                {
                    "name": "order_day"
                }
            ],
            "path": [
                "Analytics",
                "Sales",
                "orders_by_day"
            ],
            "sortFields": [],
            "status": {
                "availability": "AVAILABLE",
                "combinedStatus": "CAN_ACCELERATE",
                "config": "OK",
                "expiresAt": "2024-11-02T12:31:00.000Z",
                "failureCount": 0,
                "lastDataFetch": "2024-11-02T09:31:00.000Z",
                "refresh": "SCHEDULED"
            },
            "totalSizeBytes": 20480,
            "type": "RAW",
            "updatedAt": "2024-11-02T09:30:00.000Z"
        }
    ]
},
{
    "referenced_users": [
        {
            "active": true,
            "email": "alice@example.com",
            "firstName": "Alice",
            "id": "11111111-2222-4333-8444-555555555508",
            "lastName": "Doe",
            "name": "alice"
        }
    ]
},
{
    "referenced_roles": []
},
{
    "tags": [
        {
            "entity_id": "e1d2c3b4-a5f6-4e7d-8c9b-0a1b2c3d4e05",
            "path": [
                "Analytics",
                "Sales",
                "orders_clean"
            ],
            "tags": [
                "sales",
                "curated"
            ],
            "version": "VJ3ijXH4m6k="
        }
    ]
},
{
    "wikis": [
        {
            "entity_id": "e1d2c3b4-a5f6-4e7d-8c9b-0a1b2c3d4e05",
            "path": [
                "Analytics",
                "Sales",
                "orders_clean"
            ],
            "text": "# orders_clean\nTyped copy of `lake.sales.\"orders.csv\"`.",
            "version": 0
        }
    ]
},
{
    "vds_parents": [
        {
            "id": "e1d2c3b4-a5f6-4e7d-8c9b-0a1b2c3d4e05",
            "parents": [
                "lake/sales/orders.csv"
            ],
            "path": [
                "Analytics",
                "Sales",
                "orders_clean"
            ]
        }
    ]
} ] }"##;

    fn p(s: &str) -> Vec<String> {
        s.split('/').map(str::to_string).collect()
    }

    fn obj(kind: Kind, path: &str, body: Value, text: Option<&str>, wiki: Option<&str>) -> Object {
        Object {
            kind,
            path: p(path),
            body: body.as_object().cloned().unwrap_or_default(),
            text: text.map(str::to_string),
            wiki: wiki.map(str::to_string),
        }
    }

    /// Every file under `root`, relative path to bytes.
    fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        walkdir::WalkDir::new(root)
            .into_iter()
            .map(Result::unwrap)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                (
                    e.path().strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    }

    fn import_text(text: &str) -> (tempfile::TempDir, Tree, Result<Imported, CloneError>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export.json");
        fs::write(&file, text).unwrap();
        let tree = Tree::create(&dir.path().join("tree")).unwrap();
        let res = import(&file, &tree, &Filter::default());
        (dir, tree, res)
    }

    #[test]
    fn dremio_cloners_example_imports_into_the_expected_objects() {
        let (dir, tree, res) = import_text(EXAMPLE);
        let imported = res.unwrap();
        assert_eq!(
            imported.objects, 7,
            "source, dataset, space, folder, 2 views, user"
        );
        assert_eq!(imported.reflections, 1);
        assert_eq!(
            imported.warnings,
            vec![
                "the access control lists of 1 object(s) not imported: lifeboat does not clone grants"
            ]
        );

        let listed: Vec<(Kind, Vec<String>)> = tree.objects().map(Result::unwrap).collect();
        assert_eq!(listed.len(), 7, "{listed:?}");

        let lake = tree.read(Kind::Source, &p("lake")).unwrap().unwrap();
        assert_eq!(lake.body["type"], "NAS");
        assert_eq!(lake.body["config"]["path"], "/data/lake");
        assert_eq!(lake.body["metadataPolicy"]["namesRefreshMs"], 3600000);
        for k in ["id", "name", "state", "children", "entityType"] {
            assert!(!lake.body.contains_key(k), "{k}");
        }

        let orders = tree
            .read(Kind::Dataset, &p("lake/sales/orders.csv"))
            .unwrap()
            .unwrap();
        assert_eq!(orders.body["format"]["type"], "Text");
        for k in ["tag", "createdAt", "fields", "type", "path"] {
            assert!(!orders.body.contains_key(k), "{k}");
        }

        let space = tree.read(Kind::Space, &p("Analytics")).unwrap().unwrap();
        assert!(space.body.is_empty(), "{:?}", space.body);
        assert!(
            tree.read(Kind::Folder, &p("Analytics/Sales"))
                .unwrap()
                .is_some()
        );

        let clean = tree
            .read(Kind::View, &p("Analytics/Sales/orders_clean"))
            .unwrap()
            .unwrap();
        assert!(
            clean
                .text
                .as_deref()
                .unwrap()
                .starts_with("SELECT CAST(order_id")
        );
        assert_eq!(clean.body["sqlContext"], json!(["lake", "sales"]));
        assert_eq!(clean.tags(), vec!["sales", "curated"]);
        assert_eq!(
            clean.wiki.as_deref(),
            Some("# orders_clean\nTyped copy of `lake.sales.\"orders.csv\"`.")
        );
        assert!(clean.reflections().is_empty());
        for k in ["accessControlList", "owner", "fields", "id"] {
            assert!(!clean.body.contains_key(k), "{k}");
        }

        let by_day = tree
            .read(Kind::View, &p("Analytics/Sales/orders_by_day"))
            .unwrap()
            .unwrap();
        assert_eq!(by_day.body["sqlContext"], json!(["Analytics", "Sales"]));
        assert!(by_day.tags().is_empty() && by_day.wiki.is_none());
        let r = by_day.reflections();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["name"], "Raw Reflection");
        assert_eq!(r[0]["type"], "RAW");
        assert_eq!(r[0]["partitionFields"], json!([{"name": "order_day"}]));
        for k in [
            "id",
            "path",
            "datasetId",
            "status",
            "currentSizeBytes",
            "updatedAt",
        ] {
            assert!(!r[0].contains_key(k), "{k}");
        }

        let alice = tree.read(Kind::User, &p("alice")).unwrap().unwrap();
        assert_eq!(
            Value::Object(alice.body),
            json!({"email": "alice@example.com", "firstName": "Alice", "lastName": "Doe"})
        );

        // No id of the source cluster is left anywhere in the tree.
        for (rel, bytes) in files(&tree.root) {
            let text = String::from_utf8(bytes).unwrap();
            for id in [
                "9a0c2f4e", "3f1e8c2a", "c6b5a4d3", "5d4c3b2a", "e1d2c3b4", "7b6a5c4d",
            ] {
                assert!(!text.contains(id), "{} holds an id: {text}", rel.display());
            }
        }
        drop(dir);
    }

    #[test]
    fn a_tree_round_trips_through_a_cloner_file_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let a = Tree::create(&dir.path().join("a")).unwrap();
        let objects = [
            obj(
                Kind::Source,
                "lake",
                json!({"type": "S3", "config": {"accessKey": "AKIA", "accessSecret": MASK,
                    "propertyList": [{"name": "fs.s3a.endpoint", "value": "minio:9000"}]},
                    "metadataPolicy": {"authTTLMs": 86400000, "ratio": 0.25, "big": 1.5e16}}),
                None,
                Some("The lake.\n"),
            ),
            obj(Kind::Space, "Sales", json!({}), None, None),
            obj(
                Kind::Folder,
                "Sales/Reports",
                json!({}),
                None,
                Some("reports"),
            ),
            obj(
                Kind::Dataset,
                "lake/trips/2024",
                json!({"format": {"type": "Parquet", "fullPath": ["lake", "trips", "2024"]},
                    "tags": ["raw"],
                    "reflections": [{"name": "r", "type": "RAW", "enabled": true,
                        "displayFields": [{"name": "a"}]}]}),
                None,
                None,
            ),
            obj(
                Kind::View,
                "Sales/Reports/monthly",
                json!({"sqlContext": ["Sales"], "tags": ["b", "a"],
                    "reflections": [
                        {"name": "agg", "type": "AGGREGATION", "dimensionFields": [{"name": "m"}],
                         "measureFields": [{"name": "x", "measureTypeList": ["SUM"]}]},
                        {"name": "raw", "type": "RAW", "displayFields": [{"name": "m"}]}]}),
                Some("SELECT m, SUM(x) AS x\nFROM lake.trips.\"2024\"\nGROUP BY m"),
                Some("# Monthly\n\nDonnées réelles 📈, \"quoted\".\n"),
            ),
            obj(
                Kind::View,
                "Sales/a%b/ünï/v.x",
                json!({}),
                Some("SELECT 'tab\there' AS t\n"),
                None,
            ),
            obj(
                Kind::User,
                "alice",
                json!({"email": "alice@example.com", "firstName": "Alice"}),
                None,
                None,
            ),
        ];
        for o in &objects {
            a.write(o).unwrap();
        }
        let udf = obj(
            Kind::Function,
            "Sales/fns/tax",
            json!({}),
            Some("x * 0.2"),
            None,
        );
        let udf_files: Vec<PathBuf> = a.write(&udf).unwrap();

        let file = dir.path().join("cloner.json");
        let n = export(&a, &file, &Filter::default(), "http://dremio:9047").unwrap();
        assert_eq!(n, objects.len(), "the UDF is left out");
        let text = fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("{ \"data\": [{\n    \"dremio_environment\": [\n"));
        assert!(text.ends_with("\n    ]\n} ] }"), "{text}");
        assert!(text.contains("\n{\n    \"files\": []\n},\n"));
        assert!(text.contains("\"id\": \"lifeboat:Sales/Reports/monthly\""));
        assert!(text.contains("\"datasetId\": \"lifeboat:Sales/Reports/monthly\""));
        assert!(text.is_ascii(), "ensure_ascii as Python");
        assert!(!text.contains("password"));
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("    \"") && l.ends_with('['))
            .map(|l| l.trim().split('"').nth(1).unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "dremio_environment",
                "dremio_get_config",
                "containers",
                "sources",
                "spaces",
                "folders",
                "pds",
                "vds",
                "reflections",
                "referenced_users",
                "tags",
                "wikis"
            ]
        );
        assert!(
            !dir.path().read_dir().unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp-"))
        );

        let b = Tree::create(&dir.path().join("b")).unwrap();
        let imported = import(&file, &b, &Filter::default()).unwrap();
        assert_eq!(imported.objects, objects.len());
        assert_eq!(imported.reflections, 3);
        assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);

        let mut want = files(&a.root);
        for f in &udf_files {
            want.remove(f).unwrap();
        }
        let got = files(&b.root);
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>()
        );
        for (rel, bytes) in &want {
            assert_eq!(
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(&got[rel]),
                "{}",
                rel.display()
            );
        }

        // A filter leaves out what it does not select, and keeps the containers above the rest.
        let only = Filter::new(&["Sales/Reports/**".into()], &[], &[Skip::Users]);
        let n = export(&a, &file, &only, "http://dremio:9047").unwrap();
        assert_eq!(n, 3, "space Sales, folder Reports, view monthly");
    }

    #[test]
    fn json_that_is_not_a_cloner_export_is_refused() {
        for text in [
            r#"{"data": [{"id": "x", "path": ["a"], "type": "CONTAINER"}]}"#,
            r#"{"format": "lifeboat-clone/1"}"#,
            r#"[1, 2]"#,
            r#"{"data": []}"#,
            r#"{"data": [{"vds": {"path": ["a"]}}]}"#,
            "not json at all",
        ] {
            let (_dir, _tree, res) = import_text(text);
            let err = res.unwrap_err();
            assert!(matches!(err, CloneError::Tree { .. }), "{text}: {err:?}");
            let msg = err.to_string();
            assert!(
                msg.contains("export.json: not a dremio-cloner single-file export"),
                "{text}: {msg}"
            );
        }
    }

    #[test]
    fn secrets_of_an_imported_source_are_masked() {
        let text = r#"{"data": [{"sources": [{"entityType": "source", "name": "s3", "type": "S3",
            "config": {"accessKey": "AKIAEXAMPLE", "accessSecret": "wJalrXUtnFEMI",
              "keep": MASK_HERE, "empty": {"password": ""},
              "propertyList": [{"name": "fs.s3a.secret.key", "value": "propsecret"},
                               {"name": "fs.s3a.endpoint", "value": "minio:9000"}],
              "auth": {"dbPassword": "hunter2", "SECRET_list": ["a", "b"]}}}]},
            {"homes": [{"entityType": "home", "name": "@alice"}]},
            {"referenced_groups": [{"id": "g"}]},
            {"vds": [{"entityType": "dataset", "path": ["@alice", "v"], "sql": "SELECT 1"}]},
            {"reflections": [{"name": "r", "type": "RAW", "path": ["gone", "v"]}]},
            {"whatever": []}]}"#
            .replace("MASK_HERE", &format!("\"{MASK}\""));
        let (_dir, tree, res) = import_text(&text);
        let imported = res.unwrap();
        assert_eq!(imported.objects, 1);
        let all: String = files(&tree.root)
            .into_values()
            .map(|b| String::from_utf8(b).unwrap())
            .collect();
        for secret in ["wJalrXUtnFEMI", "propsecret", "hunter2", "\"a\"", "\"b\""] {
            assert!(!all.contains(secret), "{secret} leaked: {all}");
        }
        let s3 = tree.read(Kind::Source, &p("s3")).unwrap().unwrap();
        let c = &s3.body["config"];
        assert_eq!(
            c["accessKey"], "AKIAEXAMPLE",
            "an access key id is not a secret"
        );
        assert_eq!(c["accessSecret"], MASK);
        assert_eq!(c["keep"], MASK);
        assert_eq!(c["empty"]["password"], "");
        assert_eq!(c["propertyList"][0]["value"], MASK);
        assert_eq!(c["propertyList"][1]["value"], "minio:9000");
        assert_eq!(c["auth"]["SECRET_list"], json!([MASK, MASK]));
        let w = &imported.warnings;
        assert!(
            w.iter().any(|w| w.starts_with("5 secret value(s)")),
            "{w:?}"
        );
        assert!(
            w.contains(&"1 homes not imported: homes belong to users".to_string()),
            "{w:?}"
        );
        assert!(
            w.iter().any(|w| w.starts_with("1 referenced groups")),
            "{w:?}"
        );
        assert!(w.iter().any(|w| w.contains("\"whatever\"")), "{w:?}");
        assert!(
            w.iter()
                .any(|w| w.starts_with("1 folder(s) and view(s) in home spaces")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|w| w.starts_with("1 reflection(s) not imported") && w.contains("(gone/v)")),
            "{w:?}"
        );
    }

    #[test]
    fn layout_and_numbers_are_pythons() {
        let mut s = String::new();
        py_json(
            &mut s,
            &json!({"b": [], "a": {"x": 1.0, "y": "é😀\u{7f}\n", "z": {}}, "c": [1, -2]}),
            0,
        );
        assert_eq!(
            s,
            "{\n    \"a\": {\n        \"x\": 1.0,\n        \"y\": \"\\u00e9\\ud83d\\ude00\\u007f\\n\",\n        \"z\": {}\n    },\n    \"b\": [],\n    \"c\": [\n        1,\n        -2\n    ]\n}"
        );
        for (f, py) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (123.456, "123.456"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            assert_eq!(py_float(f), py, "{f}");
        }
    }
}
