//! The staging folder of a restore, beside paths.local, and its journal.
//!
//! `.lifeboat-restore-<backup>-<random>/` holds `journal.json` (who made it, in which state, and
//! once everything is staged, the swaps to make), `archive/` (what was extracted and verified),
//! `tree/` (the new paths.local, assembled by renames) and `part-<n>/` (restored folders that live
//! outside paths.local). A logical backup is loaded by dremio-admin into `tree/` too, through a
//! copy of the installation's conf (`conf/`) that points it there. A restore killed at any moment
//! leaves the target untouched, or restored with its previous contents kept, and a journal that
//! tells the next restore of that target how to finish: work that is only staged (extracted,
//! loaded) is discarded, and a verified restore caught putting folders in place is completed.

use std::fs::{self, DirBuilder};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::plan::Plan;
use crate::archive::ArchiveError;
use crate::commands::CommandError;
use crate::fsutil::txn::{Fs, Previous, RealFs, Txn};
use crate::fsutil::{self, Owner};

/// Every staging folder's name starts with this.
pub const PREFIX: &str = ".lifeboat-restore-";
const JOURNAL: &str = "journal.json";

/// How far a restore got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Extracting and checking: nothing outside the staging folder has changed.
    Staging,
    /// Verified and complete; putting folders in place (a crash is finished forward).
    Swapping,
    /// dremio-admin loads a logical backup into the staged tree (a crash is discarded).
    Loading,
    /// Everything in place: only the staging folder itself is left to remove.
    Done,
}

/// What a destination held when the swaps were planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Before {
    Missing,
    Empty,
    Kept,
}

/// One folder to put in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swap {
    pub staged: PathBuf,
    pub dest: PathBuf,
    /// Where the destination's previous contents go.
    pub aside: PathBuf,
    /// (device, inode) of the staged folder: after a crash, tells whether it is at `dest` yet.
    pub id: (u64, u64),
    pub before: Before,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub tool: String,
    pub host: String,
    pub pid: u32,
    pub backup: String,
    pub paths_local: PathBuf,
    pub state: State,
    pub swaps: Vec<Swap>,
    /// The dremio-admin process loading the staged tree, while it runs.
    #[serde(default)]
    pub loader_pid: Option<u32>,
}

/// A staging folder this run created. Dropping it removes it, unless it may hold something that
/// is not a copy made by this run (a swap that could not be undone).
pub struct Staging {
    pub dir: PathBuf,
    journal: Journal,
    keep: bool,
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::WriteTarget {
        path: path.to_path_buf(),
        source,
    }
}

impl Staging {
    /// Creates a new, uniquely named staging folder in `plan.parent` (which must exist).
    pub fn create(plan: &Plan, backup: &str) -> anyhow::Result<Staging> {
        let mut rand = [0u8; 3];
        getrandom::fill(&mut rand).expect("the OS has a random source");
        let dir = plan
            .parent
            .join(format!("{PREFIX}{backup}-{}", hex::encode(rand)));
        DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(write_err(&dir))?;
        let mut staging = Staging {
            dir,
            journal: Journal {
                tool: "lifeboat".into(),
                host: crate::host::hostname(),
                pid: std::process::id(),
                backup: backup.to_string(),
                paths_local: plan.paths_local.clone(),
                state: State::Staging,
                swaps: Vec::new(),
                loader_pid: None,
            },
            keep: false,
        };
        staging.write_journal()?;
        fs::create_dir(staging.archive()).map_err(write_err(&staging.archive()))?;
        Ok(staging)
    }

    /// Where the archive is extracted.
    pub fn archive(&self) -> PathBuf {
        self.dir.join("archive")
    }

    fn tree(&self) -> PathBuf {
        self.dir.join("tree")
    }

    /// Where each part of `plan` is staged: inside the new paths.local, or, for a folder that lives
    /// outside it, `part-<n>/<its name>`.
    pub fn staged_parts(&self, plan: &Plan) -> Vec<(&'static str, PathBuf)> {
        let mut outside = 0;
        plan.parts
            .iter()
            .map(|(root, dest)| match dest.strip_prefix(&plan.paths_local) {
                Ok(rel) => (*root, self.tree().join(rel)),
                Err(_) => {
                    outside += 1;
                    let name = dest.file_name().unwrap_or(std::ffi::OsStr::new(root));
                    (*root, self.dir.join(format!("part-{outside}")).join(name))
                }
            })
            .collect()
    }

