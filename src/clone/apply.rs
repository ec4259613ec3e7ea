//! Applies a plan to the target: items run as soon as what they wait for has succeeded, several at
//! once (bounded); a failed item only skips its dependents; fields the target's version does not
//! know are dropped with a warning; every item gets an outcome for the report.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use reqwest::Method;
use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use super::export::{Entry, Key, Remote, key};
use super::mapping::{Mapping, fill_masked, masked_fields, set_dotted};
use super::model::{Kind, Object, promotion_id, str_of, url_segment};
use super::plan::{Action, Item, Plan, What};
use super::tree::Tree;
use crate::dremio::rest::error_message;
use crate::progress::Progress;

/// What became of one item.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    Unchanged,
    Failed(String),
    Skipped(String),
}

impl Outcome {
    pub fn word(&self, action: Action) -> &'static str {
        match (self, action) {
            (Outcome::Done, Action::Create) => "created",
            (Outcome::Done, Action::Update) => "updated",
            (Outcome::Done, Action::Delete) => "deleted",
            (Outcome::Done, _) | (Outcome::Unchanged, _) => "unchanged",
            (Outcome::Failed(_), _) => "failed",
            (Outcome::Skipped(_), _) => "skipped",
        }
    }

    pub fn ok(&self) -> bool {
        matches!(self, Outcome::Done | Outcome::Unchanged)
    }
}

/// The result of applying.
#[derive(Debug)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub warnings: Vec<Vec<String>>,
    pub seconds: f64,
    pub requests: u64,
    /// Why the run stopped before the end, if it did (what had not started is then skipped).
    pub stopped: Option<Stopped>,
}

/// Why an apply stopped starting items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// SIGINT/SIGTERM.
    Signal,
    /// This many requests in a row got no answer at all (after the REST layer's own retries).
    Unreachable(u64),
}

/// Requests in a row without any answer after which the target is taken for down: the rest would
/// only fail one by one, each after its retries.
const GIVE_UP_AFTER: u64 = 8;

/// Reads environment variables (a closure, so that tests need not touch the process's).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Shared by the running items.
struct Shared {
    remote: Arc<Remote>,
    source: Tree,
    mapping: Mapping,
    env: Env,
    /// Target ids and versions by object key, completed as objects are created.
    index: Mutex<HashMap<Key, Entry>>,
    /// (kind word, field) the target refused as unknown: dropped from later bodies up front.
    dropped: Mutex<HashSet<(String, String)>>,
    requests: std::sync::atomic::AtomicU64,
    /// Requests in a row that got no answer (reset by any answer).
    unanswered: std::sync::atomic::AtomicU64,
}

/// What one request answered.
struct Answer {
    status: u16,
    body: Value,
    text: String,
}

