//! The coordinators over REST: exactly one answers `server_status` OK, the standbys refuse
//! connections (they do not listen until elected) or answer 503, the active one is the master
//! ZooKeeper names, and the versions agree.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use super::check::{Area, Check, Master};
use crate::dremio::rest::{self, Coordinator, Credentials};

const A: Area = Area::Coordinators;

/// What one URL answered to `GET /apiv2/server_status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Active,
    /// Not listening: a standby (or a host that is down).
    Refused,
    /// 503: a master that is starting or failed.
    Unavailable,
    /// Anything else, said in words.
    Other(String),
}

impl Answer {
    fn word(&self) -> String {
        match self {
            Answer::Active => "active (200 OK)".into(),
            Answer::Refused => "refuses connections (standby)".into(),
            Answer::Unavailable => "503 (master starting or failed)".into(),
            Answer::Other(s) => s.clone(),
        }
    }
}

/// Asks every URL once (no retries: a standby's refusal is its normal answer).
pub async fn survey(
    client: &reqwest::Client,
    urls: &[String],
    timeout: Duration,
) -> Vec<(String, Answer)> {
    let mut out = Vec::new();
    for url in urls {
        let base = url.trim_end_matches('/').to_string();
        let answer = match client
            .get(format!("{base}/apiv2/server_status"))
            .timeout(timeout)
            .send()
            .await
        {
            Ok(r) if r.status().as_u16() == 503 => Answer::Unavailable,
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                match (status, body.trim()) {
                    (200, "OK") => Answer::Active,
                    (s, b) => Answer::Other(format!(
                        "HTTP {s} {}",
                        b.chars().take(80).collect::<String>()
                    )),
                }
            }
            Err(e) if e.is_connect() => Answer::Refused,
            Err(e) if e.is_timeout() => Answer::Other("timed out".into()),
            Err(e) => Answer::Other(e.to_string()),
        };
        out.push((base, answer));
    }
    out
}

/// `coord.active` and `coord.standbys`.
pub fn roles(answers: &[(String, Answer)]) -> Vec<Check> {
    let each: Vec<String> = answers
        .iter()
        .map(|(u, a)| format!("{u} {}", a.word()))
        .collect();
    let active: Vec<&str> = answers
        .iter()
        .filter(|(_, a)| *a == Answer::Active)
        .map(|(u, _)| u.as_str())
        .collect();
    let one = match active.len() {
        1 => Check::pass(
            "coord.active",
            A,
            format!("{} is the active coordinator", active[0]),
        ),
        0 => Check::fail(
            "coord.active",
            A,
            format!(
                "no coordinator answers server_status OK: {}",
                each.join("; ")
            ),
        )
        .remedy("start a master coordinator; check its server.log"),
        n => Check::fail(
            "coord.active",
            A,
            format!("{n} coordinators answer OK at once: {}", active.join(", ")),
        )
        .remedy(
            "two active masters share one KV store: stop all but one, then check ZooKeeper and \
             the volume's locks",
        ),
    };
    let others: Vec<&(String, Answer)> = answers
        .iter()
        .filter(|(_, a)| *a != Answer::Active)
        .collect();
    let odd: Vec<String> = others
        .iter()
        .filter(|(_, a)| matches!(a, Answer::Other(_)))
        .map(|(u, a)| format!("{u} {}", a.word()))
        .collect();
    let standbys = if !odd.is_empty() {
        Check::warn(
            "coord.standbys",
            A,
            format!("unexpected answers: {}", odd.join("; ")),
        )
        .remedy("a standby refuses connections until elected; check what listens there")
    } else if others.is_empty() && active.len() == 1 {
        Check::warn(
            "coord.standbys",
            A,
            "one coordinator URL given: no standby to take over",
        )
        .remedy("run a second master coordinator and give its URL too")
    } else {
        Check::pass(
            "coord.standbys",
            A,
            format!(
                "{} standby URL(s) refuse connections or answer 503",
                others.len()
            ),
        )
    };
    let evidence: serde_json::Map<String, serde_json::Value> = answers
        .iter()
        .map(|(u, a)| (u.clone(), a.word().into()))
        .collect();
    vec![
        one.evidence("answers", evidence.clone()),
        standbys.evidence("answers", evidence),
    ]
}

/// `coord.master`: the active URL's host is the master ZooKeeper names.
pub async fn is_master(answers: &[(String, Answer)], master: Option<&Master>) -> Check {
    let Some(m) = master else {
        return Check::skip(
            "coord.master",
            A,
            "give --zookeeper to compare with the master ZooKeeper names",
        );
    };
    let Some((url, _)) = answers.iter().find(|(_, a)| *a == Answer::Active) else {
        return Check::skip("coord.master", A, "no active coordinator to compare");
    };
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()));
    let host = host.unwrap_or_default();
    let same = host.eq_ignore_ascii_case(&m.address)
        || !addresses(&host)
            .await
            .is_disjoint(&addresses(&m.address).await);
    let c = if same {
        Check::pass(
            "coord.master",
            A,
            format!("{url} is the master ZooKeeper names ({})", m.address),
        )
    } else {
        let said = format!(
            "{url} answers as active, but ZooKeeper's master is {}",
            m.address
        );
        Check::fail("coord.master", A, said).remedy(
            "the URLs given are not this cluster's, or two masters run: compare --dremio-url \
             with ZooKeeper's master",
        )
    };
    c.evidence("master", m.address.as_str())
        .evidence("active", url.as_str())
}

