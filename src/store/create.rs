//! Create-only writes (the manifest commit, a lock object) that survive a lost answer, which
//! object_store must not retry blindly: a retry that finds the object there reads it back.

use std::time::Duration;

use bytes::Bytes;
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::Location;
use super::retries::{TARGET, transport_reason};

/// Writes `bytes` at `key` only if nothing is there. A create whose answer was lost (the connection
/// broke, or no answer came in time) may or may not have landed, so object_store does not retry it;
/// here it is retried, and a retry that finds the object already there reads it back: holding
/// exactly `bytes`, it is this very write, and the create succeeded.
pub(crate) async fn put_create(
    loc: &Location,
    key: &ObjPath,
    bytes: Bytes,
) -> Result<(), object_store::Error> {
    let budget = super::location::retry_config();
    let started = tokio::time::Instant::now();
    let mut retries = 0usize;
    loop {
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let err = match loc
            .store
            .put_opts(key, PutPayload::from(bytes.clone()), create)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let exists = matches!(
            err,
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
        );
        if exists && retries > 0 && holds(loc, key, &bytes).await {
            return Ok(());
        }
        let out_of_budget =
            retries >= budget.max_retries || started.elapsed() > budget.retry_timeout;
        if exists || !answer_was_lost(&err) || out_of_budget {
            return Err(err);
        }
        retries += 1;
        let wait = jittered(&budget.backoff, retries);
        tracing::info!(
            target: TARGET,
            "retry {retries}/{}: PUT {key} (create): {}; waiting {:.1}s",
            budget.max_retries,
            lost_reason(&err),
            wait.as_secs_f64()
        );
        tokio::time::sleep(wait).await;
    }
}

async fn holds(loc: &Location, key: &ObjPath, bytes: &Bytes) -> bool {
    match loc.store.get(key).await {
        Ok(found) => found.bytes().await.is_ok_and(|b| b == *bytes),
        Err(_) => false,
    }
}

fn http_error(err: &object_store::Error) -> Option<&HttpError> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(c) = cause {
        if let Some(http) = c.downcast_ref::<HttpError>() {
            return Some(http);
        }
        cause = c.source();
    }
    None
}

/// Whether the request may have reached the store with its answer lost on the way back.
fn answer_was_lost(err: &object_store::Error) -> bool {
    http_error(err).is_some_and(|h| {
        matches!(
            h.kind(),
            HttpErrorKind::Timeout | HttpErrorKind::Interrupted | HttpErrorKind::Request
        )
    })
}

fn lost_reason(err: &object_store::Error) -> String {
    http_error(err)
        .map(transport_reason)
        .unwrap_or_else(|| "lost answer".into())
}

/// Exponential backoff with full jitter, within object_store's bounds.
fn jittered(config: &object_store::BackoffConfig, retry: usize) -> Duration {
    let exp = config.base.powi(retry.min(30) as i32 - 1);
    let ceiling = config
        .init_backoff
        .mul_f64(exp)
        .min(config.max_backoff)
        .max(config.init_backoff);
    let mut b = [0u8; 4];
    let fraction = match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX),
        Err(_) => 1.0,
    };
    ceiling.mul_f64(fraction.max(0.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_within_bounds() {
        let config = object_store::BackoffConfig::default();
        for retry in 1..20 {
            let w = jittered(&config, retry);
            assert!(w <= config.max_backoff, "{w:?}");
            assert!(w >= config.init_backoff.mul_f64(0.1), "{w:?}");
        }
    }
}
