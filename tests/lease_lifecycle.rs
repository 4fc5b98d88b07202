//! The lease lifecycle through the service layer, on SQLite and PostgreSQL, with
//! an injected clock (no sleeps) and the in-memory backend.
mod support;

use chrono::Duration;
use stagelib::lease::{Actor, LeaseState};
use stagelib::manager::{ErrorKind, LeasePatch, LeaseService, ListQuery, ReapAction, ReserveRequest};
use stagelib::stack::ServiceKind;
use support::{all_dbs, manager_on, t0};

fn req() -> ReserveRequest {
    ReserveRequest {
        labels: [("try".to_string(), "abc123".to_string())].into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn reserve_ready_extend_release() {
    for db in all_dbs().await {
        let t = manager_on(db.store.clone(), false);
        let alice = Actor::user("alice");
        let lease = t.manager.reserve(&alice, req()).await.expect("reserve");
        assert_eq!(lease.state, LeaseState::Ready, "[{}]", db.kind);
        assert_eq!(lease.namespace.as_str(), "alice");
        assert_eq!(lease.expires_at, t0() + Duration::hours(8));
        let eps = t.manager.endpoints(&alice, lease.id).await.expect("endpoints");
        assert_eq!(
            eps.endpoints.services.keys().copied().collect::<Vec<_>>(),
            vec![ServiceKind::Balrog, ServiceKind::Bouncer, ServiceKind::S3]
        );
        assert_eq!(t.backend.stack_ids(), vec![lease.stack_id.clone()]);

        let patch = LeasePatch {
            extend_by: Some("4h".into()),
            ..Default::default()
        };
        let extended = t.manager.patch(&alice, lease.id, patch).await.expect("extend");
        assert_eq!(extended.expires_at, t0() + Duration::hours(12), "[{}]", db.kind);

        t.clock.advance(Duration::hours(11) + Duration::minutes(30));
        let hb = t.manager.heartbeat(&alice, lease.id).await.expect("heartbeat");
        assert_eq!(hb.expires_at, t0() + Duration::hours(12) + Duration::minutes(30));
        assert_eq!(
            hb.last_heartbeat_at,
            Some(t0() + Duration::hours(11) + Duration::minutes(30))
        );

        let released = t.manager.release(&alice, lease.id).await.expect("release");
        assert_eq!(released.state, LeaseState::Released);
        assert!(t.backend.stack_ids().is_empty(), "stack removed");
        // Releasing twice is harmless.
        assert_eq!(
            t.manager.release(&alice, lease.id).await.expect("again").state,
            LeaseState::Released
        );

        let detail = t.manager.show(&alice, lease.id).await.expect("show");
        let trail: Vec<_> = detail.events.iter().map(|e| (e.from, e.to)).collect();
        assert_eq!(
            trail,
            vec![
                (None, LeaseState::Requested),
                (Some(LeaseState::Requested), LeaseState::Provisioning),
                (Some(LeaseState::Provisioning), LeaseState::Ready),
                (Some(LeaseState::Ready), LeaseState::Releasing),
                (Some(LeaseState::Releasing), LeaseState::Released),
            ],
            "[{}]",
            db.kind
        );
        assert_eq!(detail.events[0].actor, "alice");
        assert_eq!(detail.events[3].actor, "alice");
        assert_eq!(detail.lease.labels.get("try").map(String::as_str), Some("abc123"));
    }
}

#[tokio::test]
async fn reap_expires_after_ttl_and_respects_hold() {
    for db in all_dbs().await {
        let t = manager_on(db.store.clone(), false);
        let admin = Actor::admin("cron");
        let bob = Actor::user("bob");
        let short = t
            .manager
            .reserve(
                &bob,
                ReserveRequest {
                    ttl: Some("2h".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("short");
        let held = t
            .manager
            .reserve(
                &bob,
                ReserveRequest {
                    ttl: Some("2h".into()),
                    hold: true,
                    namespace: Some("bob-held".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("held");

        // Before the TTL nothing happens.
        t.clock.advance(Duration::minutes(119));
        let r = t.manager.reap(&admin, false).await.expect("reap");
        assert!(r.actions.is_empty(), "[{}] {:?}", db.kind, r.actions);

        // After it, a dry run reports without changing anything.
        t.clock.advance(Duration::minutes(2));
        let dry = t.manager.reap(&admin, true).await.expect("dry run");
        assert_eq!(
            dry.actions,
            vec![ReapAction::Expired {
                lease_id: short.id,
                owner: "bob".into()
            }]
        );
        assert_eq!(
            t.manager.show(&bob, short.id).await.expect("show").lease.state,
            LeaseState::Ready
        );

        let r = t.manager.reap(&admin, false).await.expect("reap");
        assert_eq!(r.count(|a| matches!(a, ReapAction::Expired { .. })), 1, "[{}]", db.kind);
        assert_eq!(
            t.manager.show(&bob, short.id).await.expect("show").lease.state,
            LeaseState::Expired
        );
        assert_eq!(
            t.backend.stack_ids(),
            vec![held.stack_id.clone()],
            "only the held stack remains"
        );

        // The held lease lives until the maximum lifetime (7 days).
        t.clock.set(t0() + Duration::days(7));
        let r = t.manager.reap(&admin, false).await.expect("reap");
        assert_eq!(r.count(|a| matches!(a, ReapAction::Expired { .. })), 1, "[{}]", db.kind);
        assert!(t.backend.stack_ids().is_empty());
        // Reaping again finds nothing to do.
        assert!(t.manager.reap(&admin, false).await.expect("reap").actions.is_empty());
    }
}

#[tokio::test]
async fn reap_fails_dead_stacks_and_removes_orphans() {
    for db in all_dbs().await {
        let t = manager_on(db.store.clone(), false);
        let admin = Actor::admin("cron");
        let carol = Actor::user("carol");
        let dead = t.manager.reserve(&carol, req()).await.expect("reserve");
        let gone = t
            .manager
            .reserve(
                &carol,
                ReserveRequest {
                    namespace: Some("carol-2".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("reserve");
        t.backend.kill(&dead.stack_id);
        t.backend.vanish(&gone.stack_id);
        t.backend.plant_orphan("orphan-stack");

        let r = t.manager.reap(&admin, false).await.expect("reap");
        assert_eq!(
            r.count(|a| matches!(a, ReapAction::Failed { .. })),
            2,
            "[{}] {:?}",
            db.kind,
            r
        );
        // An orphan is only noted the first time, removed when seen again.
        assert_eq!(r.count(|a| matches!(a, ReapAction::OrphanSeen { .. })), 1);
        assert!(t.backend.stack_ids().contains(&"orphan-stack".to_string()));
        let r = t.manager.reap(&admin, false).await.expect("reap");
        assert_eq!(r.count(|a| matches!(a, ReapAction::OrphanRemoved { .. })), 1);
        let dead = t.manager.show(&carol, dead.id).await.expect("show").lease;
        assert_eq!(dead.state, LeaseState::Failed);
        assert!(
            dead.failure_reason.as_deref().unwrap_or("").contains("died"),
            "{dead:?}"
        );
        assert_eq!(
            t.manager.show(&carol, gone.id).await.expect("show").lease.state,
            LeaseState::Failed
        );
        assert!(t.backend.stack_ids().is_empty(), "{:?}", t.backend.stack_ids());
    }
}

#[tokio::test]
async fn failed_provisioning_records_the_reason() {
    for db in all_dbs().await {
        let t = manager_on(db.store.clone(), false);
        let dave = Actor::user("dave");
        t.backend.fail_next_provision("balrog would not start: port in use");
        let lease = t
            .manager
            .reserve(&dave, req())
            .await
            .expect("reserve returns the failed lease");
        assert_eq!(lease.state, LeaseState::Failed, "[{}]", db.kind);
        assert!(lease.failure_reason.as_deref().unwrap_or("").contains("port in use"));
        assert!(t.backend.stack_ids().is_empty());
        // A failed lease does not count against the quota.
        for i in 0..3 {
            let ns = format!("dave-{i}");
            t.manager
                .reserve(
                    &dave,
                    ReserveRequest {
                        namespace: Some(ns),
                        ..Default::default()
                    },
                )
                .await
                .expect("within quota");
        }
        let err = t
            .manager
            .reserve(
                &dave,
                ReserveRequest {
                    namespace: Some("dave-x".into()),
                    ..Default::default()
                },
            )
            .await
            .expect_err("over quota");
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(err.to_string().contains('3'), "names the limit: {err}");
        let mine = t.manager.list(&dave, ListQuery::default()).await.expect("list");
        assert_eq!(mine.len(), 4);
    }
}

#[tokio::test]
async fn users_cannot_touch_each_others_leases() {
    let db = support::sqlite_db().await;
    let t = manager_on(db.store.clone(), false);
    let alice = Actor::user("alice");
    let mallory = Actor::user("mallory");
    let lease = t.manager.reserve(&alice, req()).await.expect("reserve");
    for res in [
        t.manager.show(&mallory, lease.id).await.map(|_| ()),
        t.manager.release(&mallory, lease.id).await.map(|_| ()),
        t.manager.heartbeat(&mallory, lease.id).await.map(|_| ()),
        t.manager.endpoints(&mallory, lease.id).await.map(|_| ()),
    ] {
        assert_eq!(res.expect_err("forbidden").kind(), ErrorKind::Forbidden);
    }
    assert!(t
        .manager
        .list(&mallory, ListQuery::default())
        .await
        .expect("list")
        .is_empty());
    let err = t
        .manager
        .list(
            &mallory,
            ListQuery {
                all: true,
                ..Default::default()
            },
        )
        .await
        .expect_err("list all is admin only");
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert_eq!(
        t.manager.show(&alice, lease.id).await.expect("still there").lease.state,
        LeaseState::Ready
    );
}
