//! Whether coordinators serve: waiting (bounded) for a started one, and asking a primary's
//! every node whether any still answers before a failover.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::DrError;

/// The health endpoint of a cluster kind: Dremio's `/apiv2/server_status` (200 "OK" on the
/// active master), Druid's `/status/health` (200 `true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Dremio,
    Druid,
}

impl Probe {
    pub fn path(self) -> &'static str {
        match self {
            Probe::Dremio => "/apiv2/server_status",
            Probe::Druid => "/status/health",
        }
    }
}

/// One node's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Serving.
    Serving,
    /// Anything else: "not listening", "HTTP 503 ...", "timed out".
    Not(String),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Serving => f.write_str("serving"),
            Answer::Not(why) => f.write_str(why),
        }
    }
}

/// The first polls' pause, and the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);
/// One probe never takes longer than this, whatever the overall wait.
const LONGEST_PROBE: Duration = Duration::from_secs(5);

fn endpoint(url: &str, probe: Probe) -> String {
    format!("{}{}", url.trim_end_matches('/'), probe.path())
}

/// Why a request failed, in a few words (no URL: the caller names it).
fn why_not(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {}", humantime::format_duration(timeout));
    }
    if e.is_connect() {
        // Refused, unreachable or a failed TLS handshake: the source says which.
        let mut cause = std::error::Error::source(e);
        let mut last = None;
        while let Some(c) = cause {
            last = Some(c.to_string());
            cause = c.source();
        }
        return match last {
            Some(c) if c.contains("refused") => "not listening (connection refused)".into(),
            Some(c) => format!("not listening ({c})"),
            None => "not listening".into(),
        };
    }
    let text = e.to_string();
    let text: String = text.chars().take(200).collect();
    format!("failed: {text}")
}

