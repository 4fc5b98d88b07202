//! Ship-it v2 endpoints (reference shipit.md §4-5).
// Handlers return ready-made HTTP responses as their error values; boxing them
// would only add noise.
#![allow(clippy::result_large_err)]
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::state::{capitalize, phases_of, Nightly, Phase, Release, State as Data};
use super::{hawk, Shipit};
use crate::version::GeckoVersion;

pub fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        json!({"type": "about:blank", "title": title, "detail": detail.into(), "status": status.as_u16()}).to_string(),
    )
        .into_response()
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Hawk-verify a write; `Err` is the 401 to send.
pub fn authenticate(s: &Shipit, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
    let Some(key) = &s.secret else { return Ok(()) };
    let host_header = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (host, port_in_host) = match host_header.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse::<u16>().ok()),
        _ => (host_header, None),
    };
    let proto_https = headers.get("X-Forwarded-Proto").and_then(|v| v.to_str().ok()) == Some("https");
    let port = port_in_host
        .or_else(|| {
            headers
                .get("X-Forwarded-Port")
                .and_then(|v| v.to_str().ok())
                .and_then(|p| p.parse().ok())
        })
        .unwrap_or(if proto_https { 443 } else { 80 });
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let full = uri.path_and_query().map(|p| p.as_str()).unwrap_or(uri.path());
    let ts = chrono::Utc::now().timestamp();
    let mut last = hawk::HawkError::Missing;
    for resource in [full, uri.path()] {
        let r = hawk::Request {
            method: method.as_str(),
            resource,
            host,
            port,
        };
        match hawk::verify(auth, (&s.user, key), &r, ct, body, ts, 300) {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
    }
    let mut resp = problem(StatusCode::UNAUTHORIZED, format!("Hawk authentication failed: {last}"));
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Hawk"));
    Err(resp)
}

/// The body of a Hawk-authenticated write (the request is refused with 401
/// before any handler runs when the signature does not check out).
pub struct Signed {
    pub method: Method,
    pub body: Bytes,
}

impl axum::extract::FromRequest<Shipit> for Signed {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, s: &Shipit) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 1024 * 1024)
            .await
            .map_err(|_| problem(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than 1 MiB"))?;
        authenticate(s, &parts.method, &parts.uri, &parts.headers, &body)?;
        Ok(Self {
            method: parts.method,
            body,
        })
    }
}

/// Apply a change to a copy of the data, persist, then publish it.
pub fn write(s: &Shipit, f: impl FnOnce(&mut Data) -> Result<Response, Response>) -> Response {
    let mut guard = s.data.lock().unwrap_or_else(|p| p.into_inner());
    let mut next = guard.clone();
    match f(&mut next) {
        Ok(resp) => {
            if let Some(dir) = &s.data_dir {
                if let Err(e) = next.save(dir) {
                    tracing::error!(error = %e, "cannot persist ship-it state");
                    return problem(StatusCode::INTERNAL_SERVER_ERROR, "cannot persist the change");
                }
            }
            *guard = next;
            resp
        }
        Err(resp) => resp,
    }
}

fn params(q: Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

pub async fn list_releases(State(s): State<Shipit>, RawQuery(q): RawQuery) -> Response {
    let p = params(q);
    let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let build_number = match get("build_number").map(|b| b.parse::<i64>()) {
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return problem(StatusCode::BAD_REQUEST, "build_number: must be an integer"),
        None => None,
    };
    if build_number.is_some() && get("version").is_none() {
        return problem(
            StatusCode::BAD_REQUEST,
            "Filtering by build_number without version is not supported.",
        );
    }
    let statuses: Vec<String> = get("status")
        .unwrap_or_else(|| "scheduled".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let d = s.data.lock().unwrap_or_else(|p| p.into_inner());
    let mut out: Vec<(String, GeckoVersion, Release)> = d
        .releases
        .values()
        .filter(|r| get("product").is_none_or(|x| x == r.product))
        .filter(|r| get("branch").is_none_or(|x| x == r.branch))
        .filter(|r| get("version").is_none_or(|x| x == r.version))
        .filter(|r| build_number.is_none_or(|b| b == r.build_number))
        .filter(|r| statuses.contains(&r.status))
        .filter_map(|r| {
            r.version
                .parse::<GeckoVersion>()
                .ok()
                .map(|v| (r.product.clone(), v, r.clone()))
        })
        .collect();
    out.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.build_number.cmp(&b.2.build_number))
    });
    Json(out.into_iter().map(|(_, _, r)| r).collect::<Vec<_>>()).into_response()
}

