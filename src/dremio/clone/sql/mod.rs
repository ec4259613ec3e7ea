//! View SQL analysis: which datasets and UDFs a view reads, and renaming their root (source/space)
//! names.

// Not a SQL parser: a tolerant scanner that knows just enough Calcite/Dremio grammar to tell a
// table position (after FROM, JOIN, a comma in a FROM list) from everything else. Views are cloned
// even when their SQL uses forms this scanner does not know, so it never fails: it returns what it
// recognised.

use std::ops::Range;

/// One reference to a table/view (or a UDF) in a SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The dotted path as written, unquoted (e.g. ["Sales", "my view"]).
    pub parts: Vec<String>,
    /// Byte range in the SQL of each part's token, quotes included (same length as `parts`).
    pub spans: Vec<Range<usize>>,
}

/// Tables and views read by the SQL: targets of FROM / JOIN (also comma lists `FROM a, b`, `JOIN
/// ... ON`, `JOIN ... USING`), in order of appearance, duplicates kept.
///
/// CTE names (WITH / WITH RECURSIVE, several CTEs, nested WITH in subqueries) are not references; a
/// CTE name only shadows an unqualified single-part reference, inside the parentheses where its
/// WITH appears (for a non-recursive CTE, only after its own definition). Names are compared
/// case-insensitively, quoted or not, as Dremio resolves them. Subqueries `FROM (SELECT ...)` are
/// descended into; `FROM TABLE(fn(...))`, `UNNEST(...)`, `LATERAL`, `VALUES` are not table
/// references (but tables inside their arguments' subqueries are); `FROM` inside
/// EXTRACT/TRIM/SUBSTRING/OVERLAY/POSITION and `IS [NOT] DISTINCT FROM` is not a table; aliases
/// (`AS x`, bare `x`, `AS x(c1, c2)`) are skipped; Dremio's version clauses after a table (`AT
/// BRANCH b`, `AT SNAPSHOT '...'`, `AT TAG t`, `AT COMMIT ...`, `AT REF ...`, with an optional `AS
/// OF ...`) are skipped; a set operation (UNION/EXCEPT/INTERSECT/MINUS) continues parsing.
pub fn table_refs(sql: &str) -> Vec<Reference> {
    Scan::run(sql).tables
}

/// Calls of qualified (dotted, 2+ parts) functions, e.g. `Sales.fns.tax(x)`: UDFs a view depends
/// on. Unqualified calls (builtins like `COUNT(`) are not returned. A qualified call in a table
/// position (`FROM TABLE(s.fns.tf(1))`) is returned here, not by [`table_refs`].
pub fn function_refs(sql: &str) -> Vec<Reference> {
    Scan::run(sql).functions
}

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
fn requote(original: &str, new: &str) -> String {
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
fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|k| k.eq_ignore_ascii_case(word))
}

// -------------------------------------------------------------------------------------------------
// Lexer
// -------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
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
struct Token {
    kind: Kind,
    span: Range<usize>,
    /// The identifier as Dremio sees it (quotes removed, doubled quotes undone); empty for other
    /// kinds.
    value: String,
}

