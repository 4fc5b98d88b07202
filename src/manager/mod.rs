//! The service layer: every lease operation, shared by the CLI (local mode) and the
//! HTTP API. It applies the access rules and the policy of `lease`, persists through
//! `store`, and drives the `backend`.
//!
//! Invariants: every state change goes through `Store::transition` (a compare-and-swap);
//! a stack is provisioned only for a lease that exists in the store first, so the
//! reaper can always tell an orphan from a stack in the making; stack secrets are
//! derived from the manager key and the stack ID, so re-provisioning after a crash
//! produces the same credentials.
mod clock;
mod error;
mod keys;
mod metrics;
mod ops;
mod pool;
mod provision;
mod queue;
mod reap;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{ErrorKind, ManagerError};
pub use keys::ManagerKey;
pub use metrics::Metrics;
pub use ops::hash_token;
pub use pool::{HostView, InstanceView, PoolConfig, PoolStatus, PoolView, INSTANCE_BEAT, INSTANCE_DEAD_AFTER};
pub use queue::{QueueTicket, Reservation};
pub use reap::{ReapAction, ReapReport};

use crate::backend::Backend;
use crate::lease::{Actor, AuditEvent, Lease, LeaseId, LeaseState, Policy};
use crate::stack::StackEndpoints;
use crate::store::Store;

/// Puts production data into a freshly provisioned stack (implemented by
/// `seed::LibrarySeeder`). A lease is `ready` only once this succeeded.
#[async_trait::async_trait]
pub trait Seeder: Send + Sync {
    /// Whether a snapshot of this name exists (checked when reserving).
    fn exists(&self, snapshot: &str) -> bool;
    /// Load `snapshot` ahead of time (the pool does this while warming a stack).
    async fn prepare(&self, _snapshot: &str) -> Result<(), String> {
        Ok(())
    }
    /// Seed `snapshot` into the stack at `endpoints` for `namespace`; returns a
    /// one-line summary, or why it failed.
    async fn seed(
        &self,
        snapshot: &str,
        endpoints: &StackEndpoints,
        namespace: &crate::lease::Namespace,
    ) -> Result<String, String>;
}

/// What `reserve` asks for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    /// Reserve on behalf of another user (admin only).
    #[serde(default)]
    pub owner: Option<String>,
    /// Namespace; derived from the owner when absent.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `default` (balrog, bouncer, s3) or `full` (adds shipit).
    #[serde(default)]
    pub template: Option<String>,
    /// e.g. `8h`; the policy's default TTL when absent.
    #[serde(default)]
    pub ttl: Option<String>,
    #[serde(default)]
    pub hold: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Snapshot to seed the stack from.
    #[serde(default)]
    pub seed: Option<String>,
    /// Join an existing stack (shared by namespace) instead of creating one.
    #[serde(default)]
    pub stack_id: Option<String>,
    /// When every host is full, wait in the queue up to this long (e.g. `10m`)
    /// instead of failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
}

/// What `PATCH /v1/leases/{id}` may change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeasePatch {
    /// Push the expiry back by this much (e.g. `4h`).
    #[serde(default)]
    pub extend_by: Option<String>,
    #[serde(default)]
    pub hold: Option<bool>,
    /// Replace the labels.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A lease with its audit trail.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseDetail {
    #[serde(flatten)]
    pub lease: Lease,
    pub events: Vec<AuditEvent>,
}

/// What a Try push gets for a lease ID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseEndpoints {
    pub lease_id: LeaseId,
    pub state: LeaseState,
    pub namespace: String,
    pub owner: String,
    pub endpoints: StackEndpoints,
}

/// A newly created API token; the secret is shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewToken {
    pub id: String,
    pub user: String,
    pub scope: crate::lease::Scope,
    pub token: String,
}

/// Which leases `list` returns.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListQuery {
    /// Every user's leases (admin only).
    #[serde(default)]
    pub all: bool,
    /// Only these states (empty: all).
    #[serde(default)]
    pub states: Vec<LeaseState>,
}

