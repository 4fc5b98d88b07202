//! SQLite implementation of [`Store`]: the embedded default. WAL journal,
//! `synchronous=FULL` (an acknowledged change survives a crash), a busy timeout,
//! and write transactions opened with `BEGIN IMMEDIATE` so concurrent writers
//! queue instead of failing.
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use super::row::{self, EventRow, LeaseRow, TokenRow, ACTIVE_SQL, EXPIRABLE_SQL, LEASE_COLUMNS};
use super::{Change, LeaseFilter, LeaseUpdate, Store, StoreError, TokenRecord};
use crate::lease::{AuditEvent, Lease, LeaseId, LeaseState};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let connect_err = |source| StoreError::Connect {
            url: url.to_string(),
            hint: "check the path and its permissions (--database-url sqlite:///path/to/file.db)",
            source,
        };
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(connect_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(StdDuration::from_secs(30))
            .foreign_keys(true);
        if let Some(parent) = opts.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                let _ = std::fs::create_dir_all(parent);
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(StdDuration::from_secs(60))
            .connect_with(opts)
            .await
            .map_err(connect_err)?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn current_state(tx: &mut sqlx::SqliteConnection, id: LeaseId) -> Result<Option<LeaseState>, StoreError> {
        let s: Option<String> = sqlx::query_scalar("SELECT state FROM leases WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(tx)
            .await?;
        s.as_deref().map(row::state).transpose()
    }
}

async fn insert_event(
    tx: &mut sqlx::SqliteConnection,
    id: LeaseId,
    at: DateTime<Utc>,
    actor: &str,
    from: Option<LeaseState>,
    to: LeaseState,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO lease_events (lease_id, at, actor, from_state, to_state, reason) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(id.to_string())
    .bind(row::ms(at))
    .bind(actor)
    .bind(from.map(|s| s.as_str()))
    .bind(to.as_str())
    .bind(reason)
    .execute(tx)
    .await?;
    Ok(())
}

fn stale_condition() -> String {
    format!("state IN {EXPIRABLE_SQL} AND ((hold = 0 AND expires_at <= ?1) OR (hold = 1 AND created_at + ?2 <= ?1))")
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn begin(&self) -> Result<Box<dyn super::sql::SqlTx>, StoreError> {
        Ok(Box::new(super::sql::LiteTx(self.write_tx().await?)))
    }

    async fn get_lease(&self, id: LeaseId) -> Result<Lease, StoreError> {
        let r = sqlx::query_as::<_, LeaseRow>(&format!("SELECT {LEASE_COLUMNS} FROM leases WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound(id))?;
        Lease::try_from(r)
    }

    async fn list_leases(&self, filter: &LeaseFilter) -> Result<Vec<Lease>, StoreError> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(format!("SELECT {LEASE_COLUMNS} FROM leases WHERE 1 = 1"));
        if let Some(owner) = &filter.owner {
            q.push(" AND owner = ").push_bind(owner.clone());
        }
        if let Some(stack) = &filter.stack_id {
            q.push(" AND stack_id = ").push_bind(stack.clone());
        }
        if !filter.states.is_empty() {
            q.push(format!(" AND state IN {}", row::state_list(&filter.states)));
        }
        q.push(" ORDER BY created_at DESC, id");
        if let Some(limit) = filter.limit {
            q.push(" LIMIT ").push_bind(i64::from(limit));
        }
        row::leases(q.build_query_as::<LeaseRow>().fetch_all(&self.pool).await?)
    }

    async fn transition(
        &self,
        id: LeaseId,
        from: &[LeaseState],
        to: LeaseState,
        change: &Change,
    ) -> Result<Lease, StoreError> {
        let mut tx = self.write_tx().await?;
        let current = Self::current_state(&mut tx, id)
            .await?
            .ok_or(StoreError::NotFound(id))?;
        let conflict = || StoreError::StateConflict {
            id,
            current,
            expected: from.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        };
        if !from.contains(&current) {
            return Err(conflict());
        }
        let endpoints = change.endpoints.as_ref().map(row::json).transpose()?;
        let terminal = matches!(to, LeaseState::Released | LeaseState::Expired);
        let updated = sqlx::query_as::<_, LeaseRow>(&format!(
            "UPDATE leases SET state = ?, updated_at = ?, \
               failure_reason = CASE WHEN ? = 'failed' THEN ? ELSE failure_reason END, \
               endpoints = CASE WHEN ? THEN NULL ELSE COALESCE(?, endpoints) END \
             WHERE id = ? AND state = ? RETURNING {LEASE_COLUMNS}"
        ))
        .bind(to.as_str())
        .bind(row::ms(change.at))
        .bind(to.as_str())
        .bind(&change.reason)
        .bind(terminal)
        .bind(endpoints)
        .bind(id.to_string())
        .bind(current.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(conflict)?;
        insert_event(
            &mut tx,
            id,
            change.at,
            &change.actor,
            Some(current),
            to,
            change.reason.as_deref(),
        )
        .await?;
        tx.commit().await?;
        Lease::try_from(updated)
    }

    async fn update_lease(&self, id: LeaseId, update: &LeaseUpdate, at: DateTime<Utc>) -> Result<Lease, StoreError> {
        let mut tx = self.write_tx().await?;
        let labels = update.labels.as_ref().map(row::json).transpose()?;
        let updated = sqlx::query_as::<_, LeaseRow>(&format!(
            "UPDATE leases SET expires_at = COALESCE(?, expires_at), hold = COALESCE(?, hold), \
               last_heartbeat_at = COALESCE(?, last_heartbeat_at), labels = COALESCE(?, labels), updated_at = ? \
             WHERE id = ? AND state IN {ACTIVE_SQL} RETURNING {LEASE_COLUMNS}"
        ))
        .bind(update.expires_at.map(row::ms))
        .bind(update.hold)
        .bind(update.last_heartbeat_at.map(row::ms))
        .bind(labels)
        .bind(row::ms(at))
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(updated) = updated else {
            let current = Self::current_state(&mut tx, id)
                .await?
                .ok_or(StoreError::NotFound(id))?;
            return Err(StoreError::StateConflict {
                id,
                current,
                expected: "an active state".into(),
            });
        };
        tx.commit().await?;
        Lease::try_from(updated)
    }

    async fn find_stale(&self, now: DateTime<Utc>, max_ttl: Duration) -> Result<Vec<Lease>, StoreError> {
        let rows = sqlx::query_as::<_, LeaseRow>(&format!(
            "SELECT {LEASE_COLUMNS} FROM leases WHERE {} ORDER BY expires_at",
            stale_condition()
        ))
        .bind(row::ms(now))
        .bind(max_ttl.num_milliseconds())
        .fetch_all(&self.pool)
        .await?;
        row::leases(rows)
    }

    async fn expire_stale(&self, now: DateTime<Utc>, max_ttl: Duration, actor: &str) -> Result<Vec<Lease>, StoreError> {
        let mut tx = self.write_tx().await?;
        // Audit events first (they need the old state), then the CAS update; the
        // IMMEDIATE transaction keeps both on the same set of rows.
        sqlx::query(&format!(
            "INSERT INTO lease_events (lease_id, at, actor, from_state, to_state, reason) \
             SELECT id, ?1, ?3, state, 'expired', ?4 FROM leases WHERE {}",
            stale_condition()
        ))
        .bind(row::ms(now))
        .bind(max_ttl.num_milliseconds())
        .bind(actor)
        .bind(row::EXPIRED_REASON)
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query_as::<_, LeaseRow>(&format!(
            "UPDATE leases SET state = 'expired', updated_at = ?1, endpoints = NULL WHERE {} RETURNING {LEASE_COLUMNS}",
            stale_condition()
        ))
        .bind(row::ms(now))
        .bind(max_ttl.num_milliseconds())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        row::leases(rows)
    }

    async fn events(&self, id: LeaseId) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query_as::<_, EventRow>(
            "SELECT lease_id, at, actor, from_state, to_state, reason FROM lease_events WHERE lease_id = ? ORDER BY id",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AuditEvent::try_from).collect()
    }

    async fn count_by_state(&self) -> Result<BTreeMap<LeaseState, u64>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT state, COUNT(*) FROM leases GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        row::count_map(rows)
    }

    async fn create_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO tokens (id, user_name, scope, hash, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&token.id)
            .bind(&token.user)
            .bind(token.scope.as_str())
            .bind(&token.hash)
            .bind(row::ms(token.created_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let r =
            sqlx::query_as::<_, TokenRow>("SELECT id, user_name, scope, hash, created_at FROM tokens WHERE hash = ?")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        r.map(TokenRecord::try_from).transpose()
    }
}
