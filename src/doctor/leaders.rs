//! The verdicts on a Druid cluster's leaders, from what its nodes said (`druid`) and what
//! ZooKeeper's latches hold: the nodes' versions; per role one leader, a standby, non-leaders that
//! name the leader and redirect to it, and the latch's first participant being that leader.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::check::{Area, Check};
use super::druid::{Node, Role, RoleView, base, sole_leader};
use crate::zk::registry::Member;

const A: Area = Area::Druid;

/// What a role's latch held: its participants (leader first), or why it could not be read.
pub type Latch = Result<Vec<Member>, String>;

/// Every check over the nodes; `latches` is `None` without `--zookeeper`, else one per role
/// in [`Role::ALL`]'s order, with the latch's path.
pub fn judge(nodes: &[Node], latches: Option<&[(String, Latch); 2]>) -> Vec<Check> {
    let mut checks = vec![versions(nodes)];
    for (i, role) in Role::ALL.into_iter().enumerate() {
        checks.push(leader(nodes, role));
        checks.push(standby(nodes, role));
        checks.push(redirects(nodes, role));
        checks.push(match latches {
            Some(l) => latch(nodes, role, &l[i].0, &l[i].1),
            None => Check::skip(
                &id(role, "latch"),
                A,
                "give --zookeeper to compare the leader with ZooKeeper's latch",
            ),
        });
    }
    checks
}

fn id(role: Role, what: &str) -> String {
    format!("{}.{what}", role.id())
}

fn each<T>(
    nodes: &[Node],
    f: impl Fn(&Node) -> Result<T, String>,
    ok: impl Fn(T) -> Value,
) -> Value {
    let m: Map<String, Value> = nodes
        .iter()
        .map(|n| {
            let v = f(n).map_or_else(|e| json!({"error": e}), &ok);
            (n.url.clone(), v)
        })
        .collect();
    Value::Object(m)
}

/// `druid.status`: every node answers `/status`, and all run one version.
fn versions(nodes: &[Node]) -> Check {
    const ID: &str = "druid.status";
    let down: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.version.as_ref().err().map(|e| format!("{} {e}", n.url)))
        .collect();
    let seen: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| n.version.as_deref().ok())
        .collect();
    let up = nodes.len() - down.len();
    let c = if up == 0 {
        Check::fail(
            ID,
            A,
            format!("no node answers /status: {}", down.join("; ")),
        )
        .remedy("start the Coordinator/Overlord nodes, or check --druid-url (and their logs)")
    } else if seen.len() > 1 {
        let list: Vec<&str> = seen.iter().copied().collect();
        Check::warn(
            ID,
            A,
            format!(
                "the nodes run different Druid versions: {}",
                list.join(", ")
            ),
        )
        .remedy(
            "finish the rolling upgrade: a standby on another version takes over as that version",
        )
    } else if !down.is_empty() {
        Check::warn(
            ID,
            A,
            format!(
                "{up} of {} nodes answer /status; {}",
                nodes.len(),
                down.join("; ")
            ),
        )
        .remedy("start the nodes that do not answer, or drop them from --druid-url")
    } else {
        let v = seen.iter().next().copied().unwrap_or_default();
        Check::pass(
            ID,
            A,
            format!("{up} node(s) answer /status and run Druid {v}"),
        )
    };
    c.evidence(
        "versions",
        each(nodes, |n| n.version.clone(), Value::String),
    )
}

fn claims(nodes: &[Node], role: Role) -> Vec<&str> {
    nodes
        .iter()
        .filter(|n| n.role(role).is_leader == Ok(true))
        .map(|n| n.url.as_str())
        .collect()
}

/// The leaders the nodes name that are not among them.
fn elsewhere(nodes: &[Node], role: Role) -> Vec<String> {
    let given: BTreeSet<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let named: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| n.role(role).names.as_deref().ok())
        .filter(|u| !given.contains(u))
        .collect();
    named.into_iter().map(str::to_string).collect()
}

