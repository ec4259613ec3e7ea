//! Check 2 of issue 11: is the ZooKeeper ensemble a healthy quorum? Every server is asked `srvr`
//! (and `mntr`, when whitelisted) over TCP; the verdicts come from all the answers together.

use std::time::Duration;

use serde_json::{Value, json};

use super::check::{Area, Check};
use crate::zk::stats::{self, Mntr, Mode, Reply, Srvr};
use crate::zk::words;

const AREA: Area = Area::Zookeeper;

/// Above this average latency (ms) the ensemble is slow enough for sessions to time out under
/// load; ZooKeeper's own guidance keeps it in single-digit milliseconds.
const SLOW_AVG_MS: f64 = 100.0;
/// Requests queued on one server beyond this mean it cannot keep up.
const BACKLOG: u64 = 100;

/// What one server said.
#[derive(Debug, Clone)]
pub struct Probe {
    pub server: String,
    /// `srvr`'s answer, or why there was none.
    pub srvr: Result<Reply<Srvr>, String>,
    /// `mntr`'s answer; `None` when the server did not answer it.
    pub mntr: Option<Reply<Mntr>>,
}

impl Probe {
    fn serving(&self) -> Option<&Srvr> {
        match &self.srvr {
            Ok(Reply::Answer(s)) => Some(s),
            _ => None,
        }
    }
}

/// Asks every server (at once), then judges the ensemble.
pub async fn ensemble(servers: &[String], timeout: Duration) -> Vec<Check> {
    if servers.is_empty() {
        return vec![Check::skip(
            "zk.answer",
            AREA,
            "give --zookeeper HOST:PORT[,...] (or the cluster's `zookeeper` in the config)",
        )];
    }
    let probes = futures::future::join_all(servers.iter().map(|s| probe(s, timeout))).await;
    judge(&probes)
}

async fn probe(server: &str, timeout: Duration) -> Probe {
    let (srvr, mntr) = tokio::join!(
        words::ask(server, "srvr", timeout),
        words::ask(server, "mntr", timeout)
    );
    Probe {
        server: server.to_string(),
        srvr: srvr
            .map_err(|e| e.to_string())
            .and_then(|a| stats::parse_srvr(&a).map_err(|e| e.to_string())),
        mntr: mntr.ok().and_then(|a| stats::parse_mntr(&a).ok()),
    }
}

/// The checks, from every server's answers.
pub fn judge(probes: &[Probe]) -> Vec<Check> {
    vec![
        answer(probes),
        leader(probes),
        epoch(probes),
        size(ensemble_size(probes), probes.len()),
        quorum(probes),
        latency(probes),
        words_allowed(probes),
    ]
}

fn state(p: &Probe) -> Value {
    match &p.srvr {
        Ok(Reply::Answer(s)) => json!(s.mode.word()),
        Ok(Reply::NotServing) => json!("not serving"),
        Ok(Reply::NotWhitelisted) => json!("srvr not whitelisted"),
        Err(e) => json!(format!("no answer: {e}")),
    }
}

fn per_server(probes: &[Probe], f: impl Fn(&Probe) -> Value) -> Value {
    Value::Object(probes.iter().map(|p| (p.server.clone(), f(p))).collect())
}

fn answer(probes: &[Probe]) -> Check {
    let silent: Vec<&str> = names(probes, |p| p.srvr.is_err());
    let refusing: Vec<&str> = names(probes, |p| matches!(p.srvr, Ok(Reply::NotServing)));
    let c = if !refusing.is_empty() {
        Check::fail(
            "zk.answer",
            AREA,
            format!("not currently serving requests: {}", refusing.join(", ")),
        )
        .remedy(
            "these servers are outside a quorum: check their logs and the network between servers",
        )
    } else if !silent.is_empty() {
        Check::warn(
            "zk.answer",
            AREA,
            format!(
                "{} of {} servers do not answer: {}",
                silent.len(),
                probes.len(),
                silent.join(", ")
            ),
        )
        .remedy("start the silent servers (or check the address, port and firewall)")
    } else {
        Check::pass(
            "zk.answer",
            AREA,
            format!("all {} servers answer", probes.len()),
        )
    };
    c.evidence("servers", per_server(probes, state))
}

fn names(probes: &[Probe], pick: impl Fn(&Probe) -> bool) -> Vec<&str> {
    probes
        .iter()
        .filter(|p| pick(p))
        .map(|p| p.server.as_str())
        .collect()
}