impl Shared {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answer = self.remote.coord.request(method, path, body).await;
        let unanswered = &self.unanswered;
        let (status, text) = match answer {
            Ok(a) => {
                unanswered.store(0, std::sync::atomic::Ordering::Relaxed);
                a
            }
            Err(e) => {
                unanswered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(e.to_string());
            }
        };
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, body, text })
    }

    /// Deletes; an object already gone counts as deleted.
    async fn delete(&self, path: &str) -> Result<(), String> {
        let a = self.send(Method::DELETE, path, None).await?;
        match a.status {
            200..=299 | 404 => Ok(()),
            s => Err(format!("HTTP {s}: {}", error_message(&a.text))),
        }
    }

    /// Sends a body, dropping (with a warning) each field the target reports as unknown, and
    /// remembering it for the next bodies of the same kind.
    async fn send_tolerant(
        &self,
        method: Method,
        path: &str,
        what: &str,
        mut body: Value,
        warnings: &mut Vec<String>,
    ) -> Result<Value, String> {
        let known_unknown: Vec<String> = self
            .dropped
            .lock()
            .expect("dropped lock")
            .iter()
            .filter(|(w, _)| w == what)
            .map(|(_, f)| f.clone())
            .collect();
        for f in known_unknown {
            if remove_field(&mut body, &f) {
                warnings.push(self.dropped_warning(&f));
            }
        }
        for _ in 0..16 {
            let a = self.send(method.clone(), path, Some(&body)).await?;
            if (200..300).contains(&a.status) {
                return Ok(a.body);
            }
            let message = error_message(&a.text);
            if a.status == 400
                && let Some(field) = unknown_field(&message)
                && remove_field(&mut body, &field)
            {
                warnings.push(self.dropped_warning(&field));
                self.dropped
                    .lock()
                    .expect("dropped lock")
                    .insert((what.to_string(), field));
                continue;
            }
            return Err(format!("HTTP {}: {message}", a.status));
        }
        Err("too many fields refused by the target".into())
    }

    fn dropped_warning(&self, field: &str) -> String {
        format!(
            "field {field} dropped: the target (Dremio {}) does not accept it",
            self.remote.version
        )
    }

    fn entry(&self, k: &Key) -> Option<Entry> {
        self.index.lock().expect("index lock").get(k).cloned()
    }

    fn remember(&self, k: Key, e: Entry) {
        self.index.lock().expect("index lock").insert(k, e);
    }

    /// The source object of an item, as it must be on the target.
    fn object(&self, item: &Item) -> Result<Object, String> {
        let src = item.source().ok_or("no source object for this item")?;
        let kind = match item.what {
            What::Object(k) => k,
            _ => self
                .index_kind(item)
                .ok_or("the object of this item is not known")?,
        };
        match self.source.read(kind, &src.to_vec()) {
            Ok(Some(o)) => Ok(self.mapping.map_object(o, &|p| self.source.has_dataset(p))),
            Ok(None) => Err(format!("{} is gone from the source tree", src.label())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The kind of the dataset a sub-item (reflection, wiki, tags) belongs to: found in the
    /// source tree.
    fn index_kind(&self, item: &Item) -> Option<Kind> {
        let src = item.source()?.to_vec();
        Kind::ALL
            .into_iter()
            .find(|k| *k != Kind::User && self.source.root.join(Tree::main_file(*k, &src)).exists())
    }
}

/// `Unrecognized field "x"` (Jackson's words for a field the server's version does not have).
pub fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split_once("Unrecognized field \"")?.1;
    Some(rest.split_once('"')?.0.to_string())
}

/// Removes a field wherever it is in the body (top level first); true when something was removed.
fn remove_field(body: &mut Value, field: &str) -> bool {
    match body {
        Value::Object(m) => {
            if m.remove(field).is_some() {
                return true;
            }
            m.values_mut().any(|v| remove_field(v, field))
        }
        Value::Array(a) => a.iter_mut().any(|v| remove_field(v, field)),
        _ => false,
    }
}

fn entry_of(kind: Kind, answer: &Value) -> Entry {
    let s = |k: &str| str_of(answer, k);
    Entry {
        kind: Some(kind),
        id: s("id"),
        tag: s("tag"),
        ..Entry::default()
    }
}

/// A strong random password for a user whose password the mapping does not give.
fn random_password() -> Result<String, String> {
    let mut b = [0u8; 18];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness for a password: {e}"))?;
    Ok(format!("Lb1{}", hex::encode(b)))
}

async fn run_item(sh: Arc<Shared>, item: Item) -> (Outcome, Vec<String>) {
    let mut warnings = Vec::new();
    let r = match item.what {
        What::Object(kind) => object_item(&sh, &item, kind, &mut warnings).await,
        What::Reflection => reflection_item(&sh, &item, &mut warnings).await,
        What::Wiki | What::Tags => collab_item(&sh, &item, &mut warnings).await,
    };
    (
        match r {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed(e),
        },
        warnings,
    )
}

async fn object_item(
    sh: &Shared,
    item: &Item,
    kind: Kind,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let k = key(kind, &item.path.parts());
    if item.action == Action::Delete {
        let e = sh.entry(&k).ok_or("the target object's id is not known")?;
        return sh
            .delete(&format!(
                "/api/v3/catalog/{}?tag={}",
                url_segment(&e.id),
                url_segment(&e.tag)
            ))
            .await;
    }
    let o = sh.object(item)?;
    if kind == Kind::User {
        return user_item(sh, item, &o, warnings).await;
    }
    let mut body = if item.action == Action::Create {
        o.create_body()
    } else {
        let e = sh.entry(&k).ok_or("the target object's id is not known")?;
        o.update_body(&e.id, &e.tag)
    };
    if kind == Kind::Source {
        let src = item
            .source()
            .map(|p| p.root().to_string())
            .unwrap_or_default();
        for (field, secret) in sh.mapping.source_secrets(&src, sh.env.as_ref())? {
            set_dotted(&mut body["config"], &field, &secret.0);
        }
        // An update puts back the target's own values where the export masked them (its server
        // keeps a secret sent back masked, but not, e.g., a property-list value); a new source
        // has none to keep.
        let target_config = sh.entry(&k).and_then(|e| e.config);
        let still = if item.action == Action::Update {
            fill_masked(&mut body["config"], target_config.as_deref())
        } else {
            masked_fields(&body["config"])
        };
        if !still.is_empty() {
            return Err(format!(
                "the source needs its secrets ({}): map them under [secrets.{src}]",
                still.join(", ")
            ));
        }
    }
    let (method, url) = match (item.action, kind) {
        (Action::Create, Kind::Dataset) => (
            Method::POST,
            format!("/api/v3/catalog/{}", url_segment(&promotion_id(&o.path))),
        ),
        (Action::Create, _) => (Method::POST, "/api/v3/catalog".to_string()),
        _ => {
            let e = sh.entry(&k).ok_or("the target object's id is not known")?;
            (
                Method::PUT,
                format!("/api/v3/catalog/{}", url_segment(&e.id)),
            )
        }
    };
    let answer = sh
        .send_tolerant(method, &url, kind.word(), body, warnings)
        .await?;
    let mut entry = entry_of(kind, &answer);
    if let Some(old) = sh.entry(&k) {
        entry.wiki_version = old.wiki_version;
        entry.tags_version = old.tags_version;
        entry.reflections = old.reflections;
    }
    sh.remember(k, entry);
    Ok(())
}

async fn user_item(
    sh: &Shared,
    item: &Item,
    o: &Object,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let name = &o.path[0];
    let mut body = o.create_body();
    if item.action == Action::Create {
        let src = item
            .source()
            .map(|p| p.root().to_string())
            .unwrap_or_default();
        let password = match sh.mapping.password(&src, sh.env.as_ref()) {
            Some(p) => p?.0,
            None => {
                warnings.push(format!(
                    "created with a random password: set one under [passwords] in the mapping file, or reset {name}'s password on the target"
                ));
                random_password()?
            }
        };
        body["password"] = json!(password);
        let answer = sh
            .send_tolerant(Method::POST, "/api/v3/user", "user", body, warnings)
            .await?;
        sh.remember(key(Kind::User, &o.path), entry_of(Kind::User, &answer));
        return Ok(());
    }
    let e = sh
        .entry(&key(Kind::User, &o.path))
        .ok_or("the target user's id is not known")?;
    let current = sh
        .send(
            Method::GET,
            &format!("/api/v3/user/{}", url_segment(&e.id)),
            None,
        )
        .await?;
    if !(200..300).contains(&current.status) {
        return Err(format!(
            "HTTP {}: {}",
            current.status,
            error_message(&current.text)
        ));
    }
    body["id"] = json!(e.id);
    body["tag"] = current.body.get("tag").cloned().unwrap_or(Value::Null);
    sh.send_tolerant(
        Method::PUT,
        &format!("/api/v3/user/{}", url_segment(&e.id)),
        "user",
        body,
        warnings,
    )
    .await?;
    Ok(())
}

async fn reflection_item(
    sh: &Shared,
    item: &Item,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let dk = key(Kind::View, &item.path.parts());
    let dataset = sh
        .entry(&dk)
        .ok_or("the dataset's id on the target is not known")?;
    let name = item.name.clone().unwrap_or_default();
    let existing = dataset.reflection(&name);
    if item.action == Action::Delete {
        let (id, _) = existing.ok_or("the reflection's id is not known")?;
        return sh
            .delete(&format!("/api/v3/reflection/{}", url_segment(&id)))
            .await;
    }
    let o = sh.object(item)?;
    let def: Map<String, Value> = o
        .reflections()
        .into_iter()
        .find(|r| r.get("name").and_then(Value::as_str) == Some(name.as_str()))
        .ok_or("the reflection is gone from the source tree")?;
    let mut body = Value::Object(def);
    body["datasetId"] = json!(dataset.id);
    let answer = match (item.action, existing) {
        (Action::Update, Some((id, tag))) => {
            body["id"] = json!(id);
            body["tag"] = json!(tag);
            sh.send_tolerant(
                Method::PUT,
                &format!("/api/v3/reflection/{}", url_segment(&id)),
                "reflection",
                body,
                warnings,
            )
            .await?
        }
        _ => {
            sh.send_tolerant(
                Method::POST,
                "/api/v3/reflection",
                "reflection",
                body,
                warnings,
            )
            .await?
        }
    };
    let s = |k: &str| str_of(&answer, k);
    if let Some(e) = sh.index.lock().expect("index lock").get_mut(&dk) {
        e.set_reflection(name, s("id"), s("tag"));
    }
    Ok(())
}

async fn collab_item(sh: &Shared, item: &Item, warnings: &mut Vec<String>) -> Result<(), String> {
    let k = key(Kind::View, &item.path.parts());
    let e = sh
        .entry(&k)
        .ok_or("the object's id on the target is not known")?;
    let o = sh.object(item)?;
    let (what, mut body, version) = if item.what == What::Wiki {
        (
            "wiki",
            json!({"text": o.wiki.clone().unwrap_or_default()}),
            e.wiki_version.clone(),
        )
    } else {
        ("tag", json!({"tags": o.tags()}), e.tags_version.clone())
    };
    if let Some(v) = version {
        body["version"] = *v;
    }
    let answer = sh
        .send_tolerant(
            Method::POST,
            &format!(
                "/api/v3/catalog/{}/collaboration/{what}",
                url_segment(&e.id)
            ),
            what,
            body,
            warnings,
        )
        .await?;
    if let Some(e) = sh.index.lock().expect("index lock").get_mut(&k) {
        let v = answer.get("version").cloned().map(Box::new);
        if item.what == What::Wiki {
            e.wiki_version = v;
        } else {
            e.tags_version = v;
        }
    }
    Ok(())
}

/// Which items wait for which, and what became of each.
struct Sched<'a> {
    items: &'a [Item],
    outcomes: Vec<Option<Outcome>>,
    /// How many dependencies each item still waits for.
    waiting: Vec<usize>,
    /// Who waits for item i: `dependents[starts[i]..starts[i + 1]]` (one flat array rather than a
    /// vector per item).
    starts: Vec<usize>,
    dependents: Vec<usize>,
    ready: VecDeque<usize>,
}

