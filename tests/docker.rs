//! The Docker backend against the real engine: isolated stacks, death detected
//! by the reaper, labelled orphans removed (unlabelled objects untouched), 40
//! stacks at once, and the image run through testcontainers. Without an engine
//! these tests fail in CI and skip loudly elsewhere.
mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use stagelib::backend::docker::{DockerBackend, LABEL_MANAGED, LABEL_MANAGER, LABEL_STACK};
use stagelib::backend::{Backend, StackSpec};
use stagelib::lease::{Actor, LeaseId, LeaseState, Namespace, Policy};
use stagelib::manager::{LeaseService, Manager, ManagerKey, ManagerParts, ManualClock, ReapAction, ReserveRequest};
use stagelib::stack::{Credentials, ServiceKind, Template};

/// Each test is its own manager, so one test's reaper never sees another's stacks.
async fn engine(manager: &str) -> Option<DockerBackend> {
    match DockerBackend::connect(PathBuf::from(env!("CARGO_BIN_EXE_stagelib")), manager).await {
        Ok(d) => Some(d),
        Err(e) => {
            let msg = format!("!!! SKIPPING docker tests: {e} !!!");
            if std::env::var_os("CI").is_some() {
                panic!("{msg} -- CI is set, so this is a failure");
            }
            eprintln!("{msg}");
            None
        }
    }
}

fn manager(backend: Arc<dyn Backend>, store: Arc<dyn stagelib::store::Store>) -> (Arc<Manager>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(support::t0()));
    let m = Manager::new(ManagerParts {
        store,
        backend,
        clock: clock.clone(),
        policy: Policy::default(),
        key: ManagerKey::from_bytes(b"docker-test".to_vec()),
        background: false,
    });
    (m, clock)
}

#[tokio::test]
async fn stacks_are_isolated_and_released_completely() {
    let Some(d) = engine("test-isolation").await else {
        return;
    };
    let db = support::sqlite_db().await;
    let (m, _) = manager(Arc::new(d), db.store.clone());
    let a = m
        .reserve(&Actor::user("alice"), ReserveRequest::default())
        .await
        .expect("a");
    let b = m
        .reserve(&Actor::user("bob"), ReserveRequest::default())
        .await
        .expect("b");
    assert_eq!(
        (a.state, b.state),
        (LeaseState::Ready, LeaseState::Ready),
        "{:?} {:?}",
        a.failure_reason,
        b.failure_reason
    );
    let ep = |l: &stagelib::lease::Lease, k: ServiceKind| l.endpoints.as_ref().expect("endpoints").services[&k].clone();
    // The same product name written to both bouncers: each sees only its own location.
    let client = reqwest::Client::new();
    for (lease, path) in [(&a, "/firefox/a"), (&b, "/firefox/b")] {
        let e = ep(lease, ServiceKind::Bouncer);
        for (route, form) in [
            ("product_add/", vec![("product", "Firefox-140.0b3")]),
            (
                "location_add/",
                vec![("product", "Firefox-140.0b3"), ("os", "linux64"), ("path", path)],
            ),
        ] {
            let r = client
                .post(format!("{}/api/{route}", e.url))
                .basic_auth(&e.credentials.username, Some(&e.credentials.secret))
                .form(&form)
                .send()
                .await
                .expect("bouncer");
            assert!(
                r.status().is_success(),
                "{route}: {}",
                r.text().await.unwrap_or_default()
            );
        }
    }
    for (lease, mine, theirs) in [(&a, "/firefox/a", "/firefox/b"), (&b, "/firefox/b", "/firefox/a")] {
        let e = ep(lease, ServiceKind::Bouncer);
        let text = client
            .get(format!("{}/api/location_show?product=Firefox-140.0b3", e.url))
            .send()
            .await
            .expect("show")
            .text()
            .await
            .expect("text");
        assert!(text.contains(mine) && !text.contains(theirs), "{text}");
        assert!(e.internal_url.as_deref().unwrap_or("").contains(&lease.stack_id));
    }
    // Secrets differ per stack: A's token is refused by B's balrog.
    let (ba, bb) = (ep(&a, ServiceKind::Balrog), ep(&b, ServiceKind::Balrog));
    let r = client
        .post(format!("{}/api/emergency_shutoff", bb.url))
        .bearer_auth(&ba.credentials.secret)
        .json(&serde_json::json!({"product": "Firefox", "channel": "beta"}))
        .send()
        .await
        .expect("balrog");
    assert_eq!(r.status().as_u16(), 401);

    for l in [&a, &b] {
        m.release(&Actor::admin("t"), l.id).await.expect("release");
    }
    let left = m.backend().list().await.expect("list");
    assert!(
        left.iter()
            .all(|s| s.stack_id != a.stack_id && s.stack_id != b.stack_id),
        "{left:?}"
    );
}

