//! The metadata store: what Druid keeps in its `druid_rules`, `druid_config` and `druid_audit`
//! tables. Handlers see only [`MetadataStore`]: the embedded [`FileStore`] here, or the real
//! tables in PostgreSQL or MariaDB (`crate::sql`).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

/// Who made a change, from the `X-Druid-Author` / `X-Druid-Comment` headers and the peer address.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditInfo {
    pub author: String,
    pub comment: String,
    pub ip: String,
}

/// One `druid_audit` row.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub key: String,
    pub kind: String,
    pub info: AuditInfo,
    /// `created_date`, ISO-8601 UTC.
    pub created: String,
    /// The payload as Druid stores it: the serialised new value.
    pub payload: String,
}

impl AuditEntry {
    /// The shape of Druid's history endpoints (`payload` is a JSON string, not an object).
    pub fn to_json(&self) -> Value {
        json!({
            "key": self.key,
            "type": self.kind,
            "auditInfo": {"author": self.info.author, "comment": self.info.comment, "ip": self.info.ip},
            "payload": self.payload,
            "auditTime": self.created,
        })
    }

    /// Reads back what [`AuditEntry::to_json`] wrote (a missing field reads as empty).
    pub fn from_json(v: &Value) -> AuditEntry {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        AuditEntry {
            key: s(&v["key"]),
            kind: s(&v["type"]),
            info: AuditInfo {
                author: s(&v["auditInfo"]["author"]),
                comment: s(&v["auditInfo"]["comment"]),
                ip: s(&v["auditInfo"]["ip"]),
            },
            created: s(&v["auditTime"]),
            payload: s(&v["payload"]),
        }
    }
}

/// The tables the Coordinator and Overlord APIs read and write. Every write that Druid audits
/// takes its [`AuditInfo`] so that the value and its audit row land together (one transaction
/// in an SQL store).
pub trait MetadataStore: Send {
    /// The newest rules of every datasource (`druid_rules`, highest version per dataSource).
    fn rules(&self) -> Result<BTreeMap<String, Value>>;
    /// A new version of one datasource's rules, audited as type `rules`, key `datasource`.
    fn set_rules(&mut self, datasource: &str, rules: Value, audit: &AuditInfo) -> Result<()>;
    /// Writes rules with no audit row, as Druid does for the `_default` rule of a new store.
    fn init_rules(&mut self, datasource: &str, rules: Value) -> Result<()>;
    /// A `druid_config` row by name.
    fn config(&self, name: &str) -> Result<Option<Value>>;
    /// Replaces a `druid_config` row, audited with the row's name as both key and type
    /// (Druid's JacksonConfigManager).
    fn set_config(&mut self, name: &str, payload: Value, audit: &AuditInfo) -> Result<()>;
    /// `druid_audit` rows of a type (and key, when given), oldest first.
    fn audit(&self, kind: &str, key: Option<&str>) -> Result<Vec<AuditEntry>>;
    /// A new `druid_supervisors` row: Druid never updates one, each change (a terminated
    /// supervisor's tombstone too) inserts a version.
    fn insert_supervisor(&mut self, spec_id: &str, payload: Value) -> Result<()>;
    /// `druid_supervisors` rows of one supervisor (or of all), oldest first.
    fn supervisor_rows(&self, spec_id: Option<&str>) -> Result<Vec<SupervisorRow>>;
}

/// One `druid_supervisors` row.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorRow {
    pub spec_id: String,
    /// `created_date`, ISO-8601 UTC.
    pub created: String,
    pub payload: Value,
}

/// The tables as one JSON document, in memory or in a file that every write replaces atomically.
#[derive(Debug, Default)]
pub struct FileStore {
    path: Option<PathBuf>,
    rules: BTreeMap<String, Value>,
    config: BTreeMap<String, Value>,
    audit: Vec<AuditEntry>,
    supervisors: Vec<SupervisorRow>,
}

impl FileStore {
    /// A store that lives as long as the process.
    pub fn memory() -> FileStore {
        FileStore::default()
    }

    /// The store in `dir/metadata.json`, created when missing.
    pub fn open(dir: &Path) -> Result<FileStore> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("metadata.json");
        let mut st = FileStore {
            path: Some(path.clone()),
            ..FileStore::default()
        };
        if path.exists() {
            let text =
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            st.load(&serde_json::from_str(&text).context("parsing metadata.json")?)?;
        }
        Ok(st)
    }

    fn load(&mut self, doc: &Value) -> Result<()> {
        let map = |k: &str| -> BTreeMap<String, Value> {
            doc[k]
                .as_object()
                .map(|o| o.clone().into_iter().collect())
                .unwrap_or_default()
        };
        self.rules = map("druid_rules");
        self.config = map("druid_config");
        self.audit = doc["druid_audit"]
            .as_array()
            .map(|a| a.iter().map(AuditEntry::from_json).collect())
            .unwrap_or_default();
        self.supervisors = doc["druid_supervisors"]
            .as_array()
            .map(|a| a.iter().map(supervisor_from_json).collect())
            .unwrap_or_default();
        Ok(())
    }

    fn save(&self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let doc = json!({
            "druid_rules": self.rules,
            "druid_config": self.config,
            "druid_audit": self.audit.iter().map(AuditEntry::to_json).collect::<Vec<_>>(),
            "druid_supervisors": self.supervisors.iter().map(|r| json!({
                "spec_id": r.spec_id, "created_date": r.created, "payload": r.payload,
            })).collect::<Vec<_>>(),
        });
        write_atomic(path, doc.to_string().as_bytes())
    }

    fn push_audit(&mut self, key: &str, kind: &str, payload: &Value, info: &AuditInfo) {
        self.audit.push(AuditEntry {
            key: key.to_string(),
            kind: kind.to_string(),
            info: info.clone(),
            created: now_iso(),
            payload: payload.to_string(),
        });
    }
}

