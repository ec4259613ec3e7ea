//! druid-sim as the lifeboat-side tests (tests/it/druid_clone.rs, tests/it/doctor_druid.rs) run
//! it: one way to start a node and learn its address, and the basic-auth header its security
//! answers to, so that a change in the simulator's active line or flags is made once.

use std::process::{Child, Command, Stdio};

use base64::Engine;

use super::{first_line, sim_bin};

/// Starts `druid-sim --port 0 <args>` and waits for its active line, which it prints only once
/// listening: the returned URL (`http://127.0.0.1:port`) takes requests at once.
pub fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(sim_bin("druid-sim"))
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        // Its log would bury the test's own failure message.
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = first_line(&mut child);
    let addr = line
        .trim()
        .strip_prefix("druid-sim: active on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let url = format!("http://{addr}");
    (child, url)
}

/// The `Authorization` value of HTTP basic auth for `user`.
pub fn basic(user: &str, password: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b64}")
}
