//! Containers: list, create, start/stop/remove, inspect, stats, events and logs.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HealthStatusEnum, HostConfig, HostConfigLogConfig,
    NetworkConnectRequest, NetworkingConfig, PortBinding, ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, EventsOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
    RestartContainerOptions, StatsOptions, StopContainerOptions,
};
use futures_util::{Stream, StreamExt};
use serde::Serialize;

use super::{
    DockerClient, LABEL_CONFIG_HASH, LABEL_DEPENDS_ON, LABEL_NUMBER, LABEL_PROJECT, LABEL_SERVICE, describe,
    docker_err, is_not_found, project_filter,
};
use crate::error::Error;

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

/// A container to create, as Docker's API takes it.
pub struct ContainerCreate {
    pub name: String,
    pub image: String,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    pub healthcheck: Option<HealthCheck>,
    pub ports: Vec<PublishedPort>,
    /// `source:target[:mode]` with a named volume's full name or an absolute host path.
    pub binds: Vec<String>,
    pub anonymous_volumes: Vec<String>,
    /// Full network names; the first is attached at create time, the rest by
    /// [`DockerClient::connect_extra_networks`].
    pub networks: Vec<String>,
    pub aliases: Vec<String>,
    /// always | on-failure | no | unless-stopped
    pub restart: String,
    pub log_driver: Option<String>,
    pub log_options: BTreeMap<String, String>,
    pub nano_cpus: Option<i64>,
    pub memory: Option<i64>,
    pub shm_size: Option<i64>,
    pub security_opt: Vec<String>,
    pub cap_add: Vec<String>,
    pub tmpfs: BTreeMap<String, String>,
    pub ulimits: BTreeMap<String, (i64, i64)>,
    pub sysctls: BTreeMap<String, String>,
    pub stop_timeout: Option<i64>,
    pub labels: BTreeMap<String, String>,
}

/// Docker's healthcheck (for a container and for a Swarm service's tasks).
#[derive(Clone, Serialize, PartialEq)]
pub struct HealthCheck {
    pub test: Vec<String>,
    pub interval_ns: i64,
    pub timeout_ns: i64,
    pub retries: i64,
    pub start_period_ns: i64,
}

impl HealthCheck {
    pub(super) fn config(&self) -> HealthConfig {
        HealthConfig {
            test: Some(self.test.clone()),
            interval: Some(self.interval_ns),
            timeout: Some(self.timeout_ns),
            retries: Some(self.retries),
            start_period: Some(self.start_period_ns),
            start_interval: None,
        }
    }
}

/// A container port published on the host.
pub struct PublishedPort {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

pub(super) fn ulimits(ulimits: &BTreeMap<String, (i64, i64)>) -> Option<Vec<ResourcesUlimits>> {
    (!ulimits.is_empty()).then(|| {
        ulimits
            .iter()
            .map(|(name, (soft, hard))| ResourcesUlimits {
                name: Some(name.clone()),
                soft: Some(*soft),
                hard: Some(*hard),
            })
            .collect()
    })
}

impl DockerClient {
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

    /// Create (not start) a container attached to its first network: engines before API 1.44 accept one network
    /// at create time, so [`Self::connect_extra_networks`] attaches the others.
    pub async fn create_container(&self, spec: &ContainerCreate) -> Result<String, Error> {
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
            ulimits: ulimits(&spec.ulimits),
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
            healthcheck: spec.healthcheck.as_ref().map(HealthCheck::config),
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
    pub async fn connect_extra_networks(&self, id: &str, spec: &ContainerCreate) -> Result<(), Error> {
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
    /// never go with a container). Gone already, or being removed by another client (409 "removal of container
    /// ... is already in progress": another ragctl process recovering the same helper), counts as removed.
    pub async fn remove(&self, id: &str, name: &str, anonymous_volumes: bool) -> Result<(), Error> {
        let opts = RemoveContainerOptions { force: true, v: anonymous_volumes, link: false };
        match self.inner.remove_container(id, Some(opts)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, message })
                if message.contains("already in progress") =>
            {
                Ok(())
            }
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
