//! An HA set of simulators on the shared ZooKeeper quorum and PostgreSQL (scripts/test.sh starts
//! them): one leader per role elected through Curator latches, followers redirecting to it, a
//! failover after SIGKILL, and a real Apache Curator participant agreeing on the order.

mod cluster;

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use cluster::{
    DEADLINE, SESSION_MS, Sim, call, env, poll, postgres_db, zk_children, zk_chroot, zk_delete,
};
use dremio_sim::client::{Response, split_url};
use serde_json::{Value, json};

const APIS: [&str; 2] = ["coordinator", "indexer"];

/// Waits until every node names the same leader for both roles, and returns it per role.
fn agreed(nodes: &[&Sim]) -> [String; 2] {
    APIS.map(|api| {
        let seen = poll(
            &format!("one {api} leader named by all"),
            || nodes.iter().map(|n| n.leader(api)).collect::<Vec<_>>(),
            |v| v[0].is_some() && v.iter().all(|l| l == &v[0]),
        );
        seen[0].clone().unwrap()
    })
}

/// `isLeader`: 200 `{"leader":true}` or 404 `{"leader":false}`, nothing else.
fn is_leader(n: &Sim, api: &str) -> bool {
    let r = n.get(&format!("/druid/{api}/v1/isLeader"));
    assert!(r.status == 200 || r.status == 404, "isLeader: {}", r.status);
    assert_eq!(r.json(), json!({"leader": r.status == 200}));
    r.status == 200
}

/// Follows a 307's `Location` by hand, as lifeboat will (re-sending the same request).
fn follow(r: &Response, method: &str, body: Option<&str>) -> Response {
    assert_eq!(r.status, 307);
    let (addr, path) = split_url(r.header("location").unwrap()).unwrap();
    call(&format!("http://{addr}"), method, &path, body)
}

#[test]
fn an_ha_pair_elects_one_leader_per_role_redirects_to_it_and_fails_over() {
    let zk = zk_chroot();
    let db = postgres_db();
    let a = Sim::ha(&zk, &db);
    let b = Sim::ha(&zk, &db);
    let mut nodes = [a, b];
    let leaders = agreed(&[&nodes[0], &nodes[1]]);
    for (api, leader) in APIS.iter().zip(&leaders) {
        let leading: Vec<bool> = nodes.iter().map(|n| is_leader(n, api)).collect();
        assert_eq!(
            leading.iter().filter(|l| **l).count(),
            1,
            "{api}: {leading:?}"
        );
        let who = leading.iter().position(|l| *l).unwrap();
        assert_eq!(
            leader,
            &nodes[who].url(),
            "{api}: isLeader and leader agree"
        );
    }

    // every process announces both roles, whoever leads
    let zk_root = "/druid/internal-discovery";
    for (role, node_type) in [("COORDINATOR", "coordinator"), ("OVERLORD", "overlord")] {
        let announced = zk_children(&zk, &format!("{zk_root}/{role}"));
        let names: Vec<&str> = announced.iter().map(|(n, _)| n.as_str()).collect();
        let mut want: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        want.sort();
        assert_eq!(names, want);
        let v: Value = serde_json::from_str(&announced[0].1).unwrap();
        assert_eq!(v["nodeType"], node_type);
    }

    let c = nodes.iter().position(|n| n.url() == leaders[0]).unwrap();
    let (leader, follower) = (&nodes[c], &nodes[1 - c]);
    let path = "/druid/coordinator/v1/rules/wiki?full";
    let r = follower.get(path);
    assert_eq!(r.status, 307);
    assert_eq!(
        r.header("location"),
        Some(format!("{}{path}", leader.url()).as_str())
    );

    let rules = r#"[{"type": "loadByPeriod", "period": "P1M", "tieredReplicants": {"hot": 1}}, {"type": "dropForever"}]"#;
    let w = follower.call("POST", "/druid/coordinator/v1/rules/wiki", Some(rules));
    assert_eq!(w.status, 307, "a follower must not write");
    assert_eq!(follow(&w, "POST", Some(rules)).status, 200);
    let read = follow(
        &follower.get("/druid/coordinator/v1/rules/wiki"),
        "GET",
        None,
    );
    assert_eq!(read.json()[0]["period"], "P1M");
    assert_eq!(read.json()[1]["type"], "dropForever");

    // SIGKILL the coordinator leader: the survivor leads once the dead session expires
    let survivor = nodes[1 - c].url();
    nodes[c].kill();
    let alive = &nodes[1 - c];
    for api in APIS {
        poll(
            &format!("the survivor leads the {api}"),
            || alive.leader(api),
            |l| l.as_deref() == Some(survivor.as_str()),
        );
        assert!(is_leader(alive, api));
    }
    let rules = alive.get("/druid/coordinator/v1/rules/wiki").json();
    assert_eq!(rules[0]["period"], "P1M", "the state survived the failover");
    let history = alive.get("/druid/coordinator/v1/rules/wiki/history").json();
    assert_eq!(history.as_array().map(Vec::len), Some(1));
    assert_eq!(history[0]["auditInfo"]["author"], "lifeboat");
    assert_eq!(history[0]["auditInfo"]["comment"], "from primary");
}

