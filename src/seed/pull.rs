//! `stagelib snapshot pull` and `snapshot take`: read a running instance into a
//! snapshot.
//!
//! Balrog through its public read API (`/api/v1/rules`, `/api/v1/releases…`,
//! `/api/v1/emergency_shutoff`) plus the admin reads that need no write access
//! (`/required_signoffs/product`; `/users…` with a token); Bouncer through
//! `product_show` / `location_show` with `fuzzy` for the pulled releases'
//! versions (plus stagelib's `/__stagelib__/export` for `ssl_only` and aliases,
//! which upstream cannot list); Ship-it through `GET /releases`; S3 only from a
//! stagelib stand-in (`/__stagelib__/export/{bucket}`). Production has no pin
//! listing, so pins are not pulled.
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use reqwest::Method;
use serde_json::Value;

use super::namespace::Namespacer;
use super::rewrite::{self, RuleIds};
use super::snapshot::{BouncerProduct, Origins, Permission, S3Object, Snapshot, UserRole};
use super::SeedError;
use crate::clients::bouncer::BouncerClient;
use crate::clients::http::{self, RetryPolicy};
use crate::services::balrog::db::{ReleaseRow, RequiredSignoff, Shutoff};
use crate::services::balrog::rule::Rule;
use crate::stack::{Credentials, ServiceKind, StackEndpoints, RELEASES_BUCKET};

/// A service to read from.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub url: String,
    /// Balrog: bearer token (for `/users`); Bouncer: basic auth; S3: bearer.
    pub credentials: Option<Credentials>,
}

/// What to pull and how much of it.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub name: String,
    pub balrog: Source,
    pub bouncer: Option<Source>,
    pub shipit: Option<Source>,
    /// A stagelib S3 stand-in and bucket.
    pub s3: Option<(Source, String)>,
    /// Balrog products of the rules to keep (empty: all).
    pub products: Vec<String>,
    /// Channels of the rules to keep, with their `-cdntest`/`-localtest`
    /// variants (empty: all).
    pub channels: Vec<String>,
    /// Per rule: its release plus up to N-1 releases its partials come from,
    /// newest first. `None`: every release of the instance.
    pub last: Option<usize>,
}

fn channel_matches(filters: &[String], channel: Option<&str>) -> bool {
    if filters.is_empty() {
        return true;
    }
    let Some(c) = channel else { return false };
    filters
        .iter()
        .any(|f| c == f || c.strip_prefix(f.as_str()).is_some_and(|rest| rest.starts_with('-')))
}

