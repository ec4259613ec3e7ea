//! The mapping file of a clone: renames of top-level containers (sources, spaces) and users, the
//! real secrets of sources and the passwords of users, each from an environment variable or a
//! file, never from the file itself.
//!
//! ```toml
//! [rename]
//! lake = "lake_dr"            # a source or space: paths, view SQL and sqlContext follow
//! [rename_users]
//! alice = "alice.dr"
//! [secrets.lake]              # by the source's name in the export
//! accessSecret = { env = "LAKE_SECRET" }          # a key of the source's config
//! "auth.password" = { file = "/run/secrets/lake" } # nested keys are dotted
//! [passwords]
//! alice = { env = "ALICE_PASSWORD" }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use super::model::{Kind, Object};
use crate::clone::CloneError;
use crate::limits;
use crate::secrets::{self, Secret};

/// The largest mapping file read: the TOML parser takes up to ~190 times the text, and a mapping
/// of thousands of renames is well under this.
pub const MAX_MAPPING_BYTES: u64 = 256 << 10;

/// Where a secret comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub env: Option<String>,
    pub file: Option<std::path::PathBuf>,
}

impl SecretRef {
    /// Reads the secret now (so that it is never kept longer than the request that needs it).
    pub fn read(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, String> {
        match (&self.env, &self.file) {
            (Some(var), None) => secrets::from_var(env, var)
                .ok_or_else(|| format!("environment variable {var} is not set")),
            (None, Some(file)) => {
                secrets::from_file(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
            }
            _ => Err("give exactly one of env or file".into()),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rename: BTreeMap<String, String>,
    #[serde(default)]
    rename_users: BTreeMap<String, String>,
    #[serde(default)]
    secrets: BTreeMap<String, BTreeMap<String, SecretRef>>,
    #[serde(default)]
    passwords: BTreeMap<String, SecretRef>,
}

/// A loaded mapping (names compared case-insensitively, as Dremio does).
#[derive(Debug, Default, Clone)]
pub struct Mapping {
    roots: Vec<(String, String)>,
    users: Vec<(String, String)>,
    secrets: BTreeMap<String, BTreeMap<String, SecretRef>>,
    passwords: BTreeMap<String, SecretRef>,
}

fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(from, _)| from.eq_ignore_ascii_case(name))
        .map(|(_, to)| to.as_str())
}

fn reverse(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(_, to)| to.eq_ignore_ascii_case(name))
        .map(|(from, _)| from.clone())
}

/// Refuses two renames to one name (compared as Dremio does, without ASCII case) and renames to
/// an empty name. Sorted rather than compared pairwise: a mapping may hold thousands.
fn bijective(pairs: &[(String, String)], what: &str) -> Result<(), CloneError> {
    if pairs.iter().any(|(_, to)| to.is_empty()) {
        return Err(CloneError::Mapping(format!(
            "mapping file: a {what} rename to an empty name"
        )));
    }
    let mut targets: Vec<String> = pairs
        .iter()
        .map(|(_, to)| to.to_ascii_lowercase())
        .collect();
    targets.sort_unstable();
    if let Some(twice) = targets.windows(2).find(|w| w[0] == w[1]) {
        let shown = pairs
            .iter()
            .map(|(_, to)| to)
            .find(|to| to.eq_ignore_ascii_case(&twice[0]))
            .unwrap_or(&twice[0]);
        return Err(CloneError::Mapping(format!(
            "mapping file: two {what} are renamed to {shown:?}"
        )));
    }
    Ok(())
}

impl Mapping {
    pub fn load(path: &Path) -> Result<Mapping, CloneError> {
        let text = limits::read_capped_string(path, MAX_MAPPING_BYTES, "a mapping file").map_err(
            |source| CloneError::Read {
                path: path.to_path_buf(),
                source,
            },
        )?;
        Self::parse(&text).map_err(|m| CloneError::Mapping(format!("{}: {m}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Mapping, String> {
        limits::check_toml_nesting(text, limits::MAX_TOML_DEPTH)?;
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let m = Mapping {
            roots: f.rename.into_iter().collect(),
            users: f.rename_users.into_iter().collect(),
            secrets: f
                .secrets
                .into_iter()
                .map(|(k, v)| (k.to_lowercase(), v))
                .collect(),
            passwords: f
                .passwords
                .into_iter()
                .map(|(k, v)| (k.to_lowercase(), v))
                .collect(),
        };
        bijective(&m.roots, "containers").map_err(|e| e.to_string())?;
        bijective(&m.users, "users").map_err(|e| e.to_string())?;
        Ok(m)
    }

    /// The top-level name a source or space gets on the target.
    pub fn root(&self, name: &str) -> Option<&str> {
        lookup(&self.roots, name)
    }

    /// The renames that apply to a kind: users have their own.
    fn pairs(&self, kind: Kind) -> &[(String, String)] {
        if kind == Kind::User {
            &self.users
        } else {
            &self.roots
        }
    }

    /// An object's path on the target.
    pub fn map_path(&self, kind: Kind, path: &[String]) -> Vec<String> {
        let pairs = self.pairs(kind);
        let mut p = path.to_vec();
        if let Some(first) = p.first_mut()
            && let Some(to) = lookup(pairs, first)
        {
            *first = to.to_string();
        }
        p
    }

    /// The source path of an object of the target (inverse of [`Mapping::map_path`]).
    pub fn unmap_path(&self, kind: Kind, path: &[String]) -> Vec<String> {
        let pairs = self.pairs(kind);
        let mut p = path.to_vec();
        if let Some(first) = p.first_mut()
            && let Some(from) = reverse(pairs, first)
        {
            *first = from;
        } else if let Some(first) = p.first()
            && lookup(pairs, first).is_some()
        {
            // A target name that is also renamed away on the source side maps to nothing there.
            p[0] = format!("\u{0}{first}");
        }
        p
    }

    /// The object as it must be on the target: path renamed, and the SQL and context of views and
    /// UDFs rewritten by parsed identifiers. `exists(path)` says whether the source has a dataset,
    /// view or UDF there: a reference that resolves under the view's `sqlContext` is relative, and
    /// its first part is not a source's name even when it is spelled like one.
    pub fn map_object(&self, mut o: Object, exists: &dyn Fn(&[String]) -> bool) -> Object {
        o.path = self.map_path(o.kind, &o.path);
        if self.roots.is_empty() || o.kind == Kind::User {
            return o;
        }
        let ctx: Vec<String> = o
            .body
            .get("sqlContext")
            .and_then(super::model::str_list)
            .unwrap_or_default();
        if let Some(t) = &o.text {
            let rename = |r: &super::sql::Reference| {
                let relative = !ctx.is_empty() && {
                    let mut p = ctx.clone();
                    p.extend(r.parts.iter().cloned());
                    exists(&p)
                };
                if relative {
                    None
                } else {
                    r.parts
                        .first()
                        .and_then(|f| self.root(f))
                        .map(str::to_string)
                }
            };
            o.text = Some(super::sql::rename_refs(t, &rename));
        }
        if let Some(Value::Array(ctx)) = o.body.get_mut("sqlContext")
            && let Some(Value::String(first)) = ctx.first_mut()
            && let Some(to) = self.root(first)
        {
            *first = to.to_string();
        }
        o
    }

    /// The secrets of a source's config (`config` dotted paths and values), read now.
    pub fn source_secrets(
        &self,
        source: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<(String, Secret)>, String> {
        let Some(fields) = self.secrets.get(&source.to_lowercase()) else {
            return Ok(vec![]);
        };
        fields
            .iter()
            .map(|(k, r)| {
                r.read(env)
                    .map(|s| (k.clone(), s))
                    .map_err(|e| format!("secret {source}.{k}: {e}"))
            })
            .collect()
    }

    /// The password of a user, read now; None when the mapping gives none.
    pub fn password(
        &self,
        user: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Result<Secret, String>> {
        self.passwords
            .get(&user.to_lowercase())
            .map(|r| r.read(env).map_err(|e| format!("password of {user}: {e}")))
    }
}

/// The config paths whose value is masked (the server keeps, and hides, a secret there), dotted,
/// with `[i]` for list items (e.g. `propertyList[2].value`).
pub fn masked_fields(config: &Value) -> Vec<String> {
    fn walk(v: &Value, at: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let here = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    walk(x, &here, out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, &format!("{at}[{i}]"), out);
                }
            }
            Value::String(s) if s == super::model::MASK => out.push(at.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(config, "", &mut out);
    out
}

/// Replaces each masked value of `dst` by the value at the same place in `from` (the target's own
/// config as its server answered it), when there is one. Returns the paths left masked.
pub fn fill_masked(dst: &mut Value, from: Option<&Value>) -> Vec<String> {
    fn walk(v: &mut Value, from: Option<&Value>, at: &str, left: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    let here = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    walk(x, from.and_then(|f| f.get(k)), &here, left);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter_mut().enumerate() {
                    walk(x, from.and_then(|f| f.get(i)), &format!("{at}[{i}]"), left);
                }
            }
            Value::String(s) if s == super::model::MASK => match from {
                Some(f) if !f.is_null() => *v = f.clone(),
                _ => left.push(at.to_string()),
            },
            _ => {}
        }
    }
    let mut left = Vec::new();
    walk(dst, from, "", &mut left);
    left
}

/// Puts `value` at a path inside `config`: dotted keys, `[i]` for an existing list item (e.g.
/// `propertyList[2].value`); objects are created as needed.
pub fn set_dotted(config: &mut Value, path: &str, value: &str) {
    let mut at = config;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        let (name, index) = match p.strip_suffix(']').and_then(|q| q.rsplit_once('[')) {
            Some((n, ix)) => (n, ix.parse::<usize>().ok()),
            None => (*p, None),
        };
        if !at.is_object() {
            *at = json!({});
        }
        let m = at.as_object_mut().expect("made an object");
        let last = i + 1 == parts.len();
        match index {
            None if last => {
                m.insert(name.to_string(), json!(value));
                return;
            }
            None => at = m.entry(name.to_string()).or_insert_with(|| json!({})),
            Some(ix) => {
                let Some(item) = m.get_mut(name).and_then(|l| l.get_mut(ix)) else {
                    return;
                };
                if last {
                    *item = json!(value);
                    return;
                }
                at = item;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
[rename]
lake = "lake_dr"
[rename_users]
alice = "alice.dr"
[secrets.lake]
accessSecret = { env = "LAKE_SECRET" }
[passwords]
alice = { env = "ALICE_PW" }
"#;

    #[test]
    fn paths_are_renamed_both_ways_case_insensitively() {
        let m = Mapping::parse(TEXT).unwrap();
        let p = |s: &str| s.split('/').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(m.map_path(Kind::Dataset, &p("LAKE/t")), p("lake_dr/t"));
        assert_eq!(m.unmap_path(Kind::Dataset, &p("lake_dr/t")), p("lake/t"));
        assert_eq!(m.map_path(Kind::User, &p("alice")), p("alice.dr"));
        assert_eq!(m.map_path(Kind::Space, &p("alice")), p("alice"));
        // A target object named like a renamed source does not come from that source.
        assert_ne!(m.unmap_path(Kind::Source, &p("lake")), p("lake"));
    }

    #[test]
    fn view_sql_is_renamed_by_identifier_except_context_relative_references() {
        let m = Mapping::parse(TEXT).unwrap();
        let view = |ctx: Value| Object {
            kind: Kind::View,
            path: vec!["Sales".into(), "v".into()],
            body: json!({ "sqlContext": ctx }).as_object().unwrap().clone(),
            text: Some(
                "SELECT 'lake.x' FROM lake.orders JOIN lake.t ON lake.orders.id = t.id".into(),
            ),
            wiki: None,
        };
        // Sales/lake/t is a view of the source tree: `lake.t` under context Sales is relative.
        let exists = |p: &[String]| p == ["Sales", "lake", "t"];
        let o = m.map_object(view(json!(["Sales"])), &exists);
        assert_eq!(
            o.text.as_deref(),
            Some("SELECT 'lake.x' FROM lake_dr.orders JOIN lake.t ON lake.orders.id = t.id")
        );
        let o = m.map_object(view(json!(["lake", "db"])), &|_| false);
        assert_eq!(o.body["sqlContext"], json!(["lake_dr", "db"]));
        assert!(o.text.unwrap().contains("JOIN lake_dr.t"));
    }

    #[test]
    fn secrets_come_from_the_environment_and_name_what_is_missing() {
        let m = Mapping::parse(TEXT).unwrap();
        let env = |k: &str| (k == "LAKE_SECRET").then(|| "s3cr3t".to_string());
        let s = m.source_secrets("Lake", &env).unwrap();
        assert_eq!(s[0].0, "accessSecret");
        assert_eq!(s[0].1.0, "s3cr3t");
        let err = m.password("alice", &env).unwrap().unwrap_err();
        assert!(err.contains("ALICE_PW"), "{err}");
        assert!(m.password("bob", &env).is_none());
    }

    #[test]
    fn bad_mappings_are_refused() {
        assert!(Mapping::parse("[rename]\na = \"x\"\nb = \"X\"\n").is_err());
        assert!(
            Mapping::parse("[secrets.s]\nk = { env = \"A\", file = \"/f\" }\n")
                .unwrap()
                .source_secrets("s", &|_| Some("v".into()))
                .is_err()
        );
        assert!(Mapping::parse("[renames]\na = \"b\"\n").is_err());
    }

    #[test]
    fn masked_list_items_are_found_and_filled_from_the_target() {
        let mask = super::super::model::MASK;
        let mut c = json!({"accessSecret": mask, "propertyList": [
            {"name": "fs.s3a.endpoint", "value": "s3.example"},
            {"name": "fs.s3a.secret.key", "value": mask}]});
        assert_eq!(
            masked_fields(&c),
            vec!["accessSecret", "propertyList[1].value"]
        );
        // The target's server masks its own @Secret field and shows the property in clear.
        let target = json!({"accessSecret": mask, "propertyList": [
            {"name": "fs.s3a.endpoint", "value": "old"},
            {"name": "fs.s3a.secret.key", "value": "theirs"}]});
        assert_eq!(fill_masked(&mut c, Some(&target)), Vec::<String>::new());
        assert_eq!(c["propertyList"][1]["value"], "theirs");
        assert_eq!(c["propertyList"][0]["value"], "s3.example");
        assert_eq!(c["accessSecret"], mask);
        let mut fresh = json!({"propertyList": [{"name": "x.password", "value": mask}]});
        assert_eq!(fill_masked(&mut fresh, None), vec!["propertyList[0].value"]);
    }

    #[test]
    fn masked_fields_are_found_and_secrets_set_at_dotted_paths() {
        let mut c = json!({"accessKey": "AK", "accessSecret": super::super::model::MASK,
                           "auth": {"password": super::super::model::MASK}});
        assert_eq!(masked_fields(&c), vec!["accessSecret", "auth.password"]);
        set_dotted(&mut c, "auth.password", "pw");
        assert_eq!(c["auth"]["password"], "pw");
        let mut l =
            json!({"propertyList": [{"name": "a", "value": "x"}, {"name": "k", "value": "y"}]});
        set_dotted(&mut l, "propertyList[1].value", "s");
        assert_eq!(l["propertyList"][1]["value"], "s");
        set_dotted(&mut l, "propertyList[5].value", "s");
        assert_eq!(
            l["propertyList"].as_array().unwrap().len(),
            2,
            "no such item: nothing set"
        );
    }
}
