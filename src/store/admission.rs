//! Admission of a reservation (queue order, quota, pool claim, placement on a
//! host with free capacity), the pool's rows, the wait queue and the manager
//! instances — each step one transaction, written once for both databases.
//!
//! Invariants: a reservation, a pool fill and a queue grant each run under one
//! global lock (`stagelib-admission`), so capacity is never over-committed and
//! the queue is strictly first-in first-out across every manager sharing the
//! database; a pool stack leaves the pool in the same transaction that creates
//! the lease using it, so it is never handed out twice.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::row::{self, ACTIVE_SQL, LEASE_COLUMNS};
use super::sql::{PoolDbRow, SqlTx, Val, WaiterDbRow, POOL_COLUMNS, WAITER_COLUMNS};
use super::StoreError;
use crate::lease::{Lease, LeaseId, NewLease, Scope};
use crate::stack::{StackEndpoints, Template};

const GLOBAL_LOCK: &str = "stagelib-admission";

/// How many stacks a host may run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCapacity {
    pub name: String,
    pub capacity: u32,
}

/// The rules a reservation is admitted under.
#[derive(Debug, Clone)]
pub struct Admission<'a> {
    pub quota: u32,
    /// Hosts and their capacity; empty: one unlimited host `local`.
    pub hosts: &'a [HostCapacity],
    /// Take a ready pool stack created at or after this instant, if one matches.
    pub pool_since: Option<DateTime<Utc>>,
    /// Refuse (`QueueNotEmpty`) while anyone waits, so nobody jumps the queue.
    pub respect_queue: bool,
    /// This reservation grants that waiter (it must still be waiting).
    pub waiter: Option<&'a str>,
    /// The manager instance that will provision the lease.
    pub worker: &'a str,
}

impl<'a> Admission<'a> {
    /// Only the quota: no capacity limit, no pool, no queue.
    pub fn quota_only(quota: u32) -> Self {
        Self {
            quota,
            hosts: &[],
            pool_since: None,
            respect_queue: false,
            waiter: None,
            worker: "",
        }
    }
}

/// What admission did.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub lease: Lease,
    /// The pool stack the lease got, if it came from the pool.
    pub from_pool: Option<PoolStack>,
    /// A pool stack given up to make room (its stack must be destroyed).
    pub evicted: Option<PoolStack>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolState {
    /// Being provisioned and seeded.
    Warming,
    /// Up and seeded, waiting for a reservation.
    Ready,
}

/// A pre-warmed stack no lease uses yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolStack {
    pub stack_id: String,
    pub template: Template,
    pub seed: Option<String>,
    pub host: String,
    pub state: PoolState,
    /// The manager instance warming it.
    pub worker: String,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    pub endpoints: Option<StackEndpoints>,
}

/// What a pool refill asks for.
#[derive(Debug, Clone)]
pub struct PoolWant<'a> {
    pub template: &'a Template,
    pub seed: Option<&'a str>,
    pub min_ready: u32,
    /// Stacks older than this do not count (they are about to be retired).
    pub since: DateTime<Utc>,
    pub hosts: &'a [HostCapacity],
    pub worker: &'a str,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaiterState {
    Waiting,
    Granted,
    TimedOut,
    Cancelled,
    /// The reservation it waited for was refused (quota, bad request).
    Refused,
}

impl WaiterState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Granted => "granted",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Refused => "refused",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        [
            Self::Waiting,
            Self::Granted,
            Self::TimedOut,
            Self::Cancelled,
            Self::Refused,
        ]
        .into_iter()
        .find(|w| w.as_str() == s)
        .ok_or_else(|| StoreError::Corrupt(format!("waiter state `{s}`")))
    }
}

/// A reservation waiting for capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waiter {
    pub id: String,
    pub owner: String,
    pub scope: Scope,
    /// The reservation request, as given.
    pub request: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub state: WaiterState,
    pub lease_id: Option<LeaseId>,
    pub reason: Option<String>,
    pub settled_at: Option<DateTime<Utc>>,
}

/// A manager process sharing the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

