//! `dremio-sim seed`: writes a realistic catalog of about N objects straight into a fresh store
//! (no server), for benchmarks: sources with secrets, promoted datasets, spaces with nested
//! folders, views reading datasets and other views across spaces (CTEs, joins, quoted
//! identifiers, `sqlContext`), functions, and some wikis, tags and reflections.
//!
//! Every object goes through the same checks as the REST API (the view SQL included), so a
//! seeded store is one a real client could have built. The shape is deterministic for a given N
//! (a seeded PRNG); ids and tags are random, as on a real cluster.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::catalog::Collab;
use crate::lock::{lock_path, try_lock};
use crate::server::{Config, DEFAULT_THREADS, DEFAULT_TOKEN_TTL_SECS, Reply, State};

/// Default password of the seeded `admin` (meets the password rule).
pub const DEFAULT_ADMIN_PASSWORD: &str = "Passw0rd!";
/// Fewest objects `seed` writes (the fixed sources and a minimum of each kind).
pub const MIN_OBJECTS: usize = 20;
/// Deepest chain of views over views (a promoted dataset is depth 0).
const MAX_VIEW_DEPTH: usize = 4;
/// Deepest folder nesting under a space.
const MAX_FOLDER_DEPTH: usize = 3;

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub paths_local: PathBuf,
    pub objects: usize,
    pub version: String,
    pub build: String,
    pub admin_password: String,
}

/// What was seeded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeedCounts {
    pub sources: usize,
    pub promoted: usize,
    pub spaces: usize,
    pub folders: usize,
    pub views: usize,
    pub functions: usize,
    pub wikis: usize,
    pub tags: usize,
    pub reflections: usize,
}

impl SeedCounts {
    /// Catalog objects (wikis, tags and reflections aside).
    pub fn objects(&self) -> usize {
        self.sources + self.promoted + self.spaces + self.folders + self.views + self.functions
    }
}

/// SplitMix64: small, good enough, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// A SQL identifier: quoted when it must be (or, now and then, when it need not be).
fn q(name: &str, rng: &mut Rng) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain && !rng.chance(25) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn qpath(p: &[String], rng: &mut Rng) -> String {
    p.iter().map(|c| q(c, rng)).collect::<Vec<_>>().join(".")
}

const SPACE_NAMES: &[&str] = &[
    "Sales",
    "Marketing",
    "Finance",
    "Operations",
    "Data Science",
    "Customer 360",
    "risk",
    "HR",
    "supply_chain",
    "Product Analytics",
];
const FOLDER_NAMES: &[&str] = &[
    "staging",
    "marts",
    "Q1 Reports",
    "curated",
    "raw-data",
    "archive",
    "kpis",
    "Shared",
    "adhoc",
    "2024",
];
const VIEW_NAMES: &[&str] = &[
    "orders_summary",
    "Daily Revenue",
    "active_customers",
    "churn-risk",
    "fact_sales",
    "dim_customer",
    "TopProducts",
    "weekly_kpis",
];
const AREAS: &[&str] = &["trips", "orders", "events", "clicks", "payments"];