impl MetadataStore for FileStore {
    fn rules(&self) -> Result<BTreeMap<String, Value>> {
        Ok(self.rules.clone())
    }

    fn set_rules(&mut self, datasource: &str, rules: Value, audit: &AuditInfo) -> Result<()> {
        self.push_audit(datasource, "rules", &rules, audit);
        self.rules.insert(datasource.to_string(), rules);
        self.save()
    }

    fn init_rules(&mut self, datasource: &str, rules: Value) -> Result<()> {
        self.rules.insert(datasource.to_string(), rules);
        self.save()
    }

    fn config(&self, name: &str) -> Result<Option<Value>> {
        Ok(self.config.get(name).cloned())
    }

    fn set_config(&mut self, name: &str, payload: Value, audit: &AuditInfo) -> Result<()> {
        self.push_audit(name, name, &payload, audit);
        self.config.insert(name.to_string(), payload);
        self.save()
    }

    fn audit(&self, kind: &str, key: Option<&str>) -> Result<Vec<AuditEntry>> {
        Ok(self
            .audit
            .iter()
            .filter(|e| e.kind == kind && key.is_none_or(|k| e.key == k))
            .cloned()
            .collect())
    }

    fn insert_supervisor(&mut self, spec_id: &str, payload: Value) -> Result<()> {
        self.supervisors.push(SupervisorRow {
            spec_id: spec_id.to_string(),
            created: now_iso(),
            payload,
        });
        self.save()
    }

    fn supervisor_rows(&self, spec_id: Option<&str>) -> Result<Vec<SupervisorRow>> {
        Ok(self
            .supervisors
            .iter()
            .filter(|r| spec_id.is_none_or(|id| r.spec_id == id))
            .cloned()
            .collect())
    }
}

fn supervisor_from_json(v: &Value) -> SupervisorRow {
    SupervisorRow {
        spec_id: v["spec_id"].as_str().unwrap_or_default().to_string(),
        created: v["created_date"].as_str().unwrap_or_default().to_string(),
        payload: v["payload"].clone(),
    }
}

/// Now, as Druid writes `created_date` (Joda's ISO form, milliseconds, `Z`).
pub fn now_iso() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A crash mid-write must leave the previous store whole: temporary file, fsync, rename.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        let mut f =
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> AuditInfo {
        AuditInfo {
            author: "ops".into(),
            comment: "why".into(),
            ip: "127.0.0.1".into(),
        }
    }

    #[test]
    fn a_file_store_reopens_with_its_rules_config_and_audit() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = FileStore::open(dir.path()).unwrap();
        st.set_rules("wiki", json!([{"type": "dropForever"}]), &who())
            .unwrap();
        st.set_config(
            "coordinator.config",
            json!({"maxSegmentsToMove": 5}),
            &who(),
        )
        .unwrap();
        let again = FileStore::open(dir.path()).unwrap();
        assert_eq!(
            again.rules().unwrap()["wiki"],
            json!([{"type": "dropForever"}])
        );
        assert_eq!(
            again.config("coordinator.config").unwrap(),
            Some(json!({"maxSegmentsToMove": 5}))
        );
        let audit = again.audit("rules", Some("wiki")).unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].info, who());
        assert!(again.audit("rules", Some("other")).unwrap().is_empty());
    }

    #[test]
    fn supervisor_rows_are_versions_kept_in_order_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = FileStore::open(dir.path()).unwrap();
        st.insert_supervisor("wiki", json!({"type": "kafka", "v": 1}))
            .unwrap();
        st.insert_supervisor("other", json!({"type": "kafka"}))
            .unwrap();
        st.insert_supervisor("wiki", json!({"type": "kafka", "v": 2}))
            .unwrap();
        let again = FileStore::open(dir.path()).unwrap();
        let wiki: Vec<Value> = again
            .supervisor_rows(Some("wiki"))
            .unwrap()
            .into_iter()
            .map(|r| r.payload["v"].clone())
            .collect();
        assert_eq!(wiki, vec![json!(1), json!(2)]);
        assert_eq!(again.supervisor_rows(None).unwrap().len(), 3);
    }
}
