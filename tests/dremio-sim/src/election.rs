//! The master election as Dremio runs it in ZooKeeper: a Curator LeaderLatch participant under
//! `/dremio/leader-latch/master` (an ephemeral sequential `_c_<uuid>-latch-<seq>` node whose data
//! is the participant id; the lowest sequence leads), then, once elected, Curator
//! ServiceDiscovery registrations `/dremio/{master,coordinator}/<uuid>` holding the protobuf
//! `DremioServiceInstance`. Every node is ephemeral: when this process dies, its session
//! expires after the session timeout and the next participant takes over.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use prost::Message;
use zookeeper_client as zk;

use crate::util::uuid;

/// Dremio's cluster root with the default cluster id (`zk.root` empty).
const ROOT: &str = "/dremio";

/// Where and how to join.
#[derive(Debug, Clone)]
pub struct ZkConfig {
    /// `host:port,...[/chroot]`, as in dremio.conf's `zookeeper`.
    pub connect: String,
    pub session_timeout: Duration,
}

/// `DremioServiceInstance` (Coordination.proto), the fields Dremio fills for a coordinator.
#[derive(Clone, PartialEq, Message)]
pub struct DremioServiceInstance {
    #[prost(string, optional, tag = "1")]
    pub id: Option<String>,
    #[prost(int64, optional, tag = "2")]
    pub registration_time_utc: Option<i64>,
    #[prost(message, optional, tag = "3")]
    pub endpoint: Option<NodeEndpoint>,
    #[prost(string, optional, tag = "4")]
    pub name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeEndpoint {
    #[prost(string, optional, tag = "1")]
    pub address: Option<String>,
    #[prost(int32, optional, tag = "2")]
    pub user_port: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    pub fabric_port: Option<i32>,
    #[prost(int64, optional, tag = "101")]
    pub start_time: Option<i64>,
    #[prost(int32, optional, tag = "106")]
    pub conduit_port: Option<i32>,
    #[prost(string, optional, tag = "203")]
    pub dremio_version: Option<String>,
}

/// A participant that leads: its session must live as long as the process.
pub struct Leader {
    client: zk::Client,
}

fn open_acl() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Joins the latch and returns once this participant leads. `on_standby` runs once if another
/// participant leads first.
pub async fn lead(cfg: &ZkConfig, on_standby: impl FnOnce()) -> Result<Leader> {
    let client = zk::Client::connector()
        .with_session_timeout(cfg.session_timeout)
        .connect(&cfg.connect)
        .await
        .with_context(|| format!("connecting to ZooKeeper {}", cfg.connect))?;
    let latch = format!("{ROOT}/leader-latch/master");
    client
        .mkdir(&latch, &open_acl())
        .await
        .context("creating the latch folder")?;
    // Curator's protection prefix lets a participant find its own node after a lost reply.
    let prefix = format!("_c_{}-latch-", uuid());
    let participant_id = uuid();
    let ephemeral = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    client
        .create(
            &format!("{latch}/{prefix}"),
            participant_id.as_bytes(),
            &ephemeral,
        )
        .await
        .context("joining the leader latch")?;
    let mut on_standby = Some(on_standby);
    loop {
        let mut children = client
            .list_children(&latch)
            .await
            .context("listing the latch")?;
        children.retain(|c| c.contains("latch-"));
        children.sort_by_key(|c| c.rsplit_once("latch-").map(|(_, s)| s.to_string()));
        let Some(me) = children.iter().position(|c| c.starts_with(&prefix)) else {
            bail!("our latch node vanished: the ZooKeeper session expired");
        };
        if me == 0 {
            return Ok(Leader { client });
        }
        if let Some(f) = on_standby.take() {
            f();
        }
        // Like Curator: watch only the node just ahead, so that one departure wakes one waiter.
        let ahead = format!("{latch}/{}", children[me - 1]);
        let (stat, watcher) = client.check_and_watch_stat(&ahead).await?;
        if stat.is_some() {
            watcher.changed().await;
        }
    }
}

impl Leader {
    /// Registers this coordinator as master and coordinator (the REST port as Dremio's web
    /// server, the rest as a single-node Dremio's defaults).
    pub async fn register(&self, port: u16, version: &str) -> Result<()> {
        let id = uuid();
        let endpoint = NodeEndpoint {
            address: Some("127.0.0.1".into()),
            user_port: Some(port.into()),
            fabric_port: Some(45678),
            start_time: Some(now_ms()),
            conduit_port: Some(0),
            dremio_version: Some(version.into()),
        };
        for name in ["master", "coordinator"] {
            let instance = DremioServiceInstance {
                id: Some(id.clone()),
                registration_time_utc: Some(now_ms()),
                endpoint: Some(endpoint.clone()),
                name: Some(name.into()),
            };
            let dir = format!("{ROOT}/{name}");
            self.client.mkdir(&dir, &open_acl()).await?;
            let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
            self.client
                .create(
                    &format!("{dir}/{id}"),
                    &instance.encode_to_vec(),
                    &ephemeral,
                )
                .await
                .with_context(|| format!("registering under {dir}"))?;
        }
        Ok(())
    }

    /// Resolves when the session is over: a master without its session is no longer master.
    pub async fn session_lost(&self) -> zk::SessionState {
        let mut w = self.client.state_watcher();
        loop {
            let s = w.changed().await;
            if s.is_terminated() {
                return s;
            }
        }
    }
}
