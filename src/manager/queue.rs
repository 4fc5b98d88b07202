//! The wait queue: a reservation that finds no capacity (and no pool stack) can
//! wait for one, first in first out, until its deadline. Every waiter ends
//! `granted` (with its lease), `timed_out`, `cancelled` or `refused` (with the
//! reason) — none is dropped silently. Any instance grants the head of the queue
//! when capacity frees (the `serve` loop, and every poll).
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Manager, ManagerError, Metrics, ReserveRequest};
use crate::lease::{check_access, parse_duration, Action, Actor, Lease, LeaseId, Scope};
use crate::store::{Admission, Admitted, StoreError, Waiter, WaiterState};

/// A waiter whose client has not polled for this long is given up.
pub const ABANDONED_AFTER: Duration = Duration::seconds(60);
/// The longest anyone may wait.
pub const MAX_WAIT: Duration = Duration::hours(24);

/// Where a queued reservation stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueTicket {
    pub id: String,
    pub owner: String,
    pub state: WaiterState,
    /// 1 = next to be served; 0 once no longer waiting.
    pub position: u64,
    pub created_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    /// Set once granted.
    pub lease_id: Option<LeaseId>,
    /// Why it timed out, was cancelled or refused.
    pub reason: Option<String>,
}

impl QueueTicket {
    fn of(w: Waiter, position: u64) -> Self {
        Self {
            id: w.id,
            owner: w.owner,
            state: w.state,
            position,
            created_at: w.created_at,
            deadline: w.deadline,
            lease_id: w.lease_id,
            reason: w.reason,
        }
    }
}

/// What a reservation got: a lease now, or a place in the queue.
#[derive(Debug, Clone)]
pub enum Reservation {
    Leased(Box<Lease>),
    Queued(QueueTicket),
}

fn is_full(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::CapacityExhausted { .. } | StoreError::QueueNotEmpty { .. }
    )
}

