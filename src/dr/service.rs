//! The operator's start and stop commands. Templates are filled in with shell-quoted values; a
//! command runs under `sh -c` in a process group of its own, with no stdin and its output
//! captured (bounded), so that a timeout or a signal stops everything it started.
//!
//! A start command that leaves a daemon behind (`dremio start`, `cmd &`) must send that daemon's
//! output elsewhere (its own log, `> log 2>&1`): lifeboat reads the command's output only until the
//! command itself ends.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use super::DrError;

/// How much of a command's output is kept: its end.
pub const TAIL_BYTES: usize = 4096;

/// How long the output of a command that has ended is still read (a daemon it left behind may
/// hold its pipes open for ever).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(250);

/// What a template may name.
#[derive(Debug, Clone)]
pub struct Vars {
    pub paths_local: PathBuf,
    pub home: Option<PathBuf>,
    pub port: u16,
}

/// `value` as one `sh` word: single-quoted, each `'` written `'\''`.
fn sh_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Fills in `{paths_local}`, `{home}` and `{port}`, each value single-quoted for `sh`. Any other
/// `{name}`, an unclosed `{`, or `{home}` without a home is an error naming `key` (the config
/// key, e.g. `clusters.dr.start`). `{{` and `}}` stand for literal braces (`${{VAR}}` is `${VAR}`).
pub fn expand(key: &str, template: &str, vars: &Vars) -> Result<String, DrError> {
    let fail = |why: String| DrError::Template {
        key: key.to_string(),
        template: template.to_string(),
        why,
    };
    let path_word = |name: &str, path: &Path| -> Result<String, DrError> {
        path.to_str().map(sh_quote).ok_or_else(|| {
            fail(format!(
                "{{{name}}} is {}, which is not UTF-8 and cannot be put in a shell command",
                path.display()
            ))
        })
    };
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let brace = rest.as_bytes()[i];
        let after = &rest[i + 1..];
        if brace == b'}' {
            // `}}` or a lone `}`: a literal brace.
            out.push('}');
            rest = after.strip_prefix('}').unwrap_or(after);
            continue;
        }
        if let Some(after) = after.strip_prefix('{') {
            out.push('{');
            rest = after;
            continue;
        }
        let Some(end) = after.find('}') else {
            return Err(fail(format!(
                "the `{{` at byte {i} is never closed (write {{{{ for a literal brace)",
                i = template.len() - rest.len() + i
            )));
        };
        let name = &after[..end];
        match name {
            "paths_local" => out.push_str(&path_word(name, &vars.paths_local)?),
            "home" => match &vars.home {
                Some(home) => out.push_str(&path_word(name, home)?),
                None => {
                    return Err(fail(
                        "{home} is used but this cluster has no dremio_home: set it, or write the path out"
                            .into(),
                    ));
                }
            },
            "port" => out.push_str(&sh_quote(&vars.port.to_string())),
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(fail(format!(
                    "{{{shown}}} is not something lifeboat fills in: use {{paths_local}}, {{home}} or {{port}} (write {{{{ and }}}} for literal braces)"
                )));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The last [`TAIL_BYTES`] of what was pushed.
#[derive(Debug, Default)]
struct Ring {
    bytes: Vec<u8>,
}

impl Ring {
    fn push(&mut self, data: &[u8]) {
        if data.len() >= TAIL_BYTES {
            self.bytes.clear();
            self.bytes
                .extend_from_slice(&data[data.len() - TAIL_BYTES..]);
            return;
        }
        self.bytes.extend_from_slice(data);
        if self.bytes.len() > TAIL_BYTES {
            let excess = self.bytes.len() - TAIL_BYTES;
            self.bytes.drain(..excess);
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).trim_end().to_string()
    }
}

/// SIGKILL (or another signal) to the process group `pgid`; a group that is gone already is fine.
fn signal_group(pgid: u32, signal: rustix::process::Signal) {
    // Never 0 or 1: those would reach this process's own group or every process.
    let Some(pid) = i32::try_from(pgid)
        .ok()
        .filter(|&p| p > 1)
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, signal);
}

/// Kills the process group of a command whose run was given up (its future dropped).
struct GroupGuard(u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.0, rustix::process::Signal::KILL);
    }
}

/// "exited with status 1", "killed by signal 9".
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        format!("exited with status {code}")
    } else if let Some(signal) = status.signal() {
        format!("killed by signal {signal}")
    } else {
        format!("ended ({status})")
    }
}

