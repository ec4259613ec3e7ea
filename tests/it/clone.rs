//! `lifeboat clone` between two simulators: a primary with sources, promoted datasets, nested
//! spaces and folders, views three levels deep across spaces (created in an order that breaks a
//! naive replay), a UDF, reflections, wikis, tags and users; and an empty secondary.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

const VERSION: &str = "25.2.0";
use crate::support::ADMIN;
const LAKE_SECRET: &str = "s3cr3t-lake-key";

/// A simulator with its first administrator; `auth` is its header.
struct Cluster {
    sim: Sim,
    auth: String,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start(version: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let sim = Sim::start(dir.path(), version);
        let auth = first_admin(&sim.url, ADMIN.0, ADMIN.1);
        Cluster {
            sim,
            auth,
            _dir: dir,
        }
    }

    fn url(&self) -> &str {
        &self.sim.url
    }

    /// A request that must succeed; returns the JSON answer.
    #[track_caller]
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, text) = http(
            method,
            &format!("{}{path}", self.sim.url),
            Some(&self.auth),
            body.as_ref(),
        );
        assert!(status < 300, "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    fn create(&self, body: Value) -> Value {
        self.call("POST", "/api/v3/catalog", Some(body))
    }

    fn by_path(&self, path: &str) -> Value {
        let segs: Vec<String> = path.split('/').map(|s| s.replace(' ', "%20")).collect();
        self.call(
            "GET",
            &format!("/api/v3/catalog/by-path/{}", segs.join("/")),
            None,
        )
    }

    fn view(&self, path: &[&str], sql: &str, ctx: &[&str]) -> Value {
        self.create(
            json!({"entityType": "dataset", "type": "VIRTUAL_DATASET", "path": path,
                           "sql": sql, "sqlContext": ctx}),
        )
    }

    fn folder(&self, path: &[&str]) -> Value {
        self.create(json!({"entityType": "folder", "path": path}))
    }

    fn promote(&self, path: &[&str], format: Value) -> Value {
        let id = format!("dremio:/{}", path.join("/"));
        let enc: String = id
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        self.call(
            "POST",
            &format!("/api/v3/catalog/{enc}"),
            Some(
                json!({"entityType": "dataset", "id": id, "type": "PHYSICAL_DATASET",
                        "path": path, "format": format}),
            ),
        )
    }

    fn update_sql(&self, path: &str, sql: &str) {
        let mut v = self.by_path(path);
        v["sql"] = json!(sql);
        v.as_object_mut().unwrap().remove("fields");
        let id = v["id"].as_str().unwrap().to_string();
        self.call("PUT", &format!("/api/v3/catalog/{id}"), Some(v));
    }

    fn delete(&self, path: &str) {
        let v = self.by_path(path);
        let (status, text) = http(
            "DELETE",
            &format!(
                "{}/api/v3/catalog/{}?tag={}",
                self.sim.url,
                v["id"].as_str().unwrap(),
                v["tag"].as_str().unwrap()
            ),
            Some(&self.auth),
            None,
        );
        assert!(status < 300, "delete {path}: {status} {text}");
    }
}

