//! The plan: per object of the source (and, in mirror mode, of the target), what applying would do
//! (create, update with the fields that differ, delete, nothing), and what it must wait for
//! ([`super::graph`]): its parent, what it references, the object a part belongs to.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::CloneError;
use super::cluster::{Cluster, Known, Schema};
use super::filter::Filter;
use super::kind::{ArtefactKind, Key, Object, PartKind, PartValue, differing_fields, key};
use super::tree::Tree;

pub use super::item::{Action, Item, Plan, What};

/// How far applying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Create what the target lacks; leave what differs.
    CreateOnly,
    /// Create what the target lacks and update what differs (never removes anything).
    Update,
    /// Also delete, inside the filters, what the source lacks (needs --allow-delete).
    Mirror,
}

impl Mode {
    pub fn word(self) -> &'static str {
        match self {
            Mode::CreateOnly => "create-only",
            Mode::Update => "update",
            Mode::Mirror => "mirror",
        }
    }
}

/// What the planner reads.
pub struct Inputs<'a, S: Schema> {
    pub schema: &'a S,
    pub source: &'a Tree<S::Kind>,
    /// The target, exported with its index.
    pub target: &'a Tree<S::Kind>,
    pub index: &'a HashMap<Key, Known<S::Kind>>,
    /// Says what cannot be applied before applying (e.g. a secret nobody gives).
    pub cluster: &'a dyn Cluster<S>,
    pub filter: &'a Filter,
    pub mode: Mode,
}

type ItemOf<S> = Item<<S as Schema>::Kind, <S as Schema>::Part>;
type PlanOf<S> = Plan<<S as Schema>::Kind, <S as Schema>::Part>;

/// Create, update, leave or nothing, from the fields that differ.
fn compared(changed: &[String], mode: Mode) -> Action {
    match (changed.is_empty(), mode) {
        (true, _) => Action::Unchanged,
        (false, Mode::CreateOnly) => Action::Left,
        (false, _) => Action::Update,
    }
}

/// Compares one object of the source (already renamed for the target) with the target's, adding
/// its items.
fn plan_object<S: Schema>(
    inp: &Inputs<S>,
    o: Object<S::Kind>,
    src_path: Vec<String>,
    plan: &mut PlanOf<S>,
) -> Result<(), CloneError> {
    let what = What::Object(o.kind);
    let existing = match inp.index.get(&key(o.kind, &o.path)) {
        Some(t) if t.kind != o.kind => {
            let mut it = Item::new(what, &o.path, Some(&src_path), Action::Update);
            it.blocked = Some(format!("the target has a {} at this path", t.kind.word()));
            plan.items.push(it);
            return Ok(());
        }
        // The target's own spelling of the path: the same object may differ in case.
        Some(t) => inp.target.read(o.kind, &t.path.to_vec())?,
        None => None,
    };
    let mut main = match &existing {
        None => Item::new(what, &o.path, Some(&src_path), Action::Create),
        Some(t) => {
            let changed = differing_fields(&inp.schema.own_fields(&o), &inp.schema.own_fields(t));
            let mut it = Item::new(what, &o.path, Some(&src_path), compared(&changed, inp.mode));
            it.changed = changed;
            it
        }
    };
    if matches!(main.action, Action::Create | Action::Update) {
        main.blocked = inp.cluster.blocked(&o, &src_path, main.action);
    }
    let sets_state = main.action == Action::Create || inp.mode != Mode::CreateOnly;
    plan.items.push(main);
    let theirs = existing
        .as_ref()
        .map(|t| inp.schema.parts(t))
        .unwrap_or_default();
    for (part, mine) in inp.schema.parts(&o) {
        if inp.filter.skips(part.spec().skip) {
            continue;
        }
        let theirs = theirs.iter().find(|(p, _)| *p == part).map(|(_, v)| v);
        let what = What::Part(o.kind, part);
        match mine {
            PartValue::Document(mine) => {
                let theirs = match theirs {
                    Some(PartValue::Document(t)) => t.as_ref(),
                    _ => None,
                };
                let doc = (mine.is_some(), theirs.is_some(), mine.as_ref() != theirs);
                if let Some(action) = attached(doc, sets_state, inp.mode) {
                    plan.items
                        .push(Item::new(what, &o.path, Some(&src_path), action));
                }
            }
            PartValue::Members(mine) => {
                let theirs = match theirs {
                    Some(PartValue::Members(t)) => t.as_slice(),
                    _ => &[],
                };
                plan_members(inp.mode, what, &o.path, &src_path, &mine, theirs, plan);
            }
        }
    }
    Ok(())
}

/// The items of named members (reflections): each compared by name; in mirror mode, the
/// target's members that the source lacks are deleted.
fn plan_members<K: ArtefactKind, P: PartKind>(
    mode: Mode,
    what: What<K, P>,
    path: &[String],
    src_path: &[String],
    mine: &[(String, Map<String, Value>)],
    theirs: &[(String, Map<String, Value>)],
    plan: &mut Plan<K, P>,
) {
    for (name, m) in mine {
        let (action, changed) = match theirs.iter().find(|(n, _)| n == name) {
            None => (Action::Create, vec![]),
            Some((_, t)) => {
                let changed = differing_fields(m, t);
                (compared(&changed, mode), changed)
            }
        };
        let mut it = Item::new(what, path, Some(src_path), action);
        it.name = Some(name.clone());
        it.changed = changed;
        plan.items.push(it);
    }
    if mode == Mode::Mirror {
        for (name, _) in theirs {
            if !mine.iter().any(|(n, _)| n == name) {
                let mut it = Item::new(what, path, None, Action::Delete);
                it.name = Some(name.clone());
                plan.items.push(it);
            }
        }
    }
}

