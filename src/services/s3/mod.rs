//! The s3 stand-in: `stagelib service s3`.
//! (Only the Dockerflow endpoints so far; the API lands with its issue.)
use axum::Router;

use super::common::{self, CommonArgs, ServeError};

/// `stagelib service s3`
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The service's router, mountable in-process by tests.
pub fn router() -> Router {
    common::dockerflow_routes("s3")
}

pub async fn run(args: Args) -> Result<(), ServeError> {
    common::ensure_data_dir(&args.common.data_dir)?;
    common::serve(router(), &args.common, "s3").await
}
