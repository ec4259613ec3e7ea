//! `lifeboat clone export|plan|apply`: connects to the clusters, prepares the source and target
//! trees, and prints the plan or the per-object report. One code path serves every system: what
//! differs (connecting, the mapping, a system's own file formats) is a [`System`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

mod systems;

use super::{CommandError, Ctx};
use crate::clone::apply::{self, Outcome, Report, Stopped};
use crate::clone::cluster::{Cluster, ExportRun, Exported, Schema};
use crate::clone::filter::Filter;
use crate::clone::kind::{ArtefactKind, PartKind};
use crate::clone::plan::{self, Mode, Plan};
use crate::clone::tree::Tree;
use crate::error::ExitClass;
use crate::metrics::Sample;
pub use systems::{Conn, Kind};
use systems::{DremioSystem, DruidSystem, Opened, System};

/// Where the source comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// An export tree, or a dremio-cloner file.
    Path(PathBuf),
    Live(Conn),
}

pub struct ExportArgs {
    pub conn: Conn,
    pub out: PathBuf,
    pub cloner: bool,
    pub filter: Filter,
    pub concurrency: usize,
}

pub struct PlanArgs {
    pub source: Source,
    pub target: Conn,
    pub filter: Filter,
    pub mode: Mode,
    pub mapping: Option<PathBuf>,
    pub concurrency: usize,
}

type ExportedOf<F> =
    Exported<<<F as System>::S as Schema>::Kind, <<F as System>::S as Schema>::Part>;
type TreeOf<F> = Tree<<<F as System>::S as Schema>::Kind>;

fn counts_json<K: ArtefactKind, P: PartKind>(e: &Exported<K, P>) -> Value {
    let mut m = serde_json::Map::new();
    for k in K::all() {
        m.insert(
            k.word().into(),
            json!(e.counts.get(k).copied().unwrap_or(0)),
        );
    }
    for (p, n) in &e.parts {
        m.insert(format!("{}s", p.word()), json!(n));
    }
    Value::Object(m)
}

/// "3 views" / "1 view" / "2 rules".
fn count(n: usize, word: &str) -> String {
    let plural = n != 1 && !word.ends_with('s');
    format!("{n} {word}{}", if plural { "s" } else { "" })
}

fn counts_text<K: ArtefactKind, P: PartKind>(e: &Exported<K, P>) -> String {
    let mut parts: Vec<String> = K::all()
        .iter()
        .filter_map(|k| e.counts.get(k).map(|n| count(*n, k.word())))
        .collect();
    parts.extend(e.parts.iter().map(|(p, n)| count(*n, p.word())));
    parts.join(", ")
}

/// Exports a cluster into a tree, saying which (`phase`: export, source or target).
async fn walk<F: System>(
    ctx: &Ctx,
    phase: &str,
    opened: &Opened<F::C>,
    tree: &TreeOf<F>,
    filter: &Filter,
    concurrency: usize,
) -> anyhow::Result<ExportedOf<F>> {
    if phase != "export" {
        ctx.progress
            .note(&format!("reading the {phase} {}", opened.url));
    }
    let run = ExportRun {
        phase,
        concurrency,
        // Only the target's ids and versions are needed later (to change it).
        keep_index: phase == "target",
        progress: ctx.progress.as_ref(),
        stop: &|| ctx.cancel.is_cancelled(),
    };
    opened.cluster.export(tree, filter, &run).await
}

/// `clone export`.
pub async fn export(ctx: &Ctx, kind: Kind, args: &ExportArgs) -> anyhow::Result<()> {
    match kind {
        Kind::Dremio => export_with::<DremioSystem>(ctx, args).await,
        Kind::Druid { .. } => export_with::<DruidSystem>(ctx, args).await,
    }
}

