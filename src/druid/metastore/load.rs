//! The restore of a dump into an EMPTY metadata store: every check first (emptiness of every
//! `druid_*` table, privileges, the tables' columns), missing tables created with Druid's DDL,
//! then every row loaded in ONE transaction (`COPY FROM STDIN` on PostgreSQL, batched prepared
//! INSERTs on MySQL), so a failure or a kill leaves the database as it was. On the way: NULL
//! `used_status_last_updated` backfilled with the restore time, loadSpecs rewritten by the map,
//! supervisors suspended (a new version row), sequences set past the restored ids.
//!
//! On PostgreSQL the missing tables are created inside the transaction (its DDL is
//! transactional), so a failure leaves nothing behind. On MySQL DDL commits implicitly: the
//! tables are created before the transaction, and a failure leaves them, empty (a note says so).

mod read;
mod sql;
mod target;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::SinkExt;
use mysql_async::prelude::Queryable;

use super::csv::{CsvWriter, Field};
use super::dump::TableDump;
use super::tables;
use super::{Db, DbKind, MetaError};
use crate::druid::loadspec::DeepStorageMap;
use crate::progress::Progress;
use read::{Cell, Reader, Tally, Verdict};
use target::{TargetColumn, my_err, pg_err};

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The restore's time: the backfill value of `used_status_last_updated` and of new rows.
    pub now: DateTime<Utc>,
    pub resume_supervisors: bool,
    pub map: DeepStorageMap,
    /// Check and count only; nothing is written.
    pub dry_run: bool,
}

/// What was (or, in a dry run, would be) loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadReport {
    /// (table, rows) in load order.
    pub tables: Vec<(String, u64)>,
    /// Tables created with Druid's DDL.
    pub created: Vec<String>,
    pub backfilled_used_status: u64,
    pub rewritten_load_specs: u64,
    /// Supervisors (spec ids) given a suspended version.
    pub suspended_supervisors: Vec<String>,
    /// Datasources whose stream offsets were restored (to check before supervisors resume).
    pub datasource_offsets: Vec<String>,
}

/// PostgreSQL: COPY data is sent in chunks of about this size.
const PG_CHUNK: usize = 1 << 20;
/// MySQL: an INSERT carries at most this many rows...
const MY_BATCH_ROWS: usize = 500;
/// ... and about this many bytes of values (less when `max_allowed_packet` is smaller).
const MY_BATCH_BYTES: usize = 4 << 20;
/// Record count between two looks at the cancellation token where nothing else is awaited.
const CANCEL_EVERY: u64 = 1024;

use sql::USED_STATUS;

/// A table of the dump, checked: its canonical name and file.
#[derive(Debug, Clone)]
struct Source<'a> {
    dump: &'a TableDump,
    canonical: &'static str,
}

/// The dump's tables in load order ([`tables::DURABLE`]), each checked: a table Druid's backups
/// hold, once; a plain file name; column names that can be quoted, unique in any case.
fn sources(tables: &[TableDump]) -> Result<Vec<Source<'_>>, MetaError> {
    let mut out: Vec<Source<'_>> = Vec::new();
    for t in tables {
        let Some(canonical) = tables::DURABLE
            .iter()
            .find(|d| d.eq_ignore_ascii_case(&t.name))
        else {
            return Err(MetaError::Corrupt(format!(
                "the backup lists a table {:?}, which is not one a Druid metadata backup holds ({}): the manifest is damaged or not lifeboat's",
                t.name,
                tables::DURABLE.join(", ")
            )));
        };
        if out.iter().any(|s| s.canonical == *canonical) {
            return Err(MetaError::Corrupt(format!(
                "the backup lists the table {canonical} twice: the manifest is damaged"
            )));
        }
        let plain = !t.file.is_empty()
            && t.file != "."
            && t.file != ".."
            && !t.file.contains(['/', '\\', '\0']);
        if !plain {
            return Err(MetaError::Corrupt(format!(
                "the file of table {canonical} is {:?}, not a plain file name: the manifest is damaged",
                t.file
            )));
        }
        if t.columns.is_empty() || t.columns.len() > super::csv::MAX_FIELDS {
            return Err(MetaError::Corrupt(format!(
                "table {canonical} is recorded with {} columns (1 to {} expected): the manifest is damaged",
                t.columns.len(),
                super::csv::MAX_FIELDS
            )));
        }
        let mut seen = HashSet::new();
        for c in &t.columns {
            let ok = !c.name.is_empty()
                && c.name.len() <= 255
                && !c.name.chars().any(|ch| ch.is_control());
            if !ok || !seen.insert(c.name.to_ascii_lowercase()) {
                return Err(MetaError::Corrupt(format!(
                    "table {canonical} is recorded with a column {:?} that is empty, too long, has control characters or comes twice: the manifest is damaged",
                    c.name
                )));
            }
        }
        out.push(Source { dump: t, canonical });
    }
    out.sort_by_key(|s| tables::DURABLE.iter().position(|d| d == &s.canonical));
    Ok(out)
}

