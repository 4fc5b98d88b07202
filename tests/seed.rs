//! Seeding real stacks (process backend, the real binary): the default snapshot
//! answers update queries for every previous version, seeding is idempotent,
//! pull → seed → pull is the identity, and two namespaces on one stack each see
//! exactly the original snapshot.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use std::time::Instant;

use serde_json::Value;
use stagelib::backend::process::ProcessBackend;
use stagelib::backend::{Backend, StackSpec};
use stagelib::lease::{LeaseId, Namespace};
use stagelib::seed::generate::{app_version, default_snapshot, locales_for, FAMILIES, PLATFORMS};
use stagelib::seed::namespace::{NameKind, Namespacer};
use stagelib::seed::pull::{self, PullOptions, Source};
use stagelib::seed::rewrite::StackUrls;
use stagelib::seed::{seed_stack, seed_stack_with_urls, Snapshot};
use stagelib::stack::{Credentials, ServiceKind, StackEndpoints, Template, RELEASES_BUCKET};

struct Stack {
    _dir: tempfile::TempDir,
    backend: ProcessBackend,
    id: String,
    endpoints: StackEndpoints,
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Drop may run inside the test's runtime: destroy from a thread of our own.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    let _ = rt.block_on(self.backend.destroy(&self.id));
                }
            });
        });
    }
}

async fn stack(id: &str) -> Stack {
    let dir = tempfile::tempdir().expect("tmp");
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
                    secret: format!("secret-{k}-{id}"),
                },
            )
        })
        .collect();
    let spec = StackSpec {
        stack_id: id.into(),
        lease_id: LeaseId::new(),
        owner: "tests".into(),
        namespace: Namespace::parse("tests").expect("ns"),
        template,
        credentials,
        host: None,
    };
    let endpoints = backend.provision(&spec).await.expect("provision");
    Stack {
        _dir: dir,
        backend,
        id: id.into(),
        endpoints,
    }
}

fn ns(name: &str) -> Namespacer {
    Namespacer::new(Namespace::parse(name).expect("ns"))
}

/// Everything but the metadata (name, source, description differ by design).
fn body(s: &Snapshot) -> Value {
    let mut v = serde_json::to_value(s).expect("json");
    v.as_object_mut().expect("object").remove("meta");
    v
}

fn attr(xml: &str, tag_start: usize, name: &str) -> Option<String> {
    let rest = &xml[tag_start..];
    let end = rest.find('>')?;
    let tag = &rest[..end];
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let v = &tag[at..];
    Some(v[..v.find('"')?].replace("&amp;", "&"))
}

/// Query Balrog as the updater of `version` on every platform and locale and
/// check the offer: the newest release of the channel, with a complete and a
/// partial from `version` whose hashes are the snapshot's. For `walk` locales
/// also follow both URLs through bouncer to S3 and check size and SHA-512.
#[allow(clippy::too_many_arguments)]
async fn check_updates(
    http: &reqwest::Client,
    balrog: &str,
    channel: &str,
    version: &str,
    latest: &str,
    build_id: &str,
    expected_hashes: &BTreeSet<String>,
    walk: &[&str],
) -> usize {
    let mut jobs = Vec::new();
    for p in &PLATFORMS {
        for target in std::iter::once(p.target).chain(p.aliases.iter().copied()) {
            // Every locale on the platform's own target, en-US on its aliases.
            let locales = if target == p.target {
                locales_for(p)
            } else {
                vec!["en-US"]
            };
            for locale in locales {
                let url = format!(
                    "{balrog}/update/6/Firefox/{}/{build_id}/{target}/{locale}/{channel}/Windows_NT%2010.0.0.0/ISET:SSE4_2,MEM:16384/default/default/update.xml",
                    app_version(version),
                );
                let full = target == p.target && walk.contains(&locale);
                jobs.push(async move {
                    let xml = http.get(&url).send().await.expect("query").text().await.expect("body");
                    let update = xml
                        .find("<update ")
                        .unwrap_or_else(|| panic!("no update for {url}: {xml}"));
                    assert_eq!(
                        attr(&xml, update, "appVersion").as_deref(),
                        Some(app_version(latest).as_str()),
                        "{url}"
                    );
                    let mut patches = BTreeMap::new();
                    let mut at = 0;
                    while let Some(i) = xml[at..].find("<patch ") {
                        let start = at + i;
                        let kind = attr(&xml, start, "type").expect("type");
                        patches.insert(
                            kind,
                            (
                                attr(&xml, start, "URL").expect("URL"),
                                attr(&xml, start, "hashValue").expect("hash"),
                                attr(&xml, start, "size").expect("size"),
                            ),
                        );
                        at = start + 1;
                    }
                    assert!(patches.contains_key("complete"), "{url}: {xml}");
                    assert!(patches.contains_key("partial"), "no partial from {url}: {xml}");
                    (full, patches)
                });
            }
        }
    }
    use futures::StreamExt;
    let results: Vec<_> = futures::stream::iter(jobs).buffer_unordered(24).collect().await;
    let n = results.len();
    for (full, patches) in results {
        for (url, hash, size) in patches.values() {
            assert!(expected_hashes.contains(hash), "hash {hash} is not in the snapshot");
            if !full {
                continue;
            }
            // Balrog → bouncer (302) → S3.
            let r = http.get(url).send().await.expect("bouncer");
            assert_eq!(r.status().as_u16(), 302, "{url}");
            let target = r.headers()["location"].to_str().expect("location").to_string();
            let bytes = http
                .get(&target)
                .send()
                .await
                .expect("s3")
                .bytes()
                .await
                .expect("bytes");
            assert_eq!(bytes.len().to_string(), *size, "{target}");
            assert_eq!(&stagelib::seed::snapshot::sha512_hex(&bytes), hash, "{target}");
        }
    }
    n
}