async fn addresses(host: &str) -> BTreeSet<IpAddr> {
    match tokio::net::lookup_host((host, 0)).await {
        Ok(found) => found.map(|a| a.ip()).collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// The active coordinator's version over REST (`GET /api/v3/info` needs a login).
pub async fn rest_version(
    client: reqwest::Client,
    base: &str,
    creds: &Credentials,
) -> Result<String, String> {
    let notify: rest::Notify = std::sync::Arc::new(|_: &str| {});
    let coord = Coordinator::login(client, base, creds, notify)
        .await
        .map_err(|e| e.to_string())?;
    coord
        .version()
        .await
        .map(|(v, _)| v.to_string())
        .map_err(|e| e.to_string())
}

/// `coord.version`: the active coordinator's version, the homes' and ZooKeeper's master's agree.
/// `rest` is `None` without credentials.
pub fn versions(
    rest: Option<Result<String, String>>,
    homes: &[String],
    master: Option<&Master>,
) -> Check {
    let rest = match rest {
        None => {
            return Check::skip(
                "coord.version",
                A,
                "set LIFEBOAT_DREMIO_USER and LIFEBOAT_DREMIO_PASSWORD (or LIFEBOAT_DREMIO_TOKEN) to read the version",
            );
        }
        Some(Err(e)) => {
            return Check::warn(
                "coord.version",
                A,
                format!("cannot read the active coordinator's version: {e}"),
            )
            .remedy(
                "check the credentials in LIFEBOAT_DREMIO_USER/PASSWORD or LIFEBOAT_DREMIO_TOKEN",
            );
        }
        Some(Ok(v)) => v,
    };
    let release = |v: &str| v.split('-').next().unwrap_or(v).to_string();
    let mut seen = vec![("REST".to_string(), rest.clone())];
    seen.extend(homes.iter().map(|v| ("home".to_string(), v.clone())));
    if let Some(m) = master.filter(|m| !m.dremio_version.is_empty()) {
        seen.push(("ZooKeeper".into(), m.dremio_version.clone()));
    }
    let differ = seen.iter().any(|(_, v)| release(v) != release(&rest));
    let c = if differ {
        let each: Vec<String> = seen.iter().map(|(w, v)| format!("{w} {v}")).collect();
        Check::fail(
            "coord.version",
            A,
            format!("versions differ: {}", each.join(", ")),
        )
        .remedy("run one Dremio version on every coordinator")
    } else {
        let mut sources = Vec::new();
        if !homes.is_empty() {
            sources.push(format!("the jars of {} home(s)", homes.len()));
        }
        if seen.iter().any(|(w, _)| w == "ZooKeeper") {
            sources.push("ZooKeeper's master".to_string());
        }
        let agree = if sources.is_empty() {
            String::new()
        } else {
            format!(", as {} say", sources.join(" and "))
        };
        Check::pass(
            "coord.version",
            A,
            format!("the active coordinator runs Dremio {rest}{agree}"),
        )
    };
    c.evidence("rest", rest.as_str())
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    fn a(pairs: &[(&str, Answer)]) -> Vec<(String, Answer)> {
        pairs
            .iter()
            .map(|(u, a)| (u.to_string(), a.clone()))
            .collect()
    }

    #[test]
    fn one_active_and_refusing_standbys_pass() {
        let c = roles(&a(&[
            ("http://a", Answer::Active),
            ("http://b", Answer::Refused),
            ("http://c", Answer::Unavailable),
        ]));
        assert_eq!((c[0].status, c[1].status), (Status::Pass, Status::Pass));
        let c = roles(&a(&[("http://a", Answer::Active)]));
        assert_eq!(c[1].status, Status::Warn);
        let c = roles(&a(&[
            ("http://a", Answer::Active),
            ("http://b", Answer::Active),
        ]));
        assert_eq!(c[0].status, Status::Fail);
        let c = roles(&a(&[
            ("http://a", Answer::Refused),
            ("http://b", Answer::Other("HTTP 404".into())),
        ]));
        assert_eq!((c[0].status, c[1].status), (Status::Fail, Status::Warn));
    }

    #[tokio::test]
    async fn the_active_one_must_be_zookeepers_master() {
        let ans = a(&[("http://127.0.0.1:9047", Answer::Active)]);
        let m = |address: &str| Master {
            address: address.into(),
            user_port: 31010,
            dremio_version: "25.2.0".into(),
        };
        assert_eq!(is_master(&ans, None).await.status, Status::Skip);
        assert_eq!(
            is_master(&ans, Some(&m("127.0.0.1"))).await.status,
            Status::Pass
        );
        assert_eq!(
            is_master(&ans, Some(&m("localhost"))).await.status,
            Status::Pass
        );
        assert_eq!(
            is_master(&ans, Some(&m("10.9.9.9"))).await.status,
            Status::Fail
        );
    }

    #[test]
    fn versions_agree_on_the_release() {
        let m = Master {
            address: "a".into(),
            user_port: 1,
            dremio_version: "25.2.0-202410241428100111-a963b970".into(),
        };
        let homes = ["25.2.0".to_string()];
        assert_eq!(
            versions(Some(Ok("25.2.0".into())), &homes, Some(&m)).status,
            Status::Pass
        );
        assert_eq!(
            versions(Some(Ok("25.1.0".into())), &homes, None).status,
            Status::Fail
        );
        assert_eq!(versions(None, &homes, None).status, Status::Skip);
        assert_eq!(
            versions(Some(Err("401".into())), &homes, None).status,
            Status::Warn
        );
    }
}
