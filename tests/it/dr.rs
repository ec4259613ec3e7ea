//! The DR procedures end to end, the simulator standing in for Dremio and start/stop commands
//! launching and stopping it: `drill` on an offline backup and on an online backup of an HA pair
//! (success, a reference that differs, a coordinator that never serves), `standby refresh` (older
//! to newest with the clone step, nothing to do, a corrupt backup rolled back, the lock) and
//! `failover` (refused while the primary answers, a dry run, the real one).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

const VERSION: &str = "25.2.0";

fn creds() -> Vec<(String, String)> {
    vec![
        ("LIFEBOAT_DREMIO_USER".into(), ADMIN.0.into()),
        ("LIFEBOAT_DREMIO_PASSWORD".into(), ADMIN.1.into()),
    ]
}

/// A TOML basic string (the paths of these tests have no quotes or control characters).
fn q(s: impl AsRef<str>) -> String {
    format!("{:?}", s.as_ref())
}

fn qp(p: &Path) -> String {
    q(p.to_str().unwrap())
}

fn write_config(root: &Path, text: &str) -> String {
    let path = root.join("lifeboat.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// `lifeboat --config CFG ARGS` with the primary's credentials.
fn run(cfg: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--config", cfg];
    all.extend_from_slice(args);
    lifeboat_env(&all, &creds())
}

/// The drill's foreground coordinator: the simulator on the scratch copy.
fn sim_template() -> String {
    format!(
        "'{}' --paths-local {{paths_local}} --port {{port}} --version {VERSION}",
        sim_bin("dremio-sim").display()
    )
}

/// A request that must succeed; the JSON answer.
#[track_caller]
fn call(url: &str, auth: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, text) = http(method, &format!("{url}{path}"), Some(auth), body.as_ref());
    assert!(status < 300, "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Whether the catalog at `url` has an entity at `path` (`Sales/v1`).
fn has(url: &str, auth: &str, path: &str) -> bool {
    let (status, text) = http(
        "GET",
        &format!("{url}/api/v3/catalog/by-path/{path}"),
        Some(auth),
        None,
    );
    assert!(
        status == 200 || status == 404,
        "by-path {path}: {status} {text}"
    );
    status == 200
}

fn space(url: &str, auth: &str, name: &str) {
    call(
        url,
        auth,
        "POST",
        "/api/v3/catalog",
        Some(json!({"entityType": "space", "name": name})),
    );
}

/// A coordinator with an admin, a second user, a space and a view.
struct Primary {
    sim: Sim,
    local: PathBuf,
    auth: String,
}

fn primary(root: &Path) -> Primary {
    let local = root.join("primary-data");
    std::fs::create_dir_all(&local).unwrap();
    let sim = Sim::start(&local, VERSION);
    let auth = first_admin(&sim.url, ADMIN.0, ADMIN.1);
    call(
        &sim.url,
        &auth,
        "POST",
        "/api/v3/user",
        Some(
            json!({"name": "analyst", "firstName": "Ann", "lastName": "Lyst",
                    "email": "ann@example.com", "password": "analyst123"}),
        ),
    );
    space(&sim.url, &auth, "Sales");
    call(
        &sim.url,
        &auth,
        "POST",
        "/api/v3/catalog",
        Some(
            json!({"entityType": "dataset", "type": "VIRTUAL_DATASET", "path": ["Sales", "v1"],
                    "sql": "SELECT 1 AS one", "sqlContext": []}),
        ),
    );
    Primary { sim, local, auth }
}

/// `clone export` of the coordinator at `url` into `out`.
fn export(url: &str, out: &Path) {
    ok_json(&lifeboat_env(
        &[
            "--json",
            "clone",
            "export",
            "--dremio-url",
            url,
            "--out",
            out.to_str().unwrap(),
        ],
        &creds(),
    ));
}

/// Takes a backup of `cluster` as the config says; its id.
#[track_caller]
fn backup(cfg: &str, cluster: &str) -> String {
    let made = ok_json(&run(
        cfg,
        &["--json", "backup", "--format", "1", "--cluster", cluster],
    ));
    made["id"].as_str().unwrap().to_string()
}

/// The phases' names, in order.
fn phases(report: &Value) -> Vec<String> {
    report["phases"]
        .as_array()
        .unwrap_or_else(|| panic!("no phases: {report}"))
        .iter()
        .map(|p| p["phase"].as_str().unwrap().to_string())
        .collect()
}

/// Asserts that `wanted` appear among the report's phases in this order, each succeeded.
#[track_caller]
fn assert_phases(report: &Value, wanted: &[&str]) {
    let names = phases(report);
    let mut at = 0;
    for w in wanted {
        match names[at..].iter().position(|n| n == w) {
            Some(i) => at += i + 1,
            None => panic!("phase {w} missing or out of order in {names:?}: {report}"),
        }
    }
    for p in report["phases"].as_array().unwrap() {
        assert_eq!(p["ok"], true, "a phase failed: {report}");
        assert!(p["seconds"].as_f64().is_some(), "{p}");
    }
}

fn all_output(out: &std::process::Output) -> String {
    format!("{}\n{}", stderr(out), stdout(out))
}

/// Asserts the exit code and that stdout or stderr names every fragment.
#[track_caller]
fn fails_naming(out: &std::process::Output, code: i32, fragments: &[&str]) {
    let text = all_output(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}: {text}"
    );
    for f in fragments {
        assert!(text.contains(f), "the output lacks {f:?}: {text}");
    }
}

/// A folder for the drills' scratch copies: each drill makes a new folder inside it.
fn scratch_in(root: &Path) -> PathBuf {
    let dir = root.join("scratch");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_drill_of_an_offline_backup_serves_its_catalog_fails_on_a_difference_and_on_a_dead_start() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let mut p = primary(root);
    // The reference clone keeps for this cluster, exported while it served.
    let tree = root.join("tree");
    export(&p.sim.url, &tree);
    p.sim.kill();
    // The simulator keeps its tables in db/sim; an offline backup also wants the RocksDB
    // store's CURRENT beside its LOCK.
    put_file(&p.local.join("db/catalog/CURRENT"), b"MANIFEST-000001\n");
    let loc = TestLocation::new(StoreKind::Local, "drill-offline");
    let scratch = scratch_in(root);
    let metrics = root.join("drill.prom");
    let cfg = write_config(
        root,
        &format!(
            "[clusters.prod]\npaths_local = {}\ndremio_version = {}\nto = {}\ndrill_start = {}\nclone_tree = {}\nrto = \"15m\"\n",
            qp(&p.local),
            q(VERSION),
            q(&loc.url),
            q(sim_template()),
            qp(&tree),
        ),
    );
    let id = backup(&cfg, "prod");
    let before = snapshot(&p.local);

    let report = ok_json(&run(
        &cfg,
        &[
            "--json",
            "drill",
            "--cluster",
            "prod",
            "--scratch",
            scratch.to_str().unwrap(),
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
    ));
    assert_eq!(report["command"], "drill", "{report}");
    assert_eq!(report["backup"]["id"], id.as_str(), "{report}");
    assert_phases(
        &report,
        &["fetch", "verify", "extract", "start", "validate"],
    );
    let rto = report["rto_seconds"].as_f64().expect("rto_seconds");
    assert!(rto > 0.0, "{report}");
    assert!(report["rpo_seconds"].as_f64().unwrap() >= 0.0, "{report}");
    assert!(
        names(&scratch).is_empty(),
        "the scratch copy is removed: {:?}",
        names(&scratch)
    );
    assert_same(&snapshot(&p.local), &before, "the cluster's own files");
    let prom = std::fs::read_to_string(&metrics).unwrap();
    for metric in [
        "lifeboat_drill_last_success_timestamp_seconds",
        "lifeboat_drill_rto_seconds",
    ] {
        assert!(prom.contains(metric), "{metric} missing: {prom}");
    }

    // The reference now differs from what the backup holds: the drill fails, naming the file.
    std::fs::write(tree.join("catalog/Sales/v1.view.sql"), "SELECT 2 AS two\n").unwrap();
    let scratch_arg = scratch.to_str().unwrap();
    let drill = [
        "--json",
        "drill",
        "--cluster",
        "prod",
        "--scratch",
        scratch_arg,
    ];
    let out = run(&cfg, &drill);
    fails_naming(&out, 12, &["catalog/Sales/v1.view.sql"]);
    assert!(names(&scratch).is_empty(), "{:?}", names(&scratch));

    // A start command that never serves: the drill gives up after --start-timeout, stops the
    // command's whole process group (the sleep wrote its pid) and removes the scratch copy.
    let pidfile = root.join("never.pid");
    let _guard = PidGuard(pidfile.clone());
    let never = format!("sh -c 'echo $$ > {}; exec sleep 600'", pidfile.display());
    let mut args = drill.to_vec();
    args.extend_from_slice(&["--drill-start", &never, "--start-timeout", "3s"]);
    let out = run(&cfg, &args);
    fails_naming(&out, 12, &[]);
    let pid = read_pid(&pidfile).expect("the start command ran and wrote its pid");
    assert!(
        !pid_alive(pid),
        "the start command's process {pid} is still running"
    );
    assert!(names(&scratch).is_empty(), "{:?}", names(&scratch));
    assert_same(&snapshot(&p.local), &before, "the cluster's own files");
}

#[test]
fn a_drill_of_an_online_backup_of_an_ha_pair_compares_with_the_backups_own_catalog() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let p = primary(root);
    // The HA pair: a second coordinator on the shared paths.local, waiting for the lock.
    let standby = Sim::start(&p.local, VERSION);
    let staging = root.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    // The home provides dremio-admin; its dremio.conf names the LIVE paths.local, which a drill
    // must never touch (it confines the restore to its scratch copy).
    let home = sim_home(root, "home", &p.local, VERSION);
    let loc = TestLocation::new(StoreKind::Local, "drill-online");
    let scratch = scratch_in(root);
    let cfg = write_config(
        root,
        &format!(
            "[clusters.prod]\ndremio_home = {}\ndremio_urls = [{}, {}]\nstaging = {}\nto = {}\ndrill_start = {}\n",
            qp(&home),
            q(&standby.url),
            q(&p.sim.url),
            qp(&staging),
            q(&loc.url),
            q(sim_template()),
        ),
    );
    let id = backup(&cfg, "prod");
    let manifest: Value =
        serde_json::from_slice(&loc.read(&format!("prod/{id}/manifest.json"))).unwrap();
    assert_eq!(manifest["mode"], "logical");
    assert_eq!(
        manifest["catalog"]["member"], "lifeboat-catalog.jsonl",
        "an online backup records its catalog's fingerprint: {manifest}"
    );

    let scratch_arg = scratch.to_str().unwrap();
    let drill = [
        "--json",
        "drill",
        "--cluster",
        "prod",
        "--scratch",
        scratch_arg,
    ];
    let report = ok_json(&run(&cfg, &drill));
    assert_eq!(report["backup"]["id"], id.as_str(), "{report}");
    assert_phases(
        &report,
        &["fetch", "verify", "extract", "start", "validate"],
    );
    assert!(report["rto_seconds"].as_f64().unwrap() > 0.0, "{report}");
    assert!(names(&scratch).is_empty(), "{:?}", names(&scratch));
    // The live pair is untouched and still serves its catalog.
    assert!(has(&p.sim.url, &p.auth, "Sales/v1"));
    login(&p.sim.url, "analyst", "analyst123");

    // A reference that differs from the backup (a tampered export): exit 12, naming the file.
    let tree = root.join("tree");
    export(&p.sim.url, &tree);
    std::fs::write(tree.join("catalog/Sales/v1.view.sql"), "SELECT 2 AS two\n").unwrap();
    let mut args = drill.to_vec();
    args.extend_from_slice(&["--expect-tree", tree.to_str().unwrap()]);
    let out = run(&cfg, &args);
    fails_naming(&out, 12, &["catalog/Sales/v1.view.sql"]);
    assert!(names(&scratch).is_empty(), "{:?}", names(&scratch));
    assert!(has(&p.sim.url, &p.auth, "Sales/v1"));
}

/// A primary serving online backups and a standby run by start/stop scripts.
struct Pair {
    p: Primary,
    loc: TestLocation,
    cfg: String,
    standby_local: PathBuf,
    standby_url: String,
    svc: ScriptedSim,
    state: PathBuf,
}

fn pair(root: &Path) -> Pair {
    let p = primary(root);
    let staging = root.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let loc = TestLocation::new(StoreKind::Local, "standby");
    let standby_local = root.join("standby-data");
    std::fs::create_dir_all(&standby_local).unwrap();
    let standby_home = sim_home(root, "standby-home", &standby_local, VERSION);
    let standby_url = format!("http://127.0.0.1:{}", free_port());
    let svc = ScriptedSim::new(&root.join("standby-service"), VERSION);
    let cfg = write_config(
        root,
        &format!(
            "[clusters.prod]\ndremio_urls = [{}]\nstaging = {}\nto = {}\nrpo = \"1h\"\n\n\
             [clusters.dr]\nstandby_for = \"prod\"\ndremio_home = {}\ndremio_urls = [{}]\nstart = {}\nstop = {}\nstart_timeout = \"60s\"\n",
            q(&p.sim.url),
            qp(&staging),
            q(&loc.url),
            qp(&standby_home),
            q(&standby_url),
            q(&svc.start),
            q(&svc.stop),
        ),
    );
    let state = standby_local.join("lifeboat-standby.json");
    Pair {
        p,
        loc,
        cfg,
        standby_local,
        standby_url,
        svc,
        state,
    }
}

impl Pair {
    fn refresh(&self) -> std::process::Output {
        run(
            &self.cfg,
            &["--json", "standby", "refresh", "--cluster", "dr"],
        )
    }

    #[track_caller]
    fn refreshed(&self) -> Value {
        let out = self.refresh();
        assert!(
            out.status.success(),
            "refresh failed ({:?}): {}\nthe standby's log: {}",
            out.status.code(),
            all_output(&out),
            self.svc.log()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn failover(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["--json", "failover", "--cluster", "dr"];
        args.extend_from_slice(extra);
        run(&self.cfg, &args)
    }

    /// The standby's admin header (it holds the primary's users).
    fn standby_auth(&self) -> String {
        login(&self.standby_url, ADMIN.0, ADMIN.1)
    }

    fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(&self.state).unwrap()).unwrap()
    }
}

#[test]
fn a_standby_refresh_brings_the_newest_backup_then_does_nothing_then_rolls_back_a_corrupt_one() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let pair = pair(root);
    let (purl, pauth) = (&pair.p.sim.url, &pair.p.auth);

    // The standby starts from an older backup.
    let older = backup(&pair.cfg, "prod");
    let first = pair.refreshed();
    assert_eq!(first["backup"]["id"], older.as_str(), "{first}");
    assert!(pair.svc.pid().is_some(), "the start command started it");
    assert!(has(&pair.standby_url, &pair.standby_auth(), "Sales/v1"));

    // A newer backup, then an object only the clone step can bring.
    space(purl, pauth, "Before");
    let newest = backup(&pair.cfg, "prod");
    space(purl, pauth, "After");
    let report = pair.refreshed();
    assert_eq!(report["backup"]["id"], newest.as_str(), "{report}");
    assert_phases(&report, &["stop", "restore", "start", "clone", "validate"]);
    assert!(report["rpo_seconds"].as_f64().is_some(), "{report}");
    let auth = pair.standby_auth();
    for path in ["Sales/v1", "Before", "After"] {
        assert!(has(&pair.standby_url, &auth, path), "{path} on the standby");
    }
    login(&pair.standby_url, "analyst", "analyst123");
    let state = pair.state();
    assert_eq!(state["backup"], newest.as_str());
    // This refresh's safety copies are kept (and named in the state); the previous one's are gone.
    let kept: Vec<String> = state["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let aside: Vec<String> = names(root)
        .into_iter()
        .filter(|n| n.contains(".before-restore-"))
        .map(|n| root.join(n).display().to_string())
        .collect();
    assert!(!kept.is_empty(), "{state}");
    for k in &kept {
        assert!(aside.contains(k), "{k} is kept: {aside:?}");
    }
    assert_eq!(
        aside.len(),
        kept.len(),
        "only this refresh's copies: {aside:?}"
    );

    // Nothing newer: nothing is done, the standby keeps running untouched.
    let pid = pair.svc.pid().unwrap();
    let state_before = std::fs::read(&pair.state).unwrap();
    let again = pair.refreshed();
    assert_eq!(again["outcome"], "current", "{again}");
    assert_eq!(pair.svc.pid(), Some(pid), "the standby was not restarted");
    assert_eq!(std::fs::read(&pair.state).unwrap(), state_before);

    // Another run holds the standby's lock: this one exits with the lock code at once.
    {
        let _held = flock(&lifeboat::dr::lock::path_for(&pair.standby_local, "dr"));
        let out = pair.refresh();
        fails_naming(&out, 6, &[]);
        assert_eq!(pair.svc.pid(), Some(pid));
    }

    // A corrupt newest backup: the failure comes after the stop; the previous state is put
    // back and serves again.
    let corrupt = backup(&pair.cfg, "prod");
    let archive = PathBuf::from(&pair.loc.url).join(format!("prod/{corrupt}/data.tar.zst"));
    let mut bytes = std::fs::read(&archive).unwrap();
    let (mid, len) = (bytes.len() / 2, bytes.len());
    for b in &mut bytes[mid..(mid + 16).min(len)] {
        *b ^= 0xff;
    }
    std::fs::write(&archive, &bytes).unwrap();
    let out = pair.refresh();
    fails_naming(&out, 13, &[]);
    let auth = pair.standby_auth();
    for path in ["Sales/v1", "Before", "After"] {
        assert!(
            has(&pair.standby_url, &auth, path),
            "{path} on the standby after the rollback"
        );
    }
    assert_eq!(pair.state()["backup"], newest.as_str());
}

#[test]
fn a_failover_is_refused_while_the_primary_answers_and_then_serves_the_newest_backup() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let mut pair = pair(root);
    let older = backup(&pair.cfg, "prod");
    let first = pair.refreshed();
    assert_eq!(first["backup"]["id"], older.as_str(), "{first}");
    space(&pair.p.sim.url, &pair.p.auth, "Late");
    let newest = backup(&pair.cfg, "prod");

    let out = pair.failover(&[]);
    fails_naming(&out, 3, &[pair.p.sim.url.as_str()]);
    assert!(!has(&pair.standby_url, &pair.standby_auth(), "Late"));

    // The primary dies.
    pair.p.sim.kill();
    let pid = pair.svc.pid().expect("the standby runs");
    let state_before = std::fs::read(&pair.state).unwrap();

    let dry = pair.failover(&["--dry-run"]);
    let plan = ok_json(&dry);
    assert_eq!(plan["backup"]["id"], newest.as_str(), "{plan}");
    assert!(plan["backup"]["age_seconds"].as_f64().is_some(), "{plan}");
    assert_eq!(pair.svc.pid(), Some(pid), "a dry run restarts nothing");
    assert_eq!(std::fs::read(&pair.state).unwrap(), state_before);
    assert!(!has(&pair.standby_url, &pair.standby_auth(), "Late"));

    let out = pair.failover(&[]);
    assert!(
        out.status.success(),
        "failover failed ({:?}): {}\nthe standby's log: {}",
        out.status.code(),
        all_output(&out),
        pair.svc.log()
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["backup"]["id"], newest.as_str(), "{report}");
    assert!(report["rto_seconds"].as_f64().unwrap() > 0.0, "{report}");
    let text = report.to_string();
    assert!(
        text.contains("route traffic") && text.contains(&pair.standby_url),
        "the step lifeboat cannot do, with the standby's URL: {report}"
    );
    let auth = pair.standby_auth();
    for path in ["Sales/v1", "Late"] {
        assert!(has(&pair.standby_url, &auth, path), "{path} after failover");
    }
    let state = pair.state();
    assert_eq!(state["backup"], newest.as_str());
    assert!(state["promoted_at"].is_string(), "{state}");

    // A promoted standby is the primary now: a refresh refuses to overwrite it.
    let out = pair.refresh();
    fails_naming(&out, 3, &["promoted"]);
    assert!(has(&pair.standby_url, &auth, "Late"));
}