async fn export_with<F: System>(ctx: &Ctx, args: &ExportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let opened = F::open(ctx, &args.conn, &F::Mapping::default()).await?;
    let scratch;
    let tree = if args.cloner {
        scratch = tempfile::tempdir()?;
        TreeOf::<F>::create(scratch.path())?
    } else {
        let tree = TreeOf::<F>::create(&args.out)?;
        tree.set_scope(&args.filter.describe())?;
        tree
    };
    let exported = walk::<F>(
        ctx,
        "export",
        &opened,
        &tree,
        &args.filter,
        args.concurrency,
    )
    .await?;
    if args.cloner {
        F::write_file(&tree, &args.out, &args.filter, &opened.url)?;
    }
    for w in &exported.warnings {
        ctx.progress.note(&format!("warning: {w}"));
    }
    let secs = started.elapsed().as_secs_f64();
    let total = exported.total();
    ctx.emit(
        &json!({
            "command": "clone export",
            "cluster": {"url": opened.url, "version": opened.version},
            "out": args.out,
            "format": if args.cloner { "cloner" } else { "tree" },
            "objects": counts_json(&exported),
            "removed_files": exported.removed_files,
            "warnings": exported.warnings,
            "seconds": round3(secs),
            "objects_per_second": (total as f64 / secs.max(1e-9)).round(),
        }),
        &format!(
            "exported {total} objects ({}) from {} ({} {}) to {} in {secs:.1}s; {} stale file(s) removed",
            counts_text(&exported),
            opened.url,
            F::NAME,
            opened.version,
            args.out.display(),
            exported.removed_files
        ),
    );
    Ok(())
}

