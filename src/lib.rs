//! stagelib: a library of isolated staging stacks for Mozilla release automation.
//!
//! See `docs/ARCHITECTURE.md` for the map of modules and their invariants.
pub mod api;
pub mod backend;
pub mod cli;
pub mod clients;
pub mod lease;
pub mod manager;
pub mod promote;
pub mod seed;
pub mod services;
pub mod stack;
pub mod store;
pub mod version;
