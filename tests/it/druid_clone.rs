//! `lifeboat clone` against Druid: simulators (tests/druid-sim) seeded the way Druid's
//! documentation examples do, exported, applied to an empty secondary, compared GET by GET.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::support::{http, lifeboat, ok_json, sim_bin, stderr};

/// A running `druid-sim`; killed (by its own pid) when dropped.
struct Druid {
    child: Child,
    url: String,
}

impl Druid {
    fn start(extra: &[&str]) -> Druid {
        let mut child = Command::new(sim_bin("druid-sim"))
            .args(["--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("druid-sim: active on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Druid {
            child,
            url: format!("http://{addr}"),
        }
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = http("GET", &format!("{}{path}", self.url), None, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        if body.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    #[track_caller]
    fn post(&self, path: &str, body: Value) {
        let (status, text) = http("POST", &format!("{}{path}", self.url), None, Some(&body));
        assert!((200..300).contains(&status), "POST {path}: {status} {text}");
    }

    /// How many audit rows each history endpoint holds.
    fn audit_rows(&self) -> Vec<usize> {
        [
            "/druid/coordinator/v1/rules/history",
            "/druid/coordinator/v1/config/history",
            "/druid/indexer/v1/worker/history",
        ]
        .iter()
        .map(|p| self.get(p).as_array().map_or(0, Vec::len))
        .collect()
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

/// A primary as Druid's docs set one up: `_default` and per-datasource rules, dynamic and worker
/// configs, lookups in two tiers.
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
}

fn run(args: &[&str]) -> Value {
    ok_json(&lifeboat(args, &[]))
}

fn export(from: &Druid, out: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "--json",
        "clone",
        "export",
        "--druid-url",
        &from.url,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn clone_cmd(cmd: &str, tree: &Path, to: &Druid, extra: &[&str]) -> Value {
    let mut args = vec![
        "--json",
        "clone",
        cmd,
        "--source",
        tree.to_str().unwrap(),
        "--druid-url",
        &to.url,
    ];
    args.extend_from_slice(extra);
    run(&args)
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

#[test]
fn druid_clone_to_an_empty_secondary_matches_and_a_second_apply_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, secondary) = (Druid::start(&[]), Druid::start(&[]));
    seed(&primary);
    let tree = dir.path().join("tree");
    let e = export(&primary, &tree, &[]);
    assert_eq!(e["objects"]["rules"], 3, "{e}");
    assert_eq!(e["objects"]["lookup"], 2, "{e}");
    assert_eq!(e["objects"]["dynamic-config"], 1);
    assert_eq!(e["objects"]["worker-config"], 1);
    let wiki = std::fs::read_to_string(tree.join("rules/wikipedia.rules.json")).unwrap();
    assert!(wiki.contains("loadByPeriod"), "{wiki}");
    assert!(tree.join("rules/_default.rules.json").exists());
    assert!(
        tree.join("lookups/realtime_customer2/site_names.lookup.json")
            .exists()
    );

    let report = clone_cmd("apply", &tree, &secondary, &[]);
    assert_eq!(report["summary"]["failed"], 0, "{report}");
    assert_eq!(primary.get(RULES), secondary.get(RULES));
    assert_eq!(primary.get(WORKER), secondary.get(WORKER));
    assert_eq!(
        primary.get(&format!("{LOOKUPS}/all")),
        secondary.get(&format!("{LOOKUPS}/all")),
        "an empty target takes the source's versions"
    );
    // The host fields are the documented difference: the secondary keeps its own.
    let host = [
        "decommissioningNodes",
        "pauseCoordination",
        "killDataSourceWhitelist",
    ];
    let (p, s) = (primary.get(CONFIG), secondary.get(CONFIG));
    assert_eq!(without(p.clone(), &host), without(s.clone(), &host));
    assert_eq!(s["pauseCoordination"], false);
    assert_eq!(s["decommissioningNodes"], json!([]));
    assert_eq!(p["maxSegmentsToMove"], s["maxSegmentsToMove"]);
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

    let rows = secondary.audit_rows();
    let lookups = secondary.get(&format!("{LOOKUPS}/all"));
    let again = clone_cmd("apply", &tree, &secondary, &[]);
    assert_eq!(again["summary"]["created"], 0, "{again}");
    assert_eq!(again["summary"]["updated"], 0, "{again}");
    assert_eq!(
        secondary.audit_rows(),
        rows,
        "a second apply writes nothing"
    );
    assert_eq!(secondary.get(&format!("{LOOKUPS}/all")), lookups);
}

#[test]
fn druid_plan_shows_exactly_what_changed_and_mirror_deletes_inside_the_filters() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, secondary) = (Druid::start(&[]), Druid::start(&[]));
    seed(&primary);
    let tree = dir.path().join("tree");
    export(&primary, &tree, &[]);
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
    let (status, _) = http(
        "DELETE",
        &format!("{}{LOOKUPS}/__default/country_code", primary.url),
        None,
        None,
    );
    assert_eq!(status, 202);
    primary.post(CONFIG, json!({"pauseCoordination": false}));
    export(&primary, &tree, &[]);
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
    export(&primary, &rules_only, &["--include", "@rules/**"]);
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
fn druid_lookups_get_a_version_above_the_targets_and_refusals_stay_per_object() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, secondary) = (Druid::start(&[]), Druid::start(&[]));
    seed(&primary);
    // The secondary has its own, older copy of a lookup at a version that sorts ABOVE the
    // primary's as a Java string (`v9` > `v10`).
    secondary.post(LOOKUPS, json!({}));
    secondary.post(
        &format!("{LOOKUPS}/realtime_customer2/site_names"),
        json!({"version": "v9", "lookupExtractorFactory": {"type": "map", "map": {"1": "old"}}}),
    );
    let tree = dir.path().join("tree");
    export(&primary, &tree, &[]);
    // A hand-edited rule Druid does not know fails alone.
    let bad = tree.join("rules/koalas.rules.json");
    std::fs::write(&bad, r#"{"rules": [{"type": "loadSometimes"}]}"#).unwrap();
    let out = lifeboat(
        &[
            "--json",
            "clone",
            "apply",
            "--source",
            tree.to_str().unwrap(),
            "--druid-url",
            &secondary.url,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let koalas = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"] == "koalas")
        .unwrap();
    assert_eq!(koalas["outcome"], "failed", "{report}");
    assert!(
        koalas["reason"].as_str().unwrap().contains("HTTP 400"),
        "{koalas}"
    );
    assert_eq!(report["summary"]["failed"], 1, "the rest applies: {report}");
    let site = &secondary.get(&format!("{LOOKUPS}/all"))["realtime_customer2"]["site_names"];
    assert_eq!(site["version"], "v9~lb000001", "{site}");
    assert_eq!(site["lookupExtractorFactory"]["map"]["1"], "home");
    let plan = clone_cmd("plan", &tree, &secondary, &[]);
    assert_eq!(
        acting(&plan),
        [("rules".into(), "koalas".into(), "create".into())],
        "only the refused rule is left: {plan}"
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