/// Writes the live catalog of `conn` (Dremio) into a new export tree at `out`, as `clone export`
/// does with no filter, printing nothing on stdout (notes go to progress); returns how many
/// objects it holds. An online backup records the fingerprint of this tree.
pub(crate) async fn export_quiet(
    ctx: &Ctx,
    conn: &Conn,
    out: &Path,
    concurrency: usize,
) -> anyhow::Result<u64> {
    let opened = DremioSystem::open(ctx, conn, &Default::default()).await?;
    let filter = Filter::default();
    let tree = TreeOf::<DremioSystem>::create(out)?;
    tree.set_scope(&filter.describe())?;
    let exported =
        walk::<DremioSystem>(ctx, "export", &opened, &tree, &filter, concurrency).await?;
    for w in &exported.warnings {
        ctx.progress.note(&format!("warning: {w}"));
    }
    Ok(exported.total() as u64)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What `plan` and `apply` share: the plan and what is needed to carry it out.
struct Prepared<F: System> {
    plan: Plan<<F::S as Schema>::Kind, <F::S as Schema>::Part>,
    /// The target, holding what its export kept to change its objects.
    target: Opened<F::C>,
    source_tree: TreeOf<F>,
    schema: F::S,
    source_label: String,
    /// Temporary trees live as long as this.
    _scratch: Vec<tempfile::TempDir>,
}

async fn prepare<F: System>(ctx: &Ctx, args: &PlanArgs, kind: Kind) -> anyhow::Result<Prepared<F>> {
    let mapping = match &args.mapping {
        Some(p) => F::load_mapping(p)?,
        None => F::Mapping::default(),
    };
    let mut scratch = Vec::new();
    let mut warnings = Vec::new();
    let mirror_refused = |why: String| -> anyhow::Error {
        CommandError::Refused(format!(
            "--mode mirror deletes what the source lacks, but {why}: a mirror could delete what the export left out"
        ))
        .into()
    };
    let (source_tree, source_label) = match &args.source {
        Source::Path(p) if p.is_dir() => {
            let tree = TreeOf::<F>::open(p)?;
            if args.mode == Mode::Mirror {
                let wanted = args.filter.describe();
                match tree.scope() {
                    Some(scope) if scope == wanted => {}
                    Some(scope) => {
                        return Err(mirror_refused(format!(
                            "{} was exported with the filters {scope}, and this run has {wanted}; plan and apply with the export's filters",
                            p.display()
                        )));
                    }
                    None => {
                        return Err(mirror_refused(format!(
                            "{} does not say which filters made it; export it again with this lifeboat",
                            p.display()
                        )));
                    }
                }
            }
            (tree, p.display().to_string())
        }
        Source::Path(p) if p.is_file() && args.mode == Mode::Mirror => {
            return Err(mirror_refused(format!(
                "the dremio-cloner file {} does not say what its export left out; use --mode update, or a tree or live source",
                p.display()
            )));
        }
        Source::Path(p) if p.is_file() => {
            let dir = tempfile::tempdir()?;
            let tree = TreeOf::<F>::create(dir.path())?;
            warnings.extend(F::import(p, &tree, &args.filter)?);
            scratch.push(dir);
            (tree, format!("{} (dremio-cloner file)", p.display()))
        }
        Source::Path(p) => {
            return Err(CommandError::Usage(format!(
                "--source {}: no such export tree or dremio-cloner file",
                p.display()
            ))
            .into());
        }
        Source::Live(conn) => {
            let source = F::open(ctx, conn, &F::Mapping::default()).await?;
            let dir = tempfile::tempdir()?;
            let tree = TreeOf::<F>::create(dir.path())?;
            let e = walk::<F>(
                ctx,
                "source",
                &source,
                &tree,
                &args.filter,
                args.concurrency,
            )
            .await?;
            warnings.extend(e.warnings);
            scratch.push(dir);
            (
                tree,
                format!("{} ({} {})", source.url, F::NAME, source.version),
            )
        }
    };
    let target = F::open(ctx, &args.target, &mapping).await?;
    F::writes_from(&target.cluster, &source_label);
    let target_dir = tempfile::tempdir()?;
    let target_tree = TreeOf::<F>::create(target_dir.path())?;
    let target_filter = F::target_filter(&args.filter, &mapping);
    let exported = walk::<F>(
        ctx,
        "target",
        &target,
        &target_tree,
        &target_filter,
        args.concurrency,
    )
    .await?;
    scratch.push(target_dir);
    let schema = F::schema(mapping, kind);
    let mut plan = plan::make(&plan::Inputs {
        schema: &schema,
        source: &source_tree,
        target: &target_tree,
        index: &exported.index,
        cluster: target.cluster.as_ref(),
        filter: &args.filter,
        mode: args.mode,
    })?;
    plan.warnings.extend(warnings);
    for w in &plan.warnings {
        ctx.progress.note(&format!("warning: {w}"));
    }
    Ok(Prepared {
        plan,
        target,
        source_tree,
        schema,
        source_label,
        _scratch: scratch,
    })
}

/// Prints `head` with an `items` array written one item at a time: a 10,000-object report is never
/// held whole in memory.
fn print_json_with_items(head: &Value, items: impl Iterator<Item = Value>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let text = head.to_string();
    let open = text.strip_suffix('}').unwrap_or("{");
    write!(
        out,
        "{open}{}\"items\":[",
        if open == "{" { "" } else { "," }
    )?;
    for (n, item) in items.enumerate() {
        if n > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut out, &item)?;
    }
    writeln!(out, "]}}")?;
    out.flush()?;
    Ok(())
}

/// The plan, as JSON (`--json`) or as one line per object that needs something.
fn print_plan<F: System>(
    ctx: &Ctx,
    p: &Prepared<F>,
    mode: Mode,
    command: &str,
) -> anyhow::Result<()> {
    let s = p.plan.summary();
    if ctx.json {
        let head = json!({
            "command": command,
            "mode": mode.word(),
            "source": p.source_label,
            "target": {"url": p.target.url, "version": p.target.version},
            "summary": s,
            "warnings": p.plan.warnings,
        });
        return print_json_with_items(&head, p.plan.items.iter().map(|i| i.to_json(&p.plan.items)));
    }
    for line in p.plan.items.iter().filter_map(|i| p.plan.line(i)) {
        crate::output::line(&line.to_string());
    }
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    crate::output::line(&format!(
        "plan ({} mode) for {} from {}: {} to create, {} to update, {} to delete, {} unchanged, {} left, {} blocked",
        mode.word(),
        p.target.url,
        p.source_label,
        n("create"),
        n("update"),
        n("delete"),
        n("unchanged"),
        n("left"),
        n("blocked")
    ));
    Ok(())
}

