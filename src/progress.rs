//! The progress trait core code reports to; the CLI picks bars (TTY), plain lines (cron) or JSON lines.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What core code calls while it works. Implementations must be cheap: `advance` is on the hot path.
pub trait Progress: Send + Sync {
    /// A new phase starts (e.g. "backup", "restore"), with its total when known.
    fn phase(&self, name: &str, total_bytes: Option<u64>);
    /// `bytes` more of the current phase are done.
    fn advance(&self, bytes: u64);
    /// The current phase is over.
    fn finish(&self);
    /// A line for the operator (warnings, decisions); never a secret.
    fn note(&self, line: &str);
    /// A new phase that counts objects rather than bytes (`advance` then counts objects).
    fn phase_items(&self, name: &str, total: Option<u64>) {
        self.phase(name, total);
    }
}

/// No progress, but notes (warnings, decisions) still reach stderr: `--progress none`.
pub struct NotesOnly;

impl Progress for NotesOnly {
    fn phase(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
    fn note(&self, line: &str) {
        eprintln!("{line}");
    }
}

/// Animated bars on a terminal (stderr).
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            bar: Mutex::new(None),
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Bars {
    fn start(&self, name: &str, total: Option<u64>, items: bool) {
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        let template = match (total.is_some(), items) {
            (true, false) => {
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"
            }
            (false, false) => "{prefix:>8} {spinner} {bytes} {binary_bytes_per_sec}",
            (true, true) => "{prefix:>8} [{bar:30}] {pos}/{len} objects {per_sec} eta {eta}",
            (false, true) => "{prefix:>8} {spinner} {pos} objects {per_sec}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(name.to_string());
        if let Some(old) = self.bar.lock().expect("progress lock").replace(bar) {
            old.finish_and_clear();
        }
    }
}

impl Progress for Bars {
    fn phase(&self, name: &str, total_bytes: Option<u64>) {
        self.start(name, total_bytes, false);
    }

    fn phase_items(&self, name: &str, total: Option<u64>) {
        self.start(name, total, true);
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }

    fn note(&self, line: &str) {
        match self.bar.lock().expect("progress lock").as_ref() {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

/// Plain log lines (no TTY: cron, CI): one line when a phase starts, at each quarter, and at its end.
/// With `json`, each line is a JSON object instead, for log pipelines.
pub struct Lines {
    json: bool,
    state: Mutex<LineState>,
    done: AtomicU64,
}

struct LineState {
    name: String,
    total: Option<u64>,
    started: Instant,
    next_quarter: u64,
    /// The phase counts objects, not bytes.
    items: bool,
}

impl Lines {
    pub fn new(json: bool) -> Self {
        Lines {
            json,
            state: Mutex::new(LineState {
                name: String::new(),
                total: None,
                started: Instant::now(),
                next_quarter: 1,
                items: false,
            }),
            done: AtomicU64::new(0),
        }
    }

    fn emit(&self, event: &str, name: &str, done: u64, total: Option<u64>, secs: f64, items: bool) {
        let mut err = std::io::stderr().lock();
        let seconds = (secs * 1000.0).round() / 1000.0;
        if self.json {
            let line = if items {
                serde_json::json!({
                    "event": event, "phase": name, "objects": done, "total_objects": total,
                    "seconds": seconds,
                })
            } else {
                serde_json::json!({
                    "event": event, "phase": name, "bytes": done, "total_bytes": total,
                    "seconds": seconds,
                })
            };
            let _ = writeln!(err, "{line}");
        } else if items {
            let total = total.map(|t| format!(" of {t}")).unwrap_or_default();
            let _ = writeln!(err, "{name}: {event} {done}{total} objects ({secs:.1}s)");
        } else {
            let total = total
                .map(|t| format!(" of {}", crate::units::human_bytes(t)))
                .unwrap_or_default();
            let _ = writeln!(
                err,
                "{name}: {event} {}{total} ({secs:.1}s)",
                crate::units::human_bytes(done)
            );
        }
    }
}

impl Lines {
    fn start(&self, name: &str, total: Option<u64>, items: bool) {
        let mut st = self.state.lock().expect("progress lock");
        st.name = name.to_string();
        st.total = total;
        st.started = Instant::now();
        st.next_quarter = 1;
        st.items = items;
        self.done.store(0, Ordering::Relaxed);
        self.emit("started", name, 0, total, 0.0, items);
    }
}

/// Half the first mark of a phase without a total (see `Lines::advance`).
const UNKNOWN_MARK: u64 = 512 << 10;

impl Progress for Lines {
    fn phase(&self, name: &str, total_bytes: Option<u64>) {
        self.start(name, total_bytes, false);
    }

    fn phase_items(&self, name: &str, total: Option<u64>) {
        self.start(name, total, true);
    }

    fn advance(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        // Only take the lock when a quarter boundary may have been crossed.
        let mut st = self.state.lock().expect("progress lock");
        if let Some(total) = st.total
            && st.next_quarter < 4
            && total > 0
            && done * 4 >= total * st.next_quarter
        {
            st.next_quarter += 1;
            let secs = st.started.elapsed().as_secs_f64();
            self.emit("progress", &st.name, done, Some(total), secs, st.items);
        } else if st.total.is_none() && !st.items && done >= UNKNOWN_MARK << st.next_quarter {
            // No total (a format-2 backup with no earlier one to estimate from): a line at every
            // doubling from 1 MiB, so that a log shows the run moving in a few dozen lines.
            while st.next_quarter < 40 && done >= UNKNOWN_MARK << st.next_quarter {
                st.next_quarter += 1;
            }
            let secs = st.started.elapsed().as_secs_f64();
            self.emit("progress", &st.name, done, None, secs, false);
        }
    }

    fn finish(&self) {
        let st = self.state.lock().expect("progress lock");
        let done = self.done.load(Ordering::Relaxed);
        self.emit(
            "finished",
            &st.name,
            done,
            st.total,
            st.started.elapsed().as_secs_f64(),
            st.items,
        );
    }

    fn note(&self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.json {
            let _ = writeln!(
                err,
                "{}",
                serde_json::json!({"event": "note", "message": line})
            );
        } else {
            let _ = writeln!(err, "{line}");
        }
    }
}
