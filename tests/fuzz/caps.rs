//! Oversized and pathological inputs, one by one: each reader refuses what is over its cap
//! without reading it whole (its peak stays far below the input's size), parses deep nesting into
//! an error rather than a stack overflow, and keeps memory bounded on the shapes that cost a
//! parser most. Each test here failed (or hung, or crashed the binary) before its fix.

use std::fs::File;
use std::path::{Path, PathBuf};

use lifeboat::archive::index::Index;
use lifeboat::clone::filter::Filter;
use lifeboat::clone::tree;
use lifeboat::config::Config;
use lifeboat::dremio::clone::DremioTree as Tree;
use lifeboat::dremio::clone::cloner;
use lifeboat::dremio::clone::mapping::Mapping;
use lifeboat::dremio::clone::model::{Kind, Object};
use lifeboat::dremio::conf::{Conf, ResolveError};
use lifeboat::dremio::logical::check_backup_dir;
use lifeboat::dremio::{DremioError, Installation};
use lifeboat::repo::Manifest;
use serde_json::json;

use crate::alloc::{MIB, peak};

/// A file of `len` zero bytes that takes no disk space.
fn sparse(path: &Path, len: u64) {
    File::create(path)
        .and_then(|f| f.set_len(len))
        .expect("a sparse file");
}

fn fifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .expect("a FIFO");
}

fn link_to_dev_zero(path: &Path) {
    std::os::unix::fs::symlink("/dev/zero", path).expect("a link to /dev/zero");
}

/// Asserts that `f` failed saying `fragment`, holding less than `limit` bytes at its peak.
fn refused<T: std::fmt::Debug, E: std::fmt::Display>(
    what: &str,
    limit: usize,
    fragment: &str,
    f: impl FnOnce() -> Result<T, E>,
) {
    let (result, held) = peak(f);
    let err = match result {
        Ok(v) => panic!("{what}: accepted ({v:?})"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(fragment),
        "{what}: {err:?} does not say {fragment:?}"
    );
    assert!(
        held < limit,
        "{what}: {held} bytes at the peak, more than {limit}"
    );
}

#[test]
fn the_counting_allocator_sees_an_allocation() {
    let (v, held) = peak(|| vec![1u8; 10 * MIB]);
    assert_eq!(v.len(), 10 * MIB);
    assert!(held >= 10 * MIB, "{held}");
}

// ---- manifest ----

#[test]
fn a_manifest_over_its_cap_is_refused_unparsed() {
    let big = vec![b' '; (lifeboat::repo::manifest::MAX_MANIFEST_BYTES + 1) as usize];
    refused("manifest over 16 MiB", MIB, "more than the", || {
        Manifest::from_json(&big, None)
    });
    assert!(Manifest::check_size(lifeboat::repo::manifest::MAX_MANIFEST_BYTES + 1).is_err());
    assert!(Manifest::check_size(64 << 10).is_ok());
}

#[test]
fn a_manifest_of_millions_of_empty_notes_is_refused_before_parsing() {
    // 6 MiB of text that serde would turn into 2 million strings (96 MiB).
    let mut text = br#"{"format":"lifeboat-backup/1","notes":["#.to_vec();
    text.extend(b"\"\",".repeat(2_000_000));
    text.extend(b"\"\"]}");
    refused("2M notes", MIB, "JSON values", || {
        Manifest::from_json(&text, None)
    });
}

#[test]
fn a_deeply_nested_manifest_is_an_error() {
    let text = "[".repeat(100_000);
    refused("100k-deep manifest", MIB, "manifest", || {
        Manifest::from_json(text.as_bytes(), None)
    });
}

// ---- index ----

#[test]
fn an_index_line_without_an_end_is_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("index.jsonl");
    sparse(&path, 64 << 20);
    let file = File::open(&path).expect("the index opens");
    refused("64 MiB line", 2 * MIB, "longer than", || {
        Index::from_jsonl_file(file).map(|i| i.len())
    });
}

