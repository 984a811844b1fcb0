//! `--target swarm`: the same stack model as `up`, deployed as Docker Swarm services through the Engine API
//! (never by shelling out to `docker stack`).
//!
//! The stages mirror the container engine: [`swarm_desired`] turns the resolved [`Desired`] containers into one
//! [`SwarmServiceSpec`] per stack service, overlay networks and Swarm secrets (pure); [`plan_swarm`] compares
//! them with what the swarm runs (pure, printable with `--dry-run`); [`deploy`] applies the plan in dependency
//! order and waits until every task runs (Swarm reports a task `running` only once its healthcheck passed).
//! Only [`crate::docker`] talks to Docker. The `--target swarm` halves of `up`, `down` and `ps` live at the end
//! of this file, so each command file keeps a single early branch.
//!
//! Rules, so an operator can predict what runs where:
//! - A service is *stateful* when it mounts a named volume and its profile does not declare it `stateless`
//!   (api and worker share `app_storage` but may run anywhere). Stateful services are pinned to the nodes labelled
//!   `ragctl.data=true` when at least one node carries that label, otherwise to managers (`node.role==manager`),
//!   and update stop-first (two PostgreSQL processes must never share a data directory); stateless services
//!   update start-first. Every update is rolling (one task at a time) and rolls back on failure.
//! - Ports are published only where the model publishes them: nginx in the full shape, the data services in
//!   the middleware shape. The ingress routing mesh ignores bind addresses, so a middleware port bound to
//!   127.0.0.1 by compose is reachable on every interface of every node here (`up` says so).
//! - A variable whose value comes from a stack secret becomes a Swarm secret when the image reads `<VAR>_FILE`
//!   ([`FILE_CONTRACTS`]); otherwise it stays in the environment (visible to `docker service inspect`, as with
//!   compose). Secret names carry a hash of their content, so a rotation creates a new secret and updates the
//!   services that use it; superseded secrets are removed once nothing references them. Values are never printed.
//!
//! This module must not print secret values nor import bollard.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::cli::{DownArgs, PsArgs, UpArgs};
use crate::docker::{
    DockerClient, ObservedSwarmNetwork, ObservedSwarmService, ObservedTask, ServiceCreate, ServicePort,
};
pub use crate::docker::{
    LABEL_STACK_NAMESPACE, LABEL_TASK_HASH, MountKind, RestartCondition, SecretMount, SwarmMount, UpdateOrder,
};
use crate::engine::readiness::FAILURE_LOG_LINES;
use crate::engine::spec::{
    ContainerSpec, Desired, HealthCheck, LABEL_CONFIG_HASH, LABEL_MANAGED, LABEL_PROJECT, LABEL_SERVICE, NetworkSpec,
};
use crate::env_vars::{EnvSnapshot, RAGCTL_SWARM_ROUTING};
use crate::error::Error;
use crate::output::Output;
use crate::profile::{DependencyCondition, ReadinessProbe};
use crate::reporter::{Event, Reporter, reporter};
use crate::settings::Settings;
use crate::stack::Stack;

/// On a secret: the name it is mounted under (its object name adds a content hash).
pub const LABEL_SECRET: &str = "org.ragctl.secret";
/// Nodes with this label set to `true` hold the data of stateful services.
pub const DATA_NODE_LABEL: &str = "ragctl.data";
const MANAGER_CONSTRAINT: &str = "node.role==manager";

