//! Druid's tables: which a backup holds, which it skips (transient) and Druid's own DDL for each
//! database kind (SQLMetadataConnector's), used when a restore target lacks a table; and what a
//! live database has ([`list`], [`columns`]).
//!
//! PostgreSQL folds unquoted names to lower case (Druid's DDL creates `druid_datasource` with a
//! column `datasource` there), so table and column names are matched without case everywhere and
//! reports name a table by Druid's spelling ([`canonical`]).

use mysql_async::prelude::Queryable;

use super::{Db, DbKind, MetaError};

// The two types the dump records and a restore reads back (re-exported by `dump`, whose
// contract they are: they live here so that `dump` and `scripts` import `tables`, never back).

/// A column as the source database declares it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Column {
    pub name: String,
    /// The source's type name (`character varying`, `bytea`, `longblob`, `bigint`, `boolean`...).
    pub sql_type: String,
    pub nullable: bool,
}

/// One table file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDump {
    /// Druid's spelling of the table (`druid_dataSource`, whatever case the database has).
    pub name: String,
    /// The file's name in the folder (and in the archive): `<table>.csv`.
    pub file: String,
    pub columns: Vec<Column>,
    pub rows: u64,
    pub bytes: u64,
}

/// The tables a backup holds when they exist, in load order.
pub const DURABLE: [&str; 8] = [
    "druid_segments",
    "druid_rules",
    "druid_config",
    "druid_dataSource",
    "druid_supervisors",
    "druid_audit",
    "druid_segmentSchemas",
    "druid_indexingStates",
];

/// Tables of running work that a restore must not bring back; skipped and named in the manifest.
pub const TRANSIENT: [&str; 5] = [
    "druid_tasks",
    "druid_tasklocks",
    "druid_pendingSegments",
    "druid_tasklogs",
    "druid_upgradeSegments",
];

/// The most `druid_*` tables [`list`] reads: a hostile server must not grow a report.
pub const MAX_TABLES: usize = 1000;
/// The most columns [`columns`] reads of one table.
pub const MAX_COLUMNS: usize = 256;

/// Druid's spelling of a table of [`DURABLE`] or [`TRANSIENT`] named `name` in any case.
pub fn canonical(name: &str) -> Option<&'static str> {
    DURABLE
        .iter()
        .chain(TRANSIENT.iter())
        .find(|t| t.eq_ignore_ascii_case(name))
        .copied()
}

/// The payload type `<P>`, the serial `<S>`, the `dataSource` column's suffix, `end` quoted and
/// the table options of `kind`.
struct Dialect {
    payload: &'static str,
    serial: &'static str,
    datasource: &'static str,
    end: &'static str,
    options: &'static str,
}

fn dialect(kind: DbKind) -> Dialect {
    match kind {
        DbKind::Postgresql => Dialect {
            payload: "BYTEA",
            serial: "BIGSERIAL",
            datasource: "",
            end: "\"end\"",
            options: "",
        },
        DbKind::Mysql => Dialect {
            payload: "LONGBLOB",
            serial: "BIGINT(20) AUTO_INCREMENT",
            datasource: " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            end: "`end`",
            options: " ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4",
        },
    }
}

