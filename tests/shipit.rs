//! Ship-it in-process: the build-number rule with and without the staging
//! switch, Hawk failures (bad MAC, stale timestamp), bad input naming the field,
//! and persistence across a restart.
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{json, Value};
use stagelib::services::shipit::{hawk, router, state::State, Shipit};
use tower::ServiceExt;

const KEY: &str = "tc-token";
const ID: &str = "client";

fn shipit(allow_multiple: bool, dir: Option<&std::path::Path>) -> axum::Router {
    router(Shipit {
        data: Arc::new(Mutex::new(
            dir.map(|d| State::load(d).expect("load")).unwrap_or_default(),
        )),
        data_dir: dir.map(|d| d.to_path_buf()),
        user: ID.into(),
        secret: Some(KEY.into()),
        allow_multiple_build_numbers: allow_multiple,
    })
}

async fn call(
    app: &axum::Router,
    method: Method,
    path: &str,
    body: Option<Value>,
    ts_offset: i64,
    key: &str,
) -> (u16, Value) {
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let r = hawk::Request {
        method: method.as_str(),
        resource: path,
        host: "shipit.test",
        port: 8080,
    };
    let auth = hawk::sign(
        ID,
        key,
        &r,
        "application/json",
        bytes.as_bytes(),
        chrono::Utc::now().timestamp() + ts_offset,
    );
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "shipit.test:8080")
        .header("Content-Type", "application/json")
        .header("Authorization", auth)
        .body(Body::from(bytes))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status().as_u16();
    let b = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn release(version: &str, build: i64) -> Value {
    json!({"product": "firefox", "version": version, "branch": "releases/mozilla-release", "revision": "b".repeat(40), "build_number": build})
}

#[tokio::test]
async fn build_numbers_and_the_staging_switch() {
    let strict = shipit(false, None);
    assert_eq!(
        call(&strict, Method::POST, "/releases", Some(release("140.0", 1)), 0, KEY)
            .await
            .0,
        201
    );
    let (s, body) = call(&strict, Method::POST, "/releases", Some(release("140.0", 1)), 0, KEY).await;
    assert_eq!(s, 400, "duplicate name: {body}");
    assert_eq!(
        call(
            &strict,
            Method::PATCH,
            "/releases/Firefox-140.0-build1",
            Some(json!({"status": "shipped"})),
            0,
            KEY
        )
        .await
        .0,
        200
    );
    let (s, body) = call(&strict, Method::POST, "/releases", Some(release("140.0", 2)), 0, KEY).await;
    assert_eq!(s, 400);
    assert!(
        body["detail"].as_str().unwrap_or("").contains("already shipped"),
        "{body}"
    );

    let staging = shipit(true, None);
    for b in [1, 2, 5] {
        assert_eq!(
            call(&staging, Method::POST, "/releases", Some(release("140.0", b)), 0, KEY)
                .await
                .0,
            201,
            "build {b}"
        );
    }
}

#[tokio::test]
async fn hawk_failures_are_401_and_change_nothing() {
    let app = shipit(false, None);
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/releases",
            Some(release("140.0", 1)),
            0,
            "wrong-key"
        )
        .await
        .0,
        401
    );
    assert_eq!(
        call(&app, Method::POST, "/releases", Some(release("140.0", 1)), -3600, KEY)
            .await
            .0,
        401,
        "stale ts"
    );
    let req = Request::post("/releases")
        .header("Content-Type", "application/json")
        .body(Body::from(release("140.0", 1).to_string()))
        .expect("req");
    assert_eq!(
        app.clone().oneshot(req).await.expect("resp").status().as_u16(),
        401,
        "unsigned"
    );
    let req = Request::get("/releases?status=scheduled,shipped,aborted")
        .body(Body::empty())
        .expect("req");
    let resp = app.clone().oneshot(req).await.expect("resp");
    let b = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    assert_eq!(serde_json::from_slice::<Value>(&b).expect("json"), json!([]));
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let app = shipit(false, None);
    for (body, field) in [
        (
            json!({"product": "firefox", "version": "140.0", "branch": "b", "revision": "r"}),
            "build_number",
        ),
        (
            json!({"product": "netscape", "version": "140.0", "branch": "b", "revision": "r", "build_number": 1}),
            "product",
        ),
        (
            json!({"product": "firefox", "version": "140.1", "branch": "b", "revision": "r", "build_number": 1}),
            "version",
        ),
        (
            json!({"product": "firefox", "version": "141.0a1", "branch": "b", "revision": "r", "build_number": 1}),
            "version",
        ),
        (
            json!({"product": "devedition", "version": "140.0", "branch": "b", "revision": "r", "build_number": 1}),
            "version",
        ),
    ] {
        let (s, b) = call(&app, Method::POST, "/releases", Some(body.clone()), 0, KEY).await;
        assert_eq!(s, 400, "{body}");
        assert!(b["detail"].as_str().unwrap_or("").contains(field), "{body} -> {b}");
    }
    let (s, _) = call(
        &app,
        Method::PATCH,
        "/releases/Firefox-1.0-build1",
        Some(json!({"status": "shipped"})),
        0,
        KEY,
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(
        call(&app, Method::POST, "/releases", Some(release("140.0", 1)), 0, KEY)
            .await
            .0,
        201
    );
    let (s, b) = call(
        &app,
        Method::PATCH,
        "/releases/Firefox-140.0-build1",
        Some(json!({"status": "done"})),
        0,
        KEY,
    )
    .await;
    assert_eq!(s, 400, "{b}");
}

#[tokio::test]
async fn releases_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = shipit(false, Some(dir.path()));
    assert_eq!(
        call(&app, Method::POST, "/releases", Some(release("140.0", 1)), 0, KEY)
            .await
            .0,
        201
    );
    let app = shipit(false, Some(dir.path()));
    let req = Request::get("/releases/Firefox-140.0-build1")
        .body(Body::empty())
        .expect("req");
    assert_eq!(app.oneshot(req).await.expect("resp").status().as_u16(), 200);
}
