//! The `dremio-admin backup` logical format.
//!
//! `<backupDir>/dremio_backup_yyyy-MM-dd_HH.mm/` (UTC, mode 0700) holding, per KV table,
//! `<table>_backup.json` (JSON lines `{"key", "value"}`) or `<table>_backup.pb` (repeated
//! int32-BE key length, key, int32-BE value length, value) and `<table>_info.json`; plus
//! `uploads/` and `security/` copies.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::store::{Store, Table, check_table_name, parse_jsonl, to_jsonl};
use crate::util::{copy_tree, write_atomic};

/// Key format written in info files (protostuff enum number; Dremio's numbering unconfirmed).
pub const KEY_FORMAT_TYPE: i64 = 1;
/// Value format written in info files (protostuff enum number; Dremio's numbering unconfirmed).
pub const VALUE_FORMAT_TYPE: i64 = 1;

/// What a backup produced (the REST answer).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupStats {
    pub backup_path: String,
    pub tables: u64,
    pub files: u64,
}

/// Options of one backup.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub binary: bool,
    pub include_profiles: bool,
    /// A damage to inflict on the backup (for negative tests).
    pub fault: Option<BackupFault>,
}

/// Environment variable of the `dremio-sim` process naming a [`BackupFault`].
pub const FAULT_ENV: &str = "DREMIO_SIM_BACKUP_FAULT";

/// A deliberate damage to a backup, for negative tests.
#[derive(Debug, Clone, PartialEq)]
pub enum BackupFault {
    /// `drop-table:<table>`: the table's info file is written, its data file is not.
    DropTable(String),
    /// `miscount:<table>`: the table's info file states one record more than written.
    Miscount(String),
}

impl BackupFault {
    fn table(&self) -> &str {
        match self {
            BackupFault::DropTable(t) | BackupFault::Miscount(t) => t,
        }
    }
}

/// Parses a [`FAULT_ENV`] value: `drop-table:<table>` or `miscount:<table>`.
pub fn parse_fault(s: &str) -> Result<BackupFault> {
    let bad =
        || anyhow::anyhow!("{FAULT_ENV}={s:?}: expected drop-table:<table> or miscount:<table>");
    let (kind, table) = s.split_once(':').ok_or_else(bad)?;
    if table.is_empty() {
        return Err(bad());
    }
    match kind {
        "drop-table" => Ok(BackupFault::DropTable(table.to_string())),
        "miscount" => Ok(BackupFault::Miscount(table.to_string())),
        _ => Err(bad()),
    }
}

/// Uploads directory of a `paths.local` (`<paths.local>/pdfs/uploads/_uploads`).
pub fn uploads_dir(paths_local: &Path) -> PathBuf {
    paths_local.join("pdfs").join("uploads").join("_uploads")
}

/// Security directory of a `paths.local`.
pub fn security_dir(paths_local: &Path) -> PathBuf {
    paths_local.join("security")
}

/// Name of the backup directory for a UTC time.
pub fn backup_dir_name(now: chrono::DateTime<chrono::Utc>) -> String {
    format!("dremio_backup_{}", now.format("%Y-%m-%d_%H.%M"))
}