fn ms(t: DateTime<Utc>) -> Val {
    Val::Int(row::ms(t))
}

fn pool_stack(r: PoolDbRow) -> Result<PoolStack, StoreError> {
    Ok(PoolStack {
        template: serde_json::from_str(&r.template).map_err(|e| StoreError::Corrupt(format!("pool template: {e}")))?,
        state: match r.state.as_str() {
            "warming" => PoolState::Warming,
            "ready" => PoolState::Ready,
            other => return Err(StoreError::Corrupt(format!("pool state `{other}`"))),
        },
        endpoints: r
            .endpoints
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("pool endpoints: {e}")))?,
        created_at: row::time(r.created_at)?,
        ready_at: r.ready_at.map(row::time).transpose()?,
        stack_id: r.stack_id,
        seed: r.seed,
        host: r.host,
        worker: r.worker,
    })
}

fn waiter(r: WaiterDbRow) -> Result<Waiter, StoreError> {
    Ok(Waiter {
        scope: r
            .scope
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("waiter scope: {e}")))?,
        request: serde_json::from_str(&r.request).map_err(|e| StoreError::Corrupt(format!("waiter request: {e}")))?,
        created_at: row::time(r.created_at)?,
        deadline: row::time(r.deadline)?,
        last_seen_at: row::time(r.last_seen_at)?,
        state: WaiterState::parse(&r.state)?,
        lease_id: r
            .lease_id
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("waiter lease: {e}")))?,
        settled_at: r.settled_at.map(row::time).transpose()?,
        id: r.id,
        owner: r.owner,
        reason: r.reason,
    })
}

/// Stacks in use per host: distinct stacks of active leases plus pool stacks.
async fn usage(tx: &mut dyn SqlTx) -> Result<std::collections::BTreeMap<String, u32>, StoreError> {
    let rows = tx
        .counts(
            &format!(
                "SELECT host, COUNT(*) FROM (SELECT DISTINCT host, stack_id FROM leases WHERE state IN {ACTIVE_SQL}) s \
                 GROUP BY host \
                 UNION ALL SELECT host, COUNT(*) FROM pool_stacks GROUP BY host"
            ),
            vec![],
        )
        .await?;
    let mut out = std::collections::BTreeMap::new();
    for (host, n) in rows {
        *out.entry(host).or_insert(0u32) += u32::try_from(n).unwrap_or(u32::MAX);
    }
    Ok(out)
}

/// The host with the most free capacity, if any has room.
async fn place(tx: &mut dyn SqlTx, hosts: &[HostCapacity]) -> Result<Option<String>, StoreError> {
    if hosts.is_empty() {
        return Ok(Some("local".into()));
    }
    let used = usage(tx).await?;
    Ok(hosts
        .iter()
        .map(|h| (h.capacity.saturating_sub(used.get(&h.name).copied().unwrap_or(0)), h))
        .filter(|(free, _)| *free > 0)
        // Most free first; on a tie, the first listed.
        .min_by_key(|(free, _)| std::cmp::Reverse(*free))
        .map(|(_, h)| h.name.clone()))
}

fn total_capacity(hosts: &[HostCapacity]) -> u64 {
    hosts.iter().map(|h| u64::from(h.capacity)).sum()
}

