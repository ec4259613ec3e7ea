//! Deep-storage consistency: does every used segment's object exist, with its recorded size, and
//! which objects under the deep-storage roots does no segment reference? Objects are listed (one
//! request per thousand) and looked up with bounded concurrency through `object_store`.
//!
//! How: the segments are streamed once; each object's key is kept as a 16-byte hash (with the
//! size the listing finds for it: 24 bytes per object, plus the hash table's slack), and each used
//! segment's id and URL go to an anonymous spool file. Each root is then listed: an object whose
//! hash no segment has is an orphan, counted (and sampled by name) on the spot, the others get
//! their size. The spool is read back: a used segment whose object is under a listed root and
//! was not listed is missing; one outside every listed root is looked up with a HEAD request,
//! `concurrency` at a time.
//!
//! Sizes: Druid records a segment's bytes BEFORE zipping (`CompressionUtils.zip` returns the
//! files' total), so an `index.zip` object of a healthy segment is smaller than its payload's
//! `size`. A `.zip` object is of the wrong size when it is empty or larger than any zip of `size`
//! bytes can be (`size` + 1/64 + 64 KiB of zip overhead); any other object must match exactly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use futures::stream::BoxStream;
use futures::{StreamExt, TryFutureExt, TryStreamExt};
use mysql_async::prelude::Queryable;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;
use sha2::{Digest, Sha256};

use crate::druid::loadspec::{self, DeepStorageMap, ObjectRef, split_url};
use crate::druid::metastore::csv::{CsvReader, Record};
use crate::druid::metastore::dump::Column;
use crate::druid::metastore::{Db, MetaError};
use crate::store::{Location, StoreError};

/// At most this many names of each kind are kept for the report.
pub const SAMPLE: usize = 20;

/// The most stores (buckets, containers) the segments may point at.
pub const MAX_STORES: usize = 256;

/// The longest segment id kept for a report (Druid's column is 255 characters).
const MAX_ID_BYTES: usize = 1024;

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Consistency {
    /// Used segments whose object was looked for.
    pub checked: u64,
    pub missing: u64,
    pub missing_sample: Vec<String>,
    /// Objects found with another size than the segment records.
    pub wrong_size: u64,
    pub wrong_size_sample: Vec<String>,
    /// Objects under the roots that no segment (used or not) references; `None` when no root was
    /// listed.
    pub orphaned: Option<u64>,
    pub orphaned_sample: Vec<String>,
    /// Segments whose loadSpec lifeboat cannot check (HDFS, unknown types).
    pub unchecked: u64,
    /// The roots listed for orphans (`s3://bucket/prefix`).
    pub roots: Vec<String>,
}

impl Consistency {
    /// No used segment's object is missing or of the wrong size.
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.wrong_size == 0
    }

    /// One line for people: `1,204 used segments checked: 2 missing, 0 of the wrong size, ...`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} used segment(s) checked: {} missing, {} of the wrong size",
            self.checked, self.missing, self.wrong_size
        );
        match self.orphaned {
            Some(n) => s.push_str(&format!(", {n} orphaned object(s) under the roots")),
            None => s.push_str(", no root listed for orphans"),
        }
        if self.unchecked > 0 {
            s.push_str(&format!(
                ", {} not checkable (HDFS or unknown loadSpec)",
                self.unchecked
            ));
        }
        s
    }

    /// The samples as indented lines (`missing: s3://...`), for a human report.
    pub fn sample_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (what, sample, n) in [
            ("missing", &self.missing_sample, self.missing),
            ("wrong size", &self.wrong_size_sample, self.wrong_size),
            (
                "orphaned",
                &self.orphaned_sample,
                self.orphaned.unwrap_or(0),
            ),
        ] {
            for name in sample {
                lines.push(format!("{what}: {name}"));
            }
            if n > sample.len() as u64 {
                lines.push(format!("{what}: ... and {} more", n - sample.len() as u64));
            }
        }
        lines
    }
}

