//! The store's append-only journals: appends, tombstones, last line wins, compaction on open and
//! when a journal grows, a cut-short last line, and backups keeping their own format.

use std::fs;
use std::path::Path;

use dremio_sim::backup::{BackupOptions, read_backup, restore, write_backup};
use dremio_sim::store::{Store, sim_dir};
use serde_json::Value;

fn journal(dir: &Path, table: &str) -> String {
    fs::read_to_string(sim_dir(dir).join(format!("{table}.jsonl"))).unwrap()
}

fn lines(dir: &Path, table: &str) -> Vec<Value> {
    journal(dir, table)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn puts_and_deletes_append_and_the_last_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = Store::open(dir.path()).unwrap();
    for i in 0..40 {
        st.put("t", &format!("k{i:02}"), format!("\"v{i}\""))
            .unwrap();
    }
    let before = journal(dir.path(), "t");
    assert_eq!(before.lines().count(), 40);
    // an update appends: what was written stays byte for byte
    st.put("t", "k05", "\"new\"".into()).unwrap();
    let after = journal(dir.path(), "t");
    assert!(after.starts_with(&before));
    assert_eq!(after.lines().count(), 41);
    // a delete appends a tombstone
    st.delete("t", "k07").unwrap();
    let ls = lines(dir.path(), "t");
    assert_eq!(ls.len(), 42);
    assert_eq!(ls[41], serde_json::json!({"key": "k07", "deleted": true}));
    // deleting what is not there writes nothing
    st.delete("t", "k07").unwrap();
    assert_eq!(lines(dir.path(), "t").len(), 42);
    assert_eq!(st.journal_lines("t"), 42);

    // a reader replays the journal without rewriting it
    let t = Store::load(dir.path()).unwrap();
    assert_eq!(t["t"].len(), 39);
    assert_eq!(t["t"]["k05"], "\"new\"");
    assert!(!t["t"].contains_key("k07"));
    assert_eq!(lines(dir.path(), "t").len(), 42);

    // opening compacts: one line per live record
    drop(st);
    let st = Store::open(dir.path()).unwrap();
    assert_eq!(st.table("t").unwrap().len(), 39);
    assert_eq!(st.get("t", "k05").unwrap(), "\"new\"");
    let ls = lines(dir.path(), "t");
    assert_eq!(ls.len(), 39);
    assert!(ls.iter().all(|l| l.get("deleted").is_none()));
    assert_eq!(st.journal_lines("t"), 39);
}

#[test]
fn a_growing_journal_is_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = Store::open(dir.path()).unwrap();
    for i in 0..10 {
        st.put("t", &format!("k{i}"), "0".into()).unwrap();
    }
    for n in 0..1000 {
        st.put("t", &format!("k{}", n % 3), n.to_string()).unwrap();
        if n % 50 == 0 {
            st.delete("t", "k9").unwrap();
            st.put("t", "k9", "9".into()).unwrap();
        }
    }
    let n = lines(dir.path(), "t").len();
    // never more than max(64, twice the live records) lines for long
    assert!(n <= 65, "{n} lines for 10 live records");
    assert_eq!(n, st.journal_lines("t"));
    let t = Store::load(dir.path()).unwrap();
    assert_eq!(t["t"].len(), 10);
    assert_eq!(t["t"]["k0"], "999");
    assert_eq!(t["t"]["k1"], "997");
    assert_eq!(t["t"]["k9"], "9");
}

#[test]
fn a_cut_short_last_line_is_dropped_and_a_bad_line_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim_dir(dir.path());
    fs::create_dir_all(&sim).unwrap();
    // what a process killed in the middle of an append leaves
    fs::write(
        sim.join("t.jsonl"),
        "{\"key\":\"a\",\"value\":\"1\"}\n{\"key\":\"a\",\"value\":\"2\"}\n{\"key\":\"b\",\"val",
    )
    .unwrap();
    let mut st = Store::open(dir.path()).unwrap();
    assert_eq!(st.get("t", "a").unwrap(), "2");
    assert!(st.get("t", "b").is_none());
    // compacted, so that the next append starts on its own line
    assert_eq!(
        journal(dir.path(), "t"),
        "{\"key\":\"a\",\"value\":\"2\"}\n"
    );
    st.put("t", "b", "3".into()).unwrap();
    drop(st);
    let st = Store::open(dir.path()).unwrap();
    assert_eq!(st.get("t", "b").unwrap(), "3");
    drop(st);

    // damage anywhere else is an error, not a silent loss
    fs::write(
        sim.join("u.jsonl"),
        "{\"key\":\"a\",\"value\":\"1\"}\nnot json\n{\"key\":\"b\",\"value\":\"2\"}\n",
    )
    .unwrap();
    let e = Store::open(dir.path()).unwrap_err();
    assert!(format!("{e:#}").contains("u.jsonl: line 2"), "{e:#}");
    // a put line needs a value
    fs::write(sim.join("u.jsonl"), "{\"key\":\"a\"}\n").unwrap();
    assert!(Store::open(dir.path()).is_err());
}

#[test]
fn backups_of_a_journal_keep_their_format() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    let mut st = Store::open(&src).unwrap();
    for i in 0..20 {
        st.put(
            "dac-namespace",
            &format!("k{i:02}"),
            format!("{{\"n\":{i}}}"),
        )
        .unwrap();
    }
    st.put("dac-namespace", "k03", "{\"n\":33}".into()).unwrap();
    st.delete("dac-namespace", "k04").unwrap();
    st.delete("dac-namespace", "k05").unwrap();
    let bk = root.path().join("bk");
    fs::create_dir(&bk).unwrap();
    let opts = BackupOptions {
        binary: false,
        include_profiles: false,
        fault: None,
    };
    let stats = write_backup(&st, &src, &bk, &opts).unwrap();
    let p = Path::new(&stats.backup_path);
    // JSON backup lines: exactly {"key", "value"}, live records only, in key order
    let text = fs::read_to_string(p.join("dac-namespace_backup.json")).unwrap();
    let recs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 18);
    for r in &recs {
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["key", "value"]);
        assert!(r["value"].is_string());
    }
    assert_eq!(
        recs[3],
        serde_json::json!({"key": "k03", "value": "{\"n\":33}"})
    );
    assert_eq!(recs[4]["key"], "k06");
    let info: Value =
        serde_json::from_str(&fs::read_to_string(p.join("dac-namespace_info.json")).unwrap())
            .unwrap();
    assert_eq!(info["records"], 18);
    assert_eq!(
        read_backup(p).unwrap().tables["dac-namespace"],
        st.tables["dac-namespace"]
    );

    // restored into a fresh paths.local, the store opens with the same tables
    let dst = root.path().join("dst");
    restore(&dst, p).unwrap();
    let mut a = st.tables.clone();
    let mut b = Store::open(&dst).unwrap().tables;
    a.remove("tokens");
    b.remove("tokens");
    a.remove("profiles");
    b.remove("profiles");
    assert_eq!(a, b);
}
