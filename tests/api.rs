//! The manager's HTTP API in-process on a loopback port: authorisation matrix,
//! racing reservations against the quota on both databases, bad input, and the
//! OpenAPI document against the route table.
mod support;

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use stagelib::lease::{Actor, Scope};
use stagelib::manager::LeaseService;
use support::{all_dbs, manager_on, serve_api};

struct Tokens {
    owner: String,
    other: String,
    admin: String,
    try_: String,
}

async fn tokens(m: &std::sync::Arc<stagelib::manager::Manager>) -> Tokens {
    let root = Actor::admin("root");
    let mk = |user: &'static str, scope| {
        let root = root.clone();
        async move { m.create_token(&root, user, scope).await.expect("token").token }
    };
    Tokens {
        owner: mk("alice", Scope::User).await,
        other: mk("mallory", Scope::User).await,
        admin: mk("admin", Scope::Admin).await,
        try_: mk("try-bot", Scope::Try).await,
    }
}

async fn call(base: &str, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut req = client.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn authorisation_matrix() {
    let db = support::sqlite_db().await;
    let t = manager_on(db.store.clone(), true);
    let base = format!("http://{}", serve_api(t.manager.clone()).await);
    let tk = tokens(&t.manager).await;
    let (s, lease) = call(&base, Method::POST, "/v1/leases", Some(&tk.owner), Some(json!({}))).await;
    assert_eq!(s, StatusCode::CREATED, "{lease}");
    let id = lease["id"].as_str().expect("id").to_string();
    t.manager.drain().await;

    // (method, path, body, [owner, other, admin, try, none])
    let lease_path = format!("/v1/leases/{id}");
    let rows: Vec<(Method, String, Option<Value>, [u16; 5])> = vec![
        (Method::GET, "/healthz".into(), None, [200, 200, 200, 200, 200]),
        (Method::GET, "/metrics".into(), None, [200, 200, 200, 200, 200]),
        (
            Method::POST,
            "/v1/leases".into(),
            Some(json!({"namespace": "m1"})),
            [201, 201, 201, 403, 401],
        ),
        (Method::GET, "/v1/leases".into(), None, [200, 200, 200, 403, 401]),
        (Method::GET, lease_path.clone(), None, [200, 403, 200, 403, 401]),
        (
            Method::PATCH,
            lease_path.clone(),
            Some(json!({"extend_by": "1h"})),
            [200, 403, 200, 403, 401],
        ),
        (
            Method::POST,
            format!("{lease_path}/heartbeat"),
            None,
            [200, 403, 200, 403, 401],
        ),
        (
            Method::GET,
            format!("{lease_path}/endpoints"),
            None,
            [200, 403, 200, 200, 401],
        ),
        (Method::POST, "/v1/reap".into(), None, [403, 403, 200, 403, 401]),
        (
            Method::POST,
            "/v1/tokens".into(),
            Some(json!({"user": "x"})),
            [403, 403, 201, 403, 401],
        ),
        // Last: the order (none, try, other, admin, owner) below releases it with admin.
        (Method::DELETE, lease_path.clone(), None, [200, 403, 200, 403, 401]),
    ];
    let mut checked = 0;
    for (method, path, body, expected) in rows {
        let who: [(usize, Option<&str>); 5] = [
            (4, None),
            (3, Some(&tk.try_)),
            (1, Some(&tk.other)),
            (2, Some(&tk.admin)),
            (0, Some(&tk.owner)),
        ];
        for (col, token) in who {
            let (status, body_out) = call(&base, method.clone(), &path, token, body.clone()).await;
            assert_eq!(
                status.as_u16(),
                expected[col],
                "{method} {path} as {} -> {body_out}",
                ["owner", "other", "admin", "try", "none"][col]
            );
            if status.is_client_error() {
                assert!(
                    body_out["error"]["message"].as_str().is_some(),
                    "error body: {body_out}"
                );
            }
            checked += 1;
        }
        t.manager.drain().await;
    }
    assert_eq!(checked, 55);
    eprintln!("authorisation matrix: {checked} route x caller cases checked");
}

#[tokio::test]
async fn concurrent_reservations_respect_the_quota() {
    for db in all_dbs().await {
        let t = manager_on(db.store.clone(), true);
        let base = format!("http://{}", serve_api(t.manager.clone()).await);
        let tk = tokens(&t.manager).await;
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        let mut handles = Vec::new();
        for i in 0..200 {
            let (client, base, token) = (client.clone(), base.clone(), tk.owner.clone());
            handles.push(tokio::spawn(async move {
                let resp = client
                    .post(format!("{base}/v1/leases"))
                    .bearer_auth(token)
                    .json(&json!({"namespace": format!("alice-{i}")}))
                    .send()
                    .await
                    .expect("answered");
                let status = resp.status();
                (status, resp.json::<Value>().await.expect("json body"))
            }));
        }
        let mut created = Vec::new();
        let mut refused = 0;
        for h in handles {
            let (status, body) = h.await.expect("task");
            match status {
                StatusCode::CREATED => created.push(body["id"].as_str().expect("id").to_string()),
                StatusCode::CONFLICT => {
                    assert!(body["error"]["message"].as_str().unwrap_or("").contains('3'), "{body}");
                    refused += 1
                }
                other => panic!("[{}] unexpected {other}: {body}", db.kind),
            }
        }
        let elapsed = started.elapsed();
        t.manager.drain().await;
        let unique: BTreeSet<_> = created.iter().cloned().collect();
        assert_eq!(created.len(), 3, "[{}] exactly the quota", db.kind);
        assert_eq!(unique.len(), 3, "no duplicate ids");
        assert_eq!(refused, 197);
        let (_, listed) = call(&base, Method::GET, "/v1/leases", Some(&tk.owner), None).await;
        let listed: BTreeSet<String> = listed
            .as_array()
            .expect("array")
            .iter()
            .map(|l| l["id"].as_str().expect("id").to_string())
            .collect();
        assert_eq!(
            listed, unique,
            "[{}] the store holds exactly the created leases",
            db.kind
        );
        eprintln!("[{}] 200 racing reservations answered in {elapsed:?}", db.kind);
    }
}

#[tokio::test]
async fn bad_input_gets_clear_4xx() {
    let db = support::sqlite_db().await;
    let t = manager_on(db.store.clone(), false);
    let base = format!("http://{}", serve_api(t.manager.clone()).await);
    let tk = tokens(&t.manager).await;
    let owner = Some(tk.owner.as_str());
    let unknown = uuid::Uuid::new_v4();

    let (s, b) = call(&base, Method::GET, &format!("/v1/leases/{unknown}"), owner, None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{b}"
    );
    let (s, b) = call(&base, Method::GET, "/v1/leases/not-a-uuid", owner, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.to_string().contains("lease id"), "{b}");
    for (body, field) in [
        (json!({"ttl": "8x"}), "ttl"),
        (json!({"ttl": 5}), "ttl"),
        (json!({"bogus": 1}), "bogus"),
        (json!({"template": "huge"}), "template"),
        (json!({"namespace": "Bad Name"}), "namespace"),
        (json!({"labels": {"": "x"}}), "labels"),
        (json!({"ttl": "30d"}), "ttl"),
        (json!({"seed": "default"}), "seed"),
        (json!({"seed": "../etc"}), "seed"),
    ] {
        let (s, b) = call(&base, Method::POST, "/v1/leases", owner, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} -> {b}");
        assert!(
            b["error"]["message"].as_str().unwrap_or("").contains(field),
            "{body} -> {b}"
        );
    }
    // Malformed JSON.
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/leases"))
        .bearer_auth(&tk.owner)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Oversized body.
    let big = json!({"labels": {"k": "v".repeat(100_000)}});
    let (s, _) = call(&base, Method::POST, "/v1/leases", owner, Some(big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);

    let (s, lease) = call(&base, Method::POST, "/v1/leases", owner, Some(json!({}))).await;
    assert_eq!(s, StatusCode::CREATED);
    let path = format!("/v1/leases/{}", lease["id"].as_str().expect("id"));
    let (s, b) = call(
        &base,
        Method::PATCH,
        &path,
        owner,
        Some(json!({"extend_by": "forever"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.to_string().contains("extend_by"), "{b}");
    let (s, b) = call(&base, Method::PATCH, &path, owner, Some(json!({"extend_by": "30d"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "beyond the max lifetime: {b}");
    let (s, _) = call(&base, Method::GET, &path, Some(&tk.other), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&base, Method::GET, &path, Some("stl_wrong"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = call(&base, Method::GET, "/v2/nothing", owner, None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_route"))
    );
    // Nothing above changed the lease.
    let (_, after) = call(&base, Method::GET, &path, owner, None).await;
    assert_eq!(after["expires_at"], lease["expires_at"]);
}

#[tokio::test]
async fn openapi_document_matches_the_routes() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json")).expect("openapi");
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("ops").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let served: BTreeSet<_> = stagelib::api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, served, "docs/openapi.json and api::ROUTES differ");

    // And the router really serves every listed route.
    let db = support::sqlite_db().await;
    let t = manager_on(db.store.clone(), false);
    let base = format!("http://{}", serve_api(t.manager.clone()).await);
    let tk = tokens(&t.manager).await;
    for (m, p) in stagelib::api::ROUTES {
        let path = p.replace("{id}", &uuid::Uuid::new_v4().to_string());
        let method = Method::from_bytes(m.as_bytes()).expect("method");
        let (s, b) = call(&base, method, &path, Some(&tk.admin), Some(json!({"user": "u"}))).await;
        assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{m} {p}");
        assert_ne!(b["error"]["code"].as_str(), Some("no_route"), "{m} {p} is not routed");
    }
}
