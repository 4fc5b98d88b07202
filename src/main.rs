//! `stagelib`: one multi-call binary (CLI, manager API, and the stand-in services).
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = stagelib::cli::Cli::parse();
    stagelib::cli::init_tracing(&cli.global);
    stagelib::cli::main(cli)
}
