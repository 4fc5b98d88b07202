//! [`LeaseService`] for the local [`Manager`].
use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{
    LeaseDetail, LeaseEndpoints, LeasePatch, LeaseService, ListQuery, Manager, ManagerError, NewToken, PoolStatus,
    QueueTicket, ReapReport, Reservation, ReserveRequest,
};
use crate::lease::{
    check_access, parse_duration, Action, Actor, Lease, LeaseId, LeaseState, Namespace, NewLease, Scope,
};
use crate::stack::Template;
use crate::store::{Change, LeaseFilter, LeaseUpdate, TokenRecord};

/// Largest label map accepted, to keep rows small.
const MAX_LABELS: usize = 32;
const MAX_LABEL_LEN: usize = 256;

pub(super) fn validate_labels(labels: &std::collections::BTreeMap<String, String>) -> Result<(), ManagerError> {
    if labels.len() > MAX_LABELS {
        return Err(ManagerError::invalid("labels", format!("at most {MAX_LABELS} labels")));
    }
    for (k, v) in labels {
        let key_ok = !k.is_empty()
            && k.len() <= 64
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
        if !key_ok {
            return Err(ManagerError::invalid(
                "labels",
                format!("label key `{k}` must be 1-64 characters of a-z, A-Z, 0-9, - _ . /"),
            ));
        }
        if v.len() > MAX_LABEL_LEN {
            return Err(ManagerError::invalid(
                "labels",
                format!("label `{k}` is longer than {MAX_LABEL_LEN} characters"),
            ));
        }
    }
    Ok(())
}

/// SHA-256 of a token secret, as stored.
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Manager {
    /// Refuse a new hold beyond `policy.max_holds` per user.
    pub(super) async fn check_hold_cap(&self, owner: &str) -> Result<(), ManagerError> {
        let held = self
            .store
            .list_leases(&LeaseFilter {
                owner: Some(owner.to_string()),
                states: LeaseState::ACTIVE.to_vec(),
                ..Default::default()
            })
            .await?
            .iter()
            .filter(|l| l.hold)
            .count();
        if held >= self.policy.max_holds as usize {
            return Err(ManagerError::Conflict(format!(
                "{owner} already holds {held} lease(s), the cap (max_holds); release one or unhold it (`stagelib extend ID --no-hold`) first"
            )));
        }
        Ok(())
    }

    async fn load_for(&self, actor: &Actor, id: LeaseId, action: Action) -> Result<Lease, ManagerError> {
        let lease = self.store.get_lease(id).await?;
        check_access(actor, action, Some(&lease))?;
        Ok(lease)
    }

    pub(super) fn build_new_lease(&self, actor: &Actor, req: &ReserveRequest) -> Result<NewLease, ManagerError> {
        let owner = match &req.owner {
            Some(o) if o != &actor.user => {
                if actor.scope != Scope::Admin {
                    return Err(ManagerError::invalid(
                        "owner",
                        "only an admin may reserve for another user",
                    ));
                }
                o.clone()
            }
            _ => actor.user.clone(),
        };
        if owner.trim().is_empty() || owner.len() > 128 {
            return Err(ManagerError::invalid("owner", "must be 1-128 characters"));
        }
        let namespace = match &req.namespace {
            Some(ns) => Namespace::parse(ns).map_err(|e| ManagerError::invalid("namespace", e))?,
            None => Namespace::from_owner(&owner).map_err(|e| ManagerError::invalid("owner", e))?,
        };
        let template = Template::by_name(req.template.as_deref().unwrap_or("default"))
            .map_err(|e| ManagerError::invalid("template", e))?;
        let ttl = match &req.ttl {
            Some(t) => Some(parse_duration(t).map_err(|e| ManagerError::invalid("ttl", e))?),
            None => None,
        };
        validate_labels(&req.labels)?;
        if let Some(seed) = &req.seed {
            if seed.is_empty() || seed.len() > 128 || seed.contains(['/', '\\']) || seed.contains("..") {
                return Err(ManagerError::invalid(
                    "seed",
                    "must be a snapshot name without path separators",
                ));
            }
            match self.seeder() {
                None => {
                    return Err(ManagerError::invalid(
                        "seed",
                        "this manager has no snapshot library; reserve without a seed",
                    ))
                }
                Some(s) if !s.exists(seed) => {
                    return Err(ManagerError::invalid(
                        "seed",
                        format!("no snapshot named `{seed}` (see `stagelib snapshot list`)"),
                    ))
                }
                Some(_) => {}
            }
        }
        let now = self.clock.now();
        let expires_at = self.policy.initial_expiry(now, ttl)?;
        let id = LeaseId::new();
        let stack_id = match &req.stack_id {
            Some(s) => {
                let ok = !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
                if !ok {
                    return Err(ManagerError::invalid(
                        "stack_id",
                        "must be 1-64 characters of a-z, 0-9 and -",
                    ));
                }
                s.clone()
            }
            None => id.to_string(),
        };
        Ok(NewLease {
            id,
            owner,
            namespace,
            stack_id,
            template,
            seed: req.seed.clone(),
            created_at: now,
            expires_at,
            hold: req.hold,
            labels: req.labels.clone(),
            backend: self.backend.name().to_string(),
        })
    }
}

#[async_trait]
impl LeaseService for Arc<Manager> {
    async fn reserve_or_wait(&self, actor: &Actor, req: ReserveRequest) -> Result<Reservation, ManagerError> {
        self.reserve_or_queue(actor, req).await
    }

    async fn queue_ticket(&self, actor: &Actor, id: &str) -> Result<QueueTicket, ManagerError> {
        Manager::queue_ticket(self, actor, id).await
    }

