//! The Ship-it stand-in: `stagelib service shipit` — the Ship-it v2 API as
//! shipitscript, shipitapi and the UI use it, with Hawk-authenticated writes
//! (id = `--user`, key = `--secret`) and phases taken from the product list.
//! `--allow-multiple-build-numbers` lifts the build-number rules for staging.
mod api;
pub mod hawk;
pub mod seed;
pub mod state;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Router;

use super::common::{self, CommonArgs, ServeError};

/// `stagelib service shipit`
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Allow any build number for a version, even after it shipped (staging).
    #[arg(long)]
    pub allow_multiple_build_numbers: bool,
}

#[derive(Clone)]
pub struct Shipit {
    pub data: Arc<Mutex<state::State>>,
    /// `None`: in memory only.
    pub data_dir: Option<PathBuf>,
    pub user: String,
    /// `None`: writes need no Hawk header.
    pub secret: Option<String>,
    pub allow_multiple_build_numbers: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ShipitError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    State(#[from] state::StateError),
}

/// A Taskcluster-style task ID for a scheduled phase (there is no Taskcluster here).
pub fn fake_task_id() -> String {
    use base64::Engine;
    let mut b = rand::random::<[u8; 16]>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b[0] &= 0x7f;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub fn router(s: Shipit) -> Router {
    Router::new()
        .route("/releases", get(api::list_releases).post(api::create_release))
        .route(
            "/releases/{name}",
            get(api::get_release)
                .patch(api::update_release)
                .delete(api::update_release),
        )
        .route("/releases/{name}/{phase}", get(api::get_phase).put(api::schedule_phase))
        .route("/signoff/{name}/{phase}", get(api::signoffs).put(api::sign))
        .route("/product-details", axum::routing::post(api::product_details))
        .route("/disabled-products", get(api::disabled_products))
        .route(
            "/versions/{product}/{channel}",
            get(api::get_version).put(api::set_version).post(api::set_version),
        )
        .route("/nightly-release", get(api::list_nightlies).post(api::create_nightly))
        .route("/__stagelib__/import", axum::routing::post(seed::import))
        .with_state(s)
        .merge(common::dockerflow_routes("shipit"))
}

pub async fn run(args: Args) -> Result<(), ShipitError> {
    common::ensure_data_dir(&args.common.data_dir)?;
    let s = Shipit {
        data: Arc::new(Mutex::new(state::State::load(&args.common.data_dir)?)),
        data_dir: Some(args.common.data_dir.clone()),
        user: args.common.user.clone(),
        secret: args.common.secret.clone(),
        allow_multiple_build_numbers: args.allow_multiple_build_numbers,
    };
    common::serve(router(s), &args.common, "shipit").await?;
    Ok(())
}
