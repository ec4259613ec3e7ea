//! A Druid cluster's leaders over REST, as doctor sees them: each Coordinator/Overlord node's
//! `/status`, `isLeader` and `leader`, whether a non-leader redirects, and each Broker's health.
//! Redirects are never followed: a 307 is what doctor wants to see (and a followed redirect
//! would carry no credentials anyway). The verdicts are in `leaders`.

use std::time::Duration;

use futures::future::join_all;
use serde_json::Value;

use super::check::{Area, Check};
use crate::druid::rest::Credentials;

/// A leader's URL, a status document or `true`: anything longer is not Druid's answer.
const MAX_BODY: usize = 64 << 10;
/// The longest text of an answer kept for the report.
const SHOWN: usize = 120;

/// The two roles that elect a leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Coordinator,
    Overlord,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Coordinator, Role::Overlord];

    /// The checks' id prefix.
    pub fn id(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Overlord => "overlord",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Role::Coordinator => "Coordinator",
            Role::Overlord => "Overlord",
        }
    }

    fn api(self) -> &'static str {
        match self {
            Role::Coordinator => "/druid/coordinator/v1",
            Role::Overlord => "/druid/indexer/v1",
        }
    }

    /// A cheap read that only the leader answers, so that a non-leader must redirect it.
    pub fn probe(self) -> &'static str {
        match self {
            Role::Coordinator => "/druid/coordinator/v1/config",
            Role::Overlord => "/druid/indexer/v1/worker",
        }
    }

    /// The Curator latch under Druid's ZooKeeper base path (`druid.zk.paths.base`).
    pub fn latch(self, base: &str) -> String {
        let base = base.trim_end_matches('/');
        match self {
            Role::Coordinator => format!("{base}/coordinator/_COORDINATOR"),
            Role::Overlord => format!("{base}/overlord/_OVERLORD"),
        }
    }
}

/// One HTTP answer: its status, its `Location`, and its body (capped).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// What a node said about one role.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleView {
    /// `isLeader`: 200 `{"leader": true}` or 404 `{"leader": false}`.
    pub is_leader: Result<bool, String>,
    /// `leader`: the URL it names (a bare string, maybe quoted).
    pub names: Result<String, String>,
    /// The answer to [`Role::probe`], asked of non-leaders once the leader is known.
    pub redirect: Option<Result<Reply, String>>,
}

/// What one Coordinator/Overlord node said.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub url: String,
    /// `/status`'s `version`.
    pub version: Result<String, String>,
    pub coordinator: RoleView,
    pub overlord: RoleView,
}

impl Node {
    pub fn role(&self, role: Role) -> &RoleView {
        match role {
            Role::Coordinator => &self.coordinator,
            Role::Overlord => &self.overlord,
        }
    }

    fn role_mut(&mut self, role: Role) -> &mut RoleView {
        match role {
            Role::Coordinator => &mut self.coordinator,
            Role::Overlord => &mut self.overlord,
        }
    }
}

