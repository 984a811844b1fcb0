//! Where the host reaches one port of a service: its published port, else the container's own address.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::docker::ObservedContainer;
use crate::doctor::{DoctorContext, Outcome};
use crate::net::http::{self, HttpResponse, Timeouts};

/// Below the checks' own timeouts, so a silent peer is reported with its address rather than as a timeout.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the host reaches one port of a service.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) route: &'static str,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{} ({})", self.host, self.port, self.route)
        } else {
            write!(f, "{}:{} ({})", self.host, self.port, self.route)
        }
    }
}

/// The running container of `service`, or the outcome that says why there is none.
pub(super) async fn running_container<'a>(
    ctx: &'a DoctorContext,
    service: &str,
) -> Result<&'a ObservedContainer, Outcome> {
    if let Err(e) = ctx.containers().await {
        return Err(Outcome::fail(format!("cannot list the project's containers: {e}"), "check `docker ps` works"));
    }
    match ctx.container_of(service).await {
        None => Err(Outcome::fail(
            format!("`{service}` has no container in project `{}`", ctx.settings.project_name),
            format!("run `ragctl up` to create it (project `{}`)", ctx.settings.project_name),
        )),
        Some(c) if c.state != "running" => Err(Outcome::fail(
            format!("`{}` is {} ({})", c.name, c.state, c.status),
            format!("`ragctl up` starts it; `ragctl logs {service}` shows why it stopped"),
        )),
        Some(c) => Ok(c),
    }
}

/// The host port `container_port` is published on, as (binding address, host port); IPv4 bindings first.
pub(super) fn published(ports: &[String], container_port: u16) -> Option<(String, u16)> {
    let suffix = format!("->{container_port}/tcp");
    let mut found: Vec<(String, u16)> = ports
        .iter()
        .filter_map(|p| {
            let binding = p.strip_suffix(&suffix)?;
            let (ip, port) = binding.rsplit_once(':')?;
            Some((ip.to_string(), port.parse().ok()?))
        })
        .collect();
    found.sort_by_key(|(ip, _)| ip.contains(':'));
    found.into_iter().next()
}

/// The address published ports are reached at: the engine's host for a `tcp://` DOCKER_HOST, else the binding
/// address (loopback for a wildcard binding).
pub(super) fn published_host(ctx: &DoctorContext, binding: &str) -> String {
    if let Some(remote) = ctx.settings.docker_host.as_deref().and_then(remote_docker_host) {
        return remote;
    }
    match binding {
        "" | "0.0.0.0" => "127.0.0.1".into(),
        "::" => "::1".into(),
        other => other.to_string(),
    }
}

/// `tcp://10.0.0.5:2375` → `10.0.0.5`; None for a local socket.
pub(super) fn remote_docker_host(docker_host: &str) -> Option<String> {
    let rest = docker_host.strip_prefix("tcp://").or_else(|| docker_host.strip_prefix("http://"))?;
    let host = rest.split('/').next()?;
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    Some(host.trim_start_matches('[').trim_end_matches(']').to_string()).filter(|h| !h.is_empty())
}

/// The service's port as an operator reaches it: the published port, else the container's address.
pub(super) async fn endpoint(ctx: &DoctorContext, service: &str, container_port: u16) -> Result<Endpoint, Outcome> {
    let container = running_container(ctx, service).await?;
    if let Some((binding, port)) = published(&container.ports, container_port) {
        return Ok(Endpoint { host: published_host(ctx, &binding), port, route: "published port" });
    }
    container_endpoint(ctx, container, service, container_port).await
}

/// The container's own address on its network (reachable from a Linux host, as the Dify services reach it).
pub(super) async fn container_endpoint(
    ctx: &DoctorContext,
    container: &ObservedContainer,
    service: &str,
    container_port: u16,
) -> Result<Endpoint, Outcome> {
    let docker = ctx.docker().await.map_err(|e| Outcome::fail(e, "see `ragctl doctor --check docker.reachable`"))?;
    let status = docker
        .inspect(&container.id, &container.name)
        .await
        .map_err(|e| Outcome::fail(e.to_string(), format!("`ragctl ps` shows the state of `{service}`")))?;
    match status.ip_addresses.first() {
        Some(ip) => Ok(Endpoint { host: ip.clone(), port: container_port, route: "container address" }),
        None => Err(Outcome::fail(
            format!("`{}` has no address on any network", container.name),
            format!(
                "`docker inspect {0}` shows its networks; `docker network connect --alias {service} <network> {0}` \
                 reconnects it, or `ragctl down` then `ragctl up` recreates it (volumes are kept)",
                container.name
            ),
        )),
    }
}

pub(super) async fn connect(ep: &Endpoint) -> io::Result<TcpStream> {
    crate::net::connect((ep.host.as_str(), ep.port), CONNECT_TIMEOUT).await
}

/// GET `path` from the endpoint (HTTP/1.0, read to the end).
pub(super) async fn http_get(ep: &Endpoint, path: &str, bearer: Option<&str>) -> io::Result<HttpResponse> {
    http::get(&ep.host, ep.port, path, bearer, Timeouts { connect: CONNECT_TIMEOUT, exchange: IO_TIMEOUT }).await
}

/// The outcome of a connection that failed, with the hint for `service`.
pub(super) fn unreachable(service: &str, ep: &Endpoint, e: &io::Error) -> Outcome {
    let what = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::TimedOut => "no answer (timed out)".to_string(),
        _ => e.to_string(),
    };
    Outcome::fail(
        format!("cannot connect to `{service}` at {ep}: {what}"),
        format!("`ragctl up` starts `{service}`; `ragctl logs {service}` shows why it is not listening"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_prefer_ipv4() {
        let ports = vec![
            ":::18080->8080/tcp".to_string(),
            "127.0.0.1:18080->8080/tcp".to_string(),
            "0.0.0.0:15005->50051/tcp".to_string(),
        ];
        assert_eq!(published(&ports, 8080), Some(("127.0.0.1".into(), 18080)));
        assert_eq!(published(&ports, 50051), Some(("0.0.0.0".into(), 15005)));
        assert_eq!(published(&ports, 6379), None);
        assert_eq!(published(&[":::1234->80/tcp".to_string()], 80), Some(("::".into(), 1234)));
    }

    #[test]
    fn remote_docker_hosts() {
        assert_eq!(remote_docker_host("tcp://10.0.0.5:2375").as_deref(), Some("10.0.0.5"));
        assert_eq!(remote_docker_host("tcp://[fd00::1]:2376").as_deref(), Some("fd00::1"));
        assert_eq!(remote_docker_host("unix:///var/run/docker.sock"), None);
    }
}
