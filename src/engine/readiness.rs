//! One waiter for every kind of readiness a profile can declare ([`ReadinessProbe`]). It probes directly
//! (exec in the container, TCP or HTTP to the container address) at a short interval instead of waiting for
//! Docker's healthcheck interval, so a ready service is seen within ~100 ms; and it fails fast when the
//! container exits, restarts or turns unhealthy.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::docker::{ContainerStatus, DockerClient};
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
                let cmd: Vec<String> =
                    ["pg_isready", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", user, "-d", database]
                        .map(str::to_string)
                        .to_vec();
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
                if postgres_accepting(ip, *port, user, database).await {
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
    matches!(tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((ip, port))).await, Ok(Ok(_)))
}

async fn http_ok(ip: &str, port: u16, path: &str) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect((ip, port)).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {ip}:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 16];
        let n = stream.read(&mut head).await.ok()?;
        let line = String::from_utf8_lossy(&head[..n]).into_owned();
        Some(line.split_whitespace().nth(1).is_some_and(|code| code.starts_with('2')))
    };
    matches!(tokio::time::timeout(CONNECT_TIMEOUT, attempt).await, Ok(Some(true)))
}

/// `pg_isready`'s verdict, over the wire: send a protocol 3.0 startup message and read the server's first
/// reply. An authentication request, or any error but 57P03 (`cannot_connect_now`: starting up, shutting
/// down, in recovery), means the server accepts connections. Closing at the authentication request logs
/// nothing on the server; with `trust` authentication the session simply ends.
async fn postgres_accepting(ip: &str, port: u16, user: &str, database: &str) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect((ip, port)).await.ok()?;
        stream.write_all(&startup_message(user, database)).await.ok()?;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).await.ok()?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        // Read the whole message: closing with unread bytes would reset the connection, which the server logs.
        let mut body = vec![0u8; len.saturating_sub(4).min(4096)];
        stream.read_exact(&mut body).await.ok()?;
        let _ = stream.shutdown().await;
        match head[0] {
            // AuthenticationRequest, or NegotiateProtocolVersion: the server is past its startup checks.
            b'R' | b'v' => Some(true),
            b'E' => Some(sqlstate(&body) != Some("57P03")),
            _ => Some(false),
        }
    };
    matches!(tokio::time::timeout(CONNECT_TIMEOUT, attempt).await, Ok(Some(true)))
}

fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
    for (key, value) in [("user", user), ("database", database), ("application_name", "ragctl-ready")] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

/// The SQLSTATE (`C` field) of an ErrorResponse body.
fn sqlstate(body: &[u8]) -> Option<&str> {
    let mut rest = body;
    while let Some((&code, tail)) = rest.split_first() {
        if code == 0 {
            break;
        }
        let end = tail.iter().position(|b| *b == 0)?;
        if code == b'C' {
            return std::str::from_utf8(&tail[..end]).ok();
        }
        rest = &tail[end + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A listener that reads one startup message, checks it, and answers with `reply`.
    async fn fake_postgres(reply: Vec<u8>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut len = [0u8; 4];
                s.read_exact(&mut len).await.unwrap();
                let mut body = vec![0u8; u32::from_be_bytes(len) as usize - 4];
                s.read_exact(&mut body).await.unwrap();
                assert_eq!(&body[..4], &196_608u32.to_be_bytes());
                assert!(body.windows(14).any(|w| w == b"user\0app_user\0"), "startup message names the user");
                s.write_all(&reply).await.unwrap();
            }
        });
        port
    }

    fn error_response(sqlstate: &str) -> Vec<u8> {
        let mut body = b"SFATAL\0C".to_vec();
        body.extend_from_slice(sqlstate.as_bytes());
        body.extend_from_slice(b"\0Mthe database system is starting up\0\0");
        let mut msg = vec![b'E'];
        msg.extend(((body.len() + 4) as u32).to_be_bytes());
        msg.extend(body);
        msg
    }

    #[tokio::test(flavor = "current_thread")]
    async fn postgres_probe_decides_like_pg_isready() {
        // AuthenticationSASL request: accepting connections.
        let sasl = [b'R', 0, 0, 0, 23, 0, 0, 0, 10].iter().copied().chain(*b"SCRAM-SHA-256\0\0").collect();
        assert!(postgres_accepting("127.0.0.1", fake_postgres(sasl).await, "app_user", "app").await);
        // Starting up / shutting down: not yet.
        assert!(
            !postgres_accepting("127.0.0.1", fake_postgres(error_response("57P03")).await, "app_user", "app").await
        );
        // Any other error (unknown role, database): the server answers, so it accepts connections.
        assert!(postgres_accepting("127.0.0.1", fake_postgres(error_response("28000")).await, "app_user", "app").await);
        // Nothing listening.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        assert!(!postgres_accepting("127.0.0.1", closed, "app_user", "app").await);
        assert_eq!(sqlstate(&error_response("57P03")[5..]), Some("57P03"));
        assert_eq!(sqlstate(b"\0"), None);
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
