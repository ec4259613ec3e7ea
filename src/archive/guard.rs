//! What an archive's member list may hold, decided before anything is written and shared by verify
//! and extract: plain names under a known root; only files, folders and symbolic links; lifeboat's
//! own walk order (which rules out duplicates, a folder replaced by a file and members written
//! through a link, in O(1) memory); and links that stay inside their root even when followed
//! through other links. No I/O.

use std::collections::BTreeMap;

use super::{ArchiveError, EntryKind, Layout, ROOTS};

/// Longest member name or link target accepted (Linux's PATH_MAX less its NUL).
pub const MAX_PATH: usize = 4095;
/// Longest part of a name (NAME_MAX).
const MAX_NAME: usize = 255;
/// Links followed while resolving one target: the kernel's MAXSYMLINKS.
pub const MAX_FOLLOWS: usize = 40;
/// Symbolic links an archive may hold. Dremio's stores hold next to none; the table of them is
/// what both modes resolve links against, so it must stay small whatever the archive claims.
pub const MAX_LINKS: usize = 100_000;
/// Bytes of link names and targets that table may hold.
pub const MAX_LINK_BYTES: usize = 32 << 20;

/// Names longer than this are cut in messages: a forged name can be as long as the tar reader allows.
const SHOWN_NAME: usize = 256;

fn shown(name: &str) -> String {
    if name.len() <= SHOWN_NAME {
        return name.to_string();
    }
    let cut = (0..=SHOWN_NAME)
        .rev()
        .find(|&i| name.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}... ({} bytes)", &name[..cut], name.len())
}

pub fn refuse(path: &str, why: impl Into<String>) -> ArchiveError {
    ArchiveError::UnsafeEntry {
        path: shown(path),
        why: why.into(),
    }
}

fn noun(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::File => "file",
        EntryKind::Dir => "folder",
        EntryKind::Symlink => "symbolic link",
    }
}

/// What lifeboat restores of a tar member type; every other type is refused with its reason.
pub fn kind_of(
    path: &str,
    kind: tar::EntryType,
    link_name: Option<&[u8]>,
) -> Result<EntryKind, ArchiveError> {
    let why = match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => return Ok(EntryKind::File),
        tar::EntryType::Directory => return Ok(EntryKind::Dir),
        tar::EntryType::Symlink => return Ok(EntryKind::Symlink),
        tar::EntryType::Link => format!(
            "a hard link (to {:?}): lifeboat never archives hard links, and one could give the restored tree a file from anywhere on this host",
            shown(&String::from_utf8_lossy(link_name.unwrap_or_default()))
        ),
        tar::EntryType::Char => "a character device: lifeboat archives only files, folders and symbolic links, and a device node would give access to hardware".into(),
        tar::EntryType::Block => "a block device: lifeboat archives only files, folders and symbolic links, and a device node would give access to a disk".into(),
        tar::EntryType::Fifo => "a FIFO (named pipe): lifeboat archives only files, folders and symbolic links".into(),
        tar::EntryType::GNUSparse => "a sparse file, which lifeboat never writes".into(),
        other => format!(
            "member type {:?} ({:?}) is never restored: lifeboat archives only files, folders and symbolic links",
            other,
            other.as_byte() as char
        ),
    };
    Err(refuse(path, why))
}

/// The member's name, checked: UTF-8, relative, no `.`, `..` or empty parts, within PATH_MAX and
/// NAME_MAX, under a known root (or, at the top level, a file the layout allows). A folder's name
/// may end in one `/`, as tar writes it.
pub fn member_name(raw: &[u8], kind: EntryKind, layout: Layout) -> Result<String, ArchiveError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| refuse(&String::from_utf8_lossy(raw), "its name is not UTF-8"))?;
    let path = match kind {
        EntryKind::Dir => text.strip_suffix('/').unwrap_or(text),
        _ => text,
    };
    check_relative(path)?;
    let (root, rest) = split_root(path);
    let top_level_file = rest.is_none() && kind == EntryKind::File && (layout.top_level_file)(path);
    if !ROOTS.contains(&root) && !top_level_file {
        return Err(refuse(
            path,
            format!("outside the known folders ({})", ROOTS.join(", ")),
        ));
    }
    Ok(path.to_string())
}

