//! One table file read for the load: its header checked against the recorded columns, each
//! record's field count, binary fields decoded from `\x` hex, and the load's transforms (the
//! `used_status_last_updated` backfill, loadSpecs rewritten by the map, supervisors' newest
//! versions judged, datasources with offsets named). The record count must be the manifest's.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::super::MetaError;
use super::super::csv::{CsvReader, Field};
use super::super::dump::TableDump;
use super::super::tables;
use super::sql;
use crate::druid::loadspec::DeepStorageMap;
use crate::progress::Progress;

/// At most this many datasources are named in the report (the rest are counted).
const MAX_OFFSET_NAMES: usize = 10_000;
/// At most this many segments left unmapped are named in notes (the rest are counted).
pub const MAX_UNMAPPED_NOTES: u64 = 5;
/// At most this many distinct supervisors are judged (Druid clusters have tens or hundreds).
const MAX_SUPERVISORS: usize = 1_000_000;

/// One value on its way to the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Null,
    /// The field's text as the file has it.
    Text(Vec<u8>),
    /// A binary column's bytes, decoded.
    Bytes(Vec<u8>),
}

impl Cell {
    pub fn field(&self) -> Field<'_> {
        match self {
            Cell::Null => Field::Null,
            Cell::Text(t) => Field::Text(t),
            Cell::Bytes(b) => Field::Bytes(b),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Cell::Null => 0,
            Cell::Text(v) | Cell::Bytes(v) => v.len(),
        }
    }

    pub fn into_value(self) -> mysql_async::Value {
        match self {
            Cell::Null => mysql_async::Value::NULL,
            Cell::Text(v) | Cell::Bytes(v) => mysql_async::Value::Bytes(v),
        }
    }

    fn text(&self) -> Option<&[u8]> {
        match self {
            Cell::Null => None,
            Cell::Text(v) | Cell::Bytes(v) => Some(v),
        }
    }
}

/// What the newest version of a supervisor needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Suspend,
    Leave,
    /// Not a JSON object: left alone (Druid cannot run it either), with a note.
    Unreadable(String),
}

/// What the load counted and found across tables.
#[derive(Debug, Default)]
pub struct Tally {
    pub backfilled: u64,
    pub rewritten: u64,
    pub offsets: Vec<String>,
    pub offsets_dropped: u64,
    /// spec_id -> (id of its newest row, what that row needs).
    pub supervisors: BTreeMap<String, (i64, Verdict)>,
    pub max_supervisor_id: Option<i64>,
    /// Segments whose payload the map could not read (left as they are).
    pub unmapped: u64,
}

impl Tally {
    /// The supervisors to suspend, by spec id, with the id of their newest row.
    pub fn to_suspend(&self) -> Vec<(String, i64)> {
        self.supervisors
            .iter()
            .filter(|(_, (_, v))| *v == Verdict::Suspend)
            .map(|(spec, (id, _))| (spec.clone(), *id))
            .collect()
    }
}

