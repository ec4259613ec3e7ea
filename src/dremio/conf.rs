//! The subset of HOCON that `dremio.conf` uses: nested objects, dotted keys, `:`/`=`, comments,
//! quoted and unquoted strings, `${path}` / `${?path}` substitutions and value concatenation.

use std::collections::BTreeMap;

/// The largest dremio.conf read. Dremio's own is 1 KiB and heavily customised ones a few KiB;
/// parsing takes up to ~30 times the text (a map entry per key), so this also bounds memory.
pub const MAX_CONF_BYTES: u64 = 256 << 10;
/// How deep `{` may nest (Dremio's settings nest 5 deep): the parser recurses per level.
const MAX_DEPTH: usize = 64;
/// The longest full key (`services.coordinator.web.ssl.keyStorePassword` is 45 bytes). Every key
/// inside an object repeats the object's path, so long paths would multiply memory.
const MAX_KEY_BYTES: usize = 256;
/// How deep substitutions may refer to substitutions.
const MAX_SUBSTITUTION_DEPTH: usize = 32;
/// Work (parts visited plus bytes produced) one resolution may take: `a: ${b}${b}`,
/// `b: ${c}${c}`, ... would otherwise double at every level.
const MAX_RESOLVE_WORK: usize = 1 << 20;

/// One piece of a value: literal text or a substitution.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Sub { path: String, optional: bool },
}

/// A parsed configuration: dotted keys to unresolved values. Later assignments win, as in HOCON.
#[derive(Debug, Clone, Default)]
pub struct Conf {
    values: BTreeMap<String, Vec<Part>>,
}

/// A syntax error with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// Why a key could not be resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolveError {
    /// `${path}` names neither a key nor an environment variable.
    Unresolved { key: String, reference: String },
    /// Substitutions refer to each other in a loop.
    Cycle { key: String },
    /// Substitutions nest deeper than [`MAX_SUBSTITUTION_DEPTH`] or expand to more than
    /// [`MAX_RESOLVE_WORK`].
    TooLarge { key: String },
}

impl Conf {
    /// Parses HOCON text. Arrays are kept as raw text (Dremio's paths never need them).
    pub fn parse(text: &str) -> Result<Conf, SyntaxError> {
        let mut parser = Parser {
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            depth: 0,
            conf: Conf::default(),
        };
        parser.object_body("", false)?;
        Ok(parser.conf)
    }

    /// Sets (or overrides) a key with a literal value.
    pub fn set(&mut self, key: &str, value: &str) {
        self.values
            .insert(key.to_string(), vec![Part::Lit(value.to_string())]);
    }

    /// Sets a key only where the file did not (for documented defaults, which may use substitutions).
    pub fn set_default(&mut self, key: &str, hocon_value: &str) {
        if self.values.contains_key(key) {
            return;
        }
        let text = format!("{key}: {hocon_value}");
        if let Ok(parsed) = Conf::parse(&text) {
            self.values.extend(parsed.values);
        }
    }

    /// Whether the key was assigned at all.
    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// The key's value with every substitution resolved: first against other keys, then against
    /// environment variables through `env` (HOCON's fallback), `${?x}` becoming empty when unset.
    pub fn resolve(
        &self,
        key: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, ResolveError> {
        if !self.values.contains_key(key) {
            return Ok(None);
        }
        let mut run = Resolution {
            env,
            stack: Vec::new(),
            work: 0,
        };
        match self.resolve_key(key, &mut run) {
            // Named by the key asked for: the operator knows it, not where the budget ran out.
            Err(ResolveError::TooLarge { .. }) => Err(ResolveError::TooLarge {
                key: key.to_string(),
            }),
            other => other.map(Some),
        }
    }

    fn resolve_key<'a>(
        &'a self,
        key: &'a str,
        run: &mut Resolution<'_, 'a>,
    ) -> Result<String, ResolveError> {
        if run.stack.contains(&key) {
            return Err(ResolveError::Cycle {
                key: key.to_string(),
            });
        }
        if run.stack.len() >= MAX_SUBSTITUTION_DEPTH {
            return Err(ResolveError::TooLarge {
                key: key.to_string(),
            });
        }
        run.stack.push(key);
        let mut out = String::new();
        for part in &self.values[key] {
            let before = out.len();
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Sub { path, optional } => {
                    if self.values.contains_key(path) {
                        out.push_str(&self.resolve_key(path, run)?);
                    } else if let Some(v) = (run.env)(path) {
                        out.push_str(&v);
                    } else if !optional {
                        return Err(ResolveError::Unresolved {
                            key: key.to_string(),
                            reference: path.clone(),
                        });
                    }
                }
            }
            run.work += 1 + out.len() - before;
            if run.work > MAX_RESOLVE_WORK {
                return Err(ResolveError::TooLarge {
                    key: key.to_string(),
                });
            }
        }
        run.stack.pop();
        Ok(out)
    }
}

