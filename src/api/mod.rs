//! The manager's HTTP API under `/v1` (documented in `docs/openapi.json`).
//!
//! Invariants: every handler goes through [`crate::manager::LeaseService`] on the [`Manager`], so
//! the API and the CLI's local mode apply the same rules; client mistakes become
//! 4xx [`ApiError`]s naming the field; internal causes are logged, never sent.
mod auth;
mod error;
mod routes;

use std::sync::Arc;

use axum::Router;

pub use auth::Authenticated;
pub use error::ApiError;
pub use routes::ROUTES;

use crate::manager::Manager;

/// Largest request body accepted (JSON documents are small).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub manager: Arc<Manager>,
}

/// The whole API.
pub fn router(manager: Arc<Manager>) -> Router {
    routes::build(AppState { manager })
}
