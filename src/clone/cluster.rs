//! The two traits through which the engine talks to a cluster kind: [`Schema`] (pure rules over
//! objects of the tree: what is compared, what depends on what, renames) and [`Cluster`] (a
//! live cluster: read it into a tree, change one object on it).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::filter::Filter;
use super::item::{Action, Item};
use super::kind::{ArtefactKind, CatPath, Key, Object, PartKind, PartValue};
use super::tree::Tree;
use crate::progress::Progress;

/// A cluster kind's rules over the objects of a tree. One value per run: it may hold the run's
/// renames.
pub trait Schema: Send + Sync + 'static {
    type Kind: ArtefactKind;
    type Part: PartKind;

    /// The fields of the object itself that a plan compares: its parts left out, its text in.
    fn own_fields(&self, o: &Object<Self::Kind>) -> Map<String, Value>;

    /// The parts of the object, applied once the object is there.
    fn parts(&self, o: &Object<Self::Kind>) -> Vec<(Self::Part, PartValue)>;

    /// What the object reads besides its parent: per reference, the paths it may mean, in the
    /// order the cluster resolves them (the first one the plan holds is taken).
    fn references(&self, o: &Object<Self::Kind>) -> Vec<Vec<Vec<String>>>;

    /// The object as the target must hold it (renamed); `source` is the tree it comes from,
    /// for renames that depend on what else it holds.
    fn to_target(&self, o: Object<Self::Kind>, source: &Tree<Self::Kind>) -> Object<Self::Kind>;

    /// The source's path of a target's object: the inverse of [`Schema::to_target`]'s renames.
    fn source_path(&self, kind: Self::Kind, path: &[String]) -> Vec<String>;

    /// Apply rank by rank: nothing of a rank starts before every creation or update of a lower
    /// rank has settled (a documented sync order, such as Druid's supervisors last). Otherwise
    /// ranks only order the queue and the references alone say what waits.
    fn staged(&self) -> bool {
        false
    }
}

/// What one object of a cluster is there: its kind and its path as the cluster spells it (a
/// lookup may ignore case, files do not).
#[derive(Debug, Clone)]
pub struct Known<K> {
    pub kind: K,
    pub path: CatPath,
}

/// What an export did.
#[derive(Debug)]
pub struct Exported<K, P> {
    pub counts: HashMap<K, usize>,
    /// Parts counted by the export (not every kind of part is).
    pub parts: BTreeMap<P, usize>,
    pub removed_files: usize,
    pub warnings: Vec<String>,
    /// What the cluster holds, when the export was asked to keep it (a plan's target).
    pub index: HashMap<Key, Known<K>>,
}

impl<K, P> Default for Exported<K, P> {
    fn default() -> Self {
        Exported {
            counts: HashMap::new(),
            parts: BTreeMap::new(),
            removed_files: 0,
            warnings: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<K, P> Exported<K, P> {
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }
}

/// How an export runs.
pub struct ExportRun<'a> {
    /// `export`, `source` or `target`: named in progress lines.
    pub phase: &'a str,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Keep the index (and whatever the cluster needs to change its objects later): a plan's
    /// target needs it, a plain export does not, and its memory then does not grow with the
    /// cluster.
    pub keep_index: bool,
    pub progress: &'a dyn Progress,
    /// True once the run must stop (a signal): nothing is removed from the tree then.
    pub stop: &'a (dyn Fn() -> bool + Sync),
}

/// A live cluster of some kind.
#[async_trait::async_trait]
pub trait Cluster<S: Schema>: Send + Sync {
    /// Reads the cluster into `tree`: files rewritten only when their bytes change, files of
    /// objects the filter covers that the cluster no longer has removed. A read failure fails
    /// the export and then nothing is removed, so a partial walk never looks like deletions.
    async fn export(
        &self,
        tree: &Tree<S::Kind>,
        filter: &Filter,
        run: &ExportRun<'_>,
    ) -> anyhow::Result<Exported<S::Kind, S::Part>>;

    /// Why an object cannot be applied, known before applying (e.g. a secret that neither the
    /// export nor the mapping gives); `source_path` is its path in the source tree.
    fn blocked(
        &self,
        o: &Object<S::Kind>,
        source_path: &[String],
        action: Action,
    ) -> Option<String>;

    /// Applies one item: `object` is the source's object (the part's owner for a part) as the
    /// target must hold it, None for a deletion. Warnings go with the item's outcome.
    async fn apply(
        &self,
        item: &Item<S::Kind, S::Part>,
        object: Option<Object<S::Kind>>,
        warnings: &mut Vec<String>,
    ) -> Result<(), String>;

    /// Requests sent so far.
    fn requests(&self) -> u64;

    /// Requests in a row that got no answer at all (reset by any answer).
    fn unanswered(&self) -> u64;
}
