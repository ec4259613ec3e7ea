//! What lifeboat's `clone` needs from a target: promotion of files and folders of sources (and
//! the folders that lead to them), functions, strict request bodies with version-gated fields.

mod common;

use common::{Api, enc, id, pds, tag};
use serde_json::{Value, json};

fn lake(api: &Api) -> Value {
    api.create(json!({"entityType": "source", "name": "lake", "type": "S3",
                      "config": {"accessKey": "AKIA1", "accessSecret": "s3cr3t"}}))
}

fn kids(v: &Value) -> Vec<Value> {
    v["children"].as_array().unwrap().clone()
}

#[test]
fn promotion_of_files_and_folders() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    let src = lake(&api);
    api.space("Sales");

    // physical datasets and folders are not created in sources through POST /catalog
    let r = api.post(
        "/api/v3/catalog",
        json!({"entityType": "dataset", "type": "PHYSICAL_DATASET", "path": ["lake", "t"],
               "format": {"type": "Parquet"}}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = api.post(
        "/api/v3/catalog",
        json!({"entityType": "folder", "path": ["lake", "trips"]}),
    );
    assert_eq!(r.status, 400, "{}", r.body);

    // the body real Dremio expects, at the percent-encoded id
    let fid = "dremio:/lake/trips/2024";
    let url = format!("/api/v3/catalog/{}", enc(fid));
    assert_eq!(url, "/api/v3/catalog/dremio%3A%2Flake%2Ftrips%2F2024");
    let body = json!({"entityType": "dataset", "id": fid, "type": "PHYSICAL_DATASET",
                      "path": ["lake", "trips", "2024"],
                      "format": {"type": "Parquet", "ignoreOtherFileFormats": true}});
    let mut bad = body.clone();
    bad["id"] = json!("dremio:/lake/trips/2023");
    assert_eq!(api.post(&url, bad).status, 400);
    let mut bad = body.clone();
    bad["path"] = json!(["lake", "trips", "2023"]);
    assert_eq!(api.post(&url, bad).status, 400);
    let mut bad = body.clone();
    bad.as_object_mut().unwrap().remove("format");
    assert_eq!(api.post(&url, bad).status, 400);
    let mut bad = body.clone();
    bad["format"] = json!({"ignoreOtherFileFormats": true});
    assert_eq!(api.post(&url, bad).status, 400);
    let mut bad = body.clone();
    bad["type"] = json!("VIRTUAL_DATASET");
    assert_eq!(api.post(&url, bad).status, 400);
    let mut bad = body.clone();
    bad["owner"] = json!("x");
    let r = api.post(&url, bad);
    assert_eq!(r.status, 400);
    assert!(
        Api::err(&r).starts_with("Unrecognized field \"owner\""),
        "{}",
        r.body
    );
    // the root must be a source
    let r = api.promote(&["Sales", "x"]);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(api.promote(&["nosuch", "x"]).status, 404);
    // uuids are not files
    assert_eq!(
        api.post(&format!("/api/v3/catalog/{}", id(&src)), body.clone())
            .status,
        400
    );

    let ds = api.ok("POST", &url, Some(body.clone()));
    assert_eq!(ds["entityType"], "dataset");
    assert_eq!(ds["type"], "PHYSICAL_DATASET");
    assert_eq!(ds["path"], json!(["lake", "trips", "2024"]));
    assert_eq!(ds["format"]["type"], "Parquet");
    assert!(
        !id(&ds).starts_with("dremio:"),
        "a promoted dataset gets its own id"
    );
    assert!(ds["tag"].is_string());
    // already promoted
    let r = api.post(&url, body);
    assert_eq!(r.status, 409, "{}", r.body);
    // nothing can be promoted inside a dataset, nor a folder holding one
    assert_eq!(api.promote(&["lake", "trips", "2024", "x"]).status, 400);
    assert_eq!(api.promote(&["lake", "trips"]).status, 400);
    let jan = pds(&api, &["lake", "trips", "2023", "jan.parquet"]);
    let zones = pds(&api, &["lake", "Zones"]);

    // the source lists its promoted datasets and the folders leading to the others
    let s = api.ok("GET", &format!("/api/v3/catalog/{}", id(&src)), None);
    assert_eq!(s["config"]["accessSecret"], "$DREMIO_EXISTING_VALUE$");
    // S3's access key id is not a secret: Dremio shows it
    assert_eq!(s["config"]["accessKey"], "AKIA1");
    let trips_item = json!({"id": "dremio:/lake/trips", "path": ["lake", "trips"],
                            "type": "CONTAINER", "containerType": "FOLDER"});
    let k = kids(&s);
    assert_eq!(k.len(), 2, "{k:?}");
    assert_eq!(k[0], trips_item);
    assert_eq!(k[1]["id"], zones["id"]);
    assert_eq!(k[1]["type"], "DATASET");
    assert_eq!(k[1]["datasetType"], "PROMOTED");
    assert_eq!(k[1]["tag"], zones["tag"]);
    assert_eq!(api.ok("GET", "/api/v3/catalog/by-path/lake", None), s);
    // paged
    let p1 = api.ok(
        "GET",
        &format!("/api/v3/catalog/{}?maxChildren=1", id(&src)),
        None,
    );
    assert_eq!(kids(&p1), vec![trips_item.clone()]);
    let t = p1["nextPageToken"].as_str().unwrap();
    let p2 = api.ok(
        "GET",
        &format!("/api/v3/catalog/{}?maxChildren=1&pageToken={t}", id(&src)),
        None,
    );
    assert_eq!(kids(&p2)[0]["id"], zones["id"]);
    assert!(p2.get("nextPageToken").is_none());

    // a folder of the source, by id and by path
    let f = api.ok("GET", "/api/v3/catalog/dremio%3A%2Flake%2Ftrips", None);
    assert_eq!(f["entityType"], "folder");
    assert_eq!(f["id"], "dremio:/lake/trips");
    assert_eq!(f["path"], json!(["lake", "trips"]));
    assert!(f.get("tag").is_none());
    let k = kids(&f);
    assert_eq!(
        k[0],
        json!({"id": "dremio:/lake/trips/2023", "path": ["lake", "trips", "2023"],
               "type": "CONTAINER", "containerType": "FOLDER"})
    );
    assert_eq!(k[1]["id"], ds["id"]);
    assert_eq!(k.len(), 2);
    assert_eq!(api.ok("GET", "/api/v3/catalog/by-path/lake/trips", None), f);
    let f23 = api.ok("GET", "/api/v3/catalog/by-path/lake/TRIPS/2023", None);
    assert_eq!(kids(&f23)[0]["id"], jan["id"]);
    // a promoted dataset is also found by its file id
    let by_file = api.ok(
        "GET",
        &format!("/api/v3/catalog/{}", enc("dremio:/lake/trips/2024")),
        None,
    );
    assert_eq!(by_file["id"], ds["id"]);
    // nothing promoted below: unknown
    assert_eq!(
        api.get("/api/v3/catalog/dremio%3A%2Flake%2Fnope").status,
        404
    );
    assert_eq!(api.get("/api/v3/catalog/by-path/lake/nope").status, 404);
    assert_eq!(api.get("/api/v3/catalog/dremio%3A%2FSales%2Fx").status, 404);

    // views read promoted datasets
    let v = api.view(&["Sales", "v"], r#"SELECT * FROM lake.trips."2024""#, &[]);
    assert_eq!(v.status, 200, "{}", v.body);

    // PUT may change the format, with the current tag
    let durl = format!("/api/v3/catalog/{}", id(&ds));
    let mut upd = ds.clone();
    upd["format"] = json!({"type": "Delta"});
    let u = api.ok("PUT", &durl, Some(upd.clone()));
    assert_eq!(u["format"], json!({"type": "Delta"}));
    assert_ne!(u["tag"], ds["tag"]);
    assert_eq!(api.put(&durl, upd).status, 409);

    // deleting unpromotes, with its reflection, wiki and tags
    let refl = api.ok(
        "POST",
        "/api/v3/reflection",
        Some(json!({"type": "RAW", "name": "r", "datasetId": id(&ds),
                    "displayFields": [{"name": "a"}]})),
    );
    api.ok(
        "POST",
        &format!("/api/v3/catalog/{}/collaboration/wiki", id(&ds)),
        Some(json!({"text": "trips"})),
    );
    api.ok(
        "POST",
        &format!("/api/v3/catalog/{}/collaboration/tag", id(&ds)),
        Some(json!({"tags": ["gold"]})),
    );
    let r = api.call("DELETE", &format!("{durl}?tag={}", tag(&u)), None);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(api.get(&durl).status, 404);
    assert_eq!(
        api.get(&format!("/api/v3/reflection/{}", id(&refl))).status,
        404
    );
    let f = api.ok("GET", "/api/v3/catalog/by-path/lake/trips", None);
    assert_eq!(kids(&f).len(), 1);
    // it can be promoted again
    assert_eq!(
        api.post(
            &url,
            json!({"entityType": "dataset", "id": fid,
        "type": "PHYSICAL_DATASET", "path": ["lake", "trips", "2024"],
        "format": {"type": "Parquet"}})
        )
        .status,
        200
    );
    // a folder of a source is not deleted through the catalog
    assert_eq!(
        api.call("DELETE", "/api/v3/catalog/dremio%3A%2Flake%2Ftrips", None)
            .status,
        400
    );
    // deleting by file id unpromotes too; the folder goes with its last dataset
    let r = api.call(
        "DELETE",
        &format!(
            "/api/v3/catalog/{}",
            enc("dremio:/lake/trips/2023/jan.parquet")
        ),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        api.get("/api/v3/catalog/by-path/lake/trips/2023").status,
        404
    );
    // deleting the source removes every promoted dataset
    let s = api.ok("GET", "/api/v3/catalog/by-path/lake", None);
    let r = api.call(
        "DELETE",
        &format!("/api/v3/catalog/{}?tag={}", id(&s), tag(&s)),
        None,
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        api.get(&format!("/api/v3/catalog/{}", id(&zones))).status,
        404
    );
    assert_eq!(api.get("/api/v3/catalog/by-path/lake/trips").status, 404);
}

fn function_body(path: &[&str], body: &str) -> Value {
    json!({"entityType": "function", "path": path, "isScalar": true,
           "functionArgList": "x INT", "functionBody": body, "returnType": "INT"})
}

#[test]
fn functions() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    api.space("Sales");
    api.folder(&["Sales", "udfs"]);
    lake(&api);
    pds(&api, &["lake", "t"]);

    let f = api.create(function_body(&["Sales", "udfs", "plus1"], "SELECT x + 1"));
    let keys: Vec<&String> = f.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "createdAt",
            "entityType",
            "functionArgList",
            "functionBody",
            "id",
            "isScalar",
            "path",
            "returnType",
            "tag"
        ]
    );
    assert_eq!(f["entityType"], "function");
    assert_eq!(f["path"], json!(["Sales", "udfs", "plus1"]));
    assert_eq!(f["isScalar"], true);
    assert_eq!(f["functionArgList"], "x INT");
    assert_eq!(f["functionBody"], "SELECT x + 1");
    assert_eq!(f["returnType"], "INT");
    let url = format!("/api/v3/catalog/{}", id(&f));
    assert_eq!(api.ok("GET", &url, None), f);
    assert_eq!(
        api.ok("GET", "/api/v3/catalog/by-path/Sales/udfs/plus1", None),
        f
    );
    // a tabular function reading a dataset; directly in a space
    let t = api.create(
        json!({"entityType": "function", "path": ["Sales", "rows_of"],
        "isScalar": false, "functionArgList": "", "functionBody": "SELECT * FROM lake.t",
        "returnType": "a INT, b VARCHAR"}),
    );
    assert_eq!(t["isScalar"], false);

    // the parent's children show it as a FUNCTION container
    let udfs = api.ok("GET", "/api/v3/catalog/by-path/Sales/udfs", None);
    let it = &udfs["children"][0];
    assert_eq!(it["id"], f["id"]);
    assert_eq!(it["path"], f["path"]);
    assert_eq!(it["tag"], f["tag"]);
    assert_eq!(it["type"], "CONTAINER");
    assert_eq!(it["containerType"], "FUNCTION");

    // checks: parent, source, SQL, fields
    let r = api.post(
        "/api/v3/catalog",
        function_body(&["Sales", "nope", "f"], "SELECT 1"),
    );
    assert_eq!(r.status, 404);
    let r = api.post("/api/v3/catalog", function_body(&["lake", "f"], "SELECT 1"));
    assert_eq!(r.status, 400);
    let r = api.post(
        "/api/v3/catalog",
        function_body(&["Sales", "f2"], "SELECT max(a) FROM lake.missing"),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        Api::err(&r),
        "Validation of view sql failed. Table 'lake.missing' not found"
    );
    let mut b = function_body(&["Sales", "f3"], "SELECT 1");
    b.as_object_mut().unwrap().remove("functionBody");
    assert_eq!(api.post("/api/v3/catalog", b).status, 400);
    let mut b = function_body(&["Sales", "f3"], "SELECT 1");
    b["isScalar"] = json!("yes");
    assert_eq!(api.post("/api/v3/catalog", b).status, 400);
    let mut b = function_body(&["Sales", "f3"], "SELECT 1");
    b["language"] = json!("SQL");
    let r = api.post("/api/v3/catalog", b);
    assert!(
        Api::err(&r)
            .starts_with("Unrecognized field \"language\" (class com.dremio.dac.api.Function)"),
        "{}",
        r.body
    );
    let r = api.post(
        "/api/v3/catalog",
        function_body(&["Sales", "udfs", "plus1"], "SELECT 1"),
    );
    assert_eq!(r.status, 409);
    // a function is neither a table nor a container
    let r = api.view(&["Sales", "v"], "SELECT * FROM Sales.udfs.plus1", &[]);
    assert_eq!(r.status, 400);
    let r = api.view(&["Sales", "udfs", "plus1", "v"], "SELECT 1", &[]);
    assert_eq!(r.status, 400);

    // PUT with the current tag
    let mut upd = f.clone();
    upd["functionBody"] = json!("SELECT x + 2");
    upd["tag"] = json!("stale");
    assert_eq!(api.put(&url, upd.clone()).status, 409);
    upd["tag"] = f["tag"].clone();
    let u = api.ok("PUT", &url, Some(upd.clone()));
    assert_eq!(u["functionBody"], "SELECT x + 2");
    assert_ne!(u["tag"], f["tag"]);
    assert_eq!(api.put(&url, upd).status, 409);
    let mut upd = u.clone();
    upd["functionBody"] = json!("SELECT a FROM lake.gone");
    assert_eq!(api.put(&url, upd).status, 400);
    let mut upd = u.clone();
    upd["isScalar"] = json!(false);
    upd["returnType"] = json!("y INT");
    upd["functionArgList"] = json!("");
    let u2 = api.ok("PUT", &url, Some(upd));
    assert_eq!(
        (&u2["isScalar"], &u2["returnType"], &u2["functionArgList"]),
        (&json!(false), &json!("y INT"), &json!(""))
    );

    // DELETE like any entity
    let r = api.call("DELETE", &format!("{url}?tag={}", tag(&u)), None);
    assert_eq!(r.status, 409);
    let r = api.call("DELETE", &format!("{url}?tag={}", tag(&u2)), None);
    assert_eq!(r.status, 204);
    assert_eq!(api.get(&url).status, 404);
    let udfs = api.ok("GET", "/api/v3/catalog/by-path/Sales/udfs", None);
    assert_eq!(udfs["children"], json!([]));
}