/// The name `wanted` has among `names`: the same, else the only one equal in any case.
fn find_name<'n>(names: &'n [String], wanted: &str) -> Option<&'n str> {
    if let Some(n) = names.iter().find(|n| *n == wanted) {
        return Some(n);
    }
    let mut ci = names.iter().filter(|n| n.eq_ignore_ascii_case(wanted));
    match (ci.next(), ci.next()) {
        (Some(n), None) => Some(n),
        _ => None,
    }
}

fn find_column<'c>(cols: &'c [TargetColumn], wanted: &str) -> Option<&'c TargetColumn> {
    cols.iter()
        .find(|c| c.name == wanted)
        .or_else(|| cols.iter().find(|c| c.name.eq_ignore_ascii_case(wanted)))
}

/// How a dump table's columns land in the target's table.
#[derive(Debug, Clone)]
struct Mapping {
    /// The target's table name.
    table: String,
    /// The target's names of the dump's columns, in the dump's order, then the backfilled
    /// `used_status_last_updated` when the dump lacks it and the target has it.
    columns: Vec<String>,
    /// The dump lacks `used_status_last_updated` and the target needs it.
    add_used_status: bool,
}

/// Maps the dump's columns onto the target's, or refuses: a column the target lacks (a newer
/// Druid made the backup) or one the target requires that the dump lacks (an older one did).
fn map_columns(
    source: &Source<'_>,
    table: &str,
    cols: &[TargetColumn],
) -> Result<Mapping, MetaError> {
    let canonical = source.canonical;
    let mut columns = Vec::with_capacity(source.dump.columns.len() + 1);
    for c in &source.dump.columns {
        let Some(t) = find_column(cols, &c.name) else {
            return Err(MetaError::Refused(format!(
                "the target's {canonical} has no column {} that the backup has: the backup comes from another Druid version than the one that created the target's tables; give an empty database without Druid's tables (lifeboat creates them), or create them with the backup's Druid version",
                c.name
            )));
        };
        columns.push(t.name.clone());
    }
    let has = |name: &str| {
        source
            .dump
            .columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(name))
    };
    let mut add_used_status = false;
    for t in cols {
        if has(&t.name) {
            continue;
        }
        if canonical == "druid_segments" && t.name.eq_ignore_ascii_case(USED_STATUS) {
            add_used_status = true;
            columns.push(t.name.clone());
        } else if t.required {
            return Err(MetaError::Refused(format!(
                "the target's {canonical} requires a column {} that the backup lacks: the backup comes from an older Druid than the one that created the target's tables; give an empty database without Druid's tables (lifeboat creates them)",
                t.name
            )));
        }
    }
    Ok(Mapping {
        table: table.to_string(),
        columns,
        add_used_status,
    })
}

/// The target's `druid_*` tables with their canonical names (Druid's, when they are Druid's) in
/// the order a refusal names them: the dump's load order, the transient ones, then the rest.
fn ordered_canonical(names: &[String]) -> Vec<(String, String)> {
    let known = tables::DURABLE.iter().chain(tables::TRANSIENT.iter());
    let mut out: Vec<(String, String)> = Vec::new();
    for k in known {
        if let Some(n) = find_name(names, k) {
            out.push((n.to_string(), k.to_string()));
        }
    }
    for n in names {
        if !out.iter().any(|(have, _)| have == n) {
            out.push((n.clone(), n.clone()));
        }
    }
    out
}

fn not_empty(database: &str, with_rows: &[(String, u64)]) -> Option<MetaError> {
    let (table, rows) = with_rows.first()?;
    let more = match with_rows.len() - 1 {
        0 => String::new(),
        1 => " (and 1 other table has rows)".to_string(),
        n => format!(" (and {n} other tables have rows)"),
    };
    Some(MetaError::NotEmpty {
        url: database.to_string(),
        table: table.clone(),
        rows: *rows,
        more,
    })
}

