//! The public update endpoint (`/update/...`, `/json/...`): rule matching and
//! response rendering, byte-identical to Balrog. (Being written.)
use std::sync::Arc;

use axum::Router;

use super::source::UpdateSource;

/// Routes of the public update endpoint, reading through `source`.
pub fn router(source: Arc<dyn UpdateSource>) -> Router {
    let _ = source;
    Router::new()
}
