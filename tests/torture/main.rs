//! Crash consistency under SIGKILL at random moments (issue 9, part 4), against real SeaweedFS,
//! real RocksDB fixtures and the Dremio simulator.
//!
//! For each command (offline and online backup, copy, prune, restore of an offline and of a
//! logical backup, clone apply; and on format 2: an incremental backup, prune with its sweep of
//! shared objects, a copy of shared objects) one uninterrupted run measures how long it takes; then each of
//! N runs, in a fresh world, SIGKILLs lifeboat at a moment drawn from the seed, checks what the
//! kill left, runs the same command again, checks the final state, and prunes the leftovers.
//! Only the moment of the kill depends on time: every check holds whatever the moment.
//!
//! `cargo test --test torture -- [--runs N] [--seed S] [COMMAND...]` (or LIFEBOAT_TORTURE_RUNS,
//! LIFEBOAT_TORTURE_SEED). `cargo test --workspace` runs the short version (2 runs per
//! command); scripts/torture.sh runs the full one (20) and starts the servers it needs.
//! LIFEBOAT_TORTURE_BIN tortures another lifeboat binary (the checks use this build's).

#[path = "../support/mod.rs"]
mod support;

mod backup;
mod clone;
mod copy;
mod kill;
mod moments;
mod options;
mod place;
mod prune;
mod restore;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use kill::{Invocation, Ran};
use options::Options;

/// One command under torture. Each run gets a fresh world, so that runs are independent and any
/// one can be replayed from the seed.
pub trait Scenario {
    type World;

    /// A world in which the command has work to do, and the command itself.
    fn world(&self, run: usize, scratch: &Path) -> anyhow::Result<(Self::World, Invocation)>;

    /// What must hold right after the run, killed or not; returns a few words on what was found.
    fn after_kill(&self, world: &Self::World, ran: &Ran) -> anyhow::Result<String>;

    /// What must hold once the same command, run again, has completed.
    fn after_rerun(&self, world: &Self::World) -> anyhow::Result<()>;

    /// Runs of one variant (say, one kind of location) take alike long; those of another may
    /// not, so each variant's moments spread over its own runs' durations.
    fn variant(&self, _run: usize) -> &'static str {
        ""
    }
}

/// A failed run, with everything needed to replay it.
struct Inconsistency {
    run: usize,
    delay: Duration,
    fraction: f64,
    what: String,
}

/// The figures of one command.
struct Tally {
    command: &'static str,
    runs: usize,
    killed: usize,
    failures: Vec<Inconsistency>,
}

