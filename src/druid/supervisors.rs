//! Supervisors at failover: a DR cluster keeps its supervisors suspended (clone writes them so,
//! and a restored metadata store is loaded so) until it becomes the primary; then they resume.

use percent_encoding::AsciiSet;
use reqwest::Method;
use serde_json::Value;

use super::rest::{Druid, DruidError};

const LIST: &str = "/druid/indexer/v1/supervisor?state=true";

/// Everything but RFC 3986's unreserved characters is escaped in an id sent as a path segment.
const ID: &AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The ids of the suspended supervisors in a `?state=true` list (`[{"id", "state",
/// "suspended", ...}]`): `suspended: true`, or a `state` of `SUSPENDED` from a Druid that does
/// not send the flag.
fn suspended_ids(list: &Value) -> Result<Vec<String>, String> {
    let items = list
        .as_array()
        .ok_or("the supervisor list is not a JSON list")?;
    let mut ids = Vec::new();
    for item in items {
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .ok_or("a supervisor in the list has no string id")?;
        let suspended = match item.get("suspended").and_then(Value::as_bool) {
            Some(flag) => flag,
            None => item.get("state").and_then(Value::as_str) == Some("SUSPENDED"),
        };
        if suspended {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}

/// `POST .../supervisor/<id>/resume`'s path; an id that a URL would resolve as `.` or `..` is
/// refused (the request would reach another resource).
fn resume_path(id: &str) -> Result<String, String> {
    if id.is_empty() || id == "." || id == ".." {
        return Err(format!(
            "supervisor id {id:?} cannot be resumed over REST: resume it by hand"
        ));
    }
    let segment = percent_encoding::utf8_percent_encode(id, ID);
    Ok(format!("/druid/indexer/v1/supervisor/{segment}/resume"))
}

/// Resumes every suspended supervisor of the cluster (through its Overlord leader) and returns
/// the ids resumed, in the list's order. One that is running by the time it is resumed (another
/// operator, or a repeat of a request whose answer was lost) counts as resumed; any other
/// refusal stops here with an error naming it (those before it stay resumed).
pub async fn resume_suspended(druid: &Druid) -> Result<Vec<String>, DruidError> {
    let list = druid.get(LIST).await?;
    let api = |url: &str, message: String| DruidError::Api {
        url: url.to_string(),
        message,
    };
    let ids = suspended_ids(&list).map_err(|e| api(LIST, e))?;
    let mut resumed = Vec::with_capacity(ids.len());
    for id in ids {
        let path = resume_path(&id).map_err(|e| api(LIST, e))?;
        let answer = druid.call_idempotent(Method::POST, &path, None).await?;
        let already = answer.status == 400 && answer.error().contains("already running");
        if !(answer.ok() || already) {
            return Err(api(
                &path,
                format!(
                    "{} (resumed before it: {})",
                    answer.error(),
                    if resumed.is_empty() {
                        "none".to_string()
                    } else {
                        resumed.join(", ")
                    }
                ),
            ));
        }
        resumed.push(id);
    }
    Ok(resumed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_suspended_ones_are_found_by_flag_or_state() {
        let list = json!([
            {"id": "wiki", "state": "SUSPENDED", "suspended": true},
            {"id": "clicks", "state": "RUNNING", "suspended": false},
            {"id": "old", "state": "SUSPENDED"},
            {"id": "odd", "state": "SUSPENDED", "suspended": false},
            {"id": "new", "state": "PENDING"},
        ]);
        assert_eq!(suspended_ids(&list).unwrap(), ["wiki", "old"]);
        assert_eq!(suspended_ids(&json!([])).unwrap(), Vec::<String>::new());
        assert!(suspended_ids(&json!({"id": "x"})).is_err());
        assert!(suspended_ids(&json!([{"id": 7, "suspended": true}])).is_err());
    }

    #[test]
    fn ids_are_escaped_as_one_path_segment() {
        assert_eq!(
            resume_path("wiki_edits-2").unwrap(),
            "/druid/indexer/v1/supervisor/wiki_edits-2/resume"
        );
        assert_eq!(
            resume_path("a/b?c#d e%").unwrap(),
            "/druid/indexer/v1/supervisor/a%2Fb%3Fc%23d%20e%25/resume"
        );
        for bad in ["", ".", ".."] {
            assert!(resume_path(bad).is_err(), "{bad:?}");
        }
        // Three dots are a name, not a dot segment.
        assert_eq!(
            resume_path("...").unwrap(),
            "/druid/indexer/v1/supervisor/.../resume"
        );
    }
}
