//! Include/exclude globs on full paths, written with `/` between components: `*` matches within
//! one component, `**` any number of components, `?` one character. A kind may put its objects
//! under a prefix (Dremio's users are matched as `@users/<name>`). Kinds and parts are skipped by
//! the words the cluster kind gives them.

use super::kind::ArtefactKind;

/// The filters of a run, and which kinds and parts it skips altogether.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Vec<Vec<String>>,
    exclude: Vec<Vec<String>>,
    skip: Vec<&'static str>,
}

fn split(glob: &str) -> Vec<String> {
    glob.trim_matches('/')
        .split('/')
        .map(str::to_string)
        .collect()
}

/// Whether one component matches one glob component (`*`, `?`, literal characters).
fn component_matches(glob: &str, name: &str) -> bool {
    // Dremio's names ignore case, and so do the filters.
    let g: Vec<char> = glob.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut gi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == n[ni]) {
            gi += 1;
            ni += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ni));
            gi += 1;
        } else if let Some((sg, sn)) = star {
            gi = sg + 1;
            ni = sn + 1;
            star = Some((sg, sn + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

fn matches(glob: &[String], path: &[String]) -> bool {
    match glob.split_first() {
        None => path.is_empty(),
        Some((g, rest)) if g == "**" => (0..=path.len()).any(|i| matches(rest, &path[i..])),
        Some((g, rest)) => match path.split_first() {
            Some((p, prest)) => component_matches(g, p) && matches(rest, prest),
            None => false,
        },
    }
}

/// Whether some path below `prefix` (or `prefix` itself) could match the glob.
fn may_match_below(glob: &[String], prefix: &[String]) -> bool {
    match (glob.split_first(), prefix.split_first()) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some((g, _)), Some(_)) if g == "**" => true,
        (Some((g, grest)), Some((p, prest))) => {
            component_matches(g, p) && may_match_below(grest, prest)
        }
    }
}

impl Filter {
    /// `skip`: what to leave out, as words of the cluster kind (e.g. its plain `Skip` enum).
    pub fn new<S: Copy + Into<&'static str>>(
        include: &[String],
        exclude: &[String],
        skip: &[S],
    ) -> Filter {
        Filter {
            include: include.iter().map(|g| split(g)).collect(),
            exclude: exclude.iter().map(|g| split(g)).collect(),
            skip: skip.iter().map(|s| (*s).into()).collect(),
        }
    }

    /// The same filter for the target's paths: literal first components renamed by `rename`.
    pub fn renamed(&self, rename: &dyn Fn(&str) -> Option<String>) -> Filter {
        let map = |globs: &[Vec<String>]| -> Vec<Vec<String>> {
            globs
                .iter()
                .map(|g| {
                    let mut g = g.clone();
                    if let Some(first) = g.first_mut()
                        && !first.contains(['*', '?'])
                        && let Some(to) = rename(first)
                    {
                        *first = to;
                    }
                    g
                })
                .collect()
        };
        Filter {
            include: map(&self.include),
            exclude: map(&self.exclude),
            skip: self.skip.clone(),
        }
    }

    /// What the filter covers, in a stable form (recorded in an export tree, compared by mirror).
    pub fn describe(&self) -> serde_json::Value {
        let globs = |g: &[Vec<String>]| {
            let mut v: Vec<String> = g.iter().map(|c| c.join("/")).collect();
            v.sort();
            v.dedup();
            v
        };
        let mut skip: Vec<&str> = self.skip.clone();
        skip.sort();
        skip.dedup();
        serde_json::json!({
            "include": globs(&self.include),
            "exclude": globs(&self.exclude),
            "skip": skip,
        })
    }

    pub fn skips<S: Into<&'static str>>(&self, s: S) -> bool {
        self.skip.contains(&s.into())
    }

    /// Whether the object is selected: an include matches (or there is none) and no exclude does,
    /// neither on the object nor on one of its ancestors.
    pub fn selects<K: ArtefactKind>(&self, kind: K, path: &[String]) -> bool {
        let spec = kind.spec();
        if spec.skip.is_some_and(|w| self.skips(w)) {
            return false;
        }
        let mut full: Vec<String> = spec.glob_prefix.into_iter().map(str::to_string).collect();
        let first = full.len();
        full.extend(path.iter().cloned());
        let excluded =
            (first + 1..=full.len()).any(|n| self.exclude.iter().any(|g| matches(g, &full[..n])));
        !excluded && (self.include.is_empty() || self.include.iter().any(|g| matches(g, &full)))
    }

    /// Whether a container must be walked: something below it may be selected.
    pub fn enters(&self, path: &[String]) -> bool {
        let excluded =
            (1..=path.len()).any(|n| self.exclude.iter().any(|g| matches(g, &path[..n])));
        !excluded
            && (self.include.is_empty() || self.include.iter().any(|g| may_match_below(g, path)))
    }

    /// Whether an exclude could match something strictly below `path` (deleting `path` would
    /// then delete what the filters protect).
    pub fn excludes_below(&self, path: &[String]) -> bool {
        self.exclude.iter().any(|g| {
            (g.len() > path.len() || g.iter().any(|c| c == "**")) && may_match_below(g, path)
        })
    }

    /// Whether a container is needed as the parent of a selected object below it, or is selected.
    pub fn keeps_container<K: ArtefactKind>(&self, kind: K, path: &[String]) -> bool {
        self.selects(kind, path) || self.enters(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clone::notes::Kind;

    fn p(s: &str) -> Vec<String> {
        s.split('/').map(str::to_string).collect()
    }

    #[test]
    fn globs_match_components() {
        let f = Filter::new::<&str>(
            &["Sales/**".into(), "Ops/*/daily_*".into()],
            &["Sales/tmp".into()],
            &[],
        );
        assert!(f.selects(Kind::Note, &p("Sales/a/b/c")));
        assert!(f.selects(Kind::Book, &p("Sales")));
        assert!(f.selects(Kind::Note, &p("Ops/x/daily_sum")));
        assert!(!f.selects(Kind::Note, &p("Ops/x/y/daily_sum")));
        assert!(!f.selects(Kind::Note, &p("Ops/x/weekly")));
        assert!(
            !f.selects(Kind::Note, &p("Sales/tmp/v")),
            "excluded with its parent"
        );
        assert!(f.enters(&p("Ops")) && f.enters(&p("Ops/x")));
        assert!(!f.enters(&p("Finance")) && !f.enters(&p("Sales/tmp")));
        assert!(!f.selects(Kind::Book, &p("Ops")) && f.keeps_container(Kind::Book, &p("Ops")));
    }

    #[test]
    fn no_include_means_everything_and_prefixed_kinds_have_their_own_globs() {
        let f = Filter::new::<&str>(&[], &["@authors/svc_*".into()], &[]);
        assert!(f.selects(Kind::Note, &p("any/thing")));
        assert!(f.selects(Kind::Author, &p("alice")));
        assert!(!f.selects(Kind::Author, &p("svc_etl")));
        let f = Filter::new(&[], &[], &["authors"]);
        assert!(!f.selects(Kind::Author, &p("alice")));
        assert!(f.selects(Kind::Note, &p("a/b")));
        assert_eq!(f.describe()["skip"], serde_json::json!(["authors"]));
    }

    #[test]
    fn star_does_not_cross_components_but_matches_within() {
        assert!(component_matches("a*c", "abbbc"));
        assert!(component_matches("*", ""));
        assert!(!component_matches("a?c", "ac"));
        assert!(!matches(&p("*"), &p("a/b")));
        assert!(matches(&p("**"), &p("a/b")));
    }
}
