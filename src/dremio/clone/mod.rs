//! Dremio's side of cloning: its artefact kinds and REST conversions ([`model`]), the walk of a
//! live cluster ([`export`]), applying one item over REST ([`apply`]), the SQL references of
//! views and UDFs ([`sql`]), renames and secrets ([`mapping`]), dremio-cloner's file
//! ([`cloner`]). [`Dremio`] and [`cluster::DremioCluster`] plug them into the engine
//! (`crate::clone`).

pub mod apply;
pub mod cloner;
pub mod cluster;
mod engine;
pub mod export;
pub mod mapping;
pub mod model;
pub mod sql;

use serde_json::{Value, json};

use crate::clone::cluster::Schema;
use crate::clone::kind::PartValue;
use crate::clone::tree::Tree;
use mapping::Mapping;
use model::{DremioObject, Kind, Object, Part};

pub use cluster::DremioCluster;

/// A clone tree of Dremio's artefacts.
pub type DremioTree = Tree<Kind>;

/// Parts of the catalog a run can leave out entirely (`--skip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Users,
    Reflections,
    Wikis,
    Tags,
    /// Promoted datasets: sources are then not walked (their storage may hold millions of files).
    Promoted,
    Functions,
}

impl Skip {
    /// The word of `--skip`, of the kinds' and parts' specs, and of the tree's recorded scope.
    pub fn word(self) -> &'static str {
        match self {
            Skip::Users => "users",
            Skip::Reflections => "reflections",
            Skip::Wikis => "wikis",
            Skip::Tags => "tags",
            Skip::Promoted => "promoted",
            Skip::Functions => "functions",
        }
    }
}

impl From<Skip> for &'static str {
    fn from(s: Skip) -> &'static str {
        s.word()
    }
}

/// Dremio's rules over a tree, with the run's renames.
#[derive(Debug, Default, Clone)]
pub struct Dremio {
    pub mapping: Mapping,
}

/// Whether the tree holds something a query can read at `path` (a view, a promoted dataset or
/// a UDF).
pub fn has_dataset(tree: &DremioTree, path: &[String]) -> bool {
    [Kind::View, Kind::Dataset, Kind::Function]
        .into_iter()
        .any(|k| tree.has(k, path))
}

impl Schema for Dremio {
    type Kind = Kind;
    type Part = Part;

    fn own_fields(&self, o: &Object) -> serde_json::Map<String, Value> {
        DremioObject::own_fields(o)
    }

    fn parts(&self, o: &Object) -> Vec<(Part, PartValue)> {
        if o.kind == Kind::User {
            return vec![];
        }
        let mut parts = vec![(
            Part::Wiki,
            PartValue::Document(o.wiki.clone().map(Value::String)),
        )];
        if o.kind.is_dataset() {
            let tags = o.tags();
            parts.push((
                Part::Tags,
                PartValue::Document((!tags.is_empty()).then(|| json!(tags))),
            ));
            let by_name = o
                .reflections()
                .into_iter()
                .map(|r| {
                    let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
                    (name.to_string(), r)
                })
                .collect();
            parts.push((Part::Reflection, PartValue::Members(by_name)));
        }
        parts
    }

    /// The datasets and UDFs the SQL reads, as candidate paths (context-relative first).
    fn references(&self, o: &Object) -> Vec<Vec<Vec<String>>> {
        let Some(text) = &o.text else {
            return vec![];
        };
        let ctx: Vec<String> = o
            .body
            .get("sqlContext")
            .and_then(model::str_list)
            .unwrap_or_default();
        sql::table_refs(text)
            .into_iter()
            .chain(sql::function_refs(text))
            .map(|r| {
                let mut c = Vec::new();
                if !ctx.is_empty() {
                    let mut p = ctx.clone();
                    p.extend(r.parts.iter().cloned());
                    c.push(p);
                }
                c.push(r.parts);
                c
            })
            .collect()
    }

