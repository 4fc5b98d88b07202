//! `stagelib promote`: run a release promotion flavor against a lease's stack.
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::context::Context;
use super::output;
use crate::lease::{Lease, LeaseId};
use crate::promote::exec::{ExecOptions, RunReport, TaskResult};
use crate::promote::graph::Plan;
use crate::promote::input::{PartialUpdate, PromotionInput};
use crate::promote::run::{self, PromoteRequest, RunOptions};
use crate::promote::snowman::Fate;

/// Run release promotion (promote / push / ship) against a lease's stack, as
/// Taskcluster would for a staging release: every task talks to the lease's
/// own Balrog, Bouncer, S3 and Ship-it, under the lease's namespace.
///
/// Examples:
///   stagelib promote --lease $LEASE --flavor promote_firefox --version 158.0b5 \
///       --partial 158.0b4 --partial 158.0b3 --partial 158.0b2
///   stagelib promote --lease $LEASE --flavor push_firefox --version 158.0b5 \
///       --partial 158.0b4 … --previous-graph-id $PROMOTE_GRAPH
///   stagelib promote --lease $LEASE --flavor promote_firefox … --dry-run
///   stagelib promote --lease $LEASE --resume $GRAPH          (after a crash or Ctrl-C)
///   stagelib promote --lease $LEASE --list
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The lease whose stack the release runs against.
    #[arg(long)]
    pub lease: LeaseId,
    /// promote_firefox, push_firefox, ship_firefox, promote_devedition, … (legacy: promote_firefox_rc, ship_firefox_rc)
    #[arg(long, required_unless_present_any = ["resume", "list", "input"])]
    pub flavor: Option<String>,
    /// The version to promote (e.g. 158.0b5).
    #[arg(long)]
    pub version: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub build_number: u32,
    /// A previous version to build partial updates from, VERSION or VERSION:BUILD (repeatable).
    #[arg(long = "partial")]
    pub partials: Vec<String>,
    /// Earlier graphs this one continues (promote for push; promote and push for ship).
    #[arg(long = "previous-graph-id")]
    pub previous_graph_ids: Vec<String>,
    /// Required by ship flavors.
    #[arg(long)]
    pub next_version: Option<String>,
    /// When the release goes live (ISO-8601); Balrog scheduling uses max(ETA, now + 5 min).
    #[arg(long)]
    pub release_eta: Option<String>,
    /// Kinds to run again even if an earlier graph ran them (repeatable).
    #[arg(long = "rebuild-kind")]
    pub rebuild_kinds: Vec<String>,
    /// Labels never replaced by earlier tasks (repeatable).
    #[arg(long = "do-not-optimize")]
    pub do_not_optimize: Vec<String>,
    /// The whole action input as JSON (the `release-promotion` schema) instead of the flags above.
    #[arg(long, conflicts_with_all = ["flavor", "version", "partials", "previous_graph_ids"])]
    pub input: Option<PathBuf>,
    /// Platforms (repeatable; default all: linux-i686 linux-x86_64 linux-aarch64 mac win32 win64 win64-aarch64).
    #[arg(long = "platform")]
    pub platforms: Vec<String>,
    /// Locales, comma-separated (default Firefox's 103 shipped locales).
    #[arg(long, value_delimiter = ',')]
    pub locales: Vec<String>,
    /// Take MARs from this directory (`update/<platform>/<locale>/…`) instead of generating them.
    #[arg(long)]
    pub artifacts: Option<PathBuf>,
    /// Sign the scheduled Balrog change off as USER:ROLE (repeatable).
    #[arg(long = "signoff")]
    pub signoffs: Vec<String>,
    /// How many tasks run at once.
    #[arg(long, default_value_t = 16)]
    pub parallel: usize,
    /// Validate and print the graph without running anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Resume a stored graph (tasks already completed are not run again).
    #[arg(long)]
    pub resume: Option<String>,
    /// List the graphs run against the lease.
    #[arg(long)]
    pub list: bool,
    /// If the release fails, hold the lease (keep its stack up for debugging,
    /// up to the maximum lifetime) — at most `max_holds` per user.
    #[arg(long)]
    pub hold_on_failure: bool,
}

