//! The one module that talks to the Docker Engine API (bollard). It speaks ragctl's types
//! ([`ContainerSpec`], [`ObservedContainer`], ...) and maps every bollard error to an [`Error`] that names the
//! operation and its object: a raw `hyper::Error` or "error trying to connect" tells an operator nothing.
//!
//! It must not decide anything (what to create, when to wait): that is the engine's plan.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HealthStatusEnum, HostConfig, HostConfigLogConfig,
    NetworkConnectRequest, NetworkCreateRequest, NetworkingConfig, PortBinding, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, EventsOptions, ListContainersOptions, ListNetworksOptions,
    ListVolumesOptions, LogsOptions, RemoveContainerOptions, RemoveVolumeOptions, RestartContainerOptions,
    StatsOptions, StopContainerOptions,
};
use futures_util::{Stream, StreamExt};
use serde::Serialize;

use crate::engine::spec::{
    ContainerSpec, LABEL_CONFIG_HASH, LABEL_DEPENDS_ON, LABEL_NUMBER, LABEL_PROJECT, LABEL_SERVICE, NetworkSpec,
    VolumeSpec,
};
use crate::error::Error;
use crate::swarm::SwarmServiceSpec;

pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";
/// Per-request timeout; pulls and log streams are not bounded by it in practice (bollard applies it per
/// request, and readiness has its own deadlines).
const REQUEST_TIMEOUT_SECS: u64 = 600;

#[derive(Clone)]
pub struct DockerClient {
    inner: Docker,
    pub endpoint: String,
    pub api_version: String,
}

/// A container of the project as Docker reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: u32,
    pub config_hash: String,
    pub image: String,
    /// created | running | paused | restarting | removing | exited | dead
    pub state: String,
    pub status: String,
    pub created: i64,
    pub ports: Vec<String>,
    /// Services this container's service depends on (from compose's depends_on label).
    pub depends_on: Vec<String>,
    /// Ids of the networks it is attached to (kept while it is stopped, even if a network is removed meanwhile).
    pub network_ids: Vec<String>,
}

/// The parts of `docker inspect` the engine and doctor read.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerStatus {
    pub state: String,
    pub running: bool,
    pub restarting: bool,
    pub exit_code: i64,
    pub oom_killed: bool,
    /// starting | healthy | unhealthy, or None without a healthcheck.
    pub health: Option<String>,
    pub health_log: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub started_at: Option<String>,
    pub restart_count: i64,
    /// The container's environment (`KEY=value`), for probes that act as the container's own client.
    pub env: Vec<String>,
}

// --- exec_captured's result ---
/// What a command run with [`DockerClient::exec_captured`] printed, and how it exited.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}
// --- end exec_captured's result ---

fn docker_err(action: &'static str, target: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Error {
    let target = target.into();
    move |e| Error::Docker { action, target, cause: describe(&e) }
}

/// Docker's own message when there is one ("No such image: x"), not bollard's wrapper text.
fn describe(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, message } => {
            format!("{message} (HTTP {status_code})")
        }
        other => other.to_string(),
    }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

fn project_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{LABEL_PROJECT}={project}")])])
}

