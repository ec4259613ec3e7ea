//! Just enough HTTP/1.1 to relay messages byte for byte: message heads are parsed (never rewritten)
//! to learn how their bodies are framed, and bodies are copied with an optional cut-off.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Heads longer than this are refused: a relay must not buffer without bound.
const MAX_HEAD: usize = 64 * 1024;
const READ_SIZE: usize = 64 * 1024;

/// One end of a relayed connection, with what was read but not consumed yet.
pub(crate) struct Peer {
    pub(crate) stream: TcpStream,
    buf: Vec<u8>,
}

impl Peer {
    pub(crate) fn new(stream: TcpStream) -> Peer {
        let _ = stream.set_nodelay(true);
        Peer {
            stream,
            buf: Vec::new(),
        }
    }

    async fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = vec![0u8; READ_SIZE];
        let n = self.stream.read(&mut tmp).await?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// The next message head (through its blank line), or None when the peer closed between messages.
    pub(crate) async fn read_head(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                return Ok(Some(self.buf.drain(..end + 4).collect()));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("message head too long"));
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// Up to `max` bytes: what is buffered, else one read. Empty at end of stream.
    async fn take(&mut self, max: usize) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() {
            self.fill().await?;
        }
        let n = self.buf.len().min(max);
        Ok(self.buf.drain(..n).collect())
    }

    /// One line through its LF (chunk sizes and trailers).
    async fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = find(&self.buf, b"\n") {
                return Ok(self.buf.drain(..=end).collect());
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("chunk line too long"));
            }
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Resolves when the peer closes its side (or sends anything: a stalled peer is not expected to).
    pub(crate) async fn closed(&mut self) {
        let _ = self.fill().await;
    }

    /// Ends the connection with a TCP reset (RST), as a crashed server or middlebox does.
    pub(crate) fn reset(self) {
        let _ = self.stream.set_zero_linger();
    }

    /// Ends the connection with an orderly close (FIN) after everything written so far.
    pub(crate) async fn close(mut self) {
        let _ = self.stream.shutdown().await;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

/// How a message body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// No length: the body ends when the sender closes (responses only).
    UntilClose,
}

/// A parsed message head; `raw` is what goes on the wire, untouched.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) raw: Vec<u8>,
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) status: u16,
    /// HTTP/1.0 closes after each message unless told otherwise.
    http10: bool,
    headers: Vec<(String, String)>,
}

impl Head {
    pub(crate) fn request(raw: Vec<u8>) -> io::Result<Head> {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        if !req
            .parse(&raw)
            .map_err(|e| invalid(&e.to_string()))?
            .is_complete()
        {
            return Err(invalid("incomplete request head"));
        }
        let head = Head {
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
            status: 0,
            http10: req.version == Some(0),
            headers: collect(req.headers),
            raw: Vec::new(),
        };
        Ok(Head { raw, ..head })
    }

    pub(crate) fn response(raw: Vec<u8>) -> io::Result<Head> {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut resp = httparse::Response::new(&mut headers);
        if !resp
            .parse(&raw)
            .map_err(|e| invalid(&e.to_string()))?
            .is_complete()
        {
            return Err(invalid("incomplete response head"));
        }
        let head = Head {
            method: String::new(),
            target: String::new(),
            status: resp.code.unwrap_or(0),
            http10: resp.version == Some(0),
            headers: collect(resp.headers),
            raw: Vec::new(),
        };
        Ok(Head { raw, ..head })
    }

    /// A header's value (names compare without case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn length_or(&self, otherwise: Framing) -> io::Result<Framing> {
        if self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            return Ok(Framing::Chunked);
        }
        match self.header("content-length") {
            Some(v) => v
                .trim()
                .parse()
                .map(Framing::Length)
                .map_err(|_| invalid("bad content-length")),
            None => Ok(otherwise),
        }
    }

    pub(crate) fn request_framing(&self) -> io::Result<Framing> {
        self.length_or(Framing::Empty)
    }

    /// How the body of this response to a `method` request ends.
    pub(crate) fn response_framing(&self, method: &str) -> io::Result<Framing> {
        if method == "HEAD" || self.status == 204 || self.status == 304 {
            return Ok(Framing::Empty);
        }
        self.length_or(Framing::UntilClose)
    }

    /// Whether the connection ends after this message.
    pub(crate) fn closes(&self) -> bool {
        match self.header("connection").map(str::to_ascii_lowercase) {
            Some(v) if v.contains("close") => true,
            Some(v) if v.contains("keep-alive") => false,
            _ => self.http10,
        }
    }
}

fn collect(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// Whether a body was relayed whole or cut off on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Copied {
    Whole,
    Cut,
}

/// Where body bytes go, with how many may still go there before the cut (None: all of them).
pub(crate) struct Sink<'a> {
    to: Option<&'a mut TcpStream>,
    left: Option<u64>,
}

impl<'a> Sink<'a> {
    pub(crate) fn to(stream: &'a mut TcpStream, cut_after: Option<u64>) -> Sink<'a> {
        Sink {
            to: Some(stream),
            left: cut_after,
        }
    }

    /// Reads and drops the body (after `cut_after` bytes when given).
    pub(crate) fn discard(cut_after: Option<u64>) -> Sink<'a> {
        Sink {
            to: None,
            left: cut_after,
        }
    }

    async fn emit(&mut self, data: &[u8]) -> io::Result<Copied> {
        let (send, cut) = match self.left {
            Some(left) if (data.len() as u64) > left => (&data[..left as usize], true),
            _ => (data, false),
        };
        if let Some(to) = self.to.as_mut() {
            to.write_all(send).await?;
        }
        if let Some(left) = self.left.as_mut() {
            *left -= send.len() as u64;
        }
        Ok(if cut { Copied::Cut } else { Copied::Whole })
    }
}

/// Relays one body from `from` into `sink`, exactly as framed.
pub(crate) async fn copy_body(
    from: &mut Peer,
    framing: Framing,
    sink: &mut Sink<'_>,
) -> io::Result<Copied> {
    match framing {
        Framing::Empty => Ok(Copied::Whole),
        Framing::Length(n) => copy_exact(from, n, sink).await,
        Framing::UntilClose => loop {
            let data = from.take(READ_SIZE).await?;
            if data.is_empty() {
                return Ok(Copied::Whole);
            }
            if sink.emit(&data).await? == Copied::Cut {
                return Ok(Copied::Cut);
            }
        },
        Framing::Chunked => copy_chunked(from, sink).await,
    }
}

async fn copy_exact(from: &mut Peer, mut left: u64, sink: &mut Sink<'_>) -> io::Result<Copied> {
    while left > 0 {
        let data = from.take(left.min(READ_SIZE as u64) as usize).await?;
        if data.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        left -= data.len() as u64;
        if sink.emit(&data).await? == Copied::Cut {
            return Ok(Copied::Cut);
        }
    }
    Ok(Copied::Whole)
}

async fn copy_chunked(from: &mut Peer, sink: &mut Sink<'_>) -> io::Result<Copied> {
    loop {
        let line = from.read_line().await?;
        if sink.emit(&line).await? == Copied::Cut {
            return Ok(Copied::Cut);
        }
        let text = String::from_utf8_lossy(&line);
        let size = text.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                let line = from.read_line().await?;
                if sink.emit(&line).await? == Copied::Cut {
                    return Ok(Copied::Cut);
                }
                if line == b"\r\n" || line == b"\n" {
                    return Ok(Copied::Whole);
                }
            }
        }
        if copy_exact(from, size + 2, sink).await? == Copied::Cut {
            return Ok(Copied::Cut);
        }
    }
}
