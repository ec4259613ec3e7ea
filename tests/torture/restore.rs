//! `lifeboat restore --replace` from SeaweedFS under torture: of an offline backup, and of a
//! logical (online) one, which the installation's own `dremio-admin restore` loads.
//!
//! The target (paths.local) holds another installation's state, or is an empty folder, or does
//! not exist. After a kill only three states are legal (src/commands/restore/stage.rs):
//! - untouched: the target equals its snapshot, and no safety copy exists (a staging folder
//!   `.lifeboat-restore-*` may, in any state: the next restore settles it);
//! - restored: the target equals the backup's content, and the previous contents sit whole in
//!   one `<target>.before-restore-*` beside it (an empty folder may instead have been removed);
//! - restored between the atomic exchange and the rename aside: the target equals the backup's
//!   content, and the previous contents sit whole at the staged path of a staging folder whose
//!   journal says `swapping` for this target (the next restore names them properly).
//!
//! Anything else (a torn target, previous contents missing or changed, a stray file beside the
//! target) is an inconsistency.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::Scenario;
use crate::backup::{Shared, Source};
use crate::kill::{Invocation, Ran};
use crate::support::{Fixture, lifeboat, names, ok_json, sim_bin, snapshot};

const STAGING: &str = ".lifeboat-restore-";

type Snapshot = BTreeMap<String, String>;

/// What the target holds before the restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    Populated,
    Empty,
    Missing,
}

/// Which kind of backup is restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Offline,
    Logical,
}

pub struct Restore<'a> {
    flavour: Flavour,
    source: &'a Source,
    previous: &'a Fixture,
    id: String,
    /// The backup's content, as an uninterrupted restore lays it out.
    expected: Snapshot,
}

pub struct RestoreRun {
    /// The folder that holds the target, where staging folders and safety copies appear.
    site: PathBuf,
    target: PathBuf,
    kind: Before,
    before: Snapshot,
}

impl<'a> Restore<'a> {
    pub fn new(shared: &'a Shared, flavour: Flavour) -> anyhow::Result<Restore<'a>> {
        let source = match flavour {
            Flavour::Offline => shared.sources(),
            Flavour::Logical => shared.logical_source(),
        };
        let id = source.ids.last().context("the source has backups")?.clone();
        let mut restore = Restore {
            flavour,
            source,
            previous: shared.small(),
            id,
            expected: Snapshot::new(),
        };
        let scratch = tempfile::Builder::new()
            .prefix("lifeboat-torture-restore-")
            .tempdir()?;
        let (run, inv) = restore.world(0, scratch.path())?;
        let refs: Vec<&str> = inv.args.iter().map(String::as_str).collect();
        ok_json(&lifeboat(&[&["--json"], &refs[..]].concat(), &[]));
        restore.expected = snapshot(&run.target);
        match flavour {
            Flavour::Offline => holds_the_installation(&run.target, shared.big())?,
            Flavour::Logical => ensure!(
                restore.expected.keys().any(|k| k.starts_with("db/")),
                "dremio-admin loaded nothing into {}",
                run.target.display()
            ),
        }
        Ok(restore)
    }

    fn state_of(&self, dir: &Path, before: &Snapshot) -> &'static str {
        let s = snapshot(dir);
        if s == *before {
            "previous"
        } else if s == self.expected {
            "restored"
        } else if s.is_empty() {
            "missing"
        } else {
            "other"
        }
    }
}