impl DockerClient {
    /// Connect to `host` (a `DOCKER_HOST` value) or the default socket, and negotiate the API version
    /// (Engine 20.10 speaks 1.41; newer engines more).
    pub async fn connect(host: Option<&str>) -> Result<DockerClient, Error> {
        let endpoint = host.unwrap_or(DEFAULT_SOCKET).to_string();
        let unreachable = |cause: String| Error::DockerUnreachable { endpoint: endpoint.clone(), cause };
        let version = bollard::API_DEFAULT_VERSION;
        let inner = if let Some(path) = endpoint.strip_prefix("unix://") {
            Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, version)
        } else if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") {
            Docker::connect_with_http(&endpoint, REQUEST_TIMEOUT_SECS, version)
        } else if endpoint.starts_with('/') {
            Docker::connect_with_unix(&endpoint, REQUEST_TIMEOUT_SECS, version)
        } else {
            return Err(unreachable("unsupported scheme (use unix:// or tcp://)".into()));
        }
        .map_err(|e| unreachable(describe(&e)))?;
        // Negotiation asks the engine for its version: one round trip that also proves it is reachable.
        let inner = inner.negotiate_version().await.map_err(|e| unreachable(describe(&e)))?;
        let api_version = inner.client_version().to_string();
        Ok(DockerClient { inner, endpoint, api_version })
    }

    /// Whether the engine runs on this host (a Unix socket), so container addresses are reachable from here.
    pub fn is_local(&self) -> bool {
        self.endpoint.starts_with("unix://") || self.endpoint.starts_with('/')
    }

    pub async fn list_containers(&self, project: &str) -> Result<Vec<ObservedContainer>, Error> {
        let opts = ListContainersOptions { all: true, filters: Some(project_filter(project)), ..Default::default() };
        let list = self.inner.list_containers(Some(opts)).await.map_err(docker_err("list containers of", project))?;
        let mut out: Vec<ObservedContainer> = list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
                ObservedContainer {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string()))
                        .unwrap_or_default(),
                    service: label(LABEL_SERVICE),
                    number: label(LABEL_NUMBER).parse().unwrap_or(0),
                    config_hash: label(LABEL_CONFIG_HASH),
                    image: c.image.unwrap_or_default(),
                    state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                    status: c.status.unwrap_or_default(),
                    created: c.created.unwrap_or(0),
                    network_ids: c
                        .network_settings
                        .and_then(|n| n.networks)
                        .map(|nets| {
                            nets.into_values().filter_map(|e| e.network_id).filter(|id| !id.is_empty()).collect()
                        })
                        .unwrap_or_default(),
                    depends_on: label(LABEL_DEPENDS_ON)
                        .split(',')
                        .filter_map(|d| d.split(':').next().filter(|s| !s.is_empty()).map(str::to_string))
                        .collect(),
                    ports: c
                        .ports
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|p| {
                            let public = p.public_port?;
                            Some(format!(
                                "{}:{public}->{}/{}",
                                p.ip.unwrap_or_default(),
                                p.private_port,
                                p.typ.map(|t| t.to_string()).unwrap_or_default()
                            ))
                        })
                        .collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.service, a.number).cmp(&(&b.service, b.number)));
        Ok(out)
    }

    /// Every container (any project) publishing host port `port`, as (container name, compose project).
    pub async fn containers_publishing(&self, port: u16) -> Result<Vec<(String, String)>, Error> {
        let opts = ListContainersOptions { all: false, ..Default::default() };
        let list = self.inner.list_containers(Some(opts)).await.map_err(docker_err("list", "containers"))?;
        Ok(list
            .into_iter()
            .filter(|c| c.ports.iter().flatten().any(|p| p.public_port == Some(port)))
            .map(|c| {
                let name =
                    c.names.and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string())).unwrap_or_default();
                let project = c.labels.and_then(|l| l.get(LABEL_PROJECT).cloned()).unwrap_or_default();
                (name, project)
            })
            .collect())
    }

    /// The engine's own version (for `doctor` and `--verbose`).
    pub async fn server_version(&self) -> Result<String, Error> {
        let v = self.inner.version().await.map_err(docker_err("query version of", &self.endpoint))?;
        Ok(v.version.unwrap_or_default())
    }

    pub async fn list_networks(&self, project: &str) -> Result<Vec<String>, Error> {
        Ok(self.list_networks_with_ids(project).await?.into_iter().map(|(name, _)| name).collect())
    }

    /// The project's networks on this engine as (name, id). Swarm-scoped networks (a `--target swarm`
    /// deployment's overlays, which carry the same project label) belong to the Swarm target and are left out.
    pub async fn list_networks_with_ids(&self, project: &str) -> Result<Vec<(String, String)>, Error> {
        let opts = ListNetworksOptions { filters: Some(project_filter(project)) };
        let nets = self.inner.list_networks(Some(opts)).await.map_err(docker_err("list networks of", project))?;
        Ok(nets
            .into_iter()
            .filter(|n| n.scope.as_deref() != Some("swarm"))
            .filter_map(|n| Some((n.name?, n.id.unwrap_or_default())))
            .collect())
    }

    /// How many Swarm services the project has (0 when the engine is not a swarm manager): a project deployed
    /// with `--target swarm` is named in the container target's messages.
    pub async fn swarm_service_count(&self, project: &str) -> usize {
        let opts = bollard::query_parameters::ListServicesOptions {
            filters: Some(namespace_filter(project)),
            status: Some(false),
        };
        self.inner.list_services(Some(opts)).await.map(|l| l.len()).unwrap_or(0)
    }

    pub async fn list_volumes(&self, project: &str) -> Result<Vec<String>, Error> {
        let opts = ListVolumesOptions { filters: Some(project_filter(project)) };
        let vols = self.inner.list_volumes(Some(opts)).await.map_err(docker_err("list volumes of", project))?;
        Ok(vols.volumes.unwrap_or_default().into_iter().map(|v| v.name).collect())
    }

    pub async fn create_network(&self, spec: &NetworkSpec) -> Result<(), Error> {
        let req = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some("bridge".into()),
            internal: Some(spec.internal),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.inner.create_network(req).await.map(|_| ()).map_err(docker_err("create network", &spec.name))
    }

    pub async fn remove_network(&self, name: &str) -> Result<(), Error> {
        match self.inner.remove_network(name).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(docker_err("remove network", name)),
        }
    }

    pub async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), Error> {
        let req = VolumeCreateRequest {
            name: Some(spec.name.clone()),
            driver: Some("local".into()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.inner.create_volume(req).await.map(|_| ()).map_err(docker_err("create volume", &spec.name))
    }

    pub async fn remove_volume(&self, name: &str) -> Result<(), Error> {
        match self.inner.remove_volume(name, None::<RemoveVolumeOptions>).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(docker_err("remove volume", name)),
        }
    }

    pub async fn image_present(&self, image: &str) -> Result<bool, Error> {
        match self.inner.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(docker_err("inspect image", image)(e)),
        }
    }

    /// Pull `image`, calling `progress(layer, current, total)` as bytes arrive.
    pub async fn pull(&self, image: &str, mut progress: impl FnMut(&str, u64, u64)) -> Result<(), Error> {
        let opts = CreateImageOptions { from_image: Some(image.to_string()), ..Default::default() };
        let mut stream = self.inner.create_image(Some(opts), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(docker_err("pull image", image))?;
            if let Some(detail) = info.progress_detail
                && let (Some(id), Some(current)) = (info.id.as_deref(), detail.current)
            {
                progress(id, current.max(0) as u64, detail.total.unwrap_or(0).max(0) as u64);
            }
        }
        Ok(())
    }

    /// Create (not start) a container attached to its first network: engines before API 1.44 accept one network
    /// at create time, so [`Self::connect_extra_networks`] attaches the others.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String, Error> {
        let endpoint = |_net: &str| EndpointSettings { aliases: Some(spec.aliases.clone()), ..Default::default() };
        let first = spec.networks.first().cloned().unwrap_or_default();
        let port_bindings: HashMap<String, Option<Vec<PortBinding>>> = spec
            .ports
            .iter()
            .map(|p| {
                (
                    format!("{}/{}", p.container_port, p.protocol),
                    Some(vec![PortBinding {
                        host_ip: (!p.host_ip.is_empty()).then(|| p.host_ip.clone()),
                        host_port: Some(p.host_port.to_string()),
                    }]),
                )
            })
            .collect();
        let host_config = HostConfig {
            binds: Some(spec.binds.clone()),
            port_bindings: Some(port_bindings),
            network_mode: Some(first.clone()),
            restart_policy: Some(RestartPolicy {
                name: Some(match spec.restart.as_str() {
                    "always" => RestartPolicyNameEnum::ALWAYS,
                    "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
                    "no" => RestartPolicyNameEnum::NO,
                    _ => RestartPolicyNameEnum::UNLESS_STOPPED,
                }),
                maximum_retry_count: None,
            }),
            log_config: spec.log_driver.as_ref().map(|d| HostConfigLogConfig {
                typ: Some(d.clone()),
                config: Some(spec.log_options.clone().into_iter().collect()),
            }),
            nano_cpus: spec.nano_cpus,
            memory: spec.memory,
            shm_size: spec.shm_size,
            security_opt: (!spec.security_opt.is_empty()).then(|| spec.security_opt.clone()),
            cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
            tmpfs: (!spec.tmpfs.is_empty()).then(|| spec.tmpfs.clone().into_iter().collect()),
            sysctls: (!spec.sysctls.is_empty()).then(|| spec.sysctls.clone().into_iter().collect()),
            ulimits: (!spec.ulimits.is_empty()).then(|| {
                spec.ulimits
                    .iter()
                    .map(|(name, (soft, hard))| ResourcesUlimits {
                        name: Some(name.clone()),
                        soft: Some(*soft),
                        hard: Some(*hard),
                    })
                    .collect()
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.clone()),
            cmd: spec.cmd.clone(),
            entrypoint: spec.entrypoint.clone(),
            user: spec.user.clone(),
            labels: Some(spec.labels.clone().into_iter().collect()),
            exposed_ports: Some(spec.ports.iter().map(|p| format!("{}/{}", p.container_port, p.protocol)).collect()),
            volumes: (!spec.anonymous_volumes.is_empty()).then(|| spec.anonymous_volumes.clone()),
            healthcheck: spec.healthcheck.as_ref().map(|h| HealthConfig {
                test: Some(h.test.clone()),
                interval: Some(h.interval_ns),
                timeout: Some(h.timeout_ns),
                retries: Some(h.retries),
                start_period: Some(h.start_period_ns),
                start_interval: None,
            }),
            stop_timeout: spec.stop_timeout,
            host_config: Some(host_config),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(first.clone(), endpoint(&first))])),
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptions { name: Some(spec.name.clone()), ..Default::default() };
        Ok(self.inner.create_container(Some(opts), body).await.map_err(docker_err("create container", &spec.name))?.id)
    }

    /// Attach a container made by [`Self::create_container`] (which attaches the first) to its other networks.
    pub async fn connect_extra_networks(&self, id: &str, spec: &ContainerSpec) -> Result<(), Error> {
        for net in spec.networks.iter().skip(1) {
            let endpoint_config = Some(EndpointSettings { aliases: Some(spec.aliases.clone()), ..Default::default() });
            let req = NetworkConnectRequest { container: id.to_string(), endpoint_config };
            self.inner.connect_network(net, req).await.map_err(docker_err("connect container to network", net))?;
        }
        Ok(())
    }

    pub async fn start(&self, id: &str, name: &str) -> Result<(), Error> {
        match self.inner.start_container(id, None).await {
            // 304: already running (an interrupted `up` asked for the start, and Docker finished it).
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            other => other.map_err(docker_err("start container", name)),
        }
    }

    pub async fn stop(&self, id: &str, name: &str, timeout: Option<i32>) -> Result<(), Error> {
        let opts = StopContainerOptions { t: timeout, signal: None };
        match self.inner.stop_container(id, Some(opts)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            // 304: already stopped
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => Ok(()),
            other => other.map_err(docker_err("stop container", name)),
        }
    }

    /// Remove a container; `anonymous_volumes` also removes the unnamed volumes only it used (named volumes
    /// never go with a container).
    pub async fn remove(&self, id: &str, name: &str, anonymous_volumes: bool) -> Result<(), Error> {
        let opts = RemoveContainerOptions { force: true, v: anonymous_volumes, link: false };
        match self.inner.remove_container(id, Some(opts)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(docker_err("remove container", name)),
        }
    }

    pub async fn restart(&self, id: &str, name: &str, timeout: Option<i32>) -> Result<(), Error> {
        let opts = RestartContainerOptions { t: timeout, signal: None };
        self.inner.restart_container(id, Some(opts)).await.map_err(docker_err("restart container", name))
    }

    pub async fn inspect(&self, id: &str, name: &str) -> Result<ContainerStatus, Error> {
        let c = self.inner.inspect_container(id, None).await.map_err(docker_err("inspect container", name))?;
        let state = c.state.unwrap_or_default();
        let health = state.health.as_ref();
        let ip_addresses = c
            .network_settings
            .and_then(|n| n.networks)
            .map(|nets| nets.into_values().filter_map(|e| e.ip_address).filter(|ip| !ip.is_empty()).collect())
            .unwrap_or_default();
        Ok(ContainerStatus {
            state: state.status.map(|s| s.to_string()).unwrap_or_default(),
            running: state.running.unwrap_or(false),
            restarting: state.restarting.unwrap_or(false),
            exit_code: state.exit_code.unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
            health: health.and_then(|h| h.status).and_then(|s| match s {
                HealthStatusEnum::STARTING => Some("starting".to_string()),
                HealthStatusEnum::HEALTHY => Some("healthy".to_string()),
                HealthStatusEnum::UNHEALTHY => Some("unhealthy".to_string()),
                _ => None,
            }),
            health_log: health
                .and_then(|h| h.log.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|l| format!("exit {}: {}", l.exit_code.unwrap_or(-1), l.output.unwrap_or_default().trim()))
                .collect(),
            ip_addresses,
            started_at: state.started_at,
            restart_count: c.restart_count.unwrap_or(0),
            env: c.config.and_then(|c| c.env).unwrap_or_default(),
        })
    }

    /// Run `cmd` in the container and return its exit code (output discarded).
    pub async fn exec(&self, id: &str, name: &str, cmd: &[String]) -> Result<i64, Error> {
        let config = bollard::models::ExecConfig {
            cmd: Some(cmd.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self.inner.create_exec(id, config).await.map_err(docker_err("exec in container", name))?;
        match self.inner.start_exec(&exec.id, None).await.map_err(docker_err("exec in container", name))? {
            bollard::exec::StartExecResults::Attached { mut output, .. } => while output.next().await.is_some() {},
            bollard::exec::StartExecResults::Detached => {}
        }
        let inspect = self.inner.inspect_exec(&exec.id).await.map_err(docker_err("exec in container", name))?;
        Ok(inspect.exit_code.unwrap_or(-1))
    }

    // --- exec_output: used by the doctor's service checks (nginx -t, pip check, network probes) ---
    /// Run `cmd` in the container and return its exit code and its output (stdout and stderr interleaved, as
    /// the process wrote them).
    pub async fn exec_output(&self, id: &str, name: &str, cmd: &[String]) -> Result<(i64, String), Error> {
        let config = bollard::models::ExecConfig {
            cmd: Some(cmd.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self.inner.create_exec(id, config).await.map_err(docker_err("exec in container", name))?;
        let mut text = Vec::new();
        match self.inner.start_exec(&exec.id, None).await.map_err(docker_err("exec in container", name))? {
            bollard::exec::StartExecResults::Attached { mut output, .. } => {
                while let Some(chunk) = output.next().await {
                    text.extend_from_slice(&chunk.map_err(docker_err("read exec output of", name))?.into_bytes());
                }
            }
            bollard::exec::StartExecResults::Detached => {}
        }
        let inspect = self.inner.inspect_exec(&exec.id).await.map_err(docker_err("exec in container", name))?;
        Ok((inspect.exit_code.unwrap_or(-1), String::from_utf8_lossy(&text).into_owned()))
    }
    // --- end exec_output ---

    // --- exec_captured: used by `crate::db` to run psql in a PostgreSQL container ---
    /// Run `cmd` in the container with extra `env` (`KEY=value`: a password that must not appear in argv) and
    /// return its exit code with stdout and stderr apart (rows on stdout, errors to classify on stderr).
    pub async fn exec_captured(
        &self,
        id: &str,
        name: &str,
        cmd: &[String],
        env: &[String],
    ) -> Result<ExecOutput, Error> {
        let config = bollard::models::ExecConfig {
            cmd: Some(cmd.to_vec()),
            env: (!env.is_empty()).then(|| env.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self.inner.create_exec(id, config).await.map_err(docker_err("exec in container", name))?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        match self.inner.start_exec(&exec.id, None).await.map_err(docker_err("exec in container", name))? {
            bollard::exec::StartExecResults::Attached { mut output, .. } => {
                while let Some(chunk) = output.next().await {
                    match chunk.map_err(docker_err("read exec output of", name))? {
                        bollard::container::LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                        other => stdout.extend_from_slice(&other.into_bytes()),
                    }
                }
            }
            bollard::exec::StartExecResults::Detached => {}
        }
        let inspect = self.inner.inspect_exec(&exec.id).await.map_err(docker_err("exec in container", name))?;
        Ok(ExecOutput {
            exit_code: inspect.exit_code.unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }
    // --- end exec_captured ---

    /// Memory in use (minus page cache, as `docker stats` shows it) and the limit, in bytes. The limit is
    /// the host's memory when the container has none.
    pub async fn memory_usage(&self, id: &str, name: &str) -> Result<(u64, u64), Error> {
        let opts = StatsOptions { stream: false, one_shot: true };
        let mut stream = self.inner.stats(id, Some(opts));
        let stats = stream
            .next()
            .await
            .ok_or_else(|| Error::Docker { action: "read stats of", target: name.into(), cause: "no data".into() })?
            .map_err(docker_err("read stats of", name))?;
        let mem = stats.memory_stats.unwrap_or_default();
        let cache =
            mem.stats.as_ref().and_then(|s| s.get("inactive_file").or_else(|| s.get("cache")).copied()).unwrap_or(0);
        Ok((mem.usage.unwrap_or(0).saturating_sub(cache), mem.limit.unwrap_or(0)))
    }

    /// The exit code of the container's most recent death. Docker resets `State.ExitCode` to 0 when a
    /// crash-looping container starts again, so its `die` events are the only record of why it died.
    pub async fn last_exit_code(&self, id: &str) -> Option<i64> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
        let opts = EventsOptions {
            since: Some((now.as_secs().saturating_sub(24 * 3600)).to_string()),
            // Fractional: whole seconds would cut off a death in the current second, and a future `until`
            // would keep the stream open.
            until: Some(format!("{}.{:09}", now.as_secs(), now.subsec_nanos())),
            filters: Some(HashMap::from([
                ("container".to_string(), vec![id.to_string()]),
                ("event".to_string(), vec!["die".to_string()]),
            ])),
        };
        let mut stream = self.inner.events(Some(opts));
        let mut last = None;
        while let Some(Ok(event)) = stream.next().await {
            if let Some(code) = event.actor.and_then(|a| a.attributes).and_then(|a| a.get("exitCode").cloned()) {
                last = code.parse().ok();
            }
        }
        last
    }

    /// Where the engine keeps images and volumes (for the disk-space check).
    pub async fn root_dir(&self) -> Result<String, Error> {
        let info = self.inner.info().await.map_err(docker_err("query info of", &self.endpoint))?;
        Ok(info.docker_root_dir.unwrap_or_else(|| "/var/lib/docker".into()))
    }

    /// Log lines (stdout and stderr interleaved as Docker stores them).
    pub fn logs(
        &self,
        id: &str,
        tail: Option<usize>,
        since: Option<i64>,
        follow: bool,
    ) -> impl Stream<Item = Result<String, Error>> + use<> {
        let opts = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            since: since.unwrap_or(0) as i32,
            tail: tail.map(|t| t.to_string()).unwrap_or_else(|| "all".into()),
            ..Default::default()
        };
        let name = id.to_string();
        self.inner.logs(id, Some(opts)).map(move |item| {
            item.map(|out| String::from_utf8_lossy(&out.into_bytes()).into_owned()).map_err(|e| Error::Docker {
                action: "read logs of",
                target: name.clone(),
                cause: describe(&e),
            })
        })
    }

    /// The last `n` log lines, for failure reports.
    pub async fn log_tail(&self, id: &str, n: usize) -> Vec<String> {
        let mut stream = Box::pin(self.logs(id, Some(n), None, false));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&chunk);
        }
        text.lines().map(str::to_string).collect()
    }
}

// --- swarm ---
// The Swarm endpoints (nodes, services, tasks, secrets, overlay networks) for `--target swarm`. They speak the
// types of [`crate::swarm`]; deciding what to create or when a service has converged is that module's job.

/// A Swarm service of the project as the manager reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ObservedSwarmService {
    pub id: String,
    /// `<project>_<service>`.
    pub name: String,
    /// The stack's service name (compose's service label).
    pub service: String,
    pub config_hash: String,
    /// The object version an update must name.
    pub version: u64,
    pub replicas: u64,
    pub running: u64,
    pub image: String,
    /// `published->target/protocol (mode)`.
    pub ports: Vec<String>,
    /// updating | paused | completed | rollback_started | rollback_paused | rollback_completed
    pub update_state: Option<String>,
    pub update_message: Option<String>,
}

/// One task (a replica's attempt) of a Swarm service.
#[derive(Debug, Clone, Serialize)]
pub struct ObservedTask {
    pub id: String,
    /// `<service>.<slot>` as `docker service ps` shows it.
    pub name: String,
    /// new … running | complete | failed | shutdown | rejected | orphaned | remove
    pub state: String,
    pub desired_state: String,
    pub message: String,
    pub err: String,
    pub exit_code: Option<i64>,
    pub node_id: String,
    pub updated_at: String,
    /// Runs the service's current spec (not one an update is replacing).
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedSwarmNetwork {
    pub name: String,
    pub driver: String,
}

fn namespace_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{}={project}", crate::swarm::LABEL_STACK_NAMESPACE)])])
}

fn observed_service(s: bollard::models::Service) -> ObservedSwarmService {
    let spec = s.spec.unwrap_or_default();
    let labels = spec.labels.clone().unwrap_or_default();
    let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
    let ports = s
        .endpoint
        .and_then(|e| e.ports)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            format!(
                "{}->{}/{} ({})",
                p.published_port.unwrap_or(0),
                p.target_port.unwrap_or(0),
                p.protocol.map(|x| x.to_string()).unwrap_or_else(|| "tcp".into()),
                p.publish_mode.map(|x| x.to_string()).unwrap_or_else(|| "ingress".into())
            )
        })
        .collect();
    let status = s.service_status.unwrap_or_default();
    let update = s.update_status;
    ObservedSwarmService {
        id: s.id.unwrap_or_default(),
        name: spec.name.clone().unwrap_or_default(),
        service: label(LABEL_SERVICE),
        config_hash: label(LABEL_CONFIG_HASH),
        version: s.version.and_then(|v| v.index).unwrap_or(0),
        replicas: spec.mode.as_ref().and_then(|m| m.replicated.as_ref()).and_then(|r| r.replicas).unwrap_or(0).max(0)
            as u64,
        running: status.running_tasks.unwrap_or(0),
        image: spec.task_template.and_then(|t| t.container_spec).and_then(|c| c.image).unwrap_or_default(),
        ports,
        update_state: update.as_ref().and_then(|u| u.state).map(|st| st.to_string()).filter(|st| !st.is_empty()),
        update_message: update.and_then(|u| u.message),
    }
}