pub async fn create_release(State(s): State<Shipit>, Signed { body, .. }: Signed) -> Response {
    let input: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => Value::Object(m),
        Ok(_) => return problem(StatusCode::BAD_REQUEST, "the body must be a JSON object"),
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")),
    };
    let text = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(product), Some(version), Some(branch), Some(revision)) =
        (text("product"), text("version"), text("branch"), text("revision"))
    else {
        return problem(
            StatusCode::BAD_REQUEST,
            "'product', 'version', 'branch' and 'revision' are required strings",
        );
    };
    let Some(build_number) = input.get("build_number").and_then(Value::as_i64).filter(|n| *n >= 1) else {
        return problem(StatusCode::BAD_REQUEST, "build_number: a positive integer is required");
    };
    let Some(phase_names) = phases_of(&product) else {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("product: '{product}' is not one of the supported products"),
        );
    };
    let parsed = match version.parse::<GeckoVersion>() {
        Ok(v) => v,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("version: {e}")),
    };
    if let Err(e) = parsed.bump() {
        return problem(StatusCode::BAD_REQUEST, format!("version: {e}"));
    }
    if product == "devedition" && !parsed.is_beta() {
        return problem(StatusCode::BAD_REQUEST, "version: devedition versions are betas");
    }
    if input.get("partial_updates").and_then(Value::as_str) == Some("auto")
        && !(["firefox", "devedition"].contains(&product.as_str())
            && ["try", "releases/mozilla-beta", "projects/maple"].contains(&branch.as_str()))
    {
        return problem(
            StatusCode::BAD_REQUEST,
            "partial_updates: 'auto' is only allowed for firefox/devedition betas",
        );
    }
    let allow_multiple = s.allow_multiple_build_numbers;
    write(&s, |d| {
        let name = format!("{}-{version}-build{build_number}", capitalize(&product));
        if d.releases.contains_key(&name) {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                format!("Release {name} already exists"),
            ));
        }
        if !allow_multiple {
            let same: Vec<&Release> = d
                .releases
                .values()
                .filter(|r| r.product == product && r.version == version)
                .collect();
            if let Some(shipped) = same.iter().find(|r| r.status == "shipped") {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    format!("{version} was already shipped as {}; pick a new version (or start ship-it with --allow-multiple-build-numbers for staging)", shipped.name),
                ));
            }
            let max = same.iter().map(|r| r.build_number).max().unwrap_or(0);
            if build_number != max + 1 {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    format!("build_number: the next build of {product} {version} is {}", max + 1),
                ));
            }
        }
        let created = now();
        let release = Release {
            name: name.clone(),
            product: product.clone(),
            project: branch.rsplit('/').next().unwrap_or(&branch).to_string(),
            branch: branch.clone(),
            version: version.clone(),
            revision: revision.clone(),
            build_number,
            release_eta: text("release_eta").unwrap_or_default(),
            status: "scheduled".into(),
            created: created.clone(),
            completed: String::new(),
            phases: phase_names
                .iter()
                .map(|p| Phase {
                    name: p.to_string(),
                    submitted: false,
                    action_task_id: String::new(),
                    created: created.clone(),
                    scheduled_at: String::new(),
                    skipped: false,
                })
                .collect(),
            allow_phase_skipping: ["try", "mozilla-beta"].iter().any(|b| branch.ends_with(b))
                || product == "app-services",
            partial_updates: input.get("partial_updates").cloned().unwrap_or(Value::Null),
        };
        let body = serde_json::to_value(&release).unwrap_or(Value::Null);
        d.releases.insert(name, release);
        Ok((StatusCode::CREATED, Json(body)).into_response())
    })
}

