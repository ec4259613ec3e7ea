//! Object storage, bytes only: location URLs to `object_store`, streaming multipart upload with
//! back-pressure, ranged parallel download, byte copies between locations, retries and lock objects.
//! Knows nothing of manifests, the repository layout (it is given keys) or Dremio.

pub mod copy;
pub mod create;
pub mod download;
pub mod location;
pub mod lock;
pub mod retries;
pub mod upload;

use object_store::client::HttpErrorKind;

use crate::error::{Classify, ExitClass};

pub use location::Location;

/// Failures of the storage layer, worded for the operator. Advice names the variables of the
/// location's own store (never AWS_* for an Azure container).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use location {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("location {url} does not exist: {why}")]
    LocationMissing { url: String, why: String },
    #[error(
        "{what} {name:?} does not exist at {endpoint}: create it first (e.g. `{create}`) or fix the URL"
    )]
    BucketMissing {
        /// "bucket" or "container".
        what: &'static str,
        name: String,
        endpoint: String,
        create: String,
    },
    #[error("{url}: access denied ({detail}); {advice}")]
    Denied {
        url: String,
        detail: String,
        advice: String,
    },
    #[error("{url}: cannot reach the store ({detail}); {advice}")]
    Unreachable {
        url: String,
        detail: String,
        advice: String,
    },
    #[error(
        "{url}: {op} {key} failed{retries} ({detail}): the store or the network kept failing; run again later, or allow more with LIFEBOAT_MAX_RETRIES / LIFEBOAT_RETRY_TIMEOUT"
    )]
    Transient {
        url: String,
        op: &'static str,
        key: String,
        detail: String,
        /// " after N retries", or empty when none were allowed.
        retries: String,
    },
    #[error("{url}: no backup {id:?} (run `lifeboat list` to see the backups there)")]
    NoSuchBackup { url: String, id: String },
    #[error("{url}: no backups of cluster {cluster:?} there")]
    NoBackups { url: String, cluster: String },
    #[error("object {key} is missing: the backup is incomplete or was partly deleted")]
    MissingObject { key: String },
    #[error(
        "object {key} is {found} bytes but the manifest says {expected}: it is truncated or was replaced"
    )]
    SizeMismatch {
        key: String,
        expected: u64,
        found: u64,
    },
    // The error is shown as one line here and not chained again (object_store's messages already
    // carry their causes).
    #[error("{url}: {op} {key}: {}", chain_text(.error.as_ref()))]
    Other {
        url: String,
        op: &'static str,
        key: String,
        error: Box<object_store::Error>,
    },
    #[error("interrupted by a signal; nothing was committed")]
    Interrupted,
    /// The lock may have passed to another run: what was decided under it may no longer hold.
    #[error("{action}: the lock may no longer be ours ({why}){advice}")]
    LockLost {
        action: String,
        why: String,
        /// What to do next, with its leading punctuation.
        advice: &'static str,
    },
}

impl Classify for StoreError {
    fn exit_class(&self) -> ExitClass {
        match self {
            StoreError::BadUrl { .. }
            | StoreError::LocationMissing { .. }
            | StoreError::NoSuchBackup { .. }
            | StoreError::NoBackups { .. } => ExitClass::Usage,
            StoreError::MissingObject { .. } | StoreError::SizeMismatch { .. } => {
                ExitClass::Integrity
            }
            StoreError::Interrupted => ExitClass::Interrupted,
            StoreError::LockLost { .. } => ExitClass::Refused,
            _ => ExitClass::Storage,
        }
    }
}

/// The kind of store behind a location, read from the URL it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    S3,
    Azure,
    Gcs,
    Local,
}

