//! The plan: per object of the source (and, in mirror mode, of the target), what applying would do
//! (create, update with the fields that differ, delete, nothing), and what it must wait for:
//! parents, the datasets and UDFs a view's SQL reads, the dataset of a reflection, wiki or tags.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::CloneError;
use super::export::{Entry, Key, key};
use super::filter::{Filter, Skip};
use super::mapping::{Mapping, fill_masked, masked_fields};
use super::model::{CatPath, Kind, Object, differing_fields};
use super::sql;
use super::tree::Tree;

/// How far applying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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

/// What a plan item is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum What {
    Object(Kind),
    /// A reflection of a dataset (its name in [`Item::name`]).
    Reflection,
    Wiki,
    Tags,
}

impl What {
    pub fn word(self) -> &'static str {
        match self {
            What::Object(k) => k.word(),
            What::Reflection => "reflection",
            What::Wiki => "wiki",
            What::Tags => "tags",
        }
    }

    /// Order of application (and of the report): sources, spaces, folders, promoted datasets,
    /// views, UDFs, reflections, wikis, tags, users.
    fn rank(self) -> u8 {
        match self {
            What::Object(Kind::User) => 9,
            What::Object(k) => k as u8,
            What::Reflection => 6,
            What::Wiki => 7,
            What::Tags => 8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
    Unchanged,
    /// Differs, but create-only mode leaves existing objects alone.
    Left,
}

impl Action {
    pub fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Unchanged => "unchanged",
            Action::Left => "left",
        }
    }

    /// Whether applying sends anything.
    pub fn acts(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

/// One line of the plan.
#[derive(Debug, Clone)]
pub struct Item {
    pub what: What,
    /// The object's path on the target.
    pub path: CatPath,
    /// Its path in the source tree when it differs (a rename); see [`Item::source`].
    source_path: Option<CatPath>,
    /// A reflection's name.
    pub name: Option<String>,
    pub action: Action,
    /// Fields that differ (updates).
    pub changed: Vec<String>,
    /// Items to wait for (indexes into [`Plan::items`]).
    pub deps: Vec<usize>,
    /// Why the item cannot be applied, known before applying (a reference cycle, a missing secret,
    /// a kind clash); it is then skipped, and so are its dependents.
    pub blocked: Option<String>,
}

impl Item {
    pub fn new(
        what: What,
        path: &[String],
        source_path: Option<&[String]>,
        action: Action,
    ) -> Item {
        Item {
            what,
            path: CatPath::new(path),
            // Most objects keep their path: store the source's only when it differs.
            source_path: source_path.filter(|p| *p != path).map(CatPath::new),
            name: None,
            action,
            changed: vec![],
            deps: vec![],
            blocked: None,
        }
    }

    /// Where the object is in the source tree; None for a deletion (the source lacks it).
    pub fn source(&self) -> Option<&CatPath> {
        if self.action == Action::Delete {
            None
        } else {
            Some(self.source_path.as_ref().unwrap_or(&self.path))
        }
    }

    /// `Sales/Reports/monthly`, plus `#name` for a reflection.
    pub fn label(&self) -> String {
        let mut l = self.path.label();
        if let Some(n) = &self.name {
            l.push('#');
            l.push_str(n);
        }
        l
    }

    pub fn to_json(&self, items: &[Item]) -> Value {
        let mut v = json!({
            "kind": self.what.word(),
            "path": self.label(),
            "action": self.action.word(),
        });
        if !self.changed.is_empty() {
            v["changed"] = json!(self.changed);
        }
        if let Some(b) = &self.blocked {
            v["blocked"] = json!(b);
        }
        let deps: Vec<String> = self
            .deps
            .iter()
            .filter(|d| items[**d].action.acts())
            .map(|d| format!("{} {}", items[*d].what.word(), items[*d].label()))
            .collect();
        if !deps.is_empty() {
            v["after"] = json!(deps);
        }
        v
    }
}

/// The plan of a run.
#[derive(Debug, Default)]
pub struct Plan {
    pub items: Vec<Item>,
    pub warnings: Vec<String>,
}

impl Plan {
    /// Counts per action, blocked items apart.
    pub fn summary(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for a in ["create", "update", "delete", "unchanged", "left", "blocked"] {
            m.insert(a.into(), json!(0));
        }
        for i in &self.items {
            let k = if i.blocked.is_some() {
                "blocked"
            } else {
                i.action.word()
            };
            m[k] = json!(m[k].as_u64().unwrap_or(0) + 1);
        }
        m
    }

    /// The one-line human form of an item, or None for items that need nothing.
    pub fn line(&self, i: &Item) -> Option<String> {
        let sign = match (i.action, &i.blocked) {
            (_, Some(_)) => "!",
            (Action::Create, _) => "+",
            (Action::Update, _) => "~",
            (Action::Delete, _) => "-",
            (Action::Left, _) => "=",
            (Action::Unchanged, _) => return None,
        };
        let mut l = format!("{sign} {:<10} {}", i.what.word(), i.label());
        if !i.changed.is_empty() {
            l.push_str(&format!("  ({})", i.changed.join(", ")));
        }
        if i.action == Action::Left {
            l.push_str("  (differs; create-only leaves it)");
        }
        if let Some(b) = &i.blocked {
            l.push_str(&format!("  blocked: {b}"));
        }
        Some(l)
    }
}

/// What the planner reads.
pub struct Inputs<'a> {
    pub source: &'a Tree,
    pub target: &'a Tree,
    /// Ids and versions of the target's objects (from its export).
    pub index: &'a HashMap<Key, Entry>,
    pub filter: &'a Filter,
    pub mapping: &'a Mapping,
    pub mode: Mode,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

fn str_field<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

/// Compares one object of the source (already renamed for the target) with the target's, adding
/// its items.
fn plan_object(
    inp: &Inputs,
    o: Object,
    src_path: Vec<String>,
    plan: &mut Plan,
) -> Result<(), CloneError> {
    let target_entry = inp.index.get(&key(o.kind, &o.path));
    let existing = match target_entry.and_then(|e| e.kind) {
        Some(k) if k != o.kind => {
            let mut it = Item::new(
                What::Object(o.kind),
                &o.path,
                Some(&src_path),
                Action::Update,
            );
            it.blocked = Some(format!("the target has a {} at this path", k.word()));
            plan.items.push(it);
            return Ok(());
        }
        // The target's own spelling of the path: the same object may differ in case.
        Some(_) => {
            let spelled = target_entry
                .and_then(|e| e.path.as_ref())
                .map(CatPath::to_vec)
                .unwrap_or_else(|| o.path.clone());
            inp.target.read(o.kind, &spelled)?
        }
        None => None,
    };
    let what = What::Object(o.kind);
    let mut main = match &existing {
        None => Item::new(what, &o.path, Some(&src_path), Action::Create),
        Some(t) => {
            let changed = differing_fields(&o.own_fields(), &t.own_fields());
            let action = match (changed.is_empty(), inp.mode) {
                (true, _) => Action::Unchanged,
                (false, Mode::CreateOnly) => Action::Left,
                (false, _) => Action::Update,
            };
            let mut it = Item::new(what, &o.path, Some(&src_path), action);
            it.changed = changed;
            it
        }
    };
    if o.kind == Kind::Source && main.action == Action::Update {
        // Masked values go back as the target has them; a mapping may give them instead.
        let mut config = o.body.get("config").cloned().unwrap_or(Value::Null);
        let raw = target_entry.and_then(|e| e.config.as_deref());
        let left = fill_masked(&mut config, raw);
        match inp.mapping.source_secrets(&src_path[0], inp.env) {
            Err(e) => main.blocked = Some(e),
            Ok(given) => {
                let missing: Vec<String> = left
                    .into_iter()
                    .filter(|m| !given.iter().any(|(k, _)| k == m))
                    .map(|m| format!("config.{m}"))
                    .collect();
                if !missing.is_empty() {
                    main.blocked = Some(format!(
                        "the export masks {} and the target has no value there: map them under [secrets.{}] in the mapping file (--mapping)",
                        missing.join(", "),
                        src_path[0]
                    ));
                }
            }
        }
    }
    if o.kind == Kind::Source && main.action == Action::Create {
        let masked = o.body.get("config").map(masked_fields).unwrap_or_default();
        let given = inp.mapping.source_secrets(&src_path[0], inp.env);
        match given {
            Err(e) => main.blocked = Some(e),
            Ok(given) => {
                let missing: Vec<&String> = masked
                    .iter()
                    .filter(|m| !given.iter().any(|(k, _)| k == *m))
                    .collect();
                if !missing.is_empty() {
                    main.blocked = Some(format!(
                        "a new source needs its secrets ({}): map them under [secrets.{}] in the mapping file (--mapping)",
                        missing
                            .iter()
                            .map(|m| format!("config.{m}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        src_path[0]
                    ));
                }
            }
        }
    }
    let created = main.action == Action::Create;
    let sets_state = created || inp.mode != Mode::CreateOnly;
    plan.items.push(main);
    let target_wiki = existing.as_ref().and_then(|t| t.wiki.clone());
    if o.kind != Kind::User && !inp.filter.skips(Skip::Wikis) {
        let doc = (
            o.wiki.is_some(),
            target_wiki.is_some(),
            o.wiki != target_wiki,
        );
        if let Some(action) = attached(doc, sets_state, inp.mode) {
            plan.items
                .push(Item::new(What::Wiki, &o.path, Some(&src_path), action));
        }
    }
    if !o.kind.is_dataset() {
        return Ok(());
    }
    let target_tags = existing.as_ref().map(Object::tags).unwrap_or_default();
    let tags = o.tags();
    if !inp.filter.skips(Skip::Tags) {
        let doc = (
            !tags.is_empty(),
            !target_tags.is_empty(),
            tags != target_tags,
        );
        if let Some(action) = attached(doc, sets_state, inp.mode) {
            plan.items
                .push(Item::new(What::Tags, &o.path, Some(&src_path), action));
        }
    }
    if inp.filter.skips(Skip::Reflections) {
        return Ok(());
    }
    let theirs: HashMap<String, Map<String, Value>> = existing
        .as_ref()
        .map(Object::reflections)
        .unwrap_or_default()
        .into_iter()
        .map(|r| (str_field(&r, "name").unwrap_or_default().to_string(), r))
        .collect();
    let mine = o.reflections();
    for r in &mine {
        let name = str_field(r, "name").unwrap_or_default().to_string();
        let (action, changed) = match theirs.get(&name) {
            None => (Action::Create, vec![]),
            Some(t) => {
                let changed = differing_fields(r, t);
                match (changed.is_empty(), inp.mode) {
                    (true, _) => (Action::Unchanged, changed),
                    (false, Mode::CreateOnly) => (Action::Left, changed),
                    (false, _) => (Action::Update, changed),
                }
            }
        };
        let mut it = Item::new(What::Reflection, &o.path, Some(&src_path), action);
        it.name = Some(name);
        it.changed = changed;
        plan.items.push(it);
    }
    if inp.mode == Mode::Mirror {
        for name in theirs.keys() {
            if !mine.iter().any(|r| str_field(r, "name") == Some(name)) {
                let mut it = Item::new(What::Reflection, &o.path, None, Action::Delete);
                it.name = Some(name.clone());
                plan.items.push(it);
            }
        }
    }
    Ok(())
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

/// The datasets and UDFs an object's SQL reads, as candidate paths (context-relative first).
fn references(o: &Object) -> Vec<Vec<Vec<String>>> {
    let Some(text) = &o.text else {
        return vec![];
    };
    let ctx: Vec<String> = o
        .body
        .get("sqlContext")
        .and_then(super::model::str_list)
        .unwrap_or_default();
    sql::table_refs(text)
        .into_iter()
        .chain(sql::function_refs(text))
        .map(|r| {
            let mut c = Vec::new();
            if !ctx.is_empty() {
                let mut p = ctx.clone();
                p.extend(r.parts.iter().cloned());
                c.push(p);
            }
            c.push(r.parts);
            c
        })
        .collect()
}

/// Makes the plan.
pub fn make(inp: &Inputs) -> Result<Plan, CloneError> {
    let mut plan = Plan::default();
    // References of views and UDFs, resolved once every item is known (keys of candidates).
    let mut refs: Vec<(usize, Vec<Vec<Key>>)> = Vec::new();
    // Keys of the source's objects (as on the target), for mirror's "does the source lack it".
    let mut in_source: std::collections::HashSet<Key> = std::collections::HashSet::new();
    for found in inp.source.objects() {
        let (kind, path) = found?;
        let wanted = if kind.is_container() {
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
        let o = inp.mapping.map_object(o, &|p| inp.source.has_dataset(p));
        in_source.insert(key(kind, &o.path));
        let first = plan.items.len();
        let cands = references(&o);
        plan_object(inp, o, path, &mut plan)?;
        if !cands.is_empty() {
            let keys = cands
                .into_iter()
                .map(|c| c.iter().map(|p| key(Kind::View, p)).collect())
                .collect::<Vec<Vec<Key>>>();
            refs.push((first, keys));
        }
    }
    if inp.mode == Mode::Mirror {
        plan_deletions(inp, &in_source, &mut plan)?;
    }
    order(&mut plan, refs);
    Ok(plan)
}

/// Objects of the target, inside the filters, that the source lacks (outermost only: a container's
/// deletion takes its contents). Users are never deleted.
fn plan_deletions(
    inp: &Inputs,
    in_source: &std::collections::HashSet<Key>,
    plan: &mut Plan,
) -> Result<(), CloneError> {
    let mut doomed: Vec<(Kind, Vec<String>)> = Vec::new();
    for found in inp.target.objects() {
        let (kind, path) = found?;
        if kind == Kind::User {
            continue;
        }
        let src = inp.mapping.unmap_path(kind, &path);
        if !inp.filter.selects(kind, &src) {
            continue;
        }
        // By key, not by file name: `SALES` on the target is the source's `Sales`.
        if !in_source.contains(&key(kind, &path)) {
            doomed.push((kind, path));
        }
    }
    doomed.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then(a.1.cmp(&b.1)));
    let mut gone: Vec<Vec<String>> = Vec::new();
    for (kind, path) in doomed {
        let lower: Vec<String> = path.iter().map(|p| p.to_lowercase()).collect();
        if gone.iter().any(|g| lower.starts_with(g)) {
            continue;
        }
        if kind.is_container() {
            // Deleting a container deletes all inside it, including what the filters leave out.
            let src = inp.mapping.unmap_path(kind, &path);
            if inp.filter.excludes_below(&src)
                || (kind != Kind::Source && inp.filter.skips(Skip::Functions))
            {
                plan.warnings.push(format!(
                    "{} {} is not deleted: the filters leave out things inside it",
                    kind.word(),
                    path.join("/")
                ));
                continue;
            }
            gone.push(lower);
        }
        plan.items
            .push(Item::new(What::Object(kind), &path, None, Action::Delete));
    }
    Ok(())
}

/// Sorts the items for the report and links each to what it waits for; blocks reference cycles.
fn order(plan: &mut Plan, refs: Vec<(usize, Vec<Vec<Key>>)>) {
    // Remember each view's candidate reference keys across the sort.
    let mut ref_of: HashMap<(What, Key), Vec<Vec<Key>>> = HashMap::new();
    for (i, keys) in refs {
        let it = &plan.items[i];
        ref_of.insert((it.what, key(Kind::View, &it.path.parts())), keys);
    }
    plan.items.sort_by(|a, b| {
        let del = |i: &Item| i.action == Action::Delete;
        (del(a), a.what.rank(), &a.path, &a.name).cmp(&(del(b), b.what.rank(), &b.path, &b.name))
    });
    // Objects by key (not deletions).
    let mut objects: HashMap<Key, usize> = HashMap::new();
    for (i, it) in plan.items.iter().enumerate() {
        if let What::Object(k) = it.what
            && it.action != Action::Delete
        {
            objects.insert(
                key(
                    if k == Kind::User { k } else { Kind::View },
                    &it.path.parts(),
                ),
                i,
            );
        }
    }
    let n = plan.items.len();
    for i in 0..n {
        let it = &plan.items[i];
        if it.action == Action::Delete {
            continue;
        }
        let mut deps = Vec::new();
        match it.what {
            What::Object(Kind::User) => {}
            What::Object(Kind::Dataset) => {
                // Inside a source, intermediate folders are storage: wait for the source only.
                if let Some(&d) = objects.get(&key(Kind::View, &[it.path.root()])) {
                    deps.push(d);
                }
            }
            What::Object(k) => {
                let parts = it.path.parts();
                if parts.len() > 1
                    && let Some(&d) = objects.get(&key(Kind::View, &parts[..parts.len() - 1]))
                {
                    deps.push(d);
                }
                if let Some(cands) =
                    ref_of.get(&(What::Object(k), key(Kind::View, &it.path.parts())))
                {
                    // Per reference, the first candidate that is an object of the plan
                    // (context-relative first, as Dremio resolves it).
                    for c in cands {
                        if let Some(&d) = c.iter().find_map(|k| objects.get(k))
                            && d != i
                            && !deps.contains(&d)
                        {
                            deps.push(d);
                        }
                    }
                }
            }
            What::Reflection | What::Wiki | What::Tags => {
                if let Some(&d) = objects.get(&key(Kind::View, &it.path.parts())) {
                    deps.push(d);
                }
            }
        }
        plan.items[i].deps = deps;
    }
    block_cycles(plan);
}

/// Items in a reference cycle among the items that act are blocked, naming the cycle.
fn block_cycles(plan: &mut Plan) {
    let n = plan.items.len();
    // 0 = new, 1 = on the stack, 2 = done
    let mut state = vec![0u8; n];
    let mut blocked: Vec<(usize, String)> = Vec::new();
    for start in 0..n {
        if state[start] != 0 || !plan.items[start].action.acts() {
            continue;
        }
        // Iterative DFS: (node, next dep index)
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        state[start] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let deps = &plan.items[node].deps;
            if *next < deps.len() {
                let d = deps[*next];
                *next += 1;
                if !plan.items[d].action.acts() {
                    continue;
                }
                match state[d] {
                    0 => {
                        state[d] = 1;
                        stack.push((d, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|(x, _)| *x == d).unwrap_or(0);
                        let cycle: Vec<usize> = stack[from..].iter().map(|(x, _)| *x).collect();
                        let mut names: Vec<String> =
                            cycle.iter().map(|x| plan.items[*x].label()).collect();
                        names.push(plan.items[d].label());
                        let text = format!("reference cycle: {}", names.join(" -> "));
                        for x in cycle {
                            blocked.push((x, text.clone()));
                        }
                    }
                    _ => {}
                }
            } else {
                state[node] = 2;
                stack.pop();
            }
        }
    }
    for (i, text) in blocked {
        if plan.items[i].blocked.is_none() {
            plan.items[i].blocked = Some(text);
        }
    }
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

    #[test]
    fn catalog_paths_sort_like_their_components() {
        let p = |s: &str| CatPath::new(&s.split('/').collect::<Vec<_>>());
        let mut v = [p("a b"), p("a/x"), p("a"), p("A/z")];
        v.sort();
        let labels: Vec<String> = v.iter().map(CatPath::label).collect();
        assert_eq!(labels, vec!["A/z", "a", "a/x", "a b"]);
        assert_eq!(p("s/f/v").root(), "s");
        assert_eq!(p("s/f/v").parts(), vec!["s", "f", "v"]);
    }
}
