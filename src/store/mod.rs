//! Persistence of leases, audit events and API tokens.
//!
//! One trait, two implementations chosen by URL scheme: SQLite (`sqlite://…`, the
//! embedded default) and PostgreSQL (`postgres://…`, shared by several managers).
//! Each has its own add-only migrations under `migrations/`. Timestamps are stored
//! as UTC epoch milliseconds (BIGINT) in both, so comparisons are identical.
//!
//! Invariants: a state change is one compare-and-swap `UPDATE … WHERE state IN (…)
//! RETURNING`, written in the same transaction as its audit event; quota and
//! namespace checks happen inside the insert's transaction, never as a separate read.
use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::lease::{AuditEvent, Lease, LeaseId, LeaseState, NewLease, Scope};
use crate::stack::StackEndpoints;

mod admission;
mod graphs;
pub mod postgres;
#[doc(hidden)]
pub mod row;
pub mod sql;
pub mod sqlite;

pub use admission::{Admission, Admitted, HostCapacity, Instance, PoolStack, PoolState, PoolWant, Waiter, WaiterState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("lease {0} not found")]
    NotFound(LeaseId),
    #[error("{owner} already holds {limit} active leases (the quota); release one first")]
    QuotaExceeded { owner: String, limit: u32 },
    #[error("namespace `{namespace}` is already used by an active lease on stack {stack_id}")]
    NamespaceTaken { namespace: String, stack_id: String },
    #[error("lease {id} is `{current}`, expected one of: {expected}")]
    StateConflict {
        id: LeaseId,
        current: LeaseState,
        expected: String,
    },
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    #[error("cannot open database {url}: {source}\n  hint: {hint}")]
    Connect {
        url: String,
        hint: &'static str,
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row in the database: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("every host is at capacity ({capacity} stacks) and the pool has nothing to give up; retry later or reserve with --wait")]
    CapacityExhausted { capacity: u64 },
    #[error("{waiting} reservation(s) are waiting for capacity; reserve with --wait to queue behind them")]
    QueueNotEmpty { waiting: u64 },
    #[error("queue entry {0} is no longer waiting")]
    WaiterSettled(String),
}

/// Which leases `list_leases` returns.
#[derive(Debug, Clone, Default)]
pub struct LeaseFilter {
    pub owner: Option<String>,
    /// Only these states (empty: all).
    pub states: Vec<LeaseState>,
    pub stack_id: Option<String>,
    pub limit: Option<u32>,
}

/// The who/when/why of a state change, plus what it sets alongside.
#[derive(Debug, Clone)]
pub struct Change {
    pub actor: String,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
    /// Stored with the change (set when becoming `ready`).
    pub endpoints: Option<StackEndpoints>,
}

/// Fields `update_lease` may change on an active lease.
#[derive(Debug, Clone, Default)]
pub struct LeaseUpdate {
    pub expires_at: Option<DateTime<Utc>>,
    pub hold: Option<bool>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// Replaces the labels when set.
    pub labels: Option<BTreeMap<String, String>>,
}

/// An API token as stored: only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub user: String,
    pub scope: Scope,
    pub hash: String,
    pub created_at: DateTime<Utc>,
}

/// A promotion graph as stored: what it is (`record`, JSON) and whose lease.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphRow {
    pub graph_id: String,
    pub lease_id: String,
    pub flavor: String,
    pub created_at: DateTime<Utc>,
    pub record: serde_json::Value,
}

