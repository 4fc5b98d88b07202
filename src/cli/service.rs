//! `stagelib service <balrog|bouncer|s3|shipit>`: run one stand-in in the foreground.
use clap::Subcommand;

use crate::services;

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// The Balrog update server and admin API.
    Balrog(services::balrog::Args),
    /// The Bouncer admin API and download redirector.
    Bouncer(services::bouncer::Args),
    /// An S3-compatible object store with production fallback.
    S3(services::s3::Args),
    /// The Ship-it v2 API.
    Shipit(services::shipit::Args),
}

pub async fn run(cmd: ServiceCommand) -> anyhow::Result<()> {
    match cmd {
        ServiceCommand::Balrog(a) => services::balrog::run(a).await?,
        ServiceCommand::Bouncer(a) => services::bouncer::run(a).await?,
        ServiceCommand::S3(a) => services::s3::run(a).await?,
        ServiceCommand::Shipit(a) => services::shipit::run(a).await?,
    }
    Ok(())
}