impl Scheme {
    fn of(url: &str) -> Scheme {
        match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("s3" | "s3a") => Scheme::S3,
            Some("az" | "azure") => Scheme::Azure,
            Some("gs") => Scheme::Gcs,
            _ => Scheme::Local,
        }
    }

    fn credentials_advice(self) -> &'static str {
        match self {
            Scheme::S3 => {
                "check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the location's access_key_id_env / secret_access_key_env) and their permissions"
            }
            Scheme::Azure => {
                "check the credentials (AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, or AZURE_STORAGE_SAS_KEY, or AZURE_STORAGE_CLIENT_ID / AZURE_STORAGE_CLIENT_SECRET / AZURE_STORAGE_TENANT_ID) and their permissions"
            }
            Scheme::Gcs => {
                "check the credentials (GOOGLE_SERVICE_ACCOUNT or GOOGLE_SERVICE_ACCOUNT_KEY, or GOOGLE_APPLICATION_CREDENTIALS) and their permissions"
            }
            Scheme::Local => {
                "check that this user may read and write the folder (its owner, mode and ACLs)"
            }
        }
    }

    fn network_advice(self) -> &'static str {
        match self {
            Scheme::S3 => {
                "check the endpoint (AWS_ENDPOINT_URL or the location's endpoint), the network, and AWS_ALLOW_HTTP for plain http"
            }
            Scheme::Azure => {
                "check the account (AZURE_STORAGE_ACCOUNT_NAME, or AZURE_STORAGE_USE_EMULATOR with AZURITE_BLOB_STORAGE_URL for Azurite), the network, and AZURE_ALLOW_HTTP for plain http"
            }
            Scheme::Gcs => {
                "check the network and any proxy on the way to Google Cloud Storage (GOOGLE_BASE_URL for another endpoint)"
            }
            Scheme::Local => "check the folder's mount",
        }
    }
}

/// The bucket or container of a cloud URL (`az://container/prefix` -> `container`).
fn container_of(url: &str) -> String {
    url.split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
        .unwrap_or_default()
        .to_string()
}

fn bucket_missing(site: &Site<'_>) -> StoreError {
    let name = site
        .bucket
        .clone()
        .unwrap_or_else(|| container_of(site.url));
    match Scheme::of(site.url) {
        Scheme::Azure => StoreError::BucketMissing {
            what: "container",
            endpoint: azure_account(),
            create: format!("az storage container create --name {name}"),
            name,
        },
        Scheme::Gcs => StoreError::BucketMissing {
            what: "bucket",
            endpoint: "Google Cloud Storage".into(),
            create: format!("gcloud storage buckets create gs://{name}"),
            name,
        },
        _ => StoreError::BucketMissing {
            what: "bucket",
            endpoint: site.endpoint.clone(),
            create: format!("aws s3 mb s3://{name}"),
            name,
        },
    }
}

/// The Azure account a location talks to, for messages.
fn azure_account() -> String {
    let emulator = std::env::var("AZURE_STORAGE_USE_EMULATOR").is_ok_and(|v| v == "true");
    match (emulator, std::env::var("AZURITE_BLOB_STORAGE_URL")) {
        (true, Ok(url)) => url,
        (true, Err(_)) => "the Azurite emulator".into(),
        _ => std::env::var("AZURE_STORAGE_ACCOUNT_NAME")
            .map(|a| format!("account {a}"))
            .unwrap_or_else(|_| "the Azure account".into()),
    }
}

/// What the HTTP layer says about a failure: the status object_store reports in its text
/// ("... status code: 403 Forbidden ..."; it keeps its status types private) and the kind of a
/// transport failure.
fn http_details(err: &object_store::Error, text: &str) -> (Option<u16>, Option<HttpErrorKind>) {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut kind = None;
    while let Some(c) = cause {
        if let Some(http) = c.downcast_ref::<object_store::client::HttpError>() {
            kind = Some(http.kind());
        }
        cause = c.source();
    }
    let status = text.split("status").skip(1).find_map(|after| {
        after
            .trim_start_matches([' ', ':'])
            .trim_start_matches("code")
            .trim_start_matches([' ', ':'])
            .get(..3)?
            .parse()
            .ok()
    });
    (status, kind)
}

/// The whole error chain as one line (object_store nests the useful part deep).
fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}

/// What messages say about a location.
struct Site<'a> {
    url: &'a str,
    bucket: Option<String>,
    endpoint: String,
}

