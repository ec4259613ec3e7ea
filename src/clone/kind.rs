//! How a cluster kind describes its artefacts to the engine: each kind of object and each part
//! applied apart from its object (a static description), the object as the tree holds it, and
//! the identity of an object in indexes.

use std::fmt::Debug;
use std::hash::Hash;

use serde_json::{Map, Value};

/// One kind of artefact (a view, a user, a supervisor...), described by [`KindSpec`].
pub trait ArtefactKind: Copy + Eq + Ord + Hash + Debug + Send + Sync + 'static {
    /// Every kind, in the order in which reports list their counts.
    fn all() -> &'static [Self];
    fn spec(self) -> &'static KindSpec;

    fn word(self) -> &'static str {
        self.spec().word
    }

    fn from_word(w: &str) -> Option<Self> {
        Self::all().iter().copied().find(|k| k.word() == w)
    }
}

/// What the engine knows of a kind.
#[derive(Debug)]
pub struct KindSpec {
    /// In file names (`x.<word>.json`), reports and JSON.
    pub word: &'static str,
    /// The tree's top folder holding the kind. Kinds of one folder share a namespace: one name
    /// is one object whatever its kind (a kind clash is reported, not planned).
    pub folder: &'static str,
    /// Objects live in folders named by their path (false: flat, directly in `folder`).
    pub nested: bool,
    /// The extension of the file holding the object's text (SQL, a script), if it has one.
    pub text: Option<&'static str>,
    /// A container holds other objects: its deletion takes them along.
    pub container: bool,
    /// Mirror mode may delete objects of this kind.
    pub deletable: bool,
    /// The `--skip` word that leaves this kind out.
    pub skip: Option<&'static str>,
    /// `--skip` words of kinds a container may hold: deleting it would delete what they protect.
    pub holds: &'static [&'static str],
    /// Filter globs see the objects under this first component (e.g. `@users`).
    pub glob_prefix: Option<&'static str>,
    /// Names are compared without case (as Dremio's namespace does).
    pub fold_case: bool,
    /// What an object waits for besides its references.
    pub parent: Parent,
    /// Order of application and of the report (parts have ranks too).
    pub rank: u8,
}

/// Which container an object waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    /// The object one level up (if the plan has it).
    Direct,
    /// The first component only: the levels between are not objects of the plan (e.g. a
    /// source's storage folders).
    Root,
    None,
}

/// A part of an object applied apart from it (a wiki, tags, an index definition), described by
/// [`PartSpec`].
pub trait PartKind: Copy + Eq + Ord + Hash + Debug + Send + Sync + 'static {
    fn spec(self) -> &'static PartSpec;

    fn word(self) -> &'static str {
        self.spec().word
    }
}

#[derive(Debug)]
pub struct PartSpec {
    pub word: &'static str,
    /// The `--skip` word that leaves these parts out.
    pub skip: &'static str,
    pub rank: u8,
}

/// The value of a part as an object of the tree holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum PartValue {
    /// One document that is set or cleared (a wiki, a tag list); None when empty.
    Document(Option<Value>),
    /// Named members created, updated and deleted one by one (reflections), by name.
    Members(Vec<(String, Map<String, Value>)>),
}

/// One artefact as the tree stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Object<K> {
    pub kind: K,
    /// Its path; a flat kind's is `[name]`.
    pub path: Vec<String>,
    /// Stable fields (never ids, versions or timestamps), keys sorted (serde_json's map is ordered).
    pub body: Map<String, Value>,
    /// The text in its own file (SQL), for kinds that have one.
    pub text: Option<String>,
    /// Markdown documentation in its own file.
    pub wiki: Option<String>,
}

/// A path in one allocation: its components joined by U+001F (which names cannot hold), so that
/// it sorts like the list of its components. A plan holds one or two per object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CatPath(Box<str>);

impl CatPath {
    pub fn new<S: AsRef<str>>(parts: &[S]) -> CatPath {
        let v: Vec<&str> = parts.iter().map(AsRef::as_ref).collect();
        CatPath(v.join("\u{1f}").into_boxed_str())
    }

    pub fn parts(&self) -> Vec<&str> {
        self.0.split('\u{1f}').collect()
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.split('\u{1f}').map(str::to_string).collect()
    }

    /// The first component (a source, space or user name).
    pub fn root(&self) -> &str {
        self.0.split('\u{1f}').next().unwrap_or_default()
    }

    /// `a/b/c`.
    pub fn label(&self) -> String {
        self.0.replace('\u{1f}', "/")
    }
}

/// The identity of an object in indexes: a digest of its namespace and path (without case where
/// the kind says so). 16 bytes however long the path, so that indexes of a large catalog stay
/// small; a collision of 128-bit digests is not a practical concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; 16]);

/// The key of an object: kinds of one folder share a namespace.
pub fn key<K: ArtefactKind, S: AsRef<str>>(kind: K, path: &[S]) -> Key {
    use sha2::Digest;
    let spec = kind.spec();
    let mut h = sha2::Sha256::new();
    h.update(spec.folder.as_bytes());
    h.update(b"\x1f\x1f");
    for (i, p) in path.iter().enumerate() {
        if i > 0 {
            h.update(b"\x1f");
        }
        if spec.fold_case {
            h.update(p.as_ref().to_lowercase().as_bytes());
        } else {
            h.update(p.as_ref().as_bytes());
        }
    }
    let d = h.finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    Key(k)
}

/// The names of the fields that differ between two maps (recursively dotted, e.g.
/// `config.hostname`), sorted.
pub fn differing_fields(a: &Map<String, Value>, b: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    diff_into(a, b, "", &mut out);
    out.sort();
    out
}

fn diff_into(a: &Map<String, Value>, b: &Map<String, Value>, at: &str, out: &mut Vec<String>) {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let here = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        match (a.get(k), b.get(k)) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => diff_into(x, y, &here, out),
            (x, y) if x != y => out.push(here),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differing_fields_are_dotted_and_sorted() {
        let a = json!({"x": 1, "c": {"h": "a", "p": 1}, "only_a": true});
        let b = json!({"x": 1, "c": {"h": "b", "p": 1}, "only_b": true});
        assert_eq!(
            differing_fields(a.as_object().unwrap(), b.as_object().unwrap()),
            vec!["c.h", "only_a", "only_b"]
        );
    }

    #[test]
    fn catalog_paths_sort_like_their_components() {
        let p = |s: &str| CatPath::new(&s.split('/').collect::<Vec<_>>());
        let mut v = [p("a b"), p("a/x"), p("a"), p("A/z")];
        v.sort();
        let labels: Vec<String> = v.iter().map(CatPath::label).collect();
        assert_eq!(labels, vec!["A/z", "a", "a/x", "a b"]);
        assert_eq!(p("s/f/v").root(), "s");
        assert_eq!(p("s/f/v").parts(), vec!["s", "f", "v"]);
    }
}
