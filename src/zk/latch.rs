//! Curator's LeaderLatch nodes: `_c_<uuid>-latch-<seq>` (the `_c_<uuid>-` protection prefix is
//! optional), ordered by the part after `latch-`; the lowest leads.

/// One participant of the latch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The node's name under the latch folder.
    pub node: String,
    pub seq: u64,
}

/// The latch's children in election order (the leader first), and the names that are not
/// latch nodes at all (which Curator would also sort among them: worth reporting).
pub fn order(children: Vec<String>) -> (Vec<Participant>, Vec<String>) {
    let mut participants = Vec::new();
    let mut foreign = Vec::new();
    for node in children {
        match sequence(&node) {
            Some(seq) => participants.push(Participant { node, seq }),
            None => foreign.push(node),
        }
    }
    participants.sort_by_key(|p| p.seq);
    foreign.sort();
    (participants, foreign)
}

/// The sequence number after the last `latch-` (ZooKeeper appends 10 digits).
fn sequence(node: &str) -> Option<u64> {
    let (_, seq) = node.rsplit_once("latch-")?;
    if seq.len() != 10 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    seq.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_sequence_leads_whatever_the_prefix() {
        let children = vec![
            "_c_9f0e1c2a-aaaa-4bbb-8ccc-000000000001-latch-0000000012".to_string(),
            "_c_0a0e1c2a-aaaa-4bbb-8ccc-000000000002-latch-0000000003".to_string(),
            "latch-0000000007".to_string(),
            "zookeeper-junk".to_string(),
            "_c_x-latch-12".to_string(),
        ];
        let (p, foreign) = order(children);
        let seqs: Vec<u64> = p.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, [3, 7, 12]);
        assert!(p[0].node.starts_with("_c_0a0e"));
        assert_eq!(foreign, ["_c_x-latch-12", "zookeeper-junk"]);
    }
}
