//! `lifeboat clone` against Druid: simulators (tests/druid-sim) seeded the way Druid's
//! documentation examples do, exported, applied to an empty secondary, compared GET by GET.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::support::druid::basic;
use crate::support::{block, druid, env, http, lifeboat, ok_json, stderr};

/// The simulators' `admin` password (`--auth basic --admin-password-file`).
const ADMIN_PW: &str = "adm1n-pw";

/// A running `druid-sim`; killed (by its own pid) when dropped.
struct Druid {
    child: Child,
    url: String,
    /// `Authorization` of its admin.
    auth: String,
    /// Holds its admin password file.
    _dir: tempfile::TempDir,
}

impl Druid {
    /// A node with basic security on (`admin` / [`ADMIN_PW`]), as every cluster of these tests.
    fn start(extra: &[&str]) -> Druid {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("admin");
        std::fs::write(&pw, ADMIN_PW).unwrap();
        let mut args = vec![
            "--auth",
            "basic",
            "--admin-password-file",
            pw.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (child, url) = druid::spawn(&args);
        Druid {
            child,
            url,
            auth: basic("admin", ADMIN_PW),
            _dir: dir,
        }
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = http(
            "GET",
            &format!("{}{path}", self.url),
            Some(&self.auth),
            None,
        );
        assert_eq!(status, 200, "GET {path}: {body}");
        if body.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    #[track_caller]
    fn post(&self, path: &str, body: Value) {
        let (status, text) = self.send("POST", path, Some(&body));
        assert!((200..300).contains(&status), "POST {path}: {status} {text}");
    }

    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
        http(
            method,
            &format!("{}{path}", self.url),
            Some(&self.auth),
            body,
        )
    }

    /// Every write the node recorded: audit rows per type (Druid's history endpoints, and the
    /// simulator's view of those Druid keeps none for) and each supervisor's spec rows (one
    /// per start or restart).
    fn writes(&self) -> Vec<(String, usize)> {
        let mut types: Vec<String> = [
            "rules",
            "coordinator.config",
            "worker.config",
            "lookupsConfig",
            "coordinator.compaction.config",
        ]
        .map(String::from)
        .to_vec();
        types.push(format!("basic_authentication_{AUTHN}_users"));
        types.push(format!("basic_authorization_{AUTHZ}_users"));
        types.push(format!("basic_authorization_{AUTHZ}_roles"));
        let mut out: Vec<(String, usize)> = types
            .into_iter()
            .map(|t| {
                let n = self
                    .get(&format!("/druid-sim/v1/audit?type={t}"))
                    .as_array()
                    .map_or(0, Vec::len);
                (t, n)
            })
            .collect();
        if let Value::Object(by_id) = self.get(&format!("{SUPERVISORS}/history")) {
            for (id, rows) in by_id {
                out.push((
                    format!("supervisor {id}"),
                    rows.as_array().map_or(0, Vec::len),
                ));
            }
        }
        out
    }
}

impl Drop for Druid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const RULES: &str = "/druid/coordinator/v1/rules";
const CONFIG: &str = "/druid/coordinator/v1/config";
const WORKER: &str = "/druid/indexer/v1/worker";
const LOOKUPS: &str = "/druid/coordinator/v1/lookups/config";
const COMPACTION: &str = "/druid/coordinator/v1/config/compaction";
const COMPACTION_CLUSTER: &str = "/druid/indexer/v1/compaction/config/cluster";
const SUPERVISORS: &str = "/druid/indexer/v1/supervisor";
const AUTHN: &str = "MyBasicMetadataAuthenticator";
const AUTHZ: &str = "MyBasicMetadataAuthorizer";
const SECURITY: &str = "/druid-ext/basic-security";

/// A Kafka supervisor spec in the shape of Druid's Kafka ingestion tutorial.
fn kafka(ds: &str, topic: &str) -> Value {
    json!({"type": "kafka", "spec": {
        "dataSchema": {"dataSource": ds, "timestampSpec": {"column": "time", "format": "iso"},
                       "dimensionsSpec": {"dimensions": ["channel", "page", "user"]},
                       "granularitySpec": {"type": "uniform", "segmentGranularity": "DAY",
                                           "queryGranularity": "NONE", "rollup": false}},
        "ioConfig": {"topic": topic, "inputFormat": {"type": "json"},
                     "consumerProperties": {"bootstrap.servers": "kafka-1:9092"}, "taskCount": 2},
        "tuningConfig": {"type": "kafka", "maxRowsPerSegment": 5_000_000}}})
}

/// Basic security as its docs' examples set it up: users in the authenticator (with passwords)
/// and the authorizer, roles with permissions, assignments.
fn seed_security(p: &Druid) {
    for u in ["alice", "bob"] {
        p.post(
            &format!("{SECURITY}/authentication/db/{AUTHN}/users/{u}"),
            json!({}),
        );
        p.post(
            &format!("{SECURITY}/authentication/db/{AUTHN}/users/{u}/credentials"),
            json!({"password": format!("{u}-on-the-primary")}),
        );
        p.post(
            &format!("{SECURITY}/authorization/db/{AUTHZ}/users/{u}"),
            json!({}),
        );
    }
    for (role, perms) in [
        (
            "reader",
            json!([{"resource": {"name": ".*", "type": "STATE"}, "action": "READ"},
                   {"resource": {"name": "wiki.*", "type": "DATASOURCE"}, "action": "READ"}]),
        ),
        (
            "config_writer",
            json!([{"resource": {"name": "CONFIG", "type": "CONFIG"}, "action": "WRITE"}]),
        ),
    ] {
        p.post(
            &format!("{SECURITY}/authorization/db/{AUTHZ}/roles/{role}"),
            json!({}),
        );
        p.post(
            &format!("{SECURITY}/authorization/db/{AUTHZ}/roles/{role}/permissions"),
            perms,
        );
    }
    for (u, r) in [
        ("alice", "reader"),
        ("alice", "config_writer"),
        ("bob", "reader"),
    ] {
        p.post(
            &format!("{SECURITY}/authorization/db/{AUTHZ}/users/{u}/roles/{r}"),
            json!({}),
        );
    }
}

/// A primary as Druid's docs set one up: `_default` and per-datasource rules, dynamic and worker
/// configs, lookups in two tiers, compaction, two Kafka supervisors (one running), basic security.
fn seed(p: &Druid) {
    p.post(
        &format!("{RULES}/_default"),
        json!([{"type": "loadForever", "tieredReplicants": {"_default_tier": 2}}]),
    );
    p.post(
        &format!("{RULES}/wikipedia"),
        json!([
            {"type": "loadByPeriod", "period": "P1M", "tieredReplicants": {"hot": 1, "_default_tier": 1}},
            {"type": "dropForever"}
        ]),
    );
    p.post(
        &format!("{RULES}/koalas"),
        json!([{"type": "loadByInterval", "interval": "2024-01-01/2025-01-01", "tieredReplicants": {"_default_tier": 1}}]),
    );
    p.post(
        CONFIG,
        json!({"maxSegmentsToMove": 50, "replicationThrottleLimit": 20,
               "decommissioningNodes": ["historical-7:8083"], "pauseCoordination": true,
               "killDataSourceWhitelist": ["scratch"]}),
    );
    p.post(
        WORKER,
        json!({"type": "default", "selectStrategy": {"type": "equalDistribution"}}),
    );
    p.post(LOOKUPS, json!({}));
    p.post(
        LOOKUPS,
        json!({
            "__default": {"country_code": {"version": "v1", "lookupExtractorFactory":
                {"type": "map", "map": {"FR": "France", "DE": "Germany"}}}},
            "realtime_customer2": {"site_names": {"version": "v10", "lookupExtractorFactory":
                {"type": "map", "map": {"1": "home", "2": "shop"}}}}
        }),
    );
    p.post(
        COMPACTION_CLUSTER,
        json!({"compactionTaskSlotRatio": 0.25, "maxCompactionTaskSlots": 4}),
    );
    p.post(
        COMPACTION,
        json!({"dataSource": "wikipedia", "skipOffsetFromLatest": "PT2H",
               "tuningConfig": {"partitionsSpec": {"type": "dynamic"}}}),
    );
    p.post(
        COMPACTION,
        json!({"dataSource": "koalas", "granularitySpec": {"segmentGranularity": "MONTH"}}),
    );
    p.post(SUPERVISORS, kafka("wikipedia", "wiki-edits"));
    p.post(SUPERVISORS, kafka("koalas", "koala-sightings"));
    p.post(&format!("{SUPERVISORS}/koalas/suspend"), json!({}));
    seed_security(p);
}

/// lifeboat's admin credentials, for both clusters (and a live source).
fn creds() -> Vec<(&'static str, String)> {
    vec![
        ("LIFEBOAT_DRUID_USER", "admin".into()),
        ("LIFEBOAT_DRUID_PASSWORD", ADMIN_PW.into()),
        ("LIFEBOAT_SOURCE_DRUID_USER", "admin".into()),
        ("LIFEBOAT_SOURCE_DRUID_PASSWORD", ADMIN_PW.into()),
    ]
}

fn lifeboat_as(args: &[&str], extra_env: &[(&str, &str)]) -> std::process::Output {
    let env = creds();
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.extend_from_slice(extra_env);
    lifeboat(args, &pairs)
}

fn run(args: &[&str]) -> Value {
    ok_json(&lifeboat_as(args, &[]))
}

fn export(from: &str, out: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "--json",
        "clone",
        "export",
        "--druid-url",
        from,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// `--json clone CMD --source TREE --druid-url URL EXTRA…`, the arguments of every clone run here.
fn clone_args<'a>(cmd: &'a str, tree: &'a Path, url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--json",
        "clone",
        cmd,
        "--source",
        tree.to_str().unwrap(),
        "--druid-url",
        url,
    ];
    args.extend_from_slice(extra);
    args
}