async fn waiting(tx: &mut dyn SqlTx) -> Result<u64, StoreError> {
    let n = tx
        .int("SELECT COUNT(*) FROM waiters WHERE state = 'waiting'", vec![])
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn take_pool_row(tx: &mut dyn SqlTx, sql: &str, args: Vec<Val>) -> Result<Option<PoolStack>, StoreError> {
    let skip = tx.skip_locked();
    let rows = tx.pools(&format!("{sql}{skip}"), args).await?;
    let Some(r) = rows.into_iter().next() else {
        return Ok(None);
    };
    tx.exec(
        "DELETE FROM pool_stacks WHERE stack_id = $1",
        vec![r.stack_id.clone().into()],
    )
    .await?;
    pool_stack(r).map(Some)
}

/// Admit `new` under `adm` (see the module's invariants).
pub async fn reserve(
    tx: &mut dyn SqlTx,
    new: &NewLease,
    adm: &Admission<'_>,
    actor: &str,
) -> Result<Admitted, StoreError> {
    let global = adm.respect_queue || adm.waiter.is_some() || !adm.hosts.is_empty() || adm.pool_since.is_some();
    tx.lock(if global { GLOBAL_LOCK } else { &new.owner }).await?;
    if let Some(w) = adm.waiter {
        let n = tx
            .exec(
                "UPDATE waiters SET state = 'granted', lease_id = $1, settled_at = $2 WHERE id = $3 AND state = 'waiting'",
                vec![new.id.to_string().into(), ms(new.created_at), w.into()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::WaiterSettled(w.to_string()));
        }
    } else if adm.respect_queue {
        let n = waiting(tx).await?;
        if n > 0 {
            return Err(StoreError::QueueNotEmpty { waiting: n });
        }
    }
    let active = tx
        .int(
            &format!("SELECT COUNT(*) FROM leases WHERE owner = $1 AND state IN {ACTIVE_SQL}"),
            vec![new.owner.clone().into()],
        )
        .await?;
    if active >= i64::from(adm.quota) {
        return Err(StoreError::QuotaExceeded {
            owner: new.owner.clone(),
            limit: adm.quota,
        });
    }

    let mut stack_id = new.stack_id.clone();
    let mut from_pool = None;
    let mut evicted = None;
    let joined = tx
        .texts(
            &format!("SELECT host FROM leases WHERE stack_id = $1 AND state IN {ACTIVE_SQL} LIMIT 1"),
            vec![new.stack_id.clone().into()],
        )
        .await?;
    let host = if let Some(h) = joined.into_iter().next() {
        h
    } else {
        let own_stack = new.stack_id == new.id.to_string();
        if let (true, Some(since)) = (own_stack, adm.pool_since) {
            from_pool = take_pool_row(
                tx,
                &format!(
                    "SELECT {POOL_COLUMNS} FROM pool_stacks WHERE state = 'ready' AND template = $1 \
                     AND seed IS NOT DISTINCT FROM $2 AND created_at >= $3 ORDER BY ready_at, stack_id LIMIT 1"
                ),
                vec![row::json(&new.template)?.into(), new.seed.clone().into(), ms(since)],
            )
            .await?;
        }
        match &from_pool {
            Some(p) => {
                stack_id = p.stack_id.clone();
                p.host.clone()
            }
            None => match place(tx, adm.hosts).await? {
                Some(h) => h,
                None => {
                    // Pre-warming never starves a real request: give up the oldest pool stack.
                    evicted = take_pool_row(
                        tx,
                        &format!("SELECT {POOL_COLUMNS} FROM pool_stacks ORDER BY created_at, stack_id LIMIT 1"),
                        vec![],
                    )
                    .await?;
                    match &evicted {
                        Some(p) => p.host.clone(),
                        None => {
                            return Err(StoreError::CapacityExhausted {
                                capacity: total_capacity(adm.hosts),
                            })
                        }
                    }
                }
            },
        }
    };

    let inserted = tx
        .leases(
            &format!(
                "INSERT INTO leases ({LEASE_COLUMNS}, worker) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'requested', NULL, $7, $7, $8, NULL, $9, $10, NULL, $11, $12, $13) \
                 RETURNING {LEASE_COLUMNS}"
            ),
            vec![
                new.id.to_string().into(),
                new.owner.clone().into(),
                new.namespace.as_str().into(),
                stack_id.clone().into(),
                row::json(&new.template)?.into(),
                new.seed.clone().into(),
                ms(new.created_at),
                ms(new.expires_at),
                Val::Bool(new.hold),
                row::json(&new.labels)?.into(),
                new.backend.clone().into(),
                host.into(),
                Some(adm.worker.to_string()).filter(|w| !w.is_empty()).into(),
            ],
        )
        .await;
    let lease = match inserted {
        Ok(rows) => match rows.into_iter().next() {
            Some(r) => Lease::try_from(r)?,
            None => return Err(StoreError::Corrupt("insert returned no row".into())),
        },
        Err(e) if row::is_unique_violation(&e) => {
            return Err(StoreError::NamespaceTaken {
                namespace: new.namespace.to_string(),
                stack_id,
            })
        }
        Err(e) => return Err(e.into()),
    };
    tx.exec(
        "INSERT INTO lease_events (lease_id, at, actor, from_state, to_state, reason) \
         VALUES ($1, $2, $3, NULL, 'requested', $4)",
        vec![
            new.id.to_string().into(),
            ms(new.created_at),
            actor.into(),
            from_pool
                .as_ref()
                .map(|p| format!("stack {} taken from the pool", p.stack_id))
                .into(),
        ],
    )
    .await?;
    Ok(Admitted {
        lease,
        from_pool,
        evicted,
    })
}

/// Add a `warming` pool stack if the pool of `want` is short, nobody waits and a
/// host has room; `None` otherwise.
pub async fn pool_fill(tx: &mut dyn SqlTx, want: &PoolWant<'_>) -> Result<Option<PoolStack>, StoreError> {
    tx.lock(GLOBAL_LOCK).await?;
    if waiting(tx).await? > 0 {
        return Ok(None);
    }
    let have = tx
        .int(
            "SELECT COUNT(*) FROM pool_stacks WHERE template = $1 AND seed IS NOT DISTINCT FROM $2 AND created_at >= $3",
            vec![
                row::json(want.template)?.into(),
                want.seed.map(str::to_string).into(),
                ms(want.since),
            ],
        )
        .await?;
    if have >= i64::from(want.min_ready) {
        return Ok(None);
    }
    let Some(host) = place(tx, want.hosts).await? else {
        return Ok(None);
    };
    let stack = PoolStack {
        stack_id: format!("pool-{}", uuid::Uuid::new_v4().simple()),
        template: want.template.clone(),
        seed: want.seed.map(str::to_string),
        host,
        state: PoolState::Warming,
        worker: want.worker.to_string(),
        created_at: want.now,
        ready_at: None,
        endpoints: None,
    };
    tx.exec(
        &format!("INSERT INTO pool_stacks ({POOL_COLUMNS}) VALUES ($1, $2, $3, $4, 'warming', $5, $6, NULL, NULL)"),
        vec![
            stack.stack_id.clone().into(),
            row::json(&stack.template)?.into(),
            stack.seed.clone().into(),
            stack.host.clone().into(),
            stack.worker.clone().into(),
            ms(stack.created_at),
        ],
    )
    .await?;
    Ok(Some(stack))
}

/// `warming → ready`; false when the row is gone (evicted meanwhile).
pub async fn pool_ready(
    tx: &mut dyn SqlTx,
    stack_id: &str,
    endpoints: &StackEndpoints,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = tx
        .exec(
            "UPDATE pool_stacks SET state = 'ready', ready_at = $1, endpoints = $2 WHERE stack_id = $3 AND state = 'warming'",
            vec![ms(now), row::json(endpoints)?.into(), stack_id.into()],
        )
        .await?;
    Ok(n == 1)
}

pub async fn pool_list(tx: &mut dyn SqlTx) -> Result<Vec<PoolStack>, StoreError> {
    let rows = tx
        .pools(
            &format!("SELECT {POOL_COLUMNS} FROM pool_stacks ORDER BY created_at, stack_id"),
            vec![],
        )
        .await?;
    rows.into_iter().map(pool_stack).collect()
}

/// Remove pool stacks created before `before`, and warming ones whose worker
/// stopped heartbeating since `alive_since`; returns them (to be destroyed).
pub async fn pool_retire(
    tx: &mut dyn SqlTx,
    before: DateTime<Utc>,
    alive_since: DateTime<Utc>,
) -> Result<Vec<PoolStack>, StoreError> {
    let skip = tx.skip_locked();
    let rows = tx
        .pools(
            &format!(
                "SELECT {POOL_COLUMNS} FROM pool_stacks WHERE created_at < $1 OR (state = 'warming' AND worker NOT IN \
                 (SELECT id FROM instances WHERE heartbeat_at >= $2)){skip}"
            ),
            vec![ms(before), ms(alive_since)],
        )
        .await?;
    for r in &rows {
        tx.exec(
            "DELETE FROM pool_stacks WHERE stack_id = $1",
            vec![r.stack_id.clone().into()],
        )
        .await?;
    }
    rows.into_iter().map(pool_stack).collect()
}

/// Remove one pool stack (for instance when warming it failed).
pub async fn pool_remove(tx: &mut dyn SqlTx, stack_id: &str) -> Result<bool, StoreError> {
    Ok(tx
        .exec("DELETE FROM pool_stacks WHERE stack_id = $1", vec![stack_id.into()])
        .await?
        == 1)
}

/// Join the queue; returns the position (1 = next).
pub async fn queue_push(tx: &mut dyn SqlTx, w: &Waiter) -> Result<u64, StoreError> {
    tx.lock(GLOBAL_LOCK).await?;
    tx.exec(
        "INSERT INTO waiters (id, owner, scope, request, created_at, deadline, last_seen_at, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'waiting')",
        vec![
            w.id.clone().into(),
            w.owner.clone().into(),
            w.scope.as_str().into(),
            row::json(&w.request)?.into(),
            ms(w.created_at),
            ms(w.deadline),
            ms(w.last_seen_at),
        ],
    )
    .await?;
    Ok(queue_get(tx, &w.id, None).await?.map(|(_, p)| p).unwrap_or(0))
}

/// A waiter and its position (0 once it is no longer waiting); `seen` records a poll.
pub async fn queue_get(
    tx: &mut dyn SqlTx,
    id: &str,
    seen: Option<DateTime<Utc>>,
) -> Result<Option<(Waiter, u64)>, StoreError> {
    if let Some(at) = seen {
        tx.exec(
            "UPDATE waiters SET last_seen_at = $1 WHERE id = $2",
            vec![ms(at), id.into()],
        )
        .await?;
    }
    let rows = tx
        .waiters(
            &format!("SELECT {WAITER_COLUMNS} FROM waiters WHERE id = $1"),
            vec![id.into()],
        )
        .await?;
    let Some(r) = rows.into_iter().next() else {
        return Ok(None);
    };
    let position = if r.state == "waiting" {
        tx.int(
            "SELECT COUNT(*) FROM waiters WHERE state = 'waiting' AND seq <= $1",
            vec![Val::Int(r.seq)],
        )
        .await?
    } else {
        0
    };
    Ok(Some((waiter(r)?, u64::try_from(position).unwrap_or(0))))
}

/// The first waiter still waiting.
pub async fn queue_head(tx: &mut dyn SqlTx) -> Result<Option<Waiter>, StoreError> {
    let rows = tx
        .waiters(
            &format!("SELECT {WAITER_COLUMNS} FROM waiters WHERE state = 'waiting' ORDER BY seq LIMIT 1"),
            vec![],
        )
        .await?;
    rows.into_iter().next().map(waiter).transpose()
}

/// Waiters (all states) in queue order, newest `limit`.
pub async fn queue_list(tx: &mut dyn SqlTx, only_waiting: bool) -> Result<Vec<Waiter>, StoreError> {
    let cond = if only_waiting { "WHERE state = 'waiting'" } else { "" };
    let rows = tx
        .waiters(
            &format!("SELECT {WAITER_COLUMNS} FROM waiters {cond} ORDER BY seq DESC LIMIT 1000"),
            vec![],
        )
        .await?;
    let mut out: Vec<Waiter> = rows.into_iter().map(waiter).collect::<Result<_, _>>()?;
    out.reverse();
    Ok(out)
}

/// `waiting → to` with a reason; false if it was no longer waiting.
pub async fn queue_settle(
    tx: &mut dyn SqlTx,
    id: &str,
    to: WaiterState,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = tx
        .exec(
            "UPDATE waiters SET state = $1, reason = $2, settled_at = $3 WHERE id = $4 AND state = 'waiting'",
            vec![to.as_str().into(), reason.into(), ms(now), id.into()],
        )
        .await?;
    Ok(n == 1)
}

/// Time out waiters past their deadline, and those nobody polled since
/// `abandoned_before` (their client is gone); returns them.
pub async fn queue_expire(
    tx: &mut dyn SqlTx,
    now: DateTime<Utc>,
    abandoned_before: DateTime<Utc>,
) -> Result<Vec<Waiter>, StoreError> {
    let rows = tx
        .waiters(
            &format!(
                "SELECT {WAITER_COLUMNS} FROM waiters WHERE state = 'waiting' AND (deadline <= $1 OR last_seen_at < $2)"
            ),
            vec![ms(now), ms(abandoned_before)],
        )
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let reason = if r.deadline <= row::ms(now) {
            "timed out waiting for capacity"
        } else {
            "abandoned: its client stopped polling"
        };
        if queue_settle(tx, &r.id, WaiterState::TimedOut, reason, now).await? {
            let mut w = waiter(r)?;
            w.state = WaiterState::TimedOut;
            w.reason = Some(reason.into());
            out.push(w);
        }
    }
    Ok(out)
}

