//! A segment's `loadSpec`: where its files live in deep storage (S3, GCS, Azure, HDFS, local), as
//! one URL, and its rewrite by `--deep-storage-map FROM=TO` prefixes. Payloads are hostile input:
//! a rewrite changes only the bytes of the `loadSpec` value and leaves every other byte alone.
//!
//! URLs are plain text, never percent-encoded: `s3://<bucket>/<key>` holds the key exactly as the
//! loadSpec does (spaces, `%`, `?`, `#`, `=` and all), so a URL is split by [`split_url`], never
//! by a URL parser.
//!
//! Parsing never builds a JSON tree: the payload's top-level fields are skipped (serde_json skips
//! with a one-byte-per-level stack, no recursion), the `loadSpec` value is borrowed as raw bytes and
//! only its own fields are read, so memory stays a small multiple of [`MAX_PAYLOAD_BYTES`].

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use thiserror::Error;

/// The largest payload read (Druid's are a few KiB; a segment with thousands of dimensions a few
/// hundred KiB).
pub const MAX_PAYLOAD_BYTES: usize = 16 << 20;
/// The most fields a `loadSpec` object may have (Druid's have two to four).
pub const MAX_LOADSPEC_FIELDS: usize = 256;
/// The longest bucket, key or path taken from a loadSpec (S3, GCS and Azure allow 1,024 bytes,
/// Linux paths 4,096).
pub const MAX_LOCATION_BYTES: usize = 8 << 10;

#[derive(Debug, Error, PartialEq)]
pub enum LoadSpecError {
    #[error("{0}")]
    Bad(String),
}

fn bad(why: impl Into<String>) -> LoadSpecError {
    LoadSpecError::Bad(why.into())
}

/// The object a used segment needs, as a URL: `s3://bucket/key` (`s3_zip`, `s3`),
/// `gs://bucket/path` (`google`), `azure://container/blobPath` (`azure`), the `path` of `hdfs`
/// (`hdfs://...` as written; a plain absolute path becomes `hdfs://` + path) and `file:///path`
/// (`local`, absolute paths only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub url: String,
    /// The payload's `size` when it is above zero. Druid records the segment's bytes BEFORE
    /// zipping (`CompressionUtils.zip` returns the files' total), so for `index.zip` objects it is
    /// an upper bound of the object's size, not its size.
    pub size: Option<u64>,
}

/// The schemes a URL of [`ObjectRef`] and of `--deep-storage-map` may have. `az://` is accepted
/// in maps and read as `azure://` (object_store and lifeboat's locations take both).
const SCHEMES: [&str; 6] = ["s3://", "gs://", "azure://", "az://", "hdfs://", "file://"];

/// The payload's fields this module reads.
struct Top<'a> {
    load_spec: Option<&'a RawValue>,
    size: Option<u64>,
}

impl<'de> de::Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Top<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object (a segment's payload)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
                let mut top = Top {
                    load_spec: None,
                    size: None,
                };
                // Duplicate keys: the last one wins, as with Jackson, which Druid reads them with.
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "loadSpec" => top.load_spec = Some(map.next_value::<&RawValue>()?),
                        "size" => {
                            let raw = map.next_value::<&RawValue>()?;
                            top.size = serde_json::from_str::<u64>(raw.get())
                                .ok()
                                .filter(|n| *n > 0);
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(top)
            }
        }
        d.deserialize_map(V)
    }
}

/// A loadSpec object's fields in their order, values as raw JSON.
struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'de> de::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if fields.len() == MAX_LOADSPEC_FIELDS {
                        return Err(de::Error::custom(format!(
                            "the loadSpec has more than {MAX_LOADSPEC_FIELDS} fields"
                        )));
                    }
                    fields.push((key, map.next_value::<&RawValue>()?));
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Fields<'a> {
    /// The last value of `name` (Jackson's rule for duplicates).
    fn raw(&self, name: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }

    /// A string field; `Ok(None)` when absent or null, an error when it is another type.
    fn string(&self, name: &str) -> Result<Option<String>, LoadSpecError> {
        let Some(raw) = self.raw(name) else {
            return Ok(None);
        };
        if raw.get() == "null" {
            return Ok(None);
        }
        let text: String = serde_json::from_str(raw.get())
            .map_err(|_| bad(format!("the loadSpec's {name:?} is not a string")))?;
        if text.len() > MAX_LOCATION_BYTES {
            return Err(bad(format!(
                "the loadSpec's {name:?} is longer than {MAX_LOCATION_BYTES} bytes"
            )));
        }
        Ok(Some(text))
    }

    fn required(&self, kind: &str, name: &str) -> Result<String, LoadSpecError> {
        match self.string(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(bad(format!("a loadSpec of type {kind:?} without {name:?}"))),
        }
    }
}

