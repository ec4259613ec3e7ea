//! `deepstore.segments`: does every used segment of the live metadata store have its object in
//! deep storage? The segments are streamed from `druid_segments` and checked by
//! `druid::deepstore` (listing the roots, HEADs with bounded concurrency). Missing objects or
//! objects of the wrong size fail; orphaned objects under the roots warn; an unreadable metadata
//! store skips the check (the metastore checks say why).

use serde_json::json;

use super::{Area, Check};
use crate::druid::deepstore::{self, CheckOptions, Consistency};
use crate::druid::metastore::{self, MetaConfig};

const ID: &str = "deepstore.segments";
const A: Area = Area::Metastore;

/// Connects to the metadata store, reads its segments and checks them against deep storage.
pub async fn checks(
    config: &MetaConfig,
    options: &CheckOptions,
    cancel: tokio_util::sync::CancellationToken,
) -> Vec<Check> {
    let shown = config.url.shown();
    let mut db = match metastore::connect(config).await {
        Ok(db) => db,
        Err(e) => {
            return vec![Check::skip(
                ID,
                A,
                format!(
                    "the metadata store {shown} cannot be read ({e}), so its segments cannot be checked"
                ),
            )];
        }
    };
    let result = deepstore::check(deepstore::segments_of_db(&mut db), options, cancel).await;
    vec![judge(&shown, result)]
}

/// The verdict on a check's result.
pub fn judge(store: &str, result: anyhow::Result<Consistency>) -> Check {
    let c = match result {
        Ok(c) => c,
        Err(e) => {
            let text = crate::error::chain(e.as_ref());
            // The table itself is missing or unreadable: nothing to judge.
            if e.downcast_ref::<metastore::MetaError>().is_some() {
                return Check::skip(
                    ID,
                    A,
                    format!("the segments of {store} cannot be read: {text}"),
                );
            }
            return Check::fail(ID, A, format!("deep storage cannot be checked: {text}"))
                .remedy(
                    "check the deep-storage credentials and endpoint in this environment (AWS_*, AZURE_STORAGE_*, GOOGLE_*) or give a configured location, and that the bucket exists",
                );
        }
    };
    let evidence = |check: Check| {
        check
            .evidence("checked", c.checked)
            .evidence("missing", c.missing)
            .evidence("missing_sample", json!(c.missing_sample))
            .evidence("wrong_size", c.wrong_size)
            .evidence("wrong_size_sample", json!(c.wrong_size_sample))
            .evidence("orphaned", json!(c.orphaned))
            .evidence("orphaned_sample", json!(c.orphaned_sample))
            .evidence("unchecked", c.unchecked)
            .evidence("roots", json!(c.roots))
    };
    if !c.ok() {
        let first = c
            .missing_sample
            .first()
            .or(c.wrong_size_sample.first())
            .map(|n| format!("; first: {n}"))
            .unwrap_or_default();
        let check = Check::fail(
            ID,
            A,
            format!(
                "{} of {} used segments have no object in deep storage, {} an object of the wrong size{first}",
                c.missing, c.checked, c.wrong_size
            ),
        )
        .remedy(
            "restore the missing objects from a copy of deep storage (or find what deleted them: a kill task, a lifecycle rule); until then Historicals cannot load these segments",
        );
        return evidence(check);
    }
    if let Some(n) = c.orphaned.filter(|n| *n > 0) {
        let first = c
            .orphaned_sample
            .first()
            .map(|n| format!("; first: {n}"))
            .unwrap_or_default();
        let check = Check::warn(
            ID,
            A,
            format!(
                "all {} used segments have their objects; {n} object(s) under {} belong to no segment{first}",
                c.checked,
                c.roots.join(", ")
            ),
        )
        .remedy(
            "orphaned objects cost storage only: a kill task or a partial push leaves them; delete them once no backup of the metadata store references them",
        );
        return evidence(check);
    }
    let mut summary = format!(
        "all {} used segments have their objects in deep storage",
        c.checked
    );
    if c.unchecked > 0 {
        summary.push_str(&format!(
            " ({} HDFS or unknown loadSpecs not checked)",
            c.unchecked
        ));
    }
    evidence(Check::pass(ID, A, summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn missing_fails_orphans_warn_and_all_present_passes() {
        let ok = Consistency {
            checked: 3,
            orphaned: Some(0),
            roots: vec!["s3://b/druid".into()],
            ..Default::default()
        };
        assert_eq!(judge("pg", Ok(ok.clone())).status, Status::Pass);
        let orphans = Consistency {
            orphaned: Some(2),
            orphaned_sample: vec!["s3://b/druid/x".into()],
            ..ok.clone()
        };
        let w = judge("pg", Ok(orphans));
        assert_eq!(w.status, Status::Warn);
        assert!(w.summary.contains("s3://b/druid/x"), "{}", w.summary);
        let missing = Consistency {
            missing: 1,
            missing_sample: vec!["s3://b/druid/y (segment s)".into()],
            ..ok
        };
        let f = judge("pg", Ok(missing));
        assert_eq!(f.status, Status::Fail);
        assert!(f.summary.contains("1 of 3") && f.summary.contains("druid/y"));
        assert_eq!(f.evidence["missing"], 1);
    }

    #[test]
    fn an_unreadable_table_skips_and_a_store_failure_fails() {
        let e = anyhow::Error::from(metastore::MetaError::Query {
            what: "reading druid_segments".into(),
            why: "no such table".into(),
        });
        assert_eq!(judge("pg", Err(e)).status, crate::doctor::Status::Skip);
        let e = anyhow::Error::from(crate::store::StoreError::Denied {
            url: "s3://b".into(),
            detail: "AccessDenied".into(),
            advice: "check".into(),
        });
        assert_eq!(judge("pg", Err(e)).status, crate::doctor::Status::Fail);
    }
}
