//! REST behaviour of the simulator: first user, login, tokens, strictness, permissions.

mod common;

use std::time::{Duration, Instant};

use common::{PASSWORD, Sim};
use serde_json::json;

#[test]
fn first_user_flow_and_strictness() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path(), &[]);

    let r = sim.req("GET", "/apiv2/server_status", None, None);
    assert_eq!((r.status, r.body.as_str()), (200, "OK"));

    let r = sim.req("GET", "/api/v3/info", None, None);
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["errorMessage"], "No User Available");
    let r = sim.req(
        "POST",
        "/apiv2/login",
        None,
        Some(r#"{"userName":"admin","password":"x"}"#),
    );
    assert_eq!(r.status, 403);

    // firstuser needs `_dremionull` and a valid password
    let body = json!({"userName": "admin", "password": PASSWORD}).to_string();
    let r = sim.req("PUT", "/apiv2/bootstrap/firstuser", None, Some(&body));
    assert_eq!(r.status, 401);
    let weak = json!({"userName": "admin", "password": "short"}).to_string();
    let r = sim.req(
        "PUT",
        "/apiv2/bootstrap/firstuser",
        Some("_dremionull"),
        Some(&weak),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("Invalid password")
    );

    let r = sim.first_user();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["userName"], "admin");
    let r = sim.first_user();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["errorMessage"],
        "First user can only be created when no user is already registered"
    );

    // login
    let bad = json!({"userName": "admin", "password": "wrong123"}).to_string();
    let r = sim.req("POST", "/apiv2/login", None, Some(&bad));
    assert_eq!(r.status, 401);
    let good = json!({"userName": "admin", "password": PASSWORD}).to_string();
    let r = sim.req("POST", "/apiv2/login", None, Some(&good));
    assert_eq!(r.status, 200);
    let v = r.json();
    let token = v["token"].as_str().unwrap().to_string();
    assert_eq!(v["admin"], true);
    assert_eq!(v["version"], "25.2.0-202410241428100111-a963b970");
    assert!(v["clusterId"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["expires"].as_i64().unwrap() > 0);

    // auth headers
    assert_eq!(sim.req("GET", "/api/v3/info", None, None).status, 401);
    assert_eq!(
        sim.req("GET", "/api/v3/info", Some("_dremiobogus"), None)
            .status,
        401
    );
    let r = sim.req(
        "GET",
        "/api/v3/info",
        Some(&format!("_dremio{token}")),
        None,
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["version"], "25.2.0-202410241428100111-a963b970");
    assert_eq!(v["commit"]["hash"], "a963b970");
    assert!(v["buildTime"].as_i64().unwrap() > 0);
    assert!(v["clusterType"].is_string());
    let r = sim.req(
        "GET",
        "/api/v3/info",
        Some(&format!("Bearer {token}")),
        None,
    );
    assert_eq!(r.status, 200);

    // strictness
    let auth = format!("_dremio{token}");
    let r = sim.req("GET", "/api/v3/nothing-here", Some(&auth), None);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["errorMessage"], "HTTP 404 Not Found");
    let r = sim.req("DELETE", "/api/v3/info", Some(&auth), None);
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["errorMessage"], "HTTP 405 Method Not Allowed");
    let r = sim.req("POST", "/apiv2/backup", Some(&auth), Some("{not json"));
    assert_eq!(r.status, 400);
    assert!(
        r.json()["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("Malformed JSON")
    );
}

#[test]
fn tokens_expire() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path(), &["--token-ttl", "1"]);
    assert_eq!(sim.first_user().status, 200);
    let auth = sim.login("admin", PASSWORD);
    let first = sim.req("GET", "/api/v3/info", Some(&auth), None);
    assert_eq!(first.status, 200);
    let deadline = Instant::now() + Duration::from_secs(15);
    let r = loop {
        let r = sim.req("GET", "/api/v3/info", Some(&auth), None);
        if r.status != 200 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r.status, 401, "token never expired");
    assert_eq!(r.json()["errorMessage"], "Token expired");
}

/// The body creating the user `bob`.
const BOB: &str = r#"{"name": "bob", "firstName": "B", "lastName": "O", "email": "b@example.com", "password": "bobpass123"}"#;

/// A simulator with its first administrator and a second user `bob`: (dir, sim, admin's auth,
/// bob as created).
fn with_bob() -> (tempfile::TempDir, Sim, String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path(), &[]);
    assert_eq!(sim.first_user().status, 200);
    let admin = sim.login("admin", PASSWORD);
    let r = sim.req("POST", "/api/v3/user", Some(&admin), Some(BOB));
    assert_eq!(r.status, 200, "{}", r.body);
    (dir, sim, admin, r.json())
}

