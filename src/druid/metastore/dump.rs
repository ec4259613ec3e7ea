//! The snapshot: every durable Druid table read in ONE repeatable-read, read-only transaction
//! (PostgreSQL `REPEATABLE READ READ ONLY`, MySQL `START TRANSACTION WITH CONSISTENT SNAPSHOT,
//! READ ONLY`), so segments and datasource offsets belong to the same moment, each streamed into
//! its own CSV file in a folder with bounded memory.
//!
//! Rows are streamed from the server (tokio-postgres `query_raw`, mysql_async `query_iter`: one
//! row in hand at a time, the drivers' buffers bounded) through [`CsvWriter`] into
//! `<table>.csv` (0600), ordered by the primary key so that two dumps of the same data are the
//! same bytes. Both kinds write the same dialect ([`super::csv`]): text as the server gives it
//! (PostgreSQL casts to text, MySQL's text protocol), binary columns as hex, booleans as 1/0.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use futures::StreamExt;
use mysql_async::prelude::Queryable;

use super::csv::{CsvWriter, Field};
use super::tables::{self, DURABLE, TRANSIENT};
use super::{Db, DbKind, MetaError};
use crate::progress::Progress;

pub use super::tables::{Column, TableDump};

/// A table left out, and why (`transient`, or `not a table lifeboat knows`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
    pub rows: Option<u64>,
}

/// What a dump wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    pub db_kind: DbKind,
    pub db_version: String,
    pub tables: Vec<TableDump>,
    pub skipped: Vec<Skipped>,
    /// The deep-storage locations segments point at ([`crate::druid::loadspec::location_of`]),
    /// sorted, at most [`MAX_LOCATIONS`].
    pub deep_storage: Vec<String>,
    pub segments: u64,
    pub used_segments: u64,
}

/// The most deep-storage locations a dump records.
pub const MAX_LOCATIONS: usize = 100;
/// Rows between two looks at the cancellation token (and progress reports).
const BATCH: u64 = 1000;
pub const TRANSIENT_REASON: &str = "transient";
pub const UNKNOWN_REASON: &str = "not a table lifeboat knows";