/// Encodes records in the binary (`.pb`) layout.
pub fn encode_pb(t: &Table) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in t {
        out.extend_from_slice(&(k.len() as i32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as i32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// Decodes the binary (`.pb`) layout.
pub fn decode_pb(data: &[u8], what: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut i = 0usize;
    let take = |i: &mut usize| -> Result<String> {
        if data.len() - *i < 4 {
            bail!("{what}: truncated length at byte {}", *i);
        }
        let n = i32::from_be_bytes(data[*i..*i + 4].try_into().unwrap());
        *i += 4;
        if n < 0 || (data.len() - *i) < n as usize {
            bail!("{what}: bad length {n} at byte {}", *i - 4);
        }
        let s = String::from_utf8(data[*i..*i + n as usize].to_vec())
            .with_context(|| format!("{what}: non-UTF-8 bytes at {}", *i))?;
        *i += n as usize;
        Ok(s)
    };
    while i < data.len() {
        let k = take(&mut i)?;
        let v = take(&mut i)?;
        out.push((k, v));
    }
    Ok(out)
}

/// Writes a backup of `store` (and of the uploads/security of `paths_local`) under `backup_dir`.
/// The parent of `backup_dir` must exist; `backup_dir` itself is created when missing.
pub fn write_backup(
    store: &Store,
    paths_local: &Path,
    backup_dir: &Path,
    opts: &BackupOptions,
) -> Result<BackupStats> {
    if !backup_dir.is_absolute() {
        bail!(
            "Backup directory {} must be an absolute path",
            backup_dir.display()
        );
    }
    let parent = backup_dir.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        bail!(
            "Cannot create backup directory {}: parent directory {} does not exist",
            backup_dir.display(),
            parent.display()
        );
    }
    if !backup_dir.is_dir() {
        fs::create_dir(backup_dir)
            .with_context(|| format!("Cannot create backup directory {}", backup_dir.display()))?;
    }
    if let Some(f) = &opts.fault {
        let t = f.table();
        let written = store.tables.contains_key(t)
            && t != "tokens"
            && (t != "profiles" || opts.include_profiles);
        if !written {
            bail!("{FAULT_ENV} names table {t:?}, which this backup does not write");
        }
    }
    let target = backup_dir.join(backup_dir_name(chrono::Utc::now()));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&target)
        .with_context(|| format!("Cannot create backup directory {}", target.display()))?;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o700))?;

    let mut tables = 0;
    for (name, t) in &store.tables {
        if name == "tokens" || (name == "profiles" && !opts.include_profiles) {
            continue;
        }
        let (file, data) = if opts.binary {
            (format!("{name}_backup.pb"), encode_pb(t))
        } else {
            (
                format!("{name}_backup.json"),
                to_jsonl(t.iter()).into_bytes(),
            )
        };
        if opts.fault != Some(BackupFault::DropTable(name.clone())) {
            write_atomic(&target.join(file), &data)?;
        }
        let records =
            t.len() + usize::from(opts.fault == Some(BackupFault::Miscount(name.clone())));
        let info = json!({
            "kvstoreInfo": {
                "tablename": name,
                "keyFormat": {"type": KEY_FORMAT_TYPE},
                "valueFormat": {"type": VALUE_FORMAT_TYPE}
            },
            "checksum": 0,
            "records": records,
            "binary": opts.binary,
            "compression": 0
        });
        write_atomic(
            &target.join(format!("{name}_info.json")),
            serde_json::to_string_pretty(&info)?.as_bytes(),
        )?;
        tables += 1;
    }
    let mut files = 0;
    let uploads = uploads_dir(paths_local);
    if uploads.is_dir() {
        files += copy_tree(&uploads, &target.join("uploads"), false)?;
    } else {
        fs::create_dir(target.join("uploads"))?;
    }
    let security = security_dir(paths_local);
    if security.is_dir() {
        files += copy_tree(&security, &target.join("security"), true)?;
    }
    Ok(BackupStats {
        backup_path: target.display().to_string(),
        tables,
        files,
    })
}

/// The content of a backup directory.
#[derive(Debug)]
pub struct LoadedBackup {
    pub tables: BTreeMap<String, Table>,
}

#[derive(Debug, Deserialize)]
struct InfoFile {
    #[serde(rename = "kvstoreInfo")]
    kvstore_info: KvInfo,
    records: u64,
    binary: bool,
    #[serde(default)]
    compression: i64,
}

#[derive(Debug, Deserialize)]
struct KvInfo {
    tablename: String,
}

/// Reads and checks every table of a backup directory (record counts against the info files).
pub fn read_backup(dir: &Path) -> Result<LoadedBackup> {
    if !dir.is_dir() {
        bail!("Backup directory {} does not exist", dir.display());
    }
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("_info.json"))
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("No table info files (*_info.json) in {}", dir.display());
    }
    let mut tables = BTreeMap::new();
    for n in names {
        let text = fs::read_to_string(dir.join(&n))?;
        let info: InfoFile =
            serde_json::from_str(&text).with_context(|| format!("{n}: bad info file"))?;
        let table = info.kvstore_info.tablename;
        check_table_name(&table)?;
        if n != format!("{table}_info.json") {
            bail!("{n}: names table {table:?}");
        }
        if info.compression != 0 {
            bail!("{n}: compression {} is not supported", info.compression);
        }
        let data_name = if info.binary {
            format!("{table}_backup.pb")
        } else {
            format!("{table}_backup.json")
        };
        let data_path = dir.join(&data_name);
        if !data_path.is_file() {
            bail!(
                "Missing data file {} for table {table}",
                data_path.display()
            );
        }
        let records: Vec<(String, String)> = if info.binary {
            decode_pb(&fs::read(&data_path)?, &data_name)?
        } else {
            parse_jsonl(&fs::read_to_string(&data_path)?, &data_name)?
                .into_iter()
                .map(|r| (r.key, r.value))
                .collect()
        };
        if records.len() as u64 != info.records {
            bail!(
                "Table {table}: {} records in {data_name}, {} expected by {n}",
                records.len(),
                info.records
            );
        }
        tables.insert(table, records.into_iter().collect::<Table>());
    }
    Ok(LoadedBackup { tables })
}

/// Restores a backup into `paths_local` (whose `db` must be empty or missing). Returns
/// (tables, files).
pub fn restore(paths_local: &Path, backup: &Path) -> Result<(u64, u64)> {
    let loaded = read_backup(backup)?;
    Store::write_all(paths_local, &loaded.tables)?;
    let uploads = uploads_dir(paths_local);
    if uploads.exists() {
        fs::remove_dir_all(&uploads).with_context(|| format!("removing {}", uploads.display()))?;
    }
    fs::create_dir_all(&uploads)?;
    let mut files = 0;
    if backup.join("uploads").is_dir() {
        files += copy_tree(&backup.join("uploads"), &uploads, false)?;
    }
    if backup.join("security").is_dir() {
        files += copy_tree(&backup.join("security"), &security_dir(paths_local), true)?;
    }
    Ok((loaded.tables.len() as u64, files))
}
