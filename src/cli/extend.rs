//! `stagelib extend ID --by 4h` (also `--hold` / `--no-hold`).
use super::context::Context;
use super::output;
use crate::lease::LeaseId;
use crate::manager::LeasePatch;

/// Push a lease's expiry back, or hold it up to the maximum lifetime.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The lease ID.
    pub id: LeaseId,
    /// How much longer (e.g. 4h, 1d).
    #[arg(long)]
    pub by: Option<String>,
    /// Keep the lease past its TTL, up to the maximum lifetime.
    #[arg(long, conflicts_with = "no_hold")]
    pub hold: bool,
    /// Stop holding the lease.
    #[arg(long)]
    pub no_hold: bool,
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let hold = match (args.hold, args.no_hold) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    if args.by.is_none() && hold.is_none() {
        return Err(super::usage("give --by DURATION, --hold or --no-hold"));
    }
    let patch = LeasePatch {
        extend_by: args.by,
        hold,
        labels: None,
    };
    let lease = ctx.service.patch(&ctx.actor, args.id, patch).await?;
    if ctx.json {
        return output::json(&lease);
    }
    println!("{} expires {}", lease.id, lease.expires_at.to_rfc3339());
    Ok(())
}
