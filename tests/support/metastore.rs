//! Druid metadata stores for the tests: a fresh database of its own per test on the PostgreSQL or
//! MariaDB servers that scripts/test.sh starts (so tests run in parallel), the URL lifeboat is
//! given (no password: that goes through `LIFEBOAT_DRUID_METADATA_PASSWORD`), and the test's own
//! clients for it. Nothing here uses lifeboat's metastore code, so a test of it is independent.

use lifeboat::druid::metastore::DbKind;

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