/// The operations of the lease library. Implemented by [`Manager`] (local, over the
/// store) and by `clients::manager::RemoteManager` (over the HTTP API), so the CLI
/// behaves the same either way.
#[async_trait::async_trait]
pub trait LeaseService: Send + Sync {
    /// Reserve now, or fail when there is no capacity (even with `req.wait`).
    async fn reserve(&self, actor: &Actor, req: ReserveRequest) -> Result<Lease, ManagerError> {
        match self.reserve_or_wait(actor, req).await? {
            Reservation::Leased(lease) => Ok(*lease),
            Reservation::Queued(t) => Err(ManagerError::Unavailable(format!(
                "no capacity: queued as {} at position {}",
                t.id, t.position
            ))),
        }
    }
    /// Reserve; with `req.wait` set and no capacity, join the wait queue.
    async fn reserve_or_wait(&self, actor: &Actor, req: ReserveRequest) -> Result<Reservation, ManagerError>;
    /// A queued reservation (polling it keeps it in the queue).
    async fn queue_ticket(&self, actor: &Actor, id: &str) -> Result<QueueTicket, ManagerError>;
    async fn queue_cancel(&self, actor: &Actor, id: &str) -> Result<QueueTicket, ManagerError>;
    async fn queue_list(&self, actor: &Actor) -> Result<Vec<QueueTicket>, ManagerError>;
    async fn pool_status(&self, actor: &Actor) -> Result<PoolStatus, ManagerError>;
    async fn list(&self, actor: &Actor, query: ListQuery) -> Result<Vec<Lease>, ManagerError>;
    async fn show(&self, actor: &Actor, id: LeaseId) -> Result<LeaseDetail, ManagerError>;
    async fn patch(&self, actor: &Actor, id: LeaseId, patch: LeasePatch) -> Result<Lease, ManagerError>;
    async fn heartbeat(&self, actor: &Actor, id: LeaseId) -> Result<Lease, ManagerError>;
    async fn release(&self, actor: &Actor, id: LeaseId) -> Result<Lease, ManagerError>;
    async fn endpoints(&self, actor: &Actor, id: LeaseId) -> Result<LeaseEndpoints, ManagerError>;
    async fn reap(&self, actor: &Actor, dry_run: bool) -> Result<ReapReport, ManagerError>;
    async fn create_token(
        &self,
        actor: &Actor,
        user: &str,
        scope: crate::lease::Scope,
    ) -> Result<NewToken, ManagerError>;
}

/// The local implementation of [`LeaseService`].
pub struct Manager {
    store: Arc<dyn Store>,
    backend: Arc<dyn Backend>,
    clock: Arc<dyn Clock>,
    policy: Policy,
    key: ManagerKey,
    metrics: Arc<Metrics>,
    /// Provision in the background (`serve`) or inline (one-shot CLI).
    background: bool,
    tasks: tokio_util::task::TaskTracker,
    /// Stacks seen without a live lease by the previous reaper pass.
    orphans_seen: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Where that memory is kept between one-shot `stagelib reap` runs.
    orphans_file: std::sync::Mutex<Option<std::path::PathBuf>>,
    seeder: std::sync::RwLock<Option<Arc<dyn Seeder>>>,
    /// Who this manager is among those sharing the database.
    instance: crate::store::Instance,
    hosts: std::sync::RwLock<Vec<crate::store::HostCapacity>>,
    pools: std::sync::RwLock<Vec<PoolConfig>>,
    priority: pool::Priority,
}

/// How to build a [`Manager`].
pub struct ManagerParts {
    pub store: Arc<dyn Store>,
    pub backend: Arc<dyn Backend>,
    pub clock: Arc<dyn Clock>,
    pub policy: Policy,
    pub key: ManagerKey,
    pub background: bool,
}

impl Manager {
    pub fn new(parts: ManagerParts) -> Arc<Self> {
        let instance = pool::new_instance(parts.clock.now());
        Arc::new(Self {
            store: parts.store,
            backend: parts.backend,
            clock: parts.clock,
            policy: parts.policy,
            key: parts.key,
            metrics: Arc::new(Metrics::default()),
            background: parts.background,
            tasks: tokio_util::task::TaskTracker::new(),
            orphans_seen: Default::default(),
            orphans_file: Default::default(),
            seeder: Default::default(),
            instance,
            hosts: Default::default(),
            pools: Default::default(),
            priority: Default::default(),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Keep the reaper's orphan sightings in `path`, so consecutive one-shot
    /// `stagelib reap` runs (cron) see the same stack twice before removing it.
    /// Seed stacks that ask for a snapshot with `seeder` (without one,
    /// reservations with a seed are refused).
    pub fn seed_with(&self, seeder: Arc<dyn Seeder>) {
        *self.seeder.write().unwrap_or_else(|p| p.into_inner()) = Some(seeder);
    }

    fn seeder(&self) -> Option<Arc<dyn Seeder>> {
        self.seeder.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn remember_orphans_in(&self, path: std::path::PathBuf) {
        *self.orphans_file.lock().unwrap_or_else(|p| p.into_inner()) = Some(path);
    }

    /// Wait for background provisioning tasks (used at shutdown and in tests).
    pub async fn drain(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }
}
