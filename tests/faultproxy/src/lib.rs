//! A fault-injecting HTTP/1.1 proxy for tests: it sits between a client and an S3 server (SeaweedFS)
//! or Azure Blob (Azurite), relays every request and answer byte for byte (so Host and every signed
//! header reach the server untouched and SigV4 / Shared Key signatures still verify), and injects
//! faults into the requests its rules match: 503 SlowDown (ServerBusy on Azure) and 500
//! InternalError answers, connections reset in mid-upload or mid-download, stalls, truncated
//! bodies, answers lost after the server acted, and holds that block requests until the test
//! releases them. It counts what it relayed by kind of request ([`Kind`]) and what it injected, so
//! that tests can assert both. Each request goes to the server over a connection of its own.
//!
//! ```no_run
//! use faultproxy::{Fault, Kind, Match, Proxy};
//! let proxy = Proxy::start("http://127.0.0.1:8333").unwrap();
//! // Point the client at proxy.url(); the third part upload and the next two get 503 SlowDown.
//! let slow = proxy.inject(Match::kind(Kind::UploadPart).nth(3).times(3), Fault::SlowDown);
//! // ... run the client ...
//! assert_eq!(slow.count(), 3);
//! assert_eq!(proxy.count(Kind::CreateMultipart), 1);
//! ```

mod http;
mod kind;
mod serve;
mod spec;

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use kind::{Flavour, Kind};
pub use spec::{Rule, parse_rule};

/// The most requests [`Proxy::requests`] remembers; counts go on beyond it.
const LOG_LIMIT: usize = 100_000;

/// A fault to inject into a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 503 with S3's `SlowDown` error body (Azure: `ServerBusy`); the request is not relayed.
    SlowDown,
    /// 500 with an `InternalError` body; the request is not relayed.
    InternalError,
    /// Reads this many bytes of the request body (at most all but its last byte), then resets the
    /// connection; the request is not relayed.
    ResetUpload { after: u64 },
    /// Relays the request and the answer's head and this many bytes of its body (at most all but
    /// the last byte), then resets the connection.
    ResetDownload { after: u64 },
    /// Reads the request, answers nothing for this long (or until the client gives up), then
    /// closes; the request is not relayed.
    Stall(Duration),
    /// Relays the request and the answer's head, whose Content-Length announces the whole body,
    /// then this many bytes of the body (at most all but the last), then closes cleanly (FIN).
    Truncate { after: u64 },
    /// Relays the request, lets the server answer it in full, and resets the connection without
    /// passing a byte of the answer on: the request took effect, the client cannot know.
    LoseAnswer,
}

impl Fault {
    /// The name used in rule specs and in [`Seen::injected`].
    pub fn name(&self) -> &'static str {
        match self {
            Fault::SlowDown => "slowdown",
            Fault::InternalError => "internal",
            Fault::ResetUpload { .. } => "reset-upload",
            Fault::ResetDownload { .. } => "reset-download",
            Fault::Stall(_) => "stall",
            Fault::Truncate { .. } => "truncate",
            Fault::LoseAnswer => "lose-answer",
        }
    }
}

/// Which requests a rule applies to, and which of them it fires on: from the `nth` match (1-based)
/// on, `times` matches in a row (a burst), or every match from then on with [`Match::always`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    method: Option<String>,
    contains: Vec<String>,
    kind: Option<Kind>,
    nth: u64,
    times: Option<u64>,
}

impl Default for Match {
    fn default() -> Self {
        Match {
            method: None,
            contains: Vec::new(),
            kind: None,
            nth: 1,
            times: Some(1),
        }
    }
}

impl Match {
    /// Every request (fires once, on the first, unless told otherwise).
    pub fn any() -> Match {
        Match::default()
    }

    /// Requests of one kind.
    pub fn kind(kind: Kind) -> Match {
        Match::any().of_kind(kind)
    }

    pub fn of_kind(mut self, kind: Kind) -> Match {
        self.kind = Some(kind);
        self
    }

