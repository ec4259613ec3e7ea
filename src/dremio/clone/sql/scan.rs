//! The scanner: which tokens are table positions (after FROM, JOIN, a comma in a FROM list) and
//! which are qualified calls, with the parenthesis levels, CTE scopes and clauses around them.

use std::ops::Range;

use super::lex::{Kind, Token, lex};
use super::words::is_reserved;

/// One reference to a table/view (or a UDF) in a SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The dotted path as written, unquoted (e.g. ["Sales", "my view"]).
    pub parts: Vec<String>,
    /// Byte range in the SQL of each part's token, quotes included (same length as `parts`).
    pub spans: Vec<Range<usize>>,
}

/// Words that start or continue the clauses around a table, so they are never a table name nor a
/// bare alias.
#[rustfmt::skip]
pub(super) const CLAUSE_WORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FETCH", "WINDOW",
    "QUALIFY", "UNION", "EXCEPT", "INTERSECT", "MINUS", "JOIN", "INNER", "LEFT", "RIGHT", "FULL",
    "CROSS", "NATURAL", "OUTER", "ON", "USING", "AS", "AT", "WITH", "VALUES", "PIVOT", "UNPIVOT",
    "MATCH_RECOGNIZE", "TABLESAMPLE", "FOR", "LATERAL",
];

/// Words that end a FROM clause at their level: after them a comma no longer separates tables.
#[rustfmt::skip]
pub(super) const ENDS_FROM: &[&str] = &[
    "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FETCH", "WINDOW", "QUALIFY", "UNION",
    "EXCEPT", "INTERSECT", "MINUS", "SELECT", "VALUES",
];

/// Functions whose argument syntax uses FROM for something other than a table.
pub(super) const NO_FROM_CALLS: &[&str] = &["EXTRACT", "TRIM", "SUBSTRING", "OVERLAY", "POSITION"];

/// First words of a query inside parentheses; anything else after `FROM (` starts a parenthesised
/// join.
pub(super) const QUERY_STARTS: &[&str] = &["SELECT", "WITH", "VALUES"];

/// What follows `AT` in Dremio's version clause; `AT TIMESTAMP '...'` is read as a typed literal
/// instead.
pub(super) const VERSION_KINDS: &[&str] =
    &["BRANCH", "TAG", "COMMIT", "REF", "REFERENCE", "SNAPSHOT"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FrameKind {
    /// A query, subquery or ordinary expression: FROM introduces tables.
    Query,
    /// The arguments of EXTRACT, TRIM...: FROM is part of the call's syntax.
    NoFrom,
}

/// What closing a parenthesis means for the level that opened it.
#[derive(Debug)]
pub(super) enum OnClose {
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
pub(super) struct Frame {
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
pub(super) const MAX_DEPTH: usize = 512;

pub(super) struct Scan {
    pub(super) tokens: Vec<Token>,
    /// Never empty: the statement level is never popped.
    pub(super) frames: Vec<Frame>,
    /// Levels opened past [`MAX_DEPTH`] and not closed yet.
    pub(super) untracked: usize,
    pub(super) tables: Vec<Reference>,
    pub(super) functions: Vec<Reference>,
}

impl Scan {
    pub(super) fn run(sql: &str) -> Scan {
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