/// The state of one [`Conf::resolve`]: the keys being resolved (to find loops) and the work done.
struct Resolution<'e, 'k> {
    env: &'e dyn Fn(&str) -> Option<String>,
    stack: Vec<&'k str>,
    work: usize,
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    depth: usize,
    conf: Conf,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError {
            line: self.line,
            message: message.into(),
        })
    }

    fn at_comment(&self) -> bool {
        self.peek() == Some('#') || (self.peek() == Some('/') && self.peek_at(1) == Some('/'))
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    /// Skips spaces, tabs and comments on the current line.
    fn skip_inline_space(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r' | '\u{feff}') => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                _ => break,
            }
        }
    }

    /// Skips whitespace, newlines, commas (HOCON's separators) and comments.
    fn skip_separators(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() || c == ',' || c == '\u{feff}' => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                _ => break,
            }
        }
    }

    fn object_body(&mut self, prefix: &str, nested: bool) -> Result<(), SyntaxError> {
        loop {
            self.skip_separators();
            match self.peek() {
                None if nested => return self.error("missing '}' before the end of the file"),
                None => return Ok(()),
                Some('}') if nested => {
                    self.bump();
                    return Ok(());
                }
                Some('}') => return self.error("unexpected '}'"),
                _ => {}
            }
            if self.at_include() {
                self.skip_comment();
                continue;
            }
            let key = self.key()?;
            let full = if prefix.is_empty() {
                key
            } else {
                format!("{prefix}.{key}")
            };
            if full.len() > MAX_KEY_BYTES {
                return self.error(format!(
                    "key '{}...' is longer than {MAX_KEY_BYTES} bytes",
                    full.chars().take(40).collect::<String>()
                ));
            }
            self.skip_inline_space();
            match self.peek() {
                Some('{') => {
                    self.bump();
                    self.nested_object(&full)?;
                }
                Some(':' | '=') => {
                    self.bump();
                    self.value(&full)?;
                }
                Some('+') if self.peek_at(1) == Some('=') => {
                    // Appending to arrays never matters for paths: keep the raw text out of the way.
                    self.bump();
                    self.bump();
                    self.value(&format!("{full}+"))?;
                }
                _ => return self.error(format!("expected ':', '=' or '{{' after key '{full}'")),
            }
        }
    }

    fn nested_object(&mut self, prefix: &str) -> Result<(), SyntaxError> {
        if self.depth >= MAX_DEPTH {
            return self.error(format!("objects nest more than {MAX_DEPTH} deep"));
        }
        self.depth += 1;
        let body = self.object_body(prefix, true);
        self.depth -= 1;
        body
    }

    fn at_include(&self) -> bool {
        let word: String = self.chars[self.pos..].iter().take(8).collect();
        word.starts_with("include") && matches!(word.chars().nth(7), Some(' ' | '\t'))
    }

    fn key(&mut self) -> Result<String, SyntaxError> {
        let mut segments = Vec::new();
        loop {
            let segment = if self.peek() == Some('"') {
                self.quoted()?
            } else {
                let mut s = String::new();
                while let Some(c) = self.peek() {
                    if c.is_whitespace()
                        || ".:={}[],#\"$+".contains(c)
                        || (c == '/' && self.peek_at(1) == Some('/'))
                    {
                        break;
                    }
                    s.push(c);
                    self.bump();
                }
                if s.is_empty() {
                    return self.error(format!(
                        "expected a key, found {:?}",
                        self.peek().unwrap_or(' ')
                    ));
                }
                s
            };
            segments.push(segment);
            if self.peek() == Some('.') {
                self.bump();
            } else {
                return Ok(segments.join("."));
            }
        }
    }

    fn value(&mut self, key: &str) -> Result<(), SyntaxError> {
        self.skip_inline_space();
        match self.peek() {
            Some('{') => {
                self.bump();
                return self.nested_object(key);
            }
            Some('[') => {
                let raw = self.array()?;
                self.conf
                    .values
                    .insert(key.to_string(), vec![Part::Lit(raw)]);
                return Ok(());
            }
            _ => {}
        }
        let mut parts: Vec<Part> = Vec::new();
        loop {
            match self.peek() {
                None | Some('\n' | ',' | '}') => break,
                _ if self.at_comment() => break,
                Some('"') => {
                    let s = if self.peek_at(1) == Some('"') && self.peek_at(2) == Some('"') {
                        self.triple_quoted()?
                    } else {
                        self.quoted()?
                    };
                    push_lit(&mut parts, &s);
                }
                Some('$') if self.peek_at(1) == Some('{') => {
                    self.bump();
                    self.bump();
                    let optional = if self.peek() == Some('?') {
                        self.bump();
                        true
                    } else {
                        false
                    };
                    let mut path = String::new();
                    loop {
                        match self.bump() {
                            Some('}') => break,
                            Some('\n') | None => return self.error("unterminated '${'"),
                            Some('"') => {}
                            Some(c) => path.push(c),
                        }
                    }
                    parts.push(Part::Sub {
                        path: path.trim().to_string(),
                        optional,
                    });
                }
                Some(_) => {
                    let mut s = String::new();
                    while let Some(c) = self.peek() {
                        if matches!(c, '\n' | ',' | '}' | '"')
                            || self.at_comment()
                            || (c == '$' && self.peek_at(1) == Some('{'))
                        {
                            break;
                        }
                        s.push(c);
                        self.bump();
                    }
                    push_lit(&mut parts, &s);
                }
            }
        }
        // Whitespace around a value is not part of it; whitespace between concatenated parts is.
        trim_parts(&mut parts);
        if parts.is_empty() {
            return self.error(format!("key '{key}' has no value"));
        }
        self.conf.values.insert(key.to_string(), parts);
        Ok(())
    }

    fn array(&mut self) -> Result<String, SyntaxError> {
        let start_line = self.line;
        let mut depth = 0usize;
        let mut raw = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(SyntaxError {
                    line: start_line,
                    message: "unterminated '['".into(),
                });
            };
            if c == '"' {
                let s = self.quoted()?;
                raw.push_str(&format!("{s:?}"));
                continue;
            }
            self.bump();
            raw.push(c);
            match c {
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(raw);
                    }
                }
                _ => {}
            }
        }
    }

    fn quoted(&mut self) -> Result<String, SyntaxError> {
        self.bump();
        let mut s = String::new();
        loop {
            if matches!(self.peek(), None | Some('\n')) {
                return self.error("unterminated string");
            }
            match self.bump() {
                None => return self.error("unterminated string"),
                Some('"') => return Ok(s),
                Some('\\') => match self.bump() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('u') => {
                        let hex: String = (0..4).filter_map(|_| self.bump()).collect();
                        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                            Some(c) => s.push(c),
                            None => return self.error(format!("bad unicode escape \\u{hex}")),
                        }
                    }
                    Some(c) => s.push(c),
                    None => return self.error("unterminated string"),
                },
                Some(c) => s.push(c),
            }
        }
    }

    fn triple_quoted(&mut self) -> Result<String, SyntaxError> {
        let start_line = self.line;
        for _ in 0..3 {
            self.bump();
        }
        let mut s = String::new();
        loop {
            if self.peek() == Some('"')
                && self.peek_at(1) == Some('"')
                && self.peek_at(2) == Some('"')
            {
                for _ in 0..3 {
                    self.bump();
                }
                return Ok(s);
            }
            match self.bump() {
                Some(c) => s.push(c),
                None => {
                    return Err(SyntaxError {
                        line: start_line,
                        message: "unterminated \"\"\" string".into(),
                    });
                }
            }
        }
    }
}

