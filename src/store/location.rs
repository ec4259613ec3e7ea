//! A location: where backups live (a local folder, `s3://`, `gs://`, `az://`, or `memory://` in tests).
//! Credentials come from the standard environment of each store, never from the URL or argv.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::ClientConfigKey;
use object_store::RetryConfig;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreScheme};

use super::{StoreError, retries};
use crate::secrets::Secret;

#[derive(Debug, Clone)]
enum Kind {
    Local(PathBuf),
    S3 { bucket: String },
    Gcs,
    Azure,
    Memory,
}

/// Everything needed to open a location: from the file, or just a URL (standard environment).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LocationSpec {
    /// The name in the file, or the URL itself.
    pub name: String,
    pub url: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub allow_http: Option<bool>,
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Create the folder of a local location when it is missing (only when opened for writing).
    pub create: bool,
}

impl LocationSpec {
    /// A location given only by URL: the store's standard environment supplies everything else.
    pub fn from_url(url: &str) -> LocationSpec {
        LocationSpec {
            name: url.to_string(),
            url: url.to_string(),
            ..Default::default()
        }
    }
}

/// An opened location: the store, the key prefix inside it, and a URL fit for messages.
#[derive(Debug, Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: ObjPath,
    /// The name the operator gave (a configured name, or the URL).
    pub name: String,
    url: String,
    kind: Kind,
    /// Identifies the store behind the location (scheme, endpoint, bucket, key id): two locations
    /// with the same identity can copy objects server-side.
    identity: String,
    endpoint: Option<String>,
}

/// How a location is opened: for reading, for writing, or for writing where a missing local folder
/// may be created (only when the operator asked: a missing folder is often an unmounted volume).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Create,
}

impl Access {
    /// Write access, creating a missing local folder when `create`.
    pub fn writing(create: bool) -> Access {
        if create {
            Access::Create
        } else {
            Access::Write
        }
    }
}

impl Location {
    /// Opens a location from a URL or a local path.
    pub fn open(url: &str, access: Access) -> Result<Location, StoreError> {
        Self::open_spec(&LocationSpec::from_url(url), access)
    }

    /// Opens a location described by the configuration file (endpoint, region, credentials).
    pub fn open_spec(spec: &LocationSpec, access: Access) -> Result<Location, StoreError> {
        let access = if access == Access::Write && spec.create {
            Access::Create
        } else {
            access
        };
        let mut loc = Self::open_url(spec, access)?;
        loc.name = spec.name.clone();
        Ok(loc)
    }

