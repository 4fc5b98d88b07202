//! `cargo bench --bench seed`: size of the default snapshot, time to generate
//! and read it, and time to seed it into a fresh stack (process backend, release
//! binary) — first seeding, re-seeding (idempotent, nothing changes) and a
//! second namespace on the same stack — plus how fast the seeded Balrog
//! answers the update queries of every previous version.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use stagelib::backend::process::ProcessBackend;
use stagelib::backend::{Backend, StackSpec};
use stagelib::lease::{LeaseId, Namespace};
use stagelib::seed::generate::{app_version, default_snapshot, locales_for, FAMILIES, PLATFORMS};
use stagelib::seed::namespace::{NameKind, Namespacer};
use stagelib::seed::{seed_stack, Snapshot};
use stagelib::stack::{Credentials, ServiceKind, Template};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("seed-data/default");
    let t = Instant::now();
    let snap = default_snapshot();
    let generate = t.elapsed();
    let t = Instant::now();
    let read = Snapshot::read(&committed)?;
    let read_time = t.elapsed();
    assert_eq!(read, snap);
    let s = snap.summary();
    println!("default snapshot: {:.2} MB on disk ({} releases, {} rules, {} bouncer products, {} S3 objects = {:.1} MB generated, {} ship-it releases)",
        Snapshot::size_on_disk(&committed) as f64 / 1e6, s["balrog"]["releases"], s["balrog"]["rules"],
        s["bouncer"]["products"], s["s3"]["objects"], s["s3"]["bytes"].as_f64().unwrap_or(0.0) / 1e6, s["shipit"]["releases"]);
    println!(
        "generate in memory: {:.0} ms; read from seed-data/: {:.0} ms",
        generate.as_secs_f64() * 1e3,
        read_time.as_secs_f64() * 1e3
    );

    let dir = tempfile::tempdir()?;
    let backend = ProcessBackend::new(dir.path().to_path_buf(), PathBuf::from(env!("CARGO_BIN_EXE_stagelib")));
    let template = Template::full();
    let credentials: BTreeMap<_, _> = template
        .services
        .iter()
        .map(|k| {
            (
                *k,
                Credentials {
                    username: "stagelib".into(),
                    secret: format!("bench-{k}"),
                },
            )
        })
        .collect();
    let spec = StackSpec {
        stack_id: "bench-seed".into(),
        lease_id: LeaseId::new(),
        owner: "bench".into(),
        namespace: Namespace::parse("bench")?,
        template,
        credentials,
        host: None,
    };
    let endpoints = backend.provision(&spec).await?;
    let alice = Namespacer::new(Namespace::parse("alice")?);
    let mut runs = Vec::new();
    for label in ["first seeding", "re-seeding (no change)", "re-seeding (no change)"] {
        let t = Instant::now();
        let r = seed_stack(&snap, None, &endpoints, &alice).await?;
        runs.push((label, t.elapsed(), r));
    }
    let t = Instant::now();
    let bob = seed_stack(&snap, None, &endpoints, &Namespacer::new(Namespace::parse("bob")?)).await?;
    runs.push(("second namespace, same stack", t.elapsed(), bob));
    for (label, took, r) in &runs {
        let per: Vec<String> = r
            .services
            .iter()
            .map(|s| format!("{} {:.0} ms", s.service, s.seconds * 1e3))
            .collect();
        println!("{label:<30} {:>6.0} ms  ({})", took.as_secs_f64() * 1e3, per.join(", "));
    }

    // Update queries of every previous version, every platform and locale.
    let balrog = endpoints.services[&ServiceKind::Balrog].url.clone();
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let mut urls = Vec::new();
    for f in &FAMILIES {
        for v in &f.versions[..f.versions.len() - 1] {
            let build_id = stagelib::seed::mar::build_id(f.dir, v);
            let channel = alice.apply(NameKind::Channel, f.channel);
            for p in &PLATFORMS {
                for l in locales_for(p) {
                    urls.push(format!("{balrog}/update/6/Firefox/{}/{build_id}/{}/{l}/{channel}/Linux/ISET:SSE4_2/default/default/update.xml", app_version(v), p.target));
                }
            }
        }
    }
    use futures::StreamExt;
    let t = Instant::now();
    let answered: Vec<bool> = futures::stream::iter(urls.iter().map(|u| {
        let http = http.clone();
        async move {
            match http.get(u).send().await {
                Ok(r) => r
                    .text()
                    .await
                    .map(|t| t.contains("<patch type=\"partial\""))
                    .unwrap_or(false),
                Err(_) => false,
            }
        }
    }))
    .buffer_unordered(32)
    .collect()
    .await;
    let took = t.elapsed();
    let ok = answered.iter().filter(|a| **a).count();
    println!("update queries for every previous version: {} queries, {ok} with a partial, {:.2} s ({:.0} queries/s, 32 clients)",
        urls.len(), took.as_secs_f64(), urls.len() as f64 / took.as_secs_f64());
    backend.destroy("bench-seed").await?;
    Ok(())
}
