//! The logical backup `dremio-admin backup` writes: per KV table `<table>_backup.json` (JSON lines) or
//! `<table>_backup.pb` (int32-BE length-prefixed key/value pairs) with `<table>_info.json`, plus
//! `uploads/` and `security/`. Dremio writes no manifest and no real checksum, so lifeboat checks the
//! record counts itself before shipping.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::DremioError;
use crate::limits;

/// The largest `<table>_info.json` read: dremio-admin writes about 200 bytes.
const MAX_INFO_BYTES: u64 = 1 << 20;
/// The most JSON values an info file may hold (dremio-admin's have about 15).
const MAX_INFO_VALUES: usize = 10_000;

/// What a checked logical backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub tables: u64,
    pub records: u64,
    pub binary: bool,
}

/// Whether a top-level archive member of a logical backup is one of its table files.
pub fn is_table_file(name: &str) -> bool {
    !name.contains('/')
        && (name.ends_with("_backup.json")
            || name.ends_with("_backup.pb")
            || name.ends_with("_info.json"))
}

/// Checks every table: its data file exists and (when uncompressed) holds as many records as its
/// info file says.
pub fn check_backup_dir(dir: &Path) -> Result<Summary, DremioError> {
    let incomplete = |problem: String| DremioError::IncompleteBackup {
        path: dir.to_path_buf(),
        problem,
    };
    let read_dir = std::fs::read_dir(dir).map_err(|source| DremioError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut infos: Vec<String> = Vec::new();
    for entry in read_dir {
        let name = entry
            .map_err(|source| DremioError::Read {
                path: dir.to_path_buf(),
                source,
            })?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(table) = name.strip_suffix("_info.json") {
            infos.push(table.to_string());
        }
    }
    infos.sort();
    if infos.is_empty() {
        return Err(incomplete("no <table>_info.json at all".into()));
    }
    let mut summary = Summary {
        tables: 0,
        records: 0,
        binary: false,
    };
    for table in &infos {
        let info_path = dir.join(format!("{table}_info.json"));
        let text = limits::read_capped_regular(&info_path, MAX_INFO_BYTES, "an info file")
            .map_err(|source| DremioError::Read {
                path: info_path.clone(),
                source,
            })?;
        limits::check_json_values(&text, MAX_INFO_VALUES, "a dremio-admin info file")
            .map_err(|e| incomplete(format!("{table}_info.json: {e}")))?;
        let info: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| incomplete(format!("{table}_info.json is not JSON: {e}")))?;
        let records = info
            .get("records")
            .and_then(|r| r.as_u64())
            .ok_or_else(|| incomplete(format!("{table}_info.json has no record count")))?;
        let binary = info
            .get("binary")
            .and_then(|b| b.as_bool())
            .unwrap_or(false);
        // 0 = none; lz4 and snappy frames are not counted here (Dremio's own restore reads them).
        let compressed = info
            .get("compression")
            .and_then(|c| c.as_u64())
            .unwrap_or(0)
            != 0;
        let data = dir.join(format!(
            "{table}_backup.{}",
            if binary { "pb" } else { "json" }
        ));
        if !data.is_file() {
            return Err(incomplete(format!(
                "table {table}: {} is missing",
                data.file_name().unwrap_or_default().to_string_lossy()
            )));
        }
        if !compressed {
            let found = if binary {
                count_pb(&data)
            } else {
                count_json(&data)
            }
            .map_err(|e| incomplete(format!("table {table}: {e}")))?;
            if found != records {
                return Err(incomplete(format!(
                    "table {table}: {found} records in its data file, its info file says {records}"
                )));
            }
        }
        summary.tables += 1;
        summary.records += records;
        summary.binary |= binary;
    }
    Ok(summary)
}

