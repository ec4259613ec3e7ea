//! Druid's metadata store (PostgreSQL or MySQL/MariaDB) as a backup's content: where it is and how
//! to connect ([`MetaUrl`], [`connect`], TLS with a CA file), its tables and Druid's DDL
//! ([`tables`]), the open CSV dialect of the table files ([`csv`]), the consistent snapshot into
//! one file per table ([`dump`]), the scripts that load them without lifeboat ([`scripts`]) and
//! the load into an empty database in one transaction ([`load`]).

pub mod csv;
pub mod dump;
pub mod load;
pub mod scripts;
pub mod tables;

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::error::{Classify, ExitClass};
use crate::secrets::Secret;

/// `LIFEBOAT_DRUID_METADATA_PASSWORD` (or its `_FILE` twin): the only source of the password.
pub const PASSWORD_VAR: &str = "LIFEBOAT_DRUID_METADATA_PASSWORD";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    Postgresql,
    Mysql,
}

/// Where the store is, from `--druid-metadata` or the config (never with a password in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaUrl {
    pub kind: DbKind,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub db: Option<String>,
}

/// TLS to the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Tls {
    /// Plain TCP (the default, as Druid's own connector).
    #[default]
    Off,
    /// TLS, the server's certificate checked against this CA file (PEM) and its name.
    CaFile(PathBuf),
}

/// Everything needed to connect.
#[derive(Debug, Clone)]
pub struct MetaConfig {
    pub url: MetaUrl,
    pub password: Option<Secret>,
    pub tls: Tls,
    pub connect_timeout: Duration,
    /// `application_name` / program name shown by the server (`lifeboat-backup`, ...).
    pub application: &'static str,
}

/// A connection to either kind.
pub enum Db {
    Pg(tokio_postgres::Client),
    My(mysql_async::Conn),
}

#[derive(Debug, Error)]
pub enum MetaError {
    /// Unreachable, TLS, refused credentials: what failed and what to do.
    #[error("metadata store {url}: {why}; {remedy}")]
    Connect {
        url: String,
        why: String,
        remedy: String,
    },
    /// The target holds Druid rows: restore only goes into an empty store.
    #[error(
        "metadata store {url} is not empty: {table} has {rows} rows{more}; restore only loads into an empty database: give a new database, or drop Druid's tables after making sure nothing needs them"
    )]
    NotEmpty {
        url: String,
        table: String,
        rows: u64,
        more: String,
    },
    /// A refusal that is not about emptiness (privileges, version, space, a newer Druid schema).
    #[error("{0}")]
    Refused(String),
    /// A table file of the backup is not what its manifest says (rows, columns, CSV).
    #[error("{0}")]
    Corrupt(String),
    /// A statement failed.
    #[error("{what}: {why}")]
    Query { what: String, why: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("interrupted")]
    Interrupted,
}

impl Classify for MetaError {
    fn exit_class(&self) -> ExitClass {
        match self {
            MetaError::Connect { .. } | MetaError::Query { .. } => ExitClass::Storage,
            MetaError::NotEmpty { .. } | MetaError::Refused(_) => ExitClass::Refused,
            MetaError::Corrupt(_) => ExitClass::Integrity,
            MetaError::Io(_) => ExitClass::Internal,
            MetaError::Interrupted => ExitClass::Interrupted,
        }
    }
}

/// The largest CA file read (a bundle of a few certificates).
const MAX_CA_BYTES: u64 = 1 << 20;