fn clone_cmd(cmd: &str, tree: &Path, to: &Druid, extra: &[&str]) -> Value {
    run(&clone_args(cmd, tree, &to.url, extra))
}

/// lifeboat ARGS in the background, with the source credentials and its output piped: for the
/// tests that act on the clusters while an apply runs.
fn spawn_lifeboat(args: &[&str]) -> std::process::Child {
    let env = creds();
    Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(args)
        .env("LIFEBOAT_PROGRESS", "none")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// (kind, path) -> action of the items that do something.
fn acting(plan: &Value) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["action"] != "unchanged")
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_string(),
                i["path"].as_str().unwrap().to_string(),
                i["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn without(mut v: Value, fields: &[&str]) -> Value {
    for f in fields {
        v.as_object_mut().unwrap().remove(*f);
    }
    v
}

/// The mapping of these tests: alice's password on the secondary (bob has none).
fn mapping(dir: &Path) -> std::path::PathBuf {
    let m = dir.join("mapping.toml");
    std::fs::write(
        &m,
        "[host_fields]\ndecommissioningNodes = []\n[passwords]\nalice = { env = \"ALICE_DR_PW\" }\n",
    )
    .unwrap();
    m
}

/// Druid answers compaction configs and a user's roles in the order they were set, which means
/// nothing: sorted here.
fn in_order(mut v: Value) -> Value {
    for list in ["compactionConfigs", "roles"] {
        if let Some(Value::Array(list)) = v.get_mut(list) {
            list.sort_by_key(|c| c.get("dataSource").unwrap_or(c).to_string());
        }
    }
    v
}

