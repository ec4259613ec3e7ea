//! A REST client of a Druid cluster that always talks to each role's leader. Redirects are
//! never followed by the HTTP client (it would drop or leak the credentials): a 307 is followed
//! here, re-sent with the credentials, and only to a node that belongs to the cluster: one of the
//! URLs given, or a leader that a given node names AND that says, asked without credentials,
//! that it leads. A failover during a run (refused connection, 503, a redirect to the new
//! leader) finds the leader again, a bounded number of times.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::Value;

use crate::dremio::rest::Tls;
use crate::error::{Classify, ExitClass};
use crate::limits;
use crate::secrets::{self, Secret};

/// How long one request waits through leader changes, refused connections and 503s: a killed
/// leader's latch node lives until its ZooKeeper session expires (30 s by Druid's default), and
/// then the next leader takes over.
const FAILOVER_WINDOW: Duration = Duration::from_secs(60);
/// The longest pause between two attempts of a request while the cluster elects a leader.
const MAX_PAUSE: Duration = Duration::from_secs(2);
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How the errors of requests that got no answer at all begin.
const NO_ANSWER: &str = "no answer";

/// The two roles whose leader serves lifeboat's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Coordinator,
    Overlord,
}

impl Role {
    /// The role that serves a path (`/druid/indexer/...` is the Overlord's).
    pub fn of(path: &str) -> Role {
        if path.starts_with("/druid/indexer/") {
            Role::Overlord
        } else {
            Role::Coordinator
        }
    }

    fn base(self) -> &'static str {
        match self {
            Role::Coordinator => "/druid/coordinator/v1",
            Role::Overlord => "/druid/indexer/v1",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::Coordinator => "Coordinator",
            Role::Overlord => "Overlord",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DruidError {
    #[error(
        "{url}: HTTP 401, the Druid credentials were refused: check {vars}USER and {vars}PASSWORD (or {vars}PASSWORD_FILE)"
    )]
    Auth { url: String, vars: &'static str },
    #[error("no {role} leader found; tried {tried}")]
    NoLeader { role: &'static str, tried: String },
    #[error("{url}: {message}")]
    Api { url: String, message: String },
    #[error("{url}: not followed: a redirect to {location}, {why}")]
    Redirect {
        url: String,
        location: String,
        why: String,
    },
    #[error("{0}")]
    Usage(String),
}

impl Classify for DruidError {
    fn exit_class(&self) -> ExitClass {
        match self {
            DruidError::Usage(_) => ExitClass::Usage,
            DruidError::Redirect { .. } => ExitClass::Refused,
            _ => ExitClass::Storage,
        }
    }
}

/// Basic-auth credentials; the password never reaches a log.
#[derive(Debug, Clone)]
pub struct Credentials {
    user: String,
    password: Secret,
}

impl Credentials {
    /// `{prefix}USER` with `{prefix}PASSWORD` or the file `{prefix}PASSWORD_FILE` names; None
    /// when no user is set (a cluster without basic security).
    pub fn from_env(
        env: secrets::Env<'_>,
        prefix: &'static str,
    ) -> Result<Option<Credentials>, DruidError> {
        let Some(user) = env(&format!("{prefix}USER")).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let password = secrets::from_var_or_file(env, &format!("{prefix}PASSWORD"))
            .map_err(|(path, e)| {
                DruidError::Usage(format!(
                    "{prefix}PASSWORD_FILE: cannot read {}: {e}",
                    path.display()
                ))
            })?
            .ok_or_else(|| {
                DruidError::Usage(format!(
                    "{prefix}USER is set but neither {prefix}PASSWORD nor {prefix}PASSWORD_FILE is"
                ))
            })?;
        Ok(Some(Credentials { user, password }))
    }

    /// The request with these credentials (for callers that send their own, as doctor does).
    pub fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.basic_auth(&self.user, Some(&self.password.0))
    }
}

/// One answer: its status and its body (capped).
#[derive(Debug)]
pub struct Answer {
    pub url: String,
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON; an empty body is null (Druid's worker config answers nothing when unset).
    pub fn json(&self) -> Result<Value, String> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        limits::check_json_values(
            &self.body,
            limits::MAX_DRUID_ANSWER_VALUES,
            "a Druid answer",
        )?;
        serde_json::from_slice(&self.body).map_err(|e| format!("not JSON: {e}"))
    }

    /// Druid's error text (`{"error": ...}`, or the body), short.
    pub fn error(&self) -> String {
        let parsed: Option<Value> = serde_json::from_slice(&self.body).ok();
        let text = parsed
            .as_ref()
            .and_then(|v| v.get("error").or_else(|| v.get("errorMessage")))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned());
        let text: String = text.trim().chars().take(300).collect();
        format!("HTTP {}: {text}", self.status)
    }

