//! Desired state on a swarm: the resolved containers `up` would run, as one Swarm service per stack service,
//! with overlay networks and Swarm secrets. Pure.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    DATA_NODE_LABEL, FILE_CONTRACTS, LABEL_SECRET, LABEL_STACK_NAMESPACE, LABEL_TASK_HASH, MANAGER_CONSTRAINT,
    MountKind, RESTART_DELAY_NS, RestartCondition, Routing, SecretMount, SwarmMount, UPDATE_MONITOR_NS, UpdateOrder,
};
use crate::docker::{ServiceCreate, ServicePort};
use crate::engine::spec::{
    ContainerSpec, Desired, HealthCheck, LABEL_CONFIG_HASH, LABEL_MANAGED, LABEL_PROJECT, LABEL_SERVICE, NetworkSpec,
};
use crate::profile::{DependencyCondition, ReadinessProbe};
use crate::stack::Stack;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SwarmPort {
    pub target: u16,
    pub published: u16,
    pub protocol: String,
    /// The `.env` key that moves it.
    pub env: String,
}

/// A Swarm secret as it should exist. The value is never serialized, printed or debug-formatted.
#[derive(Clone)]
pub struct SwarmSecret {
    /// `<project>_<base>_<hash>`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: String,
}

/// One Swarm service as it should run. May hold secret values in `env` (variables of images without a
/// `_FILE` contract): no `Debug`, never printed.
#[derive(Clone, Serialize, PartialEq)]
pub struct SwarmServiceSpec {
    /// `<project>_<service>`, as `docker stack deploy` names it.
    pub name: String,
    pub service: String,
    pub image: String,
    /// The image's entrypoint replaced (Swarm calls it `Command`).
    pub command: Option<Vec<String>>,
    /// The image's CMD replaced (Swarm calls it `Args`).
    pub args: Option<Vec<String>>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub healthcheck: Option<HealthCheck>,
    pub mounts: Vec<SwarmMount>,
    /// Full overlay network names; every attachment carries the stack service name as alias, so
    /// `db_postgres:5432` resolves as it does under compose.
    pub networks: Vec<String>,
    pub aliases: Vec<String>,
    pub secrets: Vec<SecretMount>,
    pub replicas: u64,
    pub stateful: bool,
    pub update_order: UpdateOrder,
    pub restart: RestartCondition,
    pub restart_delay_ns: i64,
    /// A one-shot service is restarted at most this often.
    pub restart_max_attempts: Option<i64>,
    pub update_monitor_ns: i64,
    pub constraints: Vec<String>,
    pub nano_cpus: Option<i64>,
    pub memory: Option<i64>,
    pub ports: Vec<SwarmPort>,
    pub routing: Routing,
    pub stop_grace_ns: Option<i64>,
    pub log_driver: Option<String>,
    pub log_options: BTreeMap<String, String>,
    pub sysctls: BTreeMap<String, String>,
    pub cap_add: Vec<String>,
    pub ulimits: BTreeMap<String, (i64, i64)>,
    pub labels: BTreeMap<String, String>,
    pub container_labels: BTreeMap<String, String>,
    #[serde(skip)]
    pub depends_on: Vec<(String, DependencyCondition)>,
    #[serde(skip)]
    pub ready: ReadinessProbe,
    #[serde(skip)]
    pub ready_timeout: Duration,
}

impl SwarmServiceSpec {
    pub fn config_hash(&self) -> &str {
        self.labels.get(LABEL_CONFIG_HASH).map(String::as_str).unwrap_or_default()
    }

    /// The service as the Docker seam creates or updates it.
    pub fn create_request(&self) -> ServiceCreate {
        ServiceCreate {
            name: self.name.clone(),
            labels: self.labels.clone(),
            image: self.image.clone(),
            container_labels: self.container_labels.clone(),
            command: self.command.clone(),
            args: self.args.clone(),
            env: self.env.clone(),
            user: self.user.clone(),
            healthcheck: self.healthcheck.clone(),
            mounts: self.mounts.clone(),
            networks: self.networks.clone(),
            aliases: self.aliases.clone(),
            secrets: self.secrets.clone(),
            replicas: self.replicas,
            update_order: self.update_order,
            restart: self.restart,
            restart_delay_ns: self.restart_delay_ns,
            restart_max_attempts: self.restart_max_attempts,
            update_monitor_ns: self.update_monitor_ns,
            constraints: self.constraints.clone(),
            nano_cpus: self.nano_cpus,
            memory: self.memory,
            ports: self
                .ports
                .iter()
                .map(|p| ServicePort { target: p.target, published: p.published, protocol: p.protocol.clone() })
                .collect(),
            mesh: self.routing == Routing::Mesh,
            stop_grace_ns: self.stop_grace_ns,
            log_driver: self.log_driver.clone(),
            log_options: self.log_options.clone(),
            sysctls: self.sysctls.clone(),
            cap_add: self.cap_add.clone(),
            ulimits: self.ulimits.clone(),
        }
    }
}

