//! Leadership through ZooKeeper, as Druid's CuratorDruidLeaderSelector runs it: one Curator
//! LeaderLatch per role (`<root>/coordinator/_COORDINATOR`, `<root>/overlord/_OVERLORD`), each
//! participant an ephemeral sequential `_c_<uuid>-latch-<seq>` node whose data is the node's URL;
//! the leader is whoever Curator's sort puts first. Every process also announces itself under
//! `<root>/internal-discovery/<ROLE>/<host:port>`.
//!
//! A session that leaves SyncConnected is given up whole: this node stops naming any leader and
//! re-joins with a new session, at the back of each latch (deleting its old node if that has not
//! expired yet), as Curator's `reset()` does after a connection loss. Believing the old leader
//! through a partition is what must never happen.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::json;
use zookeeper_client as zk;

use crate::leader::{Leaders, Role};

/// Curator's lock name inside a latch folder.
const LOCK_NAME: &str = "latch-";

/// Where and how this node joins.
#[derive(Debug, Clone)]
pub struct ZkConfig {
    /// `host:port,...[/chroot]`.
    pub connect: String,
    /// Druid's `druid.zk.paths.base`.
    pub root: String,
    pub session_timeout: Duration,
    /// This node's URL: its participant id.
    pub me: String,
    /// `host:port`, the name it announces under.
    pub host_port: String,
}

/// Joins, follows and re-joins for as long as the process lives.
pub async fn run(cfg: ZkConfig, leaders: Arc<Leaders>) {
    loop {
        if let Err(e) = session(&cfg, &leaders).await {
            eprintln!("druid-sim: ZooKeeper: {e:#}");
        }
        forget(&leaders);
        // a pause before re-connecting, so that a quorum that is down is not hammered
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn forget(leaders: &Leaders) {
    leaders.set(Role::Coordinator, None);
    leaders.set(Role::Overlord, None);
}

/// The latch folder and discovery name of a role.
fn paths(root: &str, role: Role) -> (String, &'static str) {
    match role {
        Role::Coordinator => (format!("{root}/coordinator/_COORDINATOR"), "COORDINATOR"),
        Role::Overlord => (format!("{root}/overlord/_OVERLORD"), "OVERLORD"),
    }
}

/// One session: join both latches, announce, and follow them until the session breaks.
async fn session(cfg: &ZkConfig, leaders: &Leaders) -> Result<()> {
    let client = zk::Client::connector()
        .with_session_timeout(cfg.session_timeout)
        .connect(&cfg.connect)
        .await
        .with_context(|| format!("connecting to {}", cfg.connect))?;
    let mut state = client.state_watcher();
    let root = cfg.root.trim_end_matches('/');
    let (coordinator, c_name) = paths(root, Role::Coordinator);
    let (overlord, o_name) = paths(root, Role::Overlord);
    let c = join(&client, &coordinator, &cfg.me).await?;
    let o = join(&client, &overlord, &cfg.me).await?;
    announce(&client, root, c_name, Role::Coordinator, cfg).await?;
    announce(&client, root, o_name, Role::Overlord, cfg).await?;
    tokio::select! {
        r = follow(&client, &coordinator, c, Role::Coordinator, cfg, leaders) => r,
        r = follow(&client, &overlord, o, Role::Overlord, cfg, leaders) => r,
        s = left_connected(&mut state) => Err(anyhow!("session {s:?}: no leader until re-joined")),
    }
}

async fn left_connected(state: &mut zk::StateWatcher) -> zk::SessionState {
    loop {
        let s = state.changed().await;
        if s != zk::SessionState::SyncConnected {
            return s;
        }
    }
}

fn open_acl(mode: zk::CreateMode) -> zk::CreateOptions<'static> {
    mode.with_acls(zk::Acls::anyone_all())
}

/// Curator's `create().creatingParentContainersIfNeeded().withProtection()` of `latch-`;
/// returns the node's protected prefix, by which this participant knows its own node.
async fn join(client: &zk::Client, latch: &str, me: &str) -> Result<String> {
    client
        .mkdir(latch, &open_acl(zk::CreateMode::Persistent))
        .await
        .with_context(|| format!("creating {latch}"))?;
    drop_stale(client, latch, me).await?;
    let prefix = format!("_c_{}-{LOCK_NAME}", uuid::Uuid::new_v4());
    client
        .create(
            &format!("{latch}/{prefix}"),
            me.as_bytes(),
            &open_acl(zk::CreateMode::EphemeralSequential),
        )
        .await
        .with_context(|| format!("joining {latch}"))?;
    Ok(prefix)
}

/// Deletes this process's nodes left by an earlier session that has not expired yet, as
/// Curator's `reset()` deletes its old node: until it expires, it would still name this process
/// the leader, ahead of participants that kept their sessions.
async fn drop_stale(client: &zk::Client, latch: &str, me: &str) -> Result<()> {
    for child in client.list_children(latch).await? {
        let path = format!("{latch}/{child}");
        match client.get_data(&path).await {
            Ok((data, _)) if data == me.as_bytes() => match client.delete(&path, None).await {
                Ok(()) | Err(zk::Error::NoNode) => {}
                Err(e) => return Err(e).with_context(|| format!("deleting {path}")),
            },
            Ok(_) | Err(zk::Error::NoNode) => {}
            Err(e) => return Err(e).with_context(|| format!("reading {path}")),
        }
    }
    Ok(())
}

/// Druid's DiscoveryDruidNode for one role of this process.
async fn announce(
    client: &zk::Client,
    root: &str,
    name: &str,
    role: Role,
    cfg: &ZkConfig,
) -> Result<()> {
    let dir = format!("{root}/internal-discovery/{name}");
    client
        .mkdir(&dir, &open_acl(zk::CreateMode::Persistent))
        .await
        .with_context(|| format!("creating {dir}"))?;
    let path = format!("{dir}/{}", cfg.host_port);
    let payload = discovery_node(role, &cfg.host_port).to_string();
    let ephemeral = open_acl(zk::CreateMode::Ephemeral);
    loop {
        match client.create(&path, payload.as_bytes(), &ephemeral).await {
            Ok(_) => return Ok(()),
            // our previous session's announcement, not yet expired: the name is this process's
            Err(zk::Error::NodeExists) => match client.delete(&path, None).await {
                Ok(()) | Err(zk::Error::NoNode) => continue,
                Err(e) => return Err(e).with_context(|| format!("replacing {path}")),
            },
            Err(e) => return Err(e).with_context(|| format!("announcing {path}")),
        }
    }
}

fn discovery_node(role: Role, host_port: &str) -> serde_json::Value {
    let (service, node_type) = match role {
        Role::Coordinator => ("druid/coordinator", "coordinator"),
        Role::Overlord => ("druid/overlord", "overlord"),
    };
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, "0"));
    json!({
        "druidNode": {
            "service": service,
            "host": host,
            "bindOnHost": false,
            "plaintextPort": port.parse::<u16>().unwrap_or(0),
            "port": -1,
            "tlsPort": -1,
            "enablePlaintextPort": true,
            "enableTlsPort": false,
        },
        "nodeType": node_type,
        "services": {},
        "startTime": crate::store::now_iso(),
    })
}

