//! What makes a backup loadable without lifeboat: `README.txt`, `load-postgresql.sql` (psql
//! `\copy`) and `load-mysql.sql` (`LOAD DATA LOCAL INFILE`), written beside the table files, with
//! the DDL, the column lists and the same fixes lifeboat's own load makes (the
//! `used_status_last_updated` backfill, sequences past the restored ids).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::DbKind;
use super::tables::{self, DURABLE, TableDump};

pub const README: &str = "README.txt";
pub const LOAD_POSTGRESQL: &str = "load-postgresql.sql";
pub const LOAD_MYSQL: &str = "load-mysql.sql";

/// Tables whose `id` is a serial (PostgreSQL sequences are set past the restored ids).
const SERIAL: [&str; 3] = ["druid_supervisors", "druid_audit", "druid_segmentSchemas"];

/// Writes the three files into `dir`.
pub fn write(dir: &Path, tables: &[TableDump]) -> std::io::Result<()> {
    for (name, text) in [
        (README, readme(tables)),
        (LOAD_POSTGRESQL, postgresql(tables)),
        (LOAD_MYSQL, mysql(tables)),
    ] {
        let mut f = std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(name))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    Ok(())
}

/// Whether `name` is a top-level file a Druid backup's archive may hold (its table files, the
/// scripts and README): the archive layout of a Druid backup.
pub fn is_backup_file(name: &str) -> bool {
    name == README
        || name == LOAD_POSTGRESQL
        || name == LOAD_MYSQL
        || name
            .strip_suffix(".csv")
            .is_some_and(|t| DURABLE.contains(&t))
}

