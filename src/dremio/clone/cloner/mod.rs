//! Reads and writes dremio-cloner's single-file JSON export, so that its users switch in one step.

// The file is `{ "data": [` then one-key items (`{"sources": [...]}`, `{"vds": [...]}`, ...)
// separated by `",\n"`, then ` ] }`; each item is Python's `json.dump(item, indent=4,
// sort_keys=True)`. Catalog elements are Dremio REST v3 entities, reflections carry the `path` of
// their dataset, tags and wikis carry `entity_id` and `path`.

mod export;
mod import;
mod pyjson;

use crate::clone::filter::Filter;
use crate::dremio::clone::model::Kind;

pub use export::export;
pub use import::{Imported, MAX_FILE_BYTES, import};

/// The `file_version` dremio-cloner has written since 2021 (and still writes).
const FILE_VERSION: &str = "0.3";

/// Whether `kind` at `path` is written, by import and export alike: a container when something
/// below it is wanted, anything else when selected.
fn included(filter: &Filter, kind: Kind, path: &[String]) -> bool {
    if kind.is_container() {
        filter.keeps_container(kind, path)
    } else {
        filter.selects(kind, path)
    }
}

#[cfg(test)]
mod tests {
    use super::export::*;
    use super::import::*;
    use super::pyjson::*;
    use super::*;
    use crate::clone::CloneError;
    use crate::dremio::clone::DremioTree as Tree;
    use crate::dremio::clone::Skip;
    use crate::dremio::clone::model::{DremioObject, MASK, Object};
    use serde_json::{Value, json};
    use std::collections::BTreeMap;
    use std::fs;
    use std::path::{Path, PathBuf};

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
