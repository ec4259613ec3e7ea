//! The configuration file (TOML, `--config`): named clusters and locations. One loading order:
//! built-in defaults, then the file, then `LIFEBOAT_*` environment variables, then flags.
//! Secrets are never in the file: a location names the environment variables that hold them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Classify, ExitClass};
use crate::limits;
use crate::secrets::Secret;
use crate::store::location::LocationSpec;

pub mod resolve;

/// A configuration error, with the key and the line it concerns when it comes from the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config {path}, line {line}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

impl Classify for ConfigError {
    fn exit_class(&self) -> ExitClass {
        ExitClass::Usage
    }
}

/// The largest config file read. One with dozens of clusters and locations is a few KiB; the TOML
/// parser takes up to ~190 times the text (its tokens, events and values), so this bounds memory too.
pub const MAX_CONFIG_BYTES: u64 = 256 << 10;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterConfig>,
    #[serde(default)]
    pub locations: BTreeMap<String, LocationConfig>,
    #[serde(skip)]
    path: PathBuf,
    #[serde(skip)]
    text: String,
}

/// A cluster lifeboat protects.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `dremio` (the default) or `druid`.
    pub kind: Option<String>,
    pub dremio_home: Option<PathBuf>,
    pub paths_local: Option<PathBuf>,
    pub dremio_version: Option<String>,
    /// Recovery point objective, e.g. "26h": status fails when the newest backup is older.
    pub rpo: Option<Spanned<String>>,
    /// The primary location (a name from `[locations]` or a URL).
    pub to: Option<Spanned<String>>,
    /// Locations that receive a copy of every backup.
    #[serde(default)]
    pub copy_to: Vec<Spanned<String>>,
    /// zstd level for backups.
    pub level: Option<i32>,
    /// Repository format of new backups: 1 or 2 (see `resolve::DEFAULT_FORMAT`).
    pub format: Option<Spanned<i64>>,
    /// Format 2: age recipients (`age1...`) every backup is encrypted to.
    #[serde(default)]
    pub recipients: Vec<Spanned<String>>,
    /// Format 2: a file of age recipients, one a line (`#` comments), added to `recipients`.
    pub recipients_file: Option<Spanned<String>>,
    /// Coordinator URLs for online (logical) backups through the REST API.
    #[serde(default)]
    pub dremio_urls: Vec<String>,
    /// A `kind = "druid"` cluster's Coordinator/Overlord URLs (clone finds each role's leader).
    #[serde(default)]
    pub druid_urls: Vec<String>,
    /// Where the coordinator writes an online backup (a folder both it and lifeboat reach).
    pub staging: Option<PathBuf>,
    /// CA certificate (PEM) for the coordinators' TLS.
    pub ca_file: Option<PathBuf>,
    /// `doctor`: every master candidate's DREMIO_HOME (default: `dremio_home` alone).
    #[serde(default)]
    pub dremio_homes: Vec<PathBuf>,
    /// `doctor`: the ZooKeeper ensemble, `host:port` each.
    #[serde(default)]
    pub zookeeper: Vec<String>,
    /// `doctor`: Dremio's root in ZooKeeper (default `/dremio`).
    pub zk_root: Option<String>,
    /// `doctor`: the DR secondary's coordinator URLs.
    #[serde(default)]
    pub secondary_urls: Vec<String>,
    /// `doctor`: the lowest acceptable throughput of the shared volume, MB/s (default 30).
    pub min_throughput_mbps: Option<f64>,
    /// A `kind = "druid"` cluster's metadata store, `postgres://USER@HOST:PORT/DB` or
    /// `mysql://USER@HOST:PORT/DB` (never with a password: see `metadata_password_env`).
    pub druid_metadata: Option<String>,
    /// The environment variable holding the metadata store's password (its `_FILE` twin works
    /// too; default `LIFEBOAT_DRUID_METADATA_PASSWORD`).
    pub metadata_password_env: Option<String>,
    /// A file holding the metadata store's password (instead of an environment variable).
    pub metadata_password_file: Option<PathBuf>,
    /// CA certificate (PEM) for TLS to the metadata store (TLS is off without it).
    pub metadata_ca_file: Option<PathBuf>,
    /// Deep-storage roots the segments live under (`s3://bucket/prefix`), for the checks.
    #[serde(default)]
    pub deep_storage: Vec<String>,
    /// Restores rewrite segments' loadSpecs by these `FROM=TO` prefixes (the DR copy of deep storage).
    #[serde(default)]
    pub deep_storage_map: Vec<String>,
    /// DR: this cluster is the standby of the named cluster (`standby refresh`, `failover`).
    pub standby_for: Option<Spanned<String>>,
    /// DR: the location a standby restores from (the copy nearest to it; default: the
    /// primary's `to`).
    pub restore_from: Option<Spanned<String>>,
    /// DR: shell commands that start and stop this cluster's coordinator (a standby's); they
    /// return once done (e.g. `systemctl start dremio`). `{paths_local}`, `{home}` and `{port}`
    /// are filled in, shell-quoted.
    pub start: Option<String>,
    pub stop: Option<String>,
    /// `drill`: the command that runs a coordinator on the drill's scratch copy in the
    /// foreground (`{paths_local}`, `{port}`, `{home}`); the drill stops it by signal, or with
    /// `drill_stop` when given.
    pub drill_start: Option<String>,
    pub drill_stop: Option<String>,
    /// DR: the export tree `clone` keeps for this cluster (or this standby's pair): the
    /// reference a drill compares with, and a standby refresh's source when the primary is down.
    pub clone_tree: Option<PathBuf>,
    /// DR: recovery time objective, e.g. "15m": a drill or failover slower than this warns.
    pub rto: Option<Spanned<String>>,
    /// DR: how long a started coordinator may take to serve (default 10m).
    pub start_timeout: Option<Spanned<String>>,
}