#[test]
fn users_catalog_and_non_admin() {
    let (dir, sim, admin, bob) = with_bob();
    let bob_id = bob["id"].as_str().unwrap().to_string();
    assert_eq!(
        sim.req("POST", "/api/v3/user", Some(&admin), Some(BOB))
            .status,
        409
    );
    let r = sim.req("GET", "/api/v3/user/by-name/bob", Some(&admin), None);
    assert_eq!(
        (r.status, r.json()["id"].as_str()),
        (200, Some(bob_id.as_str()))
    );
    let r = sim.req("GET", "/apiv2/users/all", Some(&admin), None);
    assert_eq!(r.json()["users"].as_array().unwrap().len(), 2);

    let bob = sim.login("bob", "bobpass123");
    let r = sim.req(
        "POST",
        "/apiv2/login",
        None,
        Some(r#"{"userName":"bob","password":"x"}"#),
    );
    assert_eq!(r.status, 401);
    let bk = json!({"backupDir": format!("file://{}", dir.path().join("bk").display()),
        "binary": false, "includeProfiles": false, "compression": "", "table": "", "key": ""})
    .to_string();
    let r = sim.req("POST", "/apiv2/backup", Some(&bob), Some(&bk));
    assert_eq!(r.status, 403);
    assert!(!dir.path().join("bk").exists());
    let other = json!({"name": "eve", "password": "evepass123"}).to_string();
    assert_eq!(
        sim.req("POST", "/api/v3/user", Some(&bob), Some(&other))
            .status,
        403
    );

    // catalog: spaces and folders
    let r = sim.req(
        "POST",
        "/api/v3/catalog",
        Some(&admin),
        Some(r#"{"entityType":"space","name":"Sales"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let space_id = r.json()["id"].as_str().unwrap().to_string();
    let r = sim.req(
        "POST",
        "/api/v3/catalog",
        Some(&admin),
        Some(r#"{"entityType":"folder","path":["Sales","q1"]}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = sim.req(
        "POST",
        "/api/v3/catalog",
        Some(&admin),
        Some(r#"{"entityType":"folder","path":["Nope","q1"]}"#),
    );
    assert_eq!(r.status, 404);
    let r = sim.req(
        "POST",
        "/api/v3/catalog",
        Some(&admin),
        Some(r#"{"entityType":"space","name":"sales"}"#),
    );
    assert_eq!(r.status, 409);
    let r = sim.req("GET", "/api/v3/catalog", Some(&admin), None);
    let data = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["containerType"], "SPACE");
    let r = sim.req(
        "GET",
        &format!("/api/v3/catalog/{space_id}"),
        Some(&admin),
        None,
    );
    assert_eq!(r.json()["children"][0]["path"], json!(["Sales", "q1"]));
    let r = sim.req(
        "GET",
        "/api/v3/catalog/by-path/Sales/q1",
        Some(&admin),
        None,
    );
    assert_eq!(r.json()["entityType"], "folder");
    assert_eq!(
        sim.req("GET", "/api/v3/catalog/nope", Some(&admin), None)
            .status,
        404
    );
}

#[test]
fn user_updates_and_listing_rights() {
    let (_dir, sim, admin, bob0) = with_bob();
    let bob_id = bob0["id"].as_str().unwrap().to_string();
    let url = format!("/api/v3/user/{bob_id}");
    let bob = sim.login("bob", "bobpass123");

    // listing every user needs an administrator
    let r = sim.req("GET", "/apiv2/users/all", Some(&bob), None);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = sim.req("GET", "/apiv2/users/all", Some(&admin), None);
    assert_eq!(r.status, 200);

    let put = |auth: &str, url: &str, v: serde_json::Value| {
        sim.req("PUT", url, Some(auth), Some(&v.to_string()))
    };
    let mut upd = json!({"id": bob_id, "name": "bob", "firstName": "Bobby", "lastName": "O",
                         "email": "bobby@example.com", "tag": "stale"});
    assert_eq!(put(&admin, &url, upd.clone()).status, 409);
    upd["tag"] = bob0["tag"].clone();
    let mut renamed = upd.clone();
    renamed["name"] = json!("robert");
    assert_eq!(put(&admin, &url, renamed).status, 400);
    let mut other = upd.clone();
    other["id"] = json!("someone-else");
    assert_eq!(put(&admin, &url, other).status, 400);
    let mut unknown = upd.clone();
    unknown["roles"] = json!([]);
    let r = put(&admin, &url, unknown);
    assert_eq!(r.status, 400);
    assert!(
        r.json()["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("Unrecognized field \"roles\" (class com.dremio.dac.api.User)"),
        "{}",
        r.body
    );
    let r = put(&admin, &url, upd.clone());
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["firstName"], "Bobby");
    assert_eq!(v["email"], "bobby@example.com");
    assert_eq!(v["name"], "bob");
    assert_ne!(v["tag"], bob0["tag"]);
    assert_eq!(put(&admin, &url, upd).status, 409, "the old tag is stale");
    let got = sim.req("GET", &url, Some(&admin), None).json();
    assert_eq!(got, v);

    // a user may update itself, password included (same rule as on create)
    let mut me = got.clone();
    me["password"] = json!("short");
    assert_eq!(put(&bob, &url, me.clone()).status, 400);
    me["password"] = json!("newbobpass1");
    let r = put(&bob, &url, me);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["firstName"], "Bobby", "fields not sent are kept");
    let old = json!({"userName": "bob", "password": "bobpass123"}).to_string();
    assert_eq!(
        sim.req("POST", "/apiv2/login", None, Some(&old)).status,
        401
    );
    sim.login("bob", "newbobpass1");
    // but not another user
    let a = sim
        .req("GET", "/api/v3/user/by-name/admin", Some(&admin), None)
        .json();
    let mut upd = a.clone();
    upd["firstName"] = json!("Mallory");
    let aurl = format!("/api/v3/user/{}", a["id"].as_str().unwrap());
    assert_eq!(put(&bob, &aurl, upd.clone()).status, 403);
    assert_eq!(put(&admin, &aurl, upd).status, 200);
    assert_eq!(
        put(&admin, "/api/v3/user/nobody", json!({"tag": "0"})).status,
        404
    );
}
