//! Lease-core benchmark: reserve and release latency (p50/p99) through the
//! service layer on SQLite and PostgreSQL, and the time to reap 10 000 stale
//! leases. Run: `cargo bench --bench lease` (PostgreSQL from
//! STAGELIB_TEST_POSTGRES_URL, skipped with a note when unreachable).
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use stagelib::backend::memory::MemoryBackend;
use stagelib::lease::{Actor, LeaseId, Namespace, NewLease, Policy};
use stagelib::manager::{LeaseService, Manager, ManagerKey, ManagerParts, ManualClock, ReserveRequest};
use stagelib::stack::Template;
use stagelib::store::Store;

const ROUNDS: usize = 300;
const STALE: usize = 10_000;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn manager(store: Arc<dyn Store>, clock: Arc<ManualClock>) -> Arc<Manager> {
    Manager::new(ManagerParts {
        store,
        backend: Arc::new(MemoryBackend::new()),
        clock,
        policy: Policy {
            quota: u32::MAX,
            ..Policy::default()
        },
        key: ManagerKey::from_bytes(b"bench".to_vec()),
        background: false,
    })
}

async fn bench(kind: &str, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = stagelib::store::open(url).await?;
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().ok_or("time")?;
    let clock = Arc::new(ManualClock::new(t0));
    let m = manager(store.clone(), clock.clone());
    let actor = Actor::user("bench");
    let (mut reserve, mut release) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        let req = ReserveRequest {
            namespace: Some(format!("b{i}")),
            ..Default::default()
        };
        let t = Instant::now();
        let lease = m.reserve(&actor, req).await?;
        reserve.push(t.elapsed());
        let t = Instant::now();
        m.release(&actor, lease.id).await?;
        release.push(t.elapsed());
    }
    reserve.sort();
    release.sort();
    println!(
        "{kind:<8} reserve  p50 {:>8.2?}  p99 {:>8.2?}   ({ROUNDS} rounds, in-memory stacks)",
        pct(&reserve, 0.5),
        pct(&reserve, 0.99)
    );
    println!(
        "{kind:<8} release  p50 {:>8.2?}  p99 {:>8.2?}",
        pct(&release, 0.5),
        pct(&release, 0.99)
    );

    // 10 000 stale leases, inserted directly, then one reap.
    let template = Template::default_template();
    let fill = Instant::now();
    for i in 0..STALE {
        let id = LeaseId::new();
        let new = NewLease {
            id,
            owner: format!("user{}", i % 500),
            namespace: Namespace::parse(&format!("n{i}"))?,
            stack_id: id.to_string(),
            template: template.clone(),
            seed: None,
            created_at: t0,
            expires_at: t0 + chrono::Duration::hours(1),
            hold: false,
            labels: Default::default(),
            backend: "memory".into(),
        };
        store.create_lease(&new, u32::MAX, "bench").await?;
    }
    let fill = fill.elapsed();
    clock.set(t0 + chrono::Duration::hours(2));
    let t = Instant::now();
    let report = m.reap(&Actor::admin("bench"), false).await?;
    let reap = t.elapsed();
    println!(
        "{kind:<8} reap     {} stale leases expired in {:.2?} (filling them took {:.2?})",
        report.actions.len(),
        reap,
        fill
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        bench("sqlite", &sqlite).await?;
        let base = std::env::var("STAGELIB_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://stagelib:stagelib@127.0.0.1:5432/stagelib_test".into());
        match sqlx::PgPool::connect(&base).await {
            Ok(pool) => {
                let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await?;
                let url = format!("{base}?options=-c%20search_path%3D{schema}");
                let result = bench("postgres", &url).await;
                sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                    .execute(&pool)
                    .await?;
                result?;
            }
            Err(e) => println!("postgres skipped: cannot connect to {base}: {e}"),
        }
        Ok(())
    })
}
