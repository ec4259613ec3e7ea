//! What the readers of both formats share: one object streamed through its digest check, and
//! what reading an archive is asked to do and found.

use std::io::{self, Read};
use std::path::PathBuf;

use object_store::path::Path as ObjPath;

use super::Repo;
use crate::archive::digest::HashingReader;
use crate::archive::unpack::Unpacked;
use crate::archive::{ArchiveError, Problem};
use crate::store::{StoreError, download};

/// Ranged GETs of 8 MiB, 4 in flight: enough to fill a link without much memory.
const RANGE_SIZE: u64 = 8 * 1024 * 1024;
const RANGES_IN_FLIGHT: usize = 4;

/// Streams the object at `key` of `expected_bytes` into `consume` on a blocking thread and checks
/// its SHA-256. Storage failures win over what the consumer saw (a cut download looks like a
/// truncated stream).
pub(crate) async fn stream_key<T: Send + 'static>(
    repo: &Repo,
    key: &ObjPath,
    expected_bytes: u64,
    expected_sha256: &str,
    consume: impl FnOnce(&mut dyn Read) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<(T, Option<Problem>)> {
    let found = repo.object_size(key).await?;
    if found != expected_bytes {
        return Err(StoreError::SizeMismatch {
            key: key.to_string(),
            expected: expected_bytes,
            found,
        }
        .into());
    }
    let (reader, task) = download::start(
        &repo.loc,
        key,
        found,
        RANGE_SIZE,
        RANGES_IN_FLIGHT,
        repo.cancel.clone(),
    );
    let consumer = tokio::task::spawn_blocking(move || {
        let mut hashed = HashingReader::new(reader);
        let out = consume(&mut hashed);
        // Read what the consumer left (zstd padding) so the digest covers the whole object; after a
        // failure there is nothing to gain from downloading the rest.
        let drained = match &out {
            Ok(_) => io::copy(&mut hashed, &mut io::sink()),
            Err(_) => Ok(0),
        };
        let (_, sha256, bytes) = hashed.finish();
        (out, drained, sha256, bytes)
    });
    let (out, drained, sha256, bytes) = consumer.await?;
    task.await??;
    let value = out?;
    drained.map_err(ArchiveError::Stream)?;
    let problem = if bytes != expected_bytes {
        Some(Problem {
            path: key.to_string(),
            expected: format!("{expected_bytes} bytes"),
            found: format!("{bytes} bytes"),
        })
    } else if sha256 != expected_sha256 {
        Some(Problem {
            path: key.to_string(),
            expected: format!("sha256 {expected_sha256}"),
            found: format!("sha256 {sha256}"),
        })
    } else {
        None
    };
    Ok((value, problem))
}

/// What reading an archive found: the unpack result plus a problem with the archive object itself.
pub struct ReadBack {
    pub unpacked: Unpacked,
    pub object_problem: Option<Problem>,
}

impl ReadBack {
    /// An extraction's verdict: a problem with the archive object, else the first with a member,
    /// as one `Mismatch` (an extraction stops at its first problem).
    pub fn extracted(&self) -> Result<(), ArchiveError> {
        if let Some(p) = &self.object_problem {
            return Err(ArchiveError::Mismatch {
                count: 1,
                first: p.clone(),
                problems: vec![p.clone()],
            });
        }
        if let Some(first) = self.unpacked.problems.first() {
            return Err(ArchiveError::Mismatch {
                count: self.unpacked.problem_count,
                first: first.clone(),
                problems: self.unpacked.problems.clone(),
            });
        }
        Ok(())
    }
}

/// What reading an archive does with its members.
#[derive(Debug, Clone)]
pub enum Target {
    /// Checks them, listing at most this many problems (all are counted).
    Verify { max_problems: usize },
    /// Extracts them into this folder, stopping at the first problem, giving what is written to
    /// `owner` (else the caller's).
    Extract {
        staging: PathBuf,
        owner: Option<crate::fsutil::Owner>,
    },
}