    /// The answer as JSON when it succeeded, else an error naming the URL.
    pub fn into_json(self) -> Result<Value, DruidError> {
        if !self.ok() {
            return Err(DruidError::Api {
                message: self.error(),
                url: self.url,
            });
        }
        self.json().map_err(|message| DruidError::Api {
            url: self.url.clone(),
            message,
        })
    }
}

/// `scheme://host:port` of a URL, or why it is not one lifeboat talks to.
fn origin(url: &str) -> Result<String, String> {
    let u = Url::parse(url.trim()).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!("{url:?} is not an http(s) URL"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "{url:?} holds credentials: give them in LIFEBOAT_DRUID_USER/PASSWORD"
        ));
    }
    Ok(u.origin().ascii_serialization())
}

/// The leader's URL in a `/leader` answer: Druid may send it bare under a JSON content type.
fn leader_url(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let text = match serde_json::from_str::<Value>(text) {
        Ok(Value::String(s)) => s,
        _ => text.to_string(),
    };
    (!text.is_empty() && text.len() < 2048).then_some(text)
}

/// What the client knows of the cluster's leaders.
#[derive(Default)]
struct Leaders {
    /// Per role, the current leader's origin.
    current: [Option<String>; 2],
    /// Origins of leaders that given nodes named and that confirmed it (besides the given URLs).
    confirmed: Vec<String>,
}

/// A Druid cluster reached through its leaders.
pub struct Druid {
    client: reqwest::Client,
    /// The given nodes' origins, in the order given.
    given: Vec<String>,
    creds: Option<Credentials>,
    /// The environment variables' prefix, for the messages that say which to fix.
    vars: &'static str,
    leaders: Mutex<Leaders>,
    /// `X-Druid-Comment` of writes.
    comment: Mutex<String>,
    requests: AtomicU64,
    unanswered: AtomicU64,
    notify: crate::dremio::rest::Notify,
}

fn build_client(tls: &Tls) -> Result<reqwest::Client, DruidError> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = &tls.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| DruidError::Usage(format!("cannot read {}: {e}", ca.display())))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
            DruidError::Usage(format!("{}: not a PEM certificate: {e}", ca.display()))
        })?;
        b = b.add_root_certificate(cert);
    }
    if tls.insecure {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| DruidError::Usage(e.to_string()))
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "not listening (down?)".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        crate::error::chain(e)
    }
}

/// What became of one attempt of a request.
enum Sent {
    Answer(Answer),
    /// Sent nowhere or refused before acting (connection refused, 503): find the leader again.
    Failover(String),
    /// A redirect to this origin.
    Moved(String),
}

