//! `lifeboat clone apply` from one simulator to another under torture: the primary holds a
//! seeded catalog of 200 objects; each run's target is a fresh simulator that answers slowly
//! (5 ms a request, 4 at once), so that kills land while objects are being created.

use std::path::Path;

use anyhow::{Context, ensure};
use serde_json::{Value, json};

use crate::Scenario;
use crate::backup::{seed_admin, seeded_sim};
use crate::kill::{Invocation, Ran};
use crate::support::{Sim, http, lifeboat_env, stderr};

pub struct Apply {
    primary: Sim,
    mapping: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub struct ApplyRun {
    target: Sim,
    plan: Vec<String>,
}

/// Both clusters' administrators and the secret the seeded sources need on a new cluster.
fn env() -> Vec<(String, String)> {
    let mut env = seed_admin();
    env.push(("LIFEBOAT_SOURCE_DREMIO_USER".into(), "admin".into()));
    env.push(("LIFEBOAT_SOURCE_DREMIO_PASSWORD".into(), "Passw0rd!".into()));
    env.push(("LAKE_SECRET".into(), "s3cr3t-lake-key".into()));
    env
}

impl Apply {
    pub fn new() -> anyhow::Result<Apply> {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-torture-clone-")
            .tempdir()?;
        let primary = seeded_sim(dir.path(), 200)?;
        let mapping = dir.path().join("mapping.toml");
        std::fs::write(
            &mapping,
            "[secrets.lake]\naccessSecret = { env = \"LAKE_SECRET\" }\n[secrets.pg]\npassword = { env = \"LAKE_SECRET\" }\n",
        )?;
        Ok(Apply {
            primary,
            mapping,
            _dir: dir,
        })
    }

    /// `clone plan` of the primary onto the run's target: its JSON summary.
    fn plan(&self, run: &ApplyRun) -> anyhow::Result<Value> {
        let mut args = vec!["--json", "clone"];
        args.extend(run.plan.iter().map(String::as_str));
        let out = lifeboat_env(&args, &env());
        ensure!(
            out.status.success(),
            "clone plan failed ({}): {}",
            out.status,
            stderr(&out).trim()
        );
        let plan: Value = serde_json::from_slice(&out.stdout).context("clone plan --json")?;
        Ok(plan["summary"].clone())
    }
}

/// A fresh simulator with the seed's administrator, answering slowly.
fn slow_target(dir: &Path) -> anyhow::Result<Sim> {
    let sim = Sim::start_with(dir, "25.2.0", &["--latency-ms", "5", "--threads", "4"], &[]);
    let body = json!({"userName": "admin", "firstName": "Admin", "lastName": "Seed",
        "email": "admin@example.com", "createdAt": 0, "password": "Passw0rd!"});
    let (status, text) = http(
        "PUT",
        &format!("{}/apiv2/bootstrap/firstuser", sim.url),
        Some("_dremionull"),
        Some(&body),
    );
    ensure!(status < 300, "firstuser on the target: {status} {text}");
    Ok(sim)
}

fn count(summary: &Value, key: &str) -> u64 {
    summary[key].as_u64().unwrap_or(u64::MAX)
}

impl Scenario for Apply {
    type World = ApplyRun;

    fn world(&self, _run: usize, scratch: &Path) -> anyhow::Result<(ApplyRun, Invocation)> {
        let target = slow_target(&scratch.join("secondary"))?;
        let map = self.mapping.display().to_string();
        let plan: Vec<String> = [
            "plan",
            "--source-url",
            &self.primary.url,
            "--dremio-url",
            &target.url,
            "--mapping",
            &map,
            "--concurrency",
            "4",
        ]
        .map(str::to_string)
        .to_vec();
        let mut args = vec!["clone", "apply"];
        args.extend(plan[1..].iter().map(String::as_str));
        let inv = Invocation::new(&args, &env());
        Ok((ApplyRun { target, plan }, inv))
    }

    fn after_kill(&self, run: &ApplyRun, ran: &Ran) -> anyhow::Result<String> {
        let s = self.plan(run)?;
        ensure!(
            count(&s, "blocked") == 0 && count(&s, "delete") == 0,
            "after the kill the plan has blocked or deleted objects: {s}"
        );
        let left = count(&s, "create") + count(&s, "update");
        if !ran.killed() {
            ensure!(left == 0, "a finished apply left work to do: {s}");
        }
        Ok(format!(
            "{} to create, {} to update, {} unchanged",
            count(&s, "create"),
            count(&s, "update"),
            count(&s, "unchanged")
        ))
    }

    fn after_rerun(&self, run: &ApplyRun) -> anyhow::Result<()> {
        let s = self.plan(run)?;
        for key in ["create", "update", "delete", "blocked"] {
            ensure!(
                count(&s, key) == 0,
                "after the rerun the plan still has {key} > 0: {s} (target {})",
                run.target.url
            );
        }
        Ok(())
    }
}
