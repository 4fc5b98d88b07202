//! The pool, capacity, the wait queue and holds: store-level races on both
//! databases, and the manager's behaviour with an injected clock.
mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Duration;
use stagelib::lease::{Actor, LeaseId, LeaseState, Namespace, NewLease};
use stagelib::manager::{LeasePatch, LeaseService, PoolConfig, Reservation, ReserveRequest};
use stagelib::stack::{Endpoint, StackEndpoints, Template};
use stagelib::store::{Admission, HostCapacity, PoolWant, StoreError, WaiterState};
use support::{all_dbs, manager_on, sqlite_db, t0};

fn new_lease(owner: &str) -> NewLease {
    let id = LeaseId::new();
    NewLease {
        id,
        owner: owner.into(),
        namespace: Namespace::from_owner(owner).expect("ns"),
        stack_id: id.to_string(),
        template: Template::default_template(),
        seed: None,
        created_at: t0(),
        expires_at: t0() + Duration::hours(8),
        hold: false,
        labels: Default::default(),
        backend: "memory".into(),
    }
}

fn endpoints() -> StackEndpoints {
    StackEndpoints {
        services: [(
            stagelib::stack::ServiceKind::Balrog,
            Endpoint {
                url: "http://127.0.0.1:1".into(),
                internal_url: None,
                credentials: stagelib::stack::Credentials {
                    username: "u".into(),
                    secret: "s".into(),
                },
            },
        )]
        .into(),
    }
}

/// Five ready pool stacks, capacity five, 60 racing reservations: exactly five
/// leases, each on a different pool stack, the rest refused for capacity.
#[tokio::test]
async fn racing_reservations_never_share_a_pool_stack() {
    for db in all_dbs().await {
        let s = &db.store;
        let hosts = vec![
            HostCapacity {
                name: "a".into(),
                capacity: 3,
            },
            HostCapacity {
                name: "b".into(),
                capacity: 2,
            },
        ];
        let template = Template::default_template();
        for _ in 0..5 {
            let want = PoolWant {
                template: &template,
                seed: None,
                min_ready: 5,
                since: t0() - Duration::hours(1),
                hosts: &hosts,
                worker: "w1",
                now: t0(),
            };
            let p = s.pool_fill(&want).await.expect("fill").expect("room for a pool stack");
            assert!(s.pool_ready(&p.stack_id, &endpoints(), t0()).await.expect("ready"));
        }
        let want = PoolWant {
            template: &template,
            seed: None,
            min_ready: 6,
            since: t0() - Duration::hours(1),
            hosts: &hosts,
            worker: "w1",
            now: t0(),
        };
        assert!(
            s.pool_fill(&want).await.expect("fill").is_none(),
            "[{}] capacity is full: no sixth pool stack",
            db.kind
        );
        let pooled: BTreeSet<String> = s
            .pool_list()
            .await
            .expect("list")
            .into_iter()
            .map(|p| p.stack_id)
            .collect();
        let usage = s.host_usage().await.expect("usage");
        assert_eq!(
            (usage["a"], usage["b"]),
            (3, 2),
            "[{}] placed by free capacity",
            db.kind
        );

        let mut tasks = Vec::new();
        for i in 0..60 {
            let s = Arc::clone(s);
            let hosts = hosts.clone();
            tasks.push(tokio::spawn(async move {
                let adm = Admission {
                    quota: 3,
                    hosts: &hosts,
                    pool_since: Some(t0() - Duration::hours(1)),
                    respect_queue: true,
                    waiter: None,
                    worker: "w2",
                };
                s.reserve_lease(&new_lease(&format!("user{i}")), &adm, "test").await
            }));
        }
        let mut granted = Vec::new();
        for t in tasks {
            match t.await.expect("join") {
                Ok(a) => granted.push(a),
                Err(StoreError::CapacityExhausted { capacity }) => assert_eq!(capacity, 5),
                Err(e) => panic!("[{}] unexpected: {e}", db.kind),
            }
        }
        assert_eq!(granted.len(), 5, "[{}]", db.kind);
        let stacks: BTreeSet<String> = granted.iter().map(|a| a.lease.stack_id.clone()).collect();
        assert_eq!(stacks, pooled, "[{}] each pool stack handed out exactly once", db.kind);
        assert!(granted.iter().all(|a| a.from_pool.is_some()));
        assert!(s.pool_list().await.expect("list").is_empty());
    }
}

