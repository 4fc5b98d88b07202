//! `stagelib reserve`: check out a stack and print its lease ID.
use std::collections::BTreeMap;
use std::time::Duration;

use super::context::Context;
use super::output;
use crate::lease::{Lease, LeaseState};
use crate::manager::{QueueTicket, Reservation, ReserveRequest};
use crate::store::WaiterState;

/// Check out a staging stack. Prints the lease ID (use it in your Try push).
///
/// Examples:
///   stagelib reserve
///   stagelib reserve --template full --ttl 2d --label try=abc123 --wait
///   stagelib reserve --seed my-snapshot --wait      (from `stagelib snapshot take`)
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `default` (balrog, bouncer, s3) or `full` (adds shipit).
    #[arg(long, default_value = "default")]
    pub template: String,
    /// How long the lease lasts (e.g. 90m, 8h, 2d); the policy default when omitted.
    #[arg(long)]
    pub ttl: Option<String>,
    /// Namespace for channel and bucket names; derived from your user name when omitted.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Keep the lease past its TTL, up to the maximum lifetime.
    #[arg(long)]
    pub hold: bool,
    /// A label KEY=VALUE (repeatable), e.g. a Try revision.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Seed the stack from this snapshot (`stagelib snapshot list`), under the
    /// lease's namespace; the lease is ready once it is seeded.
    #[arg(long, default_value = "default")]
    pub seed: String,
    /// Start from empty services instead of a snapshot.
    #[arg(long)]
    pub no_seed: bool,
    /// Share an existing stack (by stack ID) under your own namespace.
    #[arg(long)]
    pub stack: Option<String>,
    /// Reserve for another user (admin only).
    #[arg(long)]
    pub owner: Option<String>,
    /// Wait until the stack is ready (or failed) before returning. When every
    /// host is full, queue for capacity (first come, first served) and report
    /// the queue position; Ctrl-C leaves the queue.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting (in the queue and for the stack) after this long.
    #[arg(long, default_value = "10m")]
    pub wait_timeout: String,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

pub async fn run(ctx: &Context, args: Args) -> anyhow::Result<Lease> {
    let timeout =
        crate::lease::parse_duration(&args.wait_timeout).map_err(|e| super::usage(format!("--wait-timeout: {e}")))?;
    let req = ReserveRequest {
        owner: args.owner,
        namespace: args.namespace,
        template: Some(args.template),
        ttl: args.ttl,
        hold: args.hold,
        labels: args.labels.into_iter().collect::<BTreeMap<_, _>>(),
        seed: (!args.no_seed).then_some(args.seed),
        stack_id: args.stack,
        wait: args.wait.then(|| args.wait_timeout.clone()),
    };
    let mut lease = match ctx.service.reserve_or_wait(&ctx.actor, req).await? {
        Reservation::Leased(lease) => *lease,
        Reservation::Queued(ticket) => wait_in_queue(ctx, ticket).await?,
    };
    if args.wait && !matches!(lease.state, LeaseState::Ready | LeaseState::Failed) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout.num_seconds().max(1) as u64);
        let mut last = lease.state;
        if !ctx.json {
            eprintln!("lease {}: {}", lease.id, lease.state);
        }
        while matches!(lease.state, LeaseState::Requested | LeaseState::Provisioning) {
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "lease {} is still `{}` after {}; it keeps provisioning (check with `stagelib show {}`)",
                    lease.id,
                    lease.state,
                    args.wait_timeout,
                    lease.id
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            lease = ctx.service.show(&ctx.actor, lease.id).await?.lease;
            if lease.state != last && !ctx.json {
                eprintln!("lease {}: {}", lease.id, lease.state);
                last = lease.state;
            }
        }
    }
    if ctx.json {
        output::json(&lease)?;
    } else {
        println!("{}", lease.id);
        if lease.state == LeaseState::Ready {
            eprintln!(
                "ready: namespace `{}`, expires {}. Next: `stagelib env {}`",
                lease.namespace,
                lease.expires_at.to_rfc3339(),
                lease.id
            );
        }
    }
    if lease.state == LeaseState::Failed {
        anyhow::bail!(
            "lease {} failed: {}",
            lease.id,
            lease.failure_reason.as_deref().unwrap_or("no reason recorded")
        );
    }
    Ok(lease)
}

/// Poll a queued reservation until it is granted (then return its lease) or
/// ends otherwise (then fail with the reason); Ctrl-C leaves the queue.
async fn wait_in_queue(ctx: &Context, mut ticket: QueueTicket) -> anyhow::Result<Lease> {
    let mut last_position = 0;
    loop {
        match ticket.state {
            WaiterState::Granted => {
                let id = ticket
                    .lease_id
                    .ok_or_else(|| anyhow::anyhow!("queue entry {} was granted without a lease", ticket.id))?;
                if !ctx.json {
                    eprintln!("queue {}: granted, lease {id}", ticket.id);
                }
                return Ok(ctx.service.show(&ctx.actor, id).await?.lease);
            }
            WaiterState::Waiting => {
                if ticket.position != last_position && !ctx.json {
                    eprintln!(
                        "queue {}: no free capacity; position {} (waiting until {})",
                        ticket.id,
                        ticket.position,
                        ticket.deadline.to_rfc3339()
                    );
                }
                last_position = ticket.position;
            }
            other => {
                return Err(crate::manager::ManagerError::Unavailable(format!(
                    "queued reservation {} ended `{}`: {}",
                    ticket.id,
                    other.as_str(),
                    ticket.reason.as_deref().unwrap_or("no reason recorded")
                ))
                .into())
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => {
                let t = ctx.service.queue_cancel(&ctx.actor, &ticket.id).await?;
                anyhow::bail!("interrupted: left the queue ({})", t.reason.as_deref().unwrap_or("cancelled"));
            }
        }
        ticket = ctx.service.queue_ticket(&ctx.actor, &ticket.id).await?;
    }
}
