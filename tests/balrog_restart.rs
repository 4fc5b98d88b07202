//! kill -9 of `stagelib service balrog` during concurrent writes: after a restart
//! on the same data directory, every write that was acknowledged is there.
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

// The child is handed to the caller, which kills and waits for it.
#[allow(clippy::zombie_processes)]
fn start(dir: &Path) -> (Child, String) {
    let ready = dir.join("ready");
    let _ = std::fs::remove_file(&ready);
    let mut child = Command::new(env!("CARGO_BIN_EXE_stagelib"))
        .args([
            "service",
            "balrog",
            "--listen",
            "127.0.0.1:0",
            "--secret",
            "t",
            "--data-dir",
        ])
        .arg(dir)
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(a) = std::fs::read_to_string(&ready) {
            if !a.is_empty() {
                return (child, format!("http://{a}"));
            }
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("balrog did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut child, base) = start(dir.path());
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (client, base, acked) = (client.clone(), base.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("Firefox-{w}.{i}-build1");
                let blob = json!({"name": name, "schema_version": 9, "appVersion": "1.0"});
                let r = client
                    .put(format!("{base}/api/releases/{name}"))
                    .bearer_auth("t")
                    .json(&json!({"name": name, "product": "Firefox", "blob": blob.to_string()}))
                    .send()
                    .await;
                match r {
                    Ok(resp) if resp.status().as_u16() == 201 => acked.lock().expect("lock").push(name),
                    Ok(resp) => panic!("unexpected {}", resp.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Let the writers run, then pull the plug.
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().expect("kill -9");
    let _ = child.wait();
    for t in tasks {
        t.await.expect("writer");
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 20, "the writers made progress: {}", acked.len());

    let (mut child, base) = start(dir.path());
    let mut missing = Vec::new();
    for name in &acked {
        let r = client
            .get(format!("{base}/api/releases/{name}"))
            .send()
            .await
            .expect("get");
        if r.status().as_u16() != 200 {
            missing.push(name.clone());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    eprintln!(
        "{} acknowledged writes before kill -9, {} missing after restart",
        acked.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "lost: {missing:?}");
}
