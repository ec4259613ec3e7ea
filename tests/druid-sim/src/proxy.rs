//! The Router's management proxy, as one process of the simulator serves it:
//! `/proxy/coordinator/*` and `/proxy/overlord/*` reach that role's leader without a redirect, so a
//! client holding credentials never has to follow one. The leader's answer comes back as it is,
//! a 307 included (the overlord's leader answering for a coordinator path it does not lead).

use std::time::Duration;

use crate::leader::Role;
use crate::server::{MAX_BODY, Reply, Request};

/// The headers a forwarded request keeps: who, what type, and the audit fields.
const FORWARDED: [&str; 4] = [
    "authorization",
    "content-type",
    "x-druid-author",
    "x-druid-comment",
];

/// A forward that takes longer than this is the leader's failure, a 504.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The role a proxy path names and the request for its leader (the path after the prefix).
pub fn split(req: &Request) -> Option<(Role, Request)> {
    let (role, rest) = if let Some(r) = req.uri.strip_prefix("/proxy/coordinator") {
        (Role::Coordinator, r)
    } else if let Some(r) = req.uri.strip_prefix("/proxy/overlord") {
        (Role::Overlord, r)
    } else {
        return None;
    };
    if !rest.starts_with('/') {
        return None;
    }
    let mut inner = req.clone();
    inner.uri = rest.to_string();
    Some((role, inner))
}

/// Sends `req` to the node at `leader` (a URL) and hands back its answer.
pub fn forward(leader: &str, req: &Request) -> Reply {
    match send(leader, req) {
        Ok(r) => r,
        Err(ureq::Error::Timeout(_)) => Reply::error(504, format!("the leader {leader} timed out")),
        Err(e) => Reply::error(502, format!("the leader {leader} is unreachable: {e}")),
    }
}

fn send(leader: &str, req: &Request) -> Result<Reply, ureq::Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into();
    let url = format!("{}{}", leader.trim_end_matches('/'), req.uri);
    let mut builder = ureq::http::Request::builder()
        .method(req.method.as_str())
        .uri(url);
    for name in FORWARDED {
        if let Some(v) = req.headers.get(name) {
            builder = builder.header(name, v);
        }
    }
    let mut resp = if req.body.is_empty() {
        agent.run(builder.body(())?)?
    } else {
        agent.run(builder.body(req.body.to_vec())?)?
    };
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(String::from);
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY as u64)
        .read_to_string()?;
    Ok(Reply {
        status: resp.status().as_u16(),
        body,
        location,
    })
}
