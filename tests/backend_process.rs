//! The process backend with the real binary: start, adopt, detect death,
//! restart, destroy, and never touch a process that is not ours.
use std::collections::BTreeMap;
use std::path::PathBuf;

use stagelib::backend::process::{PidFile, ProcessBackend};
use stagelib::backend::{Backend, ServiceHealth, StackSpec};
use stagelib::lease::{LeaseId, Namespace};
use stagelib::stack::{Credentials, ServiceKind, Template};

fn backend(dir: &std::path::Path) -> ProcessBackend {
    ProcessBackend::new(dir.to_path_buf(), PathBuf::from(env!("CARGO_BIN_EXE_stagelib")))
}

fn spec(stack_id: &str) -> StackSpec {
    let template = Template::default_template();
    let credentials: BTreeMap<_, _> = template
        .services
        .iter()
        .map(|k| {
            (
                *k,
                Credentials {
                    username: "stagelib".into(),
                    secret: format!("secret-{k}"),
                },
            )
        })
        .collect();
    StackSpec {
        stack_id: stack_id.into(),
        lease_id: LeaseId::new(),
        owner: "alice".into(),
        namespace: Namespace::parse("alice").expect("ns"),
        template,
        credentials,
        host: None,
    }
}

fn pid_of(dir: &std::path::Path, stack: &str, svc: ServiceKind) -> PidFile {
    PidFile::read(&dir.join(format!("stacks/{stack}/{svc}.pid"))).expect("pid file")
}

#[tokio::test]
async fn start_adopt_detect_death_restart_destroy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = backend(tmp.path());
    let started = std::time::Instant::now();
    let eps = b.provision(&spec("s1")).await.expect("provision");
    eprintln!("3-service stack ready in {:?}", started.elapsed());
    assert_eq!(eps.services.len(), 3);
    let mut ports = std::collections::BTreeSet::new();
    for ep in eps.services.values() {
        let r = reqwest::get(format!("{}/__heartbeat__", ep.url))
            .await
            .expect("heartbeat");
        assert!(r.status().is_success());
        ports.insert(ep.url.clone());
    }
    assert_eq!(ports.len(), 3, "distinct ports");

    // Provisioning again adopts the same processes.
    let before = pid_of(tmp.path(), "s1", ServiceKind::Balrog);
    let again = b.provision(&spec("s1")).await.expect("again");
    assert_eq!(again, eps);
    assert_eq!(pid_of(tmp.path(), "s1", ServiceKind::Balrog), before);

    // kill -9 one service: list says dead, provision restarts it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(before.pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let mut dead = false;
    for _ in 0..100 {
        let list = b.list().await.expect("list");
        if matches!(list[0].services[&ServiceKind::Balrog], ServiceHealth::Dead { .. }) {
            dead = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(dead, "the killed service is reported dead");
    let list = b.list().await.expect("list");
    assert_eq!(list[0].services[&ServiceKind::Bouncer], ServiceHealth::Running);
    b.provision(&spec("s1")).await.expect("restart");
    let after = pid_of(tmp.path(), "s1", ServiceKind::Balrog);
    assert_ne!(after, before);
    assert!(after.is_alive());

    let pids: Vec<PidFile> = [ServiceKind::Balrog, ServiceKind::Bouncer, ServiceKind::S3]
        .iter()
        .map(|k| pid_of(tmp.path(), "s1", *k))
        .collect();
    b.destroy("s1").await.expect("destroy");
    assert!(pids.iter().all(|p| !p.is_alive()), "every process is gone");
    assert!(!tmp.path().join("stacks/s1").exists());
    b.destroy("s1").await.expect("destroy of an absent stack is fine");
    assert!(b.list().await.expect("list").is_empty());
}

#[tokio::test]
async fn a_recycled_pid_is_never_killed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let b = backend(tmp.path());
    let dir = tmp.path().join("stacks/s2");
    std::fs::create_dir_all(&dir).expect("mkdir");
    // A pid file naming this test process, with a different start time.
    let me = PidFile::of(std::process::id()).expect("own pid");
    PidFile {
        start_time: me.start_time + 7,
        ..me
    }
    .write(&dir.join("balrog.pid"))
    .expect("write");
    let list = b.list().await.expect("list");
    assert!(matches!(
        list[0].services[&ServiceKind::Balrog],
        ServiceHealth::Dead { .. }
    ));
    b.destroy("s2").await.expect("destroy");
    assert!(me.is_alive(), "we are still here");
}

#[tokio::test]
async fn a_service_that_cannot_start_reports_its_log() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A stand-in binary that fails the way a broken service would.
    let exe = tmp.path().join("broken-stagelib");
    std::fs::write(
        &exe,
        "#!/bin/sh\necho \"boom: $2 cannot open its database\" >&2\nexit 3\n",
    )
    .expect("write");
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let b = ProcessBackend::new(tmp.path().to_path_buf(), exe);
    let err = b.provision(&spec("s3")).await.expect_err("must fail");
    let text = err.to_string();
    assert!(
        text.contains("cannot open its database"),
        "the error carries the log: {text}"
    );
    b.destroy("s3").await.expect("cleanup");
    assert!(b.list().await.expect("list").is_empty());
}