/// A segment as the check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub id: String,
    pub used: bool,
    /// An empty `url` stands for a payload without a loadSpec lifeboat knows (counted unchecked
    /// when the segment is used).
    pub object: ObjectRef,
}

/// Opens the deep-storage location a root URL names (`s3://bucket`, `s3://bucket/prefix`): the
/// command layer's `Ctx::open`, so credentials come from the environment or the config file.
pub type Opener =
    std::sync::Arc<dyn Fn(&str) -> anyhow::Result<crate::store::location::Location> + Send + Sync>;

/// How the check reaches deep storage.
#[derive(Clone)]
pub struct CheckOptions {
    pub open: Opener,
    /// Roots listed for orphans (`--deep-storage URL`); empty: the segments' own locations.
    pub roots: Vec<String>,
    /// Requests in flight.
    pub concurrency: usize,
}

/// The sample of a kind: the SAMPLE smallest names.
#[derive(Default)]
struct Sampler(BTreeSet<String>);

impl Sampler {
    fn add(&mut self, name: impl FnOnce() -> String) {
        let name = name();
        if self.0.len() < SAMPLE || self.0.last().is_some_and(|l| *l > name) {
            self.0.insert(name);
            if self.0.len() > SAMPLE {
                self.0.pop_last();
            }
        }
    }

    fn into_vec(self) -> Vec<String> {
        self.0.into_iter().collect()
    }
}

type Hash = [u8; 16];

/// The value of an object that no listing has found.
const NOT_LISTED: u64 = u64::MAX;

fn hash(root: &str, key: &str) -> Hash {
    let mut h = Sha256::new();
    h.update(root.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The longest common prefix of two folders, at `/` boundaries.
fn common_folder<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = 0;
    for ((i, x), y) in a
        .split('/')
        .scan(0, |pos, part| {
            let start = *pos;
            *pos += part.len() + 1;
            Some((start, part))
        })
        .zip(b.split('/'))
    {
        if x != y {
            break;
        }
        end = i + x.len();
    }
    &a[..end]
}

/// Whether the size an object has fits the size its payload records (see the module's notes).
fn size_fits(key: &str, recorded: Option<u64>, found: u64) -> bool {
    match recorded {
        None => true,
        Some(s) if key.ends_with(".zip") => {
            found > 0 && found <= s.saturating_add(s / 64).saturating_add(64 << 10)
        }
        Some(s) => found == s,
    }
}

/// A used segment in the spool.
struct Spooled {
    id: String,
    url: String,
    size: Option<u64>,
}

fn spool_write(w: &mut impl Write, id: &str, url: &str, size: Option<u64>) -> io::Result<()> {
    let mut cut = id.len().min(MAX_ID_BYTES);
    while !id.is_char_boundary(cut) {
        cut -= 1;
    }
    let id = &id[..cut];
    w.write_all(&size.unwrap_or(0).to_le_bytes())?;
    w.write_all(&(id.len() as u32).to_le_bytes())?;
    w.write_all(id.as_bytes())?;
    w.write_all(&(url.len() as u32).to_le_bytes())?;
    w.write_all(url.as_bytes())
}

fn spool_read(r: &mut impl Read) -> io::Result<Option<Spooled>> {
    let mut size = [0u8; 8];
    match r.read_exact(&mut size) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    let mut text = || -> io::Result<String> {
        let mut len = [0u8; 4];
        r.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > 1 << 20 {
            return Err(io::Error::other("the check's spool file is damaged"));
        }
        let mut buf = vec![0; len];
        r.read_exact(&mut buf)?;
        String::from_utf8(buf).map_err(|_| io::Error::other("the check's spool file is damaged"))
    };
    let id = text()?;
    let url = text()?;
    let size = u64::from_le_bytes(size);
    Ok(Some(Spooled {
        id,
        url,
        size: (size > 0).then_some(size),
    }))
}

/// A root as `(store root, prefix)`: `s3://b/druid/segments` -> (`s3://b`, `druid/segments`).
fn parse_root(url: &str) -> Result<(String, String), StoreError> {
    let mut u = match url.strip_prefix("az://") {
        Some(rest) => format!("azure://{rest}"),
        None => url.to_string(),
    };
    while u.ends_with('/') && !u.ends_with("://") && u != "file:///" {
        u.pop();
    }
    if let Some((root, key)) = split_url(&u) {
        return Ok((root.to_string(), key.to_string()));
    }
    let bare = ["s3://", "gs://", "azure://"].iter().any(|s| {
        u.strip_prefix(s)
            .is_some_and(|b| !b.is_empty() && !b.contains('/'))
    });
    if bare {
        return Ok((u, String::new()));
    }
    if u == "file:///" {
        return Ok(("file://".into(), String::new()));
    }
    Err(StoreError::BadUrl {
        url: url.to_string(),
        why: "a deep-storage root is s3://bucket[/prefix], gs://bucket[/prefix], az://container[/prefix] or file:///path".into(),
    })
}

/// The stores opened so far, by root URL.
struct Stores<'a> {
    open: &'a Opener,
    opened: HashMap<String, Location>,
}

