//! Small filesystem helpers the restore needs: free space, emptiness, device ids, ownership,
//! durability, and the rename transaction that puts restored folders in place.

pub mod txn;

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Bytes available to this user on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The entries of a folder (names only, sorted), or an empty list when it does not exist.
pub fn entries(dir: &Path) -> io::Result<Vec<String>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut names = Vec::new();
            for e in rd {
                names.push(e?.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            Ok(names)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The nearest existing ancestor of `path` (itself if it exists).
pub fn existing_ancestor(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            return PathBuf::from("/");
        }
    }
    p
}

/// The device id of the filesystem holding `path` (or its nearest existing ancestor).
pub fn device_of(path: &Path) -> io::Result<u64> {
    Ok(std::fs::metadata(existing_ancestor(path))?.dev())
}

/// Makes a folder's entries (names created, renamed or removed in it) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Flushes everything written to the filesystem that holds `path` (one `syncfs(2)`: far cheaper
/// than an fsync per file for a tree of many small files).
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let dir = std::fs::File::open(path)?;
    rustix::fs::syncfs(&dir)?;
    Ok(())
}

/// A uid:gid pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Parses `USER[:GROUP]` (names or numbers); the group defaults to the user's primary group.
pub fn parse_owner(spec: &str) -> Result<Owner, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary_gid) = match user.parse::<u32>() {
        Ok(uid) => (uid, None),
        Err(_) => match nix::unistd::User::from_name(user) {
            Ok(Some(u)) => (u.uid.as_raw(), Some(u.gid.as_raw())),
            Ok(None) => return Err(format!("no such user {user:?}")),
            Err(e) => return Err(format!("cannot look up user {user:?}: {e}")),
        },
    };
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => match nix::unistd::Group::from_name(g) {
                Ok(Some(gr)) => gr.gid.as_raw(),
                Ok(None) => return Err(format!("no such group {g:?}")),
                Err(e) => return Err(format!("cannot look up group {g:?}: {e}")),
            },
        },
        None => primary_gid.unwrap_or(uid),
    };
    if uid == u32::MAX || gid == u32::MAX {
        return Err("4294967295 (-1) is not an owner".into());
    }
    Ok(Owner { uid, gid })
}

/// Gives everything under `root` (itself included) to `owner`, links included (not their targets).
pub fn chown_tree(root: &Path, owner: Owner) -> io::Result<()> {
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.map_err(io::Error::other)?;
        std::os::unix::fs::lchown(entry.path(), Some(owner.uid), Some(owner.gid))?;
    }
    Ok(())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_parse_numbers_and_names() {
        assert_eq!(
            parse_owner("1000:1001").unwrap(),
            Owner {
                uid: 1000,
                gid: 1001
            }
        );
        assert_eq!(parse_owner("0").unwrap(), Owner { uid: 0, gid: 0 });
        assert_eq!(parse_owner("root:root").unwrap(), Owner { uid: 0, gid: 0 });
        assert!(parse_owner("no-such-user-lifeboat").is_err());
        assert!(parse_owner("4294967295").is_err());
        assert!(parse_owner("1:4294967295").is_err());
    }

    #[test]
    fn entries_and_ancestors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(entries(&dir.path().join("missing")).unwrap().is_empty());
        std::fs::write(dir.path().join("b"), b"").unwrap();
        std::fs::write(dir.path().join("a"), b"").unwrap();
        assert_eq!(entries(dir.path()).unwrap(), vec!["a", "b"]);
        assert_eq!(existing_ancestor(&dir.path().join("x/y/z")), dir.path());
        assert!(free_bytes(dir.path()).unwrap() > 0);
    }
}
