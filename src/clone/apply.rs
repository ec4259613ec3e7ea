//! Applies a plan to the target: items run as soon as what they wait for has succeeded, several at
//! once (bounded); a failed item only skips its dependents; every item gets an outcome for the
//! report. What one item sends is the cluster's business ([`Cluster::apply`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

use super::cluster::{Cluster, Schema};
use super::kind::{ArtefactKind, Object, PartKind};
use super::plan::{Action, Item, Plan};
use super::tree::Tree;
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

/// Runs one item: its object read from the source tree and renamed for the target (the owner's,
/// for a part), none for a deletion.
async fn run_item<S: Schema>(
    target: &Target<S>,
    item: &Item<S::Kind, S::Part>,
) -> (Outcome, Vec<String>) {
    let mut warnings = Vec::new();
    let object = match source_object(target, item) {
        Ok(o) => o,
        Err(e) => return (Outcome::Failed(e), warnings),
    };
    let r = target.cluster.apply(item, object, &mut warnings).await;
    (
        match r {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed(e),
        },
        warnings,
    )
}

fn source_object<S: Schema>(
    target: &Target<S>,
    item: &Item<S::Kind, S::Part>,
) -> Result<Option<Object<S::Kind>>, String> {
    let Some(src) = item.source() else {
        return Ok(None);
    };
    match target.source.read(item.what.kind(), &src.to_vec()) {
        Ok(Some(o)) => Ok(Some(target.schema.to_target(o, &target.source))),
        Ok(None) => Err(format!("{} is gone from the source tree", src.label())),
        Err(e) => Err(e.to_string()),
    }
}

/// Which items wait for which, and what became of each.
struct Sched<'a, K, P> {
    items: &'a [Item<K, P>],
    outcomes: Vec<Option<Outcome>>,
    /// How many dependencies each item still waits for.
    waiting: Vec<usize>,
    /// Who waits for item i: `dependents[starts[i]..starts[i + 1]]` (one flat array rather than a
    /// vector per item).
    starts: Vec<usize>,
    dependents: Vec<usize>,
    ready: VecDeque<usize>,
    /// With staging, the creations and updates not settled yet, per rank.
    unsettled: Option<BTreeMap<u8, usize>>,
}

