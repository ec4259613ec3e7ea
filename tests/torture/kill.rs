//! Running the lifeboat binary under torture: to its end, or SIGKILLed at a given moment.
//!
//! The moment is the one place where time decides anything. The process's end is watched with
//! `waitid(WNOWAIT)`, which does not reap it: its pid stays ours (a zombie at worst) until
//! `wait`, so the SIGKILL can never reach a recycled pid.

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

/// One lifeboat command line and its environment: what is killed, and what is run again.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Invocation {
    pub fn new(args: &[&str], env: &[(String, String)]) -> Invocation {
        Invocation {
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env.to_vec(),
        }
    }

    /// The command line as an operator would type it (for failure reports).
    pub fn shown(&self) -> String {
        format!("lifeboat {}", self.args.join(" "))
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        cmd.args(&self.args)
            .env("LIFEBOAT_PROGRESS", "none")
            .env("LIFEBOAT_MAX_RETRIES", "2")
            .env("LIFEBOAT_RETRY_TIMEOUT", "10s")
            .env("LIFEBOAT_LOCK_TTL", "15s")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        cmd
    }
}

/// How a run under torture ended.
#[derive(Debug)]
pub enum Outcome {
    /// SIGKILL reached it while it ran.
    Killed,
    /// It ended before the moment came.
    Finished(ExitStatus),
}

#[derive(Debug)]
pub struct Ran {
    pub outcome: Outcome,
    pub elapsed: Duration,
    /// The last lines it wrote on stderr.
    pub stderr: String,
}

impl Ran {
    pub fn killed(&self) -> bool {
        matches!(self.outcome, Outcome::Killed)
    }

    /// An error unless it ended on its own with exit 0.
    pub fn require_success(&self, what: &str) -> anyhow::Result<()> {
        match &self.outcome {
            Outcome::Finished(s) if s.success() => Ok(()),
            Outcome::Finished(s) => anyhow::bail!("{what} failed ({s}):\n{}", self.stderr),
            Outcome::Killed => anyhow::bail!("{what} was killed"),
        }
    }
}

/// Runs `inv` and SIGKILLs it `at` after its start unless it ended first; `None` waits for its end.
/// Its stderr goes to `log`.
pub fn run(inv: &Invocation, at: Option<Duration>, log: &Path) -> anyhow::Result<Ran> {
    let err = File::create(log).with_context(|| format!("create {}", log.display()))?;
    let started = Instant::now();
    let mut child = inv
        .command()
        .stderr(err)
        .spawn()
        .context("start lifeboat")?;
    let ended = watch_end(child.id());
    if let Some(at) = at
        && let Err(mpsc::RecvTimeoutError::Timeout) = ended.recv_timeout(at)
    {
        child.kill().context("SIGKILL lifeboat")?;
    }
    // The watcher has seen the end once this returns; only then is the pid given up.
    let _ = ended.recv();
    let status = child.wait().context("wait for lifeboat")?;
    let elapsed = started.elapsed();
    let outcome = if status.signal() == Some(rustix::process::Signal::KILL.as_raw()) {
        Outcome::Killed
    } else {
        Outcome::Finished(status)
    };
    Ok(Ran {
        outcome,
        elapsed,
        stderr: tail(log),
    })
}

/// A channel that gets a message (or closes) once the child `pid` has ended, without reaping it.
fn watch_end(pid: u32) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return;
        };
        use rustix::process::{WaitId, WaitIdOptions, waitid};
        while let Err(rustix::io::Errno::INTR) = waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {}
        let _ = tx.send(());
    });
    rx
}

/// The last 40 lines of a log file.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
