//! The stand-in services that make up a stack. Each runs as
//! `stagelib service <name>` (inside a container or as a child process) and
//! exposes an axum router that tests can also mount in-process.
pub mod balrog;
pub mod bouncer;
pub mod common;
pub mod s3;
pub mod shipit;

pub use common::{CommonArgs, ServeError};
