//! A tree's fingerprint: every file's path, size and SHA-256, sorted by path. An online backup
//! records the catalog's at backup time (the archive member `repo::manifest::CATALOG_MEMBER`, one JSON line per
//! file); a drill or failover compares a restored coordinator's export with it (or with a kept
//! clone tree's) and names what is missing, differs or is extra. Export trees are deterministic
//! (keys sorted, no ids, tags or timestamps), so equal catalogs have equal fingerprints.
//! Hidden entries (names starting with `.`: a git tree's `.git`, an interrupted write's temp
//! file) are not the tree's: a tree encodes a leading `.` of an object's name.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::CloneError;
use super::tree::MARKER;

/// The most files a fingerprint may list (a catalog of two million objects and their SQL files).
pub const MAX_ENTRIES: usize = 4_000_000;
/// The largest fingerprint file read (a line is at most ~4.2 KiB: a 4 KiB path and a digest).
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// The longest path a tree may hold, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;
/// The longest line of a fingerprint file read (a 4 KiB path, JSON-escaped, and a digest).
pub const MAX_LINE_BYTES: usize = 8 << 10;

/// One file of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, `/`-separated, as the tree names it (never the marker file).
    pub path: String,
    pub bytes: u64,
    pub sha256: [u8; 32],
}

/// Every file of a tree but its marker ([`crate::clone::tree::MARKER`]), sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub entries: Vec<Entry>,
}

fn tree_err(path: &Path, message: String) -> CloneError {
    CloneError::Tree {
        path: path.to_path_buf(),
        message,
    }
}

fn read_err(path: &Path) -> impl FnOnce(std::io::Error) -> CloneError + '_ {
    move |source| CloneError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// A relative path of plain components: none empty, `.` or `..`, no leading `/`, no NUL or
/// backslash, at most [`MAX_PATH_BYTES`].
fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("an empty path".into());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("a path longer than {MAX_PATH_BYTES} bytes"));
    }
    if path.contains(['\0', '\\']) {
        return Err(format!("the path {path:?} holds a NUL or a backslash"));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!(
            "the path {path:?} is not relative with plain components"
        ));
    }
    Ok(())
}

/// SHA-256 and size of one file, read in 64 KiB steps.
fn hash_file(path: &Path) -> Result<(u64, [u8; 32]), CloneError> {
    let mut f = std::fs::File::open(path).map_err(read_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut bytes = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(path)(e)),
        };
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hasher.finalize().into()))
}

/// One line of a fingerprint file, as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    path: String,
    bytes: u64,
    sha256: String,
}

