//! Balrog's admin API as balrogclient and balrogscript use it (reference
//! balrog.md §5), plus the public read API (§6) and a stagelib import path that
//! preserves rule IDs. Routes answer both with and without the `/api` prefix.
mod error;
mod public;
mod releases;
mod rules;
mod scheduled;
mod signoffs;
mod users;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::Value;

pub use error::AdminError;
pub use scheduled::enact_due;

use super::db::BalrogDb;

/// What every admin handler needs.
#[derive(Clone)]
pub struct AdminState {
    pub db: Arc<BalrogDb>,
    /// The stack's secret; `None` accepts any bearer token (upstream's advice for stand-ins).
    pub secret: Option<String>,
    /// The access token `/oauth/token` hands out (derived from the secret).
    pub access_token: Option<String>,
    /// Who writes are attributed to.
    pub user: String,
}

/// The caller of a write: a valid bearer token is required.
pub struct Writer(pub String);

impl FromRequestParts<AdminState> for Writer {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, st: &AdminState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AdminError::Unauthorized("no bearer token"))?;
        if let Some(secret) = &st.secret {
            if token != secret && Some(token) != st.access_token.as_deref() {
                return Err(AdminError::Unauthorized("invalid token"));
            }
        }
        // Several people can sign off in a staging stack by naming themselves.
        let user = parts
            .headers
            .get("X-Stagelib-User")
            .and_then(|v| v.to_str().ok())
            .filter(|u| !u.is_empty() && u.len() <= 100)
            .map(str::to_string)
            .unwrap_or_else(|| st.user.clone());
        Ok(Self(user))
    }
}

/// Parse a JSON request body, naming the problem on failure.
pub fn json_body(body: &Bytes) -> Result<serde_json::Map<String, Value>, AdminError> {
    if body.is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(AdminError::BadRequest("the request body must be a JSON object".into())),
        Err(e) => Err(AdminError::BadRequest(format!("malformed JSON body: {e}"))),
    }
}

/// A JSON field that may be sent as a JSON string (legacy double encoding) or as JSON.
pub fn double_encoded(m: &serde_json::Map<String, Value>, key: &str) -> Result<Option<Value>, AdminError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map(Some)
            .map_err(|e| AdminError::BadRequest(format!("`{key}` is not valid JSON: {e}"))),
        Some(v) => Ok(Some(v.clone())),
    }
}

/// An integer field that may arrive as a number or a numeric string.
pub fn int_field(m: &serde_json::Map<String, Value>, key: &str) -> Result<Option<i64>, AdminError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| AdminError::BadRequest(format!("{key}: {n} is not an integer"))),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            s.trim().parse().map(Some).map_err(|_| {
                AdminError::BadRequest(format!("{key}: '{s}' is not valid under any of the given schemas"))
            })
        }
        Some(other) => Err(AdminError::BadRequest(format!(
            "{key}: {other} is not of type 'integer'"
        ))),
    }
}

/// A JSON answer with `X-Data-Version`.
pub fn versioned(body: Value, data_version: i64) -> Response {
    let mut resp = axum::Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&data_version.to_string()) {
        resp.headers_mut().insert("X-Data-Version", v);
    }
    resp
}

/// The admin routes (mounted at `/` and under `/api`).
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/releases", get(releases::list).post(releases::create))
        .route(
            "/releases/{name}",
            get(releases::get_one)
                .put(releases::replace)
                .post(releases::change)
                .delete(releases::delete),
        )
        .route(
            "/releases/{name}/read_only",
            get(releases::get_read_only).put(releases::set_read_only),
        )
        .route(
            "/releases/{name}/builds/{platform}/{locale}",
            get(releases::get_build).put(releases::put_build),
        )
        .route(
            "/v2/releases/{name}",
            get(releases::v2_get)
                .put(releases::v2_put)
                .post(releases::v2_post)
                .delete(releases::v2_delete),
        )
        .route("/v2/releases/{name}/pinnable", put(public::set_pin))
        .route("/v2/pins/{product}/{channel}/{version}", get(public::get_pin))
        .route("/rules", get(rules::list).post(rules::create))
        .route(
            "/rules/{id}",
            get(rules::get_one)
                .post(rules::update)
                .put(rules::update)
                .delete(rules::delete),
        )
        .route(
            "/scheduled_changes/{object}",
            get(scheduled::list).post(scheduled::create),
        )
        .route(
            "/scheduled_changes/{object}/{sc_id}",
            get(scheduled::get_one)
                .post(scheduled::update)
                .delete(scheduled::delete),
        )
        .route(
            "/scheduled_changes/{object}/{sc_id}/signoffs",
            post(signoffs::sign).delete(signoffs::revoke),
        )
        .route("/scheduled_changes/{object}/{sc_id}/enact", post(scheduled::enact))
        .route(
            "/required_signoffs/product",
            get(signoffs::list_required).post(signoffs::add_required),
        )
        .route(
            "/emergency_shutoff",
            get(public::list_shutoffs).post(public::add_shutoff),
        )
        .route(
            "/emergency_shutoff/{product}/{channel}",
            get(public::get_shutoff).delete(public::delete_shutoff),
        )
        .route("/users", get(users::list))
        .route("/users/{user}/permissions", get(users::permissions))
        .route("/users/{user}/roles", get(users::roles))
        .route(
            "/__stagelib__/import",
            // A whole snapshot in one request (the default one is ~25 MB of JSON).
            post(public::import).layer(axum::extract::DefaultBodyLimit::max(512 << 20)),
        )
        .route("/__stagelib__/namespaces", get(users::namespaces))
        .route("/__stagelib__/namespaces/{ns}", post(users::claim_namespace))
}

/// The public read API under `/api/v1`.
pub fn public_routes() -> Router<AdminState> {
    Router::new()
        .route("/api/v1/rules", get(rules::list))
        .route("/api/v1/rules/{id}", get(rules::get_one))
        .route("/api/v1/releases", get(releases::list))
        .route("/api/v1/releases/{name}", get(releases::get_one))
        .route(
            "/api/v1/releases/{name}/builds/{platform}/{locale}",
            get(releases::get_build),
        )
        .route("/api/v1/emergency_shutoff", get(public::list_shutoffs))
        .route(
            "/api/v1/emergency_shutoff/{product}/{channel}",
            get(public::get_shutoff),
        )
        .route("/api/v1/pins/{product}/{channel}/{version}", get(public::get_pin))
}
