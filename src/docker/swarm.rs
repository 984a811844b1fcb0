//! The Swarm endpoints (nodes, services, tasks, secrets, overlay networks) for `--target swarm`. Deciding what
//! to create or when a service has converged is the swarm capability's job.

use std::collections::{BTreeMap, HashMap};

use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::{ListNetworksOptions, ListVolumesOptions, LogsOptions};
use futures_util::StreamExt;
use serde::Serialize;

use super::containers::{HealthCheck, ulimits};
use super::{
    DockerClient, LABEL_CONFIG_HASH, LABEL_PROJECT, LABEL_SERVICE, LABEL_STACK_NAMESPACE, LABEL_TASK_HASH, docker_err,
    is_not_found,
};
use crate::error::Error;

/// A Swarm service to create or update, as Docker's API takes it. May hold secret values in `env`: no `Debug`.
pub struct ServiceCreate {
    /// `<project>_<service>`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    /// Labels of the tasks' containers.
    pub container_labels: BTreeMap<String, String>,
    /// The image's entrypoint replaced (Swarm calls it `Command`).
    pub command: Option<Vec<String>>,
    /// The image's CMD replaced (Swarm calls it `Args`).
    pub args: Option<Vec<String>>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub healthcheck: Option<HealthCheck>,
    pub mounts: Vec<SwarmMount>,
    /// Full overlay network names; each attachment carries `aliases`.
    pub networks: Vec<String>,
    pub aliases: Vec<String>,
    pub secrets: Vec<SecretMount>,
    pub replicas: u64,
    pub update_order: UpdateOrder,
    pub restart: RestartCondition,
    pub restart_delay_ns: i64,
    pub restart_max_attempts: Option<i64>,
    pub update_monitor_ns: i64,
    pub constraints: Vec<String>,
    pub nano_cpus: Option<i64>,
    pub memory: Option<i64>,
    pub ports: Vec<ServicePort>,
    /// Ports through the ingress routing mesh and one virtual IP per service; otherwise ports published on the
    /// task's node and DNS round robin.
    pub mesh: bool,
    pub stop_grace_ns: Option<i64>,
    pub log_driver: Option<String>,
    pub log_options: BTreeMap<String, String>,
    pub sysctls: BTreeMap<String, String>,
    pub cap_add: Vec<String>,
    pub ulimits: BTreeMap<String, (i64, i64)>,
}

/// A port a Swarm service publishes.
pub struct ServicePort {
    pub target: u16,
    pub published: u16,
    /// tcp | udp | sctp
    pub protocol: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    StartFirst,
    StopFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    Any,
    OnFailure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    Volume,
    Bind,
    Tmpfs,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SwarmMount {
    pub kind: MountKind,
    /// Volume name or host path; empty for an anonymous volume or a tmpfs.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// Labels of a named volume the node creates on first use.
    pub labels: BTreeMap<String, String>,
    pub tmpfs_size: Option<i64>,
}

/// A Swarm secret mounted into a service: `/run/secrets/<file>`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SecretMount {
    pub secret: String,
    pub file: String,
}

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
    HashMap::from([("label".to_string(), vec![format!("{}={project}", LABEL_STACK_NAMESPACE)])])
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

/// The Swarm form of a [`ServiceCreate`].
/// `secret_ids`: Swarm wants each secret referenced by id as well as by name.
fn swarm_service_body(spec: &ServiceCreate, secret_ids: &HashMap<String, String>) -> bollard::models::ServiceSpec {
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
        health_check: spec.healthcheck.as_ref().map(HealthCheck::config),
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
        ulimits: ulimits(&spec.ulimits),
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
    let mesh = spec.mesh;
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
    /// How many Swarm services the project has (0 when the engine is not a swarm manager): a project deployed
    /// with `--target swarm` is named in the container target's messages.
    pub async fn swarm_service_count(&self, project: &str) -> usize {
        let opts = bollard::query_parameters::ListServicesOptions {
            filters: Some(namespace_filter(project)),
            status: Some(false),
        };
        self.inner.list_services(Some(opts)).await.map(|l| l.len()).unwrap_or(0)
    }

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
                labels.get(LABEL_STACK_NAMESPACE).map(String::as_str) == Some(project)
                    || labels.get(LABEL_PROJECT).map(String::as_str) == Some(project)
            })
            .map(|n| ObservedSwarmNetwork { name: n.name.unwrap_or_default(), driver: n.driver.unwrap_or_default() })
            .collect())
    }

    /// Create an overlay network; `internal`: no route out of it.
    pub async fn create_overlay_network(
        &self,
        name: &str,
        internal: bool,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("overlay".into()),
            // Attachable: `docker run --network` (and ragctl's doctor probes) can join it for diagnosis.
            attachable: Some(true),
            internal: Some(internal),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.inner.create_network(req).await.map(|_| ()).map_err(docker_err("create overlay network", name))
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
    pub async fn create_secret(&self, name: &str, labels: &BTreeMap<String, String>, value: &str) -> Result<(), Error> {
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
    async fn secret_ids(&self, spec: &ServiceCreate) -> Result<HashMap<String, String>, Error> {
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

    pub async fn create_service(&self, spec: &ServiceCreate) -> Result<String, Error> {
        let body = swarm_service_body(spec, &self.secret_ids(spec).await?);
        let created = self.inner.create_service(body, None).await.map_err(docker_err("create service", &spec.name))?;
        Ok(created.id.unwrap_or_default())
    }

    /// Replace the service's spec; `version` is the one observed (Swarm refuses an update of a stale version).
    pub async fn update_service(&self, id: &str, version: u64, spec: &ServiceCreate) -> Result<(), Error> {
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
                .and_then(|l| l.get(LABEL_TASK_HASH).cloned())
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
