//! Dremio versions: parsed from jar names (`dremio-dac-backend-25.2.0-<build>-<commit>.jar`) or flags,
//! and the restore rule (same major.minor.patch, and the same build where both are known).

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A Dremio release, e.g. 25.2.0 with build `202410241428100111-a963b970`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DremioVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// Build stamp and commit as the jar names carry them, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
}

impl DremioVersion {
    /// Parses "25.2.0", "25.2.0-202410241428100111-a963b970" or "25.2" (patch 0).
    pub fn parse(text: &str) -> Option<DremioVersion> {
        let text = text.trim();
        let (numbers, build) = match text.split_once('-') {
            Some((n, b)) if !b.is_empty() => (n, Some(b.to_string())),
            Some(_) => return None,
            None => (text, None),
        };
        let mut it = numbers.split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let patch = match it.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        if it.next().is_some() {
            return None;
        }
        Some(DremioVersion {
            major,
            minor,
            patch,
            build,
        })
    }

    /// The release number without the build.
    pub fn release(&self) -> String {
        format!("{}.{}.{}", self.major, self.minor, self.patch)
    }

    /// Dremio's rule: restore only onto the version that made the backup.
    pub fn restorable_onto(&self, target: &DremioVersion) -> bool {
        let same_release =
            (self.major, self.minor, self.patch) == (target.major, target.minor, target.patch);
        let same_build = match (&self.build, &target.build) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        same_release && same_build
    }
}

impl fmt::Display for DremioVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.release())?;
        if let Some(build) = &self.build {
            write!(f, "-{build}")?;
        }
        Ok(())
    }
}

/// What the jar names of an installation say: its version and, when recognisable, its edition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub version: DremioVersion,
    pub edition: Option<String>,
}

/// Reads `<home>/jars/` and finds the version from Dremio's own jars (dac-backend first).
pub fn installed_version(home: &Path) -> std::io::Result<Option<Installed>> {
    let dir = home.join("jars");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        if let Some(name) = entry?.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(version_from_jar_names(&names))
}

/// Picks the version from jar names; `dremio-dac-backend` is authoritative, other `dremio-*` jars are a fallback.
pub fn version_from_jar_names(names: &[String]) -> Option<Installed> {
    let edition = names
        .iter()
        .any(|n| n.starts_with("dremio-ee-") && n.ends_with(".jar"))
        .then(|| "enterprise".to_string());
    let from = |prefix: &str| {
        names.iter().find_map(|n| {
            let rest = n.strip_prefix(prefix)?.strip_suffix(".jar")?;
            DremioVersion::parse(rest)
        })
    };
    let version = from("dremio-dac-backend-").or_else(|| {
        names
            .iter()
            .filter(|n| n.starts_with("dremio-"))
            .find_map(|n| {
                let stem = n.strip_suffix(".jar")?;
                // dremio-<module words>-<version>[-build]: the version starts at the first digit after a '-'.
                let at = stem
                    .char_indices()
                    .find(|&(i, c)| c.is_ascii_digit() && stem[..i].ends_with('-'))?
                    .0;
                DremioVersion::parse(&stem[at..])
            })
    })?;
    Some(Installed { version, edition })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_and_build() {
        let v = DremioVersion::parse("25.2.0-202410241428100111-a963b970").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (25, 2, 0));
        assert_eq!(v.build.as_deref(), Some("202410241428100111-a963b970"));
        assert_eq!(v.to_string(), "25.2.0-202410241428100111-a963b970");
        assert_eq!(DremioVersion::parse("24.3").unwrap().release(), "24.3.0");
        assert!(DremioVersion::parse("25.x.0").is_none());
        assert!(DremioVersion::parse("25.2.0.1").is_none());
        assert!(DremioVersion::parse("").is_none());
    }

    #[test]
    fn restore_rule_needs_same_release_and_same_known_build() {
        let a = DremioVersion::parse("25.2.0-202410241428100111-a963b970").unwrap();
        assert!(a.restorable_onto(&DremioVersion::parse("25.2.0").unwrap()));
        assert!(a.restorable_onto(&a));
        assert!(
            !a.restorable_onto(
                &DremioVersion::parse("25.2.0-202411010000000000-bbbbbbbb").unwrap()
            )
        );
        assert!(!a.restorable_onto(&DremioVersion::parse("25.1.0").unwrap()));
        assert!(!a.restorable_onto(&DremioVersion::parse("26.2.0").unwrap()));
    }

    #[test]
    fn version_comes_from_dac_backend_jar_then_other_dremio_jars() {
        let names: Vec<String> = [
            "guava-33.0.jar",
            "dremio-common-25.1.0-x.jar",
            "dremio-dac-backend-25.2.0-2024-abc.jar",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let found = version_from_jar_names(&names).unwrap();
        assert_eq!(found.version.to_string(), "25.2.0-2024-abc");
        assert_eq!(found.edition, None);
        let names: Vec<String> = [
            "dremio-ee-thing-24.3.2-77.jar",
            "dremio-sabot-kernel-24.3.2-77.jar",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let found = version_from_jar_names(&names).unwrap();
        assert_eq!(found.version.to_string(), "24.3.2-77");
        assert_eq!(found.edition.as_deref(), Some("enterprise"));
        assert!(version_from_jar_names(&["guava-33.0.jar".to_string()]).is_none());
    }
}
