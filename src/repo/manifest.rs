//! `manifest.json`: written last, it is what makes a backup exist. Its fields are a contract with
//! other tools (see docs/ARCHITECTURE.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::archive::{ArchiveError, Counts, FileEntry};
use crate::limits;

/// The format string of single-object backups (`--format 1`); readers accept any
/// `lifeboat-backup/1.x` and `lifeboat-backup/2.x`.
pub const FORMAT: &str = "lifeboat-backup/1";
/// The format string of backups made of shared objects (incremental, optionally encrypted).
pub const FORMAT_2: &str = "lifeboat-backup/2";
/// The largest manifest a reader accepts. The biggest one lifeboat writes holds 1,000 inline
/// entries whose paths and link targets are at most 4 KiB each: about 8 MiB, pretty-printed.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// The most JSON values a manifest may hold (about 15 per inline entry), checked before parsing
/// so that a forged one cannot make the parse take many times its size.
const MAX_MANIFEST_VALUES: usize = 100_000;
/// The longest string a manifest may hold: its longest are paths and link targets (4 KiB) and
/// notes. Checked before parsing, since a parse error quotes a bad string escaped (up to 6 times
/// its size).
const MAX_MANIFEST_STRING: usize = 64 << 10;

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
    /// For `metadata` backups of a Druid cluster: what the metadata store held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub druid: Option<Druid>,
    /// The fingerprint of the cluster's catalog taken with the backup (online backups), which
    /// drills and failovers compare a restored coordinator with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogRef>,
    /// The per-file entries when the index is inline (`index.location == "inline"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
    /// Warnings recorded at backup time (e.g. uploads not on local disk).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Format 2: the archive's objects in tar order, the tail (the end-of-archive blocks) last.
    /// Their concatenation, decrypted if need be, is one tar+zstd stream. `archive` then names
    /// the backup's `SHA256SUMS` object, which lists the same objects in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectRef>,
    /// Format 2: the age recipients every object, the index and `sealed` are encrypted to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Format 2, encrypted: the sections that would name tables or files (`logical`, `druid`,
    /// `catalog`), moved into an encrypted object of the backup's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<SealedRef>,
    /// Format 2: the earlier backup whose index the unchanged files' objects were taken from
    /// (`None` for a self-contained backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

/// What a format-2 object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// One immutable file (a RocksDB table or blob file), shared by every backup that holds it.
    Shared,
    /// A run of other members (folders, links, small or mutable files), written by one backup.
    Bundle,
    /// The end-of-archive blocks; always last.
    Tail,
}

/// One object of a format-2 backup: zstd frames of whole tar members (an age file of them, when
/// encrypted), stored at `<cluster>/objects/<first two characters>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// 32 random hexadecimal characters: nothing about the content.
    pub name: String,
    pub kind: ObjectKind,
    /// Bytes stored (ciphertext when encrypted).
    pub bytes: u64,
    /// SHA-256 of the bytes stored.
    pub sha256: String,
    /// Tar bytes it decompresses to.
    pub raw: u64,
}

/// How a format-2 backup is encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// `age-v1-x25519` (crypto::SCHEME).
    pub scheme: String,
    /// The recipients (`age1...`), sorted.
    pub recipients: Vec<String>,
}

/// An encrypted object of the backup's folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedRef {
    pub object: String,
    pub bytes: u64,
    pub sha256: String,
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

/// Where a backup's catalog fingerprint is and what it covers: the archive member (always
/// [`CATALOG_MEMBER`] at the top level), its files, and the export's time
/// and coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogRef {
    pub member: String,
    pub files: u64,
    pub taken_at: DateTime<Utc>,
    pub coordinator: String,
}

/// The archive member (top level of a logical backup) holding the catalog fingerprint
/// (`clone::fingerprint`'s format).
pub const CATALOG_MEMBER: &str = "lifeboat-catalog.jsonl";
/// The longest coordinator URL a catalog section may name.
pub const MAX_COORDINATOR_BYTES: usize = 4096;

