//! Supervisors over HTTP: the two spec forms, defaults filled in, restarts (and the lack of one),
//! suspend/resume/terminate, history, and the types the node does not load.

mod common;

use common::Sim;
use serde_json::{Value, json};

const SUP: &str = "/druid/indexer/v1/supervisor";

fn kafka(ds: &str, topic: &str) -> String {
    json!({"type": "kafka", "spec": {
        "dataSchema": {"dataSource": ds, "timestampSpec": {"column": "ts"}},
        "ioConfig": {"topic": topic, "consumerProperties": {"bootstrap.servers": "kafka:9092"}, "taskCount": 2},
        "tuningConfig": {"type": "kafka", "maxRowsPerSegment": 1000}}})
    .to_string()
}

fn restarts(sim: &Sim, id: &str) -> Value {
    sim.get(&format!("{SUP}/{id}/status")).json()["payload"]["restarts"].clone()
}

#[test]
fn a_spec_is_stored_as_druid_serialises_it_under_its_datasource() {
    let sim = Sim::start();
    let r = sim.post(SUP, &kafka("wiki", "edits"));
    assert_eq!((r.status, r.json()), (200, json!({"id": "wiki"})));
    let got = sim.get(&format!("{SUP}/wiki")).json();
    assert_eq!(got["type"], "kafka");
    assert_eq!(got["suspended"], false);
    assert_eq!(got["spec"]["ioConfig"], got["ioConfig"], "the parts twice");
    assert_eq!(got["dataSchema"], got["spec"]["dataSchema"]);
    let io = &got["ioConfig"];
    assert_eq!(
        (io["taskCount"].clone(), io["replicas"].clone()),
        (json!(2), json!(1)),
        "given and defaulted"
    );
    assert_eq!(io["taskDuration"], "PT3600S");
    assert_eq!(got["tuningConfig"]["maxRowsInMemory"], 150_000);
    assert_eq!(got["tuningConfig"]["maxRowsPerSegment"], 1000);
    assert_eq!(
        got["dataSchema"]["granularitySpec"]["segmentGranularity"],
        "DAY"
    );

    let flat = json!({"type": "kinesis", "suspended": true, "colour": "red",
        "dataSchema": {"dataSource": "koala"}, "ioConfig": {"stream": "s"}})
    .to_string();
    assert_eq!(sim.post(SUP, &flat).json(), json!({"id": "koala"}));
    let k = sim.get(&format!("{SUP}/koala")).json();
    assert_eq!(
        k["spec"]["ioConfig"]["stream"], "s",
        "the flat form nests too"
    );
    assert_eq!(k["suspended"], true);
    assert!(k.get("colour").is_none());
    assert_eq!(sim.get(SUP).json(), json!(["koala", "wiki"]));
}

