//! Tar members: `unpack` in verify and in extract mode, on archives built member by member (GNU
//! long names, pax paths, links, devices, FIFOs, sparse and contiguous files, duplicates), with
//! the index an honest packer would write for them, then edited; tar bytes and the zstd stream are
//! now and then mutated too. Extraction runs in a jail whose every folder is walked afterwards.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use lifeboat::archive::index::{Index, IndexSpool};
use lifeboat::archive::unpack::{self, Mode};
use lifeboat::archive::{EntryKind, FileEntry, Layout};
use lifeboat::progress::NotesOnly;
use proptest::prelude::*;
use proptest::sample::Index as Pick;
use sha2::{Digest, Sha256};

use crate::alloc::{MIB, peak};
use crate::harness::{bounded, fuzz};
use crate::inputs::{self, Format, Op};

/// Stands for the jail's folder outside the staging folder in link targets.
const OUTSIDE: &str = "{outside}";

#[derive(Debug, Clone)]
pub enum Body {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Hardlink(String),
    CharDevice,
    BlockDevice,
    Fifo,
    Contiguous(Vec<u8>),
    Sparse,
}

#[derive(Clone)]
pub struct Member {
    pub path: Vec<u8>,
    pub body: Body,
    pub mode: u32,
    pub mtime: u64,
    /// The path goes in a pax header's `path` record rather than in the header's name.
    pub pax_path: bool,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("path", &String::from_utf8_lossy(&self.path))
            .field("body", &self.body)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("mtime", &self.mtime)
            .field("pax_path", &self.pax_path)
            .finish()
    }
}

impl Member {
    pub fn new(path: &str, body: Body) -> Member {
        Member {
            path: path.as_bytes().to_vec(),
            body,
            mode: 0o755,
            mtime: 1_700_000_000,
            pax_path: false,
        }
    }

    /// The path's components, as the file system will see them.
    fn components(&self) -> Vec<&[u8]> {
        self.path
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty())
            .collect()
    }
}

/// An edit of the honest index.
#[derive(Debug, Clone)]
pub enum IndexEdit {
    Drop(Pick),
    Swap(Pick, Pick),
    Repeat(Pick),
    Size(Pick, u64),
    Digest(Pick),
    Kind(Pick, u8),
    Target(Pick, String),
    Path(Pick, String),
}

#[derive(Debug, Clone)]
pub struct Case {
    pub members: Vec<Member>,
    pub edits: Vec<IndexEdit>,
    pub spooled: bool,
    pub logical: bool,
    pub end_blocks: bool,
    pub tar_ops: Vec<Op>,
    pub zstd_ops: Vec<Op>,
}

impl Case {
    pub fn honest(members: Vec<Member>) -> Case {
        Case {
            members,
            edits: vec![],
            spooled: false,
            logical: false,
            end_blocks: true,
            tar_ops: vec![],
            zstd_ops: vec![],
        }
    }
}

const TAR: Format = Format {
    tokens: &[
        b"ustar\0",
        b"ustar  \0",
        b"././@LongLink",
        b"\0\0\0\0\0\0\0\0",
        b"path=../../x\n",
        b"77777777777",
        b"0000644\0",
        b"L",
        b"K",
        b"x",
        b"g",
        b"S",
    ],
    pairs: &[(b"\0", b"\0")],
};

fn root() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        12 => Just("db"),
        3 => Just("uploads"),
        2 => Just("security"),
        1 => Just("elsewhere"),
        1 => Just(""),
        1 => Just("jobs_backup.json"),
        1 => Just("jobs_info.json"),
    ]
}

fn component() -> impl Strategy<Value = Vec<u8>> {
    let plain = prop::sample::select(vec![
        "s",
        "t",
        "t2",
        "x",
        "a",
        "catalog",
        "000012.sst",
        "pwned.txt",
        "key",
    ]);
    let odd = prop::sample::select(vec!["..", ".", "", " ", "a\\b", "\u{202e}x", "CURRENT"]);
    prop_oneof![
        12 => plain.prop_map(|s| s.as_bytes().to_vec()),
        2 => odd.prop_map(|s| s.as_bytes().to_vec()),
        1 => Just(vec![b'n'; 120]),
        1 => Just(b"\xff\xfe".to_vec()),
    ]
}