/// A plain relative path: parts separated by single `/`, none of them `.` or `..`.
pub fn check_relative(path: &str) -> Result<(), ArchiveError> {
    let why = if path.is_empty() {
        "an empty name"
    } else if path.starts_with('/') {
        "an absolute path"
    } else if path.len() > MAX_PATH {
        "a name longer than 4095 bytes"
    } else if path.contains('\0') {
        // No file name holds one; the walk order would also confuse it with '/'.
        "a NUL byte in its name"
    } else {
        match path.split('/').find_map(part_problem) {
            Some(why) => why,
            None => return Ok(()),
        }
    };
    Err(refuse(path, why))
}

fn part_problem(part: &str) -> Option<&'static str> {
    match part {
        "" => Some("an empty part ('//' or a trailing '/')"),
        "." => Some("contains '.'"),
        ".." => Some("contains '..'"),
        p if p.len() > MAX_NAME => Some("a part longer than 255 bytes"),
        _ => None,
    }
}

/// The first part of a path and what follows it, if anything.
fn split_root(path: &str) -> (&str, Option<&str>) {
    match path.split_once('/') {
        Some((root, rest)) => (root, Some(rest)),
        None => (path, None),
    }
}

/// The folder a member lives in (`""` for a top-level one).
pub fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(parent, _)| parent)
}

/// The last part of a path.
pub fn name_of(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// Orders paths part by part, each part bytewise: the order of a walk that visits a folder's
/// contents right after it, siblings sorted by name. Names hold no NUL, so mapping `/` to NUL and
/// comparing bytes gives exactly that order without splitting.
pub fn walk_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |b: u8| if b == b'/' { 0 } else { b };
    match a.bytes().zip(b.bytes()).find(|(x, y)| x != y) {
        None => a.len().cmp(&b.len()),
        Some((x, y)) => key(x).cmp(&key(y)),
    }
}

fn is_inside(path: &str, folder: &str) -> bool {
    path.len() > folder.len() && path.starts_with(folder) && path.as_bytes()[folder.len()] == b'/'
}

/// lifeboat's packer walks each root depth first with siblings sorted by name, so within a root
/// names increase strictly (see [`walk_cmp`]) and every member's folder came before it; a root,
/// once left, never comes back (offline archives hold db, uploads, security in turn; a logical one
/// is one walk whose top-level files interleave with its roots). Checking that needs only the
/// previous member, and it refuses duplicates, a folder replaced by a file or a file by a folder,
/// and any member written through a link (its folder would have to be that link).
#[derive(Debug, Default)]
pub struct WalkOrder {
    /// The root being walked (an index into ROOTS) and its last member.
    walking: Option<usize>,
    prev: String,
    prev_kind: Option<EntryKind>,
    roots_seen: [bool; ROOTS.len()],
    last_top_level: Option<String>,
}

impl WalkOrder {
    /// Admits the next member (whose name passed [`member_name`]) or says why it is refused.
    pub fn admit(&mut self, path: &str, kind: EntryKind) -> Result<(), ArchiveError> {
        let (root, rest) = split_root(path);
        match (ROOTS.iter().position(|r| *r == root), rest) {
            (None, _) => self.top_level(path),
            (Some(i), None) => self.enter_root(i, path, kind),
            (Some(i), Some(_)) => self.within_root(i, path, kind),
        }
    }

    fn top_level(&mut self, path: &str) -> Result<(), ArchiveError> {
        if let Some(last) = &self.last_top_level {
            match walk_cmp(path, last) {
                std::cmp::Ordering::Greater => {}
                std::cmp::Ordering::Equal => {
                    return Err(refuse(
                        path,
                        "a second member with this name: lifeboat never archives a name twice",
                    ));
                }
                std::cmp::Ordering::Less => {
                    return Err(refuse(
                        path,
                        format!(
                            "out of order: it comes after {last:?}, and lifeboat archives each name once, sorted"
                        ),
                    ));
                }
            }
        }
        self.last_top_level = Some(path.to_string());
        self.walking = None;
        Ok(())
    }

    fn enter_root(&mut self, i: usize, path: &str, kind: EntryKind) -> Result<(), ArchiveError> {
        if kind != EntryKind::Dir {
            return Err(refuse(
                path,
                format!("the root {path}/ must be a folder, not a {}", noun(kind)),
            ));
        }
        if self.roots_seen[i] {
            return Err(refuse(
                path,
                format!("the root folder {path}/ appears twice"),
            ));
        }
        self.roots_seen[i] = true;
        self.walking = Some(i);
        self.remember(path, kind);
        Ok(())
    }

