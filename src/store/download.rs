//! Ranged parallel download: an async task fetches consecutive ranges with several requests in
//! flight and hands them, in order, to a blocking consumer through a bounded channel.

use std::io::{self, Read};

use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;
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

/// Starts downloading `size` bytes of `key` in ranges of `range_size` (or `LIFEBOAT_RANGE_SIZE`).
/// The returned task's result says whether every byte was delivered; a consumer that sees an early
/// end must ask it. A range whose answer breaks off is resumed where it broke, by object_store,
/// within the retry budget (`LIFEBOAT_MAX_RETRIES`, `LIFEBOAT_RETRY_TIMEOUT`); each resumption is
/// a retry note.
pub fn start(
    loc: &Location,
    key: &ObjPath,
    size: u64,
    range_size: u64,
    in_flight: usize,
    cancel: CancellationToken,
) -> (ChunkReader, tokio::task::JoinHandle<Result<(), StoreError>>) {
    let range_size = super::location::range_size().unwrap_or(range_size);
    let (tx, rx) = mpsc::channel::<Bytes>(2);
    let loc = loc.clone();
    let key = key.clone();
    let task = tokio::spawn(async move {
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
    });
    (
        ChunkReader {
            rx,
            current: Bytes::new(),
            cancel,
        },
        task,
    )
}