fn path() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![8 => Just(""), 1 => Just("/"), 1 => Just("./")],
        root(),
        prop::collection::vec(component(), 0..4),
        prop_oneof![8 => Just(""), 1 => Just("/")],
    )
        .prop_map(|(lead, root, comps, trail)| {
            let mut p = format!("{lead}{root}").into_bytes();
            for c in comps {
                p.push(b'/');
                p.extend(c);
            }
            p.extend(trail.as_bytes());
            p
        })
}

fn link_target() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        ".",
        "..",
        "s",
        "s/s/..",
        "t/..",
        "x",
        "../x",
        "../../x",
        "../../../../x",
        "s/..",
        "a/b",
        "",
        OUTSIDE,
        "{outside}/x",
        "../security/key",
        "t2/x",
        "/etc",
    ])
    .prop_map(str::to_string)
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..64),
        1 => prop::collection::vec(any::<u8>(), 0..3000),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        8 => data().prop_map(Body::File),
        5 => Just(Body::Dir),
        5 => link_target().prop_map(Body::Symlink),
        1 => link_target().prop_map(Body::Hardlink),
        1 => Just(Body::CharDevice),
        1 => Just(Body::BlockDevice),
        1 => Just(Body::Fifo),
        1 => data().prop_map(Body::Contiguous),
        1 => Just(Body::Sparse),
    ]
}

fn member() -> impl Strategy<Value = Member> {
    (
        path(),
        body(),
        prop_oneof![
            Just(0o644u32),
            Just(0o755),
            Just(0o000),
            Just(0o7777),
            any::<u32>()
        ],
        prop_oneof![8 => 0u64..=u32::MAX as u64, 1 => Just(u64::MAX >> 1)],
        prop::bool::weighted(0.1),
    )
        .prop_map(|(path, body, mode, mtime, pax_path)| Member {
            path,
            body,
            mode,
            mtime,
            pax_path,
        })
}

fn index_edit() -> impl Strategy<Value = IndexEdit> {
    prop_oneof![
        any::<Pick>().prop_map(IndexEdit::Drop),
        (any::<Pick>(), any::<Pick>()).prop_map(|(a, b)| IndexEdit::Swap(a, b)),
        any::<Pick>().prop_map(IndexEdit::Repeat),
        (any::<Pick>(), any::<u64>()).prop_map(|(a, n)| IndexEdit::Size(a, n)),
        any::<Pick>().prop_map(IndexEdit::Digest),
        (any::<Pick>(), 0u8..3).prop_map(|(a, k)| IndexEdit::Kind(a, k)),
        (any::<Pick>(), link_target()).prop_map(|(a, t)| IndexEdit::Target(a, t)),
        (any::<Pick>(), "[a-z/.]{0,12}").prop_map(|(a, p)| IndexEdit::Path(a, p)),
    ]
}

fn rarely_ops() -> impl Strategy<Value = Vec<Op>> {
    prop_oneof![6 => Just(vec![]), 1 => inputs::ops()]
}

pub fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(member(), 0..12),
        prop_oneof![3 => Just(vec![]), 1 => prop::collection::vec(index_edit(), 1..3)],
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.9),
        rarely_ops(),
        rarely_ops(),
    )
        .prop_map(
            |(members, edits, spooled, logical, end_blocks, tar_ops, zstd_ops)| Case {
                members,
                edits,
                spooled,
                logical,
                end_blocks,
                tar_ops,
                zstd_ops,
            },
        )
}

/// Drops every member that lies beneath an earlier symbolic link: what remains never asks the
/// extractor to write through a link, which today's unpack.rs does not refuse (see
/// `tar_extract_through_links`).
pub fn nothing_beneath_links(mut case: Case) -> Case {
    let mut links: Vec<Vec<Vec<u8>>> = Vec::new();
    case.members.retain(|m| {
        let comps = m.components();
        let beneath = links.iter().any(|l| {
            l.len() < comps.len()
                && comps.starts_with(&l.iter().map(Vec::as_slice).collect::<Vec<_>>())
        });
        if !beneath && matches!(m.body, Body::Symlink(_)) {
            links.push(comps.iter().map(|c| c.to_vec()).collect());
        }
        !beneath
    });
    case
}

