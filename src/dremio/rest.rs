//! Dremio's REST API as lifeboat uses it: finding the active coordinator of an HA group, logging in,
//! reading the version, and asking the master for a logical backup (what `dremio-admin backup` does).
//! Credentials come from the environment or files, never from argv.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::DremioError;
use super::version::DremioVersion;
use crate::secrets::{self, Secret};

/// How lifeboat authenticates to Dremio.
#[derive(Debug, Clone)]
pub enum Credentials {
    Password {
        user: String,
        password: Secret,
    },
    /// A personal access token (sent as `Bearer`).
    Token(Secret),
}

impl Credentials {
    /// `LIFEBOAT_DREMIO_TOKEN` (or `_TOKEN_FILE`), else `LIFEBOAT_DREMIO_USER` with `LIFEBOAT_DREMIO_PASSWORD`
    /// (or `_PASSWORD_FILE`).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Credentials, DremioError> {
        if let Some(token) = secret(env, "LIFEBOAT_DREMIO_TOKEN")? {
            return Ok(Credentials::Token(token));
        }
        let user = env("LIFEBOAT_DREMIO_USER");
        let password = secret(env, "LIFEBOAT_DREMIO_PASSWORD")?;
        match (user, password) {
            (Some(user), Some(password)) => Ok(Credentials::Password { user, password }),
            _ => Err(DremioError::NoCredentials),
        }
    }
}

/// `NAME` from the environment, or the trimmed contents of the file `NAME_FILE` names.
fn secret(env: secrets::Env<'_>, name: &str) -> Result<Option<Secret>, DremioError> {
    secrets::from_var_or_file(env, name)
        .map_err(|(path, source)| DremioError::Read { path, source })
}

/// TLS settings for coordinators with private certificates.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (explicit opt-in; says so in the output).
    pub insecure: bool,
}

/// A logged-in connection to the active coordinator.
pub struct Coordinator {
    client: reqwest::Client,
    pub base: String,
    auth: Secret,
    notify: Notify,
}

/// Where retries are reported (the command passes its progress reporter's `note`).
pub type Notify = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// Transient failures (connection refused or reset, timeouts, 429, 502-504) of calls without side
/// effects are retried this many times, with jittered exponential backoff.
const RETRIES: u32 = 3;
/// A throttling server (429) says to come back later, not that it is failing: more patience.
const THROTTLED_RETRIES: u32 = 8;
/// The longest pause between two attempts (also caps a server's Retry-After).
const MAX_PAUSE: Duration = Duration::from_secs(10);

fn transient_status(code: u16) -> bool {
    matches!(code, 429 | 502 | 503 | 504)
}

async fn backoff(attempt: u32, at_least: Duration, what: &str, why: &str, notify: &Notify) {
    let mut jitter = [0u8; 1];
    let _ = getrandom::fill(&mut jitter);
    let pause = Duration::from_millis(250 * (1 << attempt.min(6)) + u64::from(jitter[0]))
        .max(at_least)
        .min(MAX_PAUSE);
    notify(&format!(
        "retrying {what} in {} ms ({why})",
        pause.as_millis()
    ));
    tokio::time::sleep(pause).await;
}

/// What `POST /apiv2/backup` answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupReply {
    pub backup_path: String,
    pub tables: u64,
    pub files: u64,
}

/// What `GET /api/v3/info` answers (fields lifeboat uses).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    pub version: String,
    #[serde(default)]
    pub cluster_type: Option<String>,
}

/// A coordinator's REST calls wait this long for an ordinary answer; a backup may take much longer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const BACKUP_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

pub fn client(tls: &Tls) -> Result<reqwest::Client, DremioError> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = &tls.ca_file {
        let pem = std::fs::read(ca).map_err(|source| DremioError::Read {
            path: ca.clone(),
            source,
        })?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| DremioError::Api {
            url: ca.display().to_string(),
            status: None,
            message: format!("not a PEM certificate: {e}"),
        })?;
        b = b.add_root_certificate(cert);
    }
    if tls.insecure {
        b = b.danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| DremioError::Api {
        url: String::new(),
        status: None,
        message: e.to_string(),
    })
}

/// Asks each coordinator `GET /apiv2/server_status` and returns the first that answers 200 "OK".
/// Standbys do not answer at all; a starting or failed master answers 503.
pub async fn find_active(client: &reqwest::Client, urls: &[String]) -> Result<String, DremioError> {
    let mut tried = Vec::new();
    for url in urls {
        let base = url.trim_end_matches('/').to_string();
        let reason = match client
            .get(format!("{base}/apiv2/server_status"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return Ok(base),
            Ok(r) => format!(
                "HTTP {} {}",
                r.status().as_u16(),
                r.text().await.unwrap_or_default().trim()
            ),
            Err(e) => describe(&e),
        };
        tried.push(format!("{base}: {reason}"));
    }
    Err(DremioError::NoActiveCoordinator {
        tried: tried.join("; "),
    })
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "not listening (a standby, or down)".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        crate::error::chain(e)
    }
}