impl CatalogRef {
    fn validate(&self) -> Result<(), String> {
        if self.member != CATALOG_MEMBER {
            return Err(format!(
                "catalog.member {:.80?} is not {CATALOG_MEMBER}",
                self.member
            ));
        }
        if self.coordinator.len() > MAX_COORDINATOR_BYTES {
            return Err(format!(
                "catalog.coordinator is {} bytes, more than {MAX_COORDINATOR_BYTES}",
                self.coordinator.len()
            ));
        }
        Ok(())
    }
}

/// The `mode` of a Druid metadata-store backup.
pub const MODE_METADATA: &str = "metadata";
/// The most skipped tables and deep-storage locations a Druid section may list.
const MAX_DRUID_LIST: usize = 100;
/// The longest name, type, version or URL a Druid section may hold.
const MAX_DRUID_TEXT: usize = 4096;

/// A Druid metadata-store backup: the store, its tables (one `<table>.csv` archive member each),
/// the tables left out, and where the segments' files live in deep storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Druid {
    /// `/status` of the leader when `--druid-url` was given, else `unknown`.
    pub druid_version: String,
    pub database: Database,
    pub tables: Vec<Table>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedTable>,
    /// The deep-storage locations the segments point at (sorted, at most 100).
    #[serde(default)]
    pub deep_storage: Vec<String>,
    pub segments: Segments,
}

/// The metadata database backed up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Database {
    /// `postgresql` or `mysql`.
    pub kind: String,
    /// `SELECT version()`.
    pub version: String,
    /// The URL given, which never holds a password.
    pub url: String,
}

/// One table of the backup and its file in the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Druid's name for it (one of the durable tables).
    pub name: String,
    /// Its archive member: `<name>.csv`.
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    /// The member's SHA-256, as the archive index records it.
    pub sha256: String,
    pub columns: Vec<TableColumn>,
}

/// A column as the source database declared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableColumn {
    pub name: String,
    pub sql_type: String,
    pub nullable: bool,
}

/// A table the backup left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedTable {
    pub name: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

/// Segment rows of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segments {
    pub total: u64,
    pub used: u64,
}

impl Druid {
    /// Fills each table's digest from the archive's index entry of its file, checking its size;
    /// a table without its file in the index is an error (the archive does not hold it).
    pub fn with_digests(mut self, files: &[FileEntry]) -> Result<Druid, ArchiveError> {
        for t in &mut self.tables {
            let entry = files.iter().find(|f| f.path == t.file).ok_or_else(|| {
                ArchiveError::BadManifest(format!("the archive has no member {}", t.file))
            })?;
            if entry.size != t.bytes {
                return Err(ArchiveError::BadManifest(format!(
                    "{} is {} bytes in the archive, the dump wrote {}",
                    t.file, entry.size, t.bytes
                )));
            }
            t.sha256 = entry.sha256.clone().unwrap_or_default();
        }
        Ok(self)
    }

