//! The REST API of the active master.

use std::io::Write;
use std::net::TcpListener;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::StatusCode;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::backup::{BackupOptions, FAULT_ENV, parse_fault, write_backup};
use crate::catalog::{Catalog, Collab};
use crate::election::{self, ZkConfig};
use crate::fields::{self, Kind};
use crate::lock::{lock_path, take_or_wait};
use crate::store::Store;
use crate::util::{now_ms, random_bytes, uuid};

/// Default build stamp (version suffix), as in `dremio-dac-backend-25.2.0-<build>.jar`.
pub const DEFAULT_BUILD: &str = "202410241428100111-a963b970";
/// Default token lifetime: Dremio's 30 hours.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 30 * 3600;
/// Default number of requests in flight at once (request threads).
pub const DEFAULT_THREADS: usize = 16;

/// How the simulator runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub paths_local: PathBuf,
    pub port: u16,
    /// e.g. `25.2.0`
    pub version: String,
    /// e.g. `202410241428100111-a963b970`
    pub build: String,
    pub token_ttl_secs: u64,
    /// Requests in flight at once (at least 1), like a coordinator's request threads: a request
    /// holds its slot from handling through [`Config::latency_ms`]; the state is behind one
    /// lock, so they overlap only in the latency (connections are read and written apart, by
    /// tasks of their own, and never wait for a slot while idle).
    pub threads: usize,
    /// Milliseconds each answer waits, after the request was handled and outside the lock,
    /// before it is sent: a real coordinator's network and planning time, so that a client's
    /// concurrency shows in benchmarks.
    pub latency_ms: u64,
    /// Every Nth request (counted over the whole server) is answered 429 without being handled,
    /// like a coordinator behind a rate-limiting proxy; 0: never.
    pub throttle_every: u64,
    /// Join the master election in this ZooKeeper before taking the lock (Dremio's HA).
    pub zookeeper: Option<ZkConfig>,
}

impl Config {
    /// `<version>-<build>`, what Dremio reports.
    pub fn full_version(&self) -> String {
        format!("{}-{}", self.version, self.build)
    }
}

/// `major.minor.patch` of a version string.
pub fn parse_version(v: &str) -> Result<(u64, u64, u64)> {
    let core = v.split('-').next().unwrap_or(v);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 {
        bail!("version {v:?} is not major.minor.patch");
    }
    let n = |s: &str| {
        s.parse::<u64>()
            .with_context(|| format!("bad version {v:?}"))
    };
    Ok((n(parts[0])?, n(parts[1])?, n(parts[2])?))
}

/// Largest request body read (Dremio's are small); a larger one is a 400.
const MAX_BODY: usize = 256 * 1024 * 1024;

/// Waits for the master lock (printing a standby line when it must wait), then serves forever
/// (the lock is held meanwhile).
///
/// HTTP/1.1 is hyper's, on a tokio runtime: each connection is served by a task of its own
/// (keep-alive, pipelining, chunked bodies, `Expect: 100-continue`), so an idle kept-alive
/// connection never holds up a new one (idle ones stay open until the client closes them).
/// `--threads N` is the coordinator's request threads: a request takes one of N slots once its
/// body is read, and keeps it while it is handled (on a blocking thread, under the state lock)
/// and through `--latency-ms`; the (N+1)th request waits for a free slot, as on a coordinator
/// whose request threads are all busy.
pub fn run(cfg: Config) -> Result<()> {
    let threads = cfg.threads.max(1);
    // the runtime's workers only read and write connections: a few are plenty
    let io_threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(threads));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(io_threads)
        .max_blocking_threads(threads)
        .thread_name("dremio-sim")
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let leader = match &cfg.zookeeper {
        Some(z) => Some(rt.block_on(election::lead(z, || {
            println!("dremio-sim: standby in the leader latch of {}", z.connect);
            let _ = std::io::stdout().flush();
        }))?),
        None => None,
    };
    let lp = lock_path(&cfg.paths_local);
    let lock = take_or_wait(&lp).with_context(|| format!("locking {}", lp.display()))?;
    let state = State::open(cfg.clone())?;
    let listener = TcpListener::bind(("127.0.0.1", cfg.port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", cfg.port))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    if let Some(l) = &leader {
        rt.block_on(l.register(port, &cfg.version))?;
    }
    println!("dremio-sim: active on 127.0.0.1:{port}");
    std::io::stdout().flush()?;
    let pacing = Arc::new(Pacing {
        latency: Duration::from_millis(cfg.latency_ms),
        throttle_every: cfg.throttle_every,
        seen: AtomicU64::new(0),
    });
    let serving = serve(listener, Arc::new(Mutex::new(state)), threads, pacing);
    let res = rt.block_on(async {
        match &leader {
            Some(l) => tokio::select! {
                res = serving => res,
                s = l.session_lost() => bail!("lost the ZooKeeper session ({s}): no longer master"),
            },
            None => serving.await,
        }
    });
    drop(lock);
    res
}

