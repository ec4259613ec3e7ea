//! The config file (`Config::load`) and a clone's mapping file (`Mapping::load`, then every use
//! of it on an object), both TOML.

use lifeboat::config::Config;
use lifeboat::dremio::clone::mapping::Mapping;
use lifeboat::dremio::clone::model::{Kind, Object};
use serde_json::json;

use crate::alloc::{MIB, peak};
use crate::harness::{bounded, fuzz};
use crate::inputs::{Bytes, TOML, or_bytes, text_from};

const SMALL_CONFIG: &str = r#"
[clusters.prod]
dremio_home = "/opt/dremio"
rpo = "26h"
to = "us"
copy_to = ["eu", "/mnt/dr", "s3://other/x"]
level = 19

[locations.us]
url = "s3://backups-us/dremio"
region = "us-east-1"
access_key_id_env = "US_KEY"
secret_access_key_env = "US_SECRET"

[locations.us.retention]
keep_daily = 7
keep_within = "2d"

[locations.eu]
url = "s3://backups-eu/dremio"
endpoint = "http://127.0.0.1:9000"
allow_http = true
"#;

const CONFIG_SEEDS: &[&str] = &[
    include_str!("../../configs/lifeboat.example.toml"),
    SMALL_CONFIG,
];

const MAPPING_SEEDS: &[&str] = &[
    include_str!("../../configs/clone-mapping.example.toml"),
    "[rename]\nlake = \"lake_dr\"\nLake2 = \"LAKE_DR2\"\n[rename_users]\nalice = \"alice.dr\"\n[secrets.lake]\n\"auth.password\" = { env = \"S\" }\n\"propertyList[0].value\" = { file = \"/nonexistent/secret\" }\n",
];

/// Any environment variable a file names is set, to a value naming it.
fn env(name: &str) -> Option<String> {
    Some(format!("value-of-{name}"))
}

#[test]
fn config_file() {
    fuzz(
        "config_file",
        or_bytes(text_from(&TOML, CONFIG_SEEDS)),
        |Bytes(bytes)| {
            let file = tempfile::NamedTempFile::new().expect("a temporary file");
            std::fs::write(file.path(), &bytes).expect("the config is written");
            let (_, held) = peak(|| {
                let config = Config::load(file.path())?;
                let names: Vec<String> = config.clusters.keys().cloned().collect();
                let _ = config.cluster(None);
                for name in names {
                    let (_, c) = config.cluster(Some(&name))?.expect("a listed cluster");
                    for target in c.to.iter().chain(&c.copy_to) {
                        let _ = config.location(target.get_ref(), &env);
                        let _ = config.retention(target.get_ref());
                    }
                }
                Ok::<_, lifeboat::config::ConfigError>(())
            });
            // At most 256 KiB; toml's tokens, events and values take up to ~190 times the text.
            bounded("config file", held, bytes.len(), 4 * MIB, 200)
        },
    );
}

fn view(path: &[&str], sql: &str) -> Object {
    Object {
        kind: Kind::View,
        path: path.iter().map(|s| s.to_string()).collect(),
        body: json!({"sqlContext": ["lake", "raw"]})
            .as_object()
            .expect("an object")
            .clone(),
        text: Some(sql.to_string()),
        wiki: None,
    }
}

#[test]
fn mapping_file() {
    fuzz(
        "mapping_file",
        or_bytes(text_from(&TOML, MAPPING_SEEDS)),
        |Bytes(bytes)| {
            let file = tempfile::NamedTempFile::new().expect("a temporary file");
            std::fs::write(file.path(), &bytes).expect("the mapping is written");
            let (_, held) = peak(|| {
                let m = Mapping::load(file.path())?;
                for (kind, path) in [
                    (Kind::Source, vec!["lake".to_string()]),
                    (Kind::User, vec!["alice".to_string()]),
                    (Kind::Space, vec![String::new()]),
                ] {
                    let mapped = m.map_path(kind, &path);
                    let _ = m.unmap_path(kind, &mapped);
                }
                let o = view(
                    &["Sales", "v"],
                    "SELECT * FROM lake.raw.t JOIN \"Lake\".x ON 1=1",
                );
                let _ = m.map_object(o, &|p| p.len() > 3);
                let _ = m.source_secrets("lake", &env);
                let _ = m.source_secrets("warehouse", &env);
                let _ = m.password("alice", &env);
                Ok::<_, lifeboat::clone::CloneError>(())
            });
            bounded("mapping file", held, bytes.len(), 4 * MIB, 200)
        },
    );
}
