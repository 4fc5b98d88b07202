//! The Bouncer stand-in: `stagelib service bouncer` — the admin API as
//! bouncerscript uses it (`/api/<route>` with or without a trailing slash) and
//! the download redirector on every other path.
pub mod admin;
pub mod redirector;
pub mod seed;
pub mod state;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::common::{self, CommonArgs, ServeError};

/// Form bodies over 500 KiB are refused, as upstream does.
pub const MAX_FORM_BYTES: usize = 500 * 1024;

/// `stagelib service bouncer`
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where downloads live, scheme included (e.g. `http://127.0.0.1:9000/bucket/pub`);
    /// overrides --http-base/--https-base for every product.
    #[arg(long)]
    pub download_base: Option<String>,
    /// Host and path for plain-HTTP redirects (upstream: download.cdn.mozilla.net/pub).
    #[arg(long, default_value = "download.cdn.mozilla.net/pub")]
    pub http_base: String,
    /// Host and path for HTTPS redirects (SSL-only products or a pinning header).
    #[arg(long, default_value = "download-installer.cdn.mozilla.net/pub")]
    pub https_base: String,
    /// Request header that pins HTTPS when it says `https`.
    #[arg(long, default_value = "X-Forwarded-Proto")]
    pub pin_https_header: String,
    /// Stub-attribution service root; attribution is off without it.
    #[arg(long)]
    pub stub_root_url: Option<String>,
}

/// How redirect URLs are built.
#[derive(Debug, Clone)]
pub struct RedirectConfig {
    pub download_base: Option<String>,
    pub http_base: String,
    pub https_base: String,
    pub pin_https_header: String,
    pub stub_root_url: Option<String>,
}

impl RedirectConfig {
    pub fn http_base(&self) -> String {
        self.download_base
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.http_base))
    }

    pub fn https_base(&self) -> String {
        self.download_base
            .clone()
            .unwrap_or_else(|| format!("https://{}", self.https_base))
    }
}

impl Default for RedirectConfig {
    fn default() -> Self {
        Self {
            download_base: None,
            http_base: "download.cdn.mozilla.net/pub".into(),
            https_base: "download-installer.cdn.mozilla.net/pub".into(),
            pin_https_header: "X-Forwarded-Proto".into(),
            stub_root_url: None,
        }
    }
}

/// One Bouncer: its data, where it persists, its credentials.
#[derive(Clone)]
pub struct Bouncer {
    pub data: Arc<Mutex<state::State>>,
    /// `None`: in memory only (tests).
    pub data_dir: Option<PathBuf>,
    pub user: String,
    /// `None`: no authentication.
    pub secret: Option<String>,
    pub redirect: RedirectConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum BouncerError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    State(#[from] state::StateError),
}

async fn api_get(State(b): State<Bouncer>, Path(route): Path<String>, q: RawQuery) -> Response {
    admin::get_route(State(b), route.trim_end_matches('/').to_string(), q).await
}

async fn api_post(State(b): State<Bouncer>, Path(route): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    admin::post_route(b, route.trim_end_matches('/').to_string(), headers, body).await
}

async fn fallback(State(b): State<Bouncer>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    match uri.query() {
        // The admin app's root answers `Nazgul`; any query is for the redirector.
        None if uri.path() == "/" => "Nazgul".into_response(),
        q => redirector::handle(&b, q.unwrap_or(""), &headers),
    }
}

/// The whole service.
pub fn router(b: Bouncer) -> Router {
    Router::new()
        .route("/api/", get(|| async { "Nazgul API" }))
        .route("/api", get(|| async { "Nazgul API" }))
        .route("/api/{*route}", get(api_get).post(api_post))
        .route("/__stagelib__/import", axum::routing::post(seed::import))
        .route("/__stagelib__/export", get(seed::export))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES * 2))
        .with_state(b)
        .merge(common::dockerflow_routes("bouncer"))
}

pub async fn run(args: Args) -> Result<(), BouncerError> {
    common::ensure_data_dir(&args.common.data_dir)?;
    let data = state::State::load(&args.common.data_dir)?;
    let b = Bouncer {
        data: Arc::new(Mutex::new(data)),
        data_dir: Some(args.common.data_dir.clone()),
        user: args.common.user.clone(),
        secret: args.common.secret.clone(),
        redirect: RedirectConfig {
            download_base: args.download_base.clone(),
            http_base: args.http_base.clone(),
            https_base: args.https_base.clone(),
            pin_https_header: args.pin_https_header.clone(),
            stub_root_url: args.stub_root_url.clone(),
        },
    };
    common::serve(router(b), &args.common, "bouncer").await?;
    Ok(())
}