/// Druid's DDL for `table` (any case) on `kind` (tables, then indexes), or `None` for a table
/// whose DDL lifeboat does not know (it is then created from the column types the backup
/// recorded). Every statement may run on a database that already has the table: `IF NOT EXISTS`
/// on PostgreSQL, and on MySQL (whose `CREATE INDEX` has no `IF NOT EXISTS`) the indexes are
/// part of the `CREATE TABLE`.
pub fn ddl(kind: DbKind, table: &str) -> Option<Vec<String>> {
    let name = canonical(table)?;
    let d = dialect(kind);
    let (p, s, ds, end) = (d.payload, d.serial, d.datasource, d.end);
    // (columns and keys, indexes as (suffix, columns))
    let (body, indexes): (String, Vec<(&str, String)>) = match name {
        "druid_segments" => (
            format!(
                "id VARCHAR(255) NOT NULL, dataSource VARCHAR(255){ds} NOT NULL, \
                 created_date VARCHAR(255) NOT NULL, start VARCHAR(255) NOT NULL, \
                 {end} VARCHAR(255) NOT NULL, partitioned BOOLEAN NOT NULL, \
                 version VARCHAR(255) NOT NULL, used BOOLEAN NOT NULL, payload {p} NOT NULL, \
                 used_status_last_updated VARCHAR(255) NOT NULL, \
                 schema_fingerprint VARCHAR(255), num_rows BIGINT, PRIMARY KEY (id)"
            ),
            vec![
                ("used", "used".into()),
                (
                    "datasource_used_end_start",
                    format!("dataSource, used, {end}, start"),
                ),
            ],
        ),
        "druid_rules" => (
            format!(
                "id VARCHAR(255) NOT NULL, dataSource VARCHAR(255){ds} NOT NULL, \
                 version VARCHAR(255) NOT NULL, payload {p} NOT NULL, PRIMARY KEY (id)"
            ),
            vec![("datasource", "dataSource".into())],
        ),
        "druid_config" => (
            format!("name VARCHAR(255) NOT NULL, payload {p} NOT NULL, PRIMARY KEY (name)"),
            vec![],
        ),
        "druid_dataSource" => (
            format!(
                "dataSource VARCHAR(255){ds} NOT NULL, created_date VARCHAR(255) NOT NULL, \
                 commit_metadata_payload {p} NOT NULL, \
                 commit_metadata_sha1 VARCHAR(255) NOT NULL, PRIMARY KEY (dataSource)"
            ),
            vec![],
        ),
        "druid_supervisors" => (
            format!(
                "id {s} NOT NULL, spec_id VARCHAR(255) NOT NULL, \
                 created_date VARCHAR(255) NOT NULL, payload {p} NOT NULL, PRIMARY KEY (id)"
            ),
            vec![("spec_id", "spec_id".into())],
        ),
        "druid_audit" => (
            format!(
                "id {s} NOT NULL, audit_key VARCHAR(255) NOT NULL, type VARCHAR(255) NOT NULL, \
                 author VARCHAR(255) NOT NULL, comment VARCHAR(2048) NOT NULL, \
                 created_date VARCHAR(255) NOT NULL, payload {p} NOT NULL, PRIMARY KEY (id)"
            ),
            vec![
                ("key_time", "audit_key, created_date".into()),
                ("type_time", "type, created_date".into()),
                ("audit_time", "created_date".into()),
            ],
        ),
        "druid_segmentSchemas" => (
            format!(
                "id {s} NOT NULL, created_date VARCHAR(255) NOT NULL, \
                 datasource VARCHAR(255){ds} NOT NULL, fingerprint VARCHAR(255) NOT NULL, \
                 payload {p} NOT NULL, used BOOLEAN NOT NULL, \
                 used_status_last_updated VARCHAR(255) NOT NULL, PRIMARY KEY (id), \
                 UNIQUE (fingerprint)"
            ),
            vec![("used", "used, used_status_last_updated".into())],
        ),
        _ => return None,
    };
    Some(match kind {
        DbKind::Postgresql => {
            let mut stmts = vec![format!("CREATE TABLE IF NOT EXISTS {name} ({body})")];
            stmts.extend(indexes.iter().map(|(suffix, cols)| {
                format!("CREATE INDEX IF NOT EXISTS idx_{name}_{suffix} ON {name}({cols})")
            }));
            stmts
        }
        DbKind::Mysql => {
            let inline: String = indexes
                .iter()
                .map(|(suffix, cols)| format!(", INDEX idx_{name}_{suffix} ({cols})"))
                .collect();
            vec![format!(
                "CREATE TABLE IF NOT EXISTS {name} ({body}{inline}){}",
                d.options
            )]
        }
    })
}

