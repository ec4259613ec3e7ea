//! Simulators on the real servers scripts/test.sh starts: each test gets its own database on the
//! shared PostgreSQL / MariaDB and its own chroot on the shared ZooKeeper quorum.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use dremio_sim::client::{Response, request};

// One way to start a simulator for both kinds of test; `mod common` is declared here, not in
// ha.rs / sql.rs, so that those see the cluster helpers alone.
#[path = "../common/mod.rs"]
mod common;

pub const SIM: &str = common::SIM;

/// Sessions this short make a killed leader's latch node vanish quickly (ZooKeeper's tickTime in
/// scripts/zookeeper.sh allows 1-10 s).
pub const SESSION_MS: &str = "2000";

/// Long enough for a session to expire and an election to follow, on a loaded machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A variable scripts/test.sh exports; its absence is a failure, never a skip.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests through scripts/test.sh, which starts the servers"
        )
    })
}

/// Tokio for the test's own database and ZooKeeper calls.
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

/// `url` with its database replaced by `db`.
fn with_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a database URL with a path");
    format!("{base}/{db}")
}

/// A new, empty database on the PostgreSQL of `LIFEBOAT_PG_URL`, as a URL.
pub fn postgres_db() -> String {
    let url = env("LIFEBOAT_PG_URL");
    let db = unique("druid");
    block(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("connect to LIFEBOAT_PG_URL");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
    });
    with_db(&url, &db)
}

/// A new, empty database on the MariaDB of `LIFEBOAT_MARIADB_URL`, as a URL.
pub fn mariadb_db() -> String {
    use mysql_async::prelude::Queryable;
    let url = env("LIFEBOAT_MARIADB_URL");
    let db = unique("druid");
    block(async {
        let mut conn = mysql_async::Conn::from_url(&url)
            .await
            .expect("connect to LIFEBOAT_MARIADB_URL");
        conn.query_drop(format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
    });
    with_db(&url, &db)
}

/// A fresh chroot on the shared quorum, as a connect string.
pub fn zk_chroot() -> String {
    let servers = env("LIFEBOAT_ZK_SERVERS");
    let root = format!("/{}", unique("druidsim"));
    block(async {
        let c = zookeeper_client::Client::connect(&servers).await.unwrap();
        let opts = zookeeper_client::CreateMode::Persistent
            .with_acls(zookeeper_client::Acls::anyone_all());
        c.create(&root, &[], &opts).await.unwrap();
    });
    format!("{servers}{root}")
}

/// The children of `path` under the connect string `connect`, each with its data as text
/// (none while `path` does not exist; a child gone before its read is left out).
pub fn zk_children(connect: &str, path: &str) -> Vec<(String, String)> {
    use zookeeper_client::Error::NoNode;
    block(async {
        let c = zookeeper_client::Client::connect(connect).await.unwrap();
        let children = match c.list_children(path).await {
            Err(NoNode) => Vec::new(),
            r => r.unwrap(),
        };
        let mut out = Vec::new();
        for child in children {
            match c.get_data(&format!("{path}/{child}")).await {
                Ok((data, _)) => out.push((child, String::from_utf8(data).unwrap())),
                Err(NoNode) => {}
                Err(e) => panic!("reading {path}/{child}: {e}"),
            }
        }
        out.sort();
        out
    })
}

/// Deletes the node at `path` (as an operator or another client might).
pub fn zk_delete(connect: &str, path: &str) {
    block(async {
        let c = zookeeper_client::Client::connect(connect).await.unwrap();
        c.delete(path, None).await.unwrap();
    })
}

/// A running simulator, SIGKILLed when dropped (by the [`common::Sim`] it holds).
pub struct Sim {
    node: Option<common::Sim>,
    pub port: u16,
}

impl Sim {
    pub fn start(args: &[&str]) -> Sim {
        let node = common::Sim::spawn(args);
        Sim {
            port: node.port,
            node: Some(node),
        }
    }

    /// One node of an HA set: leaders from `zk`, state in `db`.
    pub fn ha(zk: &str, db: &str) -> Sim {
        Sim::start(&[
            "--zookeeper",
            zk,
            "--zk-session-timeout-ms",
            SESSION_MS,
            "--metadata-url",
            db,
        ])
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Response {
        call(&self.url(), method, path, body)
    }

    pub fn get(&self, path: &str) -> Response {
        self.call("GET", path, None)
    }

    /// The leader this node names for a role (`coordinator` or `indexer`), if it names one.
    pub fn leader(&self, api: &str) -> Option<String> {
        let r = self.get(&format!("/druid/{api}/v1/leader"));
        (r.status == 200).then_some(r.body)
    }

    /// SIGKILL (what dropping a [`common::Sim`] does): the process cannot close its session,
    /// which then has to expire.
    pub fn kill(&mut self) {
        self.node = None;
    }
}

/// A request to the node at `base` (`http://host:port`), writes with author and comment.
pub fn call(base: &str, method: &str, path: &str, body: Option<&str>) -> Response {
    let addr = base.strip_prefix("http://").expect("an http:// URL");
    let headers = [
        ("X-Druid-Author", "lifeboat"),
        ("X-Druid-Comment", "from primary"),
    ];
    request(addr, method, path, &headers, body).expect("request")
}

/// Polls `probe` until `done` holds, or fails after [`DEADLINE`] naming `what`.
pub fn poll<T: std::fmt::Debug>(
    what: &str,
    mut probe: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let start = Instant::now();
    loop {
        let v = probe();
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: still {v:?} after {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