fn unrecognized(r: &dremio_sim::client::Response, field: &str, class: &str) {
    assert_eq!(r.status, 400, "{}", r.body);
    let m = Api::err(r);
    let want = format!(
        "Unrecognized field \"{field}\" (class com.dremio.dac.api.{class}), not marked as ignorable"
    );
    assert!(m.starts_with(&want), "{m}");
}

#[test]
fn bodies_are_strict() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(dir.path(), &[]);
    let r = api.post(
        "/api/v3/catalog",
        json!({"entityType": "space", "name": "S", "owner": "me"}),
    );
    unrecognized(&r, "owner", "Space");
    assert!(Api::err(&r).contains("known properties: "), "{}", r.body);
    let r = api.post(
        "/api/v3/catalog",
        json!({"entityType": "source", "name": "x", "type": "NAS", "config": {},
               "accessControlList": {}}),
    );
    unrecognized(&r, "accessControlList", "Source");
    let sp = api.space("S");
    let r = api.post(
        "/api/v3/catalog",
        json!({"entityType": "folder", "path": ["S", "f"], "storageUri": "x"}),
    );
    unrecognized(&r, "storageUri", "Folder");
    let r = api.post(
        "/api/v3/catalog",
        json!({"entityType": "dataset", "type": "VIRTUAL_DATASET", "path": ["S", "v"],
               "sql": "SELECT 1", "isMetadataExpired": false}),
    );
    unrecognized(&r, "isMetadataExpired", "Dataset");
    let mut upd = sp.clone();
    upd["owner"] = json!("me");
    unrecognized(
        &api.put(&format!("/api/v3/catalog/{}", id(&sp)), upd),
        "owner",
        "Space",
    );

    // whatever a GET answers can be sent back
    api.folder(&["S", "f"]);
    let src = api.create(json!({"entityType": "source", "name": "nas", "type": "NAS",
        "config": {"path": "/mnt"}, "metadataPolicy": {"authTTLMs": 1},
        "accelerationNeverRefresh": false, "allowCrossSourceSelection": true}));
    let v = api.view(&["S", "f", "v"], "SELECT 1", &[]);
    assert_eq!(v.status, 200);
    for path in [
        "/api/v3/catalog/by-path/S",
        "/api/v3/catalog/by-path/S/f",
        "/api/v3/catalog/by-path/S/f/v",
        "/api/v3/catalog/by-path/nas",
    ] {
        let got = api.ok("GET", path, None);
        let r = api.put(&format!("/api/v3/catalog/{}", id(&got)), got);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    assert_eq!(src["allowCrossSourceSelection"], true);

    // reflections and users
    let ds = api.ok("GET", "/api/v3/catalog/by-path/S/f/v", None);
    let r = api.post(
        "/api/v3/reflection",
        json!({"type": "RAW", "name": "r", "datasetId": id(&ds), "canView": true}),
    );
    unrecognized(&r, "canView", "Reflection");
    let r = api.post(
        "/api/v3/user",
        json!({"name": "eve", "password": "evepass123", "roles": []}),
    );
    unrecognized(&r, "roles", "User");
    assert_eq!(
        api.get("/api/v3/user/by-name/eve").status,
        404,
        "nothing created"
    );
}

