//! Inputs: arbitrary bytes, and mutations of valid seeds that know the format's tokens (so that a
//! mutation reaches past the first syntax check: repeated keys, huge numbers, NULs, bad UTF-8,
//! long strings, deep nesting).

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

/// The tokens and nesting pairs a format's mutations splice in.
pub struct Format {
    pub tokens: &'static [&'static [u8]],
    /// (open, close) pairs; `Nest` repeats the open part, then as many close parts.
    pub pairs: &'static [(&'static [u8], &'static [u8])],
}

/// Bytes that are never valid UTF-8, or only just.
const AWKWARD: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    "\u{feff}".as_bytes(),
    "\u{202e}".as_bytes(),
    b"\r\n",
];

pub const JSON: Format = Format {
    tokens: &[
        b"\"",
        b"\\",
        b"{",
        b"}",
        b"[",
        b"]",
        b":",
        b",",
        b"null",
        b"true",
        b"-",
        b"1e999999",
        b"-1e999999",
        b"18446744073709551616",
        b"-9223372036854775809",
        b"4294967296",
        b"1.5",
        b"0",
        b"-0",
        b"\"\\u0000\"",
        b"\"\\ud800\"",
        b"\"\\udfff\\ud800\"",
        b"\"a\":1,",
        b"\"\":",
        b"\\u",
        b"/*",
        b"\t",
    ],
    pairs: &[(b"[", b"]"), (b"{\"a\":", b"}"), (b"[{\"a\":[", b"]}]")],
};

pub const HOCON: Format = Format {
    tokens: &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"${",
        b"${?",
        b"\"",
        b"\"\"\"",
        b":",
        b"=",
        b"+=",
        b".",
        b",",
        b"#",
        b"//",
        b"\n",
        b"include ",
        b"\\u",
        b"\\uZZZZ",
        b"\\",
        b"paths.local",
        b"${paths.local}",
        b"${paths.db}",
        b"${?DREMIO_HOME}",
        b"paths.db: ${paths.db}\n",
        b"a: ${b}${b}\nb: ${a}\n",
        b"$",
        b"\t",
        b" ",
    ],
    pairs: &[
        (b"a{", b"}"),
        (b"a:[", b"]"),
        (b"a.", b"b: 1"),
        (b"a:{", b"}"),
    ],
};

pub const TOML: Format = Format {
    tokens: &[
        b"[",
        b"]",
        b"[[",
        b"]]",
        b"=",
        b"\"",
        b"'",
        b"'''",
        b"\"\"\"",
        b"{",
        b"}",
        b".",
        b",",
        b"\n",
        b"#",
        b"1979-05-27T07:32:00Z",
        b"inf",
        b"-nan",
        b"9223372036854775808",
        b"-9223372036854775809",
        b"1e400",
        b"true",
        b"clusters.",
        b"locations.",
        b"= {}",
        b"\\u0000",
        b"\\UFFFFFFFF",
        b"0x",
        b"_",
        b"\"/dev/zero\"",
        b"{ file = \"/dev/zero\" }",
    ],
    pairs: &[(b"a=[", b"]"), (b"a={b=", b"}"), (b"[", b"]")],
};

pub const SQL: Format = Format {
    tokens: &[
        b"(",
        b")",
        b"SELECT ",
        b" FROM ",
        b" JOIN ",
        b" ON ",
        b" USING (",
        b"WITH a AS (",
        b"WITH RECURSIVE r(x) AS (",
        b" UNION ",
        b",",
        b".",
        b"\"",
        b"\"\"",
        b"`",
        b"'",
        b"--",
        b"/*",
        b"*/",
        b"\n",
        b"TABLE(",
        b"LATERAL ",
        b"UNNEST(",
        b" AT BRANCH ",
        b" AS OF ",
        b"EXTRACT(YEAR FROM ",
        b" IS NOT DISTINCT FROM ",
        b"lake.raw.t",
        b"\"Sales\".\"my view\"",
        b"Sales.fns.tax(",
        b"[",
        b"]",
    ],
    pairs: &[
        (b"(", b")"),
        (b"(SELECT * FROM ", b")"),
        (b"WITH a AS (SELECT 1) ", b""),
    ],
};

/// One textual mutation; positions are fractions of the current length so that they shrink well.
#[derive(Debug, Clone)]
pub enum Op {
    Flip(Index, u8),
    Token(Index, Index),
    Awkward(Index, Index),
    Bytes(Index, Vec<u8>),
    Delete(Index, usize),
    /// Copies a range next to itself: repeated keys, repeated members.
    Duplicate(Index, usize),
    /// Repeats a short range many times: wide objects and lists (`{"a":0},{"a":0},...`).
    Repeat(Index, usize, usize),
    /// A very long run of one byte: long strings, long names.
    Run(Index, u8, usize),
    /// Nesting: `[[[[...]]]]` and its kind, as deep as 100,000.
    Nest(Index, Index, usize),
    Truncate(Index),
}

