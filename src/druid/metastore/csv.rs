//! The table files' dialect, one for both databases so that a file loads into either:
//! RFC 4180 CSV, a header line of column names, every value in double quotes (a quote doubled),
//! NULL as the unquoted word `NULL`, binary columns as `\x` and lowercase hex (PostgreSQL's bytea
//! input; MySQL loads them with `UNHEX(SUBSTRING(@v, 3))`), booleans as `1`/`0`, records ended by
//! `\n`. PostgreSQL loads a file with `COPY t FROM STDIN (FORMAT csv, HEADER true, NULL 'NULL')`,
//! MySQL with `LOAD DATA ... FIELDS TERMINATED BY ',' ENCLOSED BY '"' ESCAPED BY ''`. The reader
//! treats every file as hostile: fields and records are capped, anything else is an error.
//!
//! Why CSV with hex payloads rather than JSON lines: it is what Druid's own export-metadata tool
//! writes and what both databases' bulk loaders read as they are, so a person can load a backup
//! with `psql` or `mariadb` alone; hex keeps payload bytes exact (no backslash or encoding
//! damage), and quoting every value keeps a text `NULL` apart from the NULL word.
//!
//! The reader is strict: a field is either the bare word `NULL` or a quoted value; after a
//! closing quote comes `,`, `\n` or the end of the file; a quoted value still open at the end of
//! the file is an error (the file was cut short). The last record may lack its `\n`.

use std::io::{self, BufRead, Write};

/// The largest field the reader accepts (a lookups config can be several MiB).
pub const MAX_FIELD_BYTES: usize = 64 << 20;
/// The most fields a record may have.
pub const MAX_FIELDS: usize = 64;
/// The most bytes all fields of one record may hold together.
pub const MAX_RECORD_BYTES: usize = 128 << 20;

/// One value to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Null,
    Text(&'a [u8]),
    /// Written as `\x` + hex.
    Bytes(&'a [u8]),
    Bool(bool),
    Int(i64),
}

/// Writes records of the dialect. Give it a buffered writer: it writes many small pieces.
pub struct CsvWriter<W: Write> {
    out: W,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W) -> Self {
        CsvWriter { out }
    }

    /// The header line: the column names, quoted like any text.
    pub fn write_header(&mut self, names: &[&str]) -> io::Result<()> {
        let fields: Vec<Field<'_>> = names.iter().map(|n| Field::Text(n.as_bytes())).collect();
        self.write_record(&fields)
    }

    /// One record; a record needs at least one field.
    pub fn write_record(&mut self, fields: &[Field<'_>]) -> io::Result<()> {
        if fields.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a CSV record needs at least one field",
            ));
        }
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            match *f {
                Field::Null => self.out.write_all(b"NULL")?,
                Field::Text(t) => self.quoted(t)?,
                Field::Bytes(b) => self.hex(b)?,
                Field::Bool(v) => self.out.write_all(if v { b"\"1\"" } else { b"\"0\"" })?,
                Field::Int(n) => write!(self.out, "\"{n}\"")?,
            }
        }
        self.out.write_all(b"\n")
    }

    fn quoted(&mut self, text: &[u8]) -> io::Result<()> {
        self.out.write_all(b"\"")?;
        let mut rest = text;
        while let Some(q) = rest.iter().position(|&c| c == b'"') {
            self.out.write_all(&rest[..=q])?;
            self.out.write_all(b"\"")?;
            rest = &rest[q + 1..];
        }
        self.out.write_all(rest)?;
        self.out.write_all(b"\"")
    }

    fn hex(&mut self, bytes: &[u8]) -> io::Result<()> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        self.out.write_all(b"\"\\x")?;
        let mut buf = [0u8; 8192];
        for chunk in bytes.chunks(buf.len() / 2) {
            for (i, b) in chunk.iter().enumerate() {
                buf[2 * i] = DIGITS[usize::from(b >> 4)];
                buf[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
            }
            self.out.write_all(&buf[..2 * chunk.len()])?;
        }
        self.out.write_all(b"\"")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// One record read: each field's raw text (quotes removed), `None` for NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub fields: Vec<Option<Vec<u8>>>,
}