/// Dumps the store into `dir` (which exists and is empty), one `<table>.csv` per durable table
/// present, plus the load scripts and README of [`super::scripts`].
pub async fn dump(
    db: &mut Db,
    dir: &Path,
    progress: &dyn Progress,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Dump, MetaError> {
    dump_with(db, dir, progress, cancel, &|_| ()).await
}

/// [`dump`], with `before_table(name)` called inside the snapshot before each table is read (a
/// test's hook to write concurrently; `dump` passes one that does nothing).
pub async fn dump_with(
    db: &mut Db,
    dir: &Path,
    progress: &dyn Progress,
    cancel: &tokio_util::sync::CancellationToken,
    before_table: &(dyn Fn(&str) + Sync),
) -> Result<Dump, MetaError> {
    let db_version = db.server_version().await?;
    if db.kind() == DbKind::Mysql {
        let current: Option<String> = match db {
            Db::My(c) => {
                c.query_first("SELECT DATABASE()")
                    .await
                    .map_err(|e| MetaError::Query {
                        what: "reading the current database".into(),
                        why: e.to_string(),
                    })?
            }
            Db::Pg(_) => None,
        };
        if current.is_none() {
            return Err(MetaError::Refused(
                "the MySQL URL names no database: give Druid's (mysql://USER@HOST:PORT/DB)".into(),
            ));
        }
    }
    begin(db).await?;
    let result = in_snapshot(db, dir, progress, cancel, before_table, db_version).await;
    // read-only: ending it either way changes nothing
    let end = finish(db, result.is_ok()).await;
    let dump = result?;
    end?;
    super::scripts::write(dir, &dump.tables)?;
    Ok(dump)
}

async fn run(db: &mut Db, sql: &str) -> Result<(), MetaError> {
    let err = |why: String| MetaError::Query {
        what: format!("`{sql}`"),
        why,
    };
    match db {
        Db::Pg(c) => c
            .batch_execute(sql)
            .await
            .map_err(|e| err(super::pg_why(&e))),
        Db::My(c) => c.query_drop(sql).await.map_err(|e| err(e.to_string())),
    }
}

async fn begin(db: &mut Db) -> Result<(), MetaError> {
    match db.kind() {
        DbKind::Postgresql => run(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await,
        DbKind::Mysql => {
            run(db, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").await?;
            run(db, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY").await
        }
    }
}

async fn finish(db: &mut Db, ok: bool) -> Result<(), MetaError> {
    run(db, if ok { "COMMIT" } else { "ROLLBACK" }).await
}

async fn in_snapshot(
    db: &mut Db,
    dir: &Path,
    progress: &dyn Progress,
    cancel: &tokio_util::sync::CancellationToken,
    before_table: &(dyn Fn(&str) + Sync),
    db_version: String,
) -> Result<Dump, MetaError> {
    // listed inside the transaction: on PostgreSQL its first statement takes the snapshot
    let present = tables::list(db).await?;
    let mut dump = Dump {
        db_kind: db.kind(),
        db_version,
        tables: Vec::new(),
        skipped: Vec::new(),
        deep_storage: Vec::new(),
        segments: 0,
        used_segments: 0,
    };
    let mut locations = BTreeSet::new();
    for canonical in DURABLE {
        let Some((in_db, rows)) = present
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(canonical))
        else {
            continue;
        };
        if cancel.is_cancelled() {
            return Err(MetaError::Interrupted);
        }
        before_table(canonical);
        let t = dump_table(
            db,
            dir,
            canonical,
            in_db,
            *rows,
            progress,
            cancel,
            &mut dump,
            &mut locations,
        )
        .await?;
        dump.tables.push(t);
    }
    for (in_db, rows) in &present {
        match tables::canonical(in_db) {
            Some(c) if DURABLE.contains(&c) => {}
            Some(c) if TRANSIENT.contains(&c) => dump.skipped.push(Skipped {
                name: c.to_string(),
                reason: TRANSIENT_REASON.into(),
                rows: Some(*rows),
            }),
            _ => dump.skipped.push(Skipped {
                name: in_db.clone(),
                reason: UNKNOWN_REASON.into(),
                rows: Some(*rows),
            }),
        }
    }
    dump.deep_storage = locations.into_iter().collect();
    Ok(dump)
}

/// Writes one row of a table file and counts it (in `facts` too, for the segments table); every
/// [`BATCH`] rows, reports progress and looks at `cancel`. Both drivers' loops end here.
fn emit<W: Write>(
    csv: &mut CsvWriter<W>,
    facts: &mut Option<SegmentFacts<'_>>,
    rows: &mut u64,
    fields: &[Field<'_>],
    progress: &dyn Progress,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<(), MetaError> {
    csv.write_record(fields)?;
    if let Some(f) = facts.as_mut() {
        f.row(fields);
    }
    *rows += 1;
    if *rows % BATCH == 0 {
        progress.advance(BATCH);
        if cancel.is_cancelled() {
            return Err(MetaError::Interrupted);
        }
    }
    Ok(())
}

/// A writer that counts what it writes.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What the segments table's rows tell the manifest.
struct SegmentFacts<'a> {
    payload: Option<usize>,
    used: Option<usize>,
    dump: &'a mut Dump,
    locations: &'a mut BTreeSet<String>,
}

impl SegmentFacts<'_> {
    fn row(&mut self, fields: &[Field<'_>]) {
        self.dump.segments += 1;
        let used = self
            .used
            .and_then(|i| fields.get(i))
            .is_some_and(|f| match f {
                Field::Bool(b) => *b,
                Field::Text(t) => *t == b"1" || t.eq_ignore_ascii_case(b"true"),
                Field::Int(n) => *n != 0,
                _ => false,
            });
        if used {
            self.dump.used_segments += 1;
        }
        if self.locations.len() >= MAX_LOCATIONS {
            return;
        }
        let payload = match self.payload.and_then(|i| fields.get(i)) {
            Some(Field::Bytes(p) | Field::Text(p)) => *p,
            _ => return,
        };
        // a payload lifeboat cannot read is still dumped as it is; it only names no location
        if let Ok(Some(obj)) = crate::druid::loadspec::object_of(payload) {
            self.locations
                .insert(crate::druid::loadspec::location_of(&obj.url));
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn dump_table(
    db: &mut Db,
    dir: &Path,
    canonical: &str,
    in_db: &str,
    rows_listed: u64,
    progress: &dyn Progress,
    cancel: &tokio_util::sync::CancellationToken,
    dump: &mut Dump,
    locations: &mut BTreeSet<String>,
) -> Result<TableDump, MetaError> {
    let columns = tables::columns(db, in_db).await?;
    if columns.is_empty() {
        return Err(MetaError::Query {
            what: format!("reading {in_db}"),
            why: "the table shows no columns (may the user read it?)".into(),
        });
    }
    let key = tables::primary_key(db, in_db).await?;
    let kind = db.kind();
    let order: Vec<String> = if key.is_empty() {
        columns
            .iter()
            .filter(|c| !tables::is_binary(&c.sql_type))
            .map(|c| tables::quote_ident(kind, &c.name))
            .collect()
    } else {
        key.iter().map(|k| tables::quote_ident(kind, k)).collect()
    };
    let select: Vec<String> = columns
        .iter()
        .map(|c| {
            let q = tables::quote_ident(kind, &c.name);
            if kind == DbKind::Postgresql
                && !tables::is_binary(&c.sql_type)
                && !tables::is_bool(&c.sql_type)
            {
                format!("{q}::text")
            } else {
                q
            }
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM {}{}{}",
        select.join(", "),
        tables::quote_ident(kind, in_db),
        if order.is_empty() { "" } else { " ORDER BY " },
        order.join(", ")
    );
    let file_name = format!("{canonical}.csv");
    let path = dir.join(&file_name);
    let file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", path.display())))?;
    let mut csv = CsvWriter::new(Counting {
        inner: BufWriter::with_capacity(256 << 10, file),
        bytes: 0,
    });
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    csv.write_header(&names)?;
    let col_index = |want: &str| {
        columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(want))
    };
    let mut facts = (canonical == "druid_segments").then(|| SegmentFacts {
        payload: col_index("payload"),
        used: col_index("used"),
        dump,
        locations,
    });
    let binary: Vec<bool> = columns
        .iter()
        .map(|c| tables::is_binary(&c.sql_type))
        .collect();
    let boolean: Vec<bool> = columns
        .iter()
        .map(|c| tables::is_bool(&c.sql_type))
        .collect();
    progress.phase_items(&format!("dump {canonical}"), Some(rows_listed));
    let what = format!("reading {in_db}");
    let mut rows = 0u64;
    match db {
        Db::Pg(client) => {
            let stream = client
                .query_raw(
                    &sql,
                    std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>(),
                )
                .await
                .map_err(|e| MetaError::Query {
                    what: what.clone(),
                    why: super::pg_why(&e),
                })?;
            let mut stream = std::pin::pin!(stream);
            while let Some(row) = stream.next().await {
                let row = row.map_err(|e| MetaError::Query {
                    what: what.clone(),
                    why: super::pg_why(&e),
                })?;
                let mut fields: Vec<Field<'_>> = Vec::with_capacity(columns.len());
                for i in 0..columns.len() {
                    let f = if binary[i] {
                        row.try_get::<_, Option<&[u8]>>(i)
                            .map(|v| v.map(Field::Bytes))
                    } else if boolean[i] {
                        row.try_get::<_, Option<bool>>(i)
                            .map(|v| v.map(Field::Bool))
                    } else {
                        row.try_get::<_, Option<&str>>(i)
                            .map(|v| v.map(|s| Field::Text(s.as_bytes())))
                    }
                    .map_err(|e| MetaError::Query {
                        what: format!("{what}, column {}", columns[i].name),
                        why: e.to_string(),
                    })?;
                    fields.push(f.unwrap_or(Field::Null));
                }
                emit(&mut csv, &mut facts, &mut rows, &fields, progress, cancel)?;
            }
        }
        Db::My(conn) => {
            let mut result = conn.query_iter(&sql).await.map_err(|e| MetaError::Query {
                what: what.clone(),
                why: e.to_string(),
            })?;
            while let Some(row) = result.next().await.map_err(|e| MetaError::Query {
                what: what.clone(),
                why: e.to_string(),
            })? {
                if row.len() != columns.len() {
                    return Err(MetaError::Query {
                        what,
                        why: format!(
                            "the server sent {} columns, not {}",
                            row.len(),
                            columns.len()
                        ),
                    });
                }
                // values the text protocol does not send as bytes, printed once per row
                let mut texts: Vec<Vec<u8>> = Vec::new();
                for i in 0..row.len() {
                    if let Some(v) = row.as_ref(i)
                        && !matches!(v, mysql_async::Value::NULL | mysql_async::Value::Bytes(_))
                    {
                        texts.push(v.as_sql(true).trim_matches('\'').as_bytes().to_vec());
                    }
                }
                let mut fields: Vec<Field<'_>> = Vec::with_capacity(columns.len());
                let mut other = texts.iter();
                for (i, &is_binary) in binary.iter().enumerate() {
                    let f = match row.as_ref(i) {
                        None | Some(mysql_async::Value::NULL) => Field::Null,
                        Some(mysql_async::Value::Bytes(b)) if is_binary => Field::Bytes(b),
                        Some(mysql_async::Value::Bytes(b)) => Field::Text(b),
                        Some(_) => Field::Text(other.next().map_or(&b""[..], |t| t)),
                    };
                    fields.push(f);
                }
                emit(&mut csv, &mut facts, &mut rows, &fields, progress, cancel)?;
            }
        }
    }
    progress.advance(rows % BATCH);
    progress.finish();
    csv.flush()?;
    let counting = csv.into_inner();
    let bytes = counting.bytes;
    counting
        .inner
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    Ok(TableDump {
        name: canonical.to_string(),
        file: file_name,
        columns,
        rows,
        bytes,
    })
}
