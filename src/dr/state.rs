//! What a standby holds, in `<paths.local>/lifeboat-standby.json` (0600): the backup it was
//! restored from, when, and the safety copy that refresh kept. A restore replaces paths.local
//! whole, so the file always describes the folder it is in (a put-back brings the old one back).
//! The file is input like any other: read capped and checked.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::DrError;

pub const STATE_FILE: &str = "lifeboat-standby.json";
pub const FORMAT: &str = "lifeboat-standby/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandbyState {
    pub format: String,
    /// The standby's cluster name and its primary's.
    pub cluster: String,
    pub primary: String,
    /// The backup restored (its id), when it was taken, and from where.
    pub backup: String,
    pub backup_created_at: DateTime<Utc>,
    pub location: String,
    pub restored_at: DateTime<Utc>,
    /// The previous contents that this refresh kept (a `.before-restore-` folder), which the
    /// next successful refresh removes.
    #[serde(default)]
    pub kept: Vec<PathBuf>,
    /// Set by `failover`: this standby is the primary now, and `standby refresh` refuses to
    /// overwrite it.
    #[serde(default)]
    pub promoted_at: Option<DateTime<Utc>>,
}

/// The state in `paths_local`, `None` when there is none. A file that is too large (64 KiB),
/// not this format, or names paths that are not absolute is an error.
pub fn read(paths_local: &Path) -> Result<Option<StandbyState>, DrError> {
    let path = paths_local.join(STATE_FILE);
    let bad = |why: String| DrError::State {
        path: path.clone(),
        why,
    };
    let bytes =
        match crate::limits::read_capped_regular(&path, MAX_STATE_BYTES, "a standby's state") {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                return Err(bad(format!(
                    "{e}; move it aside and run standby refresh again"
                )));
            }
            Err(e) => {
                return Err(DrError::Io {
                    path: path.clone(),
                    source: e,
                });
            }
        };
    let state: StandbyState = serde_json::from_slice(&bytes).map_err(|e| {
        bad(format!(
            "it is not a standby state lifeboat wrote ({e}); move it aside and run standby refresh again"
        ))
    })?;
    check(&state).map_err(|why| {
        bad(format!(
            "{why}; move it aside and run standby refresh again"
        ))
    })?;
    Ok(Some(state))
}

/// Writes it durably (temporary file, fsync, rename, fsync of the folder), 0600.
pub fn write(paths_local: &Path, state: &StandbyState) -> Result<(), DrError> {
    let path = paths_local.join(STATE_FILE);
    check(state).map_err(|why| DrError::State {
        path: path.clone(),
        why,
    })?;
    let tmp = paths_local.join(format!(".{STATE_FILE}.tmp-{}", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DrError::Io { path, source }
    };
    let mut text = serde_json::to_vec_pretty(state).map_err(|e| DrError::State {
        path: path.clone(),
        why: format!("cannot be written: {e}"),
    })?;
    text.push(b'\n');
    // A leftover of a run that died here (same pid, much earlier) is ours to replace.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&tmp)(e)),
    }
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    if let Err(e) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&path)(e));
    }
    crate::fsutil::sync_dir(paths_local).map_err(io(paths_local))
}

/// The most bytes a state file may have.
pub const MAX_STATE_BYTES: u64 = 64 << 10;
/// The longest name (cluster, primary, backup id) and location a state may hold.
const MAX_NAME: usize = 200;
const MAX_LOCATION: usize = 4096;
/// The most kept folders a state may name (a restore keeps one per folder it replaces).
const MAX_KEPT: usize = 64;

/// What a state must be, read or written: this format, short printable names, and kept folders
/// that are absolute, plain (no `.` or `..`) and named as restore names its safety copies
/// (`<folder>.before-restore-<stamp>`), since a refresh removes them.
fn check(state: &StandbyState) -> Result<(), String> {
    if state.format != FORMAT {
        return Err(format!(
            "its format is {:?}, not {FORMAT:?} (written by another version of lifeboat?)",
            state.format.chars().take(40).collect::<String>()
        ));
    }
    for (field, value, max) in [
        ("cluster", &state.cluster, MAX_NAME),
        ("primary", &state.primary, MAX_NAME),
        ("backup", &state.backup, MAX_NAME),
        ("location", &state.location, MAX_LOCATION),
    ] {
        if value.is_empty() {
            return Err(format!("its {field} is empty"));
        }
        if value.len() > max {
            return Err(format!("its {field} is longer than {max} bytes"));
        }
        if value.chars().any(char::is_control) {
            return Err(format!("its {field} holds control characters"));
        }
    }
    if state.kept.len() > MAX_KEPT {
        return Err(format!("it names more than {MAX_KEPT} kept folders"));
    }
    for kept in &state.kept {
        let plain = kept.is_absolute()
            && kept
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        let named = kept
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(".before-restore-"));
        if !plain || !named || kept.as_os_str().len() > MAX_LOCATION {
            return Err(format!(
                "it names {} as a kept folder, which is not an absolute path to a restore's .before-restore- copy",
                kept.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn state() -> StandbyState {
        StandbyState {
            format: FORMAT.into(),
            cluster: "dr".into(),
            primary: "prod".into(),
            backup: "20261122T013000Z-7f3a".into(),
            backup_created_at: "2026-11-22T01:30:00Z".parse().unwrap(),
            location: "s3://bucket/dr".into(),
            restored_at: "2026-11-22T02:00:00Z".parse().unwrap(),
            kept: vec![PathBuf::from(
                "/var/lib/dremio.before-restore-20261122T020000Z",
            )],
            promoted_at: None,
        }
    }

    #[test]
    fn a_state_round_trips_privately_and_none_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        write(dir.path(), &state()).unwrap();
        let path = dir.path().join(STATE_FILE);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read(dir.path()).unwrap(), Some(state()));
        let mut promoted = state();
        promoted.promoted_at = Some(Utc::now());
        promoted.kept.clear();
        write(dir.path(), &promoted).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(promoted));
        // Only the state file is left: no temporary file.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn hostile_state_files_are_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let good = serde_json::to_value(state()).unwrap();
        let with = |key: &str, value: serde_json::Value| {
            let mut v = good.clone();
            v[key] = value;
            v.to_string()
        };
        let cases = [
            ("x".repeat(70 << 10), "larger"),
            ("{not json".into(), "not a standby state"),
            (with("format", "lifeboat-standby/9".into()), "format"),
            (with("surprise", 1.into()), "unknown field"),
            (with("cluster", "".into()), "cluster is empty"),
            (with("backup", "b".repeat(300).into()), "longer than"),
            (with("primary", "a\nb".into()), "control"),
            (
                with("kept", serde_json::json!(["relative.before-restore-1"])),
                "kept folder",
            ),
            (with("kept", serde_json::json!(["/etc"])), "kept folder"),
            (
                with("kept", serde_json::json!(["/a/../etc/x.before-restore-1"])),
                "kept folder",
            ),
        ];
        for (text, says) in cases {
            std::fs::write(&path, &text).unwrap();
            let e = read(dir.path()).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, DrError::State { .. }), "{msg}");
            assert!(msg.contains(says), "{says}: {msg}");
            assert!(msg.contains("move it aside"), "{msg}");
        }
        // Something that is not a file (a FIFO) is refused without blocking.
        std::fs::remove_file(&path).unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &path,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        assert!(read(dir.path()).is_err());
        // Writing refuses what reading would refuse.
        let mut bad = state();
        bad.kept = vec![PathBuf::from("/")];
        std::fs::remove_file(&path).unwrap();
        assert!(write(dir.path(), &bad).is_err());
        assert!(!path.exists());
    }
}