/// A column's type on `kind` from the type a backup recorded (of either kind), for a table whose
/// DDL lifeboat does not know: binary as the payload type, booleans, integers, the rest as text.
pub fn sql_type_for(kind: DbKind, recorded: &str) -> &'static str {
    let t = recorded.trim().to_ascii_lowercase();
    let pg = kind == DbKind::Postgresql;
    if is_binary(&t) || t.contains("bytea") || t.contains("blob") || t.contains("binary") {
        dialect(kind).payload
    } else if t.starts_with("bool") || t == "tinyint" || t == "tinyint(1)" || t.starts_with("bit") {
        "BOOLEAN"
    } else if t.contains("int") || t.contains("serial") {
        "BIGINT"
    } else if ["double", "float", "real", "numeric", "decimal"]
        .iter()
        .any(|p| t.starts_with(p))
    {
        if pg { "DOUBLE PRECISION" } else { "DOUBLE" }
    } else if pg {
        "TEXT"
    } else {
        "LONGTEXT"
    }
}

/// `CREATE TABLE IF NOT EXISTS` of `table` from the columns a backup recorded (no keys): the
/// fallback for a table [`ddl`] does not know.
pub fn create_from_columns(kind: DbKind, table: &str, columns: &[Column]) -> String {
    let cols: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                quote_ident(kind, &c.name),
                sql_type_for(kind, &c.sql_type),
                if c.nullable { "" } else { " NOT NULL" }
            )
        })
        .collect();
    let options = if kind == DbKind::Mysql {
        dialect(kind).options
    } else {
        ""
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({}){options}",
        quote_ident(kind, table),
        cols.join(", ")
    )
}

/// Whether a recorded column's type is binary (its values are written as `\x` + hex).
pub fn is_binary(sql_type: &str) -> bool {
    let t = sql_type.to_ascii_lowercase();
    t == "bytea" || t.ends_with("blob") || t.ends_with("binary")
}

/// Whether a recorded column's type is boolean (`boolean` on PostgreSQL; MySQL's BOOLEAN is
/// `tinyint`, whose values are written as numbers anyway).
pub fn is_bool(sql_type: &str) -> bool {
    sql_type.eq_ignore_ascii_case("boolean")
}

fn query_err(what: &str) -> impl Fn(String) -> MetaError + '_ {
    move |why| MetaError::Query {
        what: what.to_string(),
        why,
    }
}

/// Every `druid_*` table of the current schema (PostgreSQL) or database (MySQL), named as the
/// database has it, with its row count, sorted by name; at most [`MAX_TABLES`].
pub async fn list(db: &mut Db) -> Result<Vec<(String, u64)>, MetaError> {
    let what = "listing Druid's tables";
    let names: Vec<String> = match db {
        Db::Pg(pg) => pg
            .query(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
                 AND lower(table_name) LIKE 'druid\\_%' ORDER BY table_name LIMIT $1",
                &[&(MAX_TABLES as i64)],
            )
            .await
            .map_err(|e| query_err(what)(super::pg_why(&e)))?
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<Result<_, _>>()
            .map_err(|e| query_err(what)(e.to_string()))?,
        Db::My(my) => my
            .exec(
                "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' \
                 AND lower(table_name) LIKE 'druid\\_%' ORDER BY table_name LIMIT ?",
                (MAX_TABLES as u64,),
            )
            .await
            .map_err(|e| query_err(what)(e.to_string()))?,
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let rows = count(db, &name).await?;
        out.push((name, rows));
    }
    Ok(out)
}

/// `name` quoted as an identifier of `kind` (names come from the database itself, but are
/// quoted all the same).
pub fn quote_ident(kind: DbKind, name: &str) -> String {
    match kind {
        DbKind::Postgresql => pg_ident(name),
        DbKind::Mysql => my_ident(name),
    }
}

