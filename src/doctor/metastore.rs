//! Is Druid's metadata store replicated? Druid cannot rebuild lost metadata, so its store must
//! have a live copy: a PostgreSQL primary with a streaming replica (or a standby whose WAL
//! receiver streams), or a MariaDB/MySQL primary with a connected replica (or a replica whose
//! IO and SQL threads both run). The facts are read with `tokio-postgres` and `mysql_async`.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde_json::{Value, json};

use super::check::{Area, Check};
use crate::druid::metastore::{Db, MetaConfig, MetaError, connect};
use crate::secrets::Secret;

const A: Area = Area::Metastore;
const CONNECT: &str = "metastore.connect";
const REPLICATION: &str = "metastore.replication";
/// Rows of a replication view read at most: a hostile server must not grow the report.
const MAX_ROWS: usize = 64;
/// Where the store is: the metadata store's own URL type (kept under doctor's old name).
pub use crate::druid::metastore::{MetaUrl as Target, PASSWORD_VAR};

/// A PostgreSQL primary's view of one replica (`pg_stat_replication`).
#[derive(Debug, Clone, PartialEq)]
pub struct Sender {
    pub name: String,
    pub client: String,
    pub state: String,
    pub sync_state: String,
    /// WAL written on the primary and not yet replayed there.
    pub lag_bytes: Option<f64>,
    pub replay_lag_s: Option<f64>,
}

/// One replication channel of a MariaDB/MySQL replica (`SHOW REPLICA STATUS`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Channel {
    pub source: String,
    pub io_running: String,
    pub sql_running: String,
    pub lag_s: Option<u64>,
    pub error: String,
}

/// What the store said about its replication.
#[derive(Debug, Clone, PartialEq)]
pub enum Facts {
    PgPrimary {
        version: String,
        senders: Vec<Sender>,
    },
    PgStandby {
        version: String,
        /// `pg_stat_wal_receiver`: its status and its primary, if a receiver runs.
        receiver: Option<(String, String)>,
        replay_delay_s: Option<f64>,
        unreplayed_bytes: Option<f64>,
    },
    MyReplica {
        version: String,
        channels: Vec<Channel>,
    },
    MyPrimary {
        version: String,
        log_bin: bool,
        registered: usize,
        dump_threads: usize,
    },
}

/// Why the store could not be read, and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Unread {
    pub why: String,
    pub remedy: String,
}

/// `metastore.connect` and `metastore.replication` for `--druid-metadata`, without TLS.
pub async fn checks(t: &Target, password: Option<&Secret>, timeout: Duration) -> Vec<Check> {
    let mut config = MetaConfig::new(t.clone(), password.cloned(), "lifeboat-doctor");
    config.connect_timeout = timeout;
    checks_with(&config).await
}

/// [`checks`] with every connection setting (TLS among them).
pub async fn checks_with(config: &MetaConfig) -> Vec<Check> {
    let timeout = config.connect_timeout;
    let read = async {
        let db = connect(config).await.map_err(|e| match e {
            MetaError::Connect { why, remedy, .. } => Unread { why, remedy },
            e => Unread {
                why: e.to_string(),
                remedy: "check that the server is up and that HOST:PORT reaches it".into(),
            },
        })?;
        match db {
            Db::Pg(client) => pg_facts(&client).await.map_err(pg_unread),
            Db::My(mut conn) => {
                let facts = my_facts(&mut conn).await.map_err(my_unread);
                let _ = conn.disconnect().await;
                facts
            }
        }
    };
    let facts = match tokio::time::timeout(timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(Unread {
            why: format!("no answer within {timeout:?}"),
            remedy: "check that the server is up and that HOST:PORT reaches it".into(),
        }),
    };
    judge(&config.url, facts)
}

fn credentials_remedy() -> String {
    format!("check the user in --druid-metadata and {PASSWORD_VAR} (or {PASSWORD_VAR}_FILE)")
}

fn pg_unread(e: tokio_postgres::Error) -> Unread {
    use tokio_postgres::error::SqlState;
    let Some(d) = e.as_db_error() else {
        let mut why = e.to_string();
        if let Some(src) = std::error::Error::source(&e) {
            why.push_str(&format!(": {src}"));
        }
        return Unread {
            why,
            remedy: "check that PostgreSQL is up, that HOST:PORT reaches it, and the password"
                .into(),
        };
    };
    let refused = [
        SqlState::INVALID_PASSWORD,
        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
    ];
    let remedy = if refused.contains(d.code()) {
        credentials_remedy()
    } else {
        "check the database in --druid-metadata and the role's rights (pg_monitor shows \
            replication)"
            .into()
    };
    Unread {
        why: d.message().to_string(),
        remedy,
    }
}

