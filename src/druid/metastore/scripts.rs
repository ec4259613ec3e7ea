//! What makes a backup loadable without lifeboat: `README.txt`, `load-postgresql.sql` (psql
//! `\copy`) and `load-mysql.sql` (`LOAD DATA LOCAL INFILE`), written beside the table files, with
//! the DDL, the column lists and the same fixes lifeboat's own load makes (the
//! `used_status_last_updated` backfill, sequences past the restored ids).

use std::path::Path;

use super::dump::TableDump;

/// Writes the three files into `dir`.
pub fn write(dir: &Path, tables: &[TableDump]) -> std::io::Result<()> {
    let _ = (dir, tables);
    todo!("helper A1")
}

/// Whether `name` is a top-level file a Druid backup's archive may hold (its table files, the
/// scripts and README): the archive layout of a Druid backup.
pub fn is_backup_file(name: &str) -> bool {
    let _ = name;
    todo!("helper A1")
}
