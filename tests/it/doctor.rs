//! `lifeboat doctor` end to end: mountinfo fixtures (tests/fixtures/mountinfo), homes with bad
//! configurations, the lock and throughput probes on a real folder (SIGINT included), both faces
//! of the report, and the REST and DR checks against an HA pair of simulators.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::*;

const VERSION: &str = "25.2.0";
use crate::support::ADMIN;
const GOOD_CONF: &str = "zookeeper: \"zk1:2181,zk2:2181,zk3:2181\"\nservices.coordinator.master.embedded-zookeeper.enabled: false\n";

/// A DREMIO_HOME with `conf` (paths.local added) and the jar of `version`.
fn home(root: &Path, name: &str, paths_local: &str, conf: &str, version: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("conf")).unwrap();
    std::fs::create_dir_all(dir.join("jars")).unwrap();
    let text = format!("paths.local: \"{paths_local}\"\n{conf}");
    std::fs::write(dir.join("conf/dremio.conf"), text).unwrap();
    let jar = format!("jars/dremio-dac-backend-{version}-202410241428100111-a963b970.jar");
    std::fs::write(dir.join(jar), b"").unwrap();
    dir
}

fn fixture(name: &str) -> String {
    repo_root()
        .join("tests/fixtures/mountinfo")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn doctor(args: &[&str], env: &[(String, String)]) -> std::process::Output {
    let mut all = vec!["--json", "doctor"];
    all.extend_from_slice(args);
    lifeboat_env(&all, env)
}

/// The report's JSON and the exit code.
#[track_caller]
fn report(out: &std::process::Output) -> (Value, i32) {
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(out), stderr(out)));
    (v, out.status.code().unwrap_or(-1))
}

#[track_caller]
fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}: {report}"))
}

fn status<'a>(report: &'a Value, id: &str) -> &'a str {
    check(report, id)["status"].as_str().unwrap()
}

#[test]
fn mountinfo_fixtures_pass_fail_or_warn_as_listed() {
    let root = tempfile::tempdir().unwrap();
    let h = home(root.path(), "h", "/mnt/dremio/local", GOOD_CONF, VERSION);
    let h = h.to_str().unwrap();
    let cases = [
        ("healthy-nfs4", "volume.locks", "pass", 0),
        ("stacked", "volume.hard", "pass", 0),
        ("soft", "volume.hard", "fail", 11),
        ("vers2", "volume.vers", "fail", 11),
        ("nolock", "volume.locks", "fail", 11),
        ("local-lock-all", "volume.locks", "fail", 11),
        ("udp", "volume.proto", "fail", 11),
        ("async", "volume.sync", "warn", 10),
        ("ext4", "volume.nfs", "fail", 11),
    ];
    for (file, id, want, code) in cases {
        let (r, rc) = report(&doctor(
            &["--dremio-home", h, "--mountinfo", &fixture(file)],
            &[],
        ));
        assert_eq!((status(&r, id), rc), (want, code), "{file}: {r}");
        // The probes need the volume here: a copy of another host's mountinfo skips them.
        assert_eq!(status(&r, "lock.probe"), "skip", "{file}");
        assert_eq!(status(&r, "throughput.rate"), "skip", "{file}");
    }
    let (r, _) = report(&doctor(
        &["--dremio-home", h, "--mountinfo", &fixture("healthy-nfs4")],
        &[],
    ));
    assert_eq!(r["status"], "pass");
    assert_eq!(status(&r, "volume.nointr"), "skip");
    assert!(
        check(&r, "volume.nfs")["summary"]
            .as_str()
            .unwrap()
            .contains("nas.example.com:/export/dremio")
    );
    let (r, _) = report(&doctor(
        &["--dremio-home", h, "--mountinfo", &fixture("ext4")],
        &[],
    ));
    assert!(
        check(&r, "volume.nfs")["summary"]
            .as_str()
            .unwrap()
            .contains("ext4"),
        "{r}"
    );

    // An escaped mount point (`\040`) holds a paths.local with a space.
    let spaced = home(root.path(), "s", "/mnt/dremio ha/local", GOOD_CONF, VERSION);
    let (r, rc) = report(&doctor(
        &[
            "--dremio-home",
            spaced.to_str().unwrap(),
            "--mountinfo",
            &fixture("escaped"),
        ],
        &[],
    ));
    assert_eq!((status(&r, "volume.nfs"), rc), ("pass", 0), "{r}");
}

