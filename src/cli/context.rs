//! What every lease command needs: resolved settings, the caller, and a
//! [`LeaseService`] — the local manager over the database, or the remote API.
use std::sync::Arc;

use anyhow::Context as _;

use super::config::{BackendChoice, Settings};
use crate::backend::docker::DockerBackend;
use crate::backend::process::ProcessBackend;
use crate::backend::Backend;
use crate::clients::manager::RemoteManager;
use crate::lease::Actor;
use crate::manager::{Clock, LeaseService, Manager, ManagerKey, ManagerParts, ManualClock, SystemClock};
use crate::store::HostCapacity;

pub struct Context {
    pub settings: Settings,
    pub actor: Actor,
    pub json: bool,
    pub service: Box<dyn LeaseService>,
    /// Set in local mode.
    pub manager: Option<Arc<Manager>>,
}

/// Pick the backend: `docker` when asked or (for `auto`) when the engine
/// answers, else `process`.
pub async fn backend_for(settings: &Settings) -> anyhow::Result<Arc<dyn Backend>> {
    if !settings.docker_hosts.is_empty() {
        let exe = std::env::current_exe().context("cannot find the stagelib binary")?;
        let me = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let mut hosts: Vec<(String, Arc<dyn Backend>)> = Vec::new();
        for h in &settings.docker_hosts {
            let b = DockerBackend::connect_url(exe.clone(), me.trim(), &h.url, h.advertise.as_deref())
                .await
                .with_context(|| format!("docker host `{}` ({})", h.name, h.url))?;
            hosts.push((h.name.clone(), Arc::new(b)));
        }
        return Ok(Arc::new(crate::backend::hosts::MultiHost::new(hosts)?));
    }
    let process = || -> anyhow::Result<Arc<dyn Backend>> {
        let dir = settings.state_dir.join("process");
        Ok(Arc::new(
            ProcessBackend::from_current_exe(dir).context("process backend")?,
        ))
    };
    match settings.backend {
        BackendChoice::Process => process(),
        BackendChoice::Memory => Ok(Arc::new(crate::backend::memory::MemoryBackend::new())),
        BackendChoice::Docker => Ok(Arc::new(docker_backend().await?)),
        BackendChoice::Auto => match docker_backend().await {
            Ok(d) => Ok(Arc::new(d)),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "Docker is not available; stacks run as local processes");
                process()
            }
        },
    }
}

/// Connect to the local Docker engine with this binary as the stack image.
pub async fn docker_backend() -> anyhow::Result<DockerBackend> {
    let exe = std::env::current_exe().context("cannot find the stagelib binary")?;
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    Ok(DockerBackend::connect(exe, host.trim()).await?)
}

/// Build the local manager (store + backend + key).
pub async fn local_manager(settings: &Settings, background: bool) -> anyhow::Result<Arc<Manager>> {
    let store = crate::store::open(&settings.database_url)
        .await
        .map_err(|e| anyhow::anyhow!(e))
        .context("opening the lease database")?;
    let backend = backend_for(settings).await?;
    let key = ManagerKey::load_or_create(&settings.state_dir.join("manager.key"))
        .with_context(|| format!("manager key under {}", settings.state_dir.display()))?;
    let clock: Arc<dyn Clock> = match settings.now {
        Some(t) => Arc::new(ManualClock::new(t)),
        None => Arc::new(SystemClock),
    };
    let manager = Manager::new(ManagerParts {
        store,
        backend,
        clock,
        policy: settings.policy.clone(),
        key,
        background,
    });
    manager.remember_orphans_in(settings.state_dir.join("reap-orphans.json"));
    let hosts: Vec<HostCapacity> = if settings.docker_hosts.is_empty() {
        settings
            .capacity
            .map(|capacity| HostCapacity {
                name: "local".into(),
                capacity,
            })
            .into_iter()
            .collect()
    } else {
        settings
            .docker_hosts
            .iter()
            .map(|h| HostCapacity {
                name: h.name.clone(),
                capacity: h.capacity,
            })
            .collect()
    };
    manager.set_hosts(hosts);
    manager.set_pools(settings.pools.clone());
    // Announce this instance, so others sharing the database leave its work alone.
    manager.beat().await.context("registering this manager instance")?;
    manager.beat_in_background();
    manager.seed_with(Arc::new(crate::seed::LibrarySeeder::new(
        crate::seed::SnapshotLibrary::for_state_dir(&settings.state_dir),
    )));
    Ok(manager)
}

impl Context {
    pub async fn build(settings: Settings, json: bool) -> anyhow::Result<Self> {
        if let Some(server) = settings.server.clone() {
            let remote = RemoteManager::new(&server, settings.token.clone())?;
            let actor = Actor::user(settings.user.clone());
            return Ok(Self {
                settings,
                actor,
                json,
                service: Box::new(remote),
                manager: None,
            });
        }
        let manager = local_manager(&settings, false).await?;
        // Whoever holds the database is its operator: admin scope, acting as `user`.
        let actor = Actor::admin(settings.user.clone());
        Ok(Self {
            settings,
            actor,
            json,
            service: Box::new(Arc::clone(&manager)),
            manager: Some(manager),
        })
    }
}
