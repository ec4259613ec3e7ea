//! Helpers for the integration tests: real RocksDB fixtures (scripts/gen_fixture.py), a process that
//! holds a store's lock like a live coordinator, locations on local disk or the S3 server that
//! scripts/test.sh started, and tree snapshots to prove that a refusal changed nothing.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;

use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

pub mod druid;
pub mod format2;
pub mod metastore;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python with rocksdict: $LIFEBOAT_TEST_PYTHON, else the project's .venv (scripts/setup-venv.sh).
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("LIFEBOAT_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with rocksdict: run the tests through scripts/test.sh (or scripts/setup-venv.sh first)"
    );
    venv
}

/// A generated Dremio installation with a real RocksDB store.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub paths_local: PathBuf,
    pub db: PathBuf,
    pub uploads: PathBuf,
    pub security: PathBuf,
    pub version: String,
}

pub fn fixture(size_mib: u64, small_files: u64) -> Fixture {
    let dir = tempfile::Builder::new()
        .prefix("lifeboat-it-")
        .tempdir()
        .unwrap();
    let out = Command::new(python())
        .arg(repo_root().join("scripts/gen_fixture.py"))
        .args([
            "--out",
            dir.path().to_str().unwrap(),
            "--size-mib",
            &size_mib.to_string(),
            "--small-files",
            &small_files.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gen_fixture failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("gen_fixture prints JSON");
    let path = |k: &str| PathBuf::from(summary[k].as_str().unwrap());
    Fixture {
        home: path("home"),
        paths_local: path("paths_local"),
        db: path("db"),
        // The folder Dremio keeps uploaded files in: <paths.uploads>/_uploads.
        uploads: {
            let u = path("uploads");
            if u.ends_with("_uploads") {
                u
            } else {
                u.join("_uploads")
            }
        },
        security: path("security"),
        version: summary["version"].as_str().unwrap().to_string(),
        dir,
    }
}

/// Every column family, key and value digest of a RocksDB store, in order.
pub fn rocks_dump(db_catalog: &Path) -> String {
    let out = Command::new(python())
        .arg(repo_root().join("scripts/rocks_dump.py"))
        .arg(db_catalog)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rocks_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A process holding the RocksDB store open read-write, as a live coordinator does.
pub struct LockHolder {
    child: Child,
    stdin: Option<ChildStdin>,
    pub pid: u32,
}

pub fn hold_lock(db_catalog: &Path) -> LockHolder {
    let mut child = Command::new(python())
        .arg(repo_root().join("scripts/hold_lock.py"))
        .arg(db_catalog)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let line = first_line(&mut child);
    assert_eq!(line.trim(), "ready", "hold_lock did not open the store");
    let pid = child.id();
    let stdin = child.stdin.take();
    LockHolder { child, stdin, pid }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The simulator's first user (created by `dremio-sim seed` and the tests' setup).
pub const ADMIN: (&str, &str) = ("dremio", "dremio123");

/// Runs the lifeboat binary with `args` and extra environment.
pub fn lifeboat(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    cmd.args(args)
        .env("LIFEBOAT_PROGRESS", "none")
        .env("LIFEBOAT_MAX_RETRIES", "2")
        .env("LIFEBOAT_RETRY_TIMEOUT", "10s")
        // A killed run's lock is taken over after this, so tests that kill runs stay short.
        .env("LIFEBOAT_LOCK_TTL", "15s");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Like [`lifeboat`], with owned environment pairs.
pub fn lifeboat_env(args: &[&str], env: &[(String, String)]) -> Output {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    lifeboat(args, &pairs)
}

/// Starts lifeboat with plain progress lines and returns once its stderr printed a line containing
/// `marker` (e.g. "backup: progress": the upload is under way). The reader is left after that line.
// The child is handed to the caller, who waits for it.
#[allow(clippy::zombie_processes)]
pub fn start_until(
    args: &[&str],
    env: &[(String, String)],
    marker: &str,
) -> (Child, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("LIFEBOAT_PROGRESS", "lines")
        .env("LIFEBOAT_LOCK_TTL", "15s")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            let status = child.wait();
            panic!("lifeboat ended ({status:?}) before printing {marker:?}");
        }
        if line.contains(marker) {
            return (child, reader);
        }
    }
}

/// A slow backup (one thread, zstd level 9), for tests that interrupt it. Format 1: these tests
/// check what a cut single-object upload leaves (torture's `backup-f2` kills format 2's).
pub fn slow_backup_args<'a>(home: &'a str, to: &'a str) -> Vec<&'a str> {
    vec![
        "backup",
        "--format",
        "1",
        "--dremio-home",
        home,
        "--to",
        to,
        "--threads",
        "1",
        "--level",
        "9",
    ]
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts success and returns stdout parsed as JSON (commands run with --json).
#[track_caller]
pub fn ok_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "lifeboat failed ({:?}): {}\n{}",
        out.status.code(),
        stderr(out),
        stdout(out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(out)))
}

/// Asserts the exit code and that stderr contains every fragment.
#[track_caller]
pub fn fails_with(out: &Output, code: i32, fragments: &[&str]) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "expected exit {code}; stderr: {err}\nstdout: {}",
        stdout(out)
    );
    for f in fragments {
        assert!(err.contains(f), "stderr lacks {f:?}: {err}");
    }
}