#[test]
fn without_a_reachable_zookeeper_nobody_leads() {
    // a port nothing listens on: the node must not fall back to leading alone
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let zk = format!("127.0.0.1:{port}");
    let n = Sim::start(&["--zookeeper", &zk, "--zk-session-timeout-ms", SESSION_MS]);
    for api in APIS {
        assert_eq!(n.get(&format!("/druid/{api}/v1/leader")).status, 503);
        assert_eq!(n.get(&format!("/druid/{api}/v1/isLeader")).status, 404);
    }
    assert_eq!(n.get("/druid/coordinator/v1/rules").status, 503);
    assert_eq!(n.get("/druid/indexer/v1/worker").status, 503);
    assert_eq!(n.get("/status/health").status, 200);
}

const LATCH: &str = "/druid/coordinator/_COORDINATOR";

/// Starts `a`, waits until it is in the latch, then starts the other: the latch orders by
/// joining, which a process's start does not fix.
fn pair_in_order(zk: &str, start_a: impl FnOnce() -> Sim, db: &str) -> (Sim, Sim) {
    let a = start_a();
    poll(
        "the first in the latch",
        || zk_children(zk, LATCH).len(),
        |n| *n == 1,
    );
    let b = Sim::ha(zk, db);
    poll(
        "both in the latch",
        || zk_children(zk, LATCH).len(),
        |n| *n == 2,
    );
    (a, b)
}

#[test]
fn a_node_whose_latch_node_is_deleted_joins_again_at_the_back() {
    let zk = zk_chroot();
    let db = postgres_db();
    let (a, b) = pair_in_order(&zk, || Sim::ha(&zk, &db), &db);
    assert_eq!(agreed(&[&a, &b])[0], a.url());
    let (node, _) = zk_children(&zk, LATCH)
        .into_iter()
        .find(|(_, id)| *id == a.url())
        .unwrap();
    zk_delete(&zk, &format!("{LATCH}/{node}"));
    poll(
        "a back in the latch, behind b",
        || {
            (
                a.leader("coordinator"),
                b.leader("coordinator"),
                zk_children(&zk, LATCH),
            )
        },
        |(la, lb, c)| {
            la.as_deref() == Some(&b.url())
                && lb == la
                && c.len() == 2
                && c.iter().all(|(n, _)| *n != node)
        },
    );
    assert!(!is_leader(&a, "coordinator"));
    assert_eq!(
        a.leader("indexer"),
        Some(a.url()),
        "the other latch is untouched"
    );
}

/// A TCP proxy to one ZooKeeper server that a test can cut (every connection closed, new ones
/// refused) and restore: a partition between one node and the quorum.
struct Partition {
    port: u16,
    open: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Partition {
    fn to(server: &str) -> Partition {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (o, c, server) = (open.clone(), conns.clone(), server.to_string());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if !o.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let Ok(upstream) = TcpStream::connect(&server) else {
                    continue;
                };
                let mut held = c.lock().unwrap();
                held.push(client.try_clone().unwrap());
                held.push(upstream.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
                pipe(upstream, client);
            }
        });
        Partition { port, open, conns }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn heal(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
    });
}

#[test]
fn a_partitioned_leader_stops_leading_and_rejoins_behind_the_other() {
    let zk = zk_chroot();
    let db = postgres_db();
    let servers = env("LIFEBOAT_ZK_SERVERS");
    let chroot = &zk[servers.len()..];
    let first = servers.split(',').next().unwrap();
    let partition = Partition::to(first);
    let via = format!("127.0.0.1:{}{chroot}", partition.port);
    let (a, b) = pair_in_order(&zk, || Sim::ha(&via, &db), &db);
    assert_eq!(agreed(&[&a, &b]), [a.url(), a.url()]);

    partition.cut();
    // no stale belief: a names nobody (and serves nothing) before its session has even expired
    for api in APIS {
        poll(
            &format!("a names no {api} leader"),
            || a.leader(api),
            Option::is_none,
        );
    }
    assert_eq!(a.get("/druid/coordinator/v1/rules").status, 503);
    for api in APIS {
        poll(
            &format!("b leads the {api}"),
            || b.leader(api),
            |l| l.as_deref() == Some(&b.url()),
        );
    }

    partition.heal();
    assert_eq!(
        agreed(&[&a, &b]),
        [b.url(), b.url()],
        "a re-joined at the back"
    );
    assert!(!is_leader(&a, "coordinator") && !is_leader(&a, "indexer"));
    let r = a.get("/druid/coordinator/v1/rules");
    assert_eq!(
        r.header("location"),
        Some(format!("{}/druid/coordinator/v1/rules", b.url()).as_str())
    );
}