impl Manager {
    fn admission<'a>(
        &'a self,
        hosts: &'a [crate::store::HostCapacity],
        new: &crate::lease::NewLease,
        waiter: Option<&'a str>,
    ) -> Admission<'a> {
        Admission {
            quota: self.policy.quota,
            hosts,
            pool_since: self.pool_since(&new.template, new.seed.as_deref()),
            respect_queue: waiter.is_none(),
            waiter,
            worker: &self.instance.id,
        }
    }

    /// After admission: give up an evicted pool stack, then provision (in the
    /// background, or inline returning the lease as it ends up).
    async fn start_admitted(self: &Arc<Self>, admitted: Admitted, background: bool) -> Result<Lease, ManagerError> {
        Metrics::inc(&self.metrics.reservations, 1);
        if admitted.from_pool.is_some() {
            Metrics::inc(&self.metrics.pool_claims, 1);
        }
        if let Some(evicted) = admitted.evicted {
            tracing::info!(stack = %evicted.stack_id, "giving up a pool stack to make room");
            let this = Arc::clone(self);
            self.tasks.spawn(async move { this.destroy_pool_stack(&evicted).await });
        }
        let lease = admitted.lease;
        tracing::info!(lease = %lease.id, owner = %lease.owner, host = %lease.host, pooled = lease.stack_id.starts_with("pool-"), "reserved");
        if background {
            let this = Arc::clone(self);
            let id = lease.id;
            self.tasks.spawn(async move {
                if let Err(e) = this.provision(id).await {
                    tracing::error!(lease = %id, error = %e, "provisioning could not record its outcome");
                }
            });
            Ok(lease)
        } else {
            self.provision(lease.id).await
        }
    }

    /// Reserve; with `req.wait`, join the queue when there is no capacity.
    pub(super) async fn reserve_or_queue(
        self: &Arc<Self>,
        actor: &Actor,
        req: ReserveRequest,
    ) -> Result<Reservation, ManagerError> {
        check_access(actor, Action::Reserve, None)?;
        let wait = match &req.wait {
            Some(w) => {
                let d = parse_duration(w).map_err(|e| ManagerError::invalid("wait", e))?;
                if d > MAX_WAIT {
                    return Err(ManagerError::invalid("wait", "at most 24h"));
                }
                Some(d)
            }
            None => None,
        };
        let new = self.build_new_lease(actor, &req)?;
        if new.hold {
            self.check_hold_cap(&new.owner).await?;
        }
        let hosts = self.hosts();
        match self
            .store
            .reserve_lease(&new, &self.admission(&hosts, &new, None), &actor.user)
            .await
        {
            Ok(admitted) => Ok(Reservation::Leased(Box::new(
                self.start_admitted(admitted, self.background).await?,
            ))),
            Err(e) if is_full(&e) => match wait {
                None => Err(e.into()),
                Some(wait) => {
                    let now = self.clock.now();
                    let waiter = Waiter {
                        id: uuid::Uuid::new_v4().to_string(),
                        owner: actor.user.clone(),
                        scope: actor.scope,
                        request: serde_json::to_value(&req).map_err(|e| ManagerError::Internal(e.to_string()))?,
                        created_at: now,
                        deadline: now + wait,
                        last_seen_at: now,
                        state: WaiterState::Waiting,
                        lease_id: None,
                        reason: None,
                        settled_at: None,
                    };
                    let position = self.store.queue_push(&waiter).await?;
                    Metrics::inc(&self.metrics.queued, 1);
                    tracing::info!(waiter = %waiter.id, owner = %waiter.owner, position, "queued");
                    Ok(Reservation::Queued(QueueTicket::of(waiter, position)))
                }
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Time out expired waiters, then grant waiters in order while capacity lasts.
    /// Returns how many were granted.
    pub async fn dispatch_queue(self: &Arc<Self>) -> Result<usize, ManagerError> {
        let now = self.clock.now();
        for w in self.store.queue_expire(now, now - ABANDONED_AFTER).await? {
            tracing::info!(waiter = %w.id, reason = ?w.reason, "waiter timed out");
        }
        let mut granted = 0;
        while let Some(w) = self.store.queue_head().await? {
            let actor = Actor {
                user: w.owner.clone(),
                scope: w.scope,
            };
            let new = serde_json::from_value::<ReserveRequest>(w.request.clone())
                .map_err(|e| ManagerError::invalid("request", e))
                .and_then(|req| self.build_new_lease(&actor, &req));
            let new = match new {
                Ok(n) => n,
                Err(e) => {
                    self.store
                        .queue_settle(&w.id, WaiterState::Refused, &e.to_string(), now)
                        .await?;
                    continue;
                }
            };
            let hosts = self.hosts();
            match self
                .store
                .reserve_lease(&new, &self.admission(&hosts, &new, Some(&w.id)), &actor.user)
                .await
            {
                Ok(admitted) => {
                    granted += 1;
                    tracing::info!(waiter = %w.id, lease = %admitted.lease.id, "granted from the queue");
                    // Never provision inline here: the caller may be someone else's poll.
                    self.start_admitted(admitted, true).await?;
                }
                Err(StoreError::CapacityExhausted { .. }) => break,
                Err(StoreError::WaiterSettled(_)) => continue,
                Err(
                    e @ (StoreError::QuotaExceeded { .. }
                    | StoreError::NamespaceTaken { .. }
                    | StoreError::QueueNotEmpty { .. }),
                ) => {
                    self.store
                        .queue_settle(&w.id, WaiterState::Refused, &e.to_string(), now)
                        .await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(granted)
    }

    fn ticket_access(actor: &Actor, w: &Waiter) -> Result<(), ManagerError> {
        if actor.scope == Scope::Admin || actor.user == w.owner {
            Ok(())
        } else {
            Err(ManagerError::Forbidden(crate::lease::AccessError::NotOwner {
                actor: actor.user.clone(),
                action: Action::Read,
                lease: format!("queue entry {}", w.id),
                owner: w.owner.clone(),
            }))
        }
    }

    /// A queued reservation's state (a poll: it keeps the waiter alive).
    pub(super) async fn queue_ticket(self: &Arc<Self>, actor: &Actor, id: &str) -> Result<QueueTicket, ManagerError> {
        self.dispatch_queue().await?;
        let (w, position) = self
            .store
            .queue_get(id, Some(self.clock.now()))
            .await?
            .ok_or_else(|| ManagerError::invalid("queue_id", format!("no queued reservation `{id}`")))?;
        Self::ticket_access(actor, &w)?;
        Ok(QueueTicket::of(w, position))
    }

    /// Leave the queue.
    pub(super) async fn queue_cancel(&self, actor: &Actor, id: &str) -> Result<QueueTicket, ManagerError> {
        let (w, _) = self
            .store
            .queue_get(id, None)
            .await?
            .ok_or_else(|| ManagerError::invalid("queue_id", format!("no queued reservation `{id}`")))?;
        Self::ticket_access(actor, &w)?;
        self.store
            .queue_settle(
                id,
                WaiterState::Cancelled,
                &format!("cancelled by {}", actor.user),
                self.clock.now(),
            )
            .await?;
        let (w, position) = self
            .store
            .queue_get(id, None)
            .await?
            .ok_or_else(|| ManagerError::Internal("queue entry vanished".into()))?;
        Ok(QueueTicket::of(w, position))
    }

    /// The queue, oldest first (admins see everyone's, others their own).
    pub(super) async fn queue_entries(&self, actor: &Actor) -> Result<Vec<QueueTicket>, ManagerError> {
        let all = self.store.queue_list(true).await?;
        Ok(all
            .into_iter()
            .enumerate()
            .filter(|(_, w)| actor.scope == Scope::Admin || w.owner == actor.user)
            .map(|(i, w)| QueueTicket::of(w, i as u64 + 1))
            .collect())
    }
}