/// A spec as the GETs answer it, but for whether it is suspended.
fn running(mut spec: Value) -> Value {
    spec.as_object_mut().unwrap().remove("suspended");
    spec
}

#[test]
fn druid_clone_to_an_empty_secondary_matches_and_a_second_apply_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, secondary) = (Druid::start(&[]), Druid::start(&[]));
    seed(&primary);
    let tree = dir.path().join("tree");
    let e = export(&primary.url, &tree, &[]);
    let objects = &e["objects"];
    assert_eq!(objects["rules"], 3, "{e}");
    assert_eq!(objects["lookup"], 2, "{e}");
    assert_eq!(objects["compaction"], 2, "{e}");
    assert_eq!(objects["supervisor"], 2, "{e}");
    // admin (made at first start), alice, bob; the admin role and two more.
    assert_eq!(objects["authn-user"], 3, "{e}");
    assert_eq!(objects["authz-user"], 3, "{e}");
    assert_eq!(objects["role"], 3, "{e}");
    for f in [
        "rules/_default.rules.json",
        "rules/wikipedia.rules.json",
        "config/coordinator.dynamic-config.json",
        "config/overlord.worker-config.json",
        "config/compaction.compaction-cluster.json",
        "compaction/koalas.compaction.json",
        "supervisors/wikipedia.supervisor.json",
        "lookups/realtime_customer2/site_names.lookup.json",
        "authentication/MyBasicMetadataAuthenticator/alice.authn-user.json",
        "authorization/MyBasicMetadataAuthorizer/roles/reader.role.json",
        "authorization/MyBasicMetadataAuthorizer/users/alice.authz-user.json",
    ] {
        assert!(tree.join(f).is_file(), "{f} is not in the tree");
    }

    let m = mapping(dir.path());
    let apply_args = clone_args(
        "apply",
        &tree,
        &secondary.url,
        &["--mapping", m.to_str().unwrap()],
    );
    let pw = [("ALICE_DR_PW", "alice-on-the-dr-site")];
    let report = ok_json(&lifeboat_as(&apply_args, &pw));
    assert_eq!(report["summary"]["failed"], 0, "{report}");
    let bob = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "authn-user" && i["path"] == format!("{AUTHN}/bob"))
        .unwrap();
    assert!(
        bob["warnings"][0]
            .as_str()
            .unwrap()
            .contains("without a password"),
        "{bob}"
    );

    // Every GET matches but for the documented differences.
    for path in [
        RULES.to_string(),
        WORKER.to_string(),
        COMPACTION.to_string(),
        COMPACTION_CLUSTER.to_string(),
        format!("{LOOKUPS}/all"),
        format!("{SECURITY}/authentication/db/{AUTHN}/users"),
        format!("{SECURITY}/authorization/db/{AUTHZ}/users"),
        format!("{SECURITY}/authorization/db/{AUTHZ}/users/alice"),
        format!("{SECURITY}/authorization/db/{AUTHZ}/roles"),
        format!("{SECURITY}/authorization/db/{AUTHZ}/roles/reader?full"),
        format!("{SECURITY}/authorization/db/{AUTHZ}/roles/config_writer?full"),
        SUPERVISORS.to_string(),
    ] {
        assert_eq!(
            in_order(primary.get(&path)),
            in_order(secondary.get(&path)),
            "GET {path}"
        );
    }
    let host = [
        "decommissioningNodes",
        "pauseCoordination",
        "killDataSourceWhitelist",
    ];
    let (p, s) = (primary.get(CONFIG), secondary.get(CONFIG));
    assert_eq!(without(p.clone(), &host), without(s.clone(), &host));
    assert_eq!(
        s["pauseCoordination"], false,
        "not mapped: the secondary's own"
    );
    assert_eq!(s["killDataSourceWhitelist"], json!([]));
    assert_eq!(
        s["decommissioningNodes"],
        json!([]),
        "mapped: the mapping's value"
    );
    for id in ["wikipedia", "koalas"] {
        let (p, s) = (
            primary.get(&format!("{SUPERVISORS}/{id}")),
            secondary.get(&format!("{SUPERVISORS}/{id}")),
        );
        assert_eq!(running(p), running(s.clone()), "supervisor {id}");
        assert_eq!(s["suspended"], true, "a DR cluster must not ingest: {id}");
    }
    assert_eq!(
        primary.get(&format!("{SUPERVISORS}/wikipedia"))["suspended"],
        false
    );
    // alice logs in to the secondary with the mapping's password; bob, given none, cannot.
    let as_user = |u: &str, pw: &str| {
        let url = format!("{}{RULES}/wikipedia", secondary.url);
        http("GET", &url, Some(&basic(u, pw)), None).0
    };
    assert_eq!(as_user("alice", "alice-on-the-dr-site"), 200);
    assert_eq!(as_user("bob", "bob-on-the-primary"), 401);
    // Writes say who made them and from where.
    let history = secondary.get(&format!("{RULES}/history"));
    let audit = &history[0]["auditInfo"];
    assert_eq!(audit["author"], "lifeboat", "{history}");
    assert!(
        audit["comment"]
            .as_str()
            .unwrap()
            .contains(tree.to_str().unwrap()),
        "{audit}"
    );

    let writes = secondary.writes();
    let again = ok_json(&lifeboat_as(&apply_args, &pw));
    let summary = &again["summary"];
    assert_eq!(
        (
            &summary["created"],
            &summary["updated"],
            &summary["deleted"]
        ),
        (&json!(0), &json!(0), &json!(0)),
        "{again}"
    );
    assert_eq!(
        secondary.writes(),
        writes,
        "a second apply writes nothing: no audit row, no supervisor restarted"
    );
}

