//! The lexer: SQL into identifier, string, number and punctuation tokens, comments and spaces
//! dropped.

use std::ops::Range;

/// Tokens scanned: about 8 MiB of ordinary SQL, twice the largest a clone tree accepts; what lies
/// beyond is not scanned for references (and left as it is by renames).
pub(super) const MAX_TOKENS: usize = 2_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An unquoted identifier or keyword.
    Word,
    /// A `"..."` or `` `...` `` identifier.
    Quoted,
    /// A `'...'` string literal.
    Str,
    Num,
    Punct(char),
}

#[derive(Debug)]
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) span: Range<usize>,
    /// The identifier as Dremio sees it (quotes removed, doubled quotes undone); empty for other
    /// kinds.
    pub(super) value: String,
}

/// Splits SQL into tokens, dropping whitespace and comments. Unterminated quotes and comments run
/// to the end of the text, so every byte lands in at most one token and the loop always advances.
pub(super) fn lex(sql: &str) -> Vec<Token> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(c) = sql[i..].chars().next() {
        if tokens.len() >= MAX_TOKENS {
            break;
        }
        let after = i + c.len_utf8();
        let next = bytes.get(after).copied();
        if c.is_whitespace() {
            i = after;
            continue;
        }
        // Calcite takes `//` as a line comment as well as `--`.
        if (c == '-' && next == Some(b'-')) || (c == '/' && next == Some(b'/')) {
            i = sql[i..].find('\n').map_or(sql.len(), |p| i + p + 1);
            continue;
        }
        if c == '/' && next == Some(b'*') {
            // Searching after the `*` so that `/*/` does not count as closed.
            i = sql[after + 1..]
                .find("*/")
                .map_or(sql.len(), |p| after + 1 + p + 2);
            continue;
        }
        let (kind, end, value) = match c {
            '\'' => (Kind::Str, quoted(sql, i, b'\'').0, String::new()),
            '"' | '`' => {
                let (end, value) = quoted(sql, i, c as u8);
                (Kind::Quoted, end, value)
            }
            _ if c.is_ascii_digit() => (Kind::Num, number_end(bytes, i), String::new()),
            _ if c.is_alphabetic() || c == '_' || c == '$' => {
                let end = sql[after..]
                    .char_indices()
                    .find(|&(_, ch)| !(ch.is_alphanumeric() || ch == '_' || ch == '$'))
                    .map_or(sql.len(), |(p, _)| after + p);
                (Kind::Word, end, sql[i..end].to_string())
            }
            _ => (Kind::Punct(c), after, String::new()),
        };
        tokens.push(Token {
            kind,
            span: i..end,
            value,
        });
        i = end;
    }
    tokens
}

/// Reads a token quoted with `q` (ASCII) opening at `start`, where a doubled quote stands for one.
/// Returns its end (after the closing quote, or the end of the text) and its content. Scanning
/// bytes is safe because an ASCII byte never occurs inside a multi-byte UTF-8 character, so every
/// cut lands on a char boundary.
pub(super) fn quoted(sql: &str, start: usize, q: u8) -> (usize, String) {
    let bytes = sql.as_bytes();
    let mut value = String::new();
    let mut run = start + 1;
    let mut j = start + 1;
    while j < bytes.len() {
        if bytes[j] == q {
            value.push_str(&sql[run..j]);
            if bytes.get(j + 1) == Some(&q) {
                value.push(char::from(q));
                j += 2;
                run = j;
                continue;
            }
            return (j + 1, value);
        }
        j += 1;
    }
    value.push_str(&sql[run..]);
    (bytes.len(), value)
}

/// End of a numeric literal: digits, an optional fraction and exponent, and any suffix letters, so
/// that `1e5` or `10L` stay one token instead of leaving a stray word behind.
pub(super) fn number_end(bytes: &[u8], start: usize) -> usize {
    let digit = |k: usize| bytes.get(k).is_some_and(u8::is_ascii_digit);
    let mut j = start;
    while digit(j) {
        j += 1;
    }
    if bytes.get(j) == Some(&b'.') && digit(j + 1) {
        j += 1;
        while digit(j) {
            j += 1;
        }
    }
    if matches!(bytes.get(j), Some(b'e' | b'E')) {
        let k = if matches!(bytes.get(j + 1), Some(b'+' | b'-')) {
            j + 2
        } else {
            j + 1
        };
        if digit(k) {
            j = k;
            while digit(j) {
                j += 1;
            }
        }
    }
    while bytes
        .get(j)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        j += 1;
    }
    j
}
