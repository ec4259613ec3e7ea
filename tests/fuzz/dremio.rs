//! A dremio-admin backup folder (`check_backup_dir`: info files and table files) and
//! `dremio.conf` (read through `Installation::discover`, as backup and restore do).

use std::path::Path;

use lifeboat::dremio::Installation;
use lifeboat::dremio::conf::Conf;
use lifeboat::dremio::logical::check_backup_dir;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::alloc::{MIB, peak};
use crate::harness::{bounded, fuzz};
use crate::inputs::{
    Bytes, Edit, HOCON, JSON, Op, apply, apply_edits, edits, ops, or_bytes, text_from,
};

#[derive(Debug, Clone)]
pub enum Data {
    /// As many records as the info file says.
    Honest,
    Missing,
    Bytes(Vec<u8>),
    Mutated(Vec<Op>),
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: &'static str,
    pub records: u64,
    pub binary: bool,
    pub info_edits: Vec<Edit>,
    pub info_ops: Vec<Op>,
    pub data: Data,
}

fn info(t: &Table) -> Value {
    json!({
        "kvstoreInfo": {"tablename": t.name, "keyFormat": {"type": 0}, "valueFormat": {"type": 1}},
        "checksum": 0, "records": t.records, "binary": t.binary, "compression": 0
    })
}

fn honest_data(t: &Table) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..t.records {
        if t.binary {
            let (k, v) = (format!("k{i}"), b"{\"v\":1}");
            out.extend((k.len() as u32).to_be_bytes());
            out.extend(k.as_bytes());
            out.extend((v.len() as u32).to_be_bytes());
            out.extend(v);
        } else {
            out.extend(format!("{{\"key\":\"k{i}\",\"value\":\"{{}}\"}}\n").as_bytes());
        }
    }
    out
}

fn table() -> impl Strategy<Value = Table> {
    let names = prop::sample::select(vec![
        "jobs",
        "userGroup",
        "catalog",
        "a b",
        "x.y",
        "ünï",
        "-",
        "dac-namespace",
    ]);
    let data = prop_oneof![
        6 => Just(Data::Honest),
        1 => Just(Data::Missing),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Data::Bytes),
        2 => ops().prop_map(Data::Mutated),
    ];
    (names, 0u64..6, any::<bool>(), edits(), ops(), data).prop_map(
        |(name, records, binary, info_edits, info_ops, data)| Table {
            name,
            records,
            binary,
            info_edits,
            info_ops,
            data,
        },
    )
}

/// Writes the tables; returns the bytes of info files written.
fn write_backup(dir: &Path, tables: &[Table]) -> usize {
    let mut info_bytes = 0;
    for t in tables {
        let text = serde_json::to_vec(&apply_edits(info(t), &t.info_edits)).expect("serialises");
        let text = apply(&JSON, text, &t.info_ops);
        info_bytes += text.len();
        std::fs::write(dir.join(format!("{}_info.json", t.name)), text).expect("info file");
        let ext = if t.binary { "pb" } else { "json" };
        let data = match &t.data {
            Data::Honest => honest_data(t),
            Data::Missing => continue,
            Data::Bytes(b) => b.clone(),
            Data::Mutated(ops) => apply(&JSON, honest_data(t), ops),
        };
        std::fs::write(dir.join(format!("{}_backup.{ext}", t.name)), data).expect("table file");
    }
    info_bytes
}

#[test]
fn logical_backup_folder() {
    fuzz(
        "logical_backup_folder",
        prop::collection::vec(table(), 0..4),
        |tables| {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let n = write_backup(dir.path(), &tables);
            let (_, held) = peak(|| check_backup_dir(dir.path()));
            // An info file holds at most 10,000 JSON values (checked before parsing); table files
            // are streamed.
            bounded("logical backup folder", held, n, 8 * MIB, 2)
        },
    );
}

const DEFAULT_CONF: &str = r#"#
# Copyright (C) 2017-2019 Dremio Corporation
#
paths: {
  # the local path for dremio to store data.
  local: ${DREMIO_HOME}"/data"

  # the distributed path Dremio data including job results, downloads, uploads, etc
  #dist: "pdfs://"${paths.local}"/pdfs"
}

services: {
  coordinator.enabled: true,
  coordinator.master.enabled: true,
  executor.enabled: true,
  flight.use_session_service: true
}
"#;

const BUSY_CONF: &str = r#"include "extra.conf"
paths.local = "/var/lib/dremio"
paths.dist: "pdfs://"${paths.local}"/pdfs"
paths.db: ${paths.local}/db
paths.uploads: ${?UPLOADS_URL}
services.coordinator.web.ssl.enabled: true
services.coordinator.web.ssl.keyStorePassword: """se"cr"et"""
zookeeper: "zk1:2181,zk2:2181"
debug: { alloc.est_heap_buf_size_bytes = 4096, "quoted.key": "v\u0041\n\t" }
paths.spilling: [${paths.local}"/spill", "/fast/spill", [nested]]
paths.spilling += ["/more"]
a: ${b}${b}
b: ${c} ${?NOPE}
c: x // trailing
"#;

pub const CONF_SEEDS: &[&str] = &[DEFAULT_CONF, BUSY_CONF, "paths.local: /x\n"];

fn check_conf(Bytes(bytes): Bytes) -> Result<(), TestCaseError> {
    let home = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir(home.path().join("conf")).expect("conf/");
    std::fs::write(home.path().join("conf/dremio.conf"), &bytes).expect("dremio.conf");
    let (_, held) = peak(|| Installation::discover(Some(home.path()), None, Some("25.2.0")));
    // dremio.conf is at most 256 KiB; parsing takes a map entry per key of at most 256 bytes.
    bounded("dremio.conf", held, bytes.len(), 4 * MIB, 80)?;
    let text = String::from_utf8_lossy(&bytes);
    let (_, held) = peak(|| {
        Conf::parse(&text).map(|conf| {
            let env = |k: &str| (k == "DREMIO_HOME").then(|| "/opt/dremio".to_string());
            for key in [
                "a",
                "b",
                "c",
                "paths.local",
                "paths.dist",
                "debug.quoted.key",
            ] {
                let _ = conf.resolve(key, &env);
            }
        })
    });
    bounded("dremio.conf", held, bytes.len(), 4 * MIB, 80)
}

#[test]
fn dremio_conf() {
    fuzz(
        "dremio_conf",
        or_bytes(text_from(&HOCON, CONF_SEEDS)),
        check_conf,
    );
}
