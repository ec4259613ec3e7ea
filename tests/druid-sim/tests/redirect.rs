//! A node that does not lead, over HTTP: it redirects what only the leader answers, answers
//! `/status`, `/leader` and `/isLeader` itself, and says 503 while no leader is known. The
//! node runs in this process so the test can move leadership as a latch watcher will.

use std::net::TcpListener;
use std::sync::Arc;

use dremio_sim::client::{Response, request};
use druid_sim::api::Node;
use druid_sim::leader::{Leaders, Role};
use druid_sim::server::serve;
use druid_sim::store::FileStore;
use serde_json::json;

const OTHER: &str = "http://127.0.0.1:1";

struct Follower {
    addr: String,
    me: String,
    leaders: Arc<Leaders>,
}

impl Follower {
    fn start() -> Follower {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let me = format!("http://{addr}");
        let leaders = Arc::new(Leaders::sole(OTHER));
        let node = Node::new(
            me.clone(),
            "31.0.0".into(),
            leaders.clone(),
            Box::new(FileStore::memory()),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // the listener is bound already, so requests queue until the runtime accepts them
        std::thread::spawn(move || rt.block_on(serve(listener, node)));
        Follower { addr, me, leaders }
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Response {
        request(&self.addr, method, path, &[], body).unwrap()
    }
}

#[test]
fn a_follower_redirects_to_the_leader_with_the_same_path_and_query() {
    let f = Follower::start();
    let r = f.call("GET", "/druid/coordinator/v1/rules/wiki?full", None);
    assert_eq!(r.status, 307);
    assert_eq!(
        r.header("location"),
        Some(format!("{OTHER}/druid/coordinator/v1/rules/wiki?full").as_str())
    );
    let w = f.call("POST", "/druid/coordinator/v1/rules/wiki", Some("[]"));
    assert_eq!(
        (w.status, w.header("location")),
        (
            307,
            Some(format!("{OTHER}/druid/coordinator/v1/rules/wiki").as_str())
        )
    );

    assert_eq!(f.call("GET", "/status/health", None).status, 200);
    let l = f.call("GET", "/druid/indexer/v1/leader", None);
    assert_eq!((l.status, l.body.as_str()), (200, OTHER));
    let is = f.call("GET", "/druid/coordinator/v1/isLeader", None);
    assert_eq!((is.status, is.json()), (404, json!({"leader": false})));

    // once it leads, the redirected write had not happened here
    f.leaders.set(Role::Coordinator, Some(f.me.clone()));
    assert_eq!(
        f.call("GET", "/druid/coordinator/v1/isLeader", None).status,
        200
    );
    assert_eq!(
        f.call("GET", "/druid/coordinator/v1/rules/history", None)
            .json(),
        json!([])
    );
    let worker = f.call("GET", "/druid/indexer/v1/worker", None);
    assert_eq!(worker.status, 307, "the Overlord still follows");
    f.leaders.set(Role::Overlord, Some(f.me.clone()));
    let worker = f.call("GET", "/druid/indexer/v1/worker", None);
    assert_eq!((worker.status, worker.body.as_str()), (200, ""));
}

#[test]
fn with_no_leader_a_node_answers_503_but_still_its_status() {
    let f = Follower::start();
    f.leaders.set(Role::Coordinator, None);
    assert_eq!(
        f.call("GET", "/druid/coordinator/v1/config", None).status,
        503
    );
    assert_eq!(
        f.call("GET", "/druid/coordinator/v1/leader", None).status,
        503
    );
    assert_eq!(
        f.call("GET", "/druid/coordinator/v1/isLeader", None).status,
        404
    );
    assert_eq!(f.call("GET", "/status", None).json()["version"], "31.0.0");
    assert_eq!(f.call("GET", "/druid/indexer/v1/leader", None).body, OTHER);
}