/// Splits SQL into tokens, dropping whitespace and comments. Unterminated quotes and comments run
/// to the end of the text, so every byte lands in at most one token and the loop always advances.
fn lex(sql: &str) -> Vec<Token> {
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
fn quoted(sql: &str, start: usize, q: u8) -> (usize, String) {
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
fn number_end(bytes: &[u8], start: usize) -> usize {
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

// -------------------------------------------------------------------------------------------------
// Scanner
// -------------------------------------------------------------------------------------------------

/// Words that start or continue the clauses around a table, so they are never a table name nor a
/// bare alias.
#[rustfmt::skip]
const CLAUSE_WORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FETCH", "WINDOW",
    "QUALIFY", "UNION", "EXCEPT", "INTERSECT", "MINUS", "JOIN", "INNER", "LEFT", "RIGHT", "FULL",
    "CROSS", "NATURAL", "OUTER", "ON", "USING", "AS", "AT", "WITH", "VALUES", "PIVOT", "UNPIVOT",
    "MATCH_RECOGNIZE", "TABLESAMPLE", "FOR", "LATERAL",
];

/// Words that end a FROM clause at their level: after them a comma no longer separates tables.
#[rustfmt::skip]
const ENDS_FROM: &[&str] = &[
    "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FETCH", "WINDOW", "QUALIFY", "UNION",
    "EXCEPT", "INTERSECT", "MINUS", "SELECT", "VALUES",
];

/// Functions whose argument syntax uses FROM for something other than a table.
const NO_FROM_CALLS: &[&str] = &["EXTRACT", "TRIM", "SUBSTRING", "OVERLAY", "POSITION"];

/// First words of a query inside parentheses; anything else after `FROM (` starts a parenthesised
/// join.
const QUERY_STARTS: &[&str] = &["SELECT", "WITH", "VALUES"];

/// What follows `AT` in Dremio's version clause; `AT TIMESTAMP '...'` is read as a typed literal
/// instead.
const VERSION_KINDS: &[&str] = &["BRANCH", "TAG", "COMMIT", "REF", "REFERENCE", "SNAPSHOT"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    /// A query, subquery or ordinary expression: FROM introduces tables.
    Query,
    /// The arguments of EXTRACT, TRIM...: FROM is part of the call's syntax.
    NoFrom,
}

/// What closing a parenthesis means for the level that opened it.
#[derive(Debug)]
enum OnClose {
    Nothing,
    /// The parentheses were a table factor (subquery, TABLE(...), UNNEST(...)): a version clause
    /// and an alias may follow.
    TableTail,
    /// The parentheses were a CTE body: the name becomes visible, and a comma may introduce the
    /// next CTE.
    Cte {
        name: String,
        recursive: bool,
    },
}

/// One parenthesis level. Scoping CTE names by level is what lets `(WITH x AS ... )` hide `x` only
/// inside.
#[derive(Debug)]
struct Frame {
    kind: FrameKind,
    on_close: OnClose,
    /// CTE names defined by a WITH at this level, visible here and in every level inside.
    ctes: Vec<String>,
    /// Inside a FROM clause at this level: a comma starts another table.
    in_from: bool,
    /// Opened in a table position: unless a query starts here, it is a parenthesised join `(a JOIN
    /// b ON ...)`.
    table_start: bool,
    /// No token of this level has been looked at yet.
    fresh: bool,
}

impl Frame {
    fn new(kind: FrameKind, table_start: bool, on_close: OnClose) -> Frame {
        Frame {
            kind,
            on_close,
            ctes: Vec::new(),
            in_from: false,
            table_start,
            fresh: true,
        }
    }
}

/// Parenthesis levels tracked; deeper ones are counted but share the deepest frame, so that a
/// hostile `((((...` costs no memory per level (no real view nests anywhere near this deep).
const MAX_DEPTH: usize = 512;

/// Tokens scanned: about 8 MiB of ordinary SQL, twice the largest a clone tree accepts; what lies
/// beyond is not scanned for references (and left as it is by renames).
const MAX_TOKENS: usize = 2_000_000;

struct Scan {
    tokens: Vec<Token>,
    /// Never empty: the statement level is never popped.
    frames: Vec<Frame>,
    /// Levels opened past [`MAX_DEPTH`] and not closed yet.
    untracked: usize,
    tables: Vec<Reference>,
    functions: Vec<Reference>,
}

impl Scan {
    fn run(sql: &str) -> Scan {
        let mut scan = Scan {
            tokens: lex(sql),
            frames: vec![Frame::new(FrameKind::Query, false, OnClose::Nothing)],
            untracked: 0,
            tables: Vec::new(),
            functions: Vec::new(),
        };
        let mut i = 0;
        while i < scan.tokens.len() {
            // Every step consumes at least one token, whatever it returns, so any input terminates.
            i = scan.step(i).max(i + 1);
        }
        scan
    }

    fn frame(&self) -> &Frame {
        self.frames
            .last()
            .expect("the statement frame is never popped")
    }

    fn frame_mut(&mut self) -> &mut Frame {
        self.frames
            .last_mut()
            .expect("the statement frame is never popped")
    }

    fn push(&mut self, kind: FrameKind, table_start: bool, on_close: OnClose) {
        if self.frames.len() >= MAX_DEPTH {
            self.untracked += 1;
            return;
        }
        self.frames.push(Frame::new(kind, table_start, on_close));
    }

    fn is_word(&self, i: usize, keyword: &str) -> bool {
        self.tokens
            .get(i)
            .is_some_and(|t| t.kind == Kind::Word && t.value.eq_ignore_ascii_case(keyword))
    }

    fn word_in(&self, i: usize, keywords: &[&str]) -> bool {
        self.tokens.get(i).is_some_and(|t| {
            t.kind == Kind::Word && keywords.iter().any(|k| t.value.eq_ignore_ascii_case(k))
        })
    }

    fn is_punct(&self, i: usize, c: char) -> bool {
        self.tokens.get(i).is_some_and(|t| t.kind == Kind::Punct(c))
    }

    fn is_name(&self, i: usize) -> bool {
        self.tokens
            .get(i)
            .is_some_and(|t| matches!(t.kind, Kind::Word | Kind::Quoted))
    }

    /// The dotted path starting at `i` (a name): the indexes of its parts and the index after it.
    fn path(&self, i: usize) -> (Vec<usize>, usize) {
        let mut parts = vec![i];
        let mut j = i + 1;
        while self.is_punct(j, '.') && self.is_name(j + 1) {
            parts.push(j + 1);
            j += 2;
        }
        (parts, j)
    }

    fn reference(&self, parts: &[usize]) -> Reference {
        Reference {
            parts: parts
                .iter()
                .map(|&k| self.tokens[k].value.clone())
                .collect(),
            spans: parts.iter().map(|&k| self.tokens[k].span.clone()).collect(),
        }
    }

    /// The index after the parenthesis matching the one at `i`, or the end when it is never closed.
    fn skip_parens(&self, i: usize) -> usize {
        let mut depth = 0usize;
        for (k, token) in self.tokens.iter().enumerate().skip(i) {
            match token.kind {
                Kind::Punct('(') => depth += 1,
                Kind::Punct(')') => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return k + 1;
                    }
                }
                _ => {}
            }
        }
        self.tokens.len()
    }

    /// Dremio compares names case-insensitively whether quoted or not, so a CTE shadows any
    /// spelling of it.
    fn is_cte(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.frames
            .iter()
            .any(|f| f.ctes.iter().any(|c| c.to_lowercase() == name))
    }

    /// Handles the token at `i`; returns where to continue.
    fn step(&mut self, i: usize) -> usize {
        if std::mem::take(&mut self.frame_mut().fresh)
            && self.frame().table_start
            && !self.word_in(i, QUERY_STARTS)
            && !self.is_punct(i, ')')
        {
            self.frame_mut().in_from = true;
            let next = self.table_factor(i);
            if next > i {
                return next;
            }
        }
        match self.tokens[i].kind {
            Kind::Punct('(') => {
                let no_from = i >= 1
                    && self.word_in(i - 1, NO_FROM_CALLS)
                    && !(i >= 2 && self.is_punct(i - 2, '.'));
                self.push(
                    if no_from {
                        FrameKind::NoFrom
                    } else {
                        FrameKind::Query
                    },
                    false,
                    OnClose::Nothing,
                );
                i + 1
            }
            Kind::Punct(')') => self.close(i + 1),
            Kind::Punct(',') if self.frame().in_from => self.table_factor(i + 1),
            Kind::Punct(';') => {
                // A new statement: nothing defined in the previous one is in scope.
                self.frames.truncate(1);
                self.untracked = 0;
                self.frames[0] = Frame::new(FrameKind::Query, false, OnClose::Nothing);
                i + 1
            }
            Kind::Word => self.word(i),
            Kind::Quoted => self.expression_path(i),
            _ => i + 1,
        }
    }

    fn word(&mut self, i: usize) -> usize {
        if self.is_word(i, "FROM") {
            if self.frame().kind == FrameKind::NoFrom
                || self.is_distinct_from(i)
                || self.is_window_from(i)
            {
                return i + 1;
            }
            self.frame_mut().in_from = true;
            return self.table_factor(i + 1);
        }
        if self.is_word(i, "JOIN")
            || (self.is_word(i, "APPLY") && i >= 1 && self.word_in(i - 1, &["CROSS", "OUTER"]))
        {
            self.frame_mut().in_from = true;
            return self.table_factor(i + 1);
        }
        if self.is_word(i, "WITH") {
            return self.with_clause(i).unwrap_or(i + 1);
        }
        if self.word_in(i, ENDS_FROM) {
            self.frame_mut().in_from = false;
            return i + 1;
        }
        self.expression_path(i)
    }

    /// `a IS [NOT] DISTINCT FROM b` compares values.
    fn is_distinct_from(&self, i: usize) -> bool {
        i >= 2 && self.is_word(i - 1, "DISTINCT") && self.word_in(i - 2, &["IS", "NOT"])
    }

    /// `NTH_VALUE(x, 2) FROM FIRST OVER (...)` picks an end of the window.
    fn is_window_from(&self, i: usize) -> bool {
        self.word_in(i + 1, &["FIRST", "LAST"])
            && self.word_in(i + 2, &["OVER", "IGNORE", "RESPECT"])
    }

    /// A name in an expression: a column, or a function when a call follows. Only qualified calls
    /// can be UDFs the view depends on; unqualified ones are builtins.
    fn expression_path(&mut self, i: usize) -> usize {
        if i >= 1 && self.is_punct(i - 1, '.') {
            // The field of something else, e.g. `(expr).field`: not the start of a path.
            return i + 1;
        }
        let (parts, next) = self.path(i);
        if parts.len() >= 2 && self.is_punct(next, '(') {
            let reference = self.reference(&parts);
            self.functions.push(reference);
        }
        next
    }

    /// One item of a FROM list or a JOIN target, starting at `i`. Returns where normal scanning
    /// resumes; for parenthesised items it pushes a level whose closing finishes the item.
    fn table_factor(&mut self, mut i: usize) -> usize {
        // LATERAL changes what the item may see, not what it reads.
        while self.is_word(i, "LATERAL") {
            i += 1;
        }
        let Some(kind) = self.tokens.get(i).map(|t| t.kind) else {
            return i;
        };
        match kind {
            Kind::Punct('(') => {
                self.push(FrameKind::Query, true, OnClose::TableTail);
                i + 1
            }
            Kind::Word if self.word_in(i, &["TABLE", "UNNEST"]) && self.is_punct(i + 1, '(') => {
                self.push(FrameKind::Query, false, OnClose::TableTail);
                i + 2
            }
            // Calcite's explicit table `TABLE t` reads t.
            Kind::Word if self.is_word(i, "TABLE") && self.is_name(i + 1) => self.table_path(i + 1),
            Kind::Word if self.word_in(i, CLAUSE_WORDS) => i,
            Kind::Word | Kind::Quoted => self.table_path(i),
            _ => i,
        }
    }

    fn table_path(&mut self, i: usize) -> usize {
        let (parts, next) = self.path(i);
        if self.is_punct(next, '(') {
            // A table function called without TABLE(...): its arguments are expressions.
            if parts.len() >= 2 {
                let reference = self.reference(&parts);
                self.functions.push(reference);
            }
            self.push(FrameKind::Query, false, OnClose::TableTail);
            return next + 1;
        }
        if !(parts.len() == 1 && self.is_cte(&self.tokens[i].value)) {
            let reference = self.reference(&parts);
            self.tables.push(reference);
        }
        self.table_tail(next)
    }

    fn table_tail(&self, i: usize) -> usize {
        self.skip_alias(self.skip_version(i))
    }

    /// Dremio's `AT { BRANCH | TAG | COMMIT | REF[ERENCE] } name [AS OF ts]` or `AT SNAPSHOT 'id'`:
    /// the name is a version, not a table, and would otherwise be read as an alias or worse.
    fn skip_version(&self, i: usize) -> usize {
        if !self.is_word(i, "AT") {
            return i;
        }
        let mut j = i + 1;
        if self.word_in(j, VERSION_KINDS) {
            j += 1;
        }
        j = self.skip_value(j);
        if self.is_word(j, "AS") && self.is_word(j + 1, "OF") {
            j = self.skip_value(j + 2);
        }
        j
    }

    /// One simple value: a name, a literal, a typed literal (`TIMESTAMP '...'`) or a call.
    fn skip_value(&self, j: usize) -> usize {
        let Some(kind) = self.tokens.get(j).map(|t| t.kind) else {
            return j;
        };
        match kind {
            Kind::Word if self.word_in(j, CLAUSE_WORDS) => j,
            Kind::Word if self.tokens.get(j + 1).is_some_and(|t| t.kind == Kind::Str) => j + 2,
            Kind::Word if self.is_punct(j + 1, '(') => self.skip_parens(j + 1),
            Kind::Word | Kind::Quoted | Kind::Str | Kind::Num => j + 1,
            _ => j,
        }
    }

    /// Skips `AS x` or a bare `x`. A column list `x(c1, c2)` is left to normal scanning, where it
    /// is harmless, so that nothing that could hold a subquery is ever skipped blindly.
    fn skip_alias(&self, i: usize) -> usize {
        if self.is_word(i, "AS") {
            return if self.is_name(i + 1) { i + 2 } else { i + 1 };
        }
        match self.tokens.get(i) {
            Some(t) if t.kind == Kind::Quoted => i + 1,
            Some(t)
                if t.kind == Kind::Word
                    && !is_reserved(&t.value)
                    && !self.word_in(i, CLAUSE_WORDS) =>
            {
                i + 1
            }
            _ => i,
        }
    }

    fn close(&mut self, next: usize) -> usize {
        if self.untracked > 0 {
            self.untracked -= 1;
            return next;
        }
        if self.frames.len() <= 1 {
            // An unmatched `)`: nothing to close.
            return next;
        }
        let Some(frame) = self.frames.pop() else {
            return next;
        };
        match frame.on_close {
            OnClose::Nothing => next,
            OnClose::TableTail => self.table_tail(next),
            OnClose::Cte { name, recursive } => {
                if !recursive {
                    self.frame_mut().ctes.push(name);
                }
                if self.is_punct(next, ',') {
                    if let Some(after) = self.cte(next + 1, recursive) {
                        return after;
                    }
                }
                next
            }
        }
    }

    /// `WITH [RECURSIVE] name [(cols)] AS (` opens the first CTE body; `None` when this WITH is
    /// something else (`TIMESTAMP WITH TIME ZONE`, `WITH ORDINALITY`).
    fn with_clause(&mut self, i: usize) -> Option<usize> {
        if self.is_word(i + 1, "RECURSIVE") {
            if let Some(after) = self.cte(i + 2, true) {
                return Some(after);
            }
        }
        self.cte(i + 1, false)
    }

    /// Opens the body of the CTE whose header starts at `j`, returning the index after its `(`.
    fn cte(&mut self, j: usize, recursive: bool) -> Option<usize> {
        if !self.is_name(j) {
            return None;
        }
        let mut k = j + 1;
        if self.is_punct(k, '(') {
            // Only names and commas may stand in a column list; stopping at anything else keeps a
            // WITH that is not a CTE from costing a scan to the end of the text.
            k += 1;
            while self.is_name(k) || self.is_punct(k, ',') {
                k += 1;
            }
            if !self.is_punct(k, ')') {
                return None;
            }
            k += 1;
        }
        if !self.is_word(k, "AS") {
            return None;
        }
        k += 1;
        if self.is_word(k, "NOT") && self.is_word(k + 1, "MATERIALIZED") {
            k += 2;
        } else if self.is_word(k, "MATERIALIZED") {
            k += 1;
        }
        if !self.is_punct(k, '(') {
            return None;
        }
        let name = self.tokens[j].value.clone();
        let frame = self.frame_mut();
        frame.in_from = false;
        // A recursive CTE refers to itself in its body; a plain one sees the real table of the same
        // name there.
        if recursive {
            frame.ctes.push(name.clone());
        }
        self.push(FrameKind::Query, false, OnClose::Cte { name, recursive });
        Some(k + 1)
    }
}

