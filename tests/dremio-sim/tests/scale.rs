//! Benchmarks' needs: `dremio-sim seed`, a 10,000-object catalog served fast, requests served
//! by several threads, and `--latency-ms`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Api, SIM, Sim, enc};
use dremio_sim::catalog::table_refs;
use dremio_sim::client::request;
use dremio_sim::store::Store;
use serde_json::{Value, json};

fn seed(dir: &Path, objects: usize, extra: &[&str]) -> Output {
    Command::new(SIM)
        .arg("seed")
        .arg("--paths-local")
        .arg(dir)
        .args(["--objects", &objects.to_string()])
        .args(extra)
        .output()
        .unwrap()
}

/// The counts in the seed's summary line, by name.
fn counts(line: &str) -> BTreeMap<String, usize> {
    let body = line.split_once(": ").unwrap().1;
    body.split([',', ';', ':'])
        .filter_map(|part| {
            let mut w = part.split_whitespace();
            let n = w.next()?.parse().ok()?;
            Some((w.collect::<Vec<_>>().join(" "), n))
        })
        .collect()
}

fn entities(dir: &Path) -> Vec<Value> {
    Store::load(dir).unwrap()["dac-namespace"]
        .values()
        .map(|v| serde_json::from_str(v).unwrap())
        .collect()
}

/// What a seed decides (ids and tags aside).
fn shape(dir: &Path) -> Vec<Value> {
    entities(dir)
        .iter()
        .map(|e| {
            json!([
                e["entityType"],
                e["type"],
                e["path"],
                e["sql"],
                e["sqlContext"],
                e["functionBody"]
            ])
        })
        .collect()
}

