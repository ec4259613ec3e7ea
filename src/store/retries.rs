//! Transient storage failures, made visible and survived. object_store retries what is safe to
//! retry (5xx, 429, timeouts and resets of idempotent requests, bodies cut mid-download, which it
//! resumes where they broke) with jittered backoff, and says so through `tracing`; this module
//! names the request each retry is about and turns it into a note for the operator:
//! `retry 2/10: PUT /bucket/prod/dremio/<id>/data.tar.zst part 3: 503 SlowDown; waiting 1.4s`.
//! Notes carry a method, a path and a status or error kind: never a query string, a header or a
//! body, so never a signature or a key.

use std::cell::RefCell;
use std::sync::Arc;

use http_body_util::BodyExt;
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpResponseBody, HttpService, ReqwestConnector,
};
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata};

use crate::progress::Progress;

/// The `tracing` target of lifeboat's own retry notes.
pub(super) const TARGET: &str = "lifeboat::retry";

/// Error bodies longer than this are not read for their error code.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// The last failure an HTTP request met on this thread. object_store logs its retry right after the
/// failing call returns (or the failing body chunk arrives), without yielding in between, so the
/// failure recorded here is the one its retry event is about; the event's own category is checked
/// against it all the same.
#[derive(Debug, Clone)]
struct Failure {
    what: String,
    why: String,
    class: Class,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Status(u16),
    Transport,
    Body,
}

thread_local! {
    static LAST: RefCell<Option<Failure>> = const { RefCell::new(None) };
}

fn remember(what: &str, why: String, class: Class) {
    LAST.with(|l| {
        *l.borrow_mut() = Some(Failure {
            what: what.to_string(),
            why,
            class,
        })
    });
}

fn forget() {
    LAST.with(|l| l.borrow_mut().take());
}

/// The recorded failure, if it is of the `expected` class (else it is about another request).
fn take(expected: Class) -> Option<Failure> {
    LAST.with(|l| l.borrow_mut().take())
        .filter(|f| f.class == expected)
}

/// Builds object_store's usual reqwest client, wrapped so that failures are recorded.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Connector;

impl HttpConnector for Connector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Observed { inner }))
    }
}

#[derive(Debug)]
struct Observed {
    inner: HttpClient,
}

#[async_trait::async_trait]
impl HttpService for Observed {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        forget();
        let what = describe(&req);
        match self.inner.execute(req).await {
            Err(e) => {
                remember(&what, transport_reason(&e), Class::Transport);
                Err(e)
            }
            Ok(resp) if is_retried_status(resp.status().as_u16()) => {
                let status = resp.status().as_u16();
                let (resp, why) = read_error_answer(resp).await;
                remember(&what, why, Class::Status(status));
                Ok(resp)
            }
            Ok(resp) => {
                let (parts, body) = resp.into_parts();
                let body = body.map_err(move |e| {
                    remember(
                        &what,
                        format!("answer cut off mid-body ({})", innermost(&e)),
                        Class::Body,
                    );
                    e
                });
                Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
            }
        }
    }
}

