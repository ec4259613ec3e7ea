//! dremio-cloner's file (`cloner::import`) and an export tree read from disk (`Tree::open`,
//! `objects`, `read`, `scope`, and `cloner::export`, which reads every object of a tree).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lifeboat::clone::filter::Filter;
use lifeboat::dremio::clone::DremioTree as Tree;
use lifeboat::dremio::clone::Skip;
use lifeboat::dremio::clone::cloner;
use lifeboat::dremio::clone::model::{Kind, Object};
use proptest::prelude::*;
use proptest::sample::Index as Pick;
use serde_json::{Map, Value, json};

use crate::alloc::{MIB, peak};
use crate::harness::{bounded, fuzz};
use crate::inputs::{
    Bytes, Edit, JSON, Op, SQL, apply, apply_edits, edits, json_from, ops, or_bytes, text_from,
};

fn object(
    kind: Kind,
    path: &[&str],
    body: Value,
    text: Option<&str>,
    wiki: Option<&str>,
) -> Object {
    Object {
        kind,
        path: path.iter().map(|s| s.to_string()).collect(),
        body: body.as_object().cloned().unwrap_or_else(Map::new),
        text: text.map(str::to_string),
        wiki: wiki.map(str::to_string),
    }
}

/// One object of every kind, with the fields that matter to readers.
fn objects() -> Vec<Object> {
    vec![
        object(
            Kind::Source,
            &["lake"],
            json!({"type": "S3", "config": {"accessKey": "AKIA", "accessSecret": "$DREMIO_EXISTING_VALUE$", "propertyList": [{"name": "fs.s3a.secret.key", "value": "$DREMIO_EXISTING_VALUE$"}]}, "metadataPolicy": {"authTTLMs": 86400000}}),
            None,
            None,
        ),
        object(Kind::Space, &["Sales"], json!({}), None, Some("# Sales\n")),
        object(
            Kind::Folder,
            &["Sales", "Reports/2024"],
            json!({}),
            None,
            None,
        ),
        object(
            Kind::Dataset,
            &["lake", "trips", ".hidden"],
            json!({"format": {"type": "Parquet"}, "tags": ["pii", "gold"], "reflections": [{"name": "raw", "type": "RAW", "enabled": true, "displayFields": [{"name": "a"}]}]}),
            None,
            None,
        ),
        object(
            Kind::View,
            &["Sales", "Reports/2024", "monthly"],
            json!({"sqlContext": ["lake", "trips"]}),
            Some("SELECT * FROM lake.trips.\".hidden\" WHERE x > 1"),
            Some("Monthly 50%\n"),
        ),
        object(
            Kind::Function,
            &["Sales", "tax"],
            json!({"isScalar": true, "returnType": "DOUBLE"}),
            Some("x * 0.2"),
            None,
        ),
        object(
            Kind::User,
            &["alice"],
            json!({"firstName": "Alice", "email": "alice@example.com"}),
            None,
            None,
        ),
    ]
}

/// A tree holding [`objects`], made by lifeboat itself.
fn seed_tree(root: &Path) -> Tree {
    let tree = Tree::create(root).expect("a tree");
    for o in objects() {
        tree.write(&o).expect("an object is written");
    }
    tree.set_scope(&json!({"include": ["Sales/**"], "skip": ["tags"]}))
        .expect("a scope");
    tree
}

/// dremio-cloner files: lifeboat's own export of the seed tree (dremio-cloner's layout), and one
/// with every section dremio-cloner has ever written.
fn cloner_seeds() -> &'static (Vec<u8>, Vec<Value>) {
    static SEEDS: OnceLock<(Vec<u8>, Vec<Value>)> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let tree = seed_tree(&dir.path().join("tree"));
        let file = dir.path().join("cloner.json");
        cloner::export(&tree, &file, &Filter::default(), "http://localhost:9047/")
            .expect("the seed tree exports");
        let exported = std::fs::read(&file).expect("the export reads back");
        let as_value: Value = serde_json::from_slice(&exported).expect("the export is JSON");
        let every_section = json!({"data": [
            {"dremio_environment": [{"file_version": "0.2"}, {"base_url": "http://x/"}]},
            {"homes": [{"name": "@alice"}]},
            {"sources": [{"name": "lake", "type": "NAS", "entityType": "source", "config": {"password": "p"}, "accessControlList": {"users": [{"id": "u"}]}}]},
            {"spaces": [{"name": "Sales", "entityType": "space"}, {"path": ["Solo"]}]},
            {"folders": [{"path": ["Sales", "f"], "entityType": "folder"}, {"path": ["lake", "storage"]}, {"path": ["@alice", "mine"]}]},
            {"pds": [{"path": ["lake", "t"], "entityType": "dataset", "type": "PHYSICAL_DATASET"}]},
            {"vds": [{"path": ["Sales", "v"], "entityType": "dataset", "type": "VIRTUAL_DATASET", "sql": "SELECT 1", "sqlContext": []}, {"name": "nameless"}]},
            {"reflections": [{"path": ["lake", "t"], "name": "agg", "type": "AGGREGATION"}, {"path": ["gone"]}, {"name": "pathless"}]},
            {"tags": [{"path": ["lake", "t"], "tags": ["a"]}, {"path": ["Sales"], "tags": ["misplaced"]}]},
            {"wikis": [{"path": ["Sales", "v"], "text": "# v"}, {"path": ["lake", "t"], "text": ""}]},
            {"referenced_users": [{"name": "alice"}, {"userName": "bob", "userConfig": {"email": "b@x"}}, {}]},
            {"referenced_roles": [{"name": "r"}]}, {"referenced_groups": [{"name": "g"}]},
            {"queues": [{}]}, {"rules": [{}]}, {"votes": [{}]}, {"files": [{}]}, {"vds_parents": [{}]},
            {"sources": []}, {"made_by_the_future": []}
        ]});
        (exported, vec![as_value, every_section])
    })
}

