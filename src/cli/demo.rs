//! `stagelib demo`: the README's main job. Reserves a fresh stack (Docker when
//! the engine answers, else local processes) seeded with the default snapshot,
//! runs promote → push → ship of a beta with three partials through the
//! promotion engine, then a second beta that must update from the first, prints
//! a report and releases the lease.
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;

use super::context::Context;
use crate::lease::{Lease, LeaseState};
use crate::manager::ReserveRequest;
use crate::promote::exec::{ExecOptions, RunReport};
use crate::promote::input::{PartialUpdate, PromotionInput};
use crate::promote::run::{self, PromoteRequest, RunOptions};

/// Play a staging release end to end on a fresh, seeded stack.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Locales, comma-separated (default: Firefox's 103 shipped locales).
    #[arg(long, value_delimiter = ',')]
    pub locales: Vec<String>,
    /// Keep the lease (and its stack) instead of releasing it at the end.
    #[arg(long)]
    pub keep: bool,
}

/// The default snapshot's newest betas are 158.0b2–b4.
const FIRST: (&str, [&str; 3]) = ("158.0b5", ["158.0b4", "158.0b3", "158.0b2"]);
const SECOND: (&str, [&str; 3]) = ("158.0b6", ["158.0b5", "158.0b4", "158.0b3"]);

struct Phase {
    name: String,
    report: Option<RunReport>,
    error: Option<String>,
    secs: f64,
}

fn input(flavor: &str, version: &str, partials: &[&str], previous: &[String], next: &str) -> PromotionInput {
    PromotionInput {
        release_promotion_flavor: flavor.into(),
        build_number: 1,
        version: version.into(),
        next_version: if flavor.starts_with("ship") {
            next.into()
        } else {
            String::new()
        },
        partial_updates: partials
            .iter()
            .map(|p| {
                (
                    p.to_string(),
                    PartialUpdate {
                        build_number: 1,
                        locales: vec!["en-US".into()],
                    },
                )
            })
            .collect(),
        previous_graph_ids: previous.to_vec(),
        ..Default::default()
    }
}

