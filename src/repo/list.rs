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
        crate::store::create::put_create(&self.loc, &key, manifest.to_json().into())
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

#[cfg(test)]
mod tests {
    use object_store::PutPayload;

    use super::*;
    use crate::repo::manifest::tests::sample;
    use crate::repo::write::tests::memory_repo;

    fn committed(id: &str, created_at: &str) -> Manifest {
        let mut m = sample();
        m.id = id.into();
        m.created_at = created_at.parse().unwrap();
        m
    }

    #[tokio::test]
    async fn lists_committed_backups_newest_first_and_names_unusable_ones() {
        let repo = memory_repo();
        assert!(matches!(
            repo.manifest("latest").await.unwrap_err().downcast_ref(),
            Some(StoreError::NoBackups { .. })
        ));
        let old = committed("20261122T013000Z-aaaa", "2026-11-22T01:30:00Z");
        let new = committed("20261123T013000Z-bbbb", "2026-11-23T01:30:00Z");
        for m in [&old, &new] {
            repo.commit(m).await.unwrap();
        }
        let junk = PutPayload::from_static(b"{ not json");
        let broken = "20261124T013000Z-cccc";
        repo.loc
            .store
            .put(&repo.key(broken, MANIFEST_OBJECT), junk.clone())
            .await
            .unwrap();
        // Neither a backup id nor a committed backup: not listed at all.
        let not_an_id = repo.loc.key(&["dremio", "notes", MANIFEST_OBJECT]);
        repo.loc.store.put(&not_an_id, junk).await.unwrap();
        let uncommitted = repo.key("20261125T013000Z-dddd", "data.tar.zst");
        repo.loc
            .store
            .put(&uncommitted, PutPayload::from_static(b"x"))
            .await
            .unwrap();

        let (good, unusable) = repo.list().await.unwrap();
        let ids: Vec<&str> = good.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, [new.id.as_str(), old.id.as_str()]);
        assert_eq!(unusable.len(), 1);
        assert_eq!(unusable[0].id, broken);
        assert!(unusable[0].why.contains("not a lifeboat manifest"));
        assert_eq!(repo.manifest("latest").await.unwrap().id, new.id);
        assert!(repo.has(&old.id).await.unwrap());
        assert!(!repo.has(broken).await.unwrap());
        assert!(matches!(
            repo.manifest("20261125T013000Z-dddd")
                .await
                .unwrap_err()
                .downcast_ref(),
            Some(StoreError::NoSuchBackup { .. })
        ));
    }

    #[tokio::test]
    async fn a_commit_never_overwrites_a_manifest() {
        let repo = memory_repo();
        let m = sample();
        repo.commit(&m).await.unwrap();
        let mut other = sample();
        other.host = "another host".into();
        let err = repo.commit(&other).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Other { error, .. } if matches!(**error, object_store::Error::AlreadyExists { .. })),
            "{err}"
        );
        assert_eq!(repo.manifest(&m.id).await.unwrap().host, m.host);
    }
}