/// What a Dremio plan would do, counted per action, changing nothing (`doctor`'s drift of a
/// secondary).
pub(crate) async fn plan_summary(
    ctx: &Ctx,
    args: &PlanArgs,
) -> anyhow::Result<serde_json::Map<String, Value>> {
    plan_counts(ctx, args, Kind::Dremio).await
}

/// What a plan of either kind would do, counted per action (`create`, `update`, `delete`,
/// `unchanged`, `left`, `blocked`), changing nothing and printing nothing on stdout.
pub(crate) async fn plan_counts(
    ctx: &Ctx,
    args: &PlanArgs,
    kind: Kind,
) -> anyhow::Result<serde_json::Map<String, Value>> {
    Ok(match kind {
        Kind::Dremio => prepare::<DremioSystem>(ctx, args, kind)
            .await?
            .plan
            .summary(),
        Kind::Druid { .. } => prepare::<DruidSystem>(ctx, args, kind)
            .await?
            .plan
            .summary(),
    })
}

/// What [`apply_quiet`] did.
#[derive(Debug, Clone, Default)]
pub struct QuietApply {
    /// Objects by outcome: created, updated, deleted, unchanged, failed, skipped (all present).
    pub counts: BTreeMap<&'static str, u64>,
    /// The first [`MAX_QUIET_FAILED`] objects not applied, as "label: reason".
    pub failed: Vec<String>,
    /// The whole run: reading both sides, planning and applying.
    pub seconds: f64,
}

/// How many failures [`QuietApply::failed`] names.
pub const MAX_QUIET_FAILED: usize = 20;

/// `clone apply` printing nothing on stdout (a standby refresh's clone step): the same checks
/// (mirror mode needs `allow_delete`), plan and apply. Objects that failed or were skipped are in
/// the answer, not an error; an interrupted run or a target that stopped answering is an error.
#[allow(dead_code)] // used by commands/dr (standby refresh)
pub(crate) async fn apply_quiet(
    ctx: &Ctx,
    kind: Kind,
    args: &PlanArgs,
    allow_delete: bool,
) -> anyhow::Result<QuietApply> {
    match kind {
        Kind::Dremio => apply_quiet_with::<DremioSystem>(ctx, args, kind, allow_delete).await,
        Kind::Druid { .. } => apply_quiet_with::<DruidSystem>(ctx, args, kind, allow_delete).await,
    }
}