/// A payload parsed far enough: where its loadSpec is, and what it says.
struct Parsed<'a> {
    /// The byte range of the loadSpec value in the payload.
    span: (usize, usize),
    fields: Fields<'a>,
    kind: String,
    object: ObjectRef,
}

fn parse_top(payload: &[u8]) -> Result<Top<'_>, LoadSpecError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(bad(format!(
            "the segment payload is {} bytes, more than the {MAX_PAYLOAD_BYTES} lifeboat reads",
            payload.len()
        )));
    }
    serde_json::from_slice::<Top>(payload)
        .map_err(|e| bad(format!("the segment payload is not a JSON object: {e}")))
}

fn parse(payload: &[u8]) -> Result<Option<Parsed<'_>>, LoadSpecError> {
    let top = parse_top(payload)?;
    let Some(raw) = top.load_spec else {
        return Ok(None);
    };
    let text = raw.get();
    if !text.starts_with('{') {
        return Ok(None);
    }
    // The raw value borrows from the payload: its offset is where the loadSpec's bytes are.
    let start = (text.as_ptr() as usize)
        .checked_sub(payload.as_ptr() as usize)
        .filter(|s| s + text.len() <= payload.len())
        .ok_or_else(|| bad("the loadSpec is not inside the payload"))?;
    let fields: Fields = serde_json::from_str(text)
        .map_err(|e| bad(format!("the segment's loadSpec cannot be read: {e}")))?;
    let Some(kind) = fields.string("type").ok().flatten() else {
        return Ok(None);
    };
    let url = match kind.as_str() {
        "s3_zip" | "s3" => {
            let bucket = bucket(&fields, &kind, "bucket")?;
            let key = fields.required(&kind, "key")?;
            format!("s3://{bucket}/{key}")
        }
        "google" => {
            let bucket = bucket(&fields, &kind, "bucket")?;
            let path = fields.required(&kind, "path")?;
            format!("gs://{bucket}/{path}")
        }
        "azure" => {
            let container = bucket(&fields, &kind, "containerName")?;
            let blob = fields.required(&kind, "blobPath")?;
            format!("azure://{container}/{blob}")
        }
        "hdfs" => {
            let path = fields.required(&kind, "path")?;
            if path.contains("://") {
                path
            } else if path.starts_with('/') {
                format!("hdfs://{path}")
            } else {
                return Ok(None);
            }
        }
        "local" => {
            let path = fields.required(&kind, "path")?;
            if !path.starts_with('/') {
                return Ok(None);
            }
            format!("file://{path}")
        }
        _ => return Ok(None),
    };
    Ok(Some(Parsed {
        span: (start, start + text.len()),
        fields,
        kind,
        object: ObjectRef {
            url,
            size: top.size,
        },
    }))
}

/// A bucket or container: not empty, no `/` (it would move the key's start).
fn bucket(fields: &Fields, kind: &str, name: &str) -> Result<String, LoadSpecError> {
    let b = fields.required(kind, name)?;
    if b.contains('/') {
        return Err(bad(format!(
            "the loadSpec's {name:?} {b:?} holds a '/', which no bucket or container name has"
        )));
    }
    Ok(b)
}

/// The object of a segment's payload; `None` when it has no `loadSpec` lifeboat knows (none, not
/// an object, no `type`, another type, a relative local path). An error for a payload that is not
/// a JSON object, too large, or a known type without its bucket/key/path.
pub fn object_of(payload: &[u8]) -> Result<Option<ObjectRef>, LoadSpecError> {
    Ok(parse(payload)?.map(|p| p.object))
}

/// A URL of a known object store split into the store's root and the key under it:
/// `s3://b/k/x` -> (`s3://b`, `k/x`), the same for `gs://` and `azure://`; `file:///a/b` ->
/// (`file://`, `a/b`). `None` for other schemes (HDFS), a missing bucket or an empty key.
pub fn split_url(url: &str) -> Option<(&str, &str)> {
    if let Some(rest) = url.strip_prefix("file://") {
        let key = rest.strip_prefix('/')?;
        return (!key.is_empty()).then_some((&url[..7], key));
    }
    let scheme = ["s3://", "gs://", "azure://"]
        .into_iter()
        .find(|s| url.starts_with(s))?;
    let rest = &url[scheme.len()..];
    let slash = rest.find('/')?;
    let (bucket, key) = (&rest[..slash], &rest[slash + 1..]);
    (!bucket.is_empty() && !key.is_empty()).then_some((&url[..scheme.len() + slash], key))
}