impl Stores<'_> {
    fn get(&mut self, root: &str) -> anyhow::Result<Location> {
        if let Some(loc) = self.opened.get(root) {
            return Ok(loc.clone());
        }
        // `file://` is the host's root folder.
        let url = if root == "file://" { "file:///" } else { root };
        let loc =
            (self.open)(url).map_err(|e| e.context(format!("cannot open deep storage {url}")))?;
        self.opened.insert(root.to_string(), loc.clone());
        Ok(loc)
    }
}

/// The object_store path of `key` in a location (under its own prefix, if any).
fn path_in(loc: &Location, key: &str) -> Option<ObjPath> {
    let full = if loc.prefix.as_ref().is_empty() {
        key.to_string()
    } else {
        format!("{}/{key}", loc.prefix.as_ref())
    };
    ObjPath::parse(&full).ok().filter(|p| p.as_ref() == full)
}

/// What became of one used segment.
enum Verdict {
    Present,
    Missing(String),
    WrongSize(String),
}

fn judge(s: &Spooled, key: &str, found: Option<u64>) -> Verdict {
    match found {
        None => Verdict::Missing(format!("{} (segment {})", s.url, s.id)),
        Some(n) if !size_fits(key, s.size, n) => Verdict::WrongSize(format!(
            "{} (segment {}): {n} bytes, the payload's size is {}",
            s.url,
            s.id,
            s.size.unwrap_or(0)
        )),
        Some(_) => Verdict::Present,
    }
}

