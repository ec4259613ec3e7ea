//! What a request is, in S3's terms (Azure Blob operations are mapped onto the nearest S3 one), so
//! that tests can count e.g. how many multipart uploads were started or parts sent.

use std::fmt;

use crate::http::Head;

/// The store API a request speaks, told apart by Azure's mandatory `x-ms-version` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    S3,
    Azure,
}

/// The kind of a request. Azure's Put Block is [`Kind::UploadPart`], Put Block From URL
/// [`Kind::UploadPartCopy`], Put Block List [`Kind::CompleteMultipart`], Copy Blob
/// [`Kind::CopyObject`], Blob Batch [`Kind::DeleteObjects`]; Azure has no request that starts or
/// aborts a block upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    CreateMultipart,
    UploadPart,
    UploadPartCopy,
    CompleteMultipart,
    AbortMultipart,
    CopyObject,
    PutObject,
    /// A GET of a whole object.
    GetObject,
    /// A GET with a `Range` (or `x-ms-range`) header.
    GetRange,
    HeadObject,
    List,
    DeleteObject,
    DeleteObjects,
    Other,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::CreateMultipart,
        Kind::UploadPart,
        Kind::UploadPartCopy,
        Kind::CompleteMultipart,
        Kind::AbortMultipart,
        Kind::CopyObject,
        Kind::PutObject,
        Kind::GetObject,
        Kind::GetRange,
        Kind::HeadObject,
        Kind::List,
        Kind::DeleteObject,
        Kind::DeleteObjects,
        Kind::Other,
    ];

    /// The name used in rule specs and statistics (`upload-part`, `get-range`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::CreateMultipart => "create-multipart",
            Kind::UploadPart => "upload-part",
            Kind::UploadPartCopy => "upload-part-copy",
            Kind::CompleteMultipart => "complete-multipart",
            Kind::AbortMultipart => "abort-multipart",
            Kind::CopyObject => "copy-object",
            Kind::PutObject => "put-object",
            Kind::GetObject => "get-object",
            Kind::GetRange => "get-range",
            Kind::HeadObject => "head-object",
            Kind::List => "list",
            Kind::DeleteObject => "delete-object",
            Kind::DeleteObjects => "delete-objects",
            Kind::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub(crate) fn flavour(req: &Head) -> Flavour {
    if req.header("x-ms-version").is_some() {
        Flavour::Azure
    } else {
        Flavour::S3
    }
}

pub(crate) fn classify(req: &Head) -> Kind {
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let params: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let has = |name: &str| params.iter().any(|(k, _)| *k == name);
    let param = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let ranged = req.header("range").is_some() || req.header("x-ms-range").is_some();
    match flavour(req) {
        Flavour::S3 => s3_kind(req, path, &has, ranged),
        Flavour::Azure => azure_kind(req, param("comp"), ranged),
    }
}

fn s3_kind(req: &Head, path: &str, has: &dyn Fn(&str) -> bool, ranged: bool) -> Kind {
    let copy = req.header("x-amz-copy-source").is_some();
    // Path style: "/bucket" or "/bucket/" is the bucket itself.
    let on_bucket = path.trim_matches('/').split('/').count() <= 1;
    match req.method.as_str() {
        "POST" if has("uploads") => Kind::CreateMultipart,
        "POST" if has("uploadId") => Kind::CompleteMultipart,
        "POST" if has("delete") => Kind::DeleteObjects,
        "PUT" if has("partNumber") && copy => Kind::UploadPartCopy,
        "PUT" if has("partNumber") => Kind::UploadPart,
        "PUT" if copy => Kind::CopyObject,
        "PUT" => Kind::PutObject,
        "DELETE" if has("uploadId") => Kind::AbortMultipart,
        "DELETE" => Kind::DeleteObject,
        "HEAD" => Kind::HeadObject,
        "GET" if on_bucket || has("list-type") => Kind::List,
        "GET" if has("uploadId") => Kind::Other,
        "GET" if ranged => Kind::GetRange,
        "GET" => Kind::GetObject,
        _ => Kind::Other,
    }
}