/// The restored target holds what the backed-up installation held: every KV store, upload and
/// security file with the same size and digest (modes aside: restore sets its own).
fn holds_the_installation(target: &Path, fx: &Fixture) -> anyhow::Result<()> {
    for dir in [&fx.db, &fx.security, &fx.uploads] {
        let rel = dir.strip_prefix(&fx.paths_local)?;
        ensure!(
            files_in(&target.join(rel))? == files_in(dir)?,
            "an uninterrupted restore of {} does not hold what {} held",
            rel.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Every regular file under `root` with its SHA-256, except the contents of Dremio's temporary
/// checkpoints (which a backup leaves out).
fn files_in(root: &Path) -> anyhow::Result<BTreeMap<PathBuf, String>> {
    use sha2::Digest;
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry?;
        let rel = entry.path().strip_prefix(root)?;
        if entry.file_type().is_file() && !rel.starts_with("checkpoints") {
            let digest = sha2::Sha256::digest(std::fs::read(entry.path())?);
            files.insert(rel.to_path_buf(), hex::encode(digest));
        }
    }
    Ok(files)
}

impl Scenario for Restore<'_> {
    type World = RestoreRun;

    fn world(&self, run: usize, scratch: &Path) -> anyhow::Result<(RestoreRun, Invocation)> {
        let site = scratch.join("site");
        std::fs::create_dir(&site)?;
        let target = site.join("data");
        let kind = match run % 5 {
            4 => Before::Empty,
            0 if run > 0 => Before::Missing,
            _ => Before::Populated,
        };
        let home = scratch.join("home");
        if self.flavour == Flavour::Logical {
            make_home(&home, &target)?;
        }
        match kind {
            Before::Populated => {
                let out = std::process::Command::new("cp")
                    .arg("-a")
                    .arg(&self.previous.paths_local)
                    .arg(&target)
                    .output()?;
                ensure!(
                    out.status.success(),
                    "cp -a: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Before::Empty => std::fs::create_dir(&target)?,
            Before::Missing => {}
        }
        let before = snapshot(&target);
        let (t, h) = (target.display().to_string(), home.display().to_string());
        let mut args = vec![
            "restore",
            "--from",
            &self.source.place.name,
            "--backup",
            &self.id,
        ];
        match self.flavour {
            Flavour::Offline => args.extend([
                "--paths-local",
                &t,
                "--dremio-version",
                &self.previous.version,
            ]),
            // dremio-admin restores into the paths.local of its own conf/dremio.conf.
            Flavour::Logical => args.extend(["--dremio-home", &h]),
        }
        args.push("--replace");
        let inv = Invocation::new(&args, &[]);
        Ok((
            RestoreRun {
                site,
                target,
                kind,
                before,
            },
            inv,
        ))
    }

    fn after_kill(&self, run: &RestoreRun, _ran: &Ran) -> anyhow::Result<String> {
        let beside = Beside::look(run)?;
        let target = self.state_of(&run.target, &run.before);
        let asides: Vec<&str> = beside
            .asides
            .iter()
            .map(|a| self.state_of(a, &run.before))
            .collect();
        let staged = beside.staging.len();
        Ok(match (target, run.kind, asides.as_slice()) {
            ("previous", _, []) => format!("untouched, {staged} staging folder(s)"),
            ("restored", Before::Populated, ["previous"]) => {
                format!("restored, previous contents kept beside, {staged} staging folder(s)")
            }
            ("restored", Before::Populated, []) => {
                self.caught_mid_swap(run, &beside.staging)?;
                "restored, previous contents still in the staging folder (journal: swapping)".into()
            }
            // An empty folder needs no safety copy (it is removed, or still sits in staging).
            ("restored", Before::Empty | Before::Missing, []) => {
                format!("restored, nothing to keep, {staged} staging folder(s)")
            }
            ("other", _, _) if beside.journal_says("loading") => bail!(
                "the target holds a store that dremio-admin had not finished loading (journal: loading; a coordinator started now would run on it, until the next restore undoes it): neither untouched nor restored ({})",
                describe(&run.site)
            ),
            _ => bail!(
                "the target ({:?} before) is {target} and beside it are {asides:?} {:?}: no legal state ({})",
                run.kind,
                beside.asides,
                describe(&run.site)
            ),
        })
    }

    fn after_rerun(&self, run: &RestoreRun) -> anyhow::Result<()> {
        let beside = Beside::look(run)?;
        ensure!(
            beside.staging.is_empty(),
            "the rerun left staging folder(s) {:?} ({})",
            beside.staging,
            describe(&run.site)
        );
        let target = self.state_of(&run.target, &run.before);
        ensure!(
            target == "restored",
            "after the rerun the target is {target}, not the backup's content"
        );
        let asides: Vec<&str> = beside
            .asides
            .iter()
            .map(|a| self.state_of(a, &run.before))
            .collect();
        let previous = asides.iter().filter(|a| **a == "previous").count();
        let wanted = usize::from(run.kind == Before::Populated);
        ensure!(
            asides.iter().all(|a| *a == "previous" || *a == "restored")
                && (previous == wanted || run.kind == Before::Empty && previous <= 1),
            "after the rerun the safety copies beside the target are {asides:?} ({:?}); the previous contents ({:?} before) must be kept exactly once",
            beside.asides,
            run.kind
        );
        Ok(())
    }
}

impl Restore<'_> {
    /// The third legal state: exactly one staging folder, journal `swapping` for this target,
    /// and the previous contents whole at the path its swap staged the new tree from.
    fn caught_mid_swap(&self, run: &RestoreRun, staging: &[PathBuf]) -> anyhow::Result<()> {
        let [dir] = staging else {
            bail!(
                "the target is restored, no safety copy beside it, and {} staging folders: the previous contents are lost ({})",
                staging.len(),
                describe(&run.site)
            );
        };
        let journal: Value = serde_json::from_slice(
            &std::fs::read(dir.join("journal.json")).with_context(|| {
                format!(
                    "the previous contents are nowhere but {} has no journal",
                    dir.display()
                )
            })?,
        )?;
        ensure!(
            journal["state"] == "swapping"
                && journal["paths_local"] == run.target.display().to_string(),
            "the journal of {} does not say it was swapping {}: {journal}",
            dir.display(),
            run.target.display()
        );
        let swap = journal["swaps"]
            .as_array()
            .and_then(|s| {
                s.iter()
                    .find(|s| s["dest"] == run.target.display().to_string())
            })
            .with_context(|| format!("the journal names no swap into the target: {journal}"))?;
        let staged = PathBuf::from(swap["staged"].as_str().unwrap_or_default());
        ensure!(
            staged.starts_with(dir) && snapshot(&staged) == run.before,
            "the journal's staged path {} does not hold the previous contents whole ({})",
            staged.display(),
            describe(&run.site)
        );
        Ok(())
    }
}

/// What lies beside the target, sorted into staging folders and safety copies; anything else
/// there is an inconsistency in itself.
struct Beside {
    staging: Vec<PathBuf>,
    asides: Vec<PathBuf>,
}

impl Beside {
    fn look(run: &RestoreRun) -> anyhow::Result<Beside> {
        let name = run
            .target
            .file_name()
            .context("target name")?
            .to_string_lossy()
            .into_owned();
        let mut beside = Beside {
            staging: Vec::new(),
            asides: Vec::new(),
        };
        for n in names(&run.site) {
            let path = run.site.join(&n);
            if n == name {
                continue;
            } else if n.starts_with(STAGING) {
                beside.staging.push(path);
            } else if n.starts_with(&format!("{name}.before-restore-")) {
                beside.asides.push(path);
            } else {
                bail!(
                    "{} appeared beside the target ({})",
                    path.display(),
                    describe(&run.site)
                );
            }
        }
        Ok(beside)
    }
}

impl Beside {
    /// Whether a staging folder's journal is in `state`.
    fn journal_says(&self, state: &str) -> bool {
        self.staging.iter().any(|dir| {
            std::fs::read(dir.join("journal.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .is_some_and(|j| j["state"] == state)
        })
    }
}

/// A DREMIO_HOME for the simulator whose conf/dremio.conf names `paths_local`, with the
/// simulator's dremio-admin in bin/; `paths_local` is left missing.
fn make_home(home: &Path, paths_local: &Path) -> anyhow::Result<()> {
    let out = std::process::Command::new(sim_bin("dremio-sim"))
        .args(["make-home", "--home", &home.display().to_string()])
        .args(["--paths-local", &paths_local.display().to_string()])
        .args(["--version", "25.2.0", "--admin-bin"])
        .arg(sim_bin("dremio-admin"))
        .output()?;
    ensure!(
        out.status.success(),
        "dremio-sim make-home: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir(paths_local)?;
    Ok(())
}

/// The folders beside the target, two levels deep, and any journal's state: for failure reports.
fn describe(site: &Path) -> String {
    let mut parts = Vec::new();
    for n in names(site) {
        let path = site.join(&n);
        let inner = names(&path);
        let journal = std::fs::read(path.join("journal.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .map(|j| format!(" journal state {}", j["state"]))
            .unwrap_or_default();
        parts.push(format!("{n}/ {{{}}}{journal}", inner.join(", ")));
    }
    format!("beside the target: {}", parts.join("; "))
}
