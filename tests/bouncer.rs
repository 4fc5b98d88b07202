//! Every case of the Bouncer fixtures: the 33 admin API vectors (each on a fresh
//! copy of bouncer-admin's seed data) plus its static endpoints and size limit,
//! and the 46 redirector vectors (go-bouncer's data). Prints the counts.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use stagelib::services::bouncer::state::State;
use stagelib::services::bouncer::{router, Bouncer, RedirectConfig};
use tower::ServiceExt;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/releng/bouncer")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).expect("fixture")
}

fn bouncer(state: State, redirect: RedirectConfig) -> (Bouncer, axum::Router) {
    let b = Bouncer {
        data: Arc::new(Mutex::new(state)),
        data_dir: None,
        user: "admin".into(),
        secret: Some("test".into()),
        redirect,
    };
    (b.clone(), router(b))
}

async fn send(app: &axum::Router, req: Request<Body>) -> (u16, Option<String>, String) {
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, location, String::from_utf8_lossy(&bytes).to_string())
}

fn basic() -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:test")
    )
}

fn form_body(form: &serde_json::Map<String, Value>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        match v {
            Value::Array(items) => {
                for i in items {
                    s.append_pair(k, &value_text(i));
                }
            }
            other => {
                s.append_pair(k, &value_text(other));
            }
        }
    }
    s.finish()
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn admin_api_vectors() {
    let doc: Value = serde_json::from_str(&read("admin-api-vectors.json")).expect("json");
    let seed = State::from_mysql_dump(&read("bouncer-admin-data.sql")).expect("seed data");
    let mut failures = Vec::new();
    let mut total = 0;
    for v in doc["vectors"].as_array().expect("vectors") {
        let (_, app) = bouncer(seed.clone(), RedirectConfig::default());
        let method = v["method"].as_str().expect("method");
        let path = v["path"].as_str().expect("path");
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("Authorization", basic());
        let body = match v.get("form").and_then(Value::as_object) {
            Some(f) => {
                req = req.header("content-type", "application/x-www-form-urlencoded");
                Body::from(form_body(f))
            }
            None => Body::empty(),
        };
        let (status, _, text) = send(&app, req.body(body).expect("request")).await;
        let ok_status = u64::from(status) == v["expected_status"].as_u64().expect("status");
        let ok_body = match v.get("expected_body").and_then(Value::as_str) {
            Some(b) => text == b,
            None => v["expected_body_contains"]
                .as_array()
                .expect("contains")
                .iter()
                .all(|part| text.contains(part.as_str().expect("part"))),
        };
        total += 1;
        if !(ok_status && ok_body) {
            failures.push(format!("{}: {status} {text}", v["name"]));
        }
    }
    // Static endpoints and the size limit.
    for s in doc["static_endpoints"].as_array().expect("static") {
        let (_, app) = bouncer(seed.clone(), RedirectConfig::default());
        let req = Request::get(s["path"].as_str().expect("path"))
            .body(Body::empty())
            .expect("req");
        let (status, _, text) = send(&app, req).await;
        total += 1;
        if status != 200 || text != s["expected_body"].as_str().expect("body") {
            failures.push(format!("static {}: {status} {text}", s["path"]));
        }
    }
    let limit = &doc["size_limit"];
    let (b, app) = bouncer(seed.clone(), RedirectConfig::default());
    let big = format!("product=Firefox&os=osx&path={}", "a".repeat(600 * 1024));
    let req = Request::post(limit["path"].as_str().expect("path"))
        .header("Authorization", basic())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(big))
        .expect("req");
    let (status, _, text) = send(&app, req).await;
    total += 1;
    if u64::from(status) != limit["expected_status"].as_u64().expect("status")
        || text != limit["expected_body"].as_str().expect("b")
    {
        failures.push(format!("size limit: {status} {text}"));
    }
    assert_eq!(
        *b.data.lock().expect("lock"),
        seed,
        "the oversized request changed nothing"
    );
    eprintln!("bouncer admin vectors: {}/{total} passed", total - failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(total, 33 + 4 + 1);
}