#[tokio::test]
async fn killed_container_fails_the_lease_and_orphans_are_removed() {
    let Some(d) = engine("test-reaper").await else { return };
    let docker = d.docker().clone();
    let db = support::sqlite_db().await;
    let (m, _) = manager(Arc::new(d), db.store.clone());
    let lease = m
        .reserve(&Actor::user("carol"), ReserveRequest::default())
        .await
        .expect("reserve");
    assert_eq!(lease.state, LeaseState::Ready, "{:?}", lease.failure_reason);
    docker
        .kill_container(
            &format!("stagelib-{}-balrog", lease.stack_id),
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .expect("kill");

    // A labelled orphan network and volume (no lease knows them), and an unlabelled network.
    let orphan = format!("orphan-{}", uuid::Uuid::new_v4().simple());
    let labels: HashMap<String, String> = [
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_STACK.to_string(), orphan.clone()),
        (LABEL_MANAGER.to_string(), "test-reaper".to_string()),
    ]
    .into();
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: format!("stagelib-{orphan}"),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
        .expect("orphan network");
    docker
        .create_volume(bollard::models::VolumeCreateOptions {
            name: Some(format!("stagelib-{orphan}-data")),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
        .expect("orphan volume");
    let tag =
        stagelib::backend::docker::image::tag_for(&std::fs::read(env!("CARGO_BIN_EXE_stagelib")).expect("binary"));
    let container = |labels: Option<HashMap<String, String>>| bollard::models::ContainerCreateBody {
        image: Some(tag.clone()),
        cmd: Some(vec![
            "service".into(),
            "shipit".into(),
            "--data-dir".into(),
            "/tmp".into(),
        ]),
        labels,
        ..Default::default()
    };
    let orphan_container = format!("stagelib-{orphan}-shipit");
    let mut orphan_labels = labels.clone();
    orphan_labels.insert("org.mozilla.stagelib.service".into(), "shipit".into());
    docker
        .create_container(
            Some(
                bollard::query_parameters::CreateContainerOptionsBuilder::new()
                    .name(&orphan_container)
                    .build(),
            ),
            container(Some(orphan_labels)),
        )
        .await
        .expect("orphan container");
    let unlabelled_container = format!("not-ours-{}", uuid::Uuid::new_v4().simple());
    docker
        .create_container(
            Some(
                bollard::query_parameters::CreateContainerOptionsBuilder::new()
                    .name(&unlabelled_container)
                    .build(),
            ),
            container(None),
        )
        .await
        .expect("unlabelled container");
    let bystander = format!("not-ours-{}", uuid::Uuid::new_v4().simple());
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: bystander.clone(),
            ..Default::default()
        })
        .await
        .expect("unlabelled network");

    let report = m.reap(&Actor::admin("cron"), false).await.expect("reap");
    assert!(
        report
            .actions
            .iter()
            .any(|a| matches!(a, ReapAction::Failed { lease_id, .. } if *lease_id == lease.id)),
        "{report:?}"
    );
    assert!(
        report
            .actions
            .iter()
            .any(|a| matches!(a, ReapAction::OrphanSeen { stack_id } if *stack_id == orphan)),
        "first sighting only: {report:?}"
    );
    let report = m.reap(&Actor::admin("cron"), false).await.expect("second pass");
    assert!(
        report
            .actions
            .iter()
            .any(|a| matches!(a, ReapAction::OrphanRemoved { stack_id } if *stack_id == orphan)),
        "{report:?}"
    );
    let after = m.show(&Actor::admin("t"), lease.id).await.expect("show").lease;
    assert_eq!(after.state, LeaseState::Failed);
    assert!(after.failure_reason.unwrap_or_default().contains("balrog"));
    let stacks = m.backend().list().await.expect("list");
    assert!(
        stacks
            .iter()
            .all(|s| s.stack_id != lease.stack_id && s.stack_id != orphan),
        "{stacks:?}"
    );
    assert!(
        docker
            .inspect_network(&bystander, None::<bollard::query_parameters::InspectNetworkOptions>)
            .await
            .is_ok(),
        "unlabelled objects are never touched"
    );
    assert!(
        docker
            .inspect_container(
                &orphan_container,
                None::<bollard::query_parameters::InspectContainerOptions>
            )
            .await
            .is_err(),
        "the labelled orphan container is gone"
    );
    assert!(
        docker
            .inspect_container(
                &unlabelled_container,
                None::<bollard::query_parameters::InspectContainerOptions>
            )
            .await
            .is_ok(),
        "the unlabelled container is untouched"
    );
    docker.remove_network(&bystander).await.expect("cleanup");
    docker
        .remove_container(
            &unlabelled_container,
            None::<bollard::query_parameters::RemoveContainerOptions>,
        )
        .await
        .expect("cleanup");
}

