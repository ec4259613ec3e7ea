//! A transaction of renames inside one filesystem, for putting restored folders in place.
//!
//! Each step is one rename (atomic in the kernel) and is recorded only once it happened, so that
//! [`Txn::rollback`] reverses exactly what was done, newest first. Nothing is ever deleted: undo
//! renames back, and the only removals are `rmdir` of empty folders (which the kernel refuses when
//! anything is inside). Every step is followed by an fsync of the folders whose entries changed.

use std::io;
use std::path::{Path, PathBuf};

/// The calls a transaction makes: [`RealFs`], or in tests a wrapper that fails on cue.
pub trait Fs {
    /// Swaps two existing names in one atomic step (`renameat2(RENAME_EXCHANGE)`).
    /// `ErrorKind::Unsupported` when the filesystem cannot (NFS, for one).
    fn exchange(&self, a: &Path, b: &Path) -> io::Result<()>;
    /// Renames `from` to `to`, refusing (`AlreadyExists`) to replace anything at `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn mkdir(&self, dir: &Path, mode: u32) -> io::Result<()>;
    fn rmdir(&self, dir: &Path) -> io::Result<()>;
    /// Makes the entries of a folder durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real calls.
pub struct RealFs;

impl Fs for RealFs {
    fn exchange(&self, a: &Path, b: &Path) -> io::Result<()> {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
            Ok(()) => Ok(()),
            Err(e) if unsupported(e) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this filesystem cannot exchange two names atomically",
            )),
            Err(e) => Err(e.into()),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            // Filesystems without RENAME_NOREPLACE (NFS): look first. The window between the look
            // and the rename is only open to a process racing lifeboat inside its own staging names.
            Err(e) if unsupported(e) => {
                if to.symlink_metadata().is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} exists", to.display()),
                    ));
                }
                std::fs::rename(from, to)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn mkdir(&self, dir: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(mode).create(dir)
    }

    fn rmdir(&self, dir: &Path) -> io::Result<()> {
        std::fs::remove_dir(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        super::sync_dir(dir)
    }
}

fn unsupported(e: rustix::io::Errno) -> bool {
    use rustix::io::Errno;
    e == Errno::INVAL || e == Errno::NOSYS || e == Errno::OPNOTSUPP
}

/// One step that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `a` and `b` swapped names.
    Exchanged(PathBuf, PathBuf),
    Renamed {
        from: PathBuf,
        to: PathBuf,
    },
    Created(PathBuf),
    /// An empty folder was removed; undo makes it again with this mode.
    RemovedEmpty {
        dir: PathBuf,
        mode: u32,
    },
}

/// Where [`Txn::replace`] left what was at the destination before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    /// Nothing was there.
    Nothing,
    /// It was an empty folder, and is gone.
    EmptyRemoved,
    /// It is kept under this name.
    KeptAt(PathBuf),
}

/// The steps done so far. Dropping it without [`Txn::commit`] or [`Txn::rollback`] rolls back.
pub struct Txn<'a, F: Fs> {
    fs: &'a F,
    done: Vec<Step>,
    settled: bool,
}

impl<'a, F: Fs> Txn<'a, F> {
    pub fn new(fs: &'a F) -> Self {
        Txn {
            fs,
            done: Vec::new(),
            settled: false,
        }
    }

    /// What has been done so far, oldest first.
    pub fn steps(&self) -> &[Step] {
        &self.done
    }

