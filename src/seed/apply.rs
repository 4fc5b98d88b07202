//! Seeding: write a snapshot onto a stack's services for one namespace.
//!
//! The snapshot is mapped once by [`rewrite::to_stack`] (names namespaced, URLs
//! pointed at the stack), checked by [`rewrite::check_owned`] so nothing outside
//! the namespace is ever sent, then each service gets one import request, all at
//! once. Every import replaces objects of the same key and skips identical ones,
//! so seeding twice leaves the stack as it was; Balrog keeps rule IDs (offset
//! for a second namespace on a shared stack).
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};

use super::namespace::Namespacer;
use super::rewrite::{self, RuleIds, StackUrls};
use super::snapshot::Snapshot;
use super::SeedError;
use crate::clients::http::{self, RetryPolicy};
use crate::stack::{Endpoint, ServiceKind, StackEndpoints, RELEASES_BUCKET};

/// What seeding did, per service.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeedReport {
    pub snapshot: String,
    pub namespace: Option<String>,
    pub rule_id_offset: i64,
    pub seconds: f64,
    pub services: Vec<ServiceReport>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceReport {
    pub service: ServiceKind,
    pub seconds: f64,
    /// The service's own answer (counts of what changed).
    pub result: Value,
}

/// Where a stack serves the snapshot's origins.
pub fn stack_urls(endpoints: &StackEndpoints) -> Result<StackUrls, SeedError> {
    let s3 = need(endpoints, ServiceKind::S3)?;
    let bouncer = need(endpoints, ServiceKind::Bouncer)?;
    Ok(StackUrls {
        archive: format!("{}/{RELEASES_BUCKET}", s3.url.trim_end_matches('/')),
        download: bouncer.url.trim_end_matches('/').to_string(),
    })
}

fn need(endpoints: &StackEndpoints, kind: ServiceKind) -> Result<&Endpoint, SeedError> {
    endpoints.services.get(&kind).ok_or_else(|| {
        SeedError::Invalid(format!(
            "the stack has no {kind} service; seeding needs balrog, bouncer and s3"
        ))
    })
}

async fn call(service: &'static str, req: impl Fn() -> reqwest::RequestBuilder) -> Result<Value, SeedError> {
    let retry = RetryPolicy::default();
    retry
        .run(|| async { http::json::<Value>(service, http::send(service, req()).await?).await })
        .await
        .map_err(|e| SeedError::service(service, e))
}

/// The rule-ID offset of `ns` on the stack's Balrog (allocated on first use).
pub async fn rule_ids(balrog: &Endpoint, ns: &Namespacer) -> Result<RuleIds, SeedError> {
    let Some(name) = ns.namespace() else {
        return Ok(RuleIds::default());
    };
    let client = http::http_client();
    let url = format!(
        "{}/__stagelib__/namespaces/{}",
        balrog.url.trim_end_matches('/'),
        name.as_str()
    );
    let v = call("balrog", || client.post(&url).bearer_auth(&balrog.credentials.secret)).await?;
    let offset = v
        .get("rule_id_offset")
        .and_then(Value::as_i64)
        .ok_or_else(|| SeedError::service("balrog", "namespace claim answered without rule_id_offset"))?;
    Ok(RuleIds { offset })
}

/// Seed `snap` (read from `dir`, for stored S3 objects) onto the stack at
/// `endpoints` for namespace `ns`.
pub async fn seed_stack(
    snap: &Snapshot,
    dir: Option<&Path>,
    endpoints: &StackEndpoints,
    ns: &Namespacer,
) -> Result<SeedReport, SeedError> {
    let urls = stack_urls(endpoints)?;
    seed_stack_with_urls(snap, dir, endpoints, ns, &urls).await
}