/// What the swarm should run for the project.
#[derive(Clone)]
pub struct SwarmDesired {
    pub project: String,
    pub networks: Vec<NetworkSpec>,
    pub secrets: Vec<SwarmSecret>,
    /// In dependency order.
    pub services: Vec<SwarmServiceSpec>,
    /// Things the operator should know about this deployment (bind addresses the mesh ignores, ...).
    pub notes: Vec<String>,
}

/// Facts about the swarm that shape the desired state.
#[derive(Debug, Clone, Copy)]
pub struct SwarmFacts {
    pub routing: Routing,
    /// At least one node carries `ragctl.data=true`.
    pub data_nodes: bool,
}

fn namespace_labels(project: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_STACK_NAMESPACE.to_string(), project.to_string()),
        (LABEL_PROJECT.to_string(), project.to_string()),
        (LABEL_MANAGED.to_string(), "true".to_string()),
    ])
}

/// `${NAME}`, `${NAME:-x}`, `${NAME?x}` or `$NAME` in a raw profile value.
pub(super) fn references(raw: &str, name: &str) -> bool {
    let braced = format!("${{{name}");
    let bare = format!("${name}");
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    raw.match_indices(&braced).any(|(i, m)| raw[i + m.len()..].chars().next().is_some_and(|c| !ident(c)))
        || raw.match_indices(&bare).any(|(i, m)| !raw[i + m.len()..].chars().next().is_some_and(ident))
}

/// `registry:5000/library/postgres:15-alpine@sha256:..` → `postgres`.
pub(super) fn image_base_name(image: &str) -> &str {
    let last = image.split('@').next().unwrap_or(image).rsplit('/').next().unwrap_or(image);
    last.split(':').next().unwrap_or(last)
}

fn honours_file_variable(image: &str, var: &str) -> bool {
    let base = image_base_name(image);
    FILE_CONTRACTS.iter().any(|(img, vars)| *img == base && vars.contains(&var))
}

