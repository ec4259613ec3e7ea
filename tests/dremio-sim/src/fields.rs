//! The fields a request body may carry, per kind of object, in one place: Dremio reads bodies with
//! Jackson, which refuses a property its class does not declare, so the simulator does too (a
//! client must drop what the target's version does not know).
//!
//! The lists are the entity fields of the reference (`dremio.md`) plus what the simulator itself
//! answers, so that a body read from a GET can be sent back. Nested objects (`config`, `format`,
//! `fields`, reflection fields, ...) are not checked: their classes are polymorphic per source
//! type or format.

use serde_json::Value;

use crate::server::Reply;

/// A kind of request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Space,
    Folder,
    Source,
    Dataset,
    Function,
    Reflection,
    User,
}

/// `space`: `description` is the simulator's own editable field.
const SPACE: &[&str] = &[
    "entityType",
    "id",
    "name",
    "tag",
    "createdAt",
    "children",
    "nextPageToken",
    "path",
    "description",
];

const FOLDER: &[&str] = &[
    "entityType",
    "id",
    "path",
    "tag",
    "createdAt",
    "children",
    "nextPageToken",
    "description",
];

const SOURCE: &[&str] = &[
    "entityType",
    "id",
    "tag",
    "type",
    "name",
    "description",
    "config",
    "metadataPolicy",
    "accelerationGracePeriodMs",
    "accelerationRefreshPeriodMs",
    "accelerationNeverExpire",
    "accelerationNeverRefresh",
    "accelerationActivePolicyType",
    "accelerationRefreshSchedule",
    "allowCrossSourceSelection",
    "disableMetadataValidityCheck",
    "createdAt",
    "path",
    "children",
    "nextPageToken",
    "state",
];

const DATASET: &[&str] = &[
    "entityType",
    "id",
    "type",
    "path",
    "tag",
    "createdAt",
    "sql",
    "sqlContext",
    "format",
    "accelerationRefreshPolicy",
    "fields",
];

/// `function` (UDF); `lastModified` is in Dremio's class though the simulator does not answer it.
const FUNCTION: &[&str] = &[
    "entityType",
    "id",
    "path",
    "tag",
    "createdAt",
    "lastModified",
    "isScalar",
    "functionArgList",
    "functionBody",
    "returnType",
];

/// Reflection fields known by every simulated version; see [`REFLECTION_SINCE_25`].
const REFLECTION: &[&str] = &[
    "entityType",
    "id",
    "type",
    "name",
    "tag",
    "datasetId",
    "enabled",
    "createdAt",
    "updatedAt",
    "status",
    "currentSizeBytes",
    "totalSizeBytes",
    "dimensionFields",
    "measureFields",
    "displayFields",
    "distributionFields",
    "partitionFields",
    "sortFields",
    "partitionDistributionStrategy",
];

/// Reflection fields known from 25.0.0 on. A GUESS (the release that added the field is
/// unconfirmed), there to give lifeboat's drop-unknown-fields path a version to work against.
pub const REFLECTION_SINCE_25: &[&str] = &["arrowCachingEnabled"];

const USER: &[&str] = &[
    "id",
    "name",
    "firstName",
    "lastName",
    "email",
    "tag",
    "password",
    "active",
];

/// First version knowing [`REFLECTION_SINCE_25`].
pub const ARROW_CACHING_SINCE: (u64, u64, u64) = (25, 0, 0);

/// First version answering `GET /api/v3/reflection` (every reflection). A GUESS, like the field
/// above: older simulated versions answer 404 there, so that clients must fall back to
/// `GET /api/v3/dataset/{id}/reflection`, which the reference documents.
pub const REFLECTION_LIST_SINCE: (u64, u64, u64) = (25, 0, 0);

impl Kind {
    /// The kind of a catalog body's `entityType`.
    pub fn of_entity(t: &str) -> Option<Kind> {
        Some(match t {
            "space" => Kind::Space,
            "folder" => Kind::Folder,
            "source" => Kind::Source,
            "dataset" => Kind::Dataset,
            "function" => Kind::Function,
            _ => return None,
        })
    }

    /// The Java class Jackson names in its error.
    pub fn class(self) -> &'static str {
        match self {
            Kind::Space => "com.dremio.dac.api.Space",
            Kind::Folder => "com.dremio.dac.api.Folder",
            Kind::Source => "com.dremio.dac.api.Source",
            Kind::Dataset => "com.dremio.dac.api.Dataset",
            Kind::Function => "com.dremio.dac.api.Function",
            Kind::Reflection => "com.dremio.dac.api.Reflection",
            Kind::User => "com.dremio.dac.api.User",
        }
    }

    /// The fields a version knows for this kind.
    pub fn known(self, version: (u64, u64, u64)) -> Vec<&'static str> {
        let mut v = match self {
            Kind::Space => SPACE.to_vec(),
            Kind::Folder => FOLDER.to_vec(),
            Kind::Source => SOURCE.to_vec(),
            Kind::Dataset => DATASET.to_vec(),
            Kind::Function => FUNCTION.to_vec(),
            Kind::Reflection => REFLECTION.to_vec(),
            Kind::User => USER.to_vec(),
        };
        if self == Kind::Reflection && version >= ARROW_CACHING_SINCE {
            v.extend_from_slice(REFLECTION_SINCE_25);
        }
        v
    }
}

/// Refuses a body with a field the version does not know, with Jackson's message
/// (`Unrecognized field "x" (class ...), not marked as ignorable (N known properties: ...])`).
pub fn check(body: &Value, kind: Kind, version: (u64, u64, u64)) -> Result<(), Reply> {
    let Some(m) = body.as_object() else {
        return Ok(());
    };
    let known = kind.known(version);
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(Reply::error(
            400,
            &format!(
                "Unrecognized field \"{k}\" (class {}), not marked as ignorable ({} known properties: {}])",
                kind.class(),
                known.len(),
                known
                    .iter()
                    .map(|f| format!("\"{f}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}
