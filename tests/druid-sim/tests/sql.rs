//! The metadata store in real PostgreSQL and MariaDB (scripts/test.sh starts them): Druid's
//! tables and column types, every artefact and its audit row round-tripping, two processes
//! sharing one state, and a password that never reaches the output.

mod cluster;

use std::process::{Command, Stdio};

use cluster::{Sim, block, mariadb_db, postgres_db};
use druid_sim::store::AuditInfo;
use serde_json::{Value, json};

fn who(author: &str) -> AuditInfo {
    AuditInfo {
        author: author.into(),
        comment: "why".into(),
        ip: "10.0.0.7".into(),
    }
}

/// Two stores on one database, through the trait: each sees the other's writes at once.
fn two_stores_share_every_table(url: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut one = druid_sim::sql::open(url, rt.handle().clone()).unwrap();
    let mut two = druid_sim::sql::open(url, rt.handle().clone()).unwrap();

    one.init_rules("_default", json!([{"type": "loadForever"}]))
        .unwrap();
    one.set_rules("wiki", json!([{"type": "dropForever"}]), &who("a"))
        .unwrap();
    // two writes in one millisecond still make two versions, the second one current
    two.set_rules("wiki", json!([{"type": "loadForever"}]), &who("b"))
        .unwrap();
    let rules = one.rules().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules["wiki"], json!([{"type": "loadForever"}]));
    assert!(
        one.audit("rules", Some("_default")).unwrap().is_empty(),
        "init is not audited"
    );
    let audit = two.audit("rules", Some("wiki")).unwrap();
    let authors: Vec<&str> = audit.iter().map(|e| e.info.author.as_str()).collect();
    assert_eq!(authors, ["a", "b"], "oldest first");
    assert_eq!(
        audit[0].info,
        who("a"),
        "the IP survives in the stored entry"
    );
    assert_eq!(audit[1].payload, r#"[{"type":"loadForever"}]"#);
    assert!(audit[0].created.ends_with('Z') && audit[0].created.len() == 24);

    assert_eq!(one.config("coordinator.config").unwrap(), None);
    one.set_config(
        "coordinator.config",
        json!({"maxSegmentsToMove": 5}),
        &who("a"),
    )
    .unwrap();
    two.set_config(
        "coordinator.config",
        json!({"maxSegmentsToMove": 7}),
        &who("b"),
    )
    .unwrap();
    assert_eq!(
        one.config("coordinator.config").unwrap(),
        Some(json!({"maxSegmentsToMove": 7}))
    );
    let audit = one.audit("coordinator.config", None).unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1].key, "coordinator.config");

    one.insert_supervisor("wiki-kafka", json!({"type": "kafka", "v": 1}))
        .unwrap();
    two.insert_supervisor("other", json!({"type": "kafka"}))
        .unwrap();
    one.insert_supervisor("wiki-kafka", json!({"type": "kafka", "v": 2}))
        .unwrap();
    let wiki: Vec<Value> = two
        .supervisor_rows(Some("wiki-kafka"))
        .unwrap()
        .into_iter()
        .map(|r| r.payload["v"].clone())
        .collect();
    assert_eq!(wiki, [json!(1), json!(2)]);
    let all = one.supervisor_rows(None).unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.spec_id.as_str()).collect();
    assert_eq!(ids, ["wiki-kafka", "other", "wiki-kafka"]);
}

/// Over HTTP: a write through one process is what the other answers and audits.
fn two_processes_share_state(url: &str) {
    let a = Sim::start(&["--metadata-url", url]);
    let b = Sim::start(&["--metadata-url", url]);
    let rules = r#"[{"type": "loadByPeriod", "period": "P1M", "tieredReplicants": {"hot": 1}}]"#;
    assert_eq!(
        a.call("POST", "/druid/coordinator/v1/rules/wiki", Some(rules))
            .status,
        200
    );
    assert_eq!(
        b.get("/druid/coordinator/v1/rules/wiki").json()[0]["period"],
        "P1M"
    );
    let all = b.get("/druid/coordinator/v1/rules").json();
    assert!(
        all["_default"].is_array(),
        "seeded once, seen by both: {all}"
    );

    let config = r#"{"maxSegmentsToMove": 9}"#;
    assert_eq!(
        b.call("POST", "/druid/coordinator/v1/config", Some(config))
            .status,
        200
    );
    assert_eq!(
        a.get("/druid/coordinator/v1/config").json()["maxSegmentsToMove"],
        9
    );
    let history = a.get("/druid/coordinator/v1/config/history").json();
    assert_eq!(history[0]["auditInfo"]["author"], "lifeboat");
    assert_eq!(history[0]["auditInfo"]["comment"], "from primary");
    assert_eq!(history[0]["auditInfo"]["ip"], "127.0.0.1");

    assert_eq!(
        a.call("POST", "/druid/coordinator/v1/lookups/config", Some("{}"))
            .status,
        202
    );
    let lookup =
        r#"{"version": "v1", "lookupExtractorFactory": {"type": "map", "map": {"a": "b"}}}"#;
    let path = "/druid/coordinator/v1/lookups/config/__default/countries";
    assert_eq!(b.call("POST", path, Some(lookup)).status, 202);
    assert_eq!(a.get(path).json()["version"], "v1");
    assert_eq!(
        a.call("POST", path, Some(lookup)).status,
        400,
        "the same version, seen by a"
    );

    let worker = r#"{"type": "default", "selectStrategy": {"type": "equalDistribution"}}"#;
    assert_eq!(
        a.call("POST", "/druid/indexer/v1/worker", Some(worker))
            .status,
        200
    );
    let got = b.get("/druid/indexer/v1/worker").json();
    assert_eq!(got["selectStrategy"]["type"], "equalDistribution");
}

