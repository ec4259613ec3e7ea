//! MySQL and MariaDB through mysql_async: a pool, so that reads need no exclusive connection.

use anyhow::{Context, Result};
use mysql_async::prelude::Queryable;
use mysql_async::{Opts, Params, Pool, TxOpts, Value};
use tokio::runtime::Handle;

use super::{Db, Dialect, Param, Row, Stmt};

/// MySQLConnector's types: LONGBLOB payloads, BIGINT(20) AUTO_INCREMENT ids, data source names
/// compared as bytes.
pub(crate) const DIALECT: Dialect = Dialect {
    payload: "LONGBLOB",
    serial: "BIGINT(20) AUTO_INCREMENT",
    datasource: " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
    end_column: "`end`",
    table_options: " DEFAULT CHARACTER SET utf8mb4",
    upsert_config: "INSERT INTO druid_config (name, payload) VALUES (?, ?) \
                    ON DUPLICATE KEY UPDATE payload = VALUES(payload)",
    ddl_lock: "SELECT GET_LOCK('druid_sim_create_tables', 60)",
    ddl_unlock: "SELECT RELEASE_LOCK('druid_sim_create_tables')",
};

pub(crate) struct Mysql {
    pool: Pool,
    handle: Handle,
}

impl Mysql {
    pub(crate) fn connect(url: &str, handle: Handle) -> Result<Mysql> {
        // the URL's own error text would repeat the URL, password and all
        let opts = Opts::from_url(url).map_err(|_| anyhow::anyhow!("a malformed MySQL URL"))?;
        let where_ = format!(
            "{}:{}/{}",
            opts.ip_or_hostname(),
            opts.tcp_port(),
            opts.db_name().unwrap_or("")
        );
        // the pool's recycler is a task: it must be made inside the runtime
        let pool = {
            let _in_runtime = handle.enter();
            Pool::new(opts)
        };
        let db = Mysql { pool, handle };
        db.query("SELECT 1", &[])
            .with_context(|| format!("connecting to MySQL {where_}"))?;
        Ok(db)
    }
}

fn params(params: &[Param]) -> Params {
    if params.is_empty() {
        return Params::Empty;
    }
    Params::Positional(
        params
            .iter()
            .map(|p| match p {
                Param::Text(s) => Value::Bytes(s.clone().into_bytes()),
                Param::Bytes(b) => Value::Bytes(b.clone()),
            })
            .collect(),
    )
}

fn cells(row: mysql_async::Row) -> Row {
    row.unwrap()
        .into_iter()
        .map(|v| match v {
            Value::NULL => None,
            Value::Bytes(b) => Some(b),
            other => Some(other.as_sql(true).into_bytes()),
        })
        .collect()
}

impl Db for Mysql {
    fn query(&self, sql: &str, p: &[Param]) -> Result<Vec<Row>> {
        let rows: Vec<mysql_async::Row> = self
            .handle
            .block_on(async {
                let mut conn = self.pool.get_conn().await?;
                conn.exec(sql, params(p)).await
            })
            .context("MySQL query")?;
        Ok(rows.into_iter().map(cells).collect())
    }

    fn transaction(&mut self, stmts: &[Stmt]) -> Result<()> {
        self.handle
            .block_on(async {
                let mut tx = self.pool.start_transaction(TxOpts::default()).await?;
                for (sql, p) in stmts {
                    tx.exec_drop(*sql, params(p)).await?;
                }
                tx.commit().await
            })
            .context("MySQL transaction")
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        self.handle
            .block_on(async {
                let mut conn = self.pool.get_conn().await?;
                conn.query_drop(sql).await
            })
            .context("MySQL statement")
    }
}