#[test]
fn druid_plan_shows_exactly_what_changed_and_mirror_deletes_inside_the_filters() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, secondary) = (Druid::start(&[]), Druid::start(&[]));
    seed(&primary);
    let tree = dir.path().join("tree");
    export(&primary.url, &tree, &[]);
    clone_cmd("apply", &tree, &secondary, &[]);

    // Change, delete, add on the primary.
    primary.post(
        &format!("{RULES}/wikipedia"),
        json!([{"type": "loadByPeriod", "period": "P3M", "tieredReplicants": {"_default_tier": 1}}]),
    );
    primary.post(&format!("{RULES}/koalas"), json!([]));
    primary.post(
        &format!("{RULES}/twitter"),
        json!([{"type": "dropByPeriod", "period": "P1Y"}]),
    );
    let (status, _) = primary.send("DELETE", &format!("{LOOKUPS}/__default/country_code"), None);
    assert_eq!(status, 202);
    primary.post(CONFIG, json!({"pauseCoordination": false}));
    export(&primary.url, &tree, &[]);
    assert!(!tree.join("rules/koalas.rules.json").exists());

    let plan = clone_cmd("plan", &tree, &secondary, &[]);
    assert_eq!(
        acting(&plan),
        [
            ("rules".into(), "twitter".into(), "create".into()),
            ("rules".into(), "wikipedia".into(), "update".into()),
        ],
        "update mode never deletes, and a host field changed is no change: {plan}"
    );
    let mirror = clone_cmd("plan", &tree, &secondary, &["--mode", "mirror"]);
    assert_eq!(
        acting(&mirror),
        [
            (
                "lookup".into(),
                "__default/country_code".into(),
                "delete".into()
            ),
            ("rules".into(), "koalas".into(), "delete".into()),
            ("rules".into(), "twitter".into(), "create".into()),
            ("rules".into(), "wikipedia".into(), "update".into()),
        ],
        "{mirror}"
    );
    // Mirror deletes only inside the filters: the export and the plan cover rules alone.
    let rules_only = dir.path().join("rules-only");
    export(&primary.url, &rules_only, &["--include", "@rules/**"]);
    let scoped = clone_cmd(
        "apply",
        &rules_only,
        &secondary,
        &[
            "--mode",
            "mirror",
            "--allow-delete",
            "--include",
            "@rules/**",
        ],
    );
    assert_eq!(scoped["summary"]["deleted"], 1, "{scoped}");
    assert_eq!(secondary.get(&format!("{RULES}/koalas")), json!([]));
    assert!(
        secondary.get(&format!("{LOOKUPS}/all"))["__default"]
            .get("country_code")
            .is_some(),
        "the lookup outside the filters stays"
    );
    assert_eq!(
        primary.get(RULES)["wikipedia"],
        secondary.get(RULES)["wikipedia"]
    );
}

