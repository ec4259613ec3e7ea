//! How a command's settings are chosen: a flag wins, then the config file's cluster, then the
//! built-in default. Each rule is one function here, so that `main` only wires flags to commands.

use std::path::PathBuf;
use std::time::Duration;

use super::{ClusterConfig, Config, ConfigError};

/// The cluster a command is about: `--cluster`, else the file's only cluster, else "dremio". A
/// `--cluster` the file does not name is a cluster with no settings (everything from flags).
pub fn cluster(
    config: &Config,
    flag: Option<String>,
) -> Result<(String, ClusterConfig), ConfigError> {
    Ok(match config.cluster(flag.as_deref())? {
        Some(found) => found,
        None => (
            flag.unwrap_or_else(|| "dremio".into()),
            ClusterConfig::default(),
        ),
    })
}

/// A location from the flag, else the cluster's `to`; `what` names the flag in the error.
pub fn location(
    flag: Option<String>,
    cc: &ClusterConfig,
    what: &str,
) -> Result<String, ConfigError> {
    flag.or_else(|| cc.to.as_ref().map(|t| t.get_ref().clone()))
        .ok_or_else(|| {
            ConfigError::Other(format!(
                "{what} is required (or a `to` location for the cluster in the config file)"
            ))
        })
}

/// The copies' locations: the flags when any is given (they replace the file's list, not add to it).
pub fn copies(flag: Vec<String>, cc: &ClusterConfig) -> Vec<String> {
    if flag.is_empty() {
        cc.copy_to.iter().map(|c| c.get_ref().clone()).collect()
    } else {
        flag
    }
}

/// Where the coordinator's installation is: each of the three from its flag or from the file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Installation {
    pub dremio_home: Option<PathBuf>,
    pub paths_local: Option<PathBuf>,
    pub dremio_version: Option<String>,
}

pub fn installation(flags: Installation, cc: &ClusterConfig) -> Installation {
    Installation {
        dremio_home: flags.dremio_home.or_else(|| cc.dremio_home.clone()),
        paths_local: flags.paths_local.or_else(|| cc.paths_local.clone()),
        dremio_version: flags.dremio_version.or_else(|| cc.dremio_version.clone()),
    }
}

/// The repository format of new backups when neither flag nor config names one: the one
/// constant to change when format 2 becomes the default.
pub const DEFAULT_FORMAT: u8 = 2;

/// The repository format: the flag, else the cluster's `format`, else [`DEFAULT_FORMAT`].
pub fn format(flag: Option<u8>, cc: &ClusterConfig) -> u8 {
    flag.or(cc.format.as_ref().map(|f| *f.get_ref() as u8))
        .unwrap_or(DEFAULT_FORMAT)
}

/// The age recipients of new backups: `--encrypt-to` when given, else the cluster's
/// `recipients` and `recipients_file`; `None` for no encryption.
pub fn recipients(
    flag: &[String],
    cc: &ClusterConfig,
) -> Result<Option<crate::crypto::Recipients>, crate::crypto::CryptoError> {
    use crate::crypto::Recipients;
    if !flag.is_empty() {
        return Recipients::parse(flag, "--encrypt-to").map(Some);
    }
    let listed: Vec<&str> = cc.recipients.iter().map(|r| r.get_ref().as_str()).collect();
    let mut found = if listed.is_empty() {
        None
    } else {
        Some(Recipients::parse(&listed, "recipients")?)
    };
    if let Some(file) = &cc.recipients_file {
        let more = Recipients::from_file(std::path::Path::new(file.get_ref()))?;
        found = Some(match found {
            Some(r) => r.and(more),
            None => more,
        });
    }
    Ok(found.filter(|r| !r.is_empty()))
}

/// zstd level: 3 unless told (zstd's own default: fast, and most of the gain).
pub fn level(flag: Option<i32>, cc: &ClusterConfig) -> i32 {
    flag.or(cc.level).unwrap_or(3)
}

/// Compression threads: every core unless told.
pub fn threads(flag: Option<u32>) -> u32 {
    flag.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1)
    })
}

/// Coordinator URLs for an online backup: the flags when any is given, else the file's.
pub fn dremio_urls(flag: Vec<String>, cc: &ClusterConfig) -> Vec<String> {
    if flag.is_empty() {
        cc.dremio_urls.clone()
    } else {
        flag
    }
}