impl MetaUrl {
    /// `postgres[ql]://user@host[:port][/db]` or `mysql|mariadb://...`; a password is refused
    /// (argv is readable by every user of the host, and it would end up in shell history), and
    /// so are options after `?` (TLS has its own setting, [`Tls`]). The database stays `None`
    /// when the path is empty: PostgreSQL then uses the user's name ([`MetaUrl::database`]);
    /// on MySQL a connection without one is made (doctor needs none), and [`dump`] refuses it.
    pub fn parse(text: &str) -> Result<MetaUrl, String> {
        let url = url::Url::parse(text).map_err(|e| {
            format!(
                "--druid-metadata is not a URL ({e}): give \
                postgres://USER@HOST:PORT/DB or mysql://USER@HOST:PORT/DB"
            )
        })?;
        let kind = match url.scheme() {
            "postgres" | "postgresql" => DbKind::Postgresql,
            "mysql" | "mariadb" => DbKind::Mysql,
            s => {
                return Err(format!(
                    "--druid-metadata: unknown scheme {s}: give postgres://... or mysql://..."
                ));
            }
        };
        if url.password().is_some() {
            return Err(format!(
                "--druid-metadata must not hold a password (the command line is visible to \
                    every user of the host): \
                 give it without one and set {PASSWORD_VAR} or {PASSWORD_VAR}_FILE"
            ));
        }
        if url.query().is_some() {
            return Err(
                "--druid-metadata: options after `?` are not supported (TLS is set with its \
                own option, a CA file)"
                    .into(),
            );
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("--druid-metadata has no host")?;
        let user = percent_encoding::percent_decode_str(url.username())
            .decode_utf8_lossy()
            .into_owned();
        if user.is_empty() {
            return Err("--druid-metadata has no user: give USER@HOST".into());
        }
        let db = percent_encoding::percent_decode_str(url.path().trim_start_matches('/'))
            .decode_utf8_lossy()
            .into_owned();
        if db.contains('/') {
            return Err(format!(
                "--druid-metadata: {db:?} is not a database name: give one name after the port"
            ));
        }
        Ok(MetaUrl {
            kind,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: url.port().unwrap_or(match kind {
                DbKind::Postgresql => 5432,
                DbKind::Mysql => 3306,
            }),
            user,
            db: (!db.is_empty()).then_some(db),
        })
    }

    /// The URL as given (it has no password), for reports.
    pub fn shown(&self) -> String {
        let scheme = match self.kind {
            DbKind::Postgresql => "postgres",
            DbKind::Mysql => "mysql",
        };
        let db = self.db.as_deref().unwrap_or("");
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{}@{host}:{}/{db}", self.user, self.port)
    }

    /// The database connected to: the URL's, else (PostgreSQL) the user's name.
    pub fn database(&self) -> Option<&str> {
        match (&self.db, self.kind) {
            (Some(db), _) => Some(db),
            (None, DbKind::Postgresql) => Some(&self.user),
            (None, DbKind::Mysql) => None,
        }
    }
}

impl MetaConfig {
    /// A config for `url` without TLS, the password from [`PASSWORD_VAR`] when given.
    pub fn new(url: MetaUrl, password: Option<Secret>, application: &'static str) -> MetaConfig {
        MetaConfig {
            url,
            password,
            tls: Tls::Off,
            connect_timeout: Duration::from_secs(10),
            application,
        }
    }
}

fn credentials_remedy() -> String {
    format!(
        "check the user in --druid-metadata and the password in {PASSWORD_VAR} \
         (or the file {PASSWORD_VAR}_FILE names)"
    )
}

const REACH_REMEDY: &str = "check that the database server is up and that HOST:PORT reaches it";

fn tls_remedy(ca: &Tls) -> String {
    match ca {
        Tls::CaFile(p) => format!(
            "check that the server has TLS on, that {} holds the CA that signed its \
             certificate (PEM) and that the certificate names the URL's host",
            p.display()
        ),
        Tls::Off => "the server wants TLS: give the CA file of its certificate".into(),
    }
}

/// The text of a PostgreSQL error with its sources (tokio-postgres's own Display is terse).
pub(crate) fn pg_why(e: &tokio_postgres::Error) -> String {
    if let Some(d) = e.as_db_error() {
        let mut why = format!("{} ({})", d.message(), d.code().code());
        if let Some(detail) = d.detail() {
            why.push_str(&format!(": {detail}"));
        }
        return why;
    }
    crate::error::chain(e)
}

/// The root certificates of a CA file (PEM), for both drivers.
fn ca_roots(path: &std::path::Path) -> Result<(Vec<u8>, rustls::RootCertStore), String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = crate::limits::read_capped(path, MAX_CA_BYTES, "a CA file")
        .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            format!(
                "the CA file {} is not PEM certificates: {e}",
                path.display()
            )
        })?;
        roots.add(cert).map_err(|e| {
            format!(
                "the CA file {} holds a certificate rustls refuses: {e}",
                path.display()
            )
        })?;
    }
    if roots.is_empty() {
        return Err(format!(
            "the CA file {} holds no certificate (PEM `BEGIN CERTIFICATE` blocks)",
            path.display()
        ));
    }
    Ok((pem, roots))
}

