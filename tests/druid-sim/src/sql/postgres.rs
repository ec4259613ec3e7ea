//! PostgreSQL through tokio-postgres: one connection, driven by a task on the server's runtime.

use anyhow::{Context, Result};
use tokio::runtime::Handle;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls};

use super::{Db, Dialect, Param, Row, Stmt};

/// PostgreSQLConnector's types: BYTEA payloads, BIGSERIAL ids.
pub(crate) const DIALECT: Dialect = Dialect {
    payload: "BYTEA",
    serial: "BIGSERIAL",
    datasource: "",
    end_column: "\"end\"",
    table_options: "",
    upsert_config: "INSERT INTO druid_config (name, payload) VALUES (?, ?) \
                    ON CONFLICT (name) DO UPDATE SET payload = EXCLUDED.payload",
    // Session-level, released when the connection closes too; the key is arbitrary.
    ddl_lock: "SELECT pg_advisory_lock(4711002)",
    ddl_unlock: "SELECT pg_advisory_unlock(4711002)",
};

pub(crate) struct Postgres {
    client: Client,
    handle: Handle,
}

impl Postgres {
    pub(crate) fn connect(url: &str, handle: Handle) -> Result<Postgres> {
        let config: Config = url.parse().context("parsing the PostgreSQL URL")?;
        let (client, connection) = handle
            .block_on(config.connect(NoTls))
            .with_context(|| format!("connecting to PostgreSQL {}", redacted(&config)))?;
        handle.spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("druid-sim: PostgreSQL connection ended: {e}");
            }
        });
        Ok(Postgres { client, handle })
    }
}

/// Host, port and database: never the password.
fn redacted(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "?".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or(""))
}

/// `?` placeholders as PostgreSQL's `$1, $2, ...` (no statement here has a literal `?`).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
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

fn values(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| match p {
            Param::Text(s) => s as &(dyn ToSql + Sync),
            Param::Bytes(b) => b as &(dyn ToSql + Sync),
        })
        .collect()
}

fn cells(row: &tokio_postgres::Row) -> Result<Row> {
    (0..row.len())
        .map(|i| {
            Ok(if row.columns()[i].type_() == &Type::BYTEA {
                row.try_get::<_, Option<Vec<u8>>>(i)?
            } else {
                row.try_get::<_, Option<String>>(i)?.map(String::into_bytes)
            })
        })
        .collect()
}

impl Db for Postgres {
    fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>> {
        let rows = self
            .handle
            .block_on(self.client.query(&numbered(sql), &values(params)))
            .context("PostgreSQL query")?;
        rows.iter().map(cells).collect()
    }

    fn transaction(&mut self, stmts: &[Stmt]) -> Result<()> {
        let client = &mut self.client;
        self.handle
            .block_on(async {
                let tx = client.transaction().await?;
                for (sql, params) in stmts {
                    tx.execute(&numbered(sql), &values(params)).await?;
                }
                tx.commit().await
            })
            .context("PostgreSQL transaction")
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        self.handle
            .block_on(self.client.batch_execute(sql))
            .context("PostgreSQL statement")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_and_the_password_is_never_shown() {
        assert_eq!(numbered("a = ? AND b = ?"), "a = $1 AND b = $2");
        let c: Config = "postgres://u:s3cret@127.0.0.1:5433/druid".parse().unwrap();
        assert_eq!(redacted(&c), "127.0.0.1:5433/druid");
    }
}
