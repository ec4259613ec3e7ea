//! The export tree: one file per artefact, named by its path, made to live in git. The kinds say
//! which top folder holds them and whether they nest; for Dremio:
//!
//! ```text
//! lifeboat-clone.json                       {"format": "lifeboat-clone/1"}
//! catalog/Sales.space.json                  a space (its children under catalog/Sales/)
//! catalog/Sales/Reports.folder.json
//! catalog/Sales/Reports/monthly.view.json   stable fields, keys sorted, tags, reflections
//! catalog/Sales/Reports/monthly.view.sql    the view's SQL (the kind's text file)
//! catalog/Sales/Reports/monthly.view.wiki.md
//! catalog/lake.source.json                  secrets stay masked
//! users/alice.user.json                     a flat kind
//! ```
//! Names are percent-encoded where a file system would misread them (`/`, `\`, `%`, control
//! characters, a leading `.`). Files are only rewritten when their bytes change.

use std::collections::HashSet;
use std::fs;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, CONTROLS, percent_encode};
use serde_json::{Map, Value};

use super::CloneError;
use super::kind::{ArtefactKind, Object};
use crate::limits;

/// The marker file's name and its format string.
pub const MARKER: &str = "lifeboat-clone.json";
pub const FORMAT: &str = "lifeboat-clone/1";

/// The largest files of a tree read. A main file holds an object's fields (a dataset's with its
/// reflections): tens of KiB. The limits also bound memory, a JSON value costing up to ~350 bytes.
const MAX_JSON_BYTES: u64 = 4 << 20;
const MAX_JSON_VALUES: usize = 100_000;
/// An object's text (a generated view's SQL reaches a few hundred KiB). Dremio's SQL scanner
/// holds a frame per open parenthesis, so this also bounds its memory.
const MAX_SQL_BYTES: u64 = 4 << 20;
/// A wiki (Dremio keeps at most 100,000 characters).
const MAX_WIKI_BYTES: u64 = 1 << 20;

/// A tree on disk, holding the kinds `K`.
#[derive(Debug)]
pub struct Tree<K> {
    pub root: PathBuf,
    kinds: PhantomData<fn() -> K>,
}

impl<K> Clone for Tree<K> {
    fn clone(&self) -> Self {
        Tree {
            root: self.root.clone(),
            kinds: PhantomData,
        }
    }
}

/// ASCII that a file name must not hold as it is: control characters, separators and the escape
/// itself. Other characters (non-ASCII letters included) stay readable in git; C1 controls are
/// escaped apart (see [`encode`]).
const FILE_NAME: &AsciiSet = &CONTROLS.add(b'/').add(b'\\').add(b'%');

/// Encodes one path component as a file name component. Trees in git depend on these bytes:
/// the rule must never change.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut buf = [0u8; 4];
    for (i, c) in name.chars().enumerate() {
        if i == 0 && c == '.' {
            // `.`, `..` and hidden files.
            out.push_str("%2E");
        } else if c.is_ascii() || c.is_control() {
            // Non-ASCII bytes are always escaped: that covers the C1 controls.
            out.extend(percent_encode(
                c.encode_utf8(&mut buf).as_bytes(),
                FILE_NAME,
            ));
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
    // Two hex digits after every `%`: a lenient decoder passes a stray `%` through, and two
    // file names would then decode to one object.
    let b = name.as_bytes();
    let escapes_ok = b
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == b'%')
        .all(|(i, _)| {
            b.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        });
    if !escapes_ok {
        return None;
    }
    percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// What a file of the tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRole {
    Main,
    Text,
    Wiki,
}

