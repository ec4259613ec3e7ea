//! The table files of a Druid metadata backup (`<table>.csv`, read by restore and by verify's
//! deep-storage check) come from the archive: hostile bytes. The reader must never panic, must
//! end every input with records or an error, and must hold no more than a small multiple of the
//! input (its caps are far above what a fuzz input can reach, so memory follows the input).

use lifeboat::druid::metastore::csv::CsvReader;
use proptest::prelude::*;

use crate::alloc::{MIB, peak};
use crate::harness::{bounded, fuzz};
use crate::inputs::{Bytes, Format, or_bytes, text_from};

/// The dialect's syntax: quotes, doubled quotes, separators, line ends, the NULL word, hex.
const CSV: Format = Format {
    tokens: &[
        b"\"",
        b"\"\"",
        b",",
        b"\n",
        b"\r\n",
        b"\r",
        b"NULL",
        b"NUL",
        b"\\x",
        b"\\x0",
        b"\\xzz",
        b"\"NULL\"",
        b",,",
        b"\0",
    ],
    pairs: &[(b"\"", b"\"")],
};

const SEEDS: &[&str] = &[
    "\"id\",\"dataSource\",\"used\",\"payload\",\"used_status_last_updated\"\n\"wiki_2024\",\"wiki\",\"1\",\"\\x7b2261223a317d\",NULL\n\"k\",\"koalas\",\"0\",\"\\x\",\"2024-01-01T00:00:00.000Z\"\n",
    "\"name\",\"payload\"\n\"lookupsConfig\",\"\\x7b7d\"\n\"say \"\"NULL\"\"\",\"\\x00ff\"",
    "\"a\"\n\"multi\nline, with \"\"quotes\"\"\"\n\"\"\n",
];

#[test]
fn csv_table_file() {
    fuzz(
        "csv_table_file",
        or_bytes(text_from(&CSV, SEEDS)),
        |Bytes(bytes)| {
            let (outcome, held) = peak(|| {
                let mut r = CsvReader::new(&bytes[..]);
                let mut records = 0u64;
                let ended = loop {
                    match r.next_record() {
                        Ok(Some(rec)) => {
                            records += 1;
                            for i in 0..rec.fields.len() {
                                let _ = rec.bytes(i);
                            }
                        }
                        Ok(None) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                    if records > bytes.len() as u64 + 1 {
                        break Err("more records than bytes".to_string());
                    }
                };
                (ended, records, r.records)
            });
            let (ended, records, counted) = outcome;
            crate::ensure!(
                counted == records,
                "the reader counted {counted}, not {records}"
            );
            if let Err(e) = &ended {
                crate::ensure!(
                    e != "more records than bytes",
                    "the reader does not advance"
                );
                crate::ensure!(!e.is_empty(), "an error without a message");
            }
            bounded("csv reader", held, bytes.len(), MIB, 8)
        },
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Anything cut off inside a quoted value is an error, never a shorter record.
    #[test]
    fn csv_a_file_cut_inside_a_value_is_an_error(value in "[a-z\",\n]{0,40}", cut in 0usize..40) {
        let quoted = value.replace('"', "\"\"");
        let file = format!("\"h\"\n\"{quoted}\"\n");
        let end = (4 + 1 + cut).min(file.len() - 2);
        let cut_file = &file.as_bytes()[..end];
        let mut r = CsvReader::new(cut_file);
        let mut last = r.next_record();
        while let Ok(Some(_)) = last {
            last = r.next_record();
        }
        // cut inside the value: the record is either refused or (cut between two quotes of a
        // doubled pair) ended early and then refused; never read whole
        let whole = Some(lifeboat::druid::metastore::csv::Record {
            fields: vec![Some(value.clone().into_bytes())],
        });
        let mut again = CsvReader::new(cut_file);
        prop_assert_ne!(again.next_record().ok().flatten(), whole);
    }
}
