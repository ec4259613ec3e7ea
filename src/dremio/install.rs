//! Where a coordinator keeps its state: `paths.local`, `paths.db`, the uploads tree and `security/`,
//! resolved from `<DREMIO_HOME>/conf/dremio.conf` with Dremio's documented defaults.

use std::path::{Path, PathBuf};

use super::DremioError;
use super::conf::{self, Conf, ResolveError};
use super::version::{self, DremioVersion};

/// A coordinator's state on disk and the version that wrote it.
#[derive(Debug, Clone)]
pub struct Installation {
    pub home: Option<PathBuf>,
    pub paths_local: PathBuf,
    pub db: PathBuf,
    /// `<paths.uploads>/_uploads` when the distributed store is local (`pdfs://` or `file://`).
    pub uploads: Option<PathBuf>,
    /// The URL of paths.uploads when it is not on local disk (then uploads are not in offline backups).
    pub remote_uploads: Option<String>,
    pub security: PathBuf,
    pub version: Option<DremioVersion>,
    pub edition: Option<String>,
}

/// Dremio's defaults (dremio-reference.conf), applied where dremio.conf says nothing.
const DEFAULTS: [(&str, &str); 4] = [
    ("paths.local", "\"/tmp/dremio\""),
    ("paths.dist", "\"pdfs://\"${paths.local}\"/pdfs\""),
    ("paths.db", "${paths.local}/db"),
    ("paths.uploads", "${paths.dist}\"/uploads\""),
];

impl Installation {
    /// Resolves the layout from a DREMIO_HOME and/or an explicit paths.local, and the version from
    /// the jars or an explicit `version` (which wins).
    pub fn discover(
        home: Option<&Path>,
        paths_local: Option<&Path>,
        version: Option<&str>,
    ) -> Result<Installation, DremioError> {
        if home.is_none() && paths_local.is_none() {
            return Err(DremioError::NoLayout {
                what: "no Dremio installation given".into(),
            });
        }
        let conf_path = home.map(|h| h.join("conf").join("dremio.conf"));
        let mut conf = match &conf_path {
            Some(path) => read_conf(path)?,
            None => Conf::default(),
        };
        if let Some(local) = paths_local {
            conf.set("paths.local", &absolute(local).to_string_lossy());
        }
        for (key, value) in DEFAULTS {
            conf.set_default(key, value);
        }
        let home_abs = home.map(absolute);
        let env = |name: &str| -> Option<String> {
            if name == "DREMIO_HOME"
                && let Some(h) = &home_abs
            {
                return Some(h.to_string_lossy().into_owned());
            }
            std::env::var(name).ok()
        };
        let shown = conf_path
            .clone()
            .unwrap_or_else(|| PathBuf::from("(defaults)"));
        let get = |key: &str| -> Result<String, DremioError> {
            match conf.resolve(key, &env) {
                Ok(v) => Ok(v.unwrap_or_default()),
                Err(ResolveError::Unresolved { key, reference }) => {
                    Err(DremioError::ConfUnresolved {
                        path: shown.clone(),
                        key,
                        reference,
                    })
                }
                Err(ResolveError::Cycle { key }) => Err(DremioError::ConfCycle {
                    path: shown.clone(),
                    key,
                }),
                Err(ResolveError::TooLarge { key }) => Err(DremioError::ConfTooLarge {
                    path: shown.clone(),
                    key,
                }),
            }
        };
        let local = PathBuf::from(get("paths.local")?);
        let db_url = get("paths.db")?;
        let db = PathBuf::from(strip_local_scheme(&db_url).unwrap_or(db_url));
        let uploads_url = get("paths.uploads")?;
        let (uploads, remote_uploads) = match strip_local_scheme(&uploads_url) {
            Some(dir) => (Some(PathBuf::from(dir).join("_uploads")), None),
            None => (None, Some(uploads_url)),
        };
        let (version, edition) = match (version, home) {
            (Some(v), _) => (
                Some(
                    DremioVersion::parse(v).ok_or_else(|| DremioError::BadVersion {
                        value: v.to_string(),
                    })?,
                ),
                None,
            ),
            (None, Some(h)) => match version::installed_version(h) {
                Ok(Some(found)) => (Some(found.version), found.edition),
                _ => (None, None),
            },
            (None, None) => (None, None),
        };
        Ok(Installation {
            home: home_abs,
            security: local.join("security"),
            paths_local: local,
            db,
            uploads,
            remote_uploads,
            version,
            edition,
        })
    }

