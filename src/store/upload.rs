//! Streaming upload: a blocking producer writes into a [`ChunkWriter`]; an async task feeds the chunks
//! to a multipart upload with a bounded number of parts in flight. A producer that stops without
//! finishing makes the upload abort, so a failed run never leaves a complete-looking object.

use std::io::{self, Write};

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use object_store::path::Path as ObjPath;
use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Location, StoreError, classify_error};

/// What flows from the producer to the uploader.
pub enum Chunk {
    Data(Bytes),
    /// The producer finished successfully: the upload may complete.
    End,
}

/// The blocking side: buffers writes into chunks and hands them to the uploader, waiting when it is
/// behind (back-pressure). It can also hand the same chunks (shared, not copied) to the uploads of
/// copies ([`ChunkWriter::also`]): a copy whose upload stops is dropped, and the rest go on.
pub struct ChunkWriter {
    tx: mpsc::Sender<Chunk>,
    copies: Vec<Option<mpsc::Sender<Chunk>>>,
    buf: BytesMut,
    chunk_size: usize,
    /// Cancelled on SIGINT/SIGTERM: the producer stops at its next chunk.
    cancel: CancellationToken,
}

impl ChunkWriter {
    /// Sends what is buffered and the end marker.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buffered()?;
        for copy in self.copies.iter().flatten() {
            // A copy gone has its own error, which its upload reports.
            let _ = copy.blocking_send(Chunk::End);
        }
        self.tx.blocking_send(Chunk::End).map_err(|_| upload_gone())
    }

    /// Another upload of the same bytes: the receiver for it, `depth` chunks deep. Only before the
    /// first chunk is sent, so that a copy holds every byte.
    pub fn also(&mut self, depth: usize) -> mpsc::Receiver<Chunk> {
        let (tx, rx) = mpsc::channel(depth.max(1));
        self.copies.push(Some(tx));
        rx
    }

    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.cancel.is_cancelled() {
            return Err(
                // Not ErrorKind::Interrupted: std retries those forever.
                io::Error::other("interrupted by a signal"),
            );
        }
        let data = self.buf.split().freeze();
        for slot in &mut self.copies {
            if let Some(copy) = slot
                && copy.blocking_send(Chunk::Data(data.clone())).is_err()
            {
                *slot = None;
            }
        }
        self.tx
            .blocking_send(Chunk::Data(data))
            .map_err(|_| upload_gone())
    }
}