    /// A copy of the installation's conf folder whose dremio.conf points paths.local, paths.db
    /// and the uploads at the staged tree, for dremio-admin (`DREMIO_CONF_DIR`); a confined
    /// restore's sets paths.dist there too, so nothing the conf names elsewhere is written.
    pub fn conf_for_loading(&self, conf_dir: &Path, plan: &Plan) -> anyhow::Result<PathBuf> {
        let conf = self.dir.join("conf");
        make_dir(&conf, 0o700, None)?;
        for name in fsutil::entries(conf_dir).map_err(write_err(conf_dir))? {
            let from = conf_dir.join(&name);
            if from.is_file() {
                fs::copy(&from, conf.join(&name)).map_err(write_err(&from))?;
            }
        }
        let quoted = |p: &Path| serde_json::to_string(&p.to_string_lossy()).expect("a string");
        let mut text = String::from(
            "\n# lifeboat restore: load into the staging copy; it is put in place once complete\n",
        );
        text.push_str(&format!("paths.local: {}\n", quoted(&self.tree())));
        if plan.confine {
            let dist = format!("pdfs://{}", self.tree().join("pdfs").display());
            text.push_str(&format!("paths.dist: {}\n", quoted(Path::new(&dist))));
        }
        for (root, staged) in self.staged_parts(plan) {
            match root {
                "db" => text.push_str(&format!("paths.db: {}\n", quoted(&staged))),
                "uploads" => {
                    // paths.uploads names the folder that holds `_uploads`.
                    let parent = staged.parent().unwrap_or(&staged);
                    text.push_str(&format!(
                        "paths.uploads: {}\n",
                        quoted(Path::new(&format!("pdfs://{}", parent.display())))
                    ));
                }
                _ => {}
            }
        }
        let file = conf.join("dremio.conf");
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&file)
            .map_err(write_err(&file))?;
        f.write_all(text.as_bytes()).map_err(write_err(&file))?;
        Ok(conf)
    }

    /// Records the dremio-admin process that loads the staged tree (None once it ended).
    pub fn set_loader(&mut self, pid: Option<u32>) -> anyhow::Result<()> {
        self.journal.loader_pid = pid;
        self.write_journal()
    }

    /// Builds the new paths.local (and folders outside it) from the extracted archive, by renames.
    /// With `empty_db`, the tree gets an empty `db` instead (for dremio-admin to load into).
    pub fn assemble(&mut self, plan: &Plan, empty_db: bool) -> anyhow::Result<()> {
        let tree = self.tree();
        let (mode, owner) = root_attributes(&plan.paths_local, plan.owner);
        make_dir(&tree, mode, owner)?;
        for ((root, to), (_, dest)) in self.staged_parts(plan).into_iter().zip(&plan.parts) {
            let from = self.archive().join(root);
            let inside = dest.starts_with(&plan.paths_local);
            if let Some(parent) = to.parent() {
                make_dirs_below(&self.dir, parent, owner)?;
            }
            if !empty_db && from.is_dir() {
                fs::rename(&from, &to).map_err(write_err(&to))?;
            } else if (empty_db && root == "db") || !inside {
                // dremio-admin loads into an empty `db`; a folder outside paths.local that the
                // backup does not hold is emptied like paths.local is (its contents kept aside).
                make_dir(&to, 0o755, owner)?;
            }
        }
        Ok(())
    }

    /// Decides the swaps once the staged tree is final: the new paths.local, then each folder
    /// outside it, with the identity of each staged folder and a free name for what it replaces.
    pub fn plan_swaps(&mut self, plan: &Plan) -> anyhow::Result<()> {
        let mut swaps = vec![swap_for(self.tree(), &plan.paths_local)?];
        for ((_, staged), (_, dest)) in self.staged_parts(plan).into_iter().zip(&plan.parts) {
            if !dest.starts_with(&plan.paths_local) && staged.symlink_metadata().is_ok() {
                swaps.push(swap_for(staged, dest)?);
            }
        }
        self.journal.swaps = swaps;
        Ok(())
    }

    /// Records the new state durably before anything it describes happens.
    pub fn set_state(&mut self, state: State) -> anyhow::Result<()> {
        self.journal.state = state;
        self.write_journal()
    }

    fn write_journal(&mut self) -> anyhow::Result<()> {
        let path = self.dir.join(JOURNAL);
        let tmp = self.dir.join("journal.json.new");
        let mut f = fs::File::create(&tmp).map_err(write_err(&tmp))?;
        f.write_all(&serde_json::to_vec_pretty(&self.journal)?)
            .and_then(|()| f.sync_all())
            .map_err(write_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(write_err(&path))?;
        fsutil::sync_dir(&self.dir).map_err(write_err(&self.dir))?;
        Ok(())
    }

    /// Puts every staged folder in place inside `txn`; returns, per destination in order, where
    /// its previous contents went.
    pub fn swap_in<F: Fs>(&self, txn: &mut Txn<'_, F>) -> io::Result<Vec<(PathBuf, Previous)>> {
        let mut done = Vec::new();
        for swap in &self.journal.swaps {
            if let Some(parent) = swap.dest.parent() {
                txn.create_dir_all(parent, 0o755)?;
            }
            let previous = txn.replace(&swap.staged, &swap.dest, &swap.aside)?;
            done.push((swap.dest.clone(), previous));
        }
        Ok(done)
    }

    /// Keeps the folder: it may hold what could not be put back.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = remove_staging(&self.dir);
        }
    }
}

