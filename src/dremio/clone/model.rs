//! Dremio's artefacts as the clone engine sees them: their kinds and parts, the object's stable
//! fields (no ids, tags, timestamps, sizes or statuses), its SQL text and wiki; conversions from
//! and to Dremio's REST entities.

use serde_json::{Map, Value, json};

use crate::clone::kind::{ArtefactKind, KindSpec, Parent, PartKind, PartSpec};

/// One artefact of a Dremio cluster, as the tree holds it.
pub type Object = crate::clone::kind::Object<Kind>;

/// What kind of artefact an object is. The order is the order of creation on a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Source,
    Space,
    Folder,
    /// A promoted (physical) dataset inside a source.
    Dataset,
    View,
    Function,
    User,
}

/// Catalog objects: one namespace without case, nested by path, applied in this order.
const SOURCE: KindSpec = KindSpec {
    word: "source",
    folder: "catalog",
    nested: true,
    text: None,
    container: true,
    deletable: true,
    skip: None,
    holds: &[],
    glob_prefix: None,
    fold_case: true,
    parent: Parent::Direct,
    rank: 0,
};
/// Spaces and folders may hold UDFs: with `--skip functions` they are not deleted.
const SPACE: KindSpec = KindSpec {
    word: "space",
    holds: &["functions"],
    rank: 1,
    ..SOURCE
};
const FOLDER: KindSpec = KindSpec {
    word: "folder",
    rank: 2,
    ..SPACE
};
/// A source's storage folders are not objects of the plan: a promoted dataset waits for its
/// source only.
const DATASET: KindSpec = KindSpec {
    word: "dataset",
    container: false,
    skip: Some("promoted"),
    parent: Parent::Root,
    rank: 3,
    ..SOURCE
};
const VIEW: KindSpec = KindSpec {
    word: "view",
    text: Some("sql"),
    container: false,
    rank: 4,
    ..SOURCE
};
const FUNCTION: KindSpec = KindSpec {
    word: "function",
    skip: Some("functions"),
    rank: 5,
    ..VIEW
};
/// Users: flat, matched as `@users/<name>`, applied last, never deleted.
const USER: KindSpec = KindSpec {
    word: "user",
    folder: "users",
    nested: false,
    container: false,
    deletable: false,
    skip: Some("users"),
    glob_prefix: Some("@users"),
    parent: Parent::None,
    rank: 9,
    ..SOURCE
};

impl ArtefactKind for Kind {
    fn all() -> &'static [Kind] {
        &[
            Kind::Source,
            Kind::Space,
            Kind::Folder,
            Kind::Dataset,
            Kind::View,
            Kind::Function,
            Kind::User,
        ]
    }

    fn spec(self) -> &'static KindSpec {
        match self {
            Kind::Source => &SOURCE,
            Kind::Space => &SPACE,
            Kind::Folder => &FOLDER,
            Kind::Dataset => &DATASET,
            Kind::View => &VIEW,
            Kind::Function => &FUNCTION,
            Kind::User => &USER,
        }
    }
}

/// What is applied apart from a catalog object, after it: reflections, wiki and tags (in this
/// order, after every object and before users).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    Reflection,
    Wiki,
    Tags,
}

impl PartKind for Part {
    fn spec(self) -> &'static PartSpec {
        match self {
            Part::Reflection => &PartSpec {
                word: "reflection",
                skip: "reflections",
                rank: 6,
            },
            Part::Wiki => &PartSpec {
                word: "wiki",
                skip: "wikis",
                rank: 7,
            },
            Part::Tags => &PartSpec {
                word: "tags",
                skip: "tags",
                rank: 8,
            },
        }
    }
}

impl Kind {
    /// Kinds whose text (view SQL, UDF body) lives in a `.sql` file beside the JSON.
    pub fn has_text(self) -> bool {
        self.spec().text.is_some()
    }

    /// The REST field holding the text.
    pub fn text_field(self) -> &'static str {
        match self {
            Kind::Function => "functionBody",
            _ => "sql",
        }
    }

    /// Datasets (promoted or views) carry tags and reflections.
    pub fn is_dataset(self) -> bool {
        matches!(self, Kind::Dataset | Kind::View)
    }

    /// Kinds that are catalog containers (have children).
    pub fn is_container(self) -> bool {
        self.spec().container
    }
}

/// Fields that change without the artefact changing, or that the path already says: never exported,
/// never compared.
const VOLATILE: &[&str] = &[
    "id",
    "tag",
    "version",
    "createdAt",
    "updatedAt",
    "children",
    "nextPageToken",
    "entityType",
    "path",
    "name",
    "fields",
    "owner",
    "state",
    "status",
    "currentSizeBytes",
    "totalSizeBytes",
    "permissions",
    "accessControlList",
    "datasetId",
    "active",
    "userName",
];

