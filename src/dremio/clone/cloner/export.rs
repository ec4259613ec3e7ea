//! Writing a tree as a dremio-cloner file, streamed section by section in dremio-cloner's own
//! bytes.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::FILE_VERSION;
use super::pyjson::{py_json, py_string};
use serde_json::{Map, Value, json};

use super::included;
use crate::clone::CloneError;
use crate::clone::filter::Filter;
use crate::clone::tree::encode;
use crate::dremio::clone::DremioTree as Tree;
use crate::dremio::clone::Skip;
use crate::dremio::clone::model::{DremioObject, Kind, Object};

/// The id lifeboat gives an object in a cloner file. dremio-cloner's `put` needs ids (it orders
/// views by id and maps grants by user id) but never sends them: any unique string works, and a
/// path-made one keeps the file stable from run to run. Components are encoded as in tree file
/// names so that `a/b` + `c` and `a` + `b/c` differ.
pub(super) fn id_of(kind: Kind, path: &[String]) -> String {
    let joined = path.iter().map(|p| encode(p)).collect::<Vec<_>>().join("/");
    if kind == Kind::User {
        format!("lifeboat:@users/{joined}")
    } else {
        format!("lifeboat:{joined}")
    }
}

/// The REST entity of an object as dremio-cloner stores it: with an id (its `put` orders views
/// by id), made from the path.
pub(super) fn entity_with_id(o: &Object) -> Value {
    let mut body = o.create_body();
    body["id"] = json!(id_of(o.kind, &o.path));
    body
}

/// The file being written: sections of elements, streamed.
pub(super) struct Out {
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
pub(super) fn each(
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
pub(super) fn python_utc_now() -> String {
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
pub(super) fn get_config(file: &Path, base_url: &str, filter: &Filter) -> Value {
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

pub(super) fn write_sections(
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
pub(super) fn collaboration(o: &Object, field: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert("entity_id".into(), json!(id_of(o.kind, &o.path)));
    m.insert("path".into(), json!(o.path));
    m.insert(field.into(), value);
    m.insert("version".into(), json!(0));
    Value::Object(m)
}