const WHITELIST_SRVR: &str =
    "add srvr to 4lw.commands.whitelist on every server (it is there by default)";

/// Servers whose role is unknown: they refuse `srvr`.
fn unknown(probes: &[Probe]) -> Vec<&str> {
    names(probes, |p| matches!(p.srvr, Ok(Reply::NotWhitelisted)))
}

fn leader(probes: &[Probe]) -> Check {
    let with = |m: Mode| names(probes, |p| p.serving().is_some_and(|s| s.mode == m));
    let leaders = with(Mode::Leader);
    let standalone = with(Mode::Standalone);
    let odd = names(probes, |p| {
        p.serving()
            .is_some_and(|s| matches!(s.mode, Mode::Other(_)))
    });
    let unknown = unknown(probes);
    let c = if probes.len() > 1 && !standalone.is_empty() {
        Check::fail(
            "zk.leader",
            AREA,
            format!(
                "standalone among several servers: {}",
                standalone.join(", ")
            ),
        )
        .remedy("list every server as server.N= in each zoo.cfg so that they form one ensemble")
    } else if leaders.len() > 1 {
        Check::fail(
            "zk.leader",
            AREA,
            format!("{} leaders: {}", leaders.len(), leaders.join(", ")),
        )
        .remedy("the servers form separate ensembles: give them all the same server.N= list")
    } else if leaders.is_empty() && standalone.is_empty() && unknown.is_empty() {
        Check::fail("zk.leader", AREA, "no server leads")
            .remedy("bring a majority of the servers up so that they elect a leader")
    } else if !unknown.is_empty() {
        let s = unknown.join(", ");
        Check::warn("zk.leader", AREA, format!("cannot tell the role of {s}"))
            .remedy(WHITELIST_SRVR)
    } else if !odd.is_empty() {
        Check::warn(
            "zk.leader",
            AREA,
            format!("in an unexpected mode: {}", odd.join(", ")),
        )
        .remedy("these servers neither lead nor follow (read-only?): check their logs")
    } else {
        let who = leaders
            .first()
            .or(standalone.first())
            .copied()
            .unwrap_or_default();
        Check::pass("zk.leader", AREA, format!("{who} leads, the others follow"))
    };
    c.evidence("modes", per_server(probes, state))
}

fn epoch(probes: &[Probe]) -> Check {
    let serving: Vec<(&str, &Srvr)> = probes
        .iter()
        .filter_map(|p| p.serving().map(|s| (p.server.as_str(), s)))
        .collect();
    let Some(top) = serving
        .iter()
        .filter(|(_, s)| matches!(s.mode, Mode::Leader | Mode::Standalone))
        .map(|(_, s)| *s)
        .max_by_key(|s| s.zxid)
        .or_else(|| serving.iter().map(|(_, s)| *s).max_by_key(|s| s.zxid))
    else {
        if !unknown(probes).is_empty() {
            return Check::warn("zk.epoch", AREA, "no srvr answer to read an epoch from")
                .remedy(WHITELIST_SRVR);
        }
        return Check::fail(
            "zk.epoch",
            AREA,
            "no server is serving: no epoch to compare",
        )
        .remedy("bring a majority of the servers up");
    };
    let epochs = Value::Object(
        serving
            .iter()
            .map(|(n, s)| (n.to_string(), json!(s.epoch())))
            .collect(),
    );
    let ahead = serving
        .iter()
        .filter(|(_, s)| s.epoch() > top.epoch())
        .map(|(n, _)| *n);
    let ahead: Vec<&str> = ahead.collect();
    let behind: Vec<&str> = serving
        .iter()
        .filter(|(_, s)| s.epoch() < top.epoch())
        .map(|(n, _)| *n)
        .collect();
    let c = if !ahead.is_empty() {
        Check::fail(
            "zk.epoch",
            AREA,
            format!(
                "{} report a later epoch than the leader's {}",
                ahead.join(", "),
                top.epoch()
            ),
        )
        .remedy("the leader is stale (a partition?): restart it so that the ensemble elects again")
    } else if !behind.is_empty() && top.counter() > 0 {
        Check::fail(
            "zk.epoch",
            AREA,
            format!(
                "{} are still in an earlier epoch than the leader's {}",
                behind.join(", "),
                top.epoch()
            ),
        )
        .remedy("these servers do not follow the current leader: check their logs and restart them")
    } else if !behind.is_empty() {
        // A follower's zxid is the last transaction it applied: until the first write of a new
        // epoch, it still shows the previous one.
        Check::pass(
            "zk.epoch",
            AREA,
            format!("epoch {} (no write since the election yet)", top.epoch()),
        )
    } else {
        Check::pass(
            "zk.epoch",
            AREA,
            format!("all serving servers are in epoch {}", top.epoch()),
        )
    };
    c.evidence("epochs", epochs)
        .evidence("leader_zxid", format!("{:#x}", top.zxid))
}