fn depth() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 1usize..300, 1 => Just(100_000usize)]
}

fn run_len() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 1usize..1000, 2 => Just(70_000usize), 1 => Just(1 << 20)]
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Op::Flip(i, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, t)| Op::Token(i, t)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, t)| Op::Awkward(i, t)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Op::Bytes(i, b)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Op::Delete(i, n)),
        (any::<Index>(), 1usize..256).prop_map(|(i, n)| Op::Duplicate(i, n)),
        (
            any::<Index>(),
            1usize..48,
            prop_oneof![2usize..100, 1000usize..30_000]
        )
            .prop_map(|(i, n, t)| Op::Repeat(i, n, t)),
        (any::<Index>(), any::<u8>(), run_len()).prop_map(|(i, b, n)| Op::Run(i, b, n)),
        (any::<Index>(), any::<Index>(), depth()).prop_map(|(i, p, d)| Op::Nest(i, p, d)),
        any::<Index>().prop_map(Op::Truncate),
    ]
}

pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 0..5)
}

fn at(i: &Index, len: usize) -> usize {
    i.index(len + 1)
}

/// Applies `ops` in order to `bytes`.
pub fn apply(format: &Format, mut bytes: Vec<u8>, ops: &[Op]) -> Vec<u8> {
    for op in ops {
        let len = bytes.len();
        match op {
            Op::Flip(i, mask) if len > 0 => bytes[i.index(len)] ^= mask | 1,
            Op::Flip(..) => {}
            Op::Token(i, t) => {
                let token = format.tokens[t.index(format.tokens.len())];
                bytes.splice(at(i, len)..at(i, len), token.iter().copied());
            }
            Op::Awkward(i, t) => {
                let token = AWKWARD[t.index(AWKWARD.len())];
                bytes.splice(at(i, len)..at(i, len), token.iter().copied());
            }
            Op::Bytes(i, b) => {
                bytes.splice(at(i, len)..at(i, len), b.iter().copied());
            }
            Op::Delete(i, n) => {
                let from = at(i, len);
                bytes.drain(from..(from + n).min(len));
            }
            Op::Duplicate(i, n) => {
                let from = at(i, len);
                let piece: Vec<u8> = bytes[from..(from + n).min(len)].to_vec();
                bytes.splice(from..from, piece);
            }
            Op::Repeat(i, n, times) => {
                let from = at(i, len);
                let piece = bytes[from..(from + n).min(len)].repeat(*times);
                bytes.splice(from..from, piece);
            }
            Op::Run(i, b, n) => {
                bytes.splice(at(i, len)..at(i, len), std::iter::repeat_n(*b, *n));
            }
            Op::Nest(i, p, d) => {
                let (open, close) = format.pairs[p.index(format.pairs.len())];
                let from = at(i, len);
                let mut nested = open.repeat(*d);
                nested.extend(close.repeat(*d));
                bytes.splice(from..from, nested);
            }
            Op::Truncate(i) => bytes.truncate(at(i, len)),
        }
    }
    bytes
}

/// A JSON value that readers tend to mishandle.
pub fn awkward_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(i64::MIN)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        Just(Value::from("a\0b")),
        Just(Value::from("x".repeat(70_000))),
        Just(Value::from("../../../../etc/passwd")),
        Just(Value::from("/etc/passwd")),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        Just(serde_json::json!([[[[[[[[[[[[[[[[[[[[[
            "deep"
        ]]]]]]]]]]]]]]]]]]]]])),
        Just(serde_json::json!({"": {"": {"": null}}})),
    ]
}

/// One structural edit of a JSON document: the path picks a child at each level.
#[derive(Debug, Clone)]
pub enum Edit {
    Set(Vec<Index>, Value),
    Remove(Vec<Index>),
    /// Inserts a new key (or array item) beside the picked one.
    Add(Vec<Index>, String, Value),
    /// Makes the picked list or object wide: as many more small items, or keys `k0`, `k1`, ...
    Widen(Vec<Index>, usize, Value),
}

/// What `Widen` fills with: the shapes that cost a parser most per byte.
fn small_value() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        serde_json::json!({"a": 0}),
        serde_json::json!(0),
        serde_json::json!([]),
        serde_json::json!(""),
        serde_json::json!({"path": ["x"]}),
        serde_json::json!({"path": ["x"], "tags": []}),
    ])
}

