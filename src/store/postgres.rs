//! PostgreSQL implementation of [`Store`]: shared state for several managers.
//! The quota is enforced under a per-owner advisory lock; state changes are
//! single `UPDATE … RETURNING` statements that lock the row they change; the
//! reaper claims stale leases with `FOR UPDATE SKIP LOCKED`, so several reapers
//! never expire the same lease twice.
use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::row::{self, EventRow, LeaseRow, TokenRow, ACTIVE_SQL, EXPIRABLE_SQL, LEASE_COLUMNS};
use super::{Change, LeaseFilter, LeaseUpdate, Store, StoreError, TokenRecord};
use crate::lease::{AuditEvent, Lease, LeaseId, LeaseState};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pool: PgPool,
}

/// A lease row plus the state it had before an update.
#[derive(sqlx::FromRow)]
struct ChangedRow {
    #[sqlx(flatten)]
    lease: LeaseRow,
    old_state: String,
}

impl PostgresStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let connect_err = |source| StoreError::Connect {
            url: crate::cli::config::redact_url(url),
            hint: "is PostgreSQL running and the URL right? (postgres://USER:PASSWORD@HOST:5432/DB)",
            source,
        };
        let opts: PgConnectOptions = url.parse().map_err(connect_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .acquire_timeout(StdDuration::from_secs(60))
            .connect_with(opts)
            .await
            .map_err(connect_err)?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    async fn state_of(&self, id: LeaseId) -> Result<LeaseState, StoreError> {
        let s: Option<String> = sqlx::query_scalar("SELECT state FROM leases WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row::state(&s.ok_or(StoreError::NotFound(id))?)
    }
}

fn stale_condition() -> String {
    format!("state IN {EXPIRABLE_SQL} AND ((NOT hold AND expires_at <= $1) OR (hold AND created_at + $2 <= $1))")
}

fn prefixed_columns(prefix: &str) -> String {
    LEASE_COLUMNS
        .split(", ")
        .map(|c| format!("{prefix}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl Store for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn begin(&self) -> Result<Box<dyn super::sql::SqlTx>, StoreError> {
        Ok(Box::new(super::sql::PgTx(self.pool.begin().await?)))
    }

    async fn get_lease(&self, id: LeaseId) -> Result<Lease, StoreError> {
        let r = sqlx::query_as::<_, LeaseRow>(&format!("SELECT {LEASE_COLUMNS} FROM leases WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound(id))?;
        Lease::try_from(r)
    }

    async fn list_leases(&self, filter: &LeaseFilter) -> Result<Vec<Lease>, StoreError> {
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!("SELECT {LEASE_COLUMNS} FROM leases WHERE TRUE"));
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
        let mut tx = self.pool.begin().await?;
        let endpoints = change.endpoints.as_ref().map(row::json).transpose()?;
        let terminal = matches!(to, LeaseState::Released | LeaseState::Expired);
        let from_sql: Vec<String> = from.iter().map(|s| s.as_str().to_string()).collect();
        // One statement: lock the row, compare its state, swap it, return old and new.
        let changed = sqlx::query_as::<_, ChangedRow>(&format!(
            "UPDATE leases l SET state = $2, updated_at = $3, \
               failure_reason = CASE WHEN $2 = 'failed' THEN $4 ELSE l.failure_reason END, \
               endpoints = CASE WHEN $5 THEN NULL ELSE COALESCE($6, l.endpoints) END \
             FROM (SELECT id, state FROM leases WHERE id = $1 FOR UPDATE) o \
             WHERE l.id = o.id AND o.state = ANY($7) \
             RETURNING {}, o.state AS old_state",
            prefixed_columns("l")
        ))
        .bind(id.to_string())
        .bind(to.as_str())
        .bind(row::ms(change.at))
        .bind(&change.reason)
        .bind(terminal)
        .bind(endpoints)
        .bind(&from_sql)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(changed) = changed else {
            drop(tx);
            let current = self.state_of(id).await?;
            return Err(StoreError::StateConflict {
                id,
                current,
                expected: from_sql.join(", "),
            });
        };
        sqlx::query(
            "INSERT INTO lease_events (lease_id, at, actor, from_state, to_state, reason) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.to_string())
        .bind(row::ms(change.at))
        .bind(&change.actor)
        .bind(&changed.old_state)
        .bind(to.as_str())
        .bind(&change.reason)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Lease::try_from(changed.lease)
    }

    async fn update_lease(&self, id: LeaseId, update: &LeaseUpdate, at: DateTime<Utc>) -> Result<Lease, StoreError> {
        let labels = update.labels.as_ref().map(row::json).transpose()?;
        let updated = sqlx::query_as::<_, LeaseRow>(&format!(
            "UPDATE leases SET expires_at = COALESCE($1, expires_at), hold = COALESCE($2, hold), \
               last_heartbeat_at = COALESCE($3, last_heartbeat_at), labels = COALESCE($4, labels), updated_at = $5 \
             WHERE id = $6 AND state IN {ACTIVE_SQL} RETURNING {LEASE_COLUMNS}"
        ))
        .bind(update.expires_at.map(row::ms))
        .bind(update.hold)
        .bind(update.last_heartbeat_at.map(row::ms))
        .bind(labels)
        .bind(row::ms(at))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        match updated {
            Some(r) => Lease::try_from(r),
            None => Err(StoreError::StateConflict {
                id,
                current: self.state_of(id).await?,
                expected: "an active state".into(),
            }),
        }
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
        let rows = sqlx::query_as::<_, LeaseRow>(&format!(
            "WITH stale AS (SELECT id, state FROM leases WHERE {} FOR UPDATE SKIP LOCKED), \
             upd AS (UPDATE leases l SET state = 'expired', updated_at = $1, endpoints = NULL \
                     FROM stale WHERE l.id = stale.id RETURNING {}, stale.state AS old_state), \
             ev AS (INSERT INTO lease_events (lease_id, at, actor, from_state, to_state, reason) \
                    SELECT id, $1, $3, old_state, 'expired', $4 FROM upd) \
             SELECT {LEASE_COLUMNS} FROM upd",
            stale_condition(),
            prefixed_columns("l")
        ))
        .bind(row::ms(now))
        .bind(max_ttl.num_milliseconds())
        .bind(actor)
        .bind(row::EXPIRED_REASON)
        .fetch_all(&self.pool)
        .await?;
        row::leases(rows)
    }

    async fn events(&self, id: LeaseId) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = sqlx::query_as::<_, EventRow>(
            "SELECT lease_id, at, actor, from_state, to_state, reason FROM lease_events WHERE lease_id = $1 ORDER BY id",
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
        sqlx::query("INSERT INTO tokens (id, user_name, scope, hash, created_at) VALUES ($1, $2, $3, $4, $5)")
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
            sqlx::query_as::<_, TokenRow>("SELECT id, user_name, scope, hash, created_at FROM tokens WHERE hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        r.map(TokenRecord::try_from).transpose()
    }
}