/// A table's columns and their types, lower case, from the information schema.
fn postgres_columns(url: &str, table: &str) -> Vec<(String, String)> {
    block(async {
        let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let rows = c
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_name = $1 ORDER BY ordinal_position",
                &[&table],
            )
            .await
            .unwrap();
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    })
}

fn mariadb_columns(url: &str, table: &str) -> Vec<(String, String)> {
    use mysql_async::prelude::Queryable;
    block(async {
        let mut c = mysql_async::Conn::from_url(url).await.unwrap();
        let rows: Vec<(String, String)> = c
            .exec(
                "SELECT column_name, data_type FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
                (table,),
            )
            .await
            .unwrap();
        c.disconnect().await.unwrap();
        rows.into_iter()
            .map(|(n, t)| (n.to_lowercase(), t.to_lowercase()))
            .collect()
    })
}

fn names(cols: &[(String, String)]) -> Vec<String> {
    cols.iter().map(|(n, _)| n.to_lowercase()).collect()
}

fn type_of<'a>(cols: &'a [(String, String)], name: &str) -> &'a str {
    cols.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or("", |(_, t)| t.as_str())
}

#[test]
fn postgres_holds_druids_tables_and_two_stores_share_them() {
    let url = postgres_db();
    two_stores_share_every_table(&url);
    let audit = postgres_columns(&url, "druid_audit");
    assert_eq!(
        names(&audit),
        [
            "id",
            "audit_key",
            "type",
            "author",
            "comment",
            "created_date",
            "payload"
        ]
    );
    assert_eq!(type_of(&audit, "payload"), "bytea");
    assert_eq!(type_of(&audit, "id"), "bigint");
    let rules = postgres_columns(&url, "druid_rules");
    assert_eq!(names(&rules), ["id", "datasource", "version", "payload"]);
    assert_eq!(
        type_of(&postgres_columns(&url, "druid_config"), "payload"),
        "bytea"
    );
    assert_eq!(
        names(&postgres_columns(&url, "druid_supervisors")),
        ["id", "spec_id", "created_date", "payload"]
    );
}

#[test]
fn mariadb_holds_druids_tables_and_two_stores_share_them() {
    let url = mariadb_db();
    two_stores_share_every_table(&url);
    let audit = mariadb_columns(&url, "druid_audit");
    assert_eq!(
        names(&audit),
        [
            "id",
            "audit_key",
            "type",
            "author",
            "comment",
            "created_date",
            "payload"
        ]
    );
    assert_eq!(type_of(&audit, "payload"), "longblob");
    assert_eq!(type_of(&audit, "id"), "bigint");
    assert_eq!(
        type_of(&mariadb_columns(&url, "druid_rules"), "payload"),
        "longblob"
    );
}

#[test]
fn two_processes_share_one_postgres() {
    two_processes_share_state(&postgres_db());
}

#[test]
fn two_processes_share_one_mariadb() {
    two_processes_share_state(&mariadb_db());
}

#[test]
fn a_wrong_password_fails_the_start_without_printing_it() {
    for url in [postgres_db(), mariadb_db()] {
        let (head, db) = url.rsplit_once('@').unwrap();
        let (scheme_user, _) = head.rsplit_once(':').unwrap();
        let bad = format!("{scheme_user}:Wr0ngPassw0rd-z9@{db}");
        let out = Command::new(cluster::SIM)
            .args(["--port", "0", "--metadata-url", &bad])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad} must not start");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("connecting to"), "a clear error: {text}");
        assert!(
            !text.contains("Wr0ngPassw0rd-z9"),
            "the password leaked: {text}"
        );
    }
}

#[test]
fn an_unknown_scheme_is_refused() {
    let out = Command::new(cluster::SIM)
        .args(["--port", "0", "--metadata-url", "derby://localhost/druid"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("postgres:// or mysql://"));
}
