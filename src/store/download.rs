//! Parallel download: an async task fetches an object, as one streamed GET when it is small and
//! the store is remote, else as consecutive ranges with several requests in flight, and hands
//! its bytes, in order, to a blocking consumer through a bounded channel.

use std::io::{self, Read};

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Location, StoreError, classify_error};

/// The blocking side: reads the object's bytes in order.
pub struct ChunkReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
    /// Cancelled on SIGINT/SIGTERM: the consumer stops at its next read.
    cancel: CancellationToken,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.cancel.is_cancelled() {
                return Err(
                    // Not ErrorKind::Interrupted: std retries those forever.
                    io::Error::other("interrupted by a signal"),
                );
            }
            match self.rx.blocking_recv() {
                Some(next) => self.current = next,
                // The task ended: at the object's end, or after an error it reports itself.
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// Objects up to this size on a remote store are one streamed GET. Each ranged GET is a request of
/// its own: a first-byte wait on S3 (where 8 to 16 MiB ranges are the advice), and work on the
/// server (SeaweedFS spent 1.4x the CPU serving a 1 GiB restore in 1 MiB ranges). A stream holds
/// no more than the channel's few pieces, so small objects gain nothing from ranges.
pub const WHOLE_GET_MAX: u64 = 16 << 20;
/// The ranges of a larger object on a remote store. Against 1 MiB ranges, on a restore of 64 MiB
/// tables from SeaweedFS: half the server's CPU (3.0 vs 6.0 s for 2 GiB), for about 25 MiB more
/// RSS.
pub const REMOTE_RANGE: u64 = 8 << 20;

/// Starts downloading `size` bytes of `key`. On a remote store: up to [`WHOLE_GET_MAX`] with one
/// streamed GET of those bytes, else in ranges of [`REMOTE_RANGE`]. On a local folder: in ranges of
/// `local_range`. `LIFEBOAT_RANGE_SIZE` replaces all three sizes.
/// The returned task's result says whether every byte was delivered; a consumer that sees an early
/// end must ask it. A GET whose answer breaks off is resumed where it broke, by object_store,
/// within the retry budget (`LIFEBOAT_MAX_RETRIES`, `LIFEBOAT_RETRY_TIMEOUT`); each resumption is
/// a retry note.
pub fn start(
    loc: &Location,
    key: &ObjPath,
    size: u64,
    local_range: u64,
    in_flight: usize,
    cancel: CancellationToken,
) -> (ChunkReader, tokio::task::JoinHandle<Result<(), StoreError>>) {
    let remote = loc.is_remote();
    let (whole_max, range_size) = match super::location::range_size() {
        Some(set) => (set, set),
        None if remote => (WHOLE_GET_MAX, REMOTE_RANGE),
        None => (0, local_range),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(2);
    let (loc, key) = (loc.clone(), key.clone());
    let task = if remote && size > 0 && size <= whole_max {
        tokio::spawn(streamed(loc, key, size, tx))
    } else {
        tokio::spawn(ranged(loc, key, size, range_size, in_flight, tx))
    };
    let reader = ChunkReader {
        rx,
        current: Bytes::new(),
        cancel,
    };
    (reader, task)
}

/// The first `size` bytes of `key` in one GET, piece by piece as they arrive.
async fn streamed(
    loc: Location,
    key: ObjPath,
    size: u64,
    tx: mpsc::Sender<Bytes>,
) -> Result<(), StoreError> {
    let classify = |e| classify_error(&loc, "download", key.as_ref(), e);
    let options = GetOptions {
        // Never more than the bytes expected, whatever the stored object's size.
        range: Some(GetRange::Bounded(0..size)),
        ..GetOptions::default()
    };
    let mut body = loc
        .store
        .get_opts(&key, options)
        .await
        .map_err(classify)?
        .into_stream();
    while let Some(piece) = body.next().await {
        if tx.send(piece.map_err(classify)?).await.is_err() {
            // The consumer stopped (it failed or was interrupted); it reports why.
            return Ok(());
        }
    }
    Ok(())
}

/// `size` bytes of `key` in ranges of `range_size`, `in_flight` requests at a time, in order.
async fn ranged(
    loc: Location,
    key: ObjPath,
    size: u64,
    range_size: u64,
    in_flight: usize,
    tx: mpsc::Sender<Bytes>,
) -> Result<(), StoreError> {
    let ranges = (0..size.div_ceil(range_size))
        .map(move |i| i * range_size..((i + 1) * range_size).min(size));
    let mut parts = futures::stream::iter(ranges)
        .map(|range| {
            let loc = loc.clone();
            let key = key.clone();
            async move {
                loc.store
                    .get_range(&key, range)
                    .await
                    .map_err(|e| classify_error(&loc, "download", key.as_ref(), e))
            }
        })
        .buffered(in_flight.max(1));
    while let Some(part) = parts.next().await {
        if tx.send(part?).await.is_err() {
            // The consumer stopped (it failed or was interrupted); it reports why.
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::location::Access;
    use object_store::{ObjectStoreExt, PutPayload};

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    async fn read_all(loc: &Location, key: &ObjPath, size: u64) -> Vec<u8> {
        let (mut reader, task) = start(loc, key, size, 1000, 3, CancellationToken::new());
        let out = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            reader.read_to_end(&mut out).map(|_| out)
        })
        .await
        .unwrap()
        .unwrap();
        task.await.unwrap().unwrap();
        out
    }

    #[tokio::test]
    async fn both_ways_deliver_exactly_the_bytes_asked_for_in_order() {
        let remote = Location::open("memory://bucket/p", Access::Write).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_directory_path(dir.path()).unwrap();
        let local = Location::open(url.as_str(), Access::Write).unwrap();
        assert!(remote.is_remote() && !local.is_remote());
        let data = bytes(10_500);
        for loc in [&remote, &local] {
            let key = loc.key(&["o"]);
            loc.store
                .put(&key, PutPayload::from(data.clone()))
                .await
                .unwrap();
            // All of it: one streamed GET (memory) or 11 ranges of 1,000 bytes (local).
            assert_eq!(read_all(loc, &key, data.len() as u64).await, data);
            // Fewer bytes than the object holds: never more than asked for.
            assert_eq!(read_all(loc, &key, 4_321).await, data[..4_321]);
        }
    }

    #[tokio::test]
    async fn a_remote_object_over_the_whole_get_bound_comes_in_order_through_ranges() {
        let remote = Location::open("memory://bucket/p", Access::Write).unwrap();
        let key = remote.key(&["big"]);
        // Three ranges of REMOTE_RANGE, the last one short.
        let data = bytes((2 * REMOTE_RANGE + 12_345) as usize);
        assert!(data.len() as u64 > WHOLE_GET_MAX);
        remote
            .store
            .put(&key, PutPayload::from(data.clone()))
            .await
            .unwrap();
        assert!(read_all(&remote, &key, data.len() as u64).await == data);
    }

    #[tokio::test]
    async fn a_missing_object_fails_the_task_and_ends_the_reader() {
        let remote = Location::open("memory://bucket/p", Access::Write).unwrap();
        let key = remote.key(&["absent"]);
        let (mut reader, task) = start(&remote, &key, 10, 1000, 3, CancellationToken::new());
        let read = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            reader.read_to_end(&mut out).map(|_| out.len())
        });
        assert_eq!(read.await.unwrap().unwrap(), 0);
        assert!(task.await.unwrap().is_err());
    }
}
