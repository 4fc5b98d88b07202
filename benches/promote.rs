//! `cargo bench --bench promote`: wall time of a full beta release — promote,
//! push, ship of 7 platforms × 103 locales with 3 partials — on a seeded stack
//! (process backend, release binary), and of its update verify.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use stagelib::backend::process::ProcessBackend;
use stagelib::lease::{Actor, LeaseState, Policy};
use stagelib::manager::{LeaseService, Manager, ManagerKey, ManagerParts, ReserveRequest, SystemClock};
use stagelib::promote::exec::{ExecOptions, RunReport};
use stagelib::promote::input::{PartialUpdate, PromotionInput};
use stagelib::promote::run::{self, PromoteRequest, RunOptions};
use stagelib::seed::{LibrarySeeder, SnapshotLibrary};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(bench())
}

async fn bench() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = stagelib::store::open(&format!("sqlite://{}", dir.path().join("db.sqlite").display())).await?;
    let manager = Manager::new(ManagerParts {
        store: store.clone(),
        backend: Arc::new(ProcessBackend::new(
            dir.path().join("process"),
            PathBuf::from(env!("CARGO_BIN_EXE_stagelib")),
        )),
        clock: Arc::new(SystemClock),
        policy: Policy::default(),
        key: ManagerKey::from_bytes(b"bench".to_vec()),
        background: false,
    });
    manager.seed_with(Arc::new(LibrarySeeder::new(SnapshotLibrary::new(vec![]))));
    let t = Instant::now();
    let lease = manager
        .reserve(
            &Actor::admin("bench"),
            ReserveRequest {
                template: Some("full".into()),
                seed: Some("default".into()),
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(lease.state, LeaseState::Ready, "{:?}", lease.failure_reason);
    println!("stack reserved and seeded: {:.2} s", t.elapsed().as_secs_f64());
    let partials = ["158.0b4", "158.0b3", "158.0b2"];
    let mut previous: Vec<String> = Vec::new();
    let total = Instant::now();
    let mut reports: Vec<RunReport> = Vec::new();
    for flavor in ["promote_firefox", "push_firefox", "ship_firefox"] {
        let input = PromotionInput {
            release_promotion_flavor: flavor.into(),
            build_number: 1,
            version: "158.0b5".into(),
            next_version: if flavor.starts_with("ship") {
                "158.0b6".into()
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
            previous_graph_ids: previous.clone(),
            ..Default::default()
        };
        let req = PromoteRequest::new(input);
        let plan = run::plan(store.as_ref(), &lease, &req).await?;
        let t = Instant::now();
        let r = run::run(
            store.clone(),
            &lease,
            &plan,
            RunOptions {
                exec: ExecOptions::default(),
                work_root: dir.path().join("work"),
                signoffs: vec![("releng-one".into(), "releng".into())],
                ..Default::default()
            },
        )
        .await?;
        assert!(r.ok, "{flavor} failed: {:?}", r.failures().next());
        println!(
            "{flavor:<16} {:>7.2} s  ({} tasks run, {} reused)",
            t.elapsed().as_secs_f64(),
            r.count("completed"),
            r.count("replaced")
        );
        previous.push(r.graph_id.clone());
        reports.push(r);
    }
    println!(
        "full beta release (7 platforms × 103 locales, 3 partials): {:.2} s",
        total.elapsed().as_secs_f64()
    );
    let uv: Vec<_> = reports[0]
        .tasks
        .iter()
        .filter(|t| t.kind == "release-update-verify")
        .collect();
    let slowest = uv.iter().map(|t| t.seconds).fold(0.0, f64::max);
    let checks: usize = uv
        .iter()
        .filter_map(|t| t.detail.split_whitespace().next()?.parse::<usize>().ok())
        .sum();
    println!(
        "update verify: {} platform tasks, {checks} updater checks (Balrog → Bouncer/S3, size + SHA-512), slowest task {slowest:.2} s",
        uv.len()
    );
    let fv = reports[1].tasks.iter().find(|t| t.kind == "release-final-verify");
    if let Some(fv) = fv {
        println!("final verify: {:.2} s — {}", fv.seconds, fv.detail);
    }
    manager.release(&Actor::admin("bench"), lease.id).await?;
    Ok(())
}
