//! What `srvr` and `mntr` answer, parsed. A refusal (the word is not whitelisted, the server is
//! outside a quorum) is a fact about the server, so it is a [`Reply`] variant, not an error.

use std::collections::BTreeMap;

/// A four-letter word's answer: its figures, or one of the two refusals ZooKeeper gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<T> {
    Answer(T),
    /// "... is not executed because it is not in the whitelist." (`4lw.commands.whitelist`).
    NotWhitelisted,
    /// "This ZooKeeper instance is not currently serving requests": outside a quorum.
    NotServing,
}

/// The server's role, from `Mode:` (srvr) or `zk_server_state` (mntr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    Standalone,
    Other(String),
}

impl Mode {
    fn parse(s: &str) -> Mode {
        match s {
            "leader" => Mode::Leader,
            "follower" => Mode::Follower,
            "observer" => Mode::Observer,
            "standalone" => Mode::Standalone,
            other => Mode::Other(other.to_string()),
        }
    }

    pub fn word(&self) -> &str {
        match self {
            Mode::Leader => "leader",
            Mode::Follower => "follower",
            Mode::Observer => "observer",
            Mode::Standalone => "standalone",
            Mode::Other(s) => s,
        }
    }

    /// Leaders and followers vote; observers and standalone servers do not make a quorum.
    pub fn votes(&self) -> bool {
        matches!(self, Mode::Leader | Mode::Follower)
    }
}

/// The figures of a `srvr` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Srvr {
    pub version: String,
    pub latency_min: f64,
    pub latency_avg: f64,
    pub latency_max: f64,
    pub outstanding: u64,
    /// The last transaction this server processed.
    pub zxid: u64,
    pub mode: Mode,
    pub node_count: u64,
}

impl Srvr {
    /// The election epoch that produced `zxid`: its high 32 bits.
    pub fn epoch(&self) -> u32 {
        (self.zxid >> 32) as u32
    }

    /// Transactions in that epoch: the low 32 bits (0 right after an election).
    pub fn counter(&self) -> u32 {
        self.zxid as u32
    }
}

/// An answer that is neither figures nor a known refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a ZooKeeper `{word}` answer: {what}")]
pub struct ParseError {
    pub word: &'static str,
    pub what: String,
}

fn refusal<T>(answer: &str) -> Option<Reply<T>> {
    if answer.contains("not in the whitelist") {
        Some(Reply::NotWhitelisted)
    } else if answer.contains("not currently serving requests") {
        Some(Reply::NotServing)
    } else {
        None
    }
}

/// The values of the `wanted` keys among `key<sep>value` lines (the first `sep` splits; the
/// last line of a key wins). Only wanted keys are kept, so a hostile answer of a million distinct
/// lines costs no more memory than an honest one.
fn fields<'a>(answer: &'a str, sep: char, wanted: &[&str]) -> BTreeMap<&'a str, &'a str> {
    let mut found = BTreeMap::new();
    for (k, v) in answer.lines().filter_map(|l| l.split_once(sep)) {
        let k = k.trim();
        if wanted.contains(&k) {
            found.insert(k, v.trim());
        }
    }
    found
}

pub fn parse_srvr(answer: &str) -> Result<Reply<Srvr>, ParseError> {
    if let Some(r) = refusal(answer) {
        return Ok(r);
    }
    let f = fields(
        answer,
        ':',
        &[
            "Zxid",
            "Latency min/avg/max",
            "Zookeeper version",
            "Outstanding",
            "Mode",
            "Node count",
        ],
    );
    let err = |what: &str| ParseError {
        word: "srvr",
        what: what.to_string(),
    };
    let get = |k: &str| {
        f.get(k)
            .copied()
            .ok_or_else(|| err(&format!("no `{k}:` line")))
    };
    let number = |k: &str| {
        get(k)?
            .parse::<u64>()
            .map_err(|_| err(&format!("`{k}:` is not a number")))
    };
    let zxid = get("Zxid")?;
    let zxid = u64::from_str_radix(zxid.trim_start_matches("0x"), 16)
        .map_err(|_| err("`Zxid:` is not hexadecimal"))?;
    let latency: Vec<f64> = get("Latency min/avg/max")?
        .split('/')
        .map(|x| x.parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| err("`Latency min/avg/max:` is not three numbers"))?;
    let [latency_min, latency_avg, latency_max] = latency[..] else {
        return Err(err("`Latency min/avg/max:` is not three numbers"));
    };
    Ok(Reply::Answer(Srvr {
        version: get("Zookeeper version")?.to_string(),
        latency_min,
        latency_avg,
        latency_max,
        outstanding: number("Outstanding")?,
        zxid,
        mode: Mode::parse(get("Mode")?),
        node_count: number("Node count")?,
    }))
}

