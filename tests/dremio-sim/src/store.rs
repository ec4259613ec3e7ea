//! The simulator's KV store: named tables of `key -> value`, values being JSON text (what Dremio's
//! JSON backup writes as the escaped `value` string). Each table lives in
//! `<paths.local>/db/sim/<table>.jsonl`, an append-only journal: a put appends
//! `{"key": ..., "value": ...}`, a delete appends a tombstone `{"key": ..., "deleted": true}`, and
//! the last line for a key wins. A journal is compacted (rewritten atomically with only the live
//! records) when the store opens and when it grows past twice its live records, so that a
//! catalog of 10,000 objects does not rewrite a whole table on every change.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// One table: key -> value (JSON text).
pub type Table = BTreeMap<String, String>;

/// Tables every simulated store has (created empty when missing).
pub const KNOWN_TABLES: &[&str] = &[
    "configuration",
    "dac-namespace",
    "userGroup",
    "tokens",
    "jobs",
    "profiles",
    "options",
    "collaboration_wiki",
    "collaboration_tags",
    "reflection_goals",
];

/// Journals shorter than this are never compacted while running (tiny tables such as
/// `configuration` would otherwise be rewritten on every other change).
const COMPACT_MIN_LINES: usize = 64;

/// One line of a JSON backup file (and of a compacted table file).
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub value: String,
}

/// One line of a table journal: a put (`value`) or a tombstone (`deleted`).
#[derive(Debug, Serialize, Deserialize)]
pub struct JournalLine {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// Directory of the table files under a `paths.local`.
pub fn sim_dir(paths_local: &Path) -> PathBuf {
    paths_local.join("db").join("sim")
}

/// Loaded tables, written through to disk.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    pub tables: BTreeMap<String, Table>,
    /// Lines in each table's journal (live records plus superseded ones and tombstones).
    lines: BTreeMap<String, usize>,
}

/// Parses JSON-lines records (blank lines ignored); every line needs a value (backup files).
pub fn parse_jsonl(text: &str, what: &str) -> Result<Vec<Record>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<Record>(l)
                .with_context(|| format!("{what}: line {}: bad record", i + 1))
        })
        .collect()
}

/// Replays a table journal: the last line for a key wins, a tombstone removes it. Returns the
/// live records and the number of journal lines. A last line cut short (no newline, not JSON) is
/// the trace of a process killed mid-write and is dropped; any other bad line is an error.
pub fn replay_journal(text: &str, what: &str) -> Result<(Table, usize)> {
    let mut t = Table::new();
    let mut n = 0;
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let line = match serde_json::from_str::<JournalLine>(l) {
            Ok(line) => line,
            Err(_) if i + 1 == lines.len() && !complete => break,
            Err(e) => bail!("{what}: line {}: bad record: {e}", i + 1),
        };
        n += 1;
        match (line.value, line.deleted) {
            (_, true) => {
                t.remove(&line.key);
            }
            (Some(v), false) => {
                t.insert(line.key, v);
            }
            (None, false) => bail!("{what}: line {}: record without value", i + 1),
        }
    }
    Ok((t, n))
}

/// Renders records as JSON lines.
pub fn to_jsonl<'a>(records: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    let mut out = String::new();
    for (k, v) in records {
        let line = serde_json::json!({"key": k, "value": v});
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

/// Reads every table file of a store directory: (tables, journal lines per table).
fn read_dir_tables(dir: &Path) -> Result<(BTreeMap<String, Table>, BTreeMap<String, usize>)> {
    let mut tables = BTreeMap::new();
    let mut lines = BTreeMap::new();
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(table) = name.strip_suffix(".jsonl") else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let text = fs::read_to_string(e.path())?;
        let (t, n) = replay_journal(&text, &name)?;
        // a cut-short last line must go before anything is appended after it
        let n = if text.is_empty() || text.ends_with('\n') {
            n
        } else {
            usize::MAX
        };
        tables.insert(table.to_string(), t);
        lines.insert(table.to_string(), n);
    }
    Ok((tables, lines))
}

impl Store {
    /// Opens (creating as needed) the store of a `paths.local`, compacting every journal that
    /// holds more lines than live records. Only the active master (or `seed`) should open it.
    pub fn open(paths_local: &Path) -> Result<Store> {
        let dir = sim_dir(paths_local);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let (tables, lines) = read_dir_tables(&dir)?;
        let mut store = Store { dir, tables, lines };
        for t in KNOWN_TABLES {
            store.tables.entry(t.to_string()).or_default();
        }
        let names: Vec<String> = store.tables.keys().cloned().collect();
        for t in names {
            let live = store.tables[&t].len();
            let on_disk = store.lines.get(&t).copied();
            if on_disk != Some(live) || !store.dir.join(format!("{t}.jsonl")).is_file() {
                store.compact(&t)?;
            }
        }
        Ok(store)
    }

