//! The balrog stand-in: `stagelib service balrog`.
//! (Only the Dockerflow endpoints so far; the API lands with its issue.)
pub mod rule;
pub mod source;
pub mod update;
pub mod version;

use axum::Router;

use super::common::{self, CommonArgs, ServeError};

/// `stagelib service balrog`
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The service's router, mountable in-process by tests.
pub fn router() -> Router {
    common::dockerflow_routes("balrog")
}

pub async fn run(args: Args) -> Result<(), ServeError> {
    common::ensure_data_dir(&args.common.data_dir)?;
    common::serve(router(), &args.common, "balrog").await
}