fn filters() -> impl Strategy<Value = Filter> {
    prop_oneof![
        4 => Just(Filter::default()),
        1 => Just(Filter::new::<Skip>(&["Sales/**".to_string()], &[], &[])),
        1 => Just(Filter::new(&[], &["lake/**".to_string()], &[Skip::Reflections, Skip::Users])),
        1 => Just(Filter::new(&["**".to_string()], &[], &[Skip::Tags, Skip::Wikis, Skip::Promoted])),
    ]
}

fn cloner_file() -> impl Strategy<Value = Bytes> {
    let (exported, values) = cloner_seeds();
    let text = (Just(exported.clone()), ops()).prop_map(|(t, ops)| apply(&JSON, t, &ops));
    or_bytes(prop_oneof![json_from(values.clone()), text])
}

/// Every path under `dir`, relative to it.
fn listing(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().strip_prefix(dir).unwrap_or(e.path()).to_path_buf())
        .collect()
}

#[test]
fn cloner_file_import() {
    fuzz(
        "cloner_file_import",
        (cloner_file(), filters()),
        |(Bytes(bytes), filter)| {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let file = dir.path().join("cloner.json");
            std::fs::write(&file, &bytes).expect("the file is written");
            let root = dir.path().join("tree");
            let tree = Tree::create(&root).expect("a tree");
            let (imported, held) = peak(|| cloner::import(&file, &tree, &filter));
            // The text once, then one element's values at a time (up to ~85 bytes per byte of a
            // one-key object's text), and the reflections, tags and wikis waiting for their object.
            bounded("cloner import", held, bytes.len(), 8 * MIB, 100)?;
            let strays: Vec<PathBuf> = listing(dir.path())
                .into_iter()
                .filter(|p| p != Path::new("cloner.json") && !p.starts_with("tree"))
                .collect();
            crate::ensure!(
                strays.is_empty(),
                "import wrote outside its tree: {strays:?}"
            );
            if imported.is_ok() {
                let tree = Tree::open(&root);
                crate::ensure!(
                    tree.is_ok(),
                    "an imported tree does not open: {:?}",
                    tree.err()
                );
                let tree = tree.expect("checked");
                for item in tree.objects() {
                    let read = item.and_then(|(kind, path)| tree.read(kind, &path));
                    crate::ensure!(
                        read.is_ok(),
                        "an imported object does not read back: {read:?}"
                    );
                }
            }
            Ok(())
        },
    );
}

/// One change to a tree on disk.
#[derive(Debug, Clone)]
pub enum TreeOp {
    /// A file's JSON edited, then its text mutated.
    Rewrite(Pick, Vec<Edit>, Vec<Op>),
    Write(String, Vec<u8>),
    Link(String, String),
    Fifo(String),
    Remove(Pick),
}

fn rel_path() -> impl Strategy<Value = String> {
    let dirs = prop::sample::select(vec![
        "catalog",
        "catalog/Sales",
        "catalog/lake/trips",
        "users",
        "users/x",
        "catalog/%2E%2E",
        "catalog/a%2",
    ]);
    let names = prop::sample::select(vec![
        "v.view.json",
        "v.view.sql",
        "v.view.wiki.md",
        "f.function.json",
        "f.function.sql",
        "s.source.json",
        "u.user.json",
        "x.unknown.json",
        "%zz.view.json",
        "%+1.view.json",
        "%2F.space.json",
        ".hidden.view.json",
        "view.json",
        "monthly.view.sql",
        "..json",
        "lifeboat-clone.json",
    ]);
    (dirs, names).prop_map(|(d, n)| format!("{d}/{n}"))
}

