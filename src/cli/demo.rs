//! `stagelib demo`: the README's main job. Reserves a fresh stack, plays a small
//! staging release through every service with the clients release automation
//! uses (beetmover's upload to S3, bouncer submission, Balrog submission and
//! test-channel rule, Ship-it), then acts as the Firefox updater (Balrog → Bouncer
//! → S3, size and SHA-512 checked) from the newest beta of the seeded snapshot,
//! prints a report and releases the lease. Every name it writes goes through the
//! lease's namespace. The full promotion engine (promote/push/ship graphs) is not
//! part of it yet.
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;
use sha2::{Digest, Sha512};

use super::context::Context;
use crate::clients::balrog::BalrogClient;
use crate::clients::bouncer::BouncerClient;
use crate::lease::LeaseState;
use crate::manager::ReserveRequest;
use crate::seed::namespace::{NameKind, Namespacer};
use crate::stack::{ServiceKind, RELEASES_BUCKET};

/// The next beta after the default snapshot's newest (158.0b4).
const VERSION: &str = "158.0b5";
const FROM: &str = "158.0b4";
const LOCALES: [&str; 3] = ["en-US", "de", "ja"];

struct Step {
    name: String,
    ok: bool,
    secs: f64,
    detail: String,
}

async fn step<T, F: std::future::Future<Output = anyhow::Result<T>>>(
    report: &mut Vec<Step>,
    name: &str,
    f: F,
) -> Option<T> {
    eprintln!("  … {name}");
    let t = Instant::now();
    let r = f.await;
    let (ok, detail, value) = match r {
        Ok(v) => (true, String::new(), Some(v)),
        Err(e) => (false, format!("{e:#}"), None),
    };
    report.push(Step {
        name: name.to_string(),
        ok,
        secs: t.elapsed().as_secs_f64(),
        detail,
    });
    value
}

fn mar_bytes(locale: &str) -> Vec<u8> {
    // A MAR header ("MAR1", index offset) followed by deterministic content.
    let mut v = b"MAR1".to_vec();
    v.extend_from_slice(&(8u32 + 4096).to_be_bytes());
    v.extend((0..4096u32).map(|i| (i as u8) ^ locale.len() as u8));
    v
}

pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut report = Vec::new();
    eprintln!("stagelib demo: reserving a fresh stack");
    let lease = ctx
        .service
        .reserve(
            &ctx.actor,
            ReserveRequest {
                template: Some("full".into()),
                ttl: Some("1h".into()),
                seed: Some("default".into()),
                labels: [("purpose".to_string(), "demo".to_string())].into(),
                ..Default::default()
            },
        )
        .await?;
    if lease.state != LeaseState::Ready {
        anyhow::bail!(
            "the stack did not come up: {}",
            lease.failure_reason.unwrap_or_default()
        );
    }
    let ns = Namespacer::new(lease.namespace.clone());
    report.push(Step {
        name: format!(
            "reserve lease {} ({} backend), seeded with snapshot `default` for namespace `{}`",
            lease.id,
            lease.backend,
            lease.namespace.as_str()
        ),
        ok: true,
        secs: started.elapsed().as_secs_f64(),
        detail: String::new(),
    });
    let eps = lease.endpoints.clone().context("a ready lease has endpoints")?;
    let ep = |k: ServiceKind| eps.services.get(&k).cloned().context("service missing from the stack");
    let (s3, bouncer, balrog, shipit) = (
        ep(ServiceKind::S3)?,
        ep(ServiceKind::Bouncer)?,
        ep(ServiceKind::Balrog)?,
        ep(ServiceKind::Shipit)?,
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    let keys: Vec<(String, String)> = LOCALES
        .iter()
        .map(|l| {
            (
                l.to_string(),
                ns.apply(
                    NameKind::S3Key,
                    &format!("pub/firefox/releases/{VERSION}/update/linux-x86_64/{l}/firefox-{VERSION}.complete.mar"),
                ),
            )
        })
        .collect();
    step(
        &mut report,
        "beetmover: upload complete MARs to S3 (minio client)",
        async {
            let base: minio::s3::http::BaseUrl = s3.url.parse()?;
            let client = minio::s3::MinioClientBuilder::new(base)
                .provider(Some(minio::s3::creds::StaticProvider::new(
                    &s3.credentials.username,
                    &s3.credentials.secret,
                    None,
                )))
                .build()?;
            for (locale, key) in &keys {
                client
                    .put_object_content(
                        RELEASES_BUCKET,
                        key.as_str(),
                        minio::s3::builders::ObjectContent::from(mar_bytes(locale)),
                    )?
                    .build()
                    .send()
                    .await?;
            }
            Ok(())
        },
    )
    .await;

    let product = ns.apply(NameKind::BouncerProduct, &format!("Firefox-{VERSION}-Complete"));
    let location = format!(
        "/{}",
        ns.apply(
            NameKind::S3Key,
            &format!("firefox/releases/{VERSION}/update/linux-x86_64/:lang/firefox-{VERSION}.complete.mar")
        )
    );
    step(&mut report, "bouncer: submit product and location", async {
        let b = BouncerClient::new(&bouncer.url, &bouncer.credentials.username, &bouncer.credentials.secret);
        if !b.product_exists(&product).await? {
            b.product_add(&product, &[], false).await?;
        }
        b.location_add(&product, "linux64", &location).await?;
        Ok(())
    })
    .await;

    let shipit_release = format!("Firefox-{VERSION}-build1");
    let release = ns.apply(NameKind::Release, &shipit_release);
    let channel = ns.apply(NameKind::Channel, "beta-localtest");
    let rule_alias = ns.apply(NameKind::RuleAlias, "firefox-beta-localtest");
    let bouncer_product = ns.apply(NameKind::BouncerProduct, &format!("firefox-{VERSION}-complete"));
    let build_id = crate::seed::mar::build_id("firefox", VERSION);
    step(&mut report, &format!("balrog: toplevel + per-locale submission, point rule {rule_alias} at it"), async {
        let b = BalrogClient::new(&balrog.url, &balrog.credentials.secret);
        let top = json!({"appVersion": "158.0", "displayVersion": "158.0 Beta 5", "schema_version": 9, "hashFunction": "sha512",
            "updateLine": [{"for": {}, "fields": {"detailsURL": "https://www.mozilla.org/%LOCALE%/firefox/158.0beta/releasenotes/", "type": "minor"}}],
            "fileUrls": {"*": {"completes": {"*": format!("{}/?product={bouncer_product}&os=%OS_BOUNCER%&lang=%LOCALE%", bouncer.url)}}},
            "platforms": {"Linux_x86_64-gcc3": {"OS_BOUNCER": "linux64", "OS_FTP": "linux-x86_64"}}});
        b.submit_release(&release, "Firefox", &top).await?;
        for (locale, _) in &keys {
            let bytes = mar_bytes(locale);
            let data = json!({"buildID": build_id, "appVersion": "158.0", "displayVersion": "158.0 Beta 5",
                "completes": [{"from": "*", "filesize": bytes.len(), "hashValue": hex::encode(Sha512::digest(&bytes))}]});
            b.put_build(&release, "Firefox", "Linux_x86_64-gcc3", locale, &data, 9).await?;
        }
        // The seeded rule for the namespace's beta-localtest channel now maps the new release.
        b.update_rule(&rule_alias, &json!({"mapping": release})).await?;
        Ok(())
    })
    .await;

    step(&mut report, "ship-it: create the release, schedule its phases", async {
        let post = |method: reqwest::Method, path: String, body: String| {
            let u = url::Url::parse(&shipit.url).ok();
            let host = u.as_ref().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
            let port = u.as_ref().and_then(|u| u.port()).unwrap_or(80);
            let r = crate::services::shipit::hawk::Request { method: method.as_str(), resource: &path, host: &host, port };
            let auth = crate::services::shipit::hawk::sign(&shipit.credentials.username, &shipit.credentials.secret, &r,
                "application/json", body.as_bytes(), chrono::Utc::now().timestamp());
            http.request(method, format!("{}{path}", shipit.url)).header("Authorization", auth)
                .header("Content-Type", "application/json").body(body)
        };
        let body = json!({"product": "firefox", "version": VERSION, "branch": "releases/mozilla-beta", "revision": "0".repeat(40), "build_number": 1}).to_string();
        let r = post(reqwest::Method::POST, "/releases".into(), body).send().await?;
        anyhow::ensure!(r.status().as_u16() == 201, "create: {} {}", r.status(), r.text().await.unwrap_or_default());
        for phase in ["promote_firefox", "push_firefox", "ship_firefox"] {
            let r = post(reqwest::Method::PUT, format!("/releases/{shipit_release}/{phase}"), String::new()).send().await?;
            anyhow::ensure!(r.status().is_success(), "{phase}: {}", r.status());
        }
        let r = post(reqwest::Method::PATCH, format!("/releases/{shipit_release}"), json!({"status": "shipped"}).to_string()).send().await?;
        anyhow::ensure!(r.status().is_success(), "mark shipped: {}", r.status());
        Ok(())
    })
    .await;

    for (locale, _) in &keys {
        step(&mut report, &format!("update verify {FROM} → {VERSION} ({locale}): balrog → bouncer → s3"), async {
            let from_build = crate::seed::mar::build_id("firefox", FROM);
            let q = format!("{}/update/6/Firefox/158.0/{from_build}/Linux_x86_64-gcc3/{locale}/{channel}/Linux%206.1/ISET:SSE3,MEM:8192,JAWS:0/default/default/update.xml", balrog.url);
            let xml = http.get(&q).send().await?.text().await?;
            let attr = |tag: &str, a: &str| -> Option<String> {
                let line = xml.lines().find(|l| l.contains(tag))?;
                let start = line.find(&format!("{a}=\""))? + a.len() + 2;
                Some(line[start..start + line[start..].find('"')?].replace("&amp;", "&"))
            };
            let url = attr("<patch", "URL").context(format!("no update offered:\n{xml}"))?;
            let size: usize = attr("<patch", "size").context("no size")?.parse()?;
            let hash = attr("<patch", "hashValue").context("no hash")?;
            let r = http.get(&url).send().await?;
            anyhow::ensure!(r.status().as_u16() == 302, "bouncer answered {} for {url}", r.status());
            let target = r.headers().get("location").and_then(|v| v.to_str().ok()).context("no redirect target")?.to_string();
            let bytes = http.get(&target).send().await?.bytes().await?;
            anyhow::ensure!(bytes.len() == size, "size {} != {size} ({target})", bytes.len());
            anyhow::ensure!(hex::encode(Sha512::digest(&bytes)) == hash, "SHA-512 mismatch for {target}");
            Ok(())
        })
        .await;
    }

    step(&mut report, "release the lease (stack retired)", async {
        ctx.service.release(&ctx.actor, lease.id).await?;
        Ok(())
    })
    .await;

    let failed = report.iter().filter(|s| !s.ok).count();
    if ctx.json {
        let steps: Vec<_> = report
            .iter()
            .map(|s| json!({"step": s.name, "ok": s.ok, "seconds": s.secs, "detail": s.detail}))
            .collect();
        super::output::json(&json!({"lease": lease.id, "steps": steps, "failed": failed}))?;
    } else {
        println!(
            "\nstagelib demo report — lease {} on the {} backend\n",
            lease.id, lease.backend
        );
        let rows: Vec<Vec<String>> = report
            .iter()
            .map(|s| {
                vec![
                    if s.ok { "ok".into() } else { "FAILED".into() },
                    format!("{:.2}s", s.secs),
                    s.name.clone(),
                    s.detail.clone(),
                ]
            })
            .collect();
        super::output::table(&["status", "time", "step", "detail"], &rows);
        println!(
            "\n{} steps, {failed} failed, {:.1}s in all",
            report.len(),
            started.elapsed().as_secs_f64()
        );
    }
    anyhow::ensure!(failed == 0, "{failed} demo step(s) failed");
    Ok(())
}
