//! One waiter for every kind of readiness a profile can declare ([`ReadinessProbe`]). It probes directly
//! (exec in the container, TCP or HTTP to the container address) at a short interval instead of waiting for
//! Docker's healthcheck interval, so a ready service is seen within ~100 ms; and it fails fast when the
//! container exits, restarts or turns unhealthy.

use std::time::{Duration, Instant};

use crate::docker::{ContainerStatus, DockerClient};
use crate::net::http::{self, Timeouts};
use crate::postgres::probe;
use crate::profile::ReadinessProbe;

/// Pause between probes. An exec probe itself takes tens of milliseconds, so a short pause keeps detection
/// within ~100 ms of readiness without hammering the engine.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(20);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Log lines shown when a service fails.
pub const FAILURE_LOG_LINES: usize = 30;

/// Why a container is not going to become ready.
pub struct NotReady {
    pub message: String,
    pub logs: Vec<String>,
    pub health_log: Vec<String>,
}

/// Wait until the container is ready per `probe`. Returns the time it took.
/// Wait until the container is ready per `probe`. Returns the proof's cache key (`id@StartedAt`, see
/// [`crate::ready_cache`]). A container whose key is in `proven` and that is still running and not unhealthy
/// is ready without probing.
pub async fn wait_ready(
    docker: &DockerClient,
    id: &str,
    name: &str,
    probe: &ReadinessProbe,
    timeout: Duration,
    proven: &std::collections::BTreeSet<String>,
) -> Result<String, NotReady> {
    let started = Instant::now();
    loop {
        let status = docker.inspect(id, name).await.map_err(|e| NotReady {
            message: e.to_string(),
            logs: Vec::new(),
            health_log: Vec::new(),
        })?;
        if let Some(mut reason) = terminal_failure(&status, probe) {
            // A restarting container's own exit code reads 0 again once it runs; its death event knows better.
            if status.restart_count > 0
                && let Some(code) = docker.last_exit_code(id).await
            {
                reason = format!("is restarting (last exit code {code})");
            }
            return Err(NotReady {
                message: reason,
                logs: docker.log_tail(id, FAILURE_LOG_LINES).await,
                health_log: status.health_log.clone(),
            });
        }
        let key = crate::ready_cache::key(id, status.started_at.as_deref().unwrap_or_default());
        if (status.running && proven.contains(&key)) || probe_once(docker, id, name, probe, &status).await {
            return Ok(key);
        }
        if started.elapsed() >= timeout {
            return Err(NotReady {
                message: format!("not ready after {}s ({})", timeout.as_secs(), describe_probe(probe)),
                logs: docker.log_tail(id, FAILURE_LOG_LINES).await,
                health_log: status.health_log.clone(),
            });
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// A state from which the container will not become ready by itself.
fn terminal_failure(status: &ContainerStatus, probe: &ReadinessProbe) -> Option<String> {
    if let ReadinessProbe::Exit(expected) = probe {
        if status.state == "exited" && status.exit_code != *expected {
            return Some(format!("exited with code {} (expected {expected})", status.exit_code));
        }
        return None;
    }
    if status.oom_killed {
        return Some(format!("was killed for running out of memory (exit code {})", status.exit_code));
    }
    if status.restarting || (status.restart_count > 0 && !status.running) {
        return Some(format!("is restarting (last exit code {})", status.exit_code));
    }
    if !status.running && matches!(status.state.as_str(), "exited" | "dead") {
        return Some(format!("exited with code {}", status.exit_code));
    }
    if status.health.as_deref() == Some("unhealthy") {
        return Some("is unhealthy".to_string());
    }
    None
}

async fn probe_once(
    docker: &DockerClient,
    id: &str,
    name: &str,
    probe: &ReadinessProbe,
    status: &ContainerStatus,
) -> bool {
    // Docker already ran the service's own healthcheck successfully: nothing faster to prove.
    if status.running && status.health.as_deref() == Some("healthy") {
        return true;
    }
    // A remote engine's container addresses are not routable from here: its own healthcheck decides TCP and
    // HTTP readiness (a container without one counts once it runs), and pg_isready in the container decides
    // PostgreSQL's.
    if !docker.is_local() {
        match probe {
            ReadinessProbe::Tcp(_) | ReadinessProbe::Http { .. } => {
                return match status.health.as_deref() {
                    None => status.running,
                    health => health == Some("healthy"),
                };
            }
            ReadinessProbe::Postgres(port) => {
                let (user, database) = postgres_identity(status);
                let cmd = probe::isready_argv(*port, user, database);
                return status.running && docker.exec(id, name, &cmd).await.is_ok_and(|code| code == 0);
            }
            _ => {}
        }
    }
    match probe {
        ReadinessProbe::Started => status.running,
        ReadinessProbe::Healthcheck => status.health.as_deref() == Some("healthy"),
        ReadinessProbe::Exit(code) => status.state == "exited" && status.exit_code == *code,
        ReadinessProbe::Exec(cmd) => status.running && docker.exec(id, name, cmd).await.is_ok_and(|code| code == 0),
        ReadinessProbe::Tcp(port) => {
            for ip in &status.ip_addresses {
                if tcp_ok(ip, *port).await {
                    return true;
                }
            }
            false
        }
        ReadinessProbe::Http { port, path } => {
            for ip in &status.ip_addresses {
                if http_ok(ip, *port, path).await {
                    return true;
                }
            }
            false
        }
        ReadinessProbe::Postgres(port) => {
            let (user, database) = postgres_identity(status);
            for ip in &status.ip_addresses {
                if probe::accepting(ip, *port, user, database, CONNECT_TIMEOUT).await {
                    return true;
                }
            }
            false
        }
    }
}

/// Who the PostgreSQL probe connects as: the container's `POSTGRES_USER` / `POSTGRES_DB`, else the official
/// image's defaults (the superuser `postgres`, its database named after it).
fn postgres_identity(status: &ContainerStatus) -> (&str, &str) {
    let env = |key: &str| {
        let prefix = format!("{key}=");
        status.env.iter().find_map(|e| e.strip_prefix(&prefix)).filter(|v| !v.is_empty())
    };
    let user = env("POSTGRES_USER").unwrap_or("postgres");
    (user, env("POSTGRES_DB").unwrap_or(user))
}

pub fn describe_probe(probe: &ReadinessProbe) -> String {
    match probe {
        ReadinessProbe::Started => "waiting for it to run".into(),
        ReadinessProbe::Healthcheck => "waiting for its healthcheck".into(),
        ReadinessProbe::Exit(code) => format!("waiting for it to exit with code {code}"),
        ReadinessProbe::Exec(cmd) => format!("waiting for `{}` to succeed", cmd.join(" ")),
        ReadinessProbe::Tcp(port) => format!("waiting for TCP port {port}"),
        ReadinessProbe::Http { port, path } => format!("waiting for HTTP 2xx from :{port}{path}"),
        ReadinessProbe::Postgres(port) => format!("waiting for PostgreSQL to accept connections on :{port}"),
    }
}

async fn tcp_ok(ip: &str, port: u16) -> bool {
    crate::net::answers((ip, port), CONNECT_TIMEOUT).await
}

/// A 2xx answer to `GET path`, all within [`CONNECT_TIMEOUT`].
async fn http_ok(ip: &str, port: u16, path: &str) -> bool {
    let timeouts = Timeouts { connect: CONNECT_TIMEOUT, exchange: CONNECT_TIMEOUT };
    let attempt = http::get(ip, port, path, None, timeouts);
    matches!(tokio::time::timeout(CONNECT_TIMEOUT, attempt).await, Ok(Ok(response)) if response.is_success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn status(state: &str, running: bool, exit: i64, health: Option<&str>) -> ContainerStatus {
        ContainerStatus {
            state: state.into(),
            running,
            restarting: false,
            exit_code: exit,
            oom_killed: false,
            health: health.map(str::to_string),
            health_log: Vec::new(),
            ip_addresses: Vec::new(),
            started_at: None,
            restart_count: 0,
            env: Vec::new(),
        }
    }

    #[test]
    fn exited_unhealthy_and_oom_are_terminal() {
        let hc = ReadinessProbe::Healthcheck;
        assert_eq!(terminal_failure(&status("exited", false, 3, None), &hc).unwrap(), "exited with code 3");
        assert_eq!(terminal_failure(&status("running", true, 0, Some("unhealthy")), &hc).unwrap(), "is unhealthy");
        let mut oom = status("exited", false, 137, None);
        oom.oom_killed = true;
        assert!(terminal_failure(&oom, &hc).unwrap().contains("out of memory"));
        assert!(terminal_failure(&status("running", true, 0, Some("starting")), &hc).is_none());
    }

    #[test]
    fn one_shot_jobs_are_ready_when_they_exit_as_expected() {
        let job = ReadinessProbe::Exit(0);
        assert!(terminal_failure(&status("exited", false, 0, None), &job).is_none());
        assert!(terminal_failure(&status("exited", false, 1, None), &job).is_some());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tcp_and_http_probes_talk_to_real_listeners() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let reply =
                    if req.starts_with("GET /ready ") { "HTTP/1.0 200 OK\r\n\r\n" } else { "HTTP/1.0 503 No\r\n\r\n" };
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        assert!(tcp_ok("127.0.0.1", port).await);
        assert!(http_ok("127.0.0.1", port, "/ready").await);
        assert!(!http_ok("127.0.0.1", port, "/other").await);
    }
}
