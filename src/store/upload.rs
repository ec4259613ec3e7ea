//! Streaming upload: a blocking producer writes into a [`ChunkWriter`]; an async task feeds the chunks
//! to a multipart upload with a bounded number of parts in flight. A producer that stops without
//! finishing makes the upload abort, so a failed run never leaves a complete-looking object.

use std::io::{self, Write};

use bytes::{Bytes, BytesMut};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, WriteMultipart};
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
/// behind (back-pressure).
pub struct ChunkWriter {
    tx: mpsc::Sender<Chunk>,
    buf: BytesMut,
    chunk_size: usize,
    /// Cancelled on SIGINT/SIGTERM: the producer stops at its next chunk.
    cancel: CancellationToken,
}

impl ChunkWriter {
    /// Sends what is buffered and the end marker.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buffered()?;
        self.tx.blocking_send(Chunk::End).map_err(|_| upload_gone())
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
            buf: BytesMut::with_capacity(chunk_size),
            chunk_size,
            cancel,
        },
        rx,
    )
}

/// Uploads what arrives on `rx` to `key`. Completes the object only after [`Chunk::End`]; any error,
/// or a producer that goes away without it, aborts the multipart upload.
pub async fn upload(
    loc: &Location,
    key: &ObjPath,
    mut rx: mpsc::Receiver<Chunk>,
    options: UploadOptions,
) -> Result<u64, StoreError> {
    loc.prepare_parent(key)?;
    let err = |e| classify_error(loc, "upload", key.as_ref(), e);
    let multipart = loc.store.put_multipart(key).await.map_err(err)?;
    let mut writer = WriteMultipart::new_with_chunk_size(multipart, options.part_size);
    let mut total = 0u64;
    loop {
        match rx.recv().await {
            Some(Chunk::Data(data)) => {
                if let Err(e) = writer.wait_for_capacity(options.parts_in_flight).await {
                    let _ = writer.abort().await;
                    return Err(err(e));
                }
                total += data.len() as u64;
                writer.put(data);
            }
            Some(Chunk::End) => break,
            None => {
                let _ = writer.abort().await;
                return Err(StoreError::Interrupted);
            }
        }
    }
    writer.finish().await.map_err(err)?;
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