#[test]
fn a_long_index_line_after_good_ones_stops_the_iteration() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("index.jsonl");
    let good = br#"{"path":"db","type":"dir","mode":493,"mtime":5}"#;
    let mut text = [good.as_slice(), b"\r\n\n", good, b"\n"].concat();
    text.extend(vec![b'x'; lifeboat::archive::index::MAX_LINE_BYTES + 1]);
    std::fs::write(&path, &text).expect("the index is written");
    let err = Index::from_jsonl_file(File::open(&path).expect("opens"))
        .map(|i| i.len())
        .expect_err("refused");
    assert!(err.to_string().contains("index line 4 is longer"), "{err}");
    // The same file one byte shorter is read (its last line is then bad JSON, named by number).
    text.pop();
    std::fs::write(&path, &text).expect("the index is written");
    let index = Index::from_jsonl_file(File::open(&path).expect("opens")).expect("read");
    assert_eq!(index.len(), 3);
    let read: Vec<_> = index.iter().expect("iterates").collect();
    assert_eq!(read.len(), 3, "stops after the first bad entry");
    assert!(read[0].is_ok() && read[1].is_ok());
    let err = read[2].as_ref().expect_err("bad JSON").to_string();
    assert!(err.contains("index entry 4"), "{err}");
}

#[test]
fn a_deeply_nested_index_entry_is_an_error() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("index.jsonl");
    std::fs::write(&path, "[".repeat(60_000)).expect("the index is written");
    let index = Index::from_jsonl_file(File::open(&path).expect("opens")).expect("counted");
    let first = index.iter().expect("iterates").next().expect("one line");
    assert!(first.is_err());
}

// ---- dremio-admin backup folder ----

fn info(records: u64) -> String {
    format!(
        r#"{{"kvstoreInfo":{{"tablename":"t"}},"checksum":0,"records":{records},"binary":false,"compression":0}}"#
    )
}

#[test]
fn info_files_over_their_cap_or_not_regular_are_refused_unread() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let d = dir.path();
    sparse(&d.join("t_info.json"), (1 << 20) + 1);
    refused(
        "info file over 1 MiB",
        64 << 10,
        "larger (1.0 MiB) than the 1.0 MiB",
        || check_backup_dir(d),
    );
    std::fs::remove_file(d.join("t_info.json")).expect("removed");
    // A FIFO would block `open` forever, /dev/zero never end.
    fifo(&d.join("t_info.json"));
    refused("FIFO info file", 64 << 10, "not a regular file", || {
        check_backup_dir(d)
    });
    std::fs::remove_file(d.join("t_info.json")).expect("removed");
    link_to_dev_zero(&d.join("t_info.json"));
    refused(
        "info file -> /dev/zero",
        64 << 10,
        "not a regular file",
        || check_backup_dir(d),
    );
}

#[test]
fn an_info_file_of_many_values_is_refused_before_parsing() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let text = format!("{{\"records\":1,\"x\":[{}0]}}", "{\"a\":0},".repeat(50_000));
    std::fs::write(dir.path().join("t_info.json"), text).expect("written");
    refused("info file of 100k values", 2 * MIB, "JSON values", || {
        check_backup_dir(dir.path())
    });
}

#[test]
fn a_table_file_with_one_endless_line_is_counted_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let d = dir.path();
    std::fs::write(d.join("t_info.json"), info(2)).expect("written");
    sparse(&d.join("t_backup.json"), 64 << 20);
    refused(
        "64 MiB table line",
        MIB,
        "1 records in its data file, its info file says 2",
        || check_backup_dir(d),
    );
    std::fs::write(d.join("t_backup.json"), "{}\n \t\n\r\n{}").expect("written");
    assert_eq!(check_backup_dir(d).expect("two records").records, 2);
}

// ---- dremio.conf ----

fn home_with_conf(write: impl FnOnce(&Path)) -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir(home.path().join("conf")).expect("conf/");
    write(&home.path().join("conf/dremio.conf"));
    home
}

fn discover(home: &Path) -> Result<Installation, DremioError> {
    Installation::discover(Some(home), None, Some("25.2.0"))
}

#[test]
fn a_dremio_conf_over_its_cap_is_refused_unread() {
    let home = home_with_conf(|p| sparse(p, lifeboat::dremio::conf::MAX_CONF_BYTES + 1));
    refused(
        "dremio.conf over 256 KiB",
        64 << 10,
        "than the 256.0 KiB lifeboat reads from a dremio.conf",
        || discover(home.path()),
    );
    let home = home_with_conf(link_to_dev_zero);
    refused(
        "dremio.conf -> /dev/zero",
        MIB,
        "larger than the 256.0 KiB",
        || discover(home.path()),
    );
}

