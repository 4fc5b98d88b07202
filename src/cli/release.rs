//! `stagelib release ID`: give the stack back.
use super::context::Context;
use super::output;
use crate::lease::LeaseId;

/// Retire a lease: its stack's services are stopped and their data removed.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The lease ID.
    pub id: LeaseId,
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let lease = ctx.service.release(&ctx.actor, args.id).await?;
    if ctx.json {
        return output::json(&lease);
    }
    println!("{} {}", lease.id, lease.state);
    Ok(())
}