/// The recovery point objective: the flag, else the file's (checked when the file was loaded).
pub fn rpo(flag: Option<Duration>, cc: &ClusterConfig) -> Result<Option<Duration>, ConfigError> {
    match (flag, &cc.rpo) {
        (Some(r), _) => Ok(Some(r)),
        (None, Some(r)) => crate::units::parse_duration(r.get_ref())
            .map(Some)
            .map_err(ConfigError::Other),
        (None, None) => Ok(None),
    }
}

/// Coordinator URLs for clone: a single value without `://` that names a cluster of the file stands
/// for its `dremio_urls` (and its `ca_file` when none is given); anything else is taken as URLs.
pub fn coordinators(
    config: &Config,
    urls: Vec<String>,
    ca_file: Option<PathBuf>,
) -> Result<(Vec<String>, Option<PathBuf>), ConfigError> {
    match urls.as_slice() {
        [one] if !one.contains("://") => match config.cluster(Some(one))? {
            Some((_, cc)) if !cc.dremio_urls.is_empty() => {
                Ok((cc.dremio_urls.clone(), ca_file.or(cc.ca_file.clone())))
            }
            _ => Err(ConfigError::Other(format!(
                "{one:?} is neither a URL nor a cluster with dremio_urls in the config file"
            ))),
        },
        _ => Ok((urls, ca_file)),
    }
}

/// Whether a clone's cluster value is the name of a `kind = "druid"` cluster of the file.
pub fn names_druid(config: &Config, urls: &[String]) -> bool {
    match urls {
        [one] if !one.contains("://") => matches!(
            config.cluster(Some(one)),
            Ok(Some((_, cc))) if cc.kind.as_deref() == Some("druid")
        ),
        _ => false,
    }
}

/// Druid node URLs for clone: a single value without `://` that names a cluster of the file
/// stands for its `druid_urls` (and its `ca_file` when none is given).
pub fn druid_nodes(
    config: &Config,
    urls: Vec<String>,
    ca_file: Option<PathBuf>,
) -> Result<(Vec<String>, Option<PathBuf>), ConfigError> {
    match urls.as_slice() {
        [one] if !one.contains("://") => match config.cluster(Some(one))? {
            Some((_, cc)) if !cc.druid_urls.is_empty() => {
                Ok((cc.druid_urls.clone(), ca_file.or(cc.ca_file.clone())))
            }
            _ => Err(ConfigError::Other(format!(
                "{one:?} is neither a URL nor a cluster with druid_urls in the config file"
            ))),
        },
        _ => Ok((urls, ca_file)),
    }
}

/// doctor's homes: the flags, else the file's `dremio_homes`, else its `dremio_home`.
pub fn doctor_homes(flag: Vec<PathBuf>, cc: &ClusterConfig) -> Vec<PathBuf> {
    match (flag.is_empty(), cc.dremio_homes.is_empty()) {
        (false, _) => flag,
        (true, false) => cc.dremio_homes.clone(),
        (true, true) => cc.dremio_home.iter().cloned().collect(),
    }
}

/// A location that may be left out: the flag, else the cluster's `to`.
pub fn optional_location(flag: Option<String>, cc: &ClusterConfig) -> Option<String> {
    flag.or_else(|| cc.to.as_ref().map(|t| t.get_ref().clone()))
}

/// The ZooKeeper ensemble: the flags when any is given, else the file's.
pub fn zookeeper(flag: Vec<String>, cc: &ClusterConfig) -> Vec<String> {
    if flag.is_empty() {
        cc.zookeeper.clone()
    } else {
        flag
    }
}

/// Dremio's root in ZooKeeper: the flag, else the file's, else `/dremio` (the default cluster id).
pub fn zk_root(flag: Option<String>, cc: &ClusterConfig) -> String {
    flag.or_else(|| cc.zk_root.clone())
        .unwrap_or_else(|| "/dremio".into())
}

/// The DR secondary's coordinators: the flags when any is given, else the file's.
pub fn secondary_urls(flag: Vec<String>, cc: &ClusterConfig) -> Vec<String> {
    if flag.is_empty() {
        cc.secondary_urls.clone()
    } else {
        flag
    }
}