    /// Requests with this method (`PUT`, `GET`, ...).
    pub fn method(mut self, method: &str) -> Match {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Requests whose target (path and query, as sent) contains `text`, e.g. `partNumber=`,
    /// `uploadId=`, `comp=block` or `data.tar.zst`. Several must all match.
    pub fn contains(mut self, text: &str) -> Match {
        self.contains.push(text.to_string());
        self
    }

    /// Fires first on the nth matching request (1-based; earlier matches pass).
    pub fn nth(mut self, n: u64) -> Match {
        self.nth = n.max(1);
        self
    }

    /// Fires on this many matching requests in a row (a burst of k).
    pub fn times(mut self, k: u64) -> Match {
        self.times = Some(k);
        self
    }

    /// Fires on every matching request from the nth on.
    pub fn always(mut self) -> Match {
        self.times = None;
        self
    }

    fn matches(&self, method: &str, target: &str, kind: Kind) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && self.kind.is_none_or(|k| k == kind)
            && self.contains.iter().all(|c| target.contains(c.as_str()))
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    pub kind: Kind,
    pub flavour: Flavour,
    /// The fault injected into it ([`Fault::name`], or `hold`), if any.
    pub injected: Option<&'static str>,
    /// Whether it reached the server (true for held requests once released, and for the faults
    /// that cut the answer).
    pub forwarded: bool,
}

/// What the connection task does with a request.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    Relay,
    Fault(Fault),
    Hold(Arc<HoldState>),
}

struct Armed {
    when: Match,
    action: Action,
    matched: AtomicU64,
    fired: AtomicU64,
}

#[derive(Default)]
struct State {
    rules: Vec<Arc<Armed>>,
    log: Vec<Seen>,
    forwarded: BTreeMap<Kind, u64>,
    injected: u64,
}

pub(crate) struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Picks the action for a request and records it: rules are tried in the order they were added
    /// and the first that fires wins (later rules do not see the request).
    pub(crate) fn decide(
        &self,
        method: &str,
        target: &str,
        kind: Kind,
        flavour: Flavour,
    ) -> Action {
        let mut st = lock(&self.state);
        let mut action = Action::Relay;
        for rule in &st.rules {
            if !rule.when.matches(method, target, kind) {
                continue;
            }
            if let Action::Hold(h) = &rule.action
                && h.is_released()
            {
                continue;
            }
            let n = rule.matched.fetch_add(1, Ordering::Relaxed) + 1;
            let fired = rule.fired.load(Ordering::Relaxed);
            if n >= rule.when.nth && rule.when.times.is_none_or(|t| fired < t) {
                rule.fired.fetch_add(1, Ordering::Relaxed);
                action = rule.action.clone();
                break;
            }
        }
        let (injected, forwarded) = match &action {
            Action::Relay => (None, true),
            Action::Hold(_) => (Some("hold"), true),
            Action::Fault(f) => (
                Some(f.name()),
                matches!(
                    f,
                    Fault::ResetDownload { .. } | Fault::Truncate { .. } | Fault::LoseAnswer
                ),
            ),
        };
        if injected.is_some() {
            st.injected += 1;
        }
        if forwarded {
            *st.forwarded.entry(kind).or_default() += 1;
        }
        if st.log.len() < LOG_LIMIT {
            st.log.push(Seen {
                method: method.to_string(),
                target: target.to_string(),
                kind,
                flavour,
                injected,
                forwarded,
            });
        }
        action
    }

    pub(crate) fn upstream(&self) -> SocketAddr {
        self.upstream
    }
}

/// The state of one hold rule, shared by its [`Hold`] handle and the requests it blocks.
#[derive(Debug)]
pub(crate) struct HoldState {
    counts: Mutex<HoldCounts>,
    changed: Condvar,
    released: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct HoldCounts {
    now: usize,
    total: usize,
}

impl HoldState {
    fn is_released(&self) -> bool {
        *self.released.borrow()
    }

    /// Blocks the calling request until the hold is released.
    pub(crate) async fn wait(&self) {
        {
            let mut c = lock(&self.counts);
            c.now += 1;
            c.total += 1;
            self.changed.notify_all();
        }
        let mut rx = self.released.subscribe();
        let _ = rx.wait_for(|released| *released).await;
        lock(&self.counts).now -= 1;
        self.changed.notify_all();
    }
}

/// A hold rule: the requests it matches wait in the proxy until [`Hold::release`] (or until the
/// handle is dropped); after that they pass, and the rule holds nothing more.
pub struct Hold {
    state: Arc<HoldState>,
    armed: Arc<Armed>,
}

impl Hold {
    /// Lets every held request through and disarms the rule.
    pub fn release(&self) {
        self.state.released.send_replace(true);
    }

    /// Waits until at least one request is held; false if none was within `timeout`.
    pub fn wait_held(&self, timeout: Duration) -> bool {
        let c = lock(&self.state.counts);
        let (c, _) = self
            .state
            .changed
            .wait_timeout_while(c, timeout, |c| c.now == 0)
            .unwrap_or_else(PoisonError::into_inner);
        c.now > 0
    }

