//! The lease record and its audit trail.
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{LeaseState, Namespace};
use crate::stack::{StackEndpoints, Template};

/// The ID a developer gets from `stagelib reserve` and a Try push references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseId(pub Uuid);

impl LeaseId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

impl Default for LeaseId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for LeaseId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim()).map(Self)
    }
}

/// A lease over a staging stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub id: LeaseId,
    pub owner: String,
    pub namespace: Namespace,
    /// The stack this lease uses; its own (`= id`) unless it shares one.
    pub stack_id: String,
    pub template: Template,
    /// Which snapshot the stack was seeded from.
    pub seed: Option<String>,
    pub state: LeaseState,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// Keep the lease past `expires_at`, up to `created_at + max_ttl`.
    pub hold: bool,
    pub labels: BTreeMap<String, String>,
    /// Set once the stack is provisioned.
    pub endpoints: Option<StackEndpoints>,
    /// Which backend runs the stack (`process`, `docker`).
    pub backend: String,
    /// Which host of the backend runs it (`local` unless several are configured).
    #[serde(default = "local_host")]
    pub host: String,
}

fn local_host() -> String {
    "local".into()
}

/// What the store needs to create a lease in state `requested`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLease {
    pub id: LeaseId,
    pub owner: String,
    pub namespace: Namespace,
    pub stack_id: String,
    pub template: Template,
    pub seed: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub hold: bool,
    pub labels: BTreeMap<String, String>,
    pub backend: String,
}

/// One state change of one lease: who, when, from, to, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub lease_id: LeaseId,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// `None` for the creation event.
    pub from: Option<LeaseState>,
    pub to: LeaseState,
    pub reason: Option<String>,
}
