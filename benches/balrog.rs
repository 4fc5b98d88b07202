//! Balrog stand-in benchmark: update-query throughput from a loopback load
//! generator, and resident memory at rest and after the load.
//! Run: `cargo bench --bench balrog`.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const CLIENTS: usize = 32;
const SECONDS: u64 = 5;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let ready = dir.path().join("ready");
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
        .arg(dir.path().join("data"))
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let start = Instant::now();
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(&ready) {
            if !a.is_empty() {
                break a;
            }
        }
        if start.elapsed() > Duration::from_secs(20) {
            return Err("balrog did not start".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let base = format!("http://{addr}");
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async {
        let c = reqwest::Client::new();
        let locales: serde_json::Map<String, serde_json::Value> = ["en-US", "de", "fr", "ja", "it"]
            .iter()
            .map(|l| {
                (l.to_string(), json!({"buildID": "20250601000000", "appVersion": "140.0", "displayVersion": "140.0",
                    "completes": [{"from": "*", "filesize": 1, "hashValue": "ab"}]}))
            })
            .collect();
        let blob = json!({"name": "Firefox-140.0-build1", "schema_version": 9, "hashFunction": "sha512",
            "appVersion": "140.0", "displayVersion": "140.0",
            "fileUrls": {"*": {"completes": {"*": "http://x/?product=firefox-140.0-complete&os=%OS_BOUNCER%&lang=%LOCALE%"}}},
            "platforms": {"Linux_x86_64-gcc3": {"OS_BOUNCER": "linux64", "OS_FTP": "linux-x86_64", "locales": locales}}});
        c.put(format!("{base}/api/releases/Firefox-140.0-build1"))
            .bearer_auth("t")
            .json(&json!({"name": "Firefox-140.0-build1", "product": "Firefox", "blob": blob.to_string()}))
            .send()
            .await?;
        for i in 0..50 {
            c.post(format!("{base}/api/rules"))
                .bearer_auth("t")
                .json(&json!({"product": "Firefox", "channel": format!("ch{i}"), "mapping": "Firefox-140.0-build1",
                    "backgroundRate": 100, "priority": i, "update_type": "minor"}))
                .send()
                .await?;
        }
        let at_rest = rss_kib(child.id());
        let url = format!("{base}/update/6/Firefox/139.0/20250501000000/Linux_x86_64-gcc3/de/ch7/Linux/ISET:SSE3,MEM:8192,JAWS:0/default/default/update.xml");
        let probe = c.get(&url).send().await?.text().await?;
        assert!(probe.contains("<patch"), "the query must serve an update: {probe}");
        let deadline = Instant::now() + Duration::from_secs(SECONDS);
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let (c, url) = (c.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if c.get(&url).send().await.map(|r| r.status().is_success()).unwrap_or(false) {
                        n += 1;
                    }
                }
                n
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await?;
        }
        let loaded = rss_kib(child.id());
        Ok::<_, Box<dyn std::error::Error>>((total, at_rest, loaded))
    });
    let _ = child.kill();
    let _ = child.wait();
    let (total, at_rest, loaded) = result?;
    println!(
        "balrog update queries: {:.0} req/s ({total} in {SECONDS}s, {CLIENTS} loopback clients, 50 rules)",
        total as f64 / SECONDS as f64
    );
    println!("balrog resident memory: {at_rest} KiB at rest, {loaded} KiB after the load");
    Ok(())
}