impl Fingerprint {
    /// Walks `root` (not following links: a link, a socket or a path over 4 KiB is an error),
    /// hashing each file; memory is the entries only.
    pub fn of_tree(root: &Path) -> Result<Fingerprint, CloneError> {
        let mut entries = Vec::new();
        let walk = walkdir::WalkDir::new(root)
            .follow_links(false)
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| !e.file_name().as_encoded_bytes().starts_with(b"."));
        for item in walk {
            let item = item.map_err(|e| {
                let path = e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| root.into());
                CloneError::Read {
                    source: e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("cannot walk the tree")),
                    path,
                }
            })?;
            let kind = item.file_type();
            if kind.is_dir() {
                continue;
            }
            let full = item.path();
            if !kind.is_file() {
                return Err(tree_err(
                    full,
                    "not a regular file or folder (a link, socket or device): a tree holds only files".into(),
                ));
            }
            let rel = full
                .strip_prefix(root)
                .map_err(|_| tree_err(full, "outside the tree".into()))?;
            let Some(text) = rel.to_str() else {
                return Err(tree_err(full, "a file name that is not UTF-8".into()));
            };
            if item.depth() == 1 && text == MARKER {
                continue;
            }
            check_path(text).map_err(|m| tree_err(full, m))?;
            if entries.len() >= MAX_ENTRIES {
                return Err(tree_err(
                    root,
                    format!("more than {MAX_ENTRIES} files: not a catalog export"),
                ));
            }
            let (bytes, sha256) = hash_file(full)?;
            entries.push(Entry {
                path: text.to_string(),
                bytes,
                sha256,
            });
        }
        entries.sort_unstable_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Ok(Fingerprint { entries })
    }

    /// `{"path":..,"bytes":..,"sha256":"<hex>"}` per line, in order.
    pub fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for e in &self.entries {
            let line = json!({
                "path": e.path,
                "bytes": e.bytes,
                "sha256": hex::encode(e.sha256),
            });
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    /// Reads what [`Fingerprint::write_to`] wrote, as hostile input: at most [`MAX_FILE_BYTES`]
    /// and [`MAX_ENTRIES`], every path relative with plain components, sorted and unique.
    pub fn read_from(input: &mut dyn Read) -> Result<Fingerprint, CloneError> {
        read_capped(
            input,
            Path::new("the fingerprint"),
            MAX_FILE_BYTES,
            MAX_ENTRIES,
        )
    }

    pub fn read_file(path: &Path) -> Result<Fingerprint, CloneError> {
        let mut f = std::fs::File::open(path).map_err(read_err(path))?;
        read_capped(&mut f, path, MAX_FILE_BYTES, MAX_ENTRIES)
    }

    /// Writes the fingerprint to a new file `path` (0600), durably.
    pub fn write_file(&self, path: &Path) -> Result<(), CloneError> {
        use std::os::unix::fs::OpenOptionsExt;
        let write_err = |source| CloneError::Write {
            path: path.to_path_buf(),
            source,
        };
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(write_err)?;
        let mut out = std::io::BufWriter::new(f);
        self.write_to(&mut out).map_err(write_err)?;
        out.into_inner()
            .map_err(|e| write_err(e.into_error()))?
            .sync_all()
            .map_err(write_err)
    }
}

fn read_capped(
    input: &mut dyn Read,
    name: &Path,
    max_bytes: u64,
    max_entries: usize,
) -> Result<Fingerprint, CloneError> {
    let bad = |line: usize, message: String| tree_err(name, format!("line {line}: {message}"));
    let mut reader = BufReader::new(input.take(max_bytes + 1));
    let mut entries: Vec<Entry> = Vec::new();
    let mut buf = Vec::with_capacity(512);
    let mut total = 0u64;
    let mut number = 0usize;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|source| CloneError::Read {
                path: name.to_path_buf(),
                source,
            })?;
        if n == 0 {
            break;
        }
        number += 1;
        total += n as u64;
        if total > max_bytes {
            return Err(tree_err(
                name,
                format!("larger than {max_bytes} bytes: not a catalog fingerprint"),
            ));
        }
        let Some(text) = buf.strip_suffix(b"\n") else {
            if buf.len() > MAX_LINE_BYTES {
                return Err(bad(number, format!("longer than {MAX_LINE_BYTES} bytes")));
            }
            return Err(bad(
                number,
                "the file ends inside a line (truncated?)".into(),
            ));
        };
        if entries.len() >= max_entries {
            return Err(bad(number, format!("more than {max_entries} entries")));
        }
        let line: Line = serde_json::from_slice(text).map_err(|e| {
            bad(
                number,
                format!("not a {{\"path\",\"bytes\",\"sha256\"}} object: {e}"),
            )
        })?;
        check_path(&line.path).map_err(|m| bad(number, m))?;
        if line.path == MARKER {
            return Err(bad(number, format!("lists the tree's marker {MARKER}")));
        }
        let mut sha256 = [0u8; 32];
        if line.sha256.len() != 64
            || line.sha256.bytes().any(|b| b.is_ascii_uppercase())
            || hex::decode_to_slice(&line.sha256, &mut sha256).is_err()
        {
            return Err(bad(
                number,
                "sha256 is not 64 lowercase hexadecimal digits".into(),
            ));
        }
        if let Some(last) = entries.last()
            && last.path.as_bytes() >= line.path.as_bytes()
        {
            return Err(bad(
                number,
                format!(
                    "{:?} does not sort after {:?}: entries are unique and sorted by path",
                    line.path, last.path
                ),
            ));
        }
        entries.push(Entry {
            path: line.path,
            bytes: line.bytes,
            sha256,
        });
    }
    Ok(Fingerprint { entries })
}

