//! Looking at a deployment: whether the engine may run one, and what the swarm runs for the project.

use super::SwarmObserved;
use crate::docker::{DockerClient, ObservedSwarmService, ObservedTask};
use crate::error::Error;

/// The swarm must be active and this engine one of its managers: only managers accept services.
pub(super) async fn require_manager(docker: &DockerClient) -> Result<(), Error> {
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

pub(super) async fn observe(docker: &DockerClient, project: &str) -> Result<SwarmObserved, Error> {
    let (networks, secrets, services) = futures_util::try_join!(
        docker.list_swarm_networks(project),
        docker.list_swarm_secrets(project),
        docker.list_swarm_services(project)
    )?;
    Ok(SwarmObserved { networks, secrets, services })
}

/// `ps --target swarm`: each service of the project with every task the manager keeps for it.
pub async fn services_with_tasks(
    docker: &DockerClient,
    project: &str,
) -> Result<Vec<(ObservedSwarmService, Vec<ObservedTask>)>, Error> {
    require_manager(docker).await?;
    let services = docker.list_swarm_services(project).await?;
    let tasks =
        futures_util::future::try_join_all(services.iter().map(|s| docker.swarm_service_tasks(&s.name))).await?;
    Ok(services.into_iter().zip(tasks.into_iter().map(|(_, tasks)| tasks)).collect())
}