/// How answers are paced: the latency, and which requests are throttled.
struct Pacing {
    latency: Duration,
    throttle_every: u64,
    seen: AtomicU64,
}

impl Pacing {
    /// Whether this request is one of the throttled ones.
    fn throttles(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        self.throttle_every > 0 && n.is_multiple_of(self.throttle_every)
    }
}

/// Accepts connections forever, each served by a task of its own.
async fn serve(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    threads: usize,
    pacing: Arc<Pacing>,
) -> Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(Semaphore::new(threads));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                // e.g. out of file descriptors: wait for some to be closed
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (state, slots, pacing) = (state.clone(), slots.clone(), pacing.clone());
        tokio::spawn(async move {
            let svc =
                service_fn(move |req| answer(req, state.clone(), slots.clone(), pacing.clone()));
            // errors here are the client's (reset, malformed request: hyper answered 400)
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Answers one request: reads its body, takes a request slot, handles it under the state lock
/// (on a blocking thread, so the lock is never held across an await), waits the latency outside
/// the lock, then gives the slot back and the answer to hyper.
async fn answer(
    req: hyper::Request<Incoming>,
    state: Arc<Mutex<State>>,
    slots: Arc<Semaphore>,
    pacing: Arc<Pacing>,
) -> std::result::Result<hyper::Response<Full<Bytes>>, BoxError> {
    let (head, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            let mut r = response(Reply {
                status: 400,
                body: "Bad request: body too large".into(),
                json: false,
            });
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(r);
        }
        // the connection broke mid-body: nobody to answer
        Err(e) => return Err(e),
    };
    let _slot = slots.acquire_owned().await?;
    let hdr = |name: header::HeaderName| {
        head.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let method = head.method.as_str().to_string();
    let url = head
        .uri
        .path_and_query()
        .map_or_else(|| head.uri.to_string(), |p| p.as_str().to_string());
    let (auth, content_type) = (hdr(header::AUTHORIZATION), hdr(header::CONTENT_TYPE));
    if pacing.throttles() {
        tokio::time::sleep(pacing.latency).await;
        return Ok(response(Reply::error(429, "Too Many Requests")));
    }
    let reply = tokio::task::spawn_blocking(move || {
        let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
        // a bug in one handler answers 500 instead of killing the server
        catch_unwind(AssertUnwindSafe(|| {
            st.handle(
                &method,
                &url,
                auth.as_deref(),
                content_type.as_deref(),
                &body,
            )
        }))
        .unwrap_or_else(|_| Reply::error(500, "Internal error: the handler panicked"))
    })
    .await
    .unwrap_or_else(|_| Reply::error(500, "Internal error: the handler was lost"));
    // outside the lock: other requests proceed meanwhile, as on a real coordinator
    if !pacing.latency.is_zero() {
        tokio::time::sleep(pacing.latency).await;
    }
    Ok(response(reply))
}

/// A [`Reply`] as an HTTP answer (no body nor content type for a 204).
fn response(reply: Reply) -> hyper::Response<Full<Bytes>> {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::NO_CONTENT {
        let mut r = hyper::Response::new(Full::default());
        *r.status_mut() = status;
        return r;
    }
    let mut r = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *r.status_mut() = status;
    let ct = if reply.json {
        "application/json"
    } else {
        "text/plain"
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub json: bool,
}

impl Reply {
    pub(crate) fn ok(v: Value) -> Reply {
        Reply {
            status: 200,
            body: v.to_string(),
            json: true,
        }
    }
    /// Dremio's error body: `{"errorMessage": ..., "moreInfo": ""}`.
    pub fn error(status: u16, msg: &str) -> Reply {
        Reply {
            status,
            body: json!({"errorMessage": msg, "moreInfo": ""}).to_string(),
            json: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Route {
    ServerStatus,
    FirstUser,
    Login,
    Backup,
    Info,
    Users,
    UserById(String),
    UserByName(String),
    UsersAll,
    Catalog,
    CatalogById(String),
    CatalogByPath(Vec<String>),
    Collab(String, Collab),
    Reflections,
    ReflectionById(String),
    DatasetReflections(String),
}

fn route(path: &str) -> Option<(Route, &'static [&'static str])> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let dec = |s: &str| percent_decode(s);
    Some(match segs.as_slice() {
        ["apiv2", "server_status"] => (Route::ServerStatus, &["GET"]),
        ["apiv2", "bootstrap", "firstuser"] => (Route::FirstUser, &["PUT"]),
        ["apiv2", "login"] => (Route::Login, &["POST"]),
        ["apiv2", "backup"] => (Route::Backup, &["POST"]),
        ["apiv2", "users", "all"] => (Route::UsersAll, &["GET"]),
        ["api", "v3", "info"] => (Route::Info, &["GET"]),
        ["api", "v3", "user"] => (Route::Users, &["POST"]),
        ["api", "v3", "user", "by-name", name] => (Route::UserByName(dec(name)), &["GET"]),
        ["api", "v3", "user", id] => (Route::UserById(dec(id)), &["GET", "PUT"]),
        ["api", "v3", "catalog"] => (Route::Catalog, &["GET", "POST"]),
        ["api", "v3", "catalog", "by-path", rest @ ..] if !rest.is_empty() => (
            Route::CatalogByPath(rest.iter().map(|s| dec(s)).collect()),
            &["GET"],
        ),
        ["api", "v3", "catalog", id, "collaboration", "wiki"] => {
            (Route::Collab(dec(id), Collab::Wiki), &["GET", "POST"])
        }
        ["api", "v3", "catalog", id, "collaboration", "tag"] => {
            (Route::Collab(dec(id), Collab::Tags), &["GET", "POST"])
        }
        ["api", "v3", "catalog", id] => (
            Route::CatalogById(dec(id)),
            &["GET", "POST", "PUT", "DELETE"],
        ),
        ["api", "v3", "reflection"] => (Route::Reflections, &["GET", "POST"]),
        ["api", "v3", "reflection", id] => {
            (Route::ReflectionById(dec(id)), &["GET", "PUT", "DELETE"])
        }
        ["api", "v3", "dataset", id, "reflection"] => {
            (Route::DatasetReflections(dec(id)), &["GET"])
        }
        _ => return None,
    })
}

pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hash_password(salt: &str, password: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(password.as_bytes());
    hex::encode(h.finalize())
}

const PASSWORD_RULE: &str = "Invalid password: must be at least 8 letters long, must contain at least one number and one letter";

fn password_ok(p: &str) -> bool {
    p.chars().count() >= 8
        && p.chars().any(|c| c.is_ascii_digit())
        && p.chars().any(|c| c.is_alphabetic())
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(|x| x.as_str())
}

/// Reads the cluster identity of a store, creating it on a fresh one, and refuses a store written
/// by another version (Dremio's startup check): (cluster id, creation time).
pub fn cluster_identity(store: &mut Store, version: &str) -> Result<(String, i64)> {
    let (major, minor, patch) = parse_version(version)?;
    match store.get_json("configuration", "clusterId") {
        Some(v) => {
            let sv = &v["version"];
            let stored = (
                sv["major"].as_u64().unwrap_or(0),
                sv["minor"].as_u64().unwrap_or(0),
                sv["patch"].as_u64().unwrap_or(0),
            );
            let show = |t: (u64, u64, u64)| format!("{}.{}.{}", t.0, t.1, t.2);
            if stored < (major, minor, patch) {
                bail!(
                    "KVStore has an older version ({}) than the server ({}), please run the upgrade tool first",
                    show(stored),
                    show((major, minor, patch))
                );
            }
            if stored > (major, minor, patch) {
                bail!(
                    "KVStore has a newer version ({}) than the server ({})",
                    show(stored),
                    show((major, minor, patch))
                );
            }
            Ok((
                v["identity"].as_str().unwrap_or_default().to_string(),
                v["created"].as_i64().unwrap_or(0),
            ))
        }
        None => {
            let id = uuid();
            let created = now_ms();
            let v = json!({
                "identity": id,
                "version": {"major": major, "minor": minor, "patch": patch,
                            "buildNumber": 0, "qualifier": ""},
                "created": created
            });
            store.put_json("configuration", "clusterId", &v)?;
            Ok((id, created))
        }
    }
}

/// The master's state: the catalog (over the store) and the configuration.
pub struct State {
    cfg: Config,
    pub(crate) cat: Catalog,
    cluster_id: String,
    cluster_created: i64,
}

impl State {
    /// Opens the store of `cfg.paths_local`, creating the cluster identity on a fresh store and
    /// refusing a store written by another version (Dremio's startup check).
    pub fn open(cfg: Config) -> Result<State> {
        let mut store = Store::open(&cfg.paths_local)?;
        let (cluster_id, cluster_created) = cluster_identity(&mut store, &cfg.version)?;
        let cat = Catalog::new(store, parse_version(&cfg.version)?);
        Ok(State {
            cfg,
            cat,
            cluster_id,
            cluster_created,
        })
    }

    fn store(&self) -> &Store {
        &self.cat.store
    }

    fn version(&self) -> (u64, u64, u64) {
        parse_version(&self.cfg.version).unwrap_or_default()
    }

    fn paths_local(&self) -> &Path {
        &self.cfg.paths_local
    }

    pub(crate) fn users(&self) -> Vec<Value> {
        self.store().values_json("userGroup")
    }

    fn user_by_name(&self, name: &str) -> Option<Value> {
        self.users()
            .into_iter()
            .find(|u| str_field(u, "userName") == Some(name))
    }

    /// Handles one request.
    pub fn handle(
        &mut self,
        method: &str,
        url: &str,
        auth: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let Some((r, methods)) = route(path) else {
            return Reply::error(404, "HTTP 404 Not Found");
        };
        if !methods.contains(&method) {
            return Reply::error(405, "HTTP 405 Method Not Allowed");
        }
        if r == Route::ServerStatus {
            return Reply {
                status: 200,
                body: "OK".into(),
                json: false,
            };
        }
        // Body: JSON only, well formed.
        let mut json_body = Value::Null;
        if method == "POST" || method == "PUT" {
            let is_json = content_type
                .map(|c| c.to_ascii_lowercase().starts_with("application/json"))
                .unwrap_or(false);
            if !is_json {
                return Reply::error(415, "HTTP 415 Unsupported Media Type");
            }
            match serde_json::from_slice::<Value>(body) {
                Ok(v) if v.is_object() => json_body = v,
                Ok(_) => return Reply::error(400, "Malformed JSON: expected a JSON object"),
                Err(e) => return Reply::error(400, &format!("Malformed JSON: {e}")),
            }
        }
        let no_user = self.store().table("userGroup").is_none_or(|t| t.is_empty());
        if r == Route::FirstUser {
            return self.first_user(auth, &json_body);
        }
        if no_user {
            return Reply::error(403, "No User Available");
        }
        if r == Route::Login {
            return self.login(&json_body);
        }
        let user = match self.authenticate(auth) {
            Ok(u) => u,
            Err(msg) => return Reply::error(401, &msg),
        };
        let admin = user["admin"].as_bool().unwrap_or(false);
        let res = match r {
            Route::Info => Ok(self.info()),
            Route::Backup if !admin => return Reply::error(403, "HTTP 403 Forbidden"),
            Route::Backup => self.backup(&json_body),
            Route::Users if !admin => return Reply::error(403, "HTTP 403 Forbidden"),
            Route::Users => self.create_user(&json_body),
            Route::UserById(id) if method == "PUT" => self.update_user(&user, &id, &json_body),
            Route::UserById(id) => Ok(match self.store().get_json("userGroup", &id) {
                Some(u) => Reply::ok(user_v3(&u)),
                None => Reply::error(404, &format!("User {id} not found")),
            }),
            Route::UserByName(n) => Ok(match self.user_by_name(&n) {
                Some(u) => Reply::ok(user_v3(&u)),
                None => Reply::error(404, &format!("User {n} not found")),
            }),
            // only administrators may list users (Dremio's RBAC)
            Route::UsersAll if !admin => return Reply::error(403, "HTTP 403 Forbidden"),
            Route::UsersAll => Ok(Reply::ok(json!({
                "users": self.users().iter().map(user_v2).collect::<Vec<_>>()
            }))),
            Route::Catalog if method == "GET" => Ok(self.cat.root()),
            Route::Catalog => self.cat.create(&json_body),
            Route::CatalogById(id) => match method {
                "GET" => Ok(self.cat.get_by_id(&id, query)),
                "POST" => self.cat.promote(&id, &json_body),
                "PUT" => self.cat.update(&id, &json_body),
                _ => self.cat.delete(&id, query),
            },
            Route::CatalogByPath(p) => Ok(self.cat.get_by_path(&p, query)),
            Route::Collab(id, c) if method == "GET" => Ok(self.cat.collab_get(c, &id)),
            Route::Collab(id, c) => self.cat.collab_set(c, &id, &json_body),
            Route::Reflections if method == "GET" => Ok(self.cat.reflection_list()),
            Route::Reflections => self.cat.reflection_create(&json_body),
            Route::ReflectionById(id) => match method {
                "GET" => Ok(self.cat.reflection_get(&id)),
                "PUT" => self.cat.reflection_update(&id, &json_body),
                _ => self.cat.reflection_delete(&id),
            },
            Route::DatasetReflections(id) => Ok(self.cat.dataset_reflections(&id)),
            Route::ServerStatus | Route::FirstUser | Route::Login => unreachable!(),
        };
        res.unwrap_or_else(|e| Reply::error(500, &format!("{e:#}")))
    }

    fn authenticate(&mut self, auth: Option<&str>) -> std::result::Result<Value, String> {
        let Some(h) = auth else {
            return Err("Missing Authorization header".into());
        };
        let token = h
            .strip_prefix("_dremio")
            .or_else(|| h.strip_prefix("Bearer "))
            .ok_or_else(|| "Invalid Authorization header".to_string())?
            .trim();
        let Some(t) = self.cat.store.get_json("tokens", token) else {
            return Err("Invalid token".into());
        };
        if t["expires"].as_i64().unwrap_or(0) <= now_ms() {
            let _ = self.cat.store.delete("tokens", token);
            return Err("Token expired".into());
        }
        let uid = str_field(&t, "userId").unwrap_or_default().to_string();
        self.cat
            .store
            .get_json("userGroup", &uid)
            .ok_or_else(|| "Invalid token".to_string())
    }

    pub(crate) fn new_user(
        &mut self,
        body: &Value,
        name_field: &str,
        admin: bool,
    ) -> Result<Reply> {
        let Some(name) = str_field(body, name_field).filter(|s| !s.trim().is_empty()) else {
            return Ok(Reply::error(400, &format!("Missing field {name_field}")));
        };
        let Some(password) = str_field(body, "password") else {
            return Ok(Reply::error(400, "Missing field password"));
        };
        if !password_ok(password) {
            return Ok(Reply::error(400, PASSWORD_RULE));
        }
        if self.user_by_name(name).is_some() {
            return Ok(Reply::error(409, &format!("User {name} already exists")));
        }
        let id = uuid();
        let salt = hex::encode(random_bytes::<8>());
        let user = json!({
            "id": id,
            "userName": name,
            "firstName": str_field(body, "firstName").unwrap_or(""),
            "lastName": str_field(body, "lastName").unwrap_or(""),
            "email": str_field(body, "email").unwrap_or(""),
            "createdAt": body.get("createdAt").and_then(|v| v.as_i64()).unwrap_or_else(now_ms),
            "admin": admin,
            "salt": salt,
            "passwordHash": hash_password(&salt, password),
            "tag": "0"
        });
        self.cat.store.put_json("userGroup", &id, &user)?;
        Ok(Reply::ok(user))
    }

    fn first_user(&mut self, auth: Option<&str>, body: &Value) -> Reply {
        if auth != Some("_dremionull") {
            return Reply::error(
                401,
                "Missing or invalid Authorization header: send _dremionull",
            );
        }
        if !self.users().is_empty() {
            return Reply::error(
                400,
                "First user can only be created when no user is already registered",
            );
        }
        match self.new_user(body, "userName", true) {
            Ok(r) if r.status == 200 => {
                let u: Value = serde_json::from_str(&r.body).unwrap_or_default();
                Reply::ok(user_v2(&u))
            }
            Ok(r) => r,
            Err(e) => Reply::error(500, &format!("{e:#}")),
        }
    }

    fn login(&mut self, body: &Value) -> Reply {
        let (Some(name), Some(password)) =
            (str_field(body, "userName"), str_field(body, "password"))
        else {
            return Reply::error(400, "Missing field userName or password");
        };
        let Some(u) = self.user_by_name(name) else {
            return Reply::error(401, "Login was unsuccessful");
        };
        let salt = str_field(&u, "salt").unwrap_or_default();
        if Some(hash_password(salt, password).as_str()) != str_field(&u, "passwordHash") {
            return Reply::error(401, "Login was unsuccessful");
        }
        let token = hex::encode(random_bytes::<20>());
        let now = now_ms();
        let expires = now + (self.cfg.token_ttl_secs as i64) * 1000;
        let t = json!({"userName": name, "userId": u["id"], "createdAt": now, "expires": expires});
        if let Err(e) = self.cat.store.put_json("tokens", &token, &t) {
            return Reply::error(500, &format!("{e:#}"));
        }
        Reply::ok(json!({
            "token": token,
            "userName": name,
            "firstName": u["firstName"],
            "lastName": u["lastName"],
            "email": u["email"],
            "userId": u["id"],
            "expires": expires,
            "admin": u["admin"],
            "clusterId": self.cluster_id,
            "clusterCreatedAt": self.cluster_created,
            "version": self.cfg.full_version(),
            "userCreatedAt": u["createdAt"],
            "permissions": {"canUploadProfiles": true, "canDownloadProfiles": true,
                            "canEmailForSupport": false, "canChatForSupport": false}
        }))
    }

    fn info(&self) -> Reply {
        let commit = self.cfg.build.rsplit('-').next().unwrap_or_default();
        let stamp = self.cfg.build.split('-').next().unwrap_or_default();
        let build_time = chrono::NaiveDateTime::parse_from_str(
            stamp.get(..14).unwrap_or_default(),
            "%Y%m%d%H%M%S",
        )
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(0);
        Reply::ok(json!({
            "version": self.cfg.full_version(),
            "buildTime": build_time,
            "commit": {
                "hash": commit,
                "builder": {"email": "dremio-sim@localhost"},
                "time": build_time,
                "message": "dremio-sim"
            },
            "clusterType": "OSS"
        }))
    }

    fn create_user(&mut self, body: &Value) -> Result<Reply> {
        if let Err(r) = fields::check(body, Kind::User, self.version()) {
            return Ok(r);
        }
        let r = self.new_user(body, "name", false)?;
        if r.status != 200 {
            return Ok(r);
        }
        let u: Value = serde_json::from_str(&r.body)?;
        Ok(Reply::ok(user_v3(&u)))
    }

    /// `PUT /api/v3/user/{id}` (an administrator, or the user itself): needs the current `tag`;
    /// the name is fixed; an optional `password` replaces the password; fields not sent are kept.
    fn update_user(&mut self, caller: &Value, id: &str, body: &Value) -> Result<Reply> {
        if let Err(r) = fields::check(body, Kind::User, self.version()) {
            return Ok(r);
        }
        if !caller["admin"].as_bool().unwrap_or(false) && str_field(caller, "id") != Some(id) {
            return Ok(Reply::error(403, "HTTP 403 Forbidden"));
        }
        let Some(mut u) = self.store().get_json("userGroup", id) else {
            return Ok(Reply::error(404, &format!("User {id} not found")));
        };
        if let Some(bid) = str_field(body, "id")
            && bid != id
        {
            return Ok(Reply::error(
                400,
                &format!("Id in the body [{bid}] differs from the id in the URL [{id}]"),
            ));
        }
        let current = str_field(&u, "tag").unwrap_or_default().to_string();
        if str_field(body, "tag") != Some(current.as_str()) {
            return Ok(Reply::error(
                409,
                &format!(
                    "Tag [{}] does not match the current tag [{current}] of user [{id}]",
                    str_field(body, "tag").unwrap_or("")
                ),
            ));
        }
        if let Some(n) = body.get("name").filter(|n| !n.is_null())
            && n.as_str() != str_field(&u, "userName")
        {
            return Ok(Reply::error(400, "Field name cannot be changed"));
        }
        for k in ["firstName", "lastName", "email"] {
            match body.get(k) {
                None | Some(Value::Null) => {}
                Some(Value::String(v)) => u[k] = json!(v),
                Some(_) => return Ok(Reply::error(400, &format!("Field {k} must be a string"))),
            }
        }
        match body.get("password") {
            None | Some(Value::Null) => {}
            Some(Value::String(p)) if password_ok(p) => {
                let salt = hex::encode(random_bytes::<8>());
                u["passwordHash"] = json!(hash_password(&salt, p));
                u["salt"] = json!(salt);
            }
            Some(_) => return Ok(Reply::error(400, PASSWORD_RULE)),
        }
        u["tag"] = json!(hex::encode(random_bytes::<8>()));
        self.cat.store.put_json("userGroup", id, &u)?;
        Ok(Reply::ok(user_v3(&u)))
    }

    fn backup(&mut self, body: &Value) -> Result<Reply> {
        let Some(dir) = str_field(body, "backupDir") else {
            return Ok(Reply::error(400, "Missing field backupDir"));
        };
        let Some(path) = dir.strip_prefix("file://") else {
            return Ok(Reply::error(
                400,
                &format!(
                    "Unsupported backup directory {dir}: the simulator only writes file:/// URIs"
                ),
            ));
        };
        let flag = |k: &str| body.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        match str_field(body, "compression").unwrap_or("") {
            "" | "none" | "NONE" => {}
            "snappy" | "lz4" | "SNAPPY" | "LZ4" => {
                return Ok(Reply::error(
                    400,
                    "Compressed backups are not supported by the simulator",
                ));
            }
            c => return Ok(Reply::error(400, &format!("Unknown compression {c}"))),
        }
        let fault = match std::env::var(FAULT_ENV) {
            Ok(f) if !f.is_empty() => match parse_fault(&f) {
                Ok(f) => Some(f),
                Err(e) => return Ok(Reply::error(500, &format!("Backup failed: {e:#}"))),
            },
            _ => None,
        };
        let opts = BackupOptions {
            binary: flag("binary"),
            include_profiles: flag("includeProfiles"),
            fault,
        };
        let pl = self.paths_local().to_path_buf();
        match write_backup(self.store(), &pl, Path::new(path), &opts) {
            Ok(stats) => Ok(Reply::ok(serde_json::to_value(stats)?)),
            Err(e) => Ok(Reply::error(500, &format!("Backup failed: {e:#}"))),
        }
    }
}

fn user_v3(u: &Value) -> Value {
    json!({
        "id": u["id"], "name": u["userName"], "firstName": u["firstName"],
        "lastName": u["lastName"], "email": u["email"], "tag": u["tag"], "active": true
    })
}

/// A user as the v2 API answers it (Dremio's `UserUI`): names and email nested in `userConfig`.
fn user_v2(u: &Value) -> Value {
    json!({
        "id": u["id"], "name": u["userName"], "userName": u["userName"],
        "userConfig": {
            "uid": {"id": u["id"]}, "userName": u["userName"], "firstName": u["firstName"],
            "lastName": u["lastName"], "email": u["email"], "createdAt": u["createdAt"],
            "version": u["tag"]
        }
    })
}
