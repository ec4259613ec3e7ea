//! Independent zstd frames compressed by a pool of threads, each with its own reused context.
//! Format 2 cuts every object into frames of at most [`FRAME_RAW`] tar bytes: concatenated frames
//! decompress to the concatenated input (`zstd -d` and every decoder read them as one stream), and
//! since no frame waits for another, the pool stays busy across object boundaries, where one
//! multi-threaded zstd stream per object drains its workers at every object's end.
//!
//! Memory: at most [`FramePool::max_in_flight`] frames are out at once, each an input buffer of
//! [`FRAME_RAW`] and an output of zstd's bound for it; buffers are reused, never grown.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Tar bytes per frame, at most: zstd's level-3 window. Against 4 MiB frames, on a 1 GiB
/// Dremio-like tree: 1.6% more stored bytes, 0.94x the time and 62 vs 80 MiB peak.
pub const FRAME_RAW: usize = 2 << 20;

struct Job {
    raw: Vec<u8>,
    out: Vec<u8>,
    done: SyncSender<Done>,
}

struct Done {
    raw: Vec<u8>,
    out: Vec<u8>,
    result: io::Result<()>,
}

/// A frame being compressed; [`FramePool::wait`] gives its bytes.
pub struct Ticket(Receiver<Done>);

pub struct FramePool {
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    max_in_flight: usize,
    in_flight: usize,
    spare_raw: Vec<Vec<u8>>,
    spare_out: Vec<Vec<u8>>,
}

impl FramePool {
    /// `workers` threads compressing at `level`, every frame with its checksum.
    pub fn start(level: i32, workers: usize) -> io::Result<FramePool> {
        let workers = workers.max(1);
        // One frame per worker being compressed, one per worker waiting, one being filled: the
        // workers never wait for the thread that fills them while it reads the next file.
        let max_in_flight = 2 * workers + 1;
        let (tx, rx) = sync_channel::<Job>(max_in_flight);
        let rx = Arc::new(Mutex::new(rx));
        let mut handles = Vec::with_capacity(workers);
        for n in 0..workers {
            let mut compressor = zstd::bulk::Compressor::new(level)?;
            compressor.set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(true))?;
            let rx = rx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("lifeboat-zstd-{n}"))
                .spawn(move || work(compressor, &rx))?;
            handles.push(handle);
        }
        Ok(FramePool {
            jobs: Some(tx),
            workers: handles,
            max_in_flight,
            in_flight: 0,
            spare_raw: Vec::new(),
            spare_out: Vec::new(),
        })
    }

    /// Frames that may be out at once; [`FramePool::submit`] refuses one more.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Whether another frame may be submitted now (else wait for the oldest first).
    pub fn has_room(&self) -> bool {
        self.in_flight < self.max_in_flight
    }

    /// An empty input buffer with room for [`FRAME_RAW`] bytes.
    pub fn buffer(&mut self) -> Vec<u8> {
        self.spare_raw
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(FRAME_RAW))
    }

    /// Hands `raw` (at most [`FRAME_RAW`] bytes) to the pool. The caller keeps at most
    /// [`FramePool::max_in_flight`] tickets unresolved.
    pub fn submit(&mut self, raw: Vec<u8>) -> io::Result<Ticket> {
        if !self.has_room() || raw.len() > FRAME_RAW {
            return Err(io::Error::other(
                "a frame submitted beyond the pool's bounds (a lifeboat bug)",
            ));
        }
        let (done, ticket) = sync_channel(1);
        let out = self.spare_out.pop().unwrap_or_default();
        let job = Job { raw, out, done };
        match self.jobs.as_ref().map(|tx| tx.send(job)) {
            Some(Ok(())) => {
                self.in_flight += 1;
                Ok(Ticket(ticket))
            }
            _ => Err(io::Error::other("the zstd workers stopped")),
        }
    }

    /// The frame's compressed bytes, once ready (blocks). Hand the buffer back with
    /// [`FramePool::recycle`].
    pub fn wait(&mut self, ticket: Ticket) -> io::Result<Vec<u8>> {
        let done = ticket.0.recv();
        self.resolved(done.ok())
    }

    /// The frame's bytes if they are ready, else the ticket back.
    pub fn try_wait(&mut self, ticket: Ticket) -> Result<io::Result<Vec<u8>>, Ticket> {
        match ticket.0.try_recv() {
            Ok(done) => Ok(self.resolved(Some(done))),
            Err(TryRecvError::Empty) => Err(ticket),
            Err(TryRecvError::Disconnected) => Ok(self.resolved(None)),
        }
    }

    fn resolved(&mut self, done: Option<Done>) -> io::Result<Vec<u8>> {
        self.in_flight -= 1;
        let Some(Done {
            mut raw,
            out,
            result,
        }) = done
        else {
            return Err(io::Error::other("a zstd worker stopped"));
        };
        raw.clear();
        self.spare_raw.push(raw);
        result.map(|()| out)
    }

    /// A frame's buffer, written out.
    pub fn recycle(&mut self, out: Vec<u8>) {
        if self.spare_out.len() < self.max_in_flight {
            self.spare_out.push(out);
        }
    }
}