/// A phase of a release, or the 404 to answer.
fn find_phase<'a>(d: &'a Data, name: &str, phase: &str) -> Result<&'a Phase, Response> {
    d.releases
        .get(name)
        .and_then(|r| r.phases.iter().find(|p| p.name == phase))
        .ok_or_else(|| problem(StatusCode::NOT_FOUND, format!("Phase {phase} of {name} not found")))
}

fn not_found(name: &str) -> Response {
    problem(StatusCode::NOT_FOUND, format!("Release {name} not found"))
}

pub async fn get_release(State(s): State<Shipit>, Path(name): Path<String>) -> Response {
    let d = s.data.lock().unwrap_or_else(|p| p.into_inner());
    match d.releases.get(&name) {
        Some(r) => Json(r).into_response(),
        None => not_found(&name),
    }
}

pub async fn update_release(
    State(s): State<Shipit>,
    Path(name): Path<String>,
    Signed { method, body }: Signed,
) -> Response {
    let status = if method == Method::DELETE {
        "aborted".to_string()
    } else {
        match serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_string))
        {
            Some(st) if ["scheduled", "shipped", "aborted"].contains(&st.as_str()) => st,
            Some(st) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!("status: '{st}' is not one of ['scheduled', 'shipped', 'aborted']"),
                )
            }
            None => return problem(StatusCode::BAD_REQUEST, "'status' is a required property"),
        }
    };
    write(&s, |d| {
        let r = d.releases.get_mut(&name).ok_or_else(|| not_found(&name))?;
        r.status = status.clone();
        if status == "shipped" {
            r.completed = now();
        }
        let body = serde_json::to_value(&*r).unwrap_or(Value::Null);
        if status == "shipped" {
            d.product_details_rebuilds += 1;
        }
        Ok(Json(body).into_response())
    })
}

pub async fn get_phase(State(s): State<Shipit>, Path((name, phase)): Path<(String, String)>) -> Response {
    let d = s.data.lock().unwrap_or_else(|p| p.into_inner());
    match find_phase(&d, &name, &phase) {
        Ok(p) => Json(p).into_response(),
        Err(r) => r,
    }
}

pub async fn schedule_phase(
    State(s): State<Shipit>,
    Path((name, phase)): Path<(String, String)>,
    _: Signed,
) -> Response {
    write(&s, |d| {
        let r = d.releases.get_mut(&name).ok_or_else(|| not_found(&name))?;
        let idx = r
            .phases
            .iter()
            .position(|p| p.name == phase)
            .ok_or_else(|| problem(StatusCode::NOT_FOUND, format!("Phase {phase} of {name} not found")))?;
        if r.phases[idx].submitted {
            return Err(problem(StatusCode::CONFLICT, "Already submitted!"));
        }
        let at = now();
        for p in r.phases[..idx].iter_mut().filter(|p| !p.submitted) {
            p.submitted = true;
            p.skipped = true;
            p.scheduled_at = at.clone();
        }
        let p = &mut r.phases[idx];
        p.submitted = true;
        p.scheduled_at = at;
        p.action_task_id = crate::services::shipit::fake_task_id();
        Ok(Json(p.clone()).into_response())
    })
}

pub async fn signoffs(State(s): State<Shipit>, Path((name, phase)): Path<(String, String)>) -> Response {
    let d = s.data.lock().unwrap_or_else(|p| p.into_inner());
    match find_phase(&d, &name, &phase) {
        Ok(_) => Json(json!({"signoffs": []})).into_response(),
        Err(r) => r,
    }
}

