//! The public update endpoint (`/update/…/update.xml`): rule matching and
//! response rendering, byte-identical to Balrog (reference balrog.md §2).
mod blob;
mod engine;
mod matching;
pub mod query;
mod render;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

pub use engine::{escape_ampersands, Dice, Engine, EvalError, Evaluation, UpdateConfig};
pub use query::{QueryError, UpdateQuery};

/// Routes of the public update endpoint.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/update/{*rest}", get(update))
        .route("/json/{*rest}", get(json_not_found))
        .route("/robots.txt", get(|| async { "User-agent: *\nDisallow: /\n" }))
        .with_state(engine)
}

fn common_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("public, max-age=90"));
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000;"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = serde_json::json!({"detail": detail, "status": status.as_u16(), "title": title, "type": "about:blank"});
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// Answer one update request.
pub async fn answer(engine: &Engine, rest: &str, raw_query: Option<&str>, user_agent: Option<&str>) -> Response {
    let mut resp = match query::parse(rest, raw_query, user_agent) {
        Err(QueryError::NotFound) => xml_response(&Evaluation {
            rule: None,
            parts: None,
            squash: false,
        }),
        Err(QueryError::BadParameter(detail)) => problem(StatusCode::BAD_REQUEST, "Bad Request", &detail),
        Ok(q) => match engine.evaluate(&q).await {
            Ok(ev) => xml_response(&ev),
            Err(EvalError::BadData(msg)) => {
                (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/plain")], msg).into_response()
            }
            Err(EvalError::Internal(msg)) => {
                tracing::error!(error = %msg, "update query failed");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                    "Internal Server Error",
                )
            }
        },
    };
    common_headers(&mut resp);
    resp
}

fn xml_response(ev: &Evaluation) -> Response {
    let (id, dv) = match ev.rule {
        Some((id, dv)) => (id.to_string(), dv.to_string()),
        None => ("unknown".to_string(), "unknown".to_string()),
    };
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        ev.document(),
    )
        .into_response();
    if let (Ok(id), Ok(dv)) = (HeaderValue::from_str(&id), HeaderValue::from_str(&dv)) {
        resp.headers_mut().insert("Rule-ID", id);
        resp.headers_mut().insert("Rule-Data-Version", dv);
    }
    resp
}

async fn update(State(engine): State<Arc<Engine>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let rest = path.strip_prefix("/update/").unwrap_or("");
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    answer(&engine, rest, uri.query(), ua).await
}

/// `/json/…` serves Mozilla VPN (Guardian) blobs only; nothing here matches.
async fn json_not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// The locale entry of `platform` (aliases followed) in a release blob.
pub fn locale_of(release: &serde_json::Value, platform: &str, locale: &str) -> Option<serde_json::Value> {
    let (_, p) = blob::platform(release, platform)?;
    blob::locale(p, locale).cloned()
}

/// Rule-style channel matching (globs of three or more characters), for the admin side.
pub fn matching_channel(rule_channel: &str, channel: &str) -> bool {
    matching::channel_matches(rule_channel, channel)
}