/// A real Curator LeaderLatch participant (tests/curator/Participant.java, compiled here) with
/// a participant id of its own. It answers `who` on stdin with `leader-id <id>`, the leader as
/// Curator's own LeaderLatch sees it.
struct Curator {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// What its LeaderLatchListener said last.
    elected: bool,
}

fn compile_participant() -> PathBuf {
    let classes = tempfile::tempdir().unwrap().keep();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/curator/Participant.java");
    let out = Command::new("javac")
        .args(["-d", classes.to_str().unwrap()])
        .args(["-cp", "/usr/share/java/curator-recipes.jar"])
        .arg(source)
        .output()
        .expect("javac (default-jdk-headless, which scripts/zookeeper.sh installs)");
    assert!(
        out.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    classes
}

impl Curator {
    fn start(classes: &Path, zk: &str, id: &str) -> Curator {
        let cp = format!(
            "{}:/usr/share/java/curator-recipes.jar:/usr/share/java/slf4j-nop.jar",
            classes.display()
        );
        let mut child = Command::new("java")
            .args(["-Xmx64m", "-cp", &cp, "Participant", zk])
            .args(["/druid/coordinator/_COORDINATOR", SESSION_MS, id])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("java");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Curator {
            child,
            stdin,
            lines,
            elected: false,
        }
    }

    /// The next line with `prefix`, noting the listener's lines on the way.
    fn line(&mut self, prefix: &str) -> String {
        loop {
            let l = self
                .lines
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("Curator never said {prefix:?}"));
            match l.as_str() {
                "leader" => self.elected = true,
                "not leader" => self.elected = false,
                _ => {}
            }
            if let Some(rest) = l.strip_prefix(prefix) {
                return rest.to_string();
            }
        }
    }

    fn who(&mut self) -> String {
        writeln!(self.stdin, "who").unwrap();
        self.stdin.flush().unwrap();
        self.line("leader-id ")
    }

    /// SIGTERM: Curator closes its latch, which hands over at once.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Curator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until Curator and every node name `leader` as the coordinator's leader: a latch whose
/// leader has died but whose session has not yet expired still names the dead one, everywhere.
fn all_name(curator: &mut Curator, nodes: &[&Sim], leader: &str) {
    poll(
        &format!("Curator and the simulators name {leader}"),
        || {
            let mut v = vec![Some(curator.who())];
            v.extend(nodes.iter().map(|n| n.leader("coordinator")));
            v
        },
        |v| v.iter().all(|l| l.as_deref() == Some(leader)),
    );
}

#[test]
fn the_simulators_and_a_curator_latch_agree_on_one_order() {
    let classes = compile_participant();
    let zk = zk_chroot();
    let db = postgres_db();
    let curator_id = "http://127.0.0.1:1";

    // Curator first: it leads, and the simulators redirect to the id it joined with
    let mut first = Curator::start(&classes, &zk, curator_id);
    assert_eq!(first.line(""), "leader");
    assert_eq!(first.who(), curator_id);
    let a = Sim::ha(&zk, &db);
    // the simulators' order in the latch is the order they joined it, not the order they started
    let latch = "/druid/coordinator/_COORDINATOR";
    poll(
        "a in the latch",
        || zk_children(&zk, latch).len(),
        |n| *n == 2,
    );
    let mut b = Sim::ha(&zk, &db);
    let joined = poll(
        "b in the latch",
        || zk_children(&zk, latch),
        |c| c.len() == 3,
    );
    let ids: Vec<&str> = joined.iter().map(|(_, id)| id.as_str()).collect();
    assert!(
        ids.contains(&b.url().as_str()),
        "participant ids are node URLs: {ids:?}"
    );
    assert!(
        joined
            .iter()
            .all(|(n, _)| n.starts_with("_c_") && n.contains("-latch-"))
    );
    all_name(&mut first, &[&a, &b], curator_id);
    let r = b.get("/druid/coordinator/v1/config");
    assert_eq!(
        r.header("location"),
        Some("http://127.0.0.1:1/druid/coordinator/v1/config")
    );

    // Curator hands over on close: the first simulator to join leads, in everyone's eyes
    first.stop();
    let mut second = Curator::start(&classes, &zk, "http://127.0.0.1:2");
    all_name(&mut second, &[&a, &b], &a.url());
    assert!(
        !second.elected,
        "Curator must not lead behind two participants"
    );

    // SIGKILL the leading simulator, then the other: Curator, at the back, leads last
    drop(a);
    all_name(&mut second, &[&b], &b.url());
    assert!(!second.elected);
    b.kill();
    poll(
        "Curator elected",
        || (second.who(), second.elected),
        |(who, elected)| who == "http://127.0.0.1:2" && *elected,
    );
}
