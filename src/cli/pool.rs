//! `stagelib pool status`: the pre-warmed stacks, hosts' capacity, the wait
//! queue and the manager instances.
use super::context::Context;
use super::output;

#[derive(clap::Subcommand, Debug)]
pub enum PoolCommand {
    /// Show each pool (ready / warming / wanted), each host's capacity and use,
    /// who waits in the queue, and which `serve` instances are alive.
    ///
    /// Pools are configured in the config file, e.g.
    ///   [[pool]]
    ///   template = "full"
    ///   seed = "default"
    ///   min_ready = 2
    ///   max_age = "12h"
    /// and filled by `stagelib serve`.
    #[command(verbatim_doc_comment)]
    #[allow(rustdoc::broken_intra_doc_links)]
    Status,
}

pub async fn run(ctx: &Context, cmd: PoolCommand) -> anyhow::Result<()> {
    match cmd {
        PoolCommand::Status => {
            let status = ctx.service.pool_status(&ctx.actor).await?;
            let queue = ctx.service.queue_list(&ctx.actor).await?;
            if ctx.json {
                return output::json(&serde_json::json!({"pool": status, "queue": queue}));
            }
            if status.pools.is_empty() {
                println!("pools: none configured ([[pool]] in the config file)");
            }
            for p in &status.pools {
                println!(
                    "pool {:<8} seed {:<10} ready {}/{} warming {} (max age {}s)",
                    p.template,
                    p.seed.as_deref().unwrap_or("none"),
                    p.ready,
                    p.min_ready,
                    p.warming,
                    p.max_age_secs
                );
            }
            for h in &status.hosts {
                let cap = h.capacity.map_or("unlimited".to_string(), |c| c.to_string());
                println!("host {:<12} {} of {cap} stacks in use", h.name, h.used);
            }
            println!("queue: {} waiting", status.waiting);
            for t in &queue {
                println!(
                    "  #{} {} ({}) waiting since {}, until {}",
                    t.position,
                    t.id,
                    t.owner,
                    t.created_at.to_rfc3339(),
                    t.deadline.to_rfc3339()
                );
            }
            for i in &status.instances {
                println!(
                    "instance {} on {} pid {}: {} (last heartbeat {})",
                    i.id,
                    i.host,
                    i.pid,
                    if i.alive { "alive" } else { "silent" },
                    i.heartbeat_at.to_rfc3339()
                );
            }
            Ok(())
        }
    }
}