    fn within_root(&mut self, i: usize, path: &str, kind: EntryKind) -> Result<(), ArchiveError> {
        let root = ROOTS[i];
        if self.walking != Some(i) {
            let why = if self.roots_seen[i] {
                format!(
                    "it comes after the archive left {root}/: lifeboat archives each root's members together, once"
                )
            } else {
                format!("its root folder {root}/ is not in the archive before it")
            };
            return Err(refuse(path, why));
        }
        let parent = parent_of(path);
        let prev = self.prev.as_str();
        if is_inside(path, prev) {
            match self.prev_kind {
                Some(EntryKind::Dir) => {}
                Some(EntryKind::Symlink) => {
                    return Err(refuse(
                        path,
                        format!("it would be written through a link: {prev} is a symbolic link"),
                    ));
                }
                _ => {
                    return Err(refuse(
                        path,
                        format!("{prev} is a file, so nothing can be inside it"),
                    ));
                }
            }
        }
        if parent != prev {
            match walk_cmp(path, prev) {
                std::cmp::Ordering::Equal => {
                    return Err(refuse(
                        path,
                        format!(
                            "a second member with this name (a {} after a {}): lifeboat never archives a name twice",
                            noun(kind),
                            self.prev_kind.map_or("member", noun)
                        ),
                    ));
                }
                std::cmp::Ordering::Less => {
                    return Err(refuse(
                        path,
                        format!(
                            "out of order: it comes after {prev}, and lifeboat archives each folder's members once, sorted by name (a reordered archive can hide a duplicate, or a file replacing a folder)"
                        ),
                    ));
                }
                std::cmp::Ordering::Greater if !is_inside(prev, parent) => {
                    return Err(refuse(
                        path,
                        format!("its folder {parent} is not in the archive before it"),
                    ));
                }
                std::cmp::Ordering::Greater => {}
            }
        }
        self.remember(path, kind);
        Ok(())
    }

    fn remember(&mut self, path: &str, kind: EntryKind) {
        self.prev.clear();
        self.prev.push_str(path);
        self.prev_kind = Some(kind);
    }
}

/// The archive's symbolic links (path -> target), bounded, so that both modes can resolve every
/// link through the others once the whole list is known, and extract can create them last.
#[derive(Debug, Default)]
pub struct Links {
    table: BTreeMap<String, String>,
    bytes: usize,
}

