//! What Jackson checks on the way in, shared by the artefacts: a JSON object body, typed fields.

use serde_json::{Map, Value};

/// The body as a JSON object, or the message of Druid's 400.
pub fn object(body: &[u8], what: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!("{what} must be a JSON object")),
        Err(e) => Err(format!("malformed JSON: {e}")),
    }
}

/// The JSON kinds a Jackson field binds to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Int,
    Number,
    Bool,
    Str,
    /// An ISO-8601 period such as `P1D` or `PT10M` (Joda's `Period`).
    Period,
    Object,
    Array,
}

/// `v` when it binds to `kind` (null binds to anything and means "left out").
pub fn typed(v: &Value, kind: Kind) -> bool {
    match kind {
        Kind::Int => v.is_i64(),
        Kind::Number => v.is_number(),
        Kind::Bool => v.is_boolean(),
        Kind::Str => v.is_string(),
        Kind::Period => v.as_str().is_some_and(is_period),
        Kind::Object => v.is_object(),
        Kind::Array => v.is_array(),
    }
}

/// Copies the known fields of `from` into `to` after their type checks; unknown fields are
/// dropped, as Druid's ObjectMapper ignores them.
pub fn fields(
    from: &Map<String, Value>,
    to: &mut Map<String, Value>,
    known: &[(&str, Kind)],
    what: &str,
) -> Result<(), String> {
    for (name, kind) in known {
        match from.get(*name) {
            None | Some(Value::Null) => {}
            Some(v) if typed(v, *kind) => {
                to.insert((*name).to_string(), v.clone());
            }
            Some(v) => return Err(format!("{what}: field '{name}' cannot take {v}")),
        }
    }
    Ok(())
}

/// Joda's ISO period syntax: `P[nY][nM][nW][nD][T[nH][nM][n[.n]S]]`, at least one part.
pub fn is_period(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('P') else {
        return false;
    };
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    if s.ends_with('T') || (date.is_empty() && time.is_empty()) {
        return false;
    }
    parts(date, "YMWD", false) && parts(time, "HMS", true)
}

/// Each part is digits then one of `units`, in that order, each unit at most once.
fn parts(mut s: &str, units: &str, fraction: bool) -> bool {
    let mut allowed = units;
    while !s.is_empty() {
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || (fraction && c == '.')))
            .unwrap_or(s.len());
        let (num, tail) = s.split_at(end);
        let Some(unit) = tail.chars().next() else {
            return false;
        };
        let Some(pos) = allowed.find(unit) else {
            return false;
        };
        if num.is_empty() || (num.contains('.') && unit != 'S') {
            return false;
        }
        allowed = &allowed[pos + 1..];
        s = &tail[1..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_as_joda_reads_them() {
        for ok in ["P1D", "PT10M", "P1Y2M3W4DT5H6M7.5S", "PT3600S"] {
            assert!(is_period(ok), "{ok}");
        }
        for bad in [
            "", "P", "1D", "PT", "P1DT", "PD", "P1H", "PT1D", "P1M1Y", "P1.5D",
        ] {
            assert!(!is_period(bad), "{bad}");
        }
    }
}