/// The queue is FIFO across callers; nobody jumps it; a grant is atomic.
#[tokio::test]
async fn queue_order_and_grants_on_both_databases() {
    for db in all_dbs().await {
        let s = &db.store;
        let hosts = vec![HostCapacity {
            name: "local".into(),
            capacity: 1,
        }];
        fn adm<'a>(hosts: &'a [HostCapacity], waiter: Option<&'a str>) -> Admission<'a> {
            Admission {
                quota: 3,
                hosts,
                pool_since: None,
                respect_queue: waiter.is_none(),
                waiter,
                worker: "w",
            }
        }
        let first = s
            .reserve_lease(&new_lease("alice"), &adm(&hosts, None), "alice")
            .await
            .expect("first");
        assert!(matches!(
            s.reserve_lease(&new_lease("bob"), &adm(&hosts, None), "bob").await,
            Err(StoreError::CapacityExhausted { .. })
        ));
        let mut ids = Vec::new();
        for (i, who) in ["bob", "carol", "dave"].iter().enumerate() {
            let w = stagelib::store::Waiter {
                id: uuid::Uuid::new_v4().to_string(),
                owner: who.to_string(),
                scope: stagelib::lease::Scope::User,
                request: serde_json::json!({}),
                created_at: t0(),
                deadline: t0() + Duration::minutes(10),
                last_seen_at: t0(),
                state: WaiterState::Waiting,
                lease_id: None,
                reason: None,
                settled_at: None,
            };
            assert_eq!(s.queue_push(&w).await.expect("push"), i as u64 + 1, "[{}]", db.kind);
            ids.push(w.id);
        }
        assert!(matches!(
            s.reserve_lease(&new_lease("eve"), &adm(&hosts, None), "eve").await,
            Err(StoreError::QueueNotEmpty { waiting: 3 })
        ));
        assert_eq!(s.queue_head().await.expect("head").expect("someone").id, ids[0]);
        // Capacity frees: the head is granted once, even if two managers try.
        s.transition(
            first.lease.id,
            &[LeaseState::Requested],
            LeaseState::Releasing,
            &stagelib::store::Change {
                actor: "t".into(),
                at: t0(),
                reason: None,
                endpoints: None,
            },
        )
        .await
        .expect("releasing");
        s.transition(
            first.lease.id,
            &[LeaseState::Releasing],
            LeaseState::Released,
            &stagelib::store::Change {
                actor: "t".into(),
                at: t0(),
                reason: None,
                endpoints: None,
            },
        )
        .await
        .expect("released");
        let bob = s
            .reserve_lease(&new_lease("bob"), &adm(&hosts, Some(&ids[0])), "bob")
            .await
            .expect("grant");
        assert!(matches!(
            s.reserve_lease(&new_lease("bob"), &adm(&hosts, Some(&ids[0])), "bob")
                .await,
            Err(StoreError::WaiterSettled(_))
        ));
        let (w, pos) = s.queue_get(&ids[0], None).await.expect("get").expect("exists");
        assert_eq!(
            (w.state, pos, w.lease_id),
            (WaiterState::Granted, 0, Some(bob.lease.id))
        );
        assert_eq!(s.queue_get(&ids[1], None).await.expect("get").expect("exists").1, 1);
        assert_eq!(s.queue_get(&ids[2], None).await.expect("get").expect("exists").1, 2);
        // Deadlines and abandoned clients end the wait, with a reason.
        let expired = s
            .queue_expire(t0() + Duration::minutes(11), t0() - Duration::hours(1))
            .await
            .expect("expire");
        assert_eq!(expired.len(), 2, "[{}]", db.kind);
        assert!(expired
            .iter()
            .all(|w| w.state == WaiterState::TimedOut && w.reason.is_some()));
        assert!(s.queue_head().await.expect("head").is_none());
    }
}

fn pools(min_ready: u32) -> Vec<PoolConfig> {
    vec![PoolConfig {
        template: Template::default_template(),
        seed: None,
        min_ready,
        max_age: Duration::hours(2),
    }]
}

fn req(wait: Option<&str>) -> ReserveRequest {
    ReserveRequest {
        wait: wait.map(str::to_string),
        ..Default::default()
    }
}

