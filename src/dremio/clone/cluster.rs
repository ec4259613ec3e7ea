//! A live Dremio cluster as a clone target: its connection, and what a plan's target keeps from
//! its export (ids, tags, collaboration versions, sources' configs) to change its objects later.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use super::export::{Entry, Remote};
use super::mapping::{Mapping, fill_masked, masked_fields};
use super::model::Object;
use crate::clone::item::Action;
use crate::clone::kind::{Key, key};

/// Reads environment variables (a closure, so that tests need not touch the process's).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A logged-in Dremio cluster, with the secrets of the run's mapping.
pub struct DremioCluster {
    pub remote: Arc<Remote>,
    pub(super) mapping: Mapping,
    pub(super) env: Env,
    /// Target ids and versions by object key: filled by an export that keeps its index,
    /// completed as objects are created.
    pub(super) index: Mutex<HashMap<Key, Entry>>,
    /// (kind word, field) the target refused as unknown: dropped from later bodies up front.
    pub(super) dropped: Mutex<HashSet<(String, String)>>,
    pub(super) requests: AtomicU64,
    pub(super) unanswered: AtomicU64,
}

impl DremioCluster {
    pub fn new(remote: Arc<Remote>, mapping: Mapping, env: Env) -> DremioCluster {
        DremioCluster {
            remote,
            mapping,
            env,
            index: Mutex::new(HashMap::new()),
            dropped: Mutex::new(HashSet::new()),
            requests: AtomicU64::new(0),
            unanswered: AtomicU64::new(0),
        }
    }

    pub(super) fn entry(&self, k: &Key) -> Option<Entry> {
        self.index.lock().expect("index lock").get(k).cloned()
    }

    pub(super) fn remember(&self, k: Key, e: Entry) {
        self.index.lock().expect("index lock").insert(k, e);
    }

    /// Why a source cannot be sent: the secrets that stay masked once the target's own values
    /// (on an update) and the mapping's are put in.
    pub(super) fn missing_secrets(
        &self,
        o: &Object,
        source: &str,
        action: Action,
    ) -> Option<String> {
        let given = match self.mapping.source_secrets(source, self.env.as_ref()) {
            Err(e) => return Some(e),
            Ok(given) => given,
        };
        let mut config = o.body.get("config").cloned().unwrap_or_default();
        let masked = if action == Action::Update {
            let raw = self.entry(&key(o.kind, &o.path)).and_then(|e| e.config);
            fill_masked(&mut config, raw.as_deref())
        } else {
            masked_fields(&config)
        };
        let missing: Vec<String> = masked
            .into_iter()
            .filter(|m| !given.iter().any(|(k, _)| k == m))
            .map(|m| format!("config.{m}"))
            .collect();
        if missing.is_empty() {
            return None;
        }
        Some(if action == Action::Update {
            format!(
                "the export masks {} and the target has no value there: map them under [secrets.{source}] in the mapping file (--mapping)",
                missing.join(", ")
            )
        } else {
            format!(
                "a new source needs its secrets ({}): map them under [secrets.{source}] in the mapping file (--mapping)",
                missing.join(", ")
            )
        })
    }
}