    /// Creates `dir` and its missing ancestors, each recorded (undo removes them only while empty).
    pub fn create_dir_all(&mut self, dir: &Path, mode: u32) -> io::Result<()> {
        let missing: Vec<&Path> = dir
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && a.symlink_metadata().is_err())
            .collect();
        for new in missing.into_iter().rev() {
            self.fs.mkdir(new, mode)?;
            self.done.push(Step::Created(new.to_path_buf()));
            self.sync_parent(new)?;
        }
        Ok(())
    }

    /// Renames `from` to `to` (which must not exist).
    pub fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.fs.rename(from, to)?;
        self.done.push(Step::Renamed {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        });
        self.sync_parent(from)?;
        self.sync_parent(to)
    }

    /// Puts `staged` at `dest`. Whatever `dest` held is kept at `aside` (an empty folder is
    /// removed instead: nothing is lost). With an atomic exchange there is no moment at which
    /// `dest` is missing; where the filesystem cannot exchange, `dest` is renamed aside first.
    pub fn replace(&mut self, staged: &Path, dest: &Path, aside: &Path) -> io::Result<Previous> {
        let Ok(meta) = dest.symlink_metadata() else {
            self.rename(staged, dest)?;
            return Ok(Previous::Nothing);
        };
        let was_empty = meta.is_dir() && std::fs::read_dir(dest)?.next().is_none();
        match self.fs.exchange(staged, dest) {
            Ok(()) => {
                self.done
                    .push(Step::Exchanged(staged.to_path_buf(), dest.to_path_buf()));
                self.sync_parent(staged)?;
                self.sync_parent(dest)?;
                // What was at `dest` is now at `staged`.
                if was_empty && self.remove_empty(staged, &meta)? {
                    return Ok(Previous::EmptyRemoved);
                }
                self.rename(staged, aside)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                self.rename(dest, aside)?;
                self.rename(staged, dest)?;
                if was_empty && self.remove_empty(aside, &meta)? {
                    return Ok(Previous::EmptyRemoved);
                }
            }
            Err(e) => return Err(e),
        }
        Ok(Previous::KeptAt(aside.to_path_buf()))
    }

    /// Removes a folder that was empty when the transaction looked; false (and nothing removed)
    /// when something appeared in it since.
    fn remove_empty(&mut self, dir: &Path, meta: &std::fs::Metadata) -> io::Result<bool> {
        use std::os::unix::fs::PermissionsExt;
        match self.fs.rmdir(dir) {
            Ok(()) => {
                self.done.push(Step::RemovedEmpty {
                    dir: dir.to_path_buf(),
                    mode: meta.permissions().mode() & 0o7777,
                });
                self.sync_parent(dir)?;
                Ok(true)
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTEMPTY.raw_os_error()) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn sync_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => self.fs.sync_dir(p),
            _ => self.fs.sync_dir(Path::new(".")),
        }
    }

    /// Keeps everything done; returns the steps.
    pub fn commit(mut self) -> Vec<Step> {
        self.settled = true;
        std::mem::take(&mut self.done)
    }

    /// Undoes every step, newest first; returns what could not be undone (empty: all put back).
    pub fn rollback(mut self) -> Vec<String> {
        self.settled = true;
        self.undo_all()
    }

    fn undo_all(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        while let Some(step) = self.done.pop() {
            if let Err(e) = self.undo(&step) {
                problems.push(match &step {
                    Step::Exchanged(a, b) => {
                        format!("cannot swap {} and {} back: {e}", a.display(), b.display())
                    }
                    Step::Renamed { from, to } => format!(
                        "cannot rename {} back to {}: {e}",
                        to.display(),
                        from.display()
                    ),
                    Step::Created(dir) => format!(
                        "left {} in place (this restore created it): {e}",
                        dir.display()
                    ),
                    Step::RemovedEmpty { dir, .. } => {
                        format!("cannot make the empty folder {} again: {e}", dir.display())
                    }
                });
            }
        }
        problems
    }

    fn undo(&self, step: &Step) -> io::Result<()> {
        match step {
            Step::Exchanged(a, b) => {
                self.fs.exchange(a, b)?;
                self.sync_parent(a)?;
                self.sync_parent(b)
            }
            Step::Renamed { from, to } => {
                self.fs.rename(to, from)?;
                self.sync_parent(to)?;
                self.sync_parent(from)
            }
            Step::Created(dir) => {
                self.fs.rmdir(dir)?;
                self.sync_parent(dir)
            }
            Step::RemovedEmpty { dir, mode } => {
                self.fs.mkdir(dir, *mode)?;
                self.sync_parent(dir)
            }
        }
    }
}

