//! Start `druid-sim` and talk to it over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use dremio_sim::client::{Response, request};

pub const SIM: &str = env!("CARGO_BIN_EXE_druid-sim");

/// A running simulator, killed when dropped.
pub struct Sim {
    child: Child,
    pub port: u16,
}

impl Sim {
    /// A simulator with its state in memory.
    pub fn start() -> Sim {
        Sim::spawn(&[])
    }

    /// A simulator whose embedded store lives in `dir`.
    pub fn with_state(dir: &Path) -> Sim {
        Sim::spawn(&["--state", dir.to_str().unwrap()])
    }

    /// Starts one and reads its port from the active line (which it prints once listening).
    pub fn spawn(extra: &[&str]) -> Sim {
        let mut child = Command::new(SIM)
            .args(["--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn druid-sim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("druid-sim's active line");
        let port = line
            .trim()
            .strip_prefix("druid-sim: active on 127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Sim { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Response {
        request(
            &format!("127.0.0.1:{}", self.port),
            method,
            path,
            headers,
            body,
        )
        .expect("request")
    }

    pub fn get(&self, path: &str) -> Response {
        self.call("GET", path, &[], None)
    }

    /// A write as lifeboat makes it: with author and comment headers.
    pub fn post(&self, path: &str, body: &str) -> Response {
        self.call(
            "POST",
            path,
            &[
                ("X-Druid-Author", "lifeboat"),
                ("X-Druid-Comment", "from primary"),
            ],
            Some(body),
        )
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