fn padded(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn header(
    out: &mut Vec<u8>,
    name: &[u8],
    kind: tar::EntryType,
    size: u64,
    m: (u32, u64),
    link: &[u8],
) {
    let mut h = tar::Header::new_gnu();
    let old = h.as_old_mut();
    let n = name.len().min(100);
    old.name[..n].copy_from_slice(&name[..n]);
    let l = link.len().min(100);
    old.linkname[..l].copy_from_slice(&link[..l]);
    h.set_mode(m.0);
    h.set_size(size);
    h.set_mtime(m.1);
    h.set_entry_type(kind);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
}

/// A GNU long name (`L`) or long link (`K`) entry for a field over 100 bytes.
fn long_field(out: &mut Vec<u8>, kind: tar::EntryType, value: &[u8]) {
    let mut data = value.to_vec();
    data.push(0);
    header(
        out,
        b"././@LongLink",
        kind,
        data.len() as u64,
        (0o644, 0),
        b"",
    );
    padded(out, &data);
}

/// A pax extended header whose `path` record names the next member.
fn pax_path(out: &mut Vec<u8>, path: &[u8]) {
    let rest = [b" path=".as_slice(), path, b"\n"].concat();
    let mut len = rest.len() + 1;
    while len != rest.len() + len.to_string().len() {
        len = rest.len() + len.to_string().len();
    }
    let record = [len.to_string().as_bytes(), &rest].concat();
    header(
        out,
        b"PaxHeaders/x",
        tar::EntryType::XHeader,
        record.len() as u64,
        (0o644, 0),
        b"",
    );
    padded(out, &record);
}

fn resolve_outside(target: &str, outside: &Path) -> String {
    target.replace(OUTSIDE, &outside.to_string_lossy())
}

/// The tar stream of the members.
pub fn tar_bytes(case: &Case, outside: &Path) -> Vec<u8> {
    use tar::EntryType as T;
    let mut out = Vec::new();
    for m in &case.members {
        let (kind, data, link): (T, &[u8], String) = match &m.body {
            Body::File(d) => (T::Regular, d, String::new()),
            Body::Contiguous(d) => (T::Continuous, d, String::new()),
            Body::Dir => (T::Directory, &[], String::new()),
            Body::Symlink(t) => (T::Symlink, &[], resolve_outside(t, outside)),
            Body::Hardlink(t) => (T::Link, &[], resolve_outside(t, outside)),
            Body::CharDevice => (T::Char, &[], String::new()),
            Body::BlockDevice => (T::Block, &[], String::new()),
            Body::Fifo => (T::Fifo, &[], String::new()),
            Body::Sparse => (T::GNUSparse, &[], String::new()),
        };
        let mut name: &[u8] = &m.path;
        if m.pax_path {
            pax_path(&mut out, &m.path);
            name = b"placeholder";
        } else if m.path.len() > 100 {
            long_field(&mut out, T::GNULongName, &m.path);
        }
        if link.len() > 100 {
            long_field(&mut out, T::GNULongLink, link.as_bytes());
        }
        header(
            &mut out,
            name,
            kind,
            data.len() as u64,
            (m.mode, m.mtime),
            link.as_bytes(),
        );
        padded(&mut out, data);
    }
    if case.end_blocks {
        out.extend_from_slice(&[0u8; 1024]);
    }
    inputs::apply(&TAR, out, &case.tar_ops)
}

/// The entry an honest packer writes for a member.
fn honest_entry(m: &Member, outside: &Path) -> FileEntry {
    let path = String::from_utf8_lossy(&m.path)
        .trim_end_matches('/')
        .to_string();
    let (kind, data, target) = match &m.body {
        Body::Dir => (EntryKind::Dir, None, None),
        Body::Symlink(t) => (EntryKind::Symlink, None, Some(resolve_outside(t, outside))),
        Body::File(d) | Body::Contiguous(d) => (EntryKind::File, Some(d.as_slice()), None),
        _ => (EntryKind::File, Some(&[][..]), None),
    };
    FileEntry {
        path,
        kind,
        size: data.map_or(0, |d| d.len() as u64),
        mode: m.mode,
        mtime: m.mtime.min(i64::MAX as u64) as i64,
        sha256: data.map(|d| hex::encode(Sha256::digest(d))),
        target,
        object: None,
    }
}

fn edit_index(entries: &mut Vec<FileEntry>, edits: &[IndexEdit]) {
    for e in edits {
        let n = entries.len();
        if n == 0 {
            return;
        }
        match e {
            IndexEdit::Drop(i) => {
                entries.remove(i.index(n));
            }
            IndexEdit::Swap(a, b) => entries.swap(a.index(n), b.index(n)),
            IndexEdit::Repeat(i) => {
                let e = entries[i.index(n)].clone();
                entries.insert(i.index(n), e);
            }
            IndexEdit::Size(i, s) => entries[i.index(n)].size = *s,
            IndexEdit::Digest(i) => entries[i.index(n)].sha256 = Some("0".repeat(64)),
            IndexEdit::Kind(i, k) => {
                entries[i.index(n)].kind =
                    [EntryKind::File, EntryKind::Dir, EntryKind::Symlink][*k as usize]
            }
            IndexEdit::Target(i, t) => entries[i.index(n)].target = Some(t.clone()),
            IndexEdit::Path(i, p) => entries[i.index(n)].path = p.clone(),
        }
    }
}

pub fn index_of(case: &Case, outside: &Path) -> Index {
    let mut entries: Vec<FileEntry> = case
        .members
        .iter()
        .map(|m| honest_entry(m, outside))
        .collect();
    edit_index(&mut entries, &case.edits);
    if !case.spooled {
        return Index::Inline(entries);
    }
    let mut spool = IndexSpool::new().expect("a temporary file");
    for e in &entries {
        spool.push(e).expect("the spool takes an entry");
    }
    spool.into_index().expect("the spool reads back")
}

pub fn compressed(case: &Case, outside: &Path) -> (Vec<u8>, usize) {
    let tar = tar_bytes(case, outside);
    let z = zstd::encode_all(&tar[..], 1).expect("zstd compresses");
    (inputs::apply(&TAR, z, &case.zstd_ops), tar.len())
}

fn layout(case: &Case) -> Layout {
    if case.logical {
        Layout {
            top_level_file: lifeboat::dremio::logical::is_table_file,
        }
    } else {
        Layout::FOLDERS_ONLY
    }
}

/// A staging folder six levels down a temporary folder, beside a folder `outside`; `escaped` lists
/// everything that appeared in the temporary folder outside the staging folder.
pub struct Jail {
    dir: tempfile::TempDir,
    pub staging: PathBuf,
    pub outside: PathBuf,
    before: BTreeSet<PathBuf>,
}

impl Jail {
    pub fn new() -> Jail {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let staging = dir.path().join("a/b/c/d/e/f/staging");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&staging).expect("the staging folder");
        std::fs::create_dir(&outside).expect("the outside folder");
        let mut jail = Jail {
            dir,
            staging,
            outside,
            before: BTreeSet::new(),
        };
        jail.before = jail.listing();
        jail
    }

    fn listing(&self) -> BTreeSet<PathBuf> {
        walkdir::WalkDir::new(self.dir.path())
            .min_depth(1)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| e.path() != self.staging)
            .filter_map(Result::ok)
            .map(|e| {
                e.path()
                    .strip_prefix(self.dir.path())
                    .unwrap_or(e.path())
                    .to_path_buf()
            })
            .collect()
    }

    pub fn escaped(&self) -> Vec<PathBuf> {
        self.listing().difference(&self.before).cloned().collect()
    }
}