/// Which store a location test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Local,
    /// The first SeaweedFS ("us"), through the standard AWS_* environment.
    S3,
    /// The second SeaweedFS ("eu"): its own endpoint and credentials, never in the standard env.
    S3Eu,
    /// Azurite, through AZURITE_BLOB_STORAGE_URL and the AZURE_* environment.
    Azure,
}

/// A fresh, empty location for one test.
pub struct TestLocation {
    pub url: String,
    pub kind: StoreKind,
    _dir: Option<tempfile::TempDir>,
}

/// The second S3 server's endpoint and credentials (scripts/test.sh exports them under these names).
pub struct EuServer {
    pub endpoint: String,
    pub key: String,
    pub secret: String,
}

pub fn eu_server() -> EuServer {
    let get = |k: &str| {
        std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run the tests through scripts/test.sh (it starts a second SeaweedFS)"))
    };
    EuServer {
        endpoint: get("LIFEBOAT_TEST_S3_EU_ENDPOINT"),
        key: get("LIFEBOAT_TEST_S3_EU_KEY"),
        secret: get("LIFEBOAT_TEST_S3_EU_SECRET"),
    }
}

/// Environment for a lifeboat process whose config names the eu location's credential variables.
pub fn eu_env() -> Vec<(String, String)> {
    let eu = eu_server();
    vec![("EU_KEY".into(), eu.key), ("EU_SECRET".into(), eu.secret)]
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub fn s3_bucket() -> String {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "S3 tests need the SeaweedFS server that scripts/test.sh starts (AWS_ENDPOINT_URL is not set)"
    );
    std::env::var("LIFEBOAT_TEST_S3_BUCKET").unwrap_or_else(|_| "lifeboat-test".into())
}

fn rand_u16() -> u16 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).unwrap();
    u16::from_le_bytes(b)
}

fn unique(name: &str) -> String {
    let mut rnd = [0u8; 4];
    getrandom::fill(&mut rnd).unwrap();
    format!("{name}-{}", hex::encode(rnd))
}

impl TestLocation {
    pub fn new(kind: StoreKind, name: &str) -> TestLocation {
        match kind {
            StoreKind::Local => {
                let dir = tempfile::Builder::new()
                    .prefix("lifeboat-loc-")
                    .tempdir()
                    .unwrap();
                // An operator's backup folder exists (lifeboat refuses to create one unasked).
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(dir.path().join("repo"))
                    .unwrap();
                TestLocation {
                    url: dir.path().join("repo").display().to_string(),
                    kind,
                    _dir: Some(dir),
                }
            }
            StoreKind::S3 | StoreKind::S3Eu => TestLocation {
                url: format!("s3://{}/{}", s3_bucket(), unique(name)),
                kind,
                _dir: None,
            },
            StoreKind::Azure => {
                let container = std::env::var("LIFEBOAT_TEST_AZURE_CONTAINER")
                    .expect("Azure tests need the Azurite server that scripts/test.sh starts");
                TestLocation {
                    url: format!("az://{container}/{}", unique(name)),
                    kind,
                    _dir: None,
                }
            }
        }
    }

