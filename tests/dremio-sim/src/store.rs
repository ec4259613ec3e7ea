//! The simulator's KV store: named tables of `key -> value`, values being JSON text (what Dremio's
//! JSON backup writes as the escaped `value` string). Each table lives in
//! `<paths.local>/db/sim/<table>.jsonl`, one `{"key": ..., "value": ...}` per line, rewritten
//! atomically on every change.

use std::collections::BTreeMap;
use std::fs;
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

/// One line of a table file, and of a JSON backup file.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub value: String,
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
}

/// Parses JSON-lines records (blank lines ignored).
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

impl Store {
    /// Opens (creating as needed) the store of a `paths.local`.
    pub fn open(paths_local: &Path) -> Result<Store> {
        let dir = sim_dir(paths_local);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut tables = BTreeMap::new();
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(table) = name.strip_suffix(".jsonl") else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let text = fs::read_to_string(e.path())?;
            let mut t = Table::new();
            for r in parse_jsonl(&text, &name)? {
                t.insert(r.key, r.value);
            }
            tables.insert(table.to_string(), t);
        }
        let mut store = Store { dir, tables };
        for t in KNOWN_TABLES {
            if !store.tables.contains_key(*t) {
                store.tables.insert(t.to_string(), Table::new());
                store.save_table(t)?;
            }
        }
        Ok(store)
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

    pub fn put(&mut self, t: &str, k: &str, v: String) -> Result<()> {
        self.tables
            .entry(t.to_string())
            .or_default()
            .insert(k.to_string(), v);
        self.save_table(t)
    }

    pub fn put_json(&mut self, t: &str, k: &str, v: &serde_json::Value) -> Result<()> {
        self.put(t, k, v.to_string())
    }

    pub fn delete(&mut self, t: &str, k: &str) -> Result<()> {
        if let Some(tab) = self.tables.get_mut(t)
            && tab.remove(k).is_some()
        {
            self.save_table(t)?;
        }
        Ok(())
    }

    fn save_table(&self, t: &str) -> Result<()> {
        check_table_name(t)?;
        let empty = Table::new();
        let tab = self.tables.get(t).unwrap_or(&empty);
        crate::util::write_atomic(
            &self.dir.join(format!("{t}.jsonl")),
            to_jsonl(tab.iter()).as_bytes(),
        )
    }
}

/// Table names become file names: refuse anything that could escape the directory.
pub fn check_table_name(t: &str) -> Result<()> {
    if t.is_empty() || t.starts_with('.') || t.contains('/') || t.contains('\0') {
        bail!("invalid table name {t:?}");
    }
    Ok(())
}