/// The rustls client config of a CA file: its roots only, hostnames checked.
pub fn rustls_config(path: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    let (_, roots) = ca_roots(path)?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Connects, with TLS when asked, within the config's timeout.
pub async fn connect(config: &MetaConfig) -> Result<Db, MetaError> {
    let url = config.url.shown();
    let fail = |why: String, remedy: String| MetaError::Connect {
        url: url.clone(),
        why,
        remedy,
    };
    let timeout = config.connect_timeout;
    let attempt = async {
        match config.url.kind {
            DbKind::Postgresql => connect_pg(config).await.map(Db::Pg),
            DbKind::Mysql => connect_my(config).await.map(Db::My),
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(db)) => Ok(db),
        Ok(Err((why, remedy))) => Err(fail(why, remedy)),
        Err(_) => Err(fail(
            format!("no answer within {}", humantime::format_duration(timeout)),
            REACH_REMEDY.into(),
        )),
    }
}

/// The tokio-postgres config of `config` (no TLS decided here).
pub fn pg_config(config: &MetaConfig) -> tokio_postgres::Config {
    let u = &config.url;
    let mut pg = tokio_postgres::Config::new();
    pg.host(&u.host)
        .port(u.port)
        .user(&u.user)
        .dbname(u.database().unwrap_or(&u.user))
        .application_name(config.application)
        .connect_timeout(config.connect_timeout);
    if let Some(p) = &config.password {
        pg.password(&p.0);
    }
    pg
}

async fn connect_pg(config: &MetaConfig) -> Result<tokio_postgres::Client, (String, String)> {
    use tokio_postgres::config::SslMode;
    let mut pg = pg_config(config);
    let result = match &config.tls {
        Tls::Off => pg.connect(tokio_postgres::NoTls).await.map(|(c, conn)| {
            tokio::spawn(conn);
            c
        }),
        Tls::CaFile(path) => {
            let tls = rustls_config(path).map_err(|e| (e, tls_remedy(&config.tls)))?;
            pg.ssl_mode(SslMode::Require);
            pg.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
                .await
                .map(|(c, conn)| {
                    tokio::spawn(conn);
                    c
                })
        }
    };
    result.map_err(|e| pg_refusal(&e, config))
}

/// Why a PostgreSQL connection failed, and what to do.
fn pg_refusal(e: &tokio_postgres::Error, config: &MetaConfig) -> (String, String) {
    use tokio_postgres::error::SqlState;
    let why = pg_why(e);
    let Some(d) = e.as_db_error() else {
        let lower = why.to_ascii_lowercase();
        let remedy = if lower.contains("password missing") {
            format!("the server asks for a password: set {PASSWORD_VAR} (or {PASSWORD_VAR}_FILE)")
        } else if lower.contains("tls") || lower.contains("certificate") || lower.contains("ssl") {
            tls_remedy(&config.tls)
        } else {
            REACH_REMEDY.into()
        };
        return (why, remedy);
    };
    let code = d.code();
    let remedy = if [
        SqlState::INVALID_PASSWORD,
        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
    ]
    .contains(code)
    {
        if d.message().contains("no pg_hba.conf entry") && config.tls == Tls::Off {
            format!(
                "the server refuses this host or plain connections (pg_hba.conf): give a CA \
                 file to connect with TLS, or ask its administrator; else {}",
                credentials_remedy()
            )
        } else {
            credentials_remedy()
        }
    } else if *code == SqlState::INVALID_CATALOG_NAME {
        format!(
            "the database {} does not exist: fix the URL's database, or create it \
             (CREATE DATABASE)",
            config.url.database().unwrap_or("")
        )
    } else if *code == SqlState::TOO_MANY_CONNECTIONS {
        "the server has no free connection: try again later, or raise max_connections".into()
    } else {
        "check the role's rights on the database (CONNECT)".into()
    };
    (why, remedy)
}

/// The mysql_async options of `config`.
pub fn my_opts(config: &MetaConfig) -> Result<mysql_async::Opts, String> {
    let u = &config.url;
    let mut opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(u.host.clone())
        .tcp_port(u.port)
        .user(Some(u.user.clone()))
        .pass(config.password.as_ref().map(|p| p.0.clone()))
        .db_name(u.db.clone())
        // a socket path learnt from the server is another host's on a remote store
        .prefer_socket(false)
        .wait_timeout(Some(config.connect_timeout.as_secs().max(1) as usize))
        .conn_ttl(None)
        .stmt_cache_size(Some(16))
        .setup(vec![
            "SET NAMES utf8mb4".to_string(),
            format!("SET @lifeboat_program = '{}'", config.application),
        ]);
    if let Tls::CaFile(path) = &config.tls {
        let (pem, _) = ca_roots(path)?;
        opts = opts.ssl_opts(Some(
            mysql_async::SslOpts::default()
                .with_root_certs(vec![pem.into()])
                .with_disable_built_in_roots(true),
        ));
    }
    Ok(opts.into())
}

async fn connect_my(config: &MetaConfig) -> Result<mysql_async::Conn, (String, String)> {
    let opts = my_opts(config).map_err(|e| (e, tls_remedy(&config.tls)))?;
    mysql_async::Conn::new(opts)
        .await
        .map_err(|e| my_refusal(&e, config))
}

/// Why a MySQL connection failed, and what to do.
fn my_refusal(e: &mysql_async::Error, config: &MetaConfig) -> (String, String) {
    let why = crate::error::chain(e);
    let remedy = match e {
        // 1045: access denied (user or password); 1044: no access to the database
        mysql_async::Error::Server(s) if s.code == 1045 => credentials_remedy(),
        mysql_async::Error::Server(s) if s.code == 1044 => format!(
            "the user may not use that database: grant it, or fix the URL; else {}",
            credentials_remedy()
        ),
        mysql_async::Error::Server(s) if s.code == 1049 => format!(
            "the database {} does not exist: fix the URL's database, or create it \
             (CREATE DATABASE ... CHARACTER SET utf8mb4)",
            config.url.db.as_deref().unwrap_or("")
        ),
        mysql_async::Error::Server(s) if s.code == 1040 => {
            "the server has no free connection: try again later, or raise max_connections".into()
        }
        mysql_async::Error::Io(mysql_async::IoError::Tls(_)) => tls_remedy(&config.tls),
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
            tls_remedy(&config.tls)
        }
        _ if why.to_ascii_lowercase().contains("tls")
            || why.to_ascii_lowercase().contains("certificate") =>
        {
            tls_remedy(&config.tls)
        }
        _ => REACH_REMEDY.into(),
    };
    (why, remedy)
}