#[allow(dead_code)] // used by commands/dr (standby refresh)
async fn apply_quiet_with<F: System>(
    ctx: &Ctx,
    args: &PlanArgs,
    kind: Kind,
    allow_delete: bool,
) -> anyhow::Result<QuietApply> {
    let started = Instant::now();
    refuse_mirror_without_delete(args.mode, allow_delete)?;
    let p = prepare::<F>(ctx, args, kind).await?;
    let report = run_apply(ctx, &p, args.concurrency).await;
    let counts = tally(&p, &report);
    stopped_error(&p, &report, &counts)?;
    let failed = p
        .plan
        .items
        .iter()
        .zip(&report.outcomes)
        .filter_map(|(it, o)| failure_reason(o).map(|m| format!("{}: {m}", it.label())))
        .take(MAX_QUIET_FAILED)
        .collect();
    Ok(QuietApply {
        counts,
        failed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `clone plan`.
pub async fn plan(ctx: &Ctx, kind: Kind, args: &PlanArgs) -> anyhow::Result<()> {
    match kind {
        Kind::Dremio => plan_with::<DremioSystem>(ctx, args, kind).await,
        Kind::Druid { .. } => plan_with::<DruidSystem>(ctx, args, kind).await,
    }
}

async fn plan_with<F: System>(ctx: &Ctx, args: &PlanArgs, kind: Kind) -> anyhow::Result<()> {
    let p = prepare::<F>(ctx, args, kind).await?;
    print_plan(ctx, &p, args.mode, "clone plan")
}

/// What only `apply` takes.
pub struct ApplyOpts {
    pub dry_run: bool,
    pub allow_delete: bool,
    pub metrics_file: Option<PathBuf>,
}

type Counts = std::collections::BTreeMap<&'static str, u64>;

/// `clone apply`, with its metrics (success, duration, objects by outcome) when asked for.
pub async fn apply(ctx: &Ctx, kind: Kind, args: &PlanArgs, opts: &ApplyOpts) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut outcomes = Counts::new();
    let result = match kind {
        Kind::Dremio => {
            apply_and_report::<DremioSystem>(ctx, args, opts, kind, &mut outcomes).await
        }
        Kind::Druid { .. } => {
            apply_and_report::<DruidSystem>(ctx, args, opts, kind, &mut outcomes).await
        }
    };
    if opts.metrics_file.is_some() && !opts.dry_run {
        let target = args.target.urls.join(",");
        let labels = [("cluster", target.as_str()), ("command", "clone")];
        let mut samples =
            crate::metrics::run_samples(&labels, result.is_ok(), started.elapsed().as_secs_f64());
        for (outcome, n) in &outcomes {
            samples.push(Sample::new(
                "lifeboat_clone_objects",
                &[labels[0], labels[1], ("outcome", outcome)],
                *n as f64,
            ));
        }
        ctx.metrics(opts.metrics_file.as_deref(), &samples);
    }
    result
}

async fn apply_and_report<F: System>(
    ctx: &Ctx,
    args: &PlanArgs,
    opts: &ApplyOpts,
    kind: Kind,
    outcomes: &mut Counts,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let (dry_run, allow_delete) = (opts.dry_run, opts.allow_delete);
    if !dry_run {
        refuse_mirror_without_delete(args.mode, allow_delete)?;
    }
    let p = prepare::<F>(ctx, args, kind).await?;
    if dry_run {
        return print_plan(ctx, &p, args.mode, "clone apply --dry-run");
    }
    let report = run_apply(ctx, &p, args.concurrency).await;
    let total = started.elapsed().as_secs_f64();
    print_report(ctx, &p, args.mode, &report, total, outcomes)
}

/// Mirror mode deletes: it needs the operator's `--allow-delete`.
fn refuse_mirror_without_delete(mode: Mode, allow_delete: bool) -> Result<(), CommandError> {
    if mode == Mode::Mirror && !allow_delete {
        return Err(CommandError::Usage(
            "--mode mirror deletes objects of the target that the source lacks: add --allow-delete to confirm (see them first with `lifeboat clone plan --mode mirror`)".into(),
        ));
    }
    Ok(())
}

/// Carries out a prepared plan on its target.
async fn run_apply<F: System>(ctx: &Ctx, p: &Prepared<F>, concurrency: usize) -> Report {
    apply::apply(
        &p.plan,
        apply::Target {
            schema: Arc::new(p.schema.clone()),
            cluster: p.target.cluster.clone(),
            source: p.source_tree.clone(),
        },
        concurrency,
        ctx.progress.as_ref(),
        &|| ctx.cancel.is_cancelled(),
    )
    .await
}

/// Objects by outcome, every outcome present (0 when none).
fn tally<F: System>(p: &Prepared<F>, r: &Report) -> Counts {
    let mut counts: Counts = [
        "created",
        "updated",
        "deleted",
        "unchanged",
        "failed",
        "skipped",
    ]
    .into_iter()
    .map(|k| (k, 0))
    .collect();
    for (it, o) in p.plan.items.iter().zip(&r.outcomes) {
        *counts.entry(o.word(it.action)).or_default() += 1;
    }
    counts
}

/// Why an object was not applied.
fn failure_reason(o: &Outcome) -> Option<&str> {
    match o {
        Outcome::Failed(m) | Outcome::Skipped(m) => Some(m),
        _ => None,
    }
}

/// A run that stopped early (a signal, a target gone) is an error saying what to do.
fn stopped_error<F: System>(p: &Prepared<F>, r: &Report, counts: &Counts) -> anyhow::Result<()> {
    let bad = counts["failed"] + counts["skipped"];
    match r.stopped {
        Some(Stopped::Signal) => Err(CommandError::Reported {
            class: ExitClass::Interrupted,
            message: format!(
                "interrupted: {bad} object(s) were not applied; run the same command again to finish"
            ),
        }
        .into()),
        Some(Stopped::Unreachable(n)) => Err(CommandError::Reported {
            class: ExitClass::Storage,
            message: format!(
                "{} stopped answering ({n} requests in a row got no answer): {bad} object(s) were not applied; run the same command again once it is back",
                p.target.url
            ),
        }
        .into()),
        None => Ok(()),
    }
}

fn print_report<F: System>(
    ctx: &Ctx,
    p: &Prepared<F>,
    mode: Mode,
    r: &Report,
    total_seconds: f64,
    counts: &mut Counts,
) -> anyhow::Result<()> {
    *counts = tally(p, r);
    let reason = |o: &Outcome| failure_reason(o).map(str::to_string);
    // Over the whole run: reading both sides is most of an hourly run that changes little.
    let per_sec = (p.plan.items.len() as f64 / total_seconds.max(1e-9)).round();
    if ctx.json {
        let head = json!({
            "command": "clone apply",
            "mode": mode.word(),
            "source": p.source_label,
            "target": {"url": p.target.url, "version": p.target.version},
            "summary": counts,
            "requests": r.requests,
            "seconds": round3(total_seconds),
            "apply_seconds": round3(r.seconds),
            "objects_per_second": per_sec,
            "warnings": p.plan.warnings,
        });
        print_json_with_items(
            &head,
            p.plan.items.iter().enumerate().map(|(i, it)| {
                let o = &r.outcomes[i];
                let mut v = it.to_json(&p.plan.items);
                v["outcome"] = json!(o.word(it.action));
                if let Some(m) = reason(o) {
                    v["reason"] = json!(m);
                }
                if !r.warnings[i].is_empty() {
                    v["warnings"] = json!(r.warnings[i]);
                }
                v
            }),
        )?;
    } else {
        for (i, it) in p.plan.items.iter().enumerate() {
            let o = &r.outcomes[i];
            let word = o.word(it.action);
            if word == "unchanged" && r.warnings[i].is_empty() {
                continue;
            }
            let mut l = format!("{word:<9} {:<10} {}", it.what.word(), it.label());
            if let Some(m) = reason(o) {
                l.push_str(&format!(": {m}"));
            }
            for w in &r.warnings[i] {
                l.push_str(&format!("\n          warning: {w}"));
            }
            crate::output::line(&l.to_string());
        }
        crate::output::line(&format!(
            "applied to {} ({} mode): {} created, {} updated, {} deleted, {} unchanged, {} failed, {} skipped; {} requests in {:.1}s; {:.1}s in all ({per_sec} objects/s)",
            p.target.url,
            mode.word(),
            counts["created"],
            counts["updated"],
            counts["deleted"],
            counts["unchanged"],
            counts["failed"],
            counts["skipped"],
            r.requests,
            r.seconds,
            total_seconds
        ));
    }
    stopped_error(p, r, counts)?;
    let bad = counts["failed"] + counts["skipped"];
    if bad > 0 {
        return Err(CommandError::Reported {
            class: ExitClass::Partial,
            message: format!(
                "{bad} object(s) were not applied (failed {}, skipped {}): see the report",
                counts["failed"], counts["skipped"]
            ),
        }
        .into());
    }
    Ok(())
}
