//! A test-only cluster kind, "notes", proving that a kind plugs into the engine without touching
//! it: notebooks (containers) hold notes whose text links to other notes (`see a/b` lines), a
//! note carries a label (a document part) and comments (member parts); authors are flat, matched
//! as `@authors/<name>` and never deleted. [`Memory`] is a live cluster of it, in memory, that
//! refuses what arrives out of order.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value, json};

use super::cluster::{Cluster, ExportRun, Exported, Known, Schema};
use super::filter::Filter;
use super::kind::{
    ArtefactKind, CatPath, KindSpec, Object, Parent, PartKind, PartSpec, PartValue, key,
};
use super::plan::{Action, Item, What};
use super::tree::{Tree, Written};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Book,
    Note,
    Author,
}

const BOOK: KindSpec = KindSpec {
    word: "book",
    folder: "notes",
    nested: true,
    text: None,
    container: true,
    deletable: true,
    skip: None,
    holds: &[],
    glob_prefix: None,
    fold_case: false,
    parent: Parent::Direct,
    rank: 0,
};
const NOTE: KindSpec = KindSpec {
    word: "note",
    text: Some("txt"),
    container: false,
    rank: 1,
    ..BOOK
};
const AUTHOR: KindSpec = KindSpec {
    word: "author",
    folder: "authors",
    nested: false,
    container: false,
    deletable: false,
    skip: Some("authors"),
    glob_prefix: Some("@authors"),
    parent: Parent::None,
    rank: 4,
    ..BOOK
};

impl ArtefactKind for Kind {
    fn all() -> &'static [Kind] {
        &[Kind::Book, Kind::Note, Kind::Author]
    }

    fn spec(self) -> &'static KindSpec {
        match self {
            Kind::Book => &BOOK,
            Kind::Note => &NOTE,
            Kind::Author => &AUTHOR,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    Label,
    Comment,
}

impl PartKind for Part {
    fn spec(self) -> &'static PartSpec {
        match self {
            Part::Label => &PartSpec {
                word: "label",
                skip: "labels",
                rank: 2,
            },
            Part::Comment => &PartSpec {
                word: "comment",
                skip: "comments",
                rank: 3,
            },
        }
    }
}

/// The rules, with renames of notebooks at the root.
#[derive(Default)]
pub struct Notes {
    pub renames: Vec<(String, String)>,
}

fn comments(o: &Object<Kind>) -> Vec<(String, Map<String, Value>)> {
    o.body
        .get("comments")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(n, c)| Some((n.clone(), c.as_object()?.clone())))
                .collect()
        })
        .unwrap_or_default()
}

fn rename(pairs: &[(String, String)], path: &[String], back: bool) -> Vec<String> {
    let mut p = path.to_vec();
    if let Some(first) = p.first_mut()
        && let Some((from, to)) = pairs
            .iter()
            .find(|(from, to)| if back { to == first } else { from == first })
    {
        *first = if back { from.clone() } else { to.clone() };
    }
    p
}

impl Schema for Notes {
    type Kind = Kind;
    type Part = Part;

    fn own_fields(&self, o: &Object<Kind>) -> Map<String, Value> {
        let mut m = o.body.clone();
        m.remove("label");
        m.remove("comments");
        if let Some(t) = &o.text {
            m.insert("text".into(), json!(t));
        }
        m
    }

    fn parts(&self, o: &Object<Kind>) -> Vec<(Part, PartValue)> {
        if o.kind != Kind::Note {
            return vec![];
        }
        vec![
            (
                Part::Label,
                PartValue::Document(o.body.get("label").cloned()),
            ),
            (Part::Comment, PartValue::Members(comments(o))),
        ]
    }

    fn references(&self, o: &Object<Kind>) -> Vec<Vec<Vec<String>>> {
        let text = o.text.as_deref().unwrap_or_default();
        text.lines()
            .filter_map(|l| l.strip_prefix("see "))
            .map(|p| vec![p.split('/').map(str::to_string).collect()])
            .collect()
    }

