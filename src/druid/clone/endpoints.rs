//! The endpoints of Druid that lifeboat reads and writes, names as their path segments, and
//! one request whose failure is an item's error.

use reqwest::Method;
use serde_json::Value;

use crate::druid::rest::{Answer, Druid};

pub const RULES: &str = "/druid/coordinator/v1/rules";
pub const DYNAMIC: &str = "/druid/coordinator/v1/config";
pub const WORKER: &str = "/druid/indexer/v1/worker";
pub const LOOKUPS: &str = "/druid/coordinator/v1/lookups/config";
pub const COMPACTION: &str = "/druid/coordinator/v1/config/compaction";
pub const COMPACTION_CLUSTER: &str = "/druid/indexer/v1/compaction/config/cluster";
pub const SUPERVISORS: &str = "/druid/indexer/v1/supervisor";
pub const SECURITY: &str = "/druid-ext/basic-security";

/// Whether sending a write twice leaves what sending it once does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Rules, configs, a compaction config, a supervisor submitted unless unmodified.
    Safe,
    /// Creations refused the second time, lookups refused at the same version.
    Once,
}

/// Sends one request; anything but a 2xx is the item's error.
pub async fn send(
    d: &Druid,
    method: Method,
    path: &str,
    body: Option<&Value>,
    repeat: Repeat,
) -> Result<Answer, String> {
    let a = match repeat {
        Repeat::Safe => d.call_idempotent(method, path, body).await,
        Repeat::Once => d.call(method, path, body).await,
    }
    .map_err(|e| e.to_string())?;
    if a.ok() { Ok(a) } else { Err(a.error()) }
}

/// What a path segment cannot hold as it is (RFC 3986's delimiters and unsafe characters);
/// everything else is sent as it is, as Druid's own clients do.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A path segment, percent-encoded (names may hold `/`, `?`, `#`).
pub fn segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, SEGMENT).to_string()
}

/// A name as a path segment to write to, refusing the names that URLs resolve as `.` and `..`
/// (even escaped): the write would reach another resource.
pub fn checked(name: &str) -> Result<String, String> {
    let dots = name.to_ascii_lowercase().replace("%2e", ".");
    if name.is_empty() || dots == "." || dots == ".." {
        return Err(format!("{name:?} cannot be written to over REST"));
    }
    Ok(segment(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_dot_segments_refused() {
        assert_eq!(segment("wiki_edits-2"), "wiki_edits-2");
        assert_eq!(segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
        for bad in ["", ".", "..", "%2e", ".%2E", "%2e%2e"] {
            assert!(checked(bad).is_err(), "{bad:?}");
        }
        assert_eq!(checked("...").unwrap(), "...");
        assert_eq!(checked("%").unwrap(), "%25");
    }
}
