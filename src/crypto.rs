//! Client-side encryption: age v1 (age-encryption.org/v1) with X25519 recipients, one age file per
//! object, written after compression. Recipients are public keys (`age1...`); identities
//! (`AGE-SECRET-KEY-1...`) come only from a file, never from argv. Decryption treats its input as
//! hostile: the header is read under a size cap before any key is tried, and a cut or altered
//! payload is an error (age's STREAM marks its last chunk, and every chunk is authenticated).

use std::cell::Cell;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::str::FromStr;

use crate::error::{Classify, ExitClass};

/// The environment variable naming the identity file of restores, verifies and incremental
/// backups of encrypted repositories.
pub const IDENTITY_FILE_VAR: &str = "LIFEBOAT_AGE_IDENTITY_FILE";
/// The largest recipients or identity file read.
const MAX_KEY_FILE_BYTES: u64 = 1 << 20;
/// The most header bytes read before the payload: an X25519 stanza is about 100 bytes, so this
/// takes over a hundred recipients; anything longer was not written for lifeboat. (age re-parses
/// its header as it grows, so a larger cap makes a forged header cost quadratic time.)
const MAX_HEADER_BYTES: u64 = 16 << 10;
/// The scheme recorded in a manifest's `encryption` section.
pub const SCHEME: &str = "age-v1-x25519";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("{what} is not an age X25519 recipient (age1...): {why}")]
    BadRecipient { what: String, why: String },
    #[error("cannot read {path}: {source}")]
    KeyFile { path: PathBuf, source: io::Error },
    #[error(
        "{path} holds no age X25519 identity (AGE-SECRET-KEY-1... lines, as age-keygen writes them)"
    )]
    NoIdentity { path: PathBuf },
    #[error(
        "the backup is encrypted and no identity was given: pass --identity FILE or set {IDENTITY_FILE_VAR}"
    )]
    MissingIdentity,
    #[error(
        "none of the identities given can decrypt {what}: it was encrypted to other recipients (use the key of one of {recipients})"
    )]
    WrongKey { what: String, recipients: String },
    #[error("{what} is not a valid age file: {why}")]
    Corrupt { what: String, why: String },
}

impl Classify for CryptoError {
    fn exit_class(&self) -> ExitClass {
        match self {
            CryptoError::Corrupt { .. } => ExitClass::Integrity,
            _ => ExitClass::Usage,
        }
    }
}

/// The public keys objects are encrypted to, in the canonical (sorted, deduplicated) order a
/// manifest records.
#[derive(Clone)]
pub struct Recipients {
    keys: Vec<age::x25519::Recipient>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.strings()).finish()
    }
}

impl Recipients {
    /// Parses `age1...` strings; `what` names where they came from in errors.
    pub fn parse<S: AsRef<str>>(list: &[S], what: &str) -> Result<Recipients, CryptoError> {
        let mut keys = Vec::new();
        for s in list {
            let s = s.as_ref().trim();
            let key =
                age::x25519::Recipient::from_str(s).map_err(|why| CryptoError::BadRecipient {
                    what: format!("{what} {:?}", shorten(s)),
                    why: why.to_string(),
                })?;
            keys.push(key);
        }
        keys.sort_by_key(|k| k.to_string());
        keys.dedup_by_key(|k| k.to_string());
        Ok(Recipients { keys })
    }

    /// A recipients file as age's `-R` reads it: one `age1...` per line, `#` comments and blank
    /// lines ignored.
    pub fn from_file(path: &Path) -> Result<Recipients, CryptoError> {
        let text = read_key_file(path)?;
        let lines: Vec<&str> = key_lines(&text).collect();
        Recipients::parse(&lines, &format!("a line of {}", path.display()))
    }

    /// These recipients and `more`'s, together.
    pub fn and(mut self, more: Recipients) -> Recipients {
        self.keys.extend(more.keys);
        self.keys.sort_by_key(|k| k.to_string());
        self.keys.dedup_by_key(|k| k.to_string());
        self
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The canonical strings, sorted: what a manifest records and compares.
    pub fn strings(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.to_string()).collect()
    }

    /// Starts an age file to these recipients on `out`. [`Sealer::finish`] must be called, or
    /// the file is truncated (and fails to decrypt, which is how a cut upload is caught).
    pub fn seal<W: Write>(&self, out: W) -> io::Result<Sealer<W>> {
        let encryptor =
            age::Encryptor::with_recipients(self.keys.iter().map(|k| k as &dyn age::Recipient))
                .map_err(|e| io::Error::other(format!("age: {e}")))?;
        Ok(Sealer {
            inner: encryptor.wrap_output(out)?,
        })
    }
}