/// The object (kind, path) and role of a file, from its path relative to the root.
pub fn classify<K: ArtefactKind>(rel: &Path) -> Option<(K, Vec<String>, FileRole)> {
    let comps: Vec<&str> = rel
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()?;
    let (top, rest) = comps.split_first()?;
    let (file, dirs) = rest.split_last()?;
    let (stem, role, ext) = if let Some(s) = file.strip_suffix(".wiki.md") {
        (s, FileRole::Wiki, None)
    } else if let Some(s) = file.strip_suffix(".json") {
        (s, FileRole::Main, None)
    } else {
        let (s, ext) = file.rsplit_once('.')?;
        (s, FileRole::Text, Some(ext))
    };
    let (name, kind) = stem.rsplit_once('.')?;
    let kind = K::from_word(kind)?;
    let spec = kind.spec();
    if *top != spec.folder || !spec.nested && !dirs.is_empty() {
        return None;
    }
    if role == FileRole::Text && spec.text != ext {
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

/// The top folders of the kinds, each once.
fn folders<K: ArtefactKind>() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for k in K::all() {
        if !v.contains(&k.spec().folder) {
            v.push(k.spec().folder);
        }
    }
    v
}

impl<K: ArtefactKind> Tree<K> {
    fn at(root: &Path) -> Tree<K> {
        Tree {
            root: root.to_path_buf(),
            kinds: PhantomData,
        }
    }

    /// Opens a tree for writing: an empty or missing folder becomes a tree; a folder that holds
    /// anything else is refused (lifeboat never writes into, or wipes, a folder it did not make).
    pub fn create(root: &Path) -> Result<Tree<K>, CloneError> {
        let tree = Self::at(root);
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
    pub fn open(root: &Path) -> Result<Tree<K>, CloneError> {
        let tree = Self::at(root);
        tree.check_marker()?;
        tree.check_no_links()?;
        Ok(tree)
    }

    /// A tree holds plain files and folders only: a symbolic link (e.g. committed to git) would
    /// make lifeboat write outside the tree, or read any file into a view's SQL.
    fn check_no_links(&self) -> Result<(), CloneError> {
        for top in folders::<K>() {
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
    pub fn main_file(kind: K, path: &[String]) -> PathBuf {
        Self::file(kind, path, "json")
    }

    fn file(kind: K, path: &[String], ext: &str) -> PathBuf {
        let mut p = PathBuf::from(kind.spec().folder);
        let (last, dirs) = path.split_last().expect("an object has a name");
        for d in dirs {
            p.push(encode(d));
        }
        p.push(format!("{}.{}.{ext}", encode(last), kind.word()));
        p
    }

    /// Whether the tree holds an object of this kind at `path`.
    pub fn has(&self, kind: K, path: &[String]) -> bool {
        !path.is_empty() && self.root.join(Self::main_file(kind, path)).exists()
    }

    /// The files (relative path, bytes) that represent an object.
    pub fn files_of(o: &Object<K>) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = vec![(Self::main_file(o.kind, &o.path), render(&o.body))];
        if let (Some(t), Some(ext)) = (&o.text, o.kind.spec().text) {
            let mut bytes = t.clone().into_bytes();
            if !t.ends_with('\n') {
                bytes.push(b'\n');
            }
            files.push((Self::file(o.kind, &o.path, ext), bytes));
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
    pub fn write(&self, o: &Object<K>) -> Result<Vec<PathBuf>, CloneError> {
        let files = Self::files_of(o);
        let mut rels = Vec::with_capacity(files.len());
        for (rel, bytes) in files {
            write_if_changed(&self.root.join(&rel), &bytes)?;
            rels.push(rel);
        }
        Ok(rels)
    }

    /// Reads an object, or None when the tree does not hold it.
    pub fn read(&self, kind: K, path: &[String]) -> Result<Option<Object<K>>, CloneError> {
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
        let text = if let Some(ext) = kind.spec().text {
            optional(ext, MAX_SQL_BYTES)?
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
    pub fn objects(&self) -> impl Iterator<Item = Result<(K, Vec<String>), CloneError>> + '_ {
        folders::<K>().into_iter().flat_map(move |top| {
            walkdir::WalkDir::new(self.root.join(top))
                .sort_by_file_name()
                .into_iter()
                .filter_map(move |entry| match entry {
                    Ok(e) if e.file_type().is_file() => {
                        let rel = e.path().strip_prefix(&self.root).ok()?;
                        match classify::<K>(rel)? {
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
        covered: &dyn Fn(K, &[String]) -> bool,
    ) -> Result<usize, CloneError> {
        let mut removed = 0;
        for top in folders::<K>() {
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
                if let Some((kind, path, _)) = classify::<K>(rel)
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
    use crate::clone::notes::{Kind, obj};
    use serde_json::json;

    fn note(path: &str, text: &str) -> Object<Kind> {
        let mut o = obj(Kind::Note, path, json!({"by": "ann"}), Some(text));
        o.wiki = Some("# Hello\n".into());
        o
    }

    /// The encoder trees were written with before the percent-encoding crate: names must keep
    /// their files.
    fn encode_before(name: &str) -> String {
        let mut out = String::new();
        for (i, c) in name.chars().enumerate() {
            if matches!(c, '/' | '\\' | '%') || c.is_control() || (i == 0 && c == '.') {
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

    #[test]
    fn tricky_names_encode_to_the_same_files_as_before_and_round_trip() {
        let cases = [
            ("a/b", "a%2Fb"),
            ("back\\slash", "back%5Cslash"),
            ("50%", "50%25"),
            ("tab\there", "tab%09here"),
            ("nul\0", "nul%00"),
            ("del\u{7f}", "del%7F"),
            ("c1\u{85}", "c1%C2%85"),
            (".", "%2E"),
            ("..", "%2E."),
            (".hidden", "%2Ehidden"),
            ("a.view", "a.view"),
            ("ünï 東京", "ünï 東京"),
            ("", "%00"),
            ("sp ace+plus?q#h", "sp ace+plus?q#h"),
        ];
        for (name, file) in cases {
            assert_eq!(encode(name), file, "{name:?}");
            assert_eq!(encode_before(name), file, "{name:?}");
            assert_eq!(decode(file).as_deref(), Some(name), "{file:?}");
        }
        for bad in ["50%", "%zz", "%4", "%+1", "%C3"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_name_encodes_as_before(name in "\\PC*|[\\x00-\\x1f\\x7f-\\u{9f}./\\\\%a]{0,8}") {
            let e = encode(&name);
            proptest::prop_assert_eq!(&e, &encode_before(&name));
            proptest::prop_assert!(!e.contains('/') && !e.starts_with('.') && !e.is_empty());
            // A lone NUL and the empty name share `%00`; names never hold NUL.
            proptest::prop_assume!(name != "\0");
            proptest::prop_assert_eq!(decode(&e), Some(name));
        }
    }

    #[test]
    fn an_object_round_trips_and_unchanged_files_are_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::create(&dir.path().join("t")).unwrap();
        let mut o = note("S/f/my.note", "see S/y");
        o.path[1] = "f/x".into();
        let files = tree.write(&o).unwrap();
        assert_eq!(
            files,
            [
                PathBuf::from("notes/S/f%2Fx/my.note.note.json"),
                PathBuf::from("notes/S/f%2Fx/my.note.note.txt"),
                PathBuf::from("notes/S/f%2Fx/my.note.note.wiki.md"),
            ]
        );
        assert_eq!(tree.read(Kind::Note, &o.path).unwrap().unwrap(), o);
        let main = tree.root.join(&files[0]);
        let before = fs::metadata(&main).unwrap().modified().unwrap();
        let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&main).unwrap());
        tree.write(&o).unwrap();
        let after = fs::metadata(&main).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&after), ino);
        assert_eq!(after.modified().unwrap(), before);
        let author = obj(Kind::Author, "ann", json!({}), None);
        tree.write(&author).unwrap();
        let listed: Vec<_> = tree.objects().map(Result::unwrap).collect();
        assert_eq!(
            listed,
            vec![(Kind::Note, o.path.clone()), (Kind::Author, author.path)]
        );
    }

    #[test]
    fn files_in_the_wrong_place_are_not_objects() {
        let c = |p: &str| classify::<Kind>(Path::new(p)).map(|(k, path, r)| (k, path.join("/"), r));
        assert_eq!(
            c("notes/a/b.note.txt"),
            Some((Kind::Note, "a/b".into(), FileRole::Text))
        );
        assert_eq!(c("notes/a/b.note.sql"), None, "a note's text is .txt");
        assert_eq!(c("notes/a.book.txt"), None, "a book has no text");
        assert_eq!(c("authors/x/ann.author.json"), None, "authors are flat");
        assert_eq!(c("authors/ann.note.json"), None, "notes live under notes/");
        assert_eq!(c("notes/a%zz.book.json"), None);
        assert_eq!(c("README.md"), None);
    }

    #[test]
    fn stale_files_go_only_where_the_run_was_responsible() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::create(dir.path()).unwrap();
        let keep = tree.write(&note("S/keep", "1")).unwrap();
        tree.write(&note("S/sub/gone", "2")).unwrap();
        tree.write(&note("Other/untouched", "3")).unwrap();
        let mut kept = Written::default();
        keep.iter().for_each(|f| kept.add(f));
        fs::write(
            dir.path().join("notes/Other/.untouched.note.json.tmp-99"),
            "{",
        )
        .unwrap();
        let removed = tree
            .remove_stale(&kept, &|_, p: &[String]| p[0] == "S")
            .unwrap();
        assert_eq!(
            removed, 4,
            "json, text and wiki of S/sub/gone, and a killed run's temp file"
        );
        assert!(!dir.path().join("notes/S/sub").exists());
        assert!(dir.path().join("notes/Other/untouched.note.txt").exists());
        assert!(dir.path().join("notes/S/keep.note.json").exists());
    }

    #[test]
    fn a_tree_with_a_symbolic_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::<Kind>::create(&dir.path().join("t")).unwrap();
        tree.write(&note("S/v", "1")).unwrap();
        std::os::unix::fs::symlink("/etc", tree.root.join("notes/Elsewhere")).unwrap();
        for err in [
            Tree::<Kind>::open(&tree.root).unwrap_err(),
            Tree::<Kind>::create(&tree.root).unwrap_err(),
        ] {
            assert!(err.to_string().contains("symbolic link"), "{err}");
        }
    }

    #[test]
    fn a_folder_with_foreign_files_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let err = Tree::<Kind>::create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a lifeboat export"), "{err}");
        assert!(Tree::<Kind>::open(dir.path()).is_err());
    }
}