/// The Swarm form of a [`SwarmServiceSpec`].
/// `secret_ids`: Swarm wants each secret referenced by id as well as by name.
fn swarm_service_body(spec: &SwarmServiceSpec, secret_ids: &HashMap<String, String>) -> bollard::models::ServiceSpec {
    use crate::swarm::{MountKind, RestartCondition, Routing, UpdateOrder};
    use bollard::models::{
        EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum, EndpointSpec,
        EndpointSpecModeEnum, Limit, Mount, MountTmpfsOptions, MountType, MountVolumeOptions, NetworkAttachmentConfig,
        ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecUpdateConfig,
        ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec,
        TaskSpecContainerSpecFile, TaskSpecContainerSpecSecrets, TaskSpecLogDriver, TaskSpecPlacement,
        TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
    };
    let mounts = spec
        .mounts
        .iter()
        .map(|m| Mount {
            target: Some(m.target.clone()),
            source: (!m.source.is_empty()).then(|| m.source.clone()),
            typ: Some(match m.kind {
                MountKind::Volume => MountType::VOLUME,
                MountKind::Bind => MountType::BIND,
                MountKind::Tmpfs => MountType::TMPFS,
            }),
            read_only: m.read_only.then_some(true),
            volume_options: (m.kind == MountKind::Volume && !m.labels.is_empty()).then(|| MountVolumeOptions {
                labels: Some(m.labels.clone().into_iter().collect()),
                ..Default::default()
            }),
            tmpfs_options: m.tmpfs_size.map(|size| MountTmpfsOptions { size_bytes: Some(size), ..Default::default() }),
            ..Default::default()
        })
        .collect();
    let container = TaskSpecContainerSpec {
        image: Some(spec.image.clone()),
        labels: Some(spec.container_labels.clone().into_iter().collect()),
        command: spec.command.clone(),
        args: spec.args.clone(),
        env: Some(spec.env.clone()),
        user: spec.user.clone(),
        mounts: Some(mounts),
        stop_grace_period: spec.stop_grace_ns,
        health_check: spec.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: Some(h.interval_ns),
            timeout: Some(h.timeout_ns),
            retries: Some(h.retries),
            start_period: Some(h.start_period_ns),
            start_interval: None,
        }),
        secrets: (!spec.secrets.is_empty()).then(|| {
            spec.secrets
                .iter()
                .map(|s| TaskSpecContainerSpecSecrets {
                    file: Some(TaskSpecContainerSpecFile {
                        name: Some(s.file.clone()),
                        uid: Some("0".into()),
                        gid: Some("0".into()),
                        mode: Some(0o444),
                    }),
                    secret_id: secret_ids.get(&s.secret).cloned(),
                    secret_name: Some(s.secret.clone()),
                })
                .collect()
        }),
        sysctls: (!spec.sysctls.is_empty()).then(|| spec.sysctls.clone().into_iter().collect()),
        capability_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
        ulimits: (!spec.ulimits.is_empty()).then(|| {
            spec.ulimits
                .iter()
                .map(|(name, (soft, hard))| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(*soft),
                    hard: Some(*hard),
                })
                .collect()
        }),
        ..Default::default()
    };
    let networks: Vec<NetworkAttachmentConfig> = spec
        .networks
        .iter()
        .map(|n| NetworkAttachmentConfig {
            target: Some(n.clone()),
            aliases: Some(spec.aliases.clone()),
            driver_opts: None,
        })
        .collect();
    let task = TaskSpec {
        container_spec: Some(container),
        resources: (spec.nano_cpus.is_some() || spec.memory.is_some()).then(|| TaskSpecResources {
            limits: Some(Limit { nano_cpus: spec.nano_cpus, memory_bytes: spec.memory, pids: None }),
            ..Default::default()
        }),
        restart_policy: Some(TaskSpecRestartPolicy {
            condition: Some(match spec.restart {
                RestartCondition::Any => TaskSpecRestartPolicyConditionEnum::ANY,
                RestartCondition::OnFailure => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
            }),
            delay: Some(spec.restart_delay_ns),
            max_attempts: spec.restart_max_attempts,
            window: None,
        }),
        placement: (!spec.constraints.is_empty())
            .then(|| TaskSpecPlacement { constraints: Some(spec.constraints.clone()), ..Default::default() }),
        networks: Some(networks),
        log_driver: spec.log_driver.as_ref().map(|d| TaskSpecLogDriver {
            name: Some(d.clone()),
            options: Some(spec.log_options.clone().into_iter().collect()),
        }),
        ..Default::default()
    };
    let mesh = spec.routing == Routing::Mesh;
    ServiceSpec {
        name: Some(spec.name.clone()),
        labels: Some(spec.labels.clone().into_iter().collect()),
        task_template: Some(task),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(spec.replicas as i64) }),
            ..Default::default()
        }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(spec.update_monitor_ns),
            max_failure_ratio: Some(0.0),
            order: Some(match spec.update_order {
                UpdateOrder::StartFirst => ServiceSpecUpdateConfigOrderEnum::START_FIRST,
                UpdateOrder::StopFirst => ServiceSpecUpdateConfigOrderEnum::STOP_FIRST,
            }),
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(if mesh { EndpointSpecModeEnum::VIP } else { EndpointSpecModeEnum::DNSRR }),
            ports: Some(
                spec.ports
                    .iter()
                    .map(|p| EndpointPortConfig {
                        name: None,
                        protocol: Some(match p.protocol.as_str() {
                            "udp" => EndpointPortConfigProtocolEnum::UDP,
                            "sctp" => EndpointPortConfigProtocolEnum::SCTP,
                            _ => EndpointPortConfigProtocolEnum::TCP,
                        }),
                        target_port: Some(i64::from(p.target)),
                        published_port: Some(i64::from(p.published)),
                        publish_mode: Some(if mesh {
                            EndpointPortConfigPublishModeEnum::INGRESS
                        } else {
                            EndpointPortConfigPublishModeEnum::HOST
                        }),
                    })
                    .collect(),
            ),
        }),
        ..Default::default()
    }
}