/// Checks that the target can take the dump: connection, privileges, every `druid_*` table empty
/// ([`MetaError::NotEmpty`] names the first with rows), known columns.
///
/// [`MetaError::NotEmpty`]'s `url` is the database's name as the server reports it (the caller
/// may put the URL it connected to in its place).
pub async fn check_target(db: &mut Db, tables: &[TableDump]) -> Result<(), MetaError> {
    let sources = sources(tables)?;
    match db {
        Db::Pg(client) => {
            let client: &tokio_postgres::Client = client;
            let (database, user) = target::pg_database(client).await?;
            let names = target::pg_druid_tables(client).await?;
            let mut with_rows = Vec::new();
            for (name, canonical) in ordered_canonical(&names) {
                let rows = target::pg_count(client, &name).await?;
                if rows > 0 {
                    with_rows.push((canonical, rows));
                }
            }
            if let Some(e) = not_empty(&database, &with_rows) {
                return Err(e);
            }
            let mut missing = false;
            for s in &sources {
                match find_name(&names, s.canonical) {
                    Some(name) => {
                        let cols = target::pg_columns(client, name).await?;
                        map_columns(s, name, &cols)?;
                        if !target::pg_may_insert(client, name).await? {
                            return Err(MetaError::Refused(format!(
                                "the role {user} may not INSERT into {} of database {database}: GRANT INSERT ON {} TO {user}, or connect as the tables' owner",
                                s.canonical,
                                tables::pg_ident(name)
                            )));
                        }
                    }
                    None => missing = true,
                }
            }
            if missing && !target::pg_may_create(client).await? {
                return Err(MetaError::Refused(format!(
                    "the role {user} may not create Druid's missing tables in the current schema of database {database}: GRANT CREATE ON SCHEMA to it, or connect as the schema's owner"
                )));
            }
            Ok(())
        }
        Db::My(conn) => {
            let (database, user) = target::my_database(conn).await?;
            let Some(database) = database else {
                return Err(MetaError::Refused(
                    "no database is selected on the MySQL target: name it in --druid-metadata (mysql://user@host:3306/druid)".into(),
                ));
            };
            let names = target::my_druid_tables(conn).await?;
            let mut with_rows = Vec::new();
            for (name, canonical) in ordered_canonical(&names) {
                let rows = target::my_count(conn, &name).await?;
                if rows > 0 {
                    with_rows.push((canonical, rows));
                }
            }
            if let Some(e) = not_empty(&database, &with_rows) {
                return Err(e);
            }
            let mut missing = false;
            for s in &sources {
                match find_name(&names, s.canonical) {
                    Some(name) => {
                        let cols = target::my_columns(conn, name).await?;
                        map_columns(s, name, &cols)?;
                    }
                    None => missing = true,
                }
            }
            let grants = target::my_grants(conn).await?;
            if let target::Grants::Missing(privilege) =
                target::decide_grants(&grants, &database, missing)
            {
                return Err(MetaError::Refused(format!(
                    "the user {user} lacks the {privilege} privilege on database {database}: GRANT INSERT, CREATE, INDEX ON `{database}`.* TO it, or connect as a user that has them"
                )));
            }
            Ok(())
        }
    }
}

/// Loads the table files of `dir` (already checked against the manifest's digests) described by
/// `tables`, after [`check_target`] (which it runs again: the checks are cheap and a load must
/// never go into a store that filled up in between).
pub async fn load(
    db: &mut Db,
    dir: &Path,
    tables: &[TableDump],
    options: &LoadOptions,
    progress: &dyn Progress,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<LoadReport, MetaError> {
    check_target(db, tables).await?;
    let sources = sources(tables)?;
    let total: u64 = sources.iter().map(|s| s.dump.bytes).sum();
    progress.phase("load metadata", Some(total));
    let mut job = Job {
        dir: dir.to_path_buf(),
        options,
        progress,
        cancel,
        now: sql::druid_time(&options.now),
        report: LoadReport::default(),
        tally: Tally::default(),
    };
    let result = match db {
        Db::Pg(client) => job.postgres(client, &sources).await,
        Db::My(conn) => job.mysql(conn, &sources).await,
    };
    progress.finish();
    result?;
    Ok(job.report)
}

struct Job<'a> {
    dir: PathBuf,
    options: &'a LoadOptions,
    progress: &'a dyn Progress,
    cancel: &'a tokio_util::sync::CancellationToken,
    now: String,
    report: LoadReport,
    tally: Tally,
}