fn mntrs(probes: &[Probe]) -> impl Iterator<Item = &Mntr> {
    probes.iter().filter_map(|p| match &p.mntr {
        Some(Reply::Answer(m)) => Some(m),
        _ => None,
    })
}

/// The voting members: what the servers' own configuration says (`mntr`), or else the servers
/// given, so that listing only some of them cannot pass for a smaller ensemble.
fn ensemble_size(probes: &[Probe]) -> usize {
    let configured = mntrs(probes)
        .filter_map(|m| m.quorum_size)
        .max()
        .unwrap_or(0);
    probes.len().max(configured as usize)
}

fn size(n: usize, listed: usize) -> Check {
    let tolerated = (n.max(1) - 1) / 2;
    let c = if n == 1 {
        Check::fail("zk.size", AREA, "1 server: no quorum survives its loss")
            .remedy("run 3 or 5 ZooKeeper servers on separate hosts")
    } else if n % 2 == 0 {
        Check::warn(
            "zk.size",
            AREA,
            format!(
                "{n} servers tolerate no more losses ({tolerated}) than {}",
                n - 1
            ),
        )
        .remedy(format!(
            "run {} or {} servers: an even count adds load, not safety",
            n - 1,
            n + 1
        ))
    } else if listed < n {
        Check::warn(
            "zk.size",
            AREA,
            format!("{listed} of the ensemble's {n} servers are listed"),
        )
        .remedy("list every server in dremio.conf's `zookeeper` (and --zookeeper): the others go unchecked")
    } else {
        Check::pass(
            "zk.size",
            AREA,
            format!("{n} servers tolerate {tolerated} lost"),
        )
    };
    c.evidence("servers", n)
        .evidence("listed", listed)
        .evidence("tolerated_losses", tolerated)
}

/// Voting servers that serve: those that say so, or the leader's count of synced followers (plus
/// itself), which also sees servers that were not listed.
fn voting(probes: &[Probe], n: usize) -> usize {
    let answered = probes
        .iter()
        .filter(|p| {
            p.serving()
                .is_some_and(|s| s.mode.votes() || (n == 1 && s.mode == Mode::Standalone))
        })
        .count();
    let synced = mntrs(probes)
        .filter(|m| m.state == Mode::Leader)
        .filter_map(|m| m.synced_followers)
        .map(|f| f as usize + 1)
        .max()
        .unwrap_or(0);
    answered.max(synced)
}

fn quorum(probes: &[Probe]) -> Check {
    let n = ensemble_size(probes);
    let majority = n / 2 + 1;
    let voting = voting(probes, n);
    let unknown = unknown(probes);
    let c = if voting < majority && voting + unknown.len() >= majority {
        Check::warn(
            "zk.quorum",
            AREA,
            format!(
                "cannot tell whether a majority serves: srvr refused by {}",
                unknown.join(", ")
            ),
        )
        .remedy(WHITELIST_SRVR)
    } else if voting < majority {
        Check::fail("zk.quorum", AREA, format!("{voting} of {n} servers serve: a majority needs {majority}"))
            .remedy("bring servers back until a majority serves: Dremio cannot elect or register without it")
    } else if voting - 1 < majority {
        Check::warn(
            "zk.quorum",
            AREA,
            format!("{voting} of {n} serve: losing one more loses the quorum"),
        )
        .remedy("bring the missing servers back: no redundancy is left")
    } else {
        Check::pass(
            "zk.quorum",
            AREA,
            format!("{voting} of {n} serve; {} may be lost", voting - majority),
        )
    };
    c.evidence("serving", voting).evidence("majority", majority)
}