impl<'a> Sched<'a> {
    fn new(items: &'a [Item]) -> Sched<'a> {
        let n = items.len();
        let mut waiting = vec![0; n];
        let mut starts = vec![0usize; n + 1];
        for (i, it) in items.iter().enumerate() {
            waiting[i] = it.deps.len();
            for &d in &it.deps {
                starts[d + 1] += 1;
            }
        }
        for i in 0..n {
            starts[i + 1] += starts[i];
        }
        let mut fill = starts.clone();
        let mut dependents = vec![0usize; starts[n]];
        for (i, it) in items.iter().enumerate() {
            for &d in &it.deps {
                dependents[fill[d]] = i;
                fill[d] += 1;
            }
        }
        let ready = (0..n).filter(|i| waiting[*i] == 0).collect();
        Sched {
            items,
            outcomes: vec![None; n],
            waiting,
            starts,
            dependents,
            ready,
        }
    }

    /// Records an outcome: dependents of a success may become ready; those of anything else are
    /// skipped (and theirs, transitively) with the reason.
    fn settle(&mut self, i: usize, outcome: Outcome) {
        let mut stack = vec![(i, outcome)];
        while let Some((i, outcome)) = stack.pop() {
            if self.outcomes[i].is_some() {
                continue;
            }
            let ok = outcome.ok();
            self.outcomes[i] = Some(outcome);
            for &d in &self.dependents[self.starts[i]..self.starts[i + 1]] {
                if self.outcomes[d].is_some() {
                    continue;
                }
                if ok {
                    self.waiting[d] -= 1;
                    if self.waiting[d] == 0 {
                        self.ready.push_back(d);
                    }
                } else {
                    // A dependent blocked for its own reason (e.g. in the same cycle) says that.
                    let why = self.items[d].blocked.clone().unwrap_or_else(|| {
                        format!(
                            "needs {} {}, which was not applied",
                            self.items[i].what.word(),
                            self.items[i].label()
                        )
                    });
                    stack.push((d, Outcome::Skipped(why)));
                }
            }
        }
    }
}

/// Everything [`apply`] needs besides the plan.
pub struct Target {
    pub remote: Arc<Remote>,
    pub source: Tree,
    pub mapping: Mapping,
    pub index: HashMap<Key, Entry>,
    pub env: Env,
}

/// Runs the plan with at most `concurrency` requests in flight.
pub async fn apply(
    plan: &Plan,
    target: Target,
    concurrency: usize,
    progress: &dyn Progress,
) -> Report {
    let started = Instant::now();
    let n = plan.items.len();
    let sh = Arc::new(Shared {
        remote: target.remote,
        source: target.source,
        mapping: target.mapping,
        env: target.env,
        index: Mutex::new(target.index),
        dropped: Mutex::new(HashSet::new()),
        requests: std::sync::atomic::AtomicU64::new(0),
        unanswered: std::sync::atomic::AtomicU64::new(0),
    });
    let mut sched = Sched::new(&plan.items);
    // Blocked items (a cycle, a missing secret) are settled up front: they may wait on each other.
    for (i, it) in plan.items.iter().enumerate() {
        if let Some(b) = &it.blocked {
            sched.settle(i, Outcome::Skipped(b.clone()));
        }
    }
    let acting = plan.items.iter().filter(|i| i.action.acts()).count();
    progress.phase_items("apply", Some(acting as u64));
    let mut warnings: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut tasks: JoinSet<(usize, Outcome, Vec<String>)> = JoinSet::new();
    let halted = || {
        if crate::store::upload::INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
            return Some(Stopped::Signal);
        }
        let n = sh.unanswered.load(std::sync::atomic::Ordering::Relaxed);
        (n >= GIVE_UP_AFTER).then_some(Stopped::Unreachable(n))
    };
    loop {
        // On SIGINT/SIGTERM, or once the target stopped answering, nothing new starts; what is
        // in flight finishes and is reported.
        while tasks.len() < concurrency.max(1)
            && halted().is_none()
            && let Some(i) = sched.ready.pop_front()
        {
            if sched.outcomes[i].is_some() {
                continue;
            }
            let it = &plan.items[i];
            if let Some(b) = &it.blocked {
                sched.settle(i, Outcome::Skipped(b.clone()));
            } else if !it.action.acts() {
                sched.settle(i, Outcome::Unchanged);
            } else {
                let sh = sh.clone();
                let item = it.clone();
                tasks.spawn(async move {
                    let (o, w) = run_item(sh, item).await;
                    (i, o, w)
                });
            }
        }
        if tasks.is_empty() && (sched.ready.is_empty() || halted().is_some()) {
            break;
        }
        let Some(done) = tasks.join_next().await else {
            continue;
        };
        match done {
            Ok((i, outcome, w)) => {
                warnings[i] = w;
                progress.advance(1);
                sched.settle(i, outcome);
            }
            // A panicking item must not take the run down; what waits on it is reported below.
            Err(e) => progress.note(&format!("an apply task failed: {e}")),
        }
    }
    progress.finish();
    // Whatever never ran was stopped, or waits on a task that died.
    let stopped = halted();
    let why = match stopped {
        Some(Stopped::Signal) => "interrupted before it ran".to_string(),
        Some(Stopped::Unreachable(n)) => {
            format!(
                "not started: the target stopped answering ({n} requests in a row got no answer)"
            )
        }
        None => "its dependencies never completed".to_string(),
    };
    let outcomes = sched
        .outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Skipped(why.clone())))
        .collect();
    Report {
        outcomes,
        warnings,
        seconds: started.elapsed().as_secs_f64(),
        requests: sh.requests.load(std::sync::atomic::Ordering::Relaxed),
        stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, deps: Vec<usize>) -> Item {
        let mut it = Item::new(
            What::Object(Kind::View),
            &["S".to_string(), name.to_string()],
            Some(&["S".to_string(), name.to_string()]),
            Action::Create,
        );
        it.deps = deps;
        it
    }

    #[test]
    fn a_failure_skips_only_what_depends_on_it() {
        // a <- b <- c, and d on its own; e waits for both b and d.
        let items = vec![
            view("a", vec![]),
            view("b", vec![0]),
            view("c", vec![1]),
            view("d", vec![]),
            view("e", vec![1, 3]),
        ];
        let mut s = Sched::new(&items);
        assert_eq!(s.ready.iter().copied().collect::<Vec<_>>(), vec![0, 3]);
        s.ready.clear();
        s.settle(3, Outcome::Done);
        assert!(s.ready.is_empty(), "e still waits for b");
        s.settle(0, Outcome::Failed("HTTP 400".into()));
        for i in [1, 2, 4] {
            match &s.outcomes[i] {
                Some(Outcome::Skipped(why)) => assert!(why.contains("S/"), "{why}"),
                other => panic!("{i}: {other:?}"),
            }
        }
        assert_eq!(s.outcomes[3], Some(Outcome::Done));
        assert!(s.ready.is_empty());
    }

    #[test]
    fn unknown_fields_are_read_from_jacksons_message() {
        assert_eq!(
            unknown_field("Unrecognized field \"arrowCachingEnabled\" (class com.dremio.X), not marked as ignorable").as_deref(),
            Some("arrowCachingEnabled")
        );
        assert_eq!(unknown_field("Validation of view sql failed"), None);
        let mut v = json!({"a": 1, "config": {"b": 2}});
        assert!(remove_field(&mut v, "b"));
        assert!(!remove_field(&mut v, "zz"));
        assert_eq!(v, json!({"a": 1, "config": {}}));
    }
}
