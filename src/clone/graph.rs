//! The plan's dependency graph: each item waits for its parent (as its kind says), for what it
//! references, and a part for its object; items in a reference cycle are blocked with the cycle.

use std::collections::HashMap;

use super::item::{Action, Item, Plan, What};
use super::kind::{ArtefactKind, Key, Parent, PartKind, key};

/// Per reference of an object, the keys of the objects it may mean, in resolution order.
type Candidates = Vec<Vec<Key>>;

/// Sorts the items for the report and links each to what it waits for; blocks reference cycles.
/// `refs`: per object item (by its index before the sort), the candidate keys of each reference.
pub(super) fn order<K: ArtefactKind, P: PartKind>(
    plan: &mut Plan<K, P>,
    refs: Vec<(usize, Candidates)>,
) {
    // Remember each object's candidate reference keys across the sort.
    let mut ref_of: HashMap<(What<K, P>, Key), Candidates> = HashMap::new();
    for (i, keys) in refs {
        let it = &plan.items[i];
        ref_of.insert((it.what, key(it.what.kind(), &it.path.parts())), keys);
    }
    plan.items.sort_by(|a, b| {
        let del = |i: &Item<K, P>| i.action == Action::Delete;
        (del(a), a.what.rank(), &a.path, &a.name).cmp(&(del(b), b.what.rank(), &b.path, &b.name))
    });
    // Objects by key (not deletions).
    let mut objects: HashMap<Key, usize> = HashMap::new();
    for (i, it) in plan.items.iter().enumerate() {
        if let What::Object(k) = it.what
            && it.action != Action::Delete
        {
            objects.insert(key(k, &it.path.parts()), i);
        }
    }
    for i in 0..plan.items.len() {
        let it = &plan.items[i];
        if it.action == Action::Delete {
            continue;
        }
        let parts = it.path.parts();
        let mut deps = Vec::new();
        match it.what {
            What::Object(k) => {
                let parent = match k.spec().parent {
                    Parent::Direct if parts.len() > 1 => Some(&parts[..parts.len() - 1]),
                    // Inside a source, intermediate folders are storage: wait for the root only.
                    Parent::Root if parts.len() > 1 => Some(&parts[..1]),
                    _ => None,
                };
                if let Some(&d) = parent.and_then(|p| objects.get(&key(k, p))) {
                    deps.push(d);
                }
                // Per reference, the first candidate that is an object of the plan
                // (context-relative first, as Dremio resolves it).
                for c in ref_of.get(&(it.what, key(k, &parts))).into_iter().flatten() {
                    if let Some(&d) = c.iter().find_map(|k| objects.get(k))
                        && d != i
                        && !deps.contains(&d)
                    {
                        deps.push(d);
                    }
                }
            }
            What::Part(k, _) => {
                if let Some(&d) = objects.get(&key(k, &parts)) {
                    deps.push(d);
                }
            }
        }
        plan.items[i].deps = deps;
    }
    block_cycles(plan);
}
/// Items in a reference cycle among the items that act are blocked, naming the cycle.
fn block_cycles<K: ArtefactKind, P: PartKind>(plan: &mut Plan<K, P>) {
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
