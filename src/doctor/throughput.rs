//! The throughput probe (etcd's and fio's practice): in its own folder on the volume, after a
//! free-space check, write random data in 1 MiB blocks with O_DIRECT (fdatasync where O_DIRECT is
//! refused), read it back, then time 4 KiB write+fdatasync pairs. Bounded in size and time, and
//! the folder is removed on every path, a cancelled run included.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::check::{Area, Check};

const A: Area = Area::Throughput;
const BLOCK: usize = 1 << 20;
/// O_DIRECT wants buffers, offsets and sizes aligned to the device's block (4 KiB covers them all).
const ALIGN: usize = 4096;
const LATENCY_SAMPLES: usize = 200;
/// Less room than this on the volume and the probe does not write at all.
const MIN_BYTES: u64 = 16 << 20;

/// How far the probe may go.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub bytes: u64,
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            bytes: 256 << 20,
            time: Duration::from_secs(10),
        }
    }
}

/// The probe was stopped by a signal (its folder is gone).
#[derive(Debug)]
pub struct Cancelled;

/// What was measured.
#[derive(Debug, Clone)]
struct Figures {
    written: u64,
    write: Duration,
    read: u64,
    read_time: Duration,
    direct: bool,
    latencies: Vec<Duration>,
}

/// MB/s (10^6 bytes, as Dremio's figures are given).
fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

/// Removes the probe's folder however the probe ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        if let Some(parent) = self.0.parent() {
            let _ = crate::fsutil::sync_dir(parent);
        }
    }
}

/// Runs the probe in `dir`; `required` is the lowest acceptable MB/s, `cancelled` is polled
/// between blocks.
pub fn probe(
    dir: &Path,
    required: f64,
    limits: Limits,
    cancelled: &dyn Fn() -> bool,
) -> Result<Vec<Check>, Cancelled> {
    let free = match crate::fsutil::free_bytes(dir) {
        Ok(f) => f,
        Err(e) => {
            return Ok(vec![unusable(format!(
                "cannot read the free space of {}: {e}",
                dir.display()
            ))]);
        }
    };
    let bytes = (limits.bytes.min(free / 4) / BLOCK as u64) * BLOCK as u64;
    if bytes < MIN_BYTES {
        return Ok(vec![
            Check::fail(
                "throughput.rate",
                A,
                format!(
                    "only {} free on {}: not probed",
                    crate::units::human_bytes(free),
                    dir.display()
                ),
            )
            .remedy("free space on the volume: Dremio needs room for its KV store to grow"),
        ]);
    }
    let mut tag = [0u8; 4];
    let _ = getrandom::fill(&mut tag);
    let scratch = Scratch(dir.join(format!(".lifeboat-doctor-io-{}", hex::encode(tag))));
    if let Err(e) = std::fs::create_dir(&scratch.0) {
        return Ok(vec![unusable(format!(
            "cannot create {}: {e}",
            scratch.0.display()
        ))]);
    }
    match measure(&scratch.0, bytes, limits.time, cancelled) {
        Ok(f) => Ok(judge(&f, required, free)),
        Err(Stop::Cancelled) => Err(Cancelled),
        Err(Stop::Io(e)) => Ok(vec![unusable(format!(
            "I/O error in {}: {e}",
            scratch.0.display()
        ))]),
    }
}

fn unusable(why: String) -> Check {
    Check::fail("throughput.rate", A, why)
        .remedy("paths.local must be writable by lifeboat's user to probe it (or give --no-probe)")
}

