//! A lock object (the repository says where: `<cluster>/lock.json`), so that backup, copy and prune
//! never run twice at once — and never wedge cron: the lock carries an expiry that its holder renews
//! while alive, and an expired lock (its holder crashed) is taken over, at once if the holder was a
//! process of this host that no longer exists.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::{Location, StoreError, classify_error};

/// What the lock object says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub host: String,
    pub pid: u32,
    pub command: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Random: tells our lock from a successor's.
    pub token: String,
}

impl std::fmt::Display for LockInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (pid {} on {}, since {}, expires {})",
            self.command,
            self.pid,
            self.host,
            self.acquired_at.format("%Y-%m-%dT%H:%M:%SZ"),
            self.expires_at.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }
}

/// The lock is held by someone else.
#[derive(Debug, thiserror::Error)]
#[error(
    "{location}: cluster {cluster:?} is locked by {holder}. Another run is in progress; wait for it, pass --wait-lock DURATION, or if that host is gone the lock expires by itself at its expiry time"
)]
pub struct LockBusy {
    pub location: String,
    pub cluster: String,
    pub holder: LockInfo,
}

/// A held lock. Renewed in the background; released by [`Lock::release`] (or left to expire).
pub struct Lock {
    loc: Location,
    key: ObjPath,
    info: LockInfo,
    /// Set, with what is known of why, once the lock may no longer be ours.
    lost: Arc<Mutex<Option<String>>>,
    renewer: tokio::task::JoinHandle<()>,
}

/// How long a lock lives without renewal; it is renewed every third of that.
pub const DEFAULT_TTL: Duration = Duration::from_secs(120);

/// The lock lifetime: `LIFEBOAT_LOCK_TTL` (e.g. "5m") or [`DEFAULT_TTL`]. Shorter means a crashed
/// run's lock is taken over sooner; longer tolerates slower renewals.
pub fn ttl() -> Duration {
    std::env::var("LIFEBOAT_LOCK_TTL")
        .ok()
        .and_then(|v| crate::units::parse_duration(&v).ok())
        .filter(|d| *d >= Duration::from_secs(3))
        .unwrap_or(DEFAULT_TTL)
}

/// Takes the lock object `key` of `cluster` in `loc` for `command`, waiting up to `wait` for a
/// live holder.
pub async fn acquire(
    loc: &Location,
    key: ObjPath,
    cluster: &str,
    command: &str,
    ttl: Duration,
    wait: Option<Duration>,
) -> anyhow::Result<Lock> {
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    loop {
        let info = new_info(command, ttl);
        match try_take(loc, &key, &info).await? {
            Taken::Yes(version) => {
                let lost = Arc::new(Mutex::new(None));
                let renewer = tokio::spawn(renew_loop(
                    loc.clone(),
                    key.clone(),
                    info.clone(),
                    version,
                    ttl,
                    lost.clone(),
                ));
                return Ok(Lock {
                    loc: loc.clone(),
                    key,
                    info,
                    lost,
                    renewer,
                });
            }
            Taken::No(holder) => {
                let now = tokio::time::Instant::now();
                match deadline {
                    Some(d) if now < d => {
                        // Poll at a modest pace, jittered so that waiting runs do not move in step.
                        let pause = Duration::from_millis(500 + u64::from(random_u16() % 1000));
                        tokio::time::sleep(pause.min(d - now)).await;
                    }
                    _ => {
                        return Err(LockBusy {
                            location: loc.url().to_string(),
                            cluster: cluster.to_string(),
                            holder,
                        }
                        .into());
                    }
                }
            }
        }
    }
}

enum Taken {
    Yes(Option<UpdateVersion>),
    No(LockInfo),
}

async fn try_take(loc: &Location, key: &ObjPath, info: &LockInfo) -> Result<Taken, StoreError> {
    loc.prepare_parent(key)?;
    let bytes = bytes::Bytes::from(serde_json::to_vec_pretty(info).expect("lock serialises"));
    let body = PutPayload::from(bytes.clone());
    // A create whose answer was lost is retried; finding our own bytes there means it landed.
    // Renewals read the version they update, so none is needed here.
    match super::create::put_create(loc, key, bytes).await {
        Ok(()) => return Ok(Taken::Yes(None)),
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => {}
        Err(e) => return Err(classify_error(loc, "lock", key.as_ref(), e)),
    }
    let current = match loc.store.get(key).await {
        Ok(r) => {
            let version = UpdateVersion {
                e_tag: r.meta.e_tag.clone(),
                version: r.meta.version.clone(),
            };
            let bytes = r
                .bytes()
                .await
                .map_err(|e| classify_error(loc, "lock", key.as_ref(), e))?;
            (serde_json::from_slice::<LockInfo>(&bytes).ok(), version)
        }
        // Released between our create and our read: try again at once.
        Err(object_store::Error::NotFound { .. }) => {
            return Box::pin(try_take(loc, key, info)).await;
        }
        Err(e) => return Err(classify_error(loc, "lock", key.as_ref(), e)),
    };
    match current {
        (Some(holder), _) if holder.expires_at > Utc::now() && !died_on_this_host(&holder) => {
            Ok(Taken::No(holder))
        }
        // Expired (its holder died) or unreadable: take it over, but only if nobody else did first.
        (_, version) => match put_update(loc, key, body, version).await {
            Ok(v) => Ok(Taken::Yes(v)),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Box::pin(try_take(loc, key, info)).await,
            Err(e) => Err(classify_error(loc, "lock", key.as_ref(), e)),
        },
    }
}