#[test]
fn deeply_nested_hocon_is_a_syntax_error_not_a_stack_overflow() {
    for (text, says) in [
        ("a{".repeat(100_000), "nest more than 64 deep"),
        ("a:{".repeat(100_000), "nest more than 64 deep"),
        (format!("a:{}", "[".repeat(100_000)), "unterminated '['"),
    ] {
        let err = Conf::parse(&text).expect_err("refused");
        assert!(err.message.contains(says), "{err:?}");
    }
    let ok = format!("{}\n", "a{".repeat(64) + &"}".repeat(64));
    assert!(Conf::parse(&ok).is_ok());
}

#[test]
fn a_key_under_a_long_prefix_does_not_multiply_memory() {
    // Every key inside the object would repeat the 100 KB prefix.
    let mut text = format!("{} {{\n", "p".repeat(100_000));
    for i in 0..1000 {
        text.push_str(&format!("k{i}: 1\n"));
    }
    text.push('}');
    refused("long prefix", 2 * MIB, "longer than 256 bytes", || {
        Conf::parse(&text).map(|_| ()).map_err(|e| e.message)
    });
}

#[test]
fn substitutions_that_double_at_every_level_are_refused() {
    // a0 = a1 a1, a1 = a2 a2, ...: 2^30 pieces.
    let mut text = String::new();
    for i in 0..30 {
        text.push_str(&format!("a{i}: ${{a{}}}${{a{}}}\n", i + 1, i + 1));
    }
    text.push_str("a30: x\n");
    let conf = Conf::parse(&text).expect("parses");
    let (resolved, held) = peak(|| conf.resolve("a0", &|_| None));
    assert_eq!(resolved, Err(ResolveError::TooLarge { key: "a0".into() }));
    assert!(held < 4 * MIB, "{held}");
    // A long chain is not a loop, and a loop is still one.
    let mut chain = String::new();
    for i in 0..40 {
        chain.push_str(&format!("c{i}: ${{c{}}}\n", i + 1));
    }
    chain.push_str("c40: end\nloop1: ${loop2}\nloop2: ${loop1}\n");
    let conf = Conf::parse(&chain).expect("parses");
    assert!(matches!(
        conf.resolve("c0", &|_| None),
        Err(ResolveError::TooLarge { .. })
    ));
    assert_eq!(conf.resolve("c10", &|_| None), Ok(Some("end".into())));
    assert!(matches!(
        conf.resolve("loop1", &|_| None),
        Err(ResolveError::Cycle { .. })
    ));
}

#[test]
fn an_expanding_dremio_conf_says_so() {
    let home = home_with_conf(|p| {
        let mut text = String::from("paths.local: ${a0}\n");
        for i in 0..30 {
            text.push_str(&format!("a{i}: ${{a{}}}${{a{}}}\n", i + 1, i + 1));
        }
        text.push_str("a30: x\n");
        std::fs::write(p, text).expect("written");
    });
    let err = discover(home.path()).expect_err("refused").to_string();
    assert!(
        err.contains("'paths.local'") && err.contains("expand to more than 1 MiB"),
        "{err}"
    );
}

// ---- config and mapping ----

#[test]
fn a_config_file_over_its_cap_is_refused_unread() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("lifeboat.toml");
    sparse(&path, lifeboat::config::MAX_CONFIG_BYTES + 1);
    refused("config over 256 KiB", 64 << 10, "a config file", || {
        Config::load(&path)
    });
    let zero = dir.path().join("zero.toml");
    link_to_dev_zero(&zero);
    refused("config -> /dev/zero", MIB, "a config file", || {
        Config::load(&zero)
    });
}

#[test]
fn deeply_nested_toml_is_an_error() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (name, text) in [
        ("array", format!("a = {}", "[".repeat(100_000))),
        ("table", format!("a = {}", "{b=".repeat(100_000))),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &text).expect("written");
        assert!(Config::load(&path).is_err());
        assert!(Mapping::load(&path).is_err());
    }
}