/// The primary's artefacts, created in dependency order (the simulator checks view SQL), yet so
/// that neither listing order (Apps < Base < Mid) nor creation order replays: `Base/clean/early`
/// is changed at the end to read a view made after it.
fn seed(p: &Cluster) {
    p.create(json!({"entityType": "source", "name": "lake", "type": "S3",
        "config": {"accessKey": "AKIALAKE", "accessSecret": LAKE_SECRET, "bucket": "lake-bucket"},
        "metadataPolicy": {"authTTLMs": 86400000, "namesRefreshMs": 3600000}}));
    p.create(
        json!({"entityType": "source", "name": "files", "type": "NAS",
        "config": {"path": "/data/files"}}),
    );
    p.promote(&["lake", "trips", "2024"], json!({"type": "Parquet"}));
    p.promote(
        &["lake", "zones"],
        json!({"type": "Text", "fieldDelimiter": ",", "extractHeader": true}),
    );
    p.promote(&["files", "raw", "events.json"], json!({"type": "JSON"}));
    for s in ["Apps", "Base", "Mid"] {
        p.create(json!({"entityType": "space", "name": s}));
    }
    p.folder(&["Base", "clean"]);
    p.folder(&["Base", "clean", "deep"]);
    p.folder(&["Base", "clean", "deep", "deeper"]);
    p.folder(&["Base", "fns"]);
    p.folder(&["Mid", "agg"]);
    p.folder(&["Apps", "dash"]);
    p.view(&["Base", "clean", "early"], "SELECT 1 AS one", &[]);
    p.view(
        &["Base", "clean", "trips_clean"],
        "SELECT * FROM lake.trips.\"2024\" WHERE fare > 0",
        &[],
    );
    p.view(
        &["Base", "clean", "deep", "deeper", "zones_v"],
        "SELECT * FROM lake.zones",
        &[],
    );
    p.create(
        json!({"entityType": "function", "path": ["Base", "fns", "tax"], "isScalar": true,
        "functionArgList": "x DOUBLE", "functionBody": "SELECT x * 1.2", "returnType": "DOUBLE"}),
    );
    p.view(
        &["Mid", "agg", "daily"],
        "WITH t AS (SELECT * FROM Base.clean.trips_clean)\nSELECT z.name, COUNT(*) AS n, Base.fns.tax(SUM(fare)) AS taxed\nFROM t JOIN Base.clean.deep.deeper.zones_v z ON t.zone = z.id\nGROUP BY z.name",
        &[],
    );
    p.view(
        &["Apps", "dash", "top"],
        "SELECT * FROM \"Mid\".\"agg\".\"daily\" ORDER BY n DESC LIMIT 10",
        &[],
    );
    p.view(
        &["Apps", "dash", "relative"],
        "SELECT * FROM daily",
        &["Mid", "agg"],
    );
    p.update_sql("Base/clean/early", "SELECT n FROM Mid.agg.daily");
    // Reflections, wikis, tags.
    let daily = p.by_path("Mid/agg/daily");
    let id = daily["id"].as_str().unwrap();
    p.call(
        "POST",
        "/api/v3/reflection",
        Some(json!({"type": "RAW", "name": "raw_daily",
        "datasetId": id, "enabled": true, "displayFields": [{"name": "name"}, {"name": "n"}]})),
    );
    p.call(
        "POST",
        "/api/v3/reflection",
        Some(json!({"type": "AGGREGATION", "name": "agg_daily",
        "datasetId": id, "enabled": true, "arrowCachingEnabled": true,
        "dimensionFields": [{"name": "name"}], "measureFields": [{"name": "n"}]})),
    );
    p.call(
        "POST",
        &format!("/api/v3/catalog/{id}/collaboration/wiki"),
        Some(json!({"text": "# Daily\nTrips per zone and day.\n"})),
    );
    let base = p.by_path("Base");
    p.call(
        "POST",
        &format!(
            "/api/v3/catalog/{}/collaboration/wiki",
            base["id"].as_str().unwrap()
        ),
        Some(json!({"text": "Cleaned sources."})),
    );
    let top = p.by_path("Apps/dash/top");
    p.call(
        "POST",
        &format!(
            "/api/v3/catalog/{}/collaboration/tag",
            top["id"].as_str().unwrap()
        ),
        Some(json!({"tags": ["gold", "exec"]})),
    );
    let trips = p.by_path("lake/trips/2024");
    p.call(
        "POST",
        &format!(
            "/api/v3/catalog/{}/collaboration/tag",
            trips["id"].as_str().unwrap()
        ),
        Some(json!({"tags": ["raw"]})),
    );
    for (name, first) in [("alice", "Alice"), ("bob", "Bob")] {
        p.call("POST", "/api/v3/user", Some(json!({"name": name, "firstName": first,
            "lastName": "Example", "email": format!("{name}@example.com"), "password": "Passw0rd1"})));
    }
}

fn creds() -> Vec<(String, String)> {
    vec![
        ("LIFEBOAT_DREMIO_USER".into(), ADMIN.0.into()),
        ("LIFEBOAT_DREMIO_PASSWORD".into(), ADMIN.1.into()),
        ("LAKE_SECRET".into(), LAKE_SECRET.into()),
        ("ALICE_PW".into(), "Alice1234".into()),
    ]
}

fn mapping(dir: &Path) -> PathBuf {
    let path = dir.join("mapping.toml");
    std::fs::write(
        &path,
        "[secrets.lake]\naccessSecret = { env = \"LAKE_SECRET\" }\n[passwords]\nalice = { env = \"ALICE_PW\" }\n",
    )
    .unwrap();
    path
}

fn export(c: &Cluster, out: &Path, extra: &[&str]) -> Value {
    export_from(c.url(), out, extra, &creds())
}

/// `clone export` of the cluster at `url` into `out`; its JSON report.
fn export_from(url: &str, out: &Path, extra: &[&str], env: &[(String, String)]) -> Value {
    let mut args = vec![
        "--json",
        "clone",
        "export",
        "--dremio-url",
        url,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok_json(&lifeboat_env(&args, env))
}

/// Exports the target into `dir/back` and checks its catalog is the tree's.
#[track_caller]
fn assert_clone_of(tree: &Path, target_url: &str, dir: &Path, what: &str) {
    let back = dir.join("back");
    export_from(target_url, &back, &[], &seed_env());
    assert_same(
        &snapshot(&tree.join("catalog")),
        &snapshot(&back.join("catalog")),
        what,
    );
}

fn apply(source: &str, target: &Cluster, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--json",
        "clone",
        "apply",
        "--source",
        source,
        "--dremio-url",
        target.url(),
    ];
    args.extend_from_slice(extra);
    lifeboat_env(&args, &creds())
}

