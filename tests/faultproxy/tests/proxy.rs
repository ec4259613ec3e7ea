//! The proxy against a tiny upstream that records the raw bytes it receives and answers every
//! request with a fixed body: what is relayed is byte for byte what was sent, and each fault does
//! what it says.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use faultproxy::{Fault, Kind, Match, Proxy};

const BODY: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Answers each request (one per connection, read up to its declared length) with [`BODY`] and
/// sends the raw request bytes on the channel.
fn upstream() -> (String, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let raw = read_request(&mut stream);
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"e\"\r\n\r\n",
                BODY.len()
            );
            let _ = stream.write_all(answer.as_bytes());
            let _ = stream.write_all(BODY);
            if tx.send(raw).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

fn read_request(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if raw.len() >= end + 4 + length {
                return raw;
            }
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return raw,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends one request on a fresh connection and reads until the proxy closes it.
fn send(proxy: &Proxy, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(proxy.addr())?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(request)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map(|_| answer)
}

fn put(target: &str, body: &str) -> Vec<u8> {
    format!(
        "PUT {target} HTTP/1.1\r\nHost: signed.example:9000\r\nX-Amz-Date: 20261122T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 Signature=abc\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: h\r\nRange: bytes=0-35\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

#[test]
fn requests_reach_the_server_byte_for_byte() {
    let (url, seen) = upstream();
    let proxy = Proxy::start(&url).unwrap();
    let request = put("/b/k?partNumber=2&uploadId=u", "part-bytes");
    let answer = send(&proxy, &request).unwrap();
    assert_eq!(seen.recv_timeout(Duration::from_secs(10)).unwrap(), request);
    assert!(
        answer.ends_with(BODY),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(proxy.count(Kind::UploadPart), 1);
    assert_eq!(proxy.requests()[0].target, "/b/k?partNumber=2&uploadId=u");
}

#[test]
fn slowdown_bursts_answer_in_the_stores_dialect_and_are_counted() {
    let (url, _seen) = upstream();
    let proxy = Proxy::start(&url).unwrap();
    let slow = proxy.inject(
        Match::kind(Kind::UploadPart).nth(2).times(2),
        Fault::SlowDown,
    );
    let answers: Vec<String> = (0..4)
        .map(|_| {
            String::from_utf8(send(&proxy, &put("/b/k?partNumber=1&uploadId=u", "x")).unwrap())
                .unwrap()
        })
        .collect();
    assert!(answers[0].starts_with("HTTP/1.1 200"));
    assert!(answers[1].starts_with("HTTP/1.1 503") && answers[1].contains("<Code>SlowDown</Code>"));
    assert!(answers[2].starts_with("HTTP/1.1 503"));
    assert!(answers[3].starts_with("HTTP/1.1 200"));
    assert_eq!((slow.count(), slow.matched()), (2, 4));
    assert_eq!(proxy.count(Kind::UploadPart), 2);

    let azure = b"PUT /a/c/k?comp=block&blockid=AA HTTP/1.1\r\nHost: h\r\nx-ms-version: 2021-08-06\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    proxy.inject(Match::any().contains("comp=block"), Fault::InternalError);
    let answer = String::from_utf8(send(&proxy, azure).unwrap()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    assert!(
        answer.contains("x-ms-error-code: InternalError"),
        "{answer}"
    );
}

#[test]
fn download_faults_cut_the_answer_after_its_head() {
    let (url, _seen) = upstream();
    let proxy = Proxy::start(&url).unwrap();
    proxy.inject(Match::kind(Kind::GetRange), Fault::Truncate { after: 10 });
    let answer = send(&proxy, &get("/b/k")).unwrap();
    let text = String::from_utf8(answer).unwrap();
    assert!(text.contains("Content-Length: 36"), "{text}");
    assert!(text.ends_with("\r\n\r\n0123456789"), "{text}");

    proxy.inject(
        Match::kind(Kind::GetRange),
        Fault::ResetDownload { after: 5 },
    );
    match send(&proxy, &get("/b/k")) {
        // The reset may discard what was in flight; either way the body never completes.
        Ok(answer) => assert!(!answer.ends_with(BODY)),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
    }
    assert_eq!(proxy.count(Kind::GetRange), 2);
}

#[test]
fn upload_faults_and_stalls_never_reach_the_server() {
    let (url, seen) = upstream();
    let proxy = Proxy::start(&url).unwrap();
    proxy.inject(
        Match::kind(Kind::PutObject),
        Fault::ResetUpload { after: 3 },
    );
    assert!(
        send(&proxy, &put("/b/k", "0123456789"))
            .map(|a| a.is_empty())
            .unwrap_or(true)
    );
    proxy.inject(
        Match::kind(Kind::PutObject),
        Fault::Stall(Duration::from_millis(50)),
    );
    assert_eq!(send(&proxy, &put("/b/k", "x")).unwrap(), b"");
    assert_eq!(proxy.count(Kind::PutObject), 0);
    assert_eq!(proxy.injected(), 2);
    assert!(seen.try_recv().is_err(), "nothing was relayed");
}

#[test]
fn a_lost_answer_took_effect_on_the_server() {
    let (url, seen) = upstream();
    let proxy = Proxy::start(&url).unwrap();
    proxy.inject(Match::kind(Kind::PutObject), Fault::LoseAnswer);
    let request = put("/b/manifest.json", "{}");
    assert!(send(&proxy, &request).map(|a| a.is_empty()).unwrap_or(true));
    assert_eq!(seen.recv_timeout(Duration::from_secs(10)).unwrap(), request);
}

#[test]
fn a_hold_blocks_until_released() {
    let (url, seen) = upstream();
    let proxy = Proxy::start(&url).unwrap();
    let hold = proxy.hold(Match::kind(Kind::UploadPart));
    let addr = proxy.addr();
    let client = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(&put("/b/k?partNumber=1&uploadId=u", "held"))
            .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        answer
    });
    assert!(hold.wait_held(Duration::from_secs(10)));
    assert_eq!(hold.held(), 1);
    assert!(seen.try_recv().is_err(), "a held request is not relayed");
    hold.release();
    assert!(client.join().unwrap().ends_with(BODY));
    assert_eq!(hold.held(), 0);
    // Released: later requests pass.
    assert!(
        send(&proxy, &put("/b/k?partNumber=2&uploadId=u", "x"))
            .unwrap()
            .ends_with(BODY)
    );
    assert_eq!(hold.count(), 1);
}