pub async fn instance_beat(tx: &mut dyn SqlTx, i: &Instance) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO instances (id, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        vec![
            i.id.clone().into(),
            i.host.clone().into(),
            Val::Int(i64::from(i.pid)),
            ms(i.started_at),
            ms(i.heartbeat_at),
        ],
    )
    .await?;
    // Forget instances silent for a day (every one-shot CLI run is one).
    tx.exec(
        "DELETE FROM instances WHERE heartbeat_at < $1",
        vec![Val::Int(row::ms(i.heartbeat_at) - 86_400_000)],
    )
    .await?;
    Ok(())
}

/// Leases with work in flight (`requested`, `provisioning`, `releasing`) whose
/// worker is not `me` and has not heartbeated since `alive_since`: they become
/// `me`'s and are returned.
pub async fn take_over(tx: &mut dyn SqlTx, me: &str, alive_since: DateTime<Utc>) -> Result<Vec<Lease>, StoreError> {
    let skip = tx.skip_locked();
    let ids = tx
        .texts(
            &format!(
                "SELECT id FROM leases WHERE state IN ('requested', 'provisioning', 'releasing') \
                 AND (worker IS NULL OR (worker <> $1 AND worker NOT IN \
                 (SELECT id FROM instances WHERE heartbeat_at >= $2))){skip}"
            ),
            vec![me.into(), ms(alive_since)],
        )
        .await?;
    let mut out = Vec::new();
    for id in ids {
        let rows = tx
            .leases(
                &format!("UPDATE leases SET worker = $1 WHERE id = $2 RETURNING {LEASE_COLUMNS}"),
                vec![me.into(), id.into()],
            )
            .await?;
        for r in rows {
            out.push(Lease::try_from(r)?);
        }
    }
    Ok(out)
}

pub async fn instances(tx: &mut dyn SqlTx) -> Result<Vec<Instance>, StoreError> {
    // One row each: "id|host|pid|started_at" and the heartbeat.
    let rows = tx
        .counts(
            "SELECT id || '|' || host || '|' || CAST(pid AS TEXT) || '|' || CAST(started_at AS TEXT), heartbeat_at \
             FROM instances ORDER BY id",
            vec![],
        )
        .await?;
    let mut out = Vec::new();
    for (packed, beat) in rows {
        let mut parts = packed.rsplitn(4, '|');
        let (Some(started), Some(pid), Some(host), Some(id)) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(StoreError::Corrupt(format!("instance row `{packed}`")));
        };
        out.push(Instance {
            id: id.to_string(),
            host: host.to_string(),
            pid: pid.parse().unwrap_or(0),
            started_at: row::time(started.parse().unwrap_or(0))?,
            heartbeat_at: row::time(beat)?,
        });
    }
    Ok(out)
}

/// Stacks in use per host (leases' stacks plus pool stacks).
pub async fn host_usage(tx: &mut dyn SqlTx) -> Result<std::collections::BTreeMap<String, u32>, StoreError> {
    usage(tx).await
}