/// Items of a plan or report that do something (or were meant to), as `(kind, path, action or outcome)`.
fn acting(report: &Value, field: &str) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i[field] != "unchanged")
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_string(),
                i["path"].as_str().unwrap().to_string(),
                i[field].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The item of a plan or report about `kind` at `path` (a reflection's path ends in `#name`).
#[track_caller]
fn item<'a>(report: &'a Value, kind: &str, path: &str) -> &'a Value {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"] == path && i["kind"] == kind)
        .unwrap_or_else(|| panic!("{kind} {path} not in {report}"))
}

fn triple(k: &str, p: &str, a: &str) -> (String, String, String) {
    (k.into(), p.into(), a.into())
}

#[test]
fn a_primary_clones_onto_an_empty_secondary_and_a_second_apply_changes_nothing() {
    let primary = Cluster::start(VERSION);
    seed(&primary);
    let secondary = Cluster::start(VERSION);
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("export");
    let e = export(&primary, &tree, &[]);
    assert_eq!(e["objects"]["view"], 6, "{e}");
    assert_eq!(e["objects"]["dataset"], 3);
    assert_eq!(e["objects"]["function"], 1);
    assert_eq!(e["objects"]["reflections"], 2);
    // Git-friendly: SQL apart, no ids, no secrets.
    let sql = std::fs::read_to_string(tree.join("catalog/Apps/dash/top.view.sql")).unwrap();
    assert!(sql.starts_with("SELECT * FROM \"Mid\""), "{sql}");
    let source = std::fs::read_to_string(tree.join("catalog/lake.source.json")).unwrap();
    assert!(!source.contains(LAKE_SECRET) && source.contains("$DREMIO_EXISTING_VALUE$"));
    for (_, text) in std::fs::read_dir(tree.join("catalog/Mid/agg"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.clone(), std::fs::read_to_string(p).unwrap())
        })
    {
        assert!(
            !text.contains("\"id\"") && !text.contains("\"tag\""),
            "{text}"
        );
    }

    let map = mapping(work.path());
    // Kinds left out are left out of the plan too.
    let partial = ok_json(&lifeboat_env(
        &[
            "--json",
            "clone",
            "plan",
            "--source",
            tree.to_str().unwrap(),
            "--dremio-url",
            secondary.url(),
            "--skip",
            "wikis,tags,reflections,users",
        ],
        &creds(),
    ));
    let kinds: std::collections::BTreeSet<&str> = partial["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        vec!["dataset", "folder", "function", "source", "space", "view"]
    );
    let out = apply(
        tree.to_str().unwrap(),
        &secondary,
        &["--mapping", map.to_str().unwrap()],
    );
    let report = ok_json(&out);
    assert_eq!(report["summary"]["failed"], 0, "{report}");
    assert_eq!(report["summary"]["skipped"], 0, "{report}");
    let bob = item(&report, "user", "bob");
    assert!(
        bob["warnings"][0]
            .as_str()
            .unwrap()
            .contains("random password"),
        "{bob}"
    );
    // alice got her password from the mapping.
    login(secondary.url(), "alice", "Alice1234");

    // The secondary's catalog equals the primary's.
    let back = work.path().join("secondary");
    export(&secondary, &back, &[]);
    assert_same(
        &snapshot(&tree),
        &snapshot(&back),
        "secondary vs primary export",
    );

    // A second apply changes nothing.
    let again = ok_json(&apply(
        tree.to_str().unwrap(),
        &secondary,
        &["--mapping", map.to_str().unwrap()],
    ));
    assert_eq!(acting(&again, "outcome"), vec![], "{again}");
}