/// Reads one pipe into the ring until it ends (or fails: output is best effort).
async fn pump(pipe: &mut (impl AsyncRead + Unpin), buf: &mut [u8], ring: &Mutex<Ring>) {
    loop {
        match pipe.read(buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => ring
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(&buf[..n]),
        }
    }
}

/// Runs `command` (filled in) under `sh -c` to its end, at most `timeout`; `what` names it in
/// errors ("the stop command of dr"). A non-zero exit, a timeout (its process group is killed)
/// or a cancel ([`DrError::Interrupted`], its process group killed too) is an error; a failure
/// carries the end of its output. Returns the end of its output (4 KiB).
pub async fn run(
    what: &str,
    command: &str,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<String, DrError> {
    let failed = |outcome: String, tail: String| DrError::CommandFailed {
        what: what.to_string(),
        command: command.to_string(),
        outcome,
        tail,
    };
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("could not be started: {e}"), String::new()))?;
    let pgid = child.id().unwrap_or(0);
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let ring = Mutex::new(Ring::default());
    let mut guard = GroupGuard(pgid);

    enum End {
        Exited(std::io::Result<ExitStatus>),
        TimedOut,
        Cancelled,
    }
    let end = {
        let (mut out_buf, mut err_buf) = (vec![0u8; 8192], vec![0u8; 8192]);
        let output = async {
            let out = async {
                if let Some(pipe) = stdout.as_mut() {
                    pump(pipe, &mut out_buf, &ring).await;
                }
            };
            let err = async {
                if let Some(pipe) = stderr.as_mut() {
                    pump(pipe, &mut err_buf, &ring).await;
                }
            };
            tokio::join!(out, err);
        };
        tokio::pin!(output);
        let mut output_done = false;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let status = loop {
            tokio::select! {
                status = child.wait() => break End::Exited(status),
                () = &mut output, if !output_done => output_done = true,
                () = &mut deadline => break End::TimedOut,
                () = cancel.cancelled() => break End::Cancelled,
            }
        };
        if matches!(status, End::Exited(_)) && !output_done {
            // What the command wrote just before it ended; a daemon it left behind that keeps the
            // pipes open is not waited for.
            let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, &mut output).await;
        }
        status
    };
    drop(stdout);
    drop(stderr);
    let tail = ring.lock().unwrap_or_else(|e| e.into_inner()).text();
    // From here on the group is handled below: what a command that ended left behind (a daemon
    // it started) is its business; one that did not end is killed.
    guard.0 = 0;
    match end {
        End::Exited(Ok(status)) if status.success() => Ok(tail),
        End::Exited(Ok(status)) => Err(failed(describe(status), tail)),
        End::Exited(Err(e)) => Err(failed(format!("could not be waited for: {e}"), tail)),
        End::TimedOut | End::Cancelled => {
            signal_group(pgid, rustix::process::Signal::KILL);
            let _ = child.wait().await;
            if matches!(end, End::Cancelled) {
                return Err(DrError::Interrupted);
            }
            Err(failed(
                format!(
                    "did not finish within {} (it and everything it started were killed)",
                    humantime::format_duration(timeout)
                ),
                tail,
            ))
        }
    }
}

/// A command running in the foreground of its own process group (a drill's coordinator), its
/// output appended to a log file (0600). Dropping it kills the whole group.
#[derive(Debug)]
pub struct Foreground {
    child: Option<std::process::Child>,
    log: PathBuf,
    what: String,
    /// How it ended, once it has (and its group's leftovers were killed).
    ended: Option<String>,
}

impl Foreground {
    /// Starts `command` under `sh -c`, output to `log`.
    pub fn spawn(what: &str, command: &str, log: &Path) -> Result<Foreground, DrError> {
        let io = |source| DrError::Io {
            path: log.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(log)
            .map_err(io)?;
        let err = file.try_clone().map_err(io)?;
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| DrError::CommandFailed {
                what: what.to_string(),
                command: command.to_string(),
                outcome: format!("could not be started: {e}"),
                tail: String::new(),
            })?;
        Ok(Foreground {
            child: Some(child),
            log: log.to_path_buf(),
            what: what.to_string(),
            ended: None,
        })
    }

    /// The process's pid (also its process group's id).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// What it is ("the drill's coordinator"), as given to [`Foreground::spawn`].
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The log file its output goes to.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Records how the leader ended and kills what it left in its group.
    fn finished(&mut self, status: ExitStatus) -> String {
        if let Some(pgid) = self.pid() {
            signal_group(pgid, rustix::process::Signal::KILL);
        }
        let why = describe(status);
        self.ended = Some(why.clone());
        why
    }

