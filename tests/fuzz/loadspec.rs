//! Segment payloads (from a backup's druid_segments.csv or a live metadata store) read for their
//! `loadSpec` and rewritten by a deep-storage map: no panic, memory a small multiple of the
//! payload, and a rewrite that reads back as the mapped object.

use lifeboat::druid::loadspec::{DeepStorageMap, object_of};
use serde_json::{Value, json};

use crate::alloc::{MIB, peak};
use crate::ensure;
use crate::harness::{bounded, fuzz};
use crate::inputs::{Bytes, json_from, or_bytes};

fn payloads() -> Vec<Value> {
    let iv = "2024-01-01T00:00:00.000Z_2024-01-02T00:00:00.000Z";
    let base = |spec: Value| {
        json!({
            "dataSource": "wiki",
            "interval": "2024-01-01T00:00:00.000Z/2024-01-02T00:00:00.000Z",
            "version": "2024-01-03T00:00:00.000Z",
            "loadSpec": spec,
            "dimensions": "page,user",
            "metrics": "count",
            "shardSpec": {"type": "numbered", "partitionNum": 0, "partitions": 1},
            "binaryVersion": 9,
            "size": 4096,
            "identifier": format!("wiki_{iv}_2024-01-03T00:00:00.000Z")
        })
    };
    vec![
        base(
            json!({"type": "s3_zip", "bucket": "old", "key": format!("druid/wiki/{iv}/v/0/index.zip"), "S3Schema": "s3n"}),
        ),
        base(json!({"type": "google", "bucket": "old", "path": "druid/wiki/x/index.zip"})),
        base(
            json!({"type": "azure", "containerName": "old", "blobPath": "druid/wiki/é \"q\"/index.zip"}),
        ),
        base(json!({"type": "hdfs", "path": "/druid/wiki/0_index.zip"})),
        base(json!({"type": "local", "path": "/var/druid/wiki/index.zip"})),
        base(json!({"type": "s3_zip", "bucket": "old", "key": "a=b/%2F?#/index.zip"})),
        base(json!("not an object")),
        json!({"loadSpec": {"type": "s3_zip"}}),
    ]
}

fn map() -> DeepStorageMap {
    DeepStorageMap::parse(&[
        "s3://old/druid=s3://new/dr".to_string(),
        "s3://old=gs://g".to_string(),
        "gs://old=az://c/p".to_string(),
        "azure://old=file:///mnt/copy".to_string(),
        "hdfs:///druid=hdfs://nn:8020/d".to_string(),
        "file:///var=s3://b/v".to_string(),
    ])
    .expect("the map parses")
}

#[test]
fn segment_payload() {
    let map = map();
    fuzz(
        "segment_payload",
        or_bytes(json_from(payloads())),
        |Bytes(bytes)| {
            let ((object, rewritten), held) = peak(|| (object_of(&bytes), map.rewrite(&bytes)));
            bounded("loadspec", held, bytes.len(), MIB, 16)?;
            if let (Ok(Some(object)), Ok(Some(out))) = (&object, &rewritten) {
                let again = object_of(out);
                let want = map.map_url(&object.url);
                ensure!(
                    matches!(&again, Ok(Some(o)) if Some(&o.url) == want.as_ref()),
                    "the rewrite reads back as {again:?}, not {want:?}"
                );
            }
            ensure!(
                object.is_ok() || rewritten.is_err(),
                "a payload object_of refuses was rewritten"
            );
            Ok(())
        },
    );
}

#[test]
fn deep_nesting_and_many_fields_stay_small() {
    let deep = format!(
        "{{\"x\":{}1{},\"loadSpec\":{{\"type\":\"s3\",\"bucket\":\"old\",\"key\":\"k\"}}}}",
        "[".repeat(1 << 20),
        "]".repeat(1 << 20)
    );
    let (r, held) = peak(|| object_of(deep.as_bytes()));
    assert!(held < 4 * MIB + 2 * deep.len(), "{held}");
    let _ = r;
    let fields: String = (0..100_000).map(|i| format!("\"f{i}\":1,")).collect();
    let many =
        format!("{{\"loadSpec\":{{{fields}\"type\":\"s3\",\"bucket\":\"old\",\"key\":\"k\"}}}}");
    let (r, held) = peak(|| map().rewrite(many.as_bytes()));
    assert!(r.is_err(), "a loadSpec of 100,000 fields is refused");
    assert!(held < MIB + many.len(), "{held}");
}