impl DockerClient {
    /// Whether this engine manages a swarm (only managers accept services, secrets and overlay networks).
    pub async fn is_swarm_manager(&self) -> Result<bool, Error> {
        match self.inner.inspect_swarm().await {
            Ok(_) => Ok(true),
            // 503: not part of a swarm, or a worker; 406: the swarm is locked or not active.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 503 | 406, .. }) => Ok(false),
            Err(e) => Err(docker_err("inspect swarm of", &self.endpoint)(e)),
        }
    }

    /// How many nodes carry the node label `key=value`.
    pub async fn count_swarm_nodes_labelled(&self, key: &str, value: &str) -> Result<usize, Error> {
        let filters = HashMap::from([("node.label".to_string(), vec![format!("{key}={value}")])]);
        let opts = bollard::query_parameters::ListNodesOptions { filters: Some(filters) };
        let nodes =
            self.inner.list_nodes(Some(opts)).await.map_err(docker_err("list swarm nodes of", &self.endpoint))?;
        Ok(nodes.len())
    }

    pub async fn list_swarm_networks(&self, project: &str) -> Result<Vec<ObservedSwarmNetwork>, Error> {
        // By name as well as by label: a container-target network of the same name (labelled by compose, not by
        // the stack namespace) must be seen to be refused.
        let opts =
            ListNetworksOptions { filters: Some(HashMap::from([("name".to_string(), vec![format!("{project}_")])])) };
        let nets = self.inner.list_networks(Some(opts)).await.map_err(docker_err("list networks of", project))?;
        Ok(nets
            .into_iter()
            .filter(|n| {
                let labels = n.labels.clone().unwrap_or_default();
                labels.get(crate::swarm::LABEL_STACK_NAMESPACE).map(String::as_str) == Some(project)
                    || labels.get(LABEL_PROJECT).map(String::as_str) == Some(project)
            })
            .map(|n| ObservedSwarmNetwork { name: n.name.unwrap_or_default(), driver: n.driver.unwrap_or_default() })
            .collect())
    }