/// Found by the fuzzer: toml_parser 1.1.5 recursed once per `{ file t[0].value" = ` past its own
/// recursion limit and overflowed the stack, aborting the process (a 96 KB mapping file did it).
#[test]
fn toml_that_would_overflow_the_parser_stack_is_refused_first() {
    let text = format!(
        "[secrets.lake]\np = {}",
        "{ file t[0].value\" = ".repeat(4000)
    );
    let err = Mapping::parse(&text).expect_err("refused");
    assert!(err.contains("brackets nest more than 32 deep"), "{err}");
    let err = Config::parse(&text, Path::new("l.toml"))
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("l.toml: brackets nest more than 32 deep"),
        "{err}"
    );
}

#[test]
fn mapping_and_secret_files_over_their_caps_are_refused() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("mapping.toml");
    sparse(
        &path,
        lifeboat::dremio::clone::mapping::MAX_MAPPING_BYTES + 1,
    );
    refused("mapping over 256 KiB", 64 << 10, "a mapping file", || {
        Mapping::load(&path)
    });
    std::fs::write(
        &path,
        "[secrets.lake]\npassword = { file = \"/dev/zero\" }\n",
    )
    .expect("written");
    let m = Mapping::load(&path).expect("loads");
    refused("secret file /dev/zero", MIB, "a secret file", || {
        m.source_secrets("lake", &|_| None)
    });
}

#[test]
fn thousands_of_renames_are_checked_and_a_clash_found() {
    let mut text = String::from("[rename]\n");
    for i in 0..20_000 {
        text.push_str(&format!("s{i} = \"t{i}\"\n"));
    }
    assert!(Mapping::parse(&text).is_ok());
    text.push_str("other = \"T19999\"\n");
    let err = Mapping::parse(&text).expect_err("two renames to one name");
    assert!(
        err.to_lowercase()
            .contains("two containers are renamed to \"t19999\""),
        "{err}"
    );
}

// ---- clone tree ----

fn tree_with_view(root: &Path) -> (Tree, Object) {
    let tree = Tree::create(root).expect("a tree");
    let view = Object {
        kind: Kind::View,
        path: vec!["S".into(), "v".into()],
        body: json!({"sqlContext": ["S"]})
            .as_object()
            .cloned()
            .expect("an object"),
        text: Some("SELECT 1".into()),
        wiki: None,
    };
    tree.write(&view).expect("written");
    (tree, view)
}

#[test]
fn names_decode_only_from_two_hex_digits() {
    assert_eq!(tree::decode("%2Fa").as_deref(), Some("/a"));
    for name in ["%+1", "%-1", "% 1", "%1", "%zz", "%"] {
        assert_eq!(tree::decode(name), None, "{name}");
    }
}

#[test]
fn a_fifo_or_device_in_a_tree_is_refused_without_waiting() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (tree, view) = tree_with_view(&dir.path().join("t"));
    let sql = tree.root.join("catalog/S/v.view.sql");
    std::fs::remove_file(&sql).expect("removed");
    fifo(&sql);
    refused("FIFO .sql", MIB, "not a regular file", || {
        tree.read(Kind::View, &view.path)
    });
    std::fs::remove_file(&sql).expect("removed");
    link_to_dev_zero(&sql);
    refused("main file -> /dev/zero", MIB, "not a regular file", || {
        tree.read(Kind::View, &view.path)
    });
}

#[test]
fn tree_files_over_their_caps_are_refused_unread() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (tree, view) = tree_with_view(&dir.path().join("t"));
    let main = tree.root.join("catalog/S/v.view.json");
    sparse(&main, (4 << 20) + 1);
    refused("main file over 4 MiB", 64 << 10, "a tree file", || {
        tree.read(Kind::View, &view.path)
    });
    // Under the cap, but a hundred thousand and more one-key objects.
    std::fs::write(
        &main,
        format!("{{\"x\":[{}0]}}", "{\"a\":0},".repeat(200_000)),
    )
    .expect("written");
    refused("main file of 400k values", 4 * MIB, "JSON values", || {
        tree.read(Kind::View, &view.path)
    });
    std::fs::write(&main, "[".repeat(99_000)).expect("written");
    refused("99k-deep main file", MIB, "not a JSON object", || {
        tree.read(Kind::View, &view.path)
    });
    tree.write(&view).expect("rewritten");
    sparse(&tree.root.join("catalog/S/v.view.wiki.md"), (1 << 20) + 1);
    refused("wiki over 1 MiB", 64 << 10, "a tree file", || {
        tree.read(Kind::View, &view.path)
    });
}