/// Removes a staging folder with its journal last, so that a run killed half way through leaves a
/// folder the next run still recognises (and removes) instead of an anonymous one.
fn remove_staging(dir: &Path) -> io::Result<()> {
    for name in fsutil::entries(dir)? {
        if name == JOURNAL {
            continue;
        }
        let path = dir.join(&name);
        if path.symlink_metadata()?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    match fs::remove_file(dir.join(JOURNAL)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::remove_dir(dir)?;
    if let Some(parent) = dir.parent() {
        fsutil::sync_dir(parent)?;
    }
    Ok(())
}

/// Mode and owner for the new paths.local: those of the current one, so that a folder the
/// operator prepared keeps its permissions.
fn root_attributes(paths_local: &Path, owner: Option<Owner>) -> (u32, Option<Owner>) {
    match paths_local.symlink_metadata() {
        Ok(m) if m.is_dir() => (
            m.permissions().mode() & 0o7777,
            owner.or_else(|| {
                fsutil::is_root().then_some(Owner {
                    uid: m.uid(),
                    gid: m.gid(),
                })
            }),
        ),
        _ => (0o755, owner),
    }
}

fn make_dir(dir: &Path, mode: u32, owner: Option<Owner>) -> anyhow::Result<()> {
    DirBuilder::new()
        .mode(mode)
        .create(dir)
        .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(mode)))
        .and_then(|()| match owner {
            Some(o) => std::os::unix::fs::lchown(dir, Some(o.uid), Some(o.gid)),
            None => Ok(()),
        })
        .map_err(write_err(dir))?;
    Ok(())
}

/// Creates the folders between `base` (which exists) and `dir`.
fn make_dirs_below(base: &Path, dir: &Path, owner: Option<Owner>) -> anyhow::Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| *a != base && a.symlink_metadata().is_err())
        .collect();
    for d in missing.into_iter().rev() {
        make_dir(d, 0o755, owner)?;
    }
    Ok(())
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    path.symlink_metadata().ok().map(|m| (m.dev(), m.ino()))
}

fn swap_for(staged: PathBuf, dest: &Path) -> anyhow::Result<Swap> {
    let id = identity(&staged).ok_or_else(|| ArchiveError::WriteTarget {
        path: staged.clone(),
        source: io::Error::new(io::ErrorKind::NotFound, "staged folder vanished"),
    })?;
    let before = match fs::read_dir(dest).map(|mut rd| rd.next().is_none()) {
        Err(_) if dest.symlink_metadata().is_err() => Before::Missing,
        Ok(true) => Before::Empty,
        _ => Before::Kept,
    };
    Ok(Swap {
        staged,
        dest: dest.to_path_buf(),
        aside: free_aside_name(dest),
        id,
        before,
    })
}

