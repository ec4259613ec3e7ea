//! Which backups a repository holds: listing and reading manifests, and the commit (the manifest,
//! written last and create-only) that makes a backup exist.

use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;

use super::layout::{MANIFEST_OBJECT, time_of_id};
use super::{Manifest, Repo};
use crate::archive::ArchiveError;
use crate::store::{StoreError, classify_error};

/// A folder that looks like a backup but whose manifest cannot be used.
#[derive(Debug, Clone)]
pub struct Broken {
    pub id: String,
    pub why: String,
}

impl Repo {
    /// Committed backups, newest first, and the folders whose manifest is unusable.
    /// Manifests are read concurrently; their inline file lists are dropped to keep memory small.
    pub async fn list(&self) -> Result<(Vec<Manifest>, Vec<Broken>), StoreError> {
        let dir = self.cluster_dir();
        let listing = self
            .loc
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|e| classify_error(&self.loc, "list", dir.as_ref(), e))?;
        let ids: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .filter(|id| time_of_id(id).is_some())
            .collect();
        let results: Vec<(String, Result<Option<Manifest>, ManifestError>)> =
            futures::stream::iter(ids)
                .map(|id| async move {
                    let m = self.read_manifest(&id).await;
                    (id, m)
                })
                .buffer_unordered(16)
                .collect()
                .await;
        let mut good = Vec::new();
        let mut broken = Vec::new();
        for (id, result) in results {
            match result {
                Ok(Some(mut m)) => {
                    m.files = Vec::new();
                    good.push(m);
                }
                Ok(None) => {}
                Err(ManifestError::Store(e)) => return Err(e),
                Err(ManifestError::Invalid(e)) => broken.push(Broken {
                    id,
                    why: e.to_string(),
                }),
            }
        }
        // Ids sort by time only to the second: two backups in one second are ordered by their times.
        good.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        broken.sort_by(|a, b| b.id.cmp(&a.id));
        Ok((good, broken))
    }

    /// The manifest of `id`, or None when the backup was never committed.
    pub(crate) async fn read_manifest(&self, id: &str) -> Result<Option<Manifest>, ManifestError> {
        let key = self.key(id, MANIFEST_OBJECT);
        let bytes = match self.loc.store.get(&key).await {
            Ok(r) => {
                // Sized before it is read: a forged giant "manifest" is refused, not downloaded.
                Manifest::check_size(r.meta.size).map_err(ManifestError::Invalid)?;
                r.bytes().await.map_err(|e| {
                    ManifestError::Store(classify_error(&self.loc, "read", key.as_ref(), e))
                })?
            }
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => {
                return Err(ManifestError::Store(classify_error(
                    &self.loc,
                    "read",
                    key.as_ref(),
                    e,
                )));
            }
        };
        Manifest::from_json(&bytes, Some(id))
            .map(Some)
            .map_err(ManifestError::Invalid)
    }

    /// Resolves `latest` or an id to a committed backup's full manifest.
    pub async fn manifest(&self, selector: &str) -> anyhow::Result<Manifest> {
        let id = if selector == "latest" {
            let (good, _) = self.list().await?;
            match good.first() {
                Some(m) => m.id.clone(),
                None => {
                    return Err(StoreError::NoBackups {
                        url: self.loc.url().to_string(),
                        cluster: self.cluster.clone(),
                    }
                    .into());
                }
            }
        } else {
            selector.to_string()
        };
        match self.read_manifest(&id).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(StoreError::NoSuchBackup {
                url: self.loc.url().to_string(),
                id,
            }
            .into()),
            Err(ManifestError::Store(e)) => Err(e.into()),
            Err(ManifestError::Invalid(e)) => Err(e.into()),
        }
    }

    /// Whether backup `id` is committed here with a manifest that parses.
    pub async fn has(&self, id: &str) -> Result<bool, StoreError> {
        match self.read_manifest(id).await {
            Ok(found) => Ok(found.is_some()),
            Err(ManifestError::Invalid(_)) => Ok(false),
            Err(ManifestError::Store(e)) => Err(e),
        }
    }

    /// Commits a backup by writing its manifest, refusing to overwrite one.
    pub async fn commit(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let key = self.key(&manifest.id, MANIFEST_OBJECT);
        self.loc.prepare_parent(&key)?;
        crate::store::retries::put_create(&self.loc, &key, manifest.to_json().into())
            .await
            .map_err(|e| classify_error(&self.loc, "commit", key.as_ref(), e))?;
        self.loc.tighten(&key)
    }

    /// The size of an object, or `MissingObject`.
    pub async fn object_size(&self, key: &ObjPath) -> Result<u64, StoreError> {
        match self.loc.store.head(key).await {
            Ok(meta) => Ok(meta.size),
            Err(e) => Err(classify_error(&self.loc, "head", key.as_ref(), e)),
        }
    }
}

pub(crate) enum ManifestError {
    Store(StoreError),
    Invalid(ArchiveError),
}