/// Where backups live, with its own endpoint, credentials and retention.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationConfig {
    pub url: String,
    pub region: Option<String>,
    /// For S3-compatible servers, e.g. "https://minio.internal:9000".
    pub endpoint: Option<String>,
    pub allow_http: Option<bool>,
    /// Names of the environment variables that hold the credentials (never the secrets themselves).
    pub access_key_id_env: Option<String>,
    pub secret_access_key_env: Option<String>,
    pub session_token_env: Option<String>,
    /// A local folder location that does not exist is created by backup and copy (default: refused,
    /// so that an unmounted volume is noticed instead of filling the disk under its mount point).
    pub create: Option<bool>,
    pub retention: Option<RetentionConfig>,
}

/// A restic-style retention policy (see `lifeboat prune`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_within: Option<Spanned<String>>,
}

impl Config {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = limits::read_capped_string(path, MAX_CONFIG_BYTES, "a config file").map_err(
            |source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            },
        )?;
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let syntax = |message: String| ConfigError::Syntax {
            path: path.to_path_buf(),
            message,
        };
        limits::check_toml_nesting(text, limits::MAX_TOML_DEPTH).map_err(syntax)?;
        let mut config: Config =
            toml::from_str(text).map_err(|e| syntax(toml_message(&e.to_string())))?;
        config.path = path.to_path_buf();
        config.text = text.to_string();
        config.check()?;
        Ok(config)
    }

    fn invalid(&self, span: std::ops::Range<usize>, key: &str, message: String) -> ConfigError {
        let line = self
            .text
            .get(..span.start)
            .map(|t| t.matches('\n').count() + 1)
            .unwrap_or(0);
        ConfigError::Invalid {
            path: self.path.clone(),
            line,
            key: key.to_string(),
            message,
        }
    }

    /// Checks references and durations up front, so a cron job fails on its first run, not later.
    fn check(&self) -> Result<(), ConfigError> {
        for (name, c) in &self.clusters {
            for (key, value) in [
                ("rpo", &c.rpo),
                ("rto", &c.rto),
                ("start_timeout", &c.start_timeout),
            ] {
                if let Some(v) = value {
                    self.duration(v, &format!("clusters.{name}.{key}"))?;
                }
            }
            if let Some(primary) = &c.standby_for {
                let p = primary.get_ref();
                if p == name || !self.clusters.contains_key(p) {
                    let known: Vec<&str> = self
                        .clusters
                        .keys()
                        .filter(|k| *k != name)
                        .map(String::as_str)
                        .collect();
                    return Err(self.invalid(
                        primary.span(),
                        &format!("clusters.{name}.standby_for"),
                        format!("no other cluster named {p:?} (known: {})", known.join(", ")),
                    ));
                }
            }
            for (key, target) in
                c.to.iter()
                    .map(|t| ("to", t))
                    .chain(c.copy_to.iter().map(|t| ("copy_to", t)))
                    .chain(c.restore_from.iter().map(|t| ("restore_from", t)))
            {
                let value = target.get_ref();
                if !value.contains("://")
                    && !value.starts_with('/')
                    && !value.starts_with('.')
                    && !self.locations.contains_key(value)
                {
                    let known: Vec<&str> = self.locations.keys().map(String::as_str).collect();
                    return Err(self.invalid(
                        target.span(),
                        &format!("clusters.{name}.{key}"),
                        format!("no location named {value:?} (known: {})", known.join(", ")),
                    ));
                }
            }
            if let Some(f) = &c.format
                && !matches!(f.get_ref(), 1 | 2)
            {
                return Err(self.invalid(
                    f.span(),
                    &format!("clusters.{name}.format"),
                    format!("{} is not a repository format: 1 or 2", f.get_ref()),
                ));
            }
            for r in &c.recipients {
                if let Err(e) = crate::crypto::Recipients::parse(&[r.get_ref()], "recipients") {
                    return Err(self.invalid(
                        r.span(),
                        &format!("clusters.{name}.recipients"),
                        e.to_string(),
                    ));
                }
            }
            if let Some(f) = &c.recipients_file
                && f.get_ref().is_empty()
            {
                return Err(self.invalid(
                    f.span(),
                    &format!("clusters.{name}.recipients_file"),
                    "an empty path".into(),
                ));
            }
            if let Some(kind) = &c.kind
                && kind != "dremio"
                && kind != "druid"
            {
                return Err(ConfigError::Other(format!(
                    "config {}: clusters.{name}.kind {kind:?}: \"dremio\" or \"druid\"",
                    self.path.display()
                )));
            }
            if let Some(url) = &c.druid_metadata
                && let Err(why) = crate::druid::metastore::MetaUrl::parse(url)
            {
                return Err(ConfigError::Other(format!(
                    "config {}: clusters.{name}.druid_metadata: {why}",
                    self.path.display()
                )));
            }
            if c.metadata_password_env.is_some() && c.metadata_password_file.is_some() {
                return Err(ConfigError::Other(format!(
                    "config {}: clusters.{name}: metadata_password_env and metadata_password_file both given; keep one",
                    self.path.display()
                )));
            }
        }
        for (name, l) in &self.locations {
            if let Some(within) = l.retention.as_ref().and_then(|r| r.keep_within.as_ref()) {
                self.duration(within, &format!("locations.{name}.retention.keep_within"))?;
            }
        }
        Ok(())
    }

    fn duration(&self, value: &Spanned<String>, key: &str) -> Result<Duration, ConfigError> {
        humantime::parse_duration(value.get_ref()).map_err(|e| {
            self.invalid(
                value.span(),
                key,
                format!(
                    "{:?} is not a duration like \"26h\" or \"7days\" ({e})",
                    value.get_ref()
                ),
            )
        })
    }

    /// The named cluster, or the only one, or none.
    pub fn cluster(
        &self,
        name: Option<&str>,
    ) -> Result<Option<(String, ClusterConfig)>, ConfigError> {
        match name {
            Some(n) => Ok(self.clusters.get(n).map(|c| (n.to_string(), c.clone()))),
            None if self.clusters.len() == 1 => Ok(self
                .clusters
                .iter()
                .next()
                .map(|(n, c)| (n.clone(), c.clone()))),
            None if self.clusters.is_empty() => Ok(None),
            None => Err(ConfigError::Other(format!(
                "config {} names several clusters ({}): pick one with --cluster",
                self.path.display(),
                self.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// A location by name from the file, or any URL.
    pub fn location(
        &self,
        name_or_url: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<LocationSpec, ConfigError> {
        let Some(l) = self.locations.get(name_or_url) else {
            return Ok(LocationSpec::from_url(name_or_url));
        };
        let secret = |key: &str, var: &Option<String>| -> Result<Option<Secret>, ConfigError> {
            match var {
                None => Ok(None),
                Some(v) => crate::secrets::from_var(env, v).map(Some).ok_or_else(|| {
                    ConfigError::Other(format!("location {name_or_url}: the environment variable {v} named by locations.{name_or_url}.{key} is not set"))
                }),
            }
        };
        Ok(LocationSpec {
            name: name_or_url.to_string(),
            url: l.url.clone(),
            region: l.region.clone(),
            endpoint: l.endpoint.clone(),
            allow_http: l.allow_http,
            access_key_id: secret("access_key_id_env", &l.access_key_id_env)?,
            secret_access_key: secret("secret_access_key_env", &l.secret_access_key_env)?,
            session_token: secret("session_token_env", &l.session_token_env)?,
            create: l.create.unwrap_or(false),
        })
    }

    /// The retention policy of a named location, if any.
    pub fn retention(&self, location: &str) -> Option<&RetentionConfig> {
        self.locations
            .get(location)
            .and_then(|l| l.retention.as_ref())
    }
}

/// toml's errors draw the offending line; keep "at line N, column M" and the explanation.
fn toml_message(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match (lines.first(), lines.last()) {
        (Some(first), Some(last)) if lines.len() > 1 => format!("{first}: {last}"),
        _ => text.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/lifeboat.example.toml");
        let c = Config::load(&path).unwrap();
        let (_, prod) = c.cluster(Some("prod")).unwrap().unwrap();
        assert_eq!(prod.dremio_urls.len(), 2);
        assert!(c.cluster(Some("dr")).unwrap().is_some());
    }

    const EXAMPLE: &str = r#"
[clusters.prod]
dremio_home = "/opt/dremio"
rpo = "26h"
to = "us"
copy_to = ["eu"]

[locations.us]
url = "s3://backups-us/dremio"
region = "us-east-1"
access_key_id_env = "US_KEY"
secret_access_key_env = "US_SECRET"

[locations.us.retention]
keep_daily = 7
keep_within = "2d"

[locations.eu]
url = "s3://backups-eu/dremio"
endpoint = "http://127.0.0.1:9000"
allow_http = true
"#;

    #[test]
    fn reads_clusters_locations_and_secrets_from_named_env() {
        let c = Config::parse(EXAMPLE, Path::new("l.toml")).unwrap();
        let (name, cluster) = c.cluster(None).unwrap().unwrap();
        assert_eq!(name, "prod");
        assert_eq!(cluster.to.unwrap().get_ref(), "us");
        let env = |k: &str| match k {
            "US_KEY" => Some("AKIA".to_string()),
            "US_SECRET" => Some("s3cr3t".to_string()),
            _ => None,
        };
        let us = c.location("us", &env).unwrap();
        assert_eq!(us.url, "s3://backups-us/dremio");
        assert_eq!(us.secret_access_key, Some(Secret("s3cr3t".into())));
        assert!(
            !format!("{us:?}").contains("s3cr3t"),
            "secrets never show in debug output"
        );
        assert_eq!(c.retention("us").unwrap().keep_daily, Some(7));
        let plain = c.location("s3://other/x", &env).unwrap();
        assert_eq!(plain, LocationSpec::from_url("s3://other/x"));
        let missing = c.location("us", &|_| None).unwrap_err().to_string();
        assert!(missing.contains("US_KEY"), "{missing}");
    }

    #[test]
    fn format_and_recipients_are_checked_with_their_key_and_line() {
        let bad_format = "[clusters.prod]\nlevel = 3\nformat = 3\n";
        let err = Config::parse(bad_format, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("clusters.prod.format"),
            "{err}"
        );
        let bad_key = "[clusters.prod]\nformat = 2\nrecipients = [\"age1nope\"]\n";
        let err = Config::parse(bad_key, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("clusters.prod.recipients"),
            "{err}"
        );
        let good = "[clusters.prod]\nformat = 2\nrecipients_file = \"/etc/lifeboat/keys\"\n";
        let c = Config::parse(good, Path::new("c.toml")).unwrap();
        let (_, prod) = c.cluster(Some("prod")).unwrap().unwrap();
        assert_eq!(prod.format.map(|f| *f.get_ref()), Some(2));
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let bad = EXAMPLE.replace("rpo = \"26h\"", "rpo = \"soon\"");
        let err = Config::parse(&bad, Path::new("l.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 4") && err.contains("clusters.prod.rpo"),
            "{err}"
        );
        let bad = EXAMPLE.replace("copy_to = [\"eu\"]", "copy_to = [\"asia\"]");
        let err = Config::parse(&bad, Path::new("l.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 6") && err.contains("no location named \"asia\""),
            "{err}"
        );
        let bad = EXAMPLE.replace("region = \"us-east-1\"", "regoin = \"us-east-1\"");
        let err = Config::parse(&bad, Path::new("l.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field `regoin`") && err.contains("line 10"),
            "{err}"
        );
    }
}
