//! The little SQL both databases share for placement, the pool, the wait queue
//! and the manager instances: one transaction type per database behind
//! [`SqlTx`], so the procedures in `admission.rs` are written once.
//!
//! Statements are written with PostgreSQL's `$1` placeholders; the SQLite side
//! turns them into `?1` (same numbering). Locking clauses come from the dialect.
use async_trait::async_trait;
use sqlx::{Postgres, Sqlite, Transaction};

use super::row::{GraphDbRow, LeaseRow, TaskDbRow};
use super::StoreError;

/// One bound value.
#[derive(Debug, Clone)]
pub enum Val {
    Int(i64),
    Text(String),
    OptText(Option<String>),
    OptInt(Option<i64>),
    Bool(bool),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Self::Text(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Self::OptText(v)
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Self::OptInt(v)
    }
}

/// A pool row as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct PoolDbRow {
    pub stack_id: String,
    pub template: String,
    pub seed: Option<String>,
    pub host: String,
    pub state: String,
    pub worker: String,
    pub created_at: i64,
    pub ready_at: Option<i64>,
    pub endpoints: Option<String>,
}

pub(super) const POOL_COLUMNS: &str = "stack_id, template, seed, host, state, worker, created_at, ready_at, endpoints";

/// A waiter row as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct WaiterDbRow {
    pub seq: i64,
    pub id: String,
    pub owner: String,
    pub scope: String,
    pub request: String,
    pub created_at: i64,
    pub deadline: i64,
    pub last_seen_at: i64,
    pub state: String,
    pub lease_id: Option<String>,
    pub reason: Option<String>,
    pub settled_at: Option<i64>,
}

pub(super) const WAITER_COLUMNS: &str =
    "seq, id, owner, scope, request, created_at, deadline, last_seen_at, state, lease_id, reason, settled_at";

/// An open transaction on either database.
#[async_trait]
pub trait SqlTx: Send {
    /// `FOR UPDATE SKIP LOCKED` where the database has row locks, else nothing
    /// (SQLite transactions here are `BEGIN IMMEDIATE`: one writer at a time).
    fn skip_locked(&self) -> &'static str;
    /// Serialise with every other holder of `key` until the end of the transaction.
    async fn lock(&mut self, key: &str) -> Result<(), StoreError>;
    /// Rows affected.
    async fn exec(&mut self, sql: &str, args: Vec<Val>) -> Result<u64, StoreError>;
    async fn int(&mut self, sql: &str, args: Vec<Val>) -> Result<i64, StoreError>;
    async fn texts(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<String>, StoreError>;
    async fn counts(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<(String, i64)>, StoreError>;
    async fn pools(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<PoolDbRow>, StoreError>;
    async fn waiters(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<WaiterDbRow>, StoreError>;
    async fn graphs(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<GraphDbRow>, StoreError>;
    async fn tasks(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<TaskDbRow>, StoreError>;
    /// The raw result, so a unique violation can be told apart.
    async fn leases(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<LeaseRow>, sqlx::Error>;
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Val::Int(v) => q.bind(v),
                Val::Text(v) => q.bind(v),
                Val::OptText(v) => q.bind(v),
                Val::OptInt(v) => q.bind(v),
                Val::Bool(v) => q.bind(v),
            };
        }
        q
    }};
}

macro_rules! impl_sql_tx {
    ($ty:ident, $db:ty, $skip:expr, $conv:expr, $lock:expr) => {
        pub struct $ty(pub Transaction<'static, $db>);

        #[async_trait]
        impl SqlTx for $ty {
            fn skip_locked(&self) -> &'static str {
                $skip
            }
            async fn lock(&mut self, key: &str) -> Result<(), StoreError> {
                let lock: Option<&str> = $lock;
                if let Some(sql) = lock {
                    sqlx::query(sql)
                        .bind(key.to_string())
                        .execute(&mut *self.0)
                        .await?;
                }
                Ok(())
            }
            async fn exec(&mut self, sql: &str, args: Vec<Val>) -> Result<u64, StoreError> {
                let sql = $conv(sql);
                let q = bind_all!(sqlx::query(&sql), args);
                Ok(q.execute(&mut *self.0).await?.rows_affected())
            }
            async fn int(&mut self, sql: &str, args: Vec<Val>) -> Result<i64, StoreError> {
                let sql = $conv(sql);
                let q = bind_all!(sqlx::query_scalar::<_, i64>(&sql), args);
                Ok(q.fetch_one(&mut *self.0).await?)
            }
            async fn texts(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<String>, StoreError> {
                let sql = $conv(sql);
                let q = bind_all!(sqlx::query_scalar::<_, String>(&sql), args);
                Ok(q.fetch_all(&mut *self.0).await?)
            }
            async fn counts(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<(String, i64)>, StoreError> {
                let sql = $conv(sql);
                let q = bind_all!(sqlx::query_as::<_, (String, i64)>(&sql), args);
                Ok(q.fetch_all(&mut *self.0).await?)
            }
            async fn pools(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<PoolDbRow>, StoreError> {
                let sql = $conv(sql);
                let q = bind_all!(sqlx::query_as::<_, PoolDbRow>(&sql), args);
                Ok(q.fetch_all(&mut *self.0).await?)
            }
            async fn waiters(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<WaiterDbRow>, StoreError> {
                let sql = $conv(sql);
                let q = bind_all!(sqlx::query_as::<_, WaiterDbRow>(&sql), args);
                Ok(q.fetch_all(&mut *self.0).await?)
            }
            async fn graphs(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<GraphDbRow>, StoreError> {
                let sql = $conv(sql);
                let q = bind_all!(sqlx::query_as::<_, GraphDbRow>(&sql), args);
                Ok(q.fetch_all(&mut *self.0).await?)
            }
            async fn tasks(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<TaskDbRow>, StoreError> {
                let sql = $conv(sql);
                let q = bind_all!(sqlx::query_as::<_, TaskDbRow>(&sql), args);
                Ok(q.fetch_all(&mut *self.0).await?)
            }
            async fn leases(&mut self, sql: &str, args: Vec<Val>) -> Result<Vec<LeaseRow>, sqlx::Error> {
                let sql = $conv(sql);
                let q = bind_all!(sqlx::query_as::<_, LeaseRow>(&sql), args);
                q.fetch_all(&mut *self.0).await
            }
            async fn commit(self: Box<Self>) -> Result<(), StoreError> {
                Ok(self.0.commit().await?)
            }
        }
    };
}

fn pg_sql(sql: &str) -> String {
    sql.to_string()
}

/// `$1` → `?1`: SQLite numbers its parameters the same way with `?NNN`.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

impl_sql_tx!(
    PgTx,
    Postgres,
    " FOR UPDATE SKIP LOCKED",
    pg_sql,
    Some("SELECT pg_advisory_xact_lock(hashtext($1))")
);
impl_sql_tx!(LiteTx, Sqlite, "", sqlite_sql, None);

#[cfg(test)]
mod tests {
    #[test]
    fn sqlite_placeholders_keep_their_numbers() {
        assert_eq!(
            super::sqlite_sql("SELECT a FROM t WHERE b = $2 AND c = $1"),
            "SELECT a FROM t WHERE b = ?2 AND c = ?1"
        );
    }
}
