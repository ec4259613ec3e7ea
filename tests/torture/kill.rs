//! Running the lifeboat binary under torture: to its end, or SIGKILLed at a given moment.
//!
//! The moment is the one place where time decides anything. The process's end is watched with
//! `waitid(WNOWAIT)`, which does not reap it: its pid stays ours (a zombie at worst) until
//! `wait`, so the SIGKILL can never reach a recycled pid.
//!
//! Only lifeboat is killed, as a crash of lifeboat alone would; what it started (dremio-admin)
//! lives on. The checks wait until those orphans are gone, so that they look at a state nothing
//! is still changing: lifeboat is stopped (SIGSTOP) first, its children listed, then killed.

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rustix::process::{Pid, Signal};

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
        let mut cmd = Command::new(binary());
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

/// The lifeboat under torture: this build's, or LIFEBOAT_TORTURE_BIN (another build, e.g. an
/// older one to show what the checks catch). The checks themselves always use this build's.
fn binary() -> std::path::PathBuf {
    std::env::var_os("LIFEBOAT_TORTURE_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_lifeboat").into())
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
    let mut orphans = Vec::new();
    if let Some(at) = at
        && let Err(mpsc::RecvTimeoutError::Timeout) = ended.recv_timeout(at)
    {
        let pid = Pid::from_child(&child);
        let _ = rustix::process::kill_process(pid, Signal::STOP);
        orphans = descendants(child.id());
        child.kill().context("SIGKILL lifeboat")?;
    }
    // The watcher has seen the end once this returns; only then is the pid given up.
    let _ = ended.recv();
    let status = child.wait().context("wait for lifeboat")?;
    let elapsed = started.elapsed();
    wait_gone(&orphans)?;
    let outcome = if status.signal() == Some(Signal::KILL.as_raw()) {
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

/// The processes below `pid` (children, theirs, ...), each with its start time, so that a
/// recycled pid is never mistaken for one of them.
fn descendants(pid: u32) -> Vec<(u32, u64)> {
    let mut found = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let tasks = std::fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if let Some(start) = start_time(c) {
                    found.push((c, start));
                    todo.push(c);
                }
            }
        }
    }
    found
}

/// Field 22 of /proc/<pid>/stat (the start time), while the process is alive (not a zombie).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    (fields.first() != Some(&"Z")).then_some(())?;
    fields.get(19)?.parse().ok()
}

/// Waits (bounded) until each of these processes has ended.
fn wait_gone(procs: &[(u32, u64)]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for &(pid, start) in procs {
        while start_time(pid) == Some(start) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "pid {pid}, started by the killed lifeboat, still runs after 60 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(())
}

/// A channel that gets a message (or closes) once the child `pid` has ended, without reaping it.
fn watch_end(pid: u32) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
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
