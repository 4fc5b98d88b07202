//! Bringing a lease's stack up, taking it down, and picking up after a crash.
use std::time::Instant;

use super::{Manager, ManagerError, Metrics};
use crate::backend::StackSpec;
use crate::lease::{Lease, LeaseId, LeaseState};
use crate::store::{Change, LeaseFilter, StoreError};

const SYSTEM: &str = "stagelib";

impl Manager {
    fn change(&self, reason: impl Into<Option<String>>) -> Change {
        Change {
            actor: SYSTEM.into(),
            at: self.clock.now(),
            reason: reason.into(),
            endpoints: None,
        }
    }

    fn spec_for(&self, lease: &Lease) -> StackSpec {
        StackSpec {
            stack_id: lease.stack_id.clone(),
            lease_id: lease.id,
            owner: lease.owner.clone(),
            namespace: lease.namespace.clone(),
            template: lease.template.clone(),
            credentials: self.key.credentials(&lease.stack_id, &lease.template),
            host: Some(lease.host.clone()),
        }
    }

    /// Provision the stack of lease `id` and return the lease as it ends up
    /// (`ready`, `failed`, or whatever a concurrent release made of it).
    /// A failure of the stack becomes a `failed` lease with the reason; only a
    /// failure of the store itself is returned as an error.
    pub async fn provision(&self, id: LeaseId) -> Result<Lease, ManagerError> {
        // Pool refills wait while this runs.
        let _real = self.priority.real_work();
        match self.try_provision(id).await {
            Ok(lease) => Ok(lease),
            Err(e @ (ManagerError::NotFound(_) | ManagerError::Unavailable(_))) => Err(e),
            Err(e) => {
                tracing::warn!(lease = %id, error = %e, "provisioning failed");
                self.fail(id, &format!("{e}")).await
            }
        }
    }

    async fn try_provision(&self, id: LeaseId) -> Result<Lease, ManagerError> {
        let started = Instant::now();
        let mut lease = self.store.get_lease(id).await?;
        if lease.state == LeaseState::Requested {
            lease = self
                .store
                .transition(
                    id,
                    &[LeaseState::Requested],
                    LeaseState::Provisioning,
                    &self.change(None),
                )
                .await?;
        }
        if lease.state != LeaseState::Provisioning {
            return Ok(lease);
        }
        let spec = self.spec_for(&lease);
        let endpoints = self.backend.provision(&spec).await?;
        if let Some(snapshot) = &lease.seed {
            let seeder = self
                .seeder()
                .ok_or_else(|| ManagerError::Internal("no snapshot library to seed from".into()))?;
            let summary = seeder
                .seed(snapshot, &endpoints, &lease.namespace)
                .await
                .map_err(|e| ManagerError::Internal(format!("seeding from snapshot `{snapshot}` failed: {e}")))?;
            tracing::info!(lease = %id, %summary, "seeded");
        }
        let change = Change {
            endpoints: Some(endpoints),
            ..self.change(None)
        };
        match self
            .store
            .transition(id, &[LeaseState::Provisioning], LeaseState::Ready, &change)
            .await
        {
            Ok(lease) => {
                self.metrics.observe_provisioning(started.elapsed().as_secs_f64());
                tracing::info!(lease = %id, secs = started.elapsed().as_secs_f64(), "ready");
                Ok(lease)
            }
            Err(StoreError::StateConflict { current, .. }) => {
                // Released (or expired) while we were provisioning: take the stack down again.
                tracing::info!(lease = %id, %current, "lease changed during provisioning; removing its stack");
                let lease = self.store.get_lease(id).await?;
                if !lease.state.is_active() || lease.state == LeaseState::Releasing {
                    self.destroy_stack(&lease).await;
                }
                Ok(self.store.get_lease(id).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Mark the lease failed (if it is still active) and remove its stack.
    pub(super) async fn fail(&self, id: LeaseId, reason: &str) -> Result<Lease, ManagerError> {
        let sources = LeaseState::sources_of(LeaseState::Failed);
        let lease = match self
            .store
            .transition(id, &sources, LeaseState::Failed, &self.change(Some(reason.to_string())))
            .await
        {
            Ok(l) => {
                Metrics::inc(&self.metrics.failures, 1);
                l
            }
            // Already released, expired or failed by someone else: keep that.
            Err(StoreError::StateConflict { .. }) => self.store.get_lease(id).await?,
            Err(e) => return Err(e.into()),
        };
        self.destroy_stack(&lease).await;
        Ok(lease)
    }

    /// Destroy the lease's stack unless another active lease shares it.
    pub(super) async fn destroy_stack(&self, lease: &Lease) {
        // A stack named after its lease belongs to it alone.
        if lease.stack_id == lease.id.to_string() {
            if let Err(e) = self.backend.destroy(&lease.stack_id).await {
                tracing::warn!(lease = %lease.id, error = %e, "cannot destroy stack; the reaper will retry");
            }
            return;
        }
        let sharing = self
            .store
            .list_leases(&LeaseFilter {
                stack_id: Some(lease.stack_id.clone()),
                states: LeaseState::ACTIVE.to_vec(),
                ..Default::default()
            })
            .await;
        match sharing {
            Ok(others)
                if others
                    .iter()
                    .any(|l| l.id != lease.id && l.state != LeaseState::Releasing) =>
            {
                tracing::info!(lease = %lease.id, stack = %lease.stack_id, "stack still shared; not destroyed");
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(lease = %lease.id, error = %e, "cannot check stack sharing; keeping the stack");
                return;
            }
        }
        if let Err(e) = self.backend.destroy(&lease.stack_id).await {
            tracing::warn!(lease = %lease.id, error = %e, "cannot destroy stack; the reaper will retry");
        }
    }

    /// Second half of a release: remove the stack, then `releasing → released`.
    pub(super) async fn finish_release(&self, lease: Lease, actor: &str) -> Result<Lease, ManagerError> {
        self.destroy_stack(&lease).await;
        let change = Change {
            actor: actor.to_string(),
            ..self.change(None)
        };
        let lease = self
            .store
            .transition(lease.id, &[LeaseState::Releasing], LeaseState::Released, &change)
            .await?;
        Metrics::inc(&self.metrics.releases, 1);
        Ok(lease)
    }

    /// After a restart: finish what a crash interrupted. Leases still
    /// `requested` or `provisioning` are provisioned again (the backend adopts what
    /// already runs), `releasing` ones are released — but only those whose
    /// manager instance stopped heartbeating (another live instance may be
    /// working on the rest). Returns how many leases were taken over.
    pub async fn recover(self: &std::sync::Arc<Self>) -> Result<usize, ManagerError> {
        self.take_over_once().await
    }
}
