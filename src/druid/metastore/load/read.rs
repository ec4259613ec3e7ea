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
