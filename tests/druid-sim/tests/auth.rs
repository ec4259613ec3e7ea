//! `--auth basic --admin-password-file F` over HTTP: the first-start `admin`, 401 without or with
//! wrong credentials, 403 by the roles' permissions, and authentication before the redirect.

mod common;

use std::net::TcpListener;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::Sim;
use dremio_sim::client::{Response, request};
use druid_sim::api::Node;
use druid_sim::leader::Leaders;
use druid_sim::server::serve;
use druid_sim::store::FileStore;
use serde_json::json;

const AUTHN: &str = "/druid-ext/basic-security/authentication/db/MyBasicMetadataAuthenticator";
const AUTHZ: &str = "/druid-ext/basic-security/authorization/db/MyBasicMetadataAuthorizer";
const ADMIN_PASSWORD: &str = "adm1n-pw";

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", B64.encode(format!("{user}:{password}")))
}

struct Secured {
    sim: Sim,
    _dir: tempfile::TempDir,
}

impl Secured {
    fn start() -> Secured {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin-password");
        std::fs::write(&file, format!("{ADMIN_PASSWORD}\n")).unwrap();
        let sim = Sim::spawn(&[
            "--auth",
            "basic",
            "--admin-password-file",
            file.to_str().unwrap(),
        ]);
        Secured { sim, _dir: dir }
    }