/// A conditional overwrite where the store supports it; a local folder does not, and falls back to a
/// plain overwrite (one host, one filesystem: the window is a rename).
async fn put_update(
    loc: &Location,
    key: &ObjPath,
    body: PutPayload,
    version: UpdateVersion,
) -> Result<Option<UpdateVersion>, object_store::Error> {
    let update = PutOptions {
        mode: PutMode::Update(version),
        ..Default::default()
    };
    match loc.store.put_opts(key, body.clone(), update).await {
        Ok(r) => Ok(Some(UpdateVersion {
            e_tag: r.e_tag,
            version: r.version,
        })),
        Err(
            object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. },
        ) => {
            loc.store.put(key, body).await?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn renew_loop(
    loc: Location,
    key: ObjPath,
    mut info: LockInfo,
    mut version: Option<UpdateVersion>,
    ttl: Duration,
    lost: Arc<Mutex<Option<String>>>,
) {
    let give_up = |why: String| {
        *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    };
    // The lock lives in the store until `ttl` after its last renewal: a renewal may fail now and
    // then (a reset, a lost answer) as long as a later one lands before that.
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        match renew(&loc, &key, &mut info, &mut version, ttl).await {
            Ok(()) => renewed = tokio::time::Instant::now(),
            Err(Renewal::Lost(why)) => return give_up(why),
            Err(Renewal::Failed(why)) => {
                if tokio::time::Instant::now() + ttl / 3 >= renewed + ttl {
                    return give_up(format!(
                        "it could not be renewed before it expired at {} ({why})",
                        info.expires_at.format("%Y-%m-%dT%H:%M:%SZ")
                    ));
                }
            }
        }
    }
}

/// Why a renewal did not happen.
enum Renewal {
    /// The lock is not ours any more, or may not be: stop.
    Lost(String),
    /// The store did not answer as it should; the lock is still ours until it expires.
    Failed(String),
}

/// One renewal: checks the lock still carries our token, then pushes its expiry out.
async fn renew(
    loc: &Location,
    key: &ObjPath,
    info: &mut LockInfo,
    version: &mut Option<UpdateVersion>,
    ttl: Duration,
) -> Result<(), Renewal> {
    // Still ours? A successor that took over an expired lock wrote its own token.
    let (held, current) = match loc.store.get(key).await {
        Ok(r) => {
            let v = UpdateVersion {
                e_tag: r.meta.e_tag.clone(),
                version: r.meta.version.clone(),
            };
            let bytes = r
                .bytes()
                .await
                .map_err(|e| Renewal::Failed(format!("cannot read the lock to renew it: {e}")))?;
            (serde_json::from_slice::<LockInfo>(&bytes).ok(), v)
        }
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Renewal::Lost(
                "the lock object was deleted by someone else".into(),
            ));
        }
        Err(e) => {
            return Err(Renewal::Failed(format!(
                "cannot read the lock to renew it: {e}"
            )));
        }
    };
    match held {
        Some(held) if held.token == info.token => *version = Some(current).or(version.take()),
        Some(other) => {
            return Err(Renewal::Lost(format!(
                "the lock was taken over by {other} after it expired (renewals came too late)"
            )));
        }
        None => {
            return Err(Renewal::Lost(
                "the lock object was overwritten with something unreadable".into(),
            ));
        }
    }
    let mut next = info.clone();
    next.expires_at =
        Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(120));
    let body = PutPayload::from(serde_json::to_vec_pretty(&next).expect("lock serialises"));
    let expected = version.clone().unwrap_or(UpdateVersion {
        e_tag: None,
        version: None,
    });
    match put_update(loc, key, body, expected).await {
        Ok(v) => {
            *version = v;
            *info = next;
            Ok(())
        }
        Err(object_store::Error::Precondition { .. }) => Err(Renewal::Lost(
            "the lock changed between the check and the renewal (another run may have taken it over)"
                .into(),
        )),
        Err(e) => Err(Renewal::Failed(format!("cannot renew the lock: {e}"))),
    }
}

