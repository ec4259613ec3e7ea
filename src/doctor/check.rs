//! One readiness check's verdict: its status, what it saw (figures), and what to do about it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// A check's outcome. `Skip` (its inputs were not given) never changes the overall result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Skip,
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Skip => "skip",
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }

    /// The gauge value written to metrics: 0 pass, 1 warn, 2 fail (Nagios' order), -1 skip.
    pub fn gauge(self) -> i64 {
        match self {
            Status::Skip => -1,
            Status::Pass => 0,
            Status::Warn => 1,
            Status::Fail => 2,
        }
    }
}

/// Where a check belongs in the report (its group, in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    Configuration,
    Zookeeper,
    Election,
    Coordinators,
    Druid,
    Brokers,
    Metastore,
    Volume,
    Lock,
    Throughput,
    Dr,
}

impl Area {
    pub fn title(self) -> &'static str {
        match self {
            Area::Configuration => "Configuration",
            Area::Zookeeper => "ZooKeeper ensemble",
            Area::Election => "Master election",
            Area::Coordinators => "Coordinators (REST)",
            Area::Druid => "Druid leaders (REST)",
            Area::Brokers => "Druid Brokers",
            Area::Metastore => "Metadata store",
            Area::Volume => "Shared volume",
            Area::Lock => "Lock probe",
            Area::Throughput => "Throughput probe",
            Area::Dr => "Disaster recovery",
        }
    }
}

/// One check. `id` is stable (scripts and alerts key on it), e.g. `zk.quorum`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub id: String,
    pub area: Area,
    pub status: Status,
    /// One line: what was found, with its figures.
    pub summary: String,
    /// What to do about a warn or a fail (or why a check was skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
    /// The figures and facts behind the verdict, for `--json`.
    pub evidence: BTreeMap<String, Value>,
}

impl Check {
    pub fn new(id: &str, area: Area, status: Status, summary: impl Into<String>) -> Check {
        Check {
            id: id.to_string(),
            area,
            status,
            summary: summary.into(),
            remedy: None,
            evidence: BTreeMap::new(),
        }
    }

    pub fn pass(id: &str, area: Area, summary: impl Into<String>) -> Check {
        Check::new(id, area, Status::Pass, summary)
    }

    pub fn warn(id: &str, area: Area, summary: impl Into<String>) -> Check {
        Check::new(id, area, Status::Warn, summary)
    }

    pub fn fail(id: &str, area: Area, summary: impl Into<String>) -> Check {
        Check::new(id, area, Status::Fail, summary)
    }

    /// A check whose inputs were not given: `why` says which flag (or config key) turns it on.
    pub fn skip(id: &str, area: Area, why: impl Into<String>) -> Check {
        let mut c = Check::new(id, area, Status::Skip, "skipped");
        c.remedy = Some(why.into());
        c
    }

    pub fn remedy(mut self, remedy: impl Into<String>) -> Check {
        self.remedy = Some(remedy.into());
        self
    }

    pub fn evidence(mut self, key: &str, value: impl Into<Value>) -> Check {
        self.evidence.insert(key.to_string(), value.into());
        self
    }
}

/// The master ZooKeeper names (decoded from its discovery payload), for the REST cross-check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Master {
    /// The endpoint's address as Dremio registers it (a host name or an IP).
    pub address: String,
    pub user_port: i32,
    pub dremio_version: String,
}

/// The worst status among checks that ran (all skipped, or none: pass).
pub fn overall(checks: &[Check]) -> Status {
    checks
        .iter()
        .map(|c| c.status)
        .filter(|s| *s != Status::Skip)
        .max()
        .unwrap_or(Status::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_status_wins_and_skips_never_count() {
        let a = Area::Configuration;
        assert_eq!(overall(&[]), Status::Pass);
        assert_eq!(overall(&[Check::skip("x", a, "give --y")]), Status::Pass);
        let checks = [
            Check::pass("a", a, "ok"),
            Check::skip("b", a, "give --y"),
            Check::warn("c", a, "hm"),
        ];
        assert_eq!(overall(&checks), Status::Warn);
        let with_fail = [checks[0].clone(), Check::fail("d", a, "no")];
        assert_eq!(overall(&with_fail), Status::Fail);
    }

    #[test]
    fn a_check_serialises_with_its_evidence_and_remedy() {
        let c = Check::fail("zk.size", Area::Zookeeper, "1 server")
            .remedy("run 3 or 5 servers")
            .evidence("servers", 1);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["status"], "fail");
        assert_eq!(v["area"], "zookeeper");
        assert_eq!(v["evidence"]["servers"], 1);
        assert_eq!(v["remedy"], "run 3 or 5 servers");
        assert_eq!((Status::Warn.gauge(), Status::Skip.gauge()), (1, -1));
    }
}