/// An age file being written.
pub struct Sealer<W: Write> {
    inner: age::stream::StreamWriter<W>,
}

impl<W: Write> Sealer<W> {
    /// Writes the last chunk and returns the writer underneath.
    pub fn finish(self) -> io::Result<W> {
        self.inner.finish()
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The secret keys a restore, verify or incremental backup decrypts with.
pub struct Identities {
    keys: Vec<age::x25519::Identity>,
    /// Where they came from, for messages (never the keys themselves).
    pub source: PathBuf,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Identities({} from {})",
            self.keys.len(),
            self.source.display()
        )
    }
}

impl Identities {
    /// An identity file as age-keygen writes it (`AGE-SECRET-KEY-1...` lines; comments and blank
    /// lines ignored). Other kinds of identity (plugins, ssh keys) are refused by name.
    pub fn from_file(path: &Path) -> Result<Identities, CryptoError> {
        let text = read_key_file(path)?;
        let mut keys = Vec::new();
        for (n, line) in key_lines(&text).enumerate() {
            let key =
                age::x25519::Identity::from_str(line).map_err(|_| CryptoError::BadRecipient {
                    what: format!("key {} of {}", n + 1, path.display()),
                    why: "not an AGE-SECRET-KEY-1... line".into(),
                })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(CryptoError::NoIdentity {
                path: path.to_path_buf(),
            });
        }
        Ok(Identities {
            keys,
            source: path.to_path_buf(),
        })
    }

    /// `--identity FILE` when given, else the file [`IDENTITY_FILE_VAR`] names, else none.
    pub fn from_flag_or_env(
        flag: Option<&Path>,
        env: crate::secrets::Env<'_>,
    ) -> Result<Option<Identities>, CryptoError> {
        match flag {
            Some(p) => Identities::from_file(p).map(Some),
            None => match env(IDENTITY_FILE_VAR).filter(|v| !v.is_empty()) {
                Some(p) => Identities::from_file(Path::new(&p)).map(Some),
                None => Ok(None),
            },
        }
    }

    /// The public keys of these identities (to tell which backups they can open).
    pub fn recipients(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .keys
            .iter()
            .map(|k| k.to_public().to_string())
            .collect();
        v.sort();
        v
    }

    /// Opens the age file on `input` (`what` names it in errors). The header is read under
    /// [`MAX_HEADER_BYTES`]; a header none of the identities opens is [`CryptoError::WrongKey`].
    pub fn open<R: Read>(&self, input: R, what: &str) -> Result<Opened<R>, CryptoError> {
        let budget = Rc::new(Cell::new(MAX_HEADER_BYTES));
        let capped = BufReader::with_capacity(
            64 << 10,
            Capped {
                inner: input,
                left: budget.clone(),
            },
        );
        let decryptor = age::Decryptor::new_buffered(capped).map_err(|e| self.failed(e, what))?;
        let reader = decryptor
            .decrypt(self.keys.iter().map(|k| k as &dyn age::Identity))
            .map_err(|e| self.failed(e, what))?;
        budget.set(u64::MAX);
        Ok(Opened {
            inner: reader,
            what: what.to_string(),
        })
    }

    fn failed(&self, e: age::DecryptError, what: &str) -> CryptoError {
        match e {
            age::DecryptError::NoMatchingKeys => CryptoError::WrongKey {
                what: what.to_string(),
                recipients: "the backup's recipients (`lifeboat list --json` shows them)".into(),
            },
            other => CryptoError::Corrupt {
                what: what.to_string(),
                why: other.to_string(),
            },
        }
    }
}

/// The plaintext of an age file; a cut or altered payload reads as an `InvalidData` error naming
/// the object.
pub struct Opened<R: Read> {
    inner: age::stream::StreamReader<BufReader<Capped<R>>>,
    what: String,
}

impl<R: Read> Read for Opened<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: the age payload is cut or altered: {e}", self.what),
            )
        })
    }
}

/// A reader that refuses to go past `left` bytes (the header's budget), then none once lifted.
struct Capped<R> {
    inner: R,
    left: Rc<Cell<u64>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left.get();
        if left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the age header is longer than {MAX_HEADER_BYTES} bytes"),
            ));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if left != u64::MAX {
            self.left.set(left - n as u64);
        }
        Ok(n)
    }
}

