//! The export tree: one file per artefact, named by its catalog path, made to live in git.
//!
//! ```text
//! lifeboat-clone.json                       {"format": "lifeboat-clone/1"}
//! catalog/Sales.space.json                  a space (its children under catalog/Sales/)
//! catalog/Sales/Reports.folder.json
//! catalog/Sales/Reports/monthly.view.json   stable fields, keys sorted, tags, reflections
//! catalog/Sales/Reports/monthly.view.sql    the view's SQL
//! catalog/Sales/Reports/monthly.view.wiki.md
//! catalog/lake.source.json                  secrets stay masked
//! catalog/lake/trips/2024.dataset.json      a promoted dataset
//! catalog/Sales/fns/tax.function.json (+ .function.sql)
//! users/alice.user.json
//! ```
//! Names are percent-encoded where a file system would misread them (`/`, `\`, `%`, control
//! characters, a leading `.`). Files are only rewritten when their bytes change.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::CloneError;
use super::model::{Kind, Object};
use crate::limits;

/// The marker file's name and its format string.
pub const MARKER: &str = "lifeboat-clone.json";
pub const FORMAT: &str = "lifeboat-clone/1";

/// The largest files of a tree read. A main file holds an object's fields (a dataset's with its
/// reflections): tens of KiB. The limits also bound memory, a JSON value costing up to ~350 bytes.
const MAX_JSON_BYTES: u64 = 4 << 20;
const MAX_JSON_VALUES: usize = 100_000;
/// A view's or function's SQL (generated views reach a few hundred KiB). The SQL scanner that
/// reads it holds a frame per open parenthesis, so this also bounds its memory.
const MAX_SQL_BYTES: u64 = 4 << 20;
/// A wiki (Dremio keeps at most 100,000 characters).
const MAX_WIKI_BYTES: u64 = 1 << 20;

/// A tree on disk.
#[derive(Debug, Clone)]
pub struct Tree {
    pub root: PathBuf,
}

/// Encodes one path component as a file name component.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, c) in name.chars().enumerate() {
        let bad = matches!(c, '/' | '\\' | '%') || c.is_control() || (i == 0 && c == '.');
        if bad {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

/// Decodes a file name component written by [`encode`].
pub fn decode(name: &str) -> Option<String> {
    if name == "%00" {
        return Some(String::new());
    }
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            // Two hex digits exactly: from_str_radix alone would take "+1", and two names would
            // decode to one object.
            let hex = b
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// What a file of the tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRole {
    Main,
    Text,
    Wiki,
}

/// The object (kind, path) and role of a file, from its path relative to the root.
pub fn classify(rel: &Path) -> Option<(Kind, Vec<String>, FileRole)> {
    let comps: Vec<&str> = rel
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()?;
    let (top, rest) = comps.split_first()?;
    let (file, dirs) = rest.split_last()?;
    let (stem, role) = if let Some(s) = file.strip_suffix(".wiki.md") {
        (s, FileRole::Wiki)
    } else if let Some(s) = file.strip_suffix(".sql") {
        (s, FileRole::Text)
    } else {
        (file.strip_suffix(".json")?, FileRole::Main)
    };
    let (name, kind) = stem.rsplit_once('.')?;
    let kind = Kind::from_word(kind)?;
    match (*top, kind) {
        ("users", Kind::User) if dirs.is_empty() => {}
        ("catalog", k) if k != Kind::User => {}
        _ => return None,
    }
    if role == FileRole::Text && !kind.has_text() {
        return None;
    }
    let mut path: Vec<String> = dirs.iter().map(|d| decode(d)).collect::<Option<_>>()?;
    path.push(decode(name)?);
    Some((kind, path, role))
}

/// The files a run wrote (or found unchanged), kept as 64-bit hashes: a few bytes per file
/// however long its path. A collision could only keep a stale file, never remove a live one.
#[derive(Default)]
pub struct Written {
    state: std::hash::RandomState,
    seen: HashSet<u64>,
}

impl Written {
    pub fn add(&mut self, rel: &Path) {
        let h = std::hash::BuildHasher::hash_one(&self.state, rel);
        self.seen.insert(h);
    }

    pub fn contains(&self, rel: &Path) -> bool {
        self.seen
            .contains(&std::hash::BuildHasher::hash_one(&self.state, rel))
    }
}

/// Pretty JSON with sorted keys and a final newline: stable bytes for git.
pub fn render(body: &Map<String, Value>) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(body).unwrap_or_default();
    out.push(b'\n');
    out
}

