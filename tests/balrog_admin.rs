//! Balrog's admin API in-process: optimistic locking and merges with Balrog's
//! status codes, rule validation naming the field, scheduled changes with
//! signoffs enacted by the agent, emergency shutoff, auth, blob validation.
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{json, Value};
use stagelib::services::balrog::db::BalrogDb;
use stagelib::services::balrog::update::UpdateConfig;
use stagelib::services::balrog::{admin, router};
use tower::ServiceExt;

const TOKEN: &str = "sekrit";

struct Balrog {
    app: axum::Router,
    db: Arc<BalrogDb>,
    _dir: tempfile::TempDir,
}

async fn balrog() -> Balrog {
    let dir = tempfile::tempdir().expect("tmp");
    let db = Arc::new(BalrogDb::open(dir.path()).await.expect("db"));
    let app = router(db.clone(), UpdateConfig::default(), Some(TOKEN.into()), "ffxbld".into());
    Balrog { app, db, _dir: dir }
}

impl Balrog {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        user: Option<&str>,
    ) -> (u16, Value, Option<i64>) {
        let mut req = Request::builder().method(method).uri(path);
        req = req.header("Authorization", format!("Bearer {TOKEN}"));
        if let Some(u) = user {
            req = req.header("X-Stagelib-User", u);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("response");
        let status = resp.status().as_u16();
        let dv = resp
            .headers()
            .get("X-Data-Version")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
        let text = String::from_utf8_lossy(&bytes).to_string();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), dv)
    }
}

fn build(locale_id: u32) -> Value {
    json!({"buildID": format!("2025010100000{locale_id}"), "appVersion": "140.0", "displayVersion": "140.0",
           "completes": [{"from": "*", "filesize": 10 + locale_id, "hashValue": "ab"}]})
}

#[tokio::test]
async fn legacy_release_writes_lock_and_merge() {
    let b = balrog().await;
    let name = "Firefox-140.0-build1";
    // Implicit create through POST: 201 and version 2.
    let top = json!({"appVersion": "140.0", "displayVersion": "140.0"});
    let (s, body, _) = b
        .call(
            Method::POST,
            &format!("/api/releases/{name}"),
            Some(json!({"product": "Firefox", "data": top.to_string(), "schema_version": 9, "hashFunction": "sha512"})),
            None,
        )
        .await;
    assert_eq!((s, body["new_data_version"].as_i64()), (201, Some(2)), "{body}");
    // Existing release without data_version: 400.
    let (s, body, _) = b
        .call(
            Method::POST,
            &format!("/api/releases/{name}"),
            Some(json!({"product": "Firefox", "data": "{}"})),
            None,
        )
        .await;
    assert_eq!(s, 400, "{body}");
    // Two builds submitted against the same (stale for the second) version merge.
    for (i, locale) in ["de", "fr"].iter().enumerate() {
        let (s, body, _) = b
            .call(Method::PUT, &format!("/api/releases/{name}/builds/p/{locale}"),
                  Some(json!({"product": "Firefox", "data": build(i as u32).to_string(), "schema_version": 9, "data_version": 2})), None)
            .await;
        assert_eq!(s, 201, "{locale}: {body}");
    }
    let (s, blob, dv) = b.call(Method::GET, &format!("/api/releases/{name}"), None, None).await;
    assert_eq!(s, 200);
    assert_eq!(dv, Some(4));
    assert_eq!(
        blob["platforms"]["p"]["locales"].as_object().expect("locales").len(),
        2,
        "{blob}"
    );
    // Changing the same locale differently from a stale version conflicts: 400.
    let (s, _, _) = b
        .call(
            Method::PUT,
            &format!("/api/releases/{name}/builds/p/de"),
            Some(json!({"product": "Firefox", "data": build(7).to_string(), "schema_version": 9, "data_version": 4})),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, body, _) = b
        .call(
            Method::PUT,
            &format!("/api/releases/{name}/builds/p/de"),
            Some(json!({"product": "Firefox", "data": build(8).to_string(), "schema_version": 9, "data_version": 4})),
            None,
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("old_data_version"),
        "{body}"
    );
    // A data_version that never existed: OutdatedDataError.
    let (s, body, _) = b
        .call(
            Method::POST,
            &format!("/api/releases/{name}"),
            Some(json!({"product": "Firefox", "data": "{}", "data_version": 99})),
            None,
        )
        .await;
    assert_eq!((s, body["detail"].as_str()), (400, Some("OutdatedDataError")), "{body}");
    // Wrong product is refused and nothing changes.
    let (s, _, _) = b
        .call(
            Method::POST,
            &format!("/api/releases/{name}"),
            Some(json!({"product": "Thunderbird", "data": "{}", "data_version": 5})),
            None,
        )
        .await;
    assert_eq!(s, 400);
    let (_, _, dv) = b.call(Method::GET, &format!("/api/releases/{name}"), None, None).await;
    assert_eq!(dv, Some(5));
}