    pub async fn create_overlay_network(&self, spec: &NetworkSpec) -> Result<(), Error> {
        let req = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some("overlay".into()),
            // Attachable: `docker run --network` (and ragctl's doctor probes) can join it for diagnosis.
            attachable: Some(true),
            internal: Some(spec.internal),
            labels: Some(spec.labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.inner.create_network(req).await.map(|_| ()).map_err(docker_err("create overlay network", &spec.name))
    }

    /// Names of the project's secrets.
    pub async fn list_swarm_secrets(&self, project: &str) -> Result<Vec<String>, Error> {
        let opts = bollard::query_parameters::ListSecretsOptions { filters: Some(namespace_filter(project)) };
        let secrets = self.inner.list_secrets(Some(opts)).await.map_err(docker_err("list secrets of", project))?;
        let mut names: Vec<String> = secrets.into_iter().filter_map(|s| s.spec.and_then(|s| s.name)).collect();
        names.sort();
        Ok(names)
    }

    /// Create a secret. The value travels base64-encoded in the request body only; errors name the secret.
    pub async fn create_secret(
        &self,
        name: &str,
        labels: &std::collections::BTreeMap<String, String>,
        value: &str,
    ) -> Result<(), Error> {
        use base64::Engine;
        let spec = bollard::models::SecretSpec {
            name: Some(name.to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            data: Some(base64::engine::general_purpose::STANDARD.encode(value)),
            ..Default::default()
        };
        match self.inner.create_secret(spec).await {
            // 409: it exists (an interrupted `up` created it); its name carries its content hash, so it is the same.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => Ok(()),
            other => other.map(|_| ()).map_err(docker_err("create secret", name)),
        }
    }

    pub async fn remove_secret(&self, name: &str) -> Result<(), Error> {
        match self.inner.delete_secret(name).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(docker_err("remove secret", name)),
        }
    }

    pub async fn list_swarm_services(&self, project: &str) -> Result<Vec<ObservedSwarmService>, Error> {
        let opts = bollard::query_parameters::ListServicesOptions {
            filters: Some(namespace_filter(project)),
            status: Some(true),
        };
        let list = self.inner.list_services(Some(opts)).await.map_err(docker_err("list services of", project))?;
        let mut out: Vec<ObservedSwarmService> = list.into_iter().map(observed_service).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Ids of the secrets `spec` mounts.
    async fn secret_ids(&self, spec: &SwarmServiceSpec) -> Result<HashMap<String, String>, Error> {
        if spec.secrets.is_empty() {
            return Ok(HashMap::new());
        }
        let names: Vec<String> = spec.secrets.iter().map(|s| s.secret.clone()).collect();
        let filters = HashMap::from([("name".to_string(), names.clone())]);
        let opts = bollard::query_parameters::ListSecretsOptions { filters: Some(filters) };
        let secrets = self.inner.list_secrets(Some(opts)).await.map_err(docker_err("list secrets of", &spec.name))?;
        let ids: HashMap<String, String> = secrets
            .into_iter()
            .filter_map(|s| Some((s.spec?.name?, s.id?)))
            .filter(|(name, _)| names.contains(name))
            .collect();
        match names.iter().find(|n| !ids.contains_key(*n)) {
            Some(missing) => Err(Error::Docker {
                action: "find secret",
                target: missing.clone(),
                cause: format!("service `{}` mounts it, but the swarm has no secret of that name", spec.name),
            }),
            None => Ok(ids),
        }
    }

    pub async fn create_service(&self, spec: &SwarmServiceSpec) -> Result<String, Error> {
        let body = swarm_service_body(spec, &self.secret_ids(spec).await?);
        let created = self.inner.create_service(body, None).await.map_err(docker_err("create service", &spec.name))?;
        Ok(created.id.unwrap_or_default())
    }

    /// Replace the service's spec; `version` is the one observed (Swarm refuses an update of a stale version).
    pub async fn update_service(&self, id: &str, version: u64, spec: &SwarmServiceSpec) -> Result<(), Error> {
        let opts = bollard::query_parameters::UpdateServiceOptions {
            version: version as i32,
            registry_auth_from: "spec".into(),
            rollback: None,
        };
        let body = swarm_service_body(spec, &self.secret_ids(spec).await?);
        self.inner
            .update_service(id, body, opts, None)
            .await
            .map(|_| ())
            .map_err(docker_err("update service", &spec.name))
    }

    pub async fn remove_service(&self, name: &str) -> Result<(), Error> {
        match self.inner.delete_service(name).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(docker_err("remove service", name)),
        }
    }

    /// The service (with its update status) and every task the manager still keeps for it, newest first.
    pub async fn swarm_service_tasks(&self, name: &str) -> Result<(ObservedSwarmService, Vec<ObservedTask>), Error> {
        let service = self
            .inner
            .inspect_service(name, None::<bollard::query_parameters::InspectServiceOptions>)
            .await
            .map_err(docker_err("inspect service", name))?;
        let task_hash = |spec: Option<&bollard::models::TaskSpec>| {
            spec.and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.labels.as_ref())
                .and_then(|l| l.get(crate::swarm::LABEL_TASK_HASH).cloned())
        };
        let want = task_hash(service.spec.as_ref().and_then(|s| s.task_template.as_ref()));
        let filters = HashMap::from([("service".to_string(), vec![name.to_string()])]);
        let opts = bollard::query_parameters::ListTasksOptions { filters: Some(filters) };
        let tasks = self.inner.list_tasks(Some(opts)).await.map_err(docker_err("list tasks of", name))?;
        let mut observed: Vec<ObservedTask> = tasks
            .into_iter()
            .filter(|t| t.service_id.as_deref() == service.id.as_deref())
            .map(|t| {
                let current = want.is_some() && task_hash(t.spec.as_ref()) == want;
                let status = t.status.unwrap_or_default();
                ObservedTask {
                    name: format!("{name}.{}", t.slot.unwrap_or(0)),
                    id: t.id.unwrap_or_default(),
                    state: status.state.map(|s| s.to_string()).unwrap_or_default(),
                    desired_state: t.desired_state.map(|s| s.to_string()).unwrap_or_default(),
                    message: status.message.unwrap_or_default(),
                    err: status.err.unwrap_or_default(),
                    exit_code: status.container_status.and_then(|c| c.exit_code),
                    node_id: t.node_id.unwrap_or_default(),
                    updated_at: t.updated_at.map(|d| d.to_string()).unwrap_or_default(),
                    current,
                }
            })
            .collect();
        observed.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
        Ok((observed_service(service), observed))
    }

