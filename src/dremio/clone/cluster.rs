//! A live Dremio cluster as the engine's [`Cluster`]: its connection, and what a plan's target
//! keeps from its export (ids, tags, collaboration versions, sources' configs) to change its
//! objects later.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::Dremio;
use super::export::{self, Entry, Remote};
use super::mapping::{Mapping, fill_masked, masked_fields};
use super::model::{Kind, Object, Part};
use crate::clone::cluster::{Cluster, ExportRun, Exported};
use crate::clone::filter::Filter;
use crate::clone::kind::{Key, key};
use crate::clone::plan::{Action, Item};
use crate::clone::tree::Tree;

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
    fn missing_secrets(&self, o: &Object, source: &str, action: Action) -> Option<String> {
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

#[async_trait::async_trait]
impl Cluster<Dremio> for DremioCluster {
    async fn export(
        &self,
        tree: &Tree<Kind>,
        filter: &Filter,
        run: &ExportRun<'_>,
    ) -> anyhow::Result<Exported<Kind, Part>> {
        let (exported, entries) = export::export(self.remote.clone(), tree, filter, run).await?;
        self.index.lock().expect("index lock").extend(entries);
        Ok(exported)
    }

    fn blocked(&self, o: &Object, source_path: &[String], action: Action) -> Option<String> {
        if o.kind != Kind::Source {
            return None;
        }
        self.missing_secrets(o, &source_path[0], action)
    }

    async fn apply(
        &self,
        item: &Item<Kind, Part>,
        object: Option<Object>,
        warnings: &mut Vec<String>,
    ) -> Result<(), String> {
        super::apply::item(self, item, object, warnings).await
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn unanswered(&self) -> u64 {
        self.unanswered.load(Ordering::Relaxed)
    }
}
