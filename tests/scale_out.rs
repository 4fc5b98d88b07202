//! Two `stagelib serve` processes on one PostgreSQL database, sharing a pool of
//! pre-warmed stacks (process backend): 1 000 racing reservations, then `kill -9`
//! of one instance mid-load while the other finishes the work.
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_stagelib");
const CAPACITY: usize = 6;
const POOL: u64 = 4;

fn cmd(state: &Path, db: &str) -> Command {
    let mut c = Command::new(BIN);
    c.env("STAGELIB_STATE_DIR", state)
        .env("STAGELIB_DATABASE_URL", db)
        .env("STAGELIB_BACKEND", "process")
        .env("STAGELIB_QUOTA", "2000")
        .env("STAGELIB_CONFIG", state.join("config.toml"))
        .env_remove("STAGELIB_SERVER");
    c
}

fn start_serve(state: &Path, db: &str, port: u16, log: &str) -> Child {
    let err = std::fs::File::create(state.join(log)).expect("log file");
    cmd(state, db)
        .env("STAGELIB_LOG", "info")
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--reap-interval",
            "0s",
        ])
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("spawn serve")
}

struct Api {
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn get(&self, url: String) -> Value {
        let r = self.http.get(url).bearer_auth(&self.token).send().await.expect("get");
        assert!(r.status().is_success(), "{}", r.status());
        r.json().await.expect("json")
    }

    async fn pool(&self, base: &str) -> Value {
        self.get(format!("{base}/v1/pool")).await
    }

    async fn wait_pool_ready(&self, base: &str, want: u64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let p = self.pool(base).await;
            if p["pools"][0]["ready"].as_u64() == Some(want) {
                return;
            }
            assert!(Instant::now() < deadline, "pool never reached {want} ready: {p}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn states(&self, base: &str, ids: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for id in ids {
            out.push(
                self.get(format!("{base}/v1/leases/{id}")).await["state"]
                    .as_str()
                    .expect("state")
                    .to_string(),
            );
        }
        out
    }

    async fn wait_settled(&self, base: &str, ids: &[String], secs: u64) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let st = self.states(base, ids).await;
            if st.iter().all(|s| s == "ready" || s == "failed") {
                return st;
            }
            assert!(Instant::now() < deadline, "leases still pending: {st:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn release_all(&self, base: &str, ids: &[String]) {
        for id in ids {
            let r = self
                .http
                .delete(format!("{base}/v1/leases/{id}"))
                .bearer_auth(&self.token)
                .send()
                .await
                .expect("release");
            assert_eq!(r.status(), 200);
        }
    }
}