fn input_from(args: &Args) -> anyhow::Result<PromotionInput> {
    if let Some(p) = &args.input {
        let text = std::fs::read_to_string(p).with_context(|| format!("--input {}", p.display()))?;
        return serde_json::from_str(&text).map_err(|e| super::usage(format!("--input {}: {e}", p.display())));
    }
    let mut partial_updates = BTreeMap::new();
    for p in &args.partials {
        let (v, b) = match p.split_once(':') {
            Some((v, b)) => (
                v.to_string(),
                b.trim_start_matches("build")
                    .parse::<u32>()
                    .map_err(|_| super::usage(format!("--partial {p}: the build number after `:` is not a number")))?,
            ),
            None => (p.clone(), 1),
        };
        partial_updates.insert(
            v,
            PartialUpdate {
                build_number: b,
                locales: vec!["en-US".into()],
            },
        );
    }
    Ok(PromotionInput {
        release_promotion_flavor: args.flavor.clone().unwrap_or_default(),
        build_number: args.build_number,
        version: args.version.clone().unwrap_or_default(),
        next_version: args.next_version.clone().unwrap_or_default(),
        partial_updates,
        previous_graph_ids: args.previous_graph_ids.clone(),
        rebuild_kinds: (!args.rebuild_kinds.is_empty()).then(|| args.rebuild_kinds.clone()),
        do_not_optimize: (!args.do_not_optimize.is_empty()).then(|| args.do_not_optimize.clone()),
        release_eta: args.release_eta.clone().unwrap_or_default(),
        ..Default::default()
    })
}

fn signoffs(args: &Args) -> anyhow::Result<Vec<(String, String)>> {
    args.signoffs
        .iter()
        .map(|s| {
            s.split_once(':')
                .filter(|(u, r)| !u.is_empty() && !r.is_empty())
                .map(|(u, r)| (u.to_string(), r.to_string()))
                .ok_or_else(|| super::usage(format!("--signoff {s}: expected USER:ROLE")))
        })
        .collect()
}

fn print_plan(plan: &Plan, json: bool) -> anyhow::Result<()> {
    if json {
        let tasks: Vec<serde_json::Value> = plan
            .fates
            .iter()
            .map(|(l, f)| {
                let t = &plan.tasks[l];
                serde_json::json!({"label": l, "kind": t.kind, "phase": t.phase, "platform": t.platform, "locale": t.locale,
                    "deps": t.deps, "task_id": plan.label_to_taskid.get(l),
                    "fate": match f { Fate::Run => "run".to_string(), Fate::Replaced(id) => format!("replaced:{id}") }})
            })
            .collect();
        return output::json(&serde_json::json!({"graph_id": plan.graph_id, "flavor": plan.flavor,
            "release": plan.release, "parameters_from": plan.parameters_from, "target_kinds": plan.resolved.target_kinds, "tasks": tasks}));
    }
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (l, f) in &plan.fates {
        let e = by_kind.entry(plan.tasks[l].kind.as_str()).or_default();
        match f {
            Fate::Run => e.0 += 1,
            Fate::Replaced(_) => e.1 += 1,
        }
    }
    println!(
        "graph {} — {} {} build {} ({} platforms × {} locales, {} partials)",
        plan.graph_id,
        plan.flavor,
        plan.release.version,
        plan.release.build_number,
        plan.release.platforms.len(),
        plan.release.locales.len(),
        plan.release.partials.len()
    );
    let rows: Vec<Vec<String>> = by_kind
        .iter()
        .map(|(k, (run, rep))| vec![k.to_string(), run.to_string(), rep.to_string()])
        .collect();
    output::table(&["KIND", "RUN", "REPLACED (earlier graphs)"], &rows);
    Ok(())
}

/// Print the report: failures with what and why, then a summary per kind.
pub fn print_report(r: &RunReport, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(r);
    }
    // kind → (tasks run here, of which completed, reused from earlier graphs, slowest)
    let mut by_kind: BTreeMap<&str, (usize, usize, usize, f64)> = BTreeMap::new();
    for t in &r.tasks {
        let e = by_kind.entry(t.kind.as_str()).or_default();
        match t.state.as_str() {
            "replaced" | "skipped" => e.2 += 1,
            "completed" => {
                e.0 += 1;
                e.1 += 1;
            }
            _ => e.0 += 1,
        }
        e.3 = e.3.max(t.seconds);
    }
    println!("\n{} graph {} — {:.1}s", r.flavor, r.graph_id, r.seconds);
    let rows: Vec<Vec<String>> = by_kind
        .iter()
        .filter(|(_, (n, ..))| *n > 0)
        .map(|(k, (n, ok, _, max))| {
            let status = if n == ok { "ok" } else { "FAILED" };
            let sample = r
                .tasks
                .iter()
                .find(|t| t.kind == *k && t.state == "completed")
                .map(|t| t.detail.clone())
                .unwrap_or_default();
            vec![
                status.into(),
                k.to_string(),
                format!("{ok}/{n}"),
                format!("{max:.2}s"),
                sample,
            ]
        })
        .collect();
    output::table(&["STATUS", "KIND", "DONE", "SLOWEST", "DETAIL (one task)"], &rows);
    let reused: usize = by_kind.values().map(|e| e.2).sum();
    if reused > 0 {
        println!("({reused} tasks reused from earlier graphs)");
    }
    for t in r.tasks.iter().filter(|t| t.state == "failed") {
        println!(
            "\nFAILED {} (task {}, {} attempts):\n  {}",
            t.label, t.task_id, t.attempts, t.detail
        );
    }
    let blocked = r.count("blocked");
    if blocked > 0 {
        println!("\n{blocked} tasks did not run because a task they depend on failed");
    }
    Ok(())
}