/// Maps an object_store error to what the operator should hear.
pub(crate) fn classify_error(
    loc: &Location,
    op: &'static str,
    key: &str,
    err: object_store::Error,
) -> StoreError {
    let site = Site {
        url: loc.url(),
        bucket: loc.bucket(),
        endpoint: loc.endpoint(),
    };
    classify(&site, op, key, err)
}

fn classify(site: &Site<'_>, op: &'static str, key: &str, err: object_store::Error) -> StoreError {
    let text = chain_text(&err);
    let (status, kind) = http_details(&err, &text);
    let scheme = Scheme::of(site.url);
    if text.contains("NoSuchBucket") || text.contains("ContainerNotFound") {
        return bucket_missing(site);
    }
    const DENIALS: [&str; 4] = [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "AuthenticationFailed",
    ];
    let code = DENIALS.into_iter().find(|m| text.contains(m));
    let denied = matches!(
        err,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || matches!(status, Some(401 | 403))
        || code.is_some();
    if denied {
        let detail = code
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {}", status.unwrap_or(403)));
        return StoreError::Denied {
            url: site.url.to_string(),
            detail,
            advice: scheme.credentials_advice().to_string(),
        };
    }
    let connect_failed = kind == Some(HttpErrorKind::Connect)
        || (kind == Some(HttpErrorKind::Timeout) && text.to_ascii_lowercase().contains("connect"))
        || (status.is_none() && kind.is_none() && is_connection_failure(&text));
    if connect_failed {
        return StoreError::Unreachable {
            url: site.url.to_string(),
            detail: short(&text),
            advice: scheme.network_advice().to_string(),
        };
    }
    let transient_status = status.filter(|s| *s >= 500 || *s == 429 || *s == 408);
    let transient_kind = kind.filter(|k| {
        matches!(
            k,
            HttpErrorKind::Timeout | HttpErrorKind::Interrupted | HttpErrorKind::Request
        )
    });
    if transient_status.is_some() || transient_kind.is_some() {
        let detail = match (transient_status, transient_kind) {
            (Some(s), _) => status_detail(s, &text),
            (None, Some(HttpErrorKind::Timeout)) => format!(
                "no answer within {} (LIFEBOAT_REQUEST_TIMEOUT)",
                humantime::format_duration(location::request_timeout())
            ),
            (None, _) => short(&text),
        };
        return StoreError::Transient {
            url: site.url.to_string(),
            op,
            key: key.to_string(),
            detail,
            retries: match retries_of(&text) {
                Some(1) => " after 1 retry".into(),
                Some(n) => format!(" after {n} retries"),
                None => String::new(),
            },
        };
    }
    if let object_store::Error::NotFound { .. } = err {
        return StoreError::MissingObject {
            key: key.to_string(),
        };
    }
    StoreError::Other {
        url: site.url.to_string(),
        op,
        key: key.to_string(),
        error: Box::new(err),
    }
}

/// "503 SlowDown": the status with the store's error code when its answer named one.
fn status_detail(status: u16, text: &str) -> String {
    let code = text.split("<Code>").nth(1).and_then(|rest| {
        let code = rest.split("</Code>").next()?.trim();
        (!code.is_empty() && code.len() <= 64 && code.chars().all(|c| c.is_ascii_alphanumeric()))
            .then_some(code)
    });
    match code {
        Some(code) => format!("{status} {code}"),
        None => format!("HTTP {status}"),
    }
}

/// The retries object_store made before it gave up ("..., after 3 retries, max_retries: ...").
fn retries_of(text: &str) -> Option<u64> {
    let after = text.split("after ").nth(1)?;
    let (n, rest) = after.split_once(' ')?;
    rest.starts_with("retries").then(|| n.parse().ok())?
}

fn is_connection_failure(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "error sending request",
        "connection refused",
        "dns error",
        "connect",
        "timed out",
        "tcp",
    ]
    .iter()
    .any(|m| t.contains(m))
}