/// Checks `segments` (streamed; memory grows by about 24 bytes per segment) against deep storage.
pub async fn check(
    segments: impl futures::Stream<Item = anyhow::Result<Segment>> + Send,
    options: &CheckOptions,
    cancel: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Consistency> {
    let mut out = Consistency::default();
    let mut refs: HashMap<Hash, u64> = HashMap::new();
    // Each store's common folder of its segments' locations.
    let mut folders: BTreeMap<String, String> = BTreeMap::new();
    let mut spool = BufWriter::new(tempfile::tempfile()?);
    let segments = std::pin::pin!(segments);
    let mut segments = segments;
    while let Some(seg) = segments.next().await {
        if cancel.is_cancelled() {
            return Err(StoreError::Interrupted.into());
        }
        let seg = seg?;
        let Some((root, key)) = split_url(&seg.object.url) else {
            if seg.used {
                out.unchecked += 1;
            }
            continue;
        };
        refs.entry(hash(root, key)).or_insert(NOT_LISTED);
        let location = loadspec::location_of(&seg.object.url);
        let folder = location
            .strip_prefix(root)
            .unwrap_or("")
            .trim_start_matches('/');
        if let Some(common) = folders.get_mut(root) {
            let keep = common_folder(common, folder).len();
            common.truncate(keep);
        } else if folders.len() == MAX_STORES {
            return Err(anyhow::anyhow!(
                "the segments point at more than {MAX_STORES} buckets or containers; lifeboat checks at most that many"
            ));
        } else {
            folders.insert(root.to_string(), folder.to_string());
        }
        if seg.used {
            out.checked += 1;
            spool_write(&mut spool, &seg.id, &seg.object.url, seg.object.size)?;
        }
    }
    let mut spool = spool.into_inner().map_err(|e| e.into_error())?;
    spool.rewind()?;

    // The roots to list, none inside another.
    let mut roots: Vec<(String, String)> = if options.roots.is_empty() {
        folders
            .into_iter()
            // Never the whole file system of this host.
            .filter(|(root, folder)| !(root == "file://" && folder.is_empty()))
            .collect()
    } else {
        options
            .roots
            .iter()
            .map(|r| parse_root(r))
            .collect::<Result<_, _>>()?
    };
    roots.sort();
    roots.dedup();
    let inside = |(r, p): &(String, String), (r2, p2): &(String, String)| {
        r == r2 && (p2.is_empty() || p.starts_with(&format!("{p2}/"))) && p != p2
    };
    let all = roots.clone();
    roots.retain(|a| !all.iter().any(|b| inside(a, b)));

    let mut stores = Stores {
        open: &options.open,
        opened: HashMap::new(),
    };
    let mut orphans = Sampler::default();
    let mut listed: Vec<(String, String)> = Vec::new();
    let mut orphaned = 0u64;
    for (root, prefix) in &roots {
        let loc = stores.get(root)?;
        let path = if prefix.is_empty() {
            Some(loc.prefix.clone())
        } else {
            path_in(&loc, prefix)
        };
        let Some(path) = path else {
            if options.roots.is_empty() {
                continue;
            }
            return Err(StoreError::BadUrl {
                url: format!("{root}/{prefix}"),
                why: "object_store cannot name this prefix (an empty, `.` or `..` folder)".into(),
            }
            .into());
        };
        let base = loc.prefix.as_ref().to_string();
        let mut listing = loc.store.list(Some(&path));
        while let Some(meta) = listing.next().await {
            if cancel.is_cancelled() {
                return Err(StoreError::Interrupted.into());
            }
            let meta =
                meta.map_err(|e| crate::store::classify_error(&loc, "list", path.as_ref(), e))?;
            let full = meta.location.as_ref();
            let key = if base.is_empty() {
                full
            } else {
                full.strip_prefix(&base)
                    .and_then(|k| k.strip_prefix('/'))
                    .unwrap_or(full)
            };
            if let Some(size) = refs.get_mut(&hash(root, key)) {
                *size = meta.size;
                continue;
            }
            // Old Druid wrote a descriptor.json beside each index.zip.
            let descriptor = key
                .strip_suffix("descriptor.json")
                .filter(|d| d.is_empty() || d.ends_with('/'))
                .is_some_and(|dir| refs.contains_key(&hash(root, &format!("{dir}index.zip"))));
            if !descriptor {
                orphaned += 1;
                orphans.add(|| format!("{root}/{key}"));
            }
        }
        listed.push((root.clone(), prefix.clone()));
        out.roots.push(if prefix.is_empty() {
            root.clone()
        } else {
            format!("{root}/{prefix}")
        });
    }
    if !roots.is_empty() {
        out.orphaned = Some(orphaned);
        out.orphaned_sample = orphans.into_vec();
    }

    // The used segments, from the spool.
    let is_listed = |root: &str, key: &str| {
        listed.iter().any(|(r, p)| {
            r == root
                && (p.is_empty()
                    || key
                        .strip_prefix(p.as_str())
                        .is_some_and(|k| k.starts_with('/')))
        })
    };
    let mut reader = BufReader::new(spool);
    let records = std::iter::from_fn(move || spool_read(&mut reader).transpose());
    let refs = &refs;
    let stores = &mut stores;
    let lookups = futures::stream::iter(records)
        .map(|rec| {
            let prepared = rec.map_err(anyhow::Error::from).and_then(|s| {
                let (root, key) = split_url(&s.url)
                    .map(|(r, k)| (r.to_string(), k.to_string()))
                    .ok_or_else(|| anyhow::anyhow!("the check's spool file is damaged"))?;
                let found = refs
                    .get(&hash(&root, &key))
                    .copied()
                    .filter(|n| *n != NOT_LISTED);
                if found.is_some() || is_listed(&root, &key) {
                    return Ok((s, key, found, None));
                }
                let loc = stores.get(&root)?;
                Ok((s, key, None, Some(loc)))
            });
            async move {
                let (s, key, found, head) = prepared?;
                let Some(loc) = head else {
                    return Ok(judge(&s, &key, found));
                };
                let Some(path) = path_in(&loc, &key) else {
                    // object_store cannot name it (an empty or `..` folder): it cannot be read either.
                    return Ok(judge(&s, &key, None));
                };
                match loc.store.head(&path).await {
                    Ok(meta) => Ok(judge(&s, &key, Some(meta.size))),
                    Err(object_store::Error::NotFound { .. }) => Ok(judge(&s, &key, None)),
                    Err(e) => Err(anyhow::Error::from(crate::store::classify_error(
                        &loc,
                        "head",
                        path.as_ref(),
                        e,
                    ))),
                }
            }
        })
        .buffer_unordered(options.concurrency.max(1));
    let mut lookups = std::pin::pin!(lookups);
    let (mut missing, mut wrong) = (Sampler::default(), Sampler::default());
    while let Some(verdict) = lookups.next().await {
        if cancel.is_cancelled() {
            return Err(StoreError::Interrupted.into());
        }
        match verdict? {
            Verdict::Present => {}
            Verdict::Missing(name) => {
                out.missing += 1;
                missing.add(|| name);
            }
            Verdict::WrongSize(name) => {
                out.wrong_size += 1;
                wrong.add(|| name);
            }
        }
    }
    out.missing_sample = missing.into_vec();
    out.wrong_size_sample = wrong.into_vec();
    Ok(out)
}

/// The segments of a dumped `druid_segments.csv` (the backup's dialect, read by
/// [`CsvReader`](crate::druid::metastore::csv::CsvReader)), each object moved by `map` so that a
/// restore checks the NEW locations. `columns` are the file's columns in order (the manifest's);
/// `id`, `used` and `payload` are found by name, without regard to case. Read on a blocking thread
/// into a small channel: memory stays bounded whatever the file's size. A payload lifeboat cannot
/// read is a segment without a known object (counted unchecked); a damaged file is an error.
pub fn segments_of_csv(
    path: &Path,
    columns: &[Column],
    map: &DeepStorageMap,
) -> anyhow::Result<BoxStream<'static, anyhow::Result<Segment>>> {
    let find = |name: &str| {
        columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                MetaError::Corrupt(format!(
                    "{}: the backup's druid_segments has no column {name}",
                    path.display()
                ))
            })
    };
    let (id, used, payload) = (find("id")?, find("used")?, find("payload")?);
    let file = std::fs::File::open(path)
        .map_err(|e| MetaError::Corrupt(format!("cannot open {}: {e}", path.display())))?;
    let shown = path.display().to_string();
    let map = map.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<anyhow::Result<Segment>>(256);
    tokio::task::spawn_blocking(move || {
        // The header line is read (and skipped) by the first next_record.
        let mut reader = CsvReader::new(BufReader::new(file));
        loop {
            let item = match reader.next_record() {
                Ok(None) => return,
                Ok(Some(record)) => segment_of_record(&record, (id, used, payload), &map),
                Err(e) => Err(e),
            };
            let item = item
                .map_err(|why| anyhow::Error::from(MetaError::Corrupt(format!("{shown}: {why}"))));
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    Ok(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed())
}

fn segment_of_record(
    record: &Record,
    (id, used, payload): (usize, usize, usize),
    map: &DeepStorageMap,
) -> Result<Segment, String> {
    let n = record.fields.len();
    let field = |i: usize| record.fields.get(i).and_then(|f| f.as_deref());
    let id_text = field(id)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .ok_or_else(|| format!("a segment without an id ({n} fields)"))?;
    let used = field(used)
        .and_then(used_of)
        .ok_or_else(|| format!("segment {id_text}: its `used` is not 1 or 0"))?;
    let payload = record
        .bytes(payload)
        .map_err(|e| format!("segment {id_text}: {e}"))?
        .ok_or_else(|| format!("segment {id_text} has no payload"))?;
    Ok(segment(id_text, used, &payload, map))
}

/// The live `druid_segments` table's segments, streamed (`SELECT id, used, payload`), for doctor.
pub fn segments_of_db(db: &mut Db) -> BoxStream<'_, anyhow::Result<Segment>> {
    const SQL: &str = "SELECT id, used, payload FROM druid_segments";
    let none = DeepStorageMap::default();
    match db {
        Db::Pg(client) => async move {
            let rows = client
                .query_raw(SQL, std::iter::empty::<i32>())
                .await
                .map_err(|e| db_failed(crate::error::chain(&e)))?;
            Ok::<_, anyhow::Error>(rows.map_err(|e| db_failed(crate::error::chain(&e))))
        }
        .try_flatten_stream()
        .map(move |row| {
            let row = row?;
            let id: String = row.try_get(0).map_err(|e| db_failed(e.to_string()))?;
            let used: bool = row.try_get(1).map_err(|e| db_failed(e.to_string()))?;
            let payload: Vec<u8> = row.try_get(2).map_err(|e| db_failed(e.to_string()))?;
            Ok(segment(id, used, &payload, &none))
        })
        .boxed(),
        Db::My(conn) => async move {
            let rows = conn
                .query_stream::<mysql_async::Row, _>(SQL)
                .await
                .map_err(|e| db_failed(e.to_string()))?;
            Ok::<_, anyhow::Error>(rows.map_err(|e| db_failed(e.to_string())))
        }
        .try_flatten_stream()
        .map(move |row| {
            let mut row = row?;
            let mut take = |i: usize| -> anyhow::Result<Vec<u8>> {
                match row
                    .take_opt::<mysql_async::Value, usize>(i)
                    .and_then(Result::ok)
                {
                    Some(mysql_async::Value::Bytes(b)) => Ok(b),
                    Some(mysql_async::Value::Int(n)) => Ok(n.to_string().into_bytes()),
                    Some(mysql_async::Value::UInt(n)) => Ok(n.to_string().into_bytes()),
                    other => Err(db_failed(format!("column {}: unexpected {other:?}", i + 1))),
                }
            };
            let id = String::from_utf8_lossy(&take(0)?).into_owned();
            let used = used_of(&take(1)?)
                .ok_or_else(|| db_failed("a `used` value that is not a boolean".into()))?;
            let payload = take(2)?;
            Ok(segment(id, used, &payload, &none))
        })
        .boxed(),
    }
}

fn db_failed(why: String) -> anyhow::Error {
    MetaError::Query {
        what: "reading druid_segments".into(),
        why,
    }
    .into()
}

/// A segment of a row: its payload's object (rewritten by `map` when a rule matches); a payload
/// lifeboat cannot read is a segment without a known object.
fn segment(id: String, used: bool, payload: &[u8], map: &DeepStorageMap) -> Segment {
    let object = loadspec::object_of(payload).ok().flatten().map(|mut o| {
        if let Some(url) = map.map_url(&o.url) {
            o.url = url;
        }
        o
    });
    Segment {
        id,
        used,
        object: object.unwrap_or(ObjectRef {
            url: String::new(),
            size: None,
        }),
    }
}

/// Reads a `used` column's text: `1`/`0` in the dump's dialect, `t`/`true` as PostgreSQL writes.
fn used_of(text: &[u8]) -> Option<bool> {
    match text {
        b"1" | b"t" | b"true" | b"TRUE" | b"T" => Some(true),
        b"0" | b"f" | b"false" | b"FALSE" | b"F" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn common_folders_stop_at_slashes() {
        assert_eq!(common_folder("a/b/c", "a/b/d"), "a/b");
        assert_eq!(common_folder("a/bc", "a/bd"), "a");
        assert_eq!(common_folder("a/b", "a/b"), "a/b");
        assert_eq!(common_folder("a/b", "a/b/c"), "a/b");
        assert_eq!(common_folder("x", "y"), "");
        assert_eq!(common_folder("", "y"), "");
    }

    #[test]
    fn zip_sizes_are_bounds_other_sizes_exact() {
        assert!(size_fits("a/index.zip", Some(1000), 400));
        assert!(size_fits("a/index.zip", Some(1000), 1000));
        assert!(!size_fits("a/index.zip", Some(1000), 0));
        assert!(!size_fits(
            "a/index.zip",
            Some(1000),
            1000 + 15 + (64 << 10) + 1
        ));
        assert!(size_fits("a/index.zip", None, 0));
        assert!(size_fits("a/x.bin", Some(7), 7));
        assert!(!size_fits("a/x.bin", Some(7), 6));
    }

    #[test]
    fn samples_keep_the_smallest_names() {
        let mut s = Sampler::default();
        for i in (0..100).rev() {
            s.add(|| format!("n{i:03}"));
        }
        let v = s.into_vec();
        assert_eq!(v.len(), SAMPLE);
        assert_eq!(v[0], "n000");
        assert_eq!(v[SAMPLE - 1], format!("n{:03}", SAMPLE - 1));
    }

    #[test]
    fn roots_parse_to_store_and_prefix() {
        let r = |u: &str| parse_root(u).unwrap();
        assert_eq!(
            r("s3://b/druid/segments/"),
            ("s3://b".into(), "druid/segments".into())
        );
        assert_eq!(r("s3://b"), ("s3://b".into(), "".into()));
        assert_eq!(r("s3://b/"), ("s3://b".into(), "".into()));
        assert_eq!(r("az://c/p"), ("azure://c".into(), "p".into()));
        assert_eq!(
            r("file:///var/druid"),
            ("file://".into(), "var/druid".into())
        );
        assert!(parse_root("hdfs://nn/x").is_err());
        assert!(parse_root("/var/druid").is_err());
    }

    #[test]
    fn rows_become_segments_with_the_map_applied() {
        let map = DeepStorageMap::parse(&["s3://a/p=s3://b/q".into()]).unwrap();
        let p = br#"{"loadSpec":{"type":"s3_zip","bucket":"a","key":"p/x/index.zip"},"size":9}"#;
        let s = segment("id1".into(), true, p, &map);
        assert_eq!(s.object.url, "s3://b/q/x/index.zip");
        assert_eq!(s.object.size, Some(9));
        assert_eq!(segment("x".into(), true, b"garbage", &map).object.url, "");
        assert_eq!(used_of(b"1"), Some(true));
        assert_eq!(used_of(b"f"), Some(false));
        assert_eq!(used_of(b"yes"), None);
    }

    fn seg(id: &str, used: bool, url: &str, size: Option<u64>) -> anyhow::Result<Segment> {
        Ok(Segment {
            id: id.into(),
            used,
            object: ObjectRef {
                url: url.into(),
                size,
            },
        })
    }

    /// memory:// stores, one per root, kept so that the check sees what the test put there.
    fn memory_opener() -> (Opener, Arc<std::sync::Mutex<HashMap<String, Location>>>) {
        let stores: Arc<std::sync::Mutex<HashMap<String, Location>>> = Arc::default();
        let s = stores.clone();
        let open: Opener = Arc::new(move |url: &str| {
            let mut map = s.lock().unwrap();
            let loc = map.entry(url.to_string()).or_insert_with(|| {
                Location::open("memory://x", crate::store::location::Access::Read).unwrap()
            });
            Ok(loc.clone())
        });
        (open, stores)
    }

    async fn put(loc: &Location, key: &str, len: usize) {
        loc.store
            .put(&ObjPath::parse(key).unwrap(), vec![7u8; len].into())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn finds_missing_wrong_sized_and_orphaned_objects() {
        let (open, stores) = memory_opener();
        let loc = open("s3://b").unwrap();
        let iv = "2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z";
        let key = |ds: &str, n: u32| format!("druid/seg/{ds}/{iv}/v1/{n}/index.zip");
        for n in 0..3 {
            put(&loc, &key("wiki", n), 100).await;
        }
        put(&loc, &key("wiki", 3), 0).await; // an empty zip: wrong size
        put(&loc, &key("wiki", 9), 1).await; // referenced by an unused segment
        put(&loc, &key("gone", 0), 100).await; // an orphan
        put(&loc, "druid/seg/wiki/x/descriptor.json", 5).await; // an orphan too
        put(&loc, "elsewhere/not-listed", 5).await;
        let url = |k: String| format!("s3://b/{k}");
        let segments = vec![
            seg("s0", true, &url(key("wiki", 0)), Some(1000)),
            seg("s1", true, &url(key("wiki", 1)), Some(50)), // 100 bytes: fits
            seg("s2", true, &url(key("wiki", 2)), None),
            seg("s3", true, &url(key("wiki", 3)), Some(1)),
            seg("s4", true, &url(key("wiki", 4)), Some(1000)), // missing
            seg("s9", false, &url(key("wiki", 9)), None),
            seg("h", true, "hdfs://nn/x.zip", None),
            seg("u", true, "", None),
        ];
        let options = CheckOptions {
            open: open.clone(),
            roots: vec![],
            concurrency: 4,
        };
        let c = check(
            futures::stream::iter(segments),
            &options,
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(c.checked, 5);
        assert_eq!(c.missing, 1);
        assert_eq!(
            c.missing_sample,
            vec![format!("{} (segment s4)", url(key("wiki", 4)))]
        );
        assert_eq!(c.wrong_size, 1);
        assert_eq!(c.unchecked, 2);
        assert_eq!(c.roots, vec!["s3://b/druid/seg".to_string()]);
        assert_eq!(c.orphaned, Some(2));
        assert_eq!(
            c.orphaned_sample,
            vec![
                url(key("gone", 0)),
                "s3://b/druid/seg/wiki/x/descriptor.json".to_string()
            ]
        );
        assert!(!c.ok());
        drop(stores);
    }

    #[tokio::test]
    async fn objects_outside_the_roots_are_looked_up_one_by_one() {
        let (open, _stores) = memory_opener();
        let loc = open("s3://b").unwrap();
        put(&loc, "a/x.bin", 10).await;
        put(&loc, "a/y.bin", 11).await;
        put(&loc, "r/orphan", 1).await;
        let segments = vec![
            seg("x", true, "s3://b/a/x.bin", Some(10)),
            seg("y", true, "s3://b/a/y.bin", Some(10)), // exact size for a non-zip
            seg("z", true, "s3://b/a/z.bin", None),
        ];
        let options = CheckOptions {
            open,
            roots: vec!["s3://b/r/".into()],
            concurrency: 2,
        };
        let c = check(
            futures::stream::iter(segments),
            &options,
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!((c.checked, c.missing, c.wrong_size), (3, 1, 1));
        assert_eq!(
            c.missing_sample,
            vec!["s3://b/a/z.bin (segment z)".to_string()]
        );
        assert_eq!(
            c.wrong_size_sample,
            vec!["s3://b/a/y.bin (segment y): 11 bytes, the payload's size is 10".to_string()]
        );
        assert_eq!(
            (c.orphaned, c.orphaned_sample.clone()),
            (Some(1), vec!["s3://b/r/orphan".to_string()])
        );
    }

    #[tokio::test]
    async fn a_cancelled_check_stops() {
        let (open, _stores) = memory_opener();
        let token = tokio_util::sync::CancellationToken::new();
        token.cancel();
        let options = CheckOptions {
            open,
            roots: vec![],
            concurrency: 2,
        };
        let segments = vec![seg("x", true, "s3://b/a/x.bin", Some(10))];
        let err = check(futures::stream::iter(segments), &options, token)
            .await
            .unwrap_err();
        assert!(matches!(
            err.downcast_ref::<StoreError>(),
            Some(StoreError::Interrupted)
        ));
    }
}