impl Lock {
    /// Whether the lock is still ours (renewal never failed). Checked before committing.
    pub fn held(&self) -> bool {
        self.lost_because().is_none()
    }

    /// Why the lock may no longer be ours, as far as is known.
    pub fn lost_because(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// Stops renewing and deletes the lock object if it is still ours.
    pub async fn release(self) {
        self.renewer.abort();
        if let Ok(r) = self.loc.store.get(&self.key).await
            && let Ok(bytes) = r.bytes().await
            && serde_json::from_slice::<LockInfo>(&bytes).is_ok_and(|i| i.token == self.info.token)
        {
            let _ = self.loc.store.delete(&self.key).await;
        }
    }
}

/// A holder on this very host whose process is gone (killed, crashed) need not be waited for.
fn died_on_this_host(holder: &LockInfo) -> bool {
    holder.host == crate::host::hostname()
        && holder.pid != 0
        && holder.pid != std::process::id()
        && !crate::host::process_alive(holder.pid)
}

fn new_info(command: &str, ttl: Duration) -> LockInfo {
    let now = Utc::now();
    let mut token = [0u8; 8];
    getrandom::fill(&mut token).expect("the OS has a random source");
    LockInfo {
        host: crate::host::hostname(),
        pid: std::process::id(),
        command: command.to_string(),
        acquired_at: now,
        expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(120)),
        token: hex::encode(token),
    }
}

fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).expect("the OS has a random source");
    u16::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::location::Access;

    fn memory() -> Location {
        Location::open("memory://bucket/x", Access::Write).unwrap()
    }

    fn key_of(loc: &Location, cluster: &str) -> ObjPath {
        loc.key(&[cluster, "lock.json"])
    }

    #[tokio::test]
    async fn a_second_taker_is_refused_and_named_the_holder() {
        let loc = memory();
        let first = acquire(
            &loc,
            key_of(&loc, "dremio"),
            "dremio",
            "backup",
            DEFAULT_TTL,
            None,
        )
        .await
        .unwrap();
        let err = acquire(
            &loc,
            key_of(&loc, "dremio"),
            "dremio",
            "prune",
            DEFAULT_TTL,
            None,
        )
        .await
        .err()
        .unwrap();
        let busy = err.downcast_ref::<LockBusy>().expect("a LockBusy");
        assert_eq!(busy.holder.command, "backup");
        assert!(err.to_string().contains("--wait-lock"));
        // Another cluster in the same location is independent.
        let other = acquire(
            &loc,
            key_of(&loc, "other"),
            "other",
            "backup",
            DEFAULT_TTL,
            None,
        )
        .await
        .unwrap();
        first.release().await;
        let again = acquire(
            &loc,
            key_of(&loc, "dremio"),
            "dremio",
            "prune",
            DEFAULT_TTL,
            None,
        )
        .await
        .unwrap();
        again.release().await;
        other.release().await;
    }

    #[tokio::test]
    async fn an_expired_lock_is_taken_over() {
        let loc = memory();
        let key = key_of(&loc, "dremio");
        let mut dead = new_info("backup", DEFAULT_TTL);
        dead.expires_at = Utc::now() - chrono::Duration::seconds(1);
        loc.store
            .put(&key, PutPayload::from(serde_json::to_vec(&dead).unwrap()))
            .await
            .unwrap();
        let lock = acquire(
            &loc,
            key_of(&loc, "dremio"),
            "dremio",
            "backup",
            DEFAULT_TTL,
            None,
        )
        .await
        .unwrap();
        assert_ne!(lock.info().token, dead.token);
        assert!(lock.held());
        lock.release().await;
    }

    #[tokio::test]
    async fn a_live_lock_of_a_dead_process_on_this_host_is_taken_over_at_once() {
        let loc = memory();
        let key = key_of(&loc, "dremio");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let mut dead = new_info("backup", DEFAULT_TTL);
        dead.pid = dead_pid;
        loc.store
            .put(&key, PutPayload::from(serde_json::to_vec(&dead).unwrap()))
            .await
            .unwrap();
        let lock = acquire(
            &loc,
            key_of(&loc, "dremio"),
            "dremio",
            "backup",
            DEFAULT_TTL,
            None,
        )
        .await
        .unwrap();
        assert_ne!(lock.info().token, dead.token);
        lock.release().await;
        // The same lock on another host is respected until it expires.
        dead.host = "elsewhere".into();
        loc.store
            .put(&key, PutPayload::from(serde_json::to_vec(&dead).unwrap()))
            .await
            .unwrap();
        assert!(
            acquire(
                &loc,
                key_of(&loc, "dremio"),
                "dremio",
                "backup",
                DEFAULT_TTL,
                None
            )
            .await
            .is_err()
        );
    }

    #[tokio::test]
    async fn waiting_gets_the_lock_once_released() {
        let loc = memory();
        let first = acquire(
            &loc,
            key_of(&loc, "dremio"),
            "dremio",
            "backup",
            DEFAULT_TTL,
            None,
        )
        .await
        .unwrap();
        let waiter = {
            let loc = loc.clone();
            tokio::spawn(async move {
                acquire(
                    &loc,
                    key_of(&loc, "dremio"),
                    "dremio",
                    "copy",
                    DEFAULT_TTL,
                    Some(Duration::from_secs(30)),
                )
                .await
            })
        };
        first.release().await;
        let lock = waiter.await.unwrap().unwrap();
        assert_eq!(lock.info().command, "copy");
        lock.release().await;
    }

    #[tokio::test(start_paused = true)]
    async fn renewal_keeps_a_long_run_alive_past_its_ttl() {
        let loc = memory();
        let ttl = Duration::from_secs(30);
        let lock = acquire(&loc, key_of(&loc, "dremio"), "dremio", "backup", ttl, None)
            .await
            .unwrap();
        // Paused time: sleeping advances the clock only as far as the renewer lets it run.
        for _ in 0..10 {
            tokio::time::sleep(ttl / 2).await;
        }
        assert!(lock.held());
        let key = key_of(&loc, "dremio");
        let stored: LockInfo =
            serde_json::from_slice(&loc.store.get(&key).await.unwrap().bytes().await.unwrap())
                .unwrap();
        assert_eq!(stored.token, lock.info().token);
        lock.release().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_lock_says_what_is_known_of_why() {
        let loc = memory();
        let ttl = Duration::from_secs(30);
        let key = key_of(&loc, "dremio");
        // Taken over by a successor: named.
        let lock = acquire(&loc, key_of(&loc, "dremio"), "dremio", "backup", ttl, None)
            .await
            .unwrap();
        let mut successor = new_info("prune", ttl);
        successor.host = "other-host".into();
        loc.store
            .put(
                &key,
                PutPayload::from(serde_json::to_vec(&successor).unwrap()),
            )
            .await
            .unwrap();
        tokio::time::sleep(ttl).await;
        let why = lock.lost_because().expect("lost");
        assert!(
            why.contains("taken over") && why.contains("other-host"),
            "{why}"
        );
        // Deleted: it says so, and does not claim a successor.
        let lock = {
            loc.store.delete(&key).await.unwrap();
            acquire(&loc, key_of(&loc, "dremio"), "dremio", "backup", ttl, None)
                .await
                .unwrap()
        };
        loc.store.delete(&key).await.unwrap();
        tokio::time::sleep(ttl).await;
        let why = lock.lost_because().expect("lost");
        assert!(
            why.contains("deleted") && !why.contains("taken over"),
            "{why}"
        );
    }

    /// An in-memory store whose next `n` conditional updates fail as a lost answer would.
    #[derive(Debug)]
    struct FlakyUpdates {
        inner: object_store::memory::InMemory,
        failures: std::sync::atomic::AtomicUsize,
    }

    impl std::fmt::Display for FlakyUpdates {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("FlakyUpdates")
        }
    }

    #[async_trait::async_trait]
    impl object_store::ObjectStore for FlakyUpdates {
        async fn put_opts(
            &self,
            location: &ObjPath,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            use std::sync::atomic::Ordering::SeqCst;
            if matches!(opts.mode, PutMode::Update(_))
                && self
                    .failures
                    .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                return Err(object_store::Error::Generic {
                    store: "flaky",
                    source: "connection reset".into(),
                });
            }
            self.inner.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &ObjPath,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &ObjPath,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: futures::stream::BoxStream<'static, object_store::Result<ObjPath>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<ObjPath>> {
            self.inner.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&ObjPath>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
        {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&ObjPath>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &ObjPath,
            to: &ObjPath,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_that_fails_once_is_tried_again_before_the_lock_expires() {
        let mut loc = memory();
        let flaky = Arc::new(FlakyUpdates {
            inner: object_store::memory::InMemory::new(),
            failures: std::sync::atomic::AtomicUsize::new(1),
        });
        loc.store = flaky.clone();
        let ttl = Duration::from_secs(30);
        let lock = acquire(&loc, key_of(&loc, "dremio"), "dremio", "backup", ttl, None)
            .await
            .unwrap();
        for _ in 0..6 {
            tokio::time::sleep(ttl / 2).await;
        }
        assert!(lock.held(), "{:?}", lock.lost_because());
        // Failing for longer than the lock lives loses it, and says so.
        flaky
            .failures
            .store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(ttl * 2).await;
        let why = lock
            .lost_because()
            .expect("lost once renewals kept failing");
        assert!(
            why.contains("could not be renewed before it expired"),
            "{why}"
        );
    }
}
