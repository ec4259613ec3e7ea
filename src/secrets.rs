//! Secrets: never printed (not even by `{:?}`), and read only from the environment or from a file
//! an environment variable or a mapping names; never from argv or from lifeboat's own config file.

use std::io;
use std::path::{Path, PathBuf};

/// A secret value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The largest secret file read (a password, a key, a service account's JSON).
const MAX_FILE_BYTES: u64 = 64 << 10;

/// A lookup of environment variables (the process's, or a test's).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The secret in environment variable `var`, if it is set and not empty.
pub fn from_var(env: Env<'_>, var: &str) -> Option<Secret> {
    env(var).filter(|v| !v.is_empty()).map(Secret)
}

/// The contents of `path`, without the line end an editor leaves.
pub fn from_file(path: &Path) -> io::Result<Secret> {
    let text = crate::limits::read_capped_string(path, MAX_FILE_BYTES, "a secret file")?;
    Ok(Secret(text.trim_end_matches(['\n', '\r']).to_string()))
}

/// `NAME` from the environment, else the contents of the file that `NAME_FILE` names (the
/// convention of Docker and Kubernetes secrets). A `NAME_FILE` that cannot be read is an error
/// naming that file.
pub fn from_var_or_file(env: Env<'_>, name: &str) -> Result<Option<Secret>, (PathBuf, io::Error)> {
    if let Some(s) = from_var(env, name) {
        return Ok(Some(s));
    }
    let Some(file) = env(&format!("{name}_FILE")) else {
        return Ok(None);
    };
    let path = PathBuf::from(file);
    from_file(&path).map(Some).map_err(|e| (path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variable_wins_over_its_file_and_files_lose_their_line_end() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let f = file.display().to_string();
        let both = |k: &str| match k {
            "P" => Some("from-var".to_string()),
            "P_FILE" => Some(f.clone()),
            _ => None,
        };
        assert_eq!(from_var_or_file(&both, "P").unwrap().unwrap().0, "from-var");
        let only_file = |k: &str| (k == "P_FILE").then(|| f.clone());
        assert_eq!(
            from_var_or_file(&only_file, "P").unwrap().unwrap().0,
            "from-file"
        );
        let empty = |k: &str| (k == "P").then(String::new);
        assert!(from_var_or_file(&empty, "P").unwrap().is_none());
        let missing = |k: &str| (k == "P_FILE").then(|| "/no/such/file".to_string());
        let (path, _) = from_var_or_file(&missing, "P").unwrap_err();
        assert_eq!(path, PathBuf::from("/no/such/file"));
        assert_eq!(format!("{:?}", Secret("hunter2".into())), "Secret(***)");
    }
}
