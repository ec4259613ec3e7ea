//! The configuration of each coordinator's `DREMIO_HOME`: `conf/dremio.conf` (with Dremio's
//! defaults) and the version of its jars, judged for HA.

use std::path::{Path, PathBuf};

use super::check::{Area, Check};
use crate::dremio::conf::{self, Conf};
use crate::dremio::install::Installation;

const A: Area = Area::Configuration;

/// Dremio's defaults for the keys judged here (dremio-reference.conf).
const MASTER: (&str, bool) = ("services.coordinator.master.enabled", true);
const COORDINATOR: (&str, bool) = ("services.coordinator.enabled", true);
const EMBEDDED_ZK: (&str, bool) = (
    "services.coordinator.master.embedded-zookeeper.enabled",
    true,
);
const DEFAULT_LOCAL: &str = "/tmp/dremio";

/// What one home says.
#[derive(Debug, Clone)]
pub struct Home {
    pub dir: PathBuf,
    conf: Conf,
    pub paths_local: PathBuf,
    /// `None`: the file leaves `paths.local` at its default.
    paths_local_set: bool,
    /// The `zookeeper` connect string, when set.
    pub zookeeper: Option<String>,
    pub version: Option<String>,
}

impl Home {
    /// Reads a home; the error says what is wrong with it.
    pub fn read(dir: &Path) -> Result<Home, String> {
        let inst = Installation::discover(Some(dir), None, None).map_err(|e| e.to_string())?;
        let path = dir.join("conf").join("dremio.conf");
        let text = crate::limits::read_capped_string(&path, conf::MAX_CONF_BYTES, "a dremio.conf")
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let conf = Conf::parse(&text)
            .map_err(|e| format!("{}, line {}: {}", path.display(), e.line, e.message))?;
        let mut home = Home {
            dir: dir.to_path_buf(),
            paths_local_set: conf.contains("paths.local"),
            paths_local: inst.paths_local,
            zookeeper: None,
            version: inst.version.map(|v| v.to_string()),
            conf,
        };
        home.zookeeper = home.text("zookeeper").filter(|z| !z.trim().is_empty());
        Ok(home)
    }

    fn text(&self, key: &str) -> Option<String> {
        let home = self.dir.to_string_lossy().into_owned();
        let env = |name: &str| match name {
            "DREMIO_HOME" => Some(home.clone()),
            _ => std::env::var(name).ok(),
        };
        self.conf.resolve(key, &env).ok().flatten()
    }

    fn flag(&self, (key, default): (&str, bool)) -> bool {
        self.text(key).map_or(default, |v| v.trim() == "true")
    }

    fn name(&self) -> String {
        self.dir.display().to_string()
    }
}

/// The configuration checks of every home given, and the homes that could be read.
pub fn configuration(dirs: &[PathBuf]) -> (Vec<Check>, Vec<Home>) {
    if dirs.is_empty() {
        let why = "give --dremio-home (once per coordinator) or dremio_homes in the config file";
        let ids = [
            "conf.read",
            "conf.master",
            "conf.embedded_zk",
            "conf.zookeeper",
            "conf.paths_local",
            "conf.agree",
            "conf.version",
        ];
        return (
            ids.iter().map(|id| Check::skip(id, A, why)).collect(),
            Vec::new(),
        );
    }
    let mut homes = Vec::new();
    let mut unread = Vec::new();
    for d in dirs {
        match Home::read(d) {
            Ok(h) => homes.push(h),
            Err(e) => unread.push(e),
        }
    }
    let read = if unread.is_empty() {
        Check::pass("conf.read", A, format!("read {} home(s)", homes.len()))
    } else {
        Check::fail("conf.read", A, unread.join("; ")).remedy(
            "give each coordinator's DREMIO_HOME, with a readable conf/dremio.conf and jars/",
        )
    };
    let mut checks = vec![read];
    if !homes.is_empty() {
        checks.extend([
            master(&homes),
            embedded_zk(&homes),
            zookeeper(&homes),
            paths_local(&homes),
            agree(&homes),
            versions(&homes),
        ]);
    }
    (checks, homes)
}

/// The homes where `bad` holds, by name.
fn which(homes: &[Home], bad: impl Fn(&Home) -> bool) -> Vec<String> {
    homes.iter().filter(|h| bad(h)).map(Home::name).collect()
}