impl<'a, K: ArtefactKind, P: PartKind> Sched<'a, K, P> {
    fn new(items: &'a [Item<K, P>], staged: bool) -> Sched<'a, K, P> {
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
        let unsettled = staged.then(|| {
            let mut m = BTreeMap::new();
            for it in items.iter().filter(|it| staged_item(it)) {
                *m.entry(it.what.rank()).or_insert(0) += 1;
            }
            m
        });
        Sched {
            items,
            outcomes: vec![None; n],
            waiting,
            starts,
            dependents,
            ready,
            unsettled,
        }
    }

    /// The next ready item that may start: with staging, the first whose rank no unsettled
    /// lower-ranked creation or update holds back. When nothing runs (`idle`) and every ready
    /// item is held back, the lowest ones wait on something of a higher rank: the first ready
    /// item starts, so a reference across ranks cannot stall the run.
    fn next(&mut self, idle: bool) -> Option<usize> {
        let Some(unsettled) = &self.unsettled else {
            return self.ready.pop_front();
        };
        let floor = unsettled.iter().find(|(_, n)| **n > 0).map(|(r, _)| *r);
        let items = self.items;
        let free = |i: &usize| {
            let it = &items[*i];
            !staged_item(it) || floor.is_none_or(|f| it.what.rank() <= f)
        };
        match self.ready.iter().position(free) {
            Some(at) => self.ready.remove(at),
            None if idle => self.ready.pop_front(),
            None => None,
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
            if let Some(m) = &mut self.unsettled
                && staged_item(&self.items[i])
                && let Some(n) = m.get_mut(&self.items[i].what.rank())
            {
                *n -= 1;
            }
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

/// What staging holds back and waits for: creations and updates (deletions and unchanged items
/// neither wait nor hold anything back).
fn staged_item<K: ArtefactKind, P: PartKind>(it: &Item<K, P>) -> bool {
    it.action.acts() && it.action != Action::Delete
}

/// Everything [`apply`] needs besides the plan.
pub struct Target<S: Schema> {
    pub schema: Arc<S>,
    pub cluster: Arc<dyn Cluster<S>>,
    /// Where the items' objects are read from when they run.
    pub source: Tree<S::Kind>,
}

/// Runs the plan with at most `concurrency` requests in flight; `stop` says when a signal asks
/// to stop starting items.
pub async fn apply<S: Schema>(
    plan: &Plan<S::Kind, S::Part>,
    target: Target<S>,
    concurrency: usize,
    progress: &dyn Progress,
    stop: &(dyn Fn() -> bool + Sync),
) -> Report {
    let started = Instant::now();
    let n = plan.items.len();
    let target = Arc::new(target);
    let mut sched = Sched::new(&plan.items, target.schema.staged());
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
        if stop() {
            return Some(Stopped::Signal);
        }
        let n = target.cluster.unanswered();
        (n >= GIVE_UP_AFTER).then_some(Stopped::Unreachable(n))
    };
    loop {
        // On SIGINT/SIGTERM, or once the target stopped answering, nothing new starts; what is
        // in flight finishes and is reported.
        while tasks.len() < concurrency.max(1)
            && halted().is_none()
            && let Some(i) = sched.next(tasks.is_empty())
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
                let target = target.clone();
                let item = it.clone();
                tasks.spawn(async move {
                    let (o, w) = run_item(&target, &item).await;
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
        requests: target.cluster.requests(),
        stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clone::notes::{Kind, Part};
    use crate::clone::plan::What;

    fn view(name: &str, deps: Vec<usize>) -> Item<Kind, Part> {
        let mut it = Item::new(
            What::Object(Kind::Note),
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
        let mut s = Sched::new(&items, false);
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

    fn ranked(kind: Kind, name: &str, deps: Vec<usize>) -> Item<Kind, Part> {
        let mut it = view(name, deps);
        it.what = What::Object(kind);
        it
    }

    #[test]
    fn staged_ranks_start_only_once_every_lower_rank_settled() {
        let (low, high) = (Kind::Book, Kind::Note);
        assert!(low.spec().rank < high.spec().rank);
        let items = vec![
            ranked(low, "a", vec![]),
            ranked(low, "b", vec![]),
            ranked(high, "c", vec![]),
        ];
        let mut s = Sched::new(&items, true);
        assert_eq!(s.next(false), Some(0));
        assert_eq!(s.next(false), Some(1));
        assert_eq!(s.next(false), None, "c waits while a and b run");
        s.settle(0, Outcome::Done);
        assert_eq!(s.next(false), None, "b still runs");
        // A failure settles too: the next rank is not held back by what went wrong.
        s.settle(1, Outcome::Failed("HTTP 500".into()));
        assert_eq!(s.next(false), Some(2));

        // Unstaged, ranks only order the queue.
        let mut s = Sched::new(&items, false);
        assert_eq!(
            (s.next(false), s.next(false), s.next(false)),
            (Some(0), Some(1), Some(2))
        );
    }

    #[test]
    fn a_lower_rank_waiting_on_a_higher_one_does_not_stall_a_staged_run() {
        let (low, high) = (Kind::Book, Kind::Note);
        assert!(low.spec().rank < high.spec().rank);
        // a (low) references c (high): only c is ready, and it is held back by a.
        let items = vec![ranked(low, "a", vec![1]), ranked(high, "c", vec![])];
        let mut s = Sched::new(&items, true);
        assert_eq!(s.next(false), None, "held back while something runs");
        assert_eq!(s.next(true), Some(1), "started when nothing else can");
    }
}