/// `<role>.leader`: exactly one node says it leads.
fn leader(nodes: &[Node], role: Role) -> Check {
    let id = id(role, "leader");
    let leaders = claims(nodes, role);
    let answered = nodes
        .iter()
        .filter(|n| n.role(role).is_leader.is_ok())
        .count();
    let t = role.title();
    let c = match leaders.as_slice() {
        [one] => Check::pass(&id, A, format!("{one} leads the {t}s")),
        [] if answered == 0 => Check::fail(&id, A, format!("no node answers the {t}'s isLeader"))
            .remedy("start the nodes, or check --druid-url and the credentials"),
        [] if !elsewhere(nodes, role).is_empty() => Check::fail(
            &id,
            A,
            format!(
                "none of {answered} {t} node(s) given leads; they name {}",
                elsewhere(nodes, role).join(", ")
            ),
        )
        .remedy("give every Coordinator/Overlord node's URL in --druid-url, the leader's too"),
        [] => Check::fail(&id, A, format!("none of {answered} {t} node(s) leads")).remedy(format!(
            "no {t} leader means no {}: check the nodes' logs and their ZooKeeper session",
            match role {
                Role::Coordinator => "segment management or retention",
                Role::Overlord => "ingestion task runs",
            }
        )),
        many => Check::fail(
            &id,
            A,
            format!(
                "{} nodes say they lead the {t}s: {}",
                many.len(),
                many.join(", ")
            ),
        )
        .remedy(
            "two leaders: check that every node has the same druid.zk.service.host and \
                druid.zk.paths.base, then restart all but one",
        ),
    };
    let said = each(nodes, |n| n.role(role).is_leader.clone(), Value::Bool);
    c.evidence("leaders", json!(leaders))
        .evidence("is_leader", said)
}

/// `<role>.standby`: at least two nodes answer, so that one can take over.
fn standby(nodes: &[Node], role: Role) -> Check {
    let id = id(role, "standby");
    let alive: Vec<&str> = nodes
        .iter()
        .filter(|n| n.role(role).is_leader.is_ok())
        .map(|n| n.url.as_str())
        .collect();
    let t = role.title();
    let c = match alive.len() {
        0 => Check::fail(&id, A, format!("no {t} node answers")).remedy("start the nodes"),
        1 => Check::warn(&id, A, format!("only {} answers: no standby {t}", alive[0])).remedy(
            format!(
                "run a second {t} on another host, with the same ZooKeeper and metadata store{}",
                if nodes.len() > 1 {
                    ", or start the ones that do not answer"
                } else {
                    ""
                }
            ),
        ),
        n => Check::pass(
            &id,
            A,
            format!("{n} {t} nodes answer: 1 leader, {} standby", n - 1),
        ),
    };
    c.evidence("alive", json!(alive))
        .evidence("given", nodes.len())
}

/// What is wrong with one non-leader, if anything: it must name `leader` and send the probe
/// there with a 307 that keeps the path.
fn misdirection(v: &RoleView, leader: &str, role: Role) -> Option<String> {
    match &v.names {
        Ok(named) if named != leader => return Some(format!("names {named} as the leader")),
        Err(e) => return Some(format!("its leader cannot be read: {e}")),
        Ok(_) => {}
    }
    let want = format!("{leader}{}", role.probe());
    match v.redirect.as_ref()? {
        Ok(r) if r.status == 307 && r.location.as_deref() == Some(want.as_str()) => None,
        Ok(r) if r.status == 307 => Some(format!(
            "redirects {} to {}, not to {want}",
            role.probe(),
            r.location.as_deref().unwrap_or("nowhere")
        )),
        Ok(r) if r.status == 401 || r.status == 403 => Some(format!(
            "answers {} with HTTP {} (set LIFEBOAT_DRUID_USER/PASSWORD)",
            role.probe(),
            r.status
        )),
        Ok(r) => Some(format!(
            "answers {} with HTTP {}, not a 307",
            role.probe(),
            r.status
        )),
        Err(e) => Some(format!("{}: {e}", role.probe())),
    }
}