/// Words that must be quoted to be used as a name: SQL:2011 reserved words as Calcite reserves
/// them, plus words Dremio reserves on top (many are function names). Erring on the broad side only
/// costs needless quotes.
#[rustfmt::skip]
const RESERVED: &[&str] = &[
    "ABS", "ACCESS", "ACOS", "AES_DECRYPT", "AGGREGATE", "ALL", "ALLOCATE", "ALLOW", "ALTER",
    "ANALYZE", "AND", "ANY", "APPROX_COUNT_DISTINCT", "APPROX_PERCENTILE", "ARE", "ARRAY",
    "ARRAY_AGG", "ARRAY_AVG", "ARRAY_CAT", "ARRAY_COMPACT", "ARRAY_CONTAINS",
    "ARRAY_GENERATE_RANGE", "ARRAY_MAX", "ARRAY_MAX_CARDINALITY", "ARRAY_MIN", "ARRAY_POSITION",
    "ARRAY_REMOVE", "ARRAY_REMOVE_AT", "ARRAY_SIZE", "ARRAY_SUM", "ARRAY_TO_STRING", "ARROW", "AS",
    "ASCII", "ASENSITIVE", "ASIN", "ASSIGN", "ASYMMETRIC", "AT", "ATAN", "ATAN2", "ATOMIC",
    "AUTHORIZATION", "AVG", "BASE64", "BATCH", "BEGIN", "BEGIN_FRAME", "BEGIN_PARTITION", "BETWEEN",
    "BIGINT", "BIN", "BINARY", "BINARY_STRING", "BIN_PACK", "BIT", "BITWISE_AND", "BITWISE_NOT",
    "BITWISE_OR", "BITWISE_XOR", "BIT_AND", "BIT_LENGTH", "BIT_OR", "BLOB", "BOOLEAN", "BOOL_AND",
    "BOOL_OR", "BOTH", "BRANCH", "BROUND", "BTRIM", "BY", "CACHE", "CALL", "CALLED", "CARDINALITY",
    "CASCADED", "CASE", "CAST", "CATALOG", "CBRT", "CEIL", "CEILING", "CHANGE", "CHAR", "CHARACTER",
    "CHARACTER_LENGTH", "CHAR_LENGTH", "CHECK", "CHR", "CLASSIFIER", "CLOB", "CLOSE", "CLOUD",
    "COALESCE", "COLLATE", "COLLECT", "COLUMN", "COLUMNS", "COL_LIKE", "COMMIT", "COMPACT",
    "COMPUTE", "CONCAT", "CONCAT_WS", "CONDITION", "CONNECT", "CONSTRAINT", "CONTAINS", "CONVERT",
    "CONVERT_FROM", "CONVERT_TIMEZONE", "CONVERT_TO", "COPY", "CORR", "CORRESPONDING", "COS",
    "COSH", "COT", "COUNT", "COVAR_POP", "COVAR_SAMP", "CREATE", "CROSS", "CUBE", "CUME_DIST",
    "CURRENT", "CURRENT_CATALOG", "CURRENT_DATE", "CURRENT_DEFAULT_TRANSFORM_GROUP", "CURRENT_PATH",
    "CURRENT_ROLE", "CURRENT_ROW", "CURRENT_SCHEMA", "CURRENT_TIME", "CURRENT_TIMESTAMP",
    "CURRENT_TRANSFORM_GROUP_FOR_TYPE", "CURRENT_USER", "CURSOR", "CYCLE", "DATABASES", "DATE",
    "DAY", "DEALLOCATE", "DEC", "DECIMAL", "DECLARE", "DEFAULT", "DEFINE", "DELETE", "DENSE_RANK",
    "DEREF", "DESCRIBE", "DETERMINISTIC", "DISALLOW", "DISCONNECT", "DISTINCT", "DOUBLE", "DROP",
    "DYNAMIC", "EACH", "ELEMENT", "ELSE", "EMPTY", "END", "END-EXEC", "END_FRAME", "END_PARTITION",
    "EQUALS", "ESCAPE", "EVERY", "EXCEPT", "EXEC", "EXECUTE", "EXISTS", "EXP", "EXPLAIN", "EXTEND",
    "EXTERNAL", "EXTRACT", "FALSE", "FETCH", "FILES", "FILTER", "FIRST_VALUE", "FLATTEN", "FLOAT",
    "FLOOR", "FOR", "FOREIGN", "FRAME_ROW", "FREE", "FROM", "FULL", "FUNCTION", "FUSION", "GET",
    "GLOBAL", "GRANT", "GROUP", "GROUPING", "GROUPS", "HAVING", "HOLD", "HOUR", "IDENTITY", "IF",
    "IMPORT", "IN", "INDICATOR", "INITIAL", "INNER", "INOUT", "INSENSITIVE", "INSERT", "INT",
    "INTEGER", "INTERSECT", "INTERSECTION", "INTERVAL", "INTO", "IS", "JOIN", "JSON_ARRAY",
    "JSON_ARRAYAGG", "JSON_EXISTS", "JSON_OBJECT", "JSON_OBJECTAGG", "JSON_QUERY", "JSON_VALUE",
    "LAG", "LANGUAGE", "LARGE", "LAST_VALUE", "LATERAL", "LEAD", "LEADING", "LEFT", "LIKE",
    "LIKE_REGEX", "LIMIT", "LN", "LOAD", "LOCAL", "LOCALTIME", "LOCALTIMESTAMP", "LOWER", "MATCH",
    "MATCHES", "MATCH_NUMBER", "MATCH_RECOGNIZE", "MAX", "MEASURES", "MEMBER", "MERGE", "METADATA",
    "METHOD", "MIN", "MINUS", "MINUTE", "MOD", "MODIFIES", "MODULE", "MONTH", "MULTISET",
    "NATIONAL", "NATURAL", "NCHAR", "NCLOB", "NEW", "NEXT", "NO", "NONE", "NORMALIZE", "NOT",
    "NTH_VALUE", "NTILE", "NULL", "NULLIF", "NUMERIC", "OCCURRENCES_REGEX", "OCTET_LENGTH", "OF",
    "OFFSET", "OLD", "OMIT", "ON", "ONE", "ONLY", "OPEN", "OR", "ORDER", "OUT", "OUTER", "OVER",
    "OVERLAPS", "OVERLAY", "PARAMETER", "PARTITION", "PATTERN", "PER", "PERCENT", "PERCENTILE_CONT",
    "PERCENTILE_DISC", "PERCENT_RANK", "PERIOD", "PERMUTE", "PIVOT", "PORTION", "POSITION",
    "POSITION_REGEX", "POWER", "PRECEDES", "PRECISION", "PREPARE", "PREV", "PRIMARY", "PROCEDURE",
    "QUALIFY", "RANGE", "RANK", "READS", "REAL", "RECURSIVE", "REF", "REFERENCE", "REFERENCES",
    "REFERENCING", "REFRESH", "REGR_AVGX", "REGR_AVGY", "REGR_COUNT", "REGR_INTERCEPT", "REGR_R2",
    "REGR_SLOPE", "REGR_SXX", "REGR_SXY", "REGR_SYY", "RELEASE", "RESET", "RESULT", "RETURN",
    "RETURNS", "REVOKE", "RIGHT", "ROLLBACK", "ROLLUP", "ROW", "ROWS", "ROW_NUMBER", "RUNNING",
    "SAVEPOINT", "SCHEMAS", "SCOPE", "SCROLL", "SEARCH", "SECOND", "SEEK", "SELECT", "SENSITIVE",
    "SESSION_USER", "SET", "SHOW", "SIMILAR", "SKIP", "SMALLINT", "SNAPSHOT", "SOME", "SPECIFIC",
    "SPECIFICTYPE", "SQL", "SQLEXCEPTION", "SQLSTATE", "SQLWARNING", "SQRT", "START", "STATIC",
    "STDDEV_POP", "STDDEV_SAMP", "STREAM", "SUBMULTISET", "SUBSET", "SUBSTRING", "SUBSTRING_REGEX",
    "SUCCEEDS", "SUM", "SYMMETRIC", "SYSTEM", "SYSTEM_TIME", "SYSTEM_USER", "TABLE", "TABLES",
    "TABLESAMPLE", "TAG", "THEN", "TIME", "TIMESTAMP", "TIMEZONE_HOUR", "TIMEZONE_MINUTE",
    "TINYINT", "TO", "TRAILING", "TRANSLATE", "TRANSLATE_REGEX", "TRANSLATION", "TREAT", "TRIGGER",
    "TRIM", "TRIM_ARRAY", "TRUE", "TRUNCATE", "UESCAPE", "UNION", "UNIQUE", "UNKNOWN", "UNNEST",
    "UNPIVOT", "UPDATE", "UPPER", "UPSERT", "USE", "USER", "USING", "VALUE", "VALUES", "VALUE_OF",
    "VARBINARY", "VARCHAR", "VARYING", "VAR_POP", "VAR_SAMP", "VERSIONING", "WHEN", "WHENEVER",
    "WHERE", "WIDTH_BUCKET", "WINDOW", "WITH", "WITHIN", "WITHOUT", "YEAR",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Each reference as its parts joined by `.` (fine for tests whose names hold no dots).
    fn dotted(refs: &[Reference]) -> Vec<String> {
        refs.iter().map(|r| r.parts.join(".")).collect()
    }

    fn tables(sql: &str) -> Vec<String> {
        dotted(&table_refs(sql))
    }

    fn functions(sql: &str) -> Vec<String> {
        dotted(&function_refs(sql))
    }

    fn lake_to(new: &'static str) -> impl Fn(&str) -> Option<String> {
        move |root: &str| root.eq_ignore_ascii_case("lake").then(|| new.to_string())
    }

    #[test]
    fn simple_from() {
        let sql = "SELECT a, b FROM orders WHERE a > 1";
        let refs = table_refs(sql);
        assert_eq!(dotted(&refs), ["orders"]);
        assert_eq!(&sql[refs[0].spans[0].clone()], "orders");
        assert_eq!(tables("select * from Orders"), ["Orders"]);
    }

    #[test]
    fn dotted_and_quoted_parts() {
        let sql = r#"SELECT * FROM Sales . folder."my view""#;
        let refs = table_refs(sql);
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].parts, ["Sales", "folder", "my view"]);
        let spelled: Vec<&str> = refs[0].spans.iter().map(|s| &sql[s.clone()]).collect();
        assert_eq!(spelled, ["Sales", "folder", "\"my view\""]);

        let refs = table_refs(r#"SELECT * FROM "we""ird"."a.b".c"#);
        assert_eq!(refs[0].parts, ["we\"ird", "a.b", "c"]);
    }

    #[test]
    fn backquoted_parts() {
        let refs = table_refs("SELECT * FROM `Sales`.`x``y` AS t");
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].parts, ["Sales", "x`y"]);
    }

    #[test]
    fn join_chains() {
        let sql = "SELECT * FROM s.a JOIN s.b ON a.id = b.id LEFT OUTER JOIN s.c USING (id) \
                   CROSS JOIN s.d NATURAL JOIN s.e INNER JOIN s.f x ON x.k IN (1, 2), s.g";
        assert_eq!(
            tables(sql),
            ["s.a", "s.b", "s.c", "s.d", "s.e", "s.f", "s.g"]
        );
    }

    #[test]
    fn comma_lists_with_aliases() {
        let sql = r#"SELECT x.a, y.b FROM s.a AS x, s.b y, "s"."c" AS z(c1, c2), d, e AS "E"
                     WHERE x.a = y.b"#;
        assert_eq!(tables(sql), ["s.a", "s.b", "s.c", "d", "e"]);
        // Commas after WHERE / GROUP BY / ORDER BY no longer separate tables.
        assert_eq!(tables("SELECT a FROM t GROUP BY a, b ORDER BY a, c"), ["t"]);
    }

    #[test]
    fn subqueries() {
        assert_eq!(
            tables("SELECT * FROM (SELECT * FROM s.inner1) AS q JOIN s.outer1 o ON q.id = o.id"),
            ["s.inner1", "s.outer1"]
        );
        let sql = "SELECT (SELECT max(v) FROM s.scalar) AS m FROM s.main \
                   WHERE id IN (SELECT id FROM s.ids) \
                   AND EXISTS (SELECT 1 FROM s.ex WHERE ex.id = main.id)";
        assert_eq!(tables(sql), ["s.scalar", "s.main", "s.ids", "s.ex"]);
        // A parenthesised join, then a comma after its alias.
        assert_eq!(
            tables("SELECT * FROM (a JOIN (b JOIN c ON b.x = c.x) ON a.x = b.x) j, d"),
            ["a", "b", "c", "d"]
        );
        assert_eq!(
            tables("SELECT * FROM ((SELECT * FROM a) UNION (SELECT * FROM b)) u, c"),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn ctes_are_not_references() {
        let sql = "WITH a AS (SELECT * FROM s.x), b (k) AS (SELECT k FROM a JOIN s.y ON a.k = y.k) \
                   SELECT * FROM b, s.z, a";
        assert_eq!(tables(sql), ["s.x", "s.y", "s.z"]);
        // Unquoted names compare case-insensitively.
        assert_eq!(
            tables("with Foo as (select 1 from s.t) select * from FOO"),
            ["s.t"]
        );
    }

    #[test]
    fn recursive_cte() {
        let sql = "WITH RECURSIVE r (n) AS \
                   (SELECT 1 FROM s.seed UNION ALL SELECT n + 1 FROM r WHERE n < 10) \
                   SELECT * FROM r";
        assert_eq!(tables(sql), ["s.seed"]);
    }

    #[test]
    fn cte_named_like_a_real_table() {
        let sql = "WITH orders AS (SELECT * FROM sales.orders WHERE y = 2024) \
                   SELECT * FROM orders o JOIN sales.orders p ON o.id = p.id";
        assert_eq!(tables(sql), ["sales.orders", "sales.orders"]);
        // A non-recursive CTE's body sees the real table of its own name.
        assert_eq!(tables("WITH t AS (SELECT * FROM t) SELECT * FROM t"), ["t"]);
    }

    #[test]
    fn nested_with_is_scoped_to_its_parentheses() {
        let sql =
            "SELECT * FROM (WITH x AS (SELECT * FROM s.a) SELECT * FROM x) q JOIN x ON q.id = x.id";
        assert_eq!(tables(sql), ["s.a", "x"]);
        // A new statement starts with no CTEs.
        assert_eq!(
            tables("WITH t AS (SELECT 1) SELECT * FROM t; SELECT * FROM t"),
            ["t"]
        );
    }

    #[test]
    fn with_that_is_not_a_cte() {
        let sql = "SELECT CAST(ts AS TIMESTAMP WITH LOCAL TIME ZONE) \
                   FROM s.t, UNNEST(t.arr) WITH ORDINALITY AS u(v, i)";
        assert_eq!(tables(sql), ["s.t"]);
    }

    #[test]
    fn set_operations_continue() {
        let sql = "SELECT a FROM s.t1 UNION ALL SELECT a FROM s.t2 EXCEPT SELECT a FROM s.t3 \
                   INTERSECT SELECT a FROM s.t4 MINUS SELECT a FROM s.t5";
        assert_eq!(tables(sql), ["s.t1", "s.t2", "s.t3", "s.t4", "s.t5"]);
    }

    #[test]
    fn from_that_is_not_a_table() {
        let sql = "SELECT EXTRACT(YEAR FROM d), TRIM(BOTH ' ' FROM s), SUBSTRING(s FROM 2 FOR 3), \
                   OVERLAY(s PLACING 'x' FROM 2), POSITION('a' IN s FROM 1), \
                   NTH_VALUE(v, 2) FROM FIRST OVER (ORDER BY d) \
                   FROM real WHERE a IS DISTINCT FROM b AND c IS NOT DISTINCT FROM d";
        assert_eq!(tables(sql), ["real"]);
        // A subquery inside those calls is still read.
        assert_eq!(
            tables("SELECT EXTRACT(YEAR FROM (SELECT max(d) FROM s.dates)) FROM s.t"),
            ["s.dates", "s.t"]
        );
    }

    #[test]
    fn comments_and_literals_are_ignored() {
        let sql = "SELECT 'FROM x', 'it''s FROM q', \"FROM y\" -- FROM z\n\
                   /* FROM w JOIN v */ FROM real // FROM u\n WHERE s = 'JOIN t'";
        assert_eq!(tables(sql), ["real"]);
    }

    #[test]
    fn table_functions_unnest_lateral_values() {
        let sql = "SELECT * FROM TABLE(s.fns.tf(1)) AS t, UNNEST(arr) AS u(x), \
                   LATERAL (SELECT * FROM s.inner1) l CROSS JOIN UNNEST(t.arr) \
                   JOIN TABLE(table_files('s.files')) f ON TRUE, (VALUES (1, 2)) AS v(a, b)";
        assert_eq!(tables(sql), ["s.inner1"]);
        assert_eq!(functions(sql), ["s.fns.tf"]);
        // Tables inside the arguments' subqueries are references.
        assert_eq!(
            tables("SELECT * FROM TABLE(f((SELECT x FROM s.arg))) AT BRANCH b, s.next"),
            ["s.arg", "s.next"]
        );
    }

    #[test]
    fn version_clauses_are_skipped() {
        let sql = "SELECT * FROM s.t AT BRANCH main AS x JOIN s.u AT SNAPSHOT '123' ON x.a = u.a, \
                   s.v AT TAG \"v1\", s.w AT COMMIT abc AS OF '2024-01-01' w2, s.q at ref dev, \
                   s.r AT TIMESTAMP '2024-01-01 00:00:00' WHERE 1 = 1";
        assert_eq!(tables(sql), ["s.t", "s.u", "s.v", "s.w", "s.q", "s.r"]);
    }

    #[test]
    fn qualified_function_calls() {
        let sql = r#"SELECT Sales.fns.tax(x), COUNT(x), a.b, "Sales"."fns"."f 2" (y), t.* FROM t"#;
        assert_eq!(functions(sql), ["Sales.fns.tax", "Sales.fns.f 2"]);
        assert!(function_refs("SELECT COUNT(*), lower(a.b), a.b FROM t").is_empty());
        let refs = function_refs(sql);
        assert_eq!(&sql[refs[1].spans[2].clone()], "\"f 2\"");
    }

    #[test]
    fn rename_keeps_everything_else() {
        let sql = "SELECT lake.col, 'lake.x' AS s /* lake.c */\nFROM lake.db.t -- lake\n\
                   JOIN \"lake\".db.\"u\" ON t.id = u.id \
                   WHERE lake.fns.f(x) > 0 AND Lake.db.t.c = 1";
        let out = rename_roots(sql, &lake_to("ocean"));
        assert_eq!(
            out,
            "SELECT lake.col, 'lake.x' AS s /* lake.c */\nFROM ocean.db.t -- lake\n\
             JOIN \"ocean\".db.\"u\" ON t.id = u.id \
             WHERE ocean.fns.f(x) > 0 AND Lake.db.t.c = 1"
        );
    }

    #[test]
    fn rename_quoting() {
        let sql = "SELECT * FROM lake.t";
        assert_eq!(
            rename_roots(sql, &lake_to("sea_2$")),
            "SELECT * FROM sea_2$.t"
        );
        assert_eq!(
            rename_roots(sql, &lake_to("select")),
            "SELECT * FROM \"select\".t"
        );
        assert_eq!(
            rename_roots(sql, &lake_to("my lake")),
            "SELECT * FROM \"my lake\".t"
        );
        assert_eq!(
            rename_roots(sql, &lake_to("2lake")),
            "SELECT * FROM \"2lake\".t"
        );
        assert_eq!(
            rename_roots(sql, &lake_to("mer\"é")),
            "SELECT * FROM \"mer\"\"é\".t"
        );
        assert_eq!(
            rename_roots(r#"SELECT * FROM "lake".t"#, &lake_to("sea")),
            r#"SELECT * FROM "sea".t"#
        );
        assert_eq!(
            rename_roots(r#"SELECT * FROM "lake".t"#, &lake_to("a\"b")),
            r#"SELECT * FROM "a""b".t"#
        );
        assert_eq!(
            rename_roots("SELECT * FROM `lake`.t", &lake_to("a`b")),
            "SELECT * FROM `a``b`.t"
        );
    }

    #[test]
    fn rename_leaves_unmapped_text_identical() {
        let sql =
            "WITH lake AS (SELECT * FROM other.t) SELECT lake.x FROM lake  ,  \"LAKE2\".t /* x */";
        assert_eq!(rename_roots(sql, &|_: &str| None), sql);
        // A CTE named like a source is not a reference, so it is not renamed.
        assert_eq!(rename_roots(sql, &lake_to("ocean")), sql);
        // Mapping a name to itself changes nothing, not even quoting.
        assert_eq!(rename_roots(sql, &|r: &str| Some(r.to_string())), sql);
    }

    #[test]
    fn non_ascii_identifiers() {
        let sql = "SELECT * FROM données.\"ventes été\" v JOIN 東京.表 t ON v.id = t.id";
        let refs = table_refs(sql);
        assert_eq!(dotted(&refs), ["données.ventes été", "東京.表"]);
        assert_eq!(&sql[refs[1].spans[1].clone()], "表");
        let renamed = rename_roots(sql, &|r: &str| (r == "東京").then(|| "大阪".to_string()));
        assert_eq!(
            renamed,
            "SELECT * FROM données.\"ventes été\" v JOIN \"大阪\".表 t ON v.id = t.id"
        );
    }

    #[test]
    fn unbalanced_input() {
        assert_eq!(tables("SELECT * FROM a WHERE (((x"), ["a"]);
        assert_eq!(tables("))) SELECT * FROM b)"), ["b"]);
        assert_eq!(tables("SELECT * FROM \"never closed"), ["never closed"]);
        assert!(tables("SELECT 'open FROM x").is_empty());
        assert!(tables("SELECT /* open FROM x").is_empty());
        assert!(tables("").is_empty());
        assert!(tables("FROM").is_empty());
    }

    /// Checks the invariants every answer must hold, whatever the input.
    fn check_invariants(sql: &str) {
        for r in table_refs(sql).iter().chain(&function_refs(sql)) {
            assert_eq!(r.parts.len(), r.spans.len(), "{sql:?}");
            assert!(!r.parts.is_empty(), "{sql:?}");
            for span in &r.spans {
                assert!(
                    sql.get(span.clone()).is_some_and(|s| !s.is_empty()),
                    "{sql:?} {span:?}"
                );
            }
        }
        assert_eq!(rename_roots(sql, &|_: &str| None), sql);
        let renamed = rename_roots(sql, &|r: &str| Some(format!("{r}_2")));
        assert!(renamed.len() >= sql.len(), "{sql:?}");
    }

    #[test]
    fn truncations_never_panic() {
        let sql = "WITH RECURSIVE \"r é\" (n) AS \
                   (SELECT 1 FROM s.\"se\"\"ed\" UNION ALL SELECT n+1 FROM \"r é\"), \
                   c AS (SELECT * FROM `lake`.`t``x` AT BRANCH main AS OF '2024' \
                   WHERE a IS NOT DISTINCT FROM b) \
                   SELECT Sales.fns.tax(x), EXTRACT(YEAR FROM d), TRIM(BOTH ' ' FROM s), \
                   'FROM q', -- FROM z\n\
                   /* JOIN w */ 1.5e3 FROM c, TABLE(s.f((SELECT 1 FROM 東京.表))) t, \
                   LATERAL (SELECT * FROM y) l LEFT JOIN (a JOIN b USING (id)) j ON j.id = c.id \
                   WHERE x IN (SELECT id FROM s.ids) \
                   UNION SELECT * FROM s.t2 AT SNAPSHOT '1'; SELECT 1";
        let full = table_refs(sql);
        assert_eq!(
            dotted(&full),
            [
                "s.se\"ed",
                "lake.t`x",
                "東京.表",
                "y",
                "a",
                "b",
                "s.ids",
                "s.t2"
            ]
        );
        assert_eq!(functions(sql), ["Sales.fns.tax", "s.f"]);
        for (cut, _) in sql.char_indices().chain([(sql.len(), ' ')]) {
            check_invariants(&sql[..cut]);
            check_invariants(&sql[cut..]);
        }
    }

    #[test]
    fn nesting_past_the_tracked_depth_costs_no_frames_and_keeps_scanning() {
        let deep = format!(
            "SELECT * FROM {}SELECT 1{} x JOIN lake.orders o ON 1=1",
            "(".repeat(MAX_DEPTH * 4),
            ")".repeat(MAX_DEPTH * 4)
        );
        let scan = Scan::run(&deep);
        assert!(scan.frames.len() <= MAX_DEPTH);
        assert_eq!(tables(&deep), vec!["lake.orders"]);
    }

    #[test]
    fn reserved_list_is_uppercase() {
        // Matching relies on ASCII case folding of uppercase entries.
        assert!(
            RESERVED
                .iter()
                .all(|k| k.chars().all(|c| !c.is_ascii_lowercase()))
        );
        assert!(is_reserved("select") && is_reserved("Count") && !is_reserved("sales"));
    }
}
