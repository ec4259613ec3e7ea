//! The pure pieces of the load: identifiers quoted for each kind, the CREATE TABLE of a table
//! whose DDL lifeboat does not know (from the columns the dump recorded), Druid's timestamp text,
//! and a supervisor's payload read and suspended.

use chrono::{DateTime, Utc};

use super::super::DbKind;
use super::super::dump::Column;

/// The segments' column the backfill writes.
pub const USED_STATUS: &str = "used_status_last_updated";

/// `"name"`, a quote doubled.
pub fn pg_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `` `name` ``, a backquote doubled.
pub fn my_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

pub fn ident(kind: DbKind, name: &str) -> String {
    match kind {
        DbKind::Postgresql => pg_ident(name),
        DbKind::Mysql => my_ident(name),
    }
}

/// Whether a recorded column holds bytes: the dump's own test, or any type naming bytes.
pub fn is_binary(sql_type: &str) -> bool {
    let t = sql_type.to_ascii_lowercase();
    super::super::tables::is_binary(sql_type)
        || t.contains("bytea")
        || t.contains("blob")
        || t.contains("binary")
}

/// The target's type for a column the source declared as `sql_type`.
pub fn map_type(kind: DbKind, sql_type: &str) -> &'static str {
    let t = sql_type.to_ascii_lowercase();
    let t = t.trim();
    let pg = kind == DbKind::Postgresql;
    if is_binary(t) {
        if pg { "BYTEA" } else { "LONGBLOB" }
    } else if t.starts_with("bool") || t == "tinyint(1)" || t == "bit(1)" || t == "bit" {
        "BOOLEAN"
    } else if t.contains("int") || t.contains("serial") {
        "BIGINT"
    } else if t.starts_with("double")
        || t.starts_with("float")
        || t.starts_with("real")
        || t.starts_with("numeric")
        || t.starts_with("decimal")
    {
        if pg { "DOUBLE PRECISION" } else { "DOUBLE" }
    } else if pg {
        "TEXT"
    } else {
        "LONGTEXT"
    }
}

/// A CREATE TABLE for `table` from the recorded columns, for a table whose DDL lifeboat does not
/// know: types mapped to the target kind, NOT NULL kept, no keys or indexes.
pub fn create_from_columns(kind: DbKind, table: &str, columns: &[Column]) -> String {
    let cols: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                ident(kind, &c.name),
                map_type(kind, &c.sql_type),
                if c.nullable { "" } else { " NOT NULL" }
            )
        })
        .collect();
    let tail = match kind {
        DbKind::Postgresql => "",
        DbKind::Mysql => " DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
    };
    format!(
        "CREATE TABLE {} ({}){tail}",
        ident(kind, table),
        cols.join(", ")
    )
}

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

    fn col(name: &str, t: &str, nullable: bool) -> Column {
        Column {
            name: name.into(),
            sql_type: t.into(),
            nullable,
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(pg_ident("end"), "\"end\"");
        assert_eq!(pg_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(my_ident("a`b"), "`a``b`");
    }

    #[test]
    fn types_map_to_the_target() {
        assert_eq!(map_type(DbKind::Postgresql, "longblob"), "BYTEA");
        assert_eq!(map_type(DbKind::Mysql, "bytea"), "LONGBLOB");
        assert_eq!(map_type(DbKind::Mysql, "boolean"), "BOOLEAN");
        assert_eq!(map_type(DbKind::Postgresql, "tinyint(1)"), "BOOLEAN");
        assert_eq!(map_type(DbKind::Postgresql, "bigint(20)"), "BIGINT");
        assert_eq!(map_type(DbKind::Mysql, "character varying"), "LONGTEXT");
        assert_eq!(map_type(DbKind::Postgresql, "varchar(255)"), "TEXT");
        assert_eq!(map_type(DbKind::Postgresql, "double"), "DOUBLE PRECISION");
    }

    #[test]
    fn create_table_from_recorded_columns() {
        let cols = [
            col("id", "bigint", false),
            col("end", "varchar(255)", true),
            col("payload", "bytea", false),
        ];
        assert_eq!(
            create_from_columns(DbKind::Postgresql, "druid_x", &cols),
            "CREATE TABLE \"druid_x\" (\"id\" BIGINT NOT NULL, \"end\" TEXT, \"payload\" BYTEA NOT NULL)"
        );
        assert_eq!(
            create_from_columns(DbKind::Mysql, "druid_x", &cols[..1]),
            "CREATE TABLE `druid_x` (`id` BIGINT NOT NULL) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        );
    }

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