#[test]
fn druid_refusals_stay_per_object_and_lookups_get_a_version_above_the_targets() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Druid::start(&[]);
    // The secondary loads the Kafka extension only.
    let secondary = Druid::start(&["--supervisor-types", "kafka"]);
    seed(&primary);
    primary.post(
        SUPERVISORS,
        json!({"type": "kinesis", "spec": {
            "dataSchema": {"dataSource": "clicks", "timestampSpec": {"column": "ts"},
                           "dimensionsSpec": {"dimensions": ["url"]}},
            "ioConfig": {"stream": "clicks", "inputFormat": {"type": "json"}},
            "tuningConfig": {"type": "kinesis"}}}),
    );
    // The secondary has its own, older copy of a lookup at a version that sorts ABOVE the
    // primary's as a Java string (`v9` > `v10`).
    secondary.post(LOOKUPS, json!({}));
    secondary.post(
        &format!("{LOOKUPS}/realtime_customer2/site_names"),
        json!({"version": "v9", "lookupExtractorFactory": {"type": "map", "map": {"1": "old"}}}),
    );
    let tree = dir.path().join("tree");
    export(&primary.url, &tree, &[]);
    // A hand-edited rule Druid does not know fails alone.
    let bad = tree.join("rules/koalas.rules.json");
    std::fs::write(&bad, r#"{"rules": [{"type": "loadSometimes"}]}"#).unwrap();
    let m = mapping(dir.path());
    let args = clone_args(
        "apply",
        &tree,
        &secondary.url,
        &["--mapping", m.to_str().unwrap()],
    );
    // alice's password variable is not set: her user alone fails, before it is created.
    let out = lifeboat_as(&args, &[]);
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let item = |kind: &str, path: &str| {
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["kind"] == kind && i["path"] == path)
            .unwrap_or_else(|| panic!("no {kind} {path} in {report}"))
            .clone()
    };
    let reason = |kind: &str, path: &str| {
        let i = item(kind, path);
        assert_eq!(i["outcome"], "failed", "{i}");
        i["reason"].as_str().unwrap().to_string()
    };
    assert!(reason("rules", "koalas").contains("HTTP 400"));
    assert!(
        reason("supervisor", "clicks").contains("Could not resolve type id 'kinesis'"),
        "{report}"
    );
    assert!(
        reason("authn-user", &format!("{AUTHN}/alice")).contains("ALICE_DR_PW is not set"),
        "{report}"
    );
    assert_eq!(report["summary"]["failed"], 3, "the rest applies: {report}");
    assert_eq!(item("supervisor", "wikipedia")["outcome"], "created");
    assert_eq!(
        item("authz-user", &format!("{AUTHZ}/users/alice"))["outcome"],
        "created"
    );
    let (status, _) = secondary.send(
        "GET",
        &format!("{SECURITY}/authentication/db/{AUTHN}/users/alice"),
        None,
    );
    assert_eq!(status, 400, "alice was not created without her password");
    let site = &secondary.get(&format!("{LOOKUPS}/all"))["realtime_customer2"]["site_names"];
    assert_eq!(site["version"], "v9~lb000001", "{site}");
    assert_eq!(site["lookupExtractorFactory"]["map"]["1"], "home");

    let left = acting(&ok_json(&lifeboat_as(
        &clone_args("plan", &tree, &secondary.url, &[]),
        &[],
    )));
    assert_eq!(
        left,
        [
            (
                "authn-user".into(),
                format!("{AUTHN}/alice"),
                "create".into()
            ),
            ("rules".into(), "koalas".into(), "create".into()),
            ("supervisor".into(), "clicks".into(), "create".into()),
        ],
        "only what was refused is left"
    );

    // lifeboat's own password wrong: the run stops at once and says which variable to fix.
    let out = lifeboat(
        &args[..7],
        &[
            ("LIFEBOAT_DRUID_USER", "admin"),
            ("LIFEBOAT_DRUID_PASSWORD", "not-it"),
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("HTTP 401") && err.contains("LIFEBOAT_DRUID_PASSWORD"),
        "{err}"
    );
    assert!(
        !err.contains("not-it"),
        "the password is never printed: {err}"
    );
}