/// Which failures of a request may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Never,
    /// Only a 429: the server did not act on the request.
    Throttled,
    /// Connection failures, timeouts, 429 and 502-504: for requests that are safe to repeat.
    Transient,
}

/// Sends one request, retrying what `retry` allows with backoff. Returns the status and body of
/// the last answer.
#[allow(clippy::too_many_arguments)]
async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    auth: Option<&Secret>,
    body: Option<&serde_json::Value>,
    timeout: Duration,
    retry: Retry,
    notify: &Notify,
) -> Result<(u16, String), DremioError> {
    let mut attempt = 0;
    loop {
        let mut req = client.request(method.clone(), url).timeout(timeout);
        if let Some(a) = auth {
            req = req.header("Authorization", &a.0);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                // Retry-After in seconds (the HTTP-date form is rare from Dremio's proxies).
                let after = r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map_or(Duration::ZERO, Duration::from_secs);
                let text = r.text().await.unwrap_or_default();
                let again = match retry {
                    Retry::Never => false,
                    Retry::Throttled => status == 429,
                    Retry::Transient => transient_status(status),
                };
                let budget = if status == 429 {
                    THROTTLED_RETRIES
                } else {
                    RETRIES
                };
                if again && attempt < budget {
                    backoff(attempt, after, url, &format!("HTTP {status}"), notify).await;
                    attempt += 1;
                    continue;
                }
                return Ok((status, text));
            }
            Err(e)
                if retry == Retry::Transient
                    && (e.is_connect() || e.is_timeout())
                    && attempt < RETRIES =>
            {
                backoff(attempt, Duration::ZERO, url, &describe(&e), notify).await;
                attempt += 1;
            }
            Err(e) => {
                return Err(DremioError::Api {
                    url: url.to_string(),
                    status: None,
                    message: describe(&e),
                });
            }
        }
    }
}

/// Dremio's error bodies are `{"errorMessage": "..."}`; fall back to the raw text.
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.trim().chars().take(300).collect())
}