/// The statuses object_store retries.
fn is_retried_status(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

/// Reads a small error answer to name its code (SlowDown, ServerBusy, ...) and hands it on with the
/// same bytes.
async fn read_error_answer(resp: HttpResponse) -> (HttpResponse, String) {
    let (parts, body) = resp.into_parts();
    let bytes = http_body_util::Limited::new(body, ERROR_BODY_LIMIT)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let code = parts
        .headers
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .and_then(plain_code)
        .or_else(|| error_code(&String::from_utf8_lossy(&bytes)));
    let why = match code {
        Some(code) => format!("{} {code}", parts.status.as_u16()),
        None => parts.status.to_string(),
    };
    (HttpResponse::from_parts(parts, bytes.into()), why)
}

/// The `<Code>` of an S3 or Azure XML error body.
fn error_code(body: &str) -> Option<String> {
    let start = body.find("<Code>")? + "<Code>".len();
    let end = body[start..].find("</Code>")? + start;
    plain_code(body[start..end].trim())
}

/// An error code is a short word; anything else is not repeated to the operator.
fn plain_code(code: &str) -> Option<String> {
    (!code.is_empty() && code.len() <= 64 && code.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| code.to_string())
}

pub(super) fn transport_reason(e: &HttpError) -> String {
    let what = match e.kind() {
        HttpErrorKind::Connect => "cannot connect",
        HttpErrorKind::Timeout => "no answer in time",
        HttpErrorKind::Interrupted => "connection broken",
        HttpErrorKind::Request => "connection closed before the answer",
        _ => "transport error",
    };
    format!("{what} ({})", innermost(e))
}

/// The most specific cause: "Connection reset by peer (os error 104)" rather than the layers above.
/// reqwest's errors are stripped of their URL by object_store before they get here.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// "PUT /bucket/prefix/key part 3", "GET /bucket/key bytes=0-8388607": the method, the path and what
/// the query says about the request, never the query itself (it can hold a SAS signature).
fn describe(req: &HttpRequest) -> String {
    let query = req.uri().query().unwrap_or("");
    let params: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let param = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let method = req.method().as_str();
    let mut text = format!("{method} {}", req.uri().path());
    let detail = if let Some(n) = param("partNumber") {
        format!(" part {}", digits(n))
    } else if param("uploads").is_some() {
        " (start multipart upload)".into()
    } else if param("uploadId").is_some() && method == "POST" {
        " (complete multipart upload)".into()
    } else if param("uploadId").is_some() && method == "DELETE" {
        " (abort multipart upload)".into()
    } else if param("comp") == Some("block") {
        " (block)".into()
    } else if param("comp") == Some("blocklist") {
        " (commit blocks)".into()
    } else if param("comp") == Some("list") || param("list-type").is_some() {
        " (list)".into()
    } else {
        String::new()
    };
    text.push_str(&detail);
    let headers = req.headers();
    if headers.contains_key("x-amz-copy-source") || headers.contains_key("x-ms-copy-source") {
        text.push_str(" (server-side copy)");
    }
    if let Some(range) = headers
        .get("range")
        .or_else(|| headers.get("x-ms-range"))
        .and_then(|v| v.to_str().ok())
    {
        text.push(' ');
        text.push_str(&digits_and(range, "bytes=-,"));
    }
    text
}

fn digits(text: &str) -> String {
    digits_and(text, "")
}

/// Only digits and the given characters survive: what is shown is never more than a number.
fn digits_and(text: &str, allowed: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_digit() || allowed.contains(*c))
        .collect()
}

/// What object_store's retry event says, read from its message (its fields are not structured).
#[derive(Debug)]
struct RetryEvent {
    attempt: Option<(u64, u64)>,
    wait: Option<f64>,
    status: Option<u16>,
    body: bool,
    transport: bool,
    error_in_ok_answer: bool,
}

