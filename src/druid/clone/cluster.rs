//! A live Druid cluster for the engine: its export, and what applying one item sends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};

use super::DruidSchema;
use super::endpoints::{
    self, COMPACTION, COMPACTION_CLUSTER, DYNAMIC, LOOKUPS, RULES, Repeat, SUPERVISORS, WORKER,
    checked,
};
use super::export::{self, Seen};
use super::mapping::Mapping;
use super::model::{Kind, Object, Part};
use super::security::Security;
use crate::clone::cluster::{Cluster, ExportRun, Exported};
use crate::clone::filter::Filter;
use crate::clone::item::{Action, Item};
use crate::clone::tree::Tree;
use crate::druid::rest::{Answer, Druid};

/// Reads environment variables (a closure, so that tests need not touch the process's).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A Druid cluster, with the run's mapping (its passwords).
pub struct DruidCluster {
    pub rest: Arc<Druid>,
    pub(super) mapping: Mapping,
    pub(super) env: Env,
    /// What the target's export saw (lookup versions), kept up to date as items apply.
    seen: Mutex<Seen>,
    /// Serialises the one-time lookups initialisation.
    lookups_init: tokio::sync::Mutex<()>,
    lookups_ready: AtomicBool,
}

impl DruidCluster {
    pub fn new(rest: Arc<Druid>, mapping: Mapping, env: Env) -> DruidCluster {
        DruidCluster {
            rest,
            mapping,
            env,
            seen: Mutex::new(Seen::default()),
            lookups_init: tokio::sync::Mutex::new(()),
            lookups_ready: AtomicBool::new(false),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().expect("seen lock")
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<Answer, String> {
        endpoints::send(&self.rest, method, path, body, repeat).await
    }

    async fn rules(&self, o: Option<Object>, ds: &str) -> Result<(), String> {
        let rules = o
            .and_then(|o| o.body.get("rules").cloned())
            .unwrap_or_else(|| json!([]));
        let path = format!("{}/{}", RULES, checked(ds)?);
        self.send(Method::POST, &path, Some(&rules), Repeat::Safe)
            .await?;
        Ok(())
    }

    async fn compaction(&self, action: Action, o: Option<Object>, ds: &str) -> Result<(), String> {
        let path = format!("{}/{}", COMPACTION, checked(ds)?);
        let Some(o) = o.filter(|_| action != Action::Delete) else {
            self.send(Method::DELETE, &path, None, Repeat::Once).await?;
            return Ok(());
        };
        let mut body = o.body;
        body.insert("dataSource".into(), json!(ds));
        self.send(
            Method::POST,
            COMPACTION,
            Some(&Value::Object(body)),
            Repeat::Safe,
        )
        .await?;
        Ok(())
    }

    /// Submits a supervisor (Druid restarts it only if the spec changed), or terminates it.
    async fn supervisor(&self, action: Action, o: Option<Object>, id: &str) -> Result<(), String> {
        let Some(o) = o.filter(|_| action != Action::Delete) else {
            let path = format!("{}/{}/terminate", SUPERVISORS, checked(id)?);
            self.send(Method::POST, &path, None, Repeat::Once).await?;
            return Ok(());
        };
        let path = format!("{}?skipRestartIfUnmodified=true", SUPERVISORS);
        let a = self
            .send(
                Method::POST,
                &path,
                Some(&Value::Object(o.body)),
                Repeat::Safe,
            )
            .await?;
        // The id is the spec's datasource: a tree whose file name says otherwise is a mistake.
        let got = a
            .json()?
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string);
        match got {
            Some(got) if got != id => Err(format!(
                "Druid created the supervisor {got:?}: the spec's dataSource is not its file's name"
            )),
            _ => Ok(()),
        }
    }

    /// Druid refuses lookups until `POST /lookups/config {}` has been sent once.
    async fn init_lookups(&self) -> Result<(), String> {
        if self.lookups_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one = self.lookups_init.lock().await;
        if !self.lookups_ready.load(Ordering::Acquire) {
            self.send(Method::POST, LOOKUPS, Some(&json!({})), Repeat::Safe)
                .await?;
            self.lookups_ready.store(true, Ordering::Release);
        }
        Ok(())
    }

    async fn lookup(
        &self,
        action: Action,
        o: Option<Object>,
        item: &Item<Kind, Part>,
    ) -> Result<(), String> {
        let parts = item.path.to_vec();
        let [tier, name] = parts.as_slice() else {
            return Err("a lookup's path is <tier>/<name>".into());
        };
        let path = format!("{LOOKUPS}/{}/{}", checked(tier)?, checked(name)?);
        let Some(o) = o.filter(|_| action != Action::Delete) else {
            self.send(Method::DELETE, &path, None, Repeat::Once).await?;
            return Ok(());
        };
        self.init_lookups().await?;
        let id = (tier.clone(), name.clone());
        let current = self.seen().versions.get(&id).cloned();
        let version = next_version(
            current.as_deref(),
            o.body.get("version").and_then(Value::as_str),
        );
        let body = json!({
            "version": version,
            "lookupExtractorFactory": o.body.get("lookupExtractorFactory").cloned().unwrap_or(Value::Null),
        });
        match self
            .send(Method::POST, &path, Some(&body), Repeat::Once)
            .await
        {
            Ok(_) => {
                self.seen().versions.insert(id, version);
                Ok(())
            }
            Err(e) if e.contains("version") => Err(format!(
                "lookup version conflict: the target refused version {version:?} over {}, so it changed since lifeboat read it; run again ({e})",
                current.as_deref().unwrap_or("none")
            )),
            Err(e) => Err(e),
        }
    }
}

/// The suffix lifeboat appends to a version it must raise: fixed-width digits, so that the next
/// one sorts above it as a Java string does (`v10` < `v9`).
const BUMP: &str = "~lb";
const BUMP_DIGITS: usize = 6;

/// The version to send: the source's when it sorts above the target's (the clusters then agree),
/// otherwise the target's raised by one step.
pub fn next_version(target: Option<&str>, source: Option<&str>) -> String {
    match (target, source) {
        (None, Some(s)) if !s.is_empty() => s.to_string(),
        (None, _) => "v1".to_string(),
        (Some(t), Some(s)) if s > t => s.to_string(),
        (Some(t), _) => bump(t),
    }
}

fn bump(t: &str) -> String {
    if let Some(at) = t.rfind(BUMP) {
        let digits = &t[at + BUMP.len()..];
        if digits.len() == BUMP_DIGITS
            && let Ok(n) = digits.parse::<u32>()
            && n < 999_999
        {
            return format!("{}{BUMP}{:0BUMP_DIGITS$}", &t[..at], n + 1);
        }
    }
    format!("{t}{BUMP}{:0BUMP_DIGITS$}", 1)
}

#[async_trait::async_trait]
impl Cluster<DruidSchema> for DruidCluster {
    async fn export(
        &self,
        tree: &Tree<Kind>,
        filter: &Filter,
        run: &ExportRun<'_>,
    ) -> anyhow::Result<Exported<Kind, Part>> {
        let (objects, seen) = export::read_all(&self.rest, filter).await?;
        if run.keep_index {
            self.lookups_ready
                .store(seen.lookups_ready, Ordering::Release);
            *self.seen() = seen;
        }
        export::write(tree, objects, filter, run)
    }

