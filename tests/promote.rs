//! The promotion engine on real stacks (process backend, the real binary),
//! seeded with the default snapshot: promote → push → ship of a beta with three
//! partials, then a second release on the same stack that updates from the
//! first; faults; concurrent releases on several leases and on one shared stack.
mod support;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use stagelib::backend::process::ProcessBackend;
use stagelib::lease::{Actor, Lease, LeaseState, Policy};
use stagelib::manager::{LeaseService, Manager, ManagerKey, ManagerParts, ReserveRequest, SystemClock};
use stagelib::promote::exec::{ExecOptions, RunReport};
use stagelib::promote::input::{PartialUpdate, PromotionInput};
use stagelib::promote::run::{self, PromoteRequest, RunOptions};
use stagelib::seed::{LibrarySeeder, SnapshotLibrary};
use stagelib::stack::ServiceKind;
use stagelib::store::Store;

struct World {
    _db: support::TestDb,
    _dir: tempfile::TempDir,
    work: PathBuf,
    store: Arc<dyn Store>,
    manager: Arc<Manager>,
}

async fn world() -> World {
    let db = support::sqlite_db().await;
    let dir = tempfile::tempdir().expect("tmp");
    let backend = Arc::new(ProcessBackend::new(
        dir.path().join("process"),
        PathBuf::from(env!("CARGO_BIN_EXE_stagelib")),
    ));
    let manager = Manager::new(ManagerParts {
        store: db.store.clone(),
        backend,
        clock: Arc::new(SystemClock),
        policy: Policy {
            quota: 10,
            ..Policy::default()
        },
        key: ManagerKey::from_bytes(b"promote-test".to_vec()),
        background: false,
    });
    manager.seed_with(Arc::new(LibrarySeeder::new(SnapshotLibrary::new(vec![]))));
    World {
        work: dir.path().join("work"),
        _dir: dir,
        store: db.store.clone(),
        _db: db,
        manager,
    }
}

async fn lease(w: &World, user: &str, stack: Option<&str>) -> Lease {
    let l = w
        .manager
        .reserve(
            &Actor::admin(user),
            ReserveRequest {
                owner: Some(user.into()),
                template: Some("full".into()),
                seed: Some("default".into()),
                stack_id: stack.map(str::to_string),
                ..Default::default()
            },
        )
        .await
        .expect("reserve");
    assert_eq!(l.state, LeaseState::Ready, "{:?}", l.failure_reason);
    l
}

fn input(flavor: &str, version: &str, partials: &[&str], previous: &[&str]) -> PromotionInput {
    let mut i = PromotionInput {
        release_promotion_flavor: flavor.into(),
        build_number: 1,
        version: version.into(),
        previous_graph_ids: previous.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    if flavor.starts_with("ship") {
        i.next_version = "158.0b99".into();
    }
    for p in partials {
        i.partial_updates.insert(
            p.to_string(),
            PartialUpdate {
                build_number: 1,
                locales: vec!["de".into(), "en-US".into()],
            },
        );
    }
    i
}

fn request(i: PromotionInput) -> PromoteRequest {
    let mut r = PromoteRequest::new(i);
    r.platforms = vec!["linux-x86_64".into(), "win64".into(), "mac".into()];
    r.locales = vec!["de".into(), "en-US".into(), "ja".into()];
    r
}

async fn promote(w: &World, l: &Lease, i: PromotionInput) -> RunReport {
    let req = request(i);
    let plan = run::plan(w.store.as_ref(), l, &req).await.expect("plan");
    run::run(
        w.store.clone(),
        l,
        &plan,
        RunOptions {
            exec: ExecOptions::default(),
            work_root: w.work.clone(),
            signoffs: vec![("releng-one".into(), "releng".into())],
            ..Default::default()
        },
    )
    .await
    .expect("run")
}

fn assert_ok(r: &RunReport) {
    let failures: Vec<String> = r
        .tasks
        .iter()
        .filter(|t| !matches!(t.state.as_str(), "completed" | "replaced" | "skipped"))
        .map(|t| format!("{} [{}]: {}", t.label, t.state, t.detail))
        .collect();
    assert!(
        r.ok && failures.is_empty(),
        "{} graph failed:\n{}",
        r.flavor,
        failures.join("\n")
    );
}

fn detail<'a>(r: &'a RunReport, kind: &str) -> Vec<&'a str> {
    r.tasks
        .iter()
        .filter(|t| t.kind == kind && t.state == "completed")
        .map(|t| t.detail.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn beta_with_three_partials_then_a_second_release_updating_from_it() {
    let w = world().await;
    let l = lease(&w, "alice", None).await;
    let partials = ["158.0b4", "158.0b3", "158.0b2"];
    let p = promote(&w, &l, input("promote_firefox", "158.0b5", &partials, &[])).await;
    assert_ok(&p);
    assert!(detail(&p, "release-update-verify")
        .iter()
        .all(|d| d.contains("checks passed")));
    let push = promote(&w, &l, input("push_firefox", "158.0b5", &partials, &[&p.graph_id])).await;
    assert_ok(&push);
    assert_eq!(push.count("completed"), 5, "push runs only its own tasks");
    assert!(detail(&push, "release-final-verify")[0].contains("checks passed"));
    let ship = promote(
        &w,
        &l,
        input("ship_firefox", "158.0b5", &partials, &[&p.graph_id, &push.graph_id]),
    )
    .await;
    assert_ok(&ship);
    let sched = detail(&ship, "release-balrog-scheduling");
    assert!(sched[0].contains("Firefox-158.0b5-build1-alice"), "{sched:?}");

    // What the stack holds now.
    let eps = l.endpoints.clone().expect("endpoints");
    let balrog = &eps.services[&ServiceKind::Balrog].url;
    let http = reqwest::Client::new();
    let rule: Value = http
        .get(format!("{balrog}/api/v1/rules/alice-firefox-beta-cdntest"))
        .send()
        .await
        .expect("rule")
        .json()
        .await
        .expect("json");
    assert_eq!(rule["mapping"], "Firefox-158.0b5-build1-alice");
    let shipit = &eps.services[&ServiceKind::Shipit].url;
    let rel: Value = http
        .get(format!("{shipit}/releases/Firefox-158.0b5-build1-alice"))
        .send()
        .await
        .expect("shipit")
        .json()
        .await
        .expect("json");
    assert_eq!(rel["status"], "shipped");

    // A second release on the same stack: its update verify must update from the first.
    let p2 = promote(
        &w,
        &l,
        input("promote_firefox", "158.0b6", &["158.0b5", "158.0b4", "158.0b3"], &[]),
    )
    .await;
    assert_ok(&p2);
    let cfg = std::fs::read_to_string(w.work.join(&p2.graph_id).join("update-verify-linux64.cfg")).expect("cfg");
    let from_first = cfg
        .lines()
        .find(|l| {
            l.contains(&format!(
                "build_id=\"{}\"",
                stagelib::seed::mar::build_id("firefox", "158.0b5")
            ))
        })
        .expect("158.0b5 is a from-release of 158.0b6");
    assert!(from_first.contains("patch_types=\"complete partial\""), "{from_first}");
}