    fn to_target(&self, mut o: Object<Kind>, _source: &Tree<Kind>) -> Object<Kind> {
        if o.kind != Kind::Author {
            o.path = rename(&self.renames, &o.path, false);
            if let Some(t) = &o.text {
                let lines: Vec<String> = t
                    .lines()
                    .map(|l| match l.strip_prefix("see ") {
                        Some(p) => {
                            let p: Vec<String> = p.split('/').map(str::to_string).collect();
                            format!("see {}", rename(&self.renames, &p, false).join("/"))
                        }
                        None => l.to_string(),
                    })
                    .collect();
                o.text = Some(lines.join("\n"));
            }
        }
        o
    }

    fn source_path(&self, kind: Kind, path: &[String]) -> Vec<String> {
        if kind == Kind::Author {
            path.to_vec()
        } else {
            rename(&self.renames, path, true)
        }
    }
}

type Store = BTreeMap<(Kind, Vec<String>), Object<Kind>>;

/// A notes cluster in memory.
#[derive(Default)]
pub struct Memory {
    pub objects: Mutex<Store>,
    /// Labels of items it refuses.
    pub refuse: Vec<String>,
    requests: AtomicU64,
}

impl Memory {
    pub fn with(objects: Vec<Object<Kind>>) -> Memory {
        Memory {
            objects: Mutex::new(
                objects
                    .into_iter()
                    .map(|o| ((o.kind, o.path.clone()), o))
                    .collect(),
            ),
            ..Memory::default()
        }
    }

    pub fn get(&self, kind: Kind, path: &str) -> Option<Object<Kind>> {
        let p: Vec<String> = path.split('/').map(str::to_string).collect();
        self.objects.lock().unwrap().get(&(kind, p)).cloned()
    }

    fn has(&self, kind: Kind, path: &[String]) -> bool {
        self.objects
            .lock()
            .unwrap()
            .contains_key(&(kind, path.to_vec()))
    }

    /// Refuses an object whose notebook or linked notes are not there yet.
    fn check_order(&self, o: &Object<Kind>) -> Result<(), String> {
        if o.path.len() > 1 && !self.has(Kind::Book, &o.path[..o.path.len() - 1]) {
            return Err(format!("no notebook for {}", o.path.join("/")));
        }
        for r in Notes::default().references(o) {
            if !self.has(Kind::Note, &r[0]) {
                return Err(format!("no note {}", r[0].join("/")));
            }
        }
        Ok(())
    }

    fn apply_object(&self, action: Action, o: Option<Object<Kind>>, item: &Item<Kind, Part>) {
        let mut objects = self.objects.lock().unwrap();
        let path = item.path.to_vec();
        match (action, o) {
            (Action::Delete, _) => objects.retain(|(_, p), _| !p.starts_with(&path)),
            (_, Some(mut o)) => {
                // The parts arrive as items of their own.
                let old = objects.get(&(o.kind, path.clone()));
                for f in ["label", "comments"] {
                    match old.and_then(|x| x.body.get(f)) {
                        Some(v) => o.body.insert(f.into(), v.clone()),
                        None => o.body.remove(f),
                    };
                }
                objects.insert((o.kind, path), o);
            }
            (_, None) => {}
        }
    }

    fn apply_part(&self, part: Part, o: Option<Object<Kind>>, item: &Item<Kind, Part>) {
        let mut objects = self.objects.lock().unwrap();
        let Some(mine) = objects.get_mut(&(item.what.kind(), item.path.to_vec())) else {
            return;
        };
        match part {
            Part::Label => match o.as_ref().and_then(|o| o.body.get("label")) {
                Some(l) => mine.body.insert("label".into(), l.clone()),
                None => mine.body.remove("label"),
            },
            Part::Comment => {
                let name = item.name.clone().unwrap_or_default();
                let c = o.and_then(|o| comments(&o).into_iter().find(|(n, _)| *n == name));
                let all = mine.body.entry("comments").or_insert_with(|| json!({}));
                let all = all.as_object_mut().expect("comments are an object");
                match c {
                    Some((_, c)) => all.insert(name, Value::Object(c)),
                    None => all.remove(&name),
                }
            }
        };
    }
}

