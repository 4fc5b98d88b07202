//! The Balrog stand-in: `stagelib service balrog`. One process serves both of
//! Balrog's apps: the public one (`/update/…`, `/api/v1/…`) and the admin API
//! (`/api/<route>` and `/<route>`), plus an Auth0-style `POST /oauth/token` and a
//! built-in agent that enacts due scheduled changes.
pub mod admin;
pub mod db;
pub mod merge;
pub mod rule;
pub mod schema;
pub mod source;
pub mod tls;
pub mod update;
pub mod version;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::common::{self, CommonArgs, ServeError};
use admin::AdminState;
use db::BalrogDb;
use update::{Engine, UpdateConfig};

/// `stagelib service balrog`
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Restrict update URLs to these hosts, as HOST=PRODUCT[,PRODUCT…] (repeatable).
    /// Without it every host is allowed, which suits a staging stack.
    #[arg(long = "allow-host", value_parser = parse_allow)]
    pub allow_hosts: Vec<(String, Vec<String>)>,
    /// URL prefixes that get `force=1` appended when a client forces (repeatable).
    #[arg(long = "force-host", default_value = "http://download.mozilla.org")]
    pub force_hosts: Vec<String>,
    /// How often the agent looks for scheduled changes to enact (e.g. 30s, 1s).
    #[arg(long, default_value = "30s")]
    pub agent_interval: String,
    /// Also serve HTTPS here (self-signed; certificate in `<data-dir>/ca.pem`,
    /// bound address in `<data-dir>/tls-addr`), e.g. for balrogclient's token fetch.
    #[arg(long)]
    pub tls_listen: Option<std::net::SocketAddr>,
}

fn parse_allow(s: &str) -> Result<(String, Vec<String>), String> {
    let (host, products) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not HOST=PRODUCT[,PRODUCT]"))?;
    Ok((host.to_string(), products.split(',').map(str::to_string).collect()))
}

#[derive(Debug, thiserror::Error)]
pub enum BalrogError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("invalid --agent-interval: {0}")]
    Interval(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// The access token `/oauth/token` hands out: derived from the secret, so it
/// survives restarts and needs no storage.
pub fn access_token(secret: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(b"balrog access token");
    hex::encode(mac.finalize().into_bytes())
}

/// Everything a Balrog stand-in serves, over `db`.
pub fn router(db: Arc<BalrogDb>, config: UpdateConfig, secret: Option<String>, user: String) -> Router {
    let engine = Arc::new(Engine::new(
        db.clone(),
        config,
        Arc::new(|| rand::random::<u32>() % 100),
    ));
    let state = AdminState {
        db: db.clone(),
        access_token: secret.as_deref().map(access_token),
        secret,
        user,
    };
    let admin = admin::routes();
    Router::new()
        .merge(update::router(engine))
        .merge(admin::public_routes().with_state(state.clone()))
        .route("/oauth/token", post(oauth_token).with_state(state.clone()))
        .route("/__heartbeat__", get(heartbeat).with_state(state.clone()))
        .nest("/api", admin.clone().with_state(state.clone()))
        .merge(admin.with_state(state))
        .merge(common::version_routes("balrog"))
}

async fn heartbeat(State(st): State<AdminState>) -> Response {
    if st.db.ping().await {
        (StatusCode::OK, st.db.read().await.rules.len().to_string()).into_response()
    } else {
        (StatusCode::BAD_GATEWAY, "Can't connect to the database.").into_response()
    }
}

/// Auth0's client-credentials grant, as balrogclient calls it.
async fn oauth_token(State(st): State<AdminState>, body: axum::body::Bytes) -> Response {
    let m: BTreeMap<String, serde_json::Value> = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": "invalid_request", "error_description": e.to_string()})),
            )
                .into_response()
        }
    };
    let field = |k: &str| m.get(k).and_then(|v| v.as_str()).unwrap_or("");
    if field("grant_type") != "client_credentials" {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let ok = match &st.secret {
        Some(secret) => field("client_id") == st.user && field("client_secret") == secret,
        None => true,
    };
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "access_denied", "error_description": "Unauthorized"})),
        )
            .into_response();
    }
    let token = st.access_token.clone().unwrap_or_else(|| "stagelib-open".into());
    Json(serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 86400, "scope": ""}))
        .into_response()
}

pub async fn run(args: Args) -> Result<(), BalrogError> {
    common::ensure_data_dir(&args.common.data_dir)?;
    let interval = crate::lease::parse_duration(&args.agent_interval)
        .map_err(|e| BalrogError::Interval(e.to_string()))?
        .to_std()
        .unwrap_or(Duration::from_secs(30));
    let db = Arc::new(BalrogDb::open(&args.common.data_dir).await?);
    let config = UpdateConfig {
        special_force_hosts: args.force_hosts.clone(),
        allowlist: if args.allow_hosts.is_empty() {
            None
        } else {
            Some(args.allow_hosts.iter().cloned().collect())
        },
    };
    let agent_db = db.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            let n = admin::enact_due(&agent_db, chrono::Utc::now().timestamp_millis()).await;
            if n > 0 {
                tracing::info!(enacted = n, "agent enacted scheduled changes");
            }
        }
    });
    let app = router(db, config, args.common.secret.clone(), args.common.user.clone());
    if let Some(addr) = args.tls_listen {
        tls::serve(app.clone(), addr, &args.common.data_dir).await?;
    }
    common::serve(app, &args.common, "balrog").await?;
    Ok(())
}
