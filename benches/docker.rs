//! Docker backend benchmark: stack image build (cold) and reuse (warm), time to
//! a ready 4-service stack, teardown time, and memory per idle stack (cgroup
//! usage of its containers). Run: `cargo bench --bench docker`.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use stagelib::backend::docker::DockerBackend;
use stagelib::backend::{Backend, StackSpec};
use stagelib::lease::{LeaseId, Namespace};
use stagelib::stack::{Credentials, Template};

const STACKS: usize = 5;

fn spec(i: usize) -> StackSpec {
    let template = Template::full();
    StackSpec {
        stack_id: format!("bench-{i}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        lease_id: LeaseId::new(),
        owner: "bench".into(),
        namespace: Namespace::parse("bench").expect("ns"),
        credentials: template
            .services
            .iter()
            .map(|k| {
                (
                    *k,
                    Credentials {
                        username: "u".into(),
                        secret: "s".into(),
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
        template,
        host: None,
    }
}

/// Resident (anonymous) memory of a container from cgroup v1 `memory.stat`.
fn cgroup_rss(id: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/sys/fs/cgroup/memory/docker/{id}/memory.stat")).ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("total_rss ").or_else(|| l.strip_prefix("rss ")))
        .and_then(|v| v.trim().parse().ok())
}

fn cgroup_mem(id: &str) -> Option<u64> {
    for p in [
        format!("/sys/fs/cgroup/memory/docker/{id}/memory.usage_in_bytes"),
        format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.current"),
    ] {
        if let Ok(s) = std::fs::read_to_string(p) {
            return s.trim().parse().ok();
        }
    }
    None
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let d = match DockerBackend::connect(PathBuf::from(env!("CARGO_BIN_EXE_stagelib")), "bench").await {
            Ok(d) => d,
            Err(e) => {
                println!("docker benchmark skipped: {e}");
                return Ok(());
            }
        };
        let t = Instant::now();
        let (tag, built) = d.ensure_image().await?;
        println!(
            "image {tag}: {} in {:.2?}",
            if built { "built (cold)" } else { "already present" },
            t.elapsed()
        );
        let t = Instant::now();
        d.ensure_image().await?;
        println!("image reuse (warm): {:.2?}", t.elapsed());
        let mut times = Vec::new();
        let mut specs = Vec::new();
        for i in 0..STACKS {
            let s = spec(i);
            let t = Instant::now();
            d.provision(&s).await?;
            times.push(t.elapsed());
            specs.push(s);
        }
        times.sort();
        println!(
            "4-service stack to ready: min {:.2?}, median {:.2?}, max {:.2?} ({STACKS} stacks, image present)",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let filters: std::collections::HashMap<String, Vec<String>> = [(
            "label".to_string(),
            vec!["org.mozilla.stagelib.manager=bench".to_string()],
        )]
        .into();
        let containers = d
            .docker()
            .list_containers(Some(
                bollard::query_parameters::ListContainersOptionsBuilder::new()
                    .filters(&filters)
                    .build(),
            ))
            .await?;
        let total: u64 = containers
            .iter()
            .filter_map(|c| c.id.as_deref().and_then(cgroup_mem))
            .sum();
        let rss: u64 = containers.iter().filter_map(|c| c.id.as_deref().and_then(cgroup_rss)).sum();
        if total > 0 {
            println!(
                "memory per idle 4-service stack: {:.1} MiB resident, {:.1} MiB cgroup usage incl. page cache ({} containers)",
                rss as f64 / 1048576.0 / STACKS as f64,
                total as f64 / 1048576.0 / STACKS as f64,
                containers.len()
            );
        } else {
            println!("memory per idle stack: cgroup memory not readable here");
        }
        let mut down = Vec::new();
        for s in &specs {
            let t = Instant::now();
            d.destroy(&s.stack_id).await?;
            down.push(t.elapsed());
        }
        down.sort();
        println!(
            "teardown: median {:.2?}, max {:.2?}",
            down[down.len() / 2],
            down[down.len() - 1]
        );
        Ok(())
    })
}