    fn blocked(&self, _o: &Object, _source_path: &[String], _action: Action) -> Option<String> {
        None
    }

    async fn apply(
        &self,
        item: &Item<Kind, Part>,
        object: Option<Object>,
        warnings: &mut Vec<String>,
    ) -> Result<(), String> {
        let label = item.label();
        let kind = item.what.kind();
        match kind {
            Kind::Rules => self.rules(object, &label).await,
            Kind::Lookup => self.lookup(item.action, object, item).await,
            Kind::Compaction => self.compaction(item.action, object, &label).await,
            Kind::Supervisor => self.supervisor(item.action, object, &label).await,
            Kind::AuthnUser | Kind::Role | Kind::AuthzUser => {
                let path = item.path.to_vec();
                let security = Security {
                    rest: &self.rest,
                    mapping: &self.mapping,
                    env: self.env.as_ref(),
                };
                security
                    .apply(kind, item.action, &path, object, warnings)
                    .await
            }
            Kind::DynamicConfig | Kind::WorkerConfig | Kind::CompactionCluster => {
                let body = Value::Object(object.map(|o| o.body).unwrap_or_default());
                let path = match kind {
                    Kind::DynamicConfig => DYNAMIC,
                    Kind::WorkerConfig => WORKER,
                    _ => COMPACTION_CLUSTER,
                };
                self.send(Method::POST, path, Some(&body), Repeat::Safe)
                    .await
                    .map(|_| ())
            }
        }
    }

    fn requests(&self) -> u64 {
        self.rest.requests()
    }

    fn unanswered(&self) -> u64 {
        self.rest.unanswered()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_above_the_targets_as_java_strings_do() {
        assert_eq!(next_version(None, Some("v3")), "v3");
        assert_eq!(next_version(Some("v2"), Some("v3")), "v3");
        // `v10` sorts below `v9`: the target's is raised instead.
        let v = next_version(Some("v9"), Some("v10"));
        assert_eq!(v, "v9~lb000001");
        assert!(v.as_str() > "v9");
        let again = next_version(Some(&v), Some("v10"));
        assert_eq!(again, "v9~lb000002");
        assert!(again > v);
        let top = next_version(Some("x~lb999999"), None);
        assert!(top.as_str() > "x~lb999999", "{top}");
        assert_eq!(next_version(None, None), "v1");
    }
}
