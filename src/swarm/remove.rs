//! Taking a deployment down: the project's services, then (once their tasks are gone) its networks, then its
//! secrets; volumes only when asked. Found by the namespace label, whatever the current profiles say.

use std::time::Instant;

use serde::Serialize;

use super::status::{observe, require_manager};
use super::{DOWN_TIMEOUT, POLL_INTERVAL};
use crate::docker::DockerClient;
use crate::error::Error;
use crate::reporter::{Event, Reporter};

/// What `down --target swarm` removed.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub services: Vec<String>,
    pub networks: Vec<String>,
    pub secrets: Vec<String>,
    pub volumes: Vec<String>,
}

/// Remove the project's deployment; its named volumes too when `volumes` (the caller has confirmed that).
pub async fn down(
    docker: &DockerClient,
    project: &str,
    volumes: bool,
    reporter: &dyn Reporter,
) -> Result<Removed, Error> {
    require_manager(docker).await?;
    let observed = observe(docker, project).await?;
    for s in &observed.services {
        reporter.event(Event::Stopping { service: s.service.clone(), container: s.name.clone() });
    }
    futures_util::future::try_join_all(observed.services.iter().map(|s| async {
        docker.remove_service(&s.name).await?;
        reporter.event(Event::Removed { kind: "service".into(), name: s.name.clone() });
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
                        "look at `docker service ps` and the nodes, then run `ragctl down --target swarm` again".into(),
                    ),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
    let networks: Vec<String> = observed.networks.iter().map(|n| n.name.clone()).collect();
    for n in &networks {
        retry_until(deadline, || docker.remove_network(n)).await?;
        reporter.event(Event::Removed { kind: "network".into(), name: n.clone() });
    }
    for s in &observed.secrets {
        docker.remove_secret(s).await?;
        reporter.event(Event::Removed { kind: "secret".into(), name: s.clone() });
    }
    let volumes = if volumes { docker.list_swarm_volumes(project).await? } else { Vec::new() };
    for v in &volumes {
        retry_until(deadline, || docker.remove_volume(v)).await?;
        reporter.event(Event::Removed { kind: "volume".into(), name: v.clone() });
    }
    Ok(Removed {
        services: observed.services.into_iter().map(|s| s.name).collect(),
        networks,
        secrets: observed.secrets,
        volumes,
    })
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
