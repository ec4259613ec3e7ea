//! The simulator's HTTP/1.1 serving (hyper), over real TCP: keep-alive, pipelining, chunked
//! bodies, `Expect: 100-continue`, content types, idle kept-alive connections never holding up
//! new ones, `--latency-ms` and `--threads`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{PASSWORD, Sim};

/// Reads one answer: (status, headers, body).
fn answer(r: &mut BufReader<TcpStream>) -> (u16, Vec<String>, String) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = vec![];
    let mut len = 0;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end().to_string();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
        headers.push(h);
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (status, headers, String::from_utf8(body).unwrap())
}

/// A header's value in `headers` (case-insensitive name).
fn header<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
    headers.iter().find_map(|h| {
        let (k, v) = h.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn connect(addr: &str) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

/// Sends `req` on a connection and reads its answer.
fn send(s: &mut TcpStream, r: &mut BufReader<TcpStream>, req: &str) -> (u16, Vec<String>, String) {
    s.write_all(req.as_bytes()).unwrap();
    answer(r)
}

const STATUS: &str = "GET /apiv2/server_status HTTP/1.1\r\nHost: x\r\n\r\n";

/// Whether the server closed the connection (EOF, nothing more).
fn closed(r: &mut BufReader<TcpStream>) -> bool {
    let mut rest = vec![];
    r.read_to_end(&mut rest).unwrap() == 0
}

#[test]
fn keep_alive_pipelining_chunked_and_continue() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(dir.path(), &[]);
    assert_eq!(sim.first_user().status, 200);
    let auth = sim.login("admin", PASSWORD);
    let addr = sim.addr();
    let (mut s, mut r) = connect(&addr);

    // two requests on one connection, the second sent before the first is answered
    let get = format!("GET /api/v3/info HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n");
    s.write_all(format!("{get}{get}").as_bytes()).unwrap();
    for _ in 0..2 {
        let (st, h, body) = answer(&mut r);
        assert_eq!(st, 200, "{body}");
        assert_eq!(header(&h, "Content-Type"), Some("application/json"));
        assert_ne!(header(&h, "Connection"), Some("close"), "{h:?}");
        assert!(body.contains("\"version\""));
    }

    // text/plain where the reply is not JSON
    let (st, h, body) = send(&mut s, &mut r, STATUS);
    assert_eq!((st, body.as_str()), (200, "OK"));
    assert_eq!(header(&h, "Content-Type"), Some("text/plain"));

    // a chunked body
    let json = r#"{"entityType":"space","name":"Chunked"}"#;
    let (a, b) = json.split_at(10);
    let req = format!(
        "POST /api/v3/catalog HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    let (st, _, body) = send(&mut s, &mut r, &req);
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"name\":\"Chunked\""));
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Expect: 100-continue gets its interim answer before the body is sent
    let json = r#"{"entityType":"space","name":"Later"}"#;
    let req = format!(
        "POST /api/v3/catalog HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        json.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "\r\n");
    s.write_all(json.as_bytes()).unwrap();
    let (st, _, body) = answer(&mut r);
    assert_eq!(st, 200, "{body}");

    // a large body (2 MiB, JSON padded with spaces) is read whole; the connection goes on
    let big = format!(
        r#"{{"entityType":"space","name":"Big"}}{}"#,
        " ".repeat(2 << 20)
    );
    let req = format!(
        "POST /api/v3/catalog HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    );
    let (st, _, body) = send(&mut s, &mut r, &req);
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"name\":\"Big\""));

    // error statuses as the handler says, JSON bodies
    let (st, h, body) = send(
        &mut s,
        &mut r,
        "GET /api/v3/info HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(st, 401, "{body}");
    assert_eq!(header(&h, "Content-Type"), Some("application/json"));
    assert!(body.contains("errorMessage"));
    let (st, _, _) = send(&mut s, &mut r, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(st, 404);

    // a 204 has neither body nor content type
    let req =
        format!("DELETE /api/v3/catalog/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n");
    let (st, h, body) = send(&mut s, &mut r, &req);
    assert_eq!((st, body.as_str()), (204, ""));
    assert_eq!(header(&h, "Content-Type"), None, "{h:?}");

    // Connection: close is honoured
    let req = "GET /apiv2/server_status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (st, h, body) = send(&mut s, &mut r, req);
    assert_eq!((st, body.as_str()), (200, "OK"));
    assert_eq!(header(&h, "Connection"), Some("close"));
    assert!(closed(&mut r));

    // HTTP/1.0 closes after its answer unless it asks for keep-alive
    let (mut s, mut r) = connect(&addr);
    let req = "GET /apiv2/server_status HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    for _ in 0..2 {
        let (st, h, _) = send(&mut s, &mut r, req);
        assert_eq!(st, 200);
        assert_eq!(header(&h, "Connection"), Some("keep-alive"));
    }
    let (st, _, _) = send(&mut s, &mut r, "GET /apiv2/server_status HTTP/1.0\r\n\r\n");
    assert_eq!(st, 200);
    assert!(closed(&mut r));

    // a malformed request line: 400, then closed
    let (mut s, mut r) = connect(&addr);
    let (st, _, _) = send(&mut s, &mut r, "NONSENSE\r\n\r\n");
    assert_eq!(st, 400);
    assert!(closed(&mut r));
}

#[test]
fn idle_connections_do_not_hold_up_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    // a single request thread: idle kept-alive connections must not take it
    let sim = Sim::start(dir.path(), &["--threads", "1"]);
    let addr = sim.addr();
    // many kept-alive connections, each used once and left open
    let mut idle = vec![];
    for _ in 0..40 {
        let (mut s, mut r) = connect(&addr);
        assert_eq!(send(&mut s, &mut r, STATUS).0, 200);
        idle.push((s, r));
    }
    // one left open half-way through a request's headers
    let (mut partial, mut partial_r) = connect(&addr);
    partial
        .write_all(b"GET /apiv2/server_status HTTP/1.1\r\n")
        .unwrap();
    // new connections, in a burst from several threads, are all answered (a connection held up
    // behind the idle ones would hit the client's read timeout and fail the test)
    std::thread::scope(|sc| {
        for _ in 0..16 {
            sc.spawn(|| {
                let (mut s, mut r) = connect(&addr);
                for _ in 0..3 {
                    assert_eq!(send(&mut s, &mut r, STATUS).0, 200);
                }
            });
        }
    });
    // and the idle ones still work
    for (s, r) in idle.iter_mut() {
        assert_eq!(send(s, r, STATUS).0, 200);
    }
    assert_eq!(send(&mut partial, &mut partial_r, "Host: x\r\n\r\n").0, 200);
}

