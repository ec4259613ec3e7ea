//! The basic-security endpoints over HTTP (auth off, so only the endpoints are under test):
//! users twice, credentials never readable, roles, permissions, assignments, and each refusal.

mod common;

use common::Sim;
use serde_json::{Value, json};

const AUTHN: &str = "/druid-ext/basic-security/authentication/db/MyBasicMetadataAuthenticator";
const AUTHZ: &str = "/druid-ext/basic-security/authorization/db/MyBasicMetadataAuthorizer";

fn post(sim: &Sim, path: &str) -> dremio_sim::client::Response {
    sim.call("POST", path, &[("X-Druid-Author", "ops")], None)
}

fn delete(sim: &Sim, path: &str) -> dremio_sim::client::Response {
    sim.call("DELETE", path, &[], None)
}

fn error(r: &dremio_sim::client::Response) -> String {
    r.json()["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn authenticator_users_are_created_once_and_their_password_never_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::with_state(dir.path());
    assert_eq!(post(&sim, &format!("{AUTHN}/users/druid")).status, 200);
    let again = post(&sim, &format!("{AUTHN}/users/druid"));
    assert_eq!(
        (again.status, error(&again)),
        (400, "User [druid] already exists.".to_string())
    );
    let cred = sim.post(
        &format!("{AUTHN}/users/druid/credentials"),
        r#"{"password":"Hunter2-secret"}"#,
    );
    assert_eq!(cred.status, 200, "{}", cred.body);
    assert_eq!(sim.get(&format!("{AUTHN}/users")).json(), json!(["druid"]));
    let user = sim.get(&format!("{AUTHN}/users/druid"));
    assert_eq!(user.json(), json!({"name": "druid"}));
    let stored = std::fs::read_to_string(dir.path().join("metadata.json")).unwrap();
    assert!(
        !stored.contains("Hunter2-secret"),
        "only a salted hash is kept"
    );
    assert!(stored.contains("\"iterations\":10000"));

    for (path, body, why) in [
        (
            "nobody/credentials",
            r#"{"password":"x"}"#,
            "User [nobody] does not exist.",
        ),
        (
            "druid/credentials",
            r#"{"password":""}"#,
            "Invalid password",
        ),
        ("druid/credentials", r#"{"pass":"x"}"#, "Invalid password"),
    ] {
        let r = sim.post(&format!("{AUTHN}/users/{path}"), body);
        assert_eq!(r.status, 400, "{path} {body}");
        assert!(error(&r).contains(why), "{path}: {}", r.body);
    }
    assert_eq!(sim.get(&format!("{AUTHN}/users/nobody")).status, 400);
    assert_eq!(delete(&sim, &format!("{AUTHN}/users/druid")).status, 200);
    assert_eq!(delete(&sim, &format!("{AUTHN}/users/druid")).status, 400);
    assert_eq!(sim.get(&format!("{AUTHN}/users")).json(), json!([]));
}

#[test]
fn roles_permissions_and_assignments_with_their_full_views() {
    let sim = Sim::start();
    assert_eq!(post(&sim, &format!("{AUTHZ}/users/druid")).status, 200);
    assert_eq!(post(&sim, &format!("{AUTHZ}/users/druid")).status, 400);
    assert_eq!(post(&sim, &format!("{AUTHZ}/roles/reader")).status, 200);
    let dup = post(&sim, &format!("{AUTHZ}/roles/reader"));
    assert_eq!(
        (dup.status, error(&dup)),
        (400, "Role [reader] already exists.".into())
    );

    let perms = r#"[{"resource":{"name":"wiki.*","type":"DATASOURCE"},"action":"READ"},
                    {"resource":{"name":"STATE","type":"STATE"},"action":"READ"}]"#;
    assert_eq!(
        sim.post(&format!("{AUTHZ}/roles/reader/permissions"), perms)
            .status,
        200
    );
    let one = r#"[{"resource":{"name":".*","type":"CONFIG"},"action":"WRITE"}]"#;
    assert_eq!(
        sim.post(&format!("{AUTHZ}/roles/reader/permissions"), one)
            .status,
        200
    );
    let got = sim.get(&format!("{AUTHZ}/roles/reader/permissions")).json();
    assert_eq!(
        got,
        json!([{"resourceAction": {"resource": {"name": ".*", "type": "CONFIG"}, "action": "WRITE"},
                "resourceNamePattern": ".*"}]),
        "replaced, not appended, and stored with its pattern"
    );

    assert_eq!(
        post(&sim, &format!("{AUTHZ}/users/druid/roles/reader")).status,
        200
    );
    let twice = post(&sim, &format!("{AUTHZ}/users/druid/roles/reader"));
    assert_eq!(twice.status, 400);
    assert!(error(&twice).contains("already has role"), "{}", twice.body);
    assert_eq!(
        post(&sim, &format!("{AUTHZ}/users/druid/roles/none")).status,
        400
    );
    assert_eq!(
        post(&sim, &format!("{AUTHZ}/users/nobody/roles/reader")).status,
        400
    );

    assert_eq!(
        sim.get(&format!("{AUTHZ}/users/druid")).json(),
        json!({"name": "druid", "roles": ["reader"]})
    );
    let full = sim.get(&format!("{AUTHZ}/users/druid?full")).json();
    assert_eq!(full["roles"][0]["name"], "reader");
    assert_eq!(full["roles"][0]["permissions"], got);
    assert_eq!(
        sim.get(&format!("{AUTHZ}/roles/reader")).json(),
        json!({"name": "reader", "users": ["druid"]})
    );
    assert_eq!(
        sim.get(&format!("{AUTHZ}/roles/reader?full")).json()["permissions"],
        got
    );
    assert_eq!(sim.get(&format!("{AUTHZ}/users")).json(), json!(["druid"]));
    assert_eq!(
        sim.get(&format!("{AUTHZ}/users?full")).json(),
        json!([full]),
        "every user in full"
    );
    let roles = sim.get(&format!("{AUTHZ}/roles?full")).json();
    assert_eq!(
        roles,
        json!([{"name": "reader", "users": ["druid"], "permissions": got}])
    );
    assert_eq!(sim.get(&format!("{AUTHZ}/roles")).json(), json!(["reader"]));

    assert_eq!(
        delete(&sim, &format!("{AUTHZ}/users/druid/roles/reader")).status,
        200
    );
    let gone = delete(&sim, &format!("{AUTHZ}/users/druid/roles/reader"));
    assert!(error(&gone).contains("does not have role"), "{}", gone.body);
    post(&sim, &format!("{AUTHZ}/users/druid/roles/reader"));
    assert_eq!(delete(&sim, &format!("{AUTHZ}/roles/reader")).status, 200);
    assert_eq!(
        sim.get(&format!("{AUTHZ}/users/druid")).json()["roles"],
        json!([]),
        "a deleted role leaves its users"
    );
    assert_eq!(delete(&sim, &format!("{AUTHZ}/roles/reader")).status, 400);
    assert_eq!(delete(&sim, &format!("{AUTHZ}/users/druid")).status, 200);
}

#[test]
fn permissions_druid_would_not_take_are_refused_and_leave_the_role_as_it_was() {
    let sim = Sim::start();
    post(&sim, &format!("{AUTHZ}/roles/r"));
    for (body, why) in [
        (
            r#"[{"resource":{"name":"x","type":"TABLE"},"action":"READ"}]"#,
            "Unknown resource type [TABLE]",
        ),
        (
            r#"[{"resource":{"name":"x","type":"STATE"},"action":"DELETE"}]"#,
            "Action",
        ),
        (
            r#"[{"resource":{"name":"(","type":"DATASOURCE"},"action":"READ"}]"#,
            "Invalid permission pattern",
        ),
        (
            r#"[{"resource":{"type":"STATE"},"action":"READ"}]"#,
            "resource.name is required",
        ),
        (
            r#"{"resource":{"name":"x","type":"STATE"},"action":"READ"}"#,
            "JSON array",
        ),
    ] {
        let r = sim.post(&format!("{AUTHZ}/roles/r/permissions"), body);
        assert_eq!(r.status, 400, "{body}");
        assert!(error(&r).contains(why), "{body}: {}", r.body);
    }
    assert_eq!(
        sim.get(&format!("{AUTHZ}/roles/r/permissions")).json(),
        json!([])
    );
    let missing = sim.post(&format!("{AUTHZ}/roles/none/permissions"), "[]");
    assert_eq!(
        (missing.status, error(&missing)),
        (400, "Role [none] does not exist.".into())
    );
}

#[test]
fn other_authenticator_names_are_unknown_and_each_change_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::spawn(&[
        "--state",
        dir.path().to_str().unwrap(),
        "--authenticator",
        "basic",
    ]);
    let other = post(
        &sim,
        "/druid-ext/basic-security/authentication/db/MyBasicMetadataAuthenticator/users/u",
    );
    assert_eq!(other.status, 400);
    assert!(
        error(&other).contains("Basic authenticator with name"),
        "{}",
        other.body
    );
    assert_eq!(
        sim.get("/druid-ext/basic-security/authentication/loadStatus")
            .json(),
        json!({"basic": true})
    );
    post(
        &sim,
        "/druid-ext/basic-security/authentication/db/basic/users/u",
    );
    post(&sim, &format!("{AUTHZ}/users/u"));
    post(&sim, &format!("{AUTHZ}/roles/r"));
    post(&sim, &format!("{AUTHZ}/users/u/roles/r"));
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("metadata.json")).unwrap())
            .unwrap();
    let kinds: Vec<&str> = doc["druid_audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "basic_authentication_basic_users",
            "basic_authorization_MyBasicMetadataAuthorizer_users",
            "basic_authorization_MyBasicMetadataAuthorizer_roles",
            "basic_authorization_MyBasicMetadataAuthorizer_users",
        ],
        "one audit row per change, the refused one none"
    );
    assert_eq!(doc["druid_audit"][0]["auditInfo"]["author"], "ops");

    sim.post(
        "/druid-ext/basic-security/authentication/db/basic/users/u/credentials",
        r#"{"password":"pw-1234"}"#,
    );
    let shown = sim
        .get("/druid-sim/v1/audit?type=basic_authentication_basic_users")
        .json();
    let newest = shown[0]["payload"].as_str().unwrap();
    assert!(newest.contains(r#""credentials":"<redacted>""#), "{newest}");
    assert!(!newest.contains("hash"), "no hash over REST: {newest}");
}
