//! Bearer-token authentication: the token's SHA-256 is looked up in the store.
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};

use super::{ApiError, AppState};
use crate::lease::Actor;
use crate::manager::hash_token;

/// The authenticated caller of a request.
pub struct Authenticated(pub Actor);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthenticated = |msg: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", msg);
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            unauthenticated("missing `Authorization: Bearer <token>` header (create one with `stagelib token create`)")
        })?;
        let value = value
            .to_str()
            .map_err(|_| unauthenticated("the Authorization header is not valid text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthenticated("the Authorization header must be `Bearer <token>`"))?;
        let record = state
            .manager
            .store()
            .find_token(&hash_token(token))
            .await
            .map_err(|e| ApiError::from(crate::manager::ManagerError::from(e)))?
            .ok_or_else(|| unauthenticated("unknown or revoked token"))?;
        Ok(Self(Actor {
            user: record.user,
            scope: record.scope,
        }))
    }
}