#[async_trait::async_trait]
impl Cluster<Notes> for Memory {
    async fn export(
        &self,
        tree: &Tree<Kind>,
        filter: &Filter,
        run: &ExportRun<'_>,
    ) -> anyhow::Result<Exported<Kind, Part>> {
        let mut out = Exported::default();
        let mut kept = Written::default();
        let objects: Vec<Object<Kind>> = self.objects.lock().unwrap().values().cloned().collect();
        for o in objects {
            let wanted = if o.kind.spec().container {
                filter.keeps_container(o.kind, &o.path)
            } else {
                filter.selects(o.kind, &o.path)
            };
            if !wanted {
                continue;
            }
            *out.counts.entry(o.kind).or_default() += 1;
            *out.parts.entry(Part::Comment).or_default() += comments(&o).len();
            if run.keep_index {
                let known = Known {
                    kind: o.kind,
                    path: CatPath::new(&o.path),
                };
                out.index.insert(key(o.kind, &o.path), known);
            }
            tree.write(&o)?.iter().for_each(|f| kept.add(f));
        }
        out.removed_files = tree.remove_stale(&kept, &|k, p| {
            filter.selects(k, p) || k.spec().container && filter.keeps_container(k, p)
        })?;
        Ok(out)
    }

    fn blocked(&self, o: &Object<Kind>, _src: &[String], _action: Action) -> Option<String> {
        (o.body.get("secret") == Some(&json!("masked")))
            .then(|| "its secret is masked and nobody gives it".to_string())
    }

    async fn apply(
        &self,
        item: &Item<Kind, Part>,
        object: Option<Object<Kind>>,
        warnings: &mut Vec<String>,
    ) -> Result<(), String> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        tokio::task::yield_now().await;
        if self.refuse.contains(&item.label()) {
            return Err("refused".into());
        }
        if let (Some(o), Action::Create) = (&object, item.action) {
            self.check_order(o)?;
        }
        match item.what {
            What::Object(_) => self.apply_object(item.action, object, item),
            What::Part(_, part) => {
                if !self.has(item.what.kind(), &item.path.to_vec()) {
                    return Err("its object is not there".into());
                }
                self.apply_part(part, object, item);
            }
        }
        if item.what == What::Object(Kind::Author) {
            warnings.push("created without a password".into());
        }
        Ok(())
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn unanswered(&self) -> u64 {
        0
    }
}

