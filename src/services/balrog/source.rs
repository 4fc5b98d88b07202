//! What the public update endpoint reads. The admin side implements it over its
//! SQLite database; tests implement it in memory from the fixtures.
use async_trait::async_trait;

use super::rule::Rule;

#[derive(Debug, thiserror::Error)]
#[error("balrog storage: {0}")]
pub struct SourceError(pub String);

/// Read access to Balrog's data, as the update endpoint needs it.
#[async_trait]
pub trait UpdateSource: Send + Sync + 'static {
    /// Every rule (the engine filters them).
    async fn rules(&self) -> Result<Vec<Rule>, SourceError>;
    /// A release blob by name: split tables first, then legacy (reference §1).
    async fn release(&self, name: &str) -> Result<Option<std::sync::Arc<serde_json::Value>>, SourceError>;
    /// The product a release is stored under (its host allowlist applies), if known.
    async fn release_product(&self, name: &str) -> Result<Option<String>, SourceError> {
        let _ = name;
        Ok(None)
    }
    /// Whether updates are shut off for (product, channel) (reference §2.7).
    async fn emergency_shutoff(&self, product: &str, channel: &str) -> Result<bool, SourceError>;
    /// The release pinned for (product, channel, version prefix), if any (reference §2.9).
    async fn pinned_release(&self, product: &str, channel: &str, version: &str) -> Result<Option<String>, SourceError>;
}