    /// True when no task of the (removed) service has a container left on any node.
    pub async fn swarm_service_tasks_gone(&self, name: &str) -> Result<bool, Error> {
        let filters = HashMap::from([("service".to_string(), vec![name.to_string()])]);
        let opts = bollard::query_parameters::ListTasksOptions { filters: Some(filters) };
        match self.inner.list_tasks(Some(opts)).await {
            Ok(tasks) => Ok(tasks.is_empty()),
            Err(e) if is_not_found(&e) => Ok(true),
            Err(e) => Err(docker_err("list tasks of", name)(e)),
        }
    }

    /// The last `n` log lines of a task (from whichever node ran it), for failure reports.
    pub async fn task_log_tail(&self, task_id: &str, n: usize) -> Vec<String> {
        let opts = LogsOptions { stdout: true, stderr: true, tail: n.to_string(), ..Default::default() };
        let mut stream = Box::pin(self.inner.task_logs(task_id, Some(opts)));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text.lines().map(str::to_string).collect()
    }

    /// The project's named volumes on this node (Swarm creates them where a task first mounts them).
    pub async fn list_swarm_volumes(&self, project: &str) -> Result<Vec<String>, Error> {
        let opts = ListVolumesOptions { filters: Some(namespace_filter(project)) };
        let vols = self.inner.list_volumes(Some(opts)).await.map_err(docker_err("list volumes of", project))?;
        Ok(vols.volumes.unwrap_or_default().into_iter().map(|v| v.name).collect())
    }
}
// --- end swarm ---