#[tokio::test]
async fn invalid_blobs_are_rejected_with_the_field_named_and_fixtures_accepted() {
    let b = balrog().await;
    let bad = json!({"name": "r", "schema_version": 9, "platforms": {"p": {"locales": {"de": {"completes": [{"from": "*", "hashValue": "x"}]}}}}});
    let (s, body, _) = b
        .call(
            Method::PUT,
            "/api/releases/r",
            Some(json!({"name": "r", "product": "Firefox", "blob": bad.to_string()})),
            None,
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(body["detail"], "Invalid Blob");
    assert!(
        body["exception"]
            .as_str()
            .unwrap_or("")
            .contains(".platforms.p.locales.de.completes[0].filesize"),
        "{body}"
    );
    let (s, _, _) = b.call(Method::GET, "/api/releases/r", None, None).await;
    assert_eq!(s, 404, "nothing stored");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/balrog/blobs");
    let mut n = 0;
    for f in std::fs::read_dir(dir).expect("blobs").flatten() {
        let blob: Value = serde_json::from_str(&std::fs::read_to_string(f.path()).expect("read")).expect("json");
        let name = blob["name"].as_str().expect("name").to_string();
        let (s, body, _) = b
            .call(
                Method::PUT,
                &format!("/api/releases/{}", name.replace(' ', "%20")),
                Some(json!({"name": name, "product": "Firefox", "blob": blob.to_string()})),
                None,
            )
            .await;
        assert_eq!(s, 201, "{}: {body}", f.path().display());
        n += 1;
    }
    assert_eq!(n, 10, "every fixture blob");
}

#[tokio::test]
async fn rules_validate_each_field() {
    let b = balrog().await;
    b.call(
        Method::PUT,
        "/api/releases/r1",
        Some(
            json!({"name": "r1", "product": "Firefox", "blob": json!({"name": "r1", "schema_version": 9}).to_string()}),
        ),
        None,
    )
    .await;
    for (rule, field) in [
        (
            json!({"backgroundRate": 100, "priority": 1, "mapping": "r1"}),
            "update_type",
        ),
        (
            json!({"update_type": "minor", "backgroundRate": 101, "priority": 1, "mapping": "r1"}),
            "backgroundRate",
        ),
        (
            json!({"update_type": "sideways", "backgroundRate": 1, "priority": 1, "mapping": "r1"}),
            "update_type",
        ),
        (
            json!({"update_type": "minor", "backgroundRate": 1, "priority": 1, "mapping": "nope"}),
            "mapping",
        ),
        (
            json!({"update_type": "minor", "backgroundRate": 1, "priority": "high", "mapping": "r1"}),
            "priority",
        ),
        (
            json!({"update_type": "minor", "backgroundRate": 1, "priority": 1, "mapping": "r1", "version": "62.0b3"}),
            "version",
        ),
        (
            json!({"update_type": "minor", "backgroundRate": 1, "priority": 1, "mapping": "r1", "alias": "9x"}),
            "alias",
        ),
    ] {
        let (s, body, _) = b.call(Method::POST, "/api/rules", Some(rule.clone()), None).await;
        assert_eq!(s, 400, "{rule}");
        assert!(body.to_string().contains(field), "{rule} -> {body}");
    }
    let (s, id, _) = b
        .call(Method::POST, "/api/rules",
              Some(json!({"update_type": "minor", "backgroundRate": "100", "priority": 5, "mapping": "r1", "channel": " beta ", "locale": "de, fr"})), None)
        .await;
    assert_eq!(s, 200);
    let id = id.as_i64().expect("rule id as bare text");
    let (_, rule, dv) = b.call(Method::GET, &format!("/api/rules/{id}"), None, None).await;
    assert_eq!(
        (rule["channel"].as_str(), rule["locale"].as_str(), dv),
        (Some("beta"), Some("de,fr"), Some(1))
    );
    assert_eq!(rule.as_object().expect("rule").len(), 23, "all 23 keys");
    let (s, _, _) = b
        .call(
            Method::POST,
            &format!("/api/rules/{id}"),
            Some(json!({"priority": 6, "data_version": 7})),
            None,
        )
        .await;
    assert_eq!(s, 400, "stale data_version");
    let (s, body, _) = b
        .call(
            Method::POST,
            &format!("/api/rules/{id}"),
            Some(json!({"priority": 6, "data_version": 1})),
            None,
        )
        .await;
    assert_eq!((s, body["new_data_version"].as_i64()), (200, Some(2)));
}

#[tokio::test]
async fn scheduled_change_needs_signoffs_then_the_agent_enacts_it() {
    let b = balrog().await;
    for n in ["r1", "r2"] {
        b.call(
            Method::PUT,
            &format!("/api/releases/{n}"),
            Some(json!({"name": n, "product": "Firefox", "blob": json!({"name": n, "schema_version": 9}).to_string()})),
            None,
        )
        .await;
    }
    let (_, id, _) = b
        .call(Method::POST, "/api/rules", Some(json!({"update_type": "minor", "backgroundRate": 100, "priority": 5, "mapping": "r1", "product": "Firefox", "channel": "release"})), None)
        .await;
    let id = id.as_i64().expect("id");
    let (s, _, _) = b
        .call(
            Method::POST,
            "/api/required_signoffs/product",
            Some(json!({"product": "Firefox", "channel": "release", "role": "releng", "signoffs_required": 2})),
            None,
        )
        .await;
    assert_eq!(s, 201);
    // A direct change is now refused.
    let (s, body, _) = b
        .call(
            Method::POST,
            &format!("/api/rules/{id}"),
            Some(json!({"mapping": "r2", "data_version": 1})),
            None,
        )
        .await;
    assert_eq!((s, body["detail"].as_str()), (400, Some("Signoff Required")));
    let when = chrono::Utc::now().timestamp_millis() + 60_000;
    let (s, sc, _) = b
        .call(Method::POST, "/api/scheduled_changes/rules",
              Some(json!({"change_type": "update", "rule_id": id, "data_version": 1, "mapping": "r2", "when": when, "data_verison": 1})), None)
        .await;
    assert_eq!(s, 200, "{sc}");
    let sc_id = sc["sc_id"].as_i64().expect("sc_id");
    let (s, body, _) = b
        .call(
            Method::POST,
            &format!("/api/scheduled_changes/rules/{sc_id}/enact"),
            None,
            None,
        )
        .await;
    assert_eq!((s, body["detail"].as_str()), (400, Some("Signoff Required")));
    for user in ["alice", "bob"] {
        let (s, _, _) = b
            .call(
                Method::POST,
                &format!("/api/scheduled_changes/rules/{sc_id}/signoffs"),
                Some(json!({"role": "releng"})),
                Some(user),
            )
            .await;
        assert_eq!(s, 200);
    }
    let (_, listed, _) = b.call(Method::GET, "/api/scheduled_changes/rules", None, None).await;
    assert_eq!(listed["scheduled_changes"][0]["required_signoffs"]["releng"], 2);
    assert_eq!(listed["scheduled_changes"][0]["signoffs"]["alice"], "releng");
    // Not yet due: the agent waits.
    assert_eq!(admin::enact_due(&b.db, when - 1).await, 0);
    assert_eq!(admin::enact_due(&b.db, when).await, 1);
    let (_, rule, dv) = b.call(Method::GET, &format!("/api/rules/{id}"), None, None).await;
    assert_eq!((rule["mapping"].as_str(), dv), (Some("r2"), Some(2)));
    let (_, listed, _) = b.call(Method::GET, "/api/scheduled_changes/rules", None, None).await;
    assert_eq!(listed["count"], 0, "completed changes are not listed by default");
    let (_, listed, _) = b
        .call(Method::GET, "/api/scheduled_changes/rules?all=1", None, None)
        .await;
    assert_eq!(listed["scheduled_changes"][0]["complete"], true);
    let (s, _, _) = b
        .call(
            Method::POST,
            "/api/scheduled_changes/rules",
            Some(json!({"change_type": "update", "rule_id": id, "data_version": 2, "when": 1000})),
            None,
        )
        .await;
    assert_eq!(s, 400, "in the past");
}

#[tokio::test]
async fn emergency_shutoff_and_auth() {
    let b = balrog().await;
    let blob = json!({"name": "r", "schema_version": 1, "appv": "2.0", "extv": "2.0", "hashFunction": "sha512",
        "platforms": {"p": {"buildID": "2", "locales": {"l": {"complete": {"filesize": "3", "from": "*", "hashValue": "4", "fileUrl": "http://a.com/z"}}}}}});
    b.call(
        Method::PUT,
        "/api/releases/r",
        Some(json!({"name": "r", "product": "b", "blob": blob.to_string()})),
        None,
    )
    .await;
    b.call(
        Method::POST,
        "/api/rules",
        Some(json!({"update_type": "minor", "backgroundRate": 100, "priority": 5, "mapping": "r", "product": "b"})),
        None,
    )
    .await;
    let (_, xml, _) = b
        .call(Method::GET, "/update/3/b/1.0/1/p/l/a/a/a/a/update.xml", None, None)
        .await;
    assert!(xml.as_str().unwrap_or("").contains("<patch"), "{xml}");
    let (s, _, _) = b
        .call(
            Method::POST,
            "/api/emergency_shutoff",
            Some(json!({"product": "b", "channel": "a"})),
            None,
        )
        .await;
    assert_eq!(s, 201);
    let (_, xml, _) = b
        .call(Method::GET, "/update/3/b/1.0/1/p/l/a/a/a/a/update.xml", None, None)
        .await;
    assert!(!xml.as_str().unwrap_or("").contains("<patch"), "shut off: {xml}");
    let (s, _, _) = b
        .call(Method::DELETE, "/api/emergency_shutoff/b/a?data_version=1", None, None)
        .await;
    assert_eq!(s, 200);

    // Writes without or with a wrong token: 401, and nothing changes.
    for auth in [None, Some("Bearer nope")] {
        let mut req = Request::builder().method(Method::DELETE).uri("/api/releases/r");
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = b
            .app
            .clone()
            .oneshot(req.body(Body::empty()).expect("req"))
            .await
            .expect("resp");
        assert_eq!(resp.status().as_u16(), 401);
    }
    let (s, _, _) = b.call(Method::GET, "/api/releases/r", None, None).await;
    assert_eq!(s, 200);
    // The token from /oauth/token works for writes.
    let req = Request::post("/oauth/token")
        .body(Body::from(
            json!({"client_id": "ffxbld", "client_secret": TOKEN, "audience": "x", "grant_type": "client_credentials"})
                .to_string(),
        ))
        .expect("req");
    let resp = b.app.clone().oneshot(req).await.expect("resp");
    let tok: Value =
        serde_json::from_slice(&axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("b")).expect("json");
    assert!(tok["expires_in"].as_i64().is_some());
    let req = Request::post("/api/emergency_shutoff")
        .header(
            "Authorization",
            format!("Bearer {}", tok["access_token"].as_str().expect("token")),
        )
        .body(Body::from(json!({"product": "b", "channel": "z"}).to_string()))
        .expect("req");
    assert_eq!(b.app.clone().oneshot(req).await.expect("resp").status().as_u16(), 201);
    // Public read API.
    let (s, rules, _) = b.call(Method::GET, "/api/v1/rules", None, None).await;
    assert_eq!((s, rules["count"].as_i64()), (200, Some(1)));
    let (s, _, dv) = b.call(Method::GET, "/api/v1/releases/r", None, None).await;
    assert_eq!((s, dv), (200, Some(1)));
}

#[tokio::test]
async fn malformed_json_is_a_clear_400() {
    let b = balrog().await;
    let req = Request::post("/api/rules")
        .header("Authorization", format!("Bearer {TOKEN}"))
        .body(Body::from("{not json"))
        .expect("req");
    let resp = b.app.clone().oneshot(req).await.expect("resp");
    assert_eq!(resp.status().as_u16(), 400);
    let (s, body, _) = b
        .call(
            Method::PUT,
            "/api/releases/r",
            Some(json!({"name": "r", "product": "Firefox", "blob": "{broken"})),
            None,
        )
        .await;
    assert_eq!(s, 400);
    assert!(body["detail"].as_str().unwrap_or("").contains("blob"), "{body}");
}
