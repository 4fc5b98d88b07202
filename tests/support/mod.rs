//! Shared test support: stores on both databases, managers, an in-process API.
#![allow(dead_code)]
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use stagelib::backend::memory::MemoryBackend;
use stagelib::backend::Backend;
use stagelib::lease::Policy;
use stagelib::manager::{Manager, ManagerKey, ManagerParts, ManualClock};
use stagelib::store::Store;

pub const PG_DEFAULT: &str = "postgres://stagelib:stagelib@127.0.0.1:5432/stagelib_test";

/// Keeps a test database alive (temp dir or PostgreSQL schema).
pub enum DbGuard {
    Sqlite(tempfile::TempDir),
    Postgres { base: String, schema: String },
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        if let DbGuard::Postgres { base, schema } = self {
            let (base, schema) = (base.clone(), schema.clone());
            // Best effort; a leftover schema only costs disk in the test database.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(pool) = sqlx::PgPool::connect(&base).await {
                            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                                .execute(&pool)
                                .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

pub struct TestDb {
    pub kind: &'static str,
    pub url: String,
    pub store: Arc<dyn Store>,
    pub guard: DbGuard,
}

pub async fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("leases.db").display());
    let store = stagelib::store::open(&url).await.expect("open sqlite store");
    TestDb {
        kind: "sqlite",
        url,
        store,
        guard: DbGuard::Sqlite(dir),
    }
}

/// A fresh PostgreSQL schema, or `None` (with a loud message) when no server is
/// reachable outside CI. In CI a missing server is a failure.
pub async fn postgres_db() -> Option<TestDb> {
    let base = std::env::var("STAGELIB_TEST_POSTGRES_URL").unwrap_or_else(|_| PG_DEFAULT.to_string());
    let pool = match sqlx::PgPool::connect(&base).await {
        Ok(p) => p,
        Err(e) => {
            let msg = format!("!!! SKIPPING PostgreSQL tests: cannot connect to {base}: {e} (run .ci/postgres.sh) !!!");
            if std::env::var_os("CI").is_some() {
                panic!("{msg} -- CI is set, so this is a failure");
            }
            eprintln!("{msg}");
            return None;
        }
    };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&pool)
        .await
        .expect("create schema");
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let store = stagelib::store::open(&url).await.expect("open postgres store");
    Some(TestDb {
        kind: "postgres",
        url,
        store,
        guard: DbGuard::Postgres { base, schema },
    })
}

/// SQLite always, PostgreSQL when available.
pub async fn all_dbs() -> Vec<TestDb> {
    let mut v = vec![sqlite_db().await];
    if let Some(pg) = postgres_db().await {
        v.push(pg);
    }
    v
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("valid time")
}

pub struct TestManager {
    pub manager: Arc<Manager>,
    pub clock: Arc<ManualClock>,
    pub backend: Arc<MemoryBackend>,
}

pub fn manager_on(store: Arc<dyn Store>, background: bool) -> TestManager {
    let clock = Arc::new(ManualClock::new(t0()));
    let backend = Arc::new(MemoryBackend::new());
    let manager = Manager::new(ManagerParts {
        store,
        backend: Arc::clone(&backend) as Arc<dyn Backend>,
        clock: Arc::clone(&clock) as _,
        policy: Policy::default(),
        key: ManagerKey::from_bytes(b"test-key".to_vec()),
        background,
    });
    TestManager {
        manager,
        clock,
        backend,
    }
}

/// Serve the API in-process on a free loopback port.
pub async fn serve_api(manager: Arc<Manager>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, stagelib::api::router(manager)).await;
    });
    addr
}
pub mod balrog;

/// A free loopback port (for a `stagelib serve` child).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Wait until `base/healthz` answers 2xx (30 s at most).
pub async fn wait_healthy(base: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("serve at {base} did not become healthy");
}