/// A manager with a pool of two and a capacity of three: pool claims, a cold
/// reservation, eviction of a pool stack for a real request, the queue, its
/// timeout, max age, and the cap on holds.
#[tokio::test]
async fn manager_pool_eviction_queue_and_holds() {
    let db = sqlite_db().await;
    let tm = manager_on(Arc::clone(&db.store), false);
    let m = &tm.manager;
    m.set_hosts(vec![HostCapacity {
        name: "local".into(),
        capacity: 3,
    }]);
    m.set_pools(pools(2));
    assert_eq!(m.refill_once().await.expect("refill"), 2);
    assert_eq!(m.refill_once().await.expect("refill"), 0, "the pool is full");
    m.beat().await.expect("heartbeat");
    let status = m.pool_report().await.expect("status");
    assert_eq!((status.pools[0].ready, status.hosts[0].used), (2, 2));
    assert_eq!(status.instances.len(), 1);
    assert!(status.instances[0].alive && status.instances[0].id == m.instance_id());
    assert_eq!(status.instances[0].pid, std::process::id());

    let alice = Actor::user("alice");
    let l1 = m.reserve(&alice, req(None)).await.expect("from the pool");
    assert!(
        l1.stack_id.starts_with("pool-") && l1.state == LeaseState::Ready,
        "{l1:?}"
    );
    // The pool refills into the free capacity (one lease + two pool stacks = 3).
    assert_eq!(m.refill_once().await.expect("refill"), 1);
    assert_eq!(m.pool_report().await.expect("status").hosts[0].used, 3);
    // Full: a real request of another template gets room by evicting a pool stack.
    let full = ReserveRequest {
        template: Some("full".into()),
        ..Default::default()
    };
    let l3 = m.reserve(&Actor::user("carol"), full).await.expect("evicts");
    assert!(
        !l3.stack_id.starts_with("pool-") && l3.state == LeaseState::Ready,
        "{l3:?}"
    );
    let l2 = m
        .reserve(&Actor::user("bob"), req(None))
        .await
        .expect("the pool's last stack");
    assert!(l2.stack_id.starts_with("pool-"), "{l2:?}");
    m.drain().await;
    let stacks: BTreeSet<&str> = [&l1, &l2, &l3].iter().map(|l| l.stack_id.as_str()).collect();
    assert_eq!(stacks.len(), 3, "three different stacks");
    let status = m.pool_report().await.expect("status");
    assert_eq!((status.pools[0].ready, status.hosts[0].used), (0, 3));
    assert_eq!(tm.backend.stack_ids().len(), 3, "the evicted pool stack was destroyed");

    // Now everything is a real lease: a reservation fails, or queues with --wait.
    let e = m.reserve(&Actor::user("dave"), req(None)).await.expect_err("full");
    assert!(e.to_string().contains("capacity"), "{e}");
    let Reservation::Queued(t1) = m
        .reserve_or_wait(&Actor::user("dave"), req(Some("10m")))
        .await
        .expect("q")
    else {
        panic!("dave should queue")
    };
    let Reservation::Queued(t2) = m
        .reserve_or_wait(&Actor::user("erin"), req(Some("1m")))
        .await
        .expect("q")
    else {
        panic!("erin should queue")
    };
    assert_eq!((t1.position, t2.position), (1, 2));
    let e = m
        .reserve(&Actor::user("frank"), req(None))
        .await
        .expect_err("behind the queue");
    assert!(e.to_string().contains("waiting"), "{e}");
    assert_eq!(
        m.refill_once().await.expect("refill"),
        0,
        "no pre-warming while people wait"
    );
    // Others cannot see or cancel someone's ticket.
    assert!(m.queue_ticket(&Actor::user("erin"), &t1.id).await.is_err());

    m.release(&alice, l1.id).await.expect("release");
    assert_eq!(m.dispatch_queue().await.expect("dispatch"), 1);
    m.drain().await;
    let t1 = m.queue_ticket(&Actor::user("dave"), &t1.id).await.expect("ticket");
    assert_eq!(t1.state, WaiterState::Granted);
    let dave = m
        .show(&Actor::user("dave"), t1.lease_id.expect("lease"))
        .await
        .expect("show");
    assert_eq!(dave.lease.state, LeaseState::Ready);
    assert_eq!(
        m.queue_ticket(&Actor::user("erin"), &t2.id).await.expect("t").position,
        1
    );
    // Erin's deadline passes.
    tm.clock.advance(Duration::minutes(2));
    m.dispatch_queue().await.expect("dispatch");
    let t2 = m.queue_ticket(&Actor::user("erin"), &t2.id).await.expect("t");
    assert_eq!(t2.state, WaiterState::TimedOut);
    assert!(t2.reason.expect("why").contains("timed out"));

    // Pool stacks past their max age are retired and replaced.
    m.release(&Actor::user("bob"), l2.id).await.expect("release");
    assert_eq!(m.refill_once().await.expect("refill"), 1);
    let old: Vec<String> = m.pool_report().await.expect("s").pools[0]
        .stacks
        .iter()
        .map(|s| s.stack_id.clone())
        .collect();
    tm.clock.advance(Duration::hours(3));
    m.refill_once().await.expect("refill");
    let now: Vec<String> = m.pool_report().await.expect("s").pools[0]
        .stacks
        .iter()
        .map(|s| s.stack_id.clone())
        .collect();
    assert_eq!(now.len(), 1);
    assert_ne!(old, now, "the stale pool stack was replaced");
    assert!(!tm.backend.stack_ids().contains(&old[0]), "and destroyed");

    // Holds are capped per user (default 2).
    let ops = Actor::user("ops");
    m.set_hosts(vec![]);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(m.reserve(&ops, req(None)).await.expect("reserve"));
    }
    let hold = || LeasePatch {
        hold: Some(true),
        ..Default::default()
    };
    m.patch(&ops, held[0].id, hold()).await.expect("hold 1");
    m.patch(&ops, held[1].id, hold()).await.expect("hold 2");
    let e = m.patch(&ops, held[2].id, hold()).await.expect_err("cap");
    assert!(e.to_string().contains("max_holds"), "{e}");
}
