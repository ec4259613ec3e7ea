//! Compaction configs over HTTP: per datasource (upsert, defaults filled in, 404s, history) and
//! the cluster level, with its deprecated `taskslots` form.

mod common;

use common::Sim;
use serde_json::{Value, json};

const COMPACTION: &str = "/druid/coordinator/v1/config/compaction";
const CLUSTER: &str = "/druid/indexer/v1/compaction/config/cluster";

#[test]
fn a_datasource_config_is_upserted_with_druids_defaults_filled_in() {
    let sim = Sim::start();
    let posted = r#"{"dataSource":"wiki","skipOffsetFromLatest":"PT1H","colour":"red",
                     "tuningConfig":{"partitionsSpec":{"type":"dynamic"}}}"#;
    let r = sim.post(COMPACTION, posted);
    assert_eq!(r.status, 200, "unknown datasources are fine: {}", r.body);
    let got = sim.get(&format!("{COMPACTION}/wiki")).json();
    assert_eq!(
        got,
        json!({"dataSource": "wiki", "taskPriority": 25, "inputSegmentSizeBytes": 100_000_000_000_000_i64,
               "skipOffsetFromLatest": "PT1H", "tuningConfig": {"partitionsSpec": {"type": "dynamic"}}}),
        "defaults in, unknown field out"
    );
    assert_eq!(
        sim.post(COMPACTION, r#"{"dataSource":"wiki","taskPriority":90}"#)
            .status,
        200
    );
    let all = sim.get(COMPACTION).json();
    let list = all["compactionConfigs"].as_array().unwrap();
    assert_eq!(list.len(), 1, "upserted, not appended: {all}");
    assert_eq!(list[0]["taskPriority"], 90);
    assert_eq!(
        list[0]["skipOffsetFromLatest"], "P1D",
        "a POST replaces the whole datasource config"
    );
    assert_eq!(all["compactionTaskSlotRatio"], 0.1);
    assert_eq!(all["maxCompactionTaskSlots"], i32::MAX);
}