    /// The checks a reader makes: the section is hostile input like the rest of the manifest.
    fn validate(&self) -> Result<(), String> {
        let text = |what: &str, s: &str| {
            if s.is_empty() || s.len() > MAX_DRUID_TEXT || s.chars().any(char::is_control) {
                Err(format!(
                    "druid.{what} {s:.80?} is empty, too long or holds control characters"
                ))
            } else {
                Ok(())
            }
        };
        text("druid_version", &self.druid_version)?;
        if !matches!(self.database.kind.as_str(), "postgresql" | "mysql") {
            return Err(format!(
                "druid.database.kind {:.40?} is neither postgresql nor mysql",
                self.database.kind
            ));
        }
        text("database.version", &self.database.version)?;
        text("database.url", &self.database.url)?;
        let durable = &crate::druid::metastore::tables::DURABLE;
        if self.tables.len() > durable.len() {
            return Err(format!(
                "druid.tables lists {} tables; a Druid backup holds at most {}",
                self.tables.len(),
                durable.len()
            ));
        }
        for (i, t) in self.tables.iter().enumerate() {
            if !durable.contains(&t.name.as_str()) {
                return Err(format!(
                    "druid.tables: {:.80?} is not a table a Druid backup holds ({})",
                    t.name,
                    durable.join(", ")
                ));
            }
            if self.tables[..i].iter().any(|o| o.name == t.name) {
                return Err(format!("druid.tables lists {} twice", t.name));
            }
            if t.file != format!("{}.csv", t.name) {
                return Err(format!(
                    "druid.tables: the file of {} must be {}.csv, not {:.80?}",
                    t.name, t.name, t.file
                ));
            }
            if !is_sha256(&t.sha256) {
                return Err(format!(
                    "druid.tables: the sha256 of {} is not a SHA-256 digest",
                    t.name
                ));
            }
            if t.columns.is_empty() || t.columns.len() > crate::druid::metastore::csv::MAX_FIELDS {
                return Err(format!(
                    "druid.tables: {} has {} columns (1 to {} allowed)",
                    t.name,
                    t.columns.len(),
                    crate::druid::metastore::csv::MAX_FIELDS
                ));
            }
            for (j, c) in t.columns.iter().enumerate() {
                let plain = !c.name.is_empty()
                    && c.name.len() <= 255
                    && c.name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !plain {
                    return Err(format!(
                        "druid.tables: {} has a column named {:.80?} (letters, digits and '_' only)",
                        t.name, c.name
                    ));
                }
                if t.columns[..j]
                    .iter()
                    .any(|o| o.name.eq_ignore_ascii_case(&c.name))
                {
                    return Err(format!(
                        "druid.tables: {} lists column {} twice",
                        t.name, c.name
                    ));
                }
                text("tables.columns.sql_type", &c.sql_type)?;
            }
        }
        if self.skipped.len() > MAX_DRUID_LIST || self.deep_storage.len() > MAX_DRUID_LIST {
            return Err(format!(
                "druid.skipped or druid.deep_storage lists more than {MAX_DRUID_LIST} entries"
            ));
        }
        for s in &self.skipped {
            text("skipped.name", &s.name)?;
            text("skipped.reason", &s.reason)?;
        }
        for d in &self.deep_storage {
            text("deep_storage", d)?;
        }
        if self.segments.used > self.segments.total {
            return Err("druid.segments: more used segments than segments".into());
        }
        Ok(())
    }