impl Record {
    /// Field `i` as it was read (`None` for NULL or a field the record does not have).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.fields.get(i).and_then(|f| f.as_deref())
    }

    /// Decodes a binary field written as `\x` + hex.
    pub fn bytes(&self, i: usize) -> Result<Option<Vec<u8>>, String> {
        let Some(field) = self.fields.get(i) else {
            return Err(format!(
                "the record has {} fields, not {}",
                self.fields.len(),
                i + 1
            ));
        };
        field.as_deref().map(decode_hex).transpose()
    }
}

/// `\x` + hex (either case) into bytes.
pub fn decode_hex(text: &[u8]) -> Result<Vec<u8>, String> {
    let digits = text
        .strip_prefix(b"\\x")
        .ok_or("a binary value does not start with \\x")?;
    hex::decode(digits).map_err(|e| format!("a binary value is not hex: {e}"))
}

fn too_large() -> String {
    format!(
        "a value is larger than the reader's cap ({MAX_FIELD_BYTES} bytes a field, \
         {MAX_RECORD_BYTES} a record)"
    )
}

/// Reads records of the dialect, with the caps above.
pub struct CsvReader<R: BufRead> {
    input: R,
    /// Records read so far (the header is not one).
    pub records: u64,
    header: Option<Vec<String>>,
    /// Bytes consumed so far, for error messages.
    offset: u64,
}

impl<R: BufRead> CsvReader<R> {
    pub fn new(input: R) -> Self {
        CsvReader {
            input,
            records: 0,
            header: None,
            offset: 0,
        }
    }

    /// The column names of the header line (read on first use); a file without one is an error.
    pub fn header(&mut self) -> Result<&[String], String> {
        if self.header.is_none() {
            let fields = self
                .raw_record("the header")?
                .ok_or("the file is empty: it has no header line")?;
            let names = fields
                .into_iter()
                .enumerate()
                .map(|(i, f)| {
                    let f = f.ok_or(format!("the header's column {} is NULL", i + 1))?;
                    String::from_utf8(f)
                        .map_err(|_| format!("the header's column {} is not UTF-8", i + 1))
                })
                .collect::<Result<Vec<String>, String>>()?;
            self.header = Some(names);
        }
        Ok(self.header.as_deref().unwrap_or_default())
    }

    /// The next record, `None` at the end; an error names the record number and what is wrong.
    /// The header is read first if it was not yet.
    pub fn next_record(&mut self) -> Result<Option<Record>, String> {
        self.header()?;
        let what = format!("record {}", self.records + 1);
        let fields = self.raw_record(&what)?;
        Ok(fields.map(|fields| {
            self.records += 1;
            Record { fields }
        }))
    }

    fn consume(&mut self, n: usize) {
        self.input.consume(n);
        self.offset += n as u64;
    }