/// Reflection fields that are not the reflection's definition.
const REFLECTION_VOLATILE: &[&str] = &[
    "id",
    "tag",
    "entityType",
    "datasetId",
    "createdAt",
    "updatedAt",
    "status",
    "currentSizeBytes",
    "totalSizeBytes",
];

/// The value of a secret that the server keeps (what it answers instead of the secret).
pub const MASK: &str = "$DREMIO_EXISTING_VALUE$";

fn strip(v: &Value, drop: &[&str]) -> Map<String, Value> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, v)| !drop.contains(&k.as_str()) && !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a config key (or a property-list entry's name) names a secret. An S3 `accessKey` is
/// a key id, not a secret: masking it would lose what the target needs; Azure's `accessKey` is
/// the account key itself (see [`mask_config`]).
fn is_secret_key(key: &str) -> bool {
    let k = key.to_lowercase();
    // Anywhere in the name: `accessSecret`, `fs.s3a.secret.key`, `fs.azure.account.key.<acct>`.
    let anywhere = ["password", "secret", "passphrase", "account.key"];
    // At the end only: `nessieAccessToken`, `privateKey` (but not `tokenEndpoint`,
    // `privateKeyId` or `credentialType`).
    let at_end = ["token", "privatekey", "private_key", "private.key"];
    anywhere.iter().any(|p| k.contains(p)) || at_end.iter().any(|p| k.ends_with(p))
}

fn mask_value(v: &mut Value, secret: bool, azure: bool) -> usize {
    match v {
        Value::String(s) if secret && !s.is_empty() && s != MASK => {
            *s = MASK.to_string();
            1
        }
        Value::Array(a) => a.iter_mut().map(|x| mask_value(x, secret, azure)).sum(),
        Value::Object(m) => {
            // A property-list entry (`{"name": "fs.s3a.secret.key", "value": "..."}`) names its
            // secret in a sibling field.
            let named = m
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(is_secret_key);
            m.iter_mut()
                .map(|(k, x)| {
                    let this = is_secret_key(k)
                        || named && k == "value"
                        || azure && k.eq_ignore_ascii_case("accessKey");
                    mask_value(x, secret || this, azure)
                })
                .sum()
        }
        _ => 0,
    }
}

/// Replaces every secret of a source's config by [`MASK`], whatever the server masked already:
/// an export tree never holds a secret. Returns how many values were masked.
pub fn mask_config(source_type: &str, config: &mut Value) -> usize {
    let t = source_type.to_uppercase();
    mask_value(config, false, t.contains("AZURE") || t.contains("ADLS"))
}

/// A string field of a REST answer, empty when absent (ids and tags of answers lifeboat keeps).
pub fn str_of(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A string list field of a REST answer.
pub fn str_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// The kind of a catalog entity answered by `GET /api/v3/catalog/{id}`.
pub fn entity_kind(e: &Value) -> Option<Kind> {
    match e.get("entityType")?.as_str()? {
        "source" => Some(Kind::Source),
        "space" => Some(Kind::Space),
        "folder" => Some(Kind::Folder),
        "function" => Some(Kind::Function),
        "dataset" => Some(
            if e.get("type").and_then(Value::as_str) == Some("VIRTUAL_DATASET") {
                Kind::View
            } else {
                Kind::Dataset
            },
        ),
        _ => None,
    }
}

/// The model of a catalog entity (reflections, tags and wiki are added by the caller).
pub fn from_entity(kind: Kind, path: Vec<String>, e: &Value) -> Object {
    let mut body = strip(e, VOLATILE);
    let mut text = None;
    if kind.has_text() {
        text = body
            .remove(kind.text_field())
            .and_then(|v| v.as_str().map(str::to_string));
    }
    if kind == Kind::Source {
        let t = body
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(config) = body.get_mut("config") {
            mask_config(&t, config);
        }
    } else {
        // A dataset's `type` is its kind (VIRTUAL_DATASET / PHYSICAL_DATASET); a source's is
        // its connector, which stays.
        body.remove("type");
    }
    if kind == Kind::View
        && body
            .get("sqlContext")
            .and_then(Value::as_array)
            .is_some_and(|a| a.is_empty())
    {
        body.remove("sqlContext");
    }
    Object {
        kind,
        path,
        body,
        text,
        wiki: None,
    }
}

/// The model of a user (`GET /api/v3/user/{id}` or an `/apiv2/users/all` entry).
pub fn from_user(name: String, u: &Value) -> Object {
    // Dremio's `/apiv2/users/all` nests the names under `userConfig`; v3 answers do not.
    let mut body: Map<String, Value> = Map::new();
    for k in ["firstName", "lastName", "email"] {
        let v = u
            .get("userConfig")
            .and_then(|c| c.get(k))
            .or_else(|| u.get(k))
            .filter(|v| !v.is_null());
        if let Some(v) = v {
            body.insert(k.into(), v.clone());
        }
    }
    Object {
        kind: Kind::User,
        path: vec![name],
        body,
        text: None,
        wiki: None,
    }
}

/// Dremio's fields of an object: a dataset's body also holds `tags` and `reflections` (sorted
/// by name), which are applied apart from it.
pub trait DremioObject {
    /// Sets the reflections of a dataset from the REST answers (stable fields, sorted by name).
    fn set_reflections(&mut self, reflections: &[Value]);
    fn set_tags(&mut self, tags: Vec<String>);
    fn tags(&self) -> Vec<String>;
    /// The reflections, by name.
    fn reflections(&self) -> Vec<Map<String, Value>>;
    /// The object's own fields: the body without what is applied separately (tags, reflections).
    fn own_fields(&self) -> Map<String, Value>;
    /// The body of `POST /api/v3/catalog` (or of the promotion) creating this object.
    fn create_body(&self) -> Value;
    /// The body of `PUT` updating the target's object `id` whose current tag is `tag`.
    fn update_body(&self, id: &str, tag: &str) -> Value;
}

impl DremioObject for Object {
    fn set_reflections(&mut self, reflections: &[Value]) {
        let mut list: Vec<Map<String, Value>> = reflections
            .iter()
            .map(|r| strip(r, REFLECTION_VOLATILE))
            .collect();
        list.sort_by(|a, b| reflection_name(a).cmp(reflection_name(b)));
        if list.is_empty() {
            self.body.remove("reflections");
        } else {
            self.body.insert(
                "reflections".into(),
                Value::Array(list.into_iter().map(Value::Object).collect()),
            );
        }
    }

    fn set_tags(&mut self, tags: Vec<String>) {
        if tags.is_empty() {
            self.body.remove("tags");
        } else {
            self.body.insert("tags".into(), json!(tags));
        }
    }

    fn tags(&self) -> Vec<String> {
        self.body.get("tags").and_then(str_list).unwrap_or_default()
    }

    fn reflections(&self) -> Vec<Map<String, Value>> {
        self.body
            .get("reflections")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|r| r.as_object().cloned()).collect())
            .unwrap_or_default()
    }

    fn own_fields(&self) -> Map<String, Value> {
        let mut m = self.body.clone();
        m.remove("tags");
        m.remove("reflections");
        if let Some(t) = &self.text {
            m.insert(self.kind.text_field().into(), json!(t));
        }
        m
    }

    fn create_body(&self) -> Value {
        let mut m = self.own_fields();
        match self.kind {
            Kind::Source => {
                m.insert("entityType".into(), json!("source"));
                m.insert("name".into(), json!(self.path[0]));
            }
            Kind::Space => {
                m.insert("entityType".into(), json!("space"));
                m.insert("name".into(), json!(self.path[0]));
            }
            Kind::Folder => {
                m.insert("entityType".into(), json!("folder"));
                m.insert("path".into(), json!(self.path));
            }
            Kind::View | Kind::Dataset => {
                m.insert("entityType".into(), json!("dataset"));
                m.insert("path".into(), json!(self.path));
                let t = if self.kind == Kind::View {
                    "VIRTUAL_DATASET"
                } else {
                    m.insert("id".into(), json!(promotion_id(&self.path)));
                    "PHYSICAL_DATASET"
                };
                m.insert("type".into(), json!(t));
            }
            Kind::Function => {
                m.insert("entityType".into(), json!("function"));
                m.insert("path".into(), json!(self.path));
            }
            Kind::User => {
                m.insert("name".into(), json!(self.path[0]));
            }
        }
        Value::Object(m)
    }

    fn update_body(&self, id: &str, tag: &str) -> Value {
        let mut v = self.create_body();
        v["id"] = json!(id);
        v["tag"] = json!(tag);
        v
    }
}

