//! A segment's `loadSpec`: where its files live in deep storage (S3, GCS, Azure, HDFS, local), as
//! one URL, and its rewrite by `--deep-storage-map FROM=TO` prefixes. Payloads are hostile input:
//! a rewrite changes only the bytes of the `loadSpec` value and leaves every other byte alone.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum LoadSpecError {
    #[error("{0}")]
    Bad(String),
}

/// The object a used segment needs, as a URL: `s3://bucket/key` (`s3_zip`, `s3`),
/// `gs://bucket/path` (`google`), `azure://container/blobPath` (`azure`), the `path` of `hdfs`
/// (`hdfs://...`) and `file:///path` (`local`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub url: String,
    /// The payload's `size` when it is above zero.
    pub size: Option<u64>,
}

/// The object of a segment's payload; `None` when it has no `loadSpec` lifeboat knows.
pub fn object_of(payload: &[u8]) -> Result<Option<ObjectRef>, LoadSpecError> {
    let _ = payload;
    todo!("helper B")
}

/// The deep-storage location a segment's object lives under, for the manifest: the URL up to and
/// without the datasource's folder (`s3://bucket/druid/segments`).
pub fn location_of(url: &str) -> String {
    let _ = url;
    todo!("helper B")
}

/// `--deep-storage-map FROM=TO`, all of them: the longest matching FROM wins; a FROM matches at a
/// `/` boundary only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeepStorageMap {
    pub rules: Vec<(String, String)>,
}

impl DeepStorageMap {
    /// Parses the flags' values.
    pub fn parse(values: &[String]) -> Result<DeepStorageMap, LoadSpecError> {
        let _ = values;
        todo!("helper B")
    }

    /// A URL rewritten by the map, or `None` when no rule matches.
    pub fn map_url(&self, url: &str) -> Option<String> {
        let _ = url;
        todo!("helper B")
    }

    /// The payload with its `loadSpec` rewritten, or `None` when no rule matches it.
    pub fn rewrite(&self, payload: &[u8]) -> Result<Option<Vec<u8>>, LoadSpecError> {
        let _ = payload;
        todo!("helper B")
    }
}