#[test]
fn druid_failover_resumes_what_ran_on_the_primary_without_restarting_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, secondary) = (Druid::start(&[]), Druid::start(&[]));
    seed(&primary);
    let tree = dir.path().join("tree");
    export(&primary.url, &tree, &["--include", "@supervisors/**"]);
    let scope = ["--include", "@supervisors/**"];
    let mut args = clone_args("apply", &tree, &secondary.url, &scope);
    run(&args);
    let writes = secondary.writes();
    args.push("--resume-supervisors");
    let failover = run(&args);
    assert_eq!(
        acting(&failover),
        [("supervisor".into(), "wikipedia".into(), "update".into())],
        "only the supervisor that ran on the primary changes: {failover}"
    );
    assert_eq!(
        secondary.get(&format!("{SUPERVISORS}/wikipedia"))["suspended"],
        false
    );
    assert_eq!(
        secondary.get(&format!("{SUPERVISORS}/koalas"))["suspended"],
        true
    );
    let after = secondary.writes();
    let rows = |w: &[(String, usize)], id: &str| {
        w.iter()
            .find(|(k, _)| k == &format!("supervisor {id}"))
            .map(|(_, n)| *n)
    };
    assert_eq!(
        rows(&after, "koalas"),
        rows(&writes, "koalas"),
        "not restarted"
    );
    assert_eq!(
        rows(&after, "wikipedia"),
        rows(&writes, "wikipedia").map(|n| n + 1)
    );
}