    /// The TOML table of this location for a config file (`[locations.NAME]` body).
    pub fn toml(&self) -> String {
        match self.kind {
            StoreKind::S3Eu => {
                let eu = eu_server();
                format!(
                    "url = \"{}\"\nendpoint = \"{}\"\nallow_http = true\naccess_key_id_env = \"EU_KEY\"\nsecret_access_key_env = \"EU_SECRET\"\n",
                    self.url, eu.endpoint
                )
            }
            _ => format!("url = \"{}\"\n", self.url),
        }
    }

    fn open(&self) -> lifeboat::store::Location {
        let mut spec = lifeboat::store::location::LocationSpec::from_url(&self.url);
        if self.kind == StoreKind::S3Eu {
            let eu = eu_server();
            spec.endpoint = Some(eu.endpoint);
            spec.allow_http = Some(true);
            spec.access_key_id = Some(lifeboat::secrets::Secret(eu.key));
            spec.secret_access_key = Some(lifeboat::secrets::Secret(eu.secret));
        }
        lifeboat::store::Location::open_spec(&spec, lifeboat::store::location::Access::Write)
            .unwrap()
    }

    fn key(&self, rel: &str) -> ObjPath {
        let loc = self.open();
        rel.split('/')
            .fold(loc.prefix.clone(), |p, part| p.join(part))
    }

    /// Every key under the location, relative to it, sorted.
    pub fn keys(&self) -> Vec<String> {
        let loc = self.open();
        let prefix = loc.prefix.clone();
        runtime().block_on(async move {
            use futures::TryStreamExt;
            let mut keys: Vec<String> = loc
                .store
                .list(Some(&prefix))
                .map_ok(|m| {
                    m.location
                        .as_ref()
                        .strip_prefix(prefix.as_ref())
                        .unwrap_or(m.location.as_ref())
                        .trim_start_matches('/')
                        .to_string()
                })
                .try_collect()
                .await
                .unwrap_or_default();
            keys.sort();
            keys
        })
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        let (loc, key) = (self.open(), self.key(rel));
        runtime().block_on(async move {
            loc.store
                .get(&key)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .to_vec()
        })
    }

    pub fn write(&self, rel: &str, data: Vec<u8>) {
        let (loc, key) = (self.open(), self.key(rel));
        runtime()
            .block_on(async move { loc.store.put(&key, PutPayload::from(data)).await.unwrap() });
    }

    /// Makes a backup that looks as if it was taken at `when`, from the objects of backup `real`.
    pub fn fabricate(
        &self,
        cluster: &str,
        real: &str,
        when: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let id = format!("{}-{:04x}", when.format("%Y%m%dT%H%M%SZ"), rand_u16());
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&self.read(&format!("{cluster}/{real}/manifest.json"))).unwrap();
        manifest["id"] = id.clone().into();
        manifest["created_at"] = when.to_rfc3339().into();
        manifest["finished_at"] = when.to_rfc3339().into();
        self.write(
            &format!("{cluster}/{id}/data.tar.zst"),
            self.read(&format!("{cluster}/{real}/data.tar.zst")),
        );
        self.write(
            &format!("{cluster}/{id}/manifest.json"),
            serde_json::to_vec(&manifest).unwrap(),
        );
        id
    }

    pub fn delete(&self, rel: &str) {
        let (loc, key) = (self.open(), self.key(rel));
        runtime().block_on(async move { loc.store.delete(&key).await.unwrap() });
    }
}

/// What a tree holds: path -> (kind, mode, size, sha256). Two equal snapshots mean nothing changed.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if !root.exists() {
        return out;
    }
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .display()
            .to_string();
        let digest = if meta.is_file() {
            hex::encode(Sha256::digest(std::fs::read(entry.path()).unwrap()))
        } else {
            String::new()
        };
        out.insert(
            rel,
            format!(
                "{:?} {:o} {} {digest}",
                meta.file_type(),
                meta.mode(),
                meta.len()
            ),
        );
    }
    out
}

