//! The staging folder of a restore, beside paths.local, and its journal.
//!
//! `.lifeboat-restore-<backup>-<random>/` holds `journal.json` (who made it, in which state, and
//! once everything is staged, the swaps to make), `archive/` (what was extracted and verified),
//! `tree/` (the new paths.local, assembled by renames) and `part-<n>/` (restored folders that live
//! outside paths.local). A restore killed at any moment leaves the target untouched, or restored
//! with its previous contents kept, and a journal that tells the next restore of that target how
//! to finish: staged-only work is discarded, a verified offline restore caught mid-swap is
//! completed, and a logical restore caught while dremio-admin loads is undone.

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
    /// A logical backup being loaded by dremio-admin (a crash is undone).
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

    /// Builds the new paths.local (and folders outside it) from the extracted archive, by renames.
    /// With `empty_db`, the tree gets an empty `db` instead (for dremio-admin to load into).
    pub fn assemble(&mut self, plan: &Plan, empty_db: bool) -> anyhow::Result<()> {
        let tree = self.tree();
        let (mode, owner) = root_attributes(&plan.paths_local, plan.owner);
        make_dir(&tree, mode, owner)?;
        let mut outside = 0;
        for (root, dest) in &plan.parts {
            let from = self.archive().join(root);
            let inside = dest.starts_with(&plan.paths_local);
            let to = match dest.strip_prefix(&plan.paths_local) {
                Ok(rel) => tree.join(rel),
                Err(_) => {
                    outside += 1;
                    self.dir.join(format!("part-{outside}"))
                }
            };
            if let Some(parent) = to.parent() {
                make_dirs_below(&self.dir, parent, owner)?;
            }
            let restored = !empty_db && from.is_dir();
            if restored {
                fs::rename(&from, &to).map_err(write_err(&to))?;
            } else if (empty_db && *root == "db") || !inside {
                // dremio-admin loads into an empty `db`; a folder outside paths.local that the
                // backup does not hold is emptied like paths.local is (its contents kept aside).
                make_dir(&to, 0o755, owner)?;
            }
            if !inside {
                self.plan_swap(to, dest)?;
            }
        }
        self.journal
            .swaps
            .insert(0, swap_for(tree, &plan.paths_local)?);
        Ok(())
    }

    fn plan_swap(&mut self, staged: PathBuf, dest: &Path) -> anyhow::Result<()> {
        let swap = swap_for(staged, dest)?;
        self.journal.swaps.push(swap);
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

    /// Puts every staged folder in place inside `txn`; returns where previous contents are kept.
    pub fn swap_in<F: Fs>(&self, txn: &mut Txn<'_, F>) -> io::Result<Vec<PathBuf>> {
        let mut kept = Vec::new();
        for swap in &self.journal.swaps {
            if let Some(parent) = swap.dest.parent() {
                txn.create_dir_all(parent, 0o755)?;
            }
            if let Previous::KeptAt(aside) = txn.replace(&swap.staged, &swap.dest, &swap.aside)? {
                kept.push(aside);
            }
        }
        Ok(kept)
    }

    /// Keeps the folder: it may hold what could not be put back.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.dir);
            if let Some(parent) = self.dir.parent() {
                let _ = fsutil::sync_dir(parent);
            }
        }
    }
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
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "target".into());
    let mut candidate = dest.with_file_name(format!("{name}.before-restore-{stamp}"));
    let mut n = 2;
    while candidate.symlink_metadata().is_ok() {
        candidate = dest.with_file_name(format!("{name}.before-restore-{stamp}-{n}"));
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
    /// A logical restore was caught while loading and has been undone.
    Undone { backup: String },
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
            Recovered::Undone { backup } => write!(
                f,
                "an interrupted load of logical backup {backup} was undone: the target is back as it was"
            ),
        }
    }
}

/// Staging folders beside `paths_local` left by earlier runs for this target, with their journals.
pub fn leftovers(paths_local: &Path) -> Vec<(PathBuf, Journal)> {
    let Some(parent) = paths_local.parent() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for name in fsutil::entries(parent).unwrap_or_default() {
        if !name.starts_with(PREFIX) {
            continue;
        }
        let dir = parent.join(&name);
        let Ok(bytes) = read_small(&dir.join(JOURNAL)) else {
            continue;
        };
        if let Ok(journal) = serde_json::from_slice::<Journal>(&bytes)
            && journal.paths_local == paths_local
            && journal.tool == "lifeboat"
        {
            found.push((dir, journal));
        }
    }
    found
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
    for (dir, journal) in leftovers(paths_local) {
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
        done.push(recover_one(&dir, &journal, &RealFs)?);
    }
    Ok(done)
}

fn recover_one<F: Fs>(dir: &Path, journal: &Journal, fs: &F) -> anyhow::Result<Recovered> {
    let backup = journal.backup.clone();
    let outcome = match journal.state {
        State::Staging | State::Done => Recovered::Discarded { backup },
        State::Swapping => {
            let mut kept = Vec::new();
            for swap in &journal.swaps {
                kept.extend(finish_swap(swap, fs).map_err(|e| recovery_failed(dir, &backup, e))?);
            }
            Recovered::Completed { backup, kept }
        }
        State::Loading => {
            for swap in journal.swaps.iter().rev() {
                undo_swap(swap, dir, fs).map_err(|e| recovery_failed(dir, &backup, e))?;
            }
            Recovered::Undone { backup }
        }
    };
    fs::remove_dir_all(dir).map_err(write_err(dir))?;
    if let Some(parent) = dir.parent() {
        let _ = fsutil::sync_dir(parent);
    }
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

/// Undoes one swap of a logical restore whose load was interrupted: the partly loaded store goes
/// back into the staging folder (and is removed with it), the previous contents come back.
fn undo_swap<F: Fs>(swap: &Swap, dir: &Path, fs: &F) -> io::Result<()> {
    if identity(&swap.dest) != Some(swap.id) {
        return Ok(());
    }
    let discarded = dir.join("discarded");
    fs.rename(&swap.dest, &discarded)?;
    let previous = [&swap.staged, &swap.aside]
        .into_iter()
        .find(|p| p.symlink_metadata().is_ok());
    match (previous, swap.before) {
        (Some(previous), _) => fs.rename(previous, &swap.dest)?,
        (None, Before::Empty) => fs.mkdir(&swap.dest, 0o755)?,
        (None, _) => {}
    }
    // A second swap's partly loaded store needs the name free again.
    fs::rename(&discarded, dir.join(format!("discarded-{}", swap.id.1)))?;
    fs.sync_dir(swap.dest.parent().unwrap_or(Path::new("/")))
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
    fn a_load_killed_at_any_point_is_undone() {
        for moment in 0..3 {
            let root = tempfile::tempdir().unwrap();
            let (dir, journal) = staged(root.path(), State::Loading);
            let swap = &journal.swaps[0];
            if moment >= 1 {
                RealFs.exchange(&swap.staged, &swap.dest).unwrap();
                put(&swap.dest.join("db/half-loaded"), "partial");
            }
            if moment >= 2 {
                fs::rename(&swap.staged, &swap.aside).unwrap();
            }
            let r = recover_one(&dir, &journal, &RealFs).unwrap();
            assert!(matches!(r, Recovered::Undone { .. }), "{r:?}");
            let t = tree(root.path());
            assert_eq!(t.get("data/db/CURRENT").map(String::as_str), Some("old"));
            assert_eq!(
                t.len(),
                3,
                "only data, data/db and its file are left: {t:?}"
            );
        }
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