impl<F: Fs> Drop for Txn<'_, F> {
    fn drop(&mut self) {
        if !self.settled {
            let _ = self.undo_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::BTreeMap;

    /// Real calls, except that the `fail_at`-th call (counting from 0) fails, and optionally
    /// every call after it too (a disk that went away).
    struct Faulty {
        calls: Cell<usize>,
        fail_at: usize,
        and_after: bool,
        no_exchange: bool,
    }

    impl Faulty {
        fn new(fail_at: usize) -> Self {
            Faulty {
                calls: Cell::new(0),
                fail_at,
                and_after: false,
                no_exchange: false,
            }
        }

        fn tick(&self) -> io::Result<()> {
            let n = self.calls.get();
            self.calls.set(n + 1);
            if n == self.fail_at || (self.and_after && n > self.fail_at) {
                return Err(io::Error::other(format!("injected failure at call {n}")));
            }
            Ok(())
        }
    }

    impl Fs for Faulty {
        fn exchange(&self, a: &Path, b: &Path) -> io::Result<()> {
            self.tick()?;
            if self.no_exchange {
                return Err(io::Error::new(io::ErrorKind::Unsupported, "no exchange"));
            }
            RealFs.exchange(a, b)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.tick()?;
            RealFs.rename(from, to)
        }
        fn mkdir(&self, dir: &Path, mode: u32) -> io::Result<()> {
            self.tick()?;
            RealFs.mkdir(dir, mode)
        }
        fn rmdir(&self, dir: &Path) -> io::Result<()> {
            self.tick()?;
            RealFs.rmdir(dir)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            self.tick()?;
            RealFs.sync_dir(dir)
        }
    }

    /// Every path under `root` with its content (files) or a marker (folders).
    fn tree(root: &Path) -> BTreeMap<String, String> {
        walkdir::WalkDir::new(root)
            .into_iter()
            .map(|e| e.unwrap())
            .map(|e| {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                let what = if e.file_type().is_dir() {
                    "dir".to_string()
                } else {
                    std::fs::read_to_string(e.path()).unwrap()
                };
                (rel, what)
            })
            .collect()
    }

    fn put(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A restore-shaped job: a parent that may be missing, a destination with old contents, a
    /// staged replacement, a second destination that does not exist yet.
    fn job<F: Fs>(fs: &F, root: &Path) -> io::Result<Vec<Step>> {
        let mut txn = Txn::new(fs);
        txn.create_dir_all(&root.join("new/parent"), 0o755)?;
        txn.replace(
            &root.join("staging/tree"),
            &root.join("data"),
            &root.join("data.before"),
        )?;
        txn.replace(
            &root.join("staging/part"),
            &root.join("new/parent/part"),
            &root.join("new/parent/part.before"),
        )?;
        txn.replace(
            &root.join("staging/empty-new"),
            &root.join("empty"),
            &root.join("empty.before"),
        )?;
        Ok(txn.commit())
    }

    fn setup(root: &Path) {
        put(&root.join("data/db/CURRENT"), "old");
        put(&root.join("data/security/key"), "old-key");
        put(&root.join("staging/tree/db/CURRENT"), "new");
        put(&root.join("staging/part/file"), "part");
        put(&root.join("staging/empty-new/x"), "filled");
        std::fs::create_dir(root.join("empty")).unwrap();
    }

    #[test]
    fn a_job_that_succeeds_keeps_the_old_contents_aside() {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        let steps = job(&RealFs, dir.path()).unwrap();
        let t = tree(dir.path());
        assert_eq!(t["data/db/CURRENT"], "new");
        assert_eq!(t["data.before/db/CURRENT"], "old");
        assert_eq!(t["data.before/security/key"], "old-key");
        assert_eq!(t["new/parent/part/file"], "part");
        assert_eq!(t["empty/x"], "filled");
        assert!(
            !t.contains_key("empty.before"),
            "an empty folder needs no safety copy"
        );
        assert!(steps.iter().any(|s| matches!(s, Step::RemovedEmpty { .. })));
    }

    #[test]
    fn a_failure_at_any_call_puts_back_exactly_what_was_there() {
        let calls = {
            let dir = tempfile::tempdir().unwrap();
            setup(dir.path());
            let counting = Faulty::new(usize::MAX);
            job(&counting, dir.path()).unwrap();
            counting.calls.get()
        };
        assert!(calls > 10, "the job makes {calls} calls");
        for no_exchange in [false, true] {
            for fail_at in 0..calls {
                let dir = tempfile::tempdir().unwrap();
                setup(dir.path());
                let before = tree(dir.path());
                let mut fs = Faulty::new(fail_at);
                fs.no_exchange = no_exchange;
                let err = job(&fs, dir.path()).unwrap_err();
                assert!(err.to_string().contains("injected"), "{err}");
                assert_eq!(
                    tree(dir.path()),
                    before,
                    "failure at call {fail_at} (exchange: {}) left the tree changed",
                    !no_exchange
                );
            }
        }
    }

    #[test]
    fn when_undo_fails_too_the_problems_are_named_and_nothing_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        // Calls: mkdir, sync, mkdir, sync, exchange, sync, sync, then the rename of the old
        // contents aside (7): that one fails, and so does everything after it, undo included.
        let mut fs = Faulty::new(7);
        fs.and_after = true;
        let mut txn = Txn::new(&fs);
        let root = dir.path();
        let r = txn
            .create_dir_all(&root.join("new/parent"), 0o755)
            .and_then(|()| {
                txn.replace(
                    &root.join("staging/tree"),
                    &root.join("data"),
                    &root.join("data.before"),
                )
            });
        assert!(r.is_err());
        let problems = txn.rollback();
        assert!(!problems.is_empty());
        assert!(problems.iter().any(|p| p.contains("swap")), "{problems:?}");
        // Whatever the state, both the old and the new contents still exist somewhere.
        let t = tree(root);
        assert!(t.values().any(|v| v == "old"), "{t:?}");
        assert!(t.values().any(|v| v == "new"), "{t:?}");
        assert!(t.values().any(|v| v == "old-key"), "{t:?}");
    }

    #[test]
    fn dropping_an_unsettled_transaction_rolls_it_back() {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        let before = tree(dir.path());
        {
            let mut txn = Txn::new(&RealFs);
            txn.replace(
                &dir.path().join("staging/tree"),
                &dir.path().join("data"),
                &dir.path().join("data.before"),
            )
            .unwrap();
        }
        assert_eq!(tree(dir.path()), before);
    }

    #[test]
    fn rename_never_replaces_and_created_folders_are_removed_only_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        put(&dir.path().join("a/f"), "a");
        put(&dir.path().join("b/f"), "b");
        let err = RealFs
            .rename(&dir.path().join("a"), &dir.path().join("b"))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        let mut txn = Txn::new(&RealFs);
        txn.create_dir_all(&dir.path().join("x/y"), 0o700).unwrap();
        put(&dir.path().join("x/y/someone-elses"), "keep");
        let problems = txn.rollback();
        assert_eq!(problems.len(), 2, "x/y and x are both kept: {problems:?}");
        assert!(problems.iter().all(|p| p.contains("left")), "{problems:?}");
        assert_eq!(tree(dir.path())["x/y/someone-elses"], "keep");
    }
}