#[test]
fn missing_configs_are_404_and_a_delete_removes_one() {
    let sim = Sim::start();
    assert_eq!(sim.get(&format!("{COMPACTION}/wiki")).status, 404);
    assert_eq!(
        sim.call("DELETE", &format!("{COMPACTION}/wiki"), &[], None)
            .status,
        404
    );
    sim.post(COMPACTION, r#"{"dataSource":"wiki"}"#);
    sim.post(COMPACTION, r#"{"dataSource":"koala"}"#);
    let del = sim.call("DELETE", &format!("{COMPACTION}/wiki"), &[], None);
    assert_eq!(del.status, 200);
    assert_eq!(sim.get(&format!("{COMPACTION}/wiki")).status, 404);
    assert_eq!(sim.get(&format!("{COMPACTION}/koala")).status, 200);
}

#[test]
fn configs_druid_would_not_parse_are_refused_and_not_written() {
    let sim = Sim::start();
    for (body, why) in [
        (r#"{"taskPriority":1}"#, "dataSource cannot be null"),
        (r#"{"dataSource":""}"#, "dataSource cannot be null"),
        (
            r#"{"dataSource":"wiki","taskPriority":"high"}"#,
            "taskPriority",
        ),
        (
            r#"{"dataSource":"wiki","skipOffsetFromLatest":"1 day"}"#,
            "skipOffsetFromLatest",
        ),
        (r#"{"dataSource":"wiki","engine":"spark"}"#, "spark"),
        (r#"[{"dataSource":"wiki"}]"#, "JSON object"),
    ] {
        let r = sim.post(COMPACTION, body);
        assert_eq!(r.status, 400, "{body}");
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(why), "{body}: {msg}");
    }
    assert_eq!(sim.get(COMPACTION).json()["compactionConfigs"], json!([]));
    assert_eq!(
        sim.get(&format!("{COMPACTION}/wiki/history")).json(),
        json!([])
    );
}

#[test]
fn the_cluster_level_merges_and_the_taskslots_form_still_works() {
    let sim = Sim::start();
    let c = sim.get(CLUSTER);
    assert_eq!(c.status, 200);
    assert_eq!(
        c.json(),
        json!({"compactionTaskSlotRatio": 0.1, "maxCompactionTaskSlots": i32::MAX, "useAutoScaleSlots": false,
               "compactionPolicy": {"type": "newestSegmentFirst"}, "useSupervisors": false, "engine": "native"})
    );
    assert_eq!(
        sim.post(CLUSTER, r#"{"maxCompactionTaskSlots":8}"#).status,
        200
    );
    let c = sim.get(CLUSTER).json();
    assert_eq!(
        (
            c["maxCompactionTaskSlots"].clone(),
            c["compactionTaskSlotRatio"].clone()
        ),
        (json!(8), json!(0.1)),
        "fields left out keep their values"
    );
    for (body, why) in [
        (r#"{"engine":"msq"}"#, "only with compaction supervisors"),
        (r#"{"compactionPolicy":{"type":"oldest"}}"#, "oldest"),
        (
            r#"{"maxCompactionTaskSlots":"8"}"#,
            "maxCompactionTaskSlots",
        ),
    ] {
        let r = sim.post(CLUSTER, body);
        assert_eq!(r.status, 400, "{body}");
        assert!(r.body.contains(why), "{body}: {}", r.body);
    }
    assert_eq!(
        sim.post(CLUSTER, r#"{"engine":"msq","useSupervisors":true}"#)
            .status,
        200
    );

    let slots = sim.call(
        "POST",
        &format!("{COMPACTION}/taskslots?ratio=0.5&max=3"),
        &[],
        None,
    );
    assert_eq!(
        slots.status, 200,
        "no body, no content type: {}",
        slots.body
    );
    let all = sim.get(COMPACTION).json();
    assert_eq!(
        (
            all["compactionTaskSlotRatio"].clone(),
            all["maxCompactionTaskSlots"].clone()
        ),
        (json!(0.5), json!(3))
    );
    let bad = sim.call(
        "POST",
        &format!("{COMPACTION}/taskslots?max=lots"),
        &[],
        None,
    );
    assert_eq!(bad.status, 400);
    assert_eq!(sim.get(CLUSTER).json()["maxCompactionTaskSlots"], 3);
}

#[test]
fn history_shows_each_change_of_one_datasource_with_author_and_comment() {
    let sim = Sim::start();
    sim.post(COMPACTION, r#"{"dataSource":"wiki","taskPriority":1}"#);
    sim.post(COMPACTION, r#"{"dataSource":"koala"}"#);
    sim.post(COMPACTION, r#"{"dataSource":"wiki","taskPriority":2}"#);
    sim.call(
        "DELETE",
        &format!("{COMPACTION}/wiki"),
        &[("X-Druid-Author", "ops")],
        None,
    );
    let hist = sim.get(&format!("{COMPACTION}/wiki/history")).json();
    let prio: Vec<Value> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["compactionConfig"]["taskPriority"].clone())
        .collect();
    assert_eq!(
        prio,
        vec![Value::Null, json!(2), json!(1)],
        "newest first, the deletion a null config, koala's change not shown: {hist}"
    );
    assert_eq!(hist[0]["auditInfo"]["author"], "ops");
    assert_eq!(hist[1]["auditInfo"]["author"], "lifeboat");
    assert_eq!(hist[1]["auditInfo"]["comment"], "from primary");
    assert_eq!(hist[1]["globalConfig"]["compactionTaskSlotRatio"], 0.1);
    let last = sim
        .get(&format!("{COMPACTION}/wiki/history?count=1"))
        .json();
    assert_eq!(last.as_array().unwrap().len(), 1);
}

#[test]
fn a_prefix_ends_at_a_path_segment() {
    let sim = Sim::start();
    assert_eq!(
        sim.get("/druid/coordinator/v1/config/compactionwiki")
            .status,
        404
    );
    assert_eq!(sim.get("/druid/indexer/v1/supervisors").status, 404);
    assert_eq!(
        sim.get(&format!("{COMPACTION}/")).status,
        200,
        "a trailing slash is the same resource"
    );
}
