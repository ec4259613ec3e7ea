//! Object storage: location URLs to `object_store`, streaming multipart upload with back-pressure,
//! ranged parallel download, and the repository layout of backups. Knows nothing of Dremio.

pub mod copy;
pub mod download;
pub mod location;
pub mod lock;
pub mod repo;
pub mod upload;

use crate::error::{Classify, ExitClass};

pub use location::Location;
pub use repo::Repo;

/// Failures of the storage layer, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use location {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("location {url} does not exist: {why}")]
    LocationMissing { url: String, why: String },
    #[error(
        "bucket {bucket:?} does not exist at {endpoint}: create it first (e.g. `aws s3 mb s3://{bucket}`) or fix the URL"
    )]
    BucketMissing { bucket: String, endpoint: String },
    #[error(
        "{url}: access denied ({detail}); check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the store's own) and their permissions"
    )]
    Denied { url: String, detail: String },
    #[error(
        "{url}: cannot reach the store ({detail}); check the endpoint, the network and AWS_ALLOW_HTTP for plain http"
    )]
    Unreachable { url: String, detail: String },
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
    #[error("{op} {key}: {source}")]
    Other {
        op: &'static str,
        key: String,
        source: object_store::Error,
    },
    #[error("interrupted by a signal; nothing was committed")]
    Interrupted,
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
            _ => ExitClass::Storage,
        }
    }
}

/// The HTTP status an object_store error reports in its text ("... status code: 403 Forbidden ..."),
/// and whether the failure was a connection-level one (object_store keeps its status types private).
fn http_details(err: &object_store::Error, text: &str) -> (Option<u16>, bool) {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut connection = false;
    while let Some(c) = cause {
        if let Some(http) = c.downcast_ref::<object_store::client::HttpError>() {
            connection |= matches!(
                http.kind(),
                object_store::client::HttpErrorKind::Connect
                    | object_store::client::HttpErrorKind::Timeout
            );
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
    (status, connection)
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

/// Maps an object_store error to what the operator should hear.
pub(crate) fn classify_error(
    loc: &Location,
    op: &'static str,
    key: &str,
    err: object_store::Error,
) -> StoreError {
    let text = chain_text(&err);
    let (status, connection) = http_details(&err, &text);
    let body = &text;
    if text.contains("NoSuchBucket") {
        return StoreError::BucketMissing {
            bucket: loc.bucket().unwrap_or_default(),
            endpoint: loc.endpoint(),
        };
    }
    let denied = matches!(
        err,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || matches!(status, Some(401 | 403))
        || [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
        ]
        .iter()
        .any(|m| body.contains(m));
    if denied {
        let code = [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
        ]
        .into_iter()
        .find(|m| body.contains(m));
        let detail = code
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {}", status.unwrap_or(403)));
        return StoreError::Denied {
            url: loc.url().to_string(),
            detail,
        };
    }
    if connection || (status.is_none() && is_connection_failure(&text)) {
        return StoreError::Unreachable {
            url: loc.url().to_string(),
            detail: short(&text),
        };
    }
    if let object_store::Error::NotFound { .. } = err {
        return StoreError::MissingObject {
            key: key.to_string(),
        };
    }
    StoreError::Other {
        op,
        key: key.to_string(),
        source: err,
    }
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
