//! The phases of a DR procedure on one clock: what RTO is made of, printed as a timeline for
//! people and as a list for JSON.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// One finished phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// e.g. `fetch`, `verify`, `extract`, `stop`, `restore`, `start`, `clone`, `validate`.
    pub name: String,
    /// Seconds since the timeline began when the phase began.
    pub at: f64,
    pub seconds: f64,
    pub ok: bool,
    /// One line: what the phase did or why it failed.
    pub detail: String,
}

/// Phases in the order they ran; at most one is open at a time.
#[derive(Debug)]
pub struct Timeline {
    started: Instant,
    pub started_at: DateTime<Utc>,
    phases: Vec<Phase>,
    open: Option<(String, Instant)>,
}

/// Rounded to milliseconds, for JSON.
fn ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// The first line of `detail`, so that one phase stays one line.
fn one_line(detail: String) -> String {
    match detail.split_once('\n') {
        Some((first, _)) => first.trim_end().to_string(),
        None => detail,
    }
}

impl Timeline {
    /// Starts the clock now.
    pub fn new() -> Timeline {
        Timeline {
            started: Instant::now(),
            started_at: Utc::now(),
            phases: Vec::new(),
            open: None,
        }
    }

    /// Begins a phase; an open one ends first, as succeeded with no detail.
    pub fn begin(&mut self, name: &str) {
        self.close(true, String::new());
        self.open = Some((name.to_string(), Instant::now()));
    }

    /// Ends the open phase as succeeded (no-op when none is open).
    pub fn end(&mut self, detail: impl Into<String>) {
        self.close(true, detail.into());
    }

    /// Ends the open phase as failed.
    pub fn fail(&mut self, detail: impl Into<String>) {
        self.close(false, detail.into());
    }

    fn close(&mut self, ok: bool, detail: String) {
        if let Some((name, began)) = self.open.take() {
            let now = Instant::now();
            self.phases.push(Phase {
                name,
                at: began.saturating_duration_since(self.started).as_secs_f64(),
                seconds: now.saturating_duration_since(began).as_secs_f64(),
                ok,
                detail: one_line(detail),
            });
        }
    }

    /// Adds a finished phase whose duration was measured elsewhere (it ends now).
    pub fn record(&mut self, name: &str, seconds: f64, ok: bool, detail: impl Into<String>) {
        let seconds = if seconds.is_finite() && seconds > 0.0 {
            seconds
        } else {
            0.0
        };
        let now = self.elapsed().as_secs_f64();
        self.phases.push(Phase {
            name: name.to_string(),
            at: (now - seconds).max(0.0),
            seconds,
            ok,
            detail: one_line(detail.into()),
        });
    }

    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The open phase's name, if any.
    pub fn current(&self) -> Option<&str> {
        self.open.as_ref().map(|(name, _)| name.as_str())
    }

    /// Since the timeline began.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Seconds from the beginning to the end of the named phase's last run (e.g. RTO: up to
    /// `start`'s end, which is when the coordinator served).
    pub fn until_end_of(&self, name: &str) -> Option<f64> {
        self.phases
            .iter()
            .rev()
            .find(|p| p.name == name)
            .map(|p| p.at + p.seconds)
    }

    /// `[{"phase","at","seconds","ok","detail"}, ...]`, seconds rounded to milliseconds.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.phases
                .iter()
                .map(|p| {
                    json!({
                        "phase": p.name,
                        "at": ms(p.at),
                        "seconds": ms(p.seconds),
                        "ok": p.ok,
                        "detail": p.detail,
                    })
                })
                .collect(),
        )
    }

    /// One line per phase, aligned: `  ok    fetch       0.4s  manifest and index of ...`, failed
    /// phases marked `FAIL`, and a last `  total ...` line.
    pub fn to_text(&self) -> String {
        let durations: Vec<String> = self
            .phases
            .iter()
            .map(|p| format!("{:.1}s", p.seconds))
            .collect();
        let total = format!("{:.1}s", self.elapsed().as_secs_f64());
        let name_width = self
            .phases
            .iter()
            .map(|p| p.name.chars().count())
            .max()
            .unwrap_or(0)
            .max("total".len());
        let time_width = durations
            .iter()
            .map(String::len)
            .chain(std::iter::once(total.len()))
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (p, d) in self.phases.iter().zip(&durations) {
            let mark = if p.ok { "ok" } else { "FAIL" };
            let line = format!(
                "  {mark:<4}  {:<name_width$}  {d:>time_width$}  {}",
                p.name, p.detail
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let failed = self.phases.iter().filter(|p| !p.ok).count();
        let summary = if failed == 0 {
            String::new()
        } else {
            format!("  {failed} failed")
        };
        // The durations' column lines up with the phases' (2 + 4 + 2 + name_width + 2).
        let head_width = 8 + name_width;
        out.push_str(&format!(
            "{:<head_width$}  {total:>time_width$}{summary}",
            "  total"
        ));
        out.push('\n');
        out
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_end_in_order_and_print_aligned() {
        let mut t = Timeline::new();
        assert_eq!(t.current(), None);
        t.end("nothing open: no-op");
        assert!(t.phases().is_empty());
        t.begin("fetch");
        assert_eq!(t.current(), Some("fetch"));
        t.begin("verify"); // ends fetch as succeeded
        t.fail("sha256 mismatch\nsecond line dropped");
        t.record("validate", 1.25, true, "3 users, 2 spaces");
        t.record("nan", f64::NAN, true, "");
        assert_eq!(t.current(), None);
        let names: Vec<_> = t.phases().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["fetch", "verify", "validate", "nan"]);
        assert!(t.phases()[0].ok && !t.phases()[1].ok);
        assert_eq!(t.phases()[1].detail, "sha256 mismatch");
        assert_eq!(t.phases()[3].seconds, 0.0);
        let end = t.until_end_of("verify").unwrap();
        assert!(end >= t.phases()[1].at);
        assert_eq!(t.until_end_of("start"), None);

        let text = t.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("  ok    fetch   "), "{text}");
        assert!(lines[1].starts_with("  FAIL  verify  "), "{text}");
        assert!(lines[1].ends_with("sha256 mismatch"), "{text}");
        assert!(lines[4].starts_with("  total"), "{text}");
        assert!(lines[4].ends_with("1 failed"), "{text}");
        // The durations' column lines up: each ends where the others do.
        let ends: Vec<_> = lines[..4]
            .iter()
            .map(|l| l[..l.find("s  ").unwrap_or(l.len() - 1) + 1].len())
            .collect();
        assert!(ends.windows(2).all(|w| w[0] == w[1]), "{text} {ends:?}");
        let total_end = lines[4].find("s  ").unwrap() + 1;
        assert_eq!(total_end, ends[0], "{text}");

        let json = t.to_json();
        assert_eq!(json[2]["phase"], "validate");
        assert_eq!(json[2]["seconds"], 1.25);
        assert_eq!(json[1]["ok"], false);
        assert!(json[0]["at"].is_number());
    }
}
