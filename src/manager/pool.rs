//! The pool of pre-warmed stacks, capacity per host, and the manager instances
//! sharing one database (heartbeats, taking over a dead instance's work).
//!
//! A pool stack is provisioned (services up and healthy, the snapshot loaded) by
//! whichever instance wins `Store::pool_fill`; `reserve` takes a ready one in the
//! same transaction that creates the lease, then seeds it under the lease's
//! namespace (the namespace is known only then). Refilling is the lowest
//! priority work: it runs one stack at a time per instance, never while a real
//! provisioning of this instance is in flight or anyone waits in the queue, and a
//! real reservation that finds no capacity gives up a pool stack to get it.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Manager, ManagerError};
use crate::backend::StackSpec;
use crate::lease::{LeaseId, LeaseState, Namespace};
use crate::stack::Template;
use crate::store::{HostCapacity, Instance, PoolStack, PoolState, PoolWant};

/// A manager that has not heartbeated for this long is dead; its work is taken over.
pub const INSTANCE_DEAD_AFTER: StdDuration = StdDuration::from_secs(10);
/// How often an instance heartbeats (and looks for work to take over).
pub const INSTANCE_BEAT: StdDuration = StdDuration::from_secs(2);

/// One pool: keep `min_ready` stacks of `template` seeded from `seed`.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    pub template: Template,
    pub seed: Option<String>,
    pub min_ready: u32,
    /// Pool stacks older than this are retired and replaced.
    pub max_age: Duration,
}

/// One pool as `stagelib pool status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolView {
    pub template: String,
    pub seed: Option<String>,
    pub min_ready: u32,
    pub max_age_secs: i64,
    pub ready: u32,
    pub warming: u32,
    pub stacks: Vec<PoolStack>,
}

/// One host: capacity and stacks in use (leases' and the pool's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostView {
    pub name: String,
    pub capacity: Option<u32>,
    pub used: u32,
}

/// Everything `GET /v1/pool` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolStatus {
    pub pools: Vec<PoolView>,
    pub hosts: Vec<HostView>,
    /// Reservations waiting for capacity.
    pub waiting: u32,
    /// Managers sharing the database, and whether each is alive.
    pub instances: Vec<InstanceView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub alive: bool,
    pub heartbeat_at: DateTime<Utc>,
}

/// Counts real provisionings in flight, so pool refills yield to them.
#[derive(Debug, Default)]
pub struct Priority {
    real: AtomicUsize,
}

/// Held while a real (non-pool) provisioning runs.
pub struct RealWork<'a>(&'a Priority);

impl Priority {
    pub(super) fn real_work(&self) -> RealWork<'_> {
        self.real.fetch_add(1, Ordering::SeqCst);
        RealWork(self)
    }

    fn busy(&self) -> bool {
        self.real.load(Ordering::SeqCst) > 0
    }
}

impl Drop for RealWork<'_> {
    fn drop(&mut self) {
        self.0.real.fetch_sub(1, Ordering::SeqCst);
    }
}

fn chrono(d: StdDuration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::seconds(10))
}

impl Manager {
    /// This manager's identity among the instances sharing the database.
    pub fn instance_id(&self) -> &str {
        &self.instance.id
    }

    /// Limit the stacks each host runs (empty: one unlimited host `local`).
    pub fn set_hosts(&self, hosts: Vec<HostCapacity>) {
        *self.hosts.write().unwrap_or_else(|p| p.into_inner()) = hosts;
    }