/// The volume's required throughput in MB/s: the flag, else the file's, else Dremio's 30.
pub fn min_throughput(flag: Option<f64>, cc: &ClusterConfig) -> Result<f64, ConfigError> {
    match flag.or(cc.min_throughput_mbps).unwrap_or(30.0) {
        mb if mb.is_finite() && mb > 0.0 => Ok(mb),
        mb => Err(ConfigError::Other(format!(
            "the required throughput must be a positive number of MB/s, not {mb}"
        ))),
    }
}

/// The Druid metadata store: the flag, else the cluster's `druid_metadata`.
pub fn druid_metadata(flag: Option<String>, cc: &ClusterConfig) -> Option<String> {
    flag.or_else(|| cc.druid_metadata.clone())
}

/// The metadata store's CA file: the flag, else the cluster's `metadata_ca_file`.
pub fn metadata_ca_file(flag: Option<PathBuf>, cc: &ClusterConfig) -> Option<PathBuf> {
    flag.or_else(|| cc.metadata_ca_file.clone())
}

/// The metadata store's password: from the file `metadata_password_file` names, else the variable
/// `metadata_password_env` names (or its `_FILE` twin), else `LIFEBOAT_DRUID_METADATA_PASSWORD`
/// (or `LIFEBOAT_DRUID_METADATA_PASSWORD_FILE`); `None` when none is set (trust or peer auth).
pub fn metadata_password(
    cc: &ClusterConfig,
    env: crate::secrets::Env<'_>,
) -> Result<Option<crate::secrets::Secret>, ConfigError> {
    if let Some(path) = &cc.metadata_password_file {
        return crate::secrets::from_file(path).map(Some).map_err(|e| {
            ConfigError::Other(format!(
                "metadata_password_file: cannot read {}: {e}",
                path.display()
            ))
        });
    }
    let var = cc
        .metadata_password_env
        .as_deref()
        .unwrap_or(crate::druid::metastore::PASSWORD_VAR);
    crate::secrets::from_var_or_file(env, var).map_err(|(path, e)| {
        ConfigError::Other(format!("{var}_FILE: cannot read {}: {e}", path.display()))
    })
}

/// The deep-storage map of a restore: the flags when any is given, else the file's.
pub fn deep_storage_map(flag: Vec<String>, cc: &ClusterConfig) -> Vec<String> {
    if flag.is_empty() {
        cc.deep_storage_map.clone()
    } else {
        flag
    }
}

/// Druid node URLs of a backup or restore: the flags when any is given, else the file's.
pub fn druid_urls(flag: Vec<String>, cc: &ClusterConfig) -> Vec<String> {
    if flag.is_empty() {
        cc.druid_urls.clone()
    } else {
        flag
    }
}

/// Whether a backup is of a Druid cluster: `--druid-metadata` given or the cluster's kind.
pub fn is_druid(flag: &Option<String>, cc: &ClusterConfig) -> bool {
    flag.is_some() || cc.kind.as_deref() == Some("druid")
}

/// A duration key of the file (checked when the file was loaded), `None` when unset.
fn file_duration(value: &Option<toml::Spanned<String>>) -> Result<Option<Duration>, ConfigError> {
    value
        .as_ref()
        .map(|v| crate::units::parse_duration(v.get_ref()).map_err(ConfigError::Other))
        .transpose()
}

/// The recovery time objective of a DR procedure: the cluster's `rto`, else `fallback`'s (a
/// standby's primary).
pub fn rto(
    cc: &ClusterConfig,
    fallback: Option<&ClusterConfig>,
) -> Result<Option<Duration>, ConfigError> {
    match file_duration(&cc.rto)? {
        Some(d) => Ok(Some(d)),
        None => match fallback {
            Some(f) => file_duration(&f.rto),
            None => Ok(None),
        },
    }
}

/// How long a started coordinator may take to serve: the flag, else the file's
/// `start_timeout`, else `default`.
pub fn start_timeout(
    flag: Option<Duration>,
    cc: &ClusterConfig,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match flag {
        Some(d) => Ok(d),
        None => Ok(file_duration(&cc.start_timeout)?.unwrap_or(default)),
    }
}

/// The cluster of the file that is the standby of `primary` (its only one), if any.
pub fn standby_of(config: &Config, primary: &str) -> Option<(String, ClusterConfig)> {
    let mut found = config.clusters.iter().filter(|(_, c)| {
        c.standby_for
            .as_ref()
            .is_some_and(|p| p.get_ref() == primary)
    });
    match (found.next(), found.next()) {
        (Some((name, c)), None) => Some((name.clone(), c.clone())),
        _ => None,
    }
}

