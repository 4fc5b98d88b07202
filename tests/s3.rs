//! The S3 stand-in with the `minio` crate as client (the real binary on a
//! loopback port), plus what no client should be able to do: escape the data
//! directory with a crafted key, write without valid credentials.
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use minio::s3::builders::ObjectContent;
use minio::s3::creds::StaticProvider;
use minio::s3::http::BaseUrl;
use minio::s3::types::S3Api;
use minio::s3::{MinioClient, MinioClientBuilder};

const BUCKET: &str = "net-mozaws-stage-delivery-firefox";

struct Svc {
    child: Child,
    url: String,
}

impl Drop for Svc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Svc {
    let ready = dir.join("ready");
    let _ = std::fs::remove_file(&ready);
    let child = Command::new(env!("CARGO_BIN_EXE_stagelib"))
        .args([
            "service",
            "s3",
            "--listen",
            "127.0.0.1:0",
            "--user",
            "AKIATEST",
            "--secret",
            "s3cr3t",
            "--bucket",
            BUCKET,
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut svc = Svc {
        child,
        url: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(a) = std::fs::read_to_string(&ready) {
            if !a.is_empty() {
                svc.url = format!("http://{a}");
                return svc;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("s3 did not start");
}

fn client(url: &str, secret: &str) -> MinioClient {
    let base: BaseUrl = url.parse().expect("base url");
    MinioClientBuilder::new(base)
        .provider(Some(StaticProvider::new("AKIATEST", secret, None)))
        .build()
        .expect("client")
}

#[tokio::test]
async fn minio_client_round_trip_and_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let svc = start(dir.path());
    let c = client(&svc.url, "s3cr3t");
    let key = "pub/firefox/candidates/140.0b3-candidates/build1/SHA512SUMS";
    c.put_object_content(BUCKET, key, ObjectContent::from("abc".to_string()))
        .expect("builder")
        .build()
        .send()
        .await
        .expect("put");
    let stat = c
        .stat_object(BUCKET, key)
        .expect("builder")
        .build()
        .send()
        .await
        .expect("stat");
    assert_eq!(stat.size().expect("size"), 3);
    let got = c
        .get_object(BUCKET, key)
        .expect("builder")
        .build()
        .send()
        .await
        .expect("get");
    assert_eq!(&got.into_bytes().await.expect("bytes")[..], b"abc");

    // Restart on the same data directory: the object is still there.
    drop(svc);
    let svc = start(dir.path());
    let c = client(&svc.url, "s3cr3t");
    let got = c
        .get_object(BUCKET, key)
        .expect("builder")
        .build()
        .send()
        .await
        .expect("get after restart");
    assert_eq!(&got.into_bytes().await.expect("bytes")[..], b"abc");
    c.delete_object(BUCKET, key)
        .expect("builder")
        .build()
        .send()
        .await
        .expect("delete");
    assert!(c
        .stat_object(BUCKET, key)
        .expect("builder")
        .build()
        .send()
        .await
        .is_err());

    // Wrong secret: refused, nothing written.
    let bad = client(&svc.url, "wrong");
    assert!(bad
        .put_object_content(BUCKET, "evil", ObjectContent::from("x".to_string()))
        .expect("builder")
        .build()
        .send()
        .await
        .is_err());
    assert!(c
        .stat_object(BUCKET, "evil")
        .expect("builder")
        .build()
        .send()
        .await
        .is_err());
}

#[tokio::test]
async fn crafted_keys_never_leave_the_bucket() {
    let dir = tempfile::tempdir().expect("tmp");
    let svc = start(dir.path());
    let c = client(&svc.url, "s3cr3t");
    for key in ["../escape", "a/../../../escape", "/etc/passwd-like", "..%2F..%2Fescape"] {
        let r = c
            .put_object_content(BUCKET, key, ObjectContent::from("x".to_string()))
            .expect("builder")
            .build()
            .send()
            .await;
        if r.is_ok() {
            // Stored, but as a key inside the bucket.
            let got = c.get_object(BUCKET, key).expect("b").build().send().await.expect("get");
            assert_eq!(&got.into_bytes().await.expect("bytes")[..], b"x");
        }
    }
    // Nothing was created outside data/buckets/<bucket>/, data/uploads/ and the
    // (empty) index of seeded objects data/generated/.
    let mut outside = Vec::new();
    for e in walk(dir.path()) {
        let rel = e
            .strip_prefix(dir.path())
            .expect("prefix")
            .to_string_lossy()
            .to_string();
        let allowed = rel == "ready"
            || rel == "data"
            || rel.starts_with("data/buckets")
            || rel.starts_with("data/uploads")
            || rel.starts_with("data/generated");
        if !allowed {
            outside.push(rel);
        }
    }
    assert!(outside.is_empty(), "files outside the store: {outside:?}");
    for e in walk(&dir.path().join("data/buckets")) {
        let name = e.file_name().expect("name").to_string_lossy().to_string();
        assert!(!name.contains(".."), "{name}");
    }
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        out.push(e.path());
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}
