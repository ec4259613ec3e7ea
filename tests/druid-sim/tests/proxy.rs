//! The Router-style management proxy over HTTP: `/proxy/coordinator/*` and `/proxy/overlord/*`
//! reach the leader without a redirect, with the caller's credentials and audit headers.
//! The proxying node runs in this process, so the test can move leadership.

mod common;

use std::net::TcpListener;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::Sim;
use dremio_sim::client::{Response, request};
use druid_sim::api::Node;
use druid_sim::leader::{Leaders, Role};
use druid_sim::server::serve;
use druid_sim::store::FileStore;
use serde_json::json;

struct Router {
    addr: String,
    leaders: Arc<Leaders>,
}

impl Router {
    /// A node that follows `leader`, with basic auth when `admin_password` is given.
    fn start(leader: &str, admin_password: Option<&str>) -> Router {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let leaders = Arc::new(Leaders::sole(leader));
        let mut node = Node::new(
            format!("http://{addr}"),
            "31.0.0".into(),
            leaders.clone(),
            Box::new(FileStore::memory()),
        )
        .unwrap();
        if let Some(pw) = admin_password {
            node.enable_basic_auth(pw).unwrap();
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // the listener is bound already, so requests queue until the runtime accepts them
        std::thread::spawn(move || rt.block_on(serve(listener, node)));
        Router { addr, leaders }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Response {
        request(&self.addr, method, path, headers, body).unwrap()
    }
}

#[test]
fn the_proxy_reaches_each_roles_leader_without_a_redirect() {
    let leader = Sim::start();
    let router = Router::start(&leader.url(), None);
    let rules = "/druid/coordinator/v1/rules/wiki";
    let audit = [
        ("X-Druid-Author", "lifeboat"),
        ("X-Druid-Comment", "via the router"),
    ];
    let w = router.call(
        "POST",
        &format!("/proxy/coordinator{rules}"),
        &audit,
        Some(r#"[{"type":"dropForever"}]"#),
    );
    assert_eq!((w.status, w.header("location")), (200, None), "{}", w.body);
    assert_eq!(
        leader.get(rules).json(),
        json!([{"type": "dropForever"}]),
        "written on the leader"
    );
    let hist = leader.get(&format!("{rules}/history")).json();
    assert_eq!(hist[0]["auditInfo"]["author"], "lifeboat");
    assert_eq!(hist[0]["auditInfo"]["comment"], "via the router");

    let r = router.call("GET", &format!("/proxy/coordinator{rules}?full"), &[], None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json().as_array().unwrap().len(),
        2,
        "the query went along: {}",
        r.body
    );
    let sup = router.call(
        "GET",
        "/proxy/overlord/druid/indexer/v1/supervisor",
        &[],
        None,
    );
    assert_eq!((sup.status, sup.json()), (200, json!([])));
    let is = router.call(
        "GET",
        "/proxy/coordinator/druid/coordinator/v1/isLeader",
        &[],
        None,
    );
    assert_eq!(
        is.json(),
        json!({"leader": true}),
        "the leader's own answer"
    );

    let direct = router.call("GET", rules, &[], None);
    assert_eq!(
        direct.status, 307,
        "outside the proxy a follower still redirects"
    );
    let not_proxy = router.call("GET", "/proxy/coordinatorx/status", &[], None);
    assert_eq!(
        not_proxy.header("location"),
        Some(format!("{}/proxy/coordinatorx/status", leader.url()).as_str()),
        "only the two prefixes are proxied"
    );
}

#[test]
fn the_proxy_answers_503_without_a_leader_and_502_when_it_is_gone() {
    let router = Router::start("http://127.0.0.1:1", None);
    let path = "/proxy/overlord/druid/indexer/v1/worker";
    let gone = router.call("GET", path, &[], None);
    assert_eq!(gone.status, 502, "{}", gone.body);
    router.leaders.set(Role::Overlord, None);
    assert_eq!(router.call("GET", path, &[], None).status, 503);
    let me = format!("http://{}", router.addr);
    router.leaders.set(Role::Overlord, Some(me));
    let here = router.call("GET", path, &[], None);
    assert_eq!(
        (here.status, here.body.as_str()),
        (200, ""),
        "led here: answered here"
    );
}

#[test]
fn the_proxy_authenticates_and_passes_the_credentials_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "adm1n").unwrap();
    let leader = Sim::spawn(&[
        "--auth",
        "basic",
        "--admin-password-file",
        file.to_str().unwrap(),
    ]);
    let router = Router::start(&leader.url(), Some("adm1n"));
    let path = "/proxy/coordinator/druid/coordinator/v1/config";
    assert_eq!(
        router.call("GET", path, &[], None).status,
        401,
        "refused at the router"
    );
    let admin = format!("Basic {}", B64.encode("admin:adm1n"));
    let ok = router.call("GET", path, &[("Authorization", &admin)], None);
    assert_eq!(
        ok.status, 200,
        "the leader saw the credentials: {}",
        ok.body
    );
    assert_eq!(ok.json()["maxSegmentsToMove"], 100);
}
