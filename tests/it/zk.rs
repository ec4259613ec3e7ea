//! doctor's ZooKeeper checks against real servers: the quorums scripts/test.sh starts (one
//! shared, one whose servers these tests kill and restore), dremio-sim's HA pairs in the master
//! latch, and a real Curator LeaderLatch participant beside the simulator.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lifeboat::doctor::check::{Check, Status};
use lifeboat::doctor::election::{Election, election};
use lifeboat::doctor::zookeeper::ensemble;

use crate::support::{Sim, block, env, repo_root, zk_chroot, zk_script};

const TIMEOUT: Duration = Duration::from_secs(5);
/// Short sessions so that a killed coordinator's nodes vanish quickly (tickTime is 500 ms).
const SESSION_MS: &str = "2000";

fn status(checks: &[Check], id: &str) -> Status {
    checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id} in {checks:?}"))
        .status
}

/// Calls `probe` until `done` holds on its result, for at most 60 s; returns that result.
fn poll<T: std::fmt::Debug>(what: &str, probe: impl Fn() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = probe();
        if done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never happened; last: {v:#?}"
        );
        // Each probe opens connections (and ZooKeeper sessions): pace them.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The quorum these tests may kill servers of: restarted and waited for when dropped, so that a
/// failed assertion leaves it whole for the next run.
struct KillQuorum {
    state: String,
    servers: Vec<String>,
}

impl KillQuorum {
    fn new() -> KillQuorum {
        let state = env("LIFEBOAT_ZK_KILL_STATE");
        let envfile = std::fs::read_to_string(Path::new(&state).join("env")).unwrap();
        let servers = envfile
            .lines()
            .find_map(|l| l.strip_prefix("export LIFEBOAT_ZK_SERVERS="))
            .expect("LIFEBOAT_ZK_SERVERS in the env file")
            .split(',')
            .map(String::from)
            .collect();
        KillQuorum { state, servers }
    }

    fn stop(&self, node: usize) {
        zk_script(&["stop-node", &self.state, &node.to_string()]);
    }
}

impl Drop for KillQuorum {
    fn drop(&mut self) {
        for node in 1..=self.servers.len() {
            zk_script(&["start-node", &self.state, &node.to_string()]);
        }
        zk_script(&["wait", &self.state]);
    }
}

#[test]
fn a_healthy_quorum_passes_one_lost_warns_two_lost_fail() {
    let q = KillQuorum::new();
    let run = || block(ensemble(&q.servers, TIMEOUT));
    let healthy = poll("a healthy quorum", run, |c| {
        c.iter().all(|c| c.status == Status::Pass)
    });
    assert_eq!(status(&healthy, "zk.size"), Status::Pass);
    // The command itself, with an HA pair in this quorum's latch: exit 0, then 10, then 11.
    let connect = zk_chroot(&q.servers.join(","), "it");
    let dir = tempfile::tempdir().unwrap();
    let active = zk_sim(dir.path(), &connect);
    active.wait_active();
    let _standby = zk_sim(dir.path(), &connect);
    poll(
        "both in the latch",
        || read(&connect),
        |e| e.checks[0].evidence["participants"] == 2,
    );
    let exit_code = || {
        crate::support::lifeboat(&["doctor", "--zookeeper", &connect, "--no-probe"], &[])
            .status
            .code()
    };
    assert_eq!(exit_code(), Some(0), "a healthy quorum and an HA pair pass");
    let latency = healthy.iter().find(|c| c.id == "zk.latency").unwrap();
    assert!(latency.evidence["servers"][&q.servers[0]]["latency_ms"]["avg"].is_number());
    // mntr is whitelisted on this quorum: the leader counts its synced followers
    let words = healthy.iter().find(|c| c.id == "zk.words").unwrap();
    assert_eq!(words.evidence["leader_synced_followers"], 2, "{words:?}");

    q.stop(1);
    let one_lost = poll("a warning with one server lost", run, |c| {
        status(c, "zk.quorum") == Status::Warn && status(c, "zk.leader") == Status::Pass
    });
    assert_eq!(status(&one_lost, "zk.answer"), Status::Warn);
    assert_eq!(
        lifeboat::doctor::overall(&one_lost),
        Status::Warn,
        "{one_lost:#?}"
    );
    let answer = one_lost.iter().find(|c| c.id == "zk.answer").unwrap();
    assert!(answer.summary.contains(&q.servers[0]), "{}", answer.summary);
    assert!(answer.remedy.is_some());
    assert_eq!(exit_code(), Some(10), "one server lost: warnings only");

    q.stop(2);
    let two_lost = poll("a failure with two servers lost", run, |c| {
        status(c, "zk.quorum") == Status::Fail && status(c, "zk.answer") == Status::Fail
    });
    assert_eq!(status(&two_lost, "zk.leader"), Status::Fail);
    let answer = two_lost.iter().find(|c| c.id == "zk.answer").unwrap();
    assert!(
        answer.summary.contains("not currently serving"),
        "{}",
        answer.summary
    );
    assert_eq!(exit_code(), Some(11), "two servers lost: a failure");
}

#[test]
fn a_word_outside_the_whitelist_is_reported_not_failed() {
    // scripts/test.sh whitelists only srvr on the shared quorum, as ZooKeeper does by default.
    let servers = lifeboat::zk::registry::servers(&env("LIFEBOAT_ZK_SERVERS"));
    let checks = poll(
        "a healthy shared quorum",
        || block(ensemble(&servers, TIMEOUT)),
        |c| status(c, "zk.quorum") == Status::Pass,
    );
    assert_eq!(
        lifeboat::doctor::overall(&checks),
        Status::Pass,
        "{checks:#?}"
    );
    let words = checks.iter().find(|c| c.id == "zk.words").unwrap();
    assert!(
        words.summary.contains("not in the whitelist"),
        "{}",
        words.summary
    );
    assert_eq!(
        words.evidence["mntr_refused"].as_array().unwrap().len(),
        servers.len()
    );
}

/// A fresh chroot in the shared quorum, so that tests running at once do not share a latch.
fn chroot() -> String {
    zk_chroot(&env("LIFEBOAT_ZK_SERVERS"), "it")
}

fn zk_sim(paths_local: &Path, connect: &str) -> Sim {
    Sim::start_with(
        paths_local,
        "25.2.0",
        &[
            "--zookeeper",
            connect,
            "--zk-session-timeout-ms",
            SESSION_MS,
        ],
        &[],
    )
}

fn read(connect: &str) -> Election {
    block(election(connect, "/dremio", TIMEOUT))
}

fn port_of(sim: &Sim) -> i32 {
    sim.url.rsplit(':').next().unwrap().parse().unwrap()
}

fn refused(sim: &Sim) -> bool {
    let addr = sim.url.trim_start_matches("http://");
    matches!(std::net::TcpStream::connect(addr), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

#[test]
fn an_ha_pair_passes_a_lost_standby_warns_and_failover_names_the_new_master() {
    let connect = chroot();
    let dir = tempfile::tempdir().unwrap();
    let mut active = zk_sim(dir.path(), &connect);
    active.wait_active();
    let mut standby = zk_sim(dir.path(), &connect);
    assert!(refused(&standby), "a standby does not listen");
    let lock = dir.path().join("db/catalog/LOCK");
    let holder = || {
        lifeboat::dremio::lock::holder(&lock)
            .unwrap()
            .map(|h| h.pid as u32)
    };
    assert_eq!(
        holder(),
        Some(active.pid()),
        "the master holds the KV store's lock"
    );

    let e = poll(
        "an HA pair",
        || read(&connect),
        |e| e.checks.iter().all(|c| c.status == Status::Pass),
    );
    let m = e.master.expect("ZooKeeper names the master");
    assert_eq!(
        (m.user_port, m.dremio_version.as_str()),
        (port_of(&active), "25.2.0")
    );
    assert_eq!(e.checks[0].evidence["participants"], 2);

    standby.kill();
    let e = poll(
        "no standby once its session expired",
        || read(&connect),
        |e| status(&e.checks, "election.participants") == Status::Warn,
    );
    assert_eq!(status(&e.checks, "election.master"), Status::Pass);
    assert!(
        e.checks[0]
            .remedy
            .as_deref()
            .unwrap()
            .contains("second master")
    );

    let next = zk_sim(dir.path(), &connect);
    poll(
        "the new standby in the latch",
        || read(&connect),
        |e| e.checks[0].evidence["participants"] == 2,
    );
    assert!(refused(&next), "the new standby does not listen either");
    active.kill();
    next.wait_active();
    let e = poll(
        "the standby named master",
        || read(&connect),
        |e| {
            e.master
                .as_ref()
                .is_some_and(|m| m.user_port == port_of(&next))
        },
    );
    assert_eq!(status(&e.checks, "election.master"), Status::Pass);
    assert_eq!(status(&e.checks, "election.nodes"), Status::Pass);
    assert_eq!(e.checks[2].evidence["coordinators"], 1);
    assert_eq!(holder(), Some(next.pid()), "the new master took the lock");
}

/// A Curator LeaderLatch participant (tests/curator/Latch.java, compiled here) whose stdout
/// lines arrive on `lines`.
struct Curator {
    child: Child,
    lines: mpsc::Receiver<String>,
}

fn compile_curator() -> PathBuf {
    let classes = tempfile::tempdir().unwrap().keep();
    let out = Command::new("javac")
        .args([
            "-d",
            classes.to_str().unwrap(),
            "-cp",
            "/usr/share/java/curator-recipes.jar",
        ])
        .arg(repo_root().join("tests/curator/Latch.java"))
        .output()
        .expect("javac (default-jdk-headless)");
    assert!(
        out.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    classes
}

impl Curator {
    fn start(classes: &Path, connect: &str) -> Curator {
        let cp = format!(
            "{}:/usr/share/java/curator-recipes.jar:/usr/share/java/slf4j-nop.jar",
            classes.display()
        );
        let mut child = Command::new("java")
            .args([
                "-Xmx64m",
                "-cp",
                &cp,
                "Latch",
                connect,
                "/dremio/leader-latch/master",
                SESSION_MS,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Curator { child, lines }
    }

    fn wait_leader(&self) {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .expect("Curator elects it");
        assert_eq!(line, "leader");
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

#[test]
fn the_sim_and_a_curator_latch_follow_one_order() {
    let classes = compile_curator();
    let connect = chroot();
    let dir = tempfile::tempdir().unwrap();

    // Curator first: it leads, the simulator waits behind it without listening.
    let mut curator = Curator::start(&classes, &connect);
    curator.wait_leader();
    let sim = zk_sim(dir.path(), &connect);
    assert!(refused(&sim));
    let e = poll(
        "both in the latch",
        || read(&connect),
        |e| e.checks[0].evidence["participants"] == 2,
    );
    assert_eq!(status(&e.checks, "election.participants"), Status::Pass);
    curator.stop();
    sim.wait_active();

    // The simulator first: a new Curator participant queues behind it, and leads once it dies.
    let mut sim = sim;
    let next = Curator::start(&classes, &connect);
    poll(
        "Curator behind the simulator",
        || read(&connect),
        |e| e.checks[0].evidence["participants"] == 2,
    );
    assert!(
        next.lines.try_recv().is_err(),
        "Curator must not lead while the simulator does"
    );
    sim.kill();
    next.wait_leader();
    let _ = std::fs::remove_dir_all(classes);
}

/// The whole command on an HA pair in ZooKeeper: the ensemble, the election and the coordinators'
/// REST answers in one report, the master ZooKeeper names cross-checked with the active URL.
#[test]
fn doctor_reports_the_ensemble_the_election_and_the_coordinators_together() {
    let connect = chroot();
    let dir = tempfile::tempdir().unwrap();
    let mut active = zk_sim(dir.path(), &connect);
    active.wait_active();
    let standby = zk_sim(dir.path(), &connect);
    poll(
        "both in the latch",
        || read(&connect),
        |e| e.checks[0].evidence["participants"] == 2,
    );
    let urls = format!("{},{}", active.url, standby.url);
    let creds = [
        (
            "LIFEBOAT_DREMIO_USER".to_string(),
            crate::support::ADMIN.0.to_string(),
        ),
        (
            "LIFEBOAT_DREMIO_PASSWORD".to_string(),
            crate::support::ADMIN.1.to_string(),
        ),
    ];
    let out = crate::support::lifeboat_env(
        &[
            "--json",
            "doctor",
            "--zookeeper",
            &connect,
            "--dremio-url",
            &urls,
            "--no-probe",
        ],
        &creds,
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let of = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no check {id}: {report}"))
            .clone()
    };
    for id in [
        "zk.answer",
        "zk.leader",
        "zk.quorum",
        "election.participants",
        "election.master",
    ] {
        assert_eq!(of(id)["status"], "pass", "{id}: {report}");
    }
    for id in ["coord.active", "coord.standbys", "coord.master"] {
        assert_eq!(of(id)["status"], "pass", "{id}: {report}");
    }
    let master = of("election.master");
    assert!(
        master["summary"]
            .as_str()
            .unwrap()
            .contains(&port_of(&active).to_string()),
        "{master}"
    );
    // Warnings only (the shared quorum refuses mntr, by ZooKeeper's default whitelist) or pass.
    assert!(matches!(out.status.code(), Some(0 | 10)), "{report}");

    // The active one gone: the standby takes over and doctor names it.
    active.kill();
    standby.wait_active();
    poll(
        "the standby named master",
        || read(&connect),
        |e| {
            e.master
                .as_ref()
                .is_some_and(|m| m.user_port == port_of(&standby))
        },
    );
}