    fn to_target(&self, o: Object, source: &DremioTree) -> Object {
        self.mapping.map_object(o, &|p| has_dataset(source, p))
    }

    fn source_path(&self, kind: Kind, path: &[String]) -> Vec<String> {
        self.mapping.unmap_path(kind, path)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::clone::kind::key;

    fn obj(kind: Kind, path: &[&str], text: Option<&str>) -> Object {
        Object {
            kind,
            path: path.iter().map(|s| s.to_string()).collect(),
            body: serde_json::Map::new(),
            text: text.map(str::to_string),
            wiki: Some("# w\n".into()),
        }
    }

    /// Trees already in git must keep reading: the files of each kind, as lifeboat has always
    /// named them.
    #[test]
    fn the_tree_layout_is_unchanged() {
        let file = |o: &Object| {
            DremioTree::files_of(o)
                .into_iter()
                .map(|(p, _)| p)
                .collect::<Vec<PathBuf>>()
        };
        let names = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        let view = obj(Kind::View, &["Sales", "f/x", ".v"], Some("SELECT 1"));
        assert_eq!(
            file(&view),
            names(&[
                "catalog/Sales/f%2Fx/%2Ev.view.json",
                "catalog/Sales/f%2Fx/%2Ev.view.sql",
                "catalog/Sales/f%2Fx/%2Ev.view.wiki.md"
            ])
        );
        let udf = obj(Kind::Function, &["Sales", "tax"], Some("x * 2"));
        assert_eq!(
            file(&udf)[1],
            PathBuf::from("catalog/Sales/tax.function.sql")
        );
        let user = obj(Kind::User, &["alice"], None);
        assert_eq!(file(&user)[0], PathBuf::from("users/alice.user.json"));
        let ds = obj(Kind::Dataset, &["lake", "trips", "2024"], None);
        assert_eq!(
            file(&ds)[0],
            PathBuf::from("catalog/lake/trips/2024.dataset.json")
        );
        assert_eq!(
            file(&obj(Kind::Source, &["lake"], None))[0],
            PathBuf::from("catalog/lake.source.json")
        );
    }

    #[test]
    fn catalog_names_ignore_case_and_users_have_their_own_namespace() {
        assert_eq!(
            key(Kind::View, &["Sales", "V"]),
            key(Kind::Folder, &["SALES", "v"])
        );
        assert_ne!(key(Kind::User, &["sales"]), key(Kind::Space, &["sales"]));
    }

    #[test]
    fn datasets_have_wiki_tags_and_reflections_other_objects_a_wiki_users_nothing() {
        let d = Dremio::default();
        let mut v = obj(Kind::View, &["S", "v"], Some("SELECT * FROM lake.t"));
        v.set_tags(vec!["a".into()]);
        v.set_reflections(&[json!({"name": "r", "type": "RAW"})]);
        let parts = d.parts(&v);
        assert_eq!(
            parts[0],
            (Part::Wiki, PartValue::Document(Some(json!("# w\n"))))
        );
        assert_eq!(
            parts[1],
            (Part::Tags, PartValue::Document(Some(json!(["a"]))))
        );
        assert!(matches!(&parts[2], (Part::Reflection, PartValue::Members(m)) if m[0].0 == "r"));
        assert!(!d.own_fields(&v).contains_key("tags"));
        assert_eq!(d.own_fields(&v)["sql"], "SELECT * FROM lake.t");
        assert_eq!(d.parts(&obj(Kind::Space, &["S"], None)).len(), 1);
        assert!(d.parts(&obj(Kind::User, &["u"], None)).is_empty());
        v.body.insert("sqlContext".into(), json!(["S"]));
        assert_eq!(
            d.references(&v),
            vec![vec![
                vec!["S".to_string(), "lake".into(), "t".into()],
                vec!["lake".to_string(), "t".into()]
            ]]
        );
    }
}