fn read_key_file(path: &Path) -> Result<String, CryptoError> {
    crate::limits::read_capped_string(path, MAX_KEY_FILE_BYTES, "an age key file").map_err(
        |source| CryptoError::KeyFile {
            path: path.to_path_buf(),
            source,
        },
    )
}

fn key_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// At most 24 characters of a rejected recipient string, for its error.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(24).collect();
    if s.chars().count() > 24 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    /// A fresh identity written to `dir/name`, and its recipient string.
    pub fn key_in(dir: &Path, name: &str) -> (PathBuf, String) {
        let id = age::x25519::Identity::generate();
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("# a test key\n{}\n", id.to_string().expose_secret()),
        )
        .unwrap();
        (path, id.to_public().to_string())
    }

    fn sealed(recipients: &Recipients, plain: &[u8]) -> Vec<u8> {
        let mut s = recipients.seal(Vec::new()).unwrap();
        s.write_all(plain).unwrap();
        s.finish().unwrap()
    }

    #[test]
    fn each_of_two_recipients_opens_what_was_sealed_to_both() {
        let dir = tempfile::tempdir().unwrap();
        let (a, ra) = key_in(dir.path(), "a.txt");
        let (b, rb) = key_in(dir.path(), "b.txt");
        let r = Recipients::parse(&[rb.clone(), ra.clone(), ra.clone()], "--encrypt-to").unwrap();
        assert_eq!(r.len(), 2);
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let file = sealed(&r, &plain);
        for key in [a, b] {
            let ids = Identities::from_file(&key).unwrap();
            let mut out = Vec::new();
            ids.open(&file[..], "object x")
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, plain);
        }
    }

    #[test]
    fn a_wrong_key_a_cut_file_and_a_flipped_byte_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, ra) = key_in(dir.path(), "a.txt");
        let (other, _) = key_in(dir.path(), "other.txt");
        let r = Recipients::parse(&[ra], "--encrypt-to").unwrap();
        let plain = vec![7u8; 150_000];
        let file = sealed(&r, &plain);
        let wrong = Identities::from_file(&other).unwrap();
        assert!(matches!(
            wrong.open(&file[..], "x"),
            Err(CryptoError::WrongKey { .. })
        ));
        let (right, _) = (dir.path().join("a.txt"), ());
        let ids = Identities::from_file(&right).unwrap();
        // In the header, mid-chunk, on the first chunk's boundary (64 KiB + 16 of tag, plus the
        // header and nonce), and the last byte.
        let header_end = file.len() - (plain.len() + 3 * 16);
        for cut in [
            40,
            header_end + 1000,
            header_end + 65536 + 16,
            file.len() - 1,
        ] {
            let got = ids.open(&file[..cut], "x").and_then(|mut r| {
                let mut out = Vec::new();
                r.read_to_end(&mut out).map_err(|e| CryptoError::Corrupt {
                    what: "x".into(),
                    why: e.to_string(),
                })
            });
            assert!(got.is_err(), "a file cut at {cut} of {} opened", file.len());
        }
        let mut flipped = file.clone();
        flipped[header_end + 70_000] ^= 1;
        let mut out = Vec::new();
        let read = ids.open(&flipped[..], "x").unwrap().read_to_end(&mut out);
        assert!(read.is_err());
    }

    #[test]
    fn bad_keys_are_named_and_secrets_never_shown() {
        let err = Recipients::parse(&["age1notakey"], "--encrypt-to").unwrap_err();
        assert!(err.to_string().contains("--encrypt-to"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "# nothing\n").unwrap();
        assert!(matches!(
            Identities::from_file(&empty),
            Err(CryptoError::NoIdentity { .. })
        ));
        let (key, _) = key_in(dir.path(), "k.txt");
        let ids = Identities::from_file(&key).unwrap();
        let shown = format!("{ids:?}");
        assert!(!shown.contains("AGE-SECRET-KEY"), "{shown}");
    }

    #[test]
    fn an_endless_header_is_refused_within_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = key_in(dir.path(), "k.txt");
        let ids = Identities::from_file(&key).unwrap();
        let mut forged = b"age-encryption.org/v1\n".to_vec();
        while forged.len() < MAX_HEADER_BYTES as usize + 4096 {
            forged.extend_from_slice(b"-> X25519 AAAA\nAAAA\n");
        }
        assert!(ids.open(&forged[..], "x").is_err());
    }
}