fn short(text: &str) -> String {
    // The last cause is the most specific one ("Connection refused (os error 111)").
    text.rsplit(": ").next().unwrap_or(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::client::HttpError;

    fn site(url: &str) -> Site<'_> {
        Site {
            url,
            bucket: url.starts_with("s3://").then(|| container_of(url)),
            endpoint: "http://127.0.0.1:9000".into(),
        }
    }

    fn denied() -> object_store::Error {
        object_store::Error::PermissionDenied {
            path: "p".into(),
            source: "Server returned non-2xx status code: 403 Forbidden".into(),
        }
    }

    fn refused() -> object_store::Error {
        object_store::Error::Generic {
            store: "S",
            source: Box::new(HttpError::new(
                HttpErrorKind::Connect,
                std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused"),
            )),
        }
    }

    fn generic(text: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S",
            source: text.to_string().into(),
        }
    }

    #[test]
    fn hints_name_the_variables_of_the_locations_own_store() {
        let cases = [
            ("s3://bucket/p", "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL"),
            (
                "az://container/p",
                "AZURE_STORAGE_ACCOUNT_KEY",
                "AZURE_STORAGE_ACCOUNT_NAME",
            ),
            (
                "gs://bucket/p",
                "GOOGLE_APPLICATION_CREDENTIALS",
                "Google Cloud Storage",
            ),
            ("/srv/backups", "may read and write the folder", "mount"),
        ];
        for (url, credentials, network) in cases {
            let d = classify(&site(url), "list", "p", denied()).to_string();
            assert!(matches!(
                classify(&site(url), "list", "p", denied()),
                StoreError::Denied { .. }
            ));
            assert!(d.contains(credentials), "{d}");
            let u = classify(&site(url), "list", "p", refused()).to_string();
            assert!(u.contains("cannot reach") && u.contains(network), "{u}");
            if !url.starts_with("s3://") {
                assert!(!d.contains("AWS_") && !u.contains("AWS_"), "{d} / {u}");
            }
        }
    }

    #[test]
    fn a_missing_container_is_named_with_the_way_to_create_it() {
        let e = classify(
            &site("az://nosuch/p"),
            "list",
            "p",
            generic("404 Not Found: <Error><Code>ContainerNotFound</Code></Error>"),
        )
        .to_string();
        assert!(e.contains("container \"nosuch\" does not exist"), "{e}");
        assert!(
            e.contains("az storage container create --name nosuch"),
            "{e}"
        );
        let e = classify(
            &site("s3://nosuch/p"),
            "list",
            "p",
            generic("<Code>NoSuchBucket</Code>"),
        )
        .to_string();
        assert!(e.contains("aws s3 mb s3://nosuch"), "{e}");
    }

    #[test]
    fn exhausted_retries_are_reported_as_a_store_that_kept_failing() {
        let e = classify(
            &site("s3://bucket/p"),
            "upload",
            "p/dremio/20261122T023444Z-b3cd/data.tar.zst",
            generic(
                "Error performing PUT http://h/b/k?partNumber=2 in 1s, after 2 retries, max_retries: 2, retry_timeout: 10s  - Server returned non-2xx status code: 503 Service Unavailable: <Error><Code>SlowDown</Code></Error>",
            ),
        );
        assert_eq!(e.exit_class(), ExitClass::Storage);
        let text = e.to_string();
        assert!(text.starts_with("s3://bucket/p: upload p/dremio/20261122T023444Z-b3cd/data.tar.zst failed after 2 retries (503 SlowDown)"), "{text}");
        assert!(text.contains("LIFEBOAT_MAX_RETRIES"), "{text}");
        let reset = object_store::Error::Generic {
            store: "S",
            source: Box::new(HttpError::new(
                HttpErrorKind::Interrupted,
                std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "Connection reset by peer",
                ),
            )),
        };
        let text = classify(&site("az://c/p"), "download", "k", reset).to_string();
        assert!(
            text.contains("download k failed (Connection reset by peer)"),
            "{text}"
        );
        assert!(!text.contains("cannot reach"), "{text}");
    }
}
