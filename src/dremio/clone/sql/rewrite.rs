//! Renaming the roots of references in SQL, byte for byte elsewhere, quoting only when needed.

use std::ops::Range;

use super::scan::{Reference, Scan};
use super::words::is_reserved;

/// Rewrites the FIRST part of every table and function reference for which `rename` (given the
/// unquoted first part) returns a new name. Keeps everything else byte-for-byte (comments, spacing,
/// case, other parts).
///
/// Quoting of the new part: double quotes (or backquotes) are kept if the original was quoted, with
/// quotes inside the name doubled; it stays unquoted if the original was unquoted and the new name
/// is a plain identifier (letter or `_` first, then letters/digits/`_`/`$`) and not a SQL reserved
/// word; otherwise it is double-quoted. A `rename` answer equal to the current name leaves the
/// token untouched.
pub fn rename_roots(sql: &str, rename: &dyn Fn(&str) -> Option<String>) -> String {
    rename_refs(sql, &|r: &Reference| {
        r.parts.first().and_then(|root| rename(root))
    })
}

/// Like [`rename_roots`], but `rename` sees the whole reference (to tell, e.g., a path relative to
/// a view's context from an absolute one) and returns the new first part.
pub fn rename_refs(sql: &str, rename: &dyn Fn(&Reference) -> Option<String>) -> String {
    let scan = Scan::run(sql);
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    for reference in scan.tables.iter().chain(&scan.functions) {
        let (Some(root), Some(span)) = (reference.parts.first(), reference.spans.first()) else {
            continue;
        };
        match rename(reference) {
            Some(new) if new != *root => {
                edits.push((span.clone(), requote(&sql[span.clone()], &new)))
            }
            _ => {}
        }
    }
    edits.sort_by_key(|(span, _)| span.start);
    let mut out = String::with_capacity(sql.len() + 16 * edits.len());
    let mut copied = 0;
    for (span, text) in edits {
        // A token is never both a table and a function root, but an overlap must not corrupt the
        // output.
        if span.start < copied {
            continue;
        }
        out.push_str(&sql[copied..span.start]);
        out.push_str(&text);
        copied = span.end;
    }
    out.push_str(&sql[copied..]);
    out
}

/// Spells `new` the way the original token was spelled, quoting only when it must.
pub(super) fn requote(original: &str, new: &str) -> String {
    match original.chars().next() {
        Some(q @ ('"' | '`')) => {
            let doubled: String = [q, q].iter().collect();
            format!("{q}{}{q}", new.replace(q, &doubled))
        }
        _ if is_plain_identifier(new) && !is_reserved(new) => new.to_string(),
        _ => format!("\"{}\"", new.replace('"', "\"\"")),
    }
}

/// An identifier every SQL dialect accepts unquoted. ASCII only on purpose: quoting a name that did
/// not need it is harmless, leaving unquoted one that needed quotes breaks the view.
pub(super) fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}
