//! Offline and online backups under torture, and the fixtures and backups other commands share.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, ensure};

use crate::kill::{Invocation, Ran};
use crate::place::{Place, alternating, alternating_variant};
use crate::support::{
    Fixture, Sim, StoreKind, fixture, lifeboat, lifeboat_env, names, ok_json, sim_bin, snapshot,
};
use crate::{Scenario, say};

/// Size of the main fixture: an archive of about 12 MB, two upload parts, so that kills land in
/// the middle of a multipart upload.
const BIG_MIB: u64 = 24;

/// Built once, on first use, for the commands that need them.
#[derive(Default)]
pub struct Shared {
    big: OnceLock<Fixture>,
    small: OnceLock<Fixture>,
    sources: OnceLock<Source>,
    small_source: OnceLock<Source>,
    logical_source: OnceLock<Source>,
    /// Format 2: its own installation (a backup holds the store's lock), and its backups.
    f2: OnceLock<Fixture>,
    f2_sources: OnceLock<Source>,
    f2_small: OnceLock<Fixture>,
    f2_small_source: OnceLock<Source>,
}

/// `backup`'s flags for a format-2 backup (the writer's CLI contract).
pub const FORMAT_2: [&str; 2] = ["--format", "2"];

/// A location with committed backups that a command reads.
pub struct Source {
    pub place: Place,
    /// Oldest first.
    pub ids: Vec<String>,
}

impl Shared {
    /// The installation whose backups copy copies and restore restores.
    pub fn big(&self) -> &Fixture {
        self.big.get_or_init(|| fixture(BIG_MIB, 100))
    }

    /// A small installation: the previous contents of restore targets, and prune's backups.
    pub fn small(&self) -> &Fixture {
        self.small.get_or_init(|| fixture(1, 10))
    }

    /// SeaweedFS ("us") with two backups of [`Shared::big`]: copied by copy, restored by restore.
    pub fn sources(&self) -> &Source {
        self.sources
            .get_or_init(|| source_of(self.big(), "torture-source", 2, &[]))
    }

    /// SeaweedFS ("us") with two format-2 backups of an installation like [`Shared::big`], the
    /// second incremental (it reuses the first's shared objects): copied by copy-f2, and the
    /// pattern prune-f2 plants.
    pub fn f2_sources(&self) -> &Source {
        self.f2_sources.get_or_init(|| {
            let fx = self.f2.get_or_init(|| fixture(BIG_MIB, 100));
            source_of(fx, "torture-source-f2", 2, &FORMAT_2)
        })
    }

    /// SeaweedFS with one online (logical) backup of a seeded simulator, for restore-logical.
    pub fn logical_source(&self) -> &Source {
        self.logical_source.get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("lifeboat-torture-logical-")
                .tempdir()
                .expect("a scratch folder");
            let sim = seeded_sim(dir.path(), 200).expect("a seeded simulator");
            let staging = dir.path().join("staging");
            std::fs::create_dir(&staging).expect("a staging folder");
            let place = Place::new(StoreKind::S3, "torture-logical");
            let made = ok_json(&lifeboat_env(
                &[
                    "--json",
                    "backup",
                    "--dremio-url",
                    &sim.url,
                    "--staging",
                    &staging.display().to_string(),
                    "--to",
                    &place.name,
                ],
                &seed_admin(),
            ));
            say(&format!(
                "torture: an online backup made in {}",
                place.loc.url
            ));
            let id = made["id"].as_str().expect("backup id").to_string();
            Source {
                place,
                ids: vec![id],
            }
        })
    }

    /// SeaweedFS with one format-2 backup of a small installation of its own, planted again and
    /// again (under new object names) for prune-f2.
    pub fn f2_small_source(&self) -> &Source {
        self.f2_small_source.get_or_init(|| {
            let fx = self.f2_small.get_or_init(|| fixture(2, 10));
            source_of(fx, "torture-small-f2", 1, &FORMAT_2)
        })
    }

    /// SeaweedFS with one backup of [`Shared::small`], planted again and again for prune.
    pub fn small_source(&self) -> &Source {
        self.small_source
            .get_or_init(|| source_of(self.small(), "torture-small", 1, &[]))
    }
}