/// Whether a path component is a Druid segment interval, `<start>_<end>` in ISO form
/// (`2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z`; HDFS's `20240101T000000.000Z_...`;
/// eternity's `-146136543-09-08T08:23:32.096Z_146140482-04-24T15:36:27.903Z`).
fn is_interval(part: &str) -> bool {
    let Some((a, b)) = part.split_once('_') else {
        return false;
    };
    let instant = |s: &str| {
        let s = s.strip_prefix('-').unwrap_or(s);
        s.len() >= 5
            && s.as_bytes()[..4].iter().all(u8::is_ascii_digit)
            && s.contains('T')
            && s.bytes()
                .all(|c| c.is_ascii_digit() || b"-:.TZ+".contains(&c))
    };
    instant(a) && instant(b)
}

/// The deep-storage location a segment's object lives under, for the manifest: the URL up to and
/// without the datasource's folder (`s3://bucket/druid/segments`). Druid's layout is
/// `<base>/<dataSource>/<start>_<end>/<version>/<partition>[/<uuid>]/index.zip`: the location is
/// what comes before the folder that precedes the rightmost interval. A URL not in that layout
/// gives its store's root (`s3://bucket`, `file://`), or the URL itself for other schemes.
pub fn location_of(url: &str) -> String {
    let (root, key) = match split_url(url) {
        Some(split) => split,
        None => match url.find("://").and_then(|i| {
            let after = i + 3;
            url[after..]
                .find('/')
                .map(|j| (&url[..after + j], &url[after + j + 1..]))
        }) {
            // hdfs://namenode/<path>: the namenode is the root.
            Some(split) => split,
            None => return url.to_string(),
        },
    };
    let parts: Vec<&str> = key.split('/').collect();
    // The interval has the datasource before it and at least the file after it.
    let found = (1..parts.len().saturating_sub(1))
        .rev()
        .find(|&i| is_interval(parts[i]));
    match found {
        Some(i) if i >= 2 => format!("{root}/{}", parts[..i - 1].join("/")),
        // The datasource is the first component: the objects sit at the store's root.
        _ => {
            if root == "file://" {
                "file:///".to_string()
            } else {
                root.to_string()
            }
        }
    }
}

/// `--deep-storage-map FROM=TO`, all of them: the longest matching FROM wins; a FROM matches at a
/// `/` boundary only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeepStorageMap {
    /// (FROM, TO), both normalised: `az://` read as `azure://`, trailing `/` removed.
    pub rules: Vec<(String, String)>,
}

/// The scheme a URL starts with, among [`SCHEMES`].
fn scheme_of(url: &str) -> Option<&'static str> {
    SCHEMES.into_iter().find(|s| url.starts_with(s))
}

/// A map side: a known scheme; `az://` as `azure://`; no trailing `/`; a bucket for the object
/// stores, an absolute path for `file://`.
fn normalise(side: &str, value: &str) -> Result<String, LoadSpecError> {
    let Some(scheme) = scheme_of(side) else {
        return Err(bad(format!(
            "--deep-storage-map {value:?}: {side:?} is not a URL of s3://, gs://, azure:// (az://), hdfs:// or file://"
        )));
    };
    let mut url = match scheme {
        "az://" => format!("azure://{}", &side[5..]),
        _ => side.to_string(),
    };
    while url.ends_with('/') && url.len() > scheme_of(&url).map_or(0, str::len) {
        url.pop();
    }
    let scheme = scheme_of(&url).unwrap_or(scheme);
    let rest = &url[scheme.len()..];
    match scheme {
        "file://" if !(rest.is_empty() || rest.starts_with('/')) => Err(bad(format!(
            "--deep-storage-map {value:?}: {side:?} is not a file:// URL of an absolute path (file:///var/druid/segments)"
        ))),
        "s3://" | "gs://" | "azure://" if rest.is_empty() || rest.starts_with('/') => Err(bad(
            format!("--deep-storage-map {value:?}: {side:?} has no bucket or container"),
        )),
        "hdfs://" if rest.is_empty() => Err(bad(format!(
            "--deep-storage-map {value:?}: {side:?} has no namenode or path"
        ))),
        _ if url.len() > MAX_LOCATION_BYTES => Err(bad(format!(
            "--deep-storage-map {value:?} is longer than {MAX_LOCATION_BYTES} bytes"
        ))),
        _ => Ok(url),
    }
}

