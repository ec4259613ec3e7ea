//! The local index cache of format-2 backups: the newest backup's index (plain zstd JSON lines)
//! per location and cluster, so that an encrypted repository's next backup can reuse its shared
//! objects without an identity. `$LIFEBOAT_CACHE_DIR`, else `$XDG_CACHE_HOME/lifeboat`, else
//! `$HOME/.cache/lifeboat`; `<first 16 hex of sha256(url "\n" cluster)>/<id>.index.jsonl.zst`.

use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const SUFFIX: &str = ".index.jsonl.zst";

/// The cache folder of `cluster` in the location `url`, if a cache root can be found.
pub fn dir_for(url: &str, cluster: &str) -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let root = var("LIFEBOAT_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("lifeboat")))
        .or_else(|| var("HOME").map(|p| p.join(".cache").join("lifeboat")))?;
    let digest = crate::archive::digest::sha256_hex(format!("{url}\n{cluster}").as_bytes());
    Some(root.join(&digest[..16]))
}

/// The cached index of backup `id`, when there is one.
pub fn open(dir: &Path, id: &str) -> Option<File> {
    crate::repo::layout::time_of_id(id)?;
    File::open(dir.join(format!("{id}{SUFFIX}"))).ok()
}

/// Keeps `index` (plain zstd) as backup `id`'s, removing older ones.
pub fn keep(dir: &Path, id: &str, index: &mut File) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let name = format!("{id}{SUFFIX}");
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    io::Seek::seek(index, io::SeekFrom::Start(0))?;
    io::copy(index, &mut out)?;
    out.sync_all()?;
    std::fs::rename(&tmp, dir.join(&name))?;
    for other in crate::fsutil::entries(dir).unwrap_or_default() {
        if other != name && other.ends_with(SUFFIX) {
            let _ = std::fs::remove_file(dir.join(other));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_index_is_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c");
        let mut f = tempfile::tempfile().unwrap();
        io::Write::write_all(&mut f, b"one").unwrap();
        keep(&dir, "20261201T000000Z-aaaa", &mut f).unwrap();
        keep(&dir, "20261202T000000Z-bbbb", &mut f).unwrap();
        assert!(open(&dir, "20261201T000000Z-aaaa").is_none());
        assert!(open(&dir, "20261202T000000Z-bbbb").is_some());
        assert!(open(&dir, "../x").is_none());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(
            mode(&dir.join("20261202T000000Z-bbbb.index.jsonl.zst")),
            0o600
        );
    }
}