fn master(homes: &[Home]) -> Check {
    let off = which(homes, |h| !(h.flag(MASTER) && h.flag(COORDINATOR)));
    if off.is_empty() {
        Check::pass(
            "conf.master",
            A,
            format!("the master role is enabled in {} home(s)", homes.len()),
        )
    } else {
        Check::fail("conf.master", A, format!("the master role is off in {}", off.join(", ")))
            .remedy("set services.coordinator.enabled and services.coordinator.master.enabled to true on every master candidate")
            .evidence("homes", off)
    }
}

fn embedded_zk(homes: &[Home]) -> Check {
    let on = which(homes, |h| h.flag(EMBEDDED_ZK));
    if on.is_empty() {
        Check::pass("conf.embedded_zk", A, "embedded ZooKeeper is disabled")
    } else {
        Check::fail(
            "conf.embedded_zk",
            A,
            format!("embedded ZooKeeper is enabled (Dremio's default) in {}", on.join(", ")),
        )
        .remedy("set services.coordinator.master.embedded-zookeeper.enabled: false and point zookeeper at an external quorum")
        .evidence("homes", on)
    }
}

fn zookeeper(homes: &[Home]) -> Check {
    let unset = which(homes, |h| h.zookeeper.is_none());
    let single = which(homes, |h| {
        h.zookeeper.as_deref().is_some_and(|z| servers(z) < 2)
    });
    if !unset.is_empty() {
        Check::fail(
            "conf.zookeeper",
            A,
            format!(
                "zookeeper is not set in {} (Dremio then uses localhost:2181)",
                unset.join(", ")
            ),
        )
        .remedy("set zookeeper: \"zk1:2181,zk2:2181,zk3:2181\" in dremio.conf")
    } else if !single.is_empty() {
        Check::warn(
            "conf.zookeeper",
            A,
            format!("zookeeper names a single server in {}", single.join(", ")),
        )
        .remedy("list every server of the ensemble (3 or 5) in zookeeper")
    } else {
        let z = homes[0].zookeeper.clone().unwrap_or_default();
        Check::pass(
            "conf.zookeeper",
            A,
            format!("zookeeper lists {} servers: {z}", servers(&z)),
        )
    }
}

/// The servers of a connect string `h1:2181,h2:2181/chroot`.
fn servers(connect: &str) -> usize {
    let hosts = connect.split('/').next().unwrap_or("");
    hosts.split(',').filter(|s| !s.trim().is_empty()).count()
}

fn paths_local(homes: &[Home]) -> Check {
    let defaulted = which(homes, |h| !h.paths_local_set);
    let tmp = which(homes, |h| h.paths_local.starts_with("/tmp"));
    let remedy = "set paths.local to a folder on the shared NFS volume (not under /tmp)";
    if !defaulted.is_empty() {
        Check::fail(
            "conf.paths_local",
            A,
            format!(
                "paths.local is not set in {} (default {DEFAULT_LOCAL})",
                defaulted.join(", ")
            ),
        )
        .remedy(remedy)
    } else if !tmp.is_empty() {
        Check::fail(
            "conf.paths_local",
            A,
            format!("paths.local is under /tmp in {}", tmp.join(", ")),
        )
        .remedy(remedy)
    } else {
        Check::pass(
            "conf.paths_local",
            A,
            format!("paths.local is {}", homes[0].paths_local.display()),
        )
    }
}

fn agree(homes: &[Home]) -> Check {
    if homes.len() < 2 {
        return Check::skip(
            "conf.agree",
            A,
            "give --dremio-home for every master candidate to compare them",
        );
    }
    let first = &homes[0];
    let locals = which(homes, |h| h.paths_local != first.paths_local);
    let zks = which(homes, |h| h.zookeeper != first.zookeeper);
    if locals.is_empty() && zks.is_empty() {
        return Check::pass(
            "conf.agree",
            A,
            format!("{} homes share paths.local and zookeeper", homes.len()),
        );
    }
    let mut what = Vec::new();
    if !locals.is_empty() {
        what.push(format!(
            "paths.local differs from {}'s in {}",
            first.name(),
            locals.join(", ")
        ));
    }
    if !zks.is_empty() {
        what.push(format!(
            "zookeeper differs from {}'s in {}",
            first.name(),
            zks.join(", ")
        ));
    }
    Check::fail("conf.agree", A, what.join("; "))
        .remedy("every master candidate must use the same paths.local (on the shared volume) and the same zookeeper")
}