impl Tree {
    /// Opens a tree for writing: an empty or missing folder becomes a tree; a folder that holds
    /// anything else is refused (lifeboat never writes into, or wipes, a folder it did not make).
    pub fn create(root: &Path) -> Result<Tree, CloneError> {
        let tree = Tree {
            root: root.to_path_buf(),
        };
        if root.join(MARKER).exists() {
            tree.check_marker()?;
            tree.check_no_links()?;
            return Ok(tree);
        }
        if let Ok(mut entries) = fs::read_dir(root)
            && entries.any(|e| e.is_ok_and(|e| !e.file_name().to_string_lossy().starts_with('.')))
        {
            return Err(CloneError::Refused(format!(
                "{} is not empty and is not a lifeboat export (no {MARKER}): choose an empty or new folder",
                root.display()
            )));
        }
        fs::create_dir_all(root).map_err(|source| CloneError::Write {
            path: root.to_path_buf(),
            source,
        })?;
        let marker = format!("{{\n  \"format\": \"{FORMAT}\"\n}}\n");
        write_if_changed(&root.join(MARKER), marker.as_bytes())?;
        Ok(tree)
    }

    /// Records what an export covered (its filters), so that a mirror from this tree never takes
    /// what the export left out for deletions.
    pub fn set_scope(&self, scope: &Value) -> Result<(), CloneError> {
        let mut m = Map::new();
        m.insert("format".into(), Value::from(FORMAT));
        m.insert("scope".into(), scope.clone());
        write_if_changed(&self.root.join(MARKER), &render(&m))
    }

    /// The scope recorded by the export that made the tree, if any.
    pub fn scope(&self) -> Option<Value> {
        read_json(&self.root.join(MARKER)).ok()?.remove("scope")
    }

    /// Opens an existing tree for reading.
    pub fn open(root: &Path) -> Result<Tree, CloneError> {
        let tree = Tree {
            root: root.to_path_buf(),
        };
        tree.check_marker()?;
        tree.check_no_links()?;
        Ok(tree)
    }

    /// A tree holds plain files and folders only: a symbolic link (e.g. committed to git) would
    /// make lifeboat write outside the tree, or read any file into a view's SQL.
    fn check_no_links(&self) -> Result<(), CloneError> {
        for top in ["catalog", "users"] {
            for e in walkdir::WalkDir::new(self.root.join(top))
                .into_iter()
                .filter_map(Result::ok)
            {
                if e.path_is_symlink() {
                    return Err(CloneError::Refused(format!(
                        "{} is a symbolic link: an export tree holds plain files and folders only",
                        e.path().display()
                    )));
                }
            }
        }
        Ok(())
    }

    fn check_marker(&self) -> Result<(), CloneError> {
        let path = self.root.join(MARKER);
        let marker = match read_json(&path) {
            Err(CloneError::Read { source, .. }) => {
                return Err(CloneError::Tree {
                    path: self.root.clone(),
                    message: format!(
                        "not a lifeboat export ({MARKER}: {source}); make one with `lifeboat clone export`"
                    ),
                });
            }
            parsed => parsed.ok(),
        };
        let format =
            marker.and_then(|m| m.get("format").and_then(Value::as_str).map(str::to_string));
        if format.as_deref() != Some(FORMAT) {
            return Err(CloneError::Tree {
                path,
                message: format!(
                    "format {format:?} is not {FORMAT}: made by another lifeboat version?"
                ),
            });
        }
        Ok(())
    }

    /// The main file of an object, relative to the root.
    pub fn main_file(kind: Kind, path: &[String]) -> PathBuf {
        Self::file(kind, path, "json")
    }

    fn file(kind: Kind, path: &[String], ext: &str) -> PathBuf {
        let mut p = PathBuf::from(if kind == Kind::User {
            "users"
        } else {
            "catalog"
        });
        let (last, dirs) = path.split_last().expect("an object has a name");
        for d in dirs {
            p.push(encode(d));
        }
        p.push(format!("{}.{}.{ext}", encode(last), kind.word()));
        p
    }

    /// Whether the tree holds something a query can read at `path` (a view, a promoted dataset or
    /// a UDF).
    pub fn has_dataset(&self, path: &[String]) -> bool {
        !path.is_empty()
            && [Kind::View, Kind::Dataset, Kind::Function]
                .into_iter()
                .any(|k| self.root.join(Self::main_file(k, path)).exists())
    }

