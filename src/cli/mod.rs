//! The command line: one module per subcommand. `main` parses, sets up tracing,
//! runs the command and maps its error to a documented exit code.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod service;

/// A library of isolated staging stacks (Balrog, Bouncer, S3, Ship-it) for
/// Mozilla release automation.
#[derive(Parser, Debug)]
#[command(name = "stagelib", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// Log filter (e.g. `info`, `stagelib=debug`); logs go to stderr.
    #[arg(long, global = true, env = "STAGELIB_LOG", default_value = "warn")]
    pub log: String,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one stand-in service (used inside stack containers and child processes).
    #[command(subcommand)]
    Service(service::ServiceCommand),
}

pub fn init_tracing(global: &Global) {
    let filter = tracing_subscriber::EnvFilter::try_new(&global.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
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

pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Service(cmd) => service::run(cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}