/// `"name"` for PostgreSQL, a quote doubled.
pub fn pg_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `` `name` `` for MySQL, a backquote doubled.
pub fn my_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `SELECT COUNT(*)` of a table named as the database has it.
pub async fn count(db: &mut Db, table: &str) -> Result<u64, MetaError> {
    let sql = format!("SELECT COUNT(*) FROM {}", quote_ident(db.kind(), table));
    let what = format!("counting the rows of {table}");
    let n: i64 = match db {
        Db::Pg(pg) => pg
            .query_one(&sql, &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| query_err(&what)(super::pg_why(&e)))?,
        Db::My(my) => my
            .query_first(sql)
            .await
            .map_err(|e| query_err(&what)(e.to_string()))?
            .unwrap_or(0),
    };
    Ok(n.max(0) as u64)
}

/// The columns of `table` (named as the database has it), in their ordinal order; at most
/// [`MAX_COLUMNS`]. An unknown table has none.
pub async fn columns(db: &mut Db, table: &str) -> Result<Vec<Column>, MetaError> {
    let what = format!("reading the columns of {table}");
    let rows: Vec<(String, String, String)> = match db {
        Db::Pg(pg) => pg
            .query(
                "SELECT column_name::text, data_type::text, is_nullable::text \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position LIMIT $2",
                &[&table, &(MAX_COLUMNS as i64)],
            )
            .await
            .map_err(|e| query_err(&what)(super::pg_why(&e)))?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| query_err(&what)(e.to_string()))?,
        Db::My(my) => my
            .exec(
                "SELECT CAST(column_name AS CHAR), CAST(data_type AS CHAR), \
                 CAST(is_nullable AS CHAR) FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = ? \
                 ORDER BY ordinal_position LIMIT ?",
                (table, MAX_COLUMNS as u64),
            )
            .await
            .map_err(|e| query_err(&what)(e.to_string()))?,
    };
    Ok(rows
        .into_iter()
        .map(|(name, sql_type, nullable)| Column {
            name,
            sql_type,
            nullable: nullable.eq_ignore_ascii_case("YES"),
        })
        .collect())
}

