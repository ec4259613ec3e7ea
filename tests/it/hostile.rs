//! Hostile archives: backups whose manifest and index digests all match (anyone who can write to
//! the bucket can make one), holding members that try to leave the target. `verify` flags each,
//! `restore` refuses each (into an empty target and with `--replace` over an existing one), and
//! nothing new appears anywhere: no file outside the target, no staging folder left behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

use sha2::{Digest, Sha256};

use crate::support::*;

/// One member of a forged archive. Names and targets go into the tar header as raw bytes, so that
/// nothing on the writing side cleans them up.
#[derive(Debug, Clone)]
enum M {
    Dir(String),
    File(String, &'static [u8]),
    Link(String, String),
    HardLink(String, String),
    Fifo(String),
    CharDevice(String),
    BlockDevice(String),
}

fn dir(name: &str) -> M {
    M::Dir(format!("{name}/"))
}

fn file(name: &str, data: &'static [u8]) -> M {
    M::File(name.into(), data)
}

fn link(name: &str, target: &str) -> M {
    M::Link(name.into(), target.into())
}

impl M {
    /// (raw name, tar type, link target, contents)
    fn parts(&self) -> (&str, tar::EntryType, &str, &'static [u8]) {
        use tar::EntryType as T;
        match self {
            M::Dir(n) => (n, T::Directory, "", b""),
            M::File(n, data) => (n, T::Regular, "", data),
            M::Link(n, t) => (n, T::Symlink, t, b""),
            M::HardLink(n, t) => (n, T::Link, t, b""),
            M::Fifo(n) => (n, T::Fifo, "", b""),
            M::CharDevice(n) => (n, T::Char, "", b""),
            M::BlockDevice(n) => (n, T::Block, "", b""),
        }
    }