impl Druid {
    /// Connects to the cluster: checks the URLs and finds the Coordinator's leader (the
    /// Overlord's is found on its first call: a Coordinator-only cluster has none).
    pub async fn connect(
        urls: &[String],
        tls: &Tls,
        creds: Option<Credentials>,
        vars: &'static str,
        notify: crate::dremio::rest::Notify,
    ) -> Result<Druid, DruidError> {
        let given = urls
            .iter()
            .map(|u| origin(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(DruidError::Usage)?;
        if given.is_empty() {
            return Err(DruidError::Usage("no Druid URL given".into()));
        }
        let d = Druid {
            client: build_client(tls)?,
            given,
            creds,
            vars,
            leaders: Mutex::new(Leaders::default()),
            comment: Mutex::new("lifeboat".into()),
            requests: AtomicU64::new(0),
            unanswered: AtomicU64::new(0),
            notify,
        };
        d.find_leader(Role::Coordinator).await?;
        Ok(d)
    }

    /// The first URL given (names the cluster in reports).
    pub fn label(&self) -> &str {
        &self.given[0]
    }

    /// Sets the `X-Druid-Comment` of the writes that follow.
    pub fn set_comment(&self, comment: &str) {
        *self.comment.lock().expect("comment lock") = comment.to_string();
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn unanswered(&self) -> u64 {
        self.unanswered.load(Ordering::Relaxed)
    }

    fn leaders(&self) -> std::sync::MutexGuard<'_, Leaders> {
        self.leaders.lock().expect("leaders lock")
    }

    fn belongs(&self, origin: &str) -> bool {
        self.given.iter().any(|g| g == origin)
            || self.leaders().confirmed.iter().any(|c| c == origin)
    }

    fn request(&self, method: Method, url: &str, with_creds: bool) -> reqwest::RequestBuilder {
        let mut req = self.client.request(method, url).timeout(CALL_TIMEOUT);
        if with_creds && let Some(c) = &self.creds {
            req = c.authorize(req);
        }
        req
    }

    /// Reads a body, at most the cap.
    async fn read(&self, url: &str, mut r: reqwest::Response) -> Result<Answer, String> {
        let status = r.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = r.chunk().await.map_err(|e| describe(&e))? {
            if body.len() + chunk.len() > limits::MAX_DRUID_ANSWER_BYTES {
                return Err(format!(
                    "the answer is larger than {} MiB",
                    limits::MAX_DRUID_ANSWER_BYTES >> 20
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            url: url.to_string(),
            status,
            body,
        })
    }

    /// Asks each given node who leads `role`, and keeps the first answer that holds up.
    async fn find_leader(&self, role: Role) -> Result<String, DruidError> {
        let mut tried = Vec::new();
        for node in &self.given {
            let url = format!("{node}{}/leader", role.base());
            let answer = match self.request(Method::GET, &url, true).send().await {
                Ok(r) => self.read(&url, r).await,
                Err(e) => Err(describe(&e)),
            };
            let why = match answer {
                Ok(a) if a.status == 401 => {
                    return Err(DruidError::Auth {
                        url,
                        vars: self.vars,
                    });
                }
                Ok(a) if a.ok() => match leader_url(&a.body) {
                    Some(named) => match self.accept_leader(node, &named).await {
                        Ok(leader) => {
                            self.leaders().current[role.index()] = Some(leader.clone());
                            return Ok(leader);
                        }
                        Err(why) => why,
                    },
                    None => "an empty leader".into(),
                },
                Ok(a) => a.error(),
                Err(e) => e,
            };
            tried.push(format!("{node} ({why})"));
        }
        Err(DruidError::NoLeader {
            role: role.name(),
            tried: tried.join(", "),
        })
    }

    /// Takes `named` (the leader that the given node `asked` names) as the leader if it is a
    /// given node, or if it confirms through the unsecured `isLeader`, asked without
    /// credentials. An https cluster's leader must be https too.
    async fn accept_leader(&self, asked: &str, named: &str) -> Result<String, String> {
        let leader = origin(named)?;
        if asked.starts_with("https:") && !leader.starts_with("https:") {
            return Err(format!("it names {leader}, which is not https"));
        }
        if self.belongs(&leader) {
            return Ok(leader);
        }
        for role in [Role::Coordinator, Role::Overlord] {
            let url = format!("{leader}{}/isLeader", role.base());
            if let Ok(r) = self.request(Method::GET, &url, false).send().await
                && let Ok(a) = self.read(&url, r).await
                && a.status == 200
                && a.json().ok().and_then(|v| v.get("leader")?.as_bool()) == Some(true)
            {
                self.leaders().confirmed.push(leader.clone());
                return Ok(leader);
            }
        }
        Err(format!(
            "it names {leader}, which is not a given URL and does not say it leads"
        ))
    }

    /// The current leader of `role`, found when unknown.
    async fn leader(&self, role: Role) -> Result<String, DruidError> {
        let known = self.leaders().current[role.index()].clone();
        match known {
            Some(l) => Ok(l),
            None => self.find_leader(role).await,
        }
    }

    /// One attempt of a request at `base`.
    async fn attempt(
        &self,
        base: &str,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        repeat: bool,
    ) -> Result<Sent, DruidError> {
        let url = format!("{base}{path}");
        let mut req = self.request(method.clone(), &url, true);
        if *method != Method::GET {
            let comment = self.comment.lock().expect("comment lock").clone();
            req = req
                .header("X-Druid-Author", "lifeboat")
                .header("X-Druid-Comment", comment);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let r = match req.send().await {
            Ok(r) => r,
            // Refused: nothing was sent, even a write may go to the next leader.
            Err(e) if e.is_connect() => {
                return Ok(Sent::Failover(format!("{base}: {}", describe(&e))));
            }
            // Lost on the way (a leader killed mid-request, a timeout): only a request that may
            // be repeated is sent again.
            Err(e) if repeat => {
                return Ok(Sent::Failover(format!("{base}: {}", describe(&e))));
            }
            Err(e) => {
                return Err(DruidError::Api {
                    url,
                    message: format!("{NO_ANSWER}: {}", describe(&e)),
                });
            }
        };
        let status = r.status().as_u16();
        if status == 307 || status == 308 {
            let location = r
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            return self.moved(&url, path, &location).map(Sent::Moved);
        }
        let a = self
            .read(&url, r)
            .await
            .map_err(|message| DruidError::Api {
                url: url.clone(),
                message,
            })?;
        match a.status {
            401 => Err(DruidError::Auth {
                url,
                vars: self.vars,
            }),
            503 => Ok(Sent::Failover(format!("{url}: {}", a.error()))),
            _ => Ok(Sent::Answer(a)),
        }
    }

    /// The origin a redirect points to, if it is the same request at another node: Druid's
    /// redirects keep the path and query.
    fn moved(&self, url: &str, path: &str, location: &str) -> Result<String, DruidError> {
        let refuse = |why: &str| DruidError::Redirect {
            url: url.to_string(),
            location: location.chars().take(300).collect(),
            why: why.to_string(),
        };
        let to = origin(location).map_err(|e| refuse(&e))?;
        if format!("{to}{path}") != location {
            return Err(refuse("which is not the same path and query"));
        }
        if url.starts_with("https:") && !to.starts_with("https:") {
            return Err(refuse("which is not https"));
        }
        Ok(to)
    }

    /// Sends a request to the leader of the role that serves `path` (a path and query), through
    /// failovers. Writes carry `X-Druid-Author: lifeboat` and the comment. A write whose answer
    /// was lost is not sent again (see [`Druid::call_idempotent`]).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, DruidError> {
        let repeat = method == Method::GET;
        self.counted(method, path, body, repeat).await
    }

    /// Like [`Druid::call`], for a write that leaves the same state however often it is sent
    /// (rules, configs, a supervisor submitted with `skipRestartIfUnmodified`): sent again when
    /// its answer was lost, e.g. to the leader that follows one killed mid-request.
    pub async fn call_idempotent(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, DruidError> {
        self.counted(method, path, body, true).await
    }

    async fn counted(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        repeat: bool,
    ) -> Result<Answer, DruidError> {
        let r = self.through_failovers(method, path, body, repeat).await;
        match &r {
            Err(DruidError::NoLeader { .. }) => {
                self.unanswered.fetch_add(1, Ordering::Relaxed);
            }
            Err(DruidError::Api { message, .. }) if message.starts_with(NO_ANSWER) => {
                self.unanswered.fetch_add(1, Ordering::Relaxed);
            }
            _ => self.unanswered.store(0, Ordering::Relaxed),
        }
        r
    }

    async fn through_failovers(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        repeat: bool,
    ) -> Result<Answer, DruidError> {
        let role = Role::of(path);
        let deadline = tokio::time::Instant::now() + FAILOVER_WINDOW;
        let mut last = String::new();
        for n in 0.. {
            let out_of_time = tokio::time::Instant::now() >= deadline;
            let base = match self.leader(role).await {
                Ok(b) => b,
                Err(e) if out_of_time => return Err(e),
                Err(e) => {
                    last = e.to_string();
                    self.pause(n, &last).await;
                    continue;
                }
            };
            match self.attempt(&base, &method, path, body, repeat).await? {
                Sent::Answer(a) => return Ok(a),
                Sent::Moved(to) => self.follow(role, &base, path, to).await?,
                Sent::Failover(why) if out_of_time => {
                    last = why;
                    break;
                }
                Sent::Failover(why) => {
                    self.forget(role);
                    last = why;
                    self.pause(n, &last).await;
                }
            }
        }
        Err(DruidError::Api {
            url: path.to_string(),
            message: format!(
                "{NO_ANSWER} from a {} leader within {}s: {last}",
                role.name(),
                FAILOVER_WINDOW.as_secs()
            ),
        })
    }

    /// Takes a redirect's target as the leader: at once if it belongs to the cluster, else only
    /// if the given nodes now name it.
    async fn follow(
        &self,
        role: Role,
        base: &str,
        path: &str,
        to: String,
    ) -> Result<(), DruidError> {
        if !self.belongs(&to) {
            self.forget(role);
            let found = self.find_leader(role).await?;
            if found != to {
                return Err(DruidError::Redirect {
                    url: format!("{base}{path}"),
                    location: format!("{to}{path}"),
                    why: format!("while the given nodes name {found} as the leader"),
                });
            }
        }
        self.leaders().current[role.index()] = Some(to);
        Ok(())
    }

    fn forget(&self, role: Role) {
        self.leaders().current[role.index()] = None;
    }

    async fn pause(&self, attempt: u32, why: &str) {
        let pause = (Duration::from_millis(100) * 2u32.pow(attempt.min(5))).min(MAX_PAUSE);
        (self.notify)(&format!(
            "retry {}: {why}; waiting {:.1}s for a leader",
            attempt + 1,
            pause.as_secs_f64()
        ));
        tokio::time::sleep(pause).await;
    }

    /// The version `/status` reports.
    pub async fn version(&self) -> Result<String, DruidError> {
        let status = self.get("/status").await?;
        Ok(status
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .chars()
            .take(64)
            .collect())
    }

    /// GET as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, DruidError> {
        self.call(Method::GET, path, None).await?.into_json()
    }

    /// GET as JSON, None on 404 (an artefact that is not set).
    pub async fn get_opt(&self, path: &str) -> Result<Option<Value>, DruidError> {
        let a = self.call(Method::GET, path, None).await?;
        if a.status == 404 {
            return Ok(None);
        }
        a.into_json().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_answers_are_read_bare_or_quoted() {
        assert_eq!(
            leader_url(b"http://a:8081\n").as_deref(),
            Some("http://a:8081")
        );
        assert_eq!(
            leader_url(b"\"http://a:8081\"").as_deref(),
            Some("http://a:8081")
        );
        assert_eq!(leader_url(b"  "), None);
    }

    #[test]
    fn answers_are_bounded_and_errors_short() {
        let a = |status: u16, body: &[u8]| Answer {
            url: "u".into(),
            status,
            body: body.to_vec(),
        };
        assert_eq!(a(200, b"").json().unwrap(), Value::Null);
        assert!(a(200, b"{").json().is_err());
        let many = format!("[{}0]", "0,".repeat(limits::MAX_DRUID_ANSWER_VALUES));
        assert!(a(200, many.as_bytes()).json().is_err());
        let long = a(
            400,
            format!("{{\"error\": \"{}\"}}", "x".repeat(10_000)).as_bytes(),
        );
        assert!(long.error().len() < 400, "{}", long.error().len());
        assert!(long.error().starts_with("HTTP 400: xxx"));
        assert!(leader_url("h".repeat(5000).as_bytes()).is_none());
    }

    #[test]
    fn origins_are_normalised_and_credentials_in_urls_refused() {
        assert_eq!(
            origin("HTTP://Node-1:8081/x").unwrap(),
            "http://node-1:8081"
        );
        assert_eq!(origin("https://n:443").unwrap(), "https://n");
        assert!(origin("http://u:p@n:1").is_err());
        assert!(origin("ftp://n").is_err());
        assert!(origin("n:8081").is_err());
    }

    fn client(given: &[&str]) -> Druid {
        Druid {
            client: reqwest::Client::new(),
            given: given.iter().map(|g| origin(g).unwrap()).collect(),
            creds: None,
            vars: "LIFEBOAT_DRUID_",
            leaders: Mutex::new(Leaders::default()),
            comment: Mutex::new(String::new()),
            requests: AtomicU64::new(0),
            unanswered: AtomicU64::new(0),
            notify: std::sync::Arc::new(|_| {}),
        }
    }

    #[test]
    fn redirects_must_keep_the_request_and_never_downgrade() {
        let d = client(&["https://a:1", "https://b:1"]);
        let path = "/druid/coordinator/v1/rules?x=1";
        let from = format!("https://a:1{path}");
        assert_eq!(
            d.moved(&from, path, &format!("https://b:1{path}")).unwrap(),
            "https://b:1"
        );
        // Elsewhere or downgraded: not followed, so the credentials stay home.
        assert!(
            d.moved(&from, path, "https://b:1/druid/coordinator/v1/config")
                .is_err()
        );
        assert!(d.moved(&from, path, &format!("http://b:1{path}")).is_err());
        assert!(d.moved(&from, path, "not a url").is_err());
        // A foreign origin is only an origin here: `call` follows it only once a given node
        // names it as the leader.
        assert!(!d.belongs("https://evil:1"));
        assert!(d.belongs("https://b:1"));
    }

    #[test]
    fn credentials_come_from_the_environment_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let f = file.display().to_string();
        let env = |k: &str| match k {
            "P_USER" => Some("admin".to_string()),
            "P_PASSWORD_FILE" => Some(f.clone()),
            _ => None,
        };
        let c = Credentials::from_env(&env, "P_").unwrap().unwrap();
        assert_eq!(
            (c.user.as_str(), c.password.0.as_str()),
            ("admin", "s3cret")
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        let none = |_: &str| None;
        assert!(Credentials::from_env(&none, "P_").unwrap().is_none());
        let no_pw = |k: &str| (k == "P_USER").then(|| "admin".to_string());
        let e = Credentials::from_env(&no_pw, "P_").unwrap_err().to_string();
        assert!(e.contains("P_PASSWORD_FILE"), "{e}");
    }
}