/// A URL as nodes name each other: no trailing slash.
pub fn base(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

/// Asks for `url` once, without following a redirect; the body is read up to [`MAX_BODY`].
async fn get(
    client: &reqwest::Client,
    url: String,
    auth: Option<&Credentials>,
    timeout: Duration,
) -> Result<Reply, String> {
    let mut req = client.get(url).timeout(timeout);
    if let Some(a) = auth {
        req = a.authorize(req);
    }
    let mut resp = req.send().await.map_err(|e| words(&e))?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| words(&e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("HTTP {status} with a body over {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply {
        status,
        location,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn words(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "refuses connections (down?)".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        crate::error::chain(e)
    }
}

/// An answer that is not what the endpoint gives, in words.
fn unexpected(r: &Reply) -> String {
    let text: String = r.body.trim().chars().take(SHOWN).collect();
    match r.status {
        401 | 403 => format!("HTTP {} (set LIFEBOAT_DRUID_USER/PASSWORD)", r.status),
        s => format!("HTTP {s} {text}"),
    }
}

fn version(r: Result<Reply, String>) -> Result<String, String> {
    let r = r?;
    if r.status != 200 {
        return Err(unexpected(&r));
    }
    let v: Value = serde_json::from_str(&r.body).map_err(|_| unexpected(&r))?;
    v.get("version")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(SHOWN).collect())
        .ok_or_else(|| "/status has no version".to_string())
}

fn is_leader(r: Result<Reply, String>) -> Result<bool, String> {
    let r = r?;
    let said = serde_json::from_str::<Value>(&r.body)
        .ok()
        .and_then(|v| v.get("leader").and_then(Value::as_bool));
    match (r.status, said) {
        (200, Some(true)) => Ok(true),
        (404, Some(false)) => Ok(false),
        _ => Err(unexpected(&r)),
    }
}

/// Druid sends the URL bare under a JSON content type; a quoted one is read too.
fn leader_named(r: Result<Reply, String>) -> Result<String, String> {
    let r = r?;
    if r.status != 200 {
        return Err(unexpected(&r));
    }
    let text = r.body.trim();
    let url = serde_json::from_str::<String>(text).unwrap_or_else(|_| text.to_string());
    if url.is_empty() || url.len() > SHOWN * 4 || url.contains(char::is_whitespace) {
        return Err(format!("not a URL: {}", unexpected(&r)));
    }
    Ok(base(&url))
}

async fn view(
    client: &reqwest::Client,
    url: &str,
    role: Role,
    auth: Option<&Credentials>,
    timeout: Duration,
) -> RoleView {
    let (yes, names) = tokio::join!(
        get(
            client,
            format!("{url}{}/isLeader", role.api()),
            None,
            timeout
        ),
        get(client, format!("{url}{}/leader", role.api()), auth, timeout),
    );
    RoleView {
        is_leader: is_leader(yes),
        names: leader_named(names),
        redirect: None,
    }
}

async fn node(
    client: &reqwest::Client,
    url: &str,
    auth: Option<&Credentials>,
    timeout: Duration,
) -> Node {
    let url = base(url);
    let (status, coordinator, overlord) = tokio::join!(
        get(client, format!("{url}/status"), auth, timeout),
        view(client, &url, Role::Coordinator, auth, timeout),
        view(client, &url, Role::Overlord, auth, timeout),
    );
    Node {
        version: version(status),
        coordinator,
        overlord,
        url,
    }
}

/// The one node that says it leads `role`, if exactly one does.
pub fn sole_leader(nodes: &[Node], role: Role) -> Option<&str> {
    let mut leaders = nodes.iter().filter(|n| n.role(role).is_leader == Ok(true));
    match (leaders.next(), leaders.next()) {
        (Some(n), None) => Some(n.url.as_str()),
        _ => None,
    }
}

/// Asks every node (at once) about itself and both roles; then, where a role has one leader,
/// asks each of its non-leaders for [`Role::probe`], which must come back as a 307.
pub async fn survey(
    client: &reqwest::Client,
    urls: &[String],
    auth: Option<&Credentials>,
    timeout: Duration,
) -> Vec<Node> {
    let mut nodes = join_all(urls.iter().map(|u| node(client, u, auth, timeout))).await;
    for role in Role::ALL {
        if sole_leader(&nodes, role).is_none() {
            continue;
        }
        let asks = nodes.iter().map(|n| async move {
            match n.role(role).is_leader {
                Ok(false) => {
                    let url = format!("{}{}", n.url, role.probe());
                    Some(get(client, url, auth, timeout).await)
                }
                _ => None,
            }
        });
        let answers = join_all(asks).await;
        for (n, a) in nodes.iter_mut().zip(answers) {
            n.role_mut(role).redirect = a;
        }
    }
    nodes
}

/// `broker.health`: every Broker answers `GET /status/health` with `true`.
pub async fn brokers(
    client: &reqwest::Client,
    urls: &[String],
    auth: Option<&Credentials>,
    timeout: Duration,
) -> Check {
    const ID: &str = "broker.health";
    if urls.is_empty() {
        return Check::skip(ID, Area::Brokers, "give --druid-broker URL for each Broker");
    }
    let asks = urls.iter().map(|u| async move {
        let url = base(u);
        let r = get(client, format!("{url}/status/health"), auth, timeout).await;
        let verdict = match r {
            Ok(r) if r.status == 200 && r.body.trim() == "true" => Ok(()),
            Ok(r) => Err(unexpected(&r)),
            Err(e) => Err(e),
        };
        (url, verdict)
    });
    let answers = join_all(asks).await;
    let sick: Vec<String> = answers
        .iter()
        .filter_map(|(u, v)| v.as_ref().err().map(|e| format!("{u}: {e}")))
        .collect();
    let evidence: serde_json::Map<String, Value> = answers
        .iter()
        .map(|(u, v)| {
            let word = v.as_ref().map_or_else(|e| e.clone(), |_| "healthy".into());
            (u.clone(), Value::String(word))
        })
        .collect();
    let c = if sick.is_empty() {
        Check::pass(
            ID,
            Area::Brokers,
            format!("{} Broker(s) answer /status/health true", urls.len()),
        )
    } else {
        Check::fail(
            ID,
            Area::Brokers,
            format!(
                "{} of {} Broker(s) unhealthy: {}",
                sick.len(),
                urls.len(),
                sick.join("; ")
            ),
        )
        .remedy(
            "start or fix those Brokers (their log says why); the load balancer must not \
            send queries to them",
        )
    };
    c.evidence("brokers", Value::Object(evidence))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Result<Reply, String> {
        Ok(Reply {
            status,
            location: None,
            body: body.into(),
        })
    }

    #[test]
    fn answers_are_read_as_druid_sends_them_and_anything_else_is_said_in_words() {
        assert_eq!(
            version(reply(200, r#"{"version":"31.0.0","modules":[]}"#)),
            Ok("31.0.0".into())
        );
        assert!(version(reply(200, "{}")).is_err());
        assert_eq!(is_leader(reply(200, r#"{"leader":true}"#)), Ok(true));
        assert_eq!(is_leader(reply(404, r#"{"leader":false}"#)), Ok(false));
        // a 404 from something that is not Druid says nothing about leadership
        assert!(is_leader(reply(404, "no such page")).is_err());
        let bare = leader_named(reply(200, "http://10.0.0.1:8081/\n"));
        assert_eq!(bare, Ok("http://10.0.0.1:8081".into()));
        assert_eq!(
            leader_named(reply(200, "\"http://a:1\"")),
            Ok("http://a:1".into())
        );
        let denied = leader_named(reply(401, "")).unwrap_err();
        assert!(denied.contains("LIFEBOAT_DRUID_USER"), "{denied}");
        assert!(leader_named(reply(200, "<html> oops </html>")).is_err());
        assert!(leader_named(Err("refuses connections (down?)".into())).is_err());
    }

    #[test]
    fn latches_live_under_the_base_path() {
        assert_eq!(
            Role::Coordinator.latch("/druid/"),
            "/druid/coordinator/_COORDINATOR"
        );
        assert_eq!(Role::Overlord.latch("/prod"), "/prod/overlord/_OVERLORD");
    }
}