fn progress(json: bool) -> crate::promote::exec::Progress {
    let tty = std::io::stderr().is_terminal();
    Arc::new(move |t: &TaskResult, n: usize, total: usize| {
        if json {
            return;
        }
        let show = t.state != "completed" || !tty || n == total || n.is_multiple_of(25);
        if show {
            let status = if t.state == "completed" { "ok" } else { t.state.as_str() };
            eprintln!("  [{n}/{total}] {status:<9} {} ({:.2}s)", t.label, t.seconds);
        }
    })
}

async fn ready_lease(ctx: &Context, id: LeaseId) -> anyhow::Result<Lease> {
    let lease = ctx.service.show(&ctx.actor, id).await?.lease;
    if lease.endpoints.is_none() {
        return Err(super::usage(format!(
            "lease {id} is {} and has no stack; wait until it is ready",
            lease.state
        )));
    }
    Ok(lease)
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let store = crate::store::open(&ctx.settings.database_url)
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .context("opening the database for promotion graphs")?;
    if args.list {
        let graphs = store.list_graphs(&args.lease.to_string()).await?;
        if ctx.json {
            let rows: Vec<_> = graphs
                .iter()
                .map(|g| serde_json::json!({"graph_id": g.graph_id, "flavor": g.flavor, "created_at": g.created_at}))
                .collect();
            return output::json(&rows);
        }
        let rows: Vec<Vec<String>> = graphs
            .iter()
            .map(|g| vec![g.graph_id.clone(), g.flavor.clone(), g.created_at.to_rfc3339()])
            .collect();
        output::table(&["GRAPH", "FLAVOR", "CREATED"], &rows);
        return Ok(());
    }
    let lease = ready_lease(ctx, args.lease).await?;
    let plan = match &args.resume {
        Some(id) => {
            let (plan, _) = crate::promote::exec::load(store.as_ref(), id)
                .await
                .map_err(|e| super::usage(format!("--resume: {e}")))?;
            plan
        }
        None => {
            let mut req = PromoteRequest::new(input_from(&args)?);
            if !args.platforms.is_empty() {
                req.platforms = args.platforms.clone();
            }
            if !args.locales.is_empty() {
                req.locales = args.locales.clone();
            }
            run::plan(store.as_ref(), &lease, &req).await.map_err(|e| match e {
                run::PromoteError::Store(_) | run::PromoteError::Exec(_) | run::PromoteError::Stack(_) => {
                    anyhow::anyhow!(e)
                }
                other => super::usage(other.to_string()),
            })?
        }
    };
    if args.dry_run {
        return print_plan(&plan, ctx.json);
    }
    if !ctx.json {
        print_plan(&plan, false)?;
        eprintln!(
            "running {} tasks against lease {} (namespace {})…",
            plan.to_run().count(),
            lease.id,
            lease.namespace.as_str()
        );
    }
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("cancelling: running tasks stop, none start; resume with --resume");
            on_ctrl_c.cancel();
        }
    });
    let report = run::run(
        store,
        &lease,
        &plan,
        RunOptions {
            exec: ExecOptions {
                parallel: args.parallel.max(1),
                cancel,
                progress: Some(progress(ctx.json)),
                ..Default::default()
            },
            artifacts: args.artifacts.clone(),
            signoffs: signoffs(&args)?,
            work_root: ctx.settings.state_dir.join("promotions"),
        },
    )
    .await?;
    print_report(&report, ctx.json)?;
    if !report.ok && args.hold_on_failure {
        let patch = crate::manager::LeasePatch {
            hold: Some(true),
            ..Default::default()
        };
        match ctx.service.patch(&ctx.actor, lease.id, patch).await {
            Ok(l) => eprintln!(
                "holding lease {} for debugging: its stack stays up until you release it (at most until {})",
                l.id,
                (l.created_at + ctx.settings.policy.max_ttl).to_rfc3339()
            ),
            Err(e) => eprintln!("cannot hold lease {} for debugging: {e}", lease.id),
        }
    }
    if !report.ok {
        anyhow::bail!(
            "graph {} did not finish: {} failed, {} blocked, {} cancelled (resume with --resume {})",
            report.graph_id,
            report.count("failed"),
            report.count("blocked"),
            report.count("cancelled"),
            report.graph_id
        );
    }
    if !ctx.json {
        println!(
            "\ngraph {} done; next phase: --previous-graph-id {}",
            report.graph_id, report.graph_id
        );
    }
    Ok(())
}