/// `<role>.redirect`: every non-leader names the leader and redirects to it.
fn redirects(nodes: &[Node], role: Role) -> Check {
    let id = id(role, "redirect");
    let Some(leader) = sole_leader(nodes, role) else {
        return Check::skip(
            &id,
            A,
            format!("no single {} leader to redirect to", role.title()),
        );
    };
    let others: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.role(role).is_leader == Ok(false))
        .collect();
    if others.is_empty() {
        return Check::skip(&id, A, format!("no standby {} answers", role.title()));
    }
    let wrong: Vec<String> = others
        .iter()
        .filter_map(|n| misdirection(n.role(role), leader, role).map(|w| format!("{} {w}", n.url)))
        .collect();
    let c = if wrong.is_empty() {
        let urls: Vec<&str> = others.iter().map(|n| n.url.as_str()).collect();
        Check::pass(
            &id,
            A,
            format!(
                "{} {} {leader} and {} to it (307)",
                urls.join(", "),
                if urls.len() == 1 { "names" } else { "name" },
                if urls.len() == 1 {
                    "redirects"
                } else {
                    "redirect"
                },
            ),
        )
    } else {
        Check::fail(&id, A, wrong.join("; ")).remedy(
            "a standby that names another leader (or none) sees another ZooKeeper or base path: \
             check its druid.zk.* settings and its ZooKeeper session, then restart it",
        )
    };
    let named = each(nodes, |n| n.role(role).names.clone(), Value::String);
    c.evidence("leader", leader).evidence("named", named)
}