/// [`seed_stack`] with the URLs the data should point at given explicitly
/// (the snapshot's own origins make an instance that looks like production).
pub async fn seed_stack_with_urls(
    snap: &Snapshot,
    dir: Option<&Path>,
    endpoints: &StackEndpoints,
    ns: &Namespacer,
    urls: &StackUrls,
) -> Result<SeedReport, SeedError> {
    let started = Instant::now();
    snap.validate()?;
    let balrog = need(endpoints, ServiceKind::Balrog)?;
    let ids = rule_ids(balrog, ns).await?;
    let view = rewrite::to_stack(snap, ns, urls, ids);
    if ns.namespace().is_some() {
        rewrite::check_owned(&view, ns)?;
    }
    let client = http::http_client();
    let bouncer = need(endpoints, ServiceKind::Bouncer)?;
    let s3 = need(endpoints, ServiceKind::S3)?;
    let balrog_body = json!({
        "releases": view.balrog.releases, "rules": view.balrog.rules,
        "required_signoffs": view.balrog.required_signoffs, "emergency_shutoffs": view.balrog.emergency_shutoffs,
        "pins": view.balrog.pins, "permissions": view.balrog.permissions, "roles": view.balrog.roles,
    })
    .to_string();
    let balrog_url = format!("{}/__stagelib__/import", balrog.url.trim_end_matches('/'));
    let bouncer_body = serde_json::to_string(&view.bouncer).map_err(|e| SeedError::Invalid(e.to_string()))?;
    let bouncer_url = format!("{}/__stagelib__/import", bouncer.url.trim_end_matches('/'));
    let generated: Vec<_> = view.s3.objects.iter().filter(|o| !o.stored).cloned().collect();
    let s3_body = json!({"objects": generated}).to_string();
    let s3_url = format!("{}/__stagelib__/import/{RELEASES_BUCKET}", s3.url.trim_end_matches('/'));
    let stored: Vec<_> = view.s3.objects.iter().filter(|o| o.stored).cloned().collect();
    let shipit = endpoints
        .services
        .get(&ServiceKind::Shipit)
        .filter(|_| !view.shipit.releases.is_empty());
    let shipit_body = serde_json::to_string(&view.shipit).map_err(|e| SeedError::Invalid(e.to_string()))?;

    let report = |service: ServiceKind, t: Instant, result: Value| ServiceReport {
        service,
        seconds: t.elapsed().as_secs_f64(),
        result,
    };
    let balrog_job = async {
        let t = Instant::now();
        let v = call("balrog", || {
            client
                .post(&balrog_url)
                .bearer_auth(&balrog.credentials.secret)
                .header("Content-Type", "application/json")
                .body(balrog_body.clone())
        })
        .await?;
        Ok::<_, SeedError>(report(ServiceKind::Balrog, t, v))
    };
    let bouncer_job = async {
        let t = Instant::now();
        let v = call("bouncer", || {
            client
                .post(&bouncer_url)
                .basic_auth(&bouncer.credentials.username, Some(&bouncer.credentials.secret))
                .header("Content-Type", "application/json")
                .body(bouncer_body.clone())
        })
        .await?;
        Ok::<_, SeedError>(report(ServiceKind::Bouncer, t, v))
    };
    let s3_job = async {
        let t = Instant::now();
        let mut v = call("s3", || {
            client
                .post(&s3_url)
                .bearer_auth(&s3.credentials.secret)
                .header("Content-Type", "application/json")
                .body(s3_body.clone())
        })
        .await?;
        if !stored.is_empty() {
            let dir =
                dir.ok_or_else(|| SeedError::Invalid("stored S3 objects need the snapshot's directory".into()))?;
            v["stored"] = json!(upload_stored(s3, dir, snap, &stored).await?);
        }
        Ok::<_, SeedError>(report(ServiceKind::S3, t, v))
    };
    let shipit_job = async {
        let Some(shipit) = shipit else {
            return Ok::<_, SeedError>(None);
        };
        let t = Instant::now();
        let v = call("shipit", || {
            shipit_request(&client, shipit, "/__stagelib__/import", &shipit_body)
        })
        .await?;
        Ok(Some(report(ServiceKind::Shipit, t, v)))
    };

    let (b, bo, s, sh) = tokio::join!(balrog_job, bouncer_job, s3_job, shipit_job);
    let mut services = vec![b?, bo?, s?];
    services.extend(sh?);
    Ok(SeedReport {
        snapshot: snap.meta.name.clone(),
        namespace: ns.namespace().map(|n| n.as_str().to_string()),
        rule_id_offset: ids.offset,
        seconds: started.elapsed().as_secs_f64(),
        services,
    })
}

/// A Hawk-signed JSON POST to Ship-it.
pub fn shipit_request(client: &reqwest::Client, shipit: &Endpoint, path: &str, body: &str) -> reqwest::RequestBuilder {
    shipit_signed(client, shipit, reqwest::Method::POST, path, body)
}

/// A Hawk-signed JSON request to Ship-it.
pub fn shipit_signed(
    client: &reqwest::Client,
    shipit: &Endpoint,
    method: reqwest::Method,
    path: &str,
    body: &str,
) -> reqwest::RequestBuilder {
    let base = shipit.url.trim_end_matches('/');
    let u = url::Url::parse(base).ok();
    let host = u
        .as_ref()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let port = u.as_ref().and_then(|u| u.port_or_known_default()).unwrap_or(80);
    let r = crate::services::shipit::hawk::Request {
        method: method.as_str(),
        resource: path,
        host: &host,
        port,
    };
    let auth = crate::services::shipit::hawk::sign(
        &shipit.credentials.username,
        &shipit.credentials.secret,
        &r,
        "application/json",
        body.as_bytes(),
        chrono::Utc::now().timestamp(),
    );
    client
        .request(method, format!("{base}{path}"))
        .header("Authorization", auth)
        .header("Content-Type", "application/json")
        .body(body.to_string())
}

/// Upload objects whose bytes are stored in the snapshot, with the minio client.
async fn upload_stored(
    s3: &Endpoint,
    dir: &Path,
    snap: &Snapshot,
    stored: &[super::snapshot::S3Object],
) -> Result<usize, SeedError> {
    let base: minio::s3::http::BaseUrl = s3.url.parse().map_err(|e| SeedError::service("s3", e))?;
    let client = minio::s3::MinioClientBuilder::new(base)
        .provider(Some(minio::s3::creds::StaticProvider::new(
            &s3.credentials.username,
            &s3.credentials.secret,
            None,
        )))
        .build()
        .map_err(|e| SeedError::service("s3", e))?;
    // Stored bytes are named by SHA-512, which namespacing does not change.
    let canonical: std::collections::BTreeMap<&str, &super::snapshot::S3Object> =
        snap.s3.objects.iter().map(|o| (o.sha512.as_str(), o)).collect();
    for o in stored {
        let original = canonical.get(o.sha512.as_str()).copied().unwrap_or(o);
        let bytes = Snapshot::stored_object(dir, original)?;
        client
            .put_object_content(
                RELEASES_BUCKET,
                o.key.as_str(),
                minio::s3::builders::ObjectContent::from(bytes),
            )
            .map_err(|e| SeedError::service("s3", e))?
            .build()
            .send()
            .await
            .map_err(|e| SeedError::service("s3", e))?;
    }
    Ok(stored.len())
}
