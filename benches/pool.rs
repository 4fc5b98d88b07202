//! Pool and scale-out benchmark. Run: `cargo bench --bench pool`.
//!
//! 1. Two `stagelib serve` processes on one database (PostgreSQL from
//!    STAGELIB_TEST_POSTGRES_URL, else SQLite with a note), stacks as records
//!    (`--backend memory`) so the figures are the manager's own: pool refill
//!    rate, warm checkout latency through the HTTP API (POST → 201, and POST →
//!    `ready`), reservations per second through one and through two instances.
//! 2. Real stacks (process backend, in-process manager): refill rate of a pool
//!    of unseeded stacks, and reserve → ready from a seeded pool (the claim plus
//!    seeding the `default` snapshot under the user's namespace) against a cold
//!    reservation.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use stagelib::backend::process::ProcessBackend;
use stagelib::lease::{Actor, LeaseState, Policy};
use stagelib::manager::{LeaseService, Manager, ManagerKey, ManagerParts, PoolConfig, ReserveRequest, SystemClock};
use stagelib::seed::{LibrarySeeder, SnapshotLibrary};
use stagelib::stack::Template;

const BIN: &str = env!("CARGO_BIN_EXE_stagelib");
const POOL: u64 = 50;
const ROUNDS: usize = 300;
const RESERVATIONS: usize = 2000;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn cmd(state: &Path, db: &str) -> Command {
    let mut c = Command::new(BIN);
    c.env("STAGELIB_STATE_DIR", state)
        .env("STAGELIB_DATABASE_URL", db)
        .env("STAGELIB_BACKEND", "memory")
        .env("STAGELIB_QUOTA", "1000000")
        .env("STAGELIB_CONFIG", state.join("config.toml"))
        .env_remove("STAGELIB_SERVER");
    c
}

fn serve(state: &Path, db: &str, port: u16) -> Res<Child> {
    Ok(cmd(state, db)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--reap-interval",
            "0s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

async fn healthy(base: &str) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("{base} did not come up").into())
}

async fn database() -> Res<(String, &'static str)> {
    let base = std::env::var("STAGELIB_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://stagelib:stagelib@127.0.0.1:5432/stagelib_test".into());
    match sqlx::PgPool::connect(&base).await {
        Ok(pool) => {
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await?;
            let sep = if base.contains('?') { '&' } else { '?' };
            Ok((format!("{base}{sep}options=-c%20search_path%3D{schema}"), "postgres"))
        }
        Err(e) => {
            println!("note: PostgreSQL unreachable ({e}); the two instances share SQLite instead");
            Ok((String::new(), "sqlite"))
        }
    }
}

struct Api {
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn ready_in_pool(&self, base: &str) -> Res<u64> {
        let v: Value = self
            .http
            .get(format!("{base}/v1/pool"))
            .bearer_auth(&self.token)
            .send()
            .await?
            .json()
            .await?;
        Ok(v["pools"][0]["ready"].as_u64().unwrap_or(0))
    }

    async fn reserve(&self, base: &str, i: usize) -> Res<(u16, Value)> {
        let r = self
            .http
            .post(format!("{base}/v1/leases"))
            .bearer_auth(&self.token)
            .json(&json!({"namespace": format!("b{i}"), "template": "default"}))
            .send()
            .await?;
        Ok((r.status().as_u16(), r.json().await?))
    }

    async fn state(&self, base: &str, id: &str) -> Res<String> {
        let v: Value = self
            .http
            .get(format!("{base}/v1/leases/{id}"))
            .bearer_auth(&self.token)
            .send()
            .await?
            .json()
            .await?;
        Ok(v["state"].as_str().unwrap_or_default().to_string())
    }

    async fn release(&self, base: &str, id: &str) -> Res<()> {
        self.http
            .delete(format!("{base}/v1/leases/{id}"))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(())
    }
}