/// `<dest>.before-restore-<stamp>`, with a counter when a restore in the same second took it.
fn free_aside_name(dest: &Path) -> PathBuf {
    free_name(dest, "before-restore")
}

/// `<dest>.<label>-<stamp>`, a name nothing holds yet (a counter is added when one does).
pub(super) fn free_name(dest: &Path, label: &str) -> PathBuf {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "target".into());
    let mut candidate = dest.with_file_name(format!("{name}.{label}-{stamp}"));
    let mut n = 2;
    while candidate.symlink_metadata().is_ok() {
        candidate = dest.with_file_name(format!("{name}.{label}-{stamp}-{n}"));
        n += 1;
    }
    candidate
}

/// What [`recover`] did about one staging folder left by an earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// Nothing outside the staging folder had changed: the staged copy was removed.
    Discarded { backup: String },
    /// A verified restore was caught mid-swap and has been completed.
    Completed { backup: String, kept: Vec<PathBuf> },
    /// A restore killed while it made its staging folder, before anything was in it.
    Unstarted { dir: PathBuf },
    /// A finished restore killed while it removed its staging folder.
    Finished { backup: String },
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recovered::Discarded { backup } => write!(
                f,
                "an interrupted restore of backup {backup} had only staged files: removed them (the target was not touched)"
            ),
            Recovered::Completed { backup, kept } => {
                write!(
                    f,
                    "an interrupted restore of backup {backup} was caught putting folders in place: completed it"
                )?;
                for k in kept {
                    write!(f, "; previous contents kept at {}", k.display())?;
                }
                Ok(())
            }
            Recovered::Finished { backup } => write!(
                f,
                "a restore of backup {backup} that had finished left its staging folder: removed it"
            ),
            Recovered::Unstarted { dir } => write!(
                f,
                "removed {}, left empty by a restore killed as it started",
                dir.display()
            ),
        }
    }
}

/// A staging folder an earlier run left beside the target.
#[derive(Debug)]
pub enum Leftover {
    /// With a journal about this target.
    Journal(PathBuf, Journal),
    /// Killed while it was being made: nothing but (part of) its first journal is in it, so
    /// nothing anywhere else can have changed.
    Unstarted(PathBuf),
}

/// Staging folders beside `paths_local` left by earlier runs for this target.
pub fn leftovers(paths_local: &Path) -> Vec<Leftover> {
    let Some(parent) = paths_local.parent() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for name in fsutil::entries(parent).unwrap_or_default() {
        if !name.starts_with(PREFIX) {
            continue;
        }
        let dir = parent.join(&name);
        match read_small(&dir.join(JOURNAL)) {
            Ok(bytes) => {
                if let Ok(journal) = serde_json::from_slice::<Journal>(&bytes)
                    && journal.paths_local == paths_local
                    && journal.tool == "lifeboat"
                {
                    found.push(Leftover::Journal(dir, journal));
                }
            }
            Err(_) if never_started(&dir) => found.push(Leftover::Unstarted(dir)),
            Err(_) => {}
        }
    }
    found
}

/// Whether `dir` holds nothing but the journal being written when its maker was killed.
fn never_started(dir: &Path) -> bool {
    let Ok(entries) = fsutil::entries(dir) else {
        return false;
    };
    entries.iter().all(|e| e == "journal.json.new")
        && dir
            .join("journal.json.new")
            .symlink_metadata()
            .map_or(true, |m| m.is_file())
}

/// A journal is a few KiB; anything much larger is not one of ours.
fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    fs::File::open(path)?.take(1 << 20).read_to_end(&mut out)?;
    Ok(out)
}