    async fn queue_cancel(&self, actor: &Actor, id: &str) -> Result<QueueTicket, ManagerError> {
        Manager::queue_cancel(self, actor, id).await
    }

    async fn queue_list(&self, actor: &Actor) -> Result<Vec<QueueTicket>, ManagerError> {
        check_access(actor, Action::List, None)?;
        self.queue_entries(actor).await
    }

    async fn pool_status(&self, actor: &Actor) -> Result<PoolStatus, ManagerError> {
        check_access(actor, Action::List, None)?;
        Manager::pool_report(self).await
    }

    async fn list(&self, actor: &Actor, query: ListQuery) -> Result<Vec<Lease>, ManagerError> {
        check_access(actor, if query.all { Action::ListAll } else { Action::List }, None)?;
        let filter = LeaseFilter {
            owner: if query.all { None } else { Some(actor.user.clone()) },
            states: query.states,
            stack_id: None,
            limit: Some(1000),
        };
        Ok(self.store.list_leases(&filter).await?)
    }

    async fn show(&self, actor: &Actor, id: LeaseId) -> Result<LeaseDetail, ManagerError> {
        let lease = self.load_for(actor, id, Action::Read).await?;
        let events = self.store.events(id).await?;
        Ok(LeaseDetail { lease, events })
    }

    async fn patch(&self, actor: &Actor, id: LeaseId, patch: LeasePatch) -> Result<Lease, ManagerError> {
        let lease = self.load_for(actor, id, Action::Change).await?;
        if let Some(labels) = &patch.labels {
            validate_labels(labels)?;
        }
        let expires_at = match &patch.extend_by {
            Some(by) => {
                let by = parse_duration(by).map_err(|e| ManagerError::invalid("extend_by", e))?;
                Some(self.policy.extend(&lease, by)?)
            }
            None => None,
        };
        if patch.extend_by.is_none() && patch.hold.is_none() && patch.labels.is_none() {
            return Err(ManagerError::invalid(
                "body",
                "nothing to change: give extend_by, hold or labels",
            ));
        }
        if !lease.state.is_active() {
            return Err(ManagerError::Conflict(format!(
                "lease {id} is `{}`; only active leases can be changed",
                lease.state
            )));
        }
        if patch.hold == Some(true) && !lease.hold {
            self.check_hold_cap(&lease.owner).await?;
        }
        let update = LeaseUpdate {
            expires_at,
            hold: patch.hold,
            last_heartbeat_at: None,
            labels: patch.labels,
        };
        Ok(self.store.update_lease(id, &update, self.clock.now()).await?)
    }

    async fn heartbeat(&self, actor: &Actor, id: LeaseId) -> Result<Lease, ManagerError> {
        let lease = self.load_for(actor, id, Action::Change).await?;
        let now = self.clock.now();
        let expires_at = self.policy.heartbeat(&lease, now)?;
        let update = LeaseUpdate {
            expires_at: Some(expires_at),
            last_heartbeat_at: Some(now),
            ..Default::default()
        };
        Ok(self.store.update_lease(id, &update, now).await?)
    }

    async fn release(&self, actor: &Actor, id: LeaseId) -> Result<Lease, ManagerError> {
        let lease = self.load_for(actor, id, Action::Release).await?;
        if matches!(lease.state, LeaseState::Released | LeaseState::Expired) {
            return Ok(lease);
        }
        let change = Change {
            actor: actor.user.clone(),
            at: self.clock.now(),
            reason: Some("released by its user".into()),
            endpoints: None,
        };
        let lease = if lease.state == LeaseState::Releasing {
            lease
        } else {
            self.store
                .transition(
                    id,
                    &LeaseState::sources_of(LeaseState::Releasing),
                    LeaseState::Releasing,
                    &change,
                )
                .await?
        };
        self.finish_release(lease, &actor.user).await
    }

    async fn endpoints(&self, actor: &Actor, id: LeaseId) -> Result<LeaseEndpoints, ManagerError> {
        let lease = self.load_for(actor, id, Action::ReadEndpoints).await?;
        match (lease.state, lease.endpoints) {
            (LeaseState::Ready, Some(endpoints)) => Ok(LeaseEndpoints {
                lease_id: lease.id,
                state: lease.state,
                namespace: lease.namespace.to_string(),
                owner: lease.owner,
                endpoints,
            }),
            (state, _) => Err(ManagerError::Conflict(format!(
                "lease {id} is `{state}`: endpoints exist only while it is `ready`{}",
                lease
                    .failure_reason
                    .map(|r| format!(" (failure: {r})"))
                    .unwrap_or_default()
            ))),
        }
    }

    async fn reap(&self, actor: &Actor, dry_run: bool) -> Result<ReapReport, ManagerError> {
        check_access(actor, Action::Reap, None)?;
        self.reap_once(&actor.user, dry_run).await
    }

    async fn create_token(&self, actor: &Actor, user: &str, scope: Scope) -> Result<NewToken, ManagerError> {
        check_access(actor, Action::ManageTokens, None)?;
        if user.trim().is_empty() || user.len() > 128 {
            return Err(ManagerError::invalid("user", "must be 1-128 characters"));
        }
        let secret = format!("stl_{}", hex::encode(rand::random::<[u8; 24]>()));
        let record = TokenRecord {
            id: uuid::Uuid::new_v4().to_string(),
            user: user.to_string(),
            scope,
            hash: hash_token(&secret),
            created_at: self.clock.now(),
        };
        self.store.create_token(&record).await?;
        Ok(NewToken {
            id: record.id,
            user: record.user,
            scope,
            token: secret,
        })
    }
}