    /// `Some(description)` once the process has ended ("exited with status 1", "killed by
    /// signal 9"); `None` while it runs. Once it has ended, whatever it left running in its
    /// process group is killed.
    pub fn ended(&mut self) -> Option<String> {
        if let Some(why) = &self.ended {
            return Some(why.clone());
        }
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(self.finished(status)),
            Ok(None) => None,
            Err(e) => {
                let why = format!("could not be waited for: {e}");
                self.ended = Some(why.clone());
                Some(why)
            }
        }
    }

    /// The last `bytes` (at most 1 MiB) of its log, lossily decoded.
    pub fn log_tail(&self, bytes: u64) -> String {
        let bytes = bytes.min(1 << 20);
        let Ok(mut file) = File::open(&self.log) else {
            return String::new();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if file
            .seek(SeekFrom::Start(len.saturating_sub(bytes)))
            .is_err()
        {
            return String::new();
        }
        let mut buf = Vec::new();
        let _ = file.take(bytes).read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Stops the group: SIGTERM, up to `grace` for it to end, then SIGKILL; reaps it. Returns
    /// how it ended.
    pub async fn stop(&mut self, grace: Duration) -> Result<String, DrError> {
        if let Some(why) = self.ended() {
            return Ok(why);
        }
        let Some(pgid) = self.pid() else {
            return Ok("never started".into());
        };
        signal_group(pgid, rustix::process::Signal::TERM);
        let deadline = tokio::time::Instant::now() + grace;
        let mut pause = Duration::from_millis(20);
        loop {
            if let Some(why) = self.ended() {
                return Ok(why);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
        signal_group(pgid, rustix::process::Signal::KILL);
        let Some(child) = self.child.as_mut() else {
            return Ok("never started".into());
        };
        match child.wait() {
            Ok(status) => Ok(self.finished(status)),
            Err(e) => Err(DrError::CommandFailed {
                what: self.what.clone(),
                command: format!("pid {pgid}"),
                outcome: format!("could not be waited for after SIGKILL: {e}"),
                tail: String::new(),
            }),
        }
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        if self.ended.is_some() {
            return;
        }
        if let Some(mut child) = self.child.take() {
            if let Ok(Some(_)) = child.try_wait() {
                signal_group(child.id(), rustix::process::Signal::KILL);
                return;
            }
            signal_group(child.id(), rustix::process::Signal::KILL);
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(paths_local: &str, home: Option<&str>) -> Vars {
        Vars {
            paths_local: PathBuf::from(paths_local),
            home: home.map(PathBuf::from),
            port: 9047,
        }
    }

    /// Polls `f` (a condition another process brings about) for up to a minute.
    fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn pid_in(text: &str) -> Option<u32> {
        text.lines().find_map(|l| l.trim().parse().ok())
    }

    #[test]
    fn templates_quote_values_and_name_the_key_in_errors() {
        let v = vars("/srv/it's here", Some("/opt/dremio"));
        assert_eq!(
            expand("k", "run --dir {paths_local} --port {port} -h {home}", &v).unwrap(),
            "run --dir '/srv/it'\\''s here' --port '9047' -h '/opt/dremio'"
        );
        assert_eq!(
            expand("k", "echo ${{HOME}} }", &v).unwrap(),
            "echo ${HOME} }"
        );
        for (template, says) in [
            ("start {nope}", "{nope} is not something"),
            ("start {paths_local", "never closed"),
        ] {
            let e = expand("clusters.dr.start", template, &v).unwrap_err();
            let text = e.to_string();
            assert!(text.starts_with("clusters.dr.start "), "{text}");
            assert!(text.contains(says), "{text}");
        }
        let e = expand(
            "clusters.dr.stop",
            "{home}/bin/dremio stop",
            &vars("/x", None),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("clusters.dr.stop") && e.contains("dremio_home"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_quoted_value_reaches_the_command_as_one_word() {
        let hostile = "/tmp/a b'\"$(touch /tmp/lifeboat-pwned)`x`;";
        let command = expand("k", "printf '%s|' {paths_local}", &vars(hostile, None)).unwrap();
        let out = run(
            "test",
            &command,
            Duration::from_secs(30),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(out, format!("{hostile}|"));
        assert!(!Path::new("/tmp/lifeboat-pwned").exists());
    }

    #[tokio::test]
    async fn a_failing_command_says_how_it_ended_with_its_output_tail() {
        let cancel = CancellationToken::new();
        // One stream for the order (two pipes are read as either is ready, so which of them
        // ends the tail is not fixed), then stderr alone to show it is kept too.
        let command =
            "exec 2>&1; head -c 10000 /dev/zero | tr '\\0' a; echo; echo to stderr >&2; exit 3";
        let e = run(
            "the stop command of dr",
            command,
            Duration::from_secs(30),
            &cancel,
        )
        .await
        .unwrap_err();
        let DrError::CommandFailed {
            outcome,
            tail,
            what,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(outcome, "exited with status 3");
        assert_eq!(what, "the stop command of dr");
        assert!(tail.len() <= TAIL_BYTES, "{}", tail.len());
        assert!(tail.ends_with("to stderr"), "{tail}");
        assert!(tail.starts_with("aaa"), "{tail}");
        assert!(e.to_string().contains("its output ends with"));
        let e = run(
            "test",
            "echo only on stderr >&2; exit 4",
            Duration::from_secs(30),
            &cancel,
        )
        .await
        .unwrap_err();
        let DrError::CommandFailed { tail, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(tail.contains("only on stderr"), "{tail}");
    }

    #[tokio::test]
    async fn a_timeout_or_a_cancel_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let command = format!("sleep 1000 & echo $! > '{}'; wait", pidfile.display());
        let cancel = CancellationToken::new();
        let e = run("start", &command, Duration::from_secs(2), &cancel)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("did not finish within 2s"), "{e}");
        let text = std::fs::read_to_string(&pidfile).expect("the command wrote its child's pid");
        let pid = pid_in(&text).unwrap();
        until("the background sleep is gone", || {
            (!crate::host::process_alive(pid)).then_some(())
        });

        std::fs::remove_file(&pidfile).unwrap();
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        let watched = pidfile.clone();
        let watcher = std::thread::spawn(move || {
            until("the command started", || {
                std::fs::read_to_string(&watched)
                    .ok()
                    .and_then(|t| pid_in(&t))
            });
            trigger.cancel();
        });
        let e = run("start", &command, Duration::from_secs(600), &cancel)
            .await
            .unwrap_err();
        assert!(matches!(e, DrError::Interrupted), "{e:?}");
        watcher.join().unwrap();
        let pid = pid_in(&std::fs::read_to_string(&pidfile).unwrap()).unwrap();
        until("the background sleep is gone", || {
            (!crate::host::process_alive(pid)).then_some(())
        });
    }

    #[tokio::test]
    async fn foreground_stop_ends_the_leader_and_what_it_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("coordinator.log");
        let mut fg = Foreground::spawn(
            "the drill's coordinator",
            "echo started; exec sleep 1000",
            &log,
        )
        .unwrap();
        let leader = fg.pid().unwrap();
        until("it started", || {
            fg.log_tail(100).contains("started").then_some(())
        });
        assert_eq!(fg.ended(), None);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fg.stop(Duration::from_secs(30)).await.unwrap(),
            "killed by signal 15"
        );
        assert!(!crate::host::process_alive(leader));
        assert_eq!(fg.ended().as_deref(), Some("killed by signal 15"));

        // A shell whose background child ignores SIGTERM: the shell ends on SIGTERM, and its
        // child is killed with the group.
        let command = "(trap '' TERM; exec sleep 1000) & echo $!; wait";
        let mut fg = Foreground::spawn("coordinator", command, &log).unwrap();
        let child = until("it started its child", || pid_in(&fg.log_tail(100)));
        let how = fg.stop(Duration::from_secs(30)).await.unwrap();
        assert_eq!(how, "killed by signal 15");
        until("the background child is gone", || {
            (!crate::host::process_alive(child)).then_some(())
        });
    }

    #[tokio::test]
    async fn foreground_reports_its_end_and_drop_kills_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let mut fg = Foreground::spawn("c", "echo bye >&2; exit 3", &log).unwrap();
        let how = until("it ended", || fg.ended());
        assert_eq!(how, "exited with status 3");
        assert_eq!(fg.log_tail(4096), "bye\n");
        assert_eq!(fg.log_tail(2), "e\n");
        assert_eq!(
            fg.stop(Duration::from_secs(1)).await.unwrap(),
            "exited with status 3"
        );

        let fg = Foreground::spawn("c", "sleep 1000 & echo $!; wait", &log).unwrap();
        let leader = fg.pid().unwrap();
        let child = until("it started its child", || {
            fg.log_tail(100)
                .lines()
                .nth(1)
                .and_then(|l| l.trim().parse::<u32>().ok())
        });
        drop(fg);
        assert!(!crate::host::process_alive(leader));
        until("the child is gone", || {
            (!crate::host::process_alive(child)).then_some(())
        });
    }
}