/// Counts the lines that hold more than whitespace, a buffer at a time: a table file's lines can
/// be long (a record's value is a whole JSON document) and nothing bounds them.
fn count_json(path: &Path) -> Result<u64, String> {
    let mut r = BufReader::new(File::open(path).map_err(|e| e.to_string())?);
    let mut n = 0;
    let mut blank = true;
    loop {
        let buf = r.fill_buf().map_err(|e| e.to_string())?;
        if buf.is_empty() {
            return Ok(n + u64::from(!blank));
        }
        for &b in buf {
            if b == b'\n' {
                n += u64::from(!blank);
                blank = true;
            } else if !b.is_ascii_whitespace() {
                blank = false;
            }
        }
        let len = buf.len();
        r.consume(len);
    }
}

fn count_pb(path: &Path) -> Result<u64, String> {
    let mut r = BufReader::new(File::open(path).map_err(|e| e.to_string())?);
    let mut n = 0;
    loop {
        let mut len = [0u8; 4];
        match r.read(&mut len[..1]) {
            Ok(0) => return Ok(n),
            Ok(_) => r
                .read_exact(&mut len[1..])
                .map_err(|_| "truncated key length".to_string())?,
            Err(e) => return Err(e.to_string()),
        }
        skip(&mut r, u32::from_be_bytes(len))?;
        r.read_exact(&mut len)
            .map_err(|_| "truncated value length".to_string())?;
        skip(&mut r, u32::from_be_bytes(len))?;
        n += 1;
    }
}

fn skip(r: &mut impl Read, len: u32) -> Result<(), String> {
    let copied = std::io::copy(&mut r.take(u64::from(len)), &mut std::io::sink())
        .map_err(|e| e.to_string())?;
    if copied != u64::from(len) {
        Err("truncated record".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pb(records: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in records {
            out.extend_from_slice(&(k.len() as u32).to_be_bytes());
            out.extend_from_slice(k);
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(v);
        }
        out
    }

    fn info(table: &str, records: u64, binary: bool) -> String {
        format!(
            r#"{{"kvstoreInfo":{{"tablename":"{table}","keyFormat":{{"type":0}},"valueFormat":{{"type":1}}}},"checksum":0,"records":{records},"binary":{binary},"compression":0}}"#
        )
    }

    #[test]
    fn counts_records_of_json_and_binary_tables() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("jobs_info.json"), info("jobs", 2, false)).unwrap();
        std::fs::write(
            d.join("jobs_backup.json"),
            "{\"key\":\"a\",\"value\":\"{}\"}\n{\"key\":\"b\",\"value\":\"{}\"}\n",
        )
        .unwrap();
        std::fs::write(d.join("userGroup_info.json"), info("userGroup", 3, true)).unwrap();
        std::fs::write(
            d.join("userGroup_backup.pb"),
            pb(&[(b"k1", b"v1"), (b"k2", b""), (b"", b"v3")]),
        )
        .unwrap();
        assert_eq!(
            check_backup_dir(d).unwrap(),
            Summary {
                tables: 2,
                records: 5,
                binary: true
            }
        );
        assert!(
            is_table_file("jobs_backup.json")
                && is_table_file("x_info.json")
                && !is_table_file("uploads/a_info.json")
        );
    }

    #[test]
    fn a_missing_table_file_or_a_wrong_count_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("jobs_info.json"), info("jobs", 2, false)).unwrap();
        let err = check_backup_dir(d).unwrap_err().to_string();
        assert!(err.contains("jobs_backup.json is missing"), "{err}");
        std::fs::write(
            d.join("jobs_backup.json"),
            "{\"key\":\"a\",\"value\":\"{}\"}\n",
        )
        .unwrap();
        let err = check_backup_dir(d).unwrap_err().to_string();
        assert!(
            err.contains("1 records in its data file, its info file says 2"),
            "{err}"
        );
        std::fs::write(d.join("t_info.json"), info("t", 1, true)).unwrap();
        std::fs::write(d.join("t_backup.pb"), &pb(&[(b"key", b"value")])[..9]).unwrap();
        std::fs::write(d.join("jobs_backup.json"), "{}\n{}\n").unwrap();
        assert!(
            check_backup_dir(d)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
    }
}