    fn open_url(spec: &LocationSpec, access: Access) -> Result<Location, StoreError> {
        let url = spec.url.as_str();
        let bad = |why: &str| StoreError::BadUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        if url.trim().is_empty() {
            return Err(bad("empty"));
        }
        if !url.contains("://") {
            return Self::local(url, PathBuf::from(url), access);
        }
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let unknown = || {
            bad(&format!(
                "unknown scheme {}:// (use a path, file://, s3://, gs:// or az://)",
                parsed.scheme()
            ))
        };
        // memory://<name>/<prefix>: a throwaway store for tests (object_store's form has no name).
        // file://<host>/...: object_store says "unrecognised"; the message below says why.
        let scheme = match parsed.scheme() {
            "memory" => ObjectStoreScheme::Memory,
            "file" => ObjectStoreScheme::Local,
            _ => ObjectStoreScheme::parse(&parsed).map_err(|_| unknown())?.0,
        };
        let prefix =
            |path: &str| ObjPath::from_url_path(path).map_err(|e| bad(&format!("bad prefix: {e}")));
        let retry = retry_config();
        let (store, kind, container, prefix): (Arc<dyn ObjectStore>, Kind, String, ObjPath) =
            match scheme {
                ObjectStoreScheme::Local => {
                    let dir = parsed.to_file_path().map_err(|()| {
                        bad("a file:// URL names an absolute path on this host, e.g. file:///backups")
                    })?;
                    return Self::local(url, dir, access);
                }
                ObjectStoreScheme::Memory => (
                    Arc::new(object_store::memory::InMemory::new()),
                    Kind::Memory,
                    parsed.host_str().unwrap_or("").to_string(),
                    prefix(parsed.path())?,
                ),
                ObjectStoreScheme::AmazonS3 => {
                    let (store, bucket, path) = s3(spec, url, retry).map_err(|e| bad(&e))?;
                    let kind = Kind::S3 {
                        bucket: bucket.clone(),
                    };
                    (store, kind, bucket, prefix(&path)?)
                }
                ObjectStoreScheme::GoogleCloudStorage => {
                    let builder = client_options().into_iter().fold(
                        object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url),
                        |b, (key, value)| {
                            b.with_config(object_store::gcp::GoogleConfigKey::Client(key), value)
                        },
                    );
                    let bucket = parsed.host_str().unwrap_or("").to_string();
                    let store = builder
                        .with_retry(retry)
                        .with_http_connector(retries::Connector)
                        .build()
                        .map_err(|e| bad(&e.to_string()))?;
                    (Arc::new(store), Kind::Gcs, bucket, prefix(parsed.path())?)
                }
                ObjectStoreScheme::MicrosoftAzure => {
                    let builder = client_options().into_iter().fold(
                        object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url),
                        |b, (key, value)| {
                            b.with_config(object_store::azure::AzureConfigKey::Client(key), value)
                        },
                    );
                    // az://<container>, abfss://<container>@<account>..., https://<account>.../<container>
                    let container = match (parsed.scheme(), parsed.username()) {
                        ("https", _) => parsed.path_segments().and_then(|mut p| p.next()),
                        (_, "") => parsed.host_str(),
                        (_, user) => Some(user),
                    }
                    .unwrap_or("")
                    .to_string();
                    let path = ObjectStoreScheme::parse(&parsed).map_err(|_| unknown())?.1;
                    let store = builder
                        .with_retry(retry)
                        .with_http_connector(retries::Connector)
                        .build()
                        .map_err(|e| bad(&e.to_string()))?;
                    (Arc::new(store), Kind::Azure, container, path)
                }
                // Any other https:// server (object_store's read-only HTTP store) cannot hold a
                // repository: S3-compatible servers are s3:// with an endpoint.
                ObjectStoreScheme::Http => {
                    return Err(bad(
                        "a plain http(s):// server cannot hold backups: for an S3-compatible server use s3://<bucket>/<prefix> with an endpoint (config `endpoint`, or AWS_ENDPOINT_URL)",
                    ));
                }
                _ => return Err(unknown()),
            };
        let scheme = parsed.scheme();
        let endpoint = spec
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT").ok());
        let key_id = spec
            .access_key_id
            .as_ref()
            .map(|k| k.0.clone())
            .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok())
            .unwrap_or_default();
        let identity = format!(
            "{scheme}|{}|{container}|{key_id}",
            endpoint.as_deref().unwrap_or("")
        );
        Ok(Location {
            store,
            prefix,
            name: url.to_string(),
            url: redact_url(url),
            kind,
            identity,
            endpoint,
        })
    }

    fn local(url: &str, dir: PathBuf, access: Access) -> Result<Location, StoreError> {
        let dir = if dir.is_absolute() {
            dir
        } else {
            std::env::current_dir().map(|d| d.join(&dir)).unwrap_or(dir)
        };
        // "./backups" reads better as ".../backups" in every message.
        let dir: PathBuf = dir.components().collect();
        if access == Access::Create && !dir.exists() {
            // Backups hold the cluster's security files: folders are owner-only.
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| StoreError::LocationMissing {
                    url: url.to_string(),
                    why: format!("cannot create it: {e}"),
                })?;
        }
        if !dir.is_dir() {
            let why = match access {
                Access::Write => {
                    "no such folder. lifeboat does not create a location folder on its own, because a missing folder is often a backup volume that is not mounted: mount it, or create the folder (`mkdir -m 700 ...`), or pass --create-location (config: `create = true` for the location)"
                }
                _ => "no such folder",
            };
            return Err(StoreError::LocationMissing {
                url: url.to_string(),
                why: why.into(),
            });
        }
        // Durable before committed: a manifest must never be on disk before the objects it names.
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| StoreError::BadUrl {
                url: url.to_string(),
                why: e.to_string(),
            })?
            .with_fsync(true);
        Ok(Location {
            store: Arc::new(store),
            prefix: ObjPath::default(),
            name: url.to_string(),
            url: dir.display().to_string(),
            identity: format!("local|{}", dir.display()),
            kind: Kind::Local(dir),
            endpoint: None,
        })
    }

    /// The URL as shown to people.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn bucket(&self) -> Option<String> {
        match &self.kind {
            Kind::S3 { bucket } => Some(bucket.clone()),
            _ => None,
        }
    }

    /// The endpoint for messages about S3-compatible servers.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone().unwrap_or_else(|| "AWS S3".into())
    }

    /// The folder of a local location (where object_store keeps multipart staging files that its
    /// listings never show).
    pub fn local_root(&self) -> Option<&std::path::Path> {
        match &self.kind {
            Kind::Local(root) => Some(root),
            _ => None,
        }
    }

    /// Whether this is an object store reached over the network (every kind but a local folder,
    /// where a ranged read is a plain `pread` and the store's stream hands out 8 KiB pieces).
    pub(crate) fn is_remote(&self) -> bool {
        !matches!(self.kind, Kind::Local(_))
    }

    /// Whether `other` lives in the same store (objects can be copied server-side between them).
    pub fn same_store(&self, other: &Location) -> bool {
        self.identity == other.identity && !matches!(self.kind, Kind::Memory)
    }

    /// The key of `parts` joined under this location's prefix.
    pub fn key(&self, parts: &[&str]) -> ObjPath {
        parts
            .iter()
            .fold(self.prefix.clone(), |p, part| p.join(*part))
    }

    /// Prepares the folder of a key on a local location with owner-only permissions (other stores
    /// have no folders). Called before writing objects that may hold secrets.
    pub fn prepare_parent(&self, key: &ObjPath) -> Result<(), StoreError> {
        if let Kind::Local(root) = &self.kind {
            let path = root.join(key.as_ref());
            if let Some(parent) = path.parent() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|e| StoreError::LocationMissing {
                        url: self.url.clone(),
                        why: format!("cannot create {}: {e}", parent.display()),
                    })?;
            }
        }
        Ok(())
    }

    /// Makes a finished object owner-only on a local location.
    pub fn tighten(&self, key: &ObjPath) -> Result<(), StoreError> {
        if let Kind::Local(root) = &self.kind {
            let path = root.join(key.as_ref());
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| StoreError::LocationMissing {
                    url: self.url.clone(),
                    why: format!("cannot set permissions of {}: {e}", path.display()),
                },
            )?;
        }
        Ok(())
    }

    /// Lists the top level under the prefix, so that a missing bucket, bad credentials or an
    /// unreachable endpoint fail before any work is done.
    pub async fn check_access(&self) -> Result<(), StoreError> {
        self.store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map(|_| ())
            .map_err(|e| super::classify_error(self, "list", self.prefix.as_ref(), e))
    }
}