/// Finishes or undoes what earlier, killed restores of `paths_local` left, as their journals say.
/// Refuses while the run that made a staging folder may still be alive.
pub fn recover(paths_local: &Path) -> anyhow::Result<Vec<Recovered>> {
    let mut done = Vec::new();
    for leftover in leftovers(paths_local) {
        let (dir, journal) = match leftover {
            Leftover::Journal(dir, journal) => (dir, journal),
            Leftover::Unstarted(dir) => {
                fs::remove_dir_all(&dir).map_err(write_err(&dir))?;
                done.push(Recovered::Unstarted { dir });
                continue;
            }
        };
        if journal.pid == std::process::id() && journal.host == crate::host::hostname() {
            continue;
        }
        if journal.host != crate::host::hostname() {
            return Err(CommandError::Refused(format!(
                "{} was left by a restore of backup {} on host {} (pid {}): run the restore again on that host to finish it, or, if no restore runs there any more, move {} out of the way and check the target by hand",
                dir.display(), journal.backup, journal.host, journal.pid, dir.join(JOURNAL).display()
            ))
            .into());
        }
        if crate::host::process_alive(journal.pid) {
            return Err(CommandError::Refused(format!(
                "another restore (pid {}) of backup {} into {} is running; wait for it to finish",
                journal.pid,
                journal.backup,
                paths_local.display()
            ))
            .into());
        }
        if let Some(loader) = journal.loader_pid
            && crate::host::process_alive(loader)
        {
            return Err(CommandError::Refused(format!(
                "the dremio-admin restore (pid {loader}) started by an interrupted restore of backup {} still runs in {}; wait for it to end or stop it, then run the restore again",
                journal.backup,
                dir.display()
            ))
            .into());
        }
        done.push(recover_one(&dir, &journal, &RealFs)?);
    }
    Ok(done)
}

fn recover_one<F: Fs>(dir: &Path, journal: &Journal, fs: &F) -> anyhow::Result<Recovered> {
    let backup = journal.backup.clone();
    let outcome = match journal.state {
        State::Staging | State::Loading => Recovered::Discarded { backup },
        State::Done => Recovered::Finished { backup },
        State::Swapping => {
            let mut kept = Vec::new();
            for swap in &journal.swaps {
                kept.extend(finish_swap(swap, fs).map_err(|e| recovery_failed(dir, &backup, e))?);
            }
            Recovered::Completed { backup, kept }
        }
    };
    remove_staging(dir).map_err(write_err(dir))?;
    Ok(outcome)
}

fn recovery_failed(dir: &Path, backup: &str, e: io::Error) -> anyhow::Error {
    CommandError::Refused(format!(
        "cannot finish the interrupted restore of backup {backup} recorded in {}: {e}. Nothing was removed; see that journal for where each folder is",
        dir.join(JOURNAL).display()
    ))
    .into()
}

