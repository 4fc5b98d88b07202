//! One promotion against a lease: validate the input, plan the graph (reusing
//! the previous graphs named in `previous_graph_ids`, which must be in the
//! store), record it, keep Ship-it's release and phase in step, and execute.
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;

use super::exec::{self, ExecError, ExecOptions, RunReport};
use super::graph::{self, Plan, Release};
use super::input::{InputError, PromotionInput};
use super::tasks::{Artifacts, Names, StackRunner};
use crate::lease::Lease;
use crate::seed::namespace::Namespacer;
use crate::stack::ServiceKind;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(
        "previous_graph_ids[{index}]: no graph `{id}` in the store (graphs: `stagelib promote --list --lease ID`)"
    )]
    UnknownGraph { index: usize, id: String },
    #[error("previous_graph_ids[{index}]: graph `{id}` belongs to lease {lease}, not to this one")]
    OtherLease { index: usize, id: String, lease: String },
    #[error("lease {0} has no stack yet (state {1}); wait until it is ready")]
    NotReady(String, String),
    #[error("platforms: unknown platform `{0}` (known: linux-i686, linux-x86_64, linux-aarch64, mac, win32, win64, win64-aarch64)")]
    Platform(String),
    #[error("locales: {0}")]
    Locales(String),
    #[error(transparent)]
    Plan(#[from] graph::PlanError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("stack: {0}")]
    Stack(String),
}

/// What to promote and where.
#[derive(Debug, Clone)]
pub struct PromoteRequest {
    pub input: PromotionInput,
    /// FTP platforms (default: all seven desktop platforms).
    pub platforms: Vec<String>,
    /// Default: Firefox's shipped locales.
    pub locales: Vec<String>,
}

impl PromoteRequest {
    pub fn new(input: PromotionInput) -> Self {
        Self {
            input,
            platforms: crate::seed::generate::PLATFORMS
                .iter()
                .map(|p| p.ftp.to_string())
                .collect(),
            locales: crate::seed::generate::LOCALES.iter().map(|l| l.to_string()).collect(),
        }
    }
}

/// Validate and plan (nothing is written: this is `--dry-run`).
pub async fn plan(store: &dyn Store, lease: &Lease, req: &PromoteRequest) -> Result<Plan, PromoteError> {
    let valid = req.input.clone().validate()?;
    for p in &req.platforms {
        if !crate::seed::generate::PLATFORMS.iter().any(|x| x.ftp == p) {
            return Err(PromoteError::Platform(p.clone()));
        }
    }
    if req.locales.is_empty() {
        return Err(PromoteError::Locales("at least one locale".into()));
    }
    if let Some(bad) = req
        .locales
        .iter()
        .find(|l| l.is_empty() || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(PromoteError::Locales(format!("`{bad}` is not a locale code")));
    }
    let mut previous = Vec::new();
    for (index, id) in valid.input.previous_graph_ids.iter().enumerate() {
        let (p, _) = exec::load(store, id).await.map_err(|e| match e {
            ExecError::UnknownGraph(_) => PromoteError::UnknownGraph { index, id: id.clone() },
            other => PromoteError::Exec(other),
        })?;
        let owner = store
            .list_graphs(&lease.id.to_string())
            .await?
            .iter()
            .any(|g| &g.graph_id == id);
        if !owner {
            return Err(PromoteError::OtherLease {
                index,
                id: id.clone(),
                lease: "another lease".into(),
            });
        }
        previous.push(p.record());
    }
    let release = Release::from_input(&valid, &req.platforms, &req.locales);
    Ok(graph::plan(&valid, release, &previous)?)
}

/// How to run a recorded plan.
#[derive(Clone, Default)]
pub struct RunOptions {
    pub exec: ExecOptions,
    pub artifacts: Option<PathBuf>,
    /// Balrog signoffs for the scheduled change: (user, role).
    pub signoffs: Vec<(String, String)>,
    /// Per-graph scratch space lives under here.
    pub work_root: PathBuf,
}

