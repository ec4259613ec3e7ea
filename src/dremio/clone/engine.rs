//! The engine's view of a live Dremio cluster: [`DremioCluster`] as a [`Cluster`], exporting through
//! [`export`] and applying items through [`apply`].

use std::sync::atomic::Ordering;

use super::cluster::DremioCluster;
use super::model::{Kind, Object, Part};
use super::{Dremio, apply, export};
use crate::clone::cluster::{Cluster, ExportRun, Exported};
use crate::clone::filter::Filter;
use crate::clone::item::{Action, Item};
use crate::clone::tree::Tree;

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
        apply::item(self, item, object, warnings).await
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn unanswered(&self) -> u64 {
        self.unanswered.load(Ordering::Relaxed)
    }
}