fn reflection_name(r: &Map<String, Value>) -> &str {
    r.get("name").and_then(Value::as_str).unwrap_or("")
}

/// The id Dremio gives a file or folder in a source before promotion: `dremio:/source/a/b`.
pub fn promotion_id(path: &[String]) -> String {
    format!("dremio:/{}", path.join("/"))
}

/// Percent-encodes one URL path segment (everything but unreserved characters).
pub fn url_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/api/v3/catalog/by-path/a/b/c`, each segment encoded.
pub fn by_path_url(path: &[String]) -> String {
    let segs: Vec<String> = path.iter().map(|p| url_segment(p)).collect();
    format!("/api/v3/catalog/by-path/{}", segs.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volatile_fields_are_left_out_and_text_is_apart() {
        let e = json!({"entityType": "dataset", "type": "VIRTUAL_DATASET", "id": "x", "tag": "t",
            "path": ["S", "v"], "createdAt": 1, "sql": "SELECT 1", "sqlContext": ["S"],
            "fields": [{"name": "a"}], "accelerationRefreshPolicy": {"refreshPeriodMs": 3600000}});
        let o = from_entity(Kind::View, vec!["S".into(), "v".into()], &e);
        assert_eq!(o.text.as_deref(), Some("SELECT 1"));
        assert_eq!(
            o.body.keys().collect::<Vec<_>>(),
            vec!["accelerationRefreshPolicy", "sqlContext"]
        );
        let body = o.create_body();
        assert_eq!(body["type"], "VIRTUAL_DATASET");
        assert_eq!(body["sql"], "SELECT 1");
        assert_eq!(body["path"], json!(["S", "v"]));
    }

    #[test]
    fn a_source_keeps_its_connector_type_and_masked_secrets() {
        let e = json!({"entityType": "source", "type": "S3", "name": "lake", "id": "i", "tag": "t",
            "config": {"accessKey": "AK", "accessSecret": MASK}, "state": {"status": "good"}});
        let o = from_entity(Kind::Source, vec!["lake".into()], &e);
        assert_eq!(o.body["type"], "S3");
        assert_eq!(o.body["config"]["accessSecret"], MASK);
        assert!(!o.body.contains_key("state"));
        assert_eq!(o.create_body()["name"], "lake");
    }

    #[test]
    fn promotion_uses_the_dremio_path_id() {
        let o = Object {
            kind: Kind::Dataset,
            path: vec!["lake".into(), "trips".into(), "2024".into()],
            body: Map::new(),
            text: None,
            wiki: None,
        };
        assert_eq!(o.create_body()["id"], "dremio:/lake/trips/2024");
        assert_eq!(url_segment("dremio:/a b"), "dremio%3A%2Fa%20b");
    }

    #[test]
    fn secrets_are_masked_by_name_and_ids_are_not() {
        let mut c = json!({"accessKey": "AKIA", "accessSecret": "s", "credentialType": "ACCESS_KEY",
            "tokenEndpoint": "https://idp", "nessieAccessToken": "t", "privateKeyId": "id",
            "privateKey": "pk", "propertyList": [{"name": "fs.s3a.secret.key", "value": "v"},
            {"name": "fs.s3a.endpoint", "value": "e"}]});
        assert_eq!(mask_config("S3", &mut c), 4);
        for k in [
            "accessKey",
            "credentialType",
            "tokenEndpoint",
            "privateKeyId",
        ] {
            assert_ne!(c[k], MASK, "{k}");
        }
        assert_eq!(c["propertyList"][0]["value"], MASK);
        assert_eq!(c["propertyList"][1]["value"], "e");
        let mut azure = json!({"accountName": "a", "accessKey": "k"});
        assert_eq!(mask_config("AZURE_STORAGE", &mut azure), 1);
        assert_eq!(azure["accessKey"], MASK);
    }

    #[test]
    fn users_are_read_from_both_answer_shapes() {
        let v2 = json!({"id": "1", "name": "alice", "userName": "alice",
            "userConfig": {"firstName": "Alice", "lastName": "L", "email": "a@x", "version": "3"}});
        let v3 = json!({"id": "1", "name": "alice", "firstName": "Alice", "lastName": "L",
            "email": "a@x", "tag": "t"});
        let a = from_user("alice".into(), &v2);
        assert_eq!(a, from_user("alice".into(), &v3));
        assert_eq!(a.body["firstName"], "Alice");
        assert_eq!(a.body.len(), 3);
    }

    #[test]
    fn reflections_are_sorted_by_name_without_ids() {
        let mut o = Object {
            kind: Kind::View,
            path: vec!["S".into(), "v".into()],
            body: Map::new(),
            text: Some("SELECT 1".into()),
            wiki: None,
        };
        o.set_reflections(&[
            json!({"id": "2", "name": "z", "type": "RAW", "status": {"config": "OK"}}),
            json!({"id": "1", "name": "a", "type": "AGGREGATION", "datasetId": "d"}),
        ]);
        let r = o.reflections();
        assert_eq!(r[0]["name"], "a");
        assert!(!r[0].contains_key("datasetId") && !r[1].contains_key("status"));
    }
}