async fn ask_one(client: &reqwest::Client, probe: Probe, url: &str, timeout: Duration) -> Answer {
    let answer = client
        .get(endpoint(url, probe))
        .timeout(timeout)
        .send()
        .await;
    match answer {
        Ok(response) if response.status() == reqwest::StatusCode::OK => Answer::Serving,
        Ok(response) => {
            let status = response.status();
            Answer::Not(format!(
                "HTTP {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ))
        }
        Err(e) => Answer::Not(why_not(&e.without_url(), timeout)),
    }
}

/// Asks every URL once (concurrently, each within `timeout`).
pub async fn ask(
    client: &reqwest::Client,
    probe: Probe,
    urls: &[String],
    timeout: Duration,
) -> Vec<(String, Answer)> {
    let answers =
        futures::future::join_all(urls.iter().map(|url| ask_one(client, probe, url, timeout)))
            .await;
    urls.iter().cloned().zip(answers).collect()
}

/// "http://a:9047 said HTTP 503 Service Unavailable, http://b:9047 not listening".
fn said(answers: &[(String, Answer)]) -> String {
    if answers.is_empty() {
        return "no node was asked".into();
    }
    answers
        .iter()
        .map(|(url, answer)| format!("{url}: {answer}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Polls the URLs (every 200 ms at first, backing off to 2 s) until one serves, and returns it.
/// `ended` is asked between polls: `Some(why)` (the started process is gone) ends the wait at
/// once. Waiting longer than `timeout` or a cancel is an error saying what the nodes last said.
pub async fn wait(
    client: &reqwest::Client,
    probe: Probe,
    urls: &[String],
    timeout: Duration,
    cancel: &CancellationToken,
    ended: &mut (dyn FnMut() -> Option<String> + Send),
) -> Result<String, DrError> {
    let what = match urls {
        [one] => format!("the coordinator at {one}"),
        _ => format!("the coordinators at {}", urls.join(", ")),
    };
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let mut pause = FIRST_PAUSE;
    let mut last: Vec<(String, Answer)> = Vec::new();
    loop {
        if cancel.is_cancelled() {
            return Err(DrError::Interrupted);
        }
        if let Some(why) = ended() {
            return Err(DrError::NotServing {
                what,
                why: format!(
                    "its process {why} before it served (last answers: {})",
                    said(&last)
                ),
            });
        }
        let now = tokio::time::Instant::now();
        let left = deadline.saturating_duration_since(now);
        let probe_timeout = left.clamp(Duration::from_millis(100), LONGEST_PROBE);
        last = tokio::select! {
            answers = ask(client, probe, urls, probe_timeout) => answers,
            () = cancel.cancelled() => return Err(DrError::Interrupted),
        };
        if let Some((url, _)) = last.iter().find(|(_, a)| *a == Answer::Serving) {
            return Ok(url.clone());
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(DrError::NotServing {
                what,
                why: format!(
                    "{} did not answer HTTP 200 within {}; last: {}",
                    probe.path(),
                    humantime::format_duration(timeout),
                    said(&last)
                ),
            });
        }
        tokio::select! {
            () = tokio::time::sleep(pause.min(deadline - now)) => {}
            () = cancel.cancelled() => return Err(DrError::Interrupted),
        }
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A port nothing listens on (for now).
    fn closed_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Answers every request on `listener` with `status` (a tiny HTTP/1.1 server).
    fn serve(listener: TcpListener, status: &'static str) {
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"
                );
            }
        });
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().build().unwrap()
    }

    #[tokio::test]
    async fn wait_returns_the_node_once_it_serves_after_refusing() {
        let port = closed_port();
        let url = format!("http://127.0.0.1:{port}/");
        let mut rounds = 0;
        // The node comes up between the first poll (refused) and the second.
        let mut ended = move || {
            rounds += 1;
            if rounds == 2 {
                serve(TcpListener::bind(("127.0.0.1", port)).unwrap(), "200 OK");
            }
            None
        };
        let urls = vec![url.clone()];
        let cancel = CancellationToken::new();
        let first = ask(&client(), Probe::Dremio, &urls, Duration::from_secs(5)).await;
        assert!(
            matches!(&first[0].1, Answer::Not(why) if why.starts_with("not listening")),
            "{first:?}"
        );
        let served = wait(
            &client(),
            Probe::Dremio,
            &urls,
            Duration::from_secs(120),
            &cancel,
            &mut ended,
        )
        .await
        .unwrap();
        assert_eq!(served, url);
    }

    #[tokio::test]
    async fn answers_other_than_200_are_not_serving_and_a_timeout_says_what_was_heard() {
        let unhealthy = TcpListener::bind("127.0.0.1:0").unwrap();
        let sick = format!("http://{}", unhealthy.local_addr().unwrap());
        serve(unhealthy, "503 Service Unavailable");
        let down = format!("http://127.0.0.1:{}", closed_port());
        let urls = vec![sick.clone(), down.clone()];
        let answers = ask(&client(), Probe::Druid, &urls, Duration::from_secs(5)).await;
        assert_eq!(
            answers[0],
            (
                sick.clone(),
                Answer::Not("HTTP 503 Service Unavailable".into())
            )
        );
        assert!(matches!(&answers[1].1, Answer::Not(w) if w.starts_with("not listening")));

        let cancel = CancellationToken::new();
        let e = wait(
            &client(),
            Probe::Druid,
            &urls,
            Duration::from_millis(300),
            &cancel,
            &mut || None,
        )
        .await
        .unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, DrError::NotServing { .. }), "{e:?}");
        assert!(
            text.contains("/status/health did not answer HTTP 200 within 300ms"),
            "{text}"
        );
        assert!(text.contains(&format!("{sick}: HTTP 503")), "{text}");
        assert!(text.contains(&format!("{down}: not listening")), "{text}");
    }

    #[tokio::test]
    async fn a_process_that_ended_or_a_cancel_ends_the_wait() {
        let urls = vec![format!("http://127.0.0.1:{}", closed_port())];
        let cancel = CancellationToken::new();
        let e = wait(
            &client(),
            Probe::Dremio,
            &urls,
            Duration::from_secs(600),
            &cancel,
            &mut || Some("exited with status 1".into()),
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("its process exited with status 1 before it served"),
            "{e}"
        );
        cancel.cancel();
        let e = wait(
            &client(),
            Probe::Dremio,
            &urls,
            Duration::from_secs(600),
            &cancel,
            &mut || None,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, DrError::Interrupted), "{e:?}");
    }
}