/// The names directly inside a folder.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Writes a file, creating its folders.
pub fn put_file(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(path)
        .unwrap()
        .write_all(data)
        .unwrap();
}

/// Asserts two snapshots are equal, naming the first differences instead of dumping both trees.
#[track_caller]
pub fn assert_same(left: &BTreeMap<String, String>, right: &BTreeMap<String, String>, what: &str) {
    let mut diffs = Vec::new();
    for (k, v) in left {
        match right.get(k) {
            None => diffs.push(format!("only left: {k}")),
            Some(w) if w != v => diffs.push(format!("differs: {k}: {v} vs {w}")),
            _ => {}
        }
    }
    for k in right.keys().filter(|k| !left.contains_key(*k)) {
        diffs.push(format!("only right: {k}"));
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} difference(s):\n{}",
        diffs.len(),
        diffs
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ----- the Dremio simulator (tests/dremio-sim) -----

/// A built binary of the simulator crate (scripts/test.sh builds it; `cargo build -p dremio-sim`).
pub fn sim_bin(name: &str) -> PathBuf {
    let dir = std::env::var("LIFEBOAT_TEST_SIM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target/debug"));
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is not built: run the tests through scripts/test.sh (or `cargo build -p dremio-sim`)",
        bin.display()
    );
    bin
}

/// A variable scripts/test.sh exports; its absence is a failure, never a skip.
pub fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests through scripts/test.sh"))
}

/// A current-thread Tokio runtime for a test's own async calls (ZooKeeper, databases).
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A fresh chroot on the ZooKeeper quorum `servers` (`/<prefix>-<pid>-<port>`), as a connect
/// string: tests sharing a quorum then never see each other's latches.
pub fn zk_chroot(servers: &str, prefix: &str) -> String {
    let name = format!("/{prefix}-{}-{}", std::process::id(), free_port());
    block(async {
        let c = zookeeper_client::Client::connect(servers).await.unwrap();
        let opts = zookeeper_client::CreateMode::Persistent
            .with_acls(zookeeper_client::Acls::anyone_all());
        c.create(&name, &[], &opts).await.unwrap();
    });
    format!("{servers}{name}")
}

/// scripts/zookeeper.sh ARGS, which must succeed.
pub fn zk_script(args: &[&str]) {
    let out = Command::new(repo_root().join("scripts/zookeeper.sh"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zookeeper.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first line a child prints on its piped stdout: the simulators and helpers print one once
/// ready, so a test that has read it needs no other wait.
pub fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `dremio-sim`; killed (by its own pid) when dropped.
pub struct Sim {
    child: Child,
    pub url: String,
    active: std::sync::mpsc::Receiver<()>,
}

impl Sim {
    /// Starts a coordinator on `paths_local`; returns once it says it is active or standby.
    pub fn start(paths_local: &Path, version: &str) -> Sim {
        Sim::start_with(paths_local, version, &[], &[])
    }

    /// Like [`Sim::start`], with extra flags (e.g. `--token-ttl 0`) and environment (e.g. a fault).
    pub fn start_with(
        paths_local: &Path,
        version: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Sim {
        let port = free_port();
        let mut child = Command::new(sim_bin("dremio-sim"))
            .args([
                "--paths-local",
                paths_local.to_str().unwrap(),
                "--port",
                &port.to_string(),
                "--version",
                version,
            ])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, active) = std::sync::mpsc::channel();
        let (first_tx, first) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("active on") {
                    let _ = tx.send(());
                }
                let _ = first_tx.send(line);
            }
        });
        let line = first
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("dremio-sim says whether it is active or standby");
        assert!(
            line.contains("active") || line.contains("standby"),
            "unexpected first line: {line}"
        );
        Sim {
            child,
            url: format!("http://127.0.0.1:{port}"),
            active,
        }
    }

    /// Waits (bounded) until this coordinator has taken over.
    pub fn wait_active(&self) {
        self.active
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the standby takes over");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process (like a crashed coordinator) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.1 request over a plain TCP connection: (status, body).
pub fn http(
    method: &str,
    url: &str,
    auth: Option<&str>,
    body: Option<&serde_json::Value>,
) -> (u16, String) {
    use std::io::Read;
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        payload.len()
    );
    if body.is_some() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&payload);
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n.min(after.len())]);
        rest = after.get(n + 2..).unwrap_or("");
    }
    out
}

