//! Checks before `up` creates anything: every host port it will publish is free (or already held by this
//! project's own container), with the holder named when it is not.

use serde::Serialize;

use super::plan::{ContainerAction, Plan};
use crate::docker::DockerClient;
use crate::error::Error;
use crate::port_holder;

#[derive(Debug, Clone, Serialize)]
pub struct PortConflict {
    pub host_ip: String,
    pub port: u16,
    pub service: String,
    /// The `.env` key that moves the port.
    pub env: String,
    /// Who holds it, in words (`process postgres (pid 812)`, `container web-1 of project shop`).
    pub holder: String,
}

impl PortConflict {
    pub fn describe(&self) -> String {
        let ip = if self.host_ip.is_empty() { "0.0.0.0" } else { &self.host_ip };
        format!(
            "port {ip}:{} for `{}` is already in use by {}\n  hint: set {}=<free port> in .env, or stop it",
            self.port, self.service, self.holder, self.env
        )
    }
}

/// Ports the plan will bind that something else holds.
pub async fn port_conflicts(docker: &DockerClient, plan: &Plan) -> Result<Vec<PortConflict>, Error> {
    let mut conflicts = Vec::new();
    for step in &plan.containers {
        // A kept container already holds its ports; a recreated one frees them just before binding again.
        if matches!(step.action, ContainerAction::Keep { .. } | ContainerAction::Recreate { .. }) {
            continue;
        }
        for p in &step.spec.ports {
            let ip = if p.host_ip.is_empty() { "0.0.0.0" } else { p.host_ip.as_str() };
            let free = match port_holder::is_free(ip, p.host_port) {
                Ok(free) => free,
                Err(e) => {
                    return Err(Error::Deploy {
                        message: format!("failed to check host port {} for `{}`: {e}", p.host_port, step.service),
                        hint: e.hint(),
                    });
                }
            };
            if free {
                continue;
            }
            // Our own container may hold it: one that an interrupted `up` asked Docker to start (the start
            // completes after ragctl exits), or one starting right now behind its docker-proxy.
            let publishers = docker.containers_publishing(p.host_port).await.unwrap_or_default();
            let ours = publishers.iter().any(|(_, project)| *project == plan.project)
                || (matches!(step.action, ContainerAction::Start { .. })
                    && port_holder::holders(p.host_port).iter().all(|h| h.is_docker_proxy())
                    && publishers.is_empty());
            if ours {
                continue;
            }
            let holder = describe_holder(docker, p.host_port).await;
            conflicts.push(PortConflict {
                host_ip: p.host_ip.clone(),
                port: p.host_port,
                service: step.service.clone(),
                env: p.env.clone(),
                holder,
            });
        }
    }
    Ok(conflicts)
}

async fn describe_holder(docker: &DockerClient, port: u16) -> String {
    if let Ok(containers) = docker.containers_publishing(port).await
        && let Some((name, project)) = containers.first()
    {
        return if project.is_empty() {
            format!("container `{name}`")
        } else {
            format!("container `{name}` of project `{project}`")
        };
    }
    let holders = port_holder::holders(port);
    match holders.as_slice() {
        [] => "a process this user cannot see (another user's or another PID namespace's; try `sudo ss -ltnp`)".into(),
        [one, ..] => {
            let mut s = format!("process `{}` (pid {})", one.name, one.pid);
            if holders.len() > 1 {
                s.push_str(&format!(" and {} more", holders.len() - 1));
            }
            s
        }
    }
}