fn source_of(fx: &Fixture, label: &str, count: usize, extra: &[&str]) -> Source {
    let place = Place::new(StoreKind::S3, label);
    let home = fx.home.display().to_string();
    let ids = (0..count)
        .map(|_| {
            let mut args = vec![
                "--json",
                "backup",
                "--dremio-home",
                &home,
                "--to",
                &place.name,
            ];
            args.extend_from_slice(extra);
            // The format-1 scenarios read data.tar.zst; the format-2 ones pass their own flags.
            if !extra.contains(&"--format") {
                args.extend_from_slice(&["--format", "1"]);
            }
            let made = ok_json(&lifeboat(&args, &[]));
            made["id"].as_str().expect("backup id").to_string()
        })
        .collect();
    say(&format!(
        "torture: {count} backup(s) of a fixture made in {}",
        place.loc.url
    ));
    Source { place, ids }
}

/// What a backup run's checks carry from the kill to the rerun.
pub struct BackupRun {
    place: Place,
    after_kill: RefCell<Vec<String>>,
    /// Online only: the folder the coordinator writes into.
    staging: Option<PathBuf>,
}

/// The backups after a run: one if it ended on its own, at most one if killed.
fn backups_after(run: &BackupRun, ran: &Ran) -> anyhow::Result<String> {
    let ids = run.place.complete_backups()?;
    if ran.killed() {
        ensure!(
            ids.len() <= 1,
            "one killed backup left {} backups: {ids:?}",
            ids.len()
        );
    } else {
        ensure!(ids.len() == 1, "a finished backup left {ids:?}");
    }
    let found = format!("{} complete backup(s)", ids.len());
    *run.after_kill.borrow_mut() = ids;
    Ok(found)
}

/// After the rerun: exactly one more backup, every earlier one still there; then prune.
fn backups_after_rerun(run: &BackupRun) -> anyhow::Result<()> {
    let before = run.after_kill.borrow().clone();
    let ids = run.place.complete_backups()?;
    ensure!(
        ids.len() == before.len() + 1 && before.iter().all(|b| ids.contains(b)),
        "the rerun should add one backup to {before:?}; the location lists {ids:?}"
    );
    run.place.prune_leftovers(&ids)
}

/// `lifeboat backup` of a stopped coordinator, alternately to SeaweedFS and to a local folder
/// (whose killed multipart uploads leave staging files on disk for prune to find).
pub struct Offline {
    /// Its own installation: a backup holds the store's lock, which would turn away the backups
    /// that other commands' sources are made with.
    fx: Fixture,
    source_before: BTreeMap<String, String>,
}

impl Offline {
    pub fn new() -> anyhow::Result<Offline> {
        let fx = fixture(BIG_MIB, 100);
        Ok(Offline {
            source_before: snapshot(&fx.paths_local),
            fx,
        })
    }

    fn source_untouched(&self) -> anyhow::Result<()> {
        ensure!(
            snapshot(&self.fx.paths_local) == self.source_before,
            "the backed-up installation {} changed",
            self.fx.paths_local.display()
        );
        Ok(())
    }
}

impl Scenario for Offline {
    type World = BackupRun;

    fn world(&self, run: usize, _scratch: &Path) -> anyhow::Result<(BackupRun, Invocation)> {
        let kind = alternating(run);
        let place = Place::new(kind, "torture-backup");
        let home = self.fx.home.display().to_string();
        let args = [
            "backup",
            "--format",
            "1",
            "--dremio-home",
            &home,
            "--to",
            &place.name,
            "--threads",
            "1",
            "--level",
            "3",
        ];
        let inv = Invocation::new(&args, &[]);
        let run = BackupRun {
            place,
            after_kill: RefCell::new(Vec::new()),
            staging: None,
        };
        Ok((run, inv))
    }

    fn after_kill(&self, run: &BackupRun, ran: &Ran) -> anyhow::Result<String> {
        self.source_untouched()?;
        let found = backups_after(run, ran)?;
        Ok(format!("{found} in a {:?} location", run.place.loc.kind))
    }

