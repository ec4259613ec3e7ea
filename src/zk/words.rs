//! ZooKeeper's four-letter words: send 4 bytes on a fresh TCP connection, read the answer to EOF.
//! Bounded in size and time, since the server at the other end may be hostile or hung.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest answer read: `mntr` of a 3.8 server is about 20 KiB; an answer past this is not
/// ZooKeeper's.
pub const MAX_ANSWER: u64 = 256 * 1024;

/// Why a word got no answer. An answer that refuses the word (not whitelisted, not serving) is
/// an answer: see `stats::Reply`.
#[derive(Debug, thiserror::Error)]
pub enum WordError {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the answer is larger than {MAX_ANSWER} bytes: not a ZooKeeper server?")]
    TooLarge,
    #[error("the answer is not text")]
    NotText,
    #[error("reading the answer: {0}")]
    Io(io::Error),
}

/// Sends `word` (4 ASCII letters) to `server` (`host:port`) and returns the whole answer, all of
/// it (connect, send, read) within `timeout`.
pub async fn ask(server: &str, word: &str, timeout: Duration) -> Result<String, WordError> {
    match tokio::time::timeout(timeout, exchange(server, word)).await {
        Ok(res) => res,
        Err(_) => Err(WordError::Timeout(timeout)),
    }
}

async fn exchange(server: &str, word: &str) -> Result<String, WordError> {
    let mut stream = TcpStream::connect(server)
        .await
        .map_err(WordError::Connect)?;
    stream
        .write_all(word.as_bytes())
        .await
        .map_err(WordError::Io)?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(MAX_ANSWER + 1)
        .read_to_end(&mut answer)
        .await
        .map_err(WordError::Io)?;
    if answer.len() as u64 > MAX_ANSWER {
        return Err(WordError::TooLarge);
    }
    String::from_utf8(answer).map_err(|_| WordError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that reads the word, then answers `answer` (in pieces) and maybe never closes.
    async fn server(answer: Vec<u8>, hang: bool) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut word = [0u8; 4];
            s.read_exact(&mut word).await.unwrap();
            assert_eq!(&word, b"srvr");
            for piece in answer.chunks(4096) {
                if s.write_all(piece).await.is_err() {
                    return;
                }
            }
            if hang {
                std::future::pending::<()>().await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn reads_the_whole_answer_to_eof() {
        let addr = server(b"Mode: leader\n".to_vec(), false).await;
        let a = ask(&addr, "srvr", Duration::from_secs(5)).await.unwrap();
        assert_eq!(a, "Mode: leader\n");
    }

    #[tokio::test]
    async fn a_server_that_never_closes_times_out() {
        let addr = server(b"Mode: lea".to_vec(), true).await;
        let e = ask(&addr, "srvr", Duration::from_millis(300)).await;
        assert!(matches!(e, Err(WordError::Timeout(_))), "{e:?}");
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_at_the_cap() {
        let addr = server(vec![b'x'; MAX_ANSWER as usize + 10_000], true).await;
        let e = ask(&addr, "srvr", Duration::from_secs(5)).await;
        assert!(matches!(e, Err(WordError::TooLarge)), "{e:?}");
    }

    #[tokio::test]
    async fn binary_garbage_is_not_an_answer() {
        let addr = server(vec![0xff, 0xfe, 0x00], false).await;
        let e = ask(&addr, "srvr", Duration::from_secs(5)).await;
        assert!(matches!(e, Err(WordError::NotText)), "{e:?}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let e = ask(&addr, "srvr", Duration::from_secs(5)).await;
        assert!(matches!(e, Err(WordError::Connect(_))), "{e:?}");
    }
}
