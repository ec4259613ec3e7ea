//! `/proc/self/mountinfo` (proc(5)): which mount holds a path, with its filesystem type and options.

use std::path::{Component, Path};

/// One line of mountinfo, paths unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
    /// Per-mount options (`rw,relatime`); `sync` shows here.
    pub mount_opts: Vec<String>,
    /// Superblock options: NFS's `vers=`, `hard`, `proto=`, `local_lock=`.
    pub super_opts: Vec<String>,
}

impl Mount {
    /// Whether an option (`hard`) or a key (`vers`, for `vers=4.2`) is among either option list.
    pub fn has(&self, name: &str) -> bool {
        self.options().any(|o| o == name)
    }

    /// The value of a `key=value` option; the superblock's wins over the mount's.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.super_opts
            .iter()
            .chain(&self.mount_opts)
            .find_map(|o| o.strip_prefix(key)?.strip_prefix('='))
    }

    fn options(&self) -> impl Iterator<Item = &str> {
        self.mount_opts
            .iter()
            .chain(&self.super_opts)
            .map(|o| o.split('=').next().unwrap_or(o))
    }

    /// Every option, for the evidence.
    pub fn all_options(&self) -> String {
        [self.mount_opts.join(","), self.super_opts.join(",")].join(" ")
    }
}

/// Parses mountinfo text; malformed lines are left out (a copy from another host may be cut short).
/// The options kept per mount (mount or superblock options).
const MAX_OPTIONS: usize = 256;

pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(line).collect()
}

fn line(l: &str) -> Option<Mount> {
    let (head, tail) = l.split_once(" - ")?;
    // Six fields are read; the optional ones after them (and a hostile run of spaces) are not
    // split at all.
    let head: Vec<&str> = head.splitn(7, ' ').collect();
    let mut tail = tail.split(' ');
    let (fstype, source, super_opts) = (tail.next()?, tail.next()?, tail.next().unwrap_or(""));
    if head.len() < 6 {
        return None;
    }
    // Real mounts have a few dozen options at most; a line of commas must not become a vector.
    let opts = |s: &str| {
        s.split(',')
            .filter(|o| !o.is_empty())
            .take(MAX_OPTIONS)
            .map(String::from)
            .collect()
    };
    Some(Mount {
        mount_point: unescape(head[4]),
        fstype: fstype.to_string(),
        source: unescape(source),
        mount_opts: opts(head[5]),
        super_opts: opts(super_opts),
    })
}

/// The kernel writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount holding `path` (absolute, already resolved): the longest mount point above it, and
/// of equal ones the last listed (the top of a stack of mounts).
pub fn mount_of<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    let mut best: Option<&Mount> = None;
    for m in mounts.iter().filter(|m| path.starts_with(&m.mount_point)) {
        if best.is_none_or(|b| depth(&m.mount_point) >= depth(&b.mount_point)) {
            best = Some(m);
        }
    }
    best
}

fn depth(p: &str) -> usize {
    Path::new(p)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,errors=remount-ro
40 22 0:45 / /mnt/dremio rw,sync,relatime shared:20 - nfs4 nas:/export/dremio rw,vers=4.2,hard,proto=tcp,local_lock=none
41 22 0:46 / /mnt/with\\040space rw - nfs nas:/x rw,vers=3,soft
42 40 0:47 / /mnt/dremio rw shared:21 - tmpfs tmpfs rw
broken line
";

    #[test]
    fn lines_give_mount_points_types_and_options() {
        let m = parse(TEXT);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].fstype, "nfs4");
        assert_eq!(m[1].source, "nas:/export/dremio");
        assert!(m[1].has("sync") && m[1].has("hard") && !m[1].has("soft"));
        assert_eq!(m[1].value("vers"), Some("4.2"));
        assert_eq!(m[1].value("local_lock"), Some("none"));
        assert_eq!(m[2].mount_point, "/mnt/with space");
    }

    #[test]
    fn the_longest_mount_point_holds_a_path_and_the_last_of_a_stack_wins() {
        let m = parse(TEXT);
        let of = |p: &str| mount_of(&m, Path::new(p)).map(|m| m.fstype.as_str());
        assert_eq!(of("/var/lib/dremio"), Some("ext4"));
        // Stacked on /mnt/dremio: the tmpfs listed last hides the NFS mount.
        assert_eq!(of("/mnt/dremio/data"), Some("tmpfs"));
        // A mount point is a whole component: /mnt/dremio2 is not under /mnt/dremio.
        assert_eq!(of("/mnt/dremio2"), Some("ext4"));
        assert_eq!(of("/mnt/with space/d"), Some("nfs"));
        assert_eq!(mount_of(&[], Path::new("/x")), None);
    }

    #[test]
    fn octal_escapes_decode_and_stray_backslashes_stay() {
        assert_eq!(unescape("a\\011b\\012c\\134d"), "a\tb\nc\\d");
        assert_eq!(unescape("x\\9y\\"), "x\\9y\\");
    }
}