    /// The version, or an error that says how to provide it.
    pub fn require_version(&self) -> Result<&DremioVersion, DremioError> {
        self.version.as_ref().ok_or_else(|| DremioError::NoVersion {
            why: match &self.home {
                Some(h) => format!(
                    "no dremio-*.jar with a version under {}",
                    h.join("jars").display()
                ),
                None => "no --dremio-home given".into(),
            },
        })
    }

    /// RocksDB's lock file of the KV store.
    pub fn lock_file(&self) -> PathBuf {
        self.db.join("catalog").join("LOCK")
    }
}

fn read_conf(path: &Path) -> Result<Conf, DremioError> {
    let text = crate::limits::read_capped_string(path, conf::MAX_CONF_BYTES, "a dremio.conf")
        .map_err(|source| DremioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Conf::parse(&text).map_err(|e| DremioError::ConfSyntax {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })
}

/// `pdfs:///x`, `file:///x` or a bare absolute path -> `/x`; any other scheme is not local.
fn strip_local_scheme(url: &str) -> Option<String> {
    for scheme in ["pdfs://", "file://"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            return rest.starts_with('/').then(|| rest.to_string());
        }
    }
    (!url.contains("://")).then(|| url.to_string())
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home_with(conf: &str, jars: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("conf")).unwrap();
        std::fs::create_dir_all(dir.path().join("jars")).unwrap();
        std::fs::write(dir.path().join("conf/dremio.conf"), conf).unwrap();
        for jar in jars {
            std::fs::write(dir.path().join("jars").join(jar), b"").unwrap();
        }
        dir
    }

    #[test]
    fn defaults_follow_paths_local_and_version_comes_from_jars() {
        let home = home_with(
            "paths: {\n  local: \"/var/lib/dremio\"\n}\n",
            &["dremio-dac-backend-25.2.0-1-ab.jar"],
        );
        let inst = Installation::discover(Some(home.path()), None, None).unwrap();
        assert_eq!(inst.db, PathBuf::from("/var/lib/dremio/db"));
        assert_eq!(
            inst.uploads,
            Some(PathBuf::from("/var/lib/dremio/pdfs/uploads/_uploads"))
        );
        assert_eq!(inst.security, PathBuf::from("/var/lib/dremio/security"));
        assert_eq!(inst.version.unwrap().to_string(), "25.2.0-1-ab");
    }

    #[test]
    fn dremio_home_substitution_and_flag_overrides() {
        let home = home_with(
            "paths.local: ${DREMIO_HOME}\"/data\"\npaths.db: \"/fast/db\"\n",
            &[],
        );
        let inst = Installation::discover(Some(home.path()), None, Some("25.1.0")).unwrap();
        assert_eq!(inst.paths_local, home.path().join("data"));
        assert_eq!(inst.db, PathBuf::from("/fast/db"));
        assert_eq!(inst.version.unwrap().release(), "25.1.0");
        let inst =
            Installation::discover(Some(home.path()), Some(Path::new("/other")), None).unwrap();
        assert_eq!(inst.paths_local, PathBuf::from("/other"));
        assert!(inst.version.is_none());
        assert!(
            inst.require_version()
                .unwrap_err()
                .to_string()
                .contains("--dremio-version")
        );
    }

    #[test]
    fn remote_distributed_store_means_no_local_uploads() {
        let home = home_with(
            "paths.local: /d\npaths.dist: \"dremioS3:///bucket/dist\"\n",
            &[],
        );
        let inst = Installation::discover(Some(home.path()), None, None).unwrap();
        assert_eq!(inst.uploads, None);
        assert_eq!(
            inst.remote_uploads.as_deref(),
            Some("dremioS3:///bucket/dist/uploads")
        );
    }

    #[test]
    fn conf_errors_name_file_and_line() {
        let home = home_with("paths: {\n  local: \"/x\n", &[]);
        let err = Installation::discover(Some(home.path()), None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("dremio.conf, line 2"), "{err}");
        assert!(Installation::discover(None, None, None).is_err());
    }
}