fn tree_op() -> impl Strategy<Value = TreeOp> {
    prop_oneof![
        6 => (any::<Pick>(), edits(), ops()).prop_map(|(p, e, o)| TreeOp::Rewrite(p, e, o)),
        2 => (rel_path(), prop_oneof![Just(b"{}".to_vec()), Just(b"[]".to_vec()), prop::collection::vec(any::<u8>(), 0..64)])
            .prop_map(|(p, b)| TreeOp::Write(p, b)),
        1 => (rel_path(), prop::sample::select(vec!["/etc/passwd", "..", "../../outside", "v.view.json"]))
            .prop_map(|(p, t)| TreeOp::Link(p, t.to_string())),
        1 => rel_path().prop_map(TreeOp::Fifo),
        1 => any::<Pick>().prop_map(TreeOp::Remove),
    ]
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_path_buf())
        .collect();
    files.sort();
    files
}

fn apply_tree_op(root: &Path, op: &TreeOp) {
    let place = |rel: &str| {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::fs::remove_file(&p);
        p
    };
    match op {
        TreeOp::Rewrite(pick, edits, ops) => {
            let all = files(root);
            if all.is_empty() {
                return;
            }
            let f = &all[pick.index(all.len())];
            let old = std::fs::read(f).unwrap_or_default();
            let text = match serde_json::from_slice::<Value>(&old) {
                Ok(v) => serde_json::to_vec_pretty(&apply_edits(v, edits)).unwrap_or(old),
                Err(_) => old,
            };
            let _ = std::fs::write(f, apply(&JSON, text, ops));
        }
        TreeOp::Write(rel, bytes) => {
            let _ = std::fs::write(place(rel), bytes);
        }
        TreeOp::Link(rel, target) => {
            let _ = std::os::unix::fs::symlink(target, place(rel));
        }
        TreeOp::Fifo(rel) => {
            let _ = rustix::fs::mkfifoat(
                rustix::fs::CWD,
                place(rel),
                rustix::fs::Mode::from_raw_mode(0o600),
            );
        }
        TreeOp::Remove(pick) => {
            let all = files(root);
            if !all.is_empty() {
                let _ = std::fs::remove_file(&all[pick.index(all.len())]);
            }
        }
    }
}

fn tree_bytes(root: &Path) -> usize {
    files(root)
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len() as usize)
        .sum()
}

#[test]
fn clone_tree() {
    fuzz(
        "clone_tree",
        prop::collection::vec(tree_op(), 1..6),
        |ops| {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let root = dir.path().join("tree");
            seed_tree(&root);
            for op in &ops {
                apply_tree_op(&root, op);
            }
            let n = tree_bytes(&root);
            let out = dir.path().join("out.json");
            let (_, held) = peak(|| -> Result<(), lifeboat::clone::CloneError> {
                let tree = Tree::open(&root)?;
                let _ = tree.scope();
                for item in tree.objects() {
                    let (kind, path) = item?;
                    let _ = tree.read(kind, &path)?;
                }
                cloner::export(&tree, &out, &Filter::default(), "http://localhost:9047/")?;
                Ok(())
            });
            // One file at a time, each at most 4 MiB and 100,000 JSON values (up to ~85 bytes per
            // byte of a one-key object's text).
            bounded("clone tree", held, n, 8 * MIB, 100)
        },
    );
}

const SQL_SEEDS: &[&str] = &[
    "SELECT a.x, Sales.fns.tax(b.y) FROM lake.raw.\"trips 2024\" AS a JOIN \"Sales\".\"my view\" b ON a.id = b.id",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r, lake.t AT BRANCH main AS OF '2024-01-01'",
    "SELECT EXTRACT(YEAR FROM d), TRIM(BOTH ' ' FROM s) FROM TABLE(lake.fns.tf(1)) -- FROM not.this\n/* FROM nor.this */",
];