/// Firefox, Devedition and the mobile products define no signoffs, so any
/// signoff uid is unknown: 404 (after authentication, as upstream).
pub async fn sign(
    State(s): State<Shipit>,
    Path((name, phase)): Path<(String, String)>,
    Signed { body, .. }: Signed,
) -> Response {
    let Ok(uid) = serde_json::from_slice::<String>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON string: the signoff uid",
        );
    };
    let d = s.data.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(r) = find_phase(&d, &name, &phase) {
        return r;
    }
    problem(
        StatusCode::NOT_FOUND,
        format!("Signoff {uid} not found for {name} {phase}"),
    )
}

pub async fn product_details(State(s): State<Shipit>, _: Signed) -> Response {
    write(&s, |d| {
        d.product_details_rebuilds += 1;
        Ok(Json(json!({"status": "ok"})).into_response())
    })
}

pub async fn disabled_products(State(s): State<Shipit>) -> Response {
    Json(s.data.lock().unwrap_or_else(|p| p.into_inner()).disabled.clone()).into_response()
}

pub async fn get_version(State(s): State<Shipit>, Path((product, channel)): Path<(String, String)>) -> Response {
    let d = s.data.lock().unwrap_or_else(|p| p.into_inner());
    match d.versions.get(&format!("{product}/{channel}")) {
        Some(v) => Json(v).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("No version found for {product} {channel}.")})),
        )
            .into_response(),
    }
}

pub async fn set_version(
    State(s): State<Shipit>,
    Path((product, channel)): Path<(String, String)>,
    Signed { method, body }: Signed,
) -> Response {
    let Some(version) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("version").and_then(Value::as_str).map(str::to_string))
    else {
        return problem(StatusCode::BAD_REQUEST, "'version' is a required property");
    };
    let create = method == Method::POST;
    write(&s, |d| {
        let key = format!("{product}/{channel}");
        match (create, d.versions.get(&key)) {
            (true, Some(_)) => {
                return Err((
                    StatusCode::CONFLICT,
                    Json(json!({"error": format!("A {product} {channel} version already exists.")})),
                )
                    .into_response())
            }
            (false, None) => {
                return Err((
                    StatusCode::NOT_FOUND,
                    Json(json!({"error": format!("No version found for {product} {channel}.")})),
                )
                    .into_response())
            }
            (false, Some(v)) if *v == version => {
                return Err((
                    StatusCode::CONFLICT,
                    Json(json!({"error": format!("The {product} {channel} version is already {version}!")})),
                )
                    .into_response())
            }
            _ => {}
        }
        d.versions.insert(key, version.clone());
        let status = if create { StatusCode::CREATED } else { StatusCode::OK };
        Ok((status, Json(json!({"message": format!("{product} {channel} version set to {version}"), "version": version, "product": product, "channel": channel}))).into_response())
    })
}

pub async fn list_nightlies(State(s): State<Shipit>, RawQuery(q): RawQuery) -> Response {
    let p = params(q);
    let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let d = s.data.lock().unwrap_or_else(|p| p.into_inner());
    let out: Vec<&Nightly> = d
        .nightlies
        .iter()
        .filter(|n| get("product").is_none_or(|x| x == n.product))
        .filter(|n| get("channel").is_none_or(|x| x == n.channel))
        .filter(|n| get("buildid").is_none_or(|x| x == n.buildid))
        .collect();
    Json(out).into_response()
}

pub async fn create_nightly(State(s): State<Shipit>, Signed { body, .. }: Signed) -> Response {
    let n: Nightly = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("invalid nightly release: {e}")),
    };
    if n.locales.iter().any(String::is_empty) {
        return problem(StatusCode::BAD_REQUEST, "locales: empty locale string");
    }
    write(&s, |d| {
        if d.nightlies
            .iter()
            .any(|x| x.product == n.product && x.channel == n.channel && x.buildid == n.buildid)
        {
            return Err(problem(StatusCode::BAD_REQUEST, "this nightly release already exists"));
        }
        d.nightlies.push(n);
        Ok((StatusCode::CREATED, Json(json!(""))).into_response())
    })
}