/// How an actual tree differs from a reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// In the reference, not in the actual tree.
    pub missing: Vec<String>,
    /// In both, with other bytes.
    pub differs: Vec<String>,
    /// In the actual tree only.
    pub extra: Vec<String>,
    /// Whole counts (the lists keep their first [`MAX_LISTED`] paths).
    pub counts: DiffCounts,
}

/// The first this-many paths of each list are kept; the counts are always whole.
pub const MAX_LISTED: usize = 50;
/// How many paths of each list [`Diff::summary`] names.
const SUMMARY_LISTED: usize = 3;

/// 1204 -> "1,204".
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.counts.missing == 0 && self.counts.differs == 0 && self.counts.extra == 0
    }

    /// e.g. "1,204 identical; 2 missing (catalog/Sales.space.json, ...), 1 differs (...)".
    pub fn summary(&self) -> String {
        let mut out = format!("{} identical", grouped(self.counts.same));
        let lists = [
            ("missing", self.counts.missing, &self.missing),
            ("differs", self.counts.differs, &self.differs),
            ("extra", self.counts.extra, &self.extra),
        ];
        let mut first = true;
        for (word, n, paths) in lists {
            if n == 0 {
                continue;
            }
            out.push_str(if first { "; " } else { ", " });
            first = false;
            let word = if word == "differs" && n != 1 {
                "differ"
            } else {
                word
            };
            let mut shown: Vec<&str> = paths
                .iter()
                .take(SUMMARY_LISTED)
                .map(String::as_str)
                .collect();
            if n > shown.len() {
                shown.push("...");
            }
            out.push_str(&format!("{} {word} ({})", grouped(n), shown.join(", ")));
        }
        out
    }

    /// `{"same", "missing": {"count", "paths"}, "differs": ..., "extra": ...}`.
    pub fn to_json(&self) -> Value {
        let list = |n: usize, paths: &Vec<String>| json!({"count": n, "paths": paths});
        json!({
            "same": self.counts.same,
            "missing": list(self.counts.missing, &self.missing),
            "differs": list(self.counts.differs, &self.differs),
            "extra": list(self.counts.extra, &self.extra),
        })
    }
}

/// Compares in one merge pass over both sorted lists.
pub fn diff(reference: &Fingerprint, actual: &Fingerprint) -> Diff {
    use std::cmp::Ordering;
    fn note(list: &mut Vec<String>, count: &mut usize, path: &str) {
        *count += 1;
        if list.len() < MAX_LISTED {
            list.push(path.to_string());
        }
    }
    let mut d = Diff::default();
    let (mut r, mut a) = (
        reference.entries.iter().peekable(),
        actual.entries.iter().peekable(),
    );
    loop {
        match (r.peek(), a.peek()) {
            (None, None) => break,
            (Some(x), None) => {
                note(&mut d.missing, &mut d.counts.missing, &x.path);
                r.next();
            }
            (None, Some(y)) => {
                note(&mut d.extra, &mut d.counts.extra, &y.path);
                a.next();
            }
            (Some(x), Some(y)) => match x.path.as_bytes().cmp(y.path.as_bytes()) {
                Ordering::Less => {
                    note(&mut d.missing, &mut d.counts.missing, &x.path);
                    r.next();
                }
                Ordering::Greater => {
                    note(&mut d.extra, &mut d.counts.extra, &y.path);
                    a.next();
                }
                Ordering::Equal => {
                    if x.bytes == y.bytes && x.sha256 == y.sha256 {
                        d.counts.same += 1;
                    } else {
                        note(&mut d.differs, &mut d.counts.differs, &x.path);
                    }
                    r.next();
                    a.next();
                }
            },
        }
    }
    d
}

