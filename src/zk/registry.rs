//! What ZooKeeper says about a cluster, read through a real client: Dremio's master latch's
//! participants and the registered masters, coordinators and executors; any latch's participants
//! with their ids (Druid's Coordinator and Overlord latches).

use std::time::Duration;

use zookeeper_client as zk;

use super::latch::{self, Participant};
use super::payload::{self, DremioServiceInstance};
use crate::error::{Classify, ExitClass};

/// Registrations whose payload is read per folder; more are counted, not read (a hostile or
/// broken cluster must not make doctor fetch without end).
pub const MAX_READ: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error("cannot open a ZooKeeper session with {connect}: {source}")]
    Connect { connect: String, source: zk::Error },
    #[error("ZooKeeper did not answer within {0:?}")]
    Timeout(Duration),
    #[error("reading {path} in ZooKeeper: {source}")]
    Read { path: String, source: zk::Error },
}

impl Classify for ZkError {
    fn exit_class(&self) -> ExitClass {
        ExitClass::Storage
    }
}

/// One node under `master`, `coordinator` or `executor`: its name (a uuid) and its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub node: String,
    pub instance: Result<DremioServiceInstance, String>,
}

/// The election and the discovery folders at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// In election order: the first one leads.
    pub participants: Vec<Participant>,
    /// Children of the latch folder that are not latch nodes.
    pub foreign: Vec<String>,
    pub masters: Vec<Registration>,
    pub coordinators: Vec<Registration>,
    /// Counted only: their payloads say nothing the checks need.
    pub executors: usize,
}

/// ZooKeeper's client port, for servers listed without one.
pub const DEFAULT_PORT: u16 = 2181;

/// The `host:port` servers of a connect string (`h1:p1,h2:p2[/chroot]`), for the four-letter
/// words, which know nothing of chroots.
pub fn servers(connect: &str) -> Vec<String> {
    let hosts = connect.split_once('/').map_or(connect, |(h, _)| h);
    hosts
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if has_port(s) {
                s.to_string()
            } else {
                format!("{s}:{DEFAULT_PORT}")
            }
        })
        .collect()
}

/// `host:port` or `[v6]:port`, not a bare host or a bare IPv6 address.
fn has_port(s: &str) -> bool {
    s.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && (!host.contains(':') || host.ends_with(']'))
    })
}

/// The latch folder under a cluster's root (`/dremio` by default).
pub fn latch_path(root: &str) -> String {
    format!("{}/leader-latch/master", root.trim_end_matches('/'))
}

/// Reads a snapshot. `connect` is a connect string (`host:port,...[/chroot]`, the chroot
/// honoured); `root` is the cluster's folder inside it. All of it within `timeout`.
pub async fn read(connect: &str, root: &str, timeout: Duration) -> Result<Snapshot, ZkError> {
    match tokio::time::timeout(timeout, read_all(connect, root, timeout)).await {
        Ok(res) => res,
        Err(_) => Err(ZkError::Timeout(timeout)),
    }
}

async fn session(connect: &str, timeout: Duration) -> Result<zk::Client, ZkError> {
    zk::Client::connector()
        .with_session_timeout(timeout)
        .with_connection_timeout(timeout)
        .connect(connect)
        .await
        .map_err(|source| ZkError::Connect {
            connect: connect.to_string(),
            source,
        })
}

async fn read_all(connect: &str, root: &str, timeout: Duration) -> Result<Snapshot, ZkError> {
    let client = session(connect, timeout).await?;
    let root = root.trim_end_matches('/');
    let (participants, foreign) = latch::order(children(&client, &latch_path(root)).await?);
    let masters = registrations(&client, &format!("{root}/master")).await?;
    let coordinators = registrations(&client, &format!("{root}/coordinator")).await?;
    let executors = children(&client, &format!("{root}/executor")).await?.len();
    Ok(Snapshot {
        participants,
        foreign,
        masters,
        coordinators,
        executors,
    })
}

/// A latch participant whose node holds its participant id (Druid writes the node's URL there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub node: String,
    pub seq: u64,
    pub id: String,
}

/// The longest participant id kept: a URL is short, and a hostile node must not fill the report.
pub const MAX_ID_CHARS: usize = 512;

/// The participants of the latch at `path` (leader first) with their ids, and the children that
/// are not latch nodes. At most [`MAX_READ`] ids are read; all within `timeout`.
pub async fn latch_members(
    connect: &str,
    path: &str,
    timeout: Duration,
) -> Result<(Vec<Member>, Vec<String>), ZkError> {
    let read = async {
        let client = session(connect, timeout).await?;
        let (participants, foreign) = latch::order(children(&client, path).await?);
        let mut members = Vec::new();
        for p in participants.into_iter().take(MAX_READ) {
            let node_path = format!("{}/{}", path.trim_end_matches('/'), p.node);
            let id = match client.get_data(&node_path).await {
                Ok((data, _)) => String::from_utf8_lossy(&data)
                    .chars()
                    .take(MAX_ID_CHARS)
                    .collect(),
                // A participant whose session ended between the listing and the read.
                Err(zk::Error::NoNode) => continue,
                Err(source) => {
                    return Err(ZkError::Read {
                        path: node_path,
                        source,
                    });
                }
            };
            members.push(Member {
                node: p.node,
                seq: p.seq,
                id,
            });
        }
        Ok((members, foreign))
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(res) => res,
        Err(_) => Err(ZkError::Timeout(timeout)),
    }
}

/// A folder's children; a folder that does not exist has none.
async fn children(client: &zk::Client, path: &str) -> Result<Vec<String>, ZkError> {
    match client.list_children(path).await {
        Ok(c) => Ok(c),
        Err(zk::Error::NoNode) => Ok(Vec::new()),
        Err(source) => Err(ZkError::Read {
            path: path.to_string(),
            source,
        }),
    }
}

async fn registrations(client: &zk::Client, dir: &str) -> Result<Vec<Registration>, ZkError> {
    let mut nodes = children(client, dir).await?;
    nodes.sort();
    let mut out = Vec::new();
    for node in nodes.into_iter().take(MAX_READ) {
        let path = format!("{dir}/{node}");
        let instance = match client.get_data(&path).await {
            Ok((data, _)) => payload::decode(&data).map_err(|e| e.to_string()),
            // Gone between the listing and the read: an ephemeral node whose session ended.
            Err(zk::Error::NoNode) => continue,
            Err(source) => return Err(ZkError::Read { path, source }),
        };
        out.push(Registration { node, instance });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_drop_the_chroot_and_default_the_port() {
        assert_eq!(
            servers("zk1:2182, zk2,[::1]:2183,[::2]/prod/dremio"),
            ["zk1:2182", "zk2:2181", "[::1]:2183", "[::2]:2181"]
        );
        assert!(servers("/chroot-only").is_empty());
        assert_eq!(latch_path("/dremio/"), "/dremio/leader-latch/master");
    }
}
