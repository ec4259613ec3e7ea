//! Caps on what lifeboat reads whole from inputs it does not control (a manifest from a bucket,
//! dremio.conf, the config file, a clone tree, a dremio-cloner file), so that a hostile or
//! mistaken input is refused with a clear error instead of filling memory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::units::human_bytes;

/// The error for an input over its cap; `size` when it is known without reading.
pub fn too_large(size: Option<u64>, cap: u64, what: &str) -> io::Error {
    let size = size
        .map(|n| format!(" ({})", human_bytes(n)))
        .unwrap_or_default();
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!(
            "it is larger{size} than the {} lifeboat reads from {what}; check that it is the right file",
            human_bytes(cap)
        ),
    )
}

/// Reads a whole file of at most `cap` bytes. A larger one is refused without being read: from its
/// size when it is a regular file, else (a pipe, a device) after `cap + 1` bytes.
pub fn read_capped(path: &Path, cap: u64, what: &str) -> io::Result<Vec<u8>> {
    read_open(File::open(path)?, cap, what)
}

/// [`read_capped`] for inputs that are always regular files (a clone tree, a dremio-admin backup):
/// a FIFO or a device planted there is refused, and opening one never waits for a writer.
pub fn read_capped_regular(path: &Path, cap: u64, what: &str) -> io::Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    read_open(file, cap, what)
}

fn read_open(file: File, cap: u64, what: &str) -> io::Result<Vec<u8>> {
    let known = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    if let Some(n) = known
        && n > cap
    {
        return Err(too_large(Some(n), cap, what));
    }
    let mut bytes = Vec::with_capacity(known.unwrap_or(0) as usize);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_large(None, cap, what));
    }
    Ok(bytes)
}

/// [`read_capped`] for text.
pub fn read_capped_string(path: &Path, cap: u64, what: &str) -> io::Result<String> {
    utf8(read_capped(path, cap, what)?)
}

/// [`read_capped_regular`] for text.
pub fn read_capped_regular_string(path: &Path, cap: u64, what: &str) -> io::Result<String> {
    utf8(read_capped_regular(path, cap, what)?)
}

fn utf8(bytes: Vec<u8>) -> io::Result<String> {
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8 text"))
}

/// An upper bound on the number of values in a JSON text, counted without parsing it: one per
/// `{`, `[`, `,` and `:` outside strings. A parsed `serde_json::Value` costs up to ~350 bytes per
/// value (a one-key object is a whole B-tree node, 85 times its text), so a reader that builds
/// values from an untrusted text checks this count first.
pub fn json_values(text: &[u8]) -> usize {
    let mut n = 0;
    let mut in_string = false;
    let mut escaped = false;
    for &b in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' | b',' | b':' => n += 1,
                _ => {}
            }
        }
    }
    n
}

/// Refuses a JSON text with more than `max` values (see [`json_values`]), saying why.
pub fn check_json_values(text: &[u8], max: usize, what: &str) -> Result<(), String> {
    if json_values(text) > max {
        return Err(format!(
            "it holds more than {max} JSON values, far more than {what} ever has"
        ));
    }
    Ok(())
}

/// The longest string (in bytes of its JSON text, escapes counted as written) in a JSON text,
/// found without parsing it. A parse error names the offending string escaped for display
/// (`\u{7f}` is 6 bytes for one), so a reader that keeps its errors small checks this first.
pub fn longest_json_string(text: &[u8]) -> usize {
    let (mut longest, mut start) = (0, None);
    let mut escaped = false;
    for (i, &b) in text.iter().enumerate() {
        match start {
            Some(from) => {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    longest = longest.max(i - from);
                    start = None;
                }
            }
            None if b == b'"' => start = Some(i + 1),
            None => {}
        }
    }
    // An unterminated string runs to the end.
    start.map_or(longest, |from| longest.max(text.len() - from))
}

/// Refuses a JSON text holding a string longer than `max` bytes, saying why.
pub fn check_json_strings(text: &[u8], max: usize, what: &str) -> Result<(), String> {
    if longest_json_string(text) > max {
        return Err(format!(
            "it holds a string of more than {max} bytes, far longer than any in {what}"
        ));
    }
    Ok(())
}

/// The largest answer read from a Druid node: `?full` supervisor lists and all lookups of a big
/// cluster reach a few MiB; the JSON parser then holds up to ~350 bytes per value.
pub const MAX_DRUID_ANSWER_BYTES: usize = 32 << 20;
/// The most JSON values one Druid answer may hold (bounds the parsed tree's memory).
pub const MAX_DRUID_ANSWER_VALUES: usize = 2_000_000;

/// How deep `[` and `{` may nest in a TOML file lifeboat reads (its own files nest 2 deep):
/// deeper nesting can make toml_parser overflow the stack (see [`check_toml_nesting`]).
pub const MAX_TOML_DEPTH: usize = 32;

