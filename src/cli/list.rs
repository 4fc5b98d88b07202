//! `stagelib list`: your leases (or everyone's with --all).
use super::context::Context;
use super::output;
use crate::lease::LeaseState;
use crate::manager::ListQuery;

/// List leases: yours by default, newest first.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Every user's leases (admin).
    #[arg(long)]
    pub all: bool,
    /// Only leases in this state (repeatable): requested, provisioning, ready,
    /// releasing, released, expired, failed.
    #[arg(long = "state")]
    pub states: Vec<LeaseState>,
    /// Only active leases (requested, provisioning, ready, releasing).
    #[arg(long, conflicts_with = "states")]
    pub active: bool,
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let states = if args.active {
        LeaseState::ACTIVE.to_vec()
    } else {
        args.states
    };
    let leases = ctx
        .service
        .list(&ctx.actor, ListQuery { all: args.all, states })
        .await?;
    if ctx.json {
        return output::json(&leases);
    }
    if leases.is_empty() {
        eprintln!("no leases (reserve one with `stagelib reserve`)");
        return Ok(());
    }
    output::table(&output::LEASE_HEADERS, &output::lease_rows(&leases, chrono::Utc::now()));
    Ok(())
}
