//! What doctor reads from others: a mountinfo file (`--mountinfo`, copied from another host),
//! ZooKeeper's four-letter-word answers, and the discovery payload other nodes write into
//! ZooKeeper. None may panic or make memory grow beyond a small multiple of the input.

use std::path::Path;

use lifeboat::doctor::{mountinfo, volume};
use lifeboat::zk::{payload, stats};
use proptest::prelude::*;
use prost::Message;

use crate::alloc::{MIB, peak};
use crate::harness::{bounded, fuzz};
use crate::inputs::{Bytes, Format, or_bytes, text_from};

/// Mountinfo's and the four-letter words' syntax: fields, separators, octal escapes, numbers.
const LINES: Format = Format {
    tokens: &[
        b" ",
        b"\t",
        b"\n",
        b" - ",
        b",",
        b"=",
        b":",
        b"/",
        b"\\040",
        b"\\134",
        b"\\",
        b"0x",
        b"nfs4",
        b"vers=2",
        b"soft",
        b"hard",
        b"local_lock=all",
        b"proto=udp",
        b"Mode: ",
        b"leader",
        b"Zxid: ",
        b"Latency min/avg/max: ",
        b"zk_",
        b"4294967296",
        b"-1",
    ],
    pairs: &[(b"[", b"]")],
};

const MOUNTINFO_SEEDS: &[&str] = &[
    include_str!("../fixtures/mountinfo/healthy-nfs4"),
    include_str!("../fixtures/mountinfo/stacked"),
    include_str!("../fixtures/mountinfo/escaped"),
    include_str!("../fixtures/mountinfo/soft"),
];

const ZK_SEEDS: &[&str] = &[
    "Zookeeper version: 3.8.0-abc, built on 2024-12-29 17:54 UTC\nLatency min/avg/max: 0/1.5/12\nReceived: 10\nSent: 9\nConnections: 2\nOutstanding: 0\nZxid: 0x300000007\nMode: leader\nNode count: 42\nProposal sizes last/min/max: 48/48/96\n",
    "zk_version\t3.8.0\nzk_server_state\tleader\nzk_avg_latency\t1.5\nzk_outstanding_requests\t0\nzk_quorum_size\t3\nzk_synced_followers\t2\nzk_learners\t2\nzk_pending_syncs\t0\n",
    "This ZooKeeper instance is not currently serving requests\n",
    "mntr is not executed because it is not in the whitelist.\n",
];

#[test]
fn mountinfo_file() {
    fuzz(
        "mountinfo_file",
        or_bytes(text_from(&LINES, MOUNTINFO_SEEDS)),
        |Bytes(bytes)| {
            let text = String::from_utf8_lossy(&bytes);
            let (_, held) = peak(|| {
                let mounts = mountinfo::parse(&text);
                for path in ["/var/lib/dremio", "/", "/mnt/dremio data/x", ""] {
                    let _ = volume::volume(path, mountinfo::mount_of(&mounts, Path::new(path)));
                }
            });
            bounded("mountinfo", held, bytes.len(), MIB, 16)
        },
    );
}

#[test]
fn zookeeper_answers() {
    fuzz(
        "zookeeper_answers",
        or_bytes(text_from(&LINES, ZK_SEEDS)),
        |Bytes(bytes)| {
            let text = String::from_utf8_lossy(&bytes);
            let (_, held) = peak(|| {
                let _ = stats::parse_srvr(&text);
                let _ = stats::parse_mntr(&text);
            });
            bounded("four-letter-word answer", held, bytes.len(), MIB, 16)
        },
    );
}

#[test]
fn discovery_payload() {
    let honest = payload::DremioServiceInstance {
        id: Some("4b6f-uuid".into()),
        registration_time_utc: Some(1_764_000_000_000),
        endpoint: Some(payload::NodeEndpoint {
            address: Some("coord-1.example".into()),
            user_port: Some(31010),
            fabric_port: Some(45678),
            start_time: Some(1_764_000_000_000),
            node_tag: Some(String::new()),
            conduit_port: Some(0),
            dremio_version: Some("25.2.0".into()),
        }),
        name: Some("master".into()),
    }
    .encode_to_vec();
    let strategy = prop_oneof![
        1 => crate::inputs::any_bytes(),
        3 => (prop::collection::vec((0usize..64, any::<u8>()), 0..8))
            .prop_map(move |flips| {
                let mut b = honest.clone();
                for (i, v) in flips {
                    if !b.is_empty() {
                        let at = i % b.len();
                        b[at] = v;
                    }
                }
                b
            }),
    ];
    fuzz("discovery_payload", strategy, |bytes: Vec<u8>| {
        let (_, held) = peak(|| {
            let _ = payload::decode(&bytes);
        });
        bounded("discovery payload", held, bytes.len(), MIB, 16)
    });
}
