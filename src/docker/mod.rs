//! The one module that talks to the Docker Engine API (bollard): a seam. It owns its request types
//! ([`ContainerCreate`], [`ServiceCreate`], ...) and its responses ([`ObservedContainer`], [`ContainerStatus`],
//! [`ObservedSwarmService`], ...); the capabilities above (engine, swarm, doctor, db) translate their models into
//! them. Every bollard error becomes an [`Error`] that names the operation and its object: a raw `hyper::Error`
//! or "error trying to connect" tells an operator nothing.
//!
//! It imports nothing of ragctl but the base, and must not decide anything (what to create, when to wait):
//! that is the plan of the capability that calls it.

mod archive;
mod containers;
mod exec;
mod images;
mod networks;
mod swarm;

use std::collections::HashMap;

use bollard::Docker;

use crate::error::Error;

pub use archive::HelperContainer;
pub use containers::{ContainerCreate, ContainerStatus, HealthCheck, ObservedContainer, PublishedPort};
pub use exec::{ExecOutput, StreamedExit};
pub use swarm::{
    MountKind, ObservedSwarmNetwork, ObservedSwarmService, ObservedTask, RestartCondition, SecretMount, ServiceCreate,
    ServicePort, SwarmMount, UpdateOrder,
};

pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";
/// Per-request timeout; pulls and log streams are not bounded by it in practice (bollard applies it per
/// request, and readiness has its own deadlines).
const REQUEST_TIMEOUT_SECS: u64 = 600;

// Compose's labels: ragctl names and labels its objects as `docker compose` does, so it reads them back by these.
pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
pub const LABEL_CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const LABEL_DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// `docker stack deploy`'s namespace label: how the swarm halves of `down` and `ps` find the project.
pub const LABEL_STACK_NAMESPACE: &str = "com.docker.stack.namespace";
/// On a Swarm task's container: a hash of what its task runs (the task template and endpoint, not the replica
/// count or update policy), so a task of the service's current spec can be told from one an update is replacing.
pub const LABEL_TASK_HASH: &str = "org.ragctl.swarm.task-hash";

#[derive(Clone)]
pub struct DockerClient {
    inner: Docker,
    pub endpoint: String,
    pub api_version: String,
}

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

    /// The engine's own version (for `doctor` and `--verbose`).
    pub async fn server_version(&self) -> Result<String, Error> {
        let v = self.inner.version().await.map_err(docker_err("query version of", &self.endpoint))?;
        Ok(v.version.unwrap_or_default())
    }

    /// Where the engine keeps images and volumes (for the disk-space check).
    pub async fn root_dir(&self) -> Result<String, Error> {
        let info = self.inner.info().await.map_err(docker_err("query info of", &self.endpoint))?;
        Ok(info.docker_root_dir.unwrap_or_else(|| "/var/lib/docker".into()))
    }
}