/// Creates the first administrator of a fresh simulator, then logs in: returns the auth header.
pub fn first_admin(url: &str, user: &str, password: &str) -> String {
    let body = serde_json::json!({"userName": user, "firstName": "A", "lastName": "Dmin", "email": "a@example.com", "createdAt": 0, "password": password});
    let (status, text) = http(
        "PUT",
        &format!("{url}/apiv2/bootstrap/firstuser"),
        Some("_dremionull"),
        Some(&body),
    );
    assert!(status < 300, "firstuser: {status} {text}");
    login(url, user, password)
}

pub fn login(url: &str, user: &str, password: &str) -> String {
    let (status, text) = http(
        "POST",
        &format!("{url}/apiv2/login"),
        None,
        Some(&serde_json::json!({"userName": user, "password": password})),
    );
    assert_eq!(status, 200, "login: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    format!("_dremio{}", v["token"].as_str().unwrap())
}

/// `chattr +i`: the kernel refuses to rename the folder (even for root), while what lives in its
/// subfolders can still be changed — the move-aside fails, and nothing else stops a careless undo.
pub struct Immutable(PathBuf);

impl Immutable {
    pub fn set(dir: &Path) -> Immutable {
        let out = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "chattr +i: {}", stderr(&out));
        Immutable(dir.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

// ----- flaky storage: the fault-injecting proxy (tests/faultproxy) in front of a real server -----

/// A fault-injecting proxy in front of the real server of a store kind (SeaweedFS or Azurite); a
/// lifeboat run given [`Proxied::env`] talks to the server only through it.
pub struct Proxied {
    pub proxy: faultproxy::Proxy,
    pub kind: StoreKind,
}

impl Proxied {
    pub fn start(kind: StoreKind) -> Proxied {
        let upstream = match kind {
            StoreKind::S3 => {
                s3_bucket();
                std::env::var("AWS_ENDPOINT_URL").unwrap()
            }
            StoreKind::Azure => std::env::var("AZURITE_BLOB_STORAGE_URL")
                .expect("Azure tests need the Azurite server that scripts/test.sh starts"),
            other => panic!("no proxy for {other:?} locations"),
        };
        Proxied {
            proxy: faultproxy::Proxy::start(&upstream).unwrap(),
            kind,
        }
    }

    /// The environment that points lifeboat at the proxy instead of the server.
    pub fn env(&self) -> Vec<(String, String)> {
        let var = match self.kind {
            StoreKind::Azure => "AZURITE_BLOB_STORAGE_URL",
            _ => "AWS_ENDPOINT_URL",
        };
        vec![(var.to_string(), self.proxy.url())]
    }
}

/// Runs lifeboat like [`lifeboat_env`], but gives up (and kills it) after `limit`: a run that hangs
/// fails its test instead of stalling the suite.
pub fn lifeboat_within(
    args: &[&str],
    env: &[(String, String)],
    limit: std::time::Duration,
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    cmd.args(args)
        .env("LIFEBOAT_PROGRESS", "none")
        .env("LIFEBOAT_LOCK_TTL", "15s")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        // Reaped at the last moment: its pid is no longer ours to signal.
        Err(_) if rx.try_recv().is_ok() => panic!("lifeboat {args:?} finished too late"),
        Err(_) => {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            panic!("lifeboat {args:?} did not finish within {limit:?}");
        }
    }
}

// ----- DR: coordinators run by an operator's start and stop commands -----

/// Whether `pid` is a live process: a zombie (ended, not yet reaped by whoever inherited it)
/// counts as gone.
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S ...`: the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Reads a pid a process wrote into `file` (`echo $$ > file`).
pub fn read_pid(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// SIGKILL to one pid (never by name).
pub fn kill_pid(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// A `dremio-sim` that a standby's `start` and `stop` commands run, as an operator's service
/// unit would: `start.sh PATHS_LOCAL PORT` launches it detached (its own session, output to
/// `sim.log`) and returns; the simulator writes its own pid to `pid`; `stop.sh` sends SIGTERM
/// and returns once the process is gone. Dropping this kills the recorded pid.
pub struct ScriptedSim {
    pub dir: PathBuf,
    pub pidfile: PathBuf,
    /// The config's `start` (with `{paths_local}` and `{port}` for lifeboat to fill in).
    pub start: String,
    /// The config's `stop`.
    pub stop: String,
}

impl ScriptedSim {
    pub fn new(dir: &Path, version: &str) -> ScriptedSim {
        std::fs::create_dir_all(dir).unwrap();
        let pidfile = dir.join("pid");
        let sim = sim_bin("dremio-sim");
        let start = dir.join("start.sh");
        // The inner sh writes its own pid, then becomes the simulator: the pid is the server's
        // whether or not setsid forks.
        std::fs::write(
            &start,
            format!(
                r#"#!/bin/sh
# start.sh PATHS_LOCAL PORT: what `systemctl start dremio` does, for the simulator.
set -eu
dir=$(dirname "$0")
setsid sh -c 'echo $$ > "$0"; exec "$@"' "$dir/pid" '{sim}' --paths-local "$1" --port "$2" --version '{version}' </dev/null >>"$dir/sim.log" 2>&1 &
exit 0
"#,
                sim = sim.display()
            ),
        )
        .unwrap();
        let stop = dir.join("stop.sh");
        std::fs::write(
            &stop,
            r#"#!/bin/sh
# stop.sh: SIGTERM, then wait (bounded) until the process is gone, as `systemctl stop` does.
dir=$(dirname "$0")
[ -s "$dir/pid" ] || exit 0
pid=$(cat "$dir/pid")
gone() { [ ! -e "/proc/$pid" ] || sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | grep -q '^[ZX]'; }
kill -TERM "$pid" 2>/dev/null || true
i=0
until gone; do
    i=$((i + 1))
    if [ "$i" -ge 300 ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    if [ "$i" -ge 600 ]; then echo "stop.sh: $pid does not end" >&2; exit 1; fi
    sleep 0.1
done
rm -f "$dir/pid"
"#,
        )
        .unwrap();
        for f in [&start, &stop] {
            std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        ScriptedSim {
            dir: dir.to_path_buf(),
            pidfile,
            start: format!("'{}' {{paths_local}} {{port}}", start.display()),
            stop: format!("'{}'", stop.display()),
        }
    }

    /// The running simulator's pid, if one runs.
    pub fn pid(&self) -> Option<i32> {
        read_pid(&self.pidfile).filter(|p| pid_alive(*p))
    }

    /// The end of the simulator's log, for failure messages.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("sim.log")).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        text.get(start..).unwrap_or_default().to_string()
    }
}

impl Drop for ScriptedSim {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            kill_pid(pid);
        }
    }
}

/// A process that wrote its pid into a file (`sh -c 'echo $$ > FILE; exec ...'`): killed by that
/// pid when dropped, if it still runs.
pub struct PidGuard(pub PathBuf);

impl Drop for PidGuard {
    fn drop(&mut self) {
        if let Some(pid) = read_pid(&self.0).filter(|p| pid_alive(*p)) {
            kill_pid(pid);
        }
    }
}

/// Holds an exclusive `flock` on `path` (created if missing) until dropped, as a running
/// `standby refresh` holds its standby's lock.
pub struct Flocked(std::fs::File);

pub fn flock(path: &Path) -> Flocked {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .expect("the lock is free");
    Flocked(file)
}

/// `dremio-sim make-home`: a DREMIO_HOME at `root/name` (with bin/dremio-admin and jars of
/// `version`) whose dremio.conf says paths.local is `local`.
pub fn sim_home(root: &Path, name: &str, local: &Path, version: &str) -> PathBuf {
    let home = root.join(name);
    let out = Command::new(sim_bin("dremio-sim"))
        .args([
            "make-home",
            "--home",
            home.to_str().unwrap(),
            "--paths-local",
            local.to_str().unwrap(),
            "--version",
            version,
        ])
        .args(["--admin-bin", sim_bin("dremio-admin").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make-home: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    home
}
