//! The layer check: every import of `src/` points down docs/ARCHITECTURE.md's layer table, and no
//! files import each other in a circle. Run it alone with `cargo test --test layers`.
//!
//! The table's rows, top to bottom, are the layers from highest to lowest; the first cell names
//! the modules of a row (`commands/`, `dremio/clone/`, `units.rs`). A module belongs to the row
//! with the longest matching name. A file may use its own row and any row below it; a row above
//! is an arrow running back up. References are read from the code itself (`use` trees and inline
//! `crate::`/`super::` paths), comments and string literals left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Colons,
    Open,
    Close,
    Comma,
    Star,
    Other(char),
}

/// Rust source as tokens, without comments, strings and character literals.
fn tokens(src: &str) -> Vec<Tok> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        match ch {
            '/' if next == Some('/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            '"' => i = skip_string(&c, i + 1),
            'r' | 'b' if is_raw_string(&c, i) => i = skip_raw_string(&c, i),
            'b' if next == Some('"') => i = skip_string(&c, i + 2),
            '\'' => {
                // A char literal ('x', '\n', '\u{..}') or a lifetime ('a): skip only the former.
                if next == Some('\\') {
                    i += 2;
                    while i < c.len() && c[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if c.get(i + 2) == Some(&'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            ch if ch.is_alphabetic() || ch == '_' => {
                let start = i;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                out.push(Tok::Ident(c[start..i].iter().collect()));
            }
            ':' if next == Some(':') => {
                out.push(Tok::Colons);
                i += 2;
            }
            '{' => {
                out.push(Tok::Open);
                i += 1;
            }
            '}' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '*' => {
                out.push(Tok::Star);
                i += 1;
            }
            ch if ch.is_whitespace() => i += 1,
            ch => {
                out.push(Tok::Other(ch));
                i += 1;
            }
        }
    }
    out
}

fn skip_string(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i] != '"' {
        i += if c[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

fn is_raw_string(c: &[char], i: usize) -> bool {
    let mut j = i + usize::from(c[i] == 'b');
    if c.get(j) != Some(&'r') {
        return false;
    }
    j += 1;
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    c.get(j) == Some(&'"') && (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
}

fn skip_raw_string(c: &[char], mut i: usize) -> usize {
    while c[i] != '#' && c[i] != '"' {
        i += 1;
    }
    let mut hashes = 0;
    while c[i] == '#' {
        hashes += 1;
        i += 1;
    }
    i += 1;
    while i < c.len() {
        if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

/// Expands a path starting at `t[i]` (`a::b::{c, d::e}`) into whole paths; returns where it ends.
fn expand(t: &[Tok], mut i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix;
    loop {
        match t.get(i) {
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                i += 1;
                // `x as y` renames the last segment: the path is still `...::x`.
                if t.get(i) == Some(&Tok::Ident("as".into())) {
                    i += 2;
                    break;
                }
            }
            Some(Tok::Open) => {
                i += 1;
                loop {
                    match t.get(i) {
                        Some(Tok::Close) => return i + 1,
                        Some(Tok::Comma) => i += 1,
                        None => return i,
                        _ => i = expand(t, i, path.clone(), out),
                    }
                }
            }
            Some(Tok::Star) => {
                i += 1;
                break;
            }
            _ => break,
        }
        if t.get(i) == Some(&Tok::Colons) {
            i += 1;
        } else {
            break;
        }
    }
    out.push(path);
    i
}

/// The tokens without `#[cfg(test)]` modules (test code is no part of the architecture), and the
/// names of the test-only modules declared in their own files (`#[cfg(test)] mod notes;`).
fn without_tests(t: Vec<Tok>) -> (Vec<Tok>, BTreeSet<String>) {
    let cfg_test = [
        Tok::Other('#'),
        Tok::Other('['),
        Tok::Ident("cfg".into()),
        Tok::Other('('),
        Tok::Ident("test".into()),
        Tok::Other(')'),
        Tok::Other(']'),
    ];
    let mut kept = Vec::new();
    let mut test_files = BTreeSet::new();
    let mut i = 0;
    while i < t.len() {
        if !t[i..].starts_with(&cfg_test) {
            kept.push(t[i].clone());
            i += 1;
            continue;
        }
        let item = i + cfg_test.len();
        match (t.get(item), t.get(item + 1), t.get(item + 2)) {
            (Some(Tok::Ident(m)), Some(Tok::Ident(name)), Some(Tok::Other(';'))) if m == "mod" => {
                test_files.insert(name.clone());
                i = item + 3;
            }
            (Some(Tok::Ident(m)), Some(Tok::Ident(_)), Some(Tok::Open)) if m == "mod" => {
                let mut depth = 0;
                i = item + 2;
                while i < t.len() {
                    match t[i] {
                        Tok::Open => depth += 1,
                        Tok::Close => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            // Any other test-only item (a use, a function): only the attribute goes.
            _ => i = item,
        }
    }
    (kept, test_files)
}

/// The module paths a file refers to, made absolute (`crate::...` segments without `crate`).
fn references(
    src: &str,
    module: &[String],
    crate_name: &str,
    children: &BTreeSet<String>,
) -> Vec<Vec<String>> {
    let (t, _) = without_tests(tokens(src));
    let mut found = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let after_colons = i > 0 && t[i - 1] == Tok::Colons;
        let starts_use_path = i > 0 && t[i - 1] == Tok::Ident("use".into());
        match &t[i] {
            Tok::Ident(s)
                if !after_colons
                    && t.get(i + 1) == Some(&Tok::Colons)
                    && (s == "crate"
                        || s == "super"
                        || s == "self"
                        || s == crate_name
                        || (starts_use_path && children.contains(s))) =>
            {
                let re_export = starts_use_path && is_pub(&t[..i - 1]);
                let mut paths = Vec::new();
                i = expand(&t, i, vec![], &mut paths);
                for p in paths {
                    // A module's face (`pub use child::X;`) hands a child's names on: not an arrow.
                    if let Some(abs) = absolute(&p, module, crate_name)
                        && !(re_export && abs.len() > module.len() && abs.starts_with(module))
                    {
                        found.push(abs);
                    }
                }
            }
            _ => i += 1,
        }
    }
    found
}

/// Whether the tokens before a `use` make it `pub` (or `pub(crate)`, `pub(super)`).
fn is_pub(before: &[Tok]) -> bool {
    match before {
        [.., Tok::Ident(p)] => p == "pub",
        [
            ..,
            Tok::Ident(p),
            Tok::Other('('),
            Tok::Ident(_),
            Tok::Other(')'),
        ] => p == "pub",
        _ => false,
    }
}

fn absolute(path: &[String], module: &[String], crate_name: &str) -> Option<Vec<String>> {
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some(first) if first == "crate" || first == crate_name => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => {}
    }
    base.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(base)
}

/// A file's module path: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().map(String::as_str) == Some("mod") {
        parts.pop();
    }
    parts
}

/// The file that defines the longest module prefix of `path`.
fn file_of(src: &Path, path: &[String]) -> Option<PathBuf> {
    (1..=path.len()).rev().find_map(|n| {
        let rel: PathBuf = path[..n].iter().collect();
        [
            src.join(&rel).with_extension("rs"),
            src.join(&rel).join("mod.rs"),
        ]
        .into_iter()
        .find(|f| f.is_file())
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The table's rows, highest layer first: each row's module paths (`dremio/clone/` is dremio::clone).
fn layer_rows(architecture: &str) -> Vec<Vec<Vec<String>>> {
    let section = architecture
        .split("## Layers")
        .nth(1)
        .expect("ARCHITECTURE.md has a `## Layers` section");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|row| {
            let cell = row.split('|').nth(1).unwrap_or("");
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(|name| {
                    name.trim_end_matches('/')
                        .trim_end_matches(".rs")
                        .split('/')
                        .map(str::to_string)
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// The row of a module: its longest prefix named in the table.
fn row_of(rows: &[Vec<Vec<String>>], module: &[String]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (r, names) in rows.iter().enumerate() {
        for name in names {
            if module.starts_with(name) && best.is_none_or(|(len, _)| name.len() > len) {
                best = Some((name.len(), r));
            }
        }
    }
    best.map(|(_, r)| r)
}

/// Files in a circle of imports (strongly connected components of more than one file).
fn circles(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    let nodes: Vec<&PathBuf> = edges.keys().collect();
    let reach = |from: &PathBuf| -> BTreeSet<PathBuf> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(n) = stack.pop() {
            for m in edges.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    stack.push(m.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&PathBuf, BTreeSet<PathBuf>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut found = Vec::new();
    for n in &nodes {
        if done.contains(*n) || !reaches[n].contains(*n) {
            continue;
        }
        let component: Vec<PathBuf> = nodes
            .iter()
            .filter(|m| reaches[n].contains(**m) && reaches[*m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        done.extend(component.iter().cloned());
        found.push(component);
    }
    found
}

struct House {
    /// importer -> (imported file, the path that names it)
    imports: BTreeMap<PathBuf, Vec<(PathBuf, Vec<String>)>>,
    modules: BTreeMap<PathBuf, Vec<String>>,
}

fn read_house(src: &Path) -> House {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut house = House {
        imports: BTreeMap::new(),
        modules: BTreeMap::new(),
    };
    // Modules declared `#[cfg(test)] mod x;` live in their own files: those files are tests too.
    let mut test_only: BTreeSet<Vec<String>> = BTreeSet::new();
    for file in &files {
        let (_, names) = without_tests(tokens(&std::fs::read_to_string(file).unwrap()));
        let parent = if file.ends_with("lib.rs") {
            vec![]
        } else {
            module_of(src, file)
        };
        for name in names {
            test_only.insert(parent.iter().cloned().chain([name]).collect());
        }
    }
    for file in &files {
        if test_only
            .iter()
            .any(|t| module_of(src, file).starts_with(t))
        {
            continue;
        }
        let is_bin = file.starts_with(src.join("bin")) || file == &src.join("main.rs");
        if file == &src.join("lib.rs") {
            continue;
        }
        let module = if is_bin {
            vec!["main".to_string()]
        } else {
            module_of(src, file)
        };
        // Inside a file `mod x;` declares a child: `use x::...` then names it without `self::`.
        let dir = if file.ends_with("mod.rs") {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        let children: BTreeSet<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                e.path()
                    .with_extension("")
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let text = std::fs::read_to_string(file).unwrap();
        // The binary reaches the library by its crate name; the library only through `crate`.
        let crate_name = if is_bin { "lifeboat" } else { "crate" };
        let mut imports = Vec::new();
        for path in references(&text, &module, crate_name, &children) {
            if let Some(target) = file_of(src, &path)
                && &target != file
            {
                imports.push((target, path));
            }
        }
        house.imports.insert(file.clone(), imports);
        house.modules.insert(file.clone(), module);
    }
    house
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_import_points_down_the_layer_table() {
    let src = root().join("src");
    let architecture = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let rows = layer_rows(&architecture);
    assert!(
        rows.len() >= 5,
        "the layer table was not found or is nearly empty: {rows:?}"
    );
    let house = read_house(&src);
    let mut problems = Vec::new();
    for (file, module) in &house.modules {
        let Some(row) = row_of(&rows, module) else {
            problems.push(format!(
                "{}: module {} has no row in ARCHITECTURE.md's layer table",
                file.display(),
                module.join("::")
            ));
            continue;
        };
        for (target, path) in &house.imports[file] {
            let target_module = &house.modules[target];
            let target_row = row_of(&rows, target_module).unwrap_or(usize::MAX);
            if target_row < row {
                problems.push(format!(
                    "{} -> {} ({}): runs back up the layer table (row {} imports row {})",
                    file.strip_prefix(&src).unwrap().display(),
                    target.strip_prefix(&src).unwrap().display(),
                    path.join("::"),
                    row + 1,
                    target_row + 1
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let src = root().join("src");
    let house = read_house(&src);
    let edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = house
        .imports
        .iter()
        .map(|(f, targets)| (f.clone(), targets.iter().map(|(t, _)| t.clone()).collect()))
        .collect();
    let found: Vec<String> = circles(&edges)
        .into_iter()
        .map(|c| {
            c.iter()
                .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
                .collect::<Vec<_>>()
                .join(" <-> ")
        })
        .collect();
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

/// The reader itself: it must see what it claims to see, or the checks above pass vacuously.
#[test]
fn the_reader_sees_use_trees_inline_paths_and_not_strings_or_comments() {
    let src = r##"
        use crate::{store::{self, lock::Lock}, units::parse_bytes as pb};
        use super::guard::*;
        use child::Thing;
        pub use self::child::Handed;
        pub(crate) use crate::units::human_bytes;
        // use crate::commented::Out;
        const S: &str = "crate::in_string::X";
        const R: &str = r#"crate::in_raw::X"#;
        fn f<'a>(c: char) { let _ = crate::host::hostname(); let _ = '"'; let _ = crate::limits::MAX; }
        #[cfg(test)]
        mod tests { use crate::commands::Ctx; fn g() { let _ = { crate::repo::X }; } }
        #[cfg(test)]
        mod notes;
    "##;
    let module = vec!["archive".to_string(), "unpack".to_string()];
    let children = BTreeSet::from(["child".to_string()]);
    let got: BTreeSet<String> = references(src, &module, "crate", &children)
        .iter()
        .map(|p| p.join("::"))
        .collect();
    let want: BTreeSet<String> = [
        "store",
        "store::lock::Lock",
        "units::parse_bytes",
        "archive::guard",
        "archive::unpack::child::Thing",
        "host::hostname",
        "limits::MAX",
        "units::human_bytes",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(got, want);
    let (_, test_files) = without_tests(tokens(src));
    assert_eq!(test_files, BTreeSet::from(["notes".to_string()]));

    let rows = layer_rows(
        "## Layers\n| folder | owns |\n|---|---|\n| `main.rs`, `cli.rs` | x |\n| `dremio/clone/` | y |\n| `clone/` | z |\n| `dremio/` | w |\n\nafter",
    );
    assert_eq!(rows.len(), 4);
    let m = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    assert_eq!(row_of(&rows, &m("dremio::clone::kinds")), Some(1));
    assert_eq!(row_of(&rows, &m("dremio::rest")), Some(3));
    assert_eq!(row_of(&rows, &m("cli")), Some(0));
    assert_eq!(row_of(&rows, &m("nowhere")), None);

    let a = PathBuf::from("a");
    let b = PathBuf::from("b");
    let c = PathBuf::from("c");
    let edges = BTreeMap::from([
        (a.clone(), BTreeSet::from([b.clone()])),
        (b.clone(), BTreeSet::from([a.clone(), c.clone()])),
        (c.clone(), BTreeSet::new()),
    ]);
    assert_eq!(circles(&edges), vec![vec![a, b]]);
}