    pub fn hosts(&self) -> Vec<HostCapacity> {
        self.hosts.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Keep these pools filled (by `run_background` or `refill_once`).
    pub fn set_pools(&self, pools: Vec<PoolConfig>) {
        *self.pools.write().unwrap_or_else(|p| p.into_inner()) = pools;
    }

    pub fn pools(&self) -> Vec<PoolConfig> {
        self.pools.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The pool a reservation of `template`/`seed` may take from: stacks created
    /// after this instant (None: no such pool).
    pub(super) fn pool_since(&self, template: &Template, seed: Option<&str>) -> Option<DateTime<Utc>> {
        self.pools()
            .iter()
            .find(|p| &p.template == template && p.seed.as_deref() == seed)
            .map(|p| self.clock.now() - p.max_age)
    }

    pub(super) fn alive_since(&self) -> DateTime<Utc> {
        self.clock.now() - chrono(INSTANCE_DEAD_AFTER)
    }

    /// Record that this instance is alive.
    pub async fn beat(&self) -> Result<(), ManagerError> {
        let mut me = self.instance.clone();
        me.heartbeat_at = self.clock.now();
        self.store.instance_beat(&me).await?;
        Ok(())
    }

    /// Finish the in-flight work (provisioning, releases) of instances that
    /// stopped heartbeating; returns how many leases were taken over.
    pub async fn take_over_once(self: &Arc<Self>) -> Result<usize, ManagerError> {
        let leases = self.store.take_over(&self.instance.id, self.alive_since()).await?;
        let n = leases.len();
        for lease in leases {
            tracing::info!(lease = %lease.id, state = %lease.state, "taking over in-flight work");
            let this = Arc::clone(self);
            self.tasks.spawn(async move {
                let outcome = if lease.state == LeaseState::Releasing {
                    this.finish_release(lease, "stagelib").await.map(|_| ())
                } else {
                    this.provision(lease.id).await.map(|_| ())
                };
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, "resuming taken-over work failed");
                }
            });
        }
        Ok(n)
    }

    fn pool_spec(&self, stack: &PoolStack) -> Result<StackSpec, ManagerError> {
        Ok(StackSpec {
            stack_id: stack.stack_id.clone(),
            lease_id: LeaseId::new(),
            owner: "stagelib-pool".into(),
            namespace: Namespace::parse("pool").map_err(|e| ManagerError::Internal(e.to_string()))?,
            template: stack.template.clone(),
            credentials: self.key.credentials(&stack.stack_id, &stack.template),
            host: Some(stack.host.clone()),
        })
    }

    /// Retire stale pool stacks, then warm stacks one at a time until every pool
    /// is full (or capacity, the queue or real work says stop). Returns how many
    /// stacks became ready.
    pub async fn refill_once(&self) -> Result<usize, ManagerError> {
        let now = self.clock.now();
        let pools = self.pools();
        let oldest_allowed = pools
            .iter()
            .map(|p| now - p.max_age)
            .min()
            .unwrap_or(now - Duration::days(3650));
        for stale in self.store.pool_retire(oldest_allowed, self.alive_since()).await? {
            tracing::info!(stack = %stale.stack_id, "retiring pool stack");
            self.destroy_pool_stack(&stale).await;
        }
        let mut warmed = 0;
        for pool in &pools {
            if self.priority.busy() {
                break;
            }
            let hosts = self.hosts();
            let want = PoolWant {
                template: &pool.template,
                seed: pool.seed.as_deref(),
                min_ready: pool.min_ready,
                since: now - pool.max_age,
                hosts: &hosts,
                worker: &self.instance.id,
                now,
            };
            // One stack at a time, yielding to real provisioning between stacks.
            while !self.priority.busy() {
                let Some(stack) = self.store.pool_fill(&want).await? else {
                    break;
                };
                if self.warm(&stack).await {
                    warmed += 1;
                } else {
                    break;
                }
            }
        }
        Ok(warmed)
    }