fn readme(tables: &[TableDump]) -> String {
    let mut list = String::new();
    for t in tables {
        list.push_str(&format!(
            "  {:<28} {:>10} rows  columns: {}\n",
            t.file,
            t.rows,
            t.columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    format!(
        "A backup of Apache Druid's metadata store, written by lifeboat.\n\
         \n\
         Every table was read in one repeatable-read snapshot, so the segments and the\n\
         datasource offsets (druid_dataSource) belong to the same moment. Transient tables\n\
         (tasks, locks, pending segments) are left out on purpose.\n\
         \n\
         Files:\n{list}  {LOAD_POSTGRESQL:<28} loads them into PostgreSQL with psql\n  \
         {LOAD_MYSQL:<28} loads them into MySQL or MariaDB\n\
         \n\
         The CSV dialect (the same for both databases): RFC 4180, a header line of column\n\
         names, every value in double quotes (a quote inside doubled), NULL as the bare word\n\
         NULL (a quoted \"NULL\" is text), binary columns (payloads) as \\x and lowercase hex,\n\
         booleans as 1 and 0, each record ended by a line feed. Hex keeps payloads byte-exact:\n\
         no backslash or character-set damage.\n\
         \n\
         Load by hand into an EMPTY database (the scripts create Druid's tables if missing,\n\
         load everything in one transaction, fill a missing used_status_last_updated with the\n\
         load's time, and set PostgreSQL's id sequences past the loaded ids). From this folder:\n\
         \n\
         \x20 psql -v ON_ERROR_STOP=1 -d 'postgres://USER@HOST:5432/DB' -f {LOAD_POSTGRESQL}\n\
         \x20 mariadb --local-infile=1 -h HOST -P 3306 -u USER -p DB < {LOAD_MYSQL}\n\
         \n\
         Supervisors come back as they were: suspend them (or check their stream offsets in\n\
         druid_dataSource) before the Overlord starts them. `lifeboat restore` does all of this\n\
         itself, restores supervisors suspended and can rewrite deep-storage locations.\n"
    )
}

/// `"name"` for PostgreSQL: lower case, as its unquoted DDL folded it.
fn pg_col(name: &str) -> String {
    tables::quote_ident(DbKind::Postgresql, &name.to_ascii_lowercase())
}

fn create(kind: DbKind, t: &TableDump) -> Vec<String> {
    tables::ddl(kind, &t.name)
        .unwrap_or_else(|| vec![tables::create_from_columns(kind, &t.name, &t.columns)])
}

const PG_NOW: &str = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";

fn postgresql(tables: &[TableDump]) -> String {
    let mut s = String::from(
        "-- Loads this folder's table files into an empty PostgreSQL database, in one\n\
         -- transaction. Run from this folder: psql -v ON_ERROR_STOP=1 -d URL -f load-postgresql.sql\n\
         \\set ON_ERROR_STOP on\n\
         BEGIN;\n",
    );
    for t in tables {
        for stmt in create(DbKind::Postgresql, t) {
            s.push_str(&stmt);
            s.push_str(";\n");
        }
    }
    let copy_opts = "WITH (FORMAT csv, HEADER true, NULL 'NULL')";
    for t in tables {
        let cols: Vec<String> = t.columns.iter().map(|c| pg_col(&c.name)).collect();
        let cols = cols.join(", ");
        if t.name == "druid_segments" {
            // through a table without NOT NULL: old Druid left used_status_last_updated NULL
            s.push_str(&format!(
                "CREATE TEMP TABLE lifeboat_segments ON COMMIT DROP AS \
                 SELECT * FROM druid_segments WITH NO DATA;\n\
                 \\copy lifeboat_segments ({cols}) FROM '{}' {copy_opts}\n",
                t.file
            ));
            let mut insert: Vec<String> = t.columns.iter().map(|c| pg_col(&c.name)).collect();
            let used_status = pg_col("used_status_last_updated");
            if !insert.contains(&used_status) {
                insert.push(used_status.clone());
            }
            let select: Vec<String> = insert
                .iter()
                .map(|c| {
                    if *c == used_status {
                        format!("COALESCE(NULLIF({c}, ''), {PG_NOW})")
                    } else {
                        c.clone()
                    }
                })
                .collect();
            s.push_str(&format!(
                "INSERT INTO druid_segments ({}) SELECT {} FROM lifeboat_segments;\n",
                insert.join(", "),
                select.join(", ")
            ));
        } else {
            s.push_str(&format!(
                "\\copy {} ({cols}) FROM '{}' {copy_opts}\n",
                t.name, t.file
            ));
        }
    }
    for t in tables {
        if SERIAL.contains(&t.name.as_str()) {
            s.push_str(&format!(
                "SELECT setval(pg_get_serial_sequence('{0}', 'id'), COALESCE(MAX(id), 1), \
                 MAX(id) IS NOT NULL) FROM {0};\n",
                t.name.to_ascii_lowercase()
            ));
        }
    }
    s.push_str("COMMIT;\n");
    s
}

fn mysql(tables: &[TableDump]) -> String {
    let mut s = String::from(
        "-- Loads this folder's table files into an empty MySQL/MariaDB database, in one\n\
         -- transaction (the tables are created first: DDL commits on its own). Run from this\n\
         -- folder: mariadb --local-infile=1 -h HOST -P PORT -u USER -p DB < load-mysql.sql\n\
         SET NAMES utf8mb4;\n\
         SET @lifeboat_now = CONCAT(SUBSTRING(DATE_FORMAT(UTC_TIMESTAMP(3), '%Y-%m-%dT%H:%i:%s.%f'), 1, 23), 'Z');\n",
    );
    for t in tables {
        for stmt in create(DbKind::Mysql, t) {
            s.push_str(&stmt);
            s.push_str(";\n");
        }
    }
    s.push_str("START TRANSACTION;\n");
    for t in tables {
        let mut targets = Vec::new();
        let mut sets = Vec::new();
        for (i, c) in t.columns.iter().enumerate() {
            let col = tables::quote_ident(DbKind::Mysql, &c.name);
            let var = format!("@c{i}");
            if tables::is_binary(&c.sql_type) {
                sets.push(format!("{col} = UNHEX(SUBSTRING({var}, 3))"));
                targets.push(var);
            } else if t.name == "druid_segments"
                && c.name.eq_ignore_ascii_case("used_status_last_updated")
            {
                sets.push(format!(
                    "{col} = COALESCE(NULLIF({var}, ''), @lifeboat_now)"
                ));
                targets.push(var);
            } else {
                targets.push(col);
            }
        }
        if t.name == "druid_segments"
            && !t
                .columns
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case("used_status_last_updated"))
        {
            sets.push("used_status_last_updated = @lifeboat_now".into());
        }
        s.push_str(&format!(
            "LOAD DATA LOCAL INFILE '{}' INTO TABLE {} CHARACTER SET utf8mb4 \
             FIELDS TERMINATED BY ',' ENCLOSED BY '\"' ESCAPED BY '' \
             LINES TERMINATED BY '\\n' IGNORE 1 LINES ({}){};\n",
            t.file,
            tables::quote_ident(DbKind::Mysql, &t.name),
            targets.join(", "),
            if sets.is_empty() {
                String::new()
            } else {
                format!(" SET {}", sets.join(", "))
            }
        ));
    }
    s.push_str("COMMIT;\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::druid::metastore::tables::Column;

    fn col(name: &str, sql_type: &str, nullable: bool) -> Column {
        Column {
            name: name.into(),
            sql_type: sql_type.into(),
            nullable,
        }
    }

    fn segments() -> TableDump {
        TableDump {
            name: "druid_segments".into(),
            file: "druid_segments.csv".into(),
            columns: vec![
                col("id", "character varying", false),
                col("datasource", "character varying", false),
                col("end", "character varying", false),
                col("payload", "bytea", false),
                col("used_status_last_updated", "character varying", true),
            ],
            rows: 3,
            bytes: 100,
        }
    }

    #[test]
    fn backup_files_are_the_durable_tables_and_the_three_scripts() {
        for ok in [
            "druid_segments.csv",
            "druid_dataSource.csv",
            "README.txt",
            "load-mysql.sql",
            "load-postgresql.sql",
        ] {
            assert!(is_backup_file(ok), "{ok}");
        }
        for bad in [
            "druid_tasks.csv",
            "druid_datasource.csv",
            "x.csv",
            "../druid_segments.csv",
            "db/druid_segments.csv",
            "",
        ] {
            assert!(!is_backup_file(bad), "{bad}");
        }
    }

    #[test]
    fn scripts_load_hex_payloads_backfill_and_set_sequences() {
        let sup = TableDump {
            name: "druid_supervisors".into(),
            file: "druid_supervisors.csv".into(),
            columns: vec![
                col("id", "bigint", false),
                col("spec_id", "varchar", false),
                col("payload", "longblob", false),
            ],
            rows: 1,
            bytes: 10,
        };
        let pg = postgresql(&[segments(), sup.clone()]);
        assert!(pg.starts_with("-- Loads"), "{pg}");
        assert!(pg.contains("CREATE TABLE IF NOT EXISTS druid_segments ("));
        assert!(pg.contains(
            "\\copy lifeboat_segments (\"id\", \"datasource\", \"end\", \"payload\", \
             \"used_status_last_updated\") FROM 'druid_segments.csv' WITH (FORMAT csv, \
             HEADER true, NULL 'NULL')"
        ));
        assert!(pg.contains("COALESCE(NULLIF(\"used_status_last_updated\", ''), to_char("));
        assert!(pg.contains("SELECT setval(pg_get_serial_sequence('druid_supervisors', 'id')"));
        assert!(pg.trim_end().ends_with("COMMIT;"));
        let my = mysql(&[segments(), sup]);
        assert!(
            my.contains(
                "LOAD DATA LOCAL INFILE 'druid_supervisors.csv' INTO TABLE `druid_supervisors` \
             CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' ENCLOSED BY '\"' ESCAPED BY '' \
             LINES TERMINATED BY '\\n' IGNORE 1 LINES (`id`, `spec_id`, @c2) \
             SET `payload` = UNHEX(SUBSTRING(@c2, 3));"
            ),
            "{my}"
        );
        assert!(
            my.contains("`used_status_last_updated` = COALESCE(NULLIF(@c4, ''), @lifeboat_now)")
        );
        assert!(my.find("START TRANSACTION").unwrap() > my.find("CREATE TABLE").unwrap());
    }

    #[test]
    fn files_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[segments()]).unwrap();
        for f in [README, LOAD_POSTGRESQL, LOAD_MYSQL] {
            let m = std::fs::metadata(dir.path().join(f)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
        }
        assert!(write(dir.path(), &[segments()]).is_err());
        let readme = std::fs::read_to_string(dir.path().join(README)).unwrap();
        assert!(readme.contains("druid_segments.csv") && readme.contains("3 rows"));
    }
}
