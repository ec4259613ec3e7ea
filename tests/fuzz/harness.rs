//! Runs one fuzz target for a bounded budget and reports how many inputs it tried.
//!
//! - `LIFEBOAT_FUZZ_SECONDS`: how long each target runs (default 5; `scripts/fuzz.sh` raises it).
//! - `LIFEBOAT_FUZZ_CASES`: at most this many inputs per target (default: no limit but time).
//! - `LIFEBOAT_FUZZ_SEED`: the seed (default: a fresh one, printed so that a failure can be replayed).
//!
//! Each target starts and ends with a line on stderr, written past the test harness's capture so
//! that it shows in CI logs: `fuzz <target>: <n> executions in <s> s (seed <seed>)` at the end.

use std::io::Write;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

fn env_number(name: &str) -> Option<f64> {
    let text = std::env::var(name).ok()?;
    match text.trim().parse::<f64>() {
        Ok(n) if n >= 0.0 => Some(n),
        _ => panic!("{name}={text:?} is not a non-negative number"),
    }
}

fn seed() -> u64 {
    match std::env::var("LIFEBOAT_FUZZ_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("LIFEBOAT_FUZZ_SEED={s:?} is not a number")),
        Err(_) => {
            let mut b = [0u8; 8];
            getrandom::fill(&mut b).expect("the OS has a random source");
            u64::from_le_bytes(b)
        }
    }
}

/// Each target gets its own stream of inputs from the one seed, so that adding a target does not
/// change what the others try.
fn target_rng(seed: u64, target: &str) -> TestRng {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    for (i, b) in target.bytes().enumerate() {
        bytes[8 + i % 24] ^= b;
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Tries inputs from `strategy` against `check` until the budget is spent. A failing input is
/// shrunk by proptest and reported with the seed that finds it again.
pub fn fuzz<S>(target: &str, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let seconds = env_number("LIFEBOAT_FUZZ_SECONDS").unwrap_or(5.0);
    let cases = env_number("LIFEBOAT_FUZZ_CASES").map_or(u64::MAX, |n| n as u64);
    let seed = seed();
    let config = Config {
        failure_persistence: None,
        // Shrinking a large input is slow in a debug build; a bounded shrink still names the bug.
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, target_rng(seed, target));
    // Also at the start: a crash (a stack overflow aborts the process) must still name its seed.
    let started = format!("fuzz {target}: started (seed {seed})\n");
    let _ = std::io::stderr().lock().write_all(started.as_bytes());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut executions = 0u64;
    while executions < cases && Instant::now() < deadline {
        let tree = strategy
            .new_tree(&mut runner)
            .unwrap_or_else(|why| panic!("fuzz {target}: cannot generate an input: {why}"));
        executions += 1;
        match runner.run_one(tree, &check) {
            Ok(_) => {}
            Err(TestError::Fail(why, input)) => {
                let mut shown = format!("{input:?}");
                if shown.len() > 4000 {
                    let mut cut = 4000;
                    while !shown.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    shown.truncate(cut);
                    shown.push_str("...");
                }
                panic!(
                    "fuzz {target} failed after {executions} executions (replay with LIFEBOAT_FUZZ_SEED={seed}): {why}\nsmallest failing input: {shown}"
                );
            }
            Err(TestError::Abort(why)) => panic!("fuzz {target}: aborted: {why}"),
        }
    }
    let line = format!(
        "fuzz {target}: {executions} executions in {:.1} s (seed {seed})\n",
        start.elapsed().as_secs_f64()
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Fails the case (rather than panicking) so that proptest can shrink it.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(proptest::test_runner::TestCaseError::fail(format!($($fmt)+)));
        }
    };
}

/// Fails the case when a call that read `n` bytes of input held more than `base` plus `factor`
/// times `n` at its peak.
pub fn bounded(
    what: &str,
    peak: usize,
    n: usize,
    base: usize,
    factor: usize,
) -> Result<(), TestCaseError> {
    let bound = base + factor * n;
    if peak > bound {
        return Err(TestCaseError::fail(format!(
            "{what}: {peak} bytes at the peak for {n} bytes of input, more than {base} + {factor} x {n} = {bound}"
        )));
    }
    Ok(())
}
