//! Route table and handlers.
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::{ApiError, AppState, Authenticated, MAX_BODY_BYTES};
use crate::lease::{LeaseId, LeaseState, Scope};
use crate::manager::{LeasePatch, LeaseService, ListQuery, Reservation, ReserveRequest};

/// Every route the API serves, as (method, path); `docs/openapi.json` must list
/// exactly these (a test checks it).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("POST", "/v1/leases"),
    ("GET", "/v1/leases"),
    ("GET", "/v1/leases/{id}"),
    ("PATCH", "/v1/leases/{id}"),
    ("DELETE", "/v1/leases/{id}"),
    ("POST", "/v1/leases/{id}/heartbeat"),
    ("GET", "/v1/leases/{id}/endpoints"),
    ("POST", "/v1/reap"),
    ("POST", "/v1/tokens"),
    ("GET", "/v1/queue"),
    ("GET", "/v1/queue/{id}"),
    ("DELETE", "/v1/queue/{id}"),
    ("GET", "/v1/pool"),
];

pub fn build(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/leases", post(reserve).get(list))
        .route("/v1/leases/{id}", get(show).patch(patch).delete(release))
        .route("/v1/leases/{id}/heartbeat", post(heartbeat))
        .route("/v1/leases/{id}/endpoints", get(endpoints))
        .route("/v1/reap", post(reap))
        .route("/v1/tokens", post(create_token))
        .route("/v1/queue", get(queue_list))
        .route("/v1/queue/{id}", get(queue_ticket).delete(queue_cancel))
        .route("/v1/pool", get(pool_status))
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// A JSON body whose rejections become 400s naming the problem.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(JsonRejection::BytesRejection(e)) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "request body rejected: {} (limit {MAX_BODY_BYTES} bytes)",
                    e.body_text()
                ),
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

fn lease_id(raw: &str) -> Result<LeaseId, ApiError> {
    raw.parse()
        .map_err(|e| ApiError::bad_request(format!("invalid lease id `{raw}` in the path: {e}")))
}

async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such route; see docs/openapi.json",
    )
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.manager.store().count_by_state().await {
        Ok(_) => Json(serde_json::json!({"status": "ok", "database": s.manager.store().kind(),
            "backend": s.manager.backend().name()}))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable", "reason": "database unreachable"})),
            )
                .into_response()
        }
    }
}

async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let by_state = s
        .manager
        .store()
        .count_by_state()
        .await
        .map_err(|e| ApiError::from(crate::manager::ManagerError::from(e)))?;
    let text = s.manager.metrics().render(&by_state);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn reserve(
    State(s): State<AppState>,
    Authenticated(actor): Authenticated,
    Body(req): Body<ReserveRequest>,
) -> Result<Response, ApiError> {
    match s.manager.reserve_or_wait(&actor, req).await? {
        Reservation::Leased(lease) => Ok((StatusCode::CREATED, Json(lease)).into_response()),
        Reservation::Queued(ticket) => Ok((StatusCode::ACCEPTED, Json(ticket)).into_response()),
    }
}

fn queue_id(raw: &str) -> Result<&str, ApiError> {
    if raw.len() == 36 && raw.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        Ok(raw)
    } else {
        Err(ApiError::bad_request(format!(
            "invalid queue id `{raw}` in the path: expected the UUID `reserve --wait` printed"
        )))
    }
}

async fn queue_list(State(s): State<AppState>, Authenticated(actor): Authenticated) -> Result<Response, ApiError> {
    Ok(Json(s.manager.queue_list(&actor).await?).into_response())
}

async fn queue_ticket(
    State(s): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.manager.queue_ticket(&actor, queue_id(&id)?).await?).into_response())
}

async fn queue_cancel(
    State(s): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.manager.queue_cancel(&actor, queue_id(&id)?).await?).into_response())
}

async fn pool_status(State(s): State<AppState>, Authenticated(actor): Authenticated) -> Result<Response, ApiError> {
    Ok(Json(s.manager.pool_status(&actor).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(default)]
    all: Option<bool>,
    /// Comma-separated states.
    #[serde(default)]
    state: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    Authenticated(actor): Authenticated,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut states = Vec::new();
    for raw in params.state.iter().flat_map(|s| s.split(',')).filter(|s| !s.is_empty()) {
        let st: LeaseState = raw
            .parse()
            .map_err(|e| ApiError::bad_request(format!("invalid `state`: {e}")))?;
        states.push(st);
    }
    let query = ListQuery {
        all: params.all.unwrap_or(false),
        states,
    };
    Ok(Json(s.manager.list(&actor, query).await?).into_response())
}

async fn show(
    State(s): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.manager.show(&actor, lease_id(&id)?).await?).into_response())
}

async fn patch(
    State(s): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
    Body(patch): Body<LeasePatch>,
) -> Result<Response, ApiError> {
    let id = lease_id(&id)?;
    Ok(Json(s.manager.patch(&actor, id, patch).await?).into_response())
}

async fn release(
    State(s): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.manager.release(&actor, lease_id(&id)?).await?).into_response())
}

async fn heartbeat(
    State(s): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.manager.heartbeat(&actor, lease_id(&id)?).await?).into_response())
}

async fn endpoints(
    State(s): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(s.manager.endpoints(&actor, lease_id(&id)?).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReapParams {
    #[serde(default)]
    dry_run: Option<bool>,
}

async fn reap(
    State(s): State<AppState>,
    Authenticated(actor): Authenticated,
    params: Result<Query<ReapParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    Ok(Json(s.manager.reap(&actor, params.dry_run.unwrap_or(false)).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    user: String,
    #[serde(default)]
    scope: Option<Scope>,
}

async fn create_token(
    State(s): State<AppState>,
    Authenticated(actor): Authenticated,
    Body(req): Body<TokenRequest>,
) -> Result<Response, ApiError> {
    let token = s
        .manager
        .create_token(&actor, &req.user, req.scope.unwrap_or(Scope::User))
        .await?;
    Ok((StatusCode::CREATED, Json(token)).into_response())
}