    /// The files (relative path, bytes) that represent an object.
    pub fn files_of(o: &Object) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = vec![(Self::main_file(o.kind, &o.path), render(&o.body))];
        if let Some(t) = &o.text {
            let mut bytes = t.clone().into_bytes();
            if !t.ends_with('\n') {
                bytes.push(b'\n');
            }
            files.push((Self::file(o.kind, &o.path, "sql"), bytes));
        }
        if let Some(w) = &o.wiki {
            files.push((
                Self::file(o.kind, &o.path, "wiki.md"),
                w.clone().into_bytes(),
            ));
        }
        files
    }

    /// Writes an object's files where their bytes differ; returns their relative paths.
    pub fn write(&self, o: &Object) -> Result<Vec<PathBuf>, CloneError> {
        let files = Self::files_of(o);
        let mut rels = Vec::with_capacity(files.len());
        for (rel, bytes) in files {
            write_if_changed(&self.root.join(&rel), &bytes)?;
            rels.push(rel);
        }
        Ok(rels)
    }

    /// Reads an object, or None when the tree does not hold it.
    pub fn read(&self, kind: Kind, path: &[String]) -> Result<Option<Object>, CloneError> {
        let main = self.root.join(Self::main_file(kind, path));
        let body = match read_json(&main) {
            Ok(body) => body,
            Err(CloneError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let optional = |ext: &str, cap: u64| -> Result<Option<String>, CloneError> {
            let p = self.root.join(Self::file(kind, path, ext));
            match limits::read_capped_regular_string(&p, cap, "a tree file") {
                Ok(t) => Ok(Some(t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(CloneError::Read { path: p, source }),
            }
        };
        // The file ends with one newline added on export; a view without text has no file (the
        // target will refuse it, alone).
        let text = if kind.has_text() {
            optional("sql", MAX_SQL_BYTES)?
                .map(|t| t.strip_suffix('\n').map(str::to_string).unwrap_or(t))
        } else {
            None
        };
        Ok(Some(Object {
            kind,
            path: path.to_vec(),
            body,
            text,
            wiki: optional("wiki.md", MAX_WIKI_BYTES)?,
        }))
    }

    /// Every object of the tree (kind, path), in file order; files lifeboat did not write (a
    /// README, .git) are passed over.
    pub fn objects(&self) -> impl Iterator<Item = Result<(Kind, Vec<String>), CloneError>> + '_ {
        ["catalog", "users"].into_iter().flat_map(move |top| {
            walkdir::WalkDir::new(self.root.join(top))
                .sort_by_file_name()
                .into_iter()
                .filter_map(move |entry| match entry {
                    Ok(e) if e.file_type().is_file() => {
                        let rel = e.path().strip_prefix(&self.root).ok()?;
                        match classify(rel)? {
                            (kind, path, FileRole::Main) => Some(Ok((kind, path))),
                            _ => None,
                        }
                    }
                    Ok(_) => None,
                    Err(e)
                        if e.io_error().map(|io| io.kind())
                            == Some(std::io::ErrorKind::NotFound) =>
                    {
                        None
                    }
                    Err(e) => Some(Err(CloneError::Tree {
                        path: self.root.join(top),
                        message: e.to_string(),
                    })),
                })
        })
    }

    /// Removes the files of objects that `covered` says this run was responsible for but did not
    /// write (`kept`), then the folders left empty. Returns how many files were removed.
    pub fn remove_stale(
        &self,
        kept: &Written,
        covered: &dyn Fn(Kind, &[String]) -> bool,
    ) -> Result<usize, CloneError> {
        let mut removed = 0;
        for top in ["catalog", "users"] {
            let dir = self.root.join(top);
            let mut stale = Vec::new();
            for e in walkdir::WalkDir::new(&dir)
                .into_iter()
                .filter_map(Result::ok)
            {
                if !e.file_type().is_file() {
                    continue;
                }
                let Ok(rel) = e.path().strip_prefix(&self.root) else {
                    continue;
                };
                // Half-written files of a run that was killed before its rename.
                let name = e.file_name().to_string_lossy();
                if name.starts_with('.') && name.contains(".tmp-") {
                    stale.push(e.path().to_path_buf());
                    continue;
                }
                if let Some((kind, path, _)) = classify(rel)
                    && covered(kind, &path)
                    && !kept.contains(rel)
                {
                    stale.push(e.path().to_path_buf());
                }
            }
            for p in stale {
                fs::remove_file(&p).map_err(|source| CloneError::Write {
                    path: p.clone(),
                    source,
                })?;
                removed += 1;
            }
            // Deepest first, so that parents empty out before they are looked at.
            let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(&dir)
                .min_depth(1)
                .contents_first(true)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_dir())
                .map(|e| e.path().to_path_buf())
                .collect();
            dirs.dedup();
            for d in dirs {
                // Fails (and is left) when not empty.
                let _ = fs::remove_dir(&d);
            }
        }
        Ok(removed)
    }
}

/// A JSON object file of the tree, refused when larger than any object lifeboat writes.
fn read_json(path: &Path) -> Result<Map<String, Value>, CloneError> {
    let bytes =
        limits::read_capped_regular(path, MAX_JSON_BYTES, "a tree file").map_err(|source| {
            CloneError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
    let bad = |message: String| CloneError::Tree {
        path: path.to_path_buf(),
        message,
    };
    limits::check_json_values(&bytes, MAX_JSON_VALUES, "an object's file").map_err(bad)?;
    serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a JSON object: {e}")))
}

/// Writes `bytes` to `path` (through a temporary file and a rename) unless it already holds them.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), CloneError> {
    // Compared only when the sizes agree: a large file there is never read whole.
    let same_size = fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64);
    if same_size && fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let werr = |source| CloneError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(werr)?;
    }
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    fs::write(&tmp, bytes).map_err(werr)?;
    fs::rename(&tmp, path).map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(path: &[&str], sql: &str) -> Object {
        Object {
            kind: Kind::View,
            path: path.iter().map(|s| s.to_string()).collect(),
            body: json!({"sqlContext": ["S"]}).as_object().unwrap().clone(),
            text: Some(sql.into()),
            wiki: Some("# Hello\n".into()),
        }
    }

    #[test]
    fn names_that_files_cannot_hold_round_trip() {
        for name in [
            "a/b",
            ".hidden",
            "..",
            "50%",
            "tab\there",
            "ünï",
            "",
            "a.view",
        ] {
            let e = encode(name);
            assert!(
                !e.contains('/') && !e.starts_with('.') && !e.is_empty(),
                "{e}"
            );
            assert_eq!(decode(&e).as_deref(), Some(name));
        }
    }

    #[test]
    fn an_object_round_trips_and_unchanged_files_are_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::create(&dir.path().join("t")).unwrap();
        let o = view(&["S", "f/x", "my.view"], "SELECT 1");
        let files = tree.write(&o).unwrap();
        assert_eq!(files[0], PathBuf::from("catalog/S/f%2Fx/my.view.view.json"));
        assert_eq!(tree.read(Kind::View, &o.path).unwrap().unwrap(), o);
        let main = tree.root.join(&files[0]);
        let before = fs::metadata(&main).unwrap().modified().unwrap();
        let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&main).unwrap());
        tree.write(&o).unwrap();
        let after = fs::metadata(&main).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&after), ino);
        assert_eq!(after.modified().unwrap(), before);
        let listed: Vec<_> = tree.objects().map(Result::unwrap).collect();
        assert_eq!(listed, vec![(Kind::View, o.path.clone())]);
    }

    #[test]
    fn stale_files_go_only_where_the_run_was_responsible() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::create(dir.path()).unwrap();
        let keep = tree.write(&view(&["S", "keep"], "SELECT 1")).unwrap();
        tree.write(&view(&["S", "sub", "gone"], "SELECT 2"))
            .unwrap();
        tree.write(&view(&["Other", "untouched"], "SELECT 3"))
            .unwrap();
        let mut kept = Written::default();
        keep.iter().for_each(|f| kept.add(f));
        fs::write(
            dir.path().join("catalog/Other/.untouched.view.json.tmp-99"),
            "{",
        )
        .unwrap();
        let removed = tree
            .remove_stale(&kept, &|_, p: &[String]| p[0] == "S")
            .unwrap();
        assert_eq!(
            removed, 4,
            "json, sql and wiki of S/sub/gone, and a killed run's temp file"
        );
        assert!(!dir.path().join("catalog/S/sub").exists());
        assert!(dir.path().join("catalog/Other/untouched.view.sql").exists());
        assert!(dir.path().join("catalog/S/keep.view.json").exists());
    }

    #[test]
    fn a_tree_with_a_symbolic_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::create(&dir.path().join("t")).unwrap();
        tree.write(&view(&["S", "v"], "SELECT 1")).unwrap();
        std::os::unix::fs::symlink("/etc", tree.root.join("catalog/Elsewhere")).unwrap();
        for err in [
            Tree::open(&tree.root).unwrap_err(),
            Tree::create(&tree.root).unwrap_err(),
        ] {
            assert!(err.to_string().contains("symbolic link"), "{err}");
        }
    }

    #[test]
    fn a_folder_with_foreign_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let err = Tree::create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a lifeboat export"), "{err}");
        assert!(Tree::open(dir.path()).is_err());
    }
}