fn one_service_spec(i: usize) -> StackSpec {
    let stack_id = format!("forty-{i}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    StackSpec {
        stack_id,
        lease_id: LeaseId::new(),
        owner: "load".into(),
        namespace: Namespace::parse("load").expect("ns"),
        template: Template {
            name: "one".into(),
            services: vec![ServiceKind::Shipit],
        },
        credentials: BTreeMap::from([(
            ServiceKind::Shipit,
            Credentials {
                username: "u".into(),
                secret: "s".into(),
            },
        )]),
        host: None,
    }
}

#[tokio::test]
async fn forty_stacks_at_once() {
    let Some(d) = engine("test-forty").await else { return };
    let d = Arc::new(d);
    let specs: Vec<StackSpec> = (0..40).map(one_service_spec).collect();
    let mut up = Vec::new();
    for chunk in specs.chunks(10) {
        let jobs = chunk.iter().map(|s| d.provision(s));
        for r in futures::future::join_all(jobs).await {
            up.push(r.expect("stack up"));
        }
    }
    assert_eq!(up.len(), 40);
    let client = reqwest::Client::new();
    for eps in &up {
        let r = client
            .get(format!("{}/__heartbeat__", eps.services[&ServiceKind::Shipit].url))
            .send()
            .await
            .expect("heartbeat");
        assert!(r.status().is_success());
    }
    let listed = d.list().await.expect("list");
    for s in &specs {
        assert!(listed.iter().any(|l| l.stack_id == s.stack_id));
    }
    for chunk in specs.chunks(10) {
        for r in futures::future::join_all(chunk.iter().map(|s| d.destroy(&s.stack_id))).await {
            r.expect("destroy");
        }
    }
    let listed = d.list().await.expect("list");
    assert!(specs.iter().all(|s| listed.iter().all(|l| l.stack_id != s.stack_id)));
}

#[tokio::test]
async fn the_image_runs_under_testcontainers() {
    use testcontainers::core::{IntoContainerPort, WaitFor};
    use testcontainers::runners::AsyncRunner;
    use testcontainers::{GenericImage, ImageExt};
    let Some(d) = engine("test-testcontainers").await else {
        return;
    };
    let (tag, _) = d.ensure_image().await.expect("image");
    let (name, version) = tag.split_once(':').expect("tag");
    let container = GenericImage::new(name, version)
        .with_exposed_port(8000.tcp())
        .with_wait_for(WaitFor::Nothing)
        .with_cmd(["service", "bouncer", "--listen", "0.0.0.0:8000", "--data-dir", "/data"])
        .with_label(LABEL_MANAGED, "true")
        .with_label(LABEL_STACK, "testcontainers")
        .start()
        .await
        .expect("start");
    let port = container.get_host_port_ipv4(8000.tcp()).await.expect("port");
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/__heartbeat__")).await {
            ok = r.status().is_success();
            if ok {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ok, "the containerised bouncer answers");
    container.rm().await.expect("remove");
    // testcontainers has no reaper: ours removes what it might leak (labelled above).
    d.destroy("testcontainers").await.expect("sweep");
}