/// Whole counts, whatever was listed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffCounts {
    pub same: usize,
    pub missing: usize,
    pub differs: usize,
    pub extra: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn put(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn entry(path: &str, text: &str) -> Entry {
        Entry {
            path: path.into(),
            bytes: text.len() as u64,
            sha256: Sha256::digest(text.as_bytes()).into(),
        }
    }

    fn read(text: &str) -> Result<Fingerprint, CloneError> {
        Fingerprint::read_from(&mut text.as_bytes())
    }

    fn line(path: &str) -> String {
        format!(
            "{{\"path\":{},\"bytes\":1,\"sha256\":\"{}\"}}\n",
            serde_json::to_string(path).unwrap(),
            "ab".repeat(32)
        )
    }

    #[test]
    fn a_tree_is_every_file_but_the_marker_and_hidden_entries_sorted_by_path_bytes() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        put(r, MARKER, "{}");
        put(r, "catalog/a.b", "1");
        put(r, "catalog/a/x.view.json", "22");
        put(r, "catalog/a/x.view.sql", "SELECT 1");
        put(r, "users/alice.user.json", "{}");
        put(r, ".git/HEAD", "ref");
        put(r, "catalog/.x.tmp-1", "half");
        let f = Fingerprint::of_tree(r).unwrap();
        let paths: Vec<&str> = f.entries.iter().map(|e| e.path.as_str()).collect();
        // '.' (0x2e) sorts before '/' (0x2f): byte order, not a walk's folder order.
        assert_eq!(
            paths,
            [
                "catalog/a.b",
                "catalog/a/x.view.json",
                "catalog/a/x.view.sql",
                "users/alice.user.json"
            ]
        );
        assert_eq!(f.entries[2], entry("catalog/a/x.view.sql", "SELECT 1"));
    }

    #[test]
    fn a_link_in_a_tree_is_an_error_not_followed() {
        let root = tempfile::tempdir().unwrap();
        put(root.path(), "catalog/a.space.json", "{}");
        std::os::unix::fs::symlink("/etc", root.path().join("catalog/etc")).unwrap();
        let err = Fingerprint::of_tree(root.path()).unwrap_err();
        assert!(err.to_string().contains("a link"), "{err}");
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let f = Fingerprint {
            entries: vec![
                entry("catalog/S\u{e9}les \"q\".space.json", "{}"),
                entry("catalog/Sales.space.json", ""),
                entry("users/a.user.json", "x"),
            ],
        };
        let mut out = Vec::new();
        f.write_to(&mut out).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains(&hex::encode(f.entries[2].sha256)));
        // Sorted by bytes: "S\u{e9}" (0xc3...) after "Sa".
        let mut sorted = f.clone();
        sorted
            .entries
            .sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let mut out = Vec::new();
        sorted.write_to(&mut out).unwrap();
        assert_eq!(Fingerprint::read_from(&mut &out[..]).unwrap(), sorted);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lifeboat-catalog.jsonl");
        sorted.write_file(&file).unwrap();
        assert_eq!(Fingerprint::read_file(&file).unwrap(), sorted);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(sorted.write_file(&file).is_err(), "never overwrites");
        assert_eq!(read("").unwrap(), Fingerprint::default());
    }

    #[test]
    fn hostile_fingerprints_are_refused_with_the_line_and_why() {
        let digest = "ab".repeat(32);
        let cases: Vec<(String, &str)> = vec![
            (line("/etc/passwd"), "not relative"),
            (line("a//b"), "not relative"),
            (line("a/./b"), "not relative"),
            (line("a/../../b"), "not relative"),
            (line("a/"), "not relative"),
            (line(""), "an empty path"),
            (line("a\\b"), "backslash"),
            (line("a\0b"), "NUL"),
            (line(MARKER), "marker"),
            (line(&"x".repeat(MAX_PATH_BYTES + 1)), "longer than"),
            (format!("{}{}", line("b"), line("a")), "does not sort after"),
            (format!("{}{}", line("a"), line("a")), "does not sort after"),
            (line("a").trim_end().to_string(), "ends inside a line"),
            ("\n".into(), "not a {"),
            ("[1,2]\n".into(), "not a {"),
            (
                format!("{{\"path\":\"a\",\"bytes\":-1,\"sha256\":\"{digest}\"}}\n"),
                "not a {",
            ),
            (
                format!("{{\"path\":\"a\",\"bytes\":1,\"sha256\":\"{digest}\",\"x\":1}}\n"),
                "not a {",
            ),
            (
                "{\"path\":\"a\",\"bytes\":1,\"sha256\":\"abc\"}\n".into(),
                "64 lowercase",
            ),
            (
                format!(
                    "{{\"path\":\"a\",\"bytes\":1,\"sha256\":\"{}\"}}\n",
                    "AB".repeat(32)
                ),
                "64 lowercase",
            ),
            (
                format!(
                    "{{\"path\":\"a\",\"bytes\":1,\"sha256\":\"{}\"}}\n",
                    "zz".repeat(32)
                ),
                "64 lowercase",
            ),
            (
                format!("{}\n", "x".repeat(MAX_LINE_BYTES + 10)),
                "longer than 8192",
            ),
        ];
        for (text, why) in cases {
            let err = read(&text).expect_err(why);
            let msg = err.to_string();
            assert!(msg.contains(why), "{why:?} not in {msg:?}");
            assert!(msg.contains("line "), "{msg}");
        }
    }

    #[test]
    fn a_fingerprint_larger_than_the_cap_is_refused_without_reading_it_whole() {
        // An endless stream of valid lines: refused at the byte cap (bounded memory, and it ends).
        struct Endless {
            n: u64,
            pending: Vec<u8>,
        }
        impl Read for Endless {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                if self.pending.is_empty() {
                    self.n += 1;
                    self.pending =
                        line(&format!("{:020}/{}", self.n, "p".repeat(4000))).into_bytes();
                }
                let k = out.len().min(self.pending.len());
                out[..k].copy_from_slice(&self.pending[..k]);
                self.pending.drain(..k);
                Ok(k)
            }
        }
        let mut input = Endless {
            n: 0,
            pending: Vec::new(),
        };
        let err = read_capped(&mut input, Path::new("f"), 1 << 20, MAX_ENTRIES).unwrap_err();
        assert!(err.to_string().contains("larger than 1048576"), "{err}");
        let mut input = Endless {
            n: 0,
            pending: Vec::new(),
        };
        let err = read_capped(&mut input, Path::new("f"), 1 << 30, 100).unwrap_err();
        assert!(err.to_string().contains("line 101: more than 100"), "{err}");
    }

    #[test]
    fn a_diff_names_what_is_missing_differs_or_extra_with_whole_counts() {
        let reference = Fingerprint {
            entries: vec![
                entry("a", "1"),
                entry("b", "2"),
                entry("c", "3"),
                entry("d", "4"),
            ],
        };
        let actual = Fingerprint {
            entries: vec![
                entry("a", "1"),
                entry("c", "x"),
                entry("d", "4"),
                entry("e", "5"),
            ],
        };
        let d = diff(&reference, &actual);
        assert_eq!(d.missing, ["b"]);
        assert_eq!(d.differs, ["c"]);
        assert_eq!(d.extra, ["e"]);
        assert_eq!(
            d.counts,
            DiffCounts {
                same: 2,
                missing: 1,
                differs: 1,
                extra: 1
            }
        );
        assert!(!d.is_empty());
        assert_eq!(
            d.summary(),
            "2 identical; 1 missing (b), 1 differs (c), 1 extra (e)"
        );
        let j = d.to_json();
        assert_eq!(j["same"], 2);
        assert_eq!(j["missing"]["count"], 1);
        assert_eq!(j["differs"]["paths"][0], "c");
        assert!(diff(&reference, &reference).is_empty());
        assert_eq!(diff(&reference, &reference).summary(), "4 identical");
    }

    #[test]
    fn a_large_diff_keeps_its_first_paths_and_whole_counts() {
        let many = Fingerprint {
            entries: (0..1204).map(|i| entry(&format!("f{i:05}"), "x")).collect(),
        };
        let d = diff(&many, &Fingerprint::default());
        assert_eq!(d.counts.missing, 1204);
        assert_eq!(d.missing.len(), MAX_LISTED);
        assert_eq!(
            d.summary(),
            "0 identical; 1,204 missing (f00000, f00001, f00002, ...)"
        );
        let d = diff(&many, &many);
        assert_eq!(d.summary(), "1,204 identical");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(999), "999");
    }
}