fn latency(probes: &[Probe]) -> Check {
    let serving: Vec<(&str, &Srvr)> = probes
        .iter()
        .filter_map(|p| p.serving().map(|s| (p.server.as_str(), s)))
        .collect();
    let figures = Value::Object(
        serving
            .iter()
            .map(|(n, s)| {
                let v = json!({"latency_ms": {"min": s.latency_min, "avg": s.latency_avg, "max": s.latency_max},
                               "outstanding": s.outstanding, "node_count": s.node_count, "version": s.version});
                (n.to_string(), v)
            })
            .collect(),
    );
    let worst_avg = serving
        .iter()
        .map(|(_, s)| s.latency_avg)
        .fold(0.0, f64::max);
    let backlog = serving
        .iter()
        .map(|(_, s)| s.outstanding)
        .max()
        .unwrap_or(0);
    let c = if worst_avg > SLOW_AVG_MS || backlog > BACKLOG {
        Check::warn(
            "zk.latency",
            AREA,
            format!("average latency up to {worst_avg} ms, up to {backlog} outstanding"),
        )
        .remedy(
            "ZooKeeper is slow: give it dedicated disks for its transaction log and check its load",
        )
    } else {
        Check::pass(
            "zk.latency",
            AREA,
            format!("average latency up to {worst_avg} ms, up to {backlog} outstanding"),
        )
    };
    c.evidence("servers", figures)
}