fn versions(homes: &[Home]) -> Check {
    let unknown = which(homes, |h| h.version.is_none());
    let mut found: Vec<&str> = homes.iter().filter_map(|h| h.version.as_deref()).collect();
    found.sort_unstable();
    found.dedup();
    let c = if found.len() > 1 {
        let each: Vec<String> = homes
            .iter()
            .map(|h| format!("{} {}", h.name(), h.version.as_deref().unwrap_or("?")))
            .collect();
        Check::fail(
            "conf.version",
            A,
            format!("versions differ: {}", each.join(", ")),
        )
        .remedy("run the same Dremio version on every coordinator")
    } else if !unknown.is_empty() {
        Check::warn(
            "conf.version",
            A,
            format!(
                "no Dremio version found in the jars of {}",
                unknown.join(", ")
            ),
        )
        .remedy("give the real DREMIO_HOME (jars/ holds dremio-dac-backend-<version>.jar)")
    } else {
        Check::pass(
            "conf.version",
            A,
            format!("Dremio {} in every home", found[0]),
        )
    };
    c.evidence("versions", found)
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    fn home(root: &Path, name: &str, conf: &str, version: &str) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("conf")).unwrap();
        std::fs::create_dir_all(dir.join("jars")).unwrap();
        std::fs::write(dir.join("conf/dremio.conf"), conf).unwrap();
        std::fs::write(
            dir.join(format!("jars/dremio-dac-backend-{version}.jar")),
            b"",
        )
        .unwrap();
        dir
    }

    const GOOD: &str = "paths.local: \"/mnt/dremio\"\nzookeeper: \"z1:2181,z2:2181,z3:2181\"\nservices.coordinator.master.embedded-zookeeper.enabled: false\n";

    fn status(checks: &[Check], id: &str) -> Status {
        checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{id}"))
            .status
    }

    #[test]
    fn two_good_homes_pass_everything() {
        let t = tempfile::tempdir().unwrap();
        let dirs = [
            home(t.path(), "a", GOOD, "25.2.0"),
            home(t.path(), "b", GOOD, "25.2.0"),
        ];
        let (checks, homes) = configuration(&dirs);
        assert_eq!(homes.len(), 2);
        assert_eq!(checks.len(), 7);
        assert!(
            checks.iter().all(|c| c.status == Status::Pass),
            "{checks:#?}"
        );
        assert_eq!(
            homes[0].zookeeper.as_deref(),
            Some("z1:2181,z2:2181,z3:2181")
        );
    }

    #[test]
    fn defaults_and_disagreements_fail() {
        let t = tempfile::tempdir().unwrap();
        // Dremio's defaults: embedded ZooKeeper on, paths.local /tmp/dremio, no zookeeper.
        let bare = home(
            t.path(),
            "bare",
            "services.executor.enabled: false\n",
            "25.2.0",
        );
        let (checks, _) = configuration(std::slice::from_ref(&bare));
        for id in ["conf.embedded_zk", "conf.zookeeper", "conf.paths_local"] {
            assert_eq!(status(&checks, id), Status::Fail, "{id}");
        }
        assert_eq!(status(&checks, "conf.master"), Status::Pass);
        assert_eq!(status(&checks, "conf.agree"), Status::Skip);

        let tmp = GOOD.replace("/mnt/dremio", "/tmp/dremio-ha");
        let dirs = [
            home(t.path(), "a", GOOD, "25.2.0"),
            home(t.path(), "b", &tmp, "25.1.0"),
        ];
        let (checks, _) = configuration(&dirs);
        for id in ["conf.paths_local", "conf.agree", "conf.version"] {
            assert_eq!(status(&checks, id), Status::Fail, "{id}");
        }
        let off = format!("{GOOD}services.coordinator.master.enabled: false\n");
        let (checks, _) = configuration(&[home(t.path(), "c", &off, "25.2.0")]);
        assert_eq!(status(&checks, "conf.master"), Status::Fail);
    }

    #[test]
    fn no_home_skips_and_an_unreadable_one_fails() {
        let (checks, _) = configuration(&[]);
        assert!(checks.iter().all(|c| c.status == Status::Skip));
        let (checks, homes) = configuration(&[PathBuf::from("/nonexistent/home")]);
        assert_eq!((checks.len(), homes.len()), (1, 0));
        assert_eq!(checks[0].status, Status::Fail);
        assert_eq!(servers("a:1,b:1/chroot"), 2);
    }
}