enum Stop {
    Cancelled,
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

/// A 1 MiB buffer aligned for O_DIRECT, without unsafe: an aligned window of a larger Vec.
struct Aligned {
    buf: Vec<u8>,
    at: usize,
}

impl Aligned {
    fn new() -> Aligned {
        let buf = vec![0u8; BLOCK + ALIGN];
        let at = buf.as_ptr().align_offset(ALIGN);
        Aligned { buf, at }
    }
    fn get(&mut self) -> &mut [u8] {
        &mut self.buf[self.at..self.at + BLOCK]
    }
}

fn open_data(path: &Path, direct: bool, write: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(write).create(write);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    o.open(path)
}

fn measure(
    dir: &Path,
    bytes: u64,
    time: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<Figures, Stop> {
    let started = Instant::now();
    let data = dir.join("data");
    let mut buf = Aligned::new();
    // tmpfs and some FUSE volumes refuse O_DIRECT (EINVAL): then fdatasync makes writes real.
    let (write, direct) = match write_blocks(&data, true, bytes, time * 4 / 10, &mut buf, cancelled)
    {
        Err(Stop::Io(e)) if e.raw_os_error() == Some(libc::EINVAL) => (
            write_blocks(&data, false, bytes, time * 4 / 10, &mut buf, cancelled)?,
            false,
        ),
        other => (other?, true),
    };
    let (written, write_time) = write;
    let (read, read_time) =
        read_back(&data, direct, written, time * 35 / 100, &mut buf, cancelled)?;
    let left = time.saturating_sub(started.elapsed());
    let latencies = latency(&dir.join("latency"), left.min(time / 5), cancelled)?;
    Ok(Figures {
        written,
        write: write_time,
        read,
        read_time,
        direct,
        latencies,
    })
}

/// Writes up to `bytes`, stopping after `time`; the figure counts only the writes and the final
/// flush, not making the random data.
fn write_blocks(
    path: &Path,
    direct: bool,
    bytes: u64,
    time: Duration,
    buf: &mut Aligned,
    cancelled: &dyn Fn() -> bool,
) -> Result<(u64, Duration), Stop> {
    let mut f = open_data(path, direct, true)?;
    let (mut written, mut spent) = (0u64, Duration::ZERO);
    let wall = Instant::now();
    while written < bytes && wall.elapsed() < time {
        if cancelled() {
            return Err(Stop::Cancelled);
        }
        getrandom::fill(buf.get()).map_err(|e| io::Error::other(e.to_string()))?;
        let t = Instant::now();
        f.write_all(buf.get())?;
        spent += t.elapsed();
        written += BLOCK as u64;
    }
    let t = Instant::now();
    f.sync_data()?;
    Ok((written, spent + t.elapsed()))
}

/// Reads the data back (all of it, or what `time` allows): the bytes read and how long it took.
fn read_back(
    path: &Path,
    direct: bool,
    bytes: u64,
    time: Duration,
    buf: &mut Aligned,
    cancelled: &dyn Fn() -> bool,
) -> Result<(u64, Duration), Stop> {
    let mut f = open_data(path, direct, false)?;
    if !direct {
        // Without O_DIRECT the data is still in the page cache: drop it so the read reaches the volume.
        nix::fcntl::posix_fadvise(
            &f,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        )
        .map_err(io::Error::from)?;
    }
    let t = Instant::now();
    let mut read = 0u64;
    while read < bytes && t.elapsed() < time {
        if cancelled() {
            return Err(Stop::Cancelled);
        }
        let n = f.read(buf.get())?;
        if n == 0 {
            return Err(Stop::Io(io::Error::other(format!(
                "read back {read} of {bytes} bytes"
            ))));
        }
        read += n as u64;
    }
    Ok((read, t.elapsed()))
}

/// 4 KiB write + fdatasync pairs, each timed, rewriting one block as a KV store's log does.
fn latency(
    path: &Path,
    time: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<Vec<Duration>, Stop> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    let mut page = [0u8; 4096];
    let started = Instant::now();
    let mut out = Vec::with_capacity(LATENCY_SAMPLES);
    while out.len() < LATENCY_SAMPLES && (out.len() < 10 || started.elapsed() < time) {
        if cancelled() {
            return Err(Stop::Cancelled);
        }
        page[..8].copy_from_slice(&(out.len() as u64).to_le_bytes());
        f.seek(SeekFrom::Start(0))?;
        let t = Instant::now();
        f.write_all(&page)?;
        f.sync_data()?;
        out.push(t.elapsed());
    }
    Ok(out)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// The load Dremio's I/O page says a figure supports (60/120/240 MB/s at 50/100/200 queries/s).
pub fn load(mb_s: f64) -> &'static str {
    match mb_s {
        x if x >= 240.0 => "200 queries/s or more",
        x if x >= 120.0 => "100 queries/s (240 MB/s needed for 200)",
        x if x >= 60.0 => "50 queries/s (120 MB/s needed for 100)",
        _ => "fewer than 50 queries/s (60 MB/s needed for 50)",
    }
}

fn judge(f: &Figures, required: f64, free: u64) -> Vec<Check> {
    // Rounded once, so the summary and the evidence show the same figure.
    let (w, r) = (
        round1(mbps(f.written, f.write)),
        round1(mbps(f.read, f.read_time)),
    );
    let worst = w.min(r);
    let how = if f.direct {
        "O_DIRECT"
    } else {
        "buffered + fdatasync"
    };
    let figures = format!(
        "write {w:.0} MB/s, read {r:.0} MB/s ({} MiB, {how})",
        f.written >> 20
    );
    let rate = if worst < required {
        Check::fail(
            "throughput.rate",
            A,
            format!("{figures}: below the required {required:.0} MB/s"),
        )
        .remedy("move paths.local to faster storage (SSD-backed NFS); Dremio asks at least 30 MB/s")
    } else {
        Check::pass(
            "throughput.rate",
            A,
            format!("{figures}: supports {}", load(worst)),
        )
    };
    let rate = rate
        .evidence("write_mb_s", w)
        .evidence("read_mb_s", r)
        .evidence("bytes", f.written)
        .evidence("o_direct", f.direct)
        .evidence("required_mb_s", required)
        .evidence("free_bytes", free)
        .evidence("supports", load(worst));
    let mut sorted = f.latencies.clone();
    sorted.sort_unstable();
    // Milliseconds to two decimals: a local SSD's fdatasync takes well under one.
    let ms = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
    let (p50, p99) = (percentile(&sorted, 0.5), percentile(&sorted, 0.99));
    let latency = Check::pass(
        "throughput.latency",
        A,
        format!(
            "4 KiB write+fdatasync: p50 {:.2} ms, p99 {:.2} ms ({} samples)",
            ms(p50),
            ms(p99),
            sorted.len()
        ),
    )
    .evidence("p50_ms", ms(p50))
    .evidence("p99_ms", ms(p99))
    .evidence("samples", sorted.len());
    vec![rate, latency]
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    fn small() -> Limits {
        Limits {
            bytes: 16 << 20,
            time: Duration::from_secs(3),
        }
    }

    #[test]
    fn a_probe_measures_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let checks = probe(dir.path(), 0.001, small(), &|| false).unwrap();
        assert_eq!(checks[0].status, Status::Pass, "{checks:?}");
        assert!(checks[0].evidence["write_mb_s"].as_f64().unwrap() > 0.0);
        assert!(checks[1].evidence["samples"].as_u64().unwrap() >= 10);
        assert!(crate::fsutil::entries(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn the_summary_shows_the_figure_the_evidence_holds() {
        // 123.46 MB/s: rounding the raw figure to a whole number says 123,
        // rounding the evidence's 123.5 says 124. Both must say the same.
        let f = Figures {
            written: 123_460_000,
            write: Duration::from_secs(1),
            read: 100_000_000,
            read_time: Duration::from_secs(1),
            direct: false,
            latencies: vec![Duration::from_millis(1)],
        };
        let checks = judge(&f, 1e9, 0);
        let w = checks[0].evidence["write_mb_s"].as_f64().unwrap();
        assert_eq!(w, 123.5);
        assert!(
            checks[0].summary.contains(&format!("write {w:.0} MB/s")),
            "{}",
            checks[0].summary
        );
    }

    #[test]
    fn an_impossible_requirement_fails_with_the_figure() {
        let dir = tempfile::tempdir().unwrap();
        let checks = probe(dir.path(), 1e12, small(), &|| false).unwrap();
        assert_eq!(checks[0].status, Status::Fail);
        assert!(
            checks[0].summary.contains("): below the required"),
            "{}",
            checks[0].summary
        );
    }

    #[test]
    fn a_cancelled_probe_removes_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let polls = std::cell::Cell::new(0);
        let r = probe(dir.path(), 30.0, small(), &|| {
            polls.set(polls.get() + 1);
            polls.get() > 3
        });
        assert!(r.is_err());
        assert!(crate::fsutil::entries(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn figures_name_the_load_they_support() {
        assert_eq!(load(250.0), "200 queries/s or more");
        assert!(load(61.0).starts_with("50 queries/s"));
        assert!(load(31.0).starts_with("fewer than 50"));
        let d = [1, 2, 3, 4, 100].map(Duration::from_millis);
        assert_eq!(percentile(&d, 0.5), Duration::from_millis(3));
        assert_eq!(percentile(&d, 0.99), Duration::from_millis(100));
    }
}