/// The primary key's columns of `table`, in key order (for a deterministic dump order).
pub async fn primary_key(db: &mut Db, table: &str) -> Result<Vec<String>, MetaError> {
    let what = format!("reading the primary key of {table}");
    match db {
        Db::Pg(pg) => pg
            .query(
                "SELECT k.column_name::text FROM information_schema.table_constraints c \
                 JOIN information_schema.key_column_usage k \
                 ON k.constraint_schema = c.constraint_schema \
                 AND k.constraint_name = c.constraint_name AND k.table_name = c.table_name \
                 WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = current_schema() \
                 AND c.table_name = $1 ORDER BY k.ordinal_position LIMIT $2",
                &[&table, &(MAX_COLUMNS as i64)],
            )
            .await
            .map_err(|e| query_err(&what)(super::pg_why(&e)))?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(|e| query_err(&what)(e.to_string())),
        Db::My(my) => my
            .exec(
                "SELECT CAST(column_name AS CHAR) FROM information_schema.key_column_usage \
                 WHERE table_schema = DATABASE() AND table_name = ? \
                 AND constraint_name = 'PRIMARY' ORDER BY ordinal_position LIMIT ?",
                (table, MAX_COLUMNS as u64),
            )
            .await
            .map_err(|e| query_err(&what)(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_types_map_to_the_target_and_names_are_quoted() {
        assert_eq!(sql_type_for(DbKind::Postgresql, "longblob"), "BYTEA");
        assert_eq!(sql_type_for(DbKind::Mysql, "bytea"), "LONGBLOB");
        assert_eq!(sql_type_for(DbKind::Mysql, "boolean"), "BOOLEAN");
        assert_eq!(sql_type_for(DbKind::Postgresql, "tinyint(1)"), "BOOLEAN");
        assert_eq!(sql_type_for(DbKind::Postgresql, "bigint(20)"), "BIGINT");
        assert_eq!(sql_type_for(DbKind::Mysql, "character varying"), "LONGTEXT");
        assert_eq!(sql_type_for(DbKind::Postgresql, "varchar(255)"), "TEXT");
        assert_eq!(
            sql_type_for(DbKind::Postgresql, "double"),
            "DOUBLE PRECISION"
        );
        assert_eq!(pg_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(my_ident("a`b"), "`a``b`");
    }

    #[test]
    fn names_match_without_case_and_report_druids_spelling() {
        assert_eq!(canonical("druid_datasource"), Some("druid_dataSource"));
        assert_eq!(canonical("DRUID_SEGMENTS"), Some("druid_segments"));
        assert_eq!(
            canonical("druid_pendingsegments"),
            Some("druid_pendingSegments")
        );
        assert_eq!(canonical("druid_other"), None);
    }

    #[test]
    fn ddl_spells_each_kind_as_druid_does() {
        let pg = ddl(DbKind::Postgresql, "druid_segments").unwrap();
        assert!(pg[0].starts_with("CREATE TABLE IF NOT EXISTS druid_segments ("));
        assert!(pg[0].contains("payload BYTEA NOT NULL"), "{}", pg[0]);
        assert!(pg[0].contains("\"end\" VARCHAR(255) NOT NULL"));
        assert!(pg[0].contains("used_status_last_updated VARCHAR(255) NOT NULL"));
        assert_eq!(
            pg[2],
            "CREATE INDEX IF NOT EXISTS idx_druid_segments_datasource_used_end_start ON \
             druid_segments(dataSource, used, \"end\", start)"
        );
        let my = ddl(DbKind::Mysql, "druid_segments").unwrap();
        assert_eq!(my.len(), 1);
        assert!(my[0].contains("`end` VARCHAR(255)"));
        assert!(
            my[0].contains("dataSource VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        );
        assert!(my[0].contains("payload LONGBLOB NOT NULL"));
        assert!(my[0].ends_with(") ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4"));
        let sup = ddl(DbKind::Postgresql, "druid_supervisors").unwrap();
        assert!(sup[0].contains("id BIGSERIAL NOT NULL"));
        let sup = ddl(DbKind::Mysql, "DRUID_SUPERVISORS").unwrap();
        assert!(sup[0].contains("id BIGINT(20) AUTO_INCREMENT NOT NULL"));
        assert!(sup[0].contains("INDEX idx_druid_supervisors_spec_id (spec_id)"));
        for t in &DURABLE[..7] {
            for k in [DbKind::Postgresql, DbKind::Mysql] {
                assert!(ddl(k, t).is_some(), "{t}");
            }
        }
        assert_eq!(ddl(DbKind::Postgresql, "druid_indexingStates"), None);
        assert_eq!(ddl(DbKind::Mysql, "druid_tasks"), None);
        assert_eq!(ddl(DbKind::Mysql, "users"), None);
    }

    #[test]
    fn types_are_told_apart_and_identifiers_quoted() {
        assert!(is_binary("bytea") && is_binary("longblob") && is_binary("LONGBLOB"));
        assert!(!is_binary("character varying") && !is_binary("bigint"));
        assert!(is_bool("boolean") && !is_bool("tinyint"));
        assert_eq!(quote_ident(DbKind::Postgresql, "a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident(DbKind::Mysql, "a`b"), "`a``b`");
        let cols = [
            Column {
                name: "name".into(),
                sql_type: "character varying".into(),
                nullable: false,
            },
            Column {
                name: "payload".into(),
                sql_type: "bytea".into(),
                nullable: true,
            },
        ];
        assert_eq!(
            create_from_columns(DbKind::Mysql, "druid_indexingStates", &cols),
            "CREATE TABLE IF NOT EXISTS `druid_indexingStates` (`name` LONGTEXT NOT NULL, \
             `payload` LONGBLOB) ENGINE=InnoDB DEFAULT CHARACTER SET utf8mb4"
        );
        assert_eq!(sql_type_for(DbKind::Postgresql, "tinyint"), "BOOLEAN");
    }
}