/// A stack in containers seeded with the default snapshot: ready only once
/// seeded, and the updater walk Balrog → Bouncer → S3 works from the host for a
/// seeded previous version (so the URLs written into the data are reachable).
#[tokio::test]
async fn seeded_stack_in_containers_serves_previous_releases() {
    let Some(d) = engine("test-seeded").await else {
        return;
    };
    let db = support::sqlite_db().await;
    let (m, _) = manager(Arc::new(d), db.store.clone());
    let lib = stagelib::seed::SnapshotLibrary::new(vec![]);
    m.seed_with(Arc::new(stagelib::seed::LibrarySeeder::new(lib)));
    let started = std::time::Instant::now();
    let lease = m
        .reserve(
            &Actor::user("alice"),
            ReserveRequest {
                seed: Some("default".into()),
                ..Default::default()
            },
        )
        .await
        .expect("reserve");
    assert_eq!(lease.state, LeaseState::Ready, "{:?}", lease.failure_reason);
    eprintln!("seeded container stack ready in {:?}", started.elapsed());
    let eps = lease.endpoints.clone().expect("endpoints");
    let balrog = &eps.services[&ServiceKind::Balrog];
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let from = stagelib::seed::mar::build_id("firefox", "158.0b3");
    let q = format!(
        "{}/update/6/Firefox/158.0/{from}/WINNT_x86_64-msvc-x64/de/alice-beta/Windows_NT%2010.0.0.0/ISET:SSE4_2/default/default/update.xml",
        balrog.url
    );
    let xml = http.get(&q).send().await.expect("q").text().await.expect("t");
    let partial = xml
        .lines()
        .find(|l| l.contains("type=\"partial\""))
        .unwrap_or_else(|| panic!("no partial offered: {xml}"));
    let field = |a: &str| {
        let start = partial.find(&format!("{a}=\"")).expect("attr") + a.len() + 2;
        partial[start..start + partial[start..].find('"').expect("quote")].replace("&amp;", "&")
    };
    let r = http.get(field("URL")).send().await.expect("bouncer");
    assert_eq!(r.status().as_u16(), 302);
    let target = r.headers()["location"].to_str().expect("loc").to_string();
    assert!(
        target.contains("/alice-releases/158.0b4/update/win64/de/firefox-158.0b3-158.0b4.partial.mar"),
        "{target}"
    );
    let bytes = http
        .get(&target)
        .send()
        .await
        .expect("s3")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(bytes.len().to_string(), field("size"));
    assert_eq!(stagelib::seed::snapshot::sha512_hex(&bytes), field("hashValue"));
    m.release(&Actor::admin("t"), lease.id).await.expect("release");
}

/// Two Docker hosts (here: two connections to the local engine, told apart by
/// their manager label) with a capacity of one stack each: leases are placed by
/// free capacity, one per host, and a third finds no room.
#[tokio::test]
async fn two_docker_hosts_placement_by_free_capacity() {
    if engine("test-hosts-probe").await.is_none() {
        return;
    }
    let url = std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| h.starts_with("unix://"))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_stagelib"));
    let a = Arc::new(
        DockerBackend::connect_url(bin.clone(), "test-host-a", &url, None)
            .await
            .expect("host a"),
    );
    let b = Arc::new(
        DockerBackend::connect_url(bin, "test-host-b", &url, None)
            .await
            .expect("host b"),
    );
    let multi = stagelib::backend::hosts::MultiHost::new(vec![
        ("host-a".into(), a.clone() as Arc<dyn Backend>),
        ("host-b".into(), b.clone() as Arc<dyn Backend>),
    ])
    .expect("hosts");
    let db = support::sqlite_db().await;
    let (m, _) = manager(Arc::new(multi), db.store.clone());
    m.set_hosts(
        ["host-a", "host-b"]
            .iter()
            .map(|h| stagelib::store::HostCapacity {
                name: h.to_string(),
                capacity: 1,
            })
            .collect(),
    );
    let mut leases = Vec::new();
    for user in ["alice", "bob"] {
        let l = m
            .reserve(&Actor::user(user), ReserveRequest::default())
            .await
            .expect("reserve");
        assert_eq!(l.state, LeaseState::Ready, "{:?}", l.failure_reason);
        leases.push(l);
    }
    let hosts: std::collections::BTreeSet<&str> = leases.iter().map(|l| l.host.as_str()).collect();
    assert_eq!(hosts.len(), 2, "one stack per host: {hosts:?}");
    for l in &leases {
        let on = if l.host == "host-a" { &a } else { &b };
        let ids: Vec<String> = on.list().await.expect("list").into_iter().map(|s| s.stack_id).collect();
        assert!(ids.contains(&l.stack_id), "{} runs on {}", l.stack_id, l.host);
    }
    let e = m
        .reserve(&Actor::user("carol"), ReserveRequest::default())
        .await
        .expect_err("both hosts are full");
    assert!(e.to_string().contains("capacity"), "{e}");
    for l in &leases {
        m.release(&Actor::user(&l.owner), l.id).await.expect("release");
    }
    assert!(a.list().await.expect("list").is_empty() && b.list().await.expect("list").is_empty());
}
