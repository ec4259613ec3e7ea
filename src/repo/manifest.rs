//! `manifest.json`: written last, it is what makes a backup exist. Its fields are a contract with
//! other tools (see docs/ARCHITECTURE.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::archive::{ArchiveError, Counts, FileEntry};
use crate::limits;

/// The format string this build writes; readers accept any `lifeboat-backup/1.x`.
pub const FORMAT: &str = "lifeboat-backup/1";
/// The largest manifest a reader accepts. The biggest one lifeboat writes holds 1,000 inline
/// entries whose paths and link targets are at most 4 KiB each: about 8 MiB, pretty-printed.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// The most JSON values a manifest may hold (about 15 per inline entry), checked before parsing
/// so that a forged one cannot make the parse take many times its size.
const MAX_MANIFEST_VALUES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub cluster: Cluster,
    /// `offline` (files of a stopped store) or `logical` (a dremio-admin backup).
    pub mode: String,
    pub host: String,
    pub tool: Tool,
    pub source: Source,
    pub counts: Counts,
    /// Bytes of file content before compression.
    pub raw_bytes: u64,
    /// Bytes stored for this backup (archive plus separate index).
    pub stored_bytes: u64,
    pub archive: ArchiveRef,
    pub index: IndexRef,
    /// For `logical` backups: what the coordinator's dremio-admin backup held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical: Option<Logical>,
    /// The per-file entries when the index is inline (`index.location == "inline"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
    /// Warnings recorded at backup time (e.g. uploads not on local disk).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    /// `dremio` or `druid`.
    pub kind: String,
    /// major.minor.patch
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// Where the data came from: the source host's paths (offline) or the coordinator (logical).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dremio_home: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub paths_local: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub db: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploads: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub security: String,
    /// The coordinator that wrote a logical backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<String>,
}

/// A logical backup's contents as dremio-admin wrote them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logical {
    /// KV tables (each a `<table>_backup.json|pb` with its `<table>_info.json`).
    pub tables: u64,
    /// Records over all tables, as their info files count them.
    pub records: u64,
    /// Whether the table files are binary (`.pb`) rather than JSON lines.
    pub binary: bool,
    /// Where the coordinator wrote it.
    pub backup_path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveRef {
    pub object: String,
    pub bytes: u64,
    pub sha256: String,
    pub compression: String,
    pub level: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexRef {
    pub entries: u64,
    /// `inline` (in `files`) or the object name of a zstd-compressed JSON-lines index.
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Manifest {
    /// Refuses a manifest object of `size` bytes before it is read (see [`MAX_MANIFEST_BYTES`]).
    pub fn check_size(size: u64) -> Result<(), ArchiveError> {
        if size > MAX_MANIFEST_BYTES {
            return Err(ArchiveError::BadManifest(format!(
                "it is {size} bytes, more than the {MAX_MANIFEST_BYTES} of the largest manifest lifeboat writes: it was not written by lifeboat"
            )));
        }
        Ok(())
    }

    /// Parses and checks a manifest read from the folder of `expected_id`.
    pub fn from_json(bytes: &[u8], expected_id: Option<&str>) -> Result<Manifest, ArchiveError> {
        Self::check_size(bytes.len() as u64)?;
        limits::check_json_values(bytes, MAX_MANIFEST_VALUES, "a lifeboat manifest")
            .map_err(ArchiveError::BadManifest)?;
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| ArchiveError::BadManifest(format!("not a lifeboat manifest: {e}")))?;
        manifest.validate(expected_id)?;
        Ok(manifest)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("manifest serialises");
        out.push(b'\n');
        out
    }

    fn validate(&self, expected_id: Option<&str>) -> Result<(), ArchiveError> {
        let bad = |m: String| Err(ArchiveError::BadManifest(m));
        let major = self
            .format
            .strip_prefix("lifeboat-backup/")
            .and_then(|v| v.split('.').next());
        if major != Some("1") {
            return bad(format!(
                "format {:?} is not one this lifeboat reads ({FORMAT}); use a newer lifeboat",
                self.format
            ));
        }
        if let Some(id) = expected_id
            && id != self.id
        {
            return bad(format!(
                "it names backup {} but lies in the folder of {id}",
                self.id
            ));
        }
        if !is_sha256(&self.archive.sha256) {
            return bad("archive.sha256 is not a SHA-256 digest".into());
        }
        if self.index.location == "inline" {
            if self.files.len() as u64 != self.index.entries {
                return bad(format!(
                    "index says {} entries but {} are inline",
                    self.index.entries,
                    self.files.len()
                ));
            }
        } else if !self.index.sha256.as_deref().is_some_and(is_sha256) {
            return bad("index.sha256 is missing or not a SHA-256 digest".into());
        }
        if self.archive.object.contains('/') || self.index.location.contains('/') {
            return bad("object names must not contain '/'".into());
        }
        Ok(())
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::repo::layout::ARCHIVE_OBJECT;

    pub fn sample() -> Manifest {
        let t = "2026-11-22T01:30:00Z".parse().unwrap();
        Manifest {
            format: FORMAT.into(),
            id: "20261122T013000Z-7f3a".into(),
            created_at: t,
            finished_at: t,
            cluster: Cluster {
                name: "dremio".into(),
                kind: "dremio".into(),
                version: "25.2.0".into(),
                build: None,
                edition: None,
            },
            mode: "offline".into(),
            host: "h".into(),
            tool: Tool {
                name: "lifeboat".into(),
                version: "0.1.0".into(),
            },
            source: Source {
                dremio_home: None,
                paths_local: "/d".into(),
                db: "/d/db".into(),
                uploads: None,
                security: "/d/security".into(),
                coordinator: None,
            },
            counts: Counts::default(),
            raw_bytes: 0,
            stored_bytes: 0,
            archive: ArchiveRef {
                object: ARCHIVE_OBJECT.into(),
                bytes: 0,
                sha256: "0".repeat(64),
                compression: "zstd".into(),
                level: 3,
            },
            index: IndexRef {
                entries: 0,
                location: "inline".into(),
                bytes: None,
                sha256: None,
            },
            logical: None,
            files: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn round_trips_and_checks_its_fields() {
        let m = sample();
        assert_eq!(Manifest::from_json(&m.to_json(), Some(&m.id)).unwrap(), m);
        assert!(Manifest::from_json(&m.to_json(), Some("other")).is_err());
        assert!(
            Manifest::from_json(b"{", None)
                .unwrap_err()
                .to_string()
                .contains("not a lifeboat manifest")
        );
        let mut newer = sample();
        newer.format = "lifeboat-backup/2".into();
        assert!(
            Manifest::from_json(&newer.to_json(), None)
                .unwrap_err()
                .to_string()
                .contains("newer lifeboat")
        );
        let mut bad_digest = sample();
        bad_digest.archive.sha256 = "xyz".into();
        assert!(Manifest::from_json(&bad_digest.to_json(), None).is_err());
    }
}