/// What applying does with a document attached to an object (its wiki, its tags), given whether
/// the source and the target have one and whether they differ: set it when it differs, clear it
/// only in mirror mode, and list it as unchanged when equal (so that runs count the same items).
fn attached(
    (mine, theirs, differ): (bool, bool, bool),
    sets_state: bool,
    mode: Mode,
) -> Option<Action> {
    match (mine, theirs, differ) {
        (false, false, _) => None,
        (_, _, false) => Some(Action::Unchanged),
        _ if !sets_state => Some(Action::Left),
        (false, true, true) if mode == Mode::Mirror => Some(Action::Update),
        (false, true, true) => None,
        (true, true, true) => Some(Action::Update),
        (true, false, true) => Some(Action::Create),
    }
}

/// Makes the plan.
pub fn make<S: Schema>(inp: &Inputs<S>) -> Result<PlanOf<S>, CloneError> {
    let mut plan = Plan::default();
    // References, resolved once every item is known (keys of candidates), by the index of the
    // object's item before sorting.
    let mut refs: Vec<(usize, Vec<Vec<Key>>)> = Vec::new();
    // Keys of the source's objects (as on the target), for mirror's "does the source lack it".
    let mut in_source: HashSet<Key> = HashSet::new();
    for found in inp.source.objects() {
        let (kind, path) = found?;
        let wanted = if kind.spec().container {
            inp.filter.keeps_container(kind, &path)
        } else {
            inp.filter.selects(kind, &path)
        };
        if !wanted {
            continue;
        }
        let Some(o) = inp.source.read(kind, &path)? else {
            continue;
        };
        // Renamed once, as the target must have it.
        let o = inp.schema.to_target(o, inp.source);
        in_source.insert(key(kind, &o.path));
        let first = plan.items.len();
        let cands = inp.schema.references(&o);
        plan_object(inp, o, path, &mut plan)?;
        if !cands.is_empty() {
            let keys = cands
                .into_iter()
                .map(|c| c.iter().map(|p| key(kind, p)).collect())
                .collect::<Vec<Vec<Key>>>();
            refs.push((first, keys));
        }
    }
    if inp.mode == Mode::Mirror {
        plan_deletions(inp, &in_source, &mut plan)?;
    }
    super::graph::order(&mut plan, refs);
    Ok(plan)
}

/// Objects of the target, inside the filters, that the source lacks (outermost only: a container's
/// deletion takes its contents); kinds that are not deletable stay.
fn plan_deletions<S: Schema>(
    inp: &Inputs<S>,
    in_source: &HashSet<Key>,
    plan: &mut PlanOf<S>,
) -> Result<(), CloneError> {
    let mut doomed: Vec<(S::Kind, Vec<String>)> = Vec::new();
    for found in inp.target.objects() {
        let (kind, path) = found?;
        if !kind.spec().deletable {
            continue;
        }
        let src = inp.schema.source_path(kind, &path);
        if !inp.filter.selects(kind, &src) {
            continue;
        }
        // By key, not by file name: `SALES` on the target is the source's `Sales`.
        if !in_source.contains(&key(kind, &path)) {
            doomed.push((kind, path));
        }
    }
    doomed.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then(a.1.cmp(&b.1)));
    let mut gone: Vec<(&'static str, Vec<String>)> = Vec::new();
    for (kind, path) in doomed {
        let spec = kind.spec();
        let folded: Vec<String> = if spec.fold_case {
            path.iter().map(|p| p.to_lowercase()).collect()
        } else {
            path.clone()
        };
        if gone
            .iter()
            .any(|(folder, g)| *folder == spec.folder && folded.starts_with(g))
        {
            continue;
        }
        if spec.container {
            // Deleting a container deletes all inside it, including what the filters leave out.
            let src = inp.schema.source_path(kind, &path);
            if inp.filter.excludes_below(&src) || spec.holds.iter().any(|w| inp.filter.skips(*w)) {
                plan.warnings.push(format!(
                    "{} {} is not deleted: the filters leave out things inside it",
                    kind.word(),
                    path.join("/")
                ));
                continue;
            }
            gone.push((spec.folder, folded));
        }
        plan.items.push(ItemOf::<S>::new(
            What::Object(kind),
            &path,
            None,
            Action::Delete,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attached_documents_are_set_cleared_only_in_mirror_and_counted_when_equal() {
        let u = Mode::Update;
        assert_eq!(attached((true, false, true), true, u), Some(Action::Create));
        assert_eq!(attached((true, true, true), true, u), Some(Action::Update));
        assert_eq!(
            attached((true, true, false), true, u),
            Some(Action::Unchanged)
        );
        assert_eq!(
            attached((false, true, true), true, u),
            None,
            "update never removes"
        );
        assert_eq!(
            attached((false, true, true), true, Mode::Mirror),
            Some(Action::Update)
        );
        assert_eq!(attached((false, false, false), true, u), None);
        assert_eq!(
            attached((true, true, true), false, Mode::CreateOnly),
            Some(Action::Left)
        );
    }
}
