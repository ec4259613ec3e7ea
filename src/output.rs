//! The command's result on stdout. A reader that goes away early (`lifeboat list | head -1`) ends
//! the process quietly with success, as Unix tools do, instead of a panic in `println!`.

use std::io::{ErrorKind, Write};

/// Prints `text` and a newline on stdout.
pub fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        // Anything else (a full disk behind a redirection): say so once, on stderr.
        eprintln!("lifeboat: cannot write the result to stdout: {e}");
    }
}