/// Retries: object_store retries 5xx, 429, timeouts, resets and bodies cut mid-download (resuming
/// where they broke) with jittered backoff; the budget is tunable for tests and impatient cron jobs.
pub(crate) fn retry_config() -> RetryConfig {
    let mut config = RetryConfig::default();
    if let Some(n) = std::env::var("LIFEBOAT_MAX_RETRIES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.max_retries = n;
    }
    if let Some(t) = env_duration("LIFEBOAT_RETRY_TIMEOUT") {
        config.retry_timeout = t;
    }
    config.backoff.max_backoff = config.backoff.max_backoff.min(Duration::from_secs(15));
    config
}

/// A request that gets no complete answer within this is abandoned (and retried when that is safe).
/// Generous by default: an upload part of ~120 MiB (a 1 TiB archive) must fit in it.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// `LIFEBOAT_REQUEST_TIMEOUT` (e.g. "30s"), else [`DEFAULT_REQUEST_TIMEOUT`].
pub(crate) fn request_timeout() -> Duration {
    env_duration("LIFEBOAT_REQUEST_TIMEOUT").unwrap_or(DEFAULT_REQUEST_TIMEOUT)
}

/// The HTTP client settings every cloud store gets, as config pairs (so that what `from_env` read,
/// such as AWS_ALLOW_HTTP, is kept).
fn client_options() -> [(ClientConfigKey, String); 2] {
    [
        (
            ClientConfigKey::Timeout,
            format!("{}ms", request_timeout().as_millis()),
        ),
        (ClientConfigKey::ConnectTimeout, "10s".to_string()),
    ]
}

