//! Reading a dremio-cloner file into a tree: the file is checked whole, then split into its
//! sections and elements without parsing them all at once.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use super::FILE_VERSION;
use serde_json::Value;

use super::included;
use crate::clone::CloneError;
use crate::clone::filter::Filter;
use crate::clone::tree::Written;
use crate::dremio::clone::DremioTree as Tree;
use crate::dremio::clone::Skip;
use crate::dremio::clone::model::{
    DremioObject, Kind, MASK, entity_kind, from_entity, from_user, str_list,
};
use crate::limits;

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
pub(super) const KNOWN: &[&str] = &[
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
pub(super) const UNSUPPORTED: &[(&str, &str)] = &[
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
pub(super) const MAX_ELEMENT_VALUES: usize = 100_000;
/// How many unknown section names are named in warnings; the rest are counted.
pub(super) const UNKNOWN_NAMED: usize = 10;

/// The top-level pieces of a valid JSON array or object's text, split at the commas outside
/// strings and brackets. Only for text serde_json has already checked: it does not validate.
pub(super) fn split_top(text: &str) -> impl Iterator<Item = &str> {
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
pub(super) fn members(object: &str) -> impl Iterator<Item = (String, &str)> {
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
pub(super) struct Sections<'a> {
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
pub(super) fn sections(text: &str) -> Result<Sections<'_>, String> {
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
pub(super) fn examples<S: AsRef<str>>(items: &[S], total: usize) -> String {
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
pub(super) fn has_grants(e: &Value) -> bool {
    e.get("accessControlList").is_some_and(|acl| {
        ["users", "roles", "groups"].iter().any(|k| {
            acl.get(k)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
        })
    })
}

/// Home spaces are named `@user`; their folders and views belong to users and are not cloned.
pub(super) fn in_home(path: &[String]) -> bool {
    path.first().is_some_and(|p| p.starts_with('@'))
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
                    masked += crate::dremio::clone::model::mask_config(&t, config);
                }
                from_entity(kind, path, &e)
            } else {
                from_entity(kind, path, e)
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
            let o = from_user(name.to_string(), u);
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
