//! Include/exclude globs on full catalog paths, written with `/` between components:
//! `*` matches within one component, `**` any number of components, `?` one character.
//! Users are matched as `@users/<name>`.

use super::model::Kind;

/// The filters of a run, and which kinds it skips altogether.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Vec<Vec<String>>,
    exclude: Vec<Vec<String>>,
    skip: Vec<Skip>,
}

/// Parts of the catalog a run can leave out entirely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Skip {
    Users,
    Reflections,
    Wikis,
    Tags,
    /// Promoted datasets: sources are then not walked (their storage may hold millions of files).
    Promoted,
    Functions,
}

impl Skip {
    pub fn word(self) -> &'static str {
        match self {
            Skip::Users => "users",
            Skip::Reflections => "reflections",
            Skip::Wikis => "wikis",
            Skip::Tags => "tags",
            Skip::Promoted => "promoted",
            Skip::Functions => "functions",
        }
    }
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
    pub fn new(include: &[String], exclude: &[String], skip: &[Skip]) -> Filter {
        Filter {
            include: include.iter().map(|g| split(g)).collect(),
            exclude: exclude.iter().map(|g| split(g)).collect(),
            skip: skip.to_vec(),
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
        let mut skip: Vec<&str> = self.skip.iter().map(|s| s.word()).collect();
        skip.sort();
        skip.dedup();
        serde_json::json!({
            "include": globs(&self.include),
            "exclude": globs(&self.exclude),
            "skip": skip,
        })
    }

    pub fn skips(&self, s: Skip) -> bool {
        self.skip.contains(&s)
    }

    fn full(kind: Kind, path: &[String]) -> Vec<String> {
        if kind == Kind::User {
            let mut p = vec!["@users".to_string()];
            p.extend(path.iter().cloned());
            p
        } else {
            path.to_vec()
        }
    }

    /// Whether the object is selected: an include matches (or there is none) and no exclude does,
    /// neither on the object nor on one of its ancestors.
    pub fn selects(&self, kind: Kind, path: &[String]) -> bool {
        if kind == Kind::User && self.skips(Skip::Users)
            || kind == Kind::Function && self.skips(Skip::Functions)
            || kind == Kind::Dataset && self.skips(Skip::Promoted)
        {
            return false;
        }
        let full = Self::full(kind, path);
        let first = usize::from(kind == Kind::User);
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
    pub fn keeps_container(&self, kind: Kind, path: &[String]) -> bool {
        self.selects(kind, path) || self.enters(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('/').map(str::to_string).collect()
    }

    #[test]
    fn globs_match_components() {
        let f = Filter::new(
            &["Sales/**".into(), "Ops/*/daily_*".into()],
            &["Sales/tmp".into()],
            &[],
        );
        assert!(f.selects(Kind::View, &p("Sales/a/b/c")));
        assert!(f.selects(Kind::Space, &p("Sales")));
        assert!(f.selects(Kind::View, &p("Ops/x/daily_sum")));
        assert!(!f.selects(Kind::View, &p("Ops/x/y/daily_sum")));
        assert!(!f.selects(Kind::View, &p("Ops/x/weekly")));
        assert!(
            !f.selects(Kind::View, &p("Sales/tmp/v")),
            "excluded with its parent"
        );
        assert!(f.enters(&p("Ops")) && f.enters(&p("Ops/x")));
        assert!(!f.enters(&p("Finance")) && !f.enters(&p("Sales/tmp")));
        assert!(!f.selects(Kind::Space, &p("Ops")) && f.keeps_container(Kind::Space, &p("Ops")));
    }

    #[test]
    fn no_include_means_everything_and_users_have_their_own_prefix() {
        let f = Filter::new(&[], &["@users/svc_*".into()], &[]);
        assert!(f.selects(Kind::View, &p("any/thing")));
        assert!(f.selects(Kind::User, &p("alice")));
        assert!(!f.selects(Kind::User, &p("svc_etl")));
        let f = Filter::new(&[], &[], &[Skip::Users, Skip::Promoted]);
        assert!(!f.selects(Kind::User, &p("alice")));
        assert!(!f.selects(Kind::Dataset, &p("lake/t")));
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
