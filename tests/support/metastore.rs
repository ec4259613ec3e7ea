//! Druid metadata stores for the tests: a fresh database of its own per test on the PostgreSQL or
//! MariaDB servers that scripts/test.sh starts (so tests run in parallel), the URL lifeboat is
//! given (no password: that goes through `LIFEBOAT_DRUID_METADATA_PASSWORD`), and the test's own
//! clients for it. Nothing here uses lifeboat's metastore code, so a test of it is independent.

use std::collections::BTreeMap;

use lifeboat::druid::metastore::DbKind;
use sha2::Digest;

use super::{block, env};

/// A database made for one test.
#[derive(Debug, Clone)]
pub struct DbUrl {
    pub kind: DbKind,
    /// With the password: for the test's own clients.
    pub url: String,
    /// Without it: what lifeboat is given (`--druid-metadata`).
    pub shown: String,
    /// For `LIFEBOAT_DRUID_METADATA_PASSWORD`.
    pub password: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub db: String,
}

impl DbUrl {
    /// The environment that gives lifeboat the password.
    pub fn password_env(&self) -> Vec<(String, String)> {
        vec![(
            lifeboat::druid::metastore::PASSWORD_VAR.to_string(),
            self.password.clone(),
        )]
    }
}

/// A database name no other test of any run on the server uses.
fn unique_db() -> String {
    let mut rnd = [0u8; 4];
    getrandom::fill(&mut rnd).unwrap();
    format!("druid_{}_{}", std::process::id(), hex::encode(rnd))
}

/// `scheme://user:pw@host:port/db` into its parts.
fn parts(url: &str) -> (String, String, String, u16) {
    let u = url::Url::parse(url).unwrap_or_else(|e| panic!("not a URL ({e}): the server's URL"));
    let user = u.username().to_string();
    let pw = percent_encoding::percent_decode_str(u.password().unwrap_or(""))
        .decode_utf8_lossy()
        .into_owned();
    let host = u.host_str().unwrap().to_string();
    (user, pw, host, u.port().unwrap())
}

fn made(kind: DbKind, var_url: &str, db: String) -> DbUrl {
    let (user, password, host, port) = parts(var_url);
    let scheme = match kind {
        DbKind::Postgresql => "postgres",
        DbKind::Mysql => "mysql",
    };
    let (base, _) = var_url.rsplit_once('/').unwrap();
    DbUrl {
        kind,
        url: format!("{base}/{db}"),
        shown: format!("{scheme}://{user}@{host}:{port}/{db}"),
        password,
        host,
        port,
        user,
        db,
    }
}

/// A new, empty database on the PostgreSQL of env var `var` (`LIFEBOAT_PG_URL`,
/// `LIFEBOAT_PG_SOLO_URL`).
pub fn fresh_pg(var: &str) -> DbUrl {
    let url = env(var);
    let db = unique_db();
    block(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to {var}: {e}"));
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
    });
    made(DbKind::Postgresql, &url, db)
}

