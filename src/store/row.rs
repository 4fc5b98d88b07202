//! Row shapes shared by both databases, and their conversion to domain types.
use chrono::{DateTime, TimeZone, Utc};

use super::{StoreError, TokenRecord};
use crate::lease::{AuditEvent, Lease, LeaseId, LeaseState, Namespace};

pub(super) const LEASE_COLUMNS: &str = "id, owner, namespace, stack_id, template, seed, state, failure_reason, \
     created_at, updated_at, expires_at, last_heartbeat_at, hold, labels, endpoints, backend, host";

/// SQL list of the active states, for `state IN (…)`.
pub(super) const ACTIVE_SQL: &str = "('requested', 'provisioning', 'ready', 'releasing')";
/// States the reaper may expire.
pub(super) const EXPIRABLE_SQL: &str = "('requested', 'provisioning', 'ready')";

#[derive(Debug, sqlx::FromRow)]
pub struct LeaseRow {
    pub id: String,
    pub owner: String,
    pub namespace: String,
    pub stack_id: String,
    pub template: String,
    pub seed: Option<String>,
    pub state: String,
    pub failure_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
    pub last_heartbeat_at: Option<i64>,
    pub hold: bool,
    pub labels: String,
    pub endpoints: Option<String>,
    pub backend: String,
    pub host: String,
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct EventRow {
    pub lease_id: String,
    pub at: i64,
    pub actor: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub reason: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub(super) struct TokenRow {
    pub id: String,
    pub user_name: String,
    pub scope: String,
    pub hash: String,
    pub created_at: i64,
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} out of range")))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| corrupt("encoding JSON", e))
}

pub(super) fn state(s: &str) -> Result<LeaseState, StoreError> {
    s.parse().map_err(|e| corrupt("lease state", e))
}

impl TryFrom<LeaseRow> for Lease {
    type Error = StoreError;
    fn try_from(r: LeaseRow) -> Result<Self, StoreError> {
        Ok(Lease {
            id: r.id.parse().map_err(|e| corrupt("lease id", e))?,
            owner: r.owner,
            namespace: Namespace::parse(&r.namespace).map_err(|e| corrupt("namespace", e))?,
            stack_id: r.stack_id,
            template: serde_json::from_str(&r.template).map_err(|e| corrupt("template", e))?,
            seed: r.seed,
            state: state(&r.state)?,
            failure_reason: r.failure_reason,
            created_at: time(r.created_at)?,
            updated_at: time(r.updated_at)?,
            expires_at: time(r.expires_at)?,
            last_heartbeat_at: r.last_heartbeat_at.map(time).transpose()?,
            hold: r.hold,
            labels: serde_json::from_str(&r.labels).map_err(|e| corrupt("labels", e))?,
            endpoints: r
                .endpoints
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| corrupt("endpoints", e))?,
            backend: r.backend,
            host: r.host,
        })
    }
}

impl TryFrom<EventRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        Ok(AuditEvent {
            lease_id: r.lease_id.parse::<LeaseId>().map_err(|e| corrupt("lease id", e))?,
            at: time(r.at)?,
            actor: r.actor,
            from: r.from_state.as_deref().map(state).transpose()?,
            to: state(&r.to_state)?,
            reason: r.reason,
        })
    }
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;
    fn try_from(r: TokenRow) -> Result<Self, StoreError> {
        Ok(TokenRecord {
            id: r.id,
            user: r.user_name,
            scope: r.scope.parse().map_err(|e| corrupt("token scope", e))?,
            hash: r.hash,
            created_at: time(r.created_at)?,
        })
    }
}

/// `SELECT state, COUNT(*) … GROUP BY state` as a map with every state present.
pub(super) fn count_map(rows: Vec<(String, i64)>) -> Result<std::collections::BTreeMap<LeaseState, u64>, StoreError> {
    let mut out: std::collections::BTreeMap<LeaseState, u64> = LeaseState::ALL.iter().map(|s| (*s, 0)).collect();
    for (s, n) in rows {
        out.insert(state(&s)?, u64::try_from(n).unwrap_or(0));
    }
    Ok(out)
}

pub(super) fn leases(rows: Vec<LeaseRow>) -> Result<Vec<Lease>, StoreError> {
    rows.into_iter().map(Lease::try_from).collect()
}

/// `('a', 'b')` for a list of states (values come from the enum, never from users).
pub(super) fn state_list(states: &[LeaseState]) -> String {
    let inner: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("({})", inner.join(", "))
}

/// The reason recorded when the reaper expires a lease.
pub(super) const EXPIRED_REASON: &str = "expired: past its expiry time";

/// Whether a database error is a unique-constraint violation.
pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[derive(sqlx::FromRow)]
pub struct GraphDbRow {
    pub graph_id: String,
    pub lease_id: String,
    pub flavor: String,
    pub created_at: i64,
    pub record: String,
}

impl TryFrom<GraphDbRow> for super::GraphRow {
    type Error = StoreError;
    fn try_from(r: GraphDbRow) -> Result<Self, StoreError> {
        Ok(Self {
            graph_id: r.graph_id,
            lease_id: r.lease_id,
            flavor: r.flavor,
            created_at: time(r.created_at)?,
            record: serde_json::from_str(&r.record).map_err(|e| corrupt("graph record", e))?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct TaskDbRow {
    pub label: String,
    pub task_id: String,
    pub state: String,
    pub attempts: i64,
    pub detail: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl TryFrom<TaskDbRow> for super::TaskRow {
    type Error = StoreError;
    fn try_from(r: TaskDbRow) -> Result<Self, StoreError> {
        Ok(Self {
            label: r.label,
            task_id: r.task_id,
            state: r.state,
            attempts: r.attempts,
            detail: r.detail,
            started_at: r.started_at.map(time).transpose()?,
            finished_at: r.finished_at.map(time).transpose()?,
        })
    }
}

pub(super) const GRAPH_COLUMNS: &str = "graph_id, lease_id, flavor, created_at, record";
pub(super) const TASK_COLUMNS: &str = "label, task_id, state, attempts, detail, started_at, finished_at";