impl DeepStorageMap {
    /// Parses the flags' values. Each is split at the first `=` that a known scheme follows, since
    /// keys may hold `=`.
    pub fn parse(values: &[String]) -> Result<DeepStorageMap, LoadSpecError> {
        let mut rules: Vec<(String, String)> = Vec::new();
        for value in values {
            let split = value
                .match_indices('=')
                .map(|(i, _)| i)
                .find(|&i| scheme_of(&value[i + 1..]).is_some());
            let Some(i) = split else {
                return Err(bad(format!(
                    "--deep-storage-map {value:?} is not FROM=TO with two URLs (s3://old-bucket/prefix=s3://new-bucket/prefix)"
                )));
            };
            let from = normalise(&value[..i], value)?;
            let to = normalise(&value[i + 1..], value)?;
            if let Some((_, other)) = rules.iter().find(|(f, _)| *f == from) {
                return Err(bad(format!(
                    "--deep-storage-map maps {from} twice (to {other} and to {to}): give one rule per FROM"
                )));
            }
            rules.push((from, to));
        }
        Ok(DeepStorageMap { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// A URL rewritten by the map, or `None` when no rule matches.
    pub fn map_url(&self, url: &str) -> Option<String> {
        // `az://` objects are matched as `azure://` (ObjectRef URLs always use `azure://`).
        let url = match url.strip_prefix("az://") {
            Some(rest) => std::borrow::Cow::Owned(format!("azure://{rest}")),
            None => std::borrow::Cow::Borrowed(url),
        };
        self.rules
            .iter()
            .filter(|(from, _)| {
                url.starts_with(from.as_str())
                    && (url.len() == from.len()
                        || from.ends_with('/')
                        || url.as_bytes()[from.len()] == b'/')
            })
            .max_by_key(|(from, _)| from.len())
            .map(|(from, to)| {
                let rest = &url[from.len()..];
                if to.ends_with('/') && rest.starts_with('/') {
                    format!("{to}{}", &rest[1..])
                } else {
                    format!("{to}{rest}")
                }
            })
    }

    /// The payload with its `loadSpec` rewritten, or `None` when no rule matches it. Only the
    /// bytes of the `loadSpec` value change; its type follows the new URL's scheme (`s3` ->
    /// `s3_zip`, or `s3` when it was; `gs` -> `google`; `azure` -> `azure`; `file` -> `local`;
    /// `hdfs` -> `hdfs`), its location fields are the new URL's, every other field is kept (as
    /// is `S3Schema` from S3 to S3).
    pub fn rewrite(&self, payload: &[u8]) -> Result<Option<Vec<u8>>, LoadSpecError> {
        if self.rules.is_empty() {
            return Ok(None);
        }
        let Some(parsed) = parse(payload)? else {
            return Ok(None);
        };
        let Some(url) = self.map_url(&parsed.object.url) else {
            return Ok(None);
        };
        let spec = new_spec(&parsed, &url)?;
        let (start, end) = parsed.span;
        let mut out = Vec::with_capacity(payload.len() + spec.len());
        out.extend_from_slice(&payload[..start]);
        out.extend_from_slice(spec.as_bytes());
        out.extend_from_slice(&payload[end..]);
        Ok(Some(out))
    }
}

fn json_string(s: &str) -> String {
    // Serialising a str cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

/// The location fields of each type.
fn location_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "s3_zip" | "s3" => &["bucket", "key", "S3Schema"],
        "google" => &["bucket", "path"],
        "azure" => &["containerName", "blobPath"],
        "hdfs" | "local" => &["path"],
        _ => &[],
    }
}

/// The new loadSpec object for `url`, from the old one's fields.
fn new_spec(parsed: &Parsed, url: &str) -> Result<String, LoadSpecError> {
    let old = parsed.kind.as_str();
    let s3_old = matches!(old, "s3_zip" | "s3");
    let no_key = || {
        bad(format!(
            "--deep-storage-map maps {} to {url}, which names no object",
            parsed.object.url
        ))
    };
    // (type, fields in order)
    let (kind, new): (&str, Vec<(&str, String)>) = if let Some(rest) = url.strip_prefix("s3://") {
        let (b, k) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(no_key)?;
        let kind = if s3_old { old } else { "s3_zip" };
        (
            kind,
            vec![("bucket", json_string(b)), ("key", json_string(k))],
        )
    } else if let Some(rest) = url.strip_prefix("gs://") {
        let (b, p) = rest
            .split_once('/')
            .filter(|(b, p)| !b.is_empty() && !p.is_empty())
            .ok_or_else(no_key)?;
        (
            "google",
            vec![("bucket", json_string(b)), ("path", json_string(p))],
        )
    } else if let Some(rest) = url.strip_prefix("azure://") {
        let (c, p) = rest
            .split_once('/')
            .filter(|(c, p)| !c.is_empty() && !p.is_empty())
            .ok_or_else(no_key)?;
        (
            "azure",
            vec![
                ("containerName", json_string(c)),
                ("blobPath", json_string(p)),
            ],
        )
    } else if let Some(rest) = url.strip_prefix("file://") {
        if rest.len() <= 1 || !rest.starts_with('/') {
            return Err(no_key());
        }
        ("local", vec![("path", json_string(rest))])
    } else if let Some(rest) = url.strip_prefix("hdfs://") {
        if rest.is_empty() {
            return Err(no_key());
        }
        // A path written without a scheme stays one when the new URL names no namenode.
        let plain = old == "hdfs"
            && parsed
                .fields
                .string("path")
                .ok()
                .flatten()
                .is_some_and(|p| p.starts_with('/'));
        let path = if plain && rest.starts_with('/') {
            rest
        } else {
            url
        };
        ("hdfs", vec![("path", json_string(path))])
    } else {
        return Err(no_key());
    };
    // Old location fields that the new type does not have go; S3Schema stays from S3 to S3.
    let s3_new = matches!(kind, "s3_zip" | "s3");
    let dropped: Vec<&str> = location_fields(old)
        .iter()
        .copied()
        .filter(|f| !(s3_old && s3_new && *f == "S3Schema"))
        .collect();
    let mut written = vec![false; new.len()];
    let mut type_written = false;
    let mut parts: Vec<String> = Vec::with_capacity(parsed.fields.0.len() + new.len() + 1);
    for (key, raw) in &parsed.fields.0 {
        if key == "type" {
            if !type_written {
                parts.push(format!("\"type\":{}", json_string(kind)));
                type_written = true;
            }
        } else if let Some(i) = new.iter().position(|(k, _)| k == key) {
            if !written[i] {
                parts.push(format!("{}:{}", json_string(key), new[i].1));
                written[i] = true;
            }
        } else if !dropped.contains(&key.as_str()) {
            parts.push(format!("{}:{}", json_string(key), raw.get()));
        }
    }
    for (i, (key, value)) in new.iter().enumerate() {
        if !written[i] {
            parts.push(format!("{}:{value}", json_string(key)));
        }
    }
    Ok(format!("{{{}}}", parts.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(payload: &str) -> Option<ObjectRef> {
        object_of(payload.as_bytes()).unwrap()
    }

    fn map(rules: &[&str]) -> DeepStorageMap {
        DeepStorageMap::parse(&rules.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn rewrite(m: &DeepStorageMap, payload: &str) -> Option<String> {
        m.rewrite(payload.as_bytes())
            .unwrap()
            .map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn every_type_gives_its_url() {
        let cases = [
            (
                r#"{"loadSpec":{"type":"s3_zip","bucket":"b","key":"druid/ds/x/index.zip"},"size":12}"#,
                "s3://b/druid/ds/x/index.zip",
                Some(12),
            ),
            (
                r#"{"loadSpec":{"type":"s3","bucket":"b","key":"k"}}"#,
                "s3://b/k",
                None,
            ),
            (
                r#"{"loadSpec":{"type":"google","bucket":"g","path":"p/index.zip"},"size":0}"#,
                "gs://g/p/index.zip",
                None,
            ),
            (
                r#"{"loadSpec":{"type":"azure","containerName":"c","blobPath":"a/b.zip"},"size":-4}"#,
                "azure://c/a/b.zip",
                None,
            ),
            (
                r#"{"loadSpec":{"type":"hdfs","path":"hdfs://nn:8020/druid/x.zip"}}"#,
                "hdfs://nn:8020/druid/x.zip",
                None,
            ),
            (
                r#"{"loadSpec":{"type":"hdfs","path":"/druid/x.zip"}}"#,
                "hdfs:///druid/x.zip",
                None,
            ),
            (
                r#"{"loadSpec":{"type":"local","path":"/var/druid/x/index.zip"},"size":"7"}"#,
                "file:///var/druid/x/index.zip",
                None,
            ),
        ];
        for (payload, url, size) in cases {
            assert_eq!(
                obj(payload),
                Some(ObjectRef {
                    url: url.into(),
                    size
                }),
                "{payload}"
            );
        }
    }

    #[test]
    fn unknown_loadspecs_are_none_and_broken_ones_errors() {
        for payload in [
            r#"{"dataSource":"x"}"#,
            r#"{"loadSpec":null}"#,
            r#"{"loadSpec":"s3://b/k"}"#,
            r#"{"loadSpec":[1,2]}"#,
            r#"{"loadSpec":{}}"#,
            r#"{"loadSpec":{"type":7,"bucket":"b","key":"k"}}"#,
            r#"{"loadSpec":{"type":"cassandra","key":"k"}}"#,
            r#"{"loadSpec":{"type":"local","path":"var/x.zip"}}"#,
            r#"{"loadSpec":{"type":"hdfs","path":"rel/x.zip"}}"#,
        ] {
            assert_eq!(obj(payload), None, "{payload}");
        }
        for payload in [
            "",
            "[]",
            "\"x\"",
            "{",
            r#"{"loadSpec":{"type":"s3_zip","bucket":"b"}}"#,
            r#"{"loadSpec":{"type":"s3_zip","bucket":"","key":"k"}}"#,
            r#"{"loadSpec":{"type":"s3_zip","bucket":"a/b","key":"k"}}"#,
            r#"{"loadSpec":{"type":"s3_zip","bucket":1,"key":"k"}}"#,
            r#"{"loadSpec":{"type":"google","bucket":"b"}}"#,
            r#"{"loadSpec":{"type":"azure","containerName":"c"}}"#,
            r#"{"loadSpec":{"type":"local"}} trailing"#,
        ] {
            assert!(object_of(payload.as_bytes()).is_err(), "{payload}");
        }
        let huge = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert!(object_of(&huge).is_err());
    }

    #[test]
    fn escapes_unicode_and_duplicates() {
        // Escaped keys and values are read as Jackson reads them; the last duplicate wins.
        let p = r#"{"load\u0053pec":{"type":"s3_zip","bucket":"b","key":"a\"b\\c/\u00e9t\u00e9 %3D=?#"},"loadSpec":{"type":"s3_zip","bucket":"b2","key":"k2"}}"#;
        assert_eq!(obj(p).unwrap().url, "s3://b2/k2");
        let p =
            r#"{"loadSpec":{"type":"s3_zip","bucket":"b","key":"a\"b\\c/\u00e9t\u00e9 %3D=?#"}}"#;
        assert_eq!(obj(p).unwrap().url, "s3://b/a\"b\\c/été %3D=?#");
    }

    #[test]
    fn split_url_finds_root_and_key() {
        assert_eq!(split_url("s3://b/k/x"), Some(("s3://b", "k/x")));
        assert_eq!(split_url("gs://b/k"), Some(("gs://b", "k")));
        assert_eq!(split_url("azure://c/k"), Some(("azure://c", "k")));
        assert_eq!(split_url("file:///a/b"), Some(("file://", "a/b")));
        assert_eq!(split_url("s3://b"), None);
        assert_eq!(split_url("s3://b/"), None);
        assert_eq!(split_url("s3:///k"), None);
        assert_eq!(split_url("hdfs://nn/x"), None);
    }

    #[test]
    fn location_is_before_the_datasource() {
        let iv = "2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z";
        assert_eq!(
            location_of(&format!(
                "s3://b/druid/segments/wiki/{iv}/2024-01-03T00:00:00.000Z/0/index.zip"
            )),
            "s3://b/druid/segments"
        );
        // A unique path adds a folder after the partition.
        assert_eq!(
            location_of(&format!("s3://b/base/wiki/{iv}/v1/3/1f2e-uuid/index.zip")),
            "s3://b/base"
        );
        // The datasource at the bucket's root.
        assert_eq!(
            location_of(&format!("s3://b/wiki/{iv}/v/0/index.zip")),
            "s3://b"
        );
        assert_eq!(
            location_of(
                "hdfs://nn:8020/druid/wiki/20240101T000000.000Z_20240102T000000.000Z/v/0_index.zip"
            ),
            "hdfs://nn:8020/druid"
        );
        assert_eq!(
            location_of(
                "file:///var/druid/segments/wiki/-146136543-09-08T08:23:32.096Z_146140482-04-24T15:36:27.903Z/v/0/index.zip"
            ),
            "file:///var/druid/segments"
        );
        // Not Druid's layout: the store's root.
        assert_eq!(location_of("s3://b/some/object.zip"), "s3://b");
        assert_eq!(location_of("file:///x/y"), "file:///");
        assert_eq!(location_of("weird"), "weird");
        // An interval-like folder at the end is not taken for the interval.
        assert_eq!(location_of(&format!("gs://g/a/ds/{iv}")), "gs://g");
    }

    #[test]
    fn map_parse_splits_at_a_scheme_and_normalises() {
        let m = map(&[
            "s3://old/pre=fix/=s3://new/p/",
            "az://c/x=azure://d",
            "file:///a/=file:///b",
        ]);
        assert_eq!(
            m.rules,
            vec![
                (
                    "s3://old/pre=fix/".trim_end_matches('/').to_string(),
                    "s3://new/p".to_string()
                ),
                ("azure://c/x".to_string(), "azure://d".to_string()),
                ("file:///a".to_string(), "file:///b".to_string()),
            ]
        );
        for bad in [
            "s3://a",
            "s3://a=",
            "=s3://a",
            "http://a=s3://b",
            "s3://a=ftp://b",
            "s3://=s3://b",
            "s3:///k=s3://b",
            "file://rel=file:///b",
            "hdfs://=hdfs://x",
        ] {
            assert!(DeepStorageMap::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
        assert!(DeepStorageMap::parse(&["s3://a=s3://b".into(), "s3://a/=s3://c".into()]).is_err());
    }

    #[test]
    fn map_url_matches_at_slash_boundaries_and_longest_wins() {
        let m = map(&[
            "s3://old/druid=s3://new/dr",
            "s3://old/druid/hot=gs://g",
            "s3://root=s3://r2/",
        ]);
        assert_eq!(
            m.map_url("s3://old/druid/ds/x"),
            Some("s3://new/dr/ds/x".into())
        );
        assert_eq!(m.map_url("s3://old/druid/hot/x"), Some("gs://g/x".into()));
        assert_eq!(
            m.map_url("s3://old/druid/hotter/x"),
            Some("s3://new/dr/hotter/x".into())
        );
        assert_eq!(m.map_url("s3://old/druidx/y"), None);
        assert_eq!(m.map_url("s3://old/drui"), None);
        assert_eq!(m.map_url("s3://rootx/a"), None);
        assert_eq!(m.map_url("s3://root/a"), Some("s3://r2/a".into()));
        assert_eq!(m.map_url("gs://old/druid/x"), None);
        let f = map(&["file:///=file:///mnt/copy"]);
        assert_eq!(
            f.map_url("file:///var/x"),
            Some("file:///mnt/copy/var/x".into())
        );
        let a = map(&["azure://c=az://d/p"]);
        assert_eq!(a.map_url("azure://c/x"), Some("azure://d/p/x".into()));
        assert_eq!(a.map_url("az://c/x"), Some("azure://d/p/x".into()));
    }

    #[test]
    fn rewrite_changes_only_the_loadspec() {
        let m = map(&["s3://old/druid=s3://new/dr"]);
        let p = r#"{"dataSource":"wiki", "loadSpec" : {"type":"s3_zip","bucket":"old","key":"druid/wiki/0/index.zip","S3Schema":"s3n","extra":[1, {"a":2}]} ,"size":5,"x":"\u00e9"}"#;
        let out = rewrite(&m, p).unwrap();
        assert_eq!(
            out,
            r#"{"dataSource":"wiki", "loadSpec" : {"type":"s3_zip","bucket":"new","key":"dr/wiki/0/index.zip","S3Schema":"s3n","extra":[1, {"a":2}]} ,"size":5,"x":"\u00e9"}"#
        );
        assert_eq!(obj(&out).unwrap().url, "s3://new/dr/wiki/0/index.zip");
        // No rule matches, no loadSpec, not an object: nothing to do.
        assert_eq!(
            rewrite(
                &m,
                r#"{"loadSpec":{"type":"s3_zip","bucket":"other","key":"k"}}"#
            ),
            None
        );
        assert_eq!(rewrite(&m, r#"{"size":1}"#), None);
        assert_eq!(rewrite(&m, r#"{"loadSpec":"s3://old/druid/x"}"#), None);
        assert_eq!(rewrite(&DeepStorageMap::default(), p), None);
        assert!(m.rewrite(b"not json").is_err());
    }

    #[test]
    fn rewrite_changes_the_type_with_the_scheme() {
        let s3 = r#"{"loadSpec":{"type":"s3_zip","bucket":"old","key":"k/x.zip","S3Schema":"s3a","keep":true}}"#;
        let cases = [
            (
                "s3://old=gs://g/base",
                r#"{"loadSpec":{"type":"google","bucket":"g","keep":true,"path":"base/k/x.zip"}}"#,
            ),
            (
                "s3://old=az://c",
                r#"{"loadSpec":{"type":"azure","keep":true,"containerName":"c","blobPath":"k/x.zip"}}"#,
            ),
            (
                "s3://old=file:///mnt",
                r#"{"loadSpec":{"type":"local","keep":true,"path":"/mnt/k/x.zip"}}"#,
            ),
            (
                "s3://old=hdfs://nn:8020/d",
                r#"{"loadSpec":{"type":"hdfs","keep":true,"path":"hdfs://nn:8020/d/k/x.zip"}}"#,
            ),
        ];
        for (rule, want) in cases {
            assert_eq!(rewrite(&map(&[rule]), s3).as_deref(), Some(want), "{rule}");
        }
        let gs = r#"{"loadSpec":{"type":"google","bucket":"g","path":"p/x.zip"}}"#;
        assert_eq!(
            rewrite(&map(&["gs://g=s3://b/q"]), gs).as_deref(),
            Some(r#"{"loadSpec":{"type":"s3_zip","bucket":"b","key":"q/p/x.zip"}}"#)
        );
        let old_s3 = r#"{"loadSpec":{"type":"s3","bucket":"a","key":"x"}}"#;
        assert_eq!(
            rewrite(&map(&["s3://a=s3://b"]), old_s3).as_deref(),
            Some(r#"{"loadSpec":{"type":"s3","bucket":"b","key":"x"}}"#)
        );
        let hdfs = r#"{"loadSpec":{"type":"hdfs","path":"/druid/x.zip"}}"#;
        assert_eq!(
            rewrite(&map(&["hdfs:///druid=hdfs:///dr2"]), hdfs).as_deref(),
            Some(r#"{"loadSpec":{"type":"hdfs","path":"/dr2/x.zip"}}"#)
        );
        let local = r#"{"loadSpec":{"type":"local","path":"/var/a b/x.zip"}}"#;
        assert_eq!(
            rewrite(&map(&["file:///var=s3://b"]), local).as_deref(),
            Some(r#"{"loadSpec":{"type":"s3_zip","bucket":"b","key":"a b/x.zip"}}"#)
        );
        // Escapes in keys come out as valid JSON for the same text.
        let esc = r#"{"loadSpec":{"type":"s3_zip","bucket":"a","key":"q\"u\\o\u00e9\n"}}"#;
        let out = rewrite(&map(&["s3://a=s3://b"]), esc).unwrap();
        assert_eq!(obj(&out).unwrap().url, "s3://b/q\"u\\oé\n");
        // A rule that leaves no key is an error, not a broken payload.
        let exact = r#"{"loadSpec":{"type":"s3_zip","bucket":"a","key":"k"}}"#;
        assert!(map(&["s3://a/k=s3://b"]).rewrite(exact.as_bytes()).is_err());
    }

    #[test]
    fn rewrite_of_duplicates_keeps_one_of_each() {
        let p = r#"{"loadSpec":{"type":"x","type":"s3_zip","bucket":"a","key":"k","key":"k2"}}"#;
        assert_eq!(
            rewrite(&map(&["s3://a=s3://b"]), p).as_deref(),
            Some(r#"{"loadSpec":{"type":"s3_zip","bucket":"b","key":"k2"}}"#)
        );
    }

    proptest::proptest! {
        #[test]
        fn rewrite_keeps_every_byte_outside_the_loadspec(
            before in "[ a-z0-9\"\\\\é:,\\[\\]{}]{0,40}",
            after in "[ a-z0-9\"\\\\é:,\\[\\]{}]{0,40}",
            key in "[a-zA-Z0-9/ =%?#é\"\\\\]{1,30}",
            ws in "[ \n\t]{0,3}",
        ) {
            let before = serde_json::to_string(&before).unwrap();
            let after = serde_json::to_string(&after).unwrap();
            let key_json = serde_json::to_string(&format!("druid/{key}")).unwrap();
            let head = format!("{{\"a\":{before},{ws}\"loadSpec\"{ws}:{ws}");
            let spec = format!("{{\"type\":\"s3_zip\",\"bucket\":\"old\",\"key\":{key_json}}}");
            let tail = format!("{ws},\"z\":[{after},{{\"loadSpec\":1}}]}}");
            let payload = format!("{head}{spec}{tail}");
            let m = map(&["s3://old/druid=s3://new/x"]);
            let out = m.rewrite(payload.as_bytes()).unwrap().unwrap();
            proptest::prop_assert!(out.starts_with(head.as_bytes()));
            proptest::prop_assert!(out.ends_with(tail.as_bytes()));
            let url = object_of(&out).unwrap().unwrap().url;
            proptest::prop_assert_eq!(url, format!("s3://new/x/{key}"));
        }
    }
}