async fn pg_facts(c: &tokio_postgres::Client) -> Result<Facts, tokio_postgres::Error> {
    let row = c
        .query_one(
            "SELECT pg_is_in_recovery(), current_setting('server_version')",
            &[],
        )
        .await?;
    let (standby, version): (bool, String) = (row.try_get(0)?, row.try_get(1)?);
    if standby {
        let r = c
            .query_opt(
                "SELECT status::text, coalesce(sender_host, '') || ':' || \
                coalesce(sender_port::text, '') FROM pg_stat_wal_receiver",
                &[],
            )
            .await?;
        let receiver = r
            .map(|r| Ok::<_, tokio_postgres::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?;
        let lag = c
            .query_one(
                "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8, \
                 pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8",
                &[],
            )
            .await?;
        return Ok(Facts::PgStandby {
            version,
            receiver,
            replay_delay_s: lag.try_get(0)?,
            unreplayed_bytes: lag.try_get(1)?,
        });
    }
    let rows = c
        .query(
            &format!(
                "SELECT coalesce(application_name, ''), coalesce(host(client_addr), ''), \
                 coalesce(state, ''), coalesce(sync_state, ''), \
                 pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8, \
                 extract(epoch FROM replay_lag)::float8 FROM pg_stat_replication LIMIT {MAX_ROWS}"
            ),
            &[],
        )
        .await?;
    let senders = rows
        .iter()
        .map(|r| {
            Ok(Sender {
                name: r.try_get(0)?,
                client: r.try_get(1)?,
                state: r.try_get(2)?,
                sync_state: r.try_get(3)?,
                lag_bytes: r.try_get(4)?,
                replay_lag_s: r.try_get(5)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()?;
    Ok(Facts::PgPrimary { version, senders })
}

fn my_unread(e: mysql_async::Error) -> Unread {
    let remedy = match &e {
        // 1045: access denied; 1044: no access to the database
        mysql_async::Error::Server(s) if s.code == 1045 || s.code == 1044 => credentials_remedy(),
        mysql_async::Error::Server(_) => "check the database in --druid-metadata and the user's \
            rights (REPLICATION CLIENT, PROCESS)"
            .into(),
        _ => "check that the server is up, that HOST:PORT reaches it, and the password".into(),
    };
    Unread {
        why: e.to_string(),
        remedy,
    }
}

/// The first of `names` that the row has, as text (MySQL 8.0.22 renamed Slave/Master columns).
fn field(row: &mysql_async::Row, names: &[&str]) -> Option<String> {
    let cols = row.columns_ref();
    let i = names.iter().find_map(|n| {
        cols.iter()
            .position(|c| c.name_str().eq_ignore_ascii_case(n))
    })?;
    match row.as_ref(i)? {
        mysql_async::Value::NULL => None,
        mysql_async::Value::Bytes(b) => {
            Some(String::from_utf8_lossy(b).chars().take(512).collect())
        }
        v => Some(v.as_sql(true).trim_matches('\'').to_string()),
    }
}

fn channel(row: &mysql_async::Row) -> Channel {
    let host = field(row, &["Master_Host", "Source_Host"]).unwrap_or_default();
    let port = field(row, &["Master_Port", "Source_Port"]).unwrap_or_default();
    let errors: Vec<String> = [&["Last_IO_Error"][..], &["Last_SQL_Error"][..]]
        .iter()
        .filter_map(|n| field(row, n))
        .filter(|e| !e.is_empty())
        .collect();
    Channel {
        source: format!("{host}:{port}"),
        io_running: field(row, &["Slave_IO_Running", "Replica_IO_Running"]).unwrap_or_default(),
        sql_running: field(row, &["Slave_SQL_Running", "Replica_SQL_Running"]).unwrap_or_default(),
        lag_s: field(row, &["Seconds_Behind_Master", "Seconds_Behind_Source"])
            .and_then(|s| s.parse().ok()),
        error: errors.join("; "),
    }
}

/// Rows of a statement (its newer spelling first, the pre-8.0.22 one if refused), bounded.
async fn rows<T: Send + 'static>(
    conn: &mut mysql_async::Conn,
    spellings: [&str; 2],
    each: fn(&mysql_async::Row) -> T,
) -> Result<Vec<T>, mysql_async::Error> {
    let keep = |mut v: Vec<T>, row: mysql_async::Row| {
        if v.len() < MAX_ROWS {
            v.push(each(&row));
        }
        v
    };
    match conn.query_iter(spellings[0]).await {
        Ok(r) => r.reduce_and_drop(Vec::new(), keep).await,
        Err(mysql_async::Error::Server(_)) => {
            conn.query_iter(spellings[1])
                .await?
                .reduce_and_drop(Vec::new(), keep)
                .await
        }
        Err(e) => Err(e),
    }
}

async fn my_facts(conn: &mut mysql_async::Conn) -> Result<Facts, mysql_async::Error> {
    let (version, log_bin): (String, i64) = conn
        .query_first("SELECT @@version, @@log_bin")
        .await?
        .unwrap_or_default();
    let channels = rows(conn, ["SHOW REPLICA STATUS", "SHOW SLAVE STATUS"], channel).await?;
    if !channels.is_empty() {
        return Ok(Facts::MyReplica { version, channels });
    }
    let registered = rows(conn, ["SHOW REPLICA HOSTS", "SHOW SLAVE HOSTS"], |_| ())
        .await?
        .len();
    let dump_threads: i64 = conn
        .query_first(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
        )
        .await?
        .unwrap_or_default();
    Ok(Facts::MyPrimary {
        version,
        log_bin: log_bin != 0,
        registered,
        dump_threads: dump_threads.max(0) as usize,
    })
}

/// The two checks from what was read.
pub fn judge(t: &Target, facts: Result<Facts, Unread>) -> Vec<Check> {
    let at = t.shown();
    let facts = match facts {
        Ok(f) => f,
        Err(u) => {
            return vec![
                Check::fail(CONNECT, A, format!("cannot read {at}: {}", u.why)).remedy(u.remedy),
                Check::skip(
                    REPLICATION,
                    A,
                    "the metadata store could not be read (see metastore.connect)",
                ),
            ];
        }
    };
    let (what, version) = match &facts {
        Facts::PgPrimary { version, .. } => ("PostgreSQL primary", version),
        Facts::PgStandby { version, .. } => ("PostgreSQL standby", version),
        Facts::MyReplica { version, .. } => ("MariaDB/MySQL replica", version),
        Facts::MyPrimary { version, .. } => ("MariaDB/MySQL primary", version),
    };
    let connect = Check::pass(CONNECT, A, format!("{at} is a {what} ({version})"))
        .evidence("url", at.as_str())
        .evidence("version", version.as_str());
    let replication = match facts {
        Facts::PgPrimary { senders, .. } => pg_primary(&senders),
        Facts::PgStandby {
            receiver,
            replay_delay_s,
            unreplayed_bytes,
            ..
        } => pg_standby(receiver, replay_delay_s, unreplayed_bytes),
        Facts::MyReplica { channels, .. } => my_replica(&channels),
        Facts::MyPrimary {
            log_bin,
            registered,
            dump_threads,
            ..
        } => my_primary(log_bin, registered, dump_threads),
    };
    vec![connect, replication]
}

fn pg_primary(senders: &[Sender]) -> Check {
    let streaming: Vec<&Sender> = senders.iter().filter(|s| s.state == "streaming").collect();
    let list = |ss: &[&Sender]| -> Vec<String> {
        ss.iter()
            .map(|s| {
                let lag = s.lag_bytes.map_or("?".into(), |b| format!("{b:.0}"));
                format!(
                    "{} ({}) {} {}, {lag} bytes behind",
                    s.name, s.client, s.state, s.sync_state
                )
            })
            .collect()
    };
    let c = if streaming.is_empty() {
        let others: Vec<&Sender> = senders.iter().collect();
        let seen = if others.is_empty() {
            "none connected".to_string()
        } else {
            list(&others).join("; ")
        };
        Check::fail(
            REPLICATION,
            A,
            format!("no streaming replica in pg_stat_replication ({seen})"),
        )
        .remedy(
            "Druid cannot rebuild lost metadata: set up a streaming replica \
                (pg_basebackup -R -X stream) and keep it streaming",
        )
    } else {
        Check::pass(
            REPLICATION,
            A,
            format!(
                "{} streaming replica(s): {}",
                streaming.len(),
                list(&streaming).join("; ")
            ),
        )
    };
    let ev: Vec<Value> = senders
        .iter()
        .map(|s| {
            json!({"application_name": s.name, "client_addr": s.client, "state": s.state,
                   "sync_state": s.sync_state, "lag_bytes": s.lag_bytes,
                   "replay_lag_seconds": s.replay_lag_s})
        })
        .collect();
    c.evidence("replicas", Value::Array(ev))
        .evidence("streaming", streaming.len())
}

fn pg_standby(
    receiver: Option<(String, String)>,
    delay: Option<f64>,
    unreplayed: Option<f64>,
) -> Check {
    let c = match &receiver {
        Some((status, from)) if status == "streaming" => Check::pass(
            REPLICATION,
            A,
            format!(
                "this standby streams from {from}; replay is {} bytes behind what it received",
                unreplayed.map_or("?".into(), |b| format!("{b:.0}"))
            ),
        ),
        Some((status, from)) => Check::fail(
            REPLICATION,
            A,
            format!(
                "this standby's WAL \
            receiver is {status} (primary {from}), not streaming"
            ),
        )
        .remedy(
            "check primary_conninfo and the primary's pg_hba.conf and replication slot; \
                the standby's log says why",
        ),
        None => Check::fail(
            REPLICATION,
            A,
            "this standby runs no WAL receiver: it does not \
            follow a primary",
        )
        .remedy(
            "set primary_conninfo (or restore_command) so that the standby streams from \
                the primary",
        ),
    };
    c.evidence(
        "receiver",
        json!(receiver.map(|(s, f)| json!({"status": s, "sender": f}))),
    )
    .evidence("replay_delay_seconds", delay)
    .evidence("unreplayed_bytes", unreplayed)
}

fn my_replica(channels: &[Channel]) -> Check {
    let broken: Vec<String> = channels
        .iter()
        .filter(|c| c.io_running != "Yes" || c.sql_running != "Yes")
        .map(|c| {
            format!(
                "from {}: IO thread {}, SQL thread {}{}",
                c.source,
                c.io_running,
                c.sql_running,
                if c.error.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", c.error)
                }
            )
        })
        .collect();
    let lags: Vec<String> = channels
        .iter()
        .map(|c| {
            format!(
                "{} s behind {}",
                c.lag_s.map_or("?".into(), |l| l.to_string()),
                c.source
            )
        })
        .collect();
    let c = if broken.is_empty() {
        Check::pass(
            REPLICATION,
            A,
            format!("this replica's IO and SQL threads run; {}", lags.join(", ")),
        )
    } else {
        Check::fail(
            REPLICATION,
            A,
            format!(
                "this replica does not follow its primary: {}",
                broken.join("; ")
            ),
        )
        .remedy(
            "fix what Last_IO_Error/Last_SQL_Error say, then START REPLICA; a replica \
                that stopped holds stale metadata",
        )
    };
    let ev: Vec<Value> = channels
        .iter()
        .map(|c| {
            json!({"source": c.source, "io_running": c.io_running, "sql_running": c.sql_running,
                        "seconds_behind": c.lag_s, "error": c.error})
        })
        .collect();
    c.evidence("channels", Value::Array(ev))
}

fn my_primary(log_bin: bool, registered: usize, dumps: usize) -> Check {
    let replicas = registered.max(dumps);
    let c = if !log_bin {
        Check::fail(
            REPLICATION,
            A,
            "binary logging is off: no replica can follow this server",
        )
        .remedy("start the server with log_bin (and a server_id), then set up a replica")
    } else if replicas == 0 {
        Check::fail(
            REPLICATION,
            A,
            "no replica is connected (no Binlog Dump thread, none in \
            SHOW REPLICA HOSTS)",
        )
        .remedy(
            "Druid cannot rebuild lost metadata: set up a replica (CHANGE MASTER TO \
                ..., START REPLICA) and keep it connected",
        )
    } else {
        Check::pass(REPLICATION, A, format!("{replicas} replica(s) connected"))
    };
    c.evidence("log_bin", log_bin)
        .evidence("registered_replicas", registered)
        .evidence("binlog_dump_threads", dumps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::druid::metastore::DbKind;

    fn target(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    #[test]
    fn urls_name_engine_host_port_user_and_db_and_refuse_a_password() {
        let t = target("postgres://druid@db.example:6543/druid");
        assert_eq!(
            (t.kind, t.host.as_str(), t.port, t.user.as_str()),
            (DbKind::Postgresql, "db.example", 6543, "druid")
        );
        assert_eq!(t.db.as_deref(), Some("druid"));
        assert_eq!(t.shown(), "postgres://druid@db.example:6543/druid");
        let m = target("mariadb://lifeboat@127.0.0.1/");
        assert_eq!((m.kind, m.port, m.db.clone()), (DbKind::Mysql, 3306, None));
        let refused = Target::parse("postgres://u:hunter2@h/db").unwrap_err();
        assert!(refused.contains(PASSWORD_VAR), "{refused}");
        assert!(
            !refused.contains("hunter2"),
            "the password is never echoed: {refused}"
        );
        for bad in [
            "redis://u@h/0",
            "postgres://h/db",
            "not a url",
            "postgres://u@h/db?sslmode=require",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    fn sender(state: &str) -> Sender {
        Sender {
            name: "replica1".into(),
            client: "127.0.0.1".into(),
            state: state.into(),
            sync_state: "async".into(),
            lag_bytes: Some(0.0),
            replay_lag_s: None,
        }
    }

    fn replication(facts: Facts) -> Check {
        let mut checks = judge(&target("postgres://u@h/d"), Ok(facts));
        assert_eq!(checks[0].status, Status::Pass);
        checks.remove(1)
    }

    #[test]
    fn a_postgres_primary_needs_a_streaming_replica() {
        let v = || "15.8".to_string();
        let one = replication(Facts::PgPrimary {
            version: v(),
            senders: vec![sender("streaming")],
        });
        assert_eq!(one.status, Status::Pass);
        assert_eq!(one.evidence["replicas"][0]["lag_bytes"], 0.0);
        let none = replication(Facts::PgPrimary {
            version: v(),
            senders: vec![],
        });
        assert_eq!(none.status, Status::Fail);
        let catching_up = replication(Facts::PgPrimary {
            version: v(),
            senders: vec![sender("catchup")],
        });
        assert_eq!(catching_up.status, Status::Fail);
        assert!(
            catching_up.summary.contains("catchup"),
            "{}",
            catching_up.summary
        );
    }

    #[test]
    fn a_postgres_standby_must_stream() {
        let standby = |r: Option<(&str, &str)>| {
            replication(Facts::PgStandby {
                version: "15.8".into(),
                receiver: r.map(|(a, b)| (a.to_string(), b.to_string())),
                replay_delay_s: Some(1.5),
                unreplayed_bytes: Some(0.0),
            })
        };
        assert_eq!(
            standby(Some(("streaming", "127.0.0.1:5432"))).status,
            Status::Pass
        );
        assert_eq!(
            standby(Some(("waiting", "127.0.0.1:5432"))).status,
            Status::Fail
        );
        assert_eq!(standby(None).status, Status::Fail);
    }

    #[test]
    fn mysql_replicas_need_both_threads_and_primaries_a_replica() {
        let ch = |io: &str| Channel {
            source: "10.0.0.1:3306".into(),
            io_running: io.into(),
            sql_running: "Yes".into(),
            lag_s: Some(3),
            error: if io == "Yes" {
                String::new()
            } else {
                "error connecting to master".into()
            },
        };
        let ok = replication(Facts::MyReplica {
            version: "10.11.6-MariaDB".into(),
            channels: vec![ch("Yes")],
        });
        assert_eq!(ok.status, Status::Pass);
        assert!(ok.summary.contains("3 s behind"), "{}", ok.summary);
        let broken = replication(Facts::MyReplica {
            version: "10.11".into(),
            channels: vec![ch("Connecting")],
        });
        assert_eq!(broken.status, Status::Fail);
        assert!(
            broken.summary.contains("error connecting"),
            "{}",
            broken.summary
        );
        let primary = |log_bin, registered, dumps| {
            replication(Facts::MyPrimary {
                version: "10.11".into(),
                log_bin,
                registered,
                dump_threads: dumps,
            })
            .status
        };
        assert_eq!(primary(true, 0, 1), Status::Pass);
        assert_eq!(primary(true, 0, 0), Status::Fail);
        assert_eq!(primary(false, 1, 1), Status::Fail);
    }

    #[test]
    fn an_unreadable_store_fails_with_its_remedy_and_skips_replication() {
        let u = Unread {
            why: "password authentication failed".into(),
            remedy: credentials_remedy(),
        };
        let checks = judge(&target("postgres://u@h/d"), Err(u));
        assert_eq!(
            (checks[0].status, checks[1].status),
            (Status::Fail, Status::Skip)
        );
        assert!(checks[0].remedy.as_deref().unwrap().contains(PASSWORD_VAR));
    }
}