impl Coordinator {
    /// Logs in to `base` (already known to be active).
    pub async fn login(
        client: reqwest::Client,
        base: &str,
        creds: &Credentials,
        notify: Notify,
    ) -> Result<Coordinator, DremioError> {
        let auth = match creds {
            Credentials::Token(t) => Secret(format!("Bearer {}", t.0)),
            Credentials::Password { user, password } => {
                let url = format!("{base}/apiv2/login");
                let body = json!({"userName": user, "password": password.0});
                // Logging in has no side effect: safe to retry.
                let (status, text) = send(
                    &client,
                    reqwest::Method::POST,
                    &url,
                    None,
                    Some(&body),
                    CALL_TIMEOUT,
                    Retry::Transient,
                    &notify,
                )
                .await?;
                if !(200..300).contains(&status) {
                    return Err(DremioError::Auth {
                        url,
                        message: format!(
                            "login as {user:?} refused (HTTP {status}): {}",
                            error_message(&text)
                        ),
                    });
                }
                let token = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_string))
                    .ok_or_else(|| DremioError::Api {
                        url: url.clone(),
                        status: Some(status),
                        message: "login answer has no token".into(),
                    })?;
                Secret(format!("_dremio{token}"))
            }
        };
        Ok(Coordinator {
            client,
            base: base.to_string(),
            auth,
            notify,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        timeout: Duration,
    ) -> Result<String, DremioError> {
        let url = format!("{}{path}", self.base);
        // Only reads are retried: a repeated POST /apiv2/backup would start a second backup.
        let retry = if method == reqwest::Method::GET {
            Retry::Transient
        } else {
            Retry::Never
        };
        let (status, text) = send(
            &self.client,
            method,
            &url,
            Some(&self.auth),
            body.as_ref(),
            timeout,
            retry,
            &self.notify,
        )
        .await?;
        match status {
            200..=299 => Ok(text),
            401 => Err(DremioError::Auth {
                url,
                message: format!(
                    "not authenticated (HTTP 401: {}): the token is wrong or expired",
                    error_message(&text)
                ),
            }),
            403 => Err(DremioError::Auth {
                url,
                message: format!(
                    "forbidden (HTTP 403: {}): backups need an administrator",
                    error_message(&text)
                ),
            }),
            code => Err(DremioError::Api {
                url,
                status: Some(code),
                message: error_message(&text),
            }),
        }
    }

    /// One REST call for the catalog clone: the status and body of the answer, whatever the status.
    /// Reads, updates (guarded by the object's tag) and deletes are retried on transient failures;
    /// a create only when the server said it was throttled (429), since it did not act on it.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, String), DremioError> {
        let url = format!("{}{path}", self.base);
        let retry = if method == reqwest::Method::POST {
            Retry::Throttled
        } else {
            Retry::Transient
        };
        send(
            &self.client,
            method,
            &url,
            Some(&self.auth),
            body,
            CALL_TIMEOUT,
            retry,
            &self.notify,
        )
        .await
    }

    /// The coordinator's version (`GET /api/v3/info`).
    pub async fn version(&self) -> Result<(DremioVersion, Info), DremioError> {
        let text = self
            .call(reqwest::Method::GET, "/api/v3/info", None, CALL_TIMEOUT)
            .await?;
        let info: Info = serde_json::from_str(&text).map_err(|e| DremioError::Api {
            url: format!("{}/api/v3/info", self.base),
            status: None,
            message: format!("unexpected answer: {e}"),
        })?;
        let version =
            DremioVersion::parse(&info.version).ok_or_else(|| DremioError::BadVersion {
                value: info.version.clone(),
            })?;
        Ok((version, info))
    }

    /// Asks the master for a logical backup into `dir` (a folder it can write and lifeboat can read).
    /// Not retried: a second request would start a second backup.
    pub async fn backup(&self, dir: &Path, binary: bool) -> Result<BackupReply, DremioError> {
        let body = json!({"backupDir": format!("file://{}", dir.display()), "binary": binary, "includeProfiles": false, "compression": "", "table": "", "key": ""});
        let text = self
            .call(
                reqwest::Method::POST,
                "/apiv2/backup",
                Some(body),
                BACKUP_TIMEOUT,
            )
            .await?;
        serde_json::from_str(&text).map_err(|e| DremioError::Api {
            url: format!("{}/apiv2/backup", self.base),
            status: None,
            message: format!("unexpected answer: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_env_or_files_and_tokens_win() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let f = file.display().to_string();
        let env = |k: &str| match k {
            "LIFEBOAT_DREMIO_USER" => Some("admin".to_string()),
            "LIFEBOAT_DREMIO_PASSWORD_FILE" => Some(f.clone()),
            _ => None,
        };
        match Credentials::from_env(&env).unwrap() {
            Credentials::Password { user, password } => {
                assert_eq!((user.as_str(), password.0.as_str()), ("admin", "s3cret"))
            }
            other => panic!("{other:?}"),
        }
        let with_token = |k: &str| {
            if k == "LIFEBOAT_DREMIO_TOKEN" {
                Some("pat".to_string())
            } else {
                env(k)
            }
        };
        assert!(matches!(
            Credentials::from_env(&with_token).unwrap(),
            Credentials::Token(_)
        ));
        assert!(
            Credentials::from_env(&|_| None)
                .unwrap_err()
                .to_string()
                .contains("LIFEBOAT_DREMIO_USER")
        );
    }

    /// A one-shot HTTP server answering each connection with the next canned status.
    fn canned(statuses: &'static [&'static str]) -> (String, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for status in statuses {
                let (conn, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                seen.push(line.trim().to_string());
                let body = r#"{"version":"25.2.0-202410241428100111-a963b970"}"#;
                let mut c = conn;
                let _ = write!(
                    c,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
            seen
        });
        (base, server)
    }

    #[tokio::test]
    async fn reads_are_retried_on_transient_failures_but_a_backup_request_never() {
        let (base, server) = canned(&[
            "503 Service Unavailable",
            "200 OK",
            "503 Service Unavailable",
        ]);
        let notes = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink = notes.clone();
        let notify: Notify =
            std::sync::Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
        let c = Coordinator::login(
            client(&Tls::default()).unwrap(),
            &base,
            &Credentials::Token(Secret("pat".into())),
            notify,
        )
        .await
        .unwrap();
        let (version, _) = c.version().await.unwrap();
        assert_eq!(version.to_string(), "25.2.0-202410241428100111-a963b970");
        let err = c
            .backup(Path::new("/backups"), true)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("HTTP 503"), "{err}");
        let seen = server.join().unwrap();
        assert_eq!(
            seen,
            vec![
                "GET /api/v3/info HTTP/1.1",
                "GET /api/v3/info HTTP/1.1",
                "POST /apiv2/backup HTTP/1.1"
            ]
        );
        let notes = notes.lock().unwrap();
        assert_eq!(notes.len(), 1, "one retry, logged: {notes:?}");
        assert!(notes[0].contains("HTTP 503"));
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(r#"{"errorMessage":"backups are created only on master node."}"#),
            "backups are created only on master node."
        );
        assert_eq!(error_message("plain"), "plain");
    }
}