#[test]
fn latency_is_applied_to_every_answer() {
    let dir = tempfile::tempdir().unwrap();
    let lat = Duration::from_millis(300);
    let sim = Sim::start(dir.path(), &["--latency-ms", "300"]);
    let (mut s, mut r) = connect(&sim.addr());
    let t = Instant::now();
    for i in 1..=3 {
        assert_eq!(send(&mut s, &mut r, STATUS).0, 200);
        assert!(t.elapsed() >= lat * i, "answer {i} after {:?}", t.elapsed());
    }
    // errors wait too
    let t = Instant::now();
    assert_eq!(
        send(&mut s, &mut r, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n").0,
        404
    );
    assert!(t.elapsed() >= lat, "{:?}", t.elapsed());
}

/// `n` concurrent requests, each on a connection of its own: (each one's time, all's time).
fn concurrent(addr: &str, n: usize) -> (Vec<Duration>, Duration) {
    // connect first, so that only the requests are timed
    let mut conns: Vec<_> = (0..n).map(|_| connect(addr)).collect();
    let t = Instant::now();
    let each = std::thread::scope(|sc| {
        let hs: Vec<_> = conns
            .iter_mut()
            .map(|(s, r)| {
                sc.spawn(move || {
                    let t = Instant::now();
                    assert_eq!(send(s, r, STATUS).0, 200);
                    t.elapsed()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    (each, t.elapsed())
}

#[test]
fn threads_bound_the_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let lat = Duration::from_millis(400);
    let sim = Sim::start(dir.path(), &["--threads", "3", "--latency-ms", "400"]);
    let addr = sim.addr();
    // every answer waits its latency
    let (each, _) = concurrent(&addr, 3);
    assert!(each.iter().all(|d| *d >= lat), "{each:?}");
    // 7 on 3 slots: three rounds at least
    let (each, total) = concurrent(&addr, 7);
    assert!(each.iter().all(|d| *d >= lat), "{each:?}");
    assert!(total >= lat * 3, "7 requests on 3 threads took {total:?}");
    let mut each = each;
    each.sort();
    // with 3 slots, the last of 7 requests waits for two rounds before its own (lower bounds
    // only: how fast the first ones go depends on the machine, not on the simulator)
    assert!(each[6] >= lat * 3, "{each:?}");
}