fn sha256_hex(value: &impl Serialize) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    Sha256::digest(&json).iter().map(|b| format!("{b:02x}")).collect()
}

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The swarm deployment of `desired` (the same resolved containers `up` runs). `vars` resolves `.env` values,
/// as for [`crate::engine::spec::desired`].
pub fn swarm_desired(
    stack: &Stack,
    desired: &Desired,
    vars: &dyn Fn(&str) -> Option<String>,
    facts: SwarmFacts,
) -> SwarmDesired {
    let project = &desired.project;
    let networks: Vec<NetworkSpec> = desired
        .networks
        .iter()
        .map(|n| {
            let mut labels = namespace_labels(project);
            labels.extend(n.labels.clone());
            NetworkSpec { name: n.name.clone(), internal: n.internal, labels }
        })
        .collect();
    let volume_names: BTreeMap<&str, &crate::engine::spec::VolumeSpec> =
        desired.volumes.iter().map(|v| (v.name.as_str(), v)).collect();

    let mut secrets: Vec<SwarmSecret> = Vec::new();
    let mut services = Vec::new();
    let mut notes = Vec::new();
    for service in desired.services() {
        let replicas: Vec<&ContainerSpec> = desired.replicas(service).collect();
        let Some(first) = replicas.first() else { continue };
        let raw_env = stack.services.get(service).map(|s| &s.environment);
        // A profile that declares a service stateless means its volumes are shared, not owned (api's storage).
        let declared_stateless = stack.services.get(service).is_some_and(|s| s.stateless);

        // Secret-valued variables of images with a `_FILE` contract move into Swarm secrets.
        let mut env = Vec::new();
        let mut mounts_of_secrets = Vec::new();
        for entry in &first.env {
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            let secret = raw_env
                .and_then(|e| e.get(key))
                .and_then(|raw| stack.secrets.iter().find(|s| references(raw, &s.spec.name)));
            match secret {
                Some(s) if honours_file_variable(&first.image, key) => {
                    let base = if vars(&s.spec.name).as_deref() == Some(value) {
                        s.spec.name.to_ascii_lowercase()
                    } else {
                        key.to_ascii_lowercase()
                    };
                    let file = format!("{project}_{base}");
                    let name = format!("{file}_{}", short_hash(&[project, &base, value]));
                    if !secrets.iter().any(|x| x.name == name) {
                        let mut labels = namespace_labels(project);
                        labels.insert(LABEL_SECRET.to_string(), base.clone());
                        secrets.push(SwarmSecret { name: name.clone(), labels, value: value.to_string() });
                    }
                    env.push(format!("{key}_FILE=/run/secrets/{file}"));
                    mounts_of_secrets.push(SecretMount { secret: name, file });
                }
                _ => env.push(entry.clone()),
            }
        }

        let mut mounts = Vec::new();
        let mut stateful = false;
        for bind in &first.binds {
            let mut parts = bind.splitn(3, ':');
            let source = parts.next().unwrap_or_default().to_string();
            let target = parts.next().unwrap_or_default().to_string();
            let read_only = parts.next().is_some_and(|m| m.split(',').any(|o| o == "ro"));
            match volume_names.get(source.as_str()) {
                Some(volume) => {
                    stateful |= !declared_stateless;
                    let mut labels = namespace_labels(project);
                    labels.extend(volume.labels.clone());
                    mounts.push(SwarmMount {
                        kind: MountKind::Volume,
                        source,
                        target,
                        read_only,
                        labels,
                        tmpfs_size: None,
                    });
                }
                None => mounts.push(SwarmMount {
                    kind: MountKind::Bind,
                    source,
                    target,
                    read_only,
                    labels: BTreeMap::new(),
                    tmpfs_size: None,
                }),
            }
        }
        for target in &first.anonymous_volumes {
            mounts.push(SwarmMount {
                kind: MountKind::Volume,
                source: String::new(),
                target: target.clone(),
                read_only: false,
                labels: BTreeMap::new(),
                tmpfs_size: None,
            });
        }
        for target in first.tmpfs.keys() {
            mounts.push(SwarmMount {
                kind: MountKind::Tmpfs,
                source: String::new(),
                target: target.clone(),
                read_only: false,
                labels: BTreeMap::new(),
                tmpfs_size: None,
            });
        }
        // Swarm has no shm_size; a sized tmpfs on /dev/shm is what it means.
        if let Some(size) = first.shm_size {
            mounts.push(SwarmMount {
                kind: MountKind::Tmpfs,
                source: String::new(),
                target: "/dev/shm".into(),
                read_only: false,
                labels: BTreeMap::new(),
                tmpfs_size: Some(size),
            });
        }

        let ports: Vec<SwarmPort> = first
            .ports
            .iter()
            .map(|p| SwarmPort {
                target: p.container_port,
                published: p.host_port,
                protocol: p.protocol.clone(),
                env: p.env.clone(),
            })
            .collect();
        for p in first.ports.iter().filter(|p| !p.host_ip.is_empty() && p.host_ip != "0.0.0.0") {
            notes.push(format!(
                "service `{service}`: port {} (`{}`) is published on every interface of {}, not only on {}: Swarm ignores bind addresses",
                p.host_port,
                p.env,
                if facts.routing == Routing::Mesh { "every node" } else { "the node running it" },
                p.host_ip
            ));
        }

        let constraints = if stateful {
            vec![if facts.data_nodes {
                format!("node.labels.{DATA_NODE_LABEL}==true")
            } else {
                MANAGER_CONSTRAINT.to_string()
            }]
        } else {
            Vec::new()
        };
        let one_shot = matches!(first.ready, ReadinessProbe::Exit(_));
        let mut labels = namespace_labels(project);
        labels.insert(LABEL_SERVICE.to_string(), service.to_string());
        let mut container_labels = BTreeMap::from([
            (LABEL_STACK_NAMESPACE.to_string(), project.clone()),
            (LABEL_MANAGED.to_string(), "true".to_string()),
        ]);
        container_labels.insert(LABEL_SERVICE.to_string(), service.to_string());

        let mut spec = SwarmServiceSpec {
            name: format!("{project}_{service}"),
            service: service.to_string(),
            image: first.image.clone(),
            command: first.entrypoint.clone(),
            args: first.cmd.clone(),
            env,
            user: first.user.clone(),
            healthcheck: first.healthcheck.clone(),
            mounts,
            networks: first.networks.clone(),
            aliases: first.aliases.clone(),
            secrets: mounts_of_secrets,
            replicas: replicas.len() as u64,
            stateful,
            update_order: if stateful { UpdateOrder::StopFirst } else { UpdateOrder::StartFirst },
            restart: if one_shot { RestartCondition::OnFailure } else { RestartCondition::Any },
            restart_delay_ns: RESTART_DELAY_NS,
            restart_max_attempts: one_shot.then_some(3),
            update_monitor_ns: UPDATE_MONITOR_NS,
            constraints,
            nano_cpus: first.nano_cpus,
            memory: first.memory,
            ports,
            routing: facts.routing,
            stop_grace_ns: first.stop_timeout.map(|s| s * 1_000_000_000),
            log_driver: first.log_driver.clone(),
            log_options: first.log_options.clone(),
            sysctls: first.sysctls.clone(),
            cap_add: first.cap_add.clone(),
            ulimits: first.ulimits.clone(),
            labels,
            container_labels,
            depends_on: first.depends_on.clone(),
            ready: first.ready.clone(),
            ready_timeout: first.ready_timeout,
        };
        // Swarm replaces a task when its template or endpoint changes, not when the replica count, the update
        // policy or the service's labels do.
        let task_view = SwarmServiceSpec {
            replicas: 0,
            update_order: UpdateOrder::StartFirst,
            update_monitor_ns: 0,
            labels: BTreeMap::new(),
            ..spec.clone()
        };
        spec.container_labels.insert(LABEL_TASK_HASH.to_string(), sha256_hex(&task_view));
        // Like compose's config hash: everything Swarm is told (the hash itself excluded), so a change that
        // needs an update changes it, and nothing else does. Secret names carry their content hash.
        let hash = sha256_hex(&spec);
        spec.labels.insert(LABEL_CONFIG_HASH.to_string(), hash);
        services.push(spec);
    }
    SwarmDesired { project: project.clone(), networks, secrets, services, notes }
}
