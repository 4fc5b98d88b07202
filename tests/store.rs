//! The store conformance suite, run against SQLite and PostgreSQL alike.
mod support;

use std::sync::Arc;

use chrono::Duration;
use stagelib::lease::{LeaseId, LeaseState, Namespace, NewLease, Scope};
use stagelib::stack::Template;
use stagelib::store::{Change, LeaseFilter, LeaseUpdate, Store, StoreError, TokenRecord};
use support::{all_dbs, t0};

fn new_lease(owner: &str, ns: &str, stack: Option<&str>) -> NewLease {
    let id = LeaseId::new();
    NewLease {
        id,
        owner: owner.into(),
        namespace: Namespace::parse(ns).expect("ns"),
        stack_id: stack.map(str::to_string).unwrap_or_else(|| id.to_string()),
        template: Template::full(),
        seed: Some("default".into()),
        created_at: t0(),
        expires_at: t0() + Duration::hours(8),
        hold: false,
        labels: [("try".to_string(), "rev".to_string())].into(),
        backend: "memory".into(),
    }
}

fn change(actor: &str, minutes: i64) -> Change {
    Change {
        actor: actor.into(),
        at: t0() + Duration::minutes(minutes),
        reason: None,
        endpoints: None,
    }
}

#[tokio::test]
async fn create_get_list_and_round_trip() {
    for db in all_dbs().await {
        let s = &db.store;
        let a = new_lease("alice", "alice", None);
        let created = s.create_lease(&a, 3, "alice").await.expect("create");
        let got = s.get_lease(a.id).await.expect("get");
        assert_eq!(created, got, "[{}]", db.kind);
        assert_eq!(got.template, Template::full());
        assert_eq!(got.labels["try"], "rev");
        assert_eq!(got.seed.as_deref(), Some("default"));
        assert_eq!(got.state, LeaseState::Requested);
        s.create_lease(&new_lease("bob", "bob", None), 3, "bob")
            .await
            .expect("bob");
        let only_alice = s
            .list_leases(&LeaseFilter {
                owner: Some("alice".into()),
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(only_alice.len(), 1);
        let ready = s
            .list_leases(&LeaseFilter {
                states: vec![LeaseState::Ready],
                ..Default::default()
            })
            .await
            .expect("list");
        assert!(ready.is_empty());
        assert!(matches!(
            s.get_lease(LeaseId::new()).await,
            Err(StoreError::NotFound(_))
        ));
        let counts = s.count_by_state().await.expect("counts");
        assert_eq!(counts.len(), LeaseState::ALL.len());
        assert_eq!(counts[&LeaseState::Requested], 2);
    }
}

#[tokio::test]
async fn transitions_are_compare_and_swap_with_an_audit_trail() {
    for db in all_dbs().await {
        let s = &db.store;
        let a = new_lease("alice", "alice", None);
        s.create_lease(&a, 3, "alice").await.expect("create");
        let err = s
            .transition(a.id, &[LeaseState::Provisioning], LeaseState::Ready, &change("x", 1))
            .await
            .expect_err("wrong source state");
        match err {
            StoreError::StateConflict { current, .. } => assert_eq!(current, LeaseState::Requested, "[{}]", db.kind),
            other => panic!("[{}] {other}", db.kind),
        }
        s.transition(
            a.id,
            &[LeaseState::Requested],
            LeaseState::Provisioning,
            &change("mgr", 1),
        )
        .await
        .expect("provisioning");
        let mut failing = change("mgr", 2);
        failing.reason = Some("balrog died".into());
        let failed = s
            .transition(a.id, &[LeaseState::Provisioning], LeaseState::Failed, &failing)
            .await
            .expect("failed");
        assert_eq!(failed.failure_reason.as_deref(), Some("balrog died"));
        let events = s.events(a.id).await.expect("events");
        let trail: Vec<_> = events.iter().map(|e| (e.from, e.to, e.actor.as_str())).collect();
        assert_eq!(
            trail,
            vec![
                (None, LeaseState::Requested, "alice"),
                (Some(LeaseState::Requested), LeaseState::Provisioning, "mgr"),
                (Some(LeaseState::Provisioning), LeaseState::Failed, "mgr"),
            ],
            "[{}]",
            db.kind
        );
        assert_eq!(events[2].reason.as_deref(), Some("balrog died"));
        assert_eq!(events[2].at, t0() + Duration::minutes(2));
        // update_lease refuses a lease that is no longer active.
        let upd = LeaseUpdate {
            hold: Some(true),
            ..Default::default()
        };
        assert!(matches!(
            s.update_lease(a.id, &upd, t0()).await,
            Err(StoreError::StateConflict {
                current: LeaseState::Failed,
                ..
            })
        ));
    }
}

#[tokio::test]
async fn racing_transitions_have_exactly_one_winner() {
    for db in all_dbs().await {
        let s = db.store.clone();
        let a = new_lease("alice", "alice", None);
        s.create_lease(&a, 3, "alice").await.expect("create");
        let mut handles = Vec::new();
        for i in 0..20 {
            let s = Arc::clone(&s);
            handles.push(tokio::spawn(async move {
                s.transition(
                    a.id,
                    &[LeaseState::Requested],
                    LeaseState::Provisioning,
                    &change(&format!("w{i}"), 1),
                )
                .await
                .is_ok()
            }));
        }
        let mut wins = 0;
        for h in handles {
            wins += usize::from(h.await.expect("task"));
        }
        assert_eq!(wins, 1, "[{}]", db.kind);
        assert_eq!(s.events(a.id).await.expect("events").len(), 2);
    }
}

#[tokio::test]
async fn quota_holds_under_200_concurrent_inserts() {
    for db in all_dbs().await {
        let mut handles = Vec::new();
        for i in 0..200 {
            let s = Arc::clone(&db.store);
            handles.push(tokio::spawn(async move {
                s.create_lease(&new_lease("carol", &format!("c{i}"), None), 3, "carol")
                    .await
            }));
        }
        let (mut ok, mut quota) = (0, 0);
        for h in handles {
            match h.await.expect("task") {
                Ok(_) => ok += 1,
                Err(StoreError::QuotaExceeded { limit: 3, .. }) => quota += 1,
                Err(e) => panic!("[{}] {e}", db.kind),
            }
        }
        assert_eq!((ok, quota), (3, 197), "[{}]", db.kind);
    }
}

#[tokio::test]
async fn namespaces_are_unique_per_stack_among_active_leases() {
    for db in all_dbs().await {
        let s = &db.store;
        let first = new_lease("alice", "team", Some("shared"));
        s.create_lease(&first, 3, "alice").await.expect("first");
        let clash = s
            .create_lease(&new_lease("bob", "team", Some("shared")), 3, "bob")
            .await;
        assert!(matches!(clash, Err(StoreError::NamespaceTaken { .. })), "[{}]", db.kind);
        s.create_lease(&new_lease("bob", "team", Some("other")), 3, "bob")
            .await
            .expect("same namespace on another stack");
        s.create_lease(&new_lease("bob", "bob", Some("shared")), 3, "bob")
            .await
            .expect("another namespace on the shared stack");
        s.transition(
            first.id,
            &[LeaseState::Requested],
            LeaseState::Releasing,
            &change("alice", 1),
        )
        .await
        .expect("releasing");
        s.transition(
            first.id,
            &[LeaseState::Releasing],
            LeaseState::Released,
            &change("alice", 2),
        )
        .await
        .expect("released");
        s.create_lease(&new_lease("carol", "team", Some("shared")), 3, "carol")
            .await
            .expect("free again after release");
    }
}

#[tokio::test]
async fn stale_leases_expire_once_even_with_racing_reapers() {
    for db in all_dbs().await {
        let s = db.store.clone();
        let max = Duration::days(7);
        let plain = new_lease("alice", "a1", None);
        let mut held = new_lease("alice", "a2", None);
        held.hold = true;
        s.create_lease(&plain, 3, "alice").await.expect("plain");
        s.create_lease(&held, 3, "alice").await.expect("held");
        let later = t0() + Duration::hours(9);
        let stale = s.find_stale(later, max).await.expect("find");
        assert_eq!(
            stale.iter().map(|l| l.id).collect::<Vec<_>>(),
            vec![plain.id],
            "[{}]",
            db.kind
        );
        let mut handles = Vec::new();
        for i in 0..8 {
            let s = Arc::clone(&s);
            handles.push(tokio::spawn(async move {
                s.expire_stale(later, max, &format!("reaper{i}"))
                    .await
                    .expect("expire")
                    .len()
            }));
        }
        let mut total = 0;
        for h in handles {
            total += h.await.expect("task");
        }
        assert_eq!(total, 1, "[{}] expired exactly once", db.kind);
        let events = s.events(plain.id).await.expect("events");
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].from, Some(LeaseState::Requested));
        assert_eq!(events[1].to, LeaseState::Expired);
        // The held one goes at the max lifetime.
        let end = t0() + max;
        assert_eq!(s.expire_stale(end, max, "r").await.expect("expire").len(), 1);
        assert_eq!(s.get_lease(held.id).await.expect("get").state, LeaseState::Expired);
    }
}