#[test]
fn full_shows_state_and_suspend_resume_refuse_what_is_already_so() {
    let sim = Sim::start();
    sim.post(SUP, &kafka("wiki", "edits"));
    let full = sim.get(&format!("{SUP}?full")).json();
    let one = &full[0];
    assert_eq!(
        (
            one["id"].clone(),
            one["state"].clone(),
            one["detailedState"].clone()
        ),
        (json!("wiki"), json!("RUNNING"), json!("RUNNING"))
    );
    assert_eq!(
        (one["healthy"].clone(), one["suspended"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(one["spec"], sim.get(&format!("{SUP}/wiki")).json());
    let states = sim.get(&format!("{SUP}?state=true")).json();
    assert_eq!(
        states,
        json!([{"id": "wiki", "state": "RUNNING", "detailedState": "RUNNING", "healthy": true,
                "suspended": false}]),
        "?state=true: the states without the specs"
    );

    let sus = sim.call("POST", &format!("{SUP}/wiki/suspend"), &[], None);
    assert_eq!(sus.status, 200, "{}", sus.body);
    assert_eq!(sus.json()["suspended"], true);
    assert_eq!(
        sim.get(&format!("{SUP}?full")).json()[0]["state"],
        "SUSPENDED"
    );
    let again = sim.call("POST", &format!("{SUP}/wiki/suspend"), &[], None);
    assert_eq!(again.status, 400);
    assert!(again.body.contains("already suspended"), "{}", again.body);
    assert_eq!(
        sim.call("POST", &format!("{SUP}/wiki/resume"), &[], None)
            .status,
        200
    );
    let running = sim.call("POST", &format!("{SUP}/wiki/resume"), &[], None);
    assert_eq!(running.status, 400);
    assert!(running.body.contains("already running"), "{}", running.body);
    assert_eq!(
        sim.call("POST", &format!("{SUP}/nope/suspend"), &[], None)
            .status,
        404
    );
}

#[test]
fn a_post_restarts_unless_unchanged_and_skip_restart_if_unmodified() {
    let sim = Sim::start();
    sim.post(SUP, &kafka("wiki", "edits"));
    assert_eq!(restarts(&sim, "wiki"), 0);
    sim.post(SUP, &kafka("wiki", "edits"));
    assert_eq!(restarts(&sim, "wiki"), 1, "unchanged, but no skip flag");
    let skip = format!("{SUP}?skipRestartIfUnmodified=true");
    assert_eq!(
        sim.post(&skip, &kafka("wiki", "edits")).json(),
        json!({"id": "wiki"})
    );
    assert_eq!(
        restarts(&sim, "wiki"),
        1,
        "unchanged and skipped: not restarted"
    );
    sim.post(&skip, &kafka("wiki", "edits-v2"));
    assert_eq!(
        restarts(&sim, "wiki"),
        2,
        "changed: restarted despite the flag"
    );
    assert_eq!(
        sim.get(&format!("{SUP}/wiki/history"))
            .json()
            .as_array()
            .unwrap()
            .len(),
        3,
        "one druid_supervisors row per start"
    );
}

#[test]
fn terminate_leaves_a_tombstone_in_history_and_frees_the_id() {
    let sim = Sim::start();
    sim.post(SUP, &kafka("wiki", "edits"));
    let t = sim.call("POST", &format!("{SUP}/wiki/terminate"), &[], None);
    assert_eq!((t.status, t.json()), (200, json!({"id": "wiki"})));
    assert_eq!(sim.get(SUP).json(), json!([]));
    assert_eq!(sim.get(&format!("{SUP}/wiki")).status, 404);
    assert_eq!(
        sim.call("POST", &format!("{SUP}/wiki/terminate"), &[], None)
            .status,
        404
    );
    let hist = sim.get(&format!("{SUP}/wiki/history")).json();
    assert_eq!(
        hist[0]["spec"]["type"], "NoopSupervisorSpec",
        "newest first: {hist}"
    );
    assert_eq!(hist[1]["spec"]["type"], "kafka");
    assert!(hist[1]["version"].is_string());
    let all = sim.get(&format!("{SUP}/history")).json();
    assert_eq!(all["wiki"], hist);
    assert_eq!(sim.get(&format!("{SUP}/other/history")).status, 404);

    sim.post(SUP, &kafka("wiki", "edits"));
    assert_eq!(
        restarts(&sim, "wiki"),
        0,
        "a new supervisor after the tombstone"
    );
}

#[test]
fn specs_druid_would_not_parse_are_refused_and_not_written() {
    let sim = Sim::start();
    let io = json!({"topic": "t", "consumerProperties": {"bootstrap.servers": "k:9092"}});
    let ds = json!({"dataSource": "wiki"});
    for (body, why) in [
        (
            json!({"type": "rabbit", "dataSchema": ds, "ioConfig": io}),
            "Could not resolve type id 'rabbit'",
        ),
        (json!({"dataSchema": ds, "ioConfig": io}), "missing type id"),
        (
            json!({"type": "kafka", "ioConfig": io}),
            "dataSchema is required",
        ),
        (
            json!({"type": "kafka", "dataSchema": {"dataSource": ""}, "ioConfig": io}),
            "dataSource cannot be null",
        ),
        (
            json!({"type": "kafka", "dataSchema": ds}),
            "ioConfig is required",
        ),
        (
            json!({"type": "kafka", "dataSchema": ds, "ioConfig": {"topic": "t"}}),
            "bootstrap.servers",
        ),
        (
            json!({"type": "kafka", "dataSchema": ds, "ioConfig": {"consumerProperties": {"bootstrap.servers": "k"}}}),
            "topic",
        ),
        (
            json!({"type": "kafka", "dataSchema": ds, "ioConfig": {"topic": "t", "taskCount": "2",
               "consumerProperties": {"bootstrap.servers": "k"}}}),
            "taskCount",
        ),
        (
            json!({"type": "kafka", "dataSchema": ds, "ioConfig": io, "tuningConfig": {"type": "kinesis"}}),
            "does not match",
        ),
        (
            json!({"type": "kinesis", "dataSchema": ds, "ioConfig": {}}),
            "stream cannot be null",
        ),
    ] {
        let r = sim.post(SUP, &body.to_string());
        assert_eq!(r.status, 400, "{body}");
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(why), "{body}: {msg}");
    }
    assert_eq!(sim.get(SUP).json(), json!([]));
    assert_eq!(sim.get(&format!("{SUP}/history")).json(), json!({}));
}

#[test]
fn a_node_without_the_kinesis_extension_refuses_kinesis_specs() {
    let sim = Sim::spawn(&["--supervisor-types", "kafka"]);
    let kinesis = json!({"type": "kinesis", "dataSchema": {"dataSource": "wiki"}, "ioConfig": {"stream": "s"}});
    let r = sim.post(SUP, &kinesis.to_string());
    assert_eq!(r.status, 400);
    assert!(r.body.contains("known type ids = [kafka]"), "{}", r.body);
    assert_eq!(sim.post(SUP, &kafka("wiki", "edits")).status, 200);
}