fn lower(p: &[String]) -> Vec<String> {
    p.iter().map(|x| x.to_lowercase()).collect()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn seed_writes_a_realistic_catalog() {
    let root = tempfile::tempdir().unwrap();
    let a = root.path().join("a");
    let out = seed(&a, 2000, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        line.starts_with("dremio-sim: seeded 2000 objects in "),
        "{line}"
    );
    assert!(
        line.ends_with("admin user admin, password Passw0rd!"),
        "{line}"
    );
    let c = counts(&line);
    assert_eq!(c["sources"], 3, "{c:?}");
    assert_eq!(c["promoted datasets"], 20);
    assert_eq!(c["folders"], 200);
    assert!(c["views"] >= 1600, "{c:?}");
    assert!(c["spaces"] >= 2 && c["functions"] >= 2, "{c:?}");
    assert_eq!(
        [
            "sources",
            "promoted datasets",
            "spaces",
            "folders",
            "views",
            "functions"
        ]
        .iter()
        .map(|k| c[*k])
        .sum::<usize>(),
        2000
    );
    assert!(
        c["wikis"] > 0 && c["tags"] > 0 && c["reflections"] > 0,
        "{c:?}"
    );

    // the store holds what the line says
    let es = entities(&a);
    assert_eq!(es.len(), 2000);
    let by_path: BTreeMap<Vec<String>, &Value> =
        es.iter().map(|e| (lower(&strs(&e["path"])), e)).collect();
    let count = |f: &dyn Fn(&Value) -> bool| es.iter().filter(|e| f(e)).count();
    assert_eq!(count(&|e| e["type"] == "VIRTUAL_DATASET"), c["views"]);
    assert_eq!(count(&|e| e["type"] == "PHYSICAL_DATASET"), 20);
    assert_eq!(count(&|e| e["entityType"] == "function"), c["functions"]);
    // nested folders, up to three levels under a space
    let deepest = es
        .iter()
        .filter(|e| e["entityType"] == "folder")
        .map(|e| e["path"].as_array().unwrap().len())
        .max()
        .unwrap();
    assert_eq!(deepest, 4);
    // views read datasets of other folders and spaces, through chains of views
    let views: Vec<&Value> = es
        .iter()
        .filter(|e| e["type"] == "VIRTUAL_DATASET")
        .collect();
    let mut depth: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    fn depth_of(
        p: &[String],
        by_path: &BTreeMap<Vec<String>, &Value>,
        memo: &mut BTreeMap<Vec<String>, usize>,
    ) -> usize {
        if let Some(d) = memo.get(p) {
            return *d;
        }
        let e = by_path[p];
        let d = if e["type"] == "PHYSICAL_DATASET" {
            0
        } else {
            let ctx = lower(&strs(&e["sqlContext"]));
            1 + table_refs(e["sql"].as_str().unwrap())
                .iter()
                .map(|r| {
                    let mut rel = ctx.clone();
                    rel.extend(lower(r));
                    let key = if !ctx.is_empty() && by_path.contains_key(&rel) {
                        rel
                    } else {
                        lower(r)
                    };
                    depth_of(&key, by_path, memo)
                })
                .max()
                .unwrap_or(0)
        };
        memo.insert(p.to_vec(), d);
        d
    }
    let mut cross_space = 0;
    for v in &views {
        let p = lower(&strs(&v["path"]));
        let d = depth_of(&p, &by_path, &mut depth);
        assert!((1..=4).contains(&d), "{p:?} depth {d}");
        let refs = table_refs(v["sql"].as_str().unwrap());
        if refs.iter().any(|r| {
            by_path.get(&lower(r)).is_some_and(|t| {
                t["type"] == "VIRTUAL_DATASET" && lower(&strs(&t["path"]))[0] != p[0]
            })
        }) {
            cross_space += 1;
        }
    }
    assert!(depth.values().any(|d| *d >= 3), "no chain of views");
    assert!(
        cross_space > 100,
        "{cross_space} views read other spaces' views"
    );
    let sql = |pat: &str| {
        views
            .iter()
            .filter(|v| v["sql"].as_str().unwrap().contains(pat))
            .count()
    };
    assert!(sql("WITH ") > 50, "CTEs");
    assert!(sql("JOIN ") > 50, "joins");
    assert!(sql("\"") > 500, "quoted identifiers");
    assert!(
        views
            .iter()
            .filter(|v| v["sqlContext"] != json!([]))
            .count()
            > 50,
        "sqlContext"
    );
    // sources carry secrets
    let lake = by_path[&vec!["lake".to_string()]];
    assert!(lake["config"]["accessSecret"].as_str().unwrap().len() > 8);

    // deterministic for a given N
    let b = root.path().join("b");
    assert!(seed(&b, 2000, &[]).status.success());
    assert_eq!(shape(&a), shape(&b));
    let c2 = root.path().join("c");
    assert!(seed(&c2, 2100, &[]).status.success());
    assert_ne!(shape(&a), shape(&c2));

    // a seeded store serves: the printed admin, the catalog, masked secrets
    {
        let sim = Sim::start(&a, &[]);
        let auth = sim.login("admin", "Passw0rd!");
        let r = sim.req("GET", "/api/v3/catalog", Some(&auth), None);
        assert_eq!(r.json()["data"].as_array().unwrap().len(), 3 + c["spaces"]);
        let r = sim.req("GET", "/api/v3/catalog/by-path/lake", Some(&auth), None);
        assert_eq!(
            r.json()["config"]["accessSecret"],
            "$DREMIO_EXISTING_VALUE$"
        );
        assert!(!r.json()["children"].as_array().unwrap().is_empty());
        let r = sim.req("GET", "/api/v3/reflection", Some(&auth), None);
        assert_eq!(r.json()["data"].as_array().unwrap().len(), c["reflections"]);
        // refused while a coordinator holds the paths.local
        let out = seed(&a, 2000, &[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("is locked"));
    }
    // a store in use is refused; so are a small N and a weak password
    let out = seed(&a, 2000, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fresh store"),
        "{out:?}"
    );
    assert_eq!(seed(&root.path().join("d"), 5, &[]).status.code(), Some(1));
    let out = seed(&root.path().join("e"), 100, &["--admin-password", "short"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid password"));

    // the version gates the store and the reflections' fields
    let f = root.path().join("f");
    let out = seed(
        &f,
        600,
        &["--version", "24.3.0", "--admin-password", "0ther-pass"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .ends_with("password 0ther-pass")
    );
    let refl = Store::load(&f).unwrap()["reflection_goals"].clone();
    assert!(!refl.is_empty());
    assert!(refl.values().all(|r| !r.contains("arrowCachingEnabled")));
    let out = Command::new(SIM)
        .arg("--paths-local")
        .arg(&f)
        .args(["--port", "0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("KVStore has an older version (24.3.0)"));
    let sim = Sim::start(&f, &["--version", "24.3.0"]);
    sim.login("admin", "0ther-pass");
}

#[test]
fn ten_thousand_objects_are_seeded_served_and_paged() {
    let dir = tempfile::tempdir().unwrap();
    let out = seed(dir.path(), 10_000, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let es = entities(dir.path());
    let ids: Vec<String> = es
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let views: Vec<&Value> = es
        .iter()
        .filter(|e| e["type"] == "VIRTUAL_DATASET")
        .collect();

    let sim = Sim::start(dir.path(), &[]);
    let auth = sim.login("admin", "Passw0rd!");
    let get = |u: &str| {
        let r = sim.req("GET", u, Some(&auth), None);
        assert_eq!(r.status, 200, "{u}: {}", r.body);
        r.json()
    };
    // lookups by id and by path (how fast they are is scripts/bench.sh's business, not a test's)
    for i in 0..300 {
        let id = &ids[(i as usize * 7919) % ids.len()];
        assert_eq!(
            get(&format!("/api/v3/catalog/{id}?maxChildren=10"))["id"],
            json!(id)
        );
    }
    for i in 0..300 {
        let v = views[(i as usize * 104_729) % views.len()];
        let p: Vec<String> = strs(&v["path"]).iter().map(|s| enc(s)).collect();
        assert_eq!(
            get(&format!("/api/v3/catalog/by-path/{}", p.join("/")))["id"],
            v["id"]
        );
    }
    // reflections of a dataset, through the index
    let refl = get("/api/v3/reflection");
    let ds = refl["data"][0]["datasetId"].as_str().unwrap().to_string();
    let d = get(&format!("/api/v3/dataset/{ds}/reflection"));
    assert!(!d["data"].as_array().unwrap().is_empty());

    // every container pages through its children: every entity is listed exactly once
    let mut seen = 0usize;
    let mut todo: Vec<String> = get("/api/v3/catalog")["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    seen += todo.len();
    while let Some(id) = todo.pop() {
        let mut url = format!("/api/v3/catalog/{}?maxChildren=100", enc(&id));
        loop {
            let v = get(&url);
            for k in v["children"].as_array().unwrap() {
                if k["containerType"] == "FOLDER" || k["containerType"] == "SPACE" {
                    todo.push(k["id"].as_str().unwrap().to_string());
                }
                // folders of sources are not entities
                if k.get("tag").is_some() {
                    seen += 1;
                }
            }
            match v["nextPageToken"].as_str() {
                Some(tok) => {
                    url = format!(
                        "/api/v3/catalog/{}?maxChildren=100&pageToken={tok}",
                        enc(&id)
                    )
                }
                None => break,
            }
        }
    }
    assert_eq!(seen, 10_000);

    // an update appends one line to the journal instead of rewriting 10,000
    let v = get(&format!(
        "/api/v3/catalog/{}",
        views[0]["id"].as_str().unwrap()
    ));
    let ns = dir.path().join("db/sim/dac-namespace.jsonl");
    let before = std::fs::read_to_string(&ns).unwrap();
    let r = sim.req(
        "PUT",
        &format!("/api/v3/catalog/{}", v["id"].as_str().unwrap()),
        Some(&auth),
        Some(&v.to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let after = std::fs::read_to_string(&ns).unwrap();
    assert!(after.starts_with(&before));
    assert_eq!(after.lines().count(), before.lines().count() + 1);

    // deleting a space removes its subtree through a key range
    let spaces: Vec<&Value> = es.iter().filter(|e| e["entityType"] == "space").collect();
    let sp = spaces[0];
    let under = es.iter().filter(|e| e["path"][0] == sp["path"][0]).count();
    assert!(under > 20, "{under}");
    let r = sim.req(
        "DELETE",
        &format!("/api/v3/catalog/{}", sp["id"].as_str().unwrap()),
        Some(&auth),
        None,
    );
    assert_eq!(r.status, 204);
    drop(sim);
    let left = entities(dir.path());
    assert_eq!(left.len(), 10_000 - under);
    assert!(left.iter().all(|e| e["path"][0] != sp["path"][0]));
}

fn timed_status(addr: &str) -> Duration {
    let t = Instant::now();
    let r = request(addr, "GET", "/apiv2/server_status", &[], None).unwrap();
    assert_eq!(r.status, 200);
    t.elapsed()
}

#[test]
fn latency_applies_to_concurrent_requests_and_one_thread_queues_them() {
    let root = tempfile::tempdir().unwrap();
    let lat = Duration::from_millis(300);
    // 16 threads by default: 8 concurrent requests each wait their latency
    let sim = Sim::start(&root.path().join("a"), &["--latency-ms", "300"]);
    let addr = sim.addr();
    let each: Vec<Duration> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8).map(|_| s.spawn(|| timed_status(&addr))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(each.iter().all(|d| *d >= lat), "{each:?}");
    drop(sim);

    // one thread: they queue
    let sim = Sim::start(
        &root.path().join("b"),
        &["--latency-ms", "300", "--threads", "1"],
    );
    let addr = sim.addr();
    let t = Instant::now();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(|| timed_status(&addr))).collect();
        hs.into_iter().for_each(|h| {
            h.join().unwrap();
        });
    });
    assert!(
        t.elapsed() >= lat * 4,
        "4 requests on 1 thread took {:?}",
        t.elapsed()
    );
    drop(sim);

    let out = Command::new(SIM)
        .arg("--paths-local")
        .arg(root.path().join("c"))
        .args(["--port", "0", "--threads", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads"));
}

#[test]
fn concurrent_writes_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start_args(dir.path(), &["--threads", "8"], &[]);
    api.space("S");
    let (addr, auth) = (api.sim.addr(), api.auth.clone());
    std::thread::scope(|s| {
        for t in 0..8 {
            let (addr, auth) = (&addr, &auth);
            s.spawn(move || {
                for i in 0..25 {
                    let b = json!({"entityType": "folder", "path": ["S", format!("f{t}_{i}")]});
                    let h = [("Authorization", auth.as_str())];
                    let f =
                        request(addr, "POST", "/api/v3/catalog", &h, Some(&b.to_string())).unwrap();
                    assert_eq!(f.status, 200, "{}", f.body);
                }
            });
        }
    });
    let sp = api.ok("GET", "/api/v3/catalog/by-path/S", None);
    assert_eq!(sp["children"].as_array().unwrap().len(), 200);
    let id = sp["id"].as_str().unwrap().to_string();
    drop(api);
    // and on disk: a restarted node sees the same
    let api = Api::start(dir.path(), &[]);
    let sp = api.ok("GET", &format!("/api/v3/catalog/{id}"), None);
    assert_eq!(sp["children"].as_array().unwrap().len(), 200);
}

#[test]
fn every_nth_request_is_throttled_without_being_handled() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path(), &["--throttle-every", "3"]);
    let addr = sim.addr();
    let statuses: Vec<u16> = (0..6)
        .map(|_| {
            request(&addr, "GET", "/apiv2/server_status", &[], None)
                .unwrap()
                .status
        })
        .collect();
    assert_eq!(statuses, vec![200, 200, 429, 200, 200, 429]);
    // a throttled create did nothing: the first user can still be created once
    let body = json!({"userName": "admin", "firstName": "A", "lastName": "D",
        "email": "a@example.com", "createdAt": 0, "password": "Passw0rd!"})
    .to_string();
    let h = [("Authorization", "_dremionull")];
    let put = || {
        request(&addr, "PUT", "/apiv2/bootstrap/firstuser", &h, Some(&body))
            .unwrap()
            .status
    };
    let r = put(); // 7th: handled
    assert_eq!(r, 200);
    let r = put(); // 8th: handled, refused (a user exists)
    assert_eq!(r, 400);
    let r = put(); // 9th: throttled
    assert_eq!(r, 429);
}
