//! The simulator over HTTP: leader endpoints, and each artefact's strictness.

mod common;

use common::Sim;
use serde_json::{Value, json};

const RULES: &str = "/druid/coordinator/v1/rules";
const CONFIG: &str = "/druid/coordinator/v1/config";
const LOOKUPS: &str = "/druid/coordinator/v1/lookups/config";
const WORKER: &str = "/druid/indexer/v1/worker";

#[test]
fn status_health_and_leaders_are_answered_locally() {
    let sim = Sim::start();
    let st = sim.get("/status");
    assert_eq!(st.status, 200);
    assert_eq!(st.json()["version"], "31.0.0");
    assert!(st.json()["memory"]["maxMemory"].is_u64());
    assert_eq!(sim.get("/status/health").json(), json!(true));
    for role in ["coordinator", "indexer"] {
        let l = sim.get(&format!("/druid/{role}/v1/leader"));
        assert_eq!(
            (l.status, l.body.as_str()),
            (200, sim.url().as_str()),
            "bare, unquoted URL"
        );
        assert_eq!(l.header("content-type"), Some("application/json"));
        let is = sim.get(&format!("/druid/{role}/v1/isLeader"));
        assert_eq!((is.status, is.json()), (200, json!({"leader": true})));
    }
    assert_eq!(sim.get("/druid/coordinator/v1/nothing").status, 404);
}

#[test]
fn a_new_store_has_the_default_rule() {
    let sim = Sim::start();
    let all = sim.get(RULES).json();
    assert_eq!(
        all,
        json!({"_default": [{"type": "loadForever", "tieredReplicants": {"_default_tier": 2},
                             "useDefaultTierForNull": true}]})
    );
    assert_eq!(
        sim.get(&format!("{RULES}/history")).json(),
        json!([]),
        "no audit row for it"
    );
}

