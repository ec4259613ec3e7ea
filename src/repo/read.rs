//! Reading a committed backup back: its index and its archive, streamed from the location through
//! digest checks into verification or extraction. Shared by `verify` and `restore`.

use std::io::{self, Read};
use std::sync::Arc;

use super::{Manifest, Repo};
use crate::archive::index::{Index, MAX_LINE_BYTES};
use crate::archive::unpack::{self, Mode};
use crate::archive::{ArchiveError, Layout, Problem};
use crate::crypto::Identities;
use crate::progress::Progress;

use super::read_common::stream_key;
pub use super::read_common::{ReadBack, Target};

/// Streams an object of backup `id` of `expected_bytes` into `consume` on a blocking thread and
/// checks its SHA-256. Storage failures win over what the consumer saw (a cut download looks like
/// a truncated stream).
async fn stream_object<T: Send + 'static>(
    repo: &Repo,
    object: &str,
    id: &str,
    expected_bytes: u64,
    expected_sha256: &str,
    consume: impl FnOnce(&mut dyn Read) -> Result<T, ArchiveError> + Send + 'static,
) -> anyhow::Result<(T, Option<Problem>)> {
    let key = repo.key(id, object);
    stream_key(repo, &key, expected_bytes, expected_sha256, move |r| {
        consume(r).map_err(anyhow::Error::from)
    })
    .await
}

/// A backup ready to be read: its manifest (format 2, encrypted: with the sealed sections put
/// back), its index once loaded, and the identities its objects open with.
pub struct Opened {
    pub manifest: Manifest,
    index: Option<Arc<Index>>,
    keys: Option<Arc<Identities>>,
}

/// Opens a backup for a restore or a full verify. Format 1: nothing is read yet. Format 2: every
/// object is checked to exist with its size, `SHA256SUMS` against the manifest, then the index
/// (and the sealed sections) are loaded, decrypted with `keys` when the backup is encrypted: a
/// missing or wrong key fails here, before anything is written.
pub async fn open(
    repo: &Repo,
    manifest: Manifest,
    keys: Option<Arc<Identities>>,
) -> anyhow::Result<Opened> {
    if !manifest.is_format_2() {
        return Ok(Opened {
            manifest,
            index: None,
            keys,
        });
    }
    let (manifest, index) = super::read2::open(repo, &manifest, keys.clone()).await?;
    Ok(Opened {
        manifest,
        index: Some(Arc::new(index)),
        keys,
    })
}

impl Opened {
    /// The backup's index (format 1: loaded now).
    pub async fn index(&self, repo: &Repo) -> anyhow::Result<Arc<Index>> {
        match &self.index {
            Some(i) => Ok(i.clone()),
            None => Ok(Arc::new(load_index(repo, &self.manifest).await?)),
        }
    }

    /// Reads the archive (format 1's object, or format 2's objects in order) against `index`.
    pub async fn read(
        &self,
        repo: &Repo,
        index: Arc<Index>,
        layout: Layout,
        target: Target,
        progress: Arc<dyn Progress>,
    ) -> anyhow::Result<ReadBack> {
        if self.manifest.is_format_2() {
            super::read2::read_archive(
                repo,
                &self.manifest,
                self.keys.clone(),
                index,
                layout,
                target,
                progress,
            )
            .await
        } else {
            read_archive(repo, &self.manifest, index, layout, target, progress).await
        }
    }
}

/// The per-file index of a backup: inline in the manifest, or its own object (checked against its
/// digest and spooled to a temporary file).
pub async fn load_index(repo: &Repo, manifest: &Manifest) -> anyhow::Result<Index> {
    if manifest.index.location == "inline" {
        return Ok(Index::Inline(manifest.files.clone()));
    }
    let bytes = manifest.index.bytes.unwrap_or(0);
    let sha = manifest.index.sha256.clone().unwrap_or_default();
    let entries = manifest.index.entries;
    let (index, problem) = stream_object(
        repo,
        &manifest.index.location,
        &manifest.id,
        bytes,
        &sha,
        move |r| {
            let decoder = zstd::stream::read::Decoder::new(r)
                .map_err(|e| ArchiveError::Corrupt(format!("index: {e}")))?;
            // The manifest says how many entries there are, and no line is longer than
            // MAX_LINE_BYTES: a compression bomb cannot fill the disk with the spool.
            let limit = entries.saturating_mul(MAX_LINE_BYTES as u64 + 1);
            let mut spool = tempfile::tempfile().map_err(ArchiveError::Stream)?;
            let copied = io::copy(&mut decoder.take(limit + 1), &mut spool)
                .map_err(|e| ArchiveError::Corrupt(format!("index: {e}")))?;
            if copied > limit {
                return Err(ArchiveError::BadManifest(format!(
                    "the index decompresses to more than {limit} bytes, more than {entries} entries can take"
                )));
            }
            Index::from_jsonl_file(spool)
        },
    )
    .await?;
    if let Some(p) = problem {
        return Err(ArchiveError::Mismatch {
            count: 1,
            first: p.clone(),
            problems: vec![p],
        }
        .into());
    }
    if index.len() != manifest.index.entries {
        return Err(ArchiveError::BadManifest(format!(
            "the index has {} entries, the manifest says {}",
            index.len(),
            manifest.index.entries
        ))
        .into());
    }
    Ok(index)
}

