//! The connection loop: each client connection carries requests one after the other; each request
//! is relayed over a fresh connection to the server, or answered by the fault its rule picked.

use std::io;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::http::{Copied, Framing, Head, Peer, Sink, copy_body};
use crate::kind::{self, Flavour};
use crate::{Action, Fault, Shared};

pub(crate) async fn accept(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(connection(shared.clone(), stream));
                }
            }
        }
    }
}

/// What is left of the client connection after a request.
enum After {
    KeepAlive(Peer),
    Closed,
}

async fn connection(shared: Arc<Shared>, stream: TcpStream) {
    let mut client = Peer::new(stream);
    loop {
        let raw = match client.read_head().await {
            Ok(Some(raw)) => raw,
            _ => return,
        };
        let Ok(req) = Head::request(raw) else {
            return;
        };
        let (kind, flavour) = (kind::classify(&req), kind::flavour(&req));
        let action = shared.decide(&req.method, &req.target, kind, flavour);
        match handle(&shared, client, &req, flavour, action).await {
            Ok(After::KeepAlive(c)) => client = c,
            _ => return,
        }
    }
}

async fn handle(
    shared: &Shared,
    mut client: Peer,
    req: &Head,
    flavour: Flavour,
    action: Action,
) -> io::Result<After> {
    let framing = req.request_framing()?;
    match action {
        Action::Relay => relay(shared, client, req, None).await,
        Action::Hold(hold) => {
            hold.wait().await;
            relay(shared, client, req, None).await
        }
        Action::Fault(fault) => match fault {
            Fault::SlowDown | Fault::InternalError => {
                copy_body(&mut client, framing, &mut Sink::discard(None)).await?;
                let answer = error_answer(&fault, flavour, req.method == "HEAD");
                client.stream.write_all(&answer).await?;
                Ok(if req.closes() {
                    After::Closed
                } else {
                    After::KeepAlive(client)
                })
            }
            Fault::ResetUpload { after } => {
                let cut = cut_point(after, framing);
                copy_body(&mut client, framing, &mut Sink::discard(Some(cut))).await?;
                client.reset();
                Ok(After::Closed)
            }
            Fault::Stall(how_long) => {
                copy_body(&mut client, framing, &mut Sink::discard(None)).await?;
                tokio::select! {
                    _ = tokio::time::sleep(how_long) => {}
                    _ = client.closed() => {}
                }
                Ok(After::Closed)
            }
            Fault::ResetDownload { .. } | Fault::Truncate { .. } | Fault::LoseAnswer => {
                relay(shared, client, req, Some(fault)).await
            }
        },
    }
}

/// Where a body of `framing` is cut to honour "after n bytes": never at its very end, so that the
/// cut is always felt.
fn cut_point(after: u64, framing: Framing) -> u64 {
    match framing {
        Framing::Length(n) => after.min(n.saturating_sub(1)),
        _ => after,
    }
}

/// Relays the request to the server and its answer back; `cut` (a download fault) ends the answer
/// early.
async fn relay(
    shared: &Shared,
    mut client: Peer,
    req: &Head,
    cut: Option<Fault>,
) -> io::Result<After> {
    let mut server = match TcpStream::connect(shared.upstream()).await {
        Ok(s) => Peer::new(s),
        Err(e) => {
            let text = format!("faultproxy: cannot reach the server: {e}");
            let answer = format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            client.stream.write_all(answer.as_bytes()).await?;
            return Ok(After::Closed);
        }
    };
    server.stream.write_all(&req.raw).await?;
    copy_body(
        &mut client,
        req.request_framing()?,
        &mut Sink::to(&mut server.stream, None),
    )
    .await?;
    if cut == Some(Fault::LoseAnswer) {
        read_answer(&mut server, &req.method).await?;
        client.reset();
        return Ok(After::Closed);
    }
    let answer = loop {
        let raw = server
            .read_head()
            .await?
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        let head = Head::response(raw)?;
        client.stream.write_all(&head.raw).await?;
        // 100 Continue and friends precede the real answer.
        if !(100..200).contains(&head.status) || head.status == 101 {
            break head;
        }
    };
    let framing = answer.response_framing(&req.method)?;
    let after = match &cut {
        Some(Fault::ResetDownload { after } | Fault::Truncate { after }) => {
            Some(cut_point(*after, framing))
        }
        _ => None,
    };
    let copied = copy_body(
        &mut server,
        framing,
        &mut Sink::to(&mut client.stream, after),
    )
    .await?;
    match cut {
        Some(Fault::ResetDownload { .. }) => {
            client.reset();
            Ok(After::Closed)
        }
        Some(_) => {
            client.close().await;
            Ok(After::Closed)
        }
        None if copied == Copied::Cut
            || framing == Framing::UntilClose
            || req.closes()
            || answer.closes() =>
        {
            client.close().await;
            Ok(After::Closed)
        }
        None => Ok(After::KeepAlive(client)),
    }
}

/// Reads the server's whole answer (interim ones included) and drops it.
async fn read_answer(server: &mut Peer, method: &str) -> io::Result<()> {
    loop {
        let raw = server
            .read_head()
            .await?
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        let head = Head::response(raw)?;
        if (100..200).contains(&head.status) && head.status != 101 {
            continue;
        }
        let framing = head.response_framing(method)?;
        copy_body(server, framing, &mut Sink::discard(None)).await?;
        return Ok(());
    }
}

/// The answer a throttled or failing store gives, in its own dialect.
fn error_answer(fault: &Fault, flavour: Flavour, head_only: bool) -> Vec<u8> {
    let (status, code, message) = match (fault, flavour) {
        (Fault::SlowDown, Flavour::S3) => (
            "503 Slow Down",
            "SlowDown",
            "Please reduce your request rate.",
        ),
        (Fault::SlowDown, Flavour::Azure) => (
            "503 Service Unavailable",
            "ServerBusy",
            "The server is currently unable to receive requests. Please retry your request.",
        ),
        (_, Flavour::S3) => (
            "500 Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        (_, Flavour::Azure) => (
            "500 Internal Server Error",
            "InternalError",
            "The server encountered an internal error. Please retry the request.",
        ),
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>faultproxy</RequestId></Error>"
    );
    let azure = if flavour == Flavour::Azure {
        format!("x-ms-error-code: {code}\r\n")
    } else {
        String::new()
    };
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n{azure}\r\n",
        body.len()
    );
    if !head_only {
        answer.push_str(&body);
    }
    answer.into_bytes()
}