#[test]
fn rules_overwrite_an_empty_list_clears_and_history_keeps_author_and_comment() {
    let sim = Sim::start();
    let two = r#"[{"type":"loadByPeriod","period":"P1M","tieredReplicants":{"hot":1}},{"type":"dropForever"}]"#;
    assert_eq!(
        sim.post(&format!("{RULES}/wiki"), two).status,
        200,
        "unknown datasources are fine"
    );
    let one = r#"[{"type":"loadForever","tieredReplicants":{"_default_tier":1}}]"#;
    assert_eq!(sim.post(&format!("{RULES}/wiki"), one).status, 200);
    let got = sim.get(&format!("{RULES}/wiki")).json();
    assert_eq!(
        got.as_array().unwrap().len(),
        1,
        "overwritten, not appended: {got}"
    );
    let full = sim.get(&format!("{RULES}/wiki?full")).json();
    assert_eq!(
        full.as_array().unwrap().len(),
        2,
        "?full appends _default: {full}"
    );

    assert_eq!(sim.post(&format!("{RULES}/wiki"), "[]").status, 200);
    assert_eq!(sim.get(&format!("{RULES}/wiki")).json(), json!([]));

    let hist = sim.get(&format!("{RULES}/wiki/history")).json();
    let hist = hist.as_array().unwrap();
    assert_eq!(hist.len(), 3);
    assert_eq!(
        hist[0]["payload"], "[]",
        "newest first, payload a JSON string"
    );
    assert_eq!(hist[0]["auditInfo"]["author"], "lifeboat");
    assert_eq!(hist[0]["auditInfo"]["comment"], "from primary");
    assert_eq!(hist[0]["type"], "rules");
    assert_eq!(
        sim.get(&format!("{RULES}/wiki/history?count=1"))
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(sim.get(&format!("{RULES}/other/history")).json(), json!([]));
}

#[test]
fn rules_druid_would_not_parse_are_refused_and_not_written() {
    let sim = Sim::start();
    let refused = [
        (
            r#"[{"type":"loadForevr"}]"#,
            "Could not resolve type id 'loadForevr'",
        ),
        (r#"[{"tieredReplicants":{"t":1}}]"#, "missing type id"),
        (r#"{"type":"dropForever"}"#, "non-array"),
        (r#"[{"type":"dropByPeriod"}]"#, "'period' is required"),
        (
            r#"[{"type":"loadForever","tieredReplicants":{"t":-1}}]"#,
            "non-negative",
        ),
        (r#"[{"type":"dropByInterval","interval":7}]"#, "wrong type"),
        (
            r#"[{"type":"dropForever"},{"type":"loadForever"}]"#,
            "redundant",
        ),
        ("[{", "malformed JSON"),
    ];
    for (body, why) in refused {
        let r = sim.post(&format!("{RULES}/wiki"), body);
        assert_eq!(r.status, 400, "{body}");
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(why), "{body}: {msg}");
    }
    let text = [("Content-Type", "text/plain")];
    let r = sim.call(
        "POST",
        &format!("{RULES}/wiki"),
        &text,
        Some(r#"[{"type":"dropForever"}]"#),
    );
    assert_eq!(r.status, 415, "only JSON bodies reach the resource");
    assert_eq!(sim.get(&format!("{RULES}/wiki")).json(), json!([]));
    assert_eq!(sim.get(&format!("{RULES}/history")).json(), json!([]));
}

#[test]
fn rules_keep_only_what_druid_serialises() {
    let sim = Sim::start();
    let body = r#"[{"type":"dropByPeriod","period":"P3M","colour":"red"}]"#;
    assert_eq!(sim.post(&format!("{RULES}/wiki"), body).status, 200);
    assert_eq!(
        sim.get(&format!("{RULES}/wiki")).json(),
        json!([{"type": "dropByPeriod", "period": "P3M", "includeFuture": true}])
    );
}

#[test]
fn dynamic_config_merges_over_the_current_one_and_refuses_wrong_types() {
    let sim = Sim::start();
    let first = sim.get(CONFIG).json();
    assert_eq!(first["maxSegmentsToMove"], 100);
    assert_eq!(first["pauseCoordination"], false);

    let r = sim.post(
        CONFIG,
        r#"{"maxSegmentsToMove": 5, "killDataSourceWhitelist": "a, b", "shiny": 1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        sim.post(CONFIG, r#"{"pauseCoordination": true}"#).status,
        200
    );
    let now = sim.get(CONFIG).json();
    assert_eq!(now["maxSegmentsToMove"], 5, "left out, so kept");
    assert_eq!(now["pauseCoordination"], true);
    assert_eq!(now["killDataSourceWhitelist"], json!(["a", "b"]));
    assert!(
        now.get("shiny").is_none(),
        "unknown fields are ignored, not kept"
    );

    for body in [
        r#"{"maxSegmentsToMove": "many"}"#,
        r#"{"decommissioningNodes": [1]}"#,
        "[]",
    ] {
        assert_eq!(sim.post(CONFIG, body).status, 400, "{body}");
    }
    assert_eq!(sim.get(CONFIG).json(), now);

    let hist = sim.get(&format!("{CONFIG}/history")).json();
    let hist = hist.as_array().unwrap();
    assert_eq!(hist.len(), 2);
    assert_eq!(hist[0]["key"], "coordinator.config");
    assert_eq!(hist[0]["auditInfo"]["author"], "lifeboat");
    let payload: Value = serde_json::from_str(hist[0]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["pauseCoordination"], true);
}

#[test]
fn the_overlord_worker_config_starts_empty_and_refuses_unknown_types() {
    let sim = Sim::start();
    let none = sim.get(WORKER);
    assert_eq!(
        (none.status, none.body.as_str()),
        (200, ""),
        "an empty body, not JSON"
    );
    for bad in [
        r#"{"type": "fancy"}"#,
        r#"{"selectStrategy": {"type": "roundRobin"}}"#,
        "[]",
    ] {
        assert_eq!(sim.post(WORKER, bad).status, 400, "{bad}");
    }
    assert_eq!(sim.get(WORKER).body, "");
    let cfg = r#"{"selectStrategy": {"type": "fillCapacity"}, "extra": 1}"#;
    assert_eq!(sim.post(WORKER, cfg).status, 200);
    assert_eq!(
        sim.get(WORKER).json(),
        json!({"type": "default", "selectStrategy": {"type": "fillCapacity"}})
    );
    let hist = sim.get(&format!("{WORKER}/history")).json();
    assert_eq!(hist.as_array().unwrap().len(), 1);
    assert_eq!(hist[0]["type"], "worker.config");
    assert_eq!(hist[0]["auditInfo"]["comment"], "from primary");
}

#[test]
fn lookups_must_be_initialised_with_an_empty_object_first() {
    let sim = Sim::start();
    assert_eq!(sim.get(&format!("{LOOKUPS}/all")).status, 404);
    let early = json!({"__default": {"country": lookup("v1")}}).to_string();
    assert_eq!(sim.post(LOOKUPS, &early).status, 400);
    assert_eq!(
        sim.post(
            &format!("{LOOKUPS}/__default/country"),
            &lookup("v1").to_string()
        )
        .status,
        400
    );
    assert_eq!(sim.post(LOOKUPS, "{}").status, 202);
    assert_eq!(sim.get(&format!("{LOOKUPS}/all")).json(), json!({}));
    assert_eq!(sim.post(LOOKUPS, &early).status, 202);
    assert_eq!(
        sim.get(&format!("{LOOKUPS}/__default/country")).json(),
        lookup("v1")
    );
}

#[test]
fn a_lookup_version_must_sort_higher_as_a_java_string() {
    let sim = Sim::start();
    assert_eq!(sim.post(LOOKUPS, "{}").status, 202);
    let bulk = json!({"__default": {"country": lookup("v9")}, "hot": {"city": lookup("v1")}});
    assert_eq!(sim.post(LOOKUPS, &bulk.to_string()).status, 202);
    assert_eq!(sim.get(LOOKUPS).json(), json!(["__default", "hot"]));

    let one = format!("{LOOKUPS}/__default/country");
    for v in ["v9", "v10"] {
        let r = sim.post(&one, &lookup(v).to_string());
        assert_eq!(r.status, 400, "{v} is not above v9");
        assert!(
            r.json()["error"].as_str().unwrap().contains("not newer"),
            "{}",
            r.body
        );
    }
    assert_eq!(sim.get(&one).json(), lookup("v9"));
    assert_eq!(sim.post(&one, &lookup("v9a").to_string()).status, 202);
    assert_eq!(sim.get(&one).json()["version"], "v9a");

    // a bulk update with one stale lookup writes none of it
    let mixed = json!({"hot": {"city": lookup("v2"), "zip": lookup("v1")}, "__default": {"country": lookup("v1")}});
    assert_eq!(sim.post(LOOKUPS, &mixed.to_string()).status, 400);
    assert_eq!(sim.get(&format!("{LOOKUPS}/hot")).json(), json!(["city"]));
}

#[test]
fn lookups_refuse_bad_containers_and_delete_per_lookup_and_tier() {
    let sim = Sim::start();
    assert_eq!(sim.post(LOOKUPS, "{}").status, 202);
    let one = format!("{LOOKUPS}/hot/city");
    for bad in [
        r#"{"lookupExtractorFactory": {"type": "map"}}"#,
        r#"{"version": "v1"}"#,
        r#"{"hot": 1}"#,
    ] {
        assert_eq!(sim.post(&one, bad).status, 400, "{bad}");
    }
    assert_eq!(sim.post(LOOKUPS, r#"{"hot": []}"#).status, 400);
    let extra = json!({"version": "v1", "lookupExtractorFactory": {"type": "map", "map": {}}, "injective": true});
    assert_eq!(sim.post(&one, &extra.to_string()).status, 202);
    assert_eq!(
        sim.get(&one).json(),
        lookup_map("v1", json!({})),
        "unknown fields dropped"
    );
    assert_eq!(sim.call("DELETE", &one, &[], None).status, 202);
    assert_eq!(sim.get(&one).status, 404);
    assert_eq!(sim.call("DELETE", &one, &[], None).status, 404);
    assert_eq!(
        sim.call("DELETE", &format!("{LOOKUPS}/hot"), &[], None)
            .status,
        202
    );
    assert_eq!(sim.get(&format!("{LOOKUPS}/hot")).status, 404);
}

#[test]
fn the_embedded_store_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let sim = Sim::with_state(dir.path());
        assert_eq!(
            sim.post(&format!("{RULES}/wiki"), r#"[{"type":"dropForever"}]"#)
                .status,
            200
        );
        assert_eq!(sim.post(LOOKUPS, "{}").status, 202);
    }
    let sim = Sim::with_state(dir.path());
    assert_eq!(
        sim.get(&format!("{RULES}/wiki")).json(),
        json!([{"type": "dropForever"}])
    );
    assert_eq!(sim.get(&format!("{LOOKUPS}/all")).json(), json!({}));
    assert_eq!(
        sim.get(&format!("{RULES}/wiki/history"))
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

fn lookup(version: &str) -> Value {
    lookup_map(version, json!({"us": "United States"}))
}

fn lookup_map(version: &str, map: Value) -> Value {
    json!({"version": version, "lookupExtractorFactory": {"type": "map", "map": map}})
}

#[test]
fn latency_delays_every_answer_by_at_least_the_given_time() {
    let sim = Sim::spawn(&["--latency-ms", "300"]);
    for path in ["/status/health", RULES] {
        let start = std::time::Instant::now();
        assert_eq!(sim.get(path).status, 200);
        // a sleep lasts at least its time, so this lower bound cannot flake
        assert!(
            start.elapsed() >= std::time::Duration::from_millis(300),
            "{path} answered after {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn history_takes_an_interval_which_wins_over_count() {
    let sim = Sim::start();
    sim.post(&format!("{RULES}/wiki"), r#"[{"type":"dropForever"}]"#);
    sim.post(&format!("{RULES}/wiki"), "[]");
    sim.post(CONFIG, r#"{"maxSegmentsToMove":7}"#);
    let n = |path: &str| {
        let r = sim.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json().as_array().unwrap().len()
    };
    assert_eq!(
        n(&format!(
            "{RULES}/wiki/history?interval=2000-01-01/2100-01-01"
        )),
        2
    );
    assert_eq!(
        n(&format!("{RULES}/history?interval=2000-01-01/2001-01-01")),
        0
    );
    assert_eq!(
        n(&format!(
            "{RULES}/wiki/history?interval=2000-01-01T00:00:00Z%2F2100-01-01T00:00:00.000Z"
        )),
        2
    );
    assert_eq!(
        n(&format!(
            "{RULES}/wiki/history?interval=2000-01-01/2100-01-01&count=1"
        )),
        2,
        "the interval wins"
    );
    assert_eq!(
        n(&format!("{CONFIG}/history?interval=2000-01-01/2100-01-01")),
        1
    );
    for bad in ["yesterday", "2100-01-01/2000-01-01", "2000-01-01"] {
        let r = sim.get(&format!("{RULES}/history?interval={bad}"));
        assert_eq!(r.status, 400, "{bad}");
    }
}

#[test]
fn the_simulators_audit_view_shows_writes_druid_has_no_history_for() {
    let sim = Sim::start();
    sim.post(LOOKUPS, "{}");
    sim.post(
        LOOKUPS,
        &json!({"__default": {"country": lookup("v1")}}).to_string(),
    );
    let rows = sim.get("/druid-sim/v1/audit?type=lookupsConfig").json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["auditInfo"]["author"], "lifeboat");
    assert!(
        rows[0]["payload"].as_str().unwrap().contains("country"),
        "newest first"
    );
    assert_eq!(
        sim.get("/druid-sim/v1/audit?type=lookupsConfig&count=1")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        sim.get("/druid-sim/v1/audit?type=nothing").json(),
        json!([])
    );
    assert_eq!(sim.get("/druid-sim/v1/audit").status, 400);
}
