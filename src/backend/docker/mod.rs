//! The `docker` backend: a stack is a user-defined bridge network with its own
//! small subnet, one container per service from the `FROM scratch` stagelib
//! image, and a named volume per service for its data. This is the only module
//! that talks to Docker (bollard).
//!
//! Every object carries labels (`org.mozilla.stagelib.managed`, `.stack`,
//! `.lease`, `.service`, `.owner`, `.manager`), so `list` finds everything after
//! a crash and nothing unlabelled is ever touched. Containers run read-only, with
//! no capabilities, no new privileges, memory/CPU/pids limits, and publish their
//! port on 127.0.0.1 only.
pub mod image;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Ipam, IpamConfig, Mount, MountTypeEnum,
    NetworkCreateRequest, NetworkingConfig, PortBinding, VolumeCreateOptions,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use bollard::Docker;

use super::{Backend, BackendError, ServiceHealth, StackSpec, StackStatus};
use crate::stack::{Endpoint, ServiceKind, StackEndpoints};

pub const LABEL_MANAGED: &str = "org.mozilla.stagelib.managed";
pub const LABEL_STACK: &str = "org.mozilla.stagelib.stack";
pub const LABEL_LEASE: &str = "org.mozilla.stagelib.lease";
pub const LABEL_SERVICE: &str = "org.mozilla.stagelib.service";
pub const LABEL_OWNER: &str = "org.mozilla.stagelib.owner";
pub const LABEL_MANAGER: &str = "org.mozilla.stagelib.manager";

/// Port every service listens on inside its container.
const PORT: u16 = 8000;
/// Stack subnets are /27s carved from this /16 (2048 of them).
const SUBNET_PREFIX: [u8; 2] = [10, 211];

pub(crate) fn docker_err(e: bollard::errors::Error) -> BackendError {
    BackendError::Other(format!("docker: {e}"))
}

fn unavailable(e: impl std::fmt::Display) -> BackendError {
    BackendError::Unavailable {
        title: "the Docker engine does not answer",
        detail: e.to_string(),
        hint: "start Docker (or check DOCKER_HOST), or use --backend process",
    }
}

pub struct DockerBackend {
    docker: Docker,
    binary: PathBuf,
    manager: String,
    health_timeout: Duration,
    /// Memory limit per container, bytes.
    pub memory: i64,
    /// Where service ports are published on the engine's host, and the
    /// address clients use to reach them (both 127.0.0.1 for the local engine).
    publish_ip: String,
    advertise: String,
}

fn name(stack_id: &str, service: ServiceKind) -> String {
    format!("stagelib-{stack_id}-{service}")
}

fn label_filter(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    [(
        "label".to_string(),
        pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
    )]
    .into()
}

impl DockerBackend {
    /// Connect to the local engine and negotiate the API version (Docker 20-28
    /// speak 1.41-1.50; bollard 0.19 starts from a newer default).
    pub async fn connect(binary: PathBuf, manager: &str) -> Result<Self, BackendError> {
        let docker = Docker::connect_with_local_defaults().map_err(unavailable)?;
        let docker = docker.negotiate_version().await.map_err(unavailable)?;
        docker.ping().await.map_err(unavailable)?;
        Ok(Self {
            docker,
            binary,
            manager: manager.to_string(),
            health_timeout: Duration::from_secs(60),
            memory: 256 * 1024 * 1024,
            publish_ip: "127.0.0.1".into(),
            advertise: "127.0.0.1".into(),
        })
    }

    /// Connect to the engine at `url` (`unix://PATH` or `tcp://HOST:PORT`);
    /// stacks there publish their ports on every interface of that host and
    /// are reached at `advertise` (default: the URL's host, or 127.0.0.1 for
    /// a socket).
    pub async fn connect_url(
        binary: PathBuf,
        manager: &str,
        url: &str,
        advertise: Option<&str>,
    ) -> Result<Self, BackendError> {
        let (docker, host) = if let Some(path) = url.strip_prefix("unix://") {
            (
                Docker::connect_with_socket(path, 120, bollard::API_DEFAULT_VERSION).map_err(unavailable)?,
                "127.0.0.1".to_string(),
            )
        } else {
            let http = url.replacen("tcp://", "http://", 1);
            let host = url::Url::parse(&http)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "127.0.0.1".into());
            (
                Docker::connect_with_http(&http, 120, bollard::API_DEFAULT_VERSION).map_err(unavailable)?,
                host,
            )
        };
        let docker = docker.negotiate_version().await.map_err(unavailable)?;
        docker.ping().await.map_err(unavailable)?;
        let local = host == "127.0.0.1";
        Ok(Self {
            docker,
            binary,
            manager: manager.to_string(),
            health_timeout: Duration::from_secs(60),
            memory: 256 * 1024 * 1024,
            publish_ip: if local { "127.0.0.1".into() } else { "0.0.0.0".into() },
            advertise: advertise.map(str::to_string).unwrap_or(host),
        })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The engine's version and negotiated API version.
    pub async fn versions(&self) -> Result<(String, String), BackendError> {
        let v = self.docker.version().await.map_err(docker_err)?;
        Ok((v.version.unwrap_or_default(), self.docker.client_version().to_string()))
    }

