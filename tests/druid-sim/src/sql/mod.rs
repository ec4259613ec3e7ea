//! The metadata store in a real PostgreSQL or MySQL/MariaDB, in Druid's own `druid_*` tables with
//! the DDL of its SQLMetadataConnector, so that two processes on one database share one state and
//! what lifeboat reads from the database is what Druid would have written.
//!
//! Every read goes to the database (no cache: another process may have written since). The
//! [`MetadataStore`] trait is synchronous: each call blocks on the runtime handle given at
//! open, so it must run off the runtime's workers (the server calls it from `spawn_blocking`).

mod mysql;
mod postgres;

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use tokio::runtime::Handle;

use crate::store::{AuditEntry, AuditInfo, MetadataStore, SupervisorRow, now_iso};

/// A statement parameter: VARCHAR text or a payload column's bytes.
pub(crate) enum Param {
    Text(String),
    Bytes(Vec<u8>),
}

/// A statement and its parameters.
pub(crate) type Stmt = (&'static str, Vec<Param>);

/// A result row, each column as bytes (`None` for NULL).
pub(crate) type Row = Vec<Option<Vec<u8>>>;

/// What the store needs of a database driver. SQL uses `?` placeholders.
pub(crate) trait Db: Send {
    fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>>;
    /// Runs the statements in one transaction: all of them or none.
    fn transaction(&mut self, stmts: &[Stmt]) -> Result<()>;
    /// A statement without parameters or results (DDL).
    fn execute(&mut self, sql: &str) -> Result<()>;
}

/// How the two databases spell Druid's column types.
pub(crate) struct Dialect {
    /// `<P>`: the payload column.
    payload: &'static str,
    /// `<S>`: the auto-increment primary key.
    serial: &'static str,
    /// After a `dataSource` column's type (MySQL compares data source names as bytes).
    datasource: &'static str,
    /// After `CREATE TABLE (...)`.
    table_options: &'static str,
    /// The column `end`, a reserved word, quoted as the database quotes names.
    end_column: &'static str,
    /// Insert or replace a `druid_config` row (name, payload), as Druid's connector does.
    upsert_config: &'static str,
    /// Taken around the DDL: `CREATE TABLE IF NOT EXISTS` of two processes starting at once on
    /// a new database races (PostgreSQL: a duplicate key in pg_type).
    ddl_lock: &'static str,
    ddl_unlock: &'static str,
}

/// `--metadata-url`: `postgres://` / `postgresql://` or `mysql://`. `handle` drives the driver.
pub fn open(url: &str, handle: Handle) -> Result<Box<dyn MetadataStore>> {
    let (db, dialect): (Box<dyn Db>, _) = match url.split_once("://").map(|(s, _)| s) {
        Some("postgres" | "postgresql") => (
            Box::new(postgres::Postgres::connect(url, handle)?),
            &postgres::DIALECT,
        ),
        Some("mysql") => (
            Box::new(mysql::Mysql::connect(url, handle)?),
            &mysql::DIALECT,
        ),
        _ => bail!("--metadata-url must start with postgres:// or mysql://"),
    };
    let mut store = SqlStore { db, dialect };
    store.create_tables()?;
    Ok(Box::new(store))
}

/// Druid's tables over one database.
pub struct SqlStore {
    db: Box<dyn Db>,
    dialect: &'static Dialect,
}

impl SqlStore {
    /// `druid.metadata.storage.connector.createTables=true`: the tables this simulator uses, with
    /// Druid's columns and indexes, when missing.
    fn create_tables(&mut self) -> Result<()> {
        let d = self.dialect;
        let (p, s, ds, opts) = (d.payload, d.serial, d.datasource, d.table_options);
        let end = d.end_column;
        let ddl = [
            // Druid's Coordinator creates it whether or not it ever holds a segment; the simulator
            // serves no segments, but a store it made looks like Druid's.
            format!(
                "CREATE TABLE IF NOT EXISTS druid_segments (id VARCHAR(255) NOT NULL, \
                 dataSource VARCHAR(255){ds} NOT NULL, created_date VARCHAR(255) NOT NULL, \
                 start VARCHAR(255) NOT NULL, {end} VARCHAR(255) NOT NULL, partitioned BOOLEAN NOT NULL, \
                 version VARCHAR(255) NOT NULL, used BOOLEAN NOT NULL, payload {p} NOT NULL, \
                 used_status_last_updated VARCHAR(255) NOT NULL, schema_fingerprint VARCHAR(255), \
                 num_rows BIGINT, PRIMARY KEY (id)){opts}"
            ),
            "CREATE INDEX IF NOT EXISTS idx_druid_segments_used ON druid_segments(used)".into(),
            format!(
                "CREATE INDEX IF NOT EXISTS idx_druid_segments_datasource_used_end_start \
                 ON druid_segments(dataSource, used, {end}, start)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_rules (id VARCHAR(255) NOT NULL, \
                 dataSource VARCHAR(255){ds} NOT NULL, version VARCHAR(255) NOT NULL, \
                 payload {p} NOT NULL, PRIMARY KEY (id)){opts}"
            ),
            "CREATE INDEX IF NOT EXISTS idx_druid_rules_datasource ON druid_rules(dataSource)"
                .into(),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_config (name VARCHAR(255) NOT NULL, \
                 payload {p} NOT NULL, PRIMARY KEY (name)){opts}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_dataSource (dataSource VARCHAR(255){ds} NOT NULL, \
                 created_date VARCHAR(255) NOT NULL, commit_metadata_payload {p} NOT NULL, \
                 commit_metadata_sha1 VARCHAR(255) NOT NULL, PRIMARY KEY (dataSource)){opts}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_supervisors (id {s} NOT NULL, \
                 spec_id VARCHAR(255) NOT NULL, created_date VARCHAR(255) NOT NULL, \
                 payload {p} NOT NULL, PRIMARY KEY (id)){opts}"
            ),
            "CREATE INDEX IF NOT EXISTS idx_druid_supervisors_spec_id ON druid_supervisors(spec_id)"
                .into(),
            format!(
                "CREATE TABLE IF NOT EXISTS druid_audit (id {s} NOT NULL, \
                 audit_key VARCHAR(255) NOT NULL, type VARCHAR(255) NOT NULL, \
                 author VARCHAR(255) NOT NULL, comment VARCHAR(2048) NOT NULL, \
                 created_date VARCHAR(255) NOT NULL, payload {p} NOT NULL, PRIMARY KEY (id)){opts}"
            ),
            "CREATE INDEX IF NOT EXISTS idx_druid_audit_key_time ON druid_audit(audit_key, created_date)"
                .into(),
            "CREATE INDEX IF NOT EXISTS idx_druid_audit_type_time ON druid_audit(type, created_date)"
                .into(),
            "CREATE INDEX IF NOT EXISTS idx_druid_audit_audit_time ON druid_audit(created_date)"
                .into(),
        ];
        self.db
            .execute(d.ddl_lock)
            .context("locking out other processes creating Druid's tables")?;
        let created = ddl.iter().try_for_each(|stmt| {
            self.db
                .execute(stmt)
                .with_context(|| format!("creating Druid's tables: {stmt}"))
        });
        let unlocked = self.db.execute(d.ddl_unlock);
        created.and(unlocked)
    }

    /// A `druid_rules` row: Druid's version is the write's time, and its id `<ds>_<version>`.
    fn insert_rules(
        &mut self,
        datasource: &str,
        rules: &Value,
        audit: Option<&AuditInfo>,
    ) -> Result<()> {
        let version = self.next_rules_version(datasource)?;
        let payload = rules.to_string();
        let mut stmts = vec![(
            "INSERT INTO druid_rules (id, dataSource, version, payload) VALUES (?, ?, ?, ?)",
            vec![
                text(&format!("{datasource}_{version}")),
                text(datasource),
                text(&version),
                Param::Bytes(payload.clone().into_bytes()),
            ],
        )];
        if let Some(info) = audit {
            stmts.push(audit_insert(datasource, "rules", &payload, info));
        }
        self.db.transaction(&stmts)
    }

    /// Now, or just after the newest version when two writes land in one millisecond: the
    /// version names the newest row and is part of the primary key.
    fn next_rules_version(&self, datasource: &str) -> Result<String> {
        let rows = self.db.query(
            "SELECT MAX(version) FROM druid_rules WHERE dataSource = ?",
            &[text(datasource)],
        )?;
        let newest = rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
            .and_then(|b| String::from_utf8(b).ok());
        Ok(later_than(newest.as_deref(), Utc::now()))
    }
}