async fn two_instances() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let state = dir.path();
    let (mut db, kind) = database().await?;
    if db.is_empty() {
        db = format!("sqlite://{}", state.join("db.sqlite").display());
    }
    std::fs::write(
        state.join("config.toml"),
        format!("[[pool]]\ntemplate = \"default\"\nseed = \"none\"\nmin_ready = {POOL}\nmax_age = \"1h\"\n"),
    )?;
    let out = cmd(state, &db)
        .args(["--json", "token", "create", "--user", "bench", "--scope", "admin"])
        .output()?;
    let token = serde_json::from_slice::<Value>(&out.stdout)?["token"]
        .as_str()
        .ok_or("no token")?
        .to_string();
    let api = Api {
        http: reqwest::Client::new(),
        token,
    };
    let (pa, pb) = (free_port()?, free_port()?);
    let (a, b) = (format!("http://127.0.0.1:{pa}"), format!("http://127.0.0.1:{pb}"));
    let started = Instant::now();
    let mut children = vec![serve(state, &db, pa)?, serve(state, &db, pb)?];
    healthy(&a).await?;
    healthy(&b).await?;
    while api.ready_in_pool(&a).await? < POOL {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fill = started.elapsed().as_secs_f64();
    println!("[{kind}, 2 instances, stacks as records]");
    println!(
        "pool refill           {POOL} stacks in {fill:.2} s from a cold start = {:.0} stacks/s (manager overhead)",
        POOL as f64 / fill
    );

    let (mut checkout, mut ready) = (Vec::new(), Vec::new());
    let mut pooled = 0;
    for i in 0..ROUNDS {
        let base = if i % 2 == 0 { &a } else { &b };
        // A warm checkout: wait (untimed) until the pool has a stack to give.
        while api.ready_in_pool(base).await? == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let t = Instant::now();
        let (status, lease) = api.reserve(base, i).await?;
        checkout.push(t.elapsed());
        if status != 201 {
            return Err(format!("reservation {i}: {status} {lease}").into());
        }
        let id = lease["id"].as_str().ok_or("id")?.to_string();
        if lease["stack_id"].as_str().is_some_and(|s| s.starts_with("pool-")) {
            pooled += 1;
        }
        while api.state(base, &id).await? != "ready" {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        ready.push(t.elapsed());
        api.release(base, &id).await?;
    }
    checkout.sort();
    ready.sort();
    println!(
        "warm checkout (HTTP)  POST→201  p50 {:>8.2?}  p99 {:>8.2?}   POST→ready p50 {:>8.2?}  p99 {:>8.2?}   ({ROUNDS} rounds, {pooled} from the pool)",
        pct(&checkout, 0.5),
        pct(&checkout, 0.99),
        pct(&ready, 0.5),
        pct(&ready, 0.99)
    );

    for (label, bases) in [
        ("1 instance ", vec![a.clone()]),
        ("2 instances", vec![a.clone(), b.clone()]),
    ] {
        let t = Instant::now();
        let answers: Vec<Res<(u16, Value)>> = futures::stream::iter(0..RESERVATIONS)
            .map(|i| {
                let base = bases[i % bases.len()].clone();
                let api = &api;
                async move { api.reserve(&base, 100_000 + i + label.len() * 1_000_000).await }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        let secs = t.elapsed().as_secs_f64();
        let ok = answers.iter().filter(|r| matches!(r, Ok((201, _)))).count();
        println!(
            "reservations, {label}  {ok}/{RESERVATIONS} in {secs:.2} s = {:.0} reservations/s (32 concurrent clients)",
            ok as f64 / secs
        );
        for r in answers.into_iter().flatten() {
            if let Some(id) = r.1["id"].as_str() {
                api.release(&bases[0], id).await?;
            }
        }
    }
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    Ok(())
}

async fn real_stacks(docker: bool) -> Res<()> {
    let dir = tempfile::tempdir()?;
    let store = stagelib::store::open(&format!("sqlite://{}", dir.path().join("db.sqlite").display())).await?;
    let backend: Arc<dyn stagelib::backend::Backend> = if docker {
        match stagelib::backend::docker::DockerBackend::connect(PathBuf::from(BIN), "bench-pool").await {
            Ok(d) => {
                d.ensure_image().await?;
                Arc::new(d)
            }
            Err(e) => {
                println!("[docker] skipped: {e}");
                return Ok(());
            }
        }
    } else {
        Arc::new(ProcessBackend::new(dir.path().join("process"), PathBuf::from(BIN)))
    };
    let m = Manager::new(ManagerParts {
        store,
        backend: backend.clone(),
        clock: Arc::new(SystemClock),
        policy: Policy {
            quota: 100,
            ..Policy::default()
        },
        key: ManagerKey::from_bytes(b"bench".to_vec()),
        background: false,
    });
    m.seed_with(Arc::new(LibrarySeeder::new(SnapshotLibrary::new(vec![]))));
    println!(
        "[sqlite, {} backend, real stacks of balrog + bouncer + s3]",
        if docker { "docker" } else { "process" }
    );
    m.set_pools(vec![PoolConfig {
        template: Template::default_template(),
        seed: None,
        min_ready: if docker { 2 } else { 4 },
        max_age: chrono::Duration::hours(1),
    }]);
    let t = Instant::now();
    let n = m.refill_once().await?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "pool refill           {n} unseeded stacks in {secs:.2} s = {:.2} stacks/s",
        n as f64 / secs
    );
    m.set_pools(vec![PoolConfig {
        template: Template::default_template(),
        seed: Some("default".into()),
        min_ready: if docker { 2 } else { 3 },
        max_age: chrono::Duration::hours(1),
    }]);
    m.refill_once().await?;
    let actor = Actor::admin("bench");
    let mut warm = Vec::new();
    for i in 0..if docker { 2 } else { 3 } {
        let req = ReserveRequest {
            namespace: Some(format!("warm{i}")),
            seed: Some("default".into()),
            ..Default::default()
        };
        let t = Instant::now();
        let lease = m.reserve(&actor, req).await?;
        if lease.state != LeaseState::Ready || !lease.stack_id.starts_with("pool-") {
            return Err(format!("warm reservation: {lease:?}").into());
        }
        warm.push(t.elapsed());
    }
    m.set_pools(vec![]);
    let t = Instant::now();
    let cold = m
        .reserve(
            &actor,
            ReserveRequest {
                namespace: Some("cold".into()),
                seed: Some("default".into()),
                ..Default::default()
            },
        )
        .await?;
    let cold_secs = t.elapsed();
    warm.sort();
    println!(
        "reserve → ready, seeded `default`: from the pool p50 {:.2?} (max {:.2?}, claim + seeding the namespace), cold {:.2?}",
        pct(&warm, 0.5),
        warm[warm.len() - 1],
        cold_secs
    );
    for l in m.list(&actor, Default::default()).await? {
        m.release(&actor, l.id).await?;
    }
    let _ = cold;
    for s in backend.list().await? {
        backend.destroy(&s.stack_id).await?;
    }
    Ok(())
}

fn main() -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        two_instances().await?;
        real_stacks(false).await?;
        real_stacks(true).await
    })
}
