//! `--target swarm`: the same stack model as `up`, deployed as Docker Swarm services through the Engine API
//! (never by shelling out to `docker stack`).
//!
//! The stages mirror the container engine ([`crate::engine`]): [`spec`] turns the resolved
//! [`crate::engine::spec::Desired`] containers into one [`SwarmServiceSpec`] per stack service, overlay networks and
//! Swarm secrets (pure); [`plan`] compares them with what the swarm runs (pure, printable with `--dry-run`);
//! [`deploy`] applies the plan in dependency order and waits until every task runs (Swarm reports a task `running`
//! only once its healthcheck passed); [`remove`] takes a deployment down; [`status`] observes one. Docker is
//! reached through the [`crate::docker`] seam. The `--target swarm` halves of the `up`, `down` and `ps` commands
//! (flags, reports, printing) are in the command layer; this capability returns data and reports progress
//! through a [`crate::reporter::Reporter`].
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

pub mod deploy;
pub mod plan;
pub mod remove;
pub mod spec;
pub mod status;

use std::time::Duration;

use serde::Serialize;

use crate::env_vars::{EnvSnapshot, RAGCTL_SWARM_ROUTING};
use crate::error::Error;

pub use crate::docker::{
    LABEL_STACK_NAMESPACE, LABEL_TASK_HASH, MountKind, RestartCondition, SecretMount, SwarmMount, UpdateOrder,
};
pub use deploy::{Convergence, Deployment, SwarmServiceOutcome, UpOptions, assess, up};
pub use plan::{ServiceAction, SwarmObserved, SwarmPlan, plan_swarm};
pub use remove::{Removed, down};
pub use spec::{SwarmDesired, SwarmFacts, SwarmPort, SwarmSecret, SwarmServiceSpec, swarm_desired};
pub use status::services_with_tasks;

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

#[cfg(test)]
mod tests;
