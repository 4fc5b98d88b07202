//! `stagelib show ID`: one lease with its history.
use super::context::Context;
use super::output;
use crate::lease::LeaseId;

/// Show one lease: state, expiry, endpoints and its audit trail.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The lease ID.
    pub id: LeaseId,
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let detail = ctx.service.show(&ctx.actor, args.id).await?;
    if ctx.json {
        return output::json(&detail);
    }
    output::lease_detail(&detail.lease, chrono::Utc::now());
    println!("\nhistory:");
    for e in &detail.events {
        let from = e.from.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
        let reason = e.reason.as_deref().map(|r| format!("  ({r})")).unwrap_or_default();
        println!(
            "  {}  {:<12} {} -> {}{}",
            e.at.to_rfc3339(),
            e.actor,
            from,
            e.to,
            reason
        );
    }
    Ok(())
}
