//! Sqlite implementation of [`Store`](super::Store). (Being written.)
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

use super::{Change, LeaseFilter, LeaseUpdate, Store, StoreError, TokenRecord};
use crate::lease::{AuditEvent, Lease, LeaseId, LeaseState, NewLease};

pub struct SqliteStore {}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }
    async fn create_lease(&self, _new: &NewLease, _quota: u32, _actor: &str) -> Result<Lease, StoreError> {
        Err(StoreError::Corrupt("not implemented".into()))
    }
    async fn get_lease(&self, id: LeaseId) -> Result<Lease, StoreError> {
        Err(StoreError::NotFound(id))
    }
    async fn list_leases(&self, _filter: &LeaseFilter) -> Result<Vec<Lease>, StoreError> {
        Ok(vec![])
    }
    async fn transition(
        &self,
        id: LeaseId,
        _from: &[LeaseState],
        _to: LeaseState,
        _change: &Change,
    ) -> Result<Lease, StoreError> {
        Err(StoreError::NotFound(id))
    }
    async fn update_lease(&self, id: LeaseId, _update: &LeaseUpdate, _at: DateTime<Utc>) -> Result<Lease, StoreError> {
        Err(StoreError::NotFound(id))
    }
    async fn find_stale(&self, _now: DateTime<Utc>, _max_ttl: Duration) -> Result<Vec<Lease>, StoreError> {
        Ok(vec![])
    }
    async fn expire_stale(
        &self,
        _now: DateTime<Utc>,
        _max_ttl: Duration,
        _actor: &str,
    ) -> Result<Vec<Lease>, StoreError> {
        Ok(vec![])
    }
    async fn events(&self, _id: LeaseId) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(vec![])
    }
    async fn count_by_state(&self) -> Result<BTreeMap<LeaseState, u64>, StoreError> {
        Ok(BTreeMap::new())
    }
    async fn create_token(&self, _token: &TokenRecord) -> Result<(), StoreError> {
        Ok(())
    }
    async fn find_token(&self, _hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(None)
    }
}