#[tokio::test]
async fn tokens_are_found_by_hash_only() {
    for db in all_dbs().await {
        let s = &db.store;
        let rec = TokenRecord {
            id: "t1".into(),
            user: "alice".into(),
            scope: Scope::Try,
            hash: "abc".into(),
            created_at: t0(),
        };
        s.create_token(&rec).await.expect("create");
        assert_eq!(s.find_token("abc").await.expect("find"), Some(rec));
        assert_eq!(s.find_token("nope").await.expect("find"), None);
    }
}

#[tokio::test]
async fn sqlite_file_persists_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}", dir.path().join("nested/dir/db.sqlite").display());
    let a = new_lease("alice", "alice", None);
    {
        let s: Arc<dyn Store> = stagelib::store::open(&url).await.expect("open");
        s.create_lease(&a, 3, "alice").await.expect("create");
    }
    let s = stagelib::store::open(&url).await.expect("reopen");
    assert_eq!(s.get_lease(a.id).await.expect("still there").owner, "alice");
    assert!(matches!(
        stagelib::store::open("mysql://x").await,
        Err(StoreError::UnsupportedUrl(_))
    ));
}

/// Promotion graphs and their task states, on both databases.
#[tokio::test]
async fn promotion_graphs_and_task_states() {
    use stagelib::store::{GraphRow, TaskRow};
    for db in support::all_dbs().await {
        let s = &db.store;
        let graph = GraphRow {
            graph_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            lease_id: "lease-1".into(),
            flavor: "promote_firefox".into(),
            created_at: support::t0(),
            record: serde_json::json!({"release": {"version": "158.0b5"}}),
        };
        let tasks: Vec<TaskRow> = (0..1200)
            .map(|i| TaskRow {
                label: format!("balrog-linux64-l{i:04}"),
                task_id: format!("task{i}"),
                state: "pending".into(),
                attempts: 0,
                detail: None,
                started_at: None,
                finished_at: None,
            })
            .collect();
        s.create_graph(&graph, &tasks).await.expect("create");
        assert!(
            s.create_graph(&graph, &tasks).await.is_err(),
            "{}: a graph ID is unique",
            s.kind()
        );
        let mut done = tasks[7].clone();
        done.state = "completed".into();
        done.attempts = 2;
        done.detail = Some("ok".into());
        done.finished_at = Some(support::t0());
        s.update_task(&graph.graph_id, &done).await.expect("update");
        let (g, got) = s.get_graph(&graph.graph_id).await.expect("get").expect("present");
        assert_eq!(g, graph, "{}", s.kind());
        assert_eq!(got.len(), 1200);
        assert_eq!(got[7], done, "{}", s.kind());
        assert_eq!(got.iter().filter(|t| t.state == "pending").count(), 1199);
        assert_eq!(s.list_graphs("lease-1").await.expect("list").len(), 1);
        assert!(s.list_graphs("lease-2").await.expect("list").is_empty());
        assert!(s.get_graph("nope").await.expect("get").is_none());
    }
}