#[test]
fn druid_clone_refuses_dremios_skip_words_and_names_unreachable_nodes() {
    let out = lifeboat(
        &[
            "clone",
            "export",
            "--druid-url",
            "http://127.0.0.1:9",
            "--out",
            "/nonexistent",
            "--skip",
            "wikis",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--skip wikis is not a kind of Druid"));
    let dir = tempfile::tempdir().unwrap();
    let out = lifeboat(
        &[
            "clone",
            "export",
            "--druid-url",
            "http://127.0.0.1:9,http://127.0.0.1:7",
            "--out",
            dir.path().join("t").to_str().unwrap(),
        ],
        &[],
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("no Coordinator leader found")
            && err.contains("http://127.0.0.1:9")
            && err.contains("http://127.0.0.1:7"),
        "{err}"
    );
}

/// A node that serves nothing itself: `/leader` names `leader`, and every other request is
/// redirected to `redirect_to` (the same path and query), as a Druid follower does. It records
/// each request's first line and whether it carried credentials.
struct Follower {
    url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, bool)>>>,
}

impl Follower {
    /// `leader`: None names the node itself.
    fn start(leader: Option<String>, redirect_to: String) -> Follower {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let leader = leader.unwrap_or_else(|| url.clone());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let first = head.lines().next().unwrap_or_default().to_string();
                let creds = head.to_ascii_lowercase().contains("\r\nauthorization:");
                log.lock().unwrap().push((first.clone(), creds));
                let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
                let answer = if path.ends_with("/leader") {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{leader}",
                        leader.len()
                    )
                } else {
                    format!(
                        "HTTP/1.1 307 Temporary Redirect\r\nLocation: {redirect_to}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                };
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Follower { url, seen }
    }

    fn requests(&self) -> Vec<(String, bool)> {
        self.seen.lock().unwrap().clone()
    }
}

#[test]
fn druid_given_a_follower_first_finds_the_leader_and_keeps_credentials_in_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Druid::start(&[]);
    seed(&leader);
    // The follower is given first; the leader is not given at all: a given node names it, and
    // it says it leads.
    let follower = Follower::start(Some(leader.url.clone()), leader.url.clone());
    let e = export(&follower.url, &dir.path().join("tree"), &[]);
    assert_eq!(e["objects"]["supervisor"], 2, "{e}");
    assert!(
        e["cluster"]["url"].as_str().unwrap() == follower.url,
        "reports name the cluster as given: {e}"
    );
    assert!(
        follower
            .requests()
            .iter()
            .all(|(line, _)| line.contains("/leader")),
        "once the leader is known, it is called directly: {:?}",
        follower.requests()
    );

    // A node that names itself but redirects elsewhere: the redirect is not followed, and the
    // stranger never hears from lifeboat.
    let stranger = Follower::start(None, "http://127.0.0.1:9".into());
    let liar = Follower::start(None, stranger.url.clone());
    let out = lifeboat_as(
        &[
            "clone",
            "export",
            "--druid-url",
            &liar.url,
            "--out",
            dir.path().join("t2").to_str().unwrap(),
        ],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("not followed"), "{err}");
    assert!(stranger.requests().is_empty(), "{:?}", stranger.requests());
    assert!(liar.requests().iter().all(|(_, creds)| *creds));
}

/// A node in front of a simulator that names itself the leader and relays every request to it,
/// except that the first request whose target contains `hold` waits until the test sends on the
/// returned channel (so that the test can change the simulator between lifeboat's read and its
/// write, deterministically).
struct Relay {
    url: String,
    held: std::sync::mpsc::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
}

impl Relay {
    fn start(upstream: &str, hold: &str) -> Relay {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.strip_prefix("http://").unwrap().to_string();
        let (held_tx, held) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let (me, hold) = (url.clone(), hold.to_string());
        std::thread::spawn(move || {
            let mut waiting = Some((held_tx, release_rx));
            for stream in listener.incoming() {
                let Ok(mut client) = stream else { return };
                let mut req = Vec::new();
                let mut byte = [0u8; 1];
                while !req.ends_with(b"\r\n\r\n") && client.read(&mut byte).unwrap_or(0) == 1 {
                    req.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&req).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                client.read_exact(&mut body).unwrap();
                let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                if target.ends_with("/leader") {
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{me}",
                        me.len()
                    );
                    let _ = client.write_all(answer.as_bytes());
                    continue;
                }
                if target.contains(&hold)
                    && let Some((held_tx, release_rx)) = waiting.take()
                {
                    held_tx.send(()).unwrap();
                    let _ = release_rx.recv();
                }
                let text = String::from_utf8_lossy(&req)
                    .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
                let mut server = std::net::TcpStream::connect(&upstream).unwrap();
                server.write_all(text.as_bytes()).unwrap();
                server.write_all(&body).unwrap();
                let mut answer = Vec::new();
                let _ = server.read_to_end(&mut answer);
                let _ = client.write_all(&answer);
            }
        });
        Relay { url, held, release }
    }
}

#[test]
fn druid_a_lookup_changed_on_the_target_during_an_apply_fails_alone_and_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, secondary) = (Druid::start(&[]), Druid::start(&[]));
    seed(&primary);
    secondary.post(LOOKUPS, json!({}));
    secondary.post(
        &format!("{LOOKUPS}/realtime_customer2/site_names"),
        json!({"version": "v9", "lookupExtractorFactory": {"type": "map", "map": {"1": "old"}}}),
    );
    let tree = dir.path().join("tree");
    export(&primary.url, &tree, &["--skip", "security,supervisors"]);
    let relay = Relay::start(
        &secondary.url,
        "/lookups/config/realtime_customer2/site_names",
    );
    let child = spawn_lifeboat(&clone_args(
        "apply",
        &tree,
        &relay.url,
        &["--skip", "security,supervisors"],
    ));
    relay
        .held
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("lifeboat writes the lookup");
    // Someone else raises the lookup after lifeboat read it, above what lifeboat will send.
    secondary.post(
        &format!("{LOOKUPS}/realtime_customer2/site_names"),
        json!({"version": "w1", "lookupExtractorFactory": {"type": "map", "map": {"1": "theirs"}}}),
    );
    relay.release.send(()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["outcome"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "the rest applies: {report}");
    assert_eq!(failed[0]["path"], "realtime_customer2/site_names");
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("lookup version conflict") && reason.contains("run again"),
        "{reason}"
    );
    let all = secondary.get(&format!("{LOOKUPS}/all"));
    assert_eq!(
        all["realtime_customer2"]["site_names"]["version"], "w1",
        "theirs stays"
    );
    assert_eq!(all["__default"]["country_code"]["version"], "v1");
    assert_eq!(primary.get(RULES), secondary.get(RULES));
}

