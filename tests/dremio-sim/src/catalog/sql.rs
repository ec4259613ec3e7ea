//! View SQL: which tables a view reads (to refuse a view over a missing table, as Dremio does).

use super::*;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokenize(sql: &str) -> Vec<Tok> {
    let c: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '-' && c.get(i + 1) == Some(&'-') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && c.get(i + 1) == Some(&'*') {
            i += 2;
            while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if ch == '\'' || ch == '"' || ch == '`' {
            let mut t = String::new();
            i += 1;
            while i < c.len() {
                if c[i] == ch {
                    if c.get(i + 1) == Some(&ch) {
                        t.push(ch);
                        i += 2;
                        continue;
                    }
                    break;
                }
                t.push(c[i]);
                i += 1;
            }
            i += 1;
            if ch != '\'' {
                out.push(Tok::Quoted(t));
            }
        } else if ch.is_alphanumeric() || ch == '_' || ch == '$' || ch == '@' {
            let st = i;
            while i < c.len() && (c[i].is_alphanumeric() || matches!(c[i], '_' | '$' | '@')) {
                i += 1;
            }
            out.push(Tok::Word(c[st..i].iter().collect()));
        } else {
            out.push(Tok::Punct(ch));
            i += 1;
        }
    }
    out
}

fn word_is(t: Option<&Tok>, w: &str) -> bool {
    matches!(t, Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
}

const CLAUSE_WORDS: &[&str] = &[
    "WHERE",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "OUTER",
    "FULL",
    "CROSS",
    "ON",
    "GROUP",
    "ORDER",
    "LIMIT",
    "UNION",
    "HAVING",
    "WINDOW",
    "EXCEPT",
    "INTERSECT",
    "OFFSET",
    "FETCH",
    "USING",
    "NATURAL",
    "QUALIFY",
    "MINUS",
    "AT",
    "TABLESAMPLE",
    "LATERAL",
    "UNNEST",
    "TABLE",
    "SELECT",
];

/// Functions whose arguments use `FROM` (not a table reference).
const FROM_FUNCTIONS: &[&str] = &[
    "EXTRACT",
    "TRIM",
    "SUBSTRING",
    "SUBSTR",
    "OVERLAY",
    "POSITION",
];

/// The tables a view's SQL reads (FROM / JOIN targets, dotted or quoted), CTE names excepted.
pub fn table_refs(sql: &str) -> Vec<Vec<String>> {
    let t = tokenize(sql);
    let ident = |x: Option<&Tok>| match x {
        Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => Some(w.clone()),
        _ => None,
    };
    // CTE names: `WITH x AS (` / `, x AS (`
    let mut ctes = vec![];
    for i in 1..t.len() {
        if (word_is(t.get(i - 1), "WITH") || t[i - 1] == Tok::Punct(','))
            && word_is(t.get(i + 1), "AS")
            && t.get(i + 2) == Some(&Tok::Punct('('))
            && let Some(n) = ident(t.get(i))
        {
            ctes.push(n.to_lowercase());
        }
    }
    // Paren stack: true when the paren is a FROM-taking function's argument list.
    let mut stack: Vec<bool> = vec![];
    let mut refs = vec![];
    for i in 0..t.len() {
        match &t[i] {
            Tok::Punct('(') => {
                let f = matches!(i.checked_sub(1).and_then(|j| t.get(j)),
                    Some(Tok::Word(w)) if FROM_FUNCTIONS.iter().any(|f| w.eq_ignore_ascii_case(f)));
                stack.push(f);
            }
            Tok::Punct(')') => {
                stack.pop();
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("FROM") || w.eq_ignore_ascii_case("JOIN") => {
                if w.eq_ignore_ascii_case("FROM")
                    && (stack.last() == Some(&true)
                        || i.checked_sub(1)
                            .is_some_and(|j| word_is(t.get(j), "DISTINCT")))
                {
                    continue;
                }
                let from = w.eq_ignore_ascii_case("FROM");
                let mut j = i + 1;
                loop {
                    if let Some(Tok::Word(w)) = t.get(j)
                        && CLAUSE_WORDS.iter().any(|c| w.eq_ignore_ascii_case(c))
                    {
                        break;
                    }
                    let Some(first) = ident(t.get(j)) else { break };
                    let mut parts = vec![first];
                    j += 1;
                    while t.get(j) == Some(&Tok::Punct('.')) {
                        match ident(t.get(j + 1)) {
                            Some(p) => {
                                parts.push(p);
                                j += 2;
                            }
                            None => break,
                        }
                    }
                    if t.get(j) != Some(&Tok::Punct('('))
                        && !(parts.len() == 1 && ctes.contains(&parts[0].to_lowercase()))
                    {
                        refs.push(parts);
                    }
                    if word_is(t.get(j), "AS") {
                        j += 2;
                    } else if let Some(Tok::Word(a)) = t.get(j) {
                        if !CLAUSE_WORDS.iter().any(|c| a.eq_ignore_ascii_case(c)) {
                            j += 1;
                        }
                    } else if let Some(Tok::Quoted(_)) = t.get(j) {
                        j += 1;
                    }
                    if from && t.get(j) == Some(&Tok::Punct(',')) {
                        j += 1;
                        continue;
                    }
                    break;
                }
            }
            _ => {}
        }
    }
    refs
}

impl Catalog {
    /// The first table the SQL reads that is not a dataset (resolved against `ctx`, then as
    /// absolute), shown dotted as written.
    pub(super) fn missing_table(&self, sql: &str, ctx: &[String]) -> Option<String> {
        let exists = |p: &[String]| self.by_path(p).is_some_and(|e| is_dataset(&e));
        for r in table_refs(sql) {
            let root = r[0].to_ascii_lowercase();
            if root == "sys" || root == "information_schema" {
                continue;
            }
            let mut with_ctx = ctx.to_vec();
            with_ctx.extend(r.iter().cloned());
            if (!ctx.is_empty() && exists(&with_ctx)) || exists(&r) {
                continue;
            }
            return Some(r.join("."));
        }
        None
    }
}