/// `LIFEBOAT_PART_SIZE` (e.g. "8MiB"): the smallest multipart part. Below S3's 5 MiB minimum only
/// for servers that accept it (tests use it to get many parts from small fixtures).
pub(crate) fn part_size() -> Option<u64> {
    env_bytes("LIFEBOAT_PART_SIZE").filter(|n| *n > 0)
}

/// `LIFEBOAT_RANGE_SIZE` (e.g. "8MiB"): the size of each ranged GET of a download, and on remote
/// stores the largest object fetched with one GET.
pub(crate) fn range_size() -> Option<u64> {
    env_bytes("LIFEBOAT_RANGE_SIZE").filter(|n| *n > 0)
}

/// The largest object copied with the store's single-request copy: AWS refuses CopyObject above
/// 5 GiB, so larger objects are streamed. `LIFEBOAT_SERVER_COPY_LIMIT` lowers it (for tests).
pub(crate) fn server_copy_limit() -> u64 {
    env_bytes("LIFEBOAT_SERVER_COPY_LIMIT").unwrap_or(5 << 30)
}

fn env_duration(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| crate::units::parse_duration(&v).ok())
}

fn env_bytes(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .and_then(|v| crate::units::parse_bytes(&v))
}

/// Drops any user:password from a URL before it is shown.
/// An S3 store for `url` (s3://bucket/prefix, or an https:// AWS or R2 URL), with the spec's
/// endpoint, region and credentials over the standard environment; its bucket and the prefix.
fn s3(
    spec: &LocationSpec,
    url: &str,
    retry: RetryConfig,
) -> Result<(Arc<dyn ObjectStore>, String, String), String> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let host = parsed.host_str().unwrap_or("");
    // The builder reads the URL only when built; the bucket is wanted first (checks, identity).
    // s3://<bucket>, https://s3.<region>.amazonaws.com/<bucket>, https://<bucket>.s3...
    let bucket = match parsed.scheme() {
        "s3" | "s3a" => host.to_string(),
        _ if host.starts_with("s3.") => parsed
            .path_segments()
            .and_then(|mut p| p.next())
            .unwrap_or("")
            .to_string(),
        _ => host.split('.').next().unwrap_or("").to_string(),
    };
    let mut builder = AmazonS3Builder::from_env().with_url(url);
    if bucket.len() < 3 {
        return Err("an S3 bucket name has at least 3 characters".into());
    }
    if let Some(region) = &spec.region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &spec.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(allow) = spec.allow_http {
        builder = builder.with_allow_http(allow);
    }
    if let Some(key) = &spec.access_key_id {
        builder = builder.with_access_key_id(&key.0);
    }
    if let Some(secret) = &spec.secret_access_key {
        builder = builder.with_secret_access_key(&secret.0);
    }
    if let Some(token) = &spec.session_token {
        builder = builder.with_token(&token.0);
    }
    let builder = client_options()
        .into_iter()
        .fold(builder, |b, (key, value)| {
            b.with_config(AmazonS3ConfigKey::Client(key), value)
        });
    let builder = if std::env::var_os("AWS_UNSIGNED_PAYLOAD").is_some() {
        builder // the operator's own choice
    } else {
        sign_payloads_without_tls(builder)
    };
    let store = builder
        .with_retry(retry)
        .with_http_connector(retries::Connector)
        .build()
        .map_err(|e| e.to_string())?;
    let path = ObjectStoreScheme::parse(&parsed)
        .map(|(_, p)| p.to_string())
        .map_err(|e| e.to_string())?;
    Ok((Arc::new(store), bucket, path))
}

/// SigV4 can sign a request's body too, which costs a SHA-256 of every byte on both ends (3% of a
/// backup's CPU here, more on the server). That buys integrity only where nothing else gives it:
/// over TLS, whose records carry their own MACs, bodies go unsigned (as the AWS CLI sends them);
/// over plain HTTP they stay signed. No endpoint is AWS itself, over TLS.
fn sign_payloads_without_tls(
    builder: object_store::aws::AmazonS3Builder,
) -> object_store::aws::AmazonS3Builder {
    use object_store::aws::AmazonS3ConfigKey;
    let tls = builder
        .get_config_value(&AmazonS3ConfigKey::Endpoint)
        .is_none_or(|e| e.trim().to_ascii_lowercase().starts_with("https://"));
    builder.with_unsigned_payload(tls)
}

fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_stores_and_prefixes() {
        let loc = Location::open("memory://bucket/a/b/", Access::Read).unwrap();
        assert_eq!(loc.prefix.as_ref(), "a/b");
        assert_eq!(loc.key(&["dremio", "x"]).as_ref(), "a/b/dremio/x");
        assert!(
            Location::open("ftp://x/y", Access::Read)
                .unwrap_err()
                .to_string()
                .contains("unknown scheme")
        );
        assert!(
            Location::open("s3://ab/x", Access::Read)
                .unwrap_err()
                .to_string()
                .contains("3 characters")
        );
        assert!(Location::open("", Access::Read).is_err());
    }

    #[test]
    fn the_url_forms_object_store_knows_are_opened_by_it() {
        let open = |url: &str| Location::open(url, Access::Read);
        // Virtual-hosted and path-style AWS URLs name the bucket too; the prefix is what follows.
        let loc = open("https://s3.eu-west-1.amazonaws.com/lifeboat-bkt/prod/dr").unwrap();
        assert_eq!(loc.bucket().as_deref(), Some("lifeboat-bkt"));
        assert_eq!(loc.prefix.as_ref(), "prod/dr");
        let loc = open("s3://lifeboat-bkt/a%20b/c/").unwrap();
        assert_eq!(
            (loc.bucket().as_deref(), loc.prefix.as_ref()),
            (Some("lifeboat-bkt"), "a b/c")
        );
        // Azure's own URL forms, account included.
        let loc = open("abfss://backups@acct.dfs.core.windows.net/prod").unwrap();
        assert_eq!(loc.prefix.as_ref(), "prod");
        assert_eq!(open("gs://bkt-1/p").unwrap().prefix.as_ref(), "p");
        // file:// is a local folder; with a host it is not this machine's.
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        assert_eq!(open(&url).unwrap().local_root(), Some(dir.path()));
        let err = open("file://otherhost/backups").unwrap_err().to_string();
        assert!(err.contains("absolute path on this host"), "{err}");
        // A plain web server is not a store lifeboat can commit to.
        let err = open("https://example.com/backups").unwrap_err().to_string();
        assert!(err.contains("S3-compatible server use s3://"), "{err}");
    }

    #[test]
    fn local_folders_are_created_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("repo");
        let url = target.to_str().unwrap();
        assert!(matches!(
            Location::open(url, Access::Read),
            Err(StoreError::LocationMissing { .. })
        ));
        let refused = Location::open(url, Access::Write).unwrap_err().to_string();
        assert!(refused.contains("--create-location"), "{refused}");
        assert!(!target.exists());
        let mut spec = LocationSpec::from_url(url);
        spec.create = true;
        assert!(
            Location::open_spec(&spec, Access::Read).is_err(),
            "never for reading"
        );
        Location::open_spec(&spec, Access::Write).unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let file_url = format!("file://{url}");
        assert!(Location::open(&file_url, Access::Read).is_ok());
    }

    #[test]
    fn request_bodies_are_signed_only_without_tls() {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        let unsigned = |builder: AmazonS3Builder| {
            sign_payloads_without_tls(builder)
                .get_config_value(&AmazonS3ConfigKey::UnsignedPayload)
                .unwrap()
        };
        let with = |endpoint: &str| AmazonS3Builder::new().with_endpoint(endpoint);
        assert_eq!(unsigned(AmazonS3Builder::new()), "true", "AWS itself");
        assert_eq!(unsigned(with("https://minio.internal:9000")), "true");
        assert_eq!(unsigned(with("HTTPS://minio.internal")), "true");
        assert_eq!(unsigned(with("http://127.0.0.1:8333")), "false");
    }

    #[test]
    fn credentials_in_urls_are_not_shown() {
        assert_eq!(redact_url("s3://key:secret@bucket/p"), "s3://***@bucket/p");
        assert_eq!(redact_url("s3://bucket/p@x"), "s3://bucket/p@x");
    }
}
