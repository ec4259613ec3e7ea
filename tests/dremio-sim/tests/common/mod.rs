//! Helpers for the simulator's own tests: start `dremio-sim`, wait on its stdout lines.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use dremio_sim::client::{Response, request};
use serde_json::{Value, json};

pub const SIM: &str = env!("CARGO_BIN_EXE_dremio-sim");
pub const ADMIN: &str = env!("CARGO_BIN_EXE_dremio-admin");
pub const PASSWORD: &str = "dremio123";

/// A running simulator, killed when dropped.
pub struct Sim {
    pub child: Child,
    lines: Receiver<String>,
    pub port: u16,
}

impl Sim {
    /// Starts a sim and waits (bounded) for its active line.
    pub fn start(paths_local: &Path, extra: &[&str]) -> Sim {
        let mut s = Sim::spawn(paths_local, 0, extra);
        s.wait_active(Duration::from_secs(30));
        s
    }

    /// Starts a sim with extra environment variables and waits for its active line.
    pub fn start_env(paths_local: &Path, extra: &[&str], env: &[(&str, &str)]) -> Sim {
        let mut s = Sim::spawn_env(paths_local, 0, extra, env);
        s.wait_active(Duration::from_secs(30));
        s
    }

    /// Starts a sim without waiting.
    pub fn spawn(paths_local: &Path, port: u16, extra: &[&str]) -> Sim {
        Sim::spawn_env(paths_local, port, extra, &[])
    }

    /// Starts a sim with extra environment variables, without waiting.
    pub fn spawn_env(paths_local: &Path, port: u16, extra: &[&str], env: &[(&str, &str)]) -> Sim {
        let mut child = Command::new(SIM)
            .envs(env.iter().copied())
            .arg("--paths-local")
            .arg(paths_local)
            .arg("--port")
            .arg(port.to_string())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn dremio-sim");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Sim {
            child,
            lines: rx,
            port,
        }
    }

    /// Next stdout line starting with `prefix`, within `timeout`.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => panic!("no line {prefix:?} within {timeout:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("dremio-sim exited before printing {prefix:?}")
                }
            }
        }
    }

    pub fn wait_active(&mut self, timeout: Duration) {
        let l = self.wait_line("dremio-sim: active on 127.0.0.1:", timeout);
        self.port = l.rsplit(':').next().unwrap().parse().unwrap();
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    pub fn req(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&str>,
    ) -> Response {
        let h: Vec<(&str, &str)> = auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
        request(&self.addr(), method, path, &h, body).expect("request")
    }

    /// Creates the first admin user `admin`.
    pub fn first_user(&self) -> Response {
        let body = json!({"userName": "admin", "firstName": "A", "lastName": "D",
            "email": "a@example.com", "createdAt": 1700000000000i64, "password": PASSWORD});
        self.req(
            "PUT",
            "/apiv2/bootstrap/firstuser",
            Some("_dremionull"),
            Some(&body.to_string()),
        )
    }

    /// Logs in and returns the `_dremio<token>` header value.
    pub fn login(&self, user: &str, password: &str) -> String {
        let body = json!({"userName": user, "password": password}).to_string();
        let r = self.req("POST", "/apiv2/login", None, Some(&body));
        assert_eq!(r.status, 200, "login: {}", r.body);
        format!("_dremio{}", r.json()["token"].as_str().unwrap())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A sim with its admin logged in.
pub struct Api {
    pub sim: Sim,
    pub auth: String,
}

impl Api {
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Api {
        Api::start_args(dir, &[], env)
    }

    /// Starts a sim with extra arguments, creating the admin unless the store has users.
    pub fn start_args(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Api {
        let sim = Sim::start_env(dir, extra, env);
        // a restored store already has its admin: then this is a 400
        let _ = sim.first_user();
        let auth = sim.login("admin", PASSWORD);
        Api { sim, auth }
    }
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        let b = body.map(|b| b.to_string());
        self.sim.req(method, path, Some(&self.auth), b.as_deref())
    }
    pub fn get(&self, path: &str) -> Response {
        self.call("GET", path, None)
    }
    pub fn post(&self, path: &str, body: Value) -> Response {
        self.call("POST", path, Some(body))
    }
    pub fn put(&self, path: &str, body: Value) -> Response {
        self.call("PUT", path, Some(body))
    }
    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self.call(method, path, body);
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
        r.json()
    }
    pub fn create(&self, body: Value) -> Value {
        self.ok("POST", "/api/v3/catalog", Some(body))
    }
    pub fn space(&self, name: &str) -> Value {
        self.create(json!({"entityType": "space", "name": name}))
    }
    pub fn folder(&self, path: &[&str]) -> Value {
        self.create(json!({"entityType": "folder", "path": path}))
    }
    pub fn view(&self, path: &[&str], sql: &str, ctx: &[&str]) -> Response {
        self.post(
            "/api/v3/catalog",
            json!({"entityType": "dataset", "type": "VIRTUAL_DATASET", "path": path,
                   "sql": sql, "sqlContext": ctx}),
        )
    }
    /// Promotes `dremio:/<path>` with the body real Dremio expects.
    pub fn promote(&self, path: &[&str]) -> Response {
        let fid = format!("dremio:/{}", path.join("/"));
        self.post(
            &format!("/api/v3/catalog/{}", enc(&fid)),
            json!({"entityType": "dataset", "id": fid, "type": "PHYSICAL_DATASET",
                   "path": path, "format": {"type": "Parquet"}}),
        )
    }
    pub fn err(r: &Response) -> String {
        r.json()["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A promoted dataset (asserting success).
pub fn pds(api: &Api, path: &[&str]) -> Value {
    let r = api.promote(path);
    assert_eq!(r.status, 200, "promote {path:?}: {}", r.body);
    r.json()
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

pub fn tag(v: &Value) -> String {
    v["tag"].as_str().unwrap().to_string()
}

/// Percent-encodes a URL path segment (everything but unreserved characters).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