/// Counts the bytes read, for progress.
struct Counted {
    inner: File,
    read: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Which of a table's columns the transforms touch.
#[derive(Debug, Clone, Default)]
enum Role {
    #[default]
    Plain,
    Segments {
        payload: Option<usize>,
        used_status: Option<usize>,
    },
    DataSource {
        name: usize,
    },
    Supervisors {
        id: usize,
        spec_id: usize,
        payload: usize,
    },
}

pub struct Reader {
    csv: CsvReader<BufReader<Counted>>,
    file: String,
    expected: u64,
    records: u64,
    binary: Vec<bool>,
    role: Role,
    add_used_status: bool,
    now: Vec<u8>,
    map: DeepStorageMap,
    read: Arc<AtomicU64>,
    reported: u64,
}

fn column(dump: &TableDump, name: &str) -> Option<usize> {
    dump.columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
}

fn missing(canonical: &str, name: &str) -> MetaError {
    MetaError::Corrupt(format!(
        "{canonical} of the backup has no column {name}: it is not Druid's table, or the manifest is damaged"
    ))
}

impl Reader {
    /// Opens `path` (never through a symbolic link) and checks its header.
    pub fn open(
        path: &Path,
        dump: &TableDump,
        canonical: &str,
        add_used_status: bool,
        now: &str,
        map: &DeepStorageMap,
        resume_supervisors: bool,
    ) -> Result<Reader, MetaError> {
        let role = match canonical {
            "druid_segments" => {
                let payload = column(dump, "payload");
                if payload.is_none() && !map.rules.is_empty() {
                    return Err(missing(canonical, "payload"));
                }
                Role::Segments {
                    payload,
                    used_status: column(dump, sql::USED_STATUS),
                }
            }
            "druid_dataSource" => Role::DataSource {
                name: column(dump, "dataSource").ok_or_else(|| missing(canonical, "dataSource"))?,
            },
            "druid_supervisors" if !resume_supervisors => Role::Supervisors {
                id: column(dump, "id").ok_or_else(|| missing(canonical, "id"))?,
                spec_id: column(dump, "spec_id").ok_or_else(|| missing(canonical, "spec_id"))?,
                payload: column(dump, "payload").ok_or_else(|| missing(canonical, "payload"))?,
            },
            _ => Role::Plain,
        };
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| {
                MetaError::Corrupt(format!(
                    "the table file {} cannot be read: {e}: the backup is incomplete; verify it, or restore another backup",
                    dump.file
                ))
            })?;
        let read = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            inner: file,
            read: read.clone(),
        };
        let mut csv = CsvReader::new(BufReader::with_capacity(256 << 10, counted));
        let want: Vec<&str> = dump.columns.iter().map(|c| c.name.as_str()).collect();
        let header = csv.header().map_err(|e| corrupt_file(&dump.file, &e))?;
        if header != want.as_slice() {
            let got: Vec<String> = header
                .iter()
                .take(super::super::csv::MAX_FIELDS)
                .map(|h| h.chars().take(64).collect())
                .collect();
            return Err(corrupt_file(
                &dump.file,
                &format!(
                    "its header is ({}) where the manifest records ({})",
                    got.join(","),
                    want.join(",")
                ),
            ));
        }
        Ok(Reader {
            csv,
            file: dump.file.clone(),
            expected: dump.rows,
            records: 0,
            binary: dump
                .columns
                .iter()
                .map(|c| tables::is_binary(&c.sql_type))
                .collect(),
            role,
            add_used_status,
            now: now.as_bytes().to_vec(),
            map: map.clone(),
            read,
            reported: 0,
        })
    }

    /// Records read so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The next record's values, transformed; `None` at the end, when the count is checked.
    pub fn next(
        &mut self,
        tally: &mut Tally,
        progress: &dyn Progress,
    ) -> Result<Option<Vec<Cell>>, MetaError> {
        let record = self
            .csv
            .next_record()
            .map_err(|e| corrupt_file(&self.file, &e))?;
        let read = self.read.load(Ordering::Relaxed);
        if read > self.reported {
            progress.advance(read - self.reported);
            self.reported = read;
        }
        let Some(mut record) = record else {
            if self.records != self.expected {
                return Err(self.count_mismatch());
            }
            return Ok(None);
        };
        self.records += 1;
        if self.records > self.expected {
            return Err(self.count_mismatch());
        }
        let n = self.records;
        if record.fields.len() != self.binary.len() {
            return Err(corrupt_file(
                &self.file,
                &format!(
                    "record {n} has {} fields where the header has {}",
                    record.fields.len(),
                    self.binary.len()
                ),
            ));
        }
        let mut cells = Vec::with_capacity(self.binary.len() + 1);
        for i in 0..self.binary.len() {
            let cell = if self.binary[i] {
                match record.bytes(i) {
                    Ok(Some(b)) => Cell::Bytes(b),
                    Ok(None) => Cell::Null,
                    Err(e) => {
                        return Err(corrupt_file(
                            &self.file,
                            &format!("record {n}, field {}: {e}", i + 1),
                        ));
                    }
                }
            } else {
                match record.fields[i].take() {
                    Some(t) => Cell::Text(t),
                    None => Cell::Null,
                }
            };
            cells.push(cell);
        }
        self.transform(&mut cells, tally, progress)?;
        Ok(Some(cells))
    }

    fn count_mismatch(&self) -> MetaError {
        let got = if self.records > self.expected {
            "more".to_string()
        } else {
            self.records.to_string()
        };
        corrupt_file(
            &self.file,
            &format!(
                "it holds {got} records where the manifest says {}",
                self.expected
            ),
        )
    }

    fn transform(
        &self,
        cells: &mut Vec<Cell>,
        tally: &mut Tally,
        progress: &dyn Progress,
    ) -> Result<(), MetaError> {
        let n = self.records;
        match self.role {
            Role::Plain => {}
            Role::Segments {
                payload,
                used_status,
            } => {
                if let Some(i) = used_status {
                    if cells[i].text().is_none_or(|t| t.is_empty()) {
                        cells[i] = Cell::Text(self.now.clone());
                        tally.backfilled += 1;
                    }
                }
                if let Some(i) = payload.filter(|_| !self.map.rules.is_empty()) {
                    let Some(bytes) = cells[i].text() else {
                        return Err(corrupt_file(
                            &self.file,
                            &format!("record {n}: the segment's payload is NULL"),
                        ));
                    };
                    match self.map.rewrite(bytes) {
                        Ok(Some(new)) => {
                            cells[i] = match cells[i] {
                                Cell::Text(_) => Cell::Text(new),
                                _ => Cell::Bytes(new),
                            };
                            tally.rewritten += 1;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            // Not a payload Druid can read either: loaded as it is, and said.
                            tally.unmapped += 1;
                            if tally.unmapped <= MAX_UNMAPPED_NOTES {
                                progress.note(&format!(
                                    "{} record {n}: the segment's loadSpec is left as it is, since its payload cannot be read: {e}",
                                    self.file
                                ));
                            }
                        }
                    }
                }
                if self.add_used_status {
                    cells.push(Cell::Text(self.now.clone()));
                    tally.backfilled += 1;
                }
            }
            Role::DataSource { name } => {
                if let Some(t) = cells[name].text() {
                    if tally.offsets.len() < MAX_OFFSET_NAMES {
                        tally.offsets.push(String::from_utf8_lossy(t).into_owned());
                    } else {
                        tally.offsets_dropped += 1;
                    }
                }
            }
            Role::Supervisors {
                id,
                spec_id,
                payload,
            } => {
                let row_id = cells[id]
                    .text()
                    .and_then(|t| std::str::from_utf8(t).ok())
                    .and_then(|t| t.trim().parse::<i64>().ok())
                    .ok_or_else(|| {
                        corrupt_file(
                            &self.file,
                            &format!("record {n}: the supervisor's id is not a number"),
                        )
                    })?;
                let Some(spec) = cells[spec_id].text() else {
                    return Err(corrupt_file(
                        &self.file,
                        &format!("record {n}: the supervisor's spec_id is NULL"),
                    ));
                };
                let spec = String::from_utf8_lossy(spec).into_owned();
                tally.max_supervisor_id =
                    Some(tally.max_supervisor_id.map_or(row_id, |m| m.max(row_id)));
                let newer = tally
                    .supervisors
                    .get(&spec)
                    .is_none_or(|(have, _)| row_id > *have);
                if newer {
                    if !tally.supervisors.contains_key(&spec)
                        && tally.supervisors.len() >= MAX_SUPERVISORS
                    {
                        return Err(corrupt_file(
                            &self.file,
                            &format!("it names more than {MAX_SUPERVISORS} supervisors"),
                        ));
                    }
                    let verdict = match cells[payload].text() {
                        None => Verdict::Unreadable("its payload is NULL".into()),
                        Some(p) => match sql::needs_suspension(p) {
                            Ok(true) => Verdict::Suspend,
                            Ok(false) => Verdict::Leave,
                            Err(why) => Verdict::Unreadable(why),
                        },
                    };
                    tally.supervisors.insert(spec, (row_id, verdict));
                }
            }
        }
        Ok(())
    }
}

