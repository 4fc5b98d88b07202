//! Production data for stacks: the snapshot format, generation, pulling from a
//! production instance or a live stack, and applying a snapshot to a stack under
//! a namespace.
//!
//! Invariant: only [`namespace`] turns a canonical name into a namespaced one;
//! [`rewrite`] is the one place that walks a snapshot to apply it, and every
//! write of seeding goes through it.
pub mod apply;
pub mod generate;
pub mod library;
pub mod mar;
pub mod namespace;
pub mod pull;
pub mod rewrite;
pub mod snapshot;

use std::path::PathBuf;

pub use apply::{seed_stack, seed_stack_with_urls, SeedReport};
pub use library::{LibrarySeeder, SnapshotLibrary};
pub use snapshot::Snapshot;

/// Why a snapshot cannot be read, written, pulled or applied.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("no snapshot named `{name}` (looked in {})", searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound { name: String, searched: Vec<PathBuf> },
    #[error("invalid snapshot: {0}")]
    Invalid(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{service}: {message}")]
    Service { service: &'static str, message: String },
    #[error("namespace check: {0}")]
    Namespace(String),
}

impl SeedError {
    pub(crate) fn service(service: &'static str, e: impl std::fmt::Display) -> Self {
        Self::Service {
            service,
            message: e.to_string(),
        }
    }
}
