//! A backup's catalog fingerprint (`lifeboat-catalog.jsonl`), read as hostile input by drills and
//! failovers: no panic, memory a small multiple of the input, and whatever is accepted holds
//! only plain relative paths in strictly increasing order, and reads back the same once written.

use lifeboat::clone::fingerprint::{self, Fingerprint};
use proptest::prelude::*;

use crate::alloc::{MIB, peak};
use crate::ensure;
use crate::harness::{bounded, fuzz};
use crate::inputs::{Bytes, JSON, apply, ops};

const D1: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const D2: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Lines of a valid fingerprint, in order: a mutation shuffles, repeats and edits them.
fn lines() -> Vec<String> {
    let seeds: [(&str, u64, &str); 7] = [
        ("catalog/Sales.space.json", 2, D2),
        ("catalog/Sales/Reports.folder.json", 40, D1),
        ("catalog/Sales/Reports/monthly.view.json", 120, D2),
        ("catalog/Sales/Reports/monthly.view.sql", 44, D1),
        ("catalog/S\u{e9}les/%2E \"q\".view.wiki.md", 7, D2),
        ("catalog/lake.source.json", 300, D1),
        ("users/alice.user.json", u64::MAX, D2),
    ];
    seeds
        .iter()
        .map(|(path, bytes, digest)| {
            format!(
                "{{\"path\":{},\"bytes\":{bytes},\"sha256\":\"{digest}\"}}\n",
                serde_json::to_string(path).expect("a string")
            )
        })
        .collect()
}

/// Some of the seed lines (kept in order, or shuffled, or with one repeated), mutated as JSON text.
fn seeded() -> impl Strategy<Value = Vec<u8>> {
    let all = lines();
    let n = all.len();
    (
        prop::collection::vec(any::<bool>(), n),
        prop::option::of((0..n, 0..n)),
        ops(),
    )
        .prop_map(move |(keep, swap, ops)| {
            let mut chosen: Vec<String> = all
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(l, _)| l.clone())
                .collect();
            if let Some((a, b)) = swap
                && !chosen.is_empty()
            {
                let (a, b) = (a % chosen.len(), b % chosen.len());
                chosen.swap(a, b);
            }
            apply(&JSON, chosen.concat().into_bytes(), &ops)
        })
}

fn plain(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= fingerprint::MAX_PATH_BYTES
        && !path.contains(['\0', '\\'])
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

#[test]
fn catalog_fingerprint() {
    let seeds = prop_oneof![1 => crate::inputs::any_bytes(), 4 => seeded()].prop_map(Bytes);
    fuzz("catalog_fingerprint", seeds, |Bytes(bytes)| {
        let (read, held) = peak(|| Fingerprint::read_from(&mut &bytes[..]));
        bounded("fingerprint", held, bytes.len(), MIB, 8)?;
        let Ok(f) = read else { return Ok(()) };
        for pair in f.entries.windows(2) {
            ensure!(
                pair[0].path.as_bytes() < pair[1].path.as_bytes(),
                "accepted out of order: {:?} then {:?}",
                pair[0].path,
                pair[1].path
            );
        }
        for e in &f.entries {
            ensure!(plain(&e.path), "accepted the path {:?}", e.path);
        }
        let mut out = Vec::new();
        f.write_to(&mut out).expect("writes to memory");
        let again = Fingerprint::read_from(&mut &out[..]);
        ensure!(
            again.as_ref().ok() == Some(&f),
            "what was accepted does not read back: {again:?}"
        );
        ensure!(
            fingerprint::diff(&f, &f).is_empty(),
            "a fingerprint differs from itself"
        );
        Ok(())
    });
}