/// Reads the backup's archive and checks it member by member against `index`, with the top-level
/// entries `layout` allows (the producer of the backup knows which).
pub async fn read_archive(
    repo: &Repo,
    manifest: &Manifest,
    index: Arc<Index>,
    layout: Layout,
    target: Target,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<ReadBack> {
    let a = &manifest.archive;
    progress.phase(
        match target {
            Target::Extract { .. } => "restore",
            Target::Verify { .. } => "verify",
        },
        Some(manifest.raw_bytes),
    );
    let result = stream_object(
        repo,
        &a.object,
        &manifest.id,
        a.bytes,
        &a.sha256,
        move |r| {
            let mode = match &target {
                Target::Extract { staging, owner } => Mode::Extract {
                    staging,
                    owner: *owner,
                },
                Target::Verify { max_problems } => Mode::Verify {
                    max_problems: *max_problems,
                },
            };
            unpack::unpack(r, &index, mode, layout, progress.as_ref())
        },
    )
    .await;
    let (unpacked, object_problem) = result?;
    Ok(ReadBack {
        unpacked,
        object_problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NotesOnly;
    use crate::repo::write::tests::{memory_repo, store_of, write_store};
    use crate::store::Location;
    use crate::store::StoreError;
    use crate::store::location::Access;
    use object_store::{ObjectStoreExt, PutPayload};

    async fn read_back(repo: &Repo, manifest: &Manifest, target: Target) -> ReadBack {
        let index = Arc::new(load_index(repo, manifest).await.unwrap());
        let layout = Layout::FOLDERS_ONLY;
        read_archive(repo, manifest, index, layout, target, Arc::new(NotesOnly))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_written_backup_verifies_and_extracts_with_either_index() {
        for files in [3, crate::repo::layout::INLINE_INDEX_LIMIT as usize] {
            let repo = memory_repo();
            let db = store_of(files);
            let m = write_store(&repo, db.path()).await;
            let verify = Target::Verify { max_problems: 5 };
            let read = read_back(&repo, &m, verify).await;
            assert_eq!(
                read.unpacked.problem_count, 0,
                "{:?}",
                read.unpacked.problems
            );
            assert!(read.object_problem.is_none());
            assert_eq!(read.unpacked.counts, m.counts);
            assert_eq!(read.unpacked.raw_bytes, m.raw_bytes);
            let staging = tempfile::tempdir().unwrap();
            let extract = Target::Extract {
                staging: staging.path().to_path_buf(),
                owner: None,
            };
            read_back(&repo, &m, extract).await;
            let last = format!("catalog/{:05}.sst", files - 1);
            assert_eq!(
                std::fs::read(staging.path().join("db").join(&last)).unwrap(),
                std::fs::read(db.path().join(&last)).unwrap()
            );
        }
    }

    /// What reading the archive of `m` says once its object holds `bytes` instead.
    async fn read_replaced(repo: &Repo, m: &Manifest, bytes: Vec<u8>) -> anyhow::Result<ReadBack> {
        let key = repo.key(&m.id, &m.archive.object);
        repo.loc.store.put(&key, bytes.into()).await.unwrap();
        let index = Arc::new(load_index(repo, m).await.unwrap());
        let layout = Layout::FOLDERS_ONLY;
        let verify = Target::Verify { max_problems: 5 };
        read_archive(repo, m, index, layout, verify, Arc::new(NotesOnly)).await
    }

    #[tokio::test]
    async fn an_archive_that_was_cut_or_altered_is_never_read_as_intact() {
        use crate::error::{Classify, ExitClass};
        let repo = memory_repo();
        let db = store_of(300);
        let m = write_store(&repo, db.path()).await;
        let key = repo.key(&m.id, &m.archive.object);
        let good = repo
            .loc
            .store
            .get(&key)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let cut = good[..good.len() - 1].to_vec();
        let err = read_replaced(&repo, &m, cut).await.err().expect("refused");
        assert!(
            matches!(
                err.downcast_ref::<StoreError>(),
                Some(StoreError::SizeMismatch { .. })
            ),
            "{err:#}"
        );
        let mut altered = good.to_vec();
        altered[good.len() / 2] ^= 0xff;
        match read_replaced(&repo, &m, altered).await {
            Ok(read) => assert!(
                read.object_problem.is_some() || read.unpacked.problem_count > 0,
                "an altered archive reads as intact"
            ),
            Err(e) => {
                let class = e
                    .chain()
                    .find_map(|c| c.downcast_ref::<ArchiveError>().map(|a| a.exit_class()));
                assert_eq!(class, Some(ExitClass::Integrity), "{e:#}");
            }
        }
    }

    #[tokio::test]
    async fn an_index_that_decompresses_past_its_entries_is_refused() {
        let repo = Repo::new(
            Location::open("memory://bucket/p", Access::Write).unwrap(),
            "dremio",
        )
        .unwrap();
        // Two entries cannot take 64 MiB; a forged index of zeros compresses to almost nothing.
        let bomb = zstd::encode_all(&vec![b'x'; 64 << 20][..], 19).unwrap();
        let mut manifest = crate::repo::manifest::tests::sample();
        let key = repo.key(&manifest.id, "index.jsonl.zst");
        manifest.index = crate::repo::manifest::IndexRef {
            entries: 2,
            location: "index.jsonl.zst".into(),
            bytes: Some(bomb.len() as u64),
            sha256: Some(crate::archive::digest::sha256_hex(&bomb)),
        };
        repo.loc
            .store
            .put(&key, PutPayload::from(bomb))
            .await
            .unwrap();
        let err = match load_index(&repo, &manifest).await {
            Ok(_) => panic!("a bomb is refused"),
            Err(e) => e,
        };
        assert!(
            format!("{err:#}").contains("decompresses to more than"),
            "{err:#}"
        );
    }
}