#[test]
fn bad_homes_fail_as_listed() {
    let root = tempfile::tempdir().unwrap();
    let embedded = home(
        root.path(),
        "embedded",
        "/mnt/dremio/local",
        "zookeeper: \"zk1:2181,zk2:2181\"\n",
        VERSION,
    );
    let tmp = home(root.path(), "tmp", "/tmp/dremio", GOOD_CONF, VERSION);
    let old = home(root.path(), "old", "/mnt/dremio/local", GOOD_CONF, "25.1.0");
    let homes: Vec<&str> = [&embedded, &tmp, &old]
        .iter()
        .map(|p| p.to_str().unwrap())
        .collect();
    let args = [
        "--dremio-home",
        homes[0],
        "--dremio-home",
        homes[1],
        "--dremio-home",
        homes[2],
        "--no-probe",
    ];
    let (r, rc) = report(&doctor(&args, &[]));
    assert_eq!((r["status"].as_str(), rc), (Some("fail"), 11));
    for id in [
        "conf.embedded_zk",
        "conf.paths_local",
        "conf.agree",
        "conf.version",
    ] {
        assert_eq!(status(&r, id), "fail", "{id}: {r}");
    }
    let summary = |id| check(&r, id)["summary"].as_str().unwrap().to_string();
    assert!(
        summary("conf.embedded_zk").contains(homes[0]),
        "{}",
        summary("conf.embedded_zk")
    );
    assert!(!summary("conf.embedded_zk").contains(homes[1]));
    assert!(summary("conf.paths_local").contains(homes[1]));
    assert!(summary("conf.version").contains("25.1.0"));
    assert_eq!(status(&r, "conf.master"), "pass");
    assert_eq!(r["counts"]["fail"].as_u64(), Some(5), "{r}"); // and volume.nfs: /mnt is not NFS here

    // The human face: areas, marks, a remedy under each problem, a closing line of counts.
    let out = lifeboat(
        &[
            "doctor",
            "--dremio-home",
            homes[0],
            "--dremio-home",
            homes[1],
            "--no-probe",
        ],
        &[],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(11), "{text}");
    assert!(text.starts_with("Configuration\n"), "{text}");
    assert!(text.contains("\n  FAIL conf.embedded_zk "), "{text}");
    assert!(
        text.contains("fix: set services.coordinator.master.embedded-zookeeper.enabled: false"),
        "{text}"
    );
    assert!(
        text.contains("\nMaster election\n  SKIP election.master"),
        "{text}"
    );
    let last = text.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("fail: ") && last.contains(" failed, ") && last.ends_with(" skipped"),
        "{last}"
    );
    assert!(stderr(&out).contains("doctor: "), "{}", stderr(&out));
}

#[test]
fn nothing_given_is_all_skipped_and_passes() {
    let metrics = tempfile::tempdir().unwrap();
    let file = metrics.path().join("doctor.prom");
    let (r, rc) = report(&doctor(&["--metrics-file", file.to_str().unwrap()], &[]));
    assert_eq!((r["status"].as_str(), rc), (Some("pass"), 0), "{r}");
    assert_eq!(
        r["counts"]["skip"].as_u64().unwrap() as usize,
        r["checks"].as_array().unwrap().len()
    );
    let prom = std::fs::read_to_string(&file).unwrap();
    assert!(prom.contains("lifeboat_doctor_check{cluster=\"dremio\",check=\"conf.master\",area=\"configuration\"} -1"), "{prom}");
    assert!(prom.contains("# HELP lifeboat_doctor_check "), "{prom}");
}