#[tokio::test]
async fn redirector_vectors() {
    let doc: Value = serde_json::from_str(&read("redirector-vectors.json")).expect("json");
    let mut sql = read("go-bouncer-01-schema.sql");
    sql.push_str(&read("go-bouncer-02-data.sql"));
    let seed = State::from_mysql_dump(&sql).expect("seed");
    let settings = &doc["settings"];
    let mut failures = Vec::new();
    let mut total = 0;
    for v in doc["vectors"].as_array().expect("vectors") {
        let redirect = RedirectConfig {
            http_base: settings["pinned_baseurl_http"].as_str().expect("http").into(),
            https_base: settings["pinned_baseurl_https"].as_str().expect("https").into(),
            stub_root_url: v
                .get("requires")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("stub_root_url="))
                .map(str::to_string),
            ..RedirectConfig::default()
        };
        let (_, app) = bouncer(seed.clone(), redirect);
        let mut req = Request::get(v["request"].as_str().expect("request"));
        if let Some(ua) = v.get("user_agent").and_then(Value::as_str) {
            req = req.header("User-Agent", ua);
        }
        if let Some(r) = v.get("referer").and_then(Value::as_str) {
            req = req.header("Referer", r);
        }
        let (status, location, body) = send(&app, req.body(Body::empty()).expect("req")).await;
        let mut ok = u64::from(status) == v["expected_status"].as_u64().expect("status");
        if let Some(l) = v.get("expected_location").and_then(Value::as_str) {
            ok &= location.as_deref() == Some(l);
        }
        if let Some(b) = v.get("expected_body").and_then(Value::as_str) {
            ok &= body == b;
        }
        total += 1;
        if !ok {
            failures.push(format!(
                "{}: {status} {location:?} {body:?}\n  expected {v}",
                v["request"]
            ));
        }
    }
    eprintln!("bouncer redirector vectors: {}/{total} passed", total - failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(total, 46);
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    let seed = State::from_mysql_dump(&read("bouncer-admin-data.sql")).expect("seed");
    let (b, app) = bouncer(seed.clone(), RedirectConfig::default());
    // No auth, wrong auth.
    for auth in [None, Some("Basic bm9wZTpub3Bl")] {
        let mut req = Request::post("/api/product_add/").header("content-type", "application/x-www-form-urlencoded");
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let (status, _, text) = send(&app, req.body(Body::from("product=New")).expect("req")).await;
        assert_eq!((status, text.as_str()), (401, "Unauthorized Access"));
    }
    // Missing fields, garbage form.
    for body in ["", "product=", "%%%&&&=", "os=osx&path=/x"] {
        let req = Request::post("/api/location_add")
            .header("Authorization", basic())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("req");
        let (status, _, text) = send(&app, req).await;
        assert_eq!(status, 400, "{body:?}: {text}");
        assert!(text.contains("<error number=\"101\">"), "{text}");
    }
    assert_eq!(*b.data.lock().expect("lock"), seed);
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let mk = || Bouncer {
        data: Arc::new(Mutex::new(State::load(dir.path()).expect("load"))),
        data_dir: Some(dir.path().to_path_buf()),
        user: "admin".into(),
        secret: Some("test".into()),
        redirect: RedirectConfig {
            download_base: Some("http://127.0.0.1:9/pub".into()),
            ..RedirectConfig::default()
        },
    };
    let app = router(mk());
    for (route, body) in [
        ("product_add/", "product=Firefox-140.0b3-SSL&ssl_only=true&languages=de&languages=en-US"),
        ("location_add/", "product=Firefox-140.0b3-SSL&os=win64&path=/firefox/releases/140.0b3/win64/:lang/Firefox%2520Setup%2520140.0b3.exe"),
        ("create_update_alias", "alias=firefox-beta-latest-ssl&related_product=Firefox-140.0b3-SSL"),
    ] {
        let req = Request::post(format!("/api/{route}"))
            .header("Authorization", basic())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("req");
        let (status, _, text) = send(&app, req).await;
        assert_eq!(status, 200, "{route}: {text}");
    }
    let app = router(mk());
    let req = Request::get("/?product=firefox-beta-latest-ssl&os=win64&lang=de")
        .body(Body::empty())
        .expect("req");
    let (status, location, _) = send(&app, req).await;
    assert_eq!(status, 302);
    assert_eq!(
        location.as_deref(),
        Some("http://127.0.0.1:9/pub/firefox/releases/140.0b3/win64/de/Firefox%20Setup%20140.0b3.exe")
    );
    let req = Request::get("/?product=firefox-beta-latest-ssl&os=win64&lang=fr")
        .body(Body::empty())
        .expect("req");
    assert_eq!(send(&app, req).await.0, 404, "fr is not a language of the product");
}