/// Every command under torture, in the order of the summary.
const COMMANDS: [&str; 10] = [
    "backup",
    "online-backup",
    "copy",
    "prune",
    "restore",
    "restore-logical",
    "clone-apply",
    "backup-f2",
    "copy-f2",
    "prune-f2",
];

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1), &|k| std::env::var(k).ok()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("torture: {e}");
            return ExitCode::from(2);
        }
    };
    if opts.list {
        for c in COMMANDS {
            println!("{c}: test");
        }
        return ExitCode::SUCCESS;
    }
    let chosen: Vec<&'static str> = COMMANDS
        .into_iter()
        .filter(|c| opts.wants(c, &COMMANDS))
        .collect();
    if chosen.is_empty() {
        println!("torture: no command matches the filter; nothing to do");
        return ExitCode::SUCCESS;
    }
    let seed = opts.seed.unwrap_or_else(moments::fresh_seed);
    say(&format!(
        "torture: seed {seed} ({} run(s) per command, {} at once; replay with --seed {seed})",
        opts.runs, opts.jobs
    ));
    let shared = backup::Shared::default();
    // Commands run side by side in `jobs` lanes: nothing but the moment of a kill depends on
    // time, so sharing the machine changes no verdict. Heavy commands alternate between lanes.
    let mut by_weight = chosen.clone();
    by_weight.sort_by_key(|c| WEIGHT_ORDER.iter().position(|w| w == c));
    let lanes: Vec<Vec<&'static str>> = (0..opts.jobs)
        .map(|lane| {
            by_weight
                .iter()
                .skip(lane)
                .step_by(opts.jobs)
                .copied()
                .collect()
        })
        .collect();
    let mut tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = lanes
            .into_iter()
            .map(|lane| {
                let (shared, opts) = (&shared, &opts);
                scope.spawn(move || {
                    lane.into_iter()
                        .map(|c| torture_command(c, shared, opts, seed))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a torture lane panicked"))
            .collect()
    });
    tallies.sort_by_key(|t| COMMANDS.iter().position(|c| *c == t.command));
    report(seed, &tallies)
}

/// Heaviest first, so that lanes get even shares.
const WEIGHT_ORDER: [&str; 10] = [
    "backup-f2",
    "backup",
    "copy",
    "copy-f2",
    "prune-f2",
    "clone-apply",
    "restore",
    "prune",
    "restore-logical",
    "online-backup",
];

fn torture_command(
    command: &'static str,
    shared: &backup::Shared,
    opts: &Options,
    seed: u64,
) -> Tally {
    match command {
        "backup" => torture(command, &backup::Offline::new(), opts, seed),
        "online-backup" => torture(command, &backup::Online::new(), opts, seed),
        "copy" => torture(command, &copy::Copy::new(shared), opts, seed),
        "prune" => torture(command, &prune::Prune::new(shared), opts, seed),
        "backup-f2" => torture(command, &backup::Incremental::new(), opts, seed),
        "copy-f2" => torture(command, &copy::Copy::format_2(shared), opts, seed),
        "prune-f2" => torture(command, &prune::PruneF2::new(shared), opts, seed),
        "restore" => torture(
            command,
            &restore::Restore::new(shared, restore::Flavour::Offline),
            opts,
            seed,
        ),
        "restore-logical" => torture(
            command,
            &restore::Restore::new(shared, restore::Flavour::Logical),
            opts,
            seed,
        ),
        _ => torture(command, &clone::Apply::new(), opts, seed),
    }
}

fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// Measures the command uninterrupted, then kills it `opts.runs` times.
fn torture<S: Scenario>(
    command: &'static str,
    scenario: &anyhow::Result<S>,
    opts: &Options,
    seed: u64,
) -> Tally {
    let mut tally = Tally {
        command,
        runs: opts.runs,
        killed: 0,
        failures: Vec::new(),
    };
    let fail = |run, delay, fraction, what: String| Inconsistency {
        run,
        delay,
        fraction,
        what,
    };
    let scenario = match scenario {
        Ok(s) => s,
        Err(e) => {
            tally
                .failures
                .push(fail(0, Duration::ZERO, 0.0, format!("setup failed: {e:#}")));
            return tally;
        }
    };
    let calibrated = match one_run(scenario, 0, None, &mut false) {
        Ok((elapsed, _)) => elapsed,
        Err(e) => {
            tally.failures.push(fail(
                0,
                Duration::ZERO,
                0.0,
                format!("the uninterrupted run: {e:#}"),
            ));
            return tally;
        }
    };
    say(&format!(
        "{command}: uninterrupted run took {} ms",
        calibrated.as_millis()
    ));
    let mut durations = BTreeMap::from([(scenario.variant(0), vec![calibrated])]);
    for run in 1..=opts.runs {
        let fraction = moments::fraction(seed, command, run, opts.runs);
        let variant = scenario.variant(run);
        // A variant not measured yet borrows the first measurement.
        let first = [calibrated];
        let seen = durations.get(variant).map_or(&first[..], Vec::as_slice);
        let delay = moments::delay(fraction, median(seen));
        let mut killed = false;
        let verdict = one_run(scenario, run, Some(delay), &mut killed);
        tally.killed += usize::from(killed);
        match verdict {
            Ok((elapsed, found)) => {
                let how = if killed {
                    "killed".to_string()
                } else {
                    // Another uninterrupted run: the moments that follow spread over the
                    // median of those seen, less at the mercy of one slow or fast run.
                    durations.entry(variant).or_default().push(elapsed);
                    format!("ended after {} ms, before the kill", elapsed.as_millis())
                };
                say(&format!(
                    "{command} run {run}/{}: {how} at {} ms ({:.0}%): consistent ({found})",
                    opts.runs,
                    delay.as_millis(),
                    fraction * 100.0
                ));
            }
            Err(e) => {
                say(&format!(
                    "{command} run {run}/{}: INCONSISTENT (seed {seed}, delay {} ms): {e:#}",
                    opts.runs,
                    delay.as_millis()
                ));
                tally
                    .failures
                    .push(fail(run, delay, fraction, format!("{e:#}")));
            }
        }
    }
    tally
}

fn median(durations: &[Duration]) -> Duration {
    let mut sorted = durations.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// One run in a fresh world: the kill (at `delay`, or none), the checks, the rerun, the checks.
/// Returns how long the first run lasted and what its checks found; sets `killed` as soon as
/// that is known.
fn one_run<S: Scenario>(
    scenario: &S,
    run: usize,
    delay: Option<Duration>,
    killed: &mut bool,
) -> anyhow::Result<(Duration, String)> {
    let scratch = tempfile::Builder::new()
        .prefix("lifeboat-torture-")
        .tempdir()?;
    let (world, inv) = scenario.world(run, scratch.path())?;
    let ran = kill::run(&inv, delay, &scratch.path().join("killed.log"))?;
    *killed = ran.killed();
    if !ran.killed() {
        ran.require_success(&format!("`{}` (not killed)", inv.shown()))?;
    }
    let found = scenario
        .after_kill(&world, &ran)
        .map_err(|e| e.context(format!("after the {}", what_happened(&ran))));
    // Even when the kill left an illegal state, the rerun shows whether it is settled.
    let settled = kill::run(&inv, None, &scratch.path().join("rerun.log"))
        .and_then(|rerun| rerun.require_success(&format!("the rerun `{}`", inv.shown())))
        .and_then(|()| scenario.after_rerun(&world))
        .map_err(|e| {
            e.context(format!(
                "after the rerun (the first run: {})",
                what_happened(&ran)
            ))
        });
    match (found, settled) {
        (Ok(found), Ok(())) => Ok((ran.elapsed, found)),
        (Err(e), Ok(())) => Err(anyhow::anyhow!("{e:#} [the rerun then settled everything]")),
        (Ok(_), Err(e)) => Err(e),
        (Err(first), Err(then)) => Err(anyhow::anyhow!("{first:#} [and then: {then:#}]")),
    }
}

fn what_happened(ran: &Ran) -> String {
    if ran.killed() {
        format!("kill at {} ms", ran.elapsed.as_millis())
    } else {
        "run ended on its own".into()
    }
}

fn report(seed: u64, tallies: &[Tally]) -> ExitCode {
    say("");
    for t in tallies {
        let consistent = t
            .runs
            .saturating_sub(t.failures.iter().filter(|f| f.run > 0).count());
        let consistent = if t.failures.iter().any(|f| f.run == 0) {
            0
        } else {
            consistent
        };
        say(&format!(
            "{} {consistent}/{} consistent ({} killed mid-run)",
            t.command, t.runs, t.killed
        ));
    }
    let failures: Vec<(&str, &Inconsistency)> = tallies
        .iter()
        .flat_map(|t| t.failures.iter().map(move |f| (t.command, f)))
        .collect();
    if failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    say("");
    for (command, f) in failures {
        say(&format!(
            "INCONSISTENT: seed {seed}, {command} run {}, delay {} ms ({:.1}% of the measured run): {}",
            f.run,
            f.delay.as_millis(),
            f.fraction * 100.0,
            f.what
        ));
    }
    say(&format!("torture: replay with --seed {seed}"));
    ExitCode::FAILURE
}