fn push_lit(parts: &mut Vec<Part>, s: &str) {
    if let Some(Part::Lit(last)) = parts.last_mut() {
        last.push_str(s);
    } else {
        parts.push(Part::Lit(s.to_string()));
    }
}

fn trim_parts(parts: &mut Vec<Part>) {
    if let Some(Part::Lit(first)) = parts.first_mut() {
        *first = first.trim_start().to_string();
    }
    if let Some(Part::Lit(last)) = parts.last_mut() {
        *last = last.trim_end().to_string();
    }
    parts.retain(|p| !matches!(p, Part::Lit(s) if s.is_empty()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn get(conf: &Conf, key: &str) -> String {
        conf.resolve(key, &no_env).unwrap().unwrap()
    }

    #[test]
    fn nested_objects_dotted_keys_and_comments() {
        let conf = Conf::parse(
            "# Dremio\npaths: {\n  # where\n  local: \"/var/lib/dremio\"  // trailing\n  dist = \"pdfs://\"${paths.local}\"/pdfs\"\n}\nservices.coordinator.master.enabled: true,\nservices: { executor.enabled: false }\n",
        )
        .unwrap();
        assert_eq!(get(&conf, "paths.local"), "/var/lib/dremio");
        assert_eq!(get(&conf, "paths.dist"), "pdfs:///var/lib/dremio/pdfs");
        assert_eq!(get(&conf, "services.coordinator.master.enabled"), "true");
        assert_eq!(get(&conf, "services.executor.enabled"), "false");
    }

    #[test]
    fn unquoted_concatenation_and_defaults_follow_overrides() {
        let mut conf = Conf::parse("paths.local: /data/dremio\n").unwrap();
        conf.set_default("paths.db", "${paths.local}/db");
        conf.set_default("paths.local", "\"/tmp/dremio\"");
        assert_eq!(get(&conf, "paths.db"), "/data/dremio/db");
        conf.set("paths.local", "/elsewhere");
        assert_eq!(get(&conf, "paths.db"), "/elsewhere/db");
    }

    #[test]
    fn substitution_falls_back_to_environment() {
        let conf = Conf::parse("paths.local: ${DREMIO_HOME}\"/data\"\nx: ${?NOPE}y\n").unwrap();
        let env = |k: &str| (k == "DREMIO_HOME").then(|| "/opt/dremio".to_string());
        assert_eq!(
            conf.resolve("paths.local", &env).unwrap().unwrap(),
            "/opt/dremio/data"
        );
        assert_eq!(conf.resolve("x", &env).unwrap().unwrap(), "y");
        let missing = Conf::parse("a: ${b}\n").unwrap();
        assert_eq!(
            missing.resolve("a", &no_env),
            Err(ResolveError::Unresolved {
                key: "a".into(),
                reference: "b".into()
            })
        );
    }

    #[test]
    fn cycles_are_reported_not_looped_on() {
        let conf = Conf::parse("a: ${b}\nb: ${a}\n").unwrap();
        assert!(matches!(
            conf.resolve("a", &no_env),
            Err(ResolveError::Cycle { .. })
        ));
    }

    #[test]
    fn arrays_and_includes_are_tolerated() {
        let conf = Conf::parse("include \"other.conf\"\npaths.spilling: [${paths.local}\"/spill\", \"/x\"]\nzookeeper: \"h1:2181,h2:2181\"\n").unwrap();
        assert_eq!(get(&conf, "zookeeper"), "h1:2181,h2:2181");
        assert!(conf.contains("paths.spilling"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = Conf::parse("paths: {\n  local: \"/x\n}\n").unwrap_err();
        assert_eq!(err.line, 2);
        let err = Conf::parse("a: 1\nb c\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            Conf::parse("paths: {\n local: /x\n")
                .unwrap_err()
                .message
                .contains("missing '}'")
        );
    }
}
