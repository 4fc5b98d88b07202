//! `kill -9` of `stagelib serve` while stacks provision, then a restart: every
//! lease ends `ready` or `failed`, and no service process is left behind.
mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_stagelib");

fn cmd(state: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env("STAGELIB_STATE_DIR", state)
        .env(
            "STAGELIB_DATABASE_URL",
            format!("sqlite://{}", state.join("db.sqlite").display()),
        )
        .env("STAGELIB_BACKEND", "process")
        .env("STAGELIB_QUOTA", "10")
        .env_remove("STAGELIB_SERVER")
        .env_remove("STAGELIB_CONFIG")
        .env("XDG_CONFIG_HOME", state.join("no-config"));
    c
}

fn start_serve(state: &Path, port: u16) -> Child {
    cmd(state)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--reap-interval",
            "0s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve")
}

/// PIDs of live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Zombies (state Z) are already dead.
        let zombie = stat
            .rsplit(')')
            .next()
            .map(|s| s.trim_start().starts_with('Z'))
            .unwrap_or(false);
        if !zombie && String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test]
async fn kill_9_during_provisioning_then_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path();
    let out = cmd(state)
        .args(["--json", "token", "create", "--user", "admin", "--scope", "admin"])
        .output()
        .expect("token create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = serde_json::from_slice::<Value>(&out.stdout).expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();

    let port = support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut serve = start_serve(state, port);
    support::wait_healthy(&base).await;

    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..4 {
        let r = client
            .post(format!("{base}/v1/leases"))
            .bearer_auth(&token)
            .json(&json!({"namespace": format!("crash-{i}"), "template": "full"}))
            .send()
            .await
            .expect("reserve");
        assert_eq!(r.status(), 201);
        ids.push(
            r.json::<Value>().await.expect("json")["id"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    // Kill -9 while the stacks are still coming up.
    serve.kill().expect("kill -9");
    let _ = serve.wait();

    let mut serve = start_serve(state, port);
    support::wait_healthy(&base).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut states = Vec::new();
    loop {
        states.clear();
        for id in &ids {
            let l: Value = client
                .get(format!("{base}/v1/leases/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("show")
                .json()
                .await
                .expect("json");
            states.push(l["state"].as_str().expect("state").to_string());
        }
        if states.iter().all(|s| s == "ready" || s == "failed") {
            break;
        }
        assert!(Instant::now() < deadline, "leases still pending: {states:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("after restart: {states:?}");
    // Every ready stack answers on every endpoint.
    for (id, st) in ids.iter().zip(&states) {
        if st != "ready" {
            continue;
        }
        let eps: Value = client
            .get(format!("{base}/v1/leases/{id}/endpoints"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("endpoints")
            .json()
            .await
            .expect("json");
        for (svc, ep) in eps["endpoints"]["services"].as_object().expect("services") {
            let url = format!("{}/__heartbeat__", ep["url"].as_str().expect("url"));
            let r = reqwest::get(&url).await.expect("heartbeat");
            assert!(r.status().is_success(), "{svc} of {id} is not answering");
        }
    }
    let stacks_dir = state.join("process");
    let needle = stacks_dir.to_string_lossy().to_string();
    // Exactly the services of the four stacks run: nothing from the first serve is orphaned.
    let running = processes_mentioning(&needle).len();
    let ready = states.iter().filter(|s| *s == "ready").count();
    assert_eq!(
        running,
        ready * 4,
        "service processes: {running} for {ready} ready stacks of 4 services"
    );

    for id in &ids {
        let r = client
            .delete(format!("{base}/v1/leases/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("release");
        assert_eq!(r.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !processes_mentioning(&needle).is_empty() {
        assert!(
            Instant::now() < deadline,
            "left behind: {:?}",
            processes_mentioning(&needle)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = serve.kill();
    let _ = serve.wait();
}
