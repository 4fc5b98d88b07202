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
    assert!(detail(&push, "release-final-verify")[0].contains("passed on 3 platforms"));
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

/// A proxy in front of a service that answers 500 while `failing` is set (or
/// for the first `fail_first` requests), forwarding everything else.
#[derive(Clone)]
struct Faulty {
    target: String,
    failing: Arc<std::sync::atomic::AtomicBool>,
    fail_first: Arc<std::sync::atomic::AtomicI64>,
    failed: Arc<std::sync::atomic::AtomicI64>,
}

async fn faulty_proxy(target: &str) -> (String, Faulty) {
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::response::{IntoResponse, Response};
    use std::sync::atomic::Ordering;
    let f = Faulty {
        target: target.trim_end_matches('/').to_string(),
        failing: Arc::new(false.into()),
        fail_first: Arc::new(0.into()),
        failed: Arc::new(0.into()),
    };
    async fn handle(State(f): State<Faulty>, req: Request) -> Response {
        let writes = req.method() != axum::http::Method::GET && req.method() != axum::http::Method::HEAD;
        if writes && (f.failing.load(Ordering::SeqCst) || f.fail_first.fetch_sub(1, Ordering::SeqCst) > 0) {
            f.failed.fetch_add(1, Ordering::SeqCst);
            return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response();
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let url = format!(
            "{}{}",
            f.target,
            req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/")
        );
        let mut out = client.request(req.method().clone(), url);
        for (k, v) in req.headers() {
            if k != axum::http::header::HOST {
                out = out.header(k, v);
            }
        }
        let body = axum::body::to_bytes(req.into_body(), 64 << 20)
            .await
            .unwrap_or_default();
        match out.body(body).send().await {
            Ok(r) => {
                let mut b = Response::builder().status(r.status().as_u16());
                for (k, v) in r.headers() {
                    b = b.header(k, v);
                }
                b.body(Body::from(r.bytes().await.unwrap_or_default()))
                    .unwrap_or_else(|_| axum::http::StatusCode::BAD_GATEWAY.into_response())
            }
            Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
        }
    }
    let app = axum::Router::new().fallback(handle).with_state(f.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), f)
}

/// Balrog answering 500 for a while: the executor retries and the release
/// passes. Answering 500 for good: the run fails with a report naming the task
/// and the cause, and what depends on it is blocked, not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn balrog_500s_are_retried_and_a_lasting_outage_is_reported() {
    use std::sync::atomic::Ordering;
    let w = world().await;
    let mut l = lease(&w, "fault", None).await;
    let eps = l.endpoints.as_mut().expect("endpoints");
    let balrog = eps.services.get_mut(&ServiceKind::Balrog).expect("balrog");
    let (proxy, faults) = faulty_proxy(&balrog.url).await;
    balrog.url = proxy;
    faults.fail_first.store(4, Ordering::SeqCst);
    let fast = ExecOptions {
        retry: stagelib::clients::http::RetryPolicy {
            attempts: 6,
            first_delay: std::time::Duration::from_millis(20),
            max_delay: std::time::Duration::from_millis(200),
        },
        ..Default::default()
    };
    let go = |i: PromotionInput, exec: ExecOptions| {
        let w = &w;
        let l = l.clone();
        async move {
            let req = request(i);
            let plan = run::plan(w.store.as_ref(), &l, &req).await.expect("plan");
            run::run(
                w.store.clone(),
                &l,
                &plan,
                RunOptions {
                    exec,
                    work_root: w.work.clone(),
                    ..Default::default()
                },
            )
            .await
            .expect("run")
        }
    };
    let r = go(input("promote_firefox", "158.0b5", &["158.0b4"], &[]), fast.clone()).await;
    assert_ok(&r);
    assert_eq!(faults.failed.load(Ordering::SeqCst), 4, "4 writes were refused");
    let retried: i64 = r.tasks.iter().map(|t| (t.attempts - 1).max(0)).sum();
    assert!(retried >= 1, "some task needed more than one attempt");

    faults.failing.store(true, Ordering::SeqCst);
    let r = go(input("promote_firefox", "158.0b6", &["158.0b5"], &[]), fast).await;
    assert!(!r.ok);
    let failed: Vec<_> = r.failures().collect();
    assert!(
        failed
            .iter()
            .any(|t| t.label == "release-balrog-submit-toplevel-firefox"),
        "{failed:?}"
    );
    let top = failed
        .iter()
        .find(|t| t.label == "release-balrog-submit-toplevel-firefox")
        .expect("toplevel");
    assert_eq!(top.attempts, 6, "retried up to the policy");
    assert!(top.detail.contains("500"), "{}", top.detail);
    assert!(r
        .tasks
        .iter()
        .filter(|t| t.kind == "release-update-verify")
        .all(|t| t.state == "blocked"));
    // The store knows: resuming after the outage finishes the graph.
    faults.failing.store(false, Ordering::SeqCst);
    let resumed = stagelib::promote::exec::execute(
        w.store.clone(),
        &r.graph_id,
        Arc::new(
            stagelib::promote::tasks::StackRunner::new(
                l.endpoints.clone().expect("eps"),
                stagelib::promote::tasks::Names {
                    ns: stagelib::seed::namespace::Namespacer::new(l.namespace.clone()),
                    release: stagelib::promote::exec::load(w.store.as_ref(), &r.graph_id)
                        .await
                        .expect("load")
                        .0
                        .release,
                },
                stagelib::promote::tasks::Artifacts::Synthetic,
                w.work.join(&r.graph_id),
                vec![],
            )
            .expect("runner"),
        ),
        ExecOptions::default(),
    )
    .await
    .expect("resume");
    assert_ok(&resumed);
    assert!(
        resumed.count("skipped") > 0,
        "tasks completed before the outage are not run again"
    );
}

