//! Does a coordinator serve what it should? Against a reference fingerprint (the backup's own,
//! an export tree's): export it into a scratch tree and diff the fingerprints. Against a live
//! primary: clone's plan in mirror mode, which must change nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::clone::filter::Filter;
use crate::clone::fingerprint::{self, Fingerprint};
use crate::clone::plan::Mode;
use crate::commands::Ctx;
use crate::commands::clone::{Conn, Kind, PlanArgs, Source};
use crate::dremio::rest::{self, Coordinator, Credentials};

/// How many REST calls an export or a plan runs at once.
pub(crate) const CONCURRENCY: usize = 8;

/// What a coordinator is compared with.
#[derive(Debug, Clone)]
pub enum Reference {
    /// A fingerprint file (a backup's, extracted by the restore).
    Fingerprint(PathBuf),
    /// An export tree (`--expect-tree`, `clone_tree`).
    Tree(PathBuf),
    /// Nothing to compare with: only serving and logging in are checked (a warning).
    None,
}

impl Reference {
    /// What the report calls it.
    pub fn describe(&self) -> String {
        match self {
            Reference::Fingerprint(p) => {
                format!("the backup's catalog fingerprint ({})", p.display())
            }
            Reference::Tree(p) => format!("the export tree {}", p.display()),
            Reference::None => "nothing".into(),
        }
    }
}

/// The verdict.
#[derive(Debug, Clone)]
pub struct Validation {
    pub ok: bool,
    /// One line for the timeline.
    pub summary: String,
    pub json: Value,
}

/// Logs in to the active coordinator of `conn` (its credentials from `conn.env_prefix`).
pub(crate) async fn log_in(ctx: &Ctx, conn: &Conn) -> anyhow::Result<String> {
    let client = rest::client(&conn.tls)?;
    let active = rest::find_active(&client, &conn.urls).await?;
    let prefix = conn.env_prefix;
    let creds = Credentials::from_env(&|name: &str| {
        std::env::var(name.replacen("LIFEBOAT_DREMIO_", prefix, 1)).ok()
    })?;
    let progress = ctx.progress.clone();
    let notify: rest::Notify = Arc::new(move |line: &str| progress.note(line));
    let coord = Coordinator::login(client, &active, &creds, notify).await?;
    Ok(coord.base.clone())
}

/// Exports `conn` into `scratch` (a new folder) and compares its fingerprint with `reference`.
pub async fn against(
    ctx: &Ctx,
    conn: &Conn,
    reference: &Reference,
    scratch: &Path,
) -> anyhow::Result<Validation> {
    use anyhow::Context;
    let expected = match reference {
        Reference::None => {
            let base = log_in(ctx, conn).await?;
            return Ok(Validation {
                ok: true,
                summary: format!(
                    "{base} serves and accepts the login; nothing to compare with (no catalog fingerprint in the backup, no clone_tree)"
                ),
                json: json!({"compared": false, "coordinator": base}),
            });
        }
        Reference::Fingerprint(path) => Fingerprint::read_file(path)
            .with_context(|| format!("the backup's catalog fingerprint {}", path.display()))?,
        Reference::Tree(path) => Fingerprint::of_tree(path)
            .with_context(|| format!("the reference tree {}", path.display()))?,
    };
    let objects = crate::commands::clone::export_quiet(ctx, conn, scratch, CONCURRENCY)
        .await
        .context("export of the restored coordinator's catalog")?;
    let actual = Fingerprint::of_tree(scratch)
        .with_context(|| format!("the export {}", scratch.display()))?;
    let diff = fingerprint::diff(&expected, &actual);
    let ok = diff.is_empty();
    let summary = if ok {
        format!(
            "{objects} objects exported; {} files identical to {}",
            diff.counts.same,
            reference.describe()
        )
    } else {
        format!(
            "what it serves differs from {}: {}",
            reference.describe(),
            diff.summary()
        )
    };
    Ok(Validation {
        ok,
        summary,
        json: json!({
            "compared": true,
            "reference": reference.describe(),
            "objects": objects,
            "diff": diff.to_json(),
        }),
    })
}

/// Clone's plan from `source` to `target` in mirror mode: what it would create, update or delete
/// must be nothing.
pub(crate) async fn against_source(
    ctx: &Ctx,
    source: Source,
    target: &Conn,
) -> anyhow::Result<Validation> {
    let args = PlanArgs {
        source,
        target: target.clone(),
        filter: Filter::new::<&'static str>(&[], &[], &[]),
        mode: Mode::Mirror,
        mapping: None,
        concurrency: CONCURRENCY,
    };
    let counts = crate::commands::clone::plan_counts(ctx, &args, Kind::Dremio).await?;
    let n = |k: &str| counts.get(k).and_then(Value::as_u64).unwrap_or(0);
    let drift = n("create") + n("update") + n("delete");
    let ok = drift == 0;
    let summary = if ok {
        format!(
            "the standby's catalog matches its source ({} objects unchanged)",
            n("unchanged")
        )
    } else {
        format!(
            "the standby's catalog still differs from its source after the clone: {} to create, {} to update, {} to delete",
            n("create"),
            n("update"),
            n("delete")
        )
    };
    Ok(Validation {
        ok,
        summary,
        json: json!({"compared": true, "plan": Value::Object(counts)}),
    })
}