    fn after_rerun(&self, run: &BackupRun) -> anyhow::Result<()> {
        self.source_untouched()?;
        backups_after_rerun(run)
    }

    fn variant(&self, run: usize) -> &'static str {
        alternating_variant(run)
    }
}

/// `lifeboat backup --format 2` of a stopped coordinator after an earlier format-2 backup of it:
/// the incremental run (it uploads only what the first lacks) is the one killed, alternately on
/// SeaweedFS and on a local folder. After any kill the first backup is intact (its objects, which
/// the second reuses, all there), every listed backup verifies, and a rerun adds exactly one
/// backup, incremental on a committed base; prune then leaves exactly what they reference.
pub struct Incremental {
    fx: Fixture,
    source_before: BTreeMap<String, String>,
}

/// What an incremental run's checks carry: the run's location and its first backup.
pub struct IncrementalRun {
    run: BackupRun,
    first: String,
}

impl Incremental {
    pub fn new() -> anyhow::Result<Incremental> {
        let fx = fixture(BIG_MIB, 100);
        Ok(Incremental {
            source_before: snapshot(&fx.paths_local),
            fx,
        })
    }

    fn args(&self, place: &Place) -> Vec<String> {
        let home = self.fx.home.display().to_string();
        let mut args: Vec<String> = ["backup", "--dremio-home", &home, "--to", &place.name]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.extend(FORMAT_2.iter().map(|a| a.to_string()));
        args.extend(["--threads", "1", "--level", "3"].map(String::from));
        args
    }

    fn source_untouched(&self) -> anyhow::Result<()> {
        ensure!(
            snapshot(&self.fx.paths_local) == self.source_before,
            "the backed-up installation {} changed",
            self.fx.paths_local.display()
        );
        Ok(())
    }
}

impl Scenario for Incremental {
    type World = IncrementalRun;

    fn world(&self, run: usize, _scratch: &Path) -> anyhow::Result<(IncrementalRun, Invocation)> {
        let place = Place::new(alternating(run), "torture-incremental");
        let args = self.args(&place);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        // The base: an uninterrupted format-2 backup.
        let mut first_args = vec!["--json"];
        first_args.extend_from_slice(&refs);
        let made = ok_json(&lifeboat(&first_args, &[]));
        let first = made["id"].as_str().context("backup id")?.to_string();
        let inv = Invocation::new(&refs, &[]);
        let run = BackupRun {
            place,
            after_kill: RefCell::new(Vec::new()),
            staging: None,
        };
        Ok((IncrementalRun { run, first }, inv))
    }

    fn after_kill(&self, w: &IncrementalRun, ran: &Ran) -> anyhow::Result<String> {
        self.source_untouched()?;
        let ids = w.run.place.complete_backups()?;
        ensure!(
            ids.contains(&w.first),
            "the first backup {} is gone: {ids:?}",
            w.first
        );
        if ran.killed() {
            ensure!(ids.len() <= 2, "one killed backup left {ids:?}");
        } else {
            ensure!(ids.len() == 2, "a finished incremental backup left {ids:?}");
        }
        for id in ids.iter().filter(|id| **id != w.first) {
            incremental_on(&w.run.place, id, &ids)?;
        }
        let found = format!(
            "{} complete backup(s) in a {:?} location",
            ids.len(),
            w.run.place.loc.kind
        );
        *w.run.after_kill.borrow_mut() = ids;
        Ok(found)
    }

    fn after_rerun(&self, w: &IncrementalRun) -> anyhow::Result<()> {
        self.source_untouched()?;
        let before = w.run.after_kill.borrow().clone();
        let ids = w.run.place.complete_backups()?;
        let new: Vec<&String> = ids.iter().filter(|id| !before.contains(id)).collect();
        ensure!(
            ids.len() == before.len() + 1 && new.len() == 1,
            "the rerun should add one backup to {before:?}; the location lists {ids:?}"
        );
        incremental_on(&w.run.place, new[0], &ids)?;
        w.run.place.prune_leftovers(&ids)
    }

    fn variant(&self, run: usize) -> &'static str {
        alternating_variant(run)
    }
}