    fn as_user(
        &self,
        user: &str,
        pw: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Response {
        self.sim
            .call(method, path, &[("Authorization", &basic(user, pw))], body)
    }

    fn admin(&self, method: &str, path: &str, body: Option<&str>) -> Response {
        self.as_user("admin", ADMIN_PASSWORD, method, path, body)
    }

    /// A user with a password and one role holding `permissions`.
    fn user(&self, name: &str, pw: &str, permissions: &str) {
        for p in [
            format!("{AUTHN}/users/{name}"),
            format!("{AUTHZ}/users/{name}"),
            format!("{AUTHZ}/roles/{name}-role"),
            format!("{AUTHZ}/users/{name}/roles/{name}-role"),
        ] {
            assert_eq!(self.admin("POST", &p, None).status, 200, "{p}");
        }
        let cred = json!({"password": pw}).to_string();
        let r = self.admin(
            "POST",
            &format!("{AUTHN}/users/{name}/credentials"),
            Some(&cred),
        );
        assert_eq!(r.status, 200);
        let r = self.admin(
            "POST",
            &format!("{AUTHZ}/roles/{name}-role/permissions"),
            Some(permissions),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[test]
fn admin_exists_at_first_start_and_everything_but_health_and_is_leader_needs_it() {
    let s = Secured::start();
    assert_eq!(s.sim.get("/status/health").status, 200);
    assert_eq!(s.sim.get("/druid/coordinator/v1/isLeader").status, 200);
    for path in [
        "/status",
        "/druid/coordinator/v1/leader",
        "/druid/coordinator/v1/rules",
        "/druid/indexer/v1/supervisor",
        &format!("{AUTHN}/users"),
    ] {
        assert_eq!(s.sim.get(path).status, 401, "{path} without credentials");
        let wrong = s.as_user("admin", "guess", "GET", path, None);
        assert_eq!(wrong.status, 401, "{path} with a wrong password");
        let nobody = s.as_user("nobody", ADMIN_PASSWORD, "GET", path, None);
        assert_eq!(nobody.status, 401, "{path} as an unknown user");
        assert_eq!(s.admin("GET", path, None).status, 200, "{path} as admin");
    }
    let garbled = s
        .sim
        .call("GET", "/status", &[("Authorization", "Basic !!!")], None);
    assert_eq!(garbled.status, 401);
    let write = s.sim.post("/druid/coordinator/v1/rules/wiki", "[]");
    assert_eq!(write.status, 401);
    assert_eq!(
        s.admin("GET", "/druid/coordinator/v1/rules/history", None)
            .json(),
        json!([]),
        "the refused write left no trace"
    );

    assert_eq!(
        s.admin("GET", &format!("{AUTHN}/users"), None).json(),
        json!(["admin"])
    );
    assert_eq!(
        s.admin("GET", &format!("{AUTHZ}/users/admin"), None).json(),
        json!({"name": "admin", "roles": ["admin"]}),
        "admin exists twice, as Druid makes it"
    );
    let perms = s
        .admin("GET", &format!("{AUTHZ}/roles/admin/permissions"), None)
        .json();
    assert_eq!(
        perms.as_array().unwrap().len(),
        14,
        "every resource type, read and write: {perms}"
    );
}

#[test]
fn other_users_get_403_outside_their_roles_permissions() {
    let s = Secured::start();
    s.user(
        "wikiops",
        "wiki-pw",
        r#"[{"resource":{"name":"wiki.*","type":"DATASOURCE"},"action":"READ"},
            {"resource":{"name":"wiki","type":"DATASOURCE"},"action":"WRITE"},
            {"resource":{"name":"STATE","type":"STATE"},"action":"READ"}]"#,
    );
    let call = |m: &str, p: &str, b: Option<&str>| s.as_user("wikiops", "wiki-pw", m, p, b).status;
    assert_eq!(
        call("GET", "/druid/coordinator/v1/rules/wiki_edits", None),
        200,
        "the regex matches"
    );
    assert_eq!(call("GET", "/druid/coordinator/v1/rules/koala", None), 403);
    assert_eq!(
        call("GET", "/druid/coordinator/v1/rules/mywiki", None),
        403,
        "the whole name must match"
    );
    assert_eq!(
        call("POST", "/druid/coordinator/v1/rules/wiki", Some("[]")),
        200
    );
    assert_eq!(
        call("POST", "/druid/coordinator/v1/rules/wiki_edits", Some("[]")),
        403,
        "read is not write"
    );
    assert_eq!(call("GET", "/status", None), 200);
    assert_eq!(call("GET", "/druid/indexer/v1/leader", None), 200);
    assert_eq!(
        call("GET", "/druid/coordinator/v1/config", None),
        403,
        "CONFIG"
    );
    assert_eq!(
        call("GET", "/druid/coordinator/v1/lookups/config/all", None),
        403
    );
    assert_eq!(
        call("GET", &format!("{AUTHN}/users"), None),
        403,
        "security is CONFIG too"
    );
    assert_eq!(
        call(
            "POST",
            "/druid/coordinator/v1/config/compaction",
            Some(r#"{"dataSource":"wiki"}"#)
        ),
        200,
        "compaction by the datasource in the body"
    );
    assert_eq!(
        call(
            "POST",
            "/druid/coordinator/v1/config/compaction",
            Some(r#"{"dataSource":"koala"}"#)
        ),
        403
    );
    assert_eq!(
        call("GET", "/druid/coordinator/v1/config/compaction/wiki", None),
        200
    );
    let spec = json!({"type": "kafka", "spec": {"dataSchema": {"dataSource": "koala"},
        "ioConfig": {"topic": "t", "consumerProperties": {"bootstrap.servers": "k:9092"}}}});
    assert_eq!(
        call(
            "POST",
            "/druid/indexer/v1/supervisor",
            Some(&spec.to_string())
        ),
        403
    );
    assert_eq!(call("GET", "/druid/indexer/v1/supervisor/koala", None), 403);
    let forbidden = s.as_user(
        "wikiops",
        "wiki-pw",
        "GET",
        "/druid/coordinator/v1/config",
        None,
    );
    assert!(
        forbidden.body.contains("Allowed:false"),
        "{}",
        forbidden.body
    );
}

#[test]
fn a_new_password_replaces_the_old_and_a_user_without_one_cannot_log_in() {
    let s = Secured::start();
    s.user(
        "ops",
        "first-pw",
        r#"[{"resource":{"name":".*","type":"STATE"},"action":"READ"}]"#,
    );
    assert_eq!(
        s.as_user("ops", "first-pw", "GET", "/status", None).status,
        200
    );
    let r = s.admin(
        "POST",
        &format!("{AUTHN}/users/ops/credentials"),
        Some(r#"{"password":"second-pw"}"#),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        s.as_user("ops", "first-pw", "GET", "/status", None).status,
        401,
        "not remembered past a change"
    );
    assert_eq!(
        s.as_user("ops", "second-pw", "GET", "/status", None).status,
        200
    );

    assert_eq!(
        s.admin("POST", &format!("{AUTHN}/users/nopw"), None).status,
        200
    );
    assert_eq!(s.as_user("nopw", "", "GET", "/status", None).status, 401);
}

#[test]
fn a_follower_answers_401_before_it_redirects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let leader = "http://127.0.0.1:1";
    let mut node = Node::new(
        format!("http://{addr}"),
        "31.0.0".into(),
        Arc::new(Leaders::sole(leader)),
        Box::new(FileStore::memory()),
    )
    .unwrap();
    node.enable_basic_auth(ADMIN_PASSWORD).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // the listener is bound already, so requests queue until the runtime accepts them
    std::thread::spawn(move || rt.block_on(serve(listener, node)));
    let path = "/druid/coordinator/v1/rules/wiki?full";
    let anonymous = request(&addr, "GET", path, &[], None).unwrap();
    assert_eq!(
        anonymous.status, 401,
        "no redirect for an unauthenticated request"
    );
    assert_eq!(anonymous.header("location"), None);
    let admin = basic("admin", ADMIN_PASSWORD);
    let r = request(&addr, "GET", path, &[("Authorization", &admin)], None).unwrap();
    assert_eq!(r.status, 307);
    assert_eq!(
        r.header("location"),
        Some(format!("{leader}{path}").as_str())
    );
    assert_eq!(
        request(&addr, "GET", "/druid/coordinator/v1/isLeader", &[], None)
            .unwrap()
            .status,
        404
    );
}

#[test]
fn basic_auth_needs_a_password_file_that_holds_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    for args in [
        vec!["--auth", "basic"],
        vec!["--admin-password-file", empty.to_str().unwrap()],
        vec![
            "--auth",
            "basic",
            "--admin-password-file",
            empty.to_str().unwrap(),
        ],
        vec![
            "--auth",
            "kerberos",
            "--admin-password-file",
            empty.to_str().unwrap(),
        ],
    ] {
        let out = std::process::Command::new(common::SIM)
            .args(["--port", "0"])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        assert!(out.stdout.is_empty(), "{args:?} printed its active line");
    }
}
