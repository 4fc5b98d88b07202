//! The bouncer stand-in: `stagelib service bouncer`.
//! (Only the Dockerflow endpoints so far; the API lands with its issue.)
use axum::Router;

use super::common::{self, CommonArgs, ServeError};

/// `stagelib service bouncer`
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The service's router, mountable in-process by tests.
pub fn router() -> Router {
    common::dockerflow_routes("bouncer")
}

pub async fn run(args: Args) -> Result<(), ServeError> {
    common::ensure_data_dir(&args.common.data_dir)?;
    common::serve(router(), &args.common, "bouncer").await
}