    /// Reads the tables of a `paths.local` without writing anything (no compaction, no missing
    /// tables created): for inspecting the store of a running simulator.
    pub fn load(paths_local: &Path) -> Result<BTreeMap<String, Table>> {
        Ok(read_dir_tables(&sim_dir(paths_local))?.0)
    }

    /// Writes a whole set of tables into an (empty) store directory: used by restore.
    pub fn write_all(paths_local: &Path, tables: &BTreeMap<String, Table>) -> Result<()> {
        let dir = sim_dir(paths_local);
        for (name, t) in tables {
            check_table_name(name)?;
            crate::util::write_atomic(
                &dir.join(format!("{name}.jsonl")),
                to_jsonl(t.iter()).as_bytes(),
            )?;
        }
        Ok(())
    }

    pub fn table(&self, t: &str) -> Option<&Table> {
        self.tables.get(t)
    }

    pub fn get(&self, t: &str, k: &str) -> Option<&String> {
        self.tables.get(t).and_then(|t| t.get(k))
    }

    /// Value parsed as JSON.
    pub fn get_json(&self, t: &str, k: &str) -> Option<serde_json::Value> {
        self.get(t, k).and_then(|v| serde_json::from_str(v).ok())
    }

    /// Values of a table parsed as JSON, in key order.
    pub fn values_json(&self, t: &str) -> Vec<serde_json::Value> {
        self.tables
            .get(t)
            .map(|t| {
                t.values()
                    .filter_map(|v| serde_json::from_str(v).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of lines in a table's journal (for tests of the compaction).
    pub fn journal_lines(&self, t: &str) -> usize {
        self.lines.get(t).copied().unwrap_or(0)
    }

    pub fn put(&mut self, t: &str, k: &str, v: String) -> Result<()> {
        let line = serde_json::json!({"key": k, "value": v}).to_string();
        self.tables
            .entry(t.to_string())
            .or_default()
            .insert(k.to_string(), v);
        self.append(t, &line)
    }

    pub fn put_json(&mut self, t: &str, k: &str, v: &serde_json::Value) -> Result<()> {
        self.put(t, k, v.to_string())
    }

    pub fn delete(&mut self, t: &str, k: &str) -> Result<()> {
        if let Some(tab) = self.tables.get_mut(t)
            && tab.remove(k).is_some()
        {
            let line = serde_json::json!({"key": k, "deleted": true}).to_string();
            self.append(t, &line)?;
        }
        Ok(())
    }

    /// Appends one journal line, then compacts when the journal has grown past twice the live
    /// records. The file is opened by path each time (O_APPEND), so that a compaction's rename
    /// never leaves a stale descriptor writing into an unlinked file. No fsync per line: like
    /// RocksDB's default WAL, a write survives a killed process (the page cache keeps it), which is
    /// what the HA tests need; a compaction does fsync.
    fn append(&mut self, t: &str, line: &str) -> Result<()> {
        check_table_name(t)?;
        let path = self.dir.join(format!("{t}.jsonl"));
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // one write per line: a concurrent reader never sees half a record
        f.write_all(format!("{line}\n").as_bytes())
            .with_context(|| format!("appending to {}", path.display()))?;
        let n = self.lines.entry(t.to_string()).or_default();
        *n += 1;
        let lines = *n;
        let live = self.tables.get(t).map_or(0, |x| x.len());
        if lines > COMPACT_MIN_LINES && lines > 2 * live {
            self.compact(t)?;
        }
        Ok(())
    }

    /// Rewrites a table's journal atomically with only its live records.
    fn compact(&mut self, t: &str) -> Result<()> {
        check_table_name(t)?;
        let empty = Table::new();
        let tab = self.tables.get(t).unwrap_or(&empty);
        crate::util::write_atomic(
            &self.dir.join(format!("{t}.jsonl")),
            to_jsonl(tab.iter()).as_bytes(),
        )?;
        self.lines.insert(t.to_string(), tab.len());
        Ok(())
    }
}

/// Table names become file names: refuse anything that could escape the directory.
pub fn check_table_name(t: &str) -> Result<()> {
    if t.is_empty() || t.starts_with('.') || t.contains('/') || t.contains('\0') {
        bail!("invalid table name {t:?}");
    }
    Ok(())
}
