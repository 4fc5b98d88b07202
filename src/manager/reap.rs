//! The reaper: expire stale leases, fail leases whose stack died, remove stacks
//! that no live lease owns. Run by `stagelib reap` (cron) and by `serve` in the
//! background; several reapers may run at once (each step is a compare-and-swap).
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Manager, ManagerError, Metrics};
use crate::lease::{LeaseId, LeaseState};
use crate::store::LeaseFilter;

/// One thing the reaper did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ReapAction {
    /// The lease passed its expiry; its stack was retired.
    Expired { lease_id: LeaseId, owner: String },
    /// A service of the lease's stack died (or vanished); the lease failed.
    Failed { lease_id: LeaseId, reason: String },
    /// A stack with no active lease was seen for the first time; it is removed
    /// if the next pass sees it again (so nothing just being created is hit).
    OrphanSeen { stack_id: String },
    /// A stack with no active lease, seen by two passes in a row, was removed.
    OrphanRemoved { stack_id: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReapReport {
    pub dry_run: bool,
    pub actions: Vec<ReapAction>,
}

impl ReapReport {
    pub fn count(&self, pred: impl Fn(&ReapAction) -> bool) -> usize {
        self.actions.iter().filter(|a| pred(a)).count()
    }
}

impl Manager {
    fn load_orphans(&self) -> BTreeSet<String> {
        let file = self.orphans_file.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match file {
            Some(path) => std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default(),
            None => self.orphans_seen.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    fn save_orphans(&self, set: BTreeSet<String>) {
        let file = self.orphans_file.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(path) = file {
            let tmp = path.with_extension("tmp");
            let written = serde_json::to_vec(&set)
                .map_err(std::io::Error::other)
                .and_then(|b| std::fs::write(&tmp, b))
                .and_then(|_| std::fs::rename(&tmp, &path));
            if let Err(e) = written {
                tracing::warn!(error = %e, path = %path.display(), "cannot remember orphan sightings");
            }
        }
        *self.orphans_seen.lock().unwrap_or_else(|p| p.into_inner()) = set;
    }

    pub(super) async fn reap_once(&self, actor: &str, dry_run: bool) -> Result<ReapReport, ManagerError> {
        let now = self.clock.now();
        let mut report = ReapReport {
            dry_run,
            actions: Vec::new(),
        };

        // 1. Stale leases.
        let stale = if dry_run {
            self.store.find_stale(now, self.policy.max_ttl).await?
        } else {
            self.store.expire_stale(now, self.policy.max_ttl, actor).await?
        };
        for lease in &stale {
            if !dry_run {
                Metrics::inc(&self.metrics.expiries, 1);
                self.destroy_stack(lease).await;
            }
            report.actions.push(ReapAction::Expired {
                lease_id: lease.id,
                owner: lease.owner.clone(),
            });
        }
        let expired: BTreeSet<LeaseId> = stale.iter().map(|l| l.id).collect();
        // Their stacks are retired above (or would be, in a dry run): not orphans.
        let retired: BTreeSet<&str> = stale.iter().map(|l| l.stack_id.as_str()).collect();

        // 2. Compare what the backend runs with what the store says.
        let stacks = self.backend.list().await?;
        let active = self
            .store
            .list_leases(&LeaseFilter {
                states: LeaseState::ACTIVE.to_vec(),
                ..Default::default()
            })
            .await?;
        // Pool stacks (warming or ready) belong to the pool, not to a lease.
        let pooled: BTreeSet<String> = self.store.pool_list().await?.into_iter().map(|p| p.stack_id).collect();
        let mut by_stack: BTreeMap<&str, Vec<&crate::lease::Lease>> = BTreeMap::new();
        for l in active.iter().filter(|l| !expired.contains(&l.id)) {
            by_stack.entry(l.stack_id.as_str()).or_default().push(l);
        }

        let seen_before = self.load_orphans();
        let mut still_orphaned = BTreeSet::new();
        for stack in stacks
            .iter()
            .filter(|s| !retired.contains(s.stack_id.as_str()) && !pooled.contains(&s.stack_id))
        {
            match by_stack.get(stack.stack_id.as_str()) {
                None if !seen_before.contains(&stack.stack_id) => {
                    still_orphaned.insert(stack.stack_id.clone());
                    report.actions.push(ReapAction::OrphanSeen {
                        stack_id: stack.stack_id.clone(),
                    });
                }
                None => {
                    if !dry_run {
                        if let Err(e) = self.backend.destroy(&stack.stack_id).await {
                            tracing::warn!(stack = %stack.stack_id, error = %e, "cannot remove orphan stack");
                            still_orphaned.insert(stack.stack_id.clone());
                            continue;
                        }
                        Metrics::inc(&self.metrics.orphans_removed, 1);
                    }
                    report.actions.push(ReapAction::OrphanRemoved {
                        stack_id: stack.stack_id.clone(),
                    });
                }
                Some(leases) => {
                    for lease in leases.iter().filter(|l| l.state == LeaseState::Ready) {
                        let missing = lease.template.services.iter().find(|k| !stack.services.contains_key(k));
                        let reason = match (stack.first_dead(), missing) {
                            (Some((service, why)), _) => format!("{service} of the stack died: {why}"),
                            (None, Some(service)) => format!("{service} of the stack vanished"),
                            (None, None) => continue,
                        };
                        if !dry_run {
                            self.fail(lease.id, &reason).await?;
                        }
                        report.actions.push(ReapAction::Failed {
                            lease_id: lease.id,
                            reason,
                        });
                    }
                }
            }
        }

        if !dry_run {
            self.save_orphans(still_orphaned);
        }

        // 3. Ready leases of this backend whose stack vanished altogether.
        let present: BTreeSet<&str> = stacks.iter().map(|s| s.stack_id.as_str()).collect();
        for lease in active.iter().filter(|l| {
            l.state == LeaseState::Ready
                && l.backend == self.backend.name()
                && !expired.contains(&l.id)
                && !present.contains(l.stack_id.as_str())
        }) {
            let reason = "the stack's services vanished".to_string();
            if !dry_run {
                self.fail(lease.id, &reason).await?;
            }
            report.actions.push(ReapAction::Failed {
                lease_id: lease.id,
                reason,
            });
        }
        Ok(report)
    }
}
