//! `stagelib heartbeat ID`: say the lease is still in use.
use super::context::Context;
use super::output;
use crate::lease::LeaseId;

/// Record that the lease is in use; pushes its expiry to at least one
/// heartbeat-extension (default 1h) from now.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The lease ID.
    pub id: LeaseId,
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let lease = ctx.service.heartbeat(&ctx.actor, args.id).await?;
    if ctx.json {
        return output::json(&lease);
    }
    println!("{} expires {}", lease.id, lease.expires_at.to_rfc3339());
    Ok(())
}
