//! Catalog, sources (masked secrets), views (dependency checks), reflections, wiki and tags,
//! their survival through backup/restore, and the backup fault injection.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{ADMIN, Api, id, pds, tag};
use dremio_sim::catalog::{MASK, table_refs};
use dremio_sim::client::Response;
use dremio_sim::store::Store;
use serde_json::{Value, json};

#[test]
fn spaces_folders_update_delete_and_paging() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    let sp = api.space("Sales");
    assert_eq!(sp["entityType"], "space");
    assert_eq!(sp["name"], "Sales");
    assert_eq!(sp["children"], json!([]));
    assert!(sp["createdAt"].as_i64().is_some());
    // duplicates (case-insensitive) refused
    let r = api.post(
        "/api/v3/catalog",
        json!({"entityType": "space", "name": "sales"}),
    );
    assert_eq!(r.status, 409);
    // folder: parent must exist
    let r = api.post(
        "/api/v3/catalog",
        json!({"entityType": "folder", "path": ["Sales", "nope", "x"]}),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(Api::err(&r), "Could not find entity with path [Sales.nope]");
    for n in ["e", "b", "d", "a", "c"] {
        let f = api.folder(&["Sales", n]);
        assert_eq!(f["entityType"], "folder");
        assert_eq!(f["path"], json!(["Sales", n]));
    }
    let deep = api.folder(&["Sales", "a", "deep"]);

    // top level: items with the reference's fields
    let root = api.ok("GET", "/api/v3/catalog", None);
    let it = &root["data"][0];
    assert_eq!(it["id"], sp["id"]);
    assert_eq!(it["path"], json!(["Sales"]));
    assert_eq!(it["type"], "CONTAINER");
    assert_eq!(it["containerType"], "SPACE");
    assert_eq!(it["tag"], sp["tag"]);
    assert!(it["createdAt"].is_i64());

    // by id and by path agree; children are items
    let by_id = api.ok("GET", &format!("/api/v3/catalog/{}", id(&sp)), None);
    let by_path = api.ok("GET", "/api/v3/catalog/by-path/sales", None);
    assert_eq!(by_id, by_path);
    let names: Vec<&str> = by_id["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"][1].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    assert_eq!(by_id["children"][0]["containerType"], "FOLDER");
    assert!(by_id.get("nextPageToken").is_none());
    let d = api.ok("GET", "/api/v3/catalog/by-path/Sales/a/deep", None);
    assert_eq!(d["id"], deep["id"]);

    // paging
    let mut seen = vec![];
    let mut url = format!("/api/v3/catalog/{}?maxChildren=2", id(&sp));
    let mut pages = 0;
    loop {
        let v = api.ok("GET", &url, None);
        pages += 1;
        let kids = v["children"].as_array().unwrap();
        assert!(kids.len() <= 2);
        seen.extend(
            kids.iter()
                .map(|c| c["path"][1].as_str().unwrap().to_string()),
        );
        match v["nextPageToken"].as_str() {
            Some(t) => url = format!("/api/v3/catalog/{}?maxChildren=2&pageToken={t}", id(&sp)),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    let r = api.get(&format!("/api/v3/catalog/{}?maxChildren=x", id(&sp)));
    assert_eq!(r.status, 400);
    let r = api.get(&format!("/api/v3/catalog/{}?pageToken=zz", id(&sp)));
    assert_eq!(r.status, 400);

    // update needs the current tag, and changes it
    let url = format!("/api/v3/catalog/{}", id(&sp));
    let r = api.put(
        &url,
        json!({"entityType": "space", "name": "Sales", "tag": "stale"}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let r = api.put(&url, json!({"entityType": "space", "name": "Sales"}));
    assert_eq!(r.status, 409);
    let up = api.ok(
        "PUT",
        &url,
        Some(json!({"entityType": "space", "name": "Sales", "tag": tag(&sp)})),
    );
    assert_ne!(up["tag"], sp["tag"]);
    let r = api.put(&url, json!({"name": "Other", "tag": tag(&up)}));
    assert_eq!(r.status, 400);
    assert_eq!(
        api.put(&url, json!({"name": "Sales", "tag": tag(&sp)}))
            .status,
        409
    );

    // delete: wrong tag 409, then removes the subtree
    let r = api.call("DELETE", &format!("{url}?tag={}", tag(&sp)), None);
    assert_eq!(r.status, 409);
    let r = api.call("DELETE", &format!("{url}?tag={}", tag(&up)), None);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(api.get(&url).status, 404);
    assert_eq!(api.get("/api/v3/catalog/by-path/Sales/a/deep").status, 404);
    assert_eq!(api.ok("GET", "/api/v3/catalog", None)["data"], json!([]));
    assert_eq!(
        api.call("DELETE", &format!("/api/v3/catalog/{}", id(&deep)), None)
            .status,
        404
    );
}

fn source_body() -> Value {
    json!({
        "entityType": "source", "name": "pg", "type": "POSTGRES",
        "config": {"hostname": "db.example", "port": "5432", "username": "etl",
                   "password": "s3cr3t", "useSsl": false,
                   "nested": {"accessKey": "AKIA1", "secretKey": "sk1", "region": "eu"}},
        "metadataPolicy": {"authTTLMs": 86400000}
    })
}

fn stored(dir: &Path, key: &str) -> Value {
    let t = Store::load(dir).unwrap();
    serde_json::from_str(&t["dac-namespace"][key]).unwrap()
}

#[test]
fn sources_mask_secrets_and_keep_existing_values() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);

    // a fresh server cannot keep a secret it never had
    let mut b = source_body();
    b["config"]["password"] = json!(MASK);
    let r = api.post("/api/v3/catalog", b);
    assert_eq!(r.status, 400);
    assert!(Api::err(&r).contains("config.password"), "{}", r.body);
    let r = api.post(
        "/api/v3/catalog",
        json!({"entityType": "source", "name": "x"}),
    );
    assert_eq!(r.status, 400);

    let src = api.create(source_body());
    assert_eq!(src["entityType"], "source");
    assert_eq!(src["type"], "POSTGRES");
    assert_eq!(src["name"], "pg");
    assert_eq!(src["config"]["password"], MASK);
    assert_eq!(src["config"]["nested"]["accessKey"], MASK);
    assert_eq!(src["config"]["nested"]["secretKey"], MASK);
    assert_eq!(src["config"]["hostname"], "db.example");
    assert_eq!(src["config"]["nested"]["region"], "eu");
    assert_eq!(src["metadataPolicy"]["authTTLMs"], 86400000);
    let root = api.ok("GET", "/api/v3/catalog", None);
    assert_eq!(root["data"][0]["containerType"], "SOURCE");
    let got = api.ok("GET", "/api/v3/catalog/by-path/pg", None);
    assert_eq!(got["config"]["password"], MASK);
    assert_eq!(stored(dir.path(), "pg")["config"]["password"], "s3cr3t");

    // PUT with the masked values keeps the secrets; other fields change
    let url = format!("/api/v3/catalog/{}", id(&src));
    let mut upd = got.clone();
    upd["config"]["hostname"] = json!("db2.example");
    let r = api.put(&url, upd.clone());
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_ne!(v["tag"], got["tag"]);
    assert_eq!(v["config"]["hostname"], "db2.example");
    assert_eq!(v["config"]["password"], MASK);
    let st = stored(dir.path(), "pg");
    assert_eq!(st["config"]["password"], "s3cr3t");
    assert_eq!(st["config"]["nested"]["secretKey"], "sk1");
    assert_eq!(st["config"]["hostname"], "db2.example");

    // stale tag
    assert_eq!(api.put(&url, upd).status, 409);
    // a new secret replaces the old one
    let mut upd = v.clone();
    upd["config"]["password"] = json!("n3w-secret");
    let v2 = api.ok("PUT", &url, Some(upd));
    assert_eq!(v2["config"]["password"], MASK);
    assert_eq!(stored(dir.path(), "pg")["config"]["password"], "n3w-secret");
    // the marker for a secret never stored is refused
    let mut upd = v2.clone();
    upd["config"]["nested"]["awsSecret"] = json!(MASK);
    let r = api.put(&url, upd);
    assert_eq!(r.status, 400);
    assert!(
        Api::err(&r).contains("config.nested.awsSecret"),
        "{}",
        r.body
    );
    // type is fixed
    let mut upd = v2.clone();
    upd["type"] = json!("MYSQL");
    assert_eq!(api.put(&url, upd).status, 400);
}

#[test]
fn views_need_their_tables() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    api.space("Sales");
    api.folder(&["Sales", "marts"]);
    api.create(source_body());

    // missing table: refused, naming it
    let r = api.view(
        &["Sales", "v_orders"],
        "SELECT * FROM pg.public.orders",
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        Api::err(&r),
        "Validation of view sql failed. Table 'pg.public.orders' not found"
    );
    // physical datasets are promoted, never created
    let r = api.post(
        "/api/v3/catalog",
        json!({"entityType": "dataset", "type": "PHYSICAL_DATASET", "path": ["Sales", "t"]}),
    );
    assert_eq!(r.status, 400);
    let orders = pds(&api, &["pg", "public", "orders"]);
    assert_eq!(orders["type"], "PHYSICAL_DATASET");
    assert_eq!(orders["entityType"], "dataset");
    pds(&api, &["pg", "public", "customers"]);

    let v = api.view(
        &["Sales", "v_orders"],
        "SELECT * FROM pg.public.orders",
        &[],
    );
    assert_eq!(v.status, 200, "{}", v.body);
    let v = v.json();
    assert_eq!(v["type"], "VIRTUAL_DATASET");
    assert_eq!(v["sql"], "SELECT * FROM pg.public.orders");
    assert_eq!(v["sqlContext"], json!([]));
    assert!(v.get("children").is_none());

    // quoted identifiers, sqlContext, JOIN, case-insensitive
    let sql =
        r#"SELECT o.*, c.name FROM "v_orders" o JOIN "PG"."public".customers AS c ON o.c = c.id"#;
    let r = api.view(&["Sales", "marts", "v2"], sql, &["Sales"]);
    assert_eq!(r.status, 200, "{}", r.body);
    // a JOIN on a missing table is named
    let sql = "SELECT * FROM Sales.v_orders a LEFT JOIN pg.public.missing b ON a.x = b.x";
    let r = api.view(&["Sales", "v3"], sql, &[]);
    assert_eq!(r.status, 400);
    assert!(Api::err(&r).contains("'pg.public.missing'"), "{}", r.body);
    // comma lists, CTEs, subqueries, EXTRACT ... FROM, string literals
    let sql = "WITH x AS (SELECT * FROM Sales.v_orders) \
               SELECT EXTRACT(YEAR FROM d), 'FROM nowhere' FROM x, (SELECT 1 FROM sys.options) s, \
               pg.public.customers c -- FROM commented.out";
    let r = api.view(&["Sales", "v4"], sql, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.view(&["Sales", "v5"], "SELECT * FROM a, b.c", &[]);
    assert_eq!(
        Api::err(&r),
        "Validation of view sql failed. Table 'a' not found"
    );
    // a container is not a table
    let r = api.view(&["Sales", "v6"], "SELECT * FROM Sales.marts", &[]);
    assert_eq!(r.status, 400);
    // parent must exist; views are not created in sources
    let r = api.view(&["Sales", "nope", "v"], "SELECT 1", &[]);
    assert_eq!(r.status, 404);
    let r = api.view(&["pg", "v"], "SELECT 1", &[]);
    assert_eq!(r.status, 400);
    // items of datasets
    let sp = api.ok("GET", "/api/v3/catalog/by-path/Sales", None);
    let vo = sp["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == json!(["Sales", "v_orders"]))
        .unwrap()
        .clone();
    assert_eq!(vo["type"], "DATASET");
    assert_eq!(vo["datasetType"], "VIRTUAL");
    assert!(vo.get("containerType").is_none());
    // the source shows the folder leading to its promoted datasets
    let pub_items = api.ok("GET", "/api/v3/catalog/by-path/pg", None)["children"].clone();
    assert_eq!(
        pub_items,
        json!([{"id": "dremio:/pg/public", "path": ["pg", "public"], "type": "CONTAINER",
                "containerType": "FOLDER"}])
    );

    // updating the SQL is checked too, and needs the tag
    let url = format!("/api/v3/catalog/{}", id(&v));
    let mut upd = v.clone();
    upd["sql"] = json!("SELECT * FROM pg.public.gone");
    let r = api.put(&url, upd.clone());
    assert_eq!(r.status, 400);
    assert!(Api::err(&r).contains("'pg.public.gone'"));
    upd["sql"] = json!("SELECT id FROM orders");
    upd["sqlContext"] = json!(["pg", "public"]);
    let v2 = api.ok("PUT", &url, Some(upd.clone()));
    assert_eq!(v2["sql"], "SELECT id FROM orders");
    assert_ne!(v2["tag"], v["tag"]);
    assert_eq!(api.put(&url, upd).status, 409);
}

#[test]
fn sql_table_references() {
    assert_eq!(
        table_refs(r#"select * from "a.b"."c" join d.e on 1=1"#),
        vec![
            vec!["a.b".to_string(), "c".into()],
            vec!["d".into(), "e".into()]
        ]
    );
    assert_eq!(
        table_refs("SELECT TRIM(BOTH 'x' FROM s), a IS DISTINCT FROM b FROM t"),
        vec![vec!["t".to_string()]]
    );
    assert!(table_refs("SELECT * FROM TABLE(f(1))").is_empty());
    assert!(table_refs("select 1").is_empty());
}

#[test]
fn reflections_crud() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    api.create(source_body());
    let ds = pds(&api, &["pg", "public", "orders"]);
    let body = json!({"type": "RAW", "name": "raw1", "datasetId": id(&ds),
        "displayFields": [{"name": "a"}, {"name": "b"}], "partitionFields": [{"name": "a"}]});
    let mut missing = body.clone();
    missing["datasetId"] = json!("no-such-id");
    let r = api.post("/api/v3/reflection", missing);
    assert_eq!(r.status, 400);
    assert_eq!(Api::err(&r), "Dataset with id [no-such-id] not found");
    let mut bad = body.clone();
    bad["type"] = json!("WEIRD");
    assert_eq!(api.post("/api/v3/reflection", bad).status, 400);

    let r = api.ok("POST", "/api/v3/reflection", Some(body));
    assert_eq!(r["entityType"], "reflection");
    assert_eq!(r["type"], "RAW");
    assert_eq!(r["name"], "raw1");
    assert_eq!(r["datasetId"], ds["id"]);
    assert_eq!(r["enabled"], true);
    assert_eq!(r["arrowCachingEnabled"], false);
    assert_eq!(r["partitionDistributionStrategy"], "CONSOLIDATED");
    assert_eq!(r["displayFields"], json!([{"name": "a"}, {"name": "b"}]));
    for k in [
        "dimensionFields",
        "measureFields",
        "distributionFields",
        "sortFields",
    ] {
        assert_eq!(r[k], json!([]), "{k}");
    }
    let agg = api.ok(
        "POST",
        "/api/v3/reflection",
        Some(
            json!({"type": "AGGREGATION", "name": "agg", "datasetId": id(&ds),
            "dimensionFields": [{"name": "a", "granularity": "DATE"}],
            "measureFields": [{"name": "b", "measureTypeList": ["SUM", "COUNT"]}],
            "enabled": false, "partitionDistributionStrategy": "STRIPED"}),
        ),
    );
    assert_eq!(agg["enabled"], false);
    assert_eq!(
        agg["measureFields"][0]["measureTypeList"],
        json!(["SUM", "COUNT"])
    );

    let url = format!("/api/v3/reflection/{}", id(&r));
    assert_eq!(api.ok("GET", &url, None), r);
    let list = api.ok(
        "GET",
        &format!("/api/v3/dataset/{}/reflection", id(&ds)),
        None,
    );
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(api.get("/api/v3/dataset/nope/reflection").status, 404);

    let mut upd = r.clone();
    upd["enabled"] = json!(false);
    upd["tag"] = json!("stale");
    assert_eq!(api.put(&url, upd.clone()).status, 409);
    upd["tag"] = r["tag"].clone();
    let u = api.ok("PUT", &url, Some(upd.clone()));
    assert_eq!(u["enabled"], false);
    assert_ne!(u["tag"], r["tag"]);
    assert_eq!(api.put(&url, upd).status, 409);
    let mut mv = u.clone();
    mv["datasetId"] = json!("other");
    assert_eq!(api.put(&url, mv).status, 400);

    assert_eq!(api.call("DELETE", &url, None).status, 204);
    assert_eq!(api.get(&url).status, 404);
    assert_eq!(api.call("DELETE", &url, None).status, 404);

    // deleting the dataset removes its reflections
    let ds_url = format!("/api/v3/catalog/{}?tag={}", id(&ds), tag(&ds));
    assert_eq!(api.call("DELETE", &ds_url, None).status, 204);
    assert_eq!(
        api.get(&format!("/api/v3/reflection/{}", id(&agg))).status,
        404
    );
    assert_eq!(api.ok("GET", "/api/v3/reflection", None)["data"], json!([]));
}

#[test]
fn wiki_and_tags_versions() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    let sp = api.space("Sales");
    api.create(source_body());
    let ds = pds(&api, &["pg", "t"]);
    let wiki = format!("/api/v3/catalog/{}/collaboration/wiki", id(&sp));
    let r = api.get(&wiki);
    assert_eq!(r.status, 404);
    assert_eq!(
        api.get("/api/v3/catalog/nope/collaboration/wiki").status,
        404
    );
    // the first save has no version
    let r = api.post(&wiki, json!({"text": "# Sales", "version": 3}));
    assert_eq!(r.status, 409);
    let w = api.ok("POST", &wiki, Some(json!({"text": "# Sales"})));
    assert_eq!(w, json!({"text": "# Sales", "version": 0}));
    assert_eq!(api.ok("GET", &wiki, None), w);
    // then the current one
    assert_eq!(api.post(&wiki, json!({"text": "x"})).status, 409);
    assert_eq!(
        api.post(&wiki, json!({"text": "x", "version": 5})).status,
        409
    );
    let w = api.ok("POST", &wiki, Some(json!({"text": "v2", "version": 0})));
    assert_eq!(w, json!({"text": "v2", "version": 1}));
    let long = "x".repeat(100_001);
    assert_eq!(
        api.post(&wiki, json!({"text": long, "version": 1})).status,
        400
    );

    // tags: datasets only
    let r = api.post(
        &format!("/api/v3/catalog/{}/collaboration/tag", id(&sp)),
        json!({"tags": ["a"]}),
    );
    assert_eq!(r.status, 400);
    let tags = format!("/api/v3/catalog/{}/collaboration/tag", id(&ds));
    assert_eq!(api.get(&tags).status, 404);
    let t = api.ok("POST", &tags, Some(json!({"tags": ["gold", "pii"]})));
    assert_eq!(t, json!({"tags": ["gold", "pii"], "version": 0}));
    assert_eq!(
        api.post(&tags, json!({"tags": ["x"], "version": 7})).status,
        409
    );
    assert_eq!(
        api.post(&tags, json!({"tags": "x", "version": 0})).status,
        400
    );
    let t = api.ok("POST", &tags, Some(json!({"tags": ["gold"], "version": 0})));
    assert_eq!(t, json!({"tags": ["gold"], "version": 1}));
    assert_eq!(api.ok("GET", &tags, None), t);
}

fn restore(paths_local: &Path, backup: &str) -> std::process::Output {
    Command::new(ADMIN)
        .arg("--paths-local")
        .arg(paths_local)
        .args(["restore", "-d", backup])
        .output()
        .unwrap()
}

fn backup(api: &Api, dir: &Path, binary: bool) -> Response {
    let b = json!({"backupDir": format!("file://{}", dir.display()), "binary": binary});
    api.post("/apiv2/backup", b)
}

/// Everything: space, folder, source with secrets, PDS, views, reflection, wiki, tags.
fn populate(api: &Api) -> (Value, Value, Value) {
    let sp = api.space("Sales");
    api.folder(&["Sales", "marts"]);
    let src = api.create(source_body());
    let ds = pds(api, &["pg", "public", "orders"]);
    let v = api.view(
        &["Sales", "marts", "v"],
        "SELECT * FROM pg.public.orders",
        &[],
    );
    assert_eq!(v.status, 200, "{}", v.body);
    let v = v.json();
    api.ok(
        "POST",
        "/api/v3/reflection",
        Some(json!({"type": "RAW", "name": "r", "datasetId": id(&v),
                    "displayFields": [{"name": "a"}]})),
    );
    api.ok(
        "POST",
        &format!("/api/v3/catalog/{}/collaboration/wiki", id(&sp)),
        Some(json!({"text": "hello"})),
    );
    api.ok(
        "POST",
        &format!("/api/v3/catalog/{}/collaboration/tag", id(&ds)),
        Some(json!({"tags": ["t1"]})),
    );
    (src, ds, v)
}

#[test]
fn catalog_survives_backup_and_restore() {
    let root = tempfile::tempdir().unwrap();
    let src_dir = root.path().join("src");
    let api = Api::start(&src_dir, &[]);
    let (src, ds, v) = populate(&api);
    // What must read the same after a backup and a restore.
    let probes = [
        "/api/v3/catalog".to_string(),
        "/api/v3/catalog/by-path/Sales/marts/v".into(),
        "/api/v3/catalog/by-path/Sales?maxChildren=1".into(),
        format!("/api/v3/catalog/{}", id(&src)),
        format!("/api/v3/dataset/{}/reflection", id(&v)),
        format!("/api/v3/catalog/{}/collaboration/tag", id(&ds)),
        "/api/v3/reflection".into(),
    ];
    let before: Vec<Value> = probes.iter().map(|u| api.ok("GET", u, None)).collect();
    for binary in [false, true] {
        let r = backup(&api, &root.path().join(format!("bk-{binary}")), binary);
        assert_eq!(r.status, 200, "{}", r.body);
        let path = r.json()["backupPath"].as_str().unwrap().to_string();
        let ext = if binary { "pb" } else { "json" };
        for t in [
            "dac-namespace",
            "reflection_goals",
            "collaboration_wiki",
            "collaboration_tags",
        ] {
            assert!(
                Path::new(&path).join(format!("{t}_backup.{ext}")).is_file(),
                "{t}"
            );
        }
        let dst = root.path().join(format!("dst-{binary}"));
        let out = restore(&dst, &path);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let api2 = Api::start(&dst, &[]);
        let after: Vec<Value> = probes.iter().map(|u| api2.ok("GET", u, None)).collect();
        assert_eq!(before, after);
        // wiki by path -> id
        let sp = api2.ok("GET", "/api/v3/catalog/by-path/Sales", None);
        let w = api2.ok(
            "GET",
            &format!("/api/v3/catalog/{}/collaboration/wiki", id(&sp)),
            None,
        );
        assert_eq!(w, json!({"text": "hello", "version": 0}));
        // the restored secret is still there: the marker keeps it
        let s = &after[3];
        let mut upd = s.clone();
        upd["description"] = json!("restored");
        let r = api2.put(&format!("/api/v3/catalog/{}", id(s)), upd);
        assert_eq!(r.status, 200, "{}", r.body);
        drop(api2);
        assert_eq!(stored(&dst, "pg")["config"]["password"], "s3cr3t");
        assert_eq!(stored(&dst, "pg")["description"], "restored");
    }
}

#[test]
fn backup_faults() {
    let root = tempfile::tempdir().unwrap();

    // drop-table: info file kept, data file gone; restore refuses
    let api = Api::start(
        &root.path().join("a"),
        &[("DREMIO_SIM_BACKUP_FAULT", "drop-table:dac-namespace")],
    );
    populate(&api);
    for binary in [false, true] {
        let r = backup(&api, &root.path().join(format!("bk-drop-{binary}")), binary);
        assert_eq!(r.status, 200, "{}", r.body);
        let p = r.json()["backupPath"].as_str().unwrap().to_string();
        let ext = if binary { "pb" } else { "json" };
        assert!(Path::new(&p).join("dac-namespace_info.json").is_file());
        assert!(
            !Path::new(&p)
                .join(format!("dac-namespace_backup.{ext}"))
                .exists()
        );
        assert!(
            Path::new(&p)
                .join(format!("userGroup_backup.{ext}"))
                .is_file()
        );
        let out = restore(&root.path().join(format!("d-drop-{binary}")), &p);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Missing data file"), "{err}");
        assert!(err.contains("dac-namespace"), "{err}");
    }
    drop(api);

    // miscount: one record more in the info file than in the data file
    let api = Api::start(
        &root.path().join("b"),
        &[("DREMIO_SIM_BACKUP_FAULT", "miscount:collaboration_wiki")],
    );
    populate(&api);
    let r = backup(&api, &root.path().join("bk-miscount"), false);
    assert_eq!(r.status, 200, "{}", r.body);
    let p = r.json()["backupPath"].as_str().unwrap().to_string();
    let info: Value = serde_json::from_str(
        &fs::read_to_string(Path::new(&p).join("collaboration_wiki_info.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(info["records"], 2);
    let data = fs::read_to_string(Path::new(&p).join("collaboration_wiki_backup.json")).unwrap();
    assert_eq!(data.lines().count(), 1);
    let info: Value = serde_json::from_str(
        &fs::read_to_string(Path::new(&p).join("dac-namespace_info.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(info["records"], 5);
    let out = restore(&root.path().join("d-miscount"), &p);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "Table collaboration_wiki: 1 records in collaboration_wiki_backup.json, 2 expected"
        ),
        "{err}"
    );
    drop(api);

    // bad values fail the backup
    for bad in [
        "explode:x",
        "drop-table:",
        "drop-table:no_such_table",
        "miscount:tokens",
    ] {
        let api = Api::start(
            &root.path().join(format!("c-{}", bad.replace(':', "_"))),
            &[("DREMIO_SIM_BACKUP_FAULT", bad)],
        );
        let r = backup(&api, &root.path().join("bk-bad"), false);
        assert_eq!(r.status, 500, "{bad}: {}", r.body);
        assert!(
            Api::err(&r).contains("DREMIO_SIM_BACKUP_FAULT"),
            "{}",
            r.body
        );
    }
}