    pub async fn ensure_image(&self) -> Result<(String, bool), BackendError> {
        image::ensure(&self.docker, &self.binary).await
    }

    fn labels(&self, spec: &StackSpec, service: Option<ServiceKind>) -> HashMap<String, String> {
        let mut l: HashMap<String, String> = [
            (LABEL_MANAGED, "true".to_string()),
            (LABEL_STACK, spec.stack_id.clone()),
            (LABEL_LEASE, spec.lease_id.to_string()),
            (LABEL_OWNER, spec.owner.clone()),
            (LABEL_MANAGER, self.manager.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(s) = service {
            l.insert(LABEL_SERVICE.into(), s.to_string());
        }
        l
    }

    /// Subnets already used by any network on the engine.
    async fn used_subnets(&self) -> Result<BTreeSet<String>, BackendError> {
        let nets = self
            .docker
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
            .await
            .map_err(docker_err)?;
        Ok(nets
            .iter()
            .filter_map(|n| n.ipam.as_ref()?.config.as_ref())
            .flatten()
            .filter_map(|c| c.subnet.clone())
            .collect())
    }

    /// The stack's network, created with the first free /27 if missing.
    async fn ensure_network(&self, spec: &StackSpec) -> Result<String, BackendError> {
        let net = format!("stagelib-{}", spec.stack_id);
        if self
            .docker
            .inspect_network(&net, None::<bollard::query_parameters::InspectNetworkOptions>)
            .await
            .is_ok()
        {
            return Ok(net);
        }
        let used = self.used_subnets().await?;
        for i in 0..2048u32 {
            let (third, fourth) = ((i * 32) / 256, (i * 32) % 256);
            let subnet = format!("{}.{}.{third}.{fourth}/27", SUBNET_PREFIX[0], SUBNET_PREFIX[1]);
            if used.contains(&subnet) {
                continue;
            }
            let req = NetworkCreateRequest {
                name: net.clone(),
                driver: Some("bridge".into()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(subnet),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                labels: Some(self.labels(spec, None)),
                ..Default::default()
            };
            match self.docker.create_network(req).await {
                Ok(_) => return Ok(net),
                // Taken by a concurrent provision: try the next one.
                Err(e) if e.to_string().contains("overlap") => continue,
                Err(e) if e.to_string().contains("already exists") => return Ok(net),
                Err(e) => return Err(docker_err(e)),
            }
        }
        Err(BackendError::Other(
            "no free /27 left in 10.211.0.0/16 for a stack network".into(),
        ))
    }

    async fn start_service(
        &self,
        spec: &StackSpec,
        image: &str,
        network: &str,
        kind: ServiceKind,
        extra_args: Vec<String>,
    ) -> Result<Endpoint, BackendError> {
        let cname = name(&spec.stack_id, kind);
        let creds = spec.credentials.get(&kind).ok_or_else(|| BackendError::Start {
            stack_id: spec.stack_id.clone(),
            service: kind,
            reason: "no credentials for it".into(),
        })?;
        let healthy_running = match self
            .docker
            .inspect_container(&cname, None::<bollard::query_parameters::InspectContainerOptions>)
            .await
        {
            Ok(c) => c.state.as_ref().and_then(|s| s.running).unwrap_or(false),
            Err(_) => false,
        };
        if !healthy_running {
            let _ = self
                .docker
                .remove_container(&cname, Some(RemoveContainerOptionsBuilder::new().force(true).build()))
                .await;
            let volume = format!("{cname}-data");
            self.docker
                .create_volume(VolumeCreateOptions {
                    name: Some(volume.clone()),
                    labels: Some(self.labels(spec, Some(kind))),
                    ..Default::default()
                })
                .await
                .map_err(docker_err)?;
            let mut cmd = vec![
                "service".to_string(),
                kind.to_string(),
                "--listen".into(),
                format!("0.0.0.0:{PORT}"),
                "--data-dir".into(),
                "/data".into(),
                "--user".into(),
                creds.username.clone(),
            ];
            cmd.extend(extra_args);
            let port_key = format!("{PORT}/tcp");
            let body = ContainerCreateBody {
                image: Some(image.to_string()),
                cmd: Some(cmd),
                env: Some(vec![
                    format!("STAGELIB_SERVICE_SECRET={}", creds.secret),
                    "TMPDIR=/tmp".into(),
                ]),
                labels: Some(self.labels(spec, Some(kind))),
                exposed_ports: Some([(port_key.clone(), HashMap::new())].into()),
                healthcheck: Some(HealthConfig {
                    test: Some(vec![
                        "CMD".into(),
                        "/stagelib".into(),
                        "service".into(),
                        "healthcheck".into(),
                        "--url".into(),
                        format!("http://127.0.0.1:{PORT}/__heartbeat__"),
                    ]),
                    interval: Some(500_000_000),
                    timeout: Some(3_000_000_000),
                    retries: Some(3),
                    start_period: Some(0),
                    ..Default::default()
                }),
                host_config: Some(HostConfig {
                    port_bindings: Some(
                        [(
                            port_key,
                            Some(vec![PortBinding {
                                host_ip: Some(self.publish_ip.clone()),
                                host_port: Some(String::new()),
                            }]),
                        )]
                        .into(),
                    ),
                    mounts: Some(vec![Mount {
                        target: Some("/data".into()),
                        source: Some(volume),
                        typ: Some(MountTypeEnum::VOLUME),
                        ..Default::default()
                    }]),
                    tmpfs: Some([("/tmp".to_string(), "size=16m".to_string())].into()),
                    network_mode: Some(network.to_string()),
                    memory: Some(self.memory),
                    nano_cpus: Some(1_000_000_000),
                    pids_limit: Some(256),
                    readonly_rootfs: Some(true),
                    cap_drop: Some(vec!["ALL".into()]),
                    security_opt: Some(vec!["no-new-privileges".into()]),
                    ..Default::default()
                }),
                networking_config: Some(NetworkingConfig {
                    endpoints_config: Some(
                        [(
                            network.to_string(),
                            EndpointSettings {
                                aliases: Some(vec![kind.to_string()]),
                                ..Default::default()
                            },
                        )]
                        .into(),
                    ),
                }),
                ..Default::default()
            };
            self.docker
                .create_container(Some(CreateContainerOptionsBuilder::new().name(&cname).build()), body)
                .await
                .map_err(docker_err)?;
            self.docker
                .start_container(&cname, None::<bollard::query_parameters::StartContainerOptions>)
                .await
                .map_err(|e| BackendError::Start {
                    stack_id: spec.stack_id.clone(),
                    service: kind,
                    reason: e.to_string(),
                })?;
        }
        let port = self.wait_healthy(&spec.stack_id, kind, &cname).await?;
        Ok(Endpoint {
            url: format!("http://{}:{port}", self.advertise),
            internal_url: Some(format!("http://{cname}:{PORT}")),
            credentials: creds.clone(),
        })
    }

    /// Wait for the health check to pass; returns the published host port.
    async fn wait_healthy(&self, stack_id: &str, kind: ServiceKind, cname: &str) -> Result<u16, BackendError> {
        let deadline = tokio::time::Instant::now() + self.health_timeout;
        loop {
            let c = self
                .docker
                .inspect_container(cname, None::<bollard::query_parameters::InspectContainerOptions>)
                .await
                .map_err(docker_err)?;
            let state = c.state.clone().unwrap_or_default();
            let health = state
                .health
                .as_ref()
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .unwrap_or_default();
            if state.running == Some(false) || tokio::time::Instant::now() >= deadline {
                return Err(BackendError::Unhealthy {
                    stack_id: stack_id.to_string(),
                    service: kind,
                    secs: self.health_timeout.as_secs(),
                    detail: format!(
                        "state {:?}, exit code {:?}, health `{health}`",
                        state.status, state.exit_code
                    ),
                });
            }
            if health == "healthy" {
                let port = c
                    .network_settings
                    .and_then(|n| n.ports)
                    .and_then(|p| p.get(&format!("{PORT}/tcp")).cloned().flatten())
                    .and_then(|bindings| {
                        bindings
                            .into_iter()
                            .find(|b| b.host_ip.as_deref().is_some_and(|ip| ip.contains('.')))
                            .and_then(|b| b.host_port)
                    })
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or_else(|| BackendError::Other(format!("{cname} publishes no IPv4 port")))?;
                return Ok(port);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The networks and volumes of one stack, whoever made them.
    async fn stack_objects(
        &self,
        stack_id: &str,
    ) -> Result<(BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>), BackendError> {
        self.objects(label_filter(&[(LABEL_MANAGED, "true"), (LABEL_STACK, stack_id)]))
            .await
    }

    /// Every network and volume this manager labelled, by stack.
    async fn labelled_objects(
        &self,
    ) -> Result<(BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>), BackendError> {
        self.objects(label_filter(&[(LABEL_MANAGED, "true"), (LABEL_MANAGER, &self.manager)]))
            .await
    }

    async fn objects(
        &self,
        f: HashMap<String, Vec<String>>,
    ) -> Result<(BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>), BackendError> {
        let nets = self
            .docker
            .list_networks(Some(ListNetworksOptionsBuilder::new().filters(&f).build()))
            .await
            .map_err(docker_err)?;
        let mut networks: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in nets {
            if let (Some(stack), Some(name)) = (n.labels.as_ref().and_then(|l| l.get(LABEL_STACK)).cloned(), n.name) {
                networks.entry(stack).or_default().push(name);
            }
        }
        let vols = self
            .docker
            .list_volumes(Some(ListVolumesOptionsBuilder::new().filters(&f).build()))
            .await
            .map_err(docker_err)?;
        let mut volumes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for v in vols.volumes.unwrap_or_default() {
            if let Some(stack) = v.labels.get(LABEL_STACK) {
                volumes.entry(stack.clone()).or_default().push(v.name);
            }
        }
        Ok((networks, volumes))
    }
}

#[async_trait]
impl Backend for DockerBackend {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn provision(&self, spec: &StackSpec) -> Result<StackEndpoints, BackendError> {
        let (image, _) = self.ensure_image().await?;
        let network = self.ensure_network(spec).await?;
        let mut services = BTreeMap::new();
        if spec.template.has(ServiceKind::S3) {
            let args = crate::stack::service_args(ServiceKind::S3, None);
            let e = self
                .start_service(spec, &image, &network, ServiceKind::S3, args)
                .await?;
            services.insert(ServiceKind::S3, e);
        }
        let s3_url = services.get(&ServiceKind::S3).map(|e| e.url.clone());
        let jobs = spec
            .template
            .services
            .iter()
            .filter(|k| **k != ServiceKind::S3)
            .map(|k| {
                let args = crate::stack::service_args(*k, s3_url.as_deref());
                let (image, network) = (image.clone(), network.clone());
                async move {
                    self.start_service(spec, &image, &network, *k, args)
                        .await
                        .map(|e| (*k, e))
                }
            });
        for r in futures::future::join_all(jobs).await {
            let (k, e) = r?;
            services.insert(k, e);
        }
        Ok(StackEndpoints { services })
    }

    async fn destroy(&self, stack_id: &str) -> Result<(), BackendError> {
        let f = label_filter(&[(LABEL_MANAGED, "true"), (LABEL_STACK, stack_id)]);
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&f).build()))
            .await
            .map_err(docker_err)?;
        for c in containers {
            if let Some(id) = c.id {
                self.docker
                    .remove_container(&id, Some(RemoveContainerOptionsBuilder::new().force(true).build()))
                    .await
                    .map_err(docker_err)?;
            }
        }
        let (networks, volumes) = self.stack_objects(stack_id).await?;
        for n in networks.get(stack_id).into_iter().flatten() {
            self.docker.remove_network(n).await.map_err(docker_err)?;
        }
        for v in volumes.get(stack_id).into_iter().flatten() {
            self.docker
                .remove_volume(v, Some(RemoveVolumeOptionsBuilder::new().force(true).build()))
                .await
                .map_err(docker_err)?;
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<StackStatus>, BackendError> {
        // Only what this manager made: managers sharing an engine never reap each other.
        let f = label_filter(&[(LABEL_MANAGED, "true"), (LABEL_MANAGER, &self.manager)]);
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&f).build()))
            .await
            .map_err(docker_err)?;
        let mut stacks: BTreeMap<String, StackStatus> = BTreeMap::new();
        for c in containers {
            let labels = c.labels.clone().unwrap_or_default();
            let Some(stack) = labels.get(LABEL_STACK) else { continue };
            let entry = stacks.entry(stack.clone()).or_insert_with(|| StackStatus {
                stack_id: stack.clone(),
                lease_id: labels.get(LABEL_LEASE).and_then(|l| l.parse().ok()),
                services: BTreeMap::new(),
            });
            let Some(kind) = labels.get(LABEL_SERVICE).and_then(|s| s.parse::<ServiceKind>().ok()) else {
                continue;
            };
            let status = c.status.clone().unwrap_or_default();
            let running = c.state.map(|s| s.to_string()) == Some("running".to_string());
            let health = if running && !status.contains("unhealthy") {
                ServiceHealth::Running
            } else {
                ServiceHealth::Dead {
                    reason: format!("container {}: {status}", name(stack, kind)),
                }
            };
            entry.services.insert(kind, health);
        }
        // Networks and volumes whose containers are gone still make a stack.
        let (networks, volumes) = self.labelled_objects().await?;
        for stack in networks.keys().chain(volumes.keys()) {
            stacks.entry(stack.clone()).or_insert_with(|| StackStatus {
                stack_id: stack.clone(),
                lease_id: None,
                services: BTreeMap::new(),
            });
        }
        Ok(stacks.into_values().collect())
    }
}