/// Completes one swap of a verified restore; returns where the previous contents are kept.
fn finish_swap<F: Fs>(swap: &Swap, fs: &F) -> io::Result<Option<PathBuf>> {
    if identity(&swap.dest) == Some(swap.id) {
        // In place already; the previous contents may still sit under the staged name.
        if swap.staged.symlink_metadata().is_ok() {
            let aside = free_aside_name(&swap.dest);
            fs.rename(&swap.staged, &aside)?;
            fs.sync_dir(swap.staged.parent().unwrap_or(Path::new("/")))?;
            return Ok(Some(aside));
        }
        return Ok((swap.aside.symlink_metadata().is_ok()).then(|| swap.aside.clone()));
    }
    if identity(&swap.staged) != Some(swap.id) {
        return Err(io::Error::other(format!(
            "the staged folder for {} is neither at {} nor at {}",
            swap.dest.display(),
            swap.staged.display(),
            swap.dest.display()
        )));
    }
    let mut txn = Txn::new(fs);
    if let Some(parent) = swap.dest.parent() {
        txn.create_dir_all(parent, 0o755)?;
    }
    let previous = txn.replace(&swap.staged, &swap.dest, &swap.aside)?;
    txn.commit();
    Ok(match previous {
        Previous::KeptAt(p) => Some(p),
        _ => (swap.aside.symlink_metadata().is_ok()).then(|| swap.aside.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn tree(root: &Path) -> BTreeMap<String, String> {
        walkdir::WalkDir::new(root)
            .min_depth(1)
            .into_iter()
            .map(|e| e.unwrap())
            .map(|e| {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                let what = if e.file_type().is_dir() {
                    "dir".to_string()
                } else {
                    fs::read_to_string(e.path()).unwrap()
                };
                (rel, what)
            })
            .collect()
    }

    fn put(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// A staged restore of `root/data`, its journal in `state`, not yet swapped.
    fn staged(root: &Path, state: State) -> (PathBuf, Journal) {
        put(&root.join("data/db/CURRENT"), "old");
        let dir = root.join(format!("{PREFIX}20261201T000000Z-abcd-000000"));
        put(&dir.join("tree/db/CURRENT"), "new");
        let swap = swap_for(dir.join("tree"), &root.join("data")).unwrap();
        let journal = Journal {
            tool: "lifeboat".into(),
            host: crate::host::hostname(),
            pid: 0,
            backup: "20261201T000000Z-abcd".into(),
            paths_local: root.join("data"),
            state,
            swaps: vec![swap],
            loader_pid: None,
        };
        fs::write(dir.join(JOURNAL), serde_json::to_vec(&journal).unwrap()).unwrap();
        (dir, journal)
    }

    #[test]
    fn staged_only_work_is_discarded_and_the_target_untouched() {
        let root = tempfile::tempdir().unwrap();
        let (dir, journal) = staged(root.path(), State::Staging);
        let before = tree(&root.path().join("data"));
        assert_eq!(leftovers(&journal.paths_local).len(), 1);
        let r = recover_one(&dir, &journal, &RealFs).unwrap();
        assert!(matches!(r, Recovered::Discarded { .. }), "{r:?}");
        assert!(!dir.exists());
        assert_eq!(tree(&root.path().join("data")), before);
    }

    #[test]
    fn a_swap_killed_at_any_point_is_completed_with_the_old_contents_kept() {
        // Three moments: before the exchange, after it (old contents under the staged name), and
        // after the old contents were renamed aside.
        for moment in 0..3 {
            let root = tempfile::tempdir().unwrap();
            let (dir, journal) = staged(root.path(), State::Swapping);
            let swap = &journal.swaps[0];
            if moment >= 1 {
                RealFs.exchange(&swap.staged, &swap.dest).unwrap();
            }
            if moment >= 2 {
                fs::rename(&swap.staged, &swap.aside).unwrap();
            }
            let r = recover_one(&dir, &journal, &RealFs).unwrap();
            let Recovered::Completed { kept, .. } = r else {
                panic!("{r:?}")
            };
            assert_eq!(kept.len(), 1, "moment {moment}");
            assert_eq!(
                fs::read_to_string(kept[0].join("db/CURRENT")).unwrap(),
                "old"
            );
            assert_eq!(
                fs::read_to_string(root.path().join("data/db/CURRENT")).unwrap(),
                "new",
                "moment {moment}"
            );
            assert!(!dir.exists());
        }
    }

    #[test]
    fn a_load_killed_while_dremio_admin_ran_is_discarded_and_the_target_untouched() {
        let root = tempfile::tempdir().unwrap();
        let (dir, journal) = staged(root.path(), State::Loading);
        put(&dir.join("tree/db/half-loaded"), "partial");
        let before = tree(&root.path().join("data"));
        let r = recover_one(&dir, &journal, &RealFs).unwrap();
        assert!(matches!(r, Recovered::Discarded { .. }), "{r:?}");
        assert_eq!(tree(&root.path().join("data")), before);
        assert!(!dir.exists());
    }

    #[test]
    fn a_staging_folder_killed_before_its_first_journal_is_removed_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("data");
        put(&target.join("db/CURRENT"), "old");
        let unstarted = root.path().join(format!("{PREFIX}x-000001"));
        put(&unstarted.join("journal.json.new"), "{\"tool\": \"lifeb");
        let empty = root.path().join(format!("{PREFIX}x-000002"));
        fs::create_dir(&empty).unwrap();
        // Not ours to judge: something else is in it.
        let foreign = root.path().join(format!("{PREFIX}x-000003"));
        put(&foreign.join("someone-elses"), "keep");
        let done = recover(&target).unwrap();
        assert_eq!(done.len(), 2, "{done:?}");
        assert!(!unstarted.exists() && !empty.exists());
        assert!(foreign.join("someone-elses").exists());
        assert_eq!(
            fs::read_to_string(target.join("db/CURRENT")).unwrap(),
            "old"
        );
    }

    #[test]
    fn a_journal_that_no_longer_matches_the_disk_stops_recovery_and_keeps_everything() {
        let root = tempfile::tempdir().unwrap();
        let (dir, journal) = staged(root.path(), State::Swapping);
        // Someone moved the staged tree away by hand.
        fs::rename(dir.join("tree"), root.path().join("elsewhere")).unwrap();
        let err = recover_one(&dir, &journal, &RealFs).unwrap_err();
        assert!(err.to_string().contains("journal"), "{err}");
        assert!(dir.exists(), "the staging folder is kept");
        assert!(root.path().join("elsewhere/db/CURRENT").exists());
        assert!(root.path().join("data/db/CURRENT").exists());
    }

    #[test]
    fn a_finished_restore_killed_while_cleaning_up_is_recognised_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let (dir, mut journal) = staged(root.path(), State::Done);
        journal.state = State::Done;
        fs::write(dir.join(JOURNAL), serde_json::to_vec(&journal).unwrap()).unwrap();
        // Killed after the tree went and before the journal did: the journal is still there.
        fs::remove_dir_all(dir.join("tree")).unwrap();
        put(&dir.join("archive/db_backup.pb"), "x");
        let done = recover(&root.path().join("data")).unwrap();
        assert!(
            matches!(&done[..], [Recovered::Finished { .. }]),
            "{done:?}"
        );
        assert!(!dir.exists());
        assert_eq!(
            fs::read_to_string(root.path().join("data/db/CURRENT")).unwrap(),
            "old"
        );
    }

    #[test]
    fn a_confined_load_points_every_path_of_the_conf_at_the_staged_tree() {
        let root = tempfile::tempdir().unwrap();
        let conf_dir = root.path().join("home/conf");
        put(
            &conf_dir.join("dremio.conf"),
            "paths.local: \"/srv/live\"\npaths.dist: \"pdfs:///srv/live/pdfs\"\n",
        );
        let local = root.path().join("scratch");
        let inst =
            crate::dremio::Installation::discover(None, Some(&local), Some("25.2.0")).unwrap();
        let plan = |confine| Plan {
            paths_local: local.clone(),
            parts: vec![
                ("db", inst.db.clone()),
                ("security", inst.security.clone()),
                ("uploads", inst.uploads.clone().unwrap()),
            ],
            move_aside: vec![],
            parent: root.path().to_path_buf(),
            owner: None,
            needed_bytes: 0,
            free_bytes: 0,
            confine,
        };
        for confine in [false, true] {
            let staging = Staging::create(&plan(confine), "b").unwrap();
            let conf = staging.conf_for_loading(&conf_dir, &plan(confine)).unwrap();
            let text = fs::read_to_string(conf.join("dremio.conf")).unwrap();
            let tree = staging.dir.join("tree");
            // Later keys win: what is appended overrides the live paths.
            let appended = text.split("# lifeboat restore").nth(1).unwrap();
            assert!(appended.contains(&format!("paths.local: \"{}\"", tree.display())));
            assert!(appended.contains(&format!("paths.db: \"{}\"", tree.join("db").display())));
            assert!(appended.contains(&format!(
                "paths.uploads: \"pdfs://{}\"",
                tree.join("pdfs/uploads").display()
            )));
            let dist = format!("paths.dist: \"pdfs://{}\"", tree.join("pdfs").display());
            assert_eq!(appended.contains(&dist), confine, "{text}");
        }
    }

    #[test]
    fn aside_names_never_collide() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("data");
        let first = free_aside_name(&dest);
        fs::create_dir(&first).unwrap();
        let second = free_aside_name(&dest);
        assert_ne!(first, second);
        assert!(
            second
                .to_string_lossy()
                .contains(&*first.file_name().unwrap().to_string_lossy())
        );
    }
}