/// Backup `id` is format 2, incremental on a base that is one of the committed `ids`, and
/// reuses at least one of the base's objects (the installation did not change between them).
fn incremental_on(place: &Place, id: &str, ids: &[String]) -> anyhow::Result<()> {
    let m = place.manifest(id)?;
    ensure!(
        m["format"] == "lifeboat-backup/2",
        "backup {id} is {}, not format 2",
        m["format"]
    );
    let base = m["base"]
        .as_str()
        .with_context(|| format!("backup {id} has no base: it was not incremental"))?;
    ensure!(
        ids.iter().any(|i| i == base),
        "backup {id}'s base {base} is not a committed backup ({ids:?})"
    );
    let names = |m: &serde_json::Value| -> BTreeSet<String> {
        m["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["name"].as_str().map(str::to_string))
            .collect()
    };
    let shared = names(&m)
        .intersection(&names(&place.manifest(base)?))
        .count();
    ensure!(
        shared > 0,
        "backup {id} reuses no object of its base {base}"
    );
    Ok(())
}

/// The seeded simulator's administrator (`dremio-sim seed`).
pub fn seed_admin() -> Vec<(String, String)> {
    vec![
        ("LIFEBOAT_DREMIO_USER".into(), "admin".into()),
        ("LIFEBOAT_DREMIO_PASSWORD".into(), "Passw0rd!".into()),
    ]
}

/// A simulator whose catalog `dremio-sim seed` filled with `objects` objects.
pub fn seeded_sim(dir: &Path, objects: usize) -> anyhow::Result<Sim> {
    let local = dir.join("primary");
    let out = std::process::Command::new(sim_bin("dremio-sim"))
        .args(["seed", "--paths-local", &local.display().to_string()])
        .args(["--objects", &objects.to_string()])
        .output()?;
    ensure!(
        out.status.success(),
        "dremio-sim seed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(Sim::start(&local, "25.2.0"))
}

/// `lifeboat backup --dremio-url` of a running (simulated) coordinator to SeaweedFS.
pub struct Online {
    sim: Sim,
    _dir: tempfile::TempDir,
}

impl Online {
    pub fn new() -> anyhow::Result<Online> {
        let dir = tempfile::Builder::new()
            .prefix("lifeboat-torture-online-")
            .tempdir()?;
        let sim = seeded_sim(dir.path(), 200)?;
        Ok(Online { sim, _dir: dir })
    }
}

impl Scenario for Online {
    type World = BackupRun;

    fn world(&self, _run: usize, scratch: &Path) -> anyhow::Result<(BackupRun, Invocation)> {
        let place = Place::new(StoreKind::S3, "torture-online");
        let staging = scratch.join("staging");
        std::fs::create_dir(&staging)?;
        let dir = staging.display().to_string();
        let args = [
            "backup",
            "--format",
            "1",
            "--dremio-url",
            &self.sim.url,
            "--staging",
            &dir,
            "--to",
            &place.name,
        ];
        let inv = Invocation::new(&args, &seed_admin());
        let run = BackupRun {
            place,
            after_kill: RefCell::new(Vec::new()),
            staging: Some(staging),
        };
        Ok((run, inv))
    }

    fn after_kill(&self, run: &BackupRun, ran: &Ran) -> anyhow::Result<String> {
        let found = backups_after(run, ran)?;
        let staging = run
            .staging
            .as_deref()
            .expect("online runs have a staging folder");
        let left = names(staging);
        if !ran.killed() {
            ensure!(
                left.is_empty(),
                "a finished online backup left {left:?} in --staging"
            );
        }
        Ok(format!("{found}, --staging holds {left:?}"))
    }

    fn after_rerun(&self, run: &BackupRun) -> anyhow::Result<()> {
        backups_after_rerun(run)?;
        let staging = run
            .staging
            .as_deref()
            .expect("online runs have a staging folder");
        let left = names(staging);
        ensure!(
            left.is_empty(),
            "after the rerun {} still holds {left:?}: the coordinator's backup folder of the killed run, which nothing removes",
            staging.display()
        );
        Ok(())
    }
}