    /// Provision a pool stack and load its snapshot; false if it failed or was
    /// given up meanwhile (then its stack is removed).
    async fn warm(&self, stack: &PoolStack) -> bool {
        let started = std::time::Instant::now();
        if let (Some(seed), Some(seeder)) = (&stack.seed, self.seeder()) {
            if let Err(e) = seeder.prepare(seed).await {
                tracing::warn!(stack = %stack.stack_id, error = %e, "cannot load the pool's snapshot");
                let _ = self.store.pool_remove(&stack.stack_id).await;
                return false;
            }
        }
        let provisioned = match self.pool_spec(stack) {
            Ok(spec) => self.backend.provision(&spec).await.map_err(ManagerError::from),
            Err(e) => Err(e),
        };
        let endpoints = match provisioned {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(stack = %stack.stack_id, error = %e, "warming a pool stack failed");
                let _ = self.store.pool_remove(&stack.stack_id).await;
                self.destroy_pool_stack(stack).await;
                return false;
            }
        };
        match self
            .store
            .pool_ready(&stack.stack_id, &endpoints, self.clock.now())
            .await
        {
            Ok(true) => {
                tracing::info!(stack = %stack.stack_id, secs = started.elapsed().as_secs_f64(), "pool stack ready");
                super::Metrics::inc(&self.metrics.pool_warmed, 1);
                true
            }
            Ok(false) => {
                tracing::info!(stack = %stack.stack_id, "pool stack given up while warming; removing it");
                self.destroy_pool_stack(stack).await;
                false
            }
            Err(e) => {
                tracing::warn!(stack = %stack.stack_id, error = %e, "cannot record a warmed pool stack");
                false
            }
        }
    }

    pub(super) async fn destroy_pool_stack(&self, stack: &PoolStack) {
        if let Err(e) = self.backend.destroy(&stack.stack_id).await {
            tracing::warn!(stack = %stack.stack_id, error = %e, "cannot remove a pool stack; the reaper will retry");
        }
    }

    /// Pools, hosts, the queue and the instances.
    pub async fn pool_report(&self) -> Result<PoolStatus, ManagerError> {
        let stacks = self.store.pool_list().await?;
        let pools = self
            .pools()
            .into_iter()
            .map(|p| {
                let mine: Vec<PoolStack> = stacks
                    .iter()
                    .filter(|s| s.template == p.template && s.seed == p.seed)
                    .cloned()
                    .collect();
                let count = |st: PoolState| u32::try_from(mine.iter().filter(|s| s.state == st).count()).unwrap_or(0);
                PoolView {
                    template: p.template.name.clone(),
                    seed: p.seed.clone(),
                    min_ready: p.min_ready,
                    max_age_secs: p.max_age.num_seconds(),
                    ready: count(PoolState::Ready),
                    warming: count(PoolState::Warming),
                    stacks: mine,
                }
            })
            .collect();
        let usage = self.store.host_usage().await?;
        let configured = self.hosts();
        let mut hosts: Vec<HostView> = configured
            .iter()
            .map(|h| HostView {
                name: h.name.clone(),
                capacity: Some(h.capacity),
                used: usage.get(&h.name).copied().unwrap_or(0),
            })
            .collect();
        for (name, used) in &usage {
            if !configured.iter().any(|h| &h.name == name) {
                hosts.push(HostView {
                    name: name.clone(),
                    capacity: None,
                    used: *used,
                });
            }
        }
        let waiting = u32::try_from(self.store.queue_list(true).await?.len()).unwrap_or(u32::MAX);
        let alive_since = self.alive_since();
        let instances = self
            .store
            .instances()
            .await?
            .into_iter()
            .map(|i: Instance| InstanceView {
                alive: i.heartbeat_at >= alive_since,
                id: i.id,
                host: i.host,
                pid: i.pid,
                heartbeat_at: i.heartbeat_at,
            })
            .collect();
        Ok(PoolStatus {
            pools,
            hosts,
            waiting,
            instances,
        })
    }

    /// What `serve` runs besides the API: heartbeats, taking over dead
    /// instances' work, granting queued reservations, refilling the pools.
    pub fn run_background(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(StdDuration::from_millis(500));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_beat = std::time::Instant::now() - INSTANCE_BEAT;
            let refilling = Arc::new(tokio::sync::Mutex::new(()));
            loop {
                tick.tick().await;
                if last_beat.elapsed() >= INSTANCE_BEAT {
                    last_beat = std::time::Instant::now();
                    if let Err(e) = this.beat().await {
                        tracing::warn!(error = %e, "heartbeat failed");
                    }
                    if let Err(e) = this.take_over_once().await {
                        tracing::warn!(error = %e, "taking over dead instances' work failed");
                    }
                }
                if let Err(e) = this.dispatch_queue().await {
                    tracing::warn!(error = %e, "granting queued reservations failed");
                }
                if let Ok(guard) = Arc::clone(&refilling).try_lock_owned() {
                    let me = Arc::clone(&this);
                    tokio::spawn(async move {
                        let _guard = guard;
                        if let Err(e) = me.refill_once().await {
                            tracing::warn!(error = %e, "refilling the pool failed");
                        }
                    });
                }
            }
        });
    }

    /// Heartbeat in the background (a one-shot CLI doing work inline), so no
    /// other instance mistakes its work for abandoned.
    pub fn beat_in_background(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.beat().await {
                    tracing::debug!(error = %e, "heartbeat failed");
                }
                tokio::time::sleep(INSTANCE_BEAT).await;
            }
        });
    }
}

pub(super) fn new_instance(now: DateTime<Utc>) -> Instance {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    Instance {
        id: format!("{}-{}", host, &uuid::Uuid::new_v4().simple().to_string()[..8]),
        host,
        pid: std::process::id(),
        started_at: now,
        heartbeat_at: now,
    }
}