/// Stack directories of the process backend that still have a live service.
fn running_stacks(state: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    let root = state.join("process").join("stacks").to_string_lossy().to_string();
    for entry in dir.flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat.rsplit(')').next().is_some_and(|s| s.trim_start().starts_with('Z')) {
            continue;
        }
        let line = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if let Some(rest) = line.split(&format!("{root}/")).nth(1) {
            if line.contains(" service ") {
                out.insert(rest.split('/').next().unwrap_or_default().to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn two_instances_one_pool_racing_reservations_and_a_kill_9() {
    let Some(pg) = support::postgres_db().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path();
    std::fs::write(
        state.join("config.toml"),
        format!("capacity = {CAPACITY}\n\n[[pool]]\ntemplate = \"default\"\nseed = \"none\"\nmin_ready = {POOL}\nmax_age = \"1h\"\n"),
    )
    .expect("config");
    let out = cmd(state, &pg.url)
        .args(["--json", "token", "create", "--user", "admin", "--scope", "admin"])
        .output()
        .expect("token");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = serde_json::from_slice::<Value>(&out.stdout).expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let api = Api {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("client"),
        token,
    };
    let (pa, pb) = (support::free_port(), support::free_port());
    let (a, b) = (format!("http://127.0.0.1:{pa}"), format!("http://127.0.0.1:{pb}"));
    let mut serve_a = start_serve(state, &pg.url, pa, "serve-a.log");
    let mut serve_b = start_serve(state, &pg.url, pb, "serve-b.log");
    support::wait_healthy(&a).await;
    support::wait_healthy(&b).await;
    api.wait_pool_ready(&a, POOL).await;
    let instances = api.pool(&b).await["instances"].as_array().expect("instances").len();
    assert!(instances >= 2, "both serve instances registered");

    // 1 000 reservations race through both instances, 64 at a time.
    let started = Instant::now();
    let answers: Vec<(u16, Value)> = futures::stream::iter(0..1000)
        .map(|i| {
            let base = if i % 2 == 0 { a.clone() } else { b.clone() };
            let api = &api;
            async move {
                let r = api
                    .http
                    .post(format!("{base}/v1/leases"))
                    .bearer_auth(&api.token)
                    .json(&json!({"namespace": format!("racer-{i}"), "template": "default"}))
                    .send()
                    .await
                    .expect("every request is answered");
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.expect("a JSON answer"))
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (s, _) in &answers {
        *by_status.entry(*s).or_default() += 1;
    }
    eprintln!("1000 racing reservations in {secs:.2}s: {by_status:?}");
    assert_eq!(answers.len(), 1000);
    assert!(
        by_status.keys().all(|s| *s == 201 || *s == 503),
        "only leases or 'no capacity': {by_status:?}"
    );
    for (s, v) in &answers {
        if *s == 503 {
            assert!(
                v["error"]["message"].as_str().unwrap_or_default().contains("capacity"),
                "{v}"
            );
        }
    }
    let leases: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 201).map(|(_, v)| v).collect();
    assert_eq!(leases.len(), CAPACITY, "exactly the capacity is handed out");
    let stacks: BTreeSet<&str> = leases.iter().map(|l| l["stack_id"].as_str().expect("stack")).collect();
    assert_eq!(stacks.len(), CAPACITY, "no stack allocated twice");
    let pooled = stacks.iter().filter(|s| s.starts_with("pool-")).count();
    assert!(pooled as u64 >= POOL, "the {POOL} warm stacks were claimed ({pooled})");
    let ids: Vec<String> = leases
        .iter()
        .map(|l| l["id"].as_str().expect("id").to_string())
        .collect();
    let st = api.wait_settled(&a, &ids, 120).await;
    assert!(st.iter().all(|s| s == "ready"), "{st:?}");
    let running = running_stacks(state);
    assert_eq!(running.len(), CAPACITY, "capacity respected on the host: {running:?}");

    // Give everything back: the pool refills to its size, nothing else runs.
    api.release_all(&b, &ids).await;
    api.wait_pool_ready(&b, POOL).await;

    // Mid-load: four reservations through A (pool claims and cold ones), two
    // more queue for capacity, then A dies with the work in flight.
    let mut ids = Vec::new();
    let mut tickets = Vec::new();
    for i in 0..8 {
        let r = api
            .http
            .post(format!("{a}/v1/leases"))
            .bearer_auth(&api.token)
            .json(&json!({"namespace": format!("load-{i}"), "template": "default", "wait": "5m"}))
            .send()
            .await
            .expect("reserve");
        let status = r.status().as_u16();
        let v: Value = r.json().await.expect("json");
        match status {
            201 => ids.push(v["id"].as_str().expect("id").to_string()),
            202 => tickets.push(v["id"].as_str().expect("ticket").to_string()),
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!((ids.len(), tickets.len()), (CAPACITY, 2), "six leases, two queued");
    serve_a.kill().expect("kill -9");
    let _ = serve_a.wait();
    let killed_at = Instant::now();
    // B takes over A's in-flight provisioning.
    let st = api.wait_settled(&b, &ids, 90).await;
    assert!(st.iter().all(|s| s == "ready"), "{st:?}");
    eprintln!(
        "after kill -9 of A: all {} leases ready via B in {:.1}s",
        ids.len(),
        killed_at.elapsed().as_secs_f64()
    );
    // Capacity frees; B grants the queue in order.
    api.release_all(&b, &ids[..2]).await;
    let mut granted = Vec::new();
    for t in &tickets {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = api.get(format!("{b}/v1/queue/{t}")).await;
            if v["state"] == "granted" {
                granted.push(v["lease_id"].as_str().expect("lease").to_string());
                break;
            }
            assert_eq!(v["state"], "waiting", "{v}");
            assert!(Instant::now() < deadline, "queue entry never granted: {v}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let st = api.wait_settled(&b, &granted, 60).await;
    assert!(st.iter().all(|s| s == "ready"), "{st:?}");

    // Nothing leaks: after releasing every lease, only the pool's stacks run.
    api.release_all(&b, &ids[2..]).await;
    api.release_all(&b, &granted).await;
    api.wait_pool_ready(&b, POOL).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pool: BTreeSet<String> = api.pool(&b).await["pools"][0]["stacks"]
            .as_array()
            .expect("stacks")
            .iter()
            .map(|s| s["stack_id"].as_str().expect("id").to_string())
            .collect();
        let running = running_stacks(state);
        if running == pool {
            break;
        }
        assert!(Instant::now() < deadline, "running {running:?} != pool {pool:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = serve_b.kill();
    let _ = serve_b.wait();
    // The pool's own stacks go with the test.
    let out = cmd(state, &pg.url)
        .args(["--json", "list", "--all"])
        .output()
        .expect("list");
    assert!(out.status.success());
    kill_stack_processes(state);
}

fn kill_stack_processes(state: &Path) {
    let root = state.join("process").to_string_lossy().to_string();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                if String::from_utf8_lossy(&cmdline).contains(&root) {
                    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                }
            }
        }
    }
}