/// View SQL from a tree is scanned for the datasets it reads and rewritten by a mapping: the
/// scanner is hand-written, so it gets deep parentheses and WITHs too.
#[test]
fn view_sql() {
    fuzz(
        "view_sql",
        or_bytes(text_from(&SQL, SQL_SEEDS)),
        |Bytes(bytes)| {
            let sql = String::from_utf8_lossy(&bytes);
            let (_, held) = peak(|| {
                let tables = lifeboat::dremio::clone::sql::table_refs(&sql);
                let functions = lifeboat::dremio::clone::sql::function_refs(&sql);
                let renamed = lifeboat::dremio::clone::sql::rename_roots(&sql, &|root| {
                    (root.eq_ignore_ascii_case("lake")).then(|| "lake dr".to_string())
                });
                (tables.len(), functions.len(), renamed.len())
            });
            // sql.rs keeps a frame per open parenthesis, without a depth limit: up to ~290 bytes per
            // byte of `((((...`.
            bounded("view SQL", held, bytes.len(), 4 * MIB, 320)
        },
    );
}

/// One Druid object of every kind, at the paths an export writes them to.
fn druid_objects() -> Vec<lifeboat::druid::clone::model::Object> {
    use lifeboat::druid::clone::model::{self, Kind as D};
    let o = |kind, path: &[&str], body: Value| {
        model::object(
            kind,
            path.iter().map(|s| s.to_string()).collect(),
            body.as_object().cloned().unwrap_or_default(),
        )
    };
    let z = "MyBasicMetadataAuthorizer";
    vec![
        o(
            D::Rules,
            &["_default"],
            json!({"rules": [{"type": "loadForever", "tieredReplicants": {"_default_tier": 2}}]}),
        ),
        o(
            D::Rules,
            &["wiki"],
            json!({"rules": [{"type": "loadByPeriod", "period": "P1M", "tieredReplicants": {"hot": 1}}, {"type": "dropForever"}]}),
        ),
        o(
            D::DynamicConfig,
            &["coordinator"],
            json!({"maxSegmentsToMove": 100, "decommissioningNodes": ["h:8083"], "pauseCoordination": false}),
        ),
        o(
            D::WorkerConfig,
            &["overlord"],
            json!({"type": "default", "selectStrategy": {"type": "equalDistribution"}}),
        ),
        o(
            D::Lookup,
            &["__default", "country"],
            json!({"lookupExtractorFactory": {"type": "map", "map": {"US": "United States"}}}),
        ),
        o(
            D::CompactionCluster,
            &["compaction"],
            json!({"compactionTaskSlotRatio": 0.1, "maxCompactionTaskSlots": 4}),
        ),
        o(
            D::Compaction,
            &["wiki"],
            json!({"dataSource": "wiki", "skipOffsetFromLatest": "P2D"}),
        ),
        o(
            D::Supervisor,
            &["wiki"],
            json!({"type": "kafka", "spec": {"dataSchema": {"dataSource": "wiki"}, "ioConfig": {"topic": "t"}}, "suspended": false}),
        ),
        o(
            D::AuthnUser,
            &["MyBasicMetadataAuthenticator", "alice"],
            json!({}),
        ),
        o(
            D::Role,
            &[z, "roles", "reader"],
            json!({"permissions": [{"resource": {"name": "wiki", "type": "DATASOURCE"}, "action": "READ"}]}),
        ),
        o(
            D::AuthzUser,
            &[z, "users", "alice"],
            json!({"roles": ["reader"]}),
        ),
    ]
}

/// A Druid tree read from disk and turned into what a plan compares and an apply sends: every
/// object through the Druid schema (fields, references, the target's form), with host fields
/// mapped and supervisors both suspended and resumed.
#[test]
fn druid_tree() {
    use lifeboat::clone::cluster::Schema;
    use lifeboat::druid::clone::{DruidSchema, DruidTree};
    fuzz(
        "druid_tree",
        prop::collection::vec(tree_op(), 1..6),
        |ops| {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let root = dir.path().join("tree");
            let seed = DruidTree::create(&root).expect("a tree");
            for o in druid_objects() {
                seed.write(&o).expect("an object is written");
            }
            for op in &ops {
                apply_tree_op(&root, op);
            }
            let n = tree_bytes(&root);
            let (_, held) = peak(|| -> Result<(), lifeboat::clone::CloneError> {
                let tree = DruidTree::open(&root)?;
                for resume in [false, true] {
                    let mut schema = DruidSchema {
                        resume_supervisors: resume,
                        ..DruidSchema::default()
                    };
                    schema
                        .mapping
                        .host_fields
                        .insert("pauseCoordination".into(), json!(true));
                    for item in tree.objects() {
                        let (kind, path) = item?;
                        let Some(o) = tree.read(kind, &path)? else {
                            continue;
                        };
                        let _ = schema.own_fields(&o);
                        let _ = schema.references(&o);
                        let _ = schema.source_path(kind, &path);
                        let _ = schema.own_fields(&schema.to_target(o, &tree));
                    }
                }
                Ok(())
            });
            bounded("druid tree", held, n, 8 * MIB, 100)
        },
    );
}