    fn fill(&mut self) -> Result<&[u8], String> {
        loop {
            match self.input.fill_buf() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading at byte {}: {e}", self.offset)),
            }
        }
        // filled above: this returns the buffer as it is
        let offset = self.offset;
        self.input
            .fill_buf()
            .map_err(|e| format!("reading at byte {offset}: {e}"))
    }

    fn peek(&mut self) -> Result<Option<u8>, String> {
        Ok(self.fill()?.first().copied())
    }

    /// One record's fields, `None` at a clean end of the file.
    fn raw_record(&mut self, what: &str) -> Result<Option<Vec<Option<Vec<u8>>>>, String> {
        let start = self.offset;
        let bad = |why: &str, at: u64| format!("{what} (byte {at}): {why}");
        let mut fields: Vec<Option<Vec<u8>>> = Vec::new();
        let mut total = 0usize;
        loop {
            let at = self.offset;
            match self.peek()? {
                None if fields.is_empty() => return Ok(None),
                None => return Err(bad("the file ends after a comma", at)),
                Some(b'"') => {
                    self.consume(1);
                    let room = MAX_FIELD_BYTES.min(MAX_RECORD_BYTES - total);
                    let value = self.quoted(room).map_err(|why| bad(&why, at))?;
                    total += value.len();
                    fields.push(Some(value));
                }
                Some(b'N') => {
                    self.word(b"NULL").map_err(|why| bad(&why, at))?;
                    fields.push(None);
                }
                Some(c) => {
                    return Err(bad(
                        &format!(
                            "a field starts with {:?}: it must be quoted, or the word NULL",
                            char::from(c)
                        ),
                        at,
                    ));
                }
            }
            if fields.len() > MAX_FIELDS {
                return Err(bad(
                    &format!("more than {MAX_FIELDS} fields in one record"),
                    start,
                ));
            }
            let at = self.offset;
            match self.peek()? {
                None => return Ok(Some(fields)),
                Some(b'\n') => {
                    self.consume(1);
                    return Ok(Some(fields));
                }
                Some(b',') => self.consume(1),
                Some(c) => {
                    return Err(bad(
                        &format!(
                            "{:?} after a field: expected a comma or the end of the line",
                            char::from(c)
                        ),
                        at,
                    ));
                }
            }
        }
    }

    /// The bytes of exactly `word`.
    fn word(&mut self, word: &[u8]) -> Result<(), String> {
        for &want in word {
            match self.peek()? {
                Some(c) if c == want => self.consume(1),
                _ => return Err("a field must be quoted, or the word NULL".into()),
            }
        }
        Ok(())
    }

    /// A quoted value after its opening quote, through its closing one.
    fn quoted(&mut self, room: usize) -> Result<Vec<u8>, String> {
        let mut value = Vec::new();
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Err("a quoted value is not closed at the end of the file \
                    (the file is cut short)"
                    .into());
            }
            let (take, quote) = match buf.iter().position(|&c| c == b'"') {
                Some(q) => (q, true),
                None => (buf.len(), false),
            };
            if value.len() + take > room {
                return Err(too_large());
            }
            value.extend_from_slice(&buf[..take]);
            self.consume(take + usize::from(quote));
            if !quote {
                continue;
            }
            // A doubled quote is one quote of the value; any other byte ends it.
            if self.peek()? == Some(b'"') {
                if value.len() + 1 > room {
                    return Err(too_large());
                }
                value.push(b'"');
                self.consume(1);
            } else {
                return Ok(value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn write(records: &[Vec<Field<'_>>]) -> Vec<u8> {
        let mut w = CsvWriter::new(Vec::new());
        w.write_header(&["a", "b"]).unwrap();
        for r in records {
            w.write_record(r).unwrap();
        }
        w.into_inner()
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Record>, String> {
        let mut r = CsvReader::new(bytes);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push(rec);
        }
        assert_eq!(r.records, out.len() as u64);
        Ok(out)
    }

    #[test]
    fn every_value_is_quoted_null_is_bare_and_bytes_are_hex() {
        let bytes = write(&[vec![
            Field::Text(b"say \"NULL\""),
            Field::Null,
            Field::Bytes(b"\\\0\xff"),
            Field::Bool(true),
            Field::Bool(false),
            Field::Int(-42),
        ]]);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "\"a\",\"b\"\n\"say \"\"NULL\"\"\",NULL,\"\\x5c00ff\",\"1\",\"0\",\"-42\"\n"
        );
        let recs = read_all(&bytes).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].get(0), Some(&b"say \"NULL\""[..]));
        assert_eq!(recs[0].fields[1], None);
        assert_eq!(recs[0].bytes(2).unwrap().unwrap(), b"\\\0\xff");
        assert_eq!(recs[0].bytes(1).unwrap(), None);
        assert!(recs[0].bytes(0).is_err());
        assert!(recs[0].bytes(9).is_err());
        let mut r = CsvReader::new(&bytes[..]);
        assert_eq!(r.header().unwrap(), ["a", "b"]);
    }

    #[test]
    fn a_quoted_null_is_text_and_the_last_newline_may_be_missing() {
        let recs = read_all(b"\"h\"\n\"NULL\",NULL\n\"x\"").unwrap();
        assert_eq!(recs[0].fields, vec![Some(b"NULL".to_vec()), None]);
        assert_eq!(recs[1].fields, vec![Some(b"x".to_vec())]);
        assert_eq!(read_all(b"\"h\"\n").unwrap(), vec![]);
        assert_eq!(
            read_all(b"\"h\"\n\"\"\n").unwrap()[0].fields,
            vec![Some(vec![])]
        );
    }

    #[test]
    fn hostile_files_are_errors_that_say_where() {
        for (bad, says) in [
            (&b""[..], "no header"),
            (b"\"h\"\n\"open", "not closed"),
            (b"\"h\"\n\"a\"x\n", "after a field"),
            (b"\"h\"\n\"a\" \n", "after a field"),
            (b"\"h\"\nbare\n", "must be quoted"),
            (b"\"h\"\nNUL\n", "must be quoted"),
            (b"\"h\"\nNULLX\n", "after a field"),
            (b"\"h\"\n\"a\",\n", "starts with"),
            (b"\"h\"\n\"a\",", "ends after a comma"),
            (b"\"h\"\n\n", "starts with"),
            (b"\"h\"\r\n", "after a field"),
            (b"NULL\n", "header's column 1 is NULL"),
            (b"\"\xff\"\n", "not UTF-8"),
        ] {
            let e = read_all(bad).unwrap_err();
            assert!(e.contains(says), "{:?}: {e}", String::from_utf8_lossy(bad));
        }
        let e = read_all(b"\"h\"\n\"ok\"\n\"a\"x").unwrap_err();
        assert!(e.starts_with("record 2 (byte 12)"), "{e}");
    }

    #[test]
    fn caps_hold() {
        let many = format!("\"h\"\n{}\n", vec!["NULL"; MAX_FIELDS + 1].join(","));
        assert!(read_all(many.as_bytes()).unwrap_err().contains("more than"));
        let just = format!("\"h\"\n{}\n", vec!["NULL"; MAX_FIELDS].join(","));
        assert_eq!(
            read_all(just.as_bytes()).unwrap()[0].fields.len(),
            MAX_FIELDS
        );
        // A huge value is refused without being held: the reader stops at the cap.
        struct Endless(Vec<u8>);
        impl io::Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                Ok(n)
            }
        }
        let mut head = b"\"h\"\n\"".to_vec();
        head.extend(std::iter::repeat_n(b'a', 1 << 16));
        let endless = io::BufReader::new(io::Read::chain(&head[..], Endless(vec![b'a'; 1 << 16])));
        let mut r = CsvReader::new(endless);
        assert!(r.next_record().unwrap_err().contains("larger than"));
    }

    #[test]
    fn an_empty_record_is_not_written() {
        assert!(CsvWriter::new(Vec::new()).write_record(&[]).is_err());
    }

    fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
        let special = prop::collection::vec(
            prop::sample::select(vec![b'\\', b'"', b',', b'\r', b'\n', 0, 0xff, b'N', b'x']),
            0..8,
        );
        prop_oneof![
            Just(None),
            Just(Some(b"NULL".to_vec())),
            special.prop_map(Some),
            prop::collection::vec(any::<u8>(), 0..64).prop_map(Some),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_round_trip_as_text_and_as_hex(
            rows in prop::collection::vec(prop::collection::vec(value(), 1..6), 0..8),
            small in 1usize..4,
        ) {
            let mut w = CsvWriter::new(Vec::new());
            w.write_header(&["c"]).unwrap();
            for r in &rows {
                let text: Vec<Field<'_>> = r.iter()
                    .map(|v| v.as_deref().map_or(Field::Null, Field::Text)).collect();
                w.write_record(&text).unwrap();
                let hex: Vec<Field<'_>> = r.iter()
                    .map(|v| v.as_deref().map_or(Field::Null, Field::Bytes)).collect();
                w.write_record(&hex).unwrap();
            }
            let bytes = w.into_inner();
            // a tiny buffer makes every value straddle reads
            let mut rd = CsvReader::new(io::BufReader::with_capacity(small, &bytes[..]));
            prop_assert_eq!(rd.header().unwrap(), ["c"]);
            for r in &rows {
                let text = rd.next_record().unwrap().unwrap();
                prop_assert_eq!(&text.fields, r);
                let hex = rd.next_record().unwrap().unwrap();
                for (i, v) in r.iter().enumerate() {
                    prop_assert_eq!(&hex.bytes(i).unwrap(), v);
                }
            }
            prop_assert_eq!(rd.next_record().unwrap(), None);
        }
    }
}