/// A note (or notebook, author) at `path`.
pub fn obj(kind: Kind, path: &str, body: Value, text: Option<&str>) -> Object<Kind> {
    Object {
        kind,
        path: path.split('/').map(str::to_string).collect(),
        body: body.as_object().cloned().unwrap_or_default(),
        text: text.map(str::to_string),
        wiki: None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clone::apply::{self, Outcome};
    use crate::clone::plan::{self, Mode, Plan};
    use crate::progress::NotesOnly as Quiet;

    fn source() -> Memory {
        Memory::with(vec![
            obj(Kind::Book, "A", json!({}), None),
            obj(Kind::Book, "A/sub", json!({}), None),
            obj(Kind::Note, "A/n1", json!({}), Some("see A/sub/n2")),
            obj(
                Kind::Note,
                "A/sub/n2",
                json!({"label": "red", "comments": {"c1": {"by": "bob"}}}),
                Some("plain"),
            ),
            obj(Kind::Note, "A/bad", json!({}), Some("x")),
            obj(Kind::Note, "A/after-bad", json!({}), Some("see A/bad")),
            obj(Kind::Note, "A/c1", json!({}), Some("see A/c2")),
            obj(Kind::Note, "A/c2", json!({}), Some("see A/c1")),
            obj(
                Kind::Note,
                "A/locked",
                json!({"secret": "masked"}),
                Some("s"),
            ),
            obj(Kind::Author, "alice", json!({"mail": "a@x"}), None),
        ])
    }

    fn target() -> Memory {
        let mut t = Memory::with(vec![
            obj(Kind::Book, "A", json!({}), None),
            obj(
                Kind::Note,
                "A/n1",
                json!({"comments": {"old": {}}}),
                Some("old"),
            ),
            obj(Kind::Book, "Z", json!({}), None),
            obj(Kind::Note, "Z/z", json!({}), Some("z")),
            obj(Kind::Author, "bob", json!({}), None),
        ]);
        t.refuse = vec!["A/bad".into()];
        t
    }

    fn run<'a>(keep_index: bool, stop: &'a (dyn Fn() -> bool + Sync)) -> ExportRun<'a> {
        ExportRun {
            phase: "test",
            concurrency: 2,
            keep_index,
            progress: &Quiet,
            stop,
        }
    }

    async fn plan_of(
        schema: &Notes,
        src: &Memory,
        dst: &Memory,
        mode: Mode,
        dirs: &tempfile::TempDir,
    ) -> (Plan<Kind, Part>, Tree<Kind>) {
        let filter = Filter::default();
        let never = || false;
        let s = Tree::create(&dirs.path().join("s")).unwrap();
        src.export(&s, &filter, &run(false, &never)).await.unwrap();
        let t_dir = dirs.path().join("t");
        let _ = std::fs::remove_dir_all(&t_dir);
        let t = Tree::create(&t_dir).unwrap();
        let e = dst.export(&t, &filter, &run(true, &never)).await.unwrap();
        let plan = plan::make(&plan::Inputs {
            schema,
            source: &s,
            target: &t,
            index: &e.index,
            cluster: dst,
            filter: &filter,
            mode,
        })
        .unwrap();
        (plan, s)
    }

    fn line(plan: &Plan<Kind, Part>, label: &str, word: &str) -> usize {
        plan.items
            .iter()
            .position(|i| i.label() == label && i.what.word() == word)
            .unwrap_or_else(|| panic!("no {word} {label} in {:?}", plan.items))
    }

    #[tokio::test]
    async fn a_second_kind_is_planned_and_applied_end_to_end() {
        let dirs = tempfile::tempdir().unwrap();
        let schema = Notes::default();
        let (src, dst) = (source(), Arc::new(target()));
        let (plan, tree) = plan_of(&schema, &src, &dst, Mode::Mirror, &dirs).await;
        let act = |l: &str, w: &str| plan.items[line(&plan, l, w)].action;
        assert_eq!(act("A/sub", "book"), Action::Create);
        assert_eq!(act("A/n1", "note"), Action::Update);
        assert_eq!(plan.items[line(&plan, "A/n1", "note")].changed, ["text"]);
        assert_eq!(act("A/n1#old", "comment"), Action::Delete);
        assert_eq!(act("A/sub/n2", "label"), Action::Create);
        assert_eq!(act("A/sub/n2#c1", "comment"), Action::Create);
        assert_eq!(act("Z", "book"), Action::Delete);
        assert!(
            !plan
                .items
                .iter()
                .any(|i| i.label() == "Z/z" || i.label() == "bob"),
            "a container's deletion takes its contents; authors are never deleted"
        );
        let n2 = line(&plan, "A/sub/n2", "note");
        assert_eq!(
            plan.items[line(&plan, "A/n1", "note")].deps,
            [line(&plan, "A", "book"), n2]
        );
        assert_eq!(plan.items[line(&plan, "A/sub/n2", "label")].deps, [n2]);
        for l in ["A/c1", "A/c2"] {
            let b = plan.items[line(&plan, l, "note")].blocked.clone();
            assert!(b.is_some_and(|b| b.starts_with("reference cycle: ")), "{l}");
        }
        let locked = plan.items[line(&plan, "A/locked", "note")].blocked.clone();
        assert_eq!(
            locked.as_deref(),
            Some("its secret is masked and nobody gives it")
        );

        let target = apply::Target {
            schema: Arc::new(Notes::default()),
            cluster: dst.clone(),
            source: tree,
        };
        let report = apply::apply(&plan, target, 2, &Quiet, &|| false).await;
        let outcome = |l: &str, w: &str| report.outcomes[line(&plan, l, w)].clone();
        assert_eq!(outcome("A/bad", "note"), Outcome::Failed("refused".into()));
        assert!(
            matches!(outcome("A/after-bad", "note"), Outcome::Skipped(w) if w.contains("A/bad"))
        );
        assert_eq!(outcome("A/sub/n2#c1", "comment"), Outcome::Done);
        assert_eq!(report.warnings[line(&plan, "alice", "author")].len(), 1);
        let acting = plan.items.iter().filter(|i| i.action.acts()).count();
        let blocked = plan.items.iter().filter(|i| i.blocked.is_some()).count();
        // Every acting item but the blocked and the one that waits on the refused one.
        assert_eq!(report.requests as usize, acting - blocked - 1);

        let n2 = dst
            .get(Kind::Note, "A/sub/n2")
            .expect("created after its notebook");
        assert_eq!(n2.body["label"], "red");
        assert_eq!(n2.body["comments"]["c1"]["by"], "bob");
        let n1 = dst.get(Kind::Note, "A/n1").unwrap();
        assert_eq!(n1.text.as_deref(), Some("see A/sub/n2"));
        assert_eq!(n1.body["comments"], json!({}));
        assert!(dst.get(Kind::Note, "Z/z").is_none() && dst.get(Kind::Book, "Z").is_none());
        assert!(dst.get(Kind::Author, "bob").is_some() && dst.get(Kind::Author, "alice").is_some());

        // What is left is exactly what failed or was blocked.
        let (again, _) = plan_of(&schema, &src, &dst, Mode::Mirror, &dirs).await;
        let mut left: Vec<String> = again
            .items
            .iter()
            .filter(|i| i.action.acts())
            .map(|i| i.label())
            .collect();
        left.sort();
        assert_eq!(left, ["A/after-bad", "A/bad", "A/c1", "A/c2", "A/locked"]);
    }

    #[tokio::test]
    async fn renames_reach_paths_references_and_mirror_deletions() {
        let dirs = tempfile::tempdir().unwrap();
        let schema = Notes {
            renames: vec![("A".into(), "B".into())],
        };
        let src = Memory::with(vec![
            obj(Kind::Book, "A", json!({}), None),
            obj(Kind::Note, "A/x", json!({}), Some("see A/y")),
            obj(Kind::Note, "A/y", json!({}), Some("y")),
        ]);
        let dst = Arc::new(Memory::with(vec![
            obj(Kind::Book, "B", json!({}), None),
            obj(Kind::Note, "B/gone", json!({}), Some("g")),
        ]));
        let (plan, tree) = plan_of(&schema, &src, &dst, Mode::Mirror, &dirs).await;
        assert_eq!(
            plan.items[line(&plan, "B", "book")].action,
            Action::Unchanged
        );
        assert_eq!(
            plan.items[line(&plan, "B/gone", "note")].action,
            Action::Delete
        );
        let target = apply::Target {
            schema: Arc::new(schema),
            cluster: dst.clone(),
            source: tree,
        };
        let report = apply::apply(&plan, target, 4, &Quiet, &|| false).await;
        assert!(
            report.outcomes.iter().all(Outcome::ok),
            "{:?}",
            report.outcomes
        );
        assert_eq!(
            dst.get(Kind::Note, "B/x").unwrap().text.as_deref(),
            Some("see B/y")
        );
        assert!(dst.get(Kind::Note, "B/gone").is_none());
    }

    #[tokio::test]
    async fn a_stop_starts_nothing_and_says_so() {
        let dirs = tempfile::tempdir().unwrap();
        let schema = Notes::default();
        let (src, dst) = (source(), Arc::new(Memory::default()));
        let (plan, tree) = plan_of(&schema, &src, &dst, Mode::Update, &dirs).await;
        let target = apply::Target {
            schema: Arc::new(schema),
            cluster: dst.clone(),
            source: tree,
        };
        let report = apply::apply(&plan, target, 4, &Quiet, &|| true).await;
        assert_eq!(report.stopped, Some(apply::Stopped::Signal));
        assert_eq!(report.requests, 0);
        assert!(dst.objects.lock().unwrap().is_empty());
    }
}