impl Db {
    pub fn kind(&self) -> DbKind {
        match self {
            Db::Pg(_) => DbKind::Postgresql,
            Db::My(_) => DbKind::Mysql,
        }
    }

    /// The server's version: PostgreSQL's `server_version` (`15.8 (Debian ...)`), MySQL's
    /// `@@version` (`10.11.6-MariaDB-...`).
    pub async fn server_version(&mut self) -> Result<String, MetaError> {
        use mysql_async::prelude::Queryable;
        let what = "reading the server's version".to_string();
        let v: Option<String> = match self {
            Db::Pg(c) => c
                .query_one("SELECT current_setting('server_version')", &[])
                .await
                .and_then(|r| r.try_get(0))
                .map(Some)
                .map_err(|e| MetaError::Query {
                    what: what.clone(),
                    why: pg_why(&e),
                })?,
            Db::My(c) => c
                .query_first("SELECT @@version")
                .await
                .map_err(|e| MetaError::Query {
                    what: what.clone(),
                    why: e.to_string(),
                })?,
        };
        // a hostile server's answer stays small
        Ok(v.unwrap_or_default().chars().take(256).collect())
    }

    /// Ends the connection politely (MySQL says goodbye; PostgreSQL's task ends with the client).
    pub async fn close(self) {
        match self {
            Db::Pg(c) => drop(c),
            Db::My(c) => {
                let _ = c.disconnect().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_kind_host_port_user_and_db_and_refuse_a_password() {
        let t = MetaUrl::parse("postgres://druid@db.example:6543/druid").unwrap();
        assert_eq!(
            (t.kind, t.host.as_str(), t.port, t.user.as_str()),
            (DbKind::Postgresql, "db.example", 6543, "druid")
        );
        assert_eq!(t.db.as_deref(), Some("druid"));
        assert_eq!(t.shown(), "postgres://druid@db.example:6543/druid");
        let m = MetaUrl::parse("mariadb://lifeboat@127.0.0.1/").unwrap();
        assert_eq!((m.kind, m.port, m.db.clone()), (DbKind::Mysql, 3306, None));
        assert_eq!(m.database(), None);
        let p = MetaUrl::parse("postgresql://ann@[::1]").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.database()),
            ("::1", 5432, Some("ann"))
        );
        assert_eq!(p.shown(), "postgres://ann@[::1]:5432/");
        let refused = MetaUrl::parse("postgres://u:hunter2@h/db").unwrap_err();
        assert!(refused.contains(PASSWORD_VAR), "{refused}");
        assert!(!refused.contains("hunter2"), "never echoed: {refused}");
        for bad in [
            "redis://u@h/0",
            "postgres://h/db",
            "not a url",
            "postgres://u@h/db?sslmode=require",
            "mysql://u@h/a/b",
        ] {
            assert!(MetaUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn drivers_get_the_urls_parts_and_tls_only_with_a_good_ca_file() {
        let url = MetaUrl::parse("mysql://druid@db:3307/meta").unwrap();
        let mut c = MetaConfig::new(url, Some(Secret("pw".into())), "lifeboat-test");
        let o = my_opts(&c).unwrap();
        assert_eq!(
            (o.ip_or_hostname(), o.tcp_port(), o.user(), o.db_name()),
            ("db", 3307, Some("druid"), Some("meta"))
        );
        assert!(o.ssl_opts().is_none());
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("none.pem");
        c.tls = Tls::CaFile(none.clone());
        assert!(my_opts(&c).unwrap_err().contains("cannot read the CA file"));
        std::fs::write(&none, "not a certificate\n").unwrap();
        assert!(my_opts(&c).unwrap_err().contains("holds no certificate"));
        assert!(rustls_config(&none).is_err());
        let pg = pg_config(&MetaConfig::new(
            MetaUrl::parse("postgres://ann@h").unwrap(),
            None,
            "lifeboat-test",
        ));
        assert_eq!(pg.get_dbname(), Some("ann"));
        assert_eq!(pg.get_application_name(), Some("lifeboat-test"));
    }

    #[test]
    fn refusals_say_what_to_do() {
        let c = MetaConfig::new(MetaUrl::parse("mysql://u@h/d").unwrap(), None, "t");
        let denied = mysql_async::Error::Server(mysql_async::ServerError {
            code: 1045,
            message: "Access denied for user 'u'@'h'".into(),
            state: "28000".into(),
        });
        let (why, remedy) = my_refusal(&denied, &c);
        assert!(why.contains("Access denied"), "{why}");
        assert!(remedy.contains(PASSWORD_VAR), "{remedy}");
        let unknown = mysql_async::Error::Server(mysql_async::ServerError {
            code: 1049,
            message: "Unknown database 'd'".into(),
            state: "42000".into(),
        });
        assert!(my_refusal(&unknown, &c).1.contains("does not exist"));
        let e = MetaError::Connect {
            url: c.url.shown(),
            why: why.clone(),
            remedy,
        };
        assert_eq!(e.exit_class(), ExitClass::Storage);
        let text = e.to_string();
        assert!(
            text.starts_with("metadata store mysql://u@h:3306/d: "),
            "{text}"
        );
        assert!(
            text.contains("Access denied") && text.contains(PASSWORD_VAR),
            "{text}"
        );
    }
}