/// The `mntr` figures doctor reports; the leader-only ones are `None` elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct Mntr {
    pub state: Mode,
    pub avg_latency: Option<f64>,
    pub outstanding: Option<u64>,
    pub learners: Option<u64>,
    pub synced_followers: Option<u64>,
    pub pending_syncs: Option<u64>,
    /// Voting members of the ensemble as this server's configuration has them.
    pub quorum_size: Option<u64>,
}

pub fn parse_mntr(answer: &str) -> Result<Reply<Mntr>, ParseError> {
    if let Some(r) = refusal(answer) {
        return Ok(r);
    }
    let f = fields(
        answer,
        '\t',
        &[
            "zk_server_state",
            "zk_avg_latency",
            "zk_outstanding_requests",
            "zk_learners",
            "zk_synced_followers",
            "zk_pending_syncs",
            "zk_quorum_size",
        ],
    );
    let state = f.get("zk_server_state").ok_or_else(|| ParseError {
        word: "mntr",
        what: "no zk_server_state line".to_string(),
    })?;
    let int = |k: &str| f.get(k).and_then(|v| v.trim().parse::<u64>().ok());
    Ok(Reply::Answer(Mntr {
        state: Mode::parse(state.trim()),
        avg_latency: f.get("zk_avg_latency").and_then(|v| v.trim().parse().ok()),
        outstanding: int("zk_outstanding_requests"),
        learners: int("zk_learners"),
        synced_followers: int("zk_synced_followers"),
        pending_syncs: int("zk_pending_syncs"),
        quorum_size: int("zk_quorum_size"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEADER: &str = "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\n\
        Latency min/avg/max: 0/1.5/12\nReceived: 3\nSent: 4\nConnections: 1\nOutstanding: 2\n\
        Zxid: 0x300000007\nMode: leader\nNode count: 5\nProposal sizes last/min/max: -1/-1/-1\n";

    #[test]
    fn srvr_gives_mode_epoch_latency_and_outstanding() {
        let Reply::Answer(s) = parse_srvr(LEADER).unwrap() else {
            panic!("not an answer")
        };
        assert_eq!(s.mode, Mode::Leader);
        assert_eq!((s.epoch(), s.counter()), (3, 7));
        assert_eq!(
            (s.latency_min, s.latency_avg, s.latency_max),
            (0.0, 1.5, 12.0)
        );
        assert_eq!((s.outstanding, s.node_count), (2, 5));
        assert!(s.version.starts_with("3.8.0"), "{}", s.version);
    }

    #[test]
    fn refusals_are_facts_not_errors() {
        let wl = "mntr is not executed because it is not in the whitelist.\n";
        assert_eq!(parse_mntr(wl).unwrap(), Reply::NotWhitelisted);
        assert_eq!(
            parse_srvr(&wl.replace("mntr", "srvr")).unwrap(),
            Reply::NotWhitelisted
        );
        let ns = "This ZooKeeper instance is not currently serving requests\n";
        assert_eq!(parse_srvr(ns).unwrap(), Reply::NotServing);
        assert_eq!(parse_mntr(ns).unwrap(), Reply::NotServing);
    }

    #[test]
    fn a_foreign_answer_is_a_parse_error() {
        assert!(parse_srvr("HTTP/1.1 400 Bad Request\r\n\r\n").is_err());
        assert!(parse_srvr(&LEADER.replace("0x300000007", "0xnope")).is_err());
        assert!(parse_srvr(&LEADER.replace("0/1.5/12", "0/1.5")).is_err());
        assert!(parse_mntr("zk_version\t3.8.0\n").is_err());
    }

    #[test]
    fn mntr_gives_state_and_the_leaders_follower_figures() {
        let a = "zk_version\t3.8.0\nzk_server_state\tleader\nzk_avg_latency\t0.25\n\
                 zk_outstanding_requests\t0\nzk_learners\t2\nzk_synced_followers\t2\nzk_pending_syncs\t0\nzk_quorum_size\t3\n";
        let Reply::Answer(m) = parse_mntr(a).unwrap() else {
            panic!("not an answer")
        };
        assert_eq!(m.state, Mode::Leader);
        assert_eq!(m.avg_latency, Some(0.25));
        assert_eq!(
            (m.learners, m.synced_followers, m.pending_syncs),
            (Some(2), Some(2), Some(0))
        );
        let f = parse_mntr("zk_server_state\tfollower\n").unwrap();
        assert!(matches!(f, Reply::Answer(Mntr { learners: None, .. })));
    }
}
