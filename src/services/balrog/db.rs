//! Balrog's state: in memory for fast reads, written through to SQLite under
//! `--data-dir` (WAL, `synchronous=FULL`) before a write is acknowledged, and
//! loaded back at start, so a restart — even after `kill -9` — loses nothing
//! that was acknowledged. Writers are serialised by one lock.
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use tokio::sync::{RwLock, RwLockWriteGuard};

use super::rule::Rule;
use super::source::{SourceError, UpdateSource};

#[derive(Debug, thiserror::Error)]
#[error("balrog database: {0}")]
pub struct DbError(String);

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        Self(e.to_string())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReleaseRow {
    pub name: String,
    pub product: String,
    /// Shared: the update path reads blobs without copying them.
    pub blob: std::sync::Arc<Value>,
    pub data_version: i64,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Shutoff {
    pub product: String,
    pub channel: String,
    pub comment: Option<String>,
    pub data_version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pin {
    pub product: String,
    pub channel: String,
    pub version: String,
    pub mapping: String,
    pub data_version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequiredSignoff {
    pub product: String,
    pub channel: String,
    pub role: String,
    pub signoffs_required: i64,
    pub data_version: i64,
}

/// A permission of a user (`admin`, `rule`, `release`, …) with its options
/// (`{"products": [...], "actions": [...]}`; `None` = unrestricted).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Permission {
    pub username: String,
    pub permission: String,
    #[serde(default)]
    pub options: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

/// A role held by a user (what signoffs are counted against).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserRole {
    pub username: String,
    pub role: String,
}

/// A scheduled change of a rule, release or emergency shutoff.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScheduledChange {
    pub sc_id: i64,
    /// `rules`, `releases` or `emergency_shutoff`.
    pub object: String,
    pub change_type: String,
    pub when: i64,
    pub scheduled_by: String,
    pub complete: bool,
    pub sc_data_version: i64,
    /// The columns of the changed row (rule fields, or name/product/data…).
    pub fields: serde_json::Map<String, Value>,
    /// username → role.
    pub signoffs: BTreeMap<String, String>,
}

/// Everything Balrog knows.
#[derive(Debug, Default)]
pub struct State {
    pub releases: BTreeMap<String, ReleaseRow>,
    pub rules: BTreeMap<i64, Rule>,
    pub shutoffs: BTreeMap<(String, String), Shutoff>,
    pub pins: BTreeMap<(String, String, String), Pin>,
    pub required_signoffs: BTreeMap<(String, String, String), RequiredSignoff>,
    pub scheduled: BTreeMap<i64, ScheduledChange>,
    pub permissions: BTreeMap<(String, String), Permission>,
    pub roles: BTreeMap<(String, String), UserRole>,
    /// Rule-ID offset of each namespace seeded onto this instance.
    pub namespaces: BTreeMap<String, i64>,
}

impl State {
    pub fn rule(&self, id_or_alias: &str) -> Option<&Rule> {
        match id_or_alias.parse::<i64>() {
            Ok(id) => self.rules.get(&id),
            Err(_) => self.rules.values().find(|r| r.alias.as_deref() == Some(id_or_alias)),
        }
    }

    pub fn next_rule_id(&self) -> i64 {
        self.rules.keys().next_back().copied().unwrap_or(0) + 1
    }

    pub fn next_sc_id(&self) -> i64 {
        self.scheduled.keys().next_back().copied().unwrap_or(0) + 1
    }
}

/// One change to persist.
pub enum Op {
    Put {
        kind: &'static str,
        key: String,
        value: Value,
    },
    Delete {
        kind: &'static str,
        key: String,
    },
    /// A release version kept for three-way merges.
    History {
        name: String,
        data_version: i64,
        blob: Value,
    },
}

pub fn key2(a: &str, b: &str) -> String {
    format!("{a}\u{1f}{b}")
}

pub fn key3(a: &str, b: &str, c: &str) -> String {
    format!("{a}\u{1f}{b}\u{1f}{c}")
}

pub struct BalrogDb {
    pool: SqlitePool,
    state: RwLock<State>,
}

impl BalrogDb {
    pub async fn open(data_dir: &Path) -> Result<Self, DbError> {
        let url = format!("sqlite://{}", data_dir.join("balrog.db").display());
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(30));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, \
             PRIMARY KEY (kind, key))",
        )
        .execute(&pool)
        .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS release_history (name TEXT NOT NULL, data_version INTEGER NOT NULL, \
             blob TEXT NOT NULL, PRIMARY KEY (name, data_version))",
        )
        .execute(&pool)
        .await?;
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT kind, value FROM objects")
            .fetch_all(&pool)
            .await?;
        let mut state = State::default();
        let bad = |e: serde_json::Error| DbError(format!("corrupt row: {e}"));
        for (kind, value) in rows {
            match kind.as_str() {
                "release" => {
                    let r: ReleaseRow = serde_json::from_str(&value).map_err(bad)?;
                    state.releases.insert(r.name.clone(), r);
                }
                "rule" => {
                    let r: Rule = serde_json::from_str(&value).map_err(bad)?;
                    state.rules.insert(r.rule_id, r);
                }
                "shutoff" => {
                    let s: Shutoff = serde_json::from_str(&value).map_err(bad)?;
                    state.shutoffs.insert((s.product.clone(), s.channel.clone()), s);
                }
                "pin" => {
                    let p: Pin = serde_json::from_str(&value).map_err(bad)?;
                    state
                        .pins
                        .insert((p.product.clone(), p.channel.clone(), p.version.clone()), p);
                }
                "rs" => {
                    let r: RequiredSignoff = serde_json::from_str(&value).map_err(bad)?;
                    state
                        .required_signoffs
                        .insert((r.product.clone(), r.channel.clone(), r.role.clone()), r);
                }
                "sc" => {
                    let s: ScheduledChange = serde_json::from_str(&value).map_err(bad)?;
                    state.scheduled.insert(s.sc_id, s);
                }
                "perm" => {
                    let p: Permission = serde_json::from_str(&value).map_err(bad)?;
                    state.permissions.insert((p.username.clone(), p.permission.clone()), p);
                }
                "role" => {
                    let r: UserRole = serde_json::from_str(&value).map_err(bad)?;
                    state.roles.insert((r.username.clone(), r.role.clone()), r);
                }
                "ns" => {
                    let (ns, offset): (String, i64) = serde_json::from_str(&value).map_err(bad)?;
                    state.namespaces.insert(ns, offset);
                }
                _ => {}
            }
        }
        Ok(Self {
            pool,
            state: RwLock::new(state),
        })
    }

    pub async fn read(&self) -> tokio::sync::RwLockReadGuard<'_, State> {
        self.state.read().await
    }

    /// Take the writer lock: changes are persisted with [`BalrogDb::persist`]
    /// before the in-memory state is changed.
    pub async fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().await
    }

    /// Persist `ops` in one transaction (durable when this returns).
    pub async fn persist(&self, ops: Vec<Op>) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        for op in ops {
            match op {
                Op::Put { kind, key, value } => {
                    sqlx::query("INSERT OR REPLACE INTO objects (kind, key, value) VALUES (?, ?, ?)")
                        .bind(kind)
                        .bind(key)
                        .bind(value.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                Op::Delete { kind, key } => {
                    sqlx::query("DELETE FROM objects WHERE kind = ? AND key = ?")
                        .bind(kind)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                Op::History {
                    name,
                    data_version,
                    blob,
                } => {
                    sqlx::query("INSERT OR REPLACE INTO release_history (name, data_version, blob) VALUES (?, ?, ?)")
                        .bind(name)
                        .bind(data_version)
                        .bind(blob.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// A release blob as it was at `data_version`.
    pub async fn release_at(&self, name: &str, data_version: i64) -> Result<Option<Value>, DbError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT blob FROM release_history WHERE name = ? AND data_version = ?")
                .bind(name)
                .bind(data_version)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(b,)| serde_json::from_str(&b).ok()))
    }

    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

pub fn put_release(r: &ReleaseRow) -> Vec<Op> {
    vec![
        Op::Put {
            kind: "release",
            key: r.name.clone(),
            value: serde_json::to_value(r).unwrap_or(Value::Null),
        },
        Op::History {
            name: r.name.clone(),
            data_version: r.data_version,
            blob: (*r.blob).clone(),
        },
    ]
}

pub fn put_rule(r: &Rule) -> Op {
    Op::Put {
        kind: "rule",
        key: r.rule_id.to_string(),
        value: serde_json::to_value(r).unwrap_or(Value::Null),
    }
}

pub fn put_sc(s: &ScheduledChange) -> Op {
    Op::Put {
        kind: "sc",
        key: s.sc_id.to_string(),
        value: serde_json::to_value(s).unwrap_or(Value::Null),
    }
}

#[async_trait]
impl UpdateSource for BalrogDb {
    async fn rules(&self) -> Result<Vec<Rule>, SourceError> {
        Ok(self.read().await.rules.values().cloned().collect())
    }

    async fn release(&self, name: &str) -> Result<Option<std::sync::Arc<Value>>, SourceError> {
        Ok(self.read().await.releases.get(name).map(|r| r.blob.clone()))
    }

    async fn release_product(&self, name: &str) -> Result<Option<String>, SourceError> {
        Ok(self.read().await.releases.get(name).map(|r| r.product.clone()))
    }

    async fn emergency_shutoff(&self, product: &str, channel: &str) -> Result<bool, SourceError> {
        Ok(self
            .read()
            .await
            .shutoffs
            .contains_key(&(product.to_string(), channel.to_string())))
    }

    async fn pinned_release(&self, product: &str, channel: &str, version: &str) -> Result<Option<String>, SourceError> {
        Ok(self
            .read()
            .await
            .pins
            .get(&(product.to_string(), channel.to_string(), version.to_string()))
            .map(|p| p.mapping.clone()))
    }
}