/// A new, empty database on the MariaDB of env var `var` (`LIFEBOAT_MARIADB_URL`,
/// `LIFEBOAT_MARIADB_SOLO_URL`), in utf8mb4 as Druid's docs ask.
pub fn fresh_mariadb(var: &str) -> DbUrl {
    use mysql_async::prelude::Queryable;
    let url = env(var);
    let db = unique_db();
    block(async {
        let mut conn = mysql_async::Conn::from_url(&url)
            .await
            .unwrap_or_else(|e| panic!("connect to {var}: {e}"));
        conn.query_drop(format!(
            "CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        ))
        .await
        .unwrap();
        conn.disconnect().await.unwrap();
    });
    made(DbKind::Mysql, &url, db)
}

/// A fresh database of `kind` on the first server of that kind.
pub fn fresh(kind: DbKind) -> DbUrl {
    match kind {
        DbKind::Postgresql => fresh_pg("LIFEBOAT_PG_URL"),
        DbKind::Mysql => fresh_mariadb("LIFEBOAT_MARIADB_URL"),
    }
}

/// A fresh database of `kind` on the second server of that kind (a restore's other server).
pub fn fresh_solo(kind: DbKind) -> DbUrl {
    match kind {
        DbKind::Postgresql => fresh_pg("LIFEBOAT_PG_SOLO_URL"),
        DbKind::Mysql => fresh_mariadb("LIFEBOAT_MARIADB_SOLO_URL"),
    }
}

/// The test's own PostgreSQL client of `db` (its connection task spawned on the current runtime).
pub async fn pg_client(db: &DbUrl) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", db.shown));
    tokio::spawn(conn);
    client
}

/// The test's own MariaDB connection to `db`.
pub async fn my_conn(db: &DbUrl) -> mysql_async::Conn {
    mysql_async::Conn::from_url(&db.url)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", db.shown))
}

/// Runs statements (no results) on `db`, in order.
pub fn execute(db: &DbUrl, stmts: &[&str]) {
    block(async {
        match db.kind {
            DbKind::Postgresql => {
                let c = pg_client(db).await;
                for s in stmts {
                    c.batch_execute(s)
                        .await
                        .unwrap_or_else(|e| panic!("{s}: {e}"));
                }
            }
            DbKind::Mysql => {
                use mysql_async::prelude::Queryable;
                let mut c = my_conn(db).await;
                for s in stmts {
                    c.query_drop(*s)
                        .await
                        .unwrap_or_else(|e| panic!("{s}: {e}"));
                }
                c.disconnect().await.unwrap();
            }
        }
    })
}

// ----- a metadata store as Druid fills it -----

/// The test's own DDL of Druid's tables (not lifeboat's, so that a test of lifeboat's DDL is
/// independent). `druid_segments.used_status_last_updated` is NULLable, as Druid before 0.23 (and
/// a store upgraded since) has it, so that a NULL there exercises the restore's backfill.
fn seed_ddl(kind: DbKind) -> Vec<String> {
    let pg = kind == DbKind::Postgresql;
    let (p, s, ds, end, opts) = if pg {
        ("BYTEA", "BIGSERIAL", "", "\"end\"", "")
    } else {
        (
            "LONGBLOB",
            "BIGINT(20) AUTO_INCREMENT",
            " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            "`end`",
            " ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4",
        )
    };
    vec![
        format!(
            "CREATE TABLE druid_segments (id VARCHAR(255) NOT NULL, dataSource VARCHAR(255){ds} \
             NOT NULL, created_date VARCHAR(255) NOT NULL, start VARCHAR(255) NOT NULL, {end} \
             VARCHAR(255) NOT NULL, partitioned BOOLEAN NOT NULL, version VARCHAR(255) NOT NULL, \
             used BOOLEAN NOT NULL, payload {p} NOT NULL, used_status_last_updated VARCHAR(255), \
             schema_fingerprint VARCHAR(255), num_rows BIGINT, PRIMARY KEY (id)){opts}"
        ),
        format!(
            "CREATE TABLE druid_rules (id VARCHAR(255) NOT NULL, dataSource VARCHAR(255){ds} \
             NOT NULL, version VARCHAR(255) NOT NULL, payload {p} NOT NULL, PRIMARY KEY (id)){opts}"
        ),
        format!(
            "CREATE TABLE druid_config (name VARCHAR(255) NOT NULL, payload {p} NOT NULL, \
             PRIMARY KEY (name)){opts}"
        ),
        format!(
            "CREATE TABLE druid_dataSource (dataSource VARCHAR(255){ds} NOT NULL, created_date \
             VARCHAR(255) NOT NULL, commit_metadata_payload {p} NOT NULL, commit_metadata_sha1 \
             VARCHAR(255) NOT NULL, PRIMARY KEY (dataSource)){opts}"
        ),
        format!(
            "CREATE TABLE druid_supervisors (id {s} NOT NULL, spec_id VARCHAR(255) NOT NULL, \
             created_date VARCHAR(255) NOT NULL, payload {p} NOT NULL, PRIMARY KEY (id)){opts}"
        ),
        format!(
            "CREATE TABLE druid_audit (id {s} NOT NULL, audit_key VARCHAR(255) NOT NULL, type \
             VARCHAR(255) NOT NULL, author VARCHAR(255) NOT NULL, comment VARCHAR(2048) NOT NULL, \
             created_date VARCHAR(255) NOT NULL, payload {p} NOT NULL, PRIMARY KEY (id)){opts}"
        ),
        format!(
            "CREATE TABLE druid_tasks (id VARCHAR(255) NOT NULL, created_date VARCHAR(255) NOT \
             NULL, datasource VARCHAR(255) NOT NULL, payload {p} NOT NULL, status_payload {p} NOT \
             NULL, active BOOLEAN NOT NULL DEFAULT FALSE, PRIMARY KEY (id)){opts}"
        ),
    ]
}

/// One segment the seed wrote.
#[derive(Debug, Clone)]
pub struct SeededSegment {
    pub id: String,
    pub data_source: String,
    pub used: bool,
    /// Its object: `s3://bucket/key`.
    pub url: String,
    pub size: u64,
}

/// What [`seed`] wrote.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// Rows per table, by Druid's table name (transient `druid_tasks` among them).
    pub rows: BTreeMap<&'static str, u64>,
    pub segments: Vec<SeededSegment>,
    pub used: u64,
    /// The deep-storage location every segment is under (`s3://bucket/prefix`).
    pub location: String,
    pub datasources: Vec<String>,
    /// Supervisors' spec ids.
    pub supervisors: Vec<String>,
}