    /// The index entry that matches the member (kinds the index cannot name pass as empty files,
    /// so that only the member checks can stop them).
    fn index_entry(&self) -> serde_json::Value {
        let (name, kind, target, data) = self.parts();
        let mut e =
            serde_json::json!({"path": name.trim_end_matches('/'), "mode": 420, "mtime": 0});
        match kind {
            tar::EntryType::Directory => e["type"] = "dir".into(),
            tar::EntryType::Symlink => {
                e["type"] = "symlink".into();
                e["target"] = target.into();
            }
            _ => {
                e["type"] = "file".into();
                e["size"] = data.len().into();
                e["sha256"] = hex::encode(Sha256::digest(data)).into();
            }
        }
        e
    }
}

fn tar_of(members: &[M]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for m in members {
        let (name, kind, target, data) = m.parts();
        assert!(
            name.len() <= 100 && target.len() <= 100,
            "{m:?}: too long for a plain header"
        );
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        if kind.is_character_special() || kind.is_block_special() {
            h.set_device_major(if kind.is_block_special() { 8 } else { 1 })
                .unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        tar.append(&h, data).unwrap();
    }
    tar.into_inner().unwrap()
}

/// A new backup in `loc`, copied from the real backup `base`, whose archive holds exactly `members`
/// and whose manifest (archive digest and size, inline index) matches it. Returns its id.
fn forge(loc: &TestLocation, base: &str, members: &[M]) -> String {
    static MINUTES_AGO: AtomicI64 = AtomicI64::new(1);
    let when =
        chrono::Utc::now() - chrono::Duration::minutes(MINUTES_AGO.fetch_add(1, Ordering::Relaxed));
    let id = loc.fabricate("dremio", base, when);
    let compressed = zstd::encode_all(&tar_of(members)[..], 3).unwrap();
    let mkey = format!("dremio/{id}/manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&loc.read(&mkey)).unwrap();
    manifest["archive"]["bytes"] = compressed.len().into();
    manifest["archive"]["sha256"] = hex::encode(Sha256::digest(&compressed)).into();
    let files: Vec<serde_json::Value> = members.iter().map(M::index_entry).collect();
    manifest["index"] = serde_json::json!({"entries": files.len(), "location": "inline"});
    manifest["files"] = files.into();
    loc.write(&format!("dremio/{id}/data.tar.zst"), compressed);
    loc.write(&mkey, serde_json::to_vec(&manifest).unwrap());
    id
}

/// One fixture and one real backup for every case here.
struct Bench {
    fx: Fixture,
    loc: TestLocation,
    base: String,
}

fn bench(name: &str) -> Bench {
    let fx = fixture(1, 1);
    let loc = TestLocation::new(StoreKind::Local, name);
    let made = ok_json(&lifeboat(
        &[
            "--json",
            "backup",
            "--format",
            "1",
            "--dremio-home",
            fx.home.to_str().unwrap(),
            "--to",
            &loc.url,
        ],
        &[],
    ));
    let base = made["id"].as_str().unwrap().to_string();
    Bench { fx, loc, base }
}

impl Bench {
    fn restore(&self, id: &str, paths_local: &Path, replace: bool) -> std::process::Output {
        let mut args = vec![
            "--json",
            "restore",
            "--from",
            &self.loc.url,
            "--backup",
            id,
            "--paths-local",
            paths_local.to_str().unwrap(),
            "--dremio-version",
            &self.fx.version,
        ];
        if replace {
            args.push("--replace");
        }
        lifeboat(&args, &[])
    }
}

/// A case: a name, the members (given the folder the restores run in, for absolute names), and
/// the entry the refusal must name.
type Case = (&'static str, fn(&str) -> Vec<M>, fn(&str) -> String);

fn case(name: &'static str, members: fn(&str) -> Vec<M>, entry: fn(&str) -> String) -> Case {
    (name, members, entry)
}

fn cases() -> Vec<Case> {
    vec![
        // The exploit: db/t resolves to the staging folder, db/t2 to its parent.
        case(
            "chain",
            |_| {
                vec![
                    dir("db"),
                    link("db/s", "."),
                    link("db/t", "s/s/.."),
                    link("db/t2", "t/.."),
                    file("db/t2/x/pwned.txt", b"pwned"),
                ]
            },
            |_| "db/t2/x/pwned.txt".into(),
        ),
        case(
            "chain-links-only",
            |_| {
                vec![
                    dir("db"),
                    link("db/s", "."),
                    link("db/t", "s/s/.."),
                    link("db/t2", "t/.."),
                ]
            },
            |_| "db/t".into(),
        ),
        case(
            "loop",
            |_| vec![dir("db"), link("db/a", "b"), link("db/b", "a")],
            |_| "db/a".into(),
        ),
        case(
            "absolute-target",
            |o| vec![dir("db"), link("db/l", o), file("db/l/escaped", b"x")],
            |_| "db/l".into(),
        ),
        case(
            "dotdot-target",
            |_| vec![dir("db"), link("db/l", "../.."), file("db/l/escaped", b"x")],
            |_| "db/l".into(),
        ),
        case(
            "other-root",
            |_| {
                vec![
                    dir("db"),
                    link("db/x", "../security/keys"),
                    dir("security"),
                    file("security/keys", b"k"),
                ]
            },
            |_| "db/x".into(),
        ),
        case(
            "root-is-a-link",
            |_| vec![link("db", "."), file("db/escaped", b"x")],
            |_| "db".into(),
        ),
        case(
            "dotdot-name",
            |_| vec![dir("db"), file("db/../../escaped", b"x")],
            |_| "db/../../escaped".into(),
        ),
        case(
            "absolute-name",
            |o| vec![dir("db"), M::File(format!("{o}/abs-escaped"), b"x")],
            |o| format!("{o}/abs-escaped"),
        ),
        case(
            "hard-link-out",
            |_| vec![dir("db"), M::HardLink("db/h".into(), "/etc/passwd".into())],
            |_| "db/h".into(),
        ),
        case(
            "hard-link-in",
            |_| {
                vec![
                    dir("db"),
                    file("db/f", b"f"),
                    M::HardLink("db/h".into(), "db/f".into()),
                ]
            },
            |_| "db/h".into(),
        ),
        case(
            "char-device",
            |_| vec![dir("db"), M::CharDevice("db/null".into())],
            |_| "db/null".into(),
        ),
        case(
            "block-device",
            |_| vec![dir("db"), M::BlockDevice("db/sda".into())],
            |_| "db/sda".into(),
        ),
        case(
            "fifo",
            |_| vec![dir("db"), M::Fifo("db/fifo".into())],
            |_| "db/fifo".into(),
        ),
        case(
            "through-a-link",
            |_| {
                vec![
                    dir("db"),
                    dir("db/catalog"),
                    link("db/l", "catalog"),
                    file("db/l/x", b"x"),
                ]
            },
            |_| "db/l/x".into(),
        ),
        case(
            "duplicate",
            |_| vec![dir("db"), file("db/a", b"1"), file("db/a", b"2")],
            |_| "db/a".into(),
        ),
        case(
            "folder-then-file",
            |_| {
                vec![
                    dir("db"),
                    dir("db/a"),
                    file("db/a/x", b"x"),
                    file("db/a", b"2"),
                ]
            },
            |_| "db/a".into(),
        ),
        case(
            "file-then-folder",
            |_| vec![dir("db"), file("db/a", b"1"), dir("db/a")],
            |_| "db/a".into(),
        ),
        case(
            "file-as-a-folder",
            |_| vec![dir("db"), file("db/a", b"1"), file("db/a/x", b"x")],
            |_| "db/a/x".into(),
        ),
    ]
}

/// What a lifeboat run said, if it is not a refusal (exit 4) naming `entry`.
fn not_refused(out: &std::process::Output, entry: &str) -> Option<String> {
    let said = stdout(out) + &stderr(out);
    let named = said.contains("refused archive entry") && said.contains(entry);
    (out.status.code() != Some(4) || !named)
        .then(|| format!("exit {:?}: {}", out.status.code(), said.trim()))
}

/// The paths whose snapshot entries differ.
fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}

#[test]
fn hostile_archives_are_flagged_by_verify_and_refused_by_restore_leaving_nothing() {
    let b = bench("hostile");
    let mut failures = Vec::new();
    for (name, members, entry) in cases() {
        let outer = tempfile::Builder::new()
            .prefix("lifeboat-hostile-")
            .tempdir()
            .unwrap();
        let o = outer.path().to_str().unwrap().to_string();
        let id = forge(&b.loc, &b.base, &members(&o));
        let entry = format!("{:?}", entry(&o));

        let out = lifeboat(&["verify", "--from", &b.loc.url, "--backup", &id], &[]);
        if let Some(said) = not_refused(&out, &entry) {
            failures.push(format!("{name}: verify: {said}"));
        }
        // An empty target that does not exist yet, and an existing one restored over with --replace.
        std::fs::create_dir(outer.path().join("fresh")).unwrap();
        put_file(
            &outer.path().join("existing/data/db/catalog/CURRENT"),
            b"old store",
        );
        put_file(&outer.path().join("existing/data/security/key"), b"old key");
        let before = snapshot(outer.path());
        for (target, replace) in [("fresh/data", false), ("existing/data", true)] {
            let out = b.restore(&id, &outer.path().join(target), replace);
            if let Some(said) = not_refused(&out, &entry) {
                failures.push(format!("{name}: restore into {target}: {said}"));
            }
            let changed = changed(&before, &snapshot(outer.path()));
            if !changed.is_empty() {
                failures.push(format!("{name}: restore into {target} changed {changed:?}"));
            }
        }
    }
    // Nothing landed beside the fixture either (the chain's target is the staging folder's parent).
    assert!(!b.fx.dir.path().join("pwned.txt").exists());
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn links_inside_their_root_restore_as_links() {
    let b = bench("in-root-links");
    let members = vec![
        dir("db"),
        dir("db/catalog"),
        file("db/catalog/CURRENT", b"MANIFEST-000001\n"),
        link("db/catalog/again", "./CURRENT"),
        link("db/current", "catalog/CURRENT"),
        link("db/here", "."),
        // Dangling, but it stays inside db/ whatever is made there later.
        link("db/later", "not-yet/file"),
        dir("security"),
        file("security/key", b"k"),
    ];
    let id = forge(&b.loc, &b.base, &members);
    ok_json(&lifeboat(
        &["--json", "verify", "--from", &b.loc.url, "--backup", &id],
        &[],
    ));
    let outer = tempfile::tempdir().unwrap();
    let t = outer.path().join("data");
    ok_json(&b.restore(&id, &t, false));
    for (path, target) in [
        ("db/catalog/again", "./CURRENT"),
        ("db/current", "catalog/CURRENT"),
        ("db/here", "."),
        ("db/later", "not-yet/file"),
    ] {
        assert_eq!(
            std::fs::read_link(t.join(path)).unwrap(),
            Path::new(target),
            "{path}"
        );
    }
    assert_eq!(
        std::fs::read(t.join("db/current")).unwrap(),
        b"MANIFEST-000001\n"
    );
    assert_eq!(names(outer.path()), ["data"], "no staging folder left");
}

#[test]
fn a_real_backup_with_links_and_names_that_sort_apart_restores_whole() {
    let b = bench("real-links");
    // As text "a-b" < "a.b" < "a/x"; lifeboat's walk (and the order check) visits a/x right after a.
    for rel in ["a/x", "a/x-y/z", "a-b", "a.b/c"] {
        put_file(&b.fx.uploads.join(rel), rel.as_bytes());
    }
    std::os::unix::fs::symlink("c", b.fx.uploads.join("a.b/l")).unwrap();
    std::os::unix::fs::symlink("catalog", b.fx.db.join("catalog-alias")).unwrap();
    let made = ok_json(&lifeboat(
        &[
            "--json",
            "backup",
            "--format",
            "1",
            "--dremio-home",
            b.fx.home.to_str().unwrap(),
            "--to",
            &b.loc.url,
        ],
        &[],
    ));
    let id = made["id"].as_str().unwrap();
    ok_json(&lifeboat(
        &["--json", "verify", "--from", &b.loc.url, "--backup", id],
        &[],
    ));
    let outer = tempfile::tempdir().unwrap();
    let t = outer.path().join("data");
    ok_json(&b.restore(id, &t, false));
    let uploads = t.join("pdfs/uploads/_uploads");
    assert_same(&snapshot(&uploads), &snapshot(&b.fx.uploads), "uploads");
    assert_eq!(
        std::fs::read_link(uploads.join("a.b/l")).unwrap(),
        Path::new("c")
    );
    assert_eq!(
        std::fs::read_link(t.join("db/catalog-alias")).unwrap(),
        Path::new("catalog")
    );
    assert_eq!(
        std::fs::read(t.join("db/catalog-alias/CURRENT")).unwrap(),
        std::fs::read(b.fx.db.join("catalog/CURRENT")).unwrap()
    );
}
