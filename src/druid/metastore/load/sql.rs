//! The pure pieces of the load: Druid's timestamp text and a supervisor's payload read and
//! suspended. (Identifiers and the CREATE TABLE of a table without known DDL are `tables`'.)

use chrono::{DateTime, Utc};

/// The segments' column the backfill writes.
pub const USED_STATUS: &str = "used_status_last_updated";

/// Druid's text for a moment (Joda's `DateTime.toString()` in UTC): `2026-12-02T04:15:00.000Z`.
pub fn druid_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Whether a supervisor's (newest) payload is a running supervisor a restore must suspend: a
/// JSON object with a `spec`, not Druid's tombstone (`NoopSupervisorSpec`), and `suspended`
/// absent or not `true`.
pub fn needs_suspension(payload: &[u8]) -> Result<bool, String> {
    let v: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    let Some(obj) = v.as_object() else {
        return Err("payload is not a JSON object".into());
    };
    if obj.get("type").and_then(|t| t.as_str()) == Some("NoopSupervisorSpec") {
        return Ok(false);
    }
    if !obj.contains_key("spec") {
        return Ok(false);
    }
    Ok(obj.get("suspended") != Some(&serde_json::Value::Bool(true)))
}

/// The payload with its top-level `suspended` set to `true`, the rest kept.
pub fn suspend(payload: &[u8]) -> Result<Vec<u8>, String> {
    let mut v: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    let Some(obj) = v.as_object_mut() else {
        return Err("payload is not a JSON object".into());
    };
    obj.insert("suspended".into(), serde_json::Value::Bool(true));
    serde_json::to_vec(&v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn druid_time_has_millis_and_z() {
        let t = DateTime::parse_from_rfc3339("2026-12-02T04:15:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(druid_time(&t), "2026-12-02T04:15:00.000Z");
        let t = DateTime::parse_from_rfc3339("2026-12-02T04:15:00.123456+00:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(druid_time(&t), "2026-12-02T04:15:00.123Z");
    }

    #[test]
    fn which_supervisors_are_suspended() {
        assert!(needs_suspension(br#"{"type":"kafka","spec":{},"suspended":false}"#).unwrap());
        assert!(needs_suspension(br#"{"type":"kafka","spec":{}}"#).unwrap());
        assert!(!needs_suspension(br#"{"type":"kafka","spec":{},"suspended":true}"#).unwrap());
        assert!(!needs_suspension(br#"{"type":"NoopSupervisorSpec","spec":{}}"#).unwrap());
        assert!(!needs_suspension(br#"{"type":"kafka","suspended":false}"#).unwrap());
        assert!(needs_suspension(b"[1]").is_err());
        assert!(needs_suspension(b"{").is_err());
    }

    #[test]
    fn suspend_sets_only_the_flag() {
        let out = suspend(br#"{"type":"kafka","spec":{"a":[1,"\\x"]},"suspended":false}"#).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"kafka","spec":{"a":[1,"\\x"]},"suspended":true})
        );
        let out = suspend(br#"{"spec":{}}"#).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["suspended"], serde_json::Value::Bool(true));
    }
}