/// Refuses a TOML text whose `[`/`{` nest more than `max` deep. toml_parser 1.1 can be led past
/// its own recursion limit (an inline table that fails on `{}` counts a close it never opened),
/// and then recurses once per few bytes until the stack overflows, aborting the process. The text
/// is split into tokens exactly as toml_parser's lexer does (strings, comments and bare words
/// hide brackets); a closer pops only the opener it matches, so the depth found is never less
/// than the depth the parser reaches.
pub fn check_toml_nesting(text: &str, max: usize) -> Result<(), String> {
    let b = text.as_bytes();
    let mut open: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        i = match b[i] {
            b'[' | b'{' => {
                open.push(b[i]);
                if open.len() > max {
                    return Err(format!("brackets nest more than {max} deep"));
                }
                i + 1
            }
            b']' | b'}' => {
                let opener = if b[i] == b']' { b'[' } else { b'{' };
                if open.last() == Some(&opener) {
                    open.pop();
                }
                i + 1
            }
            b'.' | b'=' | b',' | b' ' | b'\t' | b'\r' | b'\n' => i + 1,
            b'#' => find(b, i, |c| c == b'\r' || c == b'\n'),
            b'"' if b[i..].starts_with(b"\"\"\"") => multi_line_end(b, i + 3, b'"'),
            b'\'' if b[i..].starts_with(b"\'\'\'") => multi_line_end(b, i + 3, b'\''),
            b'"' => basic_string_end(b, i + 1),
            b'\'' => {
                let end = find(b, i + 1, |c| c == b'\'' || c == b'\n');
                end + usize::from(b.get(end) == Some(&b'\''))
            }
            // A bare word (quotes inside it do not start a string) up to the next token.
            _ => find(b, i, |c| b".=,[]{} \t#\r\n".contains(&c)),
        };
    }
    Ok(())
}

/// The first index from `from` whose byte matches, or the end.
fn find(b: &[u8], from: usize, hit: impl Fn(u8) -> bool) -> usize {
    b[from..]
        .iter()
        .position(|&c| hit(c))
        .map_or(b.len(), |p| from + p)
}

/// After a `"`: the end of the string, at its closing quote or before a newline; `\\` and `\"`
/// are skipped.
fn basic_string_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b'"' => return i + 1,
            b'\n' => return i,
            b'\\' if matches!(b.get(i + 1), Some(b'\\' | b'"')) => i += 2,
            _ => i += 1,
        }
    }
    i
}

/// After `"""` or `\'\'\'`: past the closing three quotes and up to two more; in a `"""` string
/// `\\` and `\"` are skipped.
fn multi_line_end(b: &[u8], mut i: usize, quote: u8) -> usize {
    while i < b.len() {
        if quote == b'"' && b[i] == b'\\' && matches!(b.get(i + 1), Some(b'\\' | b'"')) {
            i += 2;
        } else if b[i..].starts_with(&[quote; 3]) {
            i += 3;
            for _ in 0..2 {
                if b.get(i) == Some(&quote) {
                    i += 1;
                }
            }
            return i;
        } else {
            i += 1;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_outside_strings_only() {
        assert_eq!(json_values(br#"{"a":[1,2],"b":"x,y:{["}"#), 6);
        assert_eq!(json_values(br#"["\",[",1]"#), 2);
        assert_eq!(longest_json_string(br#"{"ab":"c\"d","#), 4);
        assert_eq!(longest_json_string(br#"["abc","#), 3);
        assert_eq!(longest_json_string(br#"["abcdef"#), 6);
        assert!(check_json_strings(br#"["abcd"]"#, 3, "a test").is_err());
        assert!(check_json_values(b"[0,0,0]", 3, "a test").is_ok());
        assert!(
            check_json_values(b"[0,0,0,0]", 3, "a test")
                .unwrap_err()
                .contains("more than 3 JSON values")
        );
    }

    #[test]
    fn files_over_their_cap_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_capped(&path, 5, "a test").unwrap(), b"12345");
        let err = read_capped(&path, 4, "a test").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(err.to_string().contains("5 B"), "{err}");
        let err = read_capped(Path::new("/dev/zero"), 4, "a test").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        std::fs::write(&path, b"\xff").unwrap();
        assert!(read_capped_string(&path, 4, "a test").is_err());
    }

    #[test]
    fn toml_nesting_is_counted_on_tokens() {
        let ok = "a = [[1, 2], {b = \"]]]{{{\"}]\n# [[[[\nc = '[[[['\nd = \"\"\"[[[\n]\"\"\"\"\ne = x\"y\n";
        assert!(check_toml_nesting(ok, 2).is_ok());
        // A quote inside a bare word starts no string: the brackets after it are tokens.
        assert!(check_toml_nesting("e = x\"[[[\"", 2).is_err());
        assert!(check_toml_nesting("a = [[[1]]]", 2).is_err());
        // A closer of the other kind does not close: toml_parser keeps its level open.
        assert!(check_toml_nesting("a = [}[}[}", 2).is_err());
        assert!(check_toml_nesting(&format!("x = {{{}", "{}".repeat(1000)), 2).is_ok());
        assert!(check_toml_nesting(&format!("x = {}", "{=".repeat(3)), 2).is_err());
    }

    #[test]
    fn regular_only_reads_refuse_pipes_and_devices_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        for path in [fifo.as_path(), Path::new("/dev/zero")] {
            let err = read_capped_regular(path, 4, "a test").unwrap_err();
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
    }
}