/// Seeds a fresh store. Refuses a store that already has users or catalog entities, and a
/// `paths.local` whose master lock is held (a running coordinator).
pub fn seed(opts: &SeedOptions) -> Result<SeedCounts> {
    if opts.objects < MIN_OBJECTS {
        bail!("--objects must be at least {MIN_OBJECTS}");
    }
    let lp = lock_path(&opts.paths_local);
    let _lock = try_lock(&lp)
        .with_context(|| format!("locking {}", lp.display()))?
        .with_context(|| {
            format!(
                "{} is locked: stop the coordinator of this paths.local first",
                lp.display()
            )
        })?;
    let mut st = State::open(Config {
        paths_local: opts.paths_local.clone(),
        port: 0,
        version: opts.version.clone(),
        build: opts.build.clone(),
        token_ttl_secs: DEFAULT_TOKEN_TTL_SECS,
        threads: DEFAULT_THREADS,
        latency_ms: 0,
        throttle_every: 0,
        zookeeper: None,
    })?;
    let fresh = ["userGroup", crate::catalog::NS]
        .iter()
        .all(|t| st.cat.store.table(t).is_none_or(|t| t.is_empty()));
    if !fresh {
        bail!(
            "{} already has users or catalog entities: seed needs a fresh store",
            opts.paths_local.display()
        );
    }
    let r = st.new_user(
        &json!({"userName": "admin", "firstName": "Admin", "lastName": "Seed",
                "email": "admin@example.com", "password": opts.admin_password}),
        "userName",
        true,
    )?;
    ok(&r, "admin user")?;

    let n = opts.objects;
    let mut rng = Rng(0x5eed_0000 ^ n as u64);
    let mut c = SeedCounts::default();

    // sources, with secrets in their config
    let sources = [
        json!({"entityType": "source", "name": "lake", "type": "S3",
               "config": {"credentialType": "ACCESS_KEY",
                          "accessKey": format!("AKIA{:016X}", rng.next()),
                          "accessSecret": format!("{:016x}{:016x}", rng.next(), rng.next()),
                          "secure": true, "rootPath": "/",
                          "propertyList": [{"name": "fs.s3a.endpoint",
                                            "value": "s3.eu-west-1.amazonaws.com"}]},
               "metadataPolicy": {"authTTLMs": 86_400_000, "namesRefreshMs": 3_600_000,
                                  "datasetRefreshAfterMs": 3_600_000,
                                  "datasetExpireAfterMs": 10_800_000,
                                  "datasetUpdateMode": "PREFETCH_QUERIED",
                                  "deleteUnavailableDatasets": true,
                                  "autoPromoteDatasets": false},
               "accelerationRefreshPeriodMs": 3_600_000,
               "accelerationGracePeriodMs": 10_800_000}),
        json!({"entityType": "source", "name": "warehouse", "type": "NAS",
               "config": {"path": "/mnt/warehouse"}}),
        json!({"entityType": "source", "name": "pg", "type": "POSTGRES",
               "config": {"hostname": "pg.internal", "port": "5432", "databaseName": "erp",
                          "username": "dremio", "password": format!("pw-{:08x}", rng.next()),
                          "authenticationType": "MASTER", "useSsl": true}}),
    ];
    for s in &sources {
        ok(&st.cat.create(s)?, "source")?;
        c.sources += 1;
    }

    let n_promoted = (n / 100).max(2);
    let n_spaces = (n / 100).max(1);
    let n_folders = n / 10;
    let n_functions = (n / 100).max(1);
    let n_views = n - c.sources - n_promoted - n_spaces - n_folders - n_functions;

    // datasets a view may read: (path, depth in the view graph)
    let mut readable: Vec<(Vec<String>, usize)> = vec![];
    let mut promoted: Vec<(Vec<String>, String)> = vec![];
    for i in 0..n_promoted {
        let path: Vec<String> = if rng.chance(80) {
            let area = rng.pick(AREAS);
            vec![
                "lake".into(),
                (*area).into(),
                format!("{}", 2022 + rng.below(3)),
                format!("{area}_{i:04}"),
            ]
        } else {
            vec![
                "warehouse".into(),
                "exports".into(),
                format!("export_{i:04}.parquet"),
            ]
        };
        let fid = crate::catalog::file_id(&path);
        let fmt = if path[0] == "lake" {
            json!({"type": "Parquet"})
        } else {
            json!({"type": "Parquet", "autoCorrectCorruptDates": true})
        };
        let r = st.cat.promote(
            &fid,
            &json!({"entityType": "dataset", "id": fid, "type": "PHYSICAL_DATASET",
                    "path": path, "format": fmt}),
        )?;
        let v = ok(&r, "promoted dataset")?;
        promoted.push((path.clone(), str_of(&v, "id")));
        readable.push((path, 0));
        c.promoted += 1;
    }

    // spaces, then folders nested up to MAX_FOLDER_DEPTH
    let mut containers: Vec<(Vec<String>, String)> = vec![];
    let mut nestable: Vec<(Vec<String>, usize)> = vec![];
    for i in 0..n_spaces {
        let base = SPACE_NAMES[i % SPACE_NAMES.len()];
        let name = if i < SPACE_NAMES.len() {
            base.to_string()
        } else {
            format!("{base} {}", i / SPACE_NAMES.len() + 1)
        };
        let v = ok(
            &st.cat
                .create(&json!({"entityType": "space", "name": name}))?,
            "space",
        )?;
        containers.push((vec![name.clone()], str_of(&v, "id")));
        nestable.push((vec![name], 0));
        c.spaces += 1;
    }
    for i in 0..n_folders {
        let (parent, depth) = rng.pick(&nestable).clone();
        let mut path = parent;
        path.push(format!("{}_{i}", rng.pick(FOLDER_NAMES)));
        let v = ok(
            &st.cat
                .create(&json!({"entityType": "folder", "path": path}))?,
            "folder",
        )?;
        containers.push((path.clone(), str_of(&v, "id")));
        if depth + 1 < MAX_FOLDER_DEPTH {
            nestable.push((path, depth + 1));
        }
        c.folders += 1;
    }

    // views (and functions among them), reading earlier datasets anywhere
    let mut views: Vec<(Vec<String>, String)> = vec![];
    let fn_every = (n_views / n_functions).max(1);
    let mut functions_left = n_functions;
    for i in 0..n_views {
        let (parent, _) = rng.pick(&containers).clone();
        if functions_left > 0 && i % fn_every == 0 {
            let mut path = parent.clone();
            path.push(format!("fn_{i}"));
            let src = rng.pick(&promoted).0.clone();
            let body = if rng.chance(50) {
                json!({"entityType": "function", "path": path, "isScalar": true,
                       "functionArgList": "amount DOUBLE, rate DOUBLE",
                       "functionBody": "SELECT amount * (1 + rate)", "returnType": "DOUBLE"})
            } else {
                json!({"entityType": "function", "path": path, "isScalar": false,
                       "functionArgList": "min_id BIGINT",
                       "functionBody": format!("SELECT id, amount FROM {} WHERE id >= min_id",
                                               qpath(&src, &mut rng)),
                       "returnType": "id BIGINT, amount DOUBLE"})
            };
            ok(&st.cat.create(&body)?, "function")?;
            c.functions += 1;
            functions_left -= 1;
        }
        let mut path = parent;
        path.push(format!("{}_{i}", rng.pick(VIEW_NAMES)));
        // half the time another view (after the promoted datasets), when there is one
        let pick = |rng: &mut Rng| -> (Vec<String>, usize) {
            if readable.len() > n_promoted && rng.chance(50) {
                readable[n_promoted + rng.below(readable.len() - n_promoted)].clone()
            } else {
                readable[rng.below(n_promoted)].clone()
            }
        };
        let (a, da) = pick(&mut rng);
        let (b, db) = pick(&mut rng);
        let mut ctx: Vec<String> = vec![];
        let (sql, depth) = match rng.below(6) {
            0 => (format!("SELECT * FROM {}", qpath(&a, &mut rng)), da + 1),
            1 => (
                format!(
                    "SELECT a.*, b.id AS other_id\nFROM {} AS a\nJOIN {} b ON a.id = b.id",
                    qpath(&a, &mut rng),
                    qpath(&b, &mut rng)
                ),
                da.max(db) + 1,
            ),
            2 => (
                format!(
                    "WITH base AS (SELECT * FROM {} WHERE amount > 0),\n\
                     ranked AS (SELECT id, amount, ROW_NUMBER() OVER (ORDER BY amount DESC) AS rk FROM base)\n\
                     SELECT id, amount FROM ranked WHERE rk <= 100",
                    qpath(&a, &mut rng)
                ),
                da + 1,
            ),
            3 => (
                format!(
                    "SELECT id, SUM(amount) AS total, EXTRACT(YEAR FROM created_at) AS yr\n\
                     FROM {} -- totals per id\nGROUP BY id, EXTRACT(YEAR FROM created_at)",
                    qpath(&a, &mut rng)
                ),
                da + 1,
            ),
            4 => {
                // relative to a sqlContext: the dataset's parent
                ctx = a[..a.len() - 1].to_vec();
                (
                    format!(
                        "SELECT * FROM {} WHERE status <> 'FROM archive'",
                        q(&a[a.len() - 1], &mut rng)
                    ),
                    da + 1,
                )
            }
            _ => (
                format!(
                    "SELECT id, amount FROM {}\nUNION ALL\nSELECT id, amount FROM {}",
                    qpath(&a, &mut rng),
                    qpath(&b, &mut rng)
                ),
                da.max(db) + 1,
            ),
        };
        let v = ok(
            &st.cat
                .create(&json!({"entityType": "dataset", "type": "VIRTUAL_DATASET",
                                   "path": path, "sql": sql, "sqlContext": ctx}))?,
            "view",
        )?;
        views.push((path.clone(), str_of(&v, "id")));
        if depth < MAX_VIEW_DEPTH {
            readable.push((path, depth));
        }
        c.views += 1;
    }

    // wikis on some containers and views, tags on some datasets, a few reflections
    for (i, (p, id)) in containers.iter().enumerate() {
        if i < c.spaces || rng.chance(3) {
            let text = format!(
                "# {}\n\nOwned by the data team. See also `{}`.",
                p.join("."),
                p[0]
            );
            ok(
                &st.cat
                    .collab_set(Collab::Wiki, id, &json!({ "text": text }))?,
                "wiki",
            )?;
            c.wikis += 1;
        }
    }
    for (p, id) in &views {
        if rng.chance(2) {
            let text = format!("Definition of **{}**.", p[p.len() - 1]);
            ok(
                &st.cat
                    .collab_set(Collab::Wiki, id, &json!({ "text": text }))?,
                "wiki",
            )?;
            c.wikis += 1;
        }
    }
    for (_, id) in promoted.iter().chain(views.iter()) {
        if rng.chance(3) {
            let tags = match rng.below(3) {
                0 => json!(["gold"]),
                1 => json!(["pii", "finance"]),
                _ => json!(["certified", "daily"]),
            };
            ok(
                &st.cat
                    .collab_set(Collab::Tags, id, &json!({ "tags": tags }))?,
                "tags",
            )?;
            c.tags += 1;
        }
    }
    for i in 0..(n / 500).max(1) {
        let (_, ds) = if i % 2 == 0 {
            rng.pick(&promoted)
        } else {
            rng.pick(&views)
        };
        let body = if rng.chance(50) {
            json!({"type": "RAW", "name": format!("raw_{i}"), "datasetId": ds, "enabled": true,
                   "displayFields": [{"name": "id"}, {"name": "amount"}],
                   "partitionFields": [{"name": "id"}]})
        } else {
            json!({"type": "AGGREGATION", "name": format!("agg_{i}"), "datasetId": ds,
                   "enabled": true,
                   "dimensionFields": [{"name": "id", "granularity": "DATE"}],
                   "measureFields": [{"name": "amount", "measureTypeList": ["SUM", "COUNT"]}]})
        };
        ok(&st.cat.reflection_create(&body)?, "reflection")?;
        c.reflections += 1;
    }
    Ok(c)
}

fn ok(r: &Reply, what: &str) -> Result<Value> {
    if r.status != 200 {
        bail!("seeding a {what} failed: {} {}", r.status, r.body);
    }
    Ok(serde_json::from_str(&r.body)?)
}

fn str_of(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}