/// Record `plan` for `lease` (if it is not stored yet) and run it.
pub async fn run(
    store: Arc<dyn Store>,
    lease: &Lease,
    plan: &Plan,
    opts: RunOptions,
) -> Result<RunReport, PromoteError> {
    let endpoints = lease
        .endpoints
        .clone()
        .ok_or_else(|| PromoteError::NotReady(lease.id.to_string(), lease.state.to_string()))?;
    if store.get_graph(&plan.graph_id).await?.is_none() {
        exec::record(store.as_ref(), &lease.id.to_string(), plan).await?;
    }
    let names = Names {
        ns: Namespacer::new(lease.namespace.clone()),
        release: plan.release.clone(),
    };
    register_shipit(&endpoints, &names, plan).await?;
    let artifacts = opts.artifacts.map(Artifacts::Dir).unwrap_or(Artifacts::Synthetic);
    let runner = StackRunner::new(
        endpoints,
        names,
        artifacts,
        opts.work_root.join(&plan.graph_id),
        opts.signoffs,
    )
    .map_err(|e| PromoteError::Stack(e.to_string()))?;
    let mut exec_opts = opts.exec;
    if exec_opts.log_dir.is_none() {
        exec_opts.log_dir = Some(opts.work_root.join("logs"));
    }
    Ok(exec::execute(store, &plan.graph_id, Arc::new(runner), exec_opts).await?)
}

/// Ship-it must know the release (the promote phase creates it, as Ship-it's
/// UI does in production) and records which graph ran each phase.
async fn register_shipit(
    endpoints: &crate::stack::StackEndpoints,
    names: &Names,
    plan: &Plan,
) -> Result<(), PromoteError> {
    let Some(shipit) = endpoints.services.get(&ServiceKind::Shipit) else {
        return Ok(());
    };
    let http = crate::clients::http::http_client();
    let name = names.shipit_release();
    let base = shipit.url.trim_end_matches('/');
    let current = http
        .get(format!("{base}/releases/{name}"))
        .send()
        .await
        .map_err(|e| PromoteError::Stack(format!("ship-it: {e}")))?;
    let mut release: crate::services::shipit::state::Release = if current.status().is_success() {
        current
            .json()
            .await
            .map_err(|e| PromoteError::Stack(format!("ship-it: {e}")))?
    } else {
        let r = &plan.release;
        let branch = match r.release_type.as_str() {
            "release" => "releases/mozilla-release".to_string(),
            t if t.starts_with("esr") => format!("releases/mozilla-{t}"),
            _ => "releases/mozilla-beta".to_string(),
        };
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let phases = crate::services::shipit::state::phases_of(&r.product)
            .unwrap_or(&[])
            .iter()
            .map(|p| crate::services::shipit::state::Phase {
                name: p.to_string(),
                submitted: false,
                action_task_id: String::new(),
                created: now.clone(),
                scheduled_at: String::new(),
                skipped: false,
            })
            .collect();
        crate::services::shipit::state::Release {
            name: name.clone(),
            product: r.product.clone(),
            project: branch.rsplit('/').next().unwrap_or_default().to_string(),
            branch,
            version: r.version.clone(),
            revision: "0".repeat(40),
            build_number: i64::from(r.build_number),
            release_eta: r.release_eta.map(|t| t.to_rfc3339()).unwrap_or_default(),
            status: "scheduled".into(),
            created: now,
            completed: String::new(),
            phases,
            allow_phase_skipping: false,
            partial_updates: json!(plan.input.partial_updates),
        }
    };
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    if let Some(p) = release.phases.iter_mut().find(|p| p.name == plan.flavor) {
        if p.action_task_id != plan.graph_id {
            p.submitted = true;
            p.action_task_id = plan.graph_id.clone();
            p.scheduled_at = now;
        }
    }
    let body = json!({"releases": [release]}).to_string();
    let resp = crate::seed::apply::shipit_request(&http, shipit, "/__stagelib__/import", &body)
        .send()
        .await
        .map_err(|e| PromoteError::Stack(format!("ship-it: {e}")))?;
    if !resp.status().is_success() {
        return Err(PromoteError::Stack(format!(
            "ship-it refused the release {name}: {}",
            resp.text().await.unwrap_or_default()
        )));
    }
    Ok(())
}