#[test]
fn the_probes_lock_and_measure_a_real_folder_and_leave_nothing() {
    let root = tempfile::tempdir().unwrap();
    let local = root.path().join("local");
    std::fs::create_dir(&local).unwrap();
    let h = home(
        root.path(),
        "h",
        local.to_str().unwrap(),
        GOOD_CONF,
        VERSION,
    );
    let h = h.to_str().unwrap();
    // An impossible requirement: the probe fails, with the figure it measured.
    let (r, rc) = report(&doctor(
        &["--dremio-home", h, "--min-throughput", "1000000000"],
        &[],
    ));
    assert_eq!(rc, 11);
    assert_eq!(status(&r, "lock.probe"), "pass", "{r}");
    let rate = check(&r, "throughput.rate");
    assert_eq!(rate["status"], "fail", "{rate}");
    let write = rate["evidence"]["write_mb_s"].as_f64().unwrap();
    assert!(write > 0.0, "{rate}");
    assert!(
        rate["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("write {write:.0} MB/s")),
        "{rate}"
    );
    assert!(
        rate["summary"]
            .as_str()
            .unwrap()
            .contains("below the required 1000000000 MB/s"),
        "{rate}"
    );
    assert_eq!(status(&r, "throughput.latency"), "pass");
    assert!(
        check(&r, "throughput.latency")["evidence"]["p99_ms"]
            .as_f64()
            .is_some()
    );
    assert_eq!(names(&local), Vec::<String>::new());
    // With --no-probe nothing is written at all.
    let (r, _) = report(&doctor(&["--dremio-home", h, "--no-probe"], &[]));
    assert_eq!(status(&r, "lock.probe"), "skip");
    assert_eq!(names(&local), Vec::<String>::new());
}

#[test]
fn a_probe_stopped_by_sigint_leaves_no_file_behind() {
    let root = tempfile::tempdir().unwrap();
    let local = root.path().join("local");
    std::fs::create_dir(&local).unwrap();
    let h = home(
        root.path(),
        "h",
        local.to_str().unwrap(),
        GOOD_CONF,
        VERSION,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(["doctor", "--dremio-home", h.to_str().unwrap()])
        .env("LIFEBOAT_PROGRESS", "lines")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("probing the throughput") {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "doctor ended before its throughput probe"
        );
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let code = child.wait().unwrap().code();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert_eq!(code, Some(130), "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    assert_eq!(names(&local), Vec::<String>::new());
}

fn creds() -> Vec<(String, String)> {
    vec![
        ("LIFEBOAT_DREMIO_USER".into(), ADMIN.0.into()),
        ("LIFEBOAT_DREMIO_PASSWORD".into(), ADMIN.1.into()),
    ]
}

#[test]
fn coordinators_and_dr_are_judged_over_rest() {
    let root = tempfile::tempdir().unwrap();
    let local = root.path().join("primary");
    std::fs::create_dir(&local).unwrap();
    let mut first = Sim::start(&local, VERSION);
    let standby = Sim::start(&local, VERSION);
    let auth = first_admin(&first.url, ADMIN.0, ADMIN.1);
    let space = serde_json::json!({"entityType": "space", "name": "Sales"});
    let (code, text) = http(
        "POST",
        &format!("{}/api/v3/catalog", first.url),
        Some(&auth),
        Some(&space),
    );
    assert!(code < 300, "{code} {text}");
    let urls = format!("{},{}", standby.url, first.url);

    let (r, rc) = report(&doctor(&["--dremio-url", &urls], &creds()));
    assert_eq!(status(&r, "coord.active"), "pass", "{r}");
    assert!(
        check(&r, "coord.active")["summary"]
            .as_str()
            .unwrap()
            .contains(&first.url)
    );
    assert_eq!(status(&r, "coord.standbys"), "pass", "{r}");
    assert_eq!(status(&r, "coord.version"), "pass", "{r}");
    assert_eq!(status(&r, "coord.master"), "skip");
    assert_eq!(rc, 0, "{r}");
    // Without credentials the version is skipped, not failed.
    let (r, _) = report(&doctor(&["--dremio-url", &urls], &[]));
    assert_eq!(status(&r, "coord.version"), "skip");

    // A secondary on the same version, its catalog missing the primary's space; backups in a folder.
    let dr_local = root.path().join("dr");
    std::fs::create_dir(&dr_local).unwrap();
    let dr = Sim::start(&dr_local, VERSION);
    first_admin(&dr.url, ADMIN.0, ADMIN.1);
    let staging = root.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let loc = TestLocation::new(StoreKind::Local, "doctor");
    let backup = [
        "--json",
        "backup",
        "--dremio-url",
        &urls,
        "--staging",
        staging.to_str().unwrap(),
        "--to",
        &loc.url,
    ];
    ok_json(&lifeboat_env(&backup, &creds()));
    let dr_args = [
        "--dremio-url",
        &urls,
        "--secondary-url",
        &dr.url,
        "--from",
        &loc.url,
        "--rpo",
        "1h",
    ];
    let (r, rc) = report(&doctor(&dr_args, &creds()));
    assert_eq!(status(&r, "dr.rpo"), "pass", "{r}");
    assert_eq!(status(&r, "dr.secondary"), "pass", "{r}");
    let drift = check(&r, "dr.drift");
    assert_eq!(drift["status"], "warn", "{drift}");
    assert!(drift["evidence"]["drift"].as_u64().unwrap() >= 1, "{drift}");
    assert_eq!(rc, 10, "{r}");
    // A tighter RPO than the backup's age fails; an empty location has no backup at all.
    let empty = TestLocation::new(StoreKind::Local, "empty");
    let (r, _) = report(&doctor(&["--from", &empty.url, "--rpo", "1h"], &[]));
    assert_eq!(status(&r, "dr.rpo"), "fail");
    assert!(
        check(&r, "dr.rpo")["summary"]
            .as_str()
            .unwrap()
            .contains("no committed backup")
    );

    // The active one dies, the standby takes over: doctor names the new active coordinator.
    first.kill();
    standby.wait_active();
    let (r, _) = report(&doctor(&["--dremio-url", &urls], &creds()));
    let active = check(&r, "coord.active");
    assert_eq!(active["status"], "pass", "{r}");
    assert!(
        active["summary"].as_str().unwrap().contains(&standby.url),
        "{active}"
    );
    assert_eq!(status(&r, "coord.standbys"), "pass", "{r}");
}

#[test]
fn a_secondary_on_another_version_fails() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let primary = Sim::start(&a, VERSION);
    let secondary = Sim::start(&b, "25.1.0");
    first_admin(&primary.url, ADMIN.0, ADMIN.1);
    first_admin(&secondary.url, ADMIN.0, ADMIN.1);
    let (r, rc) = report(&doctor(
        &[
            "--dremio-url",
            &primary.url,
            "--secondary-url",
            &secondary.url,
        ],
        &creds(),
    ));
    let sec = check(&r, "dr.secondary");
    assert_eq!(sec["status"], "fail", "{sec}");
    assert!(sec["summary"].as_str().unwrap().contains("25.1.0"), "{sec}");
    assert_eq!(rc, 11);
    // One coordinator URL: no standby to take over.
    assert_eq!(status(&r, "coord.standbys"), "warn");
}