/// `<role>.latch`: the latch's first participant (its id is a node's URL) is the REST leader.
fn latch(nodes: &[Node], role: Role, path: &str, latch: &Latch) -> Check {
    let id = id(role, "latch");
    let members = match latch {
        Ok(m) => m,
        Err(e) => {
            return Check::fail(&id, A, format!("cannot read {path}: {e}"))
                .remedy("check --zookeeper and that a majority of the ensemble serves");
        }
    };
    let order: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let latched = members.first().map(|m| base(&m.id));
    let rest = sole_leader(nodes, role);
    let c = match (latched.as_deref(), rest) {
        (None, _) => Check::fail(&id, A, format!("no participant in {path}")).remedy(
            "the nodes do not elect through this ZooKeeper: check --zookeeper and \
                --zk-root against druid.zk.service.host and druid.zk.paths.base",
        ),
        (Some(z), None) => Check::skip(
            &id,
            A,
            format!(
                "{path} names {z}, but no single node \
            leads over REST"
            ),
        ),
        (Some(z), Some(r)) if z == r => Check::pass(
            &id,
            A,
            format!(
                "{path} names {z}, the \
            leader over REST"
            ),
        ),
        (Some(z), Some(r)) => Check::fail(
            &id,
            A,
            format!(
                "{path} names {z}, but {r} says it \
            leads"
            ),
        )
        .remedy(
            "the leader over REST is not the latch's: a node lost its ZooKeeper session \
                without noticing; restart it",
        ),
    };
    c.evidence("path", path)
        .evidence("participants", json!(order))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::doctor::druid::Reply;

    fn view(leads: bool, leader: &str, role: Role) -> RoleView {
        RoleView {
            is_leader: Ok(leads),
            names: Ok(leader.into()),
            redirect: (!leads).then(|| {
                Ok(Reply {
                    status: 307,
                    location: Some(format!("{leader}{}", role.probe())),
                    body: String::new(),
                })
            }),
        }
    }

    fn node(url: &str, leader: &str) -> Node {
        Node {
            url: url.into(),
            version: Ok("31.0.0".into()),
            coordinator: view(url == leader, leader, Role::Coordinator),
            overlord: view(url == leader, leader, Role::Overlord),
        }
    }

    fn down(url: &str) -> Node {
        let gone = || Err::<bool, String>("refuses connections (down?)".into());
        let v = RoleView {
            is_leader: gone(),
            names: Err("refuses connections (down?)".into()),
            redirect: None,
        };
        Node {
            url: url.into(),
            version: gone().map(|_| String::new()),
            coordinator: v.clone(),
            overlord: v,
        }
    }

    fn member(id: &str, seq: u64) -> Member {
        Member {
            node: format!("_c_x-latch-{seq:010}"),
            seq,
            id: id.into(),
        }
    }

    fn status(checks: &[Check], id: &str) -> Status {
        checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{id}"))
            .status
    }

    const A1: &str = "http://a:8081";
    const B1: &str = "http://b:8081";

    fn latches(first: &str, second: &str) -> [(String, Latch); 2] {
        let l = || Ok(vec![member(first, 3), member(second, 7)]);
        [
            ("/druid/coordinator/_COORDINATOR".into(), l()),
            ("/druid/overlord/_OVERLORD".into(), l()),
        ]
    }

    #[test]
    fn an_ha_pair_that_agrees_with_its_latches_passes() {
        let nodes = [node(A1, A1), node(B1, A1)];
        let checks = judge(&nodes, Some(&latches(A1, B1)));
        assert_eq!(checks.len(), 9);
        assert!(
            checks.iter().all(|c| c.status == Status::Pass),
            "{checks:#?}"
        );
    }

    #[test]
    fn a_sole_or_surviving_node_warns_for_want_of_a_standby() {
        for nodes in [vec![node(A1, A1)], vec![node(A1, A1), down(B1)]] {
            let checks = judge(&nodes, None);
            assert_eq!(status(&checks, "coordinator.leader"), Status::Pass);
            assert_eq!(status(&checks, "coordinator.standby"), Status::Warn);
            assert_eq!(status(&checks, "overlord.standby"), Status::Warn);
            assert_eq!(status(&checks, "overlord.redirect"), Status::Skip);
            assert_eq!(crate::doctor::overall(&checks), Status::Warn, "{checks:#?}");
        }
    }

    #[test]
    fn two_leaders_or_none_fail() {
        let mut two = [node(A1, A1), node(B1, A1)];
        two[1].coordinator.is_leader = Ok(true);
        let checks = judge(&two, None);
        assert_eq!(status(&checks, "coordinator.leader"), Status::Fail);
        assert_eq!(status(&checks, "coordinator.redirect"), Status::Skip);
        assert_eq!(status(&checks, "overlord.leader"), Status::Pass);
        let mut none = [node(A1, A1), node(B1, A1)];
        none[0].overlord.is_leader = Ok(false);
        assert_eq!(status(&judge(&none, None), "overlord.leader"), Status::Fail);
        // only the standby given: it names the leader that was left out
        let checks = judge(&[node(B1, A1)], None);
        let c = checks
            .iter()
            .find(|c| c.id == "coordinator.leader")
            .unwrap();
        assert_eq!(c.status, Status::Fail);
        assert!(c.summary.contains(A1), "{}", c.summary);
    }

    #[test]
    fn a_standby_naming_another_leader_or_not_redirecting_fails() {
        let mut nodes = [node(A1, A1), node(B1, A1)];
        nodes[1].coordinator.names = Ok("http://c:8081".into());
        let c = judge(&nodes, None)
            .into_iter()
            .find(|c| c.id == "coordinator.redirect")
            .unwrap();
        assert_eq!(c.status, Status::Fail);
        assert!(c.summary.contains("names http://c:8081"), "{}", c.summary);
        nodes[1].coordinator.names = Ok(A1.into());
        nodes[1].overlord.redirect = Some(Ok(Reply {
            status: 200,
            location: None,
            body: "{}".into(),
        }));
        let checks = judge(&nodes, None);
        assert_eq!(status(&checks, "coordinator.redirect"), Status::Pass);
        assert_eq!(status(&checks, "overlord.redirect"), Status::Fail);
    }

    #[test]
    fn a_latch_naming_another_leader_fails_with_both_named() {
        let nodes = [node(A1, A1), node(B1, A1)];
        let checks = judge(&nodes, Some(&latches(B1, A1)));
        let c = checks.iter().find(|c| c.id == "overlord.latch").unwrap();
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.summary.contains(B1) && c.summary.contains(A1),
            "{}",
            c.summary
        );
        let empty = [
            ("/p".into(), Ok(vec![])),
            ("/q".into(), Err("timeout".into())),
        ];
        let checks = judge(&nodes, Some(&empty));
        assert_eq!(status(&checks, "coordinator.latch"), Status::Fail);
        assert_eq!(status(&checks, "overlord.latch"), Status::Fail);
    }

    #[test]
    fn versions_that_differ_or_nodes_down_warn_and_none_up_fails() {
        let mut nodes = [node(A1, A1), node(B1, A1)];
        nodes[1].version = Ok("30.0.1".into());
        assert_eq!(versions(&nodes).status, Status::Warn);
        assert_eq!(versions(&[node(A1, A1), down(B1)]).status, Status::Warn);
        assert_eq!(versions(&[down(A1)]).status, Status::Fail);
        assert_eq!(versions(&[node(A1, A1)]).status, Status::Pass);
    }
}
