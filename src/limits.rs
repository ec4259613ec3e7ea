//! Caps on what lifeboat reads whole from inputs it does not control (a manifest from a bucket,
//! dremio.conf, the config file, a clone tree, a dremio-cloner file), so that a hostile or
//! mistaken input is refused with a clear error instead of filling memory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::progress::human_bytes;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_outside_strings_only() {
        assert_eq!(json_values(br#"{"a":[1,2],"b":"x,y:{["}"#), 6);
        assert_eq!(json_values(br#"["\",[",1]"#), 2);
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