fn corrupt_file(file: &str, why: &str) -> MetaError {
    MetaError::Corrupt(format!(
        "the table file {file} is damaged: {why}; verify the backup, or restore another one"
    ))
}

#[cfg(test)]
mod tests {
    use super::super::super::csv::CsvWriter;
    use super::super::super::dump::Column;
    use super::*;
    use crate::progress::NotesOnly;

    fn table(name: &str, cols: &[(&str, &str)], rows: u64) -> TableDump {
        TableDump {
            name: name.into(),
            file: format!("{name}.csv"),
            columns: cols
                .iter()
                .map(|(n, t)| Column {
                    name: n.to_string(),
                    sql_type: t.to_string(),
                    nullable: true,
                })
                .collect(),
            rows,
            bytes: 0,
        }
    }

    fn write(dir: &Path, t: &TableDump, header: &[&str], rows: &[Vec<Field<'_>>]) {
        let mut w = CsvWriter::new(File::create(dir.join(&t.file)).unwrap());
        w.write_header(header).unwrap();
        for r in rows {
            w.write_record(r).unwrap();
        }
        w.flush().unwrap();
    }

    fn read_all(
        dir: &Path,
        t: &TableDump,
        map: &DeepStorageMap,
    ) -> Result<(Vec<Vec<Cell>>, Tally), MetaError> {
        let canonical = super::super::super::tables::canonical(&t.name).unwrap();
        let mut r = Reader::open(
            &dir.join(&t.file),
            t,
            canonical,
            false,
            "2026-12-02T04:15:00.000Z",
            map,
            false,
        )?;
        let mut tally = Tally::default();
        let mut out = Vec::new();
        while let Some(cells) = r.next(&mut tally, &NotesOnly)? {
            out.push(cells);
        }
        Ok((out, tally))
    }

    const SEG: [(&str, &str); 3] = [
        ("id", "character varying"),
        ("payload", "bytea"),
        ("used_status_last_updated", "character varying"),
    ];

    #[test]
    fn segments_are_decoded_and_backfilled() {
        let dir = tempfile::tempdir().unwrap();
        let t = table("druid_segments", &SEG, 3);
        write(
            dir.path(),
            &t,
            &["id", "payload", "used_status_last_updated"],
            &[
                vec![Field::Text(b"a"), Field::Bytes(b"\0\\\""), Field::Null],
                vec![Field::Text(b"b"), Field::Bytes(b"{}"), Field::Text(b"")],
                vec![Field::Text(b"c"), Field::Bytes(b"{}"), Field::Text(b"2020")],
            ],
        );
        let (rows, tally) = read_all(dir.path(), &t, &DeepStorageMap::default()).unwrap();
        assert_eq!(tally.backfilled, 2);
        assert_eq!(rows[0][1], Cell::Bytes(b"\0\\\"".to_vec()));
        assert_eq!(rows[0][2], Cell::Text(b"2026-12-02T04:15:00.000Z".to_vec()));
        assert_eq!(rows[2][2], Cell::Text(b"2020".to_vec()));
    }

    #[test]
    fn damaged_files_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let ok_rows = [vec![Field::Text(b"a"), Field::Bytes(b"{}"), Field::Null]];
        let header = ["id", "payload", "used_status_last_updated"];
        let corrupt = |t: &TableDump| {
            matches!(
                read_all(dir.path(), t, &DeepStorageMap::default()),
                Err(MetaError::Corrupt(_))
            )
        };
        // Counts off either way.
        let t = table("druid_segments", &SEG, 2);
        write(dir.path(), &t, &header, &ok_rows);
        assert!(corrupt(&t));
        let t = table("druid_segments", &SEG, 0);
        assert!(corrupt(&t));
        // Another header.
        let t = table("druid_segments", &SEG, 1);
        write(dir.path(), &t, &["id", "payload", "x"], &ok_rows);
        assert!(corrupt(&t));
        // A field too few, or a payload that is not hex.
        write(
            dir.path(),
            &t,
            &header,
            &[vec![Field::Text(b"a"), Field::Null]],
        );
        assert!(corrupt(&t));
        write(
            dir.path(),
            &t,
            &header,
            &[vec![Field::Text(b"a"), Field::Text(b"zz"), Field::Null]],
        );
        assert!(corrupt(&t));
        // No file, or a link instead of one.
        std::fs::remove_file(dir.path().join(&t.file)).unwrap();
        assert!(corrupt(&t));
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join(&t.file)).unwrap();
        assert!(corrupt(&t));
    }

    #[test]
    fn supervisors_newest_versions_are_judged() {
        let dir = tempfile::tempdir().unwrap();
        let cols = [
            ("id", "bigint"),
            ("spec_id", "character varying"),
            ("created_date", "character varying"),
            ("payload", "bytea"),
        ];
        let t = table("druid_supervisors", &cols, 4);
        let run = br#"{"type":"kafka","spec":{},"suspended":false}"#;
        let stop = br#"{"type":"kafka","spec":{},"suspended":true}"#;
        write(
            dir.path(),
            &t,
            &["id", "spec_id", "created_date", "payload"],
            &[
                vec![
                    Field::Int(9),
                    Field::Text(b"a"),
                    Field::Text(b"d"),
                    Field::Bytes(stop),
                ],
                vec![
                    Field::Int(3),
                    Field::Text(b"a"),
                    Field::Text(b"d"),
                    Field::Bytes(run),
                ],
                vec![
                    Field::Int(4),
                    Field::Text(b"b"),
                    Field::Text(b"d"),
                    Field::Bytes(run),
                ],
                vec![
                    Field::Int(5),
                    Field::Text(b"c"),
                    Field::Text(b"d"),
                    Field::Bytes(b"["),
                ],
            ],
        );
        let (_, tally) = read_all(dir.path(), &t, &DeepStorageMap::default()).unwrap();
        assert_eq!(tally.to_suspend(), vec![("b".to_string(), 4)]);
        assert_eq!(tally.max_supervisor_id, Some(9));
        assert!(matches!(tally.supervisors["c"].1, Verdict::Unreadable(_)));

        write(
            dir.path(),
            &t,
            &["id", "spec_id", "created_date", "payload"],
            &[vec![
                Field::Text(b"x"),
                Field::Text(b"a"),
                Field::Text(b"d"),
                Field::Bytes(run),
            ]],
        );
        let t = table("druid_supervisors", &cols, 1);
        assert!(matches!(
            read_all(dir.path(), &t, &DeepStorageMap::default()),
            Err(MetaError::Corrupt(_))
        ));
    }

    #[test]
    fn the_map_rewrites_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let t = table("druid_segments", &SEG, 2);
        let spec =
            br#"{"loadSpec":{"type":"s3_zip","bucket":"old","key":"p/ds/x/index.zip"},"size":1}"#;
        write(
            dir.path(),
            &t,
            &["id", "payload", "used_status_last_updated"],
            &[
                vec![Field::Text(b"a"), Field::Bytes(spec), Field::Text(b"t")],
                vec![
                    Field::Text(b"b"),
                    Field::Bytes(b"not json"),
                    Field::Text(b"t"),
                ],
            ],
        );
        let map = DeepStorageMap::parse(&["s3://old/p=s3://new/q".to_string()]).unwrap();
        let (rows, tally) = read_all(dir.path(), &t, &map).unwrap();
        assert_eq!(tally.rewritten, 1);
        assert_eq!(tally.unmapped, 1);
        let Cell::Bytes(p) = &rows[0][1] else {
            panic!("{:?}", rows[0][1]);
        };
        let url = crate::druid::loadspec::object_of(p).unwrap().unwrap().url;
        assert_eq!(url, "s3://new/q/ds/x/index.zip");
        assert_eq!(rows[1][1], Cell::Bytes(b"not json".to_vec()));
    }
}
