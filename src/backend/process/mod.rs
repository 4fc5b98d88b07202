//! The `process` backend: each service of a stack is a child process of this
//! binary, `stagelib service NAME --listen 127.0.0.1:0 --data-dir DIR
//! --ready-file FILE`, with its secret in the environment.
//!
//! Layout: `<state_dir>/stacks/<stack_id>/{stack.json, <service>/, <service>.pid,
//! <service>.addr, <service>.log}`. The pid file (pid + start time) is written
//! right after the spawn, before the health wait, so a manager that crashes
//! mid-provision leaves nothing it cannot find again. Children run in their own
//! process group, so they outlive a one-shot CLI and a crashed manager alike.
mod pidfile;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

pub use pidfile::{processes_with_arg, PidFile};

use super::{Backend, BackendError, ServiceHealth, StackSpec, StackStatus};
use crate::lease::LeaseId;
use crate::stack::{Credentials, Endpoint, ServiceKind, StackEndpoints, Template};

/// What `stack.json` records (never secrets).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StackRecord {
    stack_id: String,
    lease_id: LeaseId,
    template: Template,
}

pub struct ProcessBackend {
    state_dir: PathBuf,
    exe: PathBuf,
    health_timeout: Duration,
    http: reqwest::Client,
}

impl ProcessBackend {
    pub fn new(state_dir: PathBuf, exe: PathBuf) -> Self {
        Self {
            state_dir,
            exe,
            health_timeout: Duration::from_secs(30),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Run services from the binary that is running now.
    pub fn from_current_exe(state_dir: PathBuf) -> Result<Self, BackendError> {
        let exe = std::env::current_exe().map_err(|e| BackendError::Other(format!("cannot find own binary: {e}")))?;
        Ok(Self::new(state_dir, exe))
    }

    pub fn with_health_timeout(mut self, t: Duration) -> Self {
        self.health_timeout = t;
        self
    }

    fn stacks_dir(&self) -> PathBuf {
        self.state_dir.join("stacks")
    }

    fn stack_dir(&self, stack_id: &str) -> Result<PathBuf, BackendError> {
        let ok = !stack_id.is_empty()
            && stack_id.len() <= 64
            && stack_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(BackendError::Other(format!("invalid stack id `{stack_id}`")));
        }
        Ok(self.stacks_dir().join(stack_id))
    }

    async fn heartbeat(&self, addr: &str) -> bool {
        matches!(
            self.http.get(format!("http://{addr}/__heartbeat__")).send().await,
            Ok(r) if r.status().is_success()
        )
    }

    /// Adopt the running service if it is ours and healthy, else (re)start it.
    async fn ensure_service(
        &self,
        dir: &Path,
        stack_id: &str,
        kind: ServiceKind,
        creds: &Credentials,
        extra_args: &[String],
    ) -> Result<Endpoint, BackendError> {
        let name = kind.as_str();
        let pid_path = dir.join(format!("{name}.pid"));
        let addr_path = dir.join(format!("{name}.addr"));
        let log_path = dir.join(format!("{name}.log"));
        let endpoint = |addr: String| Endpoint {
            url: format!("http://{addr}"),
            internal_url: None,
            credentials: creds.clone(),
        };
        if let Some(pid) = PidFile::read(&pid_path).filter(PidFile::is_alive) {
            if let Ok(addr) = std::fs::read_to_string(&addr_path) {
                if self.heartbeat(addr.trim()).await {
                    tracing::debug!(stack_id, service = name, pid = pid.pid, "adopted running service");
                    return Ok(endpoint(addr.trim().to_string()));
                }
            }
            terminate(&pid).await;
        }
        let data_dir = dir.join(name);
        // A child spawned by a manager that died before writing its pid file.
        for stray in processes_with_arg(&data_dir.to_string_lossy()) {
            tracing::info!(
                stack_id,
                service = name,
                pid = stray.pid,
                "stopping a service without a pid file"
            );
            terminate(&stray).await;
        }
        let _ = std::fs::remove_file(&addr_path);
        let state_err = |source| BackendError::StateDir {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(&data_dir).map_err(state_err)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(state_err)?;
        let log2 = log.try_clone().map_err(state_err)?;
        let mut cmd = std::process::Command::new(&self.exe);
        cmd.arg("service")
            .arg(name)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--ready-file")
            .arg(&addr_path)
            .arg("--user")
            .arg(&creds.username)
            .args(extra_args)
            .env("STAGELIB_SERVICE_SECRET", &creds.secret)
            .env_remove("STAGELIB_SERVICE_USER")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        let start_err = |reason: String| BackendError::Start {
            stack_id: stack_id.to_string(),
            service: kind,
            reason,
        };
        let mut child = tokio::process::Command::from(cmd)
            .spawn()
            .map_err(|e| start_err(format!("cannot run {}: {e}", self.exe.display())))?;
        let pid = child.id().ok_or_else(|| start_err("exited at once".into()))?;
        let record = PidFile::of(pid).ok_or_else(|| start_err(format!("exited at once; log:\n{}", tail(&log_path))))?;
        record.write(&pid_path).map_err(state_err)?;
        // Reap the child when it exits, so it never lingers as a zombie.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });

        let deadline = tokio::time::Instant::now() + self.health_timeout;
        loop {
            if !record.is_alive() {
                return Err(start_err(format!("exited during start-up; log:\n{}", tail(&log_path))));
            }
            if let Ok(addr) = std::fs::read_to_string(&addr_path) {
                if self.heartbeat(addr.trim()).await {
                    return Ok(endpoint(addr.trim().to_string()));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                terminate(&record).await;
                return Err(BackendError::Unhealthy {
                    stack_id: stack_id.to_string(),
                    service: kind,
                    secs: self.health_timeout.as_secs(),
                    detail: format!("log:\n{}", tail(&log_path)),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn status_of(&self, dir: &Path) -> Option<StackStatus> {
        let stack_id = dir.file_name()?.to_string_lossy().to_string();
        let record: Option<StackRecord> = std::fs::read(dir.join("stack.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let services: Vec<ServiceKind> = match &record {
            Some(r) => r.template.services.clone(),
            // No record: whatever pid files exist.
            None => ServiceKind::ALL
                .into_iter()
                .filter(|k| dir.join(format!("{k}.pid")).exists())
                .collect(),
        };
        let mut health = BTreeMap::new();
        for kind in services {
            let pid = PidFile::read(&dir.join(format!("{kind}.pid")));
            let h = match pid {
                None => ServiceHealth::Dead {
                    reason: "never started (no pid file)".into(),
                },
                Some(p) if !p.is_alive() => ServiceHealth::Dead {
                    reason: format!("process {} is gone", p.pid),
                },
                Some(p) => match std::fs::read_to_string(dir.join(format!("{kind}.addr"))) {
                    Ok(addr) if self.heartbeat(addr.trim()).await => ServiceHealth::Running,
                    _ => ServiceHealth::Dead {
                        reason: format!("process {} does not answer its health check", p.pid),
                    },
                },
            };
            health.insert(kind, h);
        }
        Some(StackStatus {
            stack_id,
            lease_id: record.map(|r| r.lease_id),
            services: health,
        })
    }
}

/// SIGTERM, wait up to 5 s, then SIGKILL. Only ever signals the exact process
/// recorded (pid + start time).
async fn terminate(p: &PidFile) {
    if !p.is_alive() {
        return;
    }
    let pid = Pid::from_raw(p.pid as i32);
    let _ = kill(pid, Signal::SIGTERM);
    for _ in 0..100 {
        if !p.is_alive() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if p.is_alive() {
        let _ = kill(pid, Signal::SIGKILL);
        for _ in 0..40 {
            if !p.is_alive() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The last lines of a log file, for error messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[async_trait]
impl Backend for ProcessBackend {
    fn name(&self) -> &'static str {
        "process"
    }

    async fn provision(&self, spec: &StackSpec) -> Result<StackEndpoints, BackendError> {
        let dir = self.stack_dir(&spec.stack_id)?;
        let state_err = |source| BackendError::StateDir {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(state_err)?;
        let record = StackRecord {
            stack_id: spec.stack_id.clone(),
            lease_id: spec.lease_id,
            template: spec.template.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&record).map_err(|e| BackendError::Other(e.to_string()))?;
        std::fs::write(dir.join("stack.json"), bytes).map_err(state_err)?;
        let creds_of = |kind: ServiceKind| {
            spec.credentials.get(&kind).ok_or_else(|| BackendError::Start {
                stack_id: spec.stack_id.clone(),
                service: kind,
                reason: "no credentials for it".into(),
            })
        };
        let mut services = BTreeMap::new();
        // S3 first: Bouncer redirects into it.
        if spec.template.has(ServiceKind::S3) {
            let args = crate::stack::service_args(ServiceKind::S3, None);
            let e = self
                .ensure_service(&dir, &spec.stack_id, ServiceKind::S3, creds_of(ServiceKind::S3)?, &args)
                .await?;
            services.insert(ServiceKind::S3, e);
        }
        let s3_url = services.get(&ServiceKind::S3).map(|e| e.url.clone());
        let mut jobs = Vec::new();
        for kind in spec.template.services.iter().filter(|k| **k != ServiceKind::S3) {
            let creds = creds_of(*kind)?;
            let args = crate::stack::service_args(*kind, s3_url.as_deref());
            let dir = dir.clone();
            jobs.push(async move {
                self.ensure_service(&dir, &spec.stack_id, *kind, creds, &args)
                    .await
                    .map(|e| (*kind, e))
            });
        }
        for r in futures::future::join_all(jobs).await {
            let (k, e) = r?;
            services.insert(k, e);
        }
        Ok(StackEndpoints { services })
    }

    async fn destroy(&self, stack_id: &str) -> Result<(), BackendError> {
        let dir = self.stack_dir(stack_id)?;
        if !dir.exists() {
            return Ok(());
        }
        let mut pids = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "pid") {
                    if let Some(p) = PidFile::read(&e.path()) {
                        pids.push(p);
                    }
                }
            }
        }
        for kind in ServiceKind::ALL {
            pids.extend(processes_with_arg(&dir.join(kind.as_str()).to_string_lossy()));
        }
        futures::future::join_all(pids.iter().map(terminate)).await;
        if let Some(alive) = pids.iter().find(|p| p.is_alive()) {
            return Err(BackendError::Stop {
                stack_id: stack_id.to_string(),
                reason: format!("process {} survived SIGKILL", alive.pid),
            });
        }
        std::fs::remove_dir_all(&dir).map_err(|e| BackendError::Stop {
            stack_id: stack_id.to_string(),
            reason: format!("cannot remove {}: {e}", dir.display()),
        })
    }

    async fn list(&self) -> Result<Vec<StackStatus>, BackendError> {
        let entries = match std::fs::read_dir(self.stacks_dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(BackendError::StateDir {
                    path: self.stacks_dir(),
                    source,
                })
            }
        };
        let dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        let statuses = futures::future::join_all(dirs.iter().map(|d| self.status_of(d))).await;
        Ok(statuses.into_iter().flatten().collect())
    }
}