/// What a stack holds for one namespace, in canonical names, without what
/// differs between runs by design (Ship-it phase task IDs and timestamps).
async fn view(l: &Lease) -> Value {
    let ns = stagelib::seed::namespace::Namespacer::new(l.namespace.clone());
    let (snap, _) = stagelib::seed::pull::take("view", "test", l.endpoints.as_ref().expect("eps"), &ns)
        .await
        .expect("take");
    let mut v = serde_json::to_value(&snap).expect("json");
    v.as_object_mut().expect("obj").remove("meta");
    for r in v["shipit"]["releases"].as_array_mut().expect("releases") {
        let o = r.as_object_mut().expect("release");
        for k in ["created", "completed", "phases", "release_eta"] {
            o.remove(k);
        }
    }
    v
}

/// Four releases at once on four leases, and four more at once in four
/// namespaces of one shared stack: every view, with its namespace removed, is
/// the same — what one release alone produces — so nobody wrote into anybody
/// else's names.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_leases_and_four_namespaces_at_once() {
    let w = world().await;
    let own: Vec<Lease> = futures::future::join_all(["u1", "u2", "u3", "u4"].map(|u| lease(&w, u, None))).await;
    let first = lease(&w, "alice", Some("shared-stack")).await;
    let mut shared = vec![first];
    for u in ["bob", "carol", "dave"] {
        shared.push(lease(&w, u, Some("shared-stack")).await);
    }
    let all: Vec<&Lease> = own.iter().chain(shared.iter()).collect();
    let releases = all.iter().map(|l| async {
        let p = promote(&w, l, input("promote_firefox", "158.0b5", &["158.0b4", "158.0b3"], &[])).await;
        assert_ok(&p);
        let push = promote(
            &w,
            l,
            input("push_firefox", "158.0b5", &["158.0b4", "158.0b3"], &[&p.graph_id]),
        )
        .await;
        assert_ok(&push);
        let ship = promote(
            &w,
            l,
            input(
                "ship_firefox",
                "158.0b5",
                &["158.0b4", "158.0b3"],
                &[&p.graph_id, &push.graph_id],
            ),
        )
        .await;
        assert_ok(&ship);
    });
    futures::future::join_all(releases).await;
    let reference = view(&own[0]).await;
    assert!(
        reference["balrog"]["releases"]
            .as_array()
            .expect("releases")
            .iter()
            .any(|r| r["name"] == "Firefox-158.0b5-build1"),
        "the view holds the new release"
    );
    for l in all.iter().skip(1) {
        let v = view(l).await;
        for part in ["balrog", "bouncer", "s3", "shipit"] {
            assert!(
                v[part] == reference[part],
                "{} ({}): {part} differs from a release alone",
                l.id,
                l.namespace.as_str()
            );
        }
    }
    // Every object on the shared stack belongs to exactly one of its namespaces.
    let everything = stagelib::seed::pull::take(
        "all",
        "test",
        shared[0].endpoints.as_ref().expect("eps"),
        &stagelib::seed::namespace::Namespacer::canonical(),
    )
    .await
    .expect("take all")
    .0;
    let owners: Vec<stagelib::seed::namespace::Namespacer> = shared
        .iter()
        .map(|l| stagelib::seed::namespace::Namespacer::new(l.namespace.clone()))
        .collect();
    for (kind, name) in stagelib::seed::rewrite::written_names(&everything) {
        let n = owners.iter().filter(|o| o.owns(kind, &name)).count();
        assert_eq!(n, 1, "{kind:?} `{name}` is owned by {n} namespaces");
    }
}