// ----- an HA pair on one ZooKeeper and one PostgreSQL (scripts/test.sh starts both) -----

/// A name no other test of this run uses.
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        crate::support::free_port()
    )
}

/// A fresh chroot on the shared ZooKeeper quorum, as a connect string.
fn zk_chroot() -> String {
    crate::support::zk_chroot(&env("LIFEBOAT_ZK_SERVERS"), "druidclone")
}

/// A new, empty database on the PostgreSQL of `LIFEBOAT_PG_URL`, as a URL.
fn postgres_db() -> String {
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
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{db}")
}

/// Polls `f` until `ok` holds, for at most a minute (an election waits for a dead session).
#[track_caller]
fn poll<T: std::fmt::Debug>(what: &str, mut f: impl FnMut() -> T, ok: impl Fn(&T) -> bool) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let v = f();
        if ok(&v) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: still {v:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Druid {
    /// SIGKILLs the node, as a crashed leader.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The Coordinator leader this node names, if any.
    fn leader(&self) -> Option<String> {
        let (status, body) = self.send("GET", "/druid/coordinator/v1/leader", None);
        (status == 200).then(|| body.trim().trim_matches('"').to_string())
    }

    /// Audit rows of retention rules in the store (the simulator's view is never redirected).
    fn rules_written(&self) -> usize {
        let (_, body) = self.send("GET", "/druid-sim/v1/audit?type=rules", None);
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0)
    }
}

#[test]
fn druid_ha_pair_given_the_follower_first_finishes_an_apply_whose_leader_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (zk, db) = (zk_chroot(), postgres_db());
    let node = || {
        Druid::start(&[
            "--zookeeper",
            &zk,
            "--zk-session-timeout-ms",
            "2000",
            "--metadata-url",
            &db,
            "--latency-ms",
            "20",
        ])
    };
    let mut nodes = [node(), node()];
    let leader = poll(
        "one Coordinator leader named by both",
        || nodes.iter().map(Druid::leader).collect::<Vec<_>>(),
        |v| v[0].is_some() && v[0] == v[1],
    )[0]
    .clone()
    .unwrap();
    let l = nodes.iter().position(|n| n.url == leader).unwrap();
    let follower = nodes[1 - l].url.clone();

    let primary = Druid::start(&[]);
    seed(&primary);
    for n in 0..60 {
        primary.post(
            &format!("{RULES}/ds{n:02}"),
            json!([{"type": "loadByPeriod", "period": format!("P{}D", n + 1)}]),
        );
    }
    let tree = dir.path().join("tree");
    export(&primary.url, &tree, &[]);
    // The follower first; the leader dies once the rules are being written.
    let given = format!("{follower},{leader}");
    let child = spawn_lifeboat(&clone_args("apply", &tree, &given, &["--concurrency", "2"]));
    let survivor = &nodes[1 - l];
    poll(
        "lifeboat writes rules",
        || survivor.rules_written(),
        |n| *n >= 10,
    );
    nodes[l].kill();
    let out = child.wait_with_output().unwrap();
    let report = ok_json(&out);
    assert_eq!(report["summary"]["failed"], 0, "{report}");
    assert_eq!(report["summary"]["skipped"], 0, "{report}");
    let survivor = &nodes[1 - l];
    assert_eq!(survivor.leader().as_deref(), Some(follower.as_str()));
    assert_eq!(
        primary.get(RULES),
        survivor.get(RULES),
        "every rule arrived"
    );
    assert_eq!(
        primary.get(&format!("{LOOKUPS}/all")),
        survivor.get(&format!("{LOOKUPS}/all"))
    );
    let err = stderr(&out);
    assert!(
        err.contains("for a leader"),
        "the failover happened mid-run: {err}"
    );
    assert!(!err.contains(ADMIN_PW), "{err}");
}