    /// The table of that name.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }
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
        Self::check_text(bytes)?;
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| ArchiveError::BadManifest(format!("not a lifeboat manifest: {e}")))?;
        manifest.validate(expected_id)?;
        Ok(manifest)
    }

    /// The manifest as it is stored: an encrypted backup's sections and notes that name tables,
    /// files or paths live in `sealed.json.age`, whatever a reader with a key filled in.
    pub fn as_stored(&self) -> Manifest {
        let mut m = self.clone();
        if m.encryption.is_some() {
            m.logical = None;
            m.druid = None;
            m.catalog = None;
            m.notes.clear();
        }
        m
    }

    /// Refuses, before it is parsed, a text that could make parsing it (or its error) take many
    /// times its size; the manifest and its sealed sections are both checked so.
    pub fn check_text(bytes: &[u8]) -> Result<(), ArchiveError> {
        limits::check_json_values(bytes, MAX_MANIFEST_VALUES, "a lifeboat manifest")
            .and_then(|()| {
                limits::check_json_strings(bytes, MAX_MANIFEST_STRING, "a lifeboat manifest")
            })
            .map_err(ArchiveError::BadManifest)
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
        if !matches!(major, Some("1" | "2")) {
            return bad(format!(
                "format {:?} is not one this lifeboat reads ({FORMAT}, {FORMAT_2}); use a newer lifeboat",
                self.format
            ));
        }
        if major == Some("2") {
            self.validate_objects()
                .map_err(|m| ArchiveError::BadManifest(format!("format 2: {m}")))?;
        } else if !self.objects.is_empty() || self.encryption.is_some() || self.sealed.is_some() {
            return bad("objects, encryption and sealed belong to format 2".into());
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
        match (&self.druid, self.cluster.kind.as_str()) {
            (Some(d), "druid") if self.mode == MODE_METADATA => {
                d.validate().map_err(ArchiveError::BadManifest)?
            }
            (Some(_), _) => {
                return bad(format!(
                    "a druid section belongs to a Druid backup of mode {MODE_METADATA}, not a {} backup of mode {}",
                    self.cluster.kind, self.mode
                ));
            }
            // Encrypted: the section is sealed, and put back (and checked) by a reader with a key.
            (None, "druid") if self.sealed.is_none() => {
                return bad("a Druid backup without its druid section".into());
            }
            (None, _) => {}
        }
        if let Some(c) = &self.catalog {
            if self.mode != "logical" {
                return bad(format!(
                    "a catalog section belongs to a logical backup, not to a {} backup",
                    self.mode
                ));
            }
            c.validate().map_err(ArchiveError::BadManifest)?;
        }
        Ok(())
    }
}

impl Manifest {
    /// Whether this is a backup made of shared objects.
    pub fn is_format_2(&self) -> bool {
        self.format
            .strip_prefix("lifeboat-backup/")
            .is_some_and(|v| v.split('.').next() == Some("2"))
    }

    /// Format 2's rules: objects named as lifeboat names them, the tail once and last, the
    /// archive reference on `SHA256SUMS`, the index an object, and, when encrypted, no section
    /// that names tables or files left in the clear.
    fn validate_objects(&self) -> Result<(), String> {
        use crate::repo::layout::{
            SEALED_INDEX_OBJECT, SEALED_OBJECT, SUMS_OBJECT, is_object_name,
        };
        let Some(last) = self.objects.last() else {
            return Err("a backup without objects".into());
        };
        if last.kind != ObjectKind::Tail {
            return Err("the last object is not the tail".into());
        }
        let mut seen = std::collections::HashSet::new();
        for (n, o) in self.objects.iter().enumerate() {
            if !is_object_name(&o.name) {
                return Err(format!("object {n} has a name lifeboat does not make"));
            }
            if !is_sha256(&o.sha256) {
                return Err(format!("object {} has no SHA-256 digest", o.name));
            }
            if o.kind == ObjectKind::Tail && n + 1 != self.objects.len() {
                return Err("a tail before the last object".into());
            }
            if !seen.insert(o.name.as_str()) {
                return Err(format!("object {} is listed twice", o.name));
            }
        }
        if self.archive.object != SUMS_OBJECT {
            return Err(format!("archive.object is not {SUMS_OBJECT}"));
        }
        if self.index.location == "inline" || !self.files.is_empty() {
            return Err("the index is inline (a format-2 manifest names no files)".into());
        }
        match (&self.encryption, &self.sealed) {
            (Some(e), sealed) => {
                if e.scheme != crate::crypto::SCHEME {
                    return Err(format!(
                        "encryption scheme {:?} is not {}",
                        e.scheme,
                        crate::crypto::SCHEME
                    ));
                }
                if e.recipients.is_empty() {
                    return Err("encrypted to no recipient".into());
                }
                if self.index.location != SEALED_INDEX_OBJECT {
                    return Err(format!(
                        "an encrypted backup's index is {SEALED_INDEX_OBJECT}"
                    ));
                }
                if self.logical.is_some() || self.druid.is_some() || self.catalog.is_some() {
                    return Err("an encrypted backup names tables or files in its manifest".into());
                }
                if let Some(s) = sealed
                    && (s.object != SEALED_OBJECT || !is_sha256(&s.sha256))
                {
                    return Err(format!("sealed is not {SEALED_OBJECT} with its digest"));
                }
            }
            (None, Some(_)) => return Err("sealed sections without encryption".into()),
            (None, None) => {}
        }
        Ok(())
    }

