//! The torture target's command line. It is run by `cargo test` too, which may hand it libtest's
//! own flags (`--nocapture`, `--test-threads 2`, a name filter): those are understood or ignored,
//! never an error.

/// Runs per command when neither `--runs` nor LIFEBOAT_TORTURE_RUNS says: the short CI version.
const CI_RUNS: usize = 2;

/// libtest flags that take a value, so that the value is not mistaken for a filter.
const VALUED: &[&str] = &[
    "--test-threads",
    "--format",
    "--color",
    "--logfile",
    "--shuffle-seed",
    "-Z",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub runs: usize,
    /// Commands tortured side by side.
    pub jobs: usize,
    pub seed: Option<u64>,
    /// Only commands whose name contains one of these (all when empty).
    pub filters: Vec<String>,
    pub skips: Vec<String>,
    /// `--list`: name the commands, run nothing.
    pub list: bool,
    /// `--ignored`: libtest's "only ignored tests", of which there are none here.
    pub ignored_only: bool,
}

impl Options {
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Options, String> {
        let mut opts = Options {
            runs: match env("LIFEBOAT_TORTURE_RUNS") {
                Some(v) => number("LIFEBOAT_TORTURE_RUNS", &v)?,
                None => CI_RUNS,
            },
            jobs: 2,
            seed: env("LIFEBOAT_TORTURE_SEED")
                .map(|v| number("LIFEBOAT_TORTURE_SEED", &v))
                .transpose()?,
            filters: Vec::new(),
            skips: Vec::new(),
            list: false,
            ignored_only: false,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with('-') => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "--runs" => opts.runs = number("--runs", &value("--runs")?)?,
                "--jobs" => opts.jobs = number("--jobs", &value("--jobs")?)?,
                "--seed" => opts.seed = Some(number("--seed", &value("--seed")?)?),
                "--skip" => opts.skips.push(value("--skip")?),
                "--list" => opts.list = true,
                "--ignored" => opts.ignored_only = true,
                f if VALUED.contains(&f) => {
                    value(f)?;
                }
                f if f.starts_with('-') => {}
                _ => opts.filters.push(arg),
            }
        }
        if opts.runs == 0 || opts.jobs == 0 {
            return Err("--runs and --jobs must be at least 1".into());
        }
        Ok(opts)
    }

    /// Whether `command` is chosen (of `all`): a filter that names a command exactly chooses
    /// that one only (`backup` is not `online-backup`), any other matches by substring.
    pub fn wants(&self, command: &str, all: &[&str]) -> bool {
        let matches = |f: &String| {
            if all.contains(&f.as_str()) {
                command == f
            } else {
                command.contains(f.as_str())
            }
        };
        !self.ignored_only
            && (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skips.iter().any(matches)
    }
}

fn number<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{what}: {text:?} is not a whole number"))
}