/// Names the latch's first participant as the role's leader after every change of its children.
/// A participant whose own node was deleted joins again, at the back, as Curator's
/// `checkLeadership` resets when it cannot find its node.
async fn follow(
    client: &zk::Client,
    latch: &str,
    mut mine: String,
    role: Role,
    cfg: &ZkConfig,
    leaders: &Leaders,
) -> Result<()> {
    loop {
        let (children, watcher) = client
            .list_and_watch_children(latch)
            .await
            .with_context(|| format!("listing {latch}"))?;
        if !children.iter().any(|c| c.starts_with(&mine)) {
            mine = join(client, latch, &cfg.me).await?;
            continue;
        }
        leaders.set(role, first_participant(client, latch, children).await?);
        let event = watcher.changed().await;
        if event.session_state != zk::SessionState::SyncConnected {
            return Err(anyhow!("session {:?}", event.session_state));
        }
    }
}

/// The data of the first child in Curator's order; a node that vanished between the listing and
/// the read is skipped, as Curator's `getLeader` retries past it.
async fn first_participant(
    client: &zk::Client,
    latch: &str,
    children: Vec<String>,
) -> Result<Option<String>> {
    for child in curator_order(children) {
        match client.get_data(&format!("{latch}/{child}")).await {
            Ok((data, _)) => return Ok(String::from_utf8(data).ok().filter(|s| !s.is_empty())),
            Err(zk::Error::NoNode) => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {latch}/{child}")),
        }
    }
    Ok(None)
}

/// Curator's `LockInternals.getSortedChildren`: every child, sorted by the text after the last
/// `latch-` (the whole name when there is none), so foreign nodes sort among the participants.
pub fn curator_order(mut children: Vec<String>) -> Vec<String> {
    children.sort_by_cached_key(|c| match c.rfind(LOCK_NAME) {
        Some(i) => c[i + LOCK_NAME.len()..].to_string(),
        None => c.clone(),
    });
    children
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curator_sorts_by_the_sequence_whatever_the_protection_prefix() {
        let order = curator_order(vec![
            "_c_f0-latch-0000000012".into(),
            "_c_a1-latch-0000000003".into(),
            "latch-0000000007".into(),
            "stray".into(),
        ]);
        assert_eq!(
            order,
            [
                "_c_a1-latch-0000000003",
                "latch-0000000007",
                "_c_f0-latch-0000000012",
                "stray"
            ]
        );
    }

    #[test]
    fn discovery_names_the_role_and_its_port() {
        let v = discovery_node(Role::Overlord, "127.0.0.1:8090");
        assert_eq!(v["nodeType"], "overlord");
        assert_eq!(v["druidNode"]["service"], "druid/overlord");
        assert_eq!(v["druidNode"]["plaintextPort"], 8090);
        assert_eq!(v["druidNode"]["host"], "127.0.0.1");
    }
}
