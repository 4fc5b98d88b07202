//! The executor: runs a graph's tasks on tokio as their dependencies finish,
//! at most `parallel` at a time, retrying failures that may pass (5xx, version
//! conflicts) with backoff, writing each task's log and its final state to the
//! store. A run can be cancelled, and resumed after a crash: tasks already
//! `completed` (or replaced by an earlier graph) are not run again.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::Utc;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::graph::{Plan, TaskDef};
use super::snowman::Fate;
use crate::clients::http::RetryPolicy;
use crate::store::{Store, StoreError, TaskRow};

/// Why a task failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TaskError {
    /// Worth another try (a 5xx, a data-version conflict, a connection reset).
    #[error("{0}")]
    Retryable(String),
    #[error("{0}")]
    Fatal(String),
}

impl From<crate::clients::http::ClientError> for TaskError {
    fn from(e: crate::clients::http::ClientError) -> Self {
        if e.is_retryable() {
            Self::Retryable(e.to_string())
        } else {
            Self::Fatal(e.to_string())
        }
    }
}

/// A task's log lines.
#[derive(Debug, Default, Clone)]
pub struct TaskLog {
    lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl TaskLog {
    pub fn line(&self, s: impl Into<String>) {
        let line = format!("[{}] {}", Utc::now().format("%H:%M:%S%.3f"), s.into());
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    }

    fn text(&self) -> String {
        let mut t = self.lines.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
        t.push('\n');
        t
    }
}

/// Runs one task. `Ok` carries a one-line summary for the report.
#[async_trait]
pub trait TaskRunner: Send + Sync {
    async fn run(&self, task: &TaskDef, log: &TaskLog) -> Result<String, TaskError>;
}

/// Called with each settled task, how many have settled and how many will.
pub type Progress = Arc<dyn Fn(&TaskResult, usize, usize) + Send + Sync>;

/// How a run proceeds.
#[derive(Clone)]
pub struct ExecOptions {
    pub parallel: usize,
    pub retry: RetryPolicy,
    pub cancel: CancellationToken,
    /// Where per-task logs go (`<dir>/<graph>/<label>.log`).
    pub log_dir: Option<PathBuf>,
    /// Called after each task settles.
    pub progress: Option<Progress>,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            parallel: 16,
            retry: RetryPolicy::default(),
            cancel: CancellationToken::new(),
            log_dir: None,
            progress: None,
        }
    }
}

/// What happened to one task.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TaskResult {
    pub label: String,
    pub kind: String,
    pub task_id: String,
    /// `completed`, `failed`, `replaced`, `blocked` (a dependency failed),
    /// `cancelled`, `skipped` (completed by an earlier run of this graph).
    pub state: String,
    pub attempts: i64,
    pub seconds: f64,
    pub detail: String,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub graph_id: String,
    pub flavor: String,
    pub seconds: f64,
    pub ok: bool,
    pub tasks: Vec<TaskResult>,
}

impl RunReport {
    pub fn count(&self, state: &str) -> usize {
        self.tasks.iter().filter(|t| t.state == state).count()
    }

    pub fn failures(&self) -> impl Iterator<Item = &TaskResult> {
        self.tasks.iter().filter(|t| t.state == "failed")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("graph {0} is not in the store")]
    UnknownGraph(String),
}

/// Store a planned graph: every task of its target set, `pending` or `replaced`.
pub async fn record(store: &dyn Store, lease_id: &str, plan: &Plan) -> Result<(), StoreError> {
    let record = serde_json::to_value(plan).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let tasks: Vec<TaskRow> = plan
        .fates
        .iter()
        .map(|(label, fate)| TaskRow {
            label: label.clone(),
            task_id: plan.label_to_taskid.get(label).cloned().unwrap_or_default(),
            state: match fate {
                Fate::Run => "pending".into(),
                Fate::Replaced(_) => "replaced".into(),
            },
            attempts: 0,
            detail: None,
            started_at: None,
            finished_at: None,
        })
        .collect();
    store
        .create_graph(
            &crate::store::GraphRow {
                graph_id: plan.graph_id.clone(),
                lease_id: lease_id.to_string(),
                flavor: plan.flavor.clone(),
                created_at: Utc::now(),
                record,
            },
            &tasks,
        )
        .await
}

/// Load a stored graph's plan.
pub async fn load(store: &dyn Store, graph_id: &str) -> Result<(Plan, Vec<TaskRow>), ExecError> {
    let (g, tasks) = store
        .get_graph(graph_id)
        .await?
        .ok_or_else(|| ExecError::UnknownGraph(graph_id.to_string()))?;
    let plan: Plan = serde_json::from_value(g.record)
        .map_err(|e| ExecError::Store(StoreError::Corrupt(format!("graph {graph_id}: {e}"))))?;
    Ok((plan, tasks))
}

fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Run (or resume) the stored graph `graph_id`.
pub async fn execute(
    store: Arc<dyn Store>,
    graph_id: &str,
    runner: Arc<dyn TaskRunner>,
    opts: ExecOptions,
) -> Result<RunReport, ExecError> {
    let started = Instant::now();
    let (plan, rows) = load(store.as_ref(), graph_id).await?;
    let rows: BTreeMap<String, TaskRow> = rows.into_iter().map(|r| (r.label.clone(), r)).collect();
    let mut results: BTreeMap<String, TaskResult> = BTreeMap::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut pending: BTreeSet<String> = BTreeSet::new();
    for (label, row) in &rows {
        let kind = plan.tasks.get(label).map(|t| t.kind.clone()).unwrap_or_default();
        match row.state.as_str() {
            "completed" | "replaced" => {
                done.insert(label.clone());
                results.insert(
                    label.clone(),
                    TaskResult {
                        label: label.clone(),
                        kind,
                        task_id: row.task_id.clone(),
                        state: if row.state == "completed" {
                            "skipped".into()
                        } else {
                            "replaced".into()
                        },
                        attempts: row.attempts,
                        seconds: 0.0,
                        detail: row.detail.clone().unwrap_or_default(),
                    },
                );
            }
            _ => {
                pending.insert(label.clone());
            }
        }
    }
    let total = pending.len();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut running = tokio::task::JoinSet::new();
    let mut in_flight: BTreeSet<String> = BTreeSet::new();
    let mut settled = 0usize;
    loop {
        // Start every ready task, up to the limit.
        if !opts.cancel.is_cancelled() {
            let ready: Vec<String> = pending
                .iter()
                .filter(|l| !in_flight.contains(*l))
                .filter(|l| {
                    plan.tasks
                        .get(*l)
                        .is_some_and(|t| t.deps.iter().all(|d| done.contains(d)))
                })
                .take(opts.parallel.saturating_sub(in_flight.len()))
                .cloned()
                .collect();
            for label in ready {
                let Some(task) = plan.tasks.get(&label).cloned() else {
                    continue;
                };
                let task_id = rows.get(&label).map(|r| r.task_id.clone()).unwrap_or_default();
                let prior_attempts = rows.get(&label).map(|r| r.attempts).unwrap_or(0);
                in_flight.insert(label.clone());
                let runner = Arc::clone(&runner);
                let retry = opts.retry;
                let cancel = opts.cancel.clone();
                let log_path = opts
                    .log_dir
                    .as_ref()
                    .map(|d| d.join(&plan.graph_id).join(format!("{}.log", sanitize(&label))));
                running.spawn(async move {
                    let log = TaskLog::default();
                    let t = Instant::now();
                    let mut attempts = 0i64;
                    let outcome = loop {
                        attempts += 1;
                        log.line(format!("attempt {attempts}: {} ({})", task.label, task.kind));
                        let r = tokio::select! {
                            r = runner.run(&task, &log) => r,
                            () = cancel.cancelled() => Err(TaskError::Fatal("cancelled".into())),
                        };
                        match r {
                            Ok(d) => break Ok(d),
                            Err(TaskError::Retryable(e))
                                if (attempts as u32) < retry.attempts && !cancel.is_cancelled() =>
                            {
                                log.line(format!("retryable failure: {e}"));
                                tokio::time::sleep(retry.delay(attempts as u32)).await;
                            }
                            Err(e) => break Err(e.to_string()),
                        }
                    };
                    match &outcome {
                        Ok(d) => log.line(format!("completed: {d}")),
                        Err(e) => log.line(format!("failed: {e}")),
                    }
                    if let Some(p) = log_path {
                        if let Some(parent) = p.parent() {
                            let _ = std::fs::create_dir_all(parent);
                        }
                        let _ = std::fs::write(&p, log.text());
                    }
                    let cancelled = cancel.is_cancelled() && outcome.is_err();
                    (
                        task,
                        task_id,
                        prior_attempts + attempts,
                        t.elapsed().as_secs_f64(),
                        outcome,
                        cancelled,
                    )
                });
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let Ok((task, task_id, attempts, seconds, outcome, cancelled)) = joined else {
            continue;
        };
        in_flight.remove(&task.label);
        pending.remove(&task.label);
        settled += 1;
        let (state, detail) = match (&outcome, cancelled) {
            (_, true) => ("cancelled", "cancelled before it finished".to_string()),
            (Ok(d), _) => ("completed", d.clone()),
            (Err(e), _) => ("failed", e.clone()),
        };
        let row = TaskRow {
            label: task.label.clone(),
            task_id: task_id.clone(),
            state: if cancelled { "pending".into() } else { state.into() },
            attempts,
            detail: Some(detail.clone()),
            started_at: None,
            finished_at: Some(Utc::now()),
        };
        store.update_task(&plan.graph_id, &row).await?;
        match state {
            "completed" => {
                done.insert(task.label.clone());
            }
            "failed" => {
                failed.insert(task.label.clone());
            }
            _ => {}
        }
        let result = TaskResult {
            label: task.label.clone(),
            kind: task.kind.clone(),
            task_id,
            state: state.into(),
            attempts,
            seconds,
            detail,
        };
        if let Some(p) = &opts.progress {
            p(&result, settled, total);
        }
        results.insert(task.label.clone(), result);
        // Nothing can become ready any more once every in-flight task is done
        // and no pending task has its dependencies met (a failure upstream).
    }
    // What never ran: blocked by a failure, or not started because of cancellation.
    for label in pending {
        let kind = plan.tasks.get(&label).map(|t| t.kind.clone()).unwrap_or_default();
        let state = if opts.cancel.is_cancelled() {
            "cancelled"
        } else {
            "blocked"
        };
        let blocker = plan
            .tasks
            .get(&label)
            .and_then(|t| t.deps.iter().find(|d| !done.contains(*d)).cloned())
            .unwrap_or_default();
        results.insert(
            label.clone(),
            TaskResult {
                label: label.clone(),
                kind,
                task_id: rows.get(&label).map(|r| r.task_id.clone()).unwrap_or_default(),
                state: state.into(),
                attempts: 0,
                seconds: 0.0,
                detail: if state == "blocked" {
                    format!("waits for {blocker}")
                } else {
                    "not started".into()
                },
            },
        );
    }
    let tasks: Vec<TaskResult> = results.into_values().collect();
    let ok = tasks
        .iter()
        .all(|t| matches!(t.state.as_str(), "completed" | "replaced" | "skipped"));
    Ok(RunReport {
        graph_id: plan.graph_id.clone(),
        flavor: plan.flavor.clone(),
        seconds: started.elapsed().as_secs_f64(),
        ok,
        tasks,
    })
}