fn azure_kind(req: &Head, comp: Option<&str>, ranged: bool) -> Kind {
    let copy = req.header("x-ms-copy-source").is_some();
    match (req.method.as_str(), comp) {
        ("PUT", Some("block")) if copy => Kind::UploadPartCopy,
        ("PUT", Some("block")) => Kind::UploadPart,
        ("PUT", Some("blocklist")) => Kind::CompleteMultipart,
        ("PUT", None) if copy => Kind::CopyObject,
        ("PUT", None) => Kind::PutObject,
        ("GET", Some("list")) => Kind::List,
        ("GET", None) if ranged => Kind::GetRange,
        ("GET", None) => Kind::GetObject,
        ("HEAD", _) => Kind::HeadObject,
        ("DELETE", _) => Kind::DeleteObject,
        ("POST", Some("batch")) => Kind::DeleteObjects,
        _ => Kind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        Head::request(text.replace('\n', "\r\n").into_bytes()).unwrap()
    }

    #[test]
    fn s3_requests_are_told_apart() {
        let cases = [
            ("POST /b/k?uploads HTTP/1.1\n\n", Kind::CreateMultipart),
            (
                "PUT /b/k?partNumber=3&uploadId=x HTTP/1.1\n\n",
                Kind::UploadPart,
            ),
            (
                "PUT /b/k?partNumber=1&uploadId=x HTTP/1.1\nx-amz-copy-source: /b/o\n\n",
                Kind::UploadPartCopy,
            ),
            ("POST /b/k?uploadId=x HTTP/1.1\n\n", Kind::CompleteMultipart),
            ("DELETE /b/k?uploadId=x HTTP/1.1\n\n", Kind::AbortMultipart),
            (
                "PUT /b/k HTTP/1.1\nx-amz-copy-source: /b/o\n\n",
                Kind::CopyObject,
            ),
            ("PUT /b/k HTTP/1.1\n\n", Kind::PutObject),
            ("GET /b/k HTTP/1.1\nRange: bytes=0-9\n\n", Kind::GetRange),
            ("GET /b/k HTTP/1.1\n\n", Kind::GetObject),
            ("GET /b?list-type=2&prefix=p HTTP/1.1\n\n", Kind::List),
            ("HEAD /b/k HTTP/1.1\n\n", Kind::HeadObject),
            ("DELETE /b/k HTTP/1.1\n\n", Kind::DeleteObject),
        ];
        for (text, kind) in cases {
            assert_eq!(classify(&head(text)), kind, "{text}");
        }
    }

    #[test]
    fn azure_requests_map_onto_s3_kinds() {
        let v = "x-ms-version: 2021-08-06\n";
        let cases = [
            (
                format!("PUT /a/c/k?comp=block&blockid=AA HTTP/1.1\n{v}\n"),
                Kind::UploadPart,
            ),
            (
                format!("PUT /a/c/k?comp=blocklist HTTP/1.1\n{v}\n"),
                Kind::CompleteMultipart,
            ),
            (
                format!("PUT /a/c/k HTTP/1.1\n{v}x-ms-copy-source: http://x/a/c/o\n\n"),
                Kind::CopyObject,
            ),
            (format!("PUT /a/c/k HTTP/1.1\n{v}\n"), Kind::PutObject),
            (
                format!("GET /a/c/k HTTP/1.1\n{v}x-ms-range: bytes=0-9\n\n"),
                Kind::GetRange,
            ),
            (
                format!("GET /a/c?restype=container&comp=list HTTP/1.1\n{v}\n"),
                Kind::List,
            ),
        ];
        for (text, kind) in cases {
            assert_eq!(classify(&head(&text)), kind, "{text}");
            assert_eq!(flavour(&head(&text)), Flavour::Azure);
        }
    }
}