async fn get_json(
    client: &reqwest::Client,
    service: &'static str,
    url: &str,
    token: Option<&str>,
) -> Result<(Value, Option<i64>), SeedError> {
    RetryPolicy::default()
        .run(|| async {
            let mut req = client.request(Method::GET, url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = http::send(service, req).await?;
            let dv = resp
                .headers()
                .get("X-Data-Version")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            Ok((http::json::<Value>(service, resp).await?, dv))
        })
        .await
        .map_err(|e| SeedError::service(service, e))
}

fn decode<T: serde::de::DeserializeOwned>(service: &'static str, what: &str, v: Value) -> Result<T, SeedError> {
    serde_json::from_value(v).map_err(|e| SeedError::service(service, format!("{what}: {e}")))
}

/// Pull a snapshot from running services.
pub async fn pull(opts: &PullOptions) -> Result<Snapshot, SeedError> {
    let client = http::http_client();
    let mut snap = Snapshot::empty(&opts.name, &opts.balrog.url);
    snap.meta.description = format!(
        "Pulled from {} (products: {}; channels: {}; last: {})",
        opts.balrog.url,
        if opts.products.is_empty() {
            "all".into()
        } else {
            opts.products.join(",")
        },
        if opts.channels.is_empty() {
            "all".into()
        } else {
            opts.channels.join(",")
        },
        opts.last.map(|n| n.to_string()).unwrap_or_else(|| "all".into()),
    );
    pull_balrog(&client, opts, &mut snap).await?;
    if let Some(b) = &opts.bouncer {
        pull_bouncer(&client, b, &mut snap).await?;
    }
    if let Some(s) = &opts.shipit {
        pull_shipit(&client, s, &mut snap).await?;
    }
    if let Some((s, bucket)) = &opts.s3 {
        snap.s3.objects = pull_s3(&client, s, bucket).await?;
    }
    snap.normalize();
    Ok(snap)
}

async fn pull_balrog(client: &reqwest::Client, opts: &PullOptions, snap: &mut Snapshot) -> Result<(), SeedError> {
    let base = opts.balrog.url.trim_end_matches('/');
    let token = opts.balrog.credentials.as_ref().map(|c| c.secret.as_str());
    let (rules, _) = get_json(client, "balrog", &format!("{base}/api/v1/rules"), None).await?;
    let rules: Vec<Rule> = decode("balrog", "rules", rules.get("rules").cloned().unwrap_or_default())?;
    let rules: Vec<Rule> = rules
        .into_iter()
        .filter(|r| opts.products.is_empty() || r.product.as_ref().is_some_and(|p| opts.products.contains(p)))
        .filter(|r| channel_matches(&opts.channels, r.channel.as_deref()))
        .collect();
    let (list, _) = get_json(client, "balrog", &format!("{base}/api/v1/releases"), None).await?;
    let listed: BTreeMap<String, (String, i64, bool)> = list
        .get("releases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                r.get("name")?.as_str()?.to_string(),
                (
                    r.get("product")?.as_str()?.to_string(),
                    r.get("data_version").and_then(Value::as_i64).unwrap_or(1),
                    r.get("read_only").and_then(Value::as_bool).unwrap_or(false),
                ),
            ))
        })
        .collect();

    let mut blobs: BTreeMap<String, (Value, i64)> = BTreeMap::new();
    let fetch = |name: String| {
        let url = format!("{base}/api/v1/releases/{}", crate::clients::balrog::enc(&name));
        async move {
            get_json(client, "balrog", &url, None)
                .await
                .map(|(b, dv)| (name, b, dv))
        }
    };
    let mut taken: BTreeSet<String> = BTreeSet::new();
    match opts.last {
        None => {
            let names: Vec<String> = listed.keys().cloned().collect();
            for chunk in names.chunks(8) {
                for r in futures::future::join_all(chunk.iter().cloned().map(fetch)).await {
                    let (name, blob, dv) = r?;
                    blobs.insert(name.clone(), (blob, dv.unwrap_or(1)));
                    taken.insert(name);
                }
            }
        }
        Some(n) => {
            for rule in &rules {
                let mut queue: VecDeque<String> = rule
                    .mapping
                    .iter()
                    .chain(rule.fallback_mapping.iter())
                    .cloned()
                    .collect();
                let mut count = 0;
                let mut seen = BTreeSet::new();
                while let Some(name) = queue.pop_front() {
                    if count >= n.max(1) {
                        break;
                    }
                    if !listed.contains_key(&name) || !seen.insert(name.clone()) {
                        continue;
                    }
                    count += 1;
                    taken.insert(name.clone());
                    // Partials' sources, newest build first.
                    let sources: Vec<String> = partial_sources(&blob_of(&mut blobs, &name, &fetch).await?)
                        .into_iter()
                        .filter(|s| listed.contains_key(s))
                        .collect();
                    let mut keyed = Vec::new();
                    for s in sources {
                        let blob = blob_of(&mut blobs, &s, &fetch).await?;
                        keyed.push((build_id(&blob), s));
                    }
                    keyed.sort_by(|a, b| b.cmp(a));
                    queue.extend(keyed.into_iter().map(|(_, s)| s));
                }
            }
        }
    }
    blobs.retain(|name, _| taken.contains(name));
    for (name, (blob, dv)) in blobs {
        let (product, data_version, read_only) = listed.get(&name).cloned().unwrap_or_default();
        snap.balrog.releases.push(ReleaseRow {
            name,
            product,
            blob: blob.into(),
            data_version: if data_version > 0 { data_version } else { dv },
            read_only,
        });
    }
    let kept: BTreeSet<&str> = snap.balrog.releases.iter().map(|r| r.name.as_str()).collect();
    snap.balrog.rules = rules
        .into_iter()
        .filter(|r| {
            r.mapping
                .iter()
                .chain(r.fallback_mapping.iter())
                .all(|m| kept.contains(m.as_str()))
        })
        .collect();

    let keep_channel = |product: &str, channel: &str| {
        (opts.products.is_empty() || opts.products.iter().any(|p| p == product))
            && channel_matches(&opts.channels, Some(channel))
    };
    let (rs, _) = get_json(client, "balrog", &format!("{base}/required_signoffs/product"), None).await?;
    let rs: Vec<RequiredSignoff> = decode(
        "balrog",
        "required_signoffs",
        rs.get("required_signoffs").cloned().unwrap_or_default(),
    )?;
    snap.balrog.required_signoffs = rs
        .into_iter()
        .filter(|r| keep_channel(&r.product, &r.channel))
        .collect();
    let (so, _) = get_json(client, "balrog", &format!("{base}/api/v1/emergency_shutoff"), None).await?;
    let so: Vec<Shutoff> = decode(
        "balrog",
        "emergency_shutoff",
        so.get("shutoffs").cloned().unwrap_or_default(),
    )?;
    snap.balrog.emergency_shutoffs = so
        .into_iter()
        .filter(|r| keep_channel(&r.product, &r.channel))
        .collect();

    if let Some(token) = token {
        let (users, _) = get_json(client, "balrog", &format!("{base}/users"), Some(token)).await?;
        let users: Vec<String> = decode("balrog", "users", users.get("users").cloned().unwrap_or_default())?;
        for u in users {
            let enc = crate::clients::balrog::enc(&u);
            let (perms, _) = get_json(
                client,
                "balrog",
                &format!("{base}/users/{enc}/permissions"),
                Some(token),
            )
            .await?;
            for (perm, v) in perms.as_object().into_iter().flatten() {
                snap.balrog.permissions.push(Permission {
                    username: u.clone(),
                    permission: perm.clone(),
                    options: decode(
                        "balrog",
                        "permission options",
                        v.get("options").cloned().unwrap_or_default(),
                    )?,
                });
            }
            let (roles, _) = get_json(client, "balrog", &format!("{base}/users/{enc}/roles"), Some(token)).await?;
            for r in roles.get("roles").and_then(Value::as_array).into_iter().flatten() {
                if let Some(role) = r.get("role").and_then(Value::as_str) {
                    snap.balrog.roles.push(UserRole {
                        username: u.clone(),
                        role: role.to_string(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Release names a blob's partials update from.
fn partial_sources(blob: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let platforms = blob.get("platforms").and_then(Value::as_object);
    for p in platforms.into_iter().flat_map(|m| m.values()) {
        for l in p
            .get("locales")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.values())
        {
            for e in l.get("partials").and_then(Value::as_array).into_iter().flatten() {
                if let Some(f) = e.get("from").and_then(Value::as_str) {
                    out.insert(f.to_string());
                }
            }
        }
    }
    out
}

/// Any build ID a release's blob reports (its builds share one per platform).
fn build_id(blob: &Value) -> String {
    let platforms = blob.get("platforms").and_then(Value::as_object);
    platforms
        .into_iter()
        .flat_map(|m| m.values())
        .find_map(|p| {
            p.get("locales")?
                .as_object()?
                .values()
                .find_map(|l| l.get("buildID")?.as_str().map(str::to_string))
        })
        .unwrap_or_default()
}

/// The blob of `name`, fetched once.
async fn blob_of<F, Fut>(blobs: &mut BTreeMap<String, (Value, i64)>, name: &str, fetch: &F) -> Result<Value, SeedError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(String, Value, Option<i64>), SeedError>>,
{
    if let Some((b, _)) = blobs.get(name) {
        return Ok(b.clone());
    }
    let (_, blob, dv) = fetch(name.to_string()).await?;
    blobs.insert(name.to_string(), (blob.clone(), dv.unwrap_or(1)));
    Ok(blob)
}

async fn pull_bouncer(client: &reqwest::Client, src: &Source, snap: &mut Snapshot) -> Result<(), SeedError> {
    let (user, password) = src
        .credentials
        .as_ref()
        .map(|c| (c.username.clone(), c.secret.clone()))
        .unwrap_or_default();
    let b = BouncerClient::new(&src.url, &user, &password);
    // Product names start with the releases' `<Product>-<version>`.
    let prefixes: BTreeSet<String> = snap
        .balrog
        .releases
        .iter()
        .filter_map(|r| r.name.rsplit_once("-build").map(|(head, _)| head.to_string()))
        .collect();
    let mut products: BTreeMap<String, BouncerProduct> = BTreeMap::new();
    for prefix in &prefixes {
        let wanted = |n: &str| {
            n.len() >= prefix.len()
                && n[..prefix.len()].eq_ignore_ascii_case(prefix)
                && (n.len() == prefix.len() || n[prefix.len()..].starts_with('-'))
        };
        for (name, languages) in b
            .products_like(prefix)
            .await
            .map_err(|e| SeedError::service("bouncer", e))?
        {
            if wanted(&name) {
                let ssl_only = name.to_ascii_lowercase().ends_with("-ssl");
                products.insert(
                    name.clone(),
                    BouncerProduct {
                        name,
                        ssl_only,
                        languages,
                        locations: BTreeMap::new(),
                    },
                );
            }
        }
        for (name, locs) in b
            .locations_like(prefix)
            .await
            .map_err(|e| SeedError::service("bouncer", e))?
        {
            if let Some(p) = products.get_mut(&name) {
                p.locations = locs.into_iter().map(|l| (l.os, l.path)).collect();
            }
        }
    }
    // A stagelib stand-in also tells `ssl_only` and the aliases.
    let export_url = format!("{}/__stagelib__/export", src.url.trim_end_matches('/'));
    let export = client
        .get(&export_url)
        .basic_auth(&user, Some(&password))
        .send()
        .await
        .ok()
        .filter(|r| r.status().is_success());
    if let Some(resp) = export {
        let data: super::snapshot::BouncerData = resp
            .json()
            .await
            .map_err(|e| SeedError::service("bouncer", format!("export: {e}")))?;
        for p in &data.products {
            if let Some(mine) = products.get_mut(&p.name) {
                mine.ssl_only = p.ssl_only;
            }
        }
        snap.bouncer.aliases = data
            .aliases
            .into_iter()
            .filter(|(_, target)| products.keys().any(|k| k.eq_ignore_ascii_case(target)))
            .collect();
    }
    snap.bouncer.products = products.into_values().collect();
    Ok(())
}

async fn pull_shipit(client: &reqwest::Client, src: &Source, snap: &mut Snapshot) -> Result<(), SeedError> {
    let names: BTreeSet<&str> = snap.balrog.releases.iter().map(|r| r.name.as_str()).collect();
    let products: BTreeSet<String> = snap
        .balrog
        .releases
        .iter()
        .map(|r| r.product.to_ascii_lowercase())
        .collect();
    for product in products {
        let url = format!(
            "{}/releases?product={product}&status=shipped,scheduled,aborted",
            src.url.trim_end_matches('/')
        );
        let (list, _) = get_json(client, "shipit", &url, None).await?;
        let releases: Vec<crate::services::shipit::state::Release> = decode("shipit", "releases", list)?;
        snap.shipit
            .releases
            .extend(releases.into_iter().filter(|r| names.contains(r.name.as_str())));
    }
    Ok(())
}

async fn pull_s3(client: &reqwest::Client, src: &Source, bucket: &str) -> Result<Vec<S3Object>, SeedError> {
    let token = src.credentials.as_ref().map(|c| c.secret.as_str());
    let url = format!("{}/__stagelib__/export/{bucket}", src.url.trim_end_matches('/'));
    let (v, _) = get_json(client, "s3", &url, token).await?;
    let data: super::snapshot::S3Data = decode("s3", "export", v)?;
    Ok(data.objects)
}

/// Everything a live stack holds for namespace `ns`, back in canonical names
/// and production URLs, with the bytes of objects that cannot be generated.
pub async fn take(
    name: &str,
    source: &str,
    endpoints: &StackEndpoints,
    ns: &Namespacer,
) -> Result<(Snapshot, BTreeMap<String, Vec<u8>>), SeedError> {
    let ep = |k: ServiceKind| endpoints.services.get(&k);
    let balrog = ep(ServiceKind::Balrog).ok_or_else(|| SeedError::Invalid("the stack has no balrog".into()))?;
    let opts = PullOptions {
        name: name.to_string(),
        balrog: Source {
            url: balrog.url.clone(),
            credentials: Some(balrog.credentials.clone()),
        },
        bouncer: ep(ServiceKind::Bouncer).map(|e| Source {
            url: e.url.clone(),
            credentials: Some(e.credentials.clone()),
        }),
        shipit: ep(ServiceKind::Shipit).map(|e| Source {
            url: e.url.clone(),
            credentials: None,
        }),
        s3: ep(ServiceKind::S3).map(|e| {
            (
                Source {
                    url: e.url.clone(),
                    credentials: Some(e.credentials.clone()),
                },
                RELEASES_BUCKET.to_string(),
            )
        }),
        ..Default::default()
    };
    let view = pull(&opts).await?;
    let ids = match ns.namespace() {
        None => RuleIds::default(),
        Some(n) => {
            let client = http::http_client();
            let url = format!("{}/__stagelib__/namespaces", balrog.url.trim_end_matches('/'));
            let (all, _) = get_json(&client, "balrog", &url, None).await?;
            RuleIds {
                offset: all.get(n.as_str()).and_then(Value::as_i64).unwrap_or(0),
            }
        }
    };
    let urls = super::apply::stack_urls(endpoints)?;
    let mut snap = rewrite::from_stack(&view, ns, &urls, &Origins::default(), ids);
    snap.meta.name = name.to_string();
    snap.meta.source = source.to_string();
    snap.meta.description = format!("Taken from {source}");
    let mut stored = BTreeMap::new();
    if let Some(s3) = ep(ServiceKind::S3) {
        let client = http::http_client();
        for o in view
            .s3
            .objects
            .iter()
            .filter(|o| o.stored && ns.owns(super::namespace::NameKind::S3Key, &o.key))
        {
            let path: Vec<String> = o.key.split('/').map(crate::clients::balrog::enc).collect();
            let url = format!("{}/{RELEASES_BUCKET}/{}", s3.url.trim_end_matches('/'), path.join("/"));
            let resp = http::send("s3", client.get(&url))
                .await
                .map_err(|e| SeedError::service("s3", e))?;
            let bytes = resp.bytes().await.map_err(|e| SeedError::service("s3", e))?;
            stored.insert(o.sha512.clone(), bytes.to_vec());
        }
    }
    Ok((snap, stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_filters_take_variants() {
        let f = vec!["beta".to_string()];
        assert!(channel_matches(&f, Some("beta")));
        assert!(channel_matches(&f, Some("beta-localtest")));
        assert!(!channel_matches(&f, Some("betatest")));
        assert!(!channel_matches(&f, None));
        assert!(channel_matches(&[], None));
    }
}
