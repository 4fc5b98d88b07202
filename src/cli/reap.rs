//! `stagelib reap`: one cleanup pass, for cron.
use super::context::Context;
use super::output;
use crate::manager::ReapAction;

/// Expire stale leases and retire their stacks; fail leases whose services died;
/// remove stacks no live lease owns. Meant for cron, e.g. `*/5 * * * * stagelib reap`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only report what would be done.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let report = ctx.service.reap(&ctx.actor, args.dry_run).await?;
    if ctx.json {
        return output::json(&report);
    }
    let verb = if report.dry_run { "would " } else { "" };
    for a in &report.actions {
        match a {
            ReapAction::Expired { lease_id, owner } => println!("{verb}expire {lease_id} ({owner})"),
            ReapAction::Failed { lease_id, reason } => println!("{verb}fail {lease_id}: {reason}"),
            ReapAction::OrphanSeen { stack_id } => {
                println!("orphan stack {stack_id}: seen once, removed if the next pass sees it again")
            }
            ReapAction::OrphanRemoved { stack_id } => println!("{verb}remove orphan stack {stack_id}"),
        }
    }
    eprintln!(
        "{} action(s){}",
        report.actions.len(),
        if report.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    Ok(())
}
