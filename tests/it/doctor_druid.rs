//! `lifeboat doctor --druid-url` against real parts: druid-sim processes (an HA pair electing
//! through Curator-style latches on the shared ZooKeeper quorum, or a node alone), a two-node
//! quorum of its own, and the PostgreSQL and MariaDB servers (with replicas) that scripts/test.sh
//! starts once per run.

use std::process::{Child, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use zookeeper_client as zkc;

use crate::support::{block, druid, env, free_port, lifeboat, stderr, zk_chroot, zk_script};

/// Short sessions so that a killed node's latch entries vanish quickly (tickTime is 500 ms).
const SESSION_MS: &str = "2000";
const PASSWORD_VAR: &str = "LIFEBOAT_DRUID_METADATA_PASSWORD";

/// A running druid-sim, SIGKILLed (by its own pid) when dropped.
struct Druid {
    child: Child,
    url: String,
}

impl Druid {
    fn start(extra: &[&str]) -> Druid {
        let (child, url) = druid::spawn(extra);
        Druid { child, url }
    }

    /// One node of an HA set electing through `connect`'s latches.
    fn ha(connect: &str) -> Druid {
        Druid::start(&[
            "--zookeeper",
            connect,
            "--zk-session-timeout-ms",
            SESSION_MS,
        ])
    }

    /// [`Druid::ha`] on the metadata store at `metadata` (a URL with its password), as Druid's
    /// nodes share one: they create its tables, `druid_segments` among them.
    fn ha_on(connect: &str, metadata: &str) -> Druid {
        Druid::start(&[
            "--zookeeper",
            connect,
            "--zk-session-timeout-ms",
            SESSION_MS,
            "--metadata-url",
            metadata,
        ])
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Druid {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `lifeboat --json doctor ARGS`: its exit code and its JSON report.
fn doctor(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Value, Output) {
    let mut all = vec!["--json", "doctor"];
    all.extend_from_slice(args);
    let out = lifeboat(&all, env);
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), report, out)
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

fn status<'a>(report: &'a Value, id: &str) -> &'a str {
    check(report, id)["status"].as_str().unwrap()
}

/// Runs doctor until `done` holds on its report, for at most 60 s (an election or a session's
/// expiry takes a few seconds); returns that run.
fn doctor_until(
    args: &[&str],
    env: &[(&str, &str)],
    done: impl Fn(Option<i32>, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, report, out) = doctor(args, env);
        if done(code, &report) {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "doctor never got there; last exit {code:?}: {report:#}\n{}",
            stderr(&out)
        );
        // each run opens ZooKeeper sessions: pace them
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A database URL split into the one doctor is given (no password) and its password.
fn without_password(url: &str) -> (String, String) {
    let mut u = url::Url::parse(url).unwrap();
    let password = u.password().expect("a URL with a password").to_string();
    u.set_password(None).unwrap();
    (u.to_string(), password)
}

#[test]
fn a_healthy_ha_set_up_passes_and_a_pair_with_one_node_killed_warns() {
    let connect = zk_chroot(&env("LIFEBOAT_ZK_SERVERS"), "druid-doctor");
    // A database of its own on the replicated PostgreSQL, shared by both nodes.
    let store = crate::support::metastore::fresh_pg("LIFEBOAT_PG_URL");
    let mut nodes = [
        Druid::ha_on(&connect, &store.url),
        Druid::ha_on(&connect, &store.url),
    ];
    let broker = Druid::start(&[]);
    let urls = format!("{},{}", nodes[0].url, nodes[1].url);
    let args = [
        "--druid-url",
        &urls,
        "--zookeeper",
        &connect,
        "--druid-broker",
        &broker.url,
        "--druid-metadata",
        &store.shown,
    ];
    let env = [(PASSWORD_VAR, store.password.as_str())];
    let healthy = doctor_until(&args, &env, |code, _| code == Some(0));
    assert_eq!(healthy["status"], "pass");
    let checks = healthy["checks"].as_array().unwrap();
    let not_passed: Vec<&Value> = checks.iter().filter(|c| c["status"] != "pass").collect();
    assert!(
        not_passed.is_empty(),
        "every check ran and passed: {not_passed:#?}"
    );
    for id in [
        "zk.size",
        "coordinator.latch",
        "overlord.redirect",
        "broker.health",
        "metastore.replication",
        "deepstore.segments",
    ] {
        check(&healthy, id);
    }
    let leader = check(&healthy, "coordinator.leader")["evidence"]["leaders"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        check(&healthy, "coordinator.latch")["summary"]
            .as_str()
            .unwrap()
            .contains(&leader)
    );

    // Kill whichever node leads the Coordinators: once its session expires the other leads
    // alone, which works but has no standby.
    let dead = nodes.iter().position(|n| n.url == leader).unwrap();
    nodes[dead].kill();
    let survivor = nodes[1 - dead].url.clone();
    let alone = doctor_until(&args, &env, |code, _| code == Some(10));
    assert_eq!(status(&alone, "coordinator.standby"), "warn");
    assert_eq!(status(&alone, "overlord.standby"), "warn");
    assert_eq!(
        status(&alone, "druid.status"),
        "warn",
        "the dead node is named"
    );
    for id in ["coordinator.leader", "coordinator.latch", "overlord.latch"] {
        assert_eq!(status(&alone, id), "pass", "{id}: {alone:#}");
    }
    assert_eq!(
        check(&alone, "coordinator.leader")["evidence"]["leaders"][0],
        survivor.as_str()
    );
    assert!(
        check(&alone, "coordinator.standby")["remedy"]
            .as_str()
            .unwrap()
            .contains("second Coordinator")
    );
}

#[test]
fn a_sole_node_leads_both_roles_and_warns_for_want_of_a_standby() {
    let node = Druid::start(&[]);
    let dead_broker = format!("http://127.0.0.1:{}", free_port());
    let (code, report, out) = doctor(&["--druid-url", &node.url], &[]);
    assert_eq!(code, Some(10), "{report:#}\n{}", stderr(&out));
    for role in ["coordinator", "overlord"] {
        assert_eq!(status(&report, &format!("{role}.leader")), "pass");
        assert_eq!(status(&report, &format!("{role}.standby")), "warn");
        assert_eq!(status(&report, &format!("{role}.redirect")), "skip");
        assert_eq!(status(&report, &format!("{role}.latch")), "skip");
    }
    assert_eq!(status(&report, "druid.status"), "pass");
    assert_eq!(
        check(&report, "druid.status")["evidence"]["versions"][&node.url],
        "31.0.0"
    );
    // Dremio's installation checks do not run in Druid mode
    let ids: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(
        !ids.iter()
            .any(|i| i.starts_with("conf.") || i.starts_with("volume.") || i.starts_with("lock.")),
        "{ids:?}"
    );

    let urls = format!("{},{dead_broker}", node.url);
    let (code, report, _) = doctor(&["--druid-url", &node.url, "--druid-broker", &urls], &[]);
    assert_eq!(code, Some(11));
    let broker = check(&report, "broker.health");
    assert_eq!(broker["status"], "fail");
    assert!(
        broker["summary"].as_str().unwrap().contains(&dead_broker),
        "{broker:#}"
    );
    assert_eq!(broker["evidence"]["brokers"][&node.url], "healthy");
}

#[test]
fn a_latch_that_names_another_leader_fails_with_both_named() {
    let connect = zk_chroot(&env("LIFEBOAT_ZK_SERVERS"), "druid-doctor");
    // A node alone leads over REST, while the latch (written here as Curator writes it) names
    // another node.
    let node = Druid::start(&[]);
    let stranger = format!("http://127.0.0.1:{}", free_port());
    block(async {
        let c = zkc::Client::connect(&connect).await.unwrap();
        let folder = zkc::CreateMode::Persistent.with_acls(zkc::Acls::anyone_all());
        for path in [
            "/druid",
            "/druid/coordinator",
            "/druid/coordinator/_COORDINATOR",
        ] {
            c.create(path, &[], &folder).await.unwrap();
        }
        let seq = zkc::CreateMode::PersistentSequential.with_acls(zkc::Acls::anyone_all());
        let node = "/druid/coordinator/_COORDINATOR/_c_0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b-latch-";
        c.create(node, stranger.as_bytes(), &seq).await.unwrap();
    });
    let (code, report, _) = doctor(&["--druid-url", &node.url, "--zookeeper", &connect], &[]);
    assert_eq!(code, Some(11));
    let latch = check(&report, "coordinator.latch");
    assert_eq!(latch["status"], "fail");
    let summary = latch["summary"].as_str().unwrap();
    assert!(
        summary.contains(&stranger) && summary.contains(&node.url),
        "{summary}"
    );
    assert_eq!(latch["evidence"]["participants"][0], stranger.as_str());
    // nobody joined the Overlord's latch at all
    let overlord = check(&report, "overlord.latch");
    assert_eq!(overlord["status"], "fail");
    assert!(
        overlord["summary"]
            .as_str()
            .unwrap()
            .contains("/druid/overlord/_OVERLORD")
    );
}

/// A quorum of two, started (and stopped by pid) through scripts/zookeeper.sh.
struct TwoNodeQuorum {
    state: tempfile::TempDir,
}

impl TwoNodeQuorum {
    fn start() -> (TwoNodeQuorum, String) {
        let state = tempfile::tempdir().unwrap();
        zk_script(&["start", state.path().to_str().unwrap(), "2"]);
        let envfile = std::fs::read_to_string(state.path().join("env")).unwrap();
        let servers = envfile
            .lines()
            .find_map(|l| l.strip_prefix("export LIFEBOAT_ZK_SERVERS="))
            .expect("LIFEBOAT_ZK_SERVERS in the env file")
            .to_string();
        (TwoNodeQuorum { state }, servers)
    }
}

impl Drop for TwoNodeQuorum {
    fn drop(&mut self) {
        zk_script(&["stop", self.state.path().to_str().unwrap()]);
    }
}

#[test]
fn a_two_node_zookeeper_warns() {
    let (_quorum, servers) = TwoNodeQuorum::start();
    let connect = zk_chroot(&servers, "druid-doctor");
    let pair = [Druid::ha(&connect), Druid::ha(&connect)];
    let urls = format!("{},{}", pair[0].url, pair[1].url);
    let args = ["--druid-url", &urls, "--zookeeper", &connect];
    // the pair elects its leaders through this quorum: everything else passes
    let elected = |r: &Value| {
        ["coordinator", "overlord"].iter().all(|role| {
            status(r, &format!("{role}.latch")) == "pass"
                && status(r, &format!("{role}.redirect")) == "pass"
        })
    };
    let report = doctor_until(&args, &[], |_, r| r["checks"].is_array() && elected(r));
    assert_eq!(status(&report, "zk.size"), "warn", "{report:#}");
    assert_eq!(check(&report, "zk.size")["evidence"]["servers"], 2);
    let remedy = check(&report, "zk.size")["remedy"].as_str().unwrap();
    assert!(remedy.contains("1 or 3"), "{remedy}");
    // a quorum of two also has no server to spare; nothing else is wrong
    let warned: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "warn" || c["status"] == "fail")
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(warned, ["zk.size", "zk.quorum"], "{report:#}");
    assert_eq!(report["status"], "warn");
}

/// doctor's metastore checks alone (one node given: Druid mode needs one).
fn metastore(url_var: &str, extra_env: &[(&str, &str)]) -> (Option<i32>, Value) {
    let node = Druid::start(&[]);
    let (url, password) = without_password(&env(url_var));
    let mut env: Vec<(&str, &str)> = vec![(PASSWORD_VAR, &password)];
    env.extend_from_slice(extra_env);
    let (code, report, out) = doctor(&["--druid-url", &node.url, "--druid-metadata", &url], &env);
    assert!(report.is_object(), "{}", stderr(&out));
    (code, report)
}

#[test]
fn postgres_with_a_streaming_replica_passes_and_without_one_fails() {
    let (_, primary) = metastore("LIFEBOAT_PG_URL", &[]);
    assert_eq!(status(&primary, "metastore.connect"), "pass");
    let replication = check(&primary, "metastore.replication");
    assert_eq!(replication["status"], "pass", "{replication:#}");
    assert_eq!(replication["evidence"]["streaming"], 1);
    let replica = &replication["evidence"]["replicas"][0];
    assert_eq!(replica["state"], "streaming");
    assert!(replica["lag_bytes"].is_number(), "lag figures: {replica:#}");

    let (code, solo) = metastore("LIFEBOAT_PG_SOLO_URL", &[]);
    assert_eq!(code, Some(11));
    let replication = check(&solo, "metastore.replication");
    assert_eq!(replication["status"], "fail");
    assert!(
        replication["remedy"]
            .as_str()
            .unwrap()
            .contains("streaming replica")
    );

    let (_, standby) = metastore("LIFEBOAT_PG_REPLICA_URL", &[]);
    assert!(
        check(&standby, "metastore.connect")["summary"]
            .as_str()
            .unwrap()
            .contains("standby")
    );
    let streams = check(&standby, "metastore.replication");
    assert_eq!(streams["status"], "pass", "{streams:#}");
    assert_eq!(streams["evidence"]["receiver"]["status"], "streaming");
}

#[test]
fn mariadb_primary_with_a_replica_passes_and_the_replicas_threads_are_read() {
    let (_, primary) = metastore("LIFEBOAT_MARIADB_URL", &[]);
    let replication = check(&primary, "metastore.replication");
    assert_eq!(replication["status"], "pass", "{replication:#}");
    assert_eq!(replication["evidence"]["log_bin"], true);
    assert!(
        replication["evidence"]["binlog_dump_threads"]
            .as_u64()
            .unwrap()
            >= 1
    );

    let (_, replica) = metastore("LIFEBOAT_MARIADB_REPLICA_URL", &[]);
    assert!(
        check(&replica, "metastore.connect")["summary"]
            .as_str()
            .unwrap()
            .contains("replica")
    );
    let threads = check(&replica, "metastore.replication");
    assert_eq!(threads["status"], "pass", "{threads:#}");
    let channel = &threads["evidence"]["channels"][0];
    assert_eq!(
        (&channel["io_running"], &channel["sql_running"]),
        (&Value::from("Yes"), &Value::from("Yes"))
    );
    assert!(
        channel["seconds_behind"].is_u64(),
        "the lag is shown: {channel:#}"
    );
}

#[test]
fn a_password_in_the_metadata_url_is_refused_and_a_wrong_one_fails() {
    let node = Druid::start(&[]);
    let url = env("LIFEBOAT_PG_URL");
    let (_, password) = without_password(&url);
    let (code, _, out) = doctor(&["--druid-url", &node.url, "--druid-metadata", &url], &[]);
    assert_eq!(code, Some(2));
    let err = stderr(&out);
    assert!(err.contains(PASSWORD_VAR), "a hint: {err}");
    assert!(
        !err.contains(&password),
        "the password is never echoed: {err}"
    );

    for var in ["LIFEBOAT_PG_URL", "LIFEBOAT_MARIADB_URL"] {
        let (code, report) = metastore_with_password(var, "not-the-password");
        assert_eq!(code, Some(11));
        let connect = check(&report, "metastore.connect");
        assert_eq!(connect["status"], "fail", "{var}: {connect:#}");
        assert!(
            connect["remedy"].as_str().unwrap().contains(PASSWORD_VAR),
            "{connect:#}"
        );
        assert_eq!(status(&report, "metastore.replication"), "skip");
    }
}

#[test]
fn an_unreachable_metadata_store_fails_with_what_to_do() {
    let node = Druid::start(&[]);
    for scheme in ["postgres", "mysql"] {
        let url = format!("{scheme}://lifeboat@127.0.0.1:{}/druid", free_port());
        let (code, report, _) = doctor(&["--druid-url", &node.url, "--druid-metadata", &url], &[]);
        assert_eq!(code, Some(11));
        let connect = check(&report, "metastore.connect");
        assert_eq!(connect["status"], "fail", "{connect:#}");
        assert!(
            connect["summary"].as_str().unwrap().contains(&url),
            "{connect:#}"
        );
        let remedy = connect["remedy"].as_str().unwrap();
        assert!(
            remedy.contains("is up, that HOST:PORT reaches it"),
            "{remedy}"
        );
    }
}

fn metastore_with_password(url_var: &str, password: &str) -> (Option<i32>, Value) {
    let node = Druid::start(&[]);
    let (url, _) = without_password(&env(url_var));
    let (code, report, _) = doctor(
        &["--druid-url", &node.url, "--druid-metadata", &url],
        &[(PASSWORD_VAR, password)],
    );
    (code, report)
}