/// The state of one task of a promotion graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    pub label: String,
    pub task_id: String,
    /// `pending`, `running`, `completed`, `failed`, `replaced`, `blocked`, `cancelled`.
    pub state: String,
    pub attempts: i64,
    pub detail: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which database this is (`sqlite` or `postgres`), for logs and `doctor`.
    fn kind(&self) -> &'static str;

    /// Open a transaction (write-locked on SQLite) for the procedures below.
    async fn begin(&self) -> Result<Box<dyn sql::SqlTx>, StoreError>;

    /// Insert a lease in state `requested` with its creation audit event, atomically
    /// refusing it when `new.owner` already holds `quota` active leases
    /// (`QuotaExceeded`) or `new.namespace` is used by an active lease on the same
    /// stack (`NamespaceTaken`). Safe under any number of concurrent callers.
    async fn create_lease(&self, new: &NewLease, quota: u32, actor: &str) -> Result<Lease, StoreError> {
        Ok(self
            .reserve_lease(new, &Admission::quota_only(quota), actor)
            .await?
            .lease)
    }

    /// [`Store::create_lease`] plus, in the same transaction, queue order, a pool
    /// claim and placement on a host with free capacity (see `admission`).
    async fn reserve_lease(&self, new: &NewLease, adm: &Admission<'_>, actor: &str) -> Result<Admitted, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::reserve(tx.as_mut(), new, adm, actor).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Add a `warming` pool stack when the pool is short and capacity allows.
    async fn pool_fill(&self, want: &PoolWant<'_>) -> Result<Option<PoolStack>, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::pool_fill(tx.as_mut(), want).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// A warmed pool stack is ready; false when it was evicted meanwhile.
    async fn pool_ready(
        &self,
        stack_id: &str,
        endpoints: &StackEndpoints,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::pool_ready(tx.as_mut(), stack_id, endpoints, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn pool_list(&self) -> Result<Vec<PoolStack>, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::pool_list(tx.as_mut()).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Remove (and return) pool stacks too old or orphaned by a dead worker.
    async fn pool_retire(
        &self,
        before: DateTime<Utc>,
        alive_since: DateTime<Utc>,
    ) -> Result<Vec<PoolStack>, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::pool_retire(tx.as_mut(), before, alive_since).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn pool_remove(&self, stack_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::pool_remove(tx.as_mut(), stack_id).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Join the wait queue; returns the position (1 = next).
    async fn queue_push(&self, waiter: &Waiter) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::queue_push(tx.as_mut(), waiter).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// A waiter and its position; `seen` records that its client polled.
    async fn queue_get(&self, id: &str, seen: Option<DateTime<Utc>>) -> Result<Option<(Waiter, u64)>, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::queue_get(tx.as_mut(), id, seen).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn queue_head(&self) -> Result<Option<Waiter>, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::queue_head(tx.as_mut()).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn queue_list(&self, only_waiting: bool) -> Result<Vec<Waiter>, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::queue_list(tx.as_mut(), only_waiting).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn queue_settle(
        &self,
        id: &str,
        to: WaiterState,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::queue_settle(tx.as_mut(), id, to, reason, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Time out waiters past their deadline or abandoned by their client.
    async fn queue_expire(
        &self,
        now: DateTime<Utc>,
        abandoned_before: DateTime<Utc>,
    ) -> Result<Vec<Waiter>, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::queue_expire(tx.as_mut(), now, abandoned_before).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn instance_beat(&self, instance: &Instance) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        admission::instance_beat(tx.as_mut(), instance).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn instances(&self) -> Result<Vec<Instance>, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::instances(tx.as_mut()).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Take over in-flight leases of managers silent since `alive_since`.
    async fn take_over(&self, me: &str, alive_since: DateTime<Utc>) -> Result<Vec<Lease>, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::take_over(tx.as_mut(), me, alive_since).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Stacks in use per host.
    async fn host_usage(&self) -> Result<BTreeMap<String, u32>, StoreError> {
        let mut tx = self.begin().await?;
        let out = admission::host_usage(tx.as_mut()).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn get_lease(&self, id: LeaseId) -> Result<Lease, StoreError>;

    /// Newest first.
    async fn list_leases(&self, filter: &LeaseFilter) -> Result<Vec<Lease>, StoreError>;

    /// Compare-and-swap: set `to` iff the current state is one of `from`, and append
    /// the audit event, in one transaction. `StateConflict` names the actual state.
    async fn transition(
        &self,
        id: LeaseId,
        from: &[LeaseState],
        to: LeaseState,
        change: &Change,
    ) -> Result<Lease, StoreError>;

    /// Change expiry / hold / heartbeat / labels of a lease that is still active
    /// (`StateConflict` otherwise).
    async fn update_lease(&self, id: LeaseId, update: &LeaseUpdate, at: DateTime<Utc>) -> Result<Lease, StoreError>;

    /// Leases in `requested`, `provisioning` or `ready` whose effective expiry is at
    /// or before `now` (`expires_at`, or `created_at + max_ttl` when held).
    async fn find_stale(&self, now: DateTime<Utc>, max_ttl: Duration) -> Result<Vec<Lease>, StoreError>;

    /// Move every lease `find_stale` would return to `expired` (audit events
    /// included) and return them; a lease changed concurrently is skipped.
    async fn expire_stale(&self, now: DateTime<Utc>, max_ttl: Duration, actor: &str) -> Result<Vec<Lease>, StoreError>;

    /// Audit events of a lease, oldest first.
    async fn events(&self, id: LeaseId) -> Result<Vec<AuditEvent>, StoreError>;

    /// Number of leases in each state (every state present, zeros included).
    async fn count_by_state(&self) -> Result<BTreeMap<LeaseState, u64>, StoreError>;

    async fn create_token(&self, token: &TokenRecord) -> Result<(), StoreError>;

    async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Store a new promotion graph with its tasks, in one transaction.
    async fn create_graph(&self, graph: &GraphRow, tasks: &[TaskRow]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        graphs::create(tx.as_mut(), graph, tasks).await?;
        tx.commit().await
    }

    /// Record a task's new state.
    async fn update_task(&self, graph_id: &str, task: &TaskRow) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        graphs::update_task(tx.as_mut(), graph_id, task).await?;
        tx.commit().await
    }

    /// A graph and its tasks (sorted by label).
    async fn get_graph(&self, graph_id: &str) -> Result<Option<(GraphRow, Vec<TaskRow>)>, StoreError> {
        let mut tx = self.begin().await?;
        let out = graphs::get(tx.as_mut(), graph_id).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The graphs run against a lease, oldest first.
    async fn list_graphs(&self, lease_id: &str) -> Result<Vec<GraphRow>, StoreError> {
        let mut tx = self.begin().await?;
        let out = graphs::list(tx.as_mut(), lease_id).await?;
        tx.commit().await?;
        Ok(out)
    }
}

/// Open the store named by `url` and apply its migrations.
/// `sqlite://PATH` (created if missing, WAL mode) or `postgres://…`.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(sqlite::SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(postgres::PostgresStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}
