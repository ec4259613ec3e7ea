//! The phases of a DR procedure on one clock: what RTO is made of, printed as a timeline for
//! people and as a list for JSON.
#![allow(unused_variables, dead_code)] // SKELETON: helper A fills this in

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

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

impl Timeline {
    /// Starts the clock now.
    pub fn new() -> Timeline {
        todo!()
    }

    /// Begins a phase; an open one ends first, as succeeded with no detail.
    pub fn begin(&mut self, name: &str) {
        todo!()
    }

    /// Ends the open phase as succeeded (no-op when none is open).
    pub fn end(&mut self, detail: impl Into<String>) {
        todo!()
    }

    /// Ends the open phase as failed.
    pub fn fail(&mut self, detail: impl Into<String>) {
        todo!()
    }

    /// Adds a finished phase whose duration was measured elsewhere (it ends now).
    pub fn record(&mut self, name: &str, seconds: f64, ok: bool, detail: impl Into<String>) {
        todo!()
    }

    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The open phase's name, if any.
    pub fn current(&self) -> Option<&str> {
        todo!()
    }

    /// Since the timeline began.
    pub fn elapsed(&self) -> Duration {
        todo!()
    }

    /// Seconds from the beginning to the end of the named phase's last run (e.g. RTO: up to
    /// `start`'s end, which is when the coordinator served).
    pub fn until_end_of(&self, name: &str) -> Option<f64> {
        todo!()
    }

    /// `[{"phase","at","seconds","ok","detail"}, ...]`, seconds rounded to milliseconds.
    pub fn to_json(&self) -> Value {
        todo!()
    }

    /// One line per phase, aligned: `  ok    fetch       0.4s  manifest and index of ...`, failed
    /// phases marked `FAIL`, and a last `  total ...` line.
    pub fn to_text(&self) -> String {
        todo!()
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}