pub fn edit() -> impl Strategy<Value = Edit> {
    let path = || prop::collection::vec(any::<Index>(), 0..6);
    prop_oneof![
        3 => (path(), awkward_value()).prop_map(|(p, v)| Edit::Set(p, v)),
        1 => path().prop_map(Edit::Remove),
        1 => (path(), "[a-z_]{0,12}", awkward_value()).prop_map(|(p, k, v)| Edit::Add(p, k, v)),
        1 => (path(), prop_oneof![4 => 2usize..100, 2 => 1000usize..40_000, 1 => 100_000usize..200_000], small_value())
            .prop_map(|(p, n, v)| Edit::Widen(p, n, v)),
    ]
}

pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit(), 0..5)
}

/// Follows `path` down from `v` as far as it goes and returns the container and the picked child.
fn walk<'a>(v: &'a mut Value, path: &[Index]) -> &'a mut Value {
    let Some((first, rest)) = path.split_first() else {
        return v;
    };
    let pick = match &*v {
        Value::Object(m) if !m.is_empty() => m.keys().nth(first.index(m.len())).cloned().map(Ok),
        Value::Array(a) if !a.is_empty() => Some(Err(first.index(a.len()))),
        _ => None,
    };
    let child = match pick {
        Some(Ok(key)) => v.get_mut(&key),
        Some(Err(i)) => v.get_mut(i),
        None => return v,
    }
    .expect("the picked child exists");
    if !rest.is_empty() && (child.is_object() || child.is_array()) {
        walk(child, rest)
    } else {
        child
    }
}

/// Applies `edits` in order to `doc`.
pub fn apply_edits(mut doc: Value, edits: &[Edit]) -> Value {
    for e in edits {
        match e {
            Edit::Set(path, value) => *walk(&mut doc, path) = value.clone(),
            Edit::Remove(path) => {
                let (last, parent) = match path.split_last() {
                    Some(x) => x,
                    None => continue,
                };
                match walk(&mut doc, parent) {
                    Value::Object(m) if !m.is_empty() => {
                        let k = m
                            .keys()
                            .nth(last.index(m.len()))
                            .cloned()
                            .unwrap_or_default();
                        m.remove(&k);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        let n = a.len();
                        a.remove(last.index(n));
                    }
                    _ => {}
                }
            }
            Edit::Add(path, key, value) => match walk(&mut doc, path) {
                Value::Object(m) => {
                    m.insert(key.clone(), value.clone());
                }
                Value::Array(a) => a.push(value.clone()),
                _ => {}
            },
            Edit::Widen(path, times, value) => match walk(&mut doc, path) {
                Value::Object(m) => {
                    for i in 0..*times {
                        m.insert(format!("k{i}"), value.clone());
                    }
                }
                Value::Array(a) => a.extend(std::iter::repeat_n(value.clone(), *times)),
                _ => {}
            },
        }
    }
    doc
}

/// A document from one of `seeds`, edited as JSON, then mutated as text.
pub fn json_from(seeds: Vec<Value>) -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(seeds), edits(), any::<bool>(), ops()).prop_map(
        |(seed, edits, pretty, ops)| {
            let doc = apply_edits(seed, &edits);
            let text = if pretty {
                serde_json::to_vec_pretty(&doc)
            } else {
                serde_json::to_vec(&doc)
            }
            .expect("a Value serialises");
            apply(&JSON, text, &ops)
        },
    )
}

/// Text from one of `seeds`, mutated with the format's tokens.
pub fn text_from(
    format: &'static Format,
    seeds: &'static [&'static str],
) -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(seeds), ops())
        .prop_map(move |(seed, ops)| apply(format, seed.as_bytes().to_vec(), &ops))
}

/// Arbitrary bytes, now and then a lot of them.
pub fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..512),
        1 => prop::collection::vec(any::<u8>(), 0..65536),
    ]
}

/// Either arbitrary bytes or a mutated seed (mostly the latter: they get further).
pub fn or_bytes(seeded: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Bytes> {
    prop_oneof![1 => any_bytes(), 4 => seeded].prop_map(Bytes)
}

/// An input, shown as text with long runs folded when a case fails.
#[derive(Clone)]
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes: \"", self.0.len())?;
        let text = String::from_utf8_lossy(&self.0);
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let mut n = 1;
            while chars.next_if_eq(&c).is_some() {
                n += 1;
            }
            if n >= 8 {
                write!(f, "{{{} x {n}}}", c.escape_debug())?;
            } else {
                for _ in 0..n {
                    write!(f, "{}", c.escape_debug())?;
                }
            }
        }
        f.write_str("\"")
    }
}