impl Job<'_> {
    fn interrupted(&self) -> Result<(), MetaError> {
        if self.cancel.is_cancelled() {
            Err(MetaError::Interrupted)
        } else {
            Ok(())
        }
    }

    fn reader(&self, source: &Source<'_>, add_used_status: bool) -> Result<Reader, MetaError> {
        Reader::open(
            &self.dir.join(&source.dump.file),
            source.dump,
            source.canonical,
            add_used_status,
            &self.now,
            &self.options.map,
            self.options.resume_supervisors,
        )
    }

    /// What the dump's tables need from DDL: statements per missing table.
    fn ddl_of(kind: DbKind, source: &Source<'_>) -> Vec<String> {
        tables::ddl(kind, source.canonical).unwrap_or_else(|| {
            vec![tables::create_from_columns(
                kind,
                source.canonical,
                &source.dump.columns,
            )]
        })
    }

    /// A dry run: every file read and checked, nothing written.
    fn dry(
        &mut self,
        kind: DbKind,
        sources: &[Source<'_>],
        names: &[String],
    ) -> Result<(), MetaError> {
        for s in sources {
            self.interrupted()?;
            let add_used_status = s.canonical == "druid_segments"
                && !s
                    .dump
                    .columns
                    .iter()
                    .any(|c| c.name.eq_ignore_ascii_case(USED_STATUS))
                && match find_name(names, s.canonical) {
                    Some(_) => false, // checked by check_target: the target does not require it
                    None => Self::ddl_of(kind, s)
                        .iter()
                        .any(|d| d.to_ascii_lowercase().contains(USED_STATUS)),
                };
            if find_name(names, s.canonical).is_none() {
                self.report.created.push(s.canonical.to_string());
            }
            let mut reader = self.reader(s, add_used_status)?;
            while reader.next(&mut self.tally, self.progress)?.is_some() {
                if reader.records() % CANCEL_EVERY == 0 {
                    self.interrupted()?;
                }
            }
            self.report
                .tables
                .push((s.canonical.to_string(), reader.records()));
        }
        self.finish_tally();
        for (spec, _) in self.tally.to_suspend() {
            self.report.suspended_supervisors.push(spec);
        }
        Ok(())
    }

    /// Moves the tally's counts into the report, with notes for what could not be judged.
    fn finish_tally(&mut self) {
        self.report.backfilled_used_status = self.tally.backfilled;
        self.report.rewritten_load_specs = self.tally.rewritten;
        self.report.datasource_offsets = std::mem::take(&mut self.tally.offsets);
        if self.tally.offsets_dropped > 0 {
            self.progress.note(&format!(
                "{} more datasources with stream offsets are not listed",
                self.tally.offsets_dropped
            ));
        }
        if self.tally.unmapped > read::MAX_UNMAPPED_NOTES {
            self.progress.note(&format!(
                "{} segments in all keep their loadSpec, since their payload cannot be read",
                self.tally.unmapped
            ));
        }
        for (spec, verdict) in &self.tally.supervisors {
            if let Verdict::Unreadable(why) = &verdict.1 {
                self.progress.note(&format!(
                    "supervisor {spec}: its newest version cannot be read ({why}), so it was not suspended; Druid cannot run it either"
                ));
            }
        }
    }

    async fn postgres(
        &mut self,
        client: &mut tokio_postgres::Client,
        sources: &[Source<'_>],
    ) -> Result<(), MetaError> {
        if self.options.dry_run {
            let names = target::pg_druid_tables(&*client).await?;
            return self.dry(DbKind::Postgresql, sources, &names);
        }
        let tx = client
            .transaction()
            .await
            .map_err(pg_err("begin the load's transaction"))?;
        match self.pg_body(&tx, sources).await {
            Ok(()) => tx
                .commit()
                .await
                .map_err(pg_err("commit the load's transaction")),
            Err(e) => {
                // Rolled back on drop too; said here so the server has it before the error shows.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn pg_body(
        &mut self,
        tx: &tokio_postgres::Transaction<'_>,
        sources: &[Source<'_>],
    ) -> Result<(), MetaError> {
        let mut names = target::pg_druid_tables(tx).await?;
        let mut created = false;
        for s in sources {
            if find_name(&names, s.canonical).is_none() {
                for statement in Self::ddl_of(DbKind::Postgresql, s) {
                    tx.batch_execute(&statement)
                        .await
                        .map_err(pg_err(&format!("create {}", s.canonical)))?;
                }
                self.report.created.push(s.canonical.to_string());
                created = true;
            }
        }
        if created {
            names = target::pg_druid_tables(tx).await?;
        }
        let mut supervisors: Option<Mapping> = None;
        let mut loaded: Vec<String> = Vec::new();
        for s in sources {
            self.interrupted()?;
            let Some(name) = find_name(&names, s.canonical) else {
                return Err(MetaError::Query {
                    what: format!("create {}", s.canonical),
                    why: "the table is not there after its CREATE TABLE".into(),
                });
            };
            let cols = target::pg_columns(tx, name).await?;
            let mapping = map_columns(s, name, &cols)?;
            let rows = self.pg_copy(tx, s, &mapping).await?;
            self.report.tables.push((s.canonical.to_string(), rows));
            loaded.push(mapping.table.clone());
            if s.canonical == "druid_supervisors" {
                supervisors = Some(mapping);
            }
        }
        self.finish_tally();
        if let Some(m) = &supervisors {
            self.interrupted()?;
            self.pg_suspend(tx, m).await?;
        }
        for table in &loaded {
            self.interrupted()?;
            pg_sequences(tx, table).await?;
        }
        self.interrupted()
    }

    async fn pg_copy(
        &mut self,
        tx: &tokio_postgres::Transaction<'_>,
        source: &Source<'_>,
        mapping: &Mapping,
    ) -> Result<u64, MetaError> {
        let mut reader = self.reader(source, mapping.add_used_status)?;
        let columns: Vec<String> = mapping
            .columns
            .iter()
            .map(|c| tables::pg_ident(c))
            .collect();
        let statement = format!(
            "COPY {} ({}) FROM STDIN (FORMAT csv, NULL 'NULL')",
            tables::pg_ident(&mapping.table),
            columns.join(", ")
        );
        let what = format!("load {}", source.canonical);
        let sink = tx.copy_in(&statement).await.map_err(pg_err(&what))?;
        let mut sink = Box::pin(sink);
        let mut buf: Vec<u8> = Vec::with_capacity(PG_CHUNK + (64 << 10));
        while let Some(cells) = reader.next(&mut self.tally, self.progress)? {
            let fields: Vec<Field<'_>> = cells.iter().map(Cell::field).collect();
            CsvWriter::new(&mut buf)
                .write_record(&fields)
                .map_err(MetaError::Io)?;
            if buf.len() >= PG_CHUNK {
                self.interrupted()?;
                sink.send(Bytes::from(std::mem::take(&mut buf)))
                    .await
                    .map_err(pg_err(&what))?;
            }
        }
        self.interrupted()?;
        if !buf.is_empty() {
            sink.send(Bytes::from(buf)).await.map_err(pg_err(&what))?;
        }
        let copied = sink.as_mut().finish().await.map_err(pg_err(&what))?;
        if copied != reader.records() {
            return Err(MetaError::Query {
                what,
                why: format!("the server took {copied} rows of {}", reader.records()),
            });
        }
        Ok(copied)
    }

    async fn pg_suspend(
        &mut self,
        tx: &tokio_postgres::Transaction<'_>,
        m: &Mapping,
    ) -> Result<(), MetaError> {
        let [id, spec_id, created, payload] = supervisor_columns(m)?;
        let select = format!(
            "SELECT {} FROM {} WHERE {} = $1::bigint",
            tables::pg_ident(&payload),
            tables::pg_ident(&m.table),
            tables::pg_ident(&id)
        );
        let insert = format!(
            "INSERT INTO {} ({}, {}, {}, {}) VALUES ($1::bigint, $2::text, $3::text, $4::bytea)",
            tables::pg_ident(&m.table),
            tables::pg_ident(&id),
            tables::pg_ident(&spec_id),
            tables::pg_ident(&created),
            tables::pg_ident(&payload)
        );
        let mut next = self.tally.max_supervisor_id.unwrap_or(0);
        for (spec, row_id) in self.tally.to_suspend() {
            self.interrupted()?;
            let what = format!("suspend supervisor {spec}");
            let row = tx
                .query_one(&select, &[&row_id])
                .await
                .map_err(pg_err(&what))?;
            let old: Vec<u8> = row.try_get(0).map_err(pg_err(&what))?;
            let Some(new) = self.suspended(&spec, &old) else {
                continue;
            };
            next = next_id(next, &spec)?;
            tx.execute(&insert, &[&next, &spec, &self.now, &new])
                .await
                .map_err(pg_err(&what))?;
            self.report.suspended_supervisors.push(spec);
        }
        Ok(())
    }

    /// The suspended payload, or `None` (with a note) when it cannot be made.
    fn suspended(&self, spec: &str, old: &[u8]) -> Option<Vec<u8>> {
        match sql::suspend(old) {
            Ok(p) => Some(p),
            Err(why) => {
                self.progress
                    .note(&format!("supervisor {spec} was not suspended: {why}"));
                None
            }
        }
    }

    async fn mysql(
        &mut self,
        conn: &mut mysql_async::Conn,
        sources: &[Source<'_>],
    ) -> Result<(), MetaError> {
        let mut names = target::my_druid_tables(conn).await?;
        if self.options.dry_run {
            return self.dry(DbKind::Mysql, sources, &names);
        }
        // DDL commits implicitly on MySQL: the tables are made before the transaction, and stay
        // (empty) whatever happens next.
        for s in sources {
            if find_name(&names, s.canonical).is_none() {
                self.interrupted()?;
                for statement in Self::ddl_of(DbKind::Mysql, s) {
                    if let Err(e) = conn.query_drop(&statement).await {
                        self.note_left_empty();
                        return Err(my_err(&format!("create {}", s.canonical))(e));
                    }
                }
                self.report.created.push(s.canonical.to_string());
            }
        }
        if !self.report.created.is_empty() {
            names = target::my_druid_tables(conn).await?;
        }
        let packet: Option<u64> = conn
            .query_first("SELECT @@max_allowed_packet")
            .await
            .map_err(my_err("read max_allowed_packet"))?;
        let batch_bytes = packet
            .map(|p| (p / 2) as usize)
            .unwrap_or(MY_BATCH_BYTES)
            .clamp(64 << 10, MY_BATCH_BYTES);
        conn.query_drop("START TRANSACTION")
            .await
            .map_err(my_err("begin the load's transaction"))?;
        match self.my_body(conn, sources, &names, batch_bytes).await {
            Ok(()) => {
                if let Err(e) = conn.query_drop("COMMIT").await {
                    self.note_left_empty();
                    return Err(my_err("commit the load's transaction")(e));
                }
                Ok(())
            }
            Err(e) => {
                let _ = conn.query_drop("ROLLBACK").await;
                self.note_left_empty();
                Err(e)
            }
        }
    }

    fn note_left_empty(&self) {
        if !self.report.created.is_empty() {
            self.progress.note(&format!(
                "the load failed after creating {} (MySQL commits DDL at once): they are left, empty",
                self.report.created.join(", ")
            ));
        }
    }

    async fn my_body(
        &mut self,
        conn: &mut mysql_async::Conn,
        sources: &[Source<'_>],
        names: &[String],
        batch_bytes: usize,
    ) -> Result<(), MetaError> {
        let mut supervisors: Option<Mapping> = None;
        for s in sources {
            self.interrupted()?;
            let Some(name) = find_name(names, s.canonical) else {
                return Err(MetaError::Query {
                    what: format!("create {}", s.canonical),
                    why: "the table is not there after its CREATE TABLE".into(),
                });
            };
            let cols = target::my_columns(conn, name).await?;
            let mapping = map_columns(s, name, &cols)?;
            let rows = self.my_insert(conn, s, &mapping, batch_bytes).await?;
            self.report.tables.push((s.canonical.to_string(), rows));
            if s.canonical == "druid_supervisors" {
                supervisors = Some(mapping);
            }
        }
        self.finish_tally();
        if let Some(m) = &supervisors {
            self.interrupted()?;
            self.my_suspend(conn, m).await?;
        }
        self.interrupted()
    }

    async fn my_insert(
        &mut self,
        conn: &mut mysql_async::Conn,
        source: &Source<'_>,
        mapping: &Mapping,
        batch_bytes: usize,
    ) -> Result<u64, MetaError> {
        let mut reader = self.reader(source, mapping.add_used_status)?;
        let columns: Vec<String> = mapping
            .columns
            .iter()
            .map(|c| tables::my_ident(c))
            .collect();
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            tables::my_ident(&mapping.table),
            columns.join(", ")
        );
        let one = format!("({})", vec!["?"; columns.len()].join(","));
        let what = format!("load {}", source.canonical);
        let mut params: Vec<mysql_async::Value> = Vec::new();
        let mut rows = 0usize;
        let mut bytes = 0usize;
        let mut inserted = 0u64;
        loop {
            let cells = reader.next(&mut self.tally, self.progress)?;
            let end = cells.is_none();
            if let Some(cells) = cells {
                for c in cells {
                    bytes += c.len() + 8;
                    params.push(c.into_value());
                }
                rows += 1;
            }
            if rows > 0 && (end || rows >= MY_BATCH_ROWS || bytes >= batch_bytes) {
                self.interrupted()?;
                let statement = format!("{head}{}", vec![one.as_str(); rows].join(","));
                conn.exec_drop(
                    statement,
                    mysql_async::Params::Positional(std::mem::take(&mut params)),
                )
                .await
                .map_err(my_err(&what))?;
                inserted += conn.affected_rows();
                rows = 0;
                bytes = 0;
            }
            if end {
                break;
            }
        }
        if inserted != reader.records() {
            return Err(MetaError::Query {
                what,
                why: format!("the server took {inserted} rows of {}", reader.records()),
            });
        }
        Ok(inserted)
    }

    async fn my_suspend(
        &mut self,
        conn: &mut mysql_async::Conn,
        m: &Mapping,
    ) -> Result<(), MetaError> {
        let [id, spec_id, created, payload] = supervisor_columns(m)?;
        let select = format!(
            "SELECT {} FROM {} WHERE {} = ?",
            tables::my_ident(&payload),
            tables::my_ident(&m.table),
            tables::my_ident(&id)
        );
        let insert = format!(
            "INSERT INTO {} ({}, {}, {}, {}) VALUES (?, ?, ?, ?)",
            tables::my_ident(&m.table),
            tables::my_ident(&id),
            tables::my_ident(&spec_id),
            tables::my_ident(&created),
            tables::my_ident(&payload)
        );
        let mut next = self.tally.max_supervisor_id.unwrap_or(0);
        for (spec, row_id) in self.tally.to_suspend() {
            self.interrupted()?;
            let what = format!("suspend supervisor {spec}");
            let old: Option<Vec<u8>> = conn
                .exec_first(&select, (row_id,))
                .await
                .map_err(my_err(&what))?;
            let Some(old) = old else {
                return Err(MetaError::Query {
                    what,
                    why: format!("the row with id {row_id} just loaded is not there"),
                });
            };
            let Some(new) = self.suspended(&spec, &old) else {
                continue;
            };
            next = next_id(next, &spec)?;
            conn.exec_drop(
                &insert,
                (
                    next,
                    spec.as_bytes().to_vec(),
                    self.now.as_bytes().to_vec(),
                    new,
                ),
            )
            .await
            .map_err(my_err(&what))?;
            self.report.suspended_supervisors.push(spec);
        }
        Ok(())
    }
}

fn next_id(last: i64, spec: &str) -> Result<i64, MetaError> {
    last.checked_add(1).ok_or_else(|| {
        MetaError::Corrupt(format!(
            "supervisor {spec}: no id is left above the restored ones for its suspended version"
        ))
    })
}

/// The target's names of `id`, `spec_id`, `created_date` and `payload` of druid_supervisors.
fn supervisor_columns(m: &Mapping) -> Result<[String; 4], MetaError> {
    let find = |want: &str| {
        m.columns
            .iter()
            .find(|c| c.eq_ignore_ascii_case(want))
            .cloned()
            .ok_or_else(|| {
                MetaError::Corrupt(format!(
                    "druid_supervisors of the backup has no column {want}: it is not Druid's table"
                ))
            })
    };
    Ok([
        find("id")?,
        find("spec_id")?,
        find("created_date")?,
        find("payload")?,
    ])
}

/// Sets each sequence behind a column of `table` (BIGSERIAL, identity) past the column's largest
/// value, so Druid's next INSERT gets max + 1 (1 when the table is empty).
async fn pg_sequences(tx: &tokio_postgres::Transaction<'_>, table: &str) -> Result<(), MetaError> {
    let what = format!("set the sequences of {table}");
    let rows = tx
        .query(
            "SELECT a.attname::text, \
             pg_get_serial_sequence(format('%I.%I', current_schema(), $1::text), a.attname) \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = format('%I.%I', current_schema(), $1::text)::regclass \
             AND a.attnum > 0 AND NOT a.attisdropped",
            &[&table],
        )
        .await
        .map_err(pg_err(&what))?;
    for row in rows {
        let column: String = row.try_get(0).map_err(pg_err(&what))?;
        let sequence: Option<String> = row.try_get(1).map_err(pg_err(&what))?;
        let Some(sequence) = sequence else {
            continue;
        };
        let c = tables::pg_ident(&column);
        let statement = format!(
            "SELECT setval($1::text::regclass, coalesce(greatest(max({c}), 1), 1)::bigint, coalesce(max({c}) >= 1, false)) FROM {}",
            tables::pg_ident(table)
        );
        tx.query_one(&statement, &[&sequence])
            .await
            .map_err(pg_err(&what))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::dump::Column;
    use super::*;

    fn dump(name: &str, columns: &[&str]) -> TableDump {
        TableDump {
            name: name.into(),
            file: format!("{name}.csv"),
            columns: columns
                .iter()
                .map(|c| Column {
                    name: c.to_string(),
                    sql_type: "varchar(255)".into(),
                    nullable: true,
                })
                .collect(),
            rows: 0,
            bytes: 0,
        }
    }

    fn tcol(name: &str, required: bool) -> TargetColumn {
        TargetColumn {
            name: name.into(),
            required,
        }
    }

    #[test]
    fn sources_come_in_load_order_and_hostile_manifests_are_refused() {
        let t = [
            dump("druid_audit", &["id"]),
            dump("druid_datasource", &["datasource"]),
            dump("druid_segments", &["id"]),
        ];
        let s = sources(&t).unwrap();
        let names: Vec<_> = s.iter().map(|s| s.canonical).collect();
        assert_eq!(names, ["druid_segments", "druid_dataSource", "druid_audit"]);

        let bad = |t: TableDump| matches!(sources(&[t]), Err(MetaError::Corrupt(_)));
        assert!(bad(dump("druid_tasks", &["id"])));
        assert!(bad(dump("x; DROP TABLE y", &["id"])));
        let mut t = dump("druid_rules", &["id"]);
        t.file = "../etc/passwd".into();
        assert!(bad(t));
        assert!(bad(dump("druid_rules", &[])));
        assert!(bad(dump("druid_rules", &["id", "ID"])));
        assert!(bad(dump("druid_rules", &["a\nb"])));
        assert!(matches!(
            sources(&[dump("druid_rules", &["id"]), dump("DRUID_RULES", &["id"])]),
            Err(MetaError::Corrupt(_))
        ));
    }

    #[test]
    fn columns_map_case_insensitively_and_refuse_mismatches() {
        let t = dump("druid_dataSource", &["dataSource", "created_date"]);
        let s = &sources(std::slice::from_ref(&t)).unwrap()[0];
        let m = map_columns(
            s,
            "druid_datasource",
            &[tcol("datasource", true), tcol("created_date", true)],
        )
        .unwrap();
        assert_eq!(m.columns, ["datasource", "created_date"]);
        assert!(!m.add_used_status);

        let e = map_columns(s, "druid_datasource", &[tcol("datasource", true)]).unwrap_err();
        assert!(
            matches!(&e, MetaError::Refused(m) if m.contains("created_date")),
            "{e}"
        );

        let e = map_columns(
            s,
            "druid_datasource",
            &[
                tcol("datasource", true),
                tcol("created_date", true),
                tcol("commit_metadata_sha1", true),
            ],
        )
        .unwrap_err();
        assert!(matches!(&e, MetaError::Refused(m) if m.contains("commit_metadata_sha1")));
        // A column the target has but does not require is left to its default.
        assert!(
            map_columns(
                s,
                "druid_datasource",
                &[
                    tcol("datasource", true),
                    tcol("created_date", true),
                    tcol("extra", false)
                ],
            )
            .is_ok()
        );
    }

    #[test]
    fn old_segments_without_used_status_get_it_added() {
        let t = dump("druid_segments", &["id", "payload"]);
        let s = &sources(std::slice::from_ref(&t)).unwrap()[0];
        let m = map_columns(
            s,
            "druid_segments",
            &[
                tcol("id", true),
                tcol("payload", true),
                tcol(USED_STATUS, true),
            ],
        )
        .unwrap();
        assert!(m.add_used_status);
        assert_eq!(m.columns, ["id", "payload", USED_STATUS]);
    }

    #[test]
    fn refusals_name_the_first_table_and_count_the_others() {
        let names: Vec<String> = [
            "druid_tasks",
            "druid_zzz",
            "druid_segments",
            "druid_datasource",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let order: Vec<String> = ordered_canonical(&names)
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(
            order,
            [
                "druid_segments",
                "druid_dataSource",
                "druid_tasks",
                "druid_zzz"
            ]
        );
        let e = not_empty(
            "druid",
            &[("druid_segments".into(), 3), ("druid_tasks".into(), 1)],
        )
        .unwrap();
        let text = e.to_string();
        assert!(
            text.contains("druid_segments has 3 rows (and 1 other table has rows)"),
            "{text}"
        );
        assert!(not_empty("druid", &[]).is_none());
    }

    #[test]
    fn names_match_exactly_first() {
        let names: Vec<String> = ["druid_x", "DRUID_X", "druid_y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(find_name(&names, "druid_x"), Some("druid_x"));
        assert_eq!(find_name(&names, "Druid_X"), None);
        assert_eq!(find_name(&names, "DRUID_Y"), Some("druid_y"));
    }
}
