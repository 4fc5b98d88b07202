//! The command line: one module per subcommand. `main` parses, sets up tracing,
//! runs the command and maps its error to a documented exit code (README.md).
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod config;
pub mod context;
pub mod demo;
pub mod doctor;
pub mod env;
pub mod extend;
pub mod heartbeat;
pub mod images;
pub mod list;
pub mod output;
pub mod pool;
pub mod promote;
pub mod reap;
pub mod release;
pub mod reserve;
pub mod serve;
pub mod service;
pub mod show;
pub mod snapshot;
pub mod token;

use crate::manager::{ErrorKind, ManagerError};

/// A library of isolated staging stacks (Balrog, Bouncer, S3, Ship-it) for
/// Mozilla release automation.
///
/// Check out a stack, point a Try push at its lease ID, give it back:
///
///   LEASE=$(stagelib reserve --wait)
///   stagelib env $LEASE --format try > try_task_config.json
///   stagelib release $LEASE
///
/// Without --server every command works on the database directly (SQLite under
/// the XDG data dir by default); with --server it calls a running `stagelib serve`.
#[derive(Parser, Debug)]
#[command(name = "stagelib", version, about, verbatim_doc_comment)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// Log filter (e.g. `info`, `stagelib=debug`); logs go to stderr [env: STAGELIB_LOG]
    #[arg(long, global = true, default_value = "warn")]
    pub log: String,
    /// Machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub flags: config::Flags,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Reserve a fresh seeded stack, run promote → push → ship of a beta with three
    /// partials (then a second one that updates from it), print a report, release.
    Demo(demo::Args),
    /// Check out a staging stack; prints the lease ID.
    Reserve(reserve::Args),
    /// List your leases (--all: everyone's).
    List(list::Args),
    /// Show one lease with its history.
    Show(show::Args),
    /// Extend a lease (--by 4h) or hold it.
    Extend(extend::Args),
    /// Say a lease is still in use.
    Heartbeat(heartbeat::Args),
    /// Give a stack back; its services are stopped and removed.
    Release(release::Args),
    /// Print a lease's endpoints and credentials (env, json, yaml, try).
    Env(env::Args),
    /// One cleanup pass: expire stale leases, retire their stacks (for cron).
    Reap(reap::Args),
    /// Run the HTTP API and the background reaper.
    Serve(serve::Args),
    /// The pool of pre-warmed stacks, hosts' capacity and the wait queue.
    #[command(subcommand)]
    Pool(pool::PoolCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Build or list the stack image (Docker backend).
    #[command(subcommand)]
    Images(images::ImagesCommand),
    /// Check the Docker engine, the image, the database and the state directory.
    Doctor,
    /// Run release promotion (promote / push / ship) against a lease's stack.
    Promote(promote::Args),
    /// Production data for stacks: generate, pull, take, seed, list, show.
    ///
    /// Stacks are seeded from the `default` snapshot unless `reserve --seed NAME`
    /// or `--no-seed`; every name is namespaced for the lease (docs/seed-data.md).
    ///
    /// Examples:
    ///   stagelib snapshot list
    ///   stagelib snapshot pull --balrog https://aus-api.mozilla.org --product Firefox \
    ///       --channel beta --channel release --last 4 --name prod-beta
    ///   stagelib snapshot take $LEASE --name before-rc     (then: reserve --seed before-rc)
    ///   stagelib snapshot seed $LEASE --name before-rc     (reset a kept stack)
    ///   stagelib snapshot generate                        (re-create seed-data/default)
    #[command(subcommand, verbatim_doc_comment)]
    #[allow(rustdoc::bare_urls)]
    Snapshot(snapshot::SnapshotCommand),
    /// Run one stand-in service (used inside stack containers and child processes).
    #[command(subcommand)]
    Service(service::ServiceCommand),
}

pub fn init_tracing(global: &Global) {
    let spec = std::env::var("STAGELIB_LOG").unwrap_or_else(|_| global.log.clone());
    let filter =
        tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Exit codes (documented in README.md).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const FORBIDDEN: u8 = 4;
    pub const CONFLICT: u8 = 5;
    pub const UNAVAILABLE: u8 = 6;
}

/// A mistake in the command line that clap could not catch.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// The exit code for an error.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<UsageError>().is_some() || e.downcast_ref::<config::ConfigError>().is_some() {
        return exit::USAGE;
    }
    match e.downcast_ref::<ManagerError>().map(ManagerError::kind) {
        Some(ErrorKind::Invalid) => exit::USAGE,
        Some(ErrorKind::NotFound) => exit::NOT_FOUND,
        Some(ErrorKind::Forbidden | ErrorKind::Unauthenticated) => exit::FORBIDDEN,
        Some(ErrorKind::Conflict) => exit::CONFLICT,
        Some(ErrorKind::Unavailable) => exit::UNAVAILABLE,
        Some(ErrorKind::Internal) | None => exit::ERROR,
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.global.json;
    let settings =
        || config::Settings::resolve(&cli.global.flags, &|k| std::env::var(k).ok()).map_err(anyhow::Error::new);
    match cli.command {
        Command::Service(cmd) => service::run(cmd).await,
        Command::Serve(args) => serve::run(settings()?, args).await,
        Command::Images(cmd) => images::run(cmd, json).await,
        Command::Doctor => doctor::run(&settings()?, json).await,
        Command::Snapshot(cmd) => snapshot::run(settings()?, json, cmd).await,
        cmd => {
            let ctx = context::Context::build(settings()?, json).await?;
            match cmd {
                Command::Demo(a) => demo::run(&ctx, a).await,
                Command::Reserve(a) => reserve::run(&ctx, a).await.map(|_| ()),
                Command::List(a) => list::run(&ctx, a).await,
                Command::Show(a) => show::run(&ctx, a).await,
                Command::Extend(a) => extend::run(&ctx, a).await,
                Command::Heartbeat(a) => heartbeat::run(&ctx, a).await,
                Command::Release(a) => release::run(&ctx, a).await,
                Command::Env(a) => env::run(&ctx, a).await,
                Command::Reap(a) => reap::run(&ctx, a).await,
                Command::Pool(c) => pool::run(&ctx, c).await,
                Command::Token(c) => token::run(&ctx, c).await,
                Command::Promote(a) => promote::run(&ctx, a).await,
                Command::Service(_)
                | Command::Serve(_)
                | Command::Images(_)
                | Command::Doctor
                | Command::Snapshot(_) => Ok(()),
            }
        }
    }
}

pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}