impl Drop for Jail {
    /// Folders restored as 0o000 must not keep a non-root run from removing the jail.
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        for e in walkdir::WalkDir::new(self.dir.path())
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            if e.file_type().is_dir() {
                let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o700));
            }
        }
    }
}

fn verify(case: Case) -> Result<(), TestCaseError> {
    let outside = Path::new("/nonexistent-outside");
    let (z, n) = compressed(&case, outside);
    let index = index_of(&case, outside);
    let (_, held) = peak(|| {
        unpack::unpack(
            &z[..],
            &index,
            Mode::Verify { max_problems: 8 },
            layout(&case),
            &NotesOnly,
        )
    });
    bounded("verify", held, n, 4 * MIB, 4)
}

/// Extracts the case into a fresh jail: nothing may appear outside the staging folder.
pub fn extract(case: Case) -> Result<(), TestCaseError> {
    let jail = Jail::new();
    let (z, n) = compressed(&case, &jail.outside);
    let index = index_of(&case, &jail.outside);
    let (result, held) = peak(|| {
        let r = unpack::unpack(
            &z[..],
            &index,
            Mode::Extract {
                staging: &jail.staging,
                owner: None,
            },
            layout(&case),
            &NotesOnly,
        );
        if r.is_ok() {
            let _ = unpack::finish_directories(&jail.staging, &index);
        }
        r
    });
    let escaped = jail.escaped();
    crate::ensure!(
        escaped.is_empty(),
        "extraction wrote outside its staging folder: {escaped:?} (unpack returned {result:?})"
    );
    bounded("extract", held, n, 4 * MIB, 4)
}