fn parse_event(msg: &str) -> RetryEvent {
    let number_after = |marker: &str| -> Option<&str> {
        let at = msg.find(marker)? + marker.len();
        let rest = &msg[at..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        Some(&rest[..end])
    };
    let attempt = number_after("retry ").and_then(|n| {
        let of = number_after(&format!("retry {n} of "))?;
        Some((n.parse().ok()?, of.parse().ok()?))
    });
    RetryEvent {
        attempt,
        wait: number_after("backing off for ")
            .or_else(|| number_after("Retrying in "))
            .and_then(|w| w.parse().ok()),
        status: number_after("with status ").and_then(|s| s.parse().ok()),
        body: msg.contains("reading response body"),
        transport: msg.contains("transport error"),
        error_in_ok_answer: msg.contains("but body contains Error"),
    }
}

/// The note for an object_store retry event, naming the request when the recorded failure fits.
fn note_for(msg: &str) -> Option<String> {
    let ev = parse_event(msg);
    let wait = ev.wait?;
    let failure = if ev.body {
        take(Class::Body)
    } else if ev.transport {
        take(Class::Transport)
    } else if let Some(status) = ev.status {
        take(Class::Status(status))
    } else {
        None
    };
    let subject = match (&failure, &ev) {
        (Some(f), _) => format!("{}: {}", f.what, f.why),
        (None, ev) if ev.error_in_ok_answer => "an answer that reports an error".into(),
        (None, ev) if ev.body => "an answer cut off mid-body".into(),
        (None, ev) if ev.transport => "a transport error".into(),
        (
            None,
            RetryEvent {
                status: Some(s), ..
            },
        ) => format!("HTTP {s}"),
        (None, _) => "a failed request".into(),
    };
    Some(match ev.attempt {
        Some((n, of)) => format!("retry {n}/{of}: {subject}; waiting {wait:.1}s"),
        // A body retry resumes the same GET where it broke; object_store does not number those.
        None => format!("retry: {subject}; resuming in {wait:.1}s"),
    })
}

/// Sends retry notes to the operator through `progress` (stderr, above the bars, or JSON lines).
/// Installed once by the binary; libraries and tests without it stay silent.
pub fn install(progress: Arc<dyn Progress>) {
    let _ = tracing::subscriber::set_global_default(Notes { progress });
}

struct Notes {
    progress: Arc<dyn Progress>,
}

fn wanted(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    meta.is_event()
        && *meta.level() <= Level::INFO
        && (target == TARGET
            || target.starts_with("object_store::client::retry")
            || target.starts_with("object_store::client::get"))
}

impl tracing::Subscriber for Notes {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if wanted(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        wanted(meta)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::INFO)
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        // Spans are never enabled (see `wanted`); every id is the same placeholder.
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let line = if event.metadata().target() == TARGET {
            Some(message.0)
        } else {
            note_for(&message.0)
        };
        if let Some(line) = line {
            self.progress.note(&line);
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(object_store::client::HttpRequestBody::empty())
            .unwrap()
    }

    #[test]
    fn requests_are_named_without_their_query() {
        let cases = [
            (
                request(
                    "PUT",
                    "http://h/b/p/data.tar.zst?partNumber=3&uploadId=xyz",
                    &[],
                ),
                "PUT /b/p/data.tar.zst part 3",
            ),
            (
                request("POST", "http://h/b/k?uploads", &[]),
                "POST /b/k (start multipart upload)",
            ),
            (
                request("GET", "http://h/b/k", &[("range", "bytes=0-8388607")]),
                "GET /b/k bytes=0-8388607",
            ),
            (
                request(
                    "PUT",
                    "http://h/acct/c/k?comp=block&blockid=AAAA&sv=2021&sig=SECRET",
                    &[],
                ),
                "PUT /acct/c/k (block)",
            ),
            (
                request("PUT", "http://h/b/k", &[("x-amz-copy-source", "/b/o")]),
                "PUT /b/k (server-side copy)",
            ),
        ];
        for (req, expected) in cases {
            let text = describe(&req);
            assert_eq!(text, expected);
            assert!(!text.contains("SECRET") && !text.contains("xyz"));
        }
    }

    #[test]
    fn retry_events_become_notes_about_their_request() {
        remember("PUT /b/k part 3", "503 SlowDown".into(), Class::Status(503));
        let note = note_for(
            "Encountered server error with status 503 Service Unavailable, backing off for 1.37 seconds, retry 2 of 10",
        );
        assert_eq!(
            note.as_deref(),
            Some("retry 2/10: PUT /b/k part 3: 503 SlowDown; waiting 1.4s")
        );
        // A recorded failure of another kind is not pinned on an event it does not fit.
        remember("GET /b/k", "cut".into(), Class::Body);
        let note = note_for(
            "Encountered transport error of kind Interrupted, backing off for 0.1 seconds, retry 1 of 2: boom",
        );
        assert_eq!(
            note.as_deref(),
            Some("retry 1/2: a transport error; waiting 0.1s")
        );
        remember(
            "GET /b/k bytes=0-99",
            "answer cut off mid-body (reset)".into(),
            Class::Body,
        );
        let note = note_for(
            "Encountered error while reading response body: HTTP error: boom. Retrying in 0.25s",
        );
        assert_eq!(
            note.as_deref(),
            Some("retry: GET /b/k bytes=0-99: answer cut off mid-body (reset); resuming in 0.2s")
        );
        assert_eq!(note_for("fetching token from metadata server"), None);
    }

    #[test]
    fn error_codes_come_from_xml_bodies_only_when_plain() {
        assert_eq!(
            error_code("<Error><Code>SlowDown</Code><Message>x</Message></Error>").as_deref(),
            Some("SlowDown")
        );
        assert_eq!(error_code("<Code>a b</Code>"), None);
        assert_eq!(error_code("no xml"), None);
    }
}