async fn phase(
    ctx: &Context,
    store: &std::sync::Arc<dyn crate::store::Store>,
    lease: &Lease,
    locales: &[String],
    i: PromotionInput,
) -> Phase {
    let name = format!("{} {}", i.release_promotion_flavor, i.version);
    eprintln!("  … {name}");
    let t = Instant::now();
    let mut req = PromoteRequest::new(i);
    if !locales.is_empty() {
        req.locales = locales.to_vec();
    }
    let result = async {
        let plan = run::plan(store.as_ref(), lease, &req).await?;
        run::run(
            store.clone(),
            lease,
            &plan,
            RunOptions {
                exec: ExecOptions::default(),
                signoffs: vec![("releng-one".into(), "releng".into())],
                work_root: ctx.settings.state_dir.join("promotions"),
                ..Default::default()
            },
        )
        .await
    }
    .await;
    let (report, error) = match result {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Phase {
        name,
        report,
        error,
        secs: t.elapsed().as_secs_f64(),
    }
}

fn detail(r: &RunReport, kind: &str) -> String {
    r.tasks
        .iter()
        .find(|t| t.kind == kind && t.state == "completed")
        .map(|t| t.detail.clone())
        .unwrap_or_default()
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    eprintln!("stagelib demo: reserving a fresh stack seeded with the default snapshot");
    let lease = ctx
        .service
        .reserve(
            &ctx.actor,
            ReserveRequest {
                template: Some("full".into()),
                ttl: Some("2h".into()),
                seed: Some("default".into()),
                labels: [("purpose".to_string(), "demo".to_string())].into(),
                ..Default::default()
            },
        )
        .await?;
    if lease.state != LeaseState::Ready {
        anyhow::bail!(
            "the stack did not come up: {}",
            lease.failure_reason.unwrap_or_default()
        );
    }
    let reserve_secs = started.elapsed().as_secs_f64();
    let store = crate::store::open(&ctx.settings.database_url)
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .context("opening the database for promotion graphs")?;

    let mut phases = Vec::new();
    for (version, partials) in [FIRST, SECOND] {
        let next = crate::version::GeckoVersion::bump(&version.parse()?)?.to_string();
        let mut previous: Vec<String> = Vec::new();
        for flavor in ["promote_firefox", "push_firefox", "ship_firefox"] {
            let p = phase(
                ctx,
                &store,
                &lease,
                &args.locales,
                input(flavor, version, &partials, &previous, &next),
            )
            .await;
            let ok = p.report.as_ref().is_some_and(|r| r.ok);
            if let Some(r) = &p.report {
                previous.push(r.graph_id.clone());
            }
            phases.push(p);
            if !ok {
                break;
            }
        }
        if !phases.last().and_then(|p| p.report.as_ref()).is_some_and(|r| r.ok) {
            break;
        }
    }

    let released = if args.keep {
        None
    } else {
        Some(ctx.service.release(&ctx.actor, lease.id).await.map(|_| ()))
    };
    let failed = phases
        .iter()
        .filter(|p| !p.report.as_ref().is_some_and(|r| r.ok))
        .count();
    if ctx.json {
        let list: Vec<_> = phases
            .iter()
            .map(|p| json!({"phase": p.name, "seconds": p.secs, "error": p.error, "report": p.report}))
            .collect();
        super::output::json(
            &json!({"lease": lease.id, "backend": lease.backend, "namespace": lease.namespace.as_str(),
            "reserve_seconds": reserve_secs, "phases": list, "failed": failed}),
        )?;
    } else {
        println!(
            "\nstagelib demo — lease {} on the {} backend, namespace `{}`",
            lease.id,
            lease.backend,
            lease.namespace.as_str()
        );
        println!("stack reserved and seeded in {reserve_secs:.1}s\n");
        let rows: Vec<Vec<String>> = phases
            .iter()
            .map(|p| match (&p.report, &p.error) {
                (Some(r), _) => vec![
                    if r.ok { "ok".into() } else { "FAILED".into() },
                    p.name.clone(),
                    r.graph_id.clone(),
                    format!("{}", r.count("completed")),
                    format!("{}", r.count("replaced")),
                    format!("{:.1}s", p.secs),
                ],
                (None, e) => vec![
                    "FAILED".into(),
                    p.name.clone(),
                    e.clone().unwrap_or_default(),
                    String::new(),
                    String::new(),
                    format!("{:.1}s", p.secs),
                ],
            })
            .collect();
        super::output::table(&["STATUS", "PHASE", "GRAPH", "RAN", "REUSED", "TIME"], &rows);
        println!();
        for p in &phases {
            let Some(r) = &p.report else { continue };
            for (kind, what) in [
                ("release-update-verify", "update verify"),
                ("release-final-verify", "final verify"),
                ("release-balrog-scheduling", "balrog scheduling"),
                ("release-bouncer-aliases", "bouncer aliases"),
                ("release-mark-as-shipped", "ship-it"),
            ] {
                let d = detail(r, kind);
                if !d.is_empty() {
                    println!("{:<16} {:<18} {d}", p.name.split(' ').nth(1).unwrap_or(""), what);
                }
            }
            for t in r.failures() {
                println!("FAILED {} ({} attempts): {}", t.label, t.attempts, t.detail);
            }
        }
        match &released {
            Some(Ok(())) => println!(
                "\nlease released, stack retired; {:.1}s in all",
                started.elapsed().as_secs_f64()
            ),
            Some(Err(e)) => println!("\nreleasing the lease failed: {e}"),
            None => println!(
                "\nlease {} kept (--keep); release it with `stagelib release {}`",
                lease.id, lease.id
            ),
        }
    }
    anyhow::ensure!(failed == 0, "{failed} demo phase(s) failed");
    Ok(())
}
