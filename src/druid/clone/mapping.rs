//! The mapping file of a Druid clone: the target's own values of the host-specific fields of the
//! dynamic config, and the passwords of basic-security users created on the target, each from an
//! environment variable or a file (never from the mapping itself).
//!
//! ```toml
//! [host_fields]                       # the TARGET's values; fields not given are not copied
//! decommissioningNodes = []
//! pauseCoordination = false
//! [passwords]                         # by user name; Druid cannot give its passwords back
//! alice = { env = "ALICE_PASSWORD" }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::model::HOST_FIELDS;
use crate::clone::CloneError;
use crate::dremio::clone::mapping::{MAX_MAPPING_BYTES, SecretRef};
use crate::limits;
use crate::secrets::Secret;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    host_fields: BTreeMap<String, toml::Value>,
    #[serde(default)]
    passwords: BTreeMap<String, SecretRef>,
}

/// A loaded mapping.
#[derive(Debug, Default, Clone)]
pub struct Mapping {
    /// The target's values of host fields, as JSON.
    pub host_fields: Map<String, Value>,
    passwords: BTreeMap<String, SecretRef>,
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
        let mut host_fields = Map::new();
        for (name, v) in f.host_fields {
            if !HOST_FIELDS.contains(&name.as_str()) {
                return Err(format!(
                    "[host_fields] {name}: not a host field; they are {}",
                    HOST_FIELDS.join(", ")
                ));
            }
            let v = serde_json::to_value(v).map_err(|e| e.to_string())?;
            host_fields.insert(name, v);
        }
        Ok(Mapping {
            host_fields,
            passwords: f.passwords,
        })
    }

    /// The password of `user`, read now (so that it lives no longer than the request).
    pub fn password(
        &self,
        user: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Result<Secret, String>> {
        self.passwords.get(user).map(|r| r.read(env))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_fields_and_passwords_are_read_and_strangers_refused() {
        let m = Mapping::parse(
            "[host_fields]\npauseCoordination = false\ndecommissioningNodes = [\"h:1\"]\n[passwords]\nalice = { env = \"A_PW\" }\n",
        )
        .unwrap();
        assert_eq!(m.host_fields["pauseCoordination"], Value::Bool(false));
        assert_eq!(m.host_fields["decommissioningNodes"][0], "h:1");
        let env = |k: &str| (k == "A_PW").then(|| "pw".to_string());
        assert_eq!(m.password("alice", &env).unwrap().unwrap().0, "pw");
        assert!(m.password("bob", &env).is_none());
        let e = Mapping::parse("[host_fields]\nmaxSegmentsToMove = 1\n").unwrap_err();
        assert!(e.contains("not a host field"), "{e}");
        assert!(Mapping::parse("[rename]\na = \"b\"\n").is_err());
    }

    #[test]
    fn the_example_mapping_parses() {
        let m =
            Mapping::parse(include_str!("../../../configs/druid-mapping.example.toml")).unwrap();
        let none = |_: &str| None;
        assert!(m.password("alice", &none).is_some() && m.password("ingest_bot", &none).is_some());
        assert_eq!(m.host_fields.len(), 2);
    }
}
