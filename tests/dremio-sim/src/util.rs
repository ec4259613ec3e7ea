//! Small helpers shared by the simulator's modules.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// Random bytes from the OS.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("OS random source");
    b
}

/// A random UUID (version 4) in its usual text form.
pub fn uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Writes `data` to `path` atomically: a temporary file in the same directory, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().context("path without parent")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path
        .file_name()
        .context("path without file name")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{}.tmp-{}", name, std::process::id()));
    {
        let mut f =
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Copies the tree `src` into `dst` (created), returning the number of regular files copied.
/// With `private`, directories get mode 0700 and files 0600 (Dremio's `security/`).
pub fn copy_tree(src: &Path, dst: &Path, private: bool) -> Result<u64> {
    fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
    if private {
        fs::set_permissions(dst, fs::Permissions::from_mode(0o700))?;
    }
    let mut n = 0;
    let mut entries: Vec<_> = fs::read_dir(src)
        .with_context(|| format!("reading {}", src.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let ft = e.file_type()?;
        let to = dst.join(e.file_name());
        if ft.is_dir() {
            n += copy_tree(&e.path(), &to, private)?;
        } else if ft.is_file() {
            fs::copy(e.path(), &to)
                .with_context(|| format!("copying {} to {}", e.path().display(), to.display()))?;
            if private {
                fs::set_permissions(&to, fs::Permissions::from_mode(0o600))?;
            }
            n += 1;
        }
    }
    Ok(n)
}

/// Number of regular files under `dir` (0 when it does not exist).
pub fn count_files(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}