fn upload_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped")
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= self.chunk_size {
            self.send_buffered()?;
            self.buf.reserve(self.chunk_size);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sizes of the upload pipeline.
#[derive(Debug, Clone, Copy)]
pub struct UploadOptions {
    pub part_size: usize,
    pub parts_in_flight: usize,
}

impl UploadOptions {
    /// Parts of at least 8 MiB (or `LIFEBOAT_PART_SIZE`), large enough that `expected_bytes` fits in
    /// S3's 10,000 parts.
    pub fn for_size(expected_bytes: u64, parts_in_flight: usize) -> Self {
        Self::sized(
            expected_bytes,
            parts_in_flight,
            super::location::part_size(),
        )
    }

    fn sized(expected_bytes: u64, parts_in_flight: usize, smallest: Option<u64>) -> Self {
        const MIN: u64 = 8 * 1024 * 1024;
        let needed = expected_bytes.div_ceil(9_000).next_multiple_of(1024 * 1024);
        let part = needed.max(smallest.unwrap_or(MIN));
        UploadOptions {
            part_size: part as usize,
            parts_in_flight: parts_in_flight.max(1),
        }
    }
}

/// A channel pair: the writer for the blocking producer (stopping once `cancel` is), the receiver
/// for [`upload`].
pub fn channel(
    chunk_size: usize,
    depth: usize,
    cancel: CancellationToken,
) -> (ChunkWriter, mpsc::Receiver<Chunk>) {
    let (tx, rx) = mpsc::channel(depth);
    (
        ChunkWriter {
            tx,
            copies: Vec::new(),
            buf: BytesMut::with_capacity(chunk_size),
            chunk_size,
            cancel,
        },
        rx,
    )
}

/// Part sizes grow so that an upload of unknown size fits S3's limits: the first 1,000 parts take
/// the base size, and each next 1,000 twice the last (capped at S3's 5 GiB). From 8 MiB, 10,000
/// parts reach past 7.8 TiB, more than S3's 5 TiB object limit.
pub fn part_size(base: usize, part: usize) -> usize {
    const MAX_PART: usize = 5 << 30;
    let doublings = (part / 1000).min(20) as u32;
    base.saturating_mul(1usize << doublings).min(MAX_PART)
}

/// Takes exactly `n` bytes from the front of `pending` (which holds at least that many).
fn take(pending: &mut VecDeque<Bytes>, n: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut left = n;
    while left > 0 {
        let Some(mut front) = pending.pop_front() else {
            break;
        };
        if front.len() > left {
            let head = front.split_to(left);
            pending.push_front(front);
            out.push(head);
            left = 0;
        } else {
            left -= front.len();
            out.push(front);
        }
    }
    out
}

/// Uploads what arrives on `rx` to `key`. Completes the object only after [`Chunk::End`]; any error,
/// or a producer that goes away without it, aborts the multipart upload. An object that ends
/// before its first part is full is one PUT; a longer one is a multipart upload whose parts grow
/// (see [`part_size`]) with at most `parts_in_flight` parts uploading at once.
pub async fn upload(
    loc: &Location,
    key: &ObjPath,
    mut rx: mpsc::Receiver<Chunk>,
    options: UploadOptions,
) -> Result<u64, StoreError> {
    loc.prepare_parent(key)?;
    let err = |e| classify_error(loc, "upload", key.as_ref(), e);
    let mut pending: VecDeque<Bytes> = VecDeque::new();
    let mut pending_len = 0usize;
    let mut multipart: Option<Box<dyn MultipartUpload>> = None;
    let mut parts = FuturesUnordered::new();
    let mut part = 0usize;
    let mut total = 0u64;
    let failed = loop {
        match rx.recv().await {
            Some(Chunk::Data(data)) => {
                total += data.len() as u64;
                pending_len += data.len();
                pending.push_back(data);
                let mut failure = None;
                while pending_len >= part_size(options.part_size, part) {
                    let size = part_size(options.part_size, part);
                    let mp = match &mut multipart {
                        Some(mp) => mp,
                        None => match loc.store.put_multipart(key).await {
                            Ok(mp) => multipart.insert(mp),
                            Err(e) => return Err(err(e)),
                        },
                    };
                    while parts.len() >= options.parts_in_flight.max(1) {
                        if let Some(Err(e)) = parts.next().await {
                            failure = Some(e);
                            break;
                        }
                    }
                    if failure.is_some() {
                        break;
                    }
                    let payload: PutPayload = take(&mut pending, size).into_iter().collect();
                    pending_len -= size;
                    parts.push(mp.put_part(payload));
                    part += 1;
                }
                if let Some(e) = failure {
                    break Some(err(e));
                }
            }
            Some(Chunk::End) => break None,
            None => break Some(StoreError::Interrupted),
        }
    };
    let Some(mut mp) = multipart else {
        if let Some(e) = failed {
            return Err(e);
        }
        let payload: PutPayload = pending.into_iter().collect();
        loc.store.put(key, payload).await.map_err(err)?;
        loc.tighten(key)?;
        return Ok(total);
    };
    let mut failed = failed;
    if failed.is_none() && pending_len > 0 {
        parts.push(mp.put_part(pending.drain(..).collect()));
    }
    while let Some(done) = parts.next().await {
        if let (Err(e), None) = (done, &failed) {
            failed = Some(err(e));
        }
    }
    if let Some(e) = failed {
        let _ = mp.abort().await;
        return Err(e);
    }
    if let Err(e) = mp.complete().await {
        let _ = mp.abort().await;
        return Err(err(e));
    }
    loc.tighten(key)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_respect_the_part_limit() {
        assert_eq!(UploadOptions::for_size(0, 4).part_size, 8 << 20);
        assert_eq!(UploadOptions::for_size(50 << 30, 4).part_size, 8 << 20);
        let huge = UploadOptions::for_size(1 << 40, 4);
        assert!((1u64 << 40).div_ceil(huge.part_size as u64) <= 10_000);
        assert_eq!(huge.part_size % (1 << 20), 0);
    }

    #[test]
    fn growing_parts_reach_past_s3s_largest_object_within_its_part_limits() {
        let base = 8 << 20;
        let total: u64 = (0..10_000).map(|n| part_size(base, n) as u64).sum();
        assert!(total > 5 << 40, "{total}");
        assert!((0..10_000).all(|n| part_size(base, n) <= 5 << 30));
        assert_eq!(part_size(base, 0), base);
        assert_eq!(part_size(base, 999), base);
        assert_eq!(part_size(base, 1000), 2 * base);
    }

    async fn upload_of(chunks: &[usize], part: usize) -> (Result<u64, StoreError>, Vec<u8>) {
        let loc = Location::open("memory://bucket/p", super::super::location::Access::Write)
            .expect("a memory location");
        let key = loc.key(&["object"]);
        let (tx, rx) = mpsc::channel(chunks.len() + 1);
        let mut expected = Vec::new();
        for (i, n) in chunks.iter().enumerate() {
            let data = vec![i as u8; *n];
            expected.extend_from_slice(&data);
            tx.send(Chunk::Data(Bytes::from(data))).await.unwrap();
        }
        tx.send(Chunk::End).await.unwrap();
        let options = UploadOptions {
            part_size: part,
            parts_in_flight: 2,
        };
        let done = upload(&loc, &key, rx, options).await;
        let stored = match loc.store.get(&key).await {
            Ok(r) => r.bytes().await.unwrap().to_vec(),
            Err(_) => Vec::new(),
        };
        assert!(done.is_err() || stored == expected);
        (done, stored)
    }

    #[tokio::test]
    async fn small_and_multipart_uploads_store_exactly_what_was_sent() {
        let (done, stored) = upload_of(&[10, 20], 1 << 20).await;
        assert_eq!(done.unwrap(), 30);
        assert_eq!(stored.len(), 30);
        // Parts cut across chunks, and a last part shorter than the others.
        let (done, stored) = upload_of(&[700, 900, 1300, 5], 1000).await;
        assert_eq!(done.unwrap(), 2905);
        assert_eq!(stored.len(), 2905);
    }

    #[tokio::test]
    async fn a_producer_gone_without_its_end_leaves_no_object() {
        let loc = Location::open("memory://bucket/p", super::super::location::Access::Write)
            .expect("a memory location");
        let key = loc.key(&["object"]);
        let (tx, rx) = mpsc::channel(4);
        tx.send(Chunk::Data(Bytes::from(vec![1u8; 3000])))
            .await
            .unwrap();
        drop(tx);
        let options = UploadOptions {
            part_size: 1000,
            parts_in_flight: 2,
        };
        let done = upload(&loc, &key, rx, options).await;
        assert!(matches!(done, Err(StoreError::Interrupted)), "{done:?}");
        assert!(loc.store.get(&key).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_gets_every_byte_and_one_that_stops_does_not_stop_the_rest() {
        let loc = Location::open("memory://bucket/p", super::super::location::Access::Write)
            .expect("a memory location");
        let (main_key, copy_key) = (loc.key(&["main"]), loc.key(&["copy"]));
        let (mut writer, rx) = channel(1000, 2, CancellationToken::new());
        let copy_rx = writer.also(2);
        let mut gone_rx = writer.also(1);
        gone_rx.close();
        drop(gone_rx);
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let producer = tokio::task::spawn_blocking(move || {
            writer.write_all(&sent)?;
            writer.finish()
        });
        let options = UploadOptions {
            part_size: 2048,
            parts_in_flight: 2,
        };
        let (main, copy) = tokio::join!(
            upload(&loc, &main_key, rx, options),
            upload(&loc, &copy_key, copy_rx, options)
        );
        producer.await.unwrap().unwrap();
        assert_eq!(main.unwrap(), 5000);
        assert_eq!(copy.unwrap(), 5000);
        for key in [&main_key, &copy_key] {
            let stored = loc.store.get(key).await.unwrap().bytes().await.unwrap();
            assert_eq!(stored.as_ref(), &data[..]);
        }
    }

    #[test]
    fn a_smaller_part_size_is_honoured_within_the_part_limit() {
        assert_eq!(
            UploadOptions::sized(50 << 20, 4, Some(1 << 20)).part_size,
            1 << 20
        );
        assert_eq!(
            UploadOptions::sized(0, 4, Some(300 << 10)).part_size,
            300 << 10
        );
        let huge = UploadOptions::sized(1 << 40, 4, Some(1 << 20));
        assert!((1u64 << 40).div_ceil(huge.part_size as u64) <= 10_000);
    }
}