    /// The digests of every object the backup needs, in archive order: `SHA256SUMS`' content.
    pub fn sha256sums(&self) -> String {
        let mut out = String::new();
        for o in &self.objects {
            out.push_str(&o.sha256);
            out.push_str("  ");
            out.push_str(&crate::repo::layout::object_path(&o.name));
            out.push('\n');
        }
        out
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
            druid: None,
            catalog: None,
            files: vec![],
            notes: vec![],
            objects: vec![],
            encryption: None,
            sealed: None,
            base: None,
        }
    }

    /// A Druid metadata backup's manifest with two tables.
    pub fn druid_sample() -> Manifest {
        let mut m = sample();
        m.cluster.kind = "druid".into();
        m.cluster.version = "31.0.0".into();
        m.mode = MODE_METADATA.into();
        let column = |name: &str, sql_type: &str| TableColumn {
            name: name.into(),
            sql_type: sql_type.into(),
            nullable: false,
        };
        m.druid = Some(Druid {
            druid_version: "31.0.0".into(),
            database: Database {
                kind: "postgresql".into(),
                version: "PostgreSQL 15.8".into(),
                url: "postgresql://druid@db:5432/druid".into(),
            },
            tables: vec![
                Table {
                    name: "druid_segments".into(),
                    file: "druid_segments.csv".into(),
                    rows: 2,
                    bytes: 100,
                    sha256: "a".repeat(64),
                    columns: vec![
                        column("id", "character varying"),
                        column("payload", "bytea"),
                    ],
                },
                Table {
                    name: "druid_config".into(),
                    file: "druid_config.csv".into(),
                    rows: 1,
                    bytes: 10,
                    sha256: "b".repeat(64),
                    columns: vec![
                        column("name", "character varying"),
                        column("payload", "bytea"),
                    ],
                },
            ],
            skipped: vec![SkippedTable {
                name: "druid_tasks".into(),
                reason: "transient".into(),
                rows: Some(3),
            }],
            deep_storage: vec!["s3://b/druid/segments".into()],
            segments: Segments { total: 2, used: 1 },
        });
        m
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
        newer.format = "lifeboat-backup/3".into();
        assert!(
            Manifest::from_json(&newer.to_json(), None)
                .unwrap_err()
                .to_string()
                .contains("newer lifeboat")
        );
        // Format 2 without its objects is refused for what it lacks.
        let mut bare = sample();
        bare.format = FORMAT_2.into();
        let err = Manifest::from_json(&bare.to_json(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("without objects"), "{err}");
        let mut bad_digest = sample();
        bad_digest.archive.sha256 = "xyz".into();
        assert!(Manifest::from_json(&bad_digest.to_json(), None).is_err());
    }

    #[test]
    fn a_catalog_section_round_trips_and_a_hostile_one_is_refused() {
        let logical = || {
            let mut m = sample();
            m.mode = "logical".into();
            m.catalog = Some(CatalogRef {
                member: CATALOG_MEMBER.into(),
                files: 12,
                taken_at: m.finished_at,
                coordinator: "https://dremio-a:9047".into(),
            });
            m
        };
        let m = logical();
        assert_eq!(Manifest::from_json(&m.to_json(), None).unwrap(), m);
        let refused = |change: &dyn Fn(&mut Manifest), says: &str| {
            let mut m = logical();
            change(&mut m);
            let err = Manifest::from_json(&m.to_json(), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{says}: {err}");
        };
        let catalog = |m: &mut Manifest| m.catalog.as_mut().unwrap().clone();
        refused(
            &|m| {
                let mut c = catalog(m);
                c.member = "../db/catalog/CURRENT".into();
                m.catalog = Some(c);
            },
            "is not lifeboat-catalog.jsonl",
        );
        refused(
            &|m| {
                let mut c = catalog(m);
                c.coordinator = "h".repeat(MAX_COORDINATOR_BYTES + 1);
                m.catalog = Some(c);
            },
            "more than 4096",
        );
        refused(
            &|m| m.mode = "offline".into(),
            "belongs to a logical backup",
        );
    }

    #[test]
    fn a_druid_section_round_trips_and_a_hostile_one_is_refused() {
        let m = druid_sample();
        assert_eq!(Manifest::from_json(&m.to_json(), None).unwrap(), m);
        let refused = |change: &dyn Fn(&mut Manifest), says: &str| {
            let mut m = druid_sample();
            change(&mut m);
            let err = Manifest::from_json(&m.to_json(), None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{says}: {err}");
        };
        fn druid(m: &mut Manifest) -> &mut Druid {
            m.druid.as_mut().unwrap()
        }
        refused(
            &|m| druid(m).tables[0].name = "druid_tasks".into(),
            "not a table a Druid backup holds",
        );
        refused(
            &|m| druid(m).tables[0].name = "../etc".into(),
            "not a table a Druid backup holds",
        );
        refused(
            &|m| druid(m).tables[1].name = "druid_segments".into(),
            "twice",
        );
        refused(
            &|m| druid(m).tables[0].file = "../druid_segments.csv".into(),
            "must be druid_segments.csv",
        );
        refused(
            &|m| druid(m).tables[0].sha256 = "zz".into(),
            "not a SHA-256",
        );
        refused(
            &|m| druid(m).tables[0].columns[0].name = "id; DROP".into(),
            "letters, digits",
        );
        refused(&|m| druid(m).tables[0].columns.clear(), "columns (1 to");
        refused(
            &|m| druid(m).database.kind = "oracle".into(),
            "neither postgresql nor mysql",
        );
        refused(
            &|m| druid(m).deep_storage = vec!["s3://x".into(); 101],
            "more than 100",
        );
        refused(&|m| druid(m).segments.used = 3, "more used segments");
        refused(
            &|m| druid(m).druid_version = "a\nb".into(),
            "control characters",
        );
        refused(&|m| m.druid = None, "without its druid section");
        refused(&|m| m.mode = "offline".into(), "a druid section belongs");
        refused(
            &|m| m.cluster.kind = "dremio".into(),
            "a druid section belongs",
        );
        let mut many = druid_sample();
        let t = druid(&mut many).tables[0].clone();
        druid(&mut many).tables = vec![t; 9];
        assert!(Manifest::from_json(&many.to_json(), None).is_err());
    }

    #[test]
    fn table_digests_come_from_the_archive_index() {
        use crate::archive::index::EntryKind;
        let entry = |path: &str, size: u64, sha: &str| FileEntry {
            path: path.into(),
            kind: EntryKind::File,
            size,
            mode: 0o600,
            mtime: 0,
            sha256: Some(sha.into()),
            target: None,
            object: None,
        };
        let d = druid_sample().druid.unwrap();
        let files = [
            entry("README.txt", 5, &"c".repeat(64)),
            entry("druid_segments.csv", 100, &"d".repeat(64)),
            entry("druid_config.csv", 10, &"e".repeat(64)),
        ];
        let filled = d.clone().with_digests(&files).unwrap();
        assert_eq!(filled.tables[0].sha256, "d".repeat(64));
        assert_eq!(filled.tables[1].sha256, "e".repeat(64));
        assert!(
            d.clone().with_digests(&files[..2]).is_err(),
            "a table without its member"
        );
        let mut wrong = files.clone();
        wrong[1].size = 99;
        assert!(d.with_digests(&wrong).is_err(), "a member of another size");
    }
}