impl Drop for FramePool {
    fn drop(&mut self) {
        // The workers end with the channel (after the frame each is on).
        self.jobs.take();
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

fn work(mut compressor: zstd::bulk::Compressor<'static>, jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(Job { raw, mut out, done }) = job else {
            return;
        };
        out.clear();
        let bound = zstd::zstd_safe::compress_bound(raw.len());
        out.reserve_exact(bound);
        let result = compressor.compress_to_buffer(&raw, &mut out).map(|_| ());
        // A caller that went away (an abandoned backup) does not stop the others' frames.
        let _ = done.send(Done { raw, out, result });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_concatenate_to_the_input_in_submission_order() {
        let mut pool = FramePool::start(3, 2).unwrap();
        let mut input = Vec::new();
        let mut tickets = std::collections::VecDeque::new();
        let mut stored = Vec::new();
        let mut frames = 0;
        for n in 0..40u32 {
            // Sizes from empty to a full frame; compressible and not.
            let len = [0, 1, 511, 100_000, FRAME_RAW][n as usize % 5];
            let mut raw = pool.buffer();
            raw.extend((0..len).map(|i| {
                if n % 2 == 0 {
                    (i % 251) as u8
                } else {
                    (i as u32)
                        .wrapping_mul(2_654_435_761)
                        .wrapping_add(n)
                        .to_le_bytes()[1]
                }
            }));
            input.extend_from_slice(&raw);
            if !pool.has_room() {
                let out = pool.wait(tickets.pop_front().unwrap()).unwrap();
                stored.extend_from_slice(&out);
                pool.recycle(out);
            }
            tickets.push_back(pool.submit(raw).unwrap());
            frames += 1;
        }
        for t in tickets {
            let out = pool.wait(t).unwrap();
            stored.extend_from_slice(&out);
            pool.recycle(out);
        }
        assert_eq!(frames, 40);
        assert_eq!(zstd::decode_all(&stored[..]).unwrap(), input);
        // Every frame is whole and checksummed: cutting the last byte fails.
        assert!(zstd::decode_all(&stored[..stored.len() - 1]).is_err());
    }

    #[test]
    fn the_pool_refuses_more_than_its_bound_and_oversized_frames() {
        let mut pool = FramePool::start(1, 1).unwrap();
        let mut tickets = Vec::new();
        for _ in 0..pool.max_in_flight() {
            tickets.push(pool.submit(b"x".to_vec()).unwrap());
        }
        assert!(!pool.has_room());
        assert!(pool.submit(b"x".to_vec()).is_err());
        let t = tickets.pop().unwrap();
        let out = pool.wait(t).unwrap();
        assert_eq!(zstd::decode_all(&out[..]).unwrap(), b"x");
        assert!(pool.has_room());
        assert!(pool.submit(vec![0; FRAME_RAW + 1]).is_err());
    }
}