fn redirect_less() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seeded_stack_answers_every_previous_version_and_reseeding_changes_nothing() {
    let snap = default_snapshot();
    let s = stack("seed-updates").await;
    let alice = ns("alice");
    let t = Instant::now();
    let first = seed_stack(&snap, None, &s.endpoints, &alice).await.expect("seed");
    eprintln!("first seeding: {:.2}s ({first:?})", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let again = seed_stack(&snap, None, &s.endpoints, &alice).await.expect("seed again");
    eprintln!("second seeding: {:.2}s", t.elapsed().as_secs_f64());
    for svc in &again.services {
        let changed = match svc.service {
            ServiceKind::Balrog => {
                svc.result["imported"]["releases"].as_i64().unwrap_or(-1)
                    + svc.result["imported"]["rules"].as_i64().unwrap_or(-1)
            }
            _ => svc.result["changed"].as_i64().unwrap_or(-1),
        };
        assert_eq!(
            changed, 0,
            "re-seeding {} changed something: {}",
            svc.service, svc.result
        );
    }
    assert_eq!(
        first.rule_id_offset, 0,
        "the first namespace keeps production's rule IDs"
    );

    let http = redirect_less();
    let balrog = s.endpoints.services[&ServiceKind::Balrog].url.clone();
    let hashes: BTreeSet<String> = snap.s3.objects.iter().map(|o| o.sha512.clone()).collect();
    let mut queries = 0;
    let mut versions = 0;
    for f in &FAMILIES {
        let latest = f.versions[f.versions.len() - 1];
        for v in &f.versions[..f.versions.len() - 1] {
            let build_id = stagelib::seed::mar::build_id(f.dir, v);
            let channel = alice.apply(NameKind::Channel, f.channel);
            queries += check_updates(
                &http,
                &balrog,
                &channel,
                v,
                latest,
                &build_id,
                &hashes,
                &["en-US", "de"],
            )
            .await;
            versions += 1;
        }
        // The canonical channel belongs to nobody here: no update is offered.
        let url = format!(
            "{balrog}/update/6/Firefox/{}/{}/Linux_x86_64-gcc3/en-US/{}/Linux/ISET:SSE4_2/default/default/update.xml",
            app_version(f.versions[0]),
            stagelib::seed::mar::build_id(f.dir, f.versions[0]),
            f.channel
        );
        let xml = http.get(&url).send().await.expect("q").text().await.expect("t");
        assert!(!xml.contains("<update "), "{url} answered {xml}");
    }
    eprintln!("{versions} previous versions, {queries} update queries answered with complete + partial");
    assert_eq!(versions, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pull_seed_pull_round_trip_is_identical() {
    let snap = default_snapshot();
    // "Production": a stand-in whose URLs are production's own.
    let prod = stack("seed-prod").await;
    let origins = StackUrls {
        archive: snap.meta.origins.archive.clone(),
        download: snap.meta.origins.download.clone(),
    };
    seed_stack_with_urls(&snap, None, &prod.endpoints, &Namespacer::canonical(), &origins)
        .await
        .expect("seed prod");
    let ep = |s: &Stack, k: ServiceKind| s.endpoints.services[&k].clone();
    let opts = |s: &Stack| PullOptions {
        name: "pulled".into(),
        balrog: Source {
            url: ep(s, ServiceKind::Balrog).url,
            credentials: Some(ep(s, ServiceKind::Balrog).credentials),
        },
        bouncer: Some(Source {
            url: ep(s, ServiceKind::Bouncer).url,
            credentials: Some(ep(s, ServiceKind::Bouncer).credentials),
        }),
        shipit: Some(Source {
            url: ep(s, ServiceKind::Shipit).url,
            credentials: None,
        }),
        s3: Some((
            Source {
                url: ep(s, ServiceKind::S3).url,
                credentials: Some(ep(s, ServiceKind::S3).credentials),
            },
            RELEASES_BUCKET.to_string(),
        )),
        ..Default::default()
    };
    let pulled = pull::pull(&opts(&prod)).await.expect("pull");
    assert_eq!(
        body(&pulled),
        body(&snap),
        "pulling a seeded instance gives the snapshot back"
    );
    // Seed the pulled snapshot into a fresh stack (URLs now point at it), take it back.
    let stage = stack("seed-stage").await;
    seed_stack(&pulled, None, &stage.endpoints, &Namespacer::canonical())
        .await
        .expect("seed stage");
    let (taken, stored) = pull::take("taken", "test", &stage.endpoints, &Namespacer::canonical())
        .await
        .expect("take");
    assert!(stored.is_empty());
    assert_eq!(body(&taken), body(&pulled), "pull → seed → pull is the identity");
    // And pulling production again changes nothing.
    assert_eq!(body(&pull::pull(&opts(&prod)).await.expect("pull")), body(&pulled));

    // Filters: only the beta channel, its release and 2 older ones.
    let mut filtered = opts(&prod);
    filtered.channels = vec!["beta".into()];
    filtered.last = Some(3);
    let beta = pull::pull(&filtered).await.expect("filtered pull");
    let names: Vec<&str> = beta.balrog.releases.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Firefox-158.0b2-build1",
            "Firefox-158.0b3-build1",
            "Firefox-158.0b4-build1"
        ]
    );
    assert!(beta
        .balrog
        .rules
        .iter()
        .all(|r| r.channel.as_deref().is_some_and(|c| c.starts_with("beta"))));
    assert_eq!(beta.balrog.rules.len(), 3);
    assert!(beta
        .bouncer
        .products
        .iter()
        .all(|p| p.name.starts_with("Firefox-158.0b")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_namespaces_on_one_stack_each_see_the_original() {
    let snap = default_snapshot();
    let shared = stack("seed-shared").await;
    let (alice, bob) = (ns("alice"), ns("bob"));
    let (a, b) = tokio::join!(
        seed_stack(&snap, None, &shared.endpoints, &alice),
        seed_stack(&snap, None, &shared.endpoints, &bob)
    );
    let (a, b) = (a.expect("alice"), b.expect("bob"));
    let mut offsets = [a.rule_id_offset, b.rule_id_offset];
    offsets.sort();
    assert_eq!(offsets, [0, 100_000]);
    for who in [&alice, &bob] {
        let (view, _) = pull::take("view", "test", &shared.endpoints, who).await.expect("take");
        assert_eq!(
            body(&view),
            body(&snap),
            "{:?}'s view differs from the snapshot",
            who.namespace()
        );
    }
    // Nothing was written under canonical names: a canonical view is empty.
    let (all, _) = pull::take("all", "test", &shared.endpoints, &Namespacer::canonical())
        .await
        .expect("take all");
    let canonical = Namespacer::new(Namespace::parse("zed").expect("ns"));
    assert_eq!(all.balrog.releases.len(), 2 * snap.balrog.releases.len());
    assert!(all.balrog.rules.iter().all(|r| r
        .channel
        .as_deref()
        .is_some_and(|c| c.starts_with("alice-") || c.starts_with("bob-"))));
    assert!(all
        .s3
        .objects
        .iter()
        .all(|o| o.key.contains("/alice-releases/") || o.key.contains("/bob-releases/")));
    let (zed, _) = pull::take("zed", "test", &shared.endpoints, &canonical)
        .await
        .expect("take zed");
    assert!(zed.balrog.releases.is_empty() && zed.s3.objects.is_empty() && zed.bouncer.products.is_empty());
}

#[test]
fn committed_default_snapshot_is_what_the_generator_writes() {
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seed-data/default");
    let snap = default_snapshot();
    assert_eq!(Snapshot::read(&committed).expect("read committed"), snap);
    let tmp = tempfile::tempdir().expect("tmp");
    snap.write(
        tmp.path(),
        stagelib::seed::snapshot::WriteOptions { gzip: true },
        &Default::default(),
    )
    .expect("write");
    for f in [
        "snapshot.json",
        "balrog.json.gz",
        "bouncer.json.gz",
        "s3.json.gz",
        "shipit.json.gz",
    ] {
        let a = std::fs::read(committed.join(f)).expect("committed file");
        let b = std::fs::read(tmp.path().join(f)).expect("written file");
        assert!(
            a == b,
            "{f} differs from the generator's output: run `stagelib snapshot generate`"
        );
    }
    let size = Snapshot::size_on_disk(&committed);
    assert!(
        size < 5_000_000,
        "the default snapshot is {size} bytes, over the 5 MB budget"
    );
}

mod support;

/// Through the manager: a lease asking for a snapshot is `ready` only once its
/// stack is seeded under its namespace; an unknown snapshot is refused up front;
/// a snapshot that cannot be applied fails the lease with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn manager_declares_ready_only_after_seeding() {
    use stagelib::lease::{Actor, LeaseState, Policy};
    use stagelib::manager::{LeaseService, Manager, ManagerKey, ManagerParts, ReserveRequest, SystemClock};
    use stagelib::seed::{LibrarySeeder, SnapshotLibrary};

    let db = support::sqlite_db().await;
    let dir = tempfile::tempdir().expect("tmp");
    let backend = std::sync::Arc::new(ProcessBackend::new(
        dir.path().join("process"),
        PathBuf::from(env!("CARGO_BIN_EXE_stagelib")),
    ));
    let manager = Manager::new(ManagerParts {
        store: db.store.clone(),
        backend,
        clock: std::sync::Arc::new(SystemClock),
        policy: Policy::default(),
        key: ManagerKey::from_bytes(b"seed-test".to_vec()),
        background: false,
    });
    let snapshots = dir.path().join("snapshots");
    manager.seed_with(std::sync::Arc::new(LibrarySeeder::new(SnapshotLibrary::new(vec![
        snapshots.clone(),
    ]))));
    let alice = Actor::admin("alice");
    let req = |seed: &str| ReserveRequest {
        seed: Some(seed.into()),
        ..Default::default()
    };

    let err = manager
        .reserve(&alice, req("nope"))
        .await
        .expect_err("unknown snapshot");
    assert!(
        err.to_string().contains("seed") && err.to_string().contains("nope"),
        "{err}"
    );

    let lease = manager.reserve(&alice, req("default")).await.expect("reserve");
    assert_eq!(lease.state, LeaseState::Ready, "{:?}", lease.failure_reason);
    let balrog = &lease.endpoints.as_ref().expect("endpoints").services[&ServiceKind::Balrog];
    let rule: Value = reqwest::get(format!("{}/api/v1/rules/alice-firefox-beta", balrog.url))
        .await
        .expect("rule")
        .json()
        .await
        .expect("json");
    assert_eq!(rule["mapping"], "Firefox-158.0b4-build1-alice");
    assert_eq!(rule["rule_id"], 32, "production's rule ID is kept");

    // A snapshot whose rule maps a release it does not have.
    let mut broken = default_snapshot();
    broken.meta.name = "broken".into();
    broken.balrog.rules[0].mapping = Some("Firefox-1.0-build1".into());
    std::fs::create_dir_all(snapshots.join("broken")).expect("dir");
    std::fs::write(
        snapshots.join("broken/snapshot.json"),
        serde_json::to_vec(&broken.meta).expect("meta"),
    )
    .expect("meta");
    std::fs::write(
        snapshots.join("broken/balrog.json"),
        serde_json::to_vec(&broken.balrog).expect("balrog"),
    )
    .expect("balrog");
    let failed = manager.reserve(&alice, req("broken")).await.expect("reserve broken");
    assert_eq!(failed.state, LeaseState::Failed);
    let reason = failed.failure_reason.unwrap_or_default();
    assert!(
        reason.contains("seeding") && reason.contains("Firefox-1.0-build1"),
        "{reason}"
    );

    let released = manager.release(&alice, lease.id).await.expect("release");
    assert_eq!(released.state, LeaseState::Released);
}