    /// How many requests are held right now.
    pub fn held(&self) -> usize {
        lock(&self.state.counts).now
    }

    /// How many requests were held in all.
    pub fn count(&self) -> u64 {
        self.armed.fired.load(Ordering::Relaxed)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // A test that fails before releasing must not leave its client blocked forever.
        self.release();
    }
}

/// A fault rule's handle: how often it fired.
pub struct Injection {
    armed: Arc<Armed>,
}

impl Injection {
    /// How many requests this fault was injected into.
    pub fn count(&self) -> u64 {
        self.armed.fired.load(Ordering::Relaxed)
    }

    /// How many requests matched the rule (including those before the nth and after the burst).
    pub fn matched(&self) -> u64 {
        self.armed.matched.load(Ordering::Relaxed)
    }
}

/// A running proxy on 127.0.0.1 with its own thread and runtime; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of `upstream` (`http://host:port`, any
    /// path is ignored).
    pub fn start(upstream: &str) -> io::Result<Proxy> {
        Proxy::start_on("127.0.0.1:0", upstream)
    }

    /// Like [`Proxy::start`], listening on `listen` (e.g. `127.0.0.1:9000`).
    pub fn start_on(listen: &str, upstream: &str) -> io::Result<Proxy> {
        let upstream = resolve(upstream)?;
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State::default()),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let served = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("faultproxy-{}", addr.port()))
            .spawn(move || runtime.block_on(serve::accept(listener, served, stopped)))?;
        Ok(Proxy {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`: the endpoint to give the client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn arm(&self, when: Match, action: Action) -> Arc<Armed> {
        let armed = Arc::new(Armed {
            when,
            action,
            matched: AtomicU64::new(0),
            fired: AtomicU64::new(0),
        });
        lock(&self.shared.state).rules.push(armed.clone());
        armed
    }

    /// Injects `fault` into the requests `when` selects.
    pub fn inject(&self, when: Match, fault: Fault) -> Injection {
        Injection {
            armed: self.arm(when, Action::Fault(fault)),
        }
    }

    /// Holds the requests `when` selects until the returned handle releases them.
    pub fn hold(&self, when: Match) -> Hold {
        let state = Arc::new(HoldState {
            counts: Mutex::new(HoldCounts::default()),
            changed: Condvar::new(),
            released: tokio::sync::watch::channel(false).0,
        });
        let armed = self.arm(when, Action::Hold(state.clone()));
        Hold { state, armed }
    }

    /// Adds a parsed rule (see [`parse_rule`]); holds come back as `Err(hold)` to be released.
    pub fn add(&self, rule: Rule) -> Result<Injection, Hold> {
        match rule {
            Rule::Fault(when, fault) => Ok(self.inject(when, fault)),
            Rule::Hold(when) => Err(self.hold(when)),
        }
    }

    /// Removes every rule (held requests stay held until their handles release them).
    pub fn clear(&self) {
        lock(&self.shared.state).rules.clear();
    }

    /// Forgets the requests seen and the counts (rules stay).
    pub fn reset_counts(&self) {
        let mut st = lock(&self.shared.state);
        st.log.clear();
        st.forwarded.clear();
        st.injected = 0;
    }

    /// How many requests of `kind` reached the server.
    pub fn count(&self, kind: Kind) -> u64 {
        lock(&self.shared.state)
            .forwarded
            .get(&kind)
            .copied()
            .unwrap_or(0)
    }

    /// How many requests of `kind` whose target contains `text` reached the server.
    pub fn count_on(&self, kind: Kind, text: &str) -> usize {
        lock(&self.shared.state)
            .log
            .iter()
            .filter(|s| s.forwarded && s.kind == kind && s.target.contains(text))
            .count()
    }

    /// Requests that reached the server, by kind.
    pub fn counts(&self) -> BTreeMap<Kind, u64> {
        lock(&self.shared.state).forwarded.clone()
    }

    /// How many faults and holds were injected in all.
    pub fn injected(&self) -> u64 {
        lock(&self.shared.state).injected
    }

    /// The requests seen so far, in order (the first 100,000).
    pub fn requests(&self) -> Vec<Seen> {
        lock(&self.shared.state).log.clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn resolve(upstream: &str) -> io::Result<SocketAddr> {
    let rest = upstream.strip_prefix("http://").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("upstream {upstream:?} is not an http:// URL"),
        )
    })?;
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("upstream {upstream:?} does not resolve"),
        )
    })
}