/// `mntr` is optional: a server that refuses it is reported, never failed.
fn words_allowed(probes: &[Probe]) -> Check {
    let refused = names(probes, |p| matches!(p.mntr, Some(Reply::NotWhitelisted)));
    let leader = mntrs(probes).find(|m| m.state == Mode::Leader);
    let summary = if refused.is_empty() {
        "mntr is whitelisted where servers answer".to_string()
    } else {
        format!(
            "mntr is not in the whitelist of {} (only srvr was used there)",
            refused.join(", ")
        )
    };
    let mut c = Check::pass("zk.words", AREA, summary).evidence("mntr_refused", json!(refused));
    if let Some(m) = leader {
        c = c
            .evidence("leader_learners", json!(m.learners))
            .evidence("leader_synced_followers", json!(m.synced_followers))
            .evidence("leader_pending_syncs", json!(m.pending_syncs));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::check::Status;

    fn srvr(mode: Mode, zxid: u64) -> Srvr {
        Srvr {
            version: "3.8.0".into(),
            latency_min: 0.0,
            latency_avg: 0.5,
            latency_max: 3.0,
            outstanding: 0,
            zxid,
            mode,
            node_count: 5,
        }
    }

    fn probe(i: usize, srvr: Result<Reply<Srvr>, String>) -> Probe {
        Probe {
            server: format!("127.0.0.1:{}", 2181 + i),
            srvr,
            mntr: Some(Reply::NotWhitelisted),
        }
    }

    fn ok(i: usize, mode: Mode, zxid: u64) -> Probe {
        probe(i, Ok(Reply::Answer(srvr(mode, zxid))))
    }

    fn status(checks: &[Check], id: &str) -> Status {
        checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no {id}"))
            .status
    }

    fn healthy() -> Vec<Probe> {
        vec![
            ok(0, Mode::Follower, 0x2_0000_0004),
            ok(1, Mode::Leader, 0x2_0000_0004),
            ok(2, Mode::Follower, 0x2_0000_0003),
        ]
    }

    #[test]
    fn a_healthy_three_node_quorum_passes_every_check() {
        let checks = judge(&healthy());
        for c in &checks {
            assert_eq!(c.status, Status::Pass, "{c:?}");
        }
        assert_eq!(status(&checks, "zk.words"), Status::Pass);
        let words = checks.iter().find(|c| c.id == "zk.words").unwrap();
        assert!(
            words.summary.contains("not in the whitelist"),
            "{}",
            words.summary
        );
    }

    #[test]
    fn one_server_down_warns_two_down_fails() {
        let mut p = healthy();
        p[0].srvr = Err("cannot connect: refused".into());
        let checks = judge(&p);
        assert_eq!(status(&checks, "zk.answer"), Status::Warn);
        assert_eq!(status(&checks, "zk.quorum"), Status::Warn);
        assert_eq!(status(&checks, "zk.leader"), Status::Pass);
        p[1].srvr = Err("cannot connect: refused".into());
        p[2].srvr = Ok(Reply::NotServing);
        let checks = judge(&p);
        for id in ["zk.answer", "zk.quorum", "zk.leader", "zk.epoch"] {
            assert_eq!(status(&checks, id), Status::Fail, "{id}");
        }
    }

    #[test]
    fn srvr_refused_everywhere_warns_and_never_fails() {
        let p: Vec<Probe> = (0..3)
            .map(|i| probe(i, Ok(Reply::NotWhitelisted)))
            .collect();
        let checks = judge(&p);
        for id in ["zk.leader", "zk.epoch", "zk.quorum"] {
            assert_eq!(status(&checks, id), Status::Warn, "{id}");
        }
        assert_eq!(status(&checks, "zk.answer"), Status::Pass);
        let mut p = healthy();
        p[2] = ok(2, Mode::Other("read-only".into()), 0x2_0000_0004);
        let leader = judge(&p).into_iter().find(|c| c.id == "zk.leader").unwrap();
        assert_eq!(leader.status, Status::Warn);
        assert!(
            leader.summary.contains("unexpected mode"),
            "{}",
            leader.summary
        );
    }

    #[test]
    fn sizes_one_fails_even_warns_odd_passes() {
        assert_eq!(size(1, 1).status, Status::Fail);
        assert_eq!(size(4, 4).status, Status::Warn);
        assert_eq!(size(3, 3).status, Status::Pass);
        assert_eq!(size(5, 5).evidence["tolerated_losses"], 2);
    }

    fn mntr(state: Mode, synced: Option<u64>) -> Option<Reply<Mntr>> {
        Some(Reply::Answer(Mntr {
            state,
            avg_latency: Some(0.0),
            outstanding: Some(0),
            learners: synced,
            synced_followers: synced,
            pending_syncs: synced.map(|_| 0),
            quorum_size: Some(5),
        }))
    }

    #[test]
    fn a_partial_server_list_is_judged_on_the_ensembles_own_size() {
        let mut p = healthy();
        p.truncate(2);
        p[0].mntr = mntr(Mode::Follower, None);
        p[1].mntr = mntr(Mode::Leader, Some(4));
        let checks = judge(&p);
        let size = checks.iter().find(|c| c.id == "zk.size").unwrap();
        assert_eq!(size.status, Status::Warn, "{size:?}");
        assert_eq!(
            (
                size.evidence["servers"].as_u64(),
                size.evidence["listed"].as_u64()
            ),
            (Some(5), Some(2))
        );
        // the leader sees 4 synced followers: 5 of 5 serve though only 2 were asked
        let q = checks.iter().find(|c| c.id == "zk.quorum").unwrap();
        assert_eq!(
            (q.status, q.evidence["serving"].as_u64()),
            (Status::Pass, Some(5))
        );
    }

    #[test]
    fn two_leaders_or_a_standalone_among_several_fail() {
        let mut p = healthy();
        p[0] = ok(0, Mode::Leader, 0x2_0000_0004);
        assert_eq!(status(&judge(&p), "zk.leader"), Status::Fail);
        p[0] = ok(0, Mode::Standalone, 0x2_0000_0004);
        assert_eq!(status(&judge(&p), "zk.leader"), Status::Fail);
        assert_eq!(
            status(&judge(&[ok(0, Mode::Standalone, 5)]), "zk.leader"),
            Status::Pass
        );
    }

    #[test]
    fn epochs_lagging_after_writes_fail_but_not_before_the_first_write() {
        let mut p = healthy();
        p[0] = ok(0, Mode::Follower, 0x1_0000_0009);
        assert_eq!(status(&judge(&p), "zk.epoch"), Status::Fail);
        p[1] = ok(1, Mode::Leader, 0x2_0000_0000);
        assert_eq!(status(&judge(&p), "zk.epoch"), Status::Pass);
        p[2] = ok(2, Mode::Follower, 0x3_0000_0001);
        assert_eq!(status(&judge(&p), "zk.epoch"), Status::Fail);
    }

    #[test]
    fn slow_or_backlogged_servers_warn_with_their_figures() {
        let mut p = healthy();
        let mut s = srvr(Mode::Follower, 0x2_0000_0004);
        s.outstanding = 500;
        p[0].srvr = Ok(Reply::Answer(s));
        let checks = judge(&p);
        let c = checks.iter().find(|c| c.id == "zk.latency").unwrap();
        assert_eq!(c.status, Status::Warn);
        assert_eq!(c.evidence["servers"]["127.0.0.1:2181"]["outstanding"], 500);
    }
}
