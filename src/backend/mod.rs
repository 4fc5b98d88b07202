//! Where stacks run. A backend turns a [`StackSpec`] into running services and
//! reports their endpoints; it can destroy a stack and list what exists.
//!
//! Implementations: [`process`] (child processes of this binary on loopback ports)
//! and `docker` (containers on a private network; the only module importing bollard).
//!
//! Invariants: `provision` is get-or-create (calling it again for the same stack
//! adopts healthy services and replaces dead ones); `destroy` of an absent stack
//! succeeds; everything a backend creates can be found again by `list` after a
//! crash of the manager (pid files, container labels), so nothing is orphaned.
use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::lease::{LeaseId, Namespace};
use crate::stack::{Credentials, ServiceKind, StackEndpoints, Template};

pub mod docker;
pub mod hosts;
pub mod memory;
pub mod process;

/// What to run.
#[derive(Debug, Clone)]
pub struct StackSpec {
    pub stack_id: String,
    pub lease_id: LeaseId,
    pub owner: String,
    pub namespace: Namespace,
    pub template: Template,
    /// One identity + secret per service of the template.
    pub credentials: BTreeMap<ServiceKind, Credentials>,
    /// Which configured host runs it (`None`: the backend's only host).
    pub host: Option<String>,
}

/// Health of one service of a stack, as the backend sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ServiceHealth {
    Running,
    Dead { reason: String },
}

/// One stack the backend has resources for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackStatus {
    pub stack_id: String,
    /// The lease recorded with the stack's resources, if any.
    pub lease_id: Option<LeaseId>,
    pub services: BTreeMap<ServiceKind, ServiceHealth>,
}

impl StackStatus {
    /// The first dead service and why, if any.
    pub fn first_dead(&self) -> Option<(ServiceKind, &str)> {
        self.services.iter().find_map(|(k, h)| match h {
            ServiceHealth::Dead { reason } => Some((*k, reason.as_str())),
            ServiceHealth::Running => None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot start {service} for stack {stack_id}: {reason}")]
    Start {
        stack_id: String,
        service: ServiceKind,
        reason: String,
    },
    #[error("{service} of stack {stack_id} did not become healthy within {secs}s: {detail}")]
    Unhealthy {
        stack_id: String,
        service: ServiceKind,
        secs: u64,
        detail: String,
    },
    #[error("cannot stop stack {stack_id}: {reason}")]
    Stop { stack_id: String, reason: String },
    #[error("backend state directory {path}: {source}")]
    StateDir { path: PathBuf, source: std::io::Error },
    #[error("{title}: {detail}\n  hint: {hint}")]
    Unavailable {
        title: &'static str,
        detail: String,
        hint: &'static str,
    },
    #[error("{0}")]
    Other(String),
}

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// `process` or `docker`.
    fn name(&self) -> &'static str;

    /// Start every service of the template and wait until each answers its
    /// health check; return how to reach them.
    async fn provision(&self, spec: &StackSpec) -> Result<StackEndpoints, BackendError>;

    /// Stop and remove everything the stack has. Succeeds when nothing is left.
    async fn destroy(&self, stack_id: &str) -> Result<(), BackendError>;

    /// Every stack this backend has resources for, with each service's health.
    async fn list(&self) -> Result<Vec<StackStatus>, BackendError>;
}