#[test]
fn plan_shows_exactly_the_changes_and_apply_makes_them() {
    let primary = Cluster::start(VERSION);
    seed(&primary);
    let secondary = Cluster::start(VERSION);
    let work = tempfile::tempdir().unwrap();
    let map = mapping(work.path());
    let m = map.to_str().unwrap();
    // Straight from the live primary this time.
    let live = |cmd: &str, extra: &[&str]| {
        let mut args = vec![
            "--json",
            "clone",
            cmd,
            "--source-url",
            primary.url(),
            "--dremio-url",
            secondary.url(),
            "--mapping",
            m,
        ];
        args.extend_from_slice(extra);
        let mut env = creds();
        env.push(("LIFEBOAT_SOURCE_DREMIO_USER".into(), ADMIN.0.into()));
        env.push(("LIFEBOAT_SOURCE_DREMIO_PASSWORD".into(), ADMIN.1.into()));
        lifeboat_env(&args, &env)
    };
    ok_json(&live("apply", &[]));

    primary.update_sql(
        "Apps/dash/top",
        "SELECT * FROM Mid.agg.daily ORDER BY n DESC LIMIT 5",
    );
    primary.delete("Apps/dash/relative");
    primary.view(
        &["Apps", "dash", "new_one"],
        "SELECT name FROM Mid.agg.daily",
        &[],
    );

    let plan = ok_json(&live("plan", &[]));
    assert_eq!(
        acting(&plan, "action"),
        vec![
            triple("view", "Apps/dash/new_one", "create"),
            triple("view", "Apps/dash/top", "update"),
        ],
        "{plan}"
    );
    let top = item(&plan, "view", "Apps/dash/top");
    assert_eq!(top["changed"], json!(["sql"]));
    // The same plan with the clusters named in a config file.
    let config = work.path().join("lifeboat.toml");
    std::fs::write(
        &config,
        format!(
            "[clusters.primary]\ndremio_urls = [\"{}\"]\n[clusters.secondary]\ndremio_urls = [\"{}\"]\n",
            primary.url(),
            secondary.url()
        ),
    )
    .unwrap();
    let mut env = creds();
    env.push(("LIFEBOAT_SOURCE_DREMIO_USER".into(), ADMIN.0.into()));
    env.push(("LIFEBOAT_SOURCE_DREMIO_PASSWORD".into(), ADMIN.1.into()));
    let named = ok_json(&lifeboat_env(
        &[
            "--json",
            "--config",
            config.to_str().unwrap(),
            "clone",
            "plan",
            "--source-url",
            "primary",
            "--dremio-url",
            "secondary",
            "--mapping",
            m,
        ],
        &env,
    ));
    assert_eq!(acting(&named, "action"), acting(&plan, "action"));
    let mirror = ok_json(&live("plan", &["--mode", "mirror"]));
    assert_eq!(
        acting(&mirror, "action"),
        vec![
            triple("view", "Apps/dash/new_one", "create"),
            triple("view", "Apps/dash/relative", "delete"),
            triple("view", "Apps/dash/top", "update"),
        ],
        "{mirror}"
    );
    // Deleting needs the explicit flag.
    fails_with(
        &live("apply", &["--mode", "mirror"]),
        2,
        &["--allow-delete"],
    );
    let done = ok_json(&live("apply", &["--mode", "mirror", "--allow-delete"]));
    assert_eq!(
        acting(&done, "outcome"),
        vec![
            triple("view", "Apps/dash/new_one", "created"),
            triple("view", "Apps/dash/relative", "deleted"),
            triple("view", "Apps/dash/top", "updated"),
        ],
        "{done}"
    );
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    export(&primary, &a, &[]);
    export(&secondary, &b, &[]);
    assert_same(&snapshot(&a), &snapshot(&b), "after mirror");
}

