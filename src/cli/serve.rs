//! `stagelib serve`: the HTTP API plus the background reaper.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::config::Settings;
use crate::lease::Actor;
use crate::manager::{LeaseService, Manager};

/// Run the manager: the HTTP API under /v1 and a reaper every --reap-interval.
/// On start it resumes what a previous crash interrupted (provisioning, releases).
/// Several `serve` processes may share one PostgreSQL database (scale-out):
/// each heartbeats, any of them grants the wait queue, refills the pools
/// (`[[pool]]` in the config) and reaps, and the work of one that dies is
/// taken over by the others within 10 s.
///
/// Create the first admin token against the same database:
///   stagelib token create --user admin --scope admin
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on [env: STAGELIB_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long)]
    pub listen: Option<String>,
    /// How often the background reaper runs (0s disables it).
    #[arg(long, default_value = "60s")]
    pub reap_interval: String,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<()> {
    let listen = args.listen.unwrap_or_else(|| settings.listen.clone());
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| super::usage(format!("--listen `{listen}`: {e}")))?;
    let reap_every = if args.reap_interval.trim() == "0s" || args.reap_interval.trim() == "0" {
        None
    } else {
        Some(
            crate::lease::parse_duration(&args.reap_interval)
                .map_err(|e| super::usage(format!("--reap-interval: {e}")))?,
        )
    };
    let manager = super::context::local_manager(&settings, true).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    eprintln!(
        "stagelib serve: listening on http://{bound} (database: {}, backend: {})",
        manager.store().kind(),
        manager.backend().name()
    );

    match manager.recover().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(leases = n, "resuming interrupted work"),
        Err(e) => tracing::error!(error = %e, "recovery failed"),
    }
    // Heartbeats, taking over dead instances' work, the queue, the pools.
    manager.run_background();
    if let Some(every) = reap_every {
        tokio::spawn(reaper(
            Arc::clone(&manager),
            every.to_std().unwrap_or(Duration::from_secs(60)),
        ));
    }

    axum::serve(listener, crate::api::router(Arc::clone(&manager)))
        .with_graceful_shutdown(crate::services::common::shutdown_signal())
        .await
        .context("HTTP server")?;
    eprintln!("stagelib serve: shutting down; waiting for provisioning in flight");
    manager.drain().await;
    Ok(())
}

async fn reaper(manager: Arc<Manager>, every: Duration) {
    let actor = Actor::admin("reaper");
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match manager.reap(&actor, false).await {
            Ok(r) if !r.actions.is_empty() => tracing::info!(actions = r.actions.len(), "reaped"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reaper pass failed"),
        }
    }
}