#[test]
fn an_oversized_marker_is_not_a_tree() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (tree, _) = tree_with_view(&dir.path().join("t"));
    sparse(&tree.root.join(tree::MARKER), (4 << 20) + 1);
    refused(
        "marker over 4 MiB",
        64 << 10,
        "not a lifeboat export (lifeboat-clone.json: it is larger",
        || Tree::open(&tree.root),
    );
    assert_eq!(tree.scope(), None);
}

#[test]
fn rewriting_a_tree_file_never_reads_a_large_one_whole() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (tree, view) = tree_with_view(&dir.path().join("t"));
    sparse(&tree.root.join("catalog/S/v.view.json"), 1 << 30);
    let (written, held) = peak(|| tree.write(&view));
    written.expect("rewritten");
    assert!(held < MIB, "{held}");
    assert_eq!(
        tree.read(Kind::View, &view.path)
            .expect("reads")
            .expect("there"),
        view
    );
}

// ---- dremio-cloner file ----

fn cloner_file(dir: &Path, text: &[u8]) -> (PathBuf, Tree) {
    let file = dir.join("cloner.json");
    std::fs::write(&file, text).expect("written");
    (file, Tree::create(&dir.join("tree")).expect("a tree"))
}

#[test]
fn a_cloner_file_over_its_cap_is_refused_unread() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (file, tree) = cloner_file(dir.path(), b"");
    sparse(&file, cloner::MAX_FILE_BYTES + 1);
    refused(
        "cloner file over 256 MiB",
        64 << 10,
        "a dremio-cloner file",
        || cloner::import(&file, &tree, &Filter::default()),
    );
}

#[test]
fn a_deeply_nested_cloner_file_is_not_json() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (file, tree) = cloner_file(dir.path(), "[".repeat(100_000).as_bytes());
    refused("100k-deep cloner file", 2 * MIB, "not JSON", || {
        cloner::import(&file, &tree, &Filter::default())
    });
}

#[test]
fn waiting_reflections_cost_their_text_not_their_values() {
    // 80,000 reflections of a dataset the file does not hold: 2 MB of text that would be
    // ~120 MB of values.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut text = br#"{"data": [{"reflections": ["#.to_vec();
    text.extend(br#"{"path":["lake","gone"],"k":{"a":0}},"#.repeat(80_000));
    text.extend(br#"{"path":["lake","gone"]}]}]}"#);
    let (file, tree) = cloner_file(dir.path(), &text);
    let (imported, held) = peak(|| cloner::import(&file, &tree, &Filter::default()));
    let imported = imported.expect("imports");
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.starts_with("80001 reflection(s) not imported")),
        "{:?}",
        imported.warnings
    );
    assert!(
        held < 4 * text.len(),
        "{held} bytes at the peak for {} bytes",
        text.len()
    );
}

#[test]
fn a_cloner_element_of_too_many_values_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = "{\"a\":0},".repeat(120_000);
    let text = format!(
        r#"{{"data": [{{"sources": [{{"name": "ok"}}, {{"name": "lake", "config": [{config}0]}}]}}]}}"#
    );
    let (file, tree) = cloner_file(dir.path(), text.as_bytes());
    refused(
        "element of 240k values",
        8 * MIB,
        "element 2 of \"sources\": it holds more than 100000 JSON values",
        || cloner::import(&file, &tree, &Filter::default()),
    );
}

#[test]
fn unknown_and_repeated_cloner_sections_are_named_a_bounded_number_of_times() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut items: Vec<String> = (0..5000)
        .map(|i| format!("{{\"future{i}\": []}}"))
        .collect();
    items.extend((0..5000).map(|_| "{\"spaces\": [{\"name\": \"S\"}]}".to_string()));
    let text = format!("{{\"data\": [{}]}}", items.join(","));
    let (file, tree) = cloner_file(dir.path(), text.as_bytes());
    let imported = cloner::import(&file, &tree, &Filter::default()).expect("imports");
    assert_eq!(imported.objects, 1);
    assert!(imported.warnings.len() <= 12, "{:?}", imported.warnings);
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w == "4990 more unknown section(s) not imported"),
        "{:?}",
        imported.warnings
    );
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.contains("\"spaces\" appears more than once"))
    );
}