/// A drill's settings: the flag, else the cluster's, else its standby's (`standby`), which
/// often is where the drill runs.
pub fn drill_start(
    flag: Option<String>,
    cc: &ClusterConfig,
    standby: Option<&ClusterConfig>,
) -> Option<String> {
    flag.or_else(|| cc.drill_start.clone())
        .or_else(|| standby.and_then(|s| s.drill_start.clone()))
        .filter(|s| !s.trim().is_empty())
}

/// The drill's stop command: the cluster's `drill_stop`, else its standby's.
pub fn drill_stop(cc: &ClusterConfig, standby: Option<&ClusterConfig>) -> Option<String> {
    cc.drill_stop
        .clone()
        .or_else(|| standby.and_then(|s| s.drill_stop.clone()))
        .filter(|s| !s.trim().is_empty())
}

/// The export tree a drill compares with: the cluster's `clone_tree`, else its standby's.
pub fn clone_tree(cc: &ClusterConfig, standby: Option<&ClusterConfig>) -> Option<PathBuf> {
    cc.clone_tree
        .clone()
        .or_else(|| standby.and_then(|s| s.clone_tree.clone()))
}

/// The DREMIO_HOME of a drill (for dremio-admin and `{home}`): the flag, else the cluster's,
/// else its standby's.
pub fn drill_home(
    flag: Option<PathBuf>,
    cc: &ClusterConfig,
    standby: Option<&ClusterConfig>,
) -> Option<PathBuf> {
    flag.or_else(|| cc.dremio_home.clone())
        .or_else(|| standby.and_then(|s| s.dremio_home.clone()))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("t.toml")).unwrap()
    }

    const TWO: &str = r#"
        [clusters.prod]
        paths_local = "/var/lib/dremio"
        to = "s3://b/p"
        copy_to = ["s3://c/p", "/mnt/dr"]
        level = 9
        rpo = "26h"
        dremio_urls = ["https://a:9047", "https://b:9047"]
        ca_file = "/etc/ca.pem"
        [clusters.dr]
        to = "/mnt/dr"
    "#;

    #[test]
    fn the_cluster_is_the_flag_else_the_only_one_else_dremio() {
        let two = config(TWO);
        assert_eq!(cluster(&two, Some("dr".into())).unwrap().0, "dr");
        let err = cluster(&two, None).unwrap_err().to_string();
        assert!(err.contains("several clusters (dr, prod)"), "{err}");
        // A name the file lacks is a cluster with nothing set, not an error.
        let (name, cc) = cluster(&two, Some("other".into())).unwrap();
        assert_eq!((name.as_str(), cc.to.is_none()), ("other", true));

        let one = config("[clusters.only]\nto = \"/b\"\n");
        assert_eq!(cluster(&one, None).unwrap().0, "only");
        assert_eq!(cluster(&Config::default(), None).unwrap().0, "dremio");
    }

    #[test]
    fn a_flag_wins_over_the_file_and_the_file_over_the_default() {
        let (_, prod) = cluster(&config(TWO), Some("prod".into())).unwrap();
        let none = ClusterConfig::default();

        assert_eq!(location(Some("/x".into()), &prod, "--to").unwrap(), "/x");
        assert_eq!(location(None, &prod, "--to").unwrap(), "s3://b/p");
        let err = location(None, &none, "--from").unwrap_err().to_string();
        assert!(err.starts_with("--from is required"), "{err}");

        assert_eq!(copies(vec![], &prod), ["s3://c/p", "/mnt/dr"]);
        assert_eq!(copies(vec!["/y".into()], &prod), ["/y"]);
        assert!(copies(vec![], &none).is_empty());

        assert_eq!(
            (
                level(Some(1), &prod),
                level(None, &prod),
                level(None, &none)
            ),
            (1, 9, 3)
        );
        assert_eq!(threads(Some(7)), 7);
        assert!(threads(None) >= 1);

        assert_eq!(dremio_urls(vec![], &prod).len(), 2);
        assert_eq!(dremio_urls(vec!["http://z".into()], &prod), ["http://z"]);

        let hour = Duration::from_secs(3600);
        assert_eq!(rpo(Some(hour), &prod).unwrap(), Some(hour));
        assert_eq!(rpo(None, &prod).unwrap(), Some(26 * hour));
        assert_eq!(rpo(None, &none).unwrap(), None);
    }

    #[test]
    fn installation_fields_are_chosen_one_by_one() {
        let (_, prod) = cluster(&config(TWO), Some("prod".into())).unwrap();
        let flags = Installation {
            dremio_version: Some("25.2.0".into()),
            ..Default::default()
        };
        let got = installation(flags, &prod);
        assert_eq!(
            got.paths_local.as_deref(),
            Some(Path::new("/var/lib/dremio"))
        );
        assert_eq!(got.dremio_version.as_deref(), Some("25.2.0"));
        assert_eq!(got.dremio_home, None);
    }

    #[test]
    fn doctor_inputs_come_from_the_flags_else_the_file() {
        let file = config(
            r#"
            [clusters.ha]
            dremio_home = "/opt/one"
            dremio_homes = ["/opt/a", "/opt/b"]
            zookeeper = ["z1:2181", "z2:2181", "z3:2181"]
            zk_root = "/prod"
            secondary_urls = ["http://dr:9047"]
            min_throughput_mbps = 120.0
            to = "/backups"
            [clusters.single]
            dremio_home = "/opt/one"
        "#,
        );
        let (_, ha) = cluster(&file, Some("ha".into())).unwrap();
        let (_, single) = cluster(&file, Some("single".into())).unwrap();
        let none = ClusterConfig::default();
        assert_eq!(
            doctor_homes(vec![], &ha),
            [Path::new("/opt/a"), Path::new("/opt/b")]
        );
        assert_eq!(doctor_homes(vec![], &single), [Path::new("/opt/one")]);
        assert_eq!(doctor_homes(vec!["/x".into()], &ha), [Path::new("/x")]);
        assert!(doctor_homes(vec![], &none).is_empty());
        assert_eq!(zookeeper(vec![], &ha).len(), 3);
        assert_eq!(zookeeper(vec!["h:1".into()], &ha), ["h:1"]);
        assert_eq!(
            (zk_root(None, &ha), zk_root(None, &none)),
            ("/prod".into(), "/dremio".into())
        );
        assert_eq!(zk_root(Some("/x".into()), &ha), "/x");
        assert_eq!(secondary_urls(vec![], &ha), ["http://dr:9047"]);
        assert!(secondary_urls(vec![], &none).is_empty());
        assert_eq!(optional_location(None, &ha).as_deref(), Some("/backups"));
        assert_eq!(optional_location(None, &none), None);
        assert_eq!(min_throughput(None, &ha).unwrap(), 120.0);
        assert_eq!(min_throughput(Some(5.0), &ha).unwrap(), 5.0);
        assert_eq!(min_throughput(None, &none).unwrap(), 30.0);
        assert!(min_throughput(Some(0.0), &none).is_err());
        assert!(min_throughput(Some(f64::NAN), &none).is_err());
    }

    #[test]
    fn a_cluster_name_stands_for_its_coordinators() {
        let two = config(TWO);
        let (urls, ca) = coordinators(&two, vec!["prod".into()], None).unwrap();
        assert_eq!(
            (urls.len(), ca.as_deref()),
            (2, Some(Path::new("/etc/ca.pem")))
        );
        // An explicit CA file is kept.
        let (_, ca) = coordinators(&two, vec!["prod".into()], Some("/mine.pem".into())).unwrap();
        assert_eq!(ca.as_deref(), Some(Path::new("/mine.pem")));
        // URLs pass through untouched, several names are URLs too.
        let (urls, _) = coordinators(&two, vec!["http://h:9047".into()], None).unwrap();
        assert_eq!(urls, ["http://h:9047"]);
        // A name without coordinators (or unknown) is refused with what it should be.
        for name in ["dr", "nope"] {
            let err = coordinators(&two, vec![name.into()], None)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("neither a URL nor a cluster with dremio_urls"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_druid_clusters_metadata_settings_and_its_password() {
        let c = config(
            r#"
            [clusters.druid]
            kind = "druid"
            druid_metadata = "postgres://druid@db:5432/druid"
            druid_urls = ["http://c1:8081"]
            metadata_password_env = "DRUID_DB_PW"
            metadata_ca_file = "/etc/db-ca.pem"
            deep_storage = ["s3://seg/druid"]
            deep_storage_map = ["s3://seg/druid=s3://seg-dr/druid"]
            to = "/b"
            "#,
        );
        let (_, cc) = cluster(&c, Some("druid".into())).unwrap();
        assert!(is_druid(&None, &cc));
        assert!(is_druid(&Some("x".into()), &ClusterConfig::default()));
        assert!(!is_druid(&None, &ClusterConfig::default()));
        assert_eq!(
            druid_metadata(None, &cc).as_deref(),
            Some("postgres://druid@db:5432/druid")
        );
        assert_eq!(
            druid_metadata(Some("mysql://u@h/d".into()), &cc).as_deref(),
            Some("mysql://u@h/d")
        );
        assert_eq!(
            metadata_ca_file(None, &cc),
            Some(PathBuf::from("/etc/db-ca.pem"))
        );
        assert_eq!(deep_storage_map(vec![], &cc).len(), 1);
        assert_eq!(druid_urls(vec![], &cc), ["http://c1:8081"]);
        let env = |k: &str| match k {
            "DRUID_DB_PW" => Some("pw".to_string()),
            "LIFEBOAT_DRUID_METADATA_PASSWORD" => Some("default".to_string()),
            _ => None,
        };
        assert_eq!(metadata_password(&cc, &env).unwrap().unwrap().0, "pw");
        let plain = ClusterConfig::default();
        assert_eq!(
            metadata_password(&plain, &env).unwrap().unwrap().0,
            "default"
        );
        assert!(metadata_password(&plain, &|_| None).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let with_file = ClusterConfig {
            metadata_password_file: Some(file),
            ..Default::default()
        };
        assert_eq!(
            metadata_password(&with_file, &env).unwrap().unwrap().0,
            "from-file"
        );
    }

    #[test]
    fn dr_settings_come_from_the_flag_the_cluster_then_its_standby() {
        let c = config(
            r#"
            [clusters.prod]
            to = "/b"
            rto = "15m"
            drill_start = "run {port}"
            [clusters.dr]
            standby_for = "prod"
            dremio_home = "/opt/dremio"
            start = "a"
            stop = "b"
            clone_tree = "/srv/tree"
            drill_stop = "halt"
            start_timeout = "2m"
            "#,
        );
        let (_, prod) = cluster(&c, Some("prod".into())).unwrap();
        let (name, dr) = standby_of(&c, "prod").unwrap();
        assert_eq!(name, "dr");
        assert!(standby_of(&c, "dr").is_none());
        let minutes = |m: u64| Duration::from_secs(60 * m);
        assert_eq!(rto(&prod, None).unwrap(), Some(minutes(15)));
        assert_eq!(rto(&dr, Some(&prod)).unwrap(), Some(minutes(15)));
        assert_eq!(rto(&dr, None).unwrap(), None);
        let ten = minutes(10);
        assert_eq!(start_timeout(None, &dr, ten).unwrap(), minutes(2));
        assert_eq!(start_timeout(None, &prod, ten).unwrap(), ten);
        assert_eq!(
            start_timeout(Some(minutes(1)), &dr, ten).unwrap(),
            minutes(1)
        );
        assert_eq!(
            drill_start(None, &prod, Some(&dr)).as_deref(),
            Some("run {port}")
        );
        assert_eq!(
            drill_start(Some("x".into()), &prod, None).as_deref(),
            Some("x")
        );
        assert_eq!(drill_start(None, &dr, None), None);
        assert_eq!(drill_stop(&prod, Some(&dr)).as_deref(), Some("halt"));
        assert_eq!(
            clone_tree(&prod, Some(&dr)),
            Some(PathBuf::from("/srv/tree"))
        );
        assert_eq!(clone_tree(&prod, None), None);
        assert_eq!(
            drill_home(None, &prod, Some(&dr)),
            Some(PathBuf::from("/opt/dremio"))
        );
        assert_eq!(
            drill_home(Some("/h".into()), &prod, Some(&dr)),
            Some(PathBuf::from("/h"))
        );
    }

    #[test]
    fn a_metadata_url_with_a_password_in_the_file_is_refused_at_load() {
        let err = Config::parse(
            "[clusters.d]\nkind = \"druid\"\ndruid_metadata = \"postgres://u:secret@h/d\"\n",
            Path::new("t.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("clusters.d.druid_metadata"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}
