//! HTTP/1.1 serving (hyper on tokio): requests in, [`Reply`]s out, one state behind a lock.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::api::Node;

/// Druid's artefacts are small; a larger body is a 400.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// One request as the handlers see it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, exactly as sent (a redirect repeats it).
    pub uri: String,
    pub headers: HeaderMap,
    pub peer: SocketAddr,
    pub body: Bytes,
}

impl Request {
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }

    /// A query parameter's value (`Some("")` for a bare `?full`).
    pub fn query(&self, name: &str) -> Option<&str> {
        let q = self.uri.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub location: Option<String>,
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            body: v.to_string(),
            location: None,
        }
    }

    /// Druid's error body: `{"error": ...}`.
    pub fn error(status: u16, msg: impl std::fmt::Display) -> Reply {
        Reply::json(status, &json!({"error": msg.to_string()}))
    }

    /// A value sent raw under a JSON content type, as Druid sends the leader's URL.
    pub fn raw(status: u16, body: String) -> Reply {
        Reply {
            status,
            body,
            location: None,
        }
    }

    pub fn redirect(location: String) -> Reply {
        Reply {
            status: 307,
            body: String::new(),
            location: Some(location),
        }
    }
}

/// Serves `node` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, node: Node) -> Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let latency = node.settings.latency;
    let node = Arc::new(Mutex::new(node));
    loop {
        let (stream, peer) = listener.accept().await.context("accepting a connection")?;
        let node = node.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| answer(req, peer, node.clone(), latency));
            // errors here are the client's (reset, malformed request: hyper answered 400)
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn answer(
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
    node: Arc<Mutex<Node>>,
    latency: Duration,
) -> std::result::Result<hyper::Response<Full<Bytes>>, BoxError> {
    // the simulated round trip, outside the node's lock so that concurrent calls overlap
    tokio::time::sleep(latency).await;
    let (head, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(response(Reply::error(400, "request body too large"))),
    };
    let req = Request {
        method: head.method.as_str().to_string(),
        uri: head
            .uri
            .path_and_query()
            .map_or_else(|| head.uri.path().to_string(), |p| p.as_str().to_string()),
        headers: head.headers,
        peer,
        body,
    };
    // A handler may block on a database round trip, and requests queue on the node's lock: both
    // happen on the blocking pool, so the runtime's workers stay free to drive the I/O.
    let reply = tokio::task::spawn_blocking(move || {
        node.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .handle(&req)
    })
    .await
    .unwrap_or_else(|_| Reply::error(500, "the handler panicked"));
    Ok(response(reply))
}

fn response(reply: Reply) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *r.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(loc) = reply.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert(header::LOCATION, loc);
    }
    r
}