impl Links {
    /// Records a link whose name passed [`member_name`]; refuses a target that is not a plain
    /// relative path staying inside the link's root, and archives with too many links.
    pub fn admit(&mut self, path: &str, target: &[u8]) -> Result<&str, ArchiveError> {
        let target = std::str::from_utf8(target)
            .map_err(|_| refuse(path, "its link target is not UTF-8"))?;
        check_target_text(path, target)?;
        if self.table.len() >= MAX_LINKS || self.bytes + path.len() + target.len() > MAX_LINK_BYTES
        {
            return Err(refuse(
                path,
                format!(
                    "the archive holds more than {MAX_LINKS} symbolic links (or {} MiB of them): Dremio's stores hold next to none, so it is refused rather than resolved",
                    MAX_LINK_BYTES >> 20
                ),
            ));
        }
        self.bytes += path.len() + target.len();
        self.table.insert(path.to_string(), target.to_string());
        Ok(self.table[path].as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.table.iter().map(|(p, t)| (p.as_str(), t.as_str()))
    }

    /// Follows every link through the others, as the kernel would once they all exist; refuses the
    /// first (in name order) that leads outside its root or does not end within 40 links.
    pub fn resolve_all(&self) -> Result<(), ArchiveError> {
        self.table
            .keys()
            .try_for_each(|link| self.resolve(link).map(|_| ()))
    }

    /// Where `link` leads, as parts from the staging folder (its root first); a missing part is
    /// taken as a plain folder, which can only make the answer stricter than the kernel's.
    pub fn resolve(&self, link: &str) -> Result<Vec<String>, ArchiveError> {
        let target = &self.table[link];
        let root = split_root(link).0;
        let mut at: Vec<String> = parent_of(link).split('/').map(str::to_string).collect();
        // Parts still to walk, the next one last.
        let mut pending: Vec<&str> = target.rsplit('/').collect();
        let mut followed = vec![link];
        while let Some(part) = pending.pop() {
            match part {
                "" | "." => {}
                ".." if at.len() == 1 => {
                    return Err(refuse(
                        link,
                        format!(
                            "its target {target:?} leads outside {root}/ once the links it passes through are followed ({})",
                            shown(&followed.join(" -> "))
                        ),
                    ));
                }
                ".." => {
                    at.pop();
                }
                name => {
                    at.push(name.to_string());
                    let here = at.join("/");
                    let Some((next, next_target)) = self.table.get_key_value(&here) else {
                        continue;
                    };
                    if followed.len() >= MAX_FOLLOWS {
                        return Err(refuse(
                            link,
                            format!(
                                "its target {target:?} does not resolve: more than {MAX_FOLLOWS} links in a row (a loop?)"
                            ),
                        ));
                    }
                    followed.push(next);
                    at.pop();
                    pending.extend(next_target.rsplit('/'));
                }
            }
        }
        Ok(at)
    }
}

/// A link target must be relative and, read as text from the link's folder, stay inside the
/// link's own root: db/, uploads/ and security/ are each restored to their own place.
pub fn check_target_text(link: &str, target: &str) -> Result<(), ArchiveError> {
    let root = split_root(link).0;
    let why = if target.is_empty() {
        "an empty link target".to_string()
    } else if target.len() > MAX_PATH {
        "a link target longer than 4095 bytes".to_string()
    } else if target.starts_with('/') {
        format!("a link to the absolute path {target:?}")
    } else if target.contains('\0') {
        "a NUL byte in its link target".to_string()
    } else {
        let mut depth = parent_of(link).split('/').count();
        let escapes = target.split('/').any(|part| {
            match part {
                "" | "." => {}
                ".." => depth -= 1,
                _ => depth += 1,
            }
            depth == 0
        });
        if !escapes {
            return Ok(());
        }
        format!(
            "its target {target:?} points outside {root}/ (db/, uploads/ and security/ are each restored to their own place, so a link must stay inside its own)"
        )
    };
    Err(refuse(link, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(r: Result<impl std::fmt::Debug, ArchiveError>) -> String {
        match r {
            Err(ArchiveError::UnsafeEntry { why, .. }) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn names_are_plain_relative_paths_under_a_root() {
        let n = |s: &str, k| member_name(s.as_bytes(), k, Layout::FOLDERS_ONLY);
        assert_eq!(n("db/", EntryKind::Dir).unwrap(), "db");
        assert_eq!(
            n("db/catalog/000012.sst", EntryKind::File).unwrap(),
            "db/catalog/000012.sst"
        );
        assert!(why(n("db/../etc/passwd", EntryKind::File)).contains("'..'"));
        assert!(why(n("/etc/passwd", EntryKind::File)).contains("absolute"));
        assert!(why(n("db/./x", EntryKind::File)).contains("'.'"));
        assert!(why(n("./db", EntryKind::Dir)).contains("'.'"));
        assert!(why(n("db//x", EntryKind::File)).contains("empty part"));
        assert!(why(n("db/x/", EntryKind::File)).contains("empty part"));
        assert!(why(n("", EntryKind::File)).contains("empty name"));
        assert!(why(n("db/a\0/../x", EntryKind::File)).contains("NUL"));
        assert!(why(n("etc/passwd", EntryKind::File)).contains("known folders"));
        assert!(why(n(&format!("db/{}", "x".repeat(256)), EntryKind::File)).contains("255"));
        let long = format!("db/{}", ["x"; 2100].join("/"));
        match n(&long, EntryKind::File) {
            Err(ArchiveError::UnsafeEntry { path, why }) => {
                assert!(why.contains("4095"), "{why}");
                assert!(
                    path.len() < 300 && path.ends_with("... (4202 bytes)"),
                    "{path}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            why(member_name(
                b"db/\xff",
                EntryKind::File,
                Layout::FOLDERS_ONLY
            ))
            .contains("UTF-8")
        );
    }

    #[test]
    fn top_level_files_only_where_the_layout_allows_them() {
        let logical = Layout {
            top_level_file: |n| n.ends_with("_info.json"),
        };
        assert!(member_name(b"jobs_info.json", EntryKind::File, logical).is_ok());
        assert!(member_name(b"jobs_info.json", EntryKind::File, Layout::FOLDERS_ONLY).is_err());
        assert!(member_name(b"jobs_info.json", EntryKind::Symlink, logical).is_err());
        assert!(member_name(b"jobs_info.json", EntryKind::Dir, logical).is_err());
    }

    #[test]
    fn only_files_folders_and_links_are_restored() {
        assert_eq!(
            kind_of("a", tar::EntryType::Regular, None).unwrap(),
            EntryKind::File
        );
        assert!(
            why(kind_of("a", tar::EntryType::Link, Some(b"/etc/passwd")))
                .contains("hard link (to \"/etc/passwd\")")
        );
        assert!(why(kind_of("a", tar::EntryType::Char, None)).contains("character device"));
        assert!(why(kind_of("a", tar::EntryType::Block, None)).contains("block device"));
        assert!(why(kind_of("a", tar::EntryType::Fifo, None)).contains("FIFO"));
        assert!(why(kind_of("a", tar::EntryType::GNUSparse, None)).contains("sparse"));
        assert!(why(kind_of("a", tar::EntryType::new(b'V'), None)).contains("never restored"));
    }

    #[test]
    fn walk_order_compares_part_by_part() {
        use std::cmp::Ordering::*;
        assert_eq!(walk_cmp("a/x", "a-b"), Less);
        assert_eq!(walk_cmp("a-b", "a.b"), Less);
        assert_eq!(walk_cmp("a", "a/x"), Less);
        assert_eq!(walk_cmp("ab", "a/x"), Greater);
        assert_eq!(walk_cmp("a/x", "a/x"), Equal);
        assert_eq!(walk_cmp("a/b/c", "a/b-"), Less);
        assert_eq!(walk_cmp("b", "a/zzz"), Greater);
    }

    fn walk(members: &[(&str, EntryKind)]) -> Result<(), ArchiveError> {
        let mut order = WalkOrder::default();
        members.iter().try_for_each(|(p, k)| order.admit(p, *k))
    }

    use EntryKind::{Dir as D, File as F, Symlink as L};

    #[test]
    fn lifeboats_own_walks_are_admitted() {
        walk(&[
            ("db", D),
            ("db/a", D),
            ("db/a/x", F),
            ("db/a/y", D),
            ("db/a/y/z", F),
            ("db/a-b", F),
            ("db/a.b", L),
            ("db/b", D),
            ("uploads", D),
            ("uploads/u", F),
            ("security", D),
            ("security/k", F),
        ])
        .unwrap();
        // A logical backup: one walk, top-level files between the roots.
        walk(&[
            ("acl_backup.json", F),
            ("acl_info.json", F),
            ("security", D),
            ("security/k", F),
            ("t_info.json", F),
            ("uploads", D),
            ("uploads/a", F),
            ("users_info.json", F),
        ])
        .unwrap();
    }

    #[test]
    fn duplicates_and_replacements_are_refused() {
        assert!(why(walk(&[("db", D), ("db/a", F), ("db/a", F)])).contains("second member"));
        assert!(
            why(walk(&[("db", D), ("db/a", D), ("db/a", F)])).contains("a file after a folder")
        );
        assert!(
            why(walk(&[("db", D), ("db/a", D), ("db/a/x", F), ("db/a", F)]))
                .contains("out of order")
        );
        assert!(why(walk(&[("db", D), ("db/a", F), ("db/a/x", F)])).contains("is a file, so"));
        assert!(why(walk(&[("db", D), ("db", D)])).contains("appears twice"));
        assert!(why(walk(&[("db", D), ("uploads", D), ("db/x", F)])).contains("left db/"));
        assert!(why(walk(&[("a_info.json", F), ("a_info.json", F)])).contains("second member"));
        assert!(why(walk(&[("b_info.json", F), ("a_info.json", F)])).contains("out of order"));
    }

    #[test]
    fn every_member_needs_its_folder_first_and_no_member_goes_through_a_link() {
        assert!(why(walk(&[("db/x", F)])).contains("root folder db/ is not"));
        assert!(why(walk(&[("db", F)])).contains("must be a folder"));
        assert!(why(walk(&[("db", L)])).contains("must be a folder"));
        assert!(why(walk(&[("db", D), ("db/a/x", F)])).contains("folder db/a is not"));
        assert!(why(walk(&[("db", D), ("db/l", L), ("db/l/x", F)])).contains("through a link"));
        assert!(why(walk(&[("db", D), ("db/l", L), ("db/l/x/y", F)])).contains("through a link"));
        assert!(why(walk(&[("db", D), ("db/f", F), ("db/f/x/y", F)])).contains("is a file, so"));
        // The chain: db/t2 is a link, so db/t2/x cannot follow it.
        let chain = walk(&[
            ("db", D),
            ("db/s", L),
            ("db/t", L),
            ("db/t2", L),
            ("db/t2/x", D),
        ]);
        assert!(why(chain).contains("db/t2 is a symbolic link"));
        // Skipping back into an earlier link's name is out of order.
        assert!(
            why(walk(&[("db", D), ("db/l", L), ("db/m", F), ("db/l/x", F)]))
                .contains("out of order")
        );
    }

    fn links(pairs: &[(&str, &str)]) -> Links {
        let mut l = Links::default();
        for (p, t) in pairs {
            l.admit(p, t.as_bytes()).unwrap();
        }
        l
    }

    #[test]
    fn link_targets_must_stay_in_their_root_as_text() {
        let t = check_target_text;
        assert!(t("db/catalog/link", "000012.sst").is_ok());
        assert!(t("db/catalog/link", "../blob/x").is_ok());
        assert!(t("db/link", ".").is_ok());
        assert!(t("db/a/link", "../..//db/x").is_err());
        assert!(why(t("db/link", "../security/keys")).contains("outside db/"));
        assert!(why(t("db/link", "..")).contains("outside db/"));
        assert!(why(t("db/a/link", "../../../etc")).contains("outside db/"));
        // Leaving the root and coming back is still leaving it (the way back may be a link).
        assert!(t("db/link", "../db/x").is_err());
        assert!(why(t("uploads/link", "/etc/passwd")).contains("absolute"));
        assert!(why(t("uploads/link", "")).contains("empty"));
        assert!(why(t("uploads/link", "a\0b")).contains("NUL"));
    }

    #[test]
    fn chains_of_links_are_followed() {
        // The chain: every link is fine as text, db/t leads to the staging folder.
        let l = links(&[("db/s", "."), ("db/t", "s/s/.."), ("db/t2", "t/..")]);
        assert_eq!(l.resolve("db/s").unwrap(), ["db"]);
        assert!(why(l.resolve("db/t")).contains("db/t -> db/s -> db/s"));
        assert!(why(l.resolve_all()).contains("outside db/"));
        // A link resolved through a later one.
        let l = links(&[("db/a", "z/.."), ("db/z", ".")]);
        assert!(why(l.resolve("db/a")).contains("db/a -> db/z"));
        let l = links(&[("db/a", "b/c"), ("db/b", "x"), ("db/x/c", "../y")]);
        assert_eq!(l.resolve("db/a").unwrap(), ["db", "y"]);
        l.resolve_all().unwrap();
    }

    #[test]
    fn loops_and_long_chains_do_not_resolve() {
        let l = links(&[("db/a", "b"), ("db/b", "a")]);
        assert!(why(l.resolve("db/a")).contains("more than 40 links"));
        let l = links(&[("db/s", "s")]);
        assert!(why(l.resolve("db/s")).contains("more than 40 links"));
        // 40 links in a row resolve (the kernel's limit), 41 do not.
        let chain = |n: usize| {
            let pairs: Vec<(String, String)> = (0..n)
                .map(|i| (format!("db/l{i}"), format!("l{}", i + 1)))
                .collect();
            let mut l = Links::default();
            for (p, t) in &pairs {
                l.admit(p, t.as_bytes()).unwrap();
            }
            l
        };
        assert_eq!(chain(40).resolve("db/l0").unwrap(), ["db", "l40"]);
        assert!(why(chain(41).resolve("db/l0")).contains("more than 40"));
    }

    #[test]
    fn dangling_links_resolve_to_where_they_point() {
        let l = links(&[("db/later", "not-yet/x"), ("security/a/k", "../k2")]);
        assert_eq!(l.resolve("db/later").unwrap(), ["db", "not-yet", "x"]);
        assert_eq!(l.resolve("security/a/k").unwrap(), ["security", "k2"]);
    }

    #[test]
    fn the_link_table_is_bounded() {
        let mut l = Links::default();
        let target = "x".repeat(4000);
        let mut refused = None;
        for i in 0..MAX_LINKS {
            if let Err(e) = l.admit(&format!("db/l{i}"), target.as_bytes()) {
                refused = Some(e);
                break;
            }
        }
        assert!(why(Err::<(), _>(refused.expect("refused before the cap"))).contains("more than"));
        assert!(l.bytes <= MAX_LINK_BYTES);
        assert!(why(l.admit("db/bad", b"\xff")).contains("UTF-8"));
    }
}
