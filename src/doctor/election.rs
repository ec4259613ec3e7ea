//! Check 3 of issue 11: does ZooKeeper show a master election with a standby, and one
//! registered master? Read through a real ZooKeeper client (`zk::registry`).

use std::time::Duration;

use serde_json::json;

use super::check::{Area, Check, Master};
use crate::zk::registry::{self, Registration, Snapshot};

const AREA: Area = Area::Election;

/// The election's checks, and the master ZooKeeper names (for the REST cross-check).
#[derive(Debug, Clone, PartialEq)]
pub struct Election {
    pub checks: Vec<Check>,
    pub master: Option<Master>,
}

/// Reads `<root>/leader-latch/master` and `<root>/{master,coordinator,executor}` through
/// `connect` (`host:port,...[/chroot]`), within `timeout`.
pub async fn election(connect: &str, root: &str, timeout: Duration) -> Election {
    match registry::read(connect, root, timeout).await {
        Ok(snapshot) => judge(&snapshot, root),
        Err(e) => unreadable(&e.to_string()),
    }
}

fn unreadable(why: &str) -> Election {
    let skip = |id: &str| {
        Check::skip(
            id,
            AREA,
            "ZooKeeper could not be read (see election.participants)",
        )
    };
    Election {
        checks: vec![
            Check::fail(
                "election.participants",
                AREA,
                format!("cannot read the election: {why}"),
            )
            .remedy("check --zookeeper and that a majority of the ensemble serves"),
            skip("election.master"),
            skip("election.nodes"),
        ],
        master: None,
    }
}

/// The checks from one snapshot of the election and the discovery folders.
pub fn judge(s: &Snapshot, root: &str) -> Election {
    let (master_check, master) = master(s);
    Election {
        checks: vec![participants(s, root), master_check, nodes(s)],
        master,
    }
}

fn participants(s: &Snapshot, root: &str) -> Check {
    let n = s.participants.len();
    let path = registry::latch_path(root);
    let c = match n {
        0 => Check::fail("election.participants", AREA, format!("no participant in {path}"))
            .remedy("no master coordinator runs against this ZooKeeper (or --zk-root is wrong)"),
        1 => Check::warn("election.participants", AREA, "1 master candidate: no standby")
            .remedy("start a second master coordinator (services.coordinator.master.enabled) on another host"),
        n => Check::pass("election.participants", AREA, format!("{n} master candidates: 1 active, {} standby", n - 1)),
    };
    let order: Vec<&str> = s.participants.iter().map(|p| p.node.as_str()).collect();
    let mut c = c
        .evidence("participants", n)
        .evidence("order", json!(order));
    if !s.foreign.is_empty() {
        c = c.evidence("not_latch_nodes", json!(s.foreign));
    }
    c
}

fn master(s: &Snapshot) -> (Check, Option<Master>) {
    let decoded: Vec<Master> = s.masters.iter().filter_map(as_master).collect();
    let broken: Vec<&str> = s
        .masters
        .iter()
        .filter(|r| as_master(r).is_none())
        .map(|r| r.node.as_str())
        .collect();
    let c = match (s.masters.len(), decoded.first()) {
        (0, _) => Check::fail("election.master", AREA, "no master is registered")
            .remedy("the elected coordinator has not started (see its server.log), or no candidate runs"),
        (1, Some(m)) => Check::pass(
            "election.master",
            AREA,
            format!("master {}:{} runs Dremio {}", m.address, m.user_port, m.dremio_version),
        ),
        (1, None) => Check::fail("election.master", AREA, "the master's registration cannot be decoded")
            .remedy("is this a Dremio cluster's root? check --zk-root"),
        (n, _) => Check::fail("election.master", AREA, format!("{n} masters are registered"))
            .remedy("two coordinators believe they are master: stop all but one and check paths.local's locks"),
    };
    let c = c
        .evidence("masters", json!(decoded))
        .evidence("undecodable", json!(broken));
    let only = (s.masters.len() == 1)
        .then(|| decoded.first().cloned())
        .flatten();
    (c, only)
}

fn as_master(r: &Registration) -> Option<Master> {
    let e = r.instance.as_ref().ok()?.endpoint.as_ref()?;
    Some(Master {
        address: e.address.clone()?,
        user_port: e.user_port.unwrap_or_default(),
        dremio_version: e.dremio_version.clone().unwrap_or_default(),
    })
}

fn nodes(s: &Snapshot) -> Check {
    let coordinators = s.coordinators.len();
    let c = if coordinators == 0 {
        Check::fail("election.nodes", AREA, "no coordinator is registered")
            .remedy("start the coordinators; they register under <root>/coordinator once up")
    } else {
        Check::pass(
            "election.nodes",
            AREA,
            format!(
                "{coordinators} coordinators, {} executors registered",
                s.executors
            ),
        )
    };
    c.evidence("coordinators", coordinators)
        .evidence("executors", s.executors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::check::Status;
    use crate::zk::latch::Participant;
    use crate::zk::payload::{DremioServiceInstance, NodeEndpoint};

    fn registered(address: &str) -> Registration {
        let endpoint = NodeEndpoint {
            address: Some(address.into()),
            user_port: Some(31010),
            dremio_version: Some("25.2.0".into()),
            ..Default::default()
        };
        Registration {
            node: format!("uuid-{address}"),
            instance: Ok(DremioServiceInstance {
                endpoint: Some(endpoint),
                ..Default::default()
            }),
        }
    }

    fn snapshot(latch: usize, masters: usize) -> Snapshot {
        Snapshot {
            participants: (0..latch as u64)
                .map(|seq| Participant {
                    node: format!("latch-{seq:010}"),
                    seq,
                })
                .collect(),
            masters: (0..masters)
                .map(|i| registered(&format!("10.0.0.{i}")))
                .collect(),
            coordinators: vec![registered("10.0.0.0")],
            ..Default::default()
        }
    }

    fn status(e: &Election, id: &str) -> Status {
        e.checks.iter().find(|c| c.id == id).unwrap().status
    }

    #[test]
    fn an_ha_pair_passes_and_names_its_master() {
        let e = judge(&snapshot(2, 1), "/dremio");
        assert!(
            e.checks.iter().all(|c| c.status == Status::Pass),
            "{:?}",
            e.checks
        );
        let m = e.master.unwrap();
        assert_eq!(
            (m.address.as_str(), m.user_port, m.dremio_version.as_str()),
            ("10.0.0.0", 31010, "25.2.0")
        );
    }

    #[test]
    fn no_standby_warns_no_participant_fails() {
        assert_eq!(
            status(&judge(&snapshot(1, 1), "/dremio"), "election.participants"),
            Status::Warn
        );
        assert_eq!(
            status(&judge(&snapshot(0, 1), "/dremio"), "election.participants"),
            Status::Fail
        );
    }

    #[test]
    fn two_masters_or_none_fail_and_name_nobody() {
        for n in [0, 2] {
            let e = judge(&snapshot(2, n), "/dremio");
            assert_eq!(status(&e, "election.master"), Status::Fail);
            assert_eq!(e.master, None);
        }
        let mut s = snapshot(2, 1);
        s.masters[0].instance = Err("invalid wire type".into());
        assert_eq!(
            status(&judge(&s, "/dremio"), "election.master"),
            Status::Fail
        );
    }

    #[test]
    fn an_unreadable_zookeeper_fails_once_and_skips_the_rest() {
        let e = unreadable("timeout");
        let st: Vec<Status> = e.checks.iter().map(|c| c.status).collect();
        assert_eq!(st, [Status::Fail, Status::Skip, Status::Skip]);
    }
}