#[test]
fn tar_verify() {
    fuzz("tar_verify", case(), verify);
}

#[test]
fn tar_extract() {
    fuzz(
        "tar_extract",
        case().prop_map(nothing_beneath_links),
        extract,
    );
}

/// The chain from issue 9 and its relatives, mixed into random members.
fn chain_case() -> impl Strategy<Value = Case> {
    (case(), any::<Pick>()).prop_map(|(mut case, at)| {
        let chain = known_chain();
        let i = at.index(case.members.len() + 1);
        case.members.splice(i..i, chain);
        case
    })
}

/// `db/s -> .`, `db/t -> s/s/..` (the staging folder), `db/t2 -> t/..` (its parent), then
/// `db/t2/x/pwned.txt`: the escape issue 9 reports.
pub fn known_chain() -> Vec<Member> {
    vec![
        Member::new("db", Body::Dir),
        Member::new("db/s", Body::Symlink(".".into())),
        Member::new("db/t", Body::Symlink("s/s/..".into())),
        Member::new("db/t2", Body::Symlink("t/..".into())),
        Member::new("db/t2/x/pwned.txt", Body::File(b"pwned".to_vec())),
    ]
}

/// ENABLE AFTER MERGING the hardened unpack.rs (issue 9, part 1): today's extractor writes
/// through links, and this target finds escapes like the known chain within seconds.
#[test]
fn tar_extract_through_links() {
    fuzz(
        "tar_extract_through_links",
        prop_oneof![case(), chain_case()],
        extract,
    );
}

/// ENABLE AFTER MERGING the hardened unpack.rs: the chain of issue 9, exactly, is contained in
/// extract mode and flagged by verify.
#[test]
fn the_known_link_chain_is_contained_and_flagged() {
    let case = Case::honest(known_chain());
    extract(case.clone()).unwrap();
    let outside = Path::new("/nonexistent-outside");
    let (z, _) = compressed(&case, outside);
    let index = index_of(&case, outside);
    let verified = unpack::unpack(
        &z[..],
        &index,
        Mode::Verify { max_problems: 8 },
        Layout::FOLDERS_ONLY,
        &NotesOnly,
    );
    assert!(
        verified.as_ref().map_or(true, |u| u.problem_count > 0),
        "verify called the chain intact: {verified:?}"
    );
}

/// A GNU long name of `len` bytes for an empty `db/x`, streamed into zstd: a few KiB on the wire.
fn long_name_archive(len: usize) -> Vec<u8> {
    let mut z = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("an encoder");
    let mut head = Vec::new();
    header(
        &mut head,
        b"././@LongLink",
        tar::EntryType::GNULongName,
        len as u64 + 1,
        (0o644, 0),
        b"",
    );
    z.write_all(&head).expect("compressed");
    let chunk = vec![b'a'; 1 << 20];
    for start in (0..len).step_by(chunk.len()) {
        z.write_all(&chunk[..(len - start).min(chunk.len())])
            .expect("compressed");
    }
    let mut tail = vec![0u8; 512 - len % 512];
    header(
        &mut tail,
        b"db/x",
        tar::EntryType::Regular,
        0,
        (0o644, 0),
        b"",
    );
    tail.extend_from_slice(&[0u8; 1024]);
    z.write_all(&tail).expect("compressed");
    z.finish().expect("compressed")
}

/// ENABLE once unpack.rs bounds tar extension members: the tar crate reads a GNU long name (and a
/// long link, a pax header) whole into memory, so a few KiB of zstd make unpack allocate 256 MiB.
#[test]
fn a_huge_long_name_is_refused_in_bounded_memory() {
    let z = long_name_archive(256 << 20);
    let index = Index::Inline(vec![]);
    let (_, held) = peak(|| {
        unpack::unpack(
            &z[..],
            &index,
            Mode::Verify { max_problems: 8 },
            Layout::FOLDERS_ONLY,
            &NotesOnly,
        )
    });
    assert!(
        held < 16 * MIB,
        "{held} bytes at the peak for {} bytes of zstd",
        z.len()
    );
}