impl Seeded {
    /// The durable tables seeded, by Druid's name.
    pub fn durable(&self) -> Vec<&'static str> {
        self.rows
            .keys()
            .copied()
            .filter(|t| *t != "druid_tasks")
            .collect()
    }
}

/// A parameter of the seed's inserts.
#[derive(Clone)]
enum P {
    T(String),
    B(Vec<u8>),
    Bool(bool),
    I(i64),
    Null,
    /// NULL in an integer column (PostgreSQL types its parameters).
    NullI,
}

fn t(s: &str) -> P {
    P::T(s.to_string())
}

/// Fills `db` as Druid would: Druid's tables made with the test's own DDL; segments with
/// `s3_zip` loadSpecs under `deep` (`s3://bucket/prefix`; its objects are uploaded to the S3
/// server of the AWS_* environment, their sizes in the payloads) or, without it, under
/// `s3://druid-deep/druid/segments` with nothing uploaded; some used, some not, one with a NULL
/// `used_status_last_updated`; rules, configs (coordinator, lookups, basic-security users as a
/// binary blob), supervisors with several versions, datasource offsets, audit rows and a
/// transient task. Payloads hold backslashes, quotes, newlines, NUL and non-UTF-8 bytes where
/// Druid's JSON allows them (and anywhere in the binary blobs).
pub fn seed(db: &DbUrl, deep: Option<&str>) -> Seeded {
    let location = deep.unwrap_or("s3://druid-deep/druid/segments").to_string();
    let (bucket, prefix) = location
        .strip_prefix("s3://")
        .and_then(|r| r.split_once('/'))
        .expect("deep storage as s3://bucket/prefix");
    let mut inserts: Vec<(String, Vec<P>)> = Vec::new();
    let mut rows: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut add = |table: &'static str, cols: &str, values: Vec<P>| {
        let marks = vec!["?"; values.len()].join(", ");
        inserts.push((
            format!("INSERT INTO {table} ({cols}) VALUES ({marks})"),
            values,
        ));
        *rows.entry(table).or_default() += 1;
    };
    let mut segments = Vec::new();
    let specs = [
        (
            "wikipedia",
            "2024-01-01",
            "2024-01-02",
            0,
            true,
            Some("2024-01-03T00:00:00.000Z"),
        ),
        (
            "wikipedia",
            "2024-01-01",
            "2024-01-02",
            1,
            true,
            Some("2024-01-03T00:00:00.000Z"),
        ),
        (
            "wikipedia",
            "2024-01-02",
            "2024-01-03",
            0,
            false,
            Some("2024-02-01T00:00:00.000Z"),
        ),
        ("wikipedia", "2024-01-03", "2024-01-04", 0, false, None),
        (
            "koalas",
            "2023-06-01",
            "2023-07-01",
            0,
            true,
            Some("2023-07-02T08:00:00.000Z"),
        ),
        (
            "koalas",
            "2023-07-01",
            "2023-08-01",
            0,
            true,
            Some("2023-08-02T08:00:00.000Z"),
        ),
    ];
    let upload = deep.map(TestLocationHandle::new);
    for (i, (ds, start, end, part, used, status)) in specs.iter().enumerate() {
        let version = format!("{end}T10:00:00.000Z");
        let (s, e) = (
            format!("{start}T00:00:00.000Z"),
            format!("{end}T00:00:00.000Z"),
        );
        let id = if *part == 0 {
            format!("{ds}_{s}_{e}_{version}")
        } else {
            format!("{ds}_{s}_{e}_{version}_{part}")
        };
        let rel = format!("{ds}/{s}_{e}/{version}/{part}/index.zip");
        let key = format!("{prefix}/{rel}");
        let size = 100 + 37 * i as u64;
        if let Some(up) = &upload {
            up.write(&rel, vec![b'z'; size as usize]);
        }
        // Druid's JSON: quotes and backslashes escaped, a newline as \n, non-ASCII as UTF-8
        let payload = format!(
            "{{\"dataSource\":\"{ds}\",\"interval\":\"{s}/{e}\",\"version\":\"{version}\",\
             \"loadSpec\":{{\"type\":\"s3_zip\",\"bucket\":\"{bucket}\",\"key\":\"{key}\",\
             \"S3Schema\":\"s3n\"}},\"dimensions\":\"page,user,C:\\\\temp,\\\"q\\\",line\\nbreak,Straße\",\
             \"metrics\":\"count,added\",\"shardSpec\":{{\"type\":\"numbered\",\"partitionNum\":{part},\
             \"partitions\":0}},\"binaryVersion\":9,\"size\":{size},\"identifier\":\"{id}\"}}"
        );
        add(
            "druid_segments",
            "id, dataSource, created_date, start, \"end\", partitioned, version, used, payload, \
             used_status_last_updated, schema_fingerprint, num_rows",
            vec![
                t(&id),
                t(ds),
                t("2024-01-05T12:00:00.000Z"),
                t(&s),
                t(&e),
                P::Bool(true),
                t(&version),
                P::Bool(*used),
                P::B(payload.into_bytes()),
                status.map_or(P::Null, t),
                if i == 0 { t("fp-0001") } else { P::Null },
                if i == 0 { P::I(12345) } else { P::NullI },
            ],
        );
        segments.push(SeededSegment {
            id,
            data_source: ds.to_string(),
            used: *used,
            url: format!("s3://{bucket}/{key}"),
            size,
        });
    }
    for (id, ds, version, rules) in [
        (
            "_default_2024-01-01T00:00:00.000Z",
            "_default",
            "2024-01-01T00:00:00.000Z",
            r#"[{"tieredReplicants":{"_default_tier":2},"type":"loadForever"}]"#,
        ),
        (
            "wikipedia_2024-01-02T00:00:00.000Z",
            "wikipedia",
            "2024-01-02T00:00:00.000Z",
            r#"[{"period":"P1M","includeFuture":true,"tieredReplicants":{"hot":1},"type":"loadByPeriod"},{"type":"dropForever"}]"#,
        ),
        (
            "wikipedia_2024-01-03T00:00:00.000Z",
            "wikipedia",
            "2024-01-03T00:00:00.000Z",
            r#"[{"type":"loadForever","tieredReplicants":{"_default_tier":1}}]"#,
        ),
    ] {
        add(
            "druid_rules",
            "id, dataSource, version, payload",
            vec![t(id), t(ds), t(version), P::B(rules.as_bytes().to_vec())],
        );
    }
    let mut users = b"{\"admin\":{\"name\":\"admin\",\"credentials\":{\"salt\":\"".to_vec();
    users.extend_from_slice(&[0, 1, 0xff, 0xfe, b'\\', b'"', b'\n', b'\r', 0x80]);
    users.extend_from_slice(b"\",\"iterations\":10000}}}");
    for (name, payload) in [
        ("coordinator.config", br#"{"millisToWaitBeforeDeleting":900000,"maxSegmentsToMove":100,"killDataSourceWhitelist":["a\\b"]}"#.to_vec()),
        ("lookupsConfig", br#"{"__default":{"country_code":{"version":"v1","lookupExtractorFactory":{"type":"map","map":{"US":"United \"States\"","DE":"Deutschland\n"}}}}}"#.to_vec()),
        ("basic_authentication_basic_users", users),
        ("worker.config", b"NULL".to_vec()),
    ] {
        add("druid_config", "name, payload", vec![t(name), P::B(payload)]);
    }
    let mut datasources = Vec::new();
    for (ds, offsets) in [
        (
            "wikipedia",
            r#"{"type":"kafka","partitions":{"type":"end","stream":"wiki","partitionOffsetMap":{"0":1200,"1":1187}}}"#,
        ),
        (
            "koalas",
            r#"{"type":"kafka","partitions":{"type":"end","stream":"koalas","partitionOffsetMap":{"0":42}}}"#,
        ),
    ] {
        add(
            "druid_dataSource",
            "dataSource, created_date, commit_metadata_payload, commit_metadata_sha1",
            vec![
                t(ds),
                t("2024-01-05T12:00:00.000Z"),
                P::B(offsets.as_bytes().to_vec()),
                t(&format!("{:x}", sha2::Sha256::digest(offsets.as_bytes()))[..40]),
            ],
        );
        datasources.push(ds.to_string());
    }
    let kafka = |ds: &str, replicas: u32, suspended: bool| {
        format!(
            "{{\"type\":\"kafka\",\"spec\":{{\"dataSchema\":{{\"dataSource\":\"{ds}\"}},\
             \"ioConfig\":{{\"topic\":\"{ds}\",\"replicas\":{replicas},\
             \"consumerProperties\":{{\"bootstrap.servers\":\"k:9092\"}}}}}},\
             \"suspended\":{suspended}}}"
        )
    };
    for (spec, payload, at) in [
        (
            "wikipedia",
            kafka("wikipedia", 1, false),
            "2024-01-01T00:00:00.000Z",
        ),
        (
            "wikipedia",
            kafka("wikipedia", 2, true),
            "2024-01-02T00:00:00.000Z",
        ),
        (
            "wikipedia",
            kafka("wikipedia", 2, false),
            "2024-01-03T00:00:00.000Z",
        ),
        (
            "koalas",
            kafka("koalas", 1, false),
            "2024-01-04T00:00:00.000Z",
        ),
    ] {
        add(
            "druid_supervisors",
            "spec_id, created_date, payload",
            vec![t(spec), t(at), P::B(payload.into_bytes())],
        );
    }
    let mut audit_payload =
        br#"{"key":"wikipedia","type":"rules","payload":"[{\"type\":\"loadForever\"}]"}"#.to_vec();
    audit_payload.extend_from_slice(&[0, 0xc3, 0x28]);
    for (key, kind, comment, payload) in [
        (
            "wikipedia",
            "rules",
            "keep a month\nthen drop, \"as agreed\"",
            audit_payload,
        ),
        ("lookups", "lookups", "NULL", b"{}".to_vec()),
        (
            "coordinator.config",
            "coordinator.config",
            "C:\\druid\\conf",
            b"{\"maxSegmentsToMove\":100}".to_vec(),
        ),
    ] {
        add(
            "druid_audit",
            "audit_key, type, author, comment, created_date, payload",
            vec![
                t(key),
                t(kind),
                t("ops"),
                t(comment),
                t("2024-01-02T00:00:00.000Z"),
                P::B(payload),
            ],
        );
    }
    add(
        "druid_tasks",
        "id, created_date, datasource, payload, status_payload, active",
        vec![
            t("index_kafka_wikipedia_abc"),
            t("2024-01-05T00:00:00.000Z"),
            t("wikipedia"),
            P::B(b"{\"type\":\"index_kafka\"}".to_vec()),
            P::B(b"{\"status\":\"RUNNING\"}".to_vec()),
            P::Bool(true),
        ],
    );
    let ddl = seed_ddl(db.kind);
    block(async {
        match db.kind {
            DbKind::Postgresql => {
                let c = pg_client(db).await;
                for s in &ddl {
                    c.batch_execute(s)
                        .await
                        .unwrap_or_else(|e| panic!("{s}: {e}"));
                }
                for (sql, values) in &inserts {
                    let sql = pg_marks(sql);
                    let params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = values
                        .iter()
                        .map(|v| -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
                            match v.clone() {
                                P::T(s) => Box::new(s),
                                P::B(b) => Box::new(b),
                                P::Bool(b) => Box::new(b),
                                P::I(i) => Box::new(i),
                                P::Null => Box::new(None::<String>),
                                P::NullI => Box::new(None::<i64>),
                            }
                        })
                        .collect();
                    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                        params.iter().map(|b| &**b as _).collect();
                    c.execute(&sql, &refs)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                }
            }
            DbKind::Mysql => {
                use mysql_async::prelude::Queryable;
                let mut c = my_conn(db).await;
                for s in &ddl {
                    c.query_drop(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
                }
                for (sql, values) in &inserts {
                    let sql = sql.replace('"', "`");
                    let params: Vec<mysql_async::Value> = values
                        .iter()
                        .map(|v| match v.clone() {
                            P::T(s) => mysql_async::Value::Bytes(s.into_bytes()),
                            P::B(b) => mysql_async::Value::Bytes(b),
                            P::Bool(b) => mysql_async::Value::Int(b.into()),
                            P::I(i) => mysql_async::Value::Int(i),
                            P::Null | P::NullI => mysql_async::Value::NULL,
                        })
                        .collect();
                    c.exec_drop(&sql, params)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                }
                c.disconnect().await.unwrap();
            }
        }
    });
    Seeded {
        used: segments.iter().filter(|s| s.used).count() as u64,
        rows,
        segments,
        location,
        datasources,
        supervisors: vec!["wikipedia".into(), "koalas".into()],
    }
}

/// `?` placeholders as PostgreSQL's `$n`.
fn pg_marks(sql: &str) -> String {
    let mut out = String::new();
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// Uploads to `s3://bucket/prefix` through the AWS_* environment (the first SeaweedFS).
struct TestLocationHandle(super::TestLocation);

impl TestLocationHandle {
    fn new(url: &str) -> TestLocationHandle {
        TestLocationHandle(super::TestLocation {
            url: url.to_string(),
            kind: super::StoreKind::S3,
            _dir: None,
        })
    }

    fn write(&self, rel: &str, data: Vec<u8>) {
        self.0.write(rel, data)
    }
}

/// Every row of `table` (Druid's name, any case), ordered by its first column (the primary key
/// of each of Druid's tables), each value as bytes: text as the server prints it, binary as it
/// is, booleans as `1`/`0` on both kinds; `None` for NULL.
pub fn table_rows(db: &DbUrl, table: &str) -> Vec<Vec<Option<Vec<u8>>>> {
    block(async {
        match db.kind {
            DbKind::Postgresql => {
                let c = pg_client(db).await;
                let cols = c
                    .query(
                        "SELECT column_name::text, data_type::text FROM information_schema.columns \
                         WHERE table_schema = current_schema() AND lower(table_name) = lower($1) \
                         ORDER BY ordinal_position",
                        &[&table],
                    )
                    .await
                    .unwrap();
                assert!(!cols.is_empty(), "{table} has no columns in {}", db.shown);
                let types: Vec<String> = cols.iter().map(|r| r.get(1)).collect();
                let select: Vec<String> = cols
                    .iter()
                    .map(|r| {
                        let (n, ty): (String, String) = (r.get(0), r.get(1));
                        match ty.as_str() {
                            "bytea" => format!("\"{n}\""),
                            "boolean" => format!("CASE WHEN \"{n}\" THEN '1' ELSE '0' END"),
                            _ => format!("\"{n}\"::text"),
                        }
                    })
                    .collect();
                let sql = format!("SELECT {} FROM {table} ORDER BY 1", select.join(", "));
                c.query(&sql, &[])
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .iter()
                    .map(|r| {
                        (0..types.len())
                            .map(|i| {
                                if types[i] == "bytea" {
                                    r.get::<_, Option<Vec<u8>>>(i)
                                } else {
                                    r.get::<_, Option<String>>(i).map(String::into_bytes)
                                }
                            })
                            .collect()
                    })
                    .collect()
            }
            DbKind::Mysql => {
                use mysql_async::prelude::Queryable;
                let mut c = my_conn(db).await;
                let sql = format!("SELECT * FROM `{table}` ORDER BY 1");
                let rows: Vec<mysql_async::Row> =
                    c.query(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                let out = rows
                    .into_iter()
                    .map(|r| {
                        r.unwrap()
                            .into_iter()
                            .map(|v| match v {
                                mysql_async::Value::NULL => None,
                                mysql_async::Value::Bytes(b) => Some(b),
                                other => Some(other.as_sql(true).into_bytes()),
                            })
                            .collect()
                    })
                    .collect();
                c.disconnect().await.unwrap();
                out
            }
        }
    })
}
