//! Early writeback for extraction: the writeback of large files is started (not waited for) on a
//! worker thread while the next members are extracted, so that the flush a restore ends with
//! (`syncfs`, before anything is visible) waits only for the last files instead of the whole tree.
//! An fdatasync per file did the same but cost a journal commit each: 20% of a 1 GiB restore.
//! Every [`SYNC_EVERY`] bytes of large files, the worker also flushes the filesystem (`syncfs`
//! through the last file): writeback alone left the final flush a device flush of the whole tree
//! to wait for (1.1 s of a 5.5 s 1 GiB restore here); with it the final flush waits for the last
//! few files only (0.90x the restore's time), and a writeback error is seen by a descriptor that
//! was open when it happened.

use std::fs::File;
use std::io;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Files at least this large are handed to the worker; smaller ones are left to the final flush
/// (one call for thousands of small files beats one per file).
pub const MIN_BYTES: u64 = 1 << 20;

/// The worker flushes the filesystem after this many bytes of files handed to it (64 MiB gave
/// the same restore time).
pub const SYNC_EVERY: u64 = 128 << 20;

/// At most this many finished files wait for the worker (open descriptors, not memory).
const QUEUE: usize = 16;

/// A file to flush, its size, and what to call it in an error.
type Job = (File, u64, String);

pub struct Flusher {
    tx: Option<SyncSender<Job>>,
    worker: Option<JoinHandle<Result<(), (String, io::Error)>>>,
}

impl Flusher {
    pub fn start() -> Flusher {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let worker = std::thread::spawn(move || {
            let mut first_error = None;
            let mut since_sync = 0;
            for (file, size, name) in rx {
                since_sync += size;
                let flushed = start_writeback(&file).and_then(|()| {
                    if since_sync < SYNC_EVERY {
                        return Ok(());
                    }
                    since_sync = 0;
                    rustix::fs::syncfs(&file).map_err(io::Error::from)
                });
                if let Err(e) = flushed
                    && first_error.is_none()
                {
                    first_error = Some((name, e));
                }
            }
            first_error.map_or(Ok(()), Err)
        });
        Flusher {
            tx: Some(tx),
            worker: Some(worker),
        }
    }

    /// Queues a finished file of `size` bytes (waits while the queue is full: the disk sets the
    /// pace).
    pub fn push(&self, file: File, size: u64, name: String) {
        if let Some(tx) = &self.tx {
            // A worker that is gone has an error to report at `finish`; the file just closes.
            let _ = tx.send((file, size, name));
        }
    }

    /// Waits for every queued flush; the first failure, with the file it concerns.
    pub fn finish(mut self) -> Result<(), (String, io::Error)> {
        self.tx.take();
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(("(flush worker)".into(), io::Error::other("it panicked"))),
            None => Ok(()),
        }
    }
}

/// Starts writing the file's dirty pages back without waiting for them (Linux's
/// `POSIX_FADV_DONTNEED` does so, and cannot drop a page still dirty): the restore's final
/// `syncfs` then waits for what is left, with no journal commit per file.
fn start_writeback(file: &File) -> io::Result<()> {
    rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed).map_err(io::Error::from)
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_files_are_flushed_and_a_failure_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = Flusher::start();
        for i in 0..40 {
            let path = dir.path().join(format!("f{i}"));
            std::fs::write(&path, vec![7u8; 4096]).unwrap();
            // Sizes as if each were 16 MiB, so that the filesystem flushes (every eighth file) run and
            // must succeed too.
            flusher.push(
                File::options().write(true).open(&path).unwrap(),
                16 << 20,
                format!("f{i}"),
            );
        }
        flusher.finish().unwrap();
        // Advice on a pipe fails (ESPIPE), and the failure is named.
        let (reader, _writer) = std::io::pipe().unwrap();
        let flusher = Flusher::start();
        flusher.push(
            File::from(std::os::fd::OwnedFd::from(reader)),
            4096,
            "the pipe".into(),
        );
        let (name, _) = flusher.finish().unwrap_err();
        assert_eq!(name, "the pipe");
    }
}