/// Images that read `<VAR>_FILE` instead of `<VAR>` (the official postgres entrypoint's `file_env`), by the
/// last path component of the image name without its tag.
pub const FILE_CONTRACTS: &[(&str, &[&str])] = &[
    ("postgres", &["POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "POSTGRES_INITDB_ARGS"]),
    ("pgvector", &["POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "POSTGRES_INITDB_ARGS"]),
];

/// Pause between looks at a service's tasks while waiting for convergence.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long `down` waits for tasks to go and networks to detach.
const DOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause before a failed task is replaced, so a crash loop does not spin.
const RESTART_DELAY_NS: i64 = 5_000_000_000;
/// How long an updated task must keep running before the rolling update moves on (or rolls back).
const UPDATE_MONITOR_NS: i64 = 5_000_000_000;
const HINT_RERUN: &str =
    "fix the cause, then run `ragctl up --target swarm` again: it updates only the services that differ";

/// Present when the kernel has IPVS, which the ingress routing mesh and virtual IPs need.
const IPVS_PROC: &str = "/proc/sys/net/ipv4/vs";

/// How published ports and service addresses are routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    /// Swarm's default: ports published on every node through the ingress routing mesh, one virtual IP per
    /// service. Needs IPVS in the nodes' kernels.
    Mesh,
    /// Ports published on the node that runs the task, DNS round robin between tasks. For kernels without
    /// IPVS, where the mesh and virtual IPs do not route.
    Host,
}

impl Routing {
    /// From `RAGCTL_SWARM_ROUTING` (`mesh`, the default, or `host`).
    pub fn from_env(env: &EnvSnapshot) -> Result<Routing, Error> {
        match env.get(RAGCTL_SWARM_ROUTING) {
            None | Some("mesh") => Ok(Routing::Mesh),
            Some("host") => Ok(Routing::Host),
            Some(other) => Err(Error::config_hint(
                format!("invalid {RAGCTL_SWARM_ROUTING} `{other}`"),
                format!("set {RAGCTL_SWARM_ROUTING} to `mesh` (ingress and virtual IPs) or `host`"),
            )),
        }
    }
}

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
fn references(raw: &str, name: &str) -> bool {
    let braced = format!("${{{name}");
    let bare = format!("${name}");
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    raw.match_indices(&braced).any(|(i, m)| raw[i + m.len()..].chars().next().is_some_and(|c| !ident(c)))
        || raw.match_indices(&bare).any(|(i, m)| !raw[i + m.len()..].chars().next().is_some_and(ident))
}

/// `registry:5000/library/postgres:15-alpine@sha256:..` → `postgres`.
fn image_base_name(image: &str) -> &str {
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

// ---------------------------------------------------------------------------------------------------------------
// Plan

#[derive(Debug, Clone, PartialEq)]
pub enum ServiceAction {
    Create,
    Update { id: String, version: u64 },
    Keep { id: String },
}

/// What the swarm runs now.
#[derive(Debug, Clone, Default)]
pub struct SwarmObserved {
    pub networks: Vec<ObservedSwarmNetwork>,
    pub secrets: Vec<String>,
    pub services: Vec<ObservedSwarmService>,
}

pub struct SwarmPlan {
    pub create_networks: Vec<NetworkSpec>,
    /// Secret names to create (values are in [`SwarmDesired::secrets`]).
    pub create_secrets: Vec<String>,
    /// One per desired service, in dependency order.
    pub services: Vec<(SwarmServiceSpec, ServiceAction)>,
    pub orphans: Vec<ObservedSwarmService>,
    pub remove_orphans: bool,
    /// The project's secrets no desired service references (superseded by a rotation): removed after deploying.
    pub stale_secrets: Vec<String>,
}

/// Desired vs observed → actions. Refuses a project whose networks exist as non-overlay networks (it runs on
/// the container target: both cannot share names).
pub fn plan_swarm(desired: &SwarmDesired, observed: &SwarmObserved, remove_orphans: bool) -> Result<SwarmPlan, Error> {
    let mut create_networks = Vec::new();
    for n in &desired.networks {
        match observed.networks.iter().find(|o| o.name == n.name) {
            Some(o) if o.driver != "overlay" => {
                return Err(Error::Deploy {
                    message: format!(
                        "network `{}` exists with driver `{}`: project `{}` runs as containers on this engine",
                        n.name, o.driver, desired.project
                    ),
                    hint: Some(format!(
                        "remove it with `ragctl -p {} down`, or deploy the swarm under another project name (-p)",
                        desired.project
                    )),
                });
            }
            Some(_) => {}
            None => create_networks.push(n.clone()),
        }
    }
    let create_secrets =
        desired.secrets.iter().filter(|s| !observed.secrets.contains(&s.name)).map(|s| s.name.clone()).collect();
    let services = desired
        .services
        .iter()
        .map(|spec| {
            let action = match observed.services.iter().find(|o| o.name == spec.name) {
                None => ServiceAction::Create,
                Some(o) if o.config_hash == spec.config_hash() => ServiceAction::Keep { id: o.id.clone() },
                Some(o) => ServiceAction::Update { id: o.id.clone(), version: o.version },
            };
            (spec.clone(), action)
        })
        .collect();
    let orphans =
        observed.services.iter().filter(|o| !desired.services.iter().any(|s| s.name == o.name)).cloned().collect();
    let wanted: BTreeSet<&str> = desired.secrets.iter().map(|s| s.name.as_str()).collect();
    let stale_secrets = observed.secrets.iter().filter(|s| !wanted.contains(s.as_str())).cloned().collect();
    Ok(SwarmPlan { create_networks, create_secrets, services, orphans, remove_orphans, stale_secrets })
}

impl SwarmPlan {
    /// One line per action, `keep` lines included (callers hide them unless verbose).
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for n in &self.create_networks {
            lines.push(format!("create network {} (overlay{})", n.name, if n.internal { ", internal" } else { "" }));
        }
        for s in &self.create_secrets {
            lines.push(format!("create secret {s}"));
        }
        for (spec, action) in &self.services {
            lines.push(match action {
                ServiceAction::Create => format!("create service {} ({} replicas)", spec.name, spec.replicas),
                ServiceAction::Update { .. } => format!(
                    "update service {} (configuration changed; rolling, {})",
                    spec.name,
                    if spec.update_order == UpdateOrder::StartFirst { "start-first" } else { "stop-first" }
                ),
                ServiceAction::Keep { .. } => format!("keep service {}", spec.name),
            });
        }
        for o in &self.orphans {
            if self.remove_orphans {
                lines.push(format!("remove orphan service {}", o.name));
            }
        }
        for s in &self.stale_secrets {
            lines.push(format!("remove secret {s} (no longer referenced)"));
        }
        lines
    }

    pub fn is_noop(&self) -> bool {
        self.describe().iter().all(|l| l.starts_with("keep "))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Convergence

/// Where a service stands, from its update status and tasks.
#[derive(Debug, Clone, PartialEq)]
pub enum Convergence {
    Converged,
    Waiting(String),
    /// A task of the current spec failed (or the update rolled back); `task` names it for its logs.
    Failed {
        message: String,
        task: Option<String>,
    },
}

/// Judge one look at a service. `known` holds the ids of the tasks that existed before this `up` acted: their
/// old failures are history, not news.
pub fn assess(
    spec: &SwarmServiceSpec,
    update_state: Option<&str>,
    update_message: Option<&str>,
    tasks: &[ObservedTask],
    known: &BTreeSet<String>,
) -> Convergence {
    let one_shot = match spec.ready {
        ReadinessProbe::Exit(code) => Some(code),
        _ => None,
    };
    let newest_failed = tasks
        .iter()
        .filter(|t| t.current && !known.contains(&t.id))
        .filter(|t| match t.state.as_str() {
            "failed" | "rejected" => true,
            "complete" => one_shot.is_none_or(|code| t.exit_code.unwrap_or(0) != code),
            _ => false,
        })
        .max_by(|a, b| a.updated_at.cmp(&b.updated_at));
    if let Some(state @ ("rollback_started" | "rollback_paused" | "rollback_completed" | "paused")) = update_state {
        return Convergence::Failed {
            message: format!(
                "update {}: {}",
                state.replace('_', " "),
                update_message.filter(|m| !m.is_empty()).unwrap_or("no message")
            ),
            task: newest_failed.map(|t| t.id.clone()),
        };
    }
    if let Some(t) = newest_failed {
        let what = match (t.state.as_str(), t.exit_code) {
            ("rejected", _) => "was rejected".to_string(),
            (_, Some(code)) => format!("exited with code {code}"),
            (state, None) => state.to_string(),
        };
        let detail = [t.err.as_str(), t.message.as_str()].into_iter().find(|s| !s.is_empty()).unwrap_or("");
        return Convergence::Failed {
            message: format!(
                "task `{}` {what}{}",
                t.name,
                if detail.is_empty() { String::new() } else { format!(": {detail}") }
            ),
            task: Some(t.id.clone()),
        };
    }
    if let Some(code) = one_shot {
        if tasks.iter().any(|t| t.current && t.state == "complete" && t.exit_code.unwrap_or(0) == code) {
            return Convergence::Converged;
        }
        return Convergence::Waiting(format!("its task to exit with code {code}"));
    }
    let wanted: Vec<&ObservedTask> = tasks.iter().filter(|t| t.desired_state == "running").collect();
    let running = wanted.iter().filter(|t| t.current && t.state == "running").count() as u64;
    let updating = update_state == Some("updating");
    if running == spec.replicas && wanted.len() as u64 == spec.replicas && !updating {
        return Convergence::Converged;
    }
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for t in wanted.iter().filter(|t| t.state != "running" || !t.current) {
        *states.entry(t.state.as_str()).or_default() += 1;
    }
    let pending_why = wanted.iter().map(|t| t.err.as_str()).find(|e| !e.is_empty());
    let mut text = format!(
        "{running}/{} tasks running{}",
        spec.replicas,
        if spec.healthcheck.is_some() { " and healthy" } else { "" }
    );
    if !states.is_empty() {
        let list: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
        text.push_str(&format!(" ({})", list.join(", ")));
    }
    if updating {
        text.push_str(", rolling update in progress");
    }
    if let Some(why) = pending_why {
        text.push_str(&format!(": {why}"));
    }
    Convergence::Waiting(text)
}

#[derive(Debug, Clone, Serialize)]
pub struct SwarmServiceOutcome {
    pub service: String,
    pub swarm_service: String,
    pub replicas: u64,
    pub changed: bool,
    pub ready_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServiceState {
    Pending,
    Ready,
    Failed,
}

/// Apply the plan: networks and secrets, then each service once its dependencies have converged (as `up` starts
/// containers), then wait for it to converge. The first failure stops the rest and names the failed task with
/// its last log lines. Superseded secrets and (with `--remove-orphans`) orphan services go last.
pub async fn deploy(
    docker: &DockerClient,
    desired: &SwarmDesired,
    plan: &SwarmPlan,
    reporter: &dyn Reporter,
    wait: bool,
) -> Result<Vec<SwarmServiceOutcome>, Error> {
    let started = Instant::now();
    futures_util::future::try_join_all(plan.create_networks.iter().map(|n| async move {
        docker.create_overlay_network(&n.name, n.internal, &n.labels).await?;
        reporter.event(Event::NetworkCreated { name: n.name.clone() });
        Ok::<(), Error>(())
    }))
    .await?;
    futures_util::future::try_join_all(desired.secrets.iter().filter(|s| plan.create_secrets.contains(&s.name)).map(
        |s| async move {
            docker.create_secret(&s.name, &s.labels, &s.value).await?;
            reporter.event(Event::Note { message: format!("secret {} created", s.name) });
            Ok::<(), Error>(())
        },
    ))
    .await?;

    let mut senders: HashMap<&str, watch::Sender<ServiceState>> = HashMap::new();
    let mut receivers: HashMap<&str, watch::Receiver<ServiceState>> = HashMap::new();
    for (spec, _) in &plan.services {
        let (tx, rx) = watch::channel(ServiceState::Pending);
        senders.insert(&spec.service, tx);
        receivers.insert(&spec.service, rx);
    }
    let tasks = plan.services.iter().map(|(spec, action)| {
        let tx = &senders[spec.service.as_str()];
        let receivers = &receivers;
        async move {
            let result = deploy_service(docker, spec, action, receivers, reporter, wait, started).await;
            let _ = tx.send(if result.is_ok() { ServiceState::Ready } else { ServiceState::Failed });
            result
        }
    });
    let outcomes = futures_util::future::try_join_all(tasks).await?;

    if plan.remove_orphans {
        for o in &plan.orphans {
            docker.remove_service(&o.name).await?;
            reporter.event(Event::Removed { kind: "service".into(), name: o.name.clone() });
        }
    } else {
        for o in &plan.orphans {
            reporter.event(Event::Note {
                message: format!("service `{}` is not in the stack (remove it with --remove-orphans)", o.name),
            });
        }
    }
    for s in &plan.stale_secrets {
        // An orphan service kept running may still use it: keep it then, a later run removes it.
        match docker.remove_secret(s).await {
            Ok(()) => reporter.event(Event::Removed { kind: "secret".into(), name: s.clone() }),
            Err(e) => reporter.event(Event::Note { message: format!("kept secret {s}: {e}") }),
        }
    }
    Ok(outcomes)
}

async fn deploy_service(
    docker: &DockerClient,
    spec: &SwarmServiceSpec,
    action: &ServiceAction,
    receivers: &HashMap<&str, watch::Receiver<ServiceState>>,
    reporter: &dyn Reporter,
    wait: bool,
    started: Instant,
) -> Result<SwarmServiceOutcome, Error> {
    let outcome = |changed, ready_ms| SwarmServiceOutcome {
        service: spec.service.clone(),
        swarm_service: spec.name.clone(),
        replicas: spec.replicas,
        changed,
        ready_ms,
    };
    if wait {
        for (dep, _) in &spec.depends_on {
            let Some(rx) = receivers.get(dep.as_str()) else { continue };
            let mut rx = rx.clone();
            reporter.event(Event::Waiting {
                service: spec.service.clone(),
                container: spec.name.clone(),
                condition: format!("dependency {dep} converged"),
            });
            let state = *rx.wait_for(|s| *s != ServiceState::Pending).await.map_err(|_| Error::Deploy {
                message: format!("service `{}` was not deployed: `{dep}` never converged", spec.service),
                hint: Some(HINT_RERUN.into()),
            })?;
            if state == ServiceState::Failed {
                return Err(Error::Deploy {
                    message: format!("service `{}` was not deployed: its dependency `{dep}` failed", spec.service),
                    hint: Some(HINT_RERUN.into()),
                });
            }
        }
    }
    let known: BTreeSet<String> = match action {
        ServiceAction::Create => BTreeSet::new(),
        _ => docker.swarm_service_tasks(&spec.name).await?.1.into_iter().map(|t| t.id).collect(),
    };
    let changed = match action {
        ServiceAction::Create => {
            docker.create_service(&spec.create_request()).await?;
            reporter.event(Event::ContainerCreated { service: spec.service.clone(), container: spec.name.clone() });
            true
        }
        ServiceAction::Update { id, version } => {
            reporter.event(Event::Recreating {
                service: spec.service.clone(),
                container: spec.name.clone(),
                reason: format!(
                    "configuration changed, rolling update ({})",
                    if spec.update_order == UpdateOrder::StartFirst { "start-first" } else { "stop-first" }
                ),
            });
            docker.update_service(id, *version, &spec.create_request()).await?;
            true
        }
        ServiceAction::Keep { .. } => {
            reporter.event(Event::Unchanged { service: spec.service.clone(), container: spec.name.clone() });
            false
        }
    };
    if !wait {
        return Ok(outcome(changed, None));
    }
    let deadline = started.elapsed() + spec.ready_timeout;
    let mut last = String::new();
    loop {
        let (service, tasks) = docker.swarm_service_tasks(&spec.name).await?;
        let verdict = assess(spec, service.update_state.as_deref(), service.update_message.as_deref(), &tasks, &known);
        match verdict {
            Convergence::Converged => {
                let elapsed_ms = started.elapsed().as_millis() as u64;
                reporter.event(Event::Ready {
                    service: spec.service.clone(),
                    container: spec.name.clone(),
                    elapsed_ms,
                });
                return Ok(outcome(changed, Some(elapsed_ms)));
            }
            Convergence::Failed { message, task } => {
                reporter.event(Event::Failed {
                    service: spec.service.clone(),
                    container: spec.name.clone(),
                    message: message.clone(),
                });
                let logs = match &task {
                    Some(id) => docker.task_log_tail(id, FAILURE_LOG_LINES).await,
                    None => Vec::new(),
                };
                return Err(failure(spec, &message, &logs));
            }
            Convergence::Waiting(text) => {
                if text != last {
                    reporter.event(Event::Waiting {
                        service: spec.service.clone(),
                        container: spec.name.clone(),
                        condition: text.clone(),
                    });
                    last = text;
                }
                if started.elapsed() >= deadline {
                    let newest = tasks.iter().filter(|t| t.current).max_by(|a, b| a.updated_at.cmp(&b.updated_at));
                    let logs = match newest {
                        Some(t) => docker.task_log_tail(&t.id, FAILURE_LOG_LINES).await,
                        None => Vec::new(),
                    };
                    let message = format!("did not converge within {}s: {last}", spec.ready_timeout.as_secs());
                    reporter.event(Event::Failed {
                        service: spec.service.clone(),
                        container: spec.name.clone(),
                        message: message.clone(),
                    });
                    return Err(failure(spec, &message, &logs));
                }
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn failure(spec: &SwarmServiceSpec, message: &str, logs: &[String]) -> Error {
    let mut text = format!("service `{}` (swarm service `{}`) {message}", spec.service, spec.name);
    if !logs.is_empty() {
        text.push_str(&format!("\n\nlast {} log lines of `{}`:", logs.len(), spec.name));
        for line in logs {
            text.push_str(&format!("\n  {line}"));
        }
    }
    Error::Deploy { message: text, hint: Some(HINT_RERUN.into()) }
}

/// The swarm must be active and this engine one of its managers: only managers accept services.
async fn require_manager(docker: &DockerClient) -> Result<(), Error> {
    if docker.is_swarm_manager().await? {
        return Ok(());
    }
    Err(Error::Deploy {
        message: format!("the Docker engine at `{}` is not a swarm manager", docker.endpoint),
        hint: Some(
            "create a swarm with `docker swarm init --advertise-addr <address>`, or point DOCKER_HOST at a manager of an existing one"
                .into(),
        ),
    })
}

async fn observe(docker: &DockerClient, project: &str) -> Result<SwarmObserved, Error> {
    let (networks, secrets, services) = futures_util::try_join!(
        docker.list_swarm_networks(project),
        docker.list_swarm_secrets(project),
        docker.list_swarm_services(project)
    )?;
    Ok(SwarmObserved { networks, secrets, services })
}

// ---------------------------------------------------------------------------------------------------------------
// The `--target swarm` halves of `up`, `down` and `ps`.

#[derive(Serialize)]
struct SwarmUpReport<'a> {
    project: &'a str,
    target: &'static str,
    dry_run: bool,
    routing: Routing,
    files_written: &'a [String],
    secrets_generated: &'a [String],
    plan: Vec<String>,
    services: Vec<SwarmServiceOutcome>,
    elapsed_ms: u64,
}

/// What `up` already did before branching to the swarm (render, `.env` secrets): reported alongside.
pub struct UpPrelude<'a> {
    /// Rendered files that differ from disk (written unless `--dry-run`).
    pub changed_files: &'a [String],
    pub secrets_generated: &'a [String],
    pub started: Instant,
}

/// `ragctl up --target swarm`, from the resolved model `up` built (`desired`) and the `.env` values (`vars`).
pub fn up(
    settings: &Settings,
    out: &Output,
    args: &UpArgs,
    stack: &Stack,
    desired: &Desired,
    vars: &dyn Fn(&str) -> Option<String>,
    prelude: UpPrelude<'_>,
) -> Result<i32, Error> {
    let routing = Routing::from_env(&EnvSnapshot::capture())?;
    let runtime = crate::commands::runtime()?;
    let rep = reporter(settings.progress, settings.color);
    let result = runtime.block_on(crate::commands::interruptible(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        require_manager(&docker).await?;
        if routing == Routing::Mesh && docker.is_local() && !std::path::Path::new(IPVS_PROC).exists() {
            return Err(Error::Deploy {
                message: format!(
                    "this node's kernel has no IPVS ({IPVS_PROC} is missing): Swarm's ingress routing mesh and the services' virtual IPs would not route, so the stack could not reach itself"
                ),
                hint: Some(format!(
                    "load the kernel module (`modprobe ip_vs`), or set {RAGCTL_SWARM_ROUTING}=host: ports on the node running each task, DNS round robin between tasks"
                )),
            });
        }
        let data_nodes = docker.count_swarm_nodes_labelled(DATA_NODE_LABEL, "true").await? > 0;
        let swarm = swarm_desired(stack, desired, vars, SwarmFacts { routing, data_nodes });
        let observed = observe(&docker, &swarm.project).await?;
        let plan = plan_swarm(&swarm, &observed, args.remove_orphans)?;
        let lines = plan.describe();
        if args.dry_run {
            return Ok((plan, lines, Vec::new()));
        }
        for note in &swarm.notes {
            rep.event(Event::Note { message: note.clone() });
        }
        rep.event(Event::PlanReady { actions: lines.iter().filter(|l| !l.starts_with("keep ")).count() });
        let outcomes = deploy(&docker, &swarm, &plan, rep.as_ref(), !args.no_wait).await?;
        Ok((plan, lines, outcomes))
    }));
    rep.finish();
    let (plan, lines, outcomes) = result?;
    let elapsed = prelude.started.elapsed();
    if out.is_json() {
        out.json(&SwarmUpReport {
            project: &stack.project,
            target: "swarm",
            dry_run: args.dry_run,
            routing,
            files_written: if args.dry_run { &[] } else { prelude.changed_files },
            secrets_generated: prelude.secrets_generated,
            plan: lines,
            services: outcomes,
            elapsed_ms: elapsed.as_millis() as u64,
        });
    } else if args.dry_run {
        let mut text = String::new();
        for f in prelude.changed_files {
            text.push_str(&format!("write file {f}\n"));
        }
        for line in lines.iter().filter(|l| out.verbose > 0 || !l.starts_with("keep ")) {
            text.push_str(line);
            text.push('\n');
        }
        if plan.is_noop() && prelude.changed_files.is_empty() && prelude.secrets_generated.is_empty() {
            text.push_str("nothing to do: the swarm services are up to date\n");
        }
        out.data(&text);
    } else {
        let changed = outcomes.iter().filter(|o| o.changed).count();
        out.info(&format!(
            "project `{}`: {} swarm services converged ({} changed, {} unchanged) in {:.1}s",
            stack.project,
            outcomes.len(),
            changed,
            outcomes.len() - changed,
            elapsed.as_secs_f64()
        ));
    }
    Ok(crate::commands::OK)
}

#[derive(Serialize)]
struct SwarmDownReport {
    project: String,
    target: &'static str,
    services: Vec<String>,
    networks: Vec<String>,
    secrets: Vec<String>,
    volumes: Vec<String>,
    elapsed_ms: u64,
}

/// `ragctl down --target swarm`: the project's services, then (once their tasks are gone) its networks, then
/// its secrets; volumes only with `--volumes`, after confirmation. Found by the namespace label, whatever the
/// current profiles say.
/// `down --target swarm`. The command layer has already confirmed volume removal and taken the project lock.
pub fn down(settings: &Settings, out: &Output, args: &DownArgs) -> Result<i32, Error> {
    let started = Instant::now();
    let project = settings.project_name.clone();
    let rep = reporter(settings.progress, settings.color);
    let runtime = crate::commands::runtime()?;
    let result = runtime.block_on(crate::commands::interruptible(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        require_manager(&docker).await?;
        let observed = observe(&docker, &project).await?;
        for s in &observed.services {
            rep.event(Event::Stopping { service: s.service.clone(), container: s.name.clone() });
        }
        futures_util::future::try_join_all(observed.services.iter().map(|s| async {
            docker.remove_service(&s.name).await?;
            rep.event(Event::Removed { kind: "service".into(), name: s.name.clone() });
            Ok::<(), Error>(())
        }))
        .await?;
        // Networks and volumes stay attached until the removed services' containers are gone.
        let deadline = Instant::now() + DOWN_TIMEOUT;
        for s in &observed.services {
            while !docker.swarm_service_tasks_gone(&s.name).await? {
                if Instant::now() >= deadline {
                    return Err(Error::Deploy {
                        message: format!(
                            "the tasks of service `{}` did not stop within {}s",
                            s.name,
                            DOWN_TIMEOUT.as_secs()
                        ),
                        hint: Some(
                            "look at `docker service ps` and the nodes, then run `ragctl down --target swarm` again"
                                .into(),
                        ),
                    });
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
        let networks: Vec<String> = observed.networks.iter().map(|n| n.name.clone()).collect();
        for n in &networks {
            retry_until(deadline, || docker.remove_network(n)).await?;
            rep.event(Event::Removed { kind: "network".into(), name: n.clone() });
        }
        for s in &observed.secrets {
            docker.remove_secret(s).await?;
            rep.event(Event::Removed { kind: "secret".into(), name: s.clone() });
        }
        let volumes = if args.volumes { docker.list_swarm_volumes(&project).await? } else { Vec::new() };
        for v in &volumes {
            retry_until(deadline, || docker.remove_volume(v)).await?;
            rep.event(Event::Removed { kind: "volume".into(), name: v.clone() });
        }
        Ok(SwarmDownReport {
            project: project.clone(),
            target: "swarm",
            services: observed.services.into_iter().map(|s| s.name).collect(),
            networks,
            secrets: observed.secrets,
            volumes,
            elapsed_ms: 0,
        })
    }));
    rep.finish();
    let mut report = result?;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    if out.is_json() {
        out.json(&report);
    } else {
        out.info(&format!(
            "project `{project}`: removed {} swarm services, {} networks, {} secrets, {} volumes in {:.1}s{}",
            report.services.len(),
            report.networks.len(),
            report.secrets.len(),
            report.volumes.len(),
            started.elapsed().as_secs_f64(),
            if args.volumes { "" } else { " (volumes kept; --volumes removes them)" }
        ));
    }
    Ok(crate::commands::OK)
}

/// Retry an operation Docker refuses while a container that is going away still holds the object (a network
/// endpoint, a volume in use), until it succeeds or `deadline` passes.
async fn retry_until<F, Fut>(deadline: Instant, mut op: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    loop {
        match op().await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

#[derive(Serialize)]
struct SwarmPsRow {
    service: String,
    swarm_service: String,
    image: String,
    replicas_running: u64,
    replicas_desired: u64,
    update_state: Option<String>,
    ports: Vec<String>,
    tasks: Vec<SwarmPsTask>,
}

#[derive(Serialize)]
struct SwarmPsTask {
    name: String,
    state: String,
    desired_state: String,
    node: String,
    error: Option<String>,
    updated_at: String,
}

/// `ragctl ps --target swarm`: each service with running/desired replicas and the states of its current tasks.
pub fn ps(settings: &Settings, out: &Output, _args: &PsArgs) -> Result<i32, Error> {
    let project = settings.project_name.clone();
    let runtime = crate::commands::runtime()?;
    let rows = runtime.block_on(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        require_manager(&docker).await?;
        let services = docker.list_swarm_services(&project).await?;
        let tasks =
            futures_util::future::try_join_all(services.iter().map(|s| docker.swarm_service_tasks(&s.name))).await?;
        Ok::<_, Error>(
            services
                .into_iter()
                .zip(tasks)
                .map(|(s, (_, tasks))| SwarmPsRow {
                    service: s.service,
                    swarm_service: s.name,
                    image: s.image,
                    replicas_running: s.running,
                    replicas_desired: s.replicas,
                    update_state: s.update_state,
                    ports: s.ports,
                    tasks: tasks
                        .into_iter()
                        .filter(|t| t.desired_state == "running" || t.state == "running")
                        .map(|t| SwarmPsTask {
                            name: t.name,
                            state: t.state,
                            desired_state: t.desired_state,
                            node: t.node_id,
                            error: (!t.err.is_empty()).then_some(t.err),
                            updated_at: t.updated_at,
                        })
                        .collect(),
                })
                .collect::<Vec<_>>(),
        )
    })?;
    if out.is_json() {
        out.json(&rows);
        return Ok(crate::commands::OK);
    }
    if rows.is_empty() {
        out.info(&format!("project `{project}` has no swarm services"));
        return Ok(crate::commands::OK);
    }
    let w0 = rows.iter().map(|r| r.service.len()).max().unwrap_or(0).max(7);
    let w1 = rows.iter().map(|r| r.swarm_service.len()).max().unwrap_or(0).max(13);
    let mut text = format!("{:<w0$}  {:<w1$}  {:<8}  {:<24}  TASKS\n", "SERVICE", "SWARM SERVICE", "REPLICAS", "PORTS");
    for r in &rows {
        let mut states: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &r.tasks {
            *states.entry(t.state.as_str()).or_default() += 1;
        }
        let tasks: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
        text.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<8}  {:<24}  {}\n",
            r.service,
            r.swarm_service,
            format!("{}/{}", r.replicas_running, r.replicas_desired),
            if r.ports.is_empty() { "-".to_string() } else { r.ports.join(",") },
            if tasks.is_empty() { "-".to_string() } else { tasks.join(", ") }
        ));
    }
    out.data(&text);
    Ok(crate::commands::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn stack(profiles: &[&str], file: &str) -> Stack {
        crate::stack::test_support::embedded_stack(profiles, file)
    }

    fn vars(name: &str) -> Option<String> {
        crate::stack::test_support::fake_vars(name)
    }

    const MESH: SwarmFacts = SwarmFacts { routing: Routing::Mesh, data_nodes: false };

    fn build(s: &Stack, vars: &dyn Fn(&str) -> Option<String>, facts: SwarmFacts) -> SwarmDesired {
        let d = crate::engine::spec::desired(s, vars, Path::new("/p/demo"), None).unwrap();
        swarm_desired(s, &d, vars, facts)
    }

    fn service<'a>(d: &'a SwarmDesired, name: &str) -> &'a SwarmServiceSpec {
        d.services.iter().find(|s| s.service == name).unwrap()
    }

    #[test]
    fn the_postgres_password_becomes_a_file_secret_and_redis_keeps_its_environment() {
        let d = build(&stack(&["weaviate"], "project: demo\n"), &vars, MESH);
        let db = service(&d, "db_postgres");
        assert!(db.env.contains(&"POSTGRES_PASSWORD_FILE=/run/secrets/demo_db_password".to_string()), "{:?}", db.env);
        assert!(!db.env.iter().any(|e| e.contains("secret-DB_PASSWORD")), "no value in the environment");
        assert_eq!(d.secrets.len(), 1);
        let secret = &d.secrets[0];
        assert!(secret.name.starts_with("demo_db_password_") && secret.name.len() == "demo_db_password_".len() + 12);
        assert_eq!(secret.value, "secret-DB_PASSWORD");
        assert_eq!(db.secrets, [SecretMount { secret: secret.name.clone(), file: "demo_db_password".into() }]);
        // redis reads no `_FILE`: its password stays where compose puts it.
        assert!(service(&d, "redis").env.contains(&"REDISCLI_AUTH=secret-REDIS_PASSWORD".to_string()));
    }

    #[test]
    fn a_rotated_secret_gets_a_new_name_and_changes_only_its_consumers_hash() {
        let s = stack(&["weaviate"], "project: demo\n");
        let a = build(&s, &vars, MESH);
        let rotated = |n: &str| if n == "DB_PASSWORD" { Some("rotated".into()) } else { vars(n) };
        let b = build(&s, &rotated, MESH);
        assert_ne!(a.secrets[0].name, b.secrets[0].name);
        assert_ne!(service(&a, "db_postgres").config_hash(), service(&b, "db_postgres").config_hash());
        assert_eq!(service(&a, "redis").config_hash(), service(&b, "redis").config_hash());
        assert_eq!(service(&a, "redis").config_hash(), service(&build(&s, &vars, MESH), "redis").config_hash());
    }

    #[test]
    fn stateful_services_are_pinned_and_stop_first_stateless_start_first() {
        let s = stack(&["app"], "project: demo\nshape: full\n");
        let d = build(&s, &vars, MESH);
        let db = service(&d, "db_postgres");
        assert!(db.stateful);
        assert_eq!(db.constraints, ["node.role==manager"]);
        assert_eq!(db.update_order, UpdateOrder::StopFirst);
        assert_eq!(db.mounts[0].kind, MountKind::Volume);
        assert_eq!(db.mounts[0].source, "demo_db_data");
        assert_eq!(db.mounts[0].labels[LABEL_STACK_NAMESPACE], "demo");
        let api = service(&d, "api");
        assert!(!api.stateful && api.constraints.is_empty());
        assert_eq!(api.update_order, UpdateOrder::StartFirst);
        assert_eq!(api.replicas, 3);
        let labelled = build(&s, &vars, SwarmFacts { routing: Routing::Mesh, data_nodes: true });
        assert_eq!(service(&labelled, "db_postgres").constraints, ["node.labels.ragctl.data==true"]);
    }

    #[test]
    fn only_nginx_publishes_in_the_full_shape_and_the_data_network_is_internal() {
        let d = build(&stack(&["app"], "project: demo\nshape: full\n"), &vars, MESH);
        let publishing: Vec<&str> =
            d.services.iter().filter(|s| !s.ports.is_empty()).map(|s| s.service.as_str()).collect();
        assert_eq!(publishing, ["nginx"]);
        let data = d.networks.iter().find(|n| n.name == "demo_data").unwrap();
        assert!(data.internal);
        assert_eq!(data.labels[LABEL_STACK_NAMESPACE], "demo");
        assert_eq!(data.labels[LABEL_PROJECT], "demo");
        assert!(d.networks.iter().filter(|n| n.name != "demo_data").all(|n| !n.internal));
    }

    #[test]
    fn middleware_ports_are_published_and_the_ignored_bind_address_is_said() {
        let d = build(&stack(&["weaviate"], "project: demo\n"), &vars, MESH);
        let db = service(&d, "db_postgres");
        assert_eq!((db.ports[0].target, db.ports[0].published), (5432, 6543));
        assert!(d.notes.iter().any(|n| n.contains("6543") && n.contains("127.0.0.1")), "{:?}", d.notes);
    }

    fn observed_service(spec: &SwarmServiceSpec, hash: &str) -> ObservedSwarmService {
        ObservedSwarmService {
            id: format!("id-{}", spec.name),
            name: spec.name.clone(),
            service: spec.service.clone(),
            config_hash: hash.into(),
            version: 7,
            replicas: spec.replicas,
            running: spec.replicas,
            image: spec.image.clone(),
            ports: vec![],
            update_state: None,
            update_message: None,
        }
    }

    #[test]
    fn the_plan_creates_what_is_missing_updates_what_differs_and_keeps_the_rest() {
        let s = stack(&["weaviate"], "project: demo\n");
        let d = build(&s, &vars, MESH);
        let fresh = plan_swarm(&d, &SwarmObserved::default(), false).unwrap();
        assert_eq!(fresh.create_networks.len(), 1);
        assert_eq!(fresh.create_secrets.len(), 1);
        assert!(fresh.services.iter().all(|(_, a)| *a == ServiceAction::Create));

        let db = service(&d, "db_postgres");
        let observed = SwarmObserved {
            networks: vec![ObservedSwarmNetwork { name: "demo_default".into(), driver: "overlay".into() }],
            secrets: vec![d.secrets[0].name.clone(), "demo_db_password_000000000000".into()],
            services: d
                .services
                .iter()
                .map(|s| observed_service(s, if s.service == "redis" { "old" } else { s.config_hash() }))
                .chain([ObservedSwarmService { name: "demo_gone".into(), ..observed_service(db, "x") }])
                .collect(),
        };
        let plan = plan_swarm(&d, &observed, false).unwrap();
        let lines = plan.describe();
        assert_eq!(
            lines,
            [
                "keep service demo_db_postgres",
                "update service demo_redis (configuration changed; rolling, stop-first)",
                "keep service demo_weaviate",
                "remove secret demo_db_password_000000000000 (no longer referenced)",
            ]
        );
        assert_eq!(plan.orphans.len(), 1);
        assert!(matches!(plan.services[1].1, ServiceAction::Update { version: 7, .. }));

        let bridge = SwarmObserved {
            networks: vec![ObservedSwarmNetwork { name: "demo_default".into(), driver: "bridge".into() }],
            ..Default::default()
        };
        let err = plan_swarm(&d, &bridge, false).err().unwrap();
        assert!(err.to_string().contains("runs as containers on this engine"), "{err}");
    }

    fn task(id: &str, state: &str, desired: &str, current: bool) -> ObservedTask {
        ObservedTask {
            id: id.into(),
            name: format!("demo_redis.{id}"),
            state: state.into(),
            desired_state: desired.into(),
            message: String::new(),
            err: String::new(),
            exit_code: None,
            node_id: "n1".into(),
            updated_at: id.into(),
            current,
        }
    }

    #[test]
    fn convergence_needs_every_current_task_running_and_fails_on_a_new_failure_only() {
        let d = build(&stack(&["weaviate"], "project: demo\n"), &vars, MESH);
        let redis = service(&d, "redis");
        let none = BTreeSet::new();
        assert_eq!(assess(redis, None, None, &[task("a", "running", "running", true)], &none), Convergence::Converged);
        // An update the orchestrator has not acted on yet: the running task is of the old spec.
        assert!(matches!(
            assess(redis, None, None, &[task("a", "running", "running", false)], &none),
            Convergence::Waiting(w) if w.starts_with("0/1 tasks running and healthy")
        ));
        let mut failed = task("b", "failed", "shutdown", true);
        failed.exit_code = Some(3);
        failed.err = "task: non-zero exit (3)".into();
        let tasks = [failed.clone(), task("c", "starting", "running", true)];
        assert_eq!(
            assess(redis, None, None, &tasks, &none),
            Convergence::Failed {
                message: "task `demo_redis.b` exited with code 3: task: non-zero exit (3)".into(),
                task: Some("b".into())
            }
        );
        let known = BTreeSet::from(["b".to_string()]);
        assert!(matches!(assess(redis, None, None, &tasks, &known), Convergence::Waiting(_)));
        assert!(matches!(
            assess(redis, Some("rollback_completed"), Some("update rolled back"), &[], &none),
            Convergence::Failed { message, .. } if message == "update rollback completed: update rolled back"
        ));
        let mut pending = task("d", "pending", "running", true);
        pending.err = "no suitable node (scheduling constraints not satisfied on 1 node)".into();
        assert!(matches!(
            assess(redis, None, None, &[pending], &none),
            Convergence::Waiting(w) if w.contains("1 pending") && w.contains("no suitable node")
        ));
    }

    #[test]
    fn references_match_whole_variable_names() {
        assert!(references("${DB_PASSWORD:?x}", "DB_PASSWORD"));
        assert!(references("a $DB_PASSWORD b", "DB_PASSWORD"));
        assert!(!references("${DB_PASSWORD_OLD}", "DB_PASSWORD"));
        assert!(!references("$DB_PASSWORDS", "DB_PASSWORD"));
        assert_eq!(image_base_name("reg:5000/library/postgres:15-alpine"), "postgres");
        assert_eq!(image_base_name("ragctl-test/postgres:15"), "postgres");
        assert_eq!(image_base_name("pgvector/pgvector:pg16"), "pgvector");
    }
}
