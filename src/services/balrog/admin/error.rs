//! Balrog's error bodies ("problem" JSON, reference balrog.md §5.0).
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::services::balrog::db::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("Invalid Blob: {0}")]
    InvalidBlob(String),
    #[error("OutdatedDataError")]
    Outdated(&'static str),
    #[error("Couldn't update release: Failed to update row, old_data_version doesn't match current data_version")]
    MergeConflict,
    #[error("Signoff Required: {0}")]
    SignoffRequired(String),
    #[error("ChangeScheduledError: {0}")]
    ChangeScheduled(String),
    #[error("Read only: {0}")]
    ReadOnly(String),
    #[error("Permission denied: {0}")]
    Unauthorized(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
}

fn problem(status: StatusCode, title: &str, detail: &str, exception: Option<String>) -> Response {
    let mut body =
        serde_json::json!({"type": "about:blank", "title": title, "detail": detail, "status": status.as_u16()});
    if let Some(e) = exception {
        body["exception"] = e.into();
    }
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let bad = StatusCode::BAD_REQUEST;
        match self {
            Self::NotFound(d) => problem(StatusCode::NOT_FOUND, "Not Found", &d, None),
            Self::BadRequest(d) => problem(bad, "Bad Request", &d, None),
            Self::InvalidBlob(e) => problem(bad, "Bad Request", "Invalid Blob", Some(e)),
            Self::Outdated(method) => problem(
                bad,
                "Bad Request",
                "OutdatedDataError",
                Some(format!(
                    "Couldn't perform the request {method}. Outdated Data Version. old_data_version doesn't match current data_version"
                )),
            ),
            e @ Self::MergeConflict => problem(bad, "Bad Request", &e.to_string(), None),
            Self::SignoffRequired(e) => problem(bad, "Bad Request", "Signoff Required", Some(e)),
            Self::ChangeScheduled(e) => problem(bad, "Bad Request", "ChangeScheduledError", Some(e)),
            Self::ReadOnly(e) => problem(StatusCode::FORBIDDEN, "Forbidden", "Read only", Some(e)),
            Self::Unauthorized(why) => problem(
                StatusCode::UNAUTHORIZED,
                "Forbidden",
                "PermissionDeniedError",
                Some(format!("Permission denied to perform the request. {why}")),
            ),
            Self::Db(e) => {
                tracing::error!(error = %e, "balrog storage failure");
                problem(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", "Internal Server Error", None)
            }
        }
    }
}
