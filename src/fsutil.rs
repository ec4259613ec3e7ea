//! Small filesystem helpers the restore needs: free space, emptiness, device ids, ownership.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Bytes available to this user on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    // SAFETY: zeroed statvfs is a valid out-parameter; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
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
        Err(_) => {
            let c = CString::new(user).map_err(|_| format!("bad user name {user:?}"))?;
            // SAFETY: getpwnam returns NULL or a pointer to static storage, read before any other call.
            let pw = unsafe { libc::getpwnam(c.as_ptr()) };
            if pw.is_null() {
                return Err(format!("no such user {user:?}"));
            }
            unsafe { ((*pw).pw_uid, Some((*pw).pw_gid)) }
        }
    };
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let c = CString::new(g).map_err(|_| format!("bad group name {g:?}"))?;
                // SAFETY: as above, for getgrnam.
                let gr = unsafe { libc::getgrnam(c.as_ptr()) };
                if gr.is_null() {
                    return Err(format!("no such group {g:?}"));
                }
                unsafe { (*gr).gr_gid }
            }
        },
        None => primary_gid.unwrap_or(uid),
    };
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
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
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