#[test]
fn a_view_invalid_on_the_target_fails_alone_and_its_dependents_are_skipped() {
    let primary = Cluster::start(VERSION);
    seed(&primary);
    let secondary = Cluster::start(VERSION);
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("export");
    export(&primary, &tree, &[]);
    // As if edited in git: Mid/agg/daily now reads a table the target does not have.
    std::fs::write(
        tree.join("catalog/Mid/agg/daily.view.sql"),
        "SELECT name, 1 AS n FROM nowhere.missing_table\n",
    )
    .unwrap();
    let metrics = work.path().join("clone.prom");
    let out = apply(
        tree.to_str().unwrap(),
        &secondary,
        &[
            "--mapping",
            mapping(work.path()).to_str().unwrap(),
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    let prom = std::fs::read_to_string(&metrics).unwrap();
    let cluster = format!("cluster=\"{}\",command=\"clone\"", secondary.url());
    assert!(
        prom.contains(&format!("lifeboat_last_run_success{{{cluster}}} 0")),
        "{prom}"
    );
    assert!(
        prom.contains(&format!(
            "lifeboat_clone_objects{{{cluster},outcome=\"failed\"}} 1"
        )),
        "{prom}"
    );
    assert!(
        !prom.contains("lifeboat_last_success_timestamp_seconds"),
        "{prom}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcome = |path: &str, kind: &str| -> (String, String) {
        let i = item(&report, kind, path);
        (
            i["outcome"].as_str().unwrap().to_string(),
            i["reason"].as_str().unwrap_or("").to_string(),
        )
    };
    let (o, why) = outcome("Mid/agg/daily", "view");
    assert_eq!(o, "failed");
    assert!(why.contains("nowhere.missing_table"), "{why}");
    for dependent in ["Apps/dash/top", "Apps/dash/relative", "Base/clean/early"] {
        let (o, why) = outcome(dependent, "view");
        assert_eq!(o, "skipped", "{dependent}");
        assert!(why.contains("Mid/agg/daily"), "{why}");
    }
    let (o, _) = outcome("Mid/agg/daily#raw_daily", "reflection");
    assert_eq!(o, "skipped");
    for fine in ["Base/clean/trips_clean", "Base/clean/deep/deeper/zones_v"] {
        assert_eq!(outcome(fine, "view").0, "created", "{fine}");
    }
    assert_eq!(outcome("Base/fns/tax", "function").0, "created");
    assert_eq!(report["summary"]["failed"], 1, "{report}");
    assert!(stderr(&out).contains("were not applied"));
}

#[test]
fn reexport_is_byte_identical_and_updates_the_tree_in_place() {
    let primary = Cluster::start(VERSION);
    seed(&primary);
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("export");
    export(&primary, &tree, &[]);
    std::fs::write(tree.join("README.md"), "our catalog\n").unwrap();
    let first = snapshot(&tree);
    let e = export(&primary, &tree, &[]);
    assert_eq!(e["removed_files"], 0);
    assert_same(&first, &snapshot(&tree), "second export");

    primary.delete("Apps/dash/relative");
    let e = export(&primary, &tree, &[]);
    assert_eq!(
        e["removed_files"], 2,
        "json and sql of the deleted view: {e}"
    );
    let after = snapshot(&tree);
    let mut expected = first.clone();
    expected.remove("catalog/Apps/dash/relative.view.json");
    expected.remove("catalog/Apps/dash/relative.view.sql");
    assert_same(&expected, &after, "after a deletion");
    assert!(
        tree.join("README.md").exists(),
        "files lifeboat did not write stay"
    );

    // A filtered export touches only what it covers.
    primary.delete("Apps/dash/top");
    export(&primary, &tree, &["--include", "Base/**"]);
    assert!(tree.join("catalog/Apps/dash/top.view.json").exists());
    // A folder that is not an export is never written into.
    let foreign = work.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("x.txt"), "mine").unwrap();
    let out = lifeboat_env(
        &[
            "clone",
            "export",
            "--dremio-url",
            primary.url(),
            "--out",
            foreign.to_str().unwrap(),
        ],
        &creds(),
    );
    fails_with(&out, 3, &["not a lifeboat export"]);
}

#[test]
fn a_dremio_cloner_file_round_trips_and_renames_follow_the_mapping() {
    let primary = Cluster::start(VERSION);
    seed(&primary);
    let secondary = Cluster::start(VERSION);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("cloner.json");
    export(
        &primary,
        &file,
        &["--format", "cloner", "--skip", "functions"],
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("{ \"data\": [") && !text.contains(LAKE_SECRET));
    let map = work.path().join("rename.toml");
    std::fs::write(
        &map,
        "[rename]\nlake = \"lake_dr\"\n[secrets.lake]\naccessSecret = { env = \"LAKE_SECRET\" }\n",
    )
    .unwrap();
    let report = ok_json(&apply(
        file.to_str().unwrap(),
        &secondary,
        &[
            "--mapping",
            map.to_str().unwrap(),
            "--skip",
            "functions,users",
        ],
    ));
    assert_eq!(report["summary"]["failed"], 0, "{report}");
    // Views read the renamed source, by parsed identifiers.
    let clean = secondary.by_path("Base/clean/trips_clean");
    assert_eq!(
        clean["sql"],
        "SELECT * FROM lake_dr.trips.\"2024\" WHERE fare > 0"
    );
    secondary.by_path("lake_dr/trips/2024");
    let (status, _) = http(
        "GET",
        &format!("{}/api/v3/catalog/by-path/lake", secondary.url()),
        Some(&secondary.auth),
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn an_older_target_gets_unknown_fields_dropped_with_a_warning() {
    let primary = Cluster::start(VERSION);
    seed(&primary);
    let secondary = Cluster::start("24.3.0");
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("export");
    export(&primary, &tree, &[]);
    let report = ok_json(&apply(
        tree.to_str().unwrap(),
        &secondary,
        &["--mapping", mapping(work.path()).to_str().unwrap()],
    ));
    let agg = item(&report, "reflection", "Mid/agg/daily#agg_daily");
    assert_eq!(agg["outcome"], "created", "{agg}");
    assert!(
        agg["warnings"][0]
            .as_str()
            .unwrap()
            .contains("arrowCachingEnabled dropped"),
        "{agg}"
    );
    // This version has no listing of all reflections: the export asks dataset by dataset.
    let back = work.path().join("back");
    export(&secondary, &back, &[]);
    let daily: Value = serde_json::from_slice(
        &std::fs::read(back.join("catalog/Mid/agg/daily.view.json")).unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = daily["reflections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["agg_daily", "raw_daily"]);
}

#[test]
fn reference_cycles_and_missing_secrets_are_reported_not_looped() {
    let primary = Cluster::start(VERSION);
    seed(&primary);
    let secondary = Cluster::start(VERSION);
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("export");
    export(&primary, &tree, &[]);
    std::fs::write(
        tree.join("catalog/Apps/dash/top.view.sql"),
        "SELECT * FROM Apps.dash.relative",
    )
    .unwrap();
    std::fs::write(
        tree.join("catalog/Apps/dash/relative.view.sql"),
        "SELECT * FROM Apps.dash.top",
    )
    .unwrap();
    // No mapping: the new source `lake` has no secret.
    let out = apply(tree.to_str().unwrap(), &secondary, &[]);
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |path: &str, kind: &str| item(&report, kind, path).clone();
    let top = find("Apps/dash/top", "view");
    assert_eq!(top["outcome"], "skipped");
    assert!(
        top["reason"].as_str().unwrap().contains("reference cycle"),
        "{top}"
    );
    let lake = find("lake", "source");
    assert_eq!(lake["outcome"], "skipped");
    assert!(
        lake["reason"]
            .as_str()
            .unwrap()
            .contains("config.accessSecret"),
        "{lake}"
    );
    assert_eq!(find("lake/trips/2024", "dataset")["outcome"], "skipped");
    // Everything that does not depend on lake or the cycle is there.
    assert_eq!(find("files", "source")["outcome"], "created");
    assert_eq!(
        find("files/raw/events.json", "dataset")["outcome"],
        "created"
    );
    assert_eq!(find("Base/fns/tax", "function")["outcome"], "created");
}

#[test]
fn a_non_admin_exports_without_users_and_bad_credentials_fail_clearly() {
    let primary = Cluster::start(VERSION);
    seed(&primary);
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("export");
    let out = lifeboat(
        &[
            "--json",
            "clone",
            "export",
            "--dremio-url",
            primary.url(),
            "--out",
            tree.to_str().unwrap(),
        ],
        &[
            ("LIFEBOAT_DREMIO_USER", "alice"),
            ("LIFEBOAT_DREMIO_PASSWORD", "Passw0rd1"),
        ],
    );
    let e = ok_json(&out);
    assert_eq!(e["objects"]["user"], 0);
    assert_eq!(e["objects"]["view"], 6);
    assert!(
        e["warnings"][0]
            .as_str()
            .unwrap()
            .contains("needs an administrator"),
        "{e}"
    );
    let out = lifeboat(
        &[
            "clone",
            "export",
            "--dremio-url",
            primary.url(),
            "--out",
            tree.to_str().unwrap(),
        ],
        &[
            ("LIFEBOAT_DREMIO_USER", "alice"),
            ("LIFEBOAT_DREMIO_PASSWORD", "wrong-one1"),
        ],
    );
    fails_with(&out, 5, &["login as \"alice\" refused"]);
    let port = free_port();
    let out = lifeboat_env(
        &[
            "clone",
            "plan",
            "--source",
            tree.to_str().unwrap(),
            "--dremio-url",
            &format!("http://127.0.0.1:{port}"),
        ],
        &creds(),
    );
    fails_with(&out, 5, &["no active Dremio coordinator", "not listening"]);
}

/// A primary seeded by `dremio-sim seed` (admin `admin` / `Passw0rd!`), and the mapping its new
/// sources need on a target.
fn seeded(objects: usize, dir: &Path) -> (Sim, PathBuf) {
    seeded_with(objects, dir, &[])
}

/// Like [`seeded`], the primary started with `extra` flags (e.g. a latency).
fn seeded_with(objects: usize, dir: &Path, extra: &[&str]) -> (Sim, PathBuf) {
    let local = dir.join("primary");
    let out = std::process::Command::new(sim_bin("dremio-sim"))
        .args(["seed", "--paths-local", local.to_str().unwrap()])
        .args(["--objects", &objects.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let map = dir.join("seed-mapping.toml");
    std::fs::write(
        &map,
        "[secrets.lake]\naccessSecret = { env = \"LAKE_SECRET\" }\n[secrets.pg]\npassword = { env = \"LAKE_SECRET\" }\n",
    )
    .unwrap();
    (Sim::start_with(&local, VERSION, extra, &[]), map)
}

fn seed_env() -> Vec<(String, String)> {
    vec![
        ("LIFEBOAT_DREMIO_USER".into(), "admin".into()),
        ("LIFEBOAT_DREMIO_PASSWORD".into(), "Passw0rd!".into()),
        ("LAKE_SECRET".into(), LAKE_SECRET.into()),
    ]
}

/// An empty secondary with the seed's admin, started with `extra` flags.
fn seed_target(dir: &Path, extra: &[&str]) -> Sim {
    let sim = Sim::start_with(dir, VERSION, extra, &[]);
    let body = json!({"userName": "admin", "firstName": "Admin", "lastName": "Seed",
        "email": "admin@example.com", "createdAt": 0, "password": "Passw0rd!"});
    // A throttled target may refuse the bootstrap itself: try again (429 only).
    loop {
        let (status, text) = http(
            "PUT",
            &format!("{}/apiv2/bootstrap/firstuser", sim.url),
            Some("_dremionull"),
            Some(&body),
        );
        if status != 429 {
            assert!(status < 300, "firstuser: {status} {text}");
            return sim;
        }
    }
}

/// A seeded primary, its export, and an empty target that answers slowly, so that a run can be
/// caught half-way.
struct SlowTarget {
    work: tempfile::TempDir,
    _primary: Sim,
    target: Sim,
    tree: PathBuf,
    map: PathBuf,
}

impl SlowTarget {
    fn new() -> SlowTarget {
        let work = tempfile::tempdir().unwrap();
        let (primary, map) = seeded(200, work.path());
        let target = seed_target(
            &work.path().join("secondary"),
            &["--latency-ms", "20", "--threads", "4"],
        );
        let tree = work.path().join("export");
        export_from(&primary.url, &tree, &[], &seed_env());
        SlowTarget {
            work,
            _primary: primary,
            target,
            tree,
            map,
        }
    }

    fn apply_args(&self) -> Vec<String> {
        [
            "clone",
            "apply",
            "--source",
            self.tree.to_str().unwrap(),
            "--dremio-url",
            &self.target.url,
            "--mapping",
            self.map.to_str().unwrap(),
            "--concurrency",
            "4",
        ]
        .map(str::to_string)
        .to_vec()
    }
}

/// Waits for a run started by `start_until`: its exit code and the rest of its stderr.
fn finish(
    child: std::process::Child,
    mut reader: std::io::BufReader<std::process::ChildStderr>,
) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    (out.status.code(), rest)
}

fn sigterm(child: &std::process::Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

#[test]
fn a_throttling_target_and_source_only_slow_the_clone_down() {
    let work = tempfile::tempdir().unwrap();
    let (primary, map) = seeded(200, work.path());
    let secondary = seed_target(&work.path().join("secondary"), &["--throttle-every", "7"]);
    let tree = work.path().join("export");
    let e = export_from(&primary.url, &tree, &[], &seed_env());
    assert!(e["objects"]["view"].as_u64().unwrap() > 100, "{e}");
    let out = lifeboat_env(
        &[
            "--json",
            "clone",
            "apply",
            "--source",
            tree.to_str().unwrap(),
            "--dremio-url",
            &secondary.url,
            "--mapping",
            map.to_str().unwrap(),
        ],
        &seed_env(),
    );
    let report = ok_json(&out);
    assert_eq!(report["summary"]["failed"], 0);
    assert!(
        stderr(&out).contains("(HTTP 429)"),
        "retries are logged: {}",
        stderr(&out)
    );
    assert_clone_of(&tree, &secondary.url, work.path(), "throttled clone");
}

#[test]
fn an_apply_killed_or_stopped_halfway_is_finished_by_the_next_run() {
    let slow = SlowTarget::new();
    let owned = slow.apply_args();
    let args: Vec<&str> = owned.iter().map(String::as_str).collect();
    let (mut child, _reader) = start_until(&args, &seed_env(), "apply: progress");
    child.kill().unwrap();
    child.wait().unwrap();
    // SIGTERM in the middle of the second run: what is in flight finishes, nothing new starts,
    // the report says what was not applied, exit 130.
    let (child, reader) = start_until(&args, &seed_env(), "apply: progress");
    sigterm(&child);
    let (code, rest) = finish(child, reader);
    assert_eq!(code, Some(130), "{rest}");
    assert!(rest.contains("run the same command again"), "{rest}");
    let mut json_args = vec!["--json"];
    json_args.extend_from_slice(&args);
    let report = ok_json(&lifeboat_env(&json_args, &seed_env()));
    let s = &report["summary"];
    assert!(
        s["unchanged"].as_u64().unwrap() > 0,
        "the first run did part of it: {s}"
    );
    assert!(
        s["created"].as_u64().unwrap() > 0,
        "the second run did the rest: {s}"
    );
    let again = ok_json(&lifeboat_env(&json_args, &seed_env()));
    assert_eq!(acting(&again, "outcome"), vec![]);
    assert_clone_of(
        &slow.tree,
        &slow.target.url,
        slow.work.path(),
        "after a kill and a rerun",
    );
}

#[test]
fn a_target_that_dies_mid_apply_stops_the_run_instead_of_failing_every_object() {
    let mut slow = SlowTarget::new();
    let owned = slow.apply_args();
    let args: Vec<&str> = owned.iter().map(String::as_str).collect();
    let (child, reader) = start_until(&args, &seed_env(), "apply: progress");
    slow.target.kill();
    let (code, rest) = finish(child, reader);
    assert_eq!(code, Some(5), "{rest}");
    assert!(rest.contains("stopped answering"), "{rest}");
    assert!(
        rest.contains("run the same command again once it is back"),
        "{rest}"
    );
}

#[test]
fn mirror_matches_names_without_case_and_never_deletes_what_the_filters_protect() {
    let primary = Cluster::start(VERSION);
    let secondary = Cluster::start(VERSION);
    primary.create(json!({"entityType": "space", "name": "Sales"}));
    primary.view(&["Sales", "v"], "SELECT 1 AS one", &[]);
    // The secondary spells the space in capitals, and has a folder the primary lacks, with
    // something inside that the filters exclude.
    secondary.create(json!({"entityType": "space", "name": "SALES"}));
    secondary.view(&["SALES", "v"], "SELECT 1 AS one", &[]);
    secondary.folder(&["SALES", "old"]);
    secondary.folder(&["SALES", "old", "keep"]);
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("export");
    export(&primary, &tree, &["--skip", "users"]);
    let plan = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "clone",
            "plan",
            "--source",
            tree.to_str().unwrap(),
            "--dremio-url",
            secondary.url(),
            "--mode",
            "mirror",
            "--skip",
            "users",
        ];
        args.extend_from_slice(extra);
        ok_json(&lifeboat_env(&args, &creds()))
    };
    let p = plan(&[]);
    assert_eq!(
        acting(&p, "action"),
        vec![triple("folder", "SALES/old", "delete")],
        "{p}"
    );
    // A mirror with other filters than the export's is refused: the tree does not hold what the
    // export left out, and that must not look like deletions.
    let out = lifeboat_env(
        &[
            "clone",
            "plan",
            "--source",
            tree.to_str().unwrap(),
            "--dremio-url",
            secondary.url(),
            "--mode",
            "mirror",
        ],
        &creds(),
    );
    fails_with(&out, 3, &["was exported with the filters"]);
    export(
        &primary,
        &tree,
        &["--skip", "users", "--exclude", "sales/OLD/keep"],
    );
    let p = plan(&["--exclude", "sales/OLD/keep"]);
    assert_eq!(acting(&p, "action"), vec![], "{p}");
    assert!(
        p["warnings"][0]
            .as_str()
            .unwrap()
            .contains("folder SALES/old is not deleted"),
        "{p}"
    );
}

#[test]
fn a_stopped_export_says_so_and_removes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (primary, _) = seeded_with(200, work.path(), &["--latency-ms", "20", "--threads", "4"]);
    let tree = work.path().join("export");
    std::fs::create_dir_all(tree.join("catalog")).unwrap();
    std::fs::write(
        tree.join("lifeboat-clone.json"),
        "{\"format\": \"lifeboat-clone/1\"}\n",
    )
    .unwrap();
    std::fs::write(tree.join("catalog/Gone.space.json"), "{}\n").unwrap();
    let args = [
        "clone",
        "export",
        "--dremio-url",
        &primary.url,
        "--out",
        tree.to_str().unwrap(),
        "--concurrency",
        "2",
    ];
    let (child, reader) = start_until(&args, &seed_env(), "export: started");
    sigterm(&child);
    let (code, rest) = finish(child, reader);
    assert_eq!(code, Some(130), "{rest}");
    assert!(rest.contains("removed nothing"), "{rest}");
    assert!(
        tree.join("catalog/Gone.space.json").exists(),
        "a stale file stays until a complete export"
    );
}

#[test]
fn secrets_the_server_shows_stay_out_of_the_tree_and_an_update_keeps_the_targets_own() {
    let primary = Cluster::start(VERSION);
    let secondary = Cluster::start(VERSION);
    let source = |root: &str, key: &str| {
        json!({"entityType": "source", "name": "lake", "type": "S3",
            "config": {"accessKey": "AKIA", "accessSecret": "s3cr3t", "rootPath": root,
                "propertyList": [{"name": "fs.s3a.endpoint", "value": "s3.example"},
                                 {"name": "fs.s3a.secret.key", "value": key}]}})
    };
    primary.create(source("/primary", "primary-key"));
    secondary.create(source("/standby", "standby-key"));
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("export");
    export(&primary, &tree, &["--skip", "users"]);
    let text = std::fs::read_to_string(tree.join("catalog/lake.source.json")).unwrap();
    assert!(
        !text.contains("primary-key") && !text.contains("s3cr3t"),
        "{text}"
    );
    let report = ok_json(&apply(
        tree.to_str().unwrap(),
        &secondary,
        &["--skip", "users"],
    ));
    let lake = item(&report, "source", "lake");
    assert_eq!(lake["outcome"], "updated", "{report}");
    assert_eq!(lake["changed"], json!(["config.rootPath"]));
    let after = secondary.by_path("lake");
    assert_eq!(after["config"]["rootPath"], "/primary");
    assert_eq!(
        after["config"]["propertyList"][1]["value"], "standby-key",
        "the target's own secret, not the mask"
    );
}