#[test]
fn arrow_caching_is_known_from_25() {
    let root = tempfile::tempdir().unwrap();
    for (version, known) in [("24.3.0", false), ("25.0.0", true), ("25.2.0", true)] {
        let api = Api::start_args(&root.path().join(version), &["--version", version], &[]);
        lake(&api);
        let ds = pds(&api, &["lake", "t"]);
        let body = json!({"type": "RAW", "name": "r", "datasetId": id(&ds),
                          "displayFields": [{"name": "a"}], "arrowCachingEnabled": true});
        let r = api.post("/api/v3/reflection", body.clone());
        if !known {
            unrecognized(&r, "arrowCachingEnabled", "Reflection");
            let mut b = body.clone();
            b.as_object_mut().unwrap().remove("arrowCachingEnabled");
            let r = api.ok("POST", "/api/v3/reflection", Some(b));
            assert!(r.get("arrowCachingEnabled").is_none(), "{version}: {r}");
            let url = format!("/api/v3/reflection/{}", id(&r));
            let got = api.ok("GET", &url, None);
            assert!(got.get("arrowCachingEnabled").is_none());
            // no listing of every reflection before 25.0 (a guess): the per-dataset one is there
            assert_eq!(api.get("/api/v3/reflection").status, 404);
            assert!(
                api.ok(
                    "GET",
                    &format!("/api/v3/dataset/{}/reflection", id(&ds)),
                    None
                )["data"][0]
                    .get("arrowCachingEnabled")
                    .is_none()
            );
            // a GET answer goes back as is; with the field, not
            assert_eq!(api.put(&url, got.clone()).status, 200);
            let got = api.ok("GET", &url, None);
            let mut upd = got.clone();
            upd["arrowCachingEnabled"] = json!(false);
            unrecognized(&api.put(&url, upd), "arrowCachingEnabled", "Reflection");
        } else {
            assert_eq!(r.status, 200, "{version}: {}", r.body);
            let got = api.ok(
                "GET",
                &format!("/api/v3/reflection/{}", id(&r.json())),
                None,
            );
            assert_eq!(got["arrowCachingEnabled"], true, "{version}");
        }
    }
}