fn text(s: &str) -> Param {
    Param::Text(s.to_string())
}

/// `now` as Druid writes it, or one millisecond after `newest` when that is not earlier.
fn later_than(newest: Option<&str>, now: DateTime<Utc>) -> String {
    let prev = newest
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    let at = match prev {
        Some(p) if p >= now => p + Duration::milliseconds(1),
        _ => now,
    };
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Druid's SQLAuditManager keeps the whole serialised AuditEntry (with the IP) as the payload.
fn audit_insert(key: &str, kind: &str, payload: &str, info: &AuditInfo) -> Stmt {
    let e = AuditEntry {
        key: key.to_string(),
        kind: kind.to_string(),
        info: info.clone(),
        created: now_iso(),
        payload: payload.to_string(),
    };
    (
        "INSERT INTO druid_audit (audit_key, type, author, comment, created_date, payload) \
         VALUES (?, ?, ?, ?, ?, ?)",
        vec![
            text(&e.key),
            text(&e.kind),
            text(&e.info.author),
            text(&e.info.comment),
            text(&e.created),
            Param::Bytes(e.to_json().to_string().into_bytes()),
        ],
    )
}

fn utf8(cell: Option<Vec<u8>>) -> Result<String> {
    String::from_utf8(cell.unwrap_or_default()).context("a text column that is not UTF-8")
}

fn json_of(cell: Option<Vec<u8>>) -> Result<Value> {
    serde_json::from_slice(&cell.unwrap_or_default()).context("a payload that is not JSON")
}

impl MetadataStore for SqlStore {
    fn rules(&self) -> Result<BTreeMap<String, Value>> {
        // SQLMetadataRuleManager's poll: each data source's row of the highest version
        let rows = self.db.query(
            "SELECT r.dataSource, r.payload FROM druid_rules r INNER JOIN \
             (SELECT dataSource, MAX(version) AS version FROM druid_rules GROUP BY dataSource) ds \
             ON r.dataSource = ds.dataSource AND r.version = ds.version",
            &[],
        )?;
        rows.into_iter()
            .map(|r| {
                let mut cells = r.into_iter();
                Ok((
                    utf8(cells.next().flatten())?,
                    json_of(cells.next().flatten())?,
                ))
            })
            .collect()
    }

    fn set_rules(&mut self, datasource: &str, rules: Value, audit: &AuditInfo) -> Result<()> {
        self.insert_rules(datasource, &rules, Some(audit))
    }

    fn init_rules(&mut self, datasource: &str, rules: Value) -> Result<()> {
        self.insert_rules(datasource, &rules, None)
    }

    fn config(&self, name: &str) -> Result<Option<Value>> {
        let rows = self.db.query(
            "SELECT payload FROM druid_config WHERE name = ?",
            &[text(name)],
        )?;
        rows.into_iter()
            .next()
            .map(|r| json_of(r.into_iter().next().flatten()))
            .transpose()
    }

    fn set_config(&mut self, name: &str, payload: Value, audit: &AuditInfo) -> Result<()> {
        let payload = payload.to_string();
        let upsert = (
            self.dialect.upsert_config,
            vec![text(name), Param::Bytes(payload.clone().into_bytes())],
        );
        self.db
            .transaction(&[upsert, audit_insert(name, name, &payload, audit)])
    }

    fn audit(&self, kind: &str, key: Option<&str>) -> Result<Vec<AuditEntry>> {
        let rows = match key {
            Some(k) => self.db.query(
                "SELECT payload FROM druid_audit WHERE type = ? AND audit_key = ? ORDER BY id",
                &[text(kind), text(k)],
            )?,
            None => self.db.query(
                "SELECT payload FROM druid_audit WHERE type = ? ORDER BY id",
                &[text(kind)],
            )?,
        };
        rows.into_iter()
            .map(|r| {
                Ok(AuditEntry::from_json(&json_of(
                    r.into_iter().next().flatten(),
                )?))
            })
            .collect()
    }

    fn insert_supervisor(&mut self, spec_id: &str, payload: Value) -> Result<()> {
        self.db.transaction(&[(
            "INSERT INTO druid_supervisors (spec_id, created_date, payload) VALUES (?, ?, ?)",
            vec![
                text(spec_id),
                text(&now_iso()),
                Param::Bytes(payload.to_string().into_bytes()),
            ],
        )])
    }

    fn supervisor_rows(&self, spec_id: Option<&str>) -> Result<Vec<SupervisorRow>> {
        let select = "SELECT spec_id, created_date, payload FROM druid_supervisors";
        let rows = match spec_id {
            Some(id) => self.db.query(
                &format!("{select} WHERE spec_id = ? ORDER BY id"),
                &[text(id)],
            )?,
            None => self.db.query(&format!("{select} ORDER BY id"), &[])?,
        };
        rows.into_iter()
            .map(|r| {
                let mut cells = r.into_iter();
                Ok(SupervisorRow {
                    spec_id: utf8(cells.next().flatten())?,
                    created: utf8(cells.next().flatten())?,
                    payload: json_of(cells.next().flatten())?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rules_version_never_repeats_within_a_millisecond() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T01:00:00.000Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(later_than(None, now), "2026-12-02T01:00:00.000Z");
        assert_eq!(
            later_than(Some("2026-12-02T01:00:00.000Z"), now),
            "2026-12-02T01:00:00.001Z"
        );
        assert_eq!(
            later_than(Some("2026-12-01T23:00:00.000Z"), now),
            "2026-12-02T01:00:00.000Z"
        );
    }
}
