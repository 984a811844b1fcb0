//! Checks of the running services: Redis, Weaviate, nginx and its TLS certificate, the API, reachability between
//! services from inside the Docker network, and the host kernel settings services need.
//!
//! They only look: they connect and send read-only requests (`AUTH` + `PING`, `CONFIG GET`, HTTP `GET`), and run
//! read-only commands in containers (`nginx -t`, `pip check`, DNS/TCP probes). They never change a container, a
//! file or a setting. Redis and HTTP are spoken by hand over a [`TcpStream`]: a check needs one request and the
//! first line of an answer, not a client library.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use futures_util::FutureExt;
use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::docker::ObservedContainer;
use crate::doctor::{CheckDef, DoctorContext, Outcome, Status};
use crate::engine::interpolate::interpolate;
use crate::profile::{ReadinessProbe, Shape};
use crate::stack::Stack;

const QUICK: Duration = Duration::from_secs(3);
/// Below the checks' own timeouts, so a silent peer is reported with its address rather than as a timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// One DNS + TCP probe inside a container (its own tools give up after 2–3 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(4);
/// The oldest Weaviate the Dify client supports (v4 client: gRPC on 50051).
const WEAVIATE_MIN: (u64, u64) = (1, 27);
const TLS_WARN_DAYS: i64 = 14;
/// The monitoring profile's alert threshold for API response time.
const API_SLOW_MS: u128 = 500;

fn redis_enabled(ctx: &DoctorContext) -> bool {
    ctx.service_enabled("redis")
}

fn weaviate_enabled(ctx: &DoctorContext) -> bool {
    ctx.profile_enabled("weaviate") && ctx.service_enabled("weaviate")
}

fn nginx_enabled(ctx: &DoctorContext) -> bool {
    ctx.service_enabled("nginx")
}

/// nginx terminates TLS: it mounts the certificate directory (the app profile's nginx does; a plain-HTTP
/// nginx of a project's own profile does not).
fn nginx_serves_tls(ctx: &DoctorContext) -> bool {
    ctx.stack.as_ref().is_ok_and(|s| {
        s.services.get("nginx").is_some_and(|n| n.volumes.iter().any(|v| v.contains("/etc/nginx/certs")))
    })
}

fn api_behind_nginx(ctx: &DoctorContext) -> bool {
    ctx.service_enabled("api") && ctx.service_enabled("nginx")
}

fn api_enabled(ctx: &DoctorContext) -> bool {
    ctx.service_enabled("api")
}

fn has_services(ctx: &DoctorContext) -> bool {
    ctx.stack.as_ref().is_ok_and(|s| !s.services.is_empty())
}

fn needs_max_map_count(ctx: &DoctorContext) -> bool {
    required_max_map_count(ctx).is_some()
}

pub fn checks() -> Vec<CheckDef> {
    vec![
        CheckDef {
            id: "redis.ping",
            title: "Redis answers PING after AUTH with REDIS_PASSWORD",
            needs: &["docker.reachable"],
            timeout: QUICK,
            applies: redis_enabled,
            run: |ctx| async move { redis_ping(ctx).await }.boxed(),
        },
        CheckDef {
            id: "redis.maxmemory_policy",
            title: "Redis evicts cache entries, not Celery's queues, when maxmemory is reached",
            needs: &["redis.ping"],
            timeout: QUICK,
            applies: redis_enabled,
            run: |ctx| async move { redis_maxmemory_policy(ctx).await }.boxed(),
        },
        CheckDef {
            id: "weaviate.ready",
            title: "Weaviate answers /v1/.well-known/ready",
            needs: &["docker.reachable"],
            timeout: QUICK,
            applies: weaviate_enabled,
            run: |ctx| async move { weaviate_ready(ctx).await }.boxed(),
        },
        CheckDef {
            id: "weaviate.version",
            title: "Weaviate accepts WEAVIATE_API_KEY and is version 1.27 or newer",
            needs: &["weaviate.ready"],
            timeout: QUICK,
            applies: weaviate_enabled,
            run: |ctx| async move { weaviate_version(ctx).await }.boxed(),
        },
        CheckDef {
            id: "weaviate.grpc",
            title: "Weaviate's gRPC port 50051 accepts connections",
            needs: &["docker.reachable"],
            timeout: QUICK,
            applies: weaviate_enabled,
            run: |ctx| async move { weaviate_grpc(ctx).await }.boxed(),
        },
        CheckDef {
            id: "weaviate.subnet",
            title: "Weaviate's container address is in a private range",
            needs: &["docker.reachable"],
            timeout: QUICK,
            applies: weaviate_enabled,
            run: |ctx| async move { weaviate_subnet(ctx).await }.boxed(),
        },
        CheckDef {
            id: "nginx.config",
            title: "nginx accepts its configuration (`nginx -t` in the container)",
            needs: &["docker.reachable"],
            timeout: Duration::from_secs(5),
            applies: nginx_enabled,
            run: |ctx| async move { nginx_config(ctx).await }.boxed(),
        },
        CheckDef {
            id: "nginx.tls_certificate",
            title: "the TLS certificate and key nginx serves are present, readable and not expiring within 14 days",
            needs: &[],
            timeout: QUICK,
            applies: nginx_serves_tls,
            run: |ctx| async move { tls_certificate(ctx, unix_now()) }.boxed(),
        },
        CheckDef {
            id: "api.health",
            title: "GET /health/api (the API's /health through nginx) answers within 500 ms",
            needs: &["docker.reachable"],
            timeout: QUICK,
            applies: api_behind_nginx,
            run: |ctx| async move { api_health(ctx).await }.boxed(),
        },
        CheckDef {
            id: "api.pip_check",
            title: "the API image's Python packages have no conflicts (`pip check`)",
            needs: &["docker.reachable"],
            timeout: Duration::from_secs(15),
            applies: api_enabled,
            run: |ctx| async move { api_pip_check(ctx).await }.boxed(),
        },
        CheckDef {
            id: "network.reachability",
            title: "every dependency resolves and accepts TCP from inside the Docker network",
            needs: &["docker.reachable", "config.stack"],
            timeout: Duration::from_secs(6),
            applies: has_services,
            run: |ctx| async move { network_reachability(ctx).await }.boxed(),
        },
        CheckDef {
            id: "host.vm_max_map_count",
            title: "vm.max_map_count is at least what the enabled services need",
            needs: &[],
            timeout: QUICK,
            applies: needs_max_map_count,
            run: |ctx| async move { vm_max_map_count(ctx) }.boxed(),
        },
    ]
}

// ------------------------------------------------------------------------------------------------------------
// Reaching a service from the host
// ------------------------------------------------------------------------------------------------------------

/// Where the host reaches one port of a service.
#[derive(Debug, Clone)]
struct Endpoint {
    host: String,
    port: u16,
    route: &'static str,
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
async fn running_container<'a>(ctx: &'a DoctorContext, service: &str) -> Result<&'a ObservedContainer, Outcome> {
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
fn published(ports: &[String], container_port: u16) -> Option<(String, u16)> {
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
fn published_host(ctx: &DoctorContext, binding: &str) -> String {
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
fn remote_docker_host(docker_host: &str) -> Option<String> {
    let rest = docker_host.strip_prefix("tcp://").or_else(|| docker_host.strip_prefix("http://"))?;
    let host = rest.split('/').next()?;
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    Some(host.trim_start_matches('[').trim_end_matches(']').to_string()).filter(|h| !h.is_empty())
}

/// The service's port as an operator reaches it: the published port, else the container's address.
async fn endpoint(ctx: &DoctorContext, service: &str, container_port: u16) -> Result<Endpoint, Outcome> {
    let container = running_container(ctx, service).await?;
    if let Some((binding, port)) = published(&container.ports, container_port) {
        return Ok(Endpoint { host: published_host(ctx, &binding), port, route: "published port" });
    }
    container_endpoint(ctx, container, service, container_port).await
}

/// The container's own address on its network (reachable from a Linux host, as the Dify services reach it).
async fn container_endpoint(
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

async fn connect(ep: &Endpoint) -> io::Result<TcpStream> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((ep.host.as_str(), ep.port))).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {CONNECT_TIMEOUT:?}"))),
    }
}

/// The outcome of a connection that failed, with the hint for `service`.
fn unreachable(service: &str, ep: &Endpoint, e: &io::Error) -> Outcome {
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

// ------------------------------------------------------------------------------------------------------------
// Redis
// ------------------------------------------------------------------------------------------------------------

/// One RESP reply.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<String>),
    Array(Option<Vec<Reply>>),
}

/// Parse one reply from the front of `buf`: `Ok(None)` when more bytes are needed, else the reply and its length.
fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
    let line = String::from_utf8_lossy(&buf[1..eol]).into_owned();
    let after = eol + 2;
    let int = |s: &str| s.parse::<i64>().map_err(|_| format!("malformed RESP length `{s}`"));
    match buf.first() {
        Some(b'+') => Ok(Some((Reply::Simple(line), after))),
        Some(b'-') => Ok(Some((Reply::Error(line), after))),
        Some(b':') => Ok(Some((Reply::Integer(int(&line)?), after))),
        Some(b'$') => {
            let len = int(&line)?;
            if len < 0 {
                return Ok(Some((Reply::Bulk(None), after)));
            }
            let end = after + len as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            Ok(Some((Reply::Bulk(Some(String::from_utf8_lossy(&buf[after..end]).into_owned())), end + 2)))
        }
        Some(b'*') => {
            let len = int(&line)?;
            if len < 0 {
                return Ok(Some((Reply::Array(None), after)));
            }
            let mut items = Vec::new();
            let mut pos = after;
            for _ in 0..len {
                match parse_reply(&buf[pos..])? {
                    Some((item, used)) => {
                        items.push(item);
                        pos += used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(Some(items)), pos)))
        }
        Some(other) => Err(format!("not a Redis reply (starts with {:?})", *other as char)),
        None => Ok(None),
    }
}

fn encode_command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

struct RedisConnection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RedisConnection {
    async fn command(&mut self, args: &[&str]) -> io::Result<Reply> {
        tokio::time::timeout(IO_TIMEOUT, async {
            self.stream.write_all(&encode_command(args)).await?;
            loop {
                if let Some((reply, used)) =
                    parse_reply(&self.buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
                {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                let mut chunk = [0u8; 4096];
                let n = self.stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no reply (timed out)")))
    }
}

/// What Redis said to `AUTH <password>`.
#[derive(Debug, PartialEq)]
enum AuthAnswer {
    Accepted,
    /// `-WRONGPASS` (Redis 6+) or `-ERR invalid password` (before 6).
    WrongPassword(String),
    /// The server has no requirepass: it takes any client.
    NoPasswordConfigured,
    Other(String),
}

fn classify_auth(reply: &Reply) -> AuthAnswer {
    match reply {
        Reply::Simple(s) if s == "OK" => AuthAnswer::Accepted,
        Reply::Error(e) if e.starts_with("WRONGPASS") || e.starts_with("ERR invalid password") => {
            AuthAnswer::WrongPassword(e.clone())
        }
        Reply::Error(e) if e.contains("without any password configured") || e.contains("no password is set") => {
            AuthAnswer::NoPasswordConfigured
        }
        other => AuthAnswer::Other(format!("{other:?}")),
    }
}

/// A connection that passed AUTH (or needed none), and what that took.
struct RedisSession {
    conn: RedisConnection,
    endpoint: Endpoint,
    /// Set when the server accepts clients without a password although REDIS_PASSWORD is set.
    unprotected: bool,
    authenticated: bool,
}

/// Connect and authenticate with REDIS_PASSWORD; every failure is an outcome with its fix.
async fn redis_login(ctx: &DoctorContext) -> Result<RedisSession, Outcome> {
    let ep = endpoint(ctx, "redis", 6379).await?;
    let stream = connect(&ep).await.map_err(|e| unreachable("redis", &ep, &e))?;
    let mut conn = RedisConnection { stream, buf: Vec::new() };
    let io_failed = |e: io::Error| {
        Outcome::fail(format!("redis at {ep}: {e}"), "`ragctl logs redis` shows what the server is doing")
    };
    let password = ctx.value("REDIS_PASSWORD");
    let mut unprotected = false;
    if let Some(pw) = &password {
        match classify_auth(&conn.command(&["AUTH", pw]).await.map_err(io_failed)?) {
            AuthAnswer::Accepted => {}
            AuthAnswer::NoPasswordConfigured => unprotected = true,
            AuthAnswer::WrongPassword(e) => {
                return Err(Outcome::fail(
                    format!("redis at {ep} rejected REDIS_PASSWORD: -{e}"),
                    "REDIS_PASSWORD in .env differs from the running server's requirepass: `ragctl up` recreates \
                     redis with the current value (CELERY_BROKER_URL must carry the same password: `ragctl secret check`)",
                ));
            }
            AuthAnswer::Other(e) => {
                return Err(Outcome::fail(
                    format!("redis at {ep} answered AUTH with {e}"),
                    "`ragctl logs redis` shows what the server is doing",
                ));
            }
        }
    }
    match conn.command(&["PING"]).await.map_err(io_failed)? {
        Reply::Simple(s) if s == "PONG" => {}
        Reply::Error(e) if e.starts_with("NOAUTH") => {
            return Err(Outcome::fail(
                format!("redis at {ep} requires a password (-{e}) but REDIS_PASSWORD is empty"),
                "set REDIS_PASSWORD in .env to the server's requirepass (`ragctl secret gen` creates one; \
                 `ragctl up` then recreates redis with it)",
            ));
        }
        other => {
            return Err(Outcome::fail(
                format!("redis at {ep} answered PING with {other:?}"),
                "`ragctl logs redis` shows what the server is doing",
            ));
        }
    }
    Ok(RedisSession { conn, endpoint: ep, unprotected, authenticated: password.is_some() && !unprotected })
}

async fn redis_ping(ctx: &DoctorContext) -> Outcome {
    let session = match redis_login(ctx).await {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let ep = &session.endpoint;
    if session.unprotected {
        return Outcome::warn(
            format!("PONG from redis at {ep}, but the server has no password: any container on its network can use it"),
            "REDIS_PASSWORD is set in .env but the running server has no requirepass: `ragctl up` recreates redis \
             with --requirepass from REDIS_PASSWORD",
        );
    }
    if session.authenticated {
        Outcome::pass(format!("PONG from redis at {ep}, authenticated with REDIS_PASSWORD"))
    } else {
        Outcome::warn(
            format!("PONG from redis at {ep} without a password"),
            "set REDIS_PASSWORD in .env (`ragctl secret gen`), then `ragctl up` recreates redis with it",
        )
    }
}

/// `CONFIG GET name` → the value, or why not.
async fn config_get(conn: &mut RedisConnection, name: &str) -> Result<String, String> {
    match conn.command(&["CONFIG", "GET", name]).await.map_err(|e| e.to_string())? {
        Reply::Array(Some(items)) => match items.as_slice() {
            [_, Reply::Bulk(Some(value))] => Ok(value.clone()),
            _ => Err(format!("CONFIG GET {name} returned {items:?}")),
        },
        Reply::Error(e) => Err(e),
        other => Err(format!("CONFIG GET {name} returned {other:?}")),
    }
}

/// The eviction rule. Redis is both the API's cache and Celery's broker here: with a maxmemory limit,
/// `noeviction` makes every write fail once full (cache writes and task publishing alike), and `allkeys-*`
/// may evict Celery's queues (keys without a TTL). `volatile-*` evicts only keys with a TTL — cache entries.
/// Without a limit no policy applies.
fn assess_eviction(maxmemory: u64, policy: &str, celery_broker: bool) -> Outcome {
    let fix = "add `--maxmemory-policy volatile-lru` to redis's command (in a project copy of profiles/base.yaml), \
               then `ragctl up`; `redis-cli CONFIG SET maxmemory-policy volatile-lru` applies it until the next restart";
    if maxmemory == 0 {
        return Outcome::pass(format!(
            "no maxmemory limit: policy {policy} never applies (Redis grows up to the container's memory limit)"
        ));
    }
    let limit = human_bytes(maxmemory);
    if policy == "noeviction" {
        return Outcome::warn(
            format!(
                "maxmemory {limit} with policy noeviction: once full, every write fails with OOM instead of \
                 evicting cache entries"
            ),
            fix,
        );
    }
    if celery_broker && policy.starts_with("allkeys-") {
        return Outcome::warn(
            format!(
                "maxmemory {limit} with policy {policy}: Redis is also Celery's broker, and allkeys-* may evict its \
                 queues (keys without a TTL), losing tasks"
            ),
            fix,
        );
    }
    Outcome::pass(format!("maxmemory {limit}, policy {policy}: full memory evicts keys instead of failing writes"))
}

fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            return format!("{:.1} {unit}", n as f64 / size as f64);
        }
    }
    format!("{n} B")
}

async fn redis_maxmemory_policy(ctx: &DoctorContext) -> Outcome {
    let mut session = match redis_login(ctx).await {
        Ok(s) => s,
        Err(outcome) => return outcome,
    };
    let policy = config_get(&mut session.conn, "maxmemory-policy").await;
    let maxmemory = config_get(&mut session.conn, "maxmemory").await;
    match (policy, maxmemory) {
        (Ok(policy), Ok(max)) => match max.parse::<u64>() {
            Ok(max) => assess_eviction(max, &policy, ctx.service_enabled("worker")),
            Err(_) => Outcome::fail(format!("maxmemory is `{max}`, not a number of bytes"), "`ragctl logs redis`"),
        },
        (Err(e), _) | (_, Err(e)) if e.contains("unknown command") => {
            Outcome::skip(format!("CONFIG is disabled on this server ({e})"))
        }
        (Err(e), _) | (_, Err(e)) => Outcome::fail(
            format!("redis at {}: {e}", session.endpoint),
            "`ragctl logs redis` shows what the server is doing",
        ),
    }
}

// ------------------------------------------------------------------------------------------------------------
// HTTP/1.0 over TCP (weaviate, nginx)
// ------------------------------------------------------------------------------------------------------------

struct HttpResponse {
    status: u16,
    body: String,
}

/// GET `path` with HTTP/1.0 (so the answer is never chunked) and read it to the end.
async fn http_get(ep: &Endpoint, path: &str, bearer: Option<&str>) -> io::Result<HttpResponse> {
    let mut stream = connect(ep).await?;
    let auth = bearer.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {}:{}\r\n{auth}Connection: close\r\n\r\n", ep.host, ep.port);
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse_http_response(&raw).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP response"))
    };
    tokio::time::timeout(IO_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no HTTP response (timed out)")))
}

fn parse_http_response(raw: &[u8]) -> Option<HttpResponse> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next()?;
    if !status_line.starts_with("HTTP/") {
        return None;
    }
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    Some(HttpResponse { status, body: body.to_string() })
}

// ------------------------------------------------------------------------------------------------------------
// Weaviate
// ------------------------------------------------------------------------------------------------------------

async fn weaviate_ready(ctx: &DoctorContext) -> Outcome {
    let ep = match endpoint(ctx, "weaviate", 8080).await {
        Ok(ep) => ep,
        Err(outcome) => return outcome,
    };
    match http_get(&ep, "/v1/.well-known/ready", None).await {
        Ok(r) if (200..300).contains(&r.status) => Outcome::pass(format!("ready (HTTP {}) at {ep}", r.status)),
        Ok(r) => Outcome::fail(
            format!("/v1/.well-known/ready at {ep} answered HTTP {}", r.status),
            "Weaviate is starting or failing: `ragctl logs weaviate`",
        ),
        Err(e) => unreachable("weaviate", &ep, &e),
    }
}

/// `1.27.0`, `1.27.0-rc.1` → (1, 27).
fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim().trim_start_matches('v').split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

async fn weaviate_version(ctx: &DoctorContext) -> Outcome {
    let ep = match endpoint(ctx, "weaviate", 8080).await {
        Ok(ep) => ep,
        Err(outcome) => return outcome,
    };
    let key = ctx.value("WEAVIATE_API_KEY");
    let response = match http_get(&ep, "/v1/meta", key.as_deref()).await {
        Ok(r) => r,
        Err(e) => return unreachable("weaviate", &ep, &e),
    };
    if response.status == 401 || response.status == 403 {
        let sent = if key.is_some() { "WEAVIATE_API_KEY" } else { "no API key (WEAVIATE_API_KEY is empty)" };
        return Outcome::fail(
            format!("Weaviate at {ep} rejected {sent}: HTTP {} on /v1/meta", response.status),
            "WEAVIATE_API_KEY in .env is not among the keys the running Weaviate allows \
             (WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS, applied when the container was created): \
             `ragctl secret check` shows the mismatch, `ragctl up` recreates weaviate with the current keys",
        );
    }
    if !(200..300).contains(&response.status) {
        return Outcome::fail(
            format!("/v1/meta at {ep} answered HTTP {}", response.status),
            "`ragctl logs weaviate` shows why",
        );
    }
    let version = serde_json::from_str::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_string));
    let Some(version) = version else {
        return Outcome::fail(
            format!("/v1/meta at {ep} names no version: {}", response.body.trim()),
            "is this Weaviate? check the image of `weaviate` (`ragctl ps`)",
        );
    };
    match major_minor(&version) {
        Some(v) if v >= WEAVIATE_MIN => Outcome::pass(format!("Weaviate {version} at {ep}, API key accepted")),
        Some(_) => Outcome::fail(
            format!(
                "Weaviate {version}: the Dify client needs {}.{} or newer (gRPC on 50051)",
                WEAVIATE_MIN.0, WEAVIATE_MIN.1
            ),
            "use semitechnologies/weaviate:1.27.0 or newer (`images: {weaviate: ...}` in ragctl.yaml or \
             RAGCTL_IMAGE_WEAVIATE), then `ragctl up`",
        ),
        None => Outcome::fail(
            format!("Weaviate reports version `{version}`, which is not MAJOR.MINOR"),
            "check the image of `weaviate` (`ragctl ps`)",
        ),
    }
}

async fn weaviate_grpc(ctx: &DoctorContext) -> Outcome {
    let container = match running_container(ctx, "weaviate").await {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    // The container address first: a published port answers through docker-proxy even when nothing listens
    // behind it. The published port is the fallback for hosts that cannot route to containers (Docker Desktop).
    let direct = container_endpoint(ctx, container, "weaviate", 50051).await;
    let hint = "Weaviate 1.27+ serves gRPC on 50051: check the image version (`ragctl doctor --check weaviate.version`) \
                and `ragctl logs weaviate`";
    if let Ok(ep) = &direct {
        match connect(ep).await {
            Ok(_) => return Outcome::pass(format!("gRPC port accepts connections at {ep}")),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Outcome::fail(format!("nothing listens on gRPC port 50051 at {ep}: connection refused"), hint);
            }
            Err(_) => {}
        }
    }
    match published(&container.ports, 50051) {
        Some((binding, port)) => {
            let ep = Endpoint { host: published_host(ctx, &binding), port, route: "published port" };
            match connect(&ep).await {
                Ok(_) => Outcome::pass(format!("gRPC port accepts connections at {ep}")),
                Err(e) => Outcome::fail(format!("cannot connect to Weaviate gRPC at {ep}: {e}"), hint),
            }
        }
        None => match direct {
            Ok(ep) => Outcome::fail(format!("cannot connect to Weaviate gRPC at {ep}"), hint),
            Err(outcome) => outcome,
        },
    }
}

/// RFC 1918 for IPv4; unique-local (fc00::/7) for IPv6.
fn is_private(ip: &std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

async fn weaviate_subnet(ctx: &DoctorContext) -> Outcome {
    let container = match running_container(ctx, "weaviate").await {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    let docker = match ctx.docker().await {
        Ok(d) => d,
        Err(e) => return Outcome::fail(e, "see `ragctl doctor --check docker.reachable`"),
    };
    let status = match docker.inspect(&container.id, &container.name).await {
        Ok(s) => s,
        Err(e) => return Outcome::fail(e.to_string(), "`ragctl ps` shows the state of `weaviate`"),
    };
    let public: Vec<&String> = status
        .ip_addresses
        .iter()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok_and(|ip| !is_private(&ip)))
        .collect();
    if status.ip_addresses.is_empty() {
        return Outcome::fail(format!("`{}` has no address on any network", container.name), "run `ragctl up`");
    }
    if public.is_empty() {
        return Outcome::pass(format!("private address {}", status.ip_addresses.join(", ")));
    }
    Outcome::warn(
        format!(
            "`{}` has address {} outside the private ranges (10/8, 172.16/12, 192.168/16): Weaviate's cluster \
             layer looks for a private address and may fail to start or advertise the wrong one",
            container.name,
            public.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ),
        "give Docker private address pools (`default-address-pools` in /etc/docker/daemon.json), then `ragctl down` \
         and `ragctl up` to recreate the network; or set CLUSTER_ADVERTISE_ADDR for weaviate",
    )
}

// ------------------------------------------------------------------------------------------------------------
// nginx and TLS
// ------------------------------------------------------------------------------------------------------------

async fn nginx_config(ctx: &DoctorContext) -> Outcome {
    let hint = "fix the file and line `nginx -t` names: the templates in templates/nginx/ (then `ragctl render` and \
                `ragctl restart nginx`), or the certificate files in NGINX_CERT_DIR";
    let docker = match ctx.docker().await {
        Ok(d) => d,
        Err(e) => return Outcome::fail(e, "see `ragctl doctor --check docker.reachable`"),
    };
    let container = match running_container(ctx, "nginx").await {
        Ok(c) => c,
        Err(outcome) => {
            // A crash-looping nginx cannot be exec'd into; its log says why it exits.
            if let Some(c) = ctx.container_of("nginx").await {
                let emerg: Vec<String> =
                    docker.log_tail(&c.id, 30).await.into_iter().filter(|l| l.contains("[emerg]")).collect();
                if !emerg.is_empty() {
                    return Outcome::fail(format!("`{}` is {}:\n{}", c.name, c.state, emerg.join("\n")), hint);
                }
            }
            return outcome;
        }
    };
    let cmd = ["nginx".to_string(), "-t".to_string()];
    match docker.exec_output(&container.id, &container.name, &cmd).await {
        Ok((0, _)) => Outcome::pass(format!("`nginx -t` in `{}`: configuration is valid", container.name)),
        Ok((code, output)) => {
            Outcome::fail(format!("`nginx -t` in `{}` exited {code}:\n{}", container.name, output.trim()), hint)
        }
        Err(e) => Outcome::fail(e.to_string(), "`ragctl ps` shows the state of `nginx`"),
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// NGINX_CERT_DIR (default `./certs`), relative to the project directory.
fn cert_dir(ctx: &DoctorContext) -> PathBuf {
    let dir = ctx.value("NGINX_CERT_DIR").unwrap_or_else(|| "./certs".into());
    // `./certs` under project dir `.` reads better as `./certs` than `././certs`.
    ctx.settings.project_dir.join(dir).components().collect()
}

fn tls_certificate(ctx: &DoctorContext, now: i64) -> Outcome {
    let dir = cert_dir(ctx);
    let cert_path = dir.join(&ctx.settings.tls.certificate);
    let key_path = dir.join(&ctx.settings.tls.key);
    let mut outcomes = [assess_certificate(&cert_path, now), assess_key(&key_path)];
    // Report the worst first; passing lines follow as context.
    outcomes.sort_by_key(|o| match o.status {
        Status::Fail => 0,
        Status::Warn => 1,
        _ => 2,
    });
    let status = outcomes[0].status;
    let detail = outcomes.iter().map(|o| o.detail.as_str()).collect::<Vec<_>>().join("\n");
    let hints: Vec<&str> = outcomes.iter().filter_map(|o| o.hint.as_deref()).collect();
    match status {
        Status::Pass | Status::Skip => Outcome::pass(detail),
        Status::Warn => Outcome::warn(detail, hints.join("; ")),
        Status::Fail => Outcome::fail(detail, hints.join("; ")),
    }
}

const CERT_LOCATION_HINT: &str = "NGINX_CERT_DIR in .env names the directory, `tls: {certificate, key}` in \
                                  ragctl.yaml the file names";

fn read_file_outcome(path: &Path, what: &str) -> Result<Vec<u8>, Outcome> {
    std::fs::read(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Outcome::fail(
            format!("{what} `{}` does not exist", path.display()),
            format!(
                "put the {what} there ({CERT_LOCATION_HINT}); for a self-signed test pair: `openssl req -x509 \
                 -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost -keyout <key> -out <certificate>`"
            ),
        ),
        io::ErrorKind::PermissionDenied => Outcome::fail(
            format!("{what} `{}` is not readable by this user", path.display()),
            format!("make it readable (`chmod 644` for the certificate, owner-only for the key: `chmod 600` and run ragctl as its owner) — {CERT_LOCATION_HINT}"),
        ),
        _ => Outcome::fail(format!("cannot read {what} `{}`: {e}", path.display()), CERT_LOCATION_HINT.to_string()),
    })
}

fn assess_certificate(path: &Path, now: i64) -> Outcome {
    let bytes = match read_file_outcome(path, "certificate") {
        Ok(b) => b,
        Err(outcome) => return outcome,
    };
    let not_after = match certificate_not_after(&bytes) {
        Ok(t) => t,
        Err(e) => {
            return Outcome::fail(
                format!("certificate `{}` does not parse: {e}", path.display()),
                format!(
                    "it must be a PEM certificate chain (-----BEGIN CERTIFICATE-----), server certificate first; {CERT_LOCATION_HINT}"
                ),
            );
        }
    };
    let when = format_utc(not_after);
    let days = (not_after - now).div_euclid(86_400);
    let renew = format!("renew the certificate in `{}`, then `ragctl restart nginx`", path.display());
    if not_after <= now {
        Outcome::fail(format!("certificate `{}` expired on {when}", path.display()), renew)
    } else if days < TLS_WARN_DAYS {
        let left = not_after - now;
        let within = if left < 2 * 86_400 { format!("{} hours", left / 3600) } else { format!("{days} days") };
        Outcome::warn(format!("certificate `{}` expires in {within}, on {when}", path.display()), renew)
    } else {
        Outcome::pass(format!("certificate `{}` valid until {when} ({days} days)", path.display()))
    }
}

fn assess_key(path: &Path) -> Outcome {
    let bytes = match read_file_outcome(path, "private key") {
        Ok(b) => b,
        Err(outcome) => return outcome,
    };
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("-----BEGIN") && text.contains("PRIVATE KEY-----") {
        Outcome::pass(format!("private key `{}` present and readable", path.display()))
    } else {
        Outcome::fail(
            format!("`{}` holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)", path.display()),
            format!("put the certificate's private key there in PEM form; {CERT_LOCATION_HINT}"),
        )
    }
}

/// The notAfter of the first certificate in a PEM file, as Unix seconds.
///
/// A dozen lines of DER walking rather than an X.509 crate: doctor needs this one field, and a full parser
/// would add several crates and compile time to every build.
fn certificate_not_after(pem: &[u8]) -> Result<i64, String> {
    let text = String::from_utf8_lossy(pem);
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = text.find(begin).ok_or("no -----BEGIN CERTIFICATE----- block")? + begin.len();
    let end = text[start..].find("-----END CERTIFICATE-----").ok_or("no -----END CERTIFICATE----- line")? + start;
    let b64: String = text[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("bad base64: {e}"))?;

    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
    //                            issuer, validity SEQUENCE { notBefore, notAfter }, ... }, ... }
    let (tag, cert, _) = der_element(&der)?;
    expect_tag(tag, 0x30, "Certificate")?;
    let (tag, tbs, _) = der_element(cert)?;
    expect_tag(tag, 0x30, "TBSCertificate")?;
    let mut rest = tbs;
    let (tag, _, after) = der_element(rest)?;
    if tag == 0xa0 {
        rest = after; // explicit version
    }
    for field in ["serialNumber", "signature", "issuer"] {
        let (_, _, after) = der_element(rest).map_err(|e| format!("{field}: {e}"))?;
        rest = after;
    }
    let (tag, validity, _) = der_element(rest)?;
    expect_tag(tag, 0x30, "Validity")?;
    let (_, _, after_not_before) = der_element(validity)?;
    let (tag, not_after, _) = der_element(after_not_before)?;
    let text = std::str::from_utf8(not_after).map_err(|_| "notAfter is not ASCII")?;
    match tag {
        0x17 => parse_asn1_time(text, false),
        0x18 => parse_asn1_time(text, true),
        other => Err(format!("notAfter has tag {other:#x}, not UTCTime or GeneralizedTime")),
    }
}

fn expect_tag(tag: u8, want: u8, what: &str) -> Result<(), String> {
    if tag == want { Ok(()) } else { Err(format!("{what}: expected tag {want:#x}, found {tag:#x}")) }
}

/// One DER element: (tag, contents, the bytes after it).
fn der_element(buf: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let (&tag, rest) = buf.split_first().ok_or("truncated DER")?;
    let (&first, rest) = rest.split_first().ok_or("truncated DER length")?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return Err("unsupported DER length".into());
        }
        (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize), &rest[n..])
    };
    if rest.len() < len {
        return Err("truncated DER contents".into());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// `YYMMDDHHMMSSZ` (UTCTime: 50–99 → 19xx) or `YYYYMMDDHHMMSSZ` (GeneralizedTime) → Unix seconds.
fn parse_asn1_time(text: &str, generalized: bool) -> Result<i64, String> {
    let digits = text.strip_suffix('Z').ok_or_else(|| format!("time `{text}` is not UTC"))?;
    let year_len = if generalized { 4 } else { 2 };
    if digits.len() != year_len + 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("time `{text}` is malformed"));
    }
    let num = |from: usize, len: usize| digits[from..from + len].parse::<i64>().unwrap_or(0);
    let mut year = num(0, year_len);
    if !generalized {
        year += if year >= 50 { 1900 } else { 2000 };
    }
    let at = year_len;
    let (month, day, hour, minute, second) =
        (num(at, 2), num(at + 2, 2), num(at + 4, 2), num(at + 6, 2), num(at + 8, 2));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(format!("time `{text}` is malformed"));
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn format_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil_from_days, the inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

// ------------------------------------------------------------------------------------------------------------
// The API
// ------------------------------------------------------------------------------------------------------------

async fn api_health(ctx: &DoctorContext) -> Outcome {
    let ep = match endpoint(ctx, "nginx", 80).await {
        Ok(ep) => ep,
        Err(outcome) => return outcome,
    };
    let started = Instant::now();
    let response = http_get(&ep, "/health/api", None).await;
    let ms = started.elapsed().as_millis();
    match response {
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Outcome::fail(
            format!("GET /health/api through nginx at {ep}: {e}"),
            "nginx took the request but gave no answer: usually it is waiting for the API (`ragctl ps`, \
             `ragctl logs api`)",
        ),
        Err(e) => Outcome::fail(
            format!("GET /health/api through nginx at {ep}: {e}"),
            "`ragctl logs nginx`; EXPOSE_NGINX_PORT in .env is the host port nginx listens on",
        ),
        Ok(r) if !(200..300).contains(&r.status) => Outcome::fail(
            format!("GET /health/api through nginx at {ep} answered HTTP {} in {ms} ms", r.status),
            "502/504 mean nginx cannot reach the API: `ragctl logs api` and `ragctl logs nginx`",
        ),
        Ok(r) if ms > API_SLOW_MS => Outcome::warn(
            format!("GET /health/api through nginx at {ep}: HTTP {} in {ms} ms (over {API_SLOW_MS} ms)", r.status),
            "find what slows it: `ragctl logs api`, `docker stats` for CPU or memory pressure",
        ),
        Ok(r) => Outcome::pass(format!("GET /health/api through nginx at {ep}: HTTP {} in {ms} ms", r.status)),
    }
}

/// `pip check` where the image has it: `uv pip check` in a uv-managed virtualenv (current Dify images), else pip.
const PIP_CHECK_SCRIPT: &str = r#"
if [ -n "$VIRTUAL_ENV" ] && command -v uv >/dev/null 2>&1; then exec uv pip check; fi
if command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then exec python3 -m pip check; fi
if command -v pip >/dev/null 2>&1; then exec pip check; fi
echo "neither uv nor pip in this image"
exit 127
"#;

async fn api_pip_check(ctx: &DoctorContext) -> Outcome {
    let Some(container) = ctx.container_of("api").await.filter(|c| c.state == "running") else {
        return Outcome::skip("no api container runs");
    };
    let docker = match ctx.docker().await {
        Ok(d) => d,
        Err(e) => return Outcome::fail(e, "see `ragctl doctor --check docker.reachable`"),
    };
    let cmd = ["sh".to_string(), "-c".to_string(), PIP_CHECK_SCRIPT.to_string()];
    match docker.exec_output(&container.id, &container.name, &cmd).await {
        Ok((0, output)) => Outcome::pass(format!("`pip check` in `{}`: {}", container.name, output.trim())),
        Ok((126 | 127, output)) => {
            Outcome::skip(format!("cannot run pip check in `{}`: {}", container.name, output.trim()))
        }
        Ok((_, output)) => Outcome::fail(
            format!("`pip check` in `{}` found conflicts:\n{}", container.name, output.trim()),
            "the API image has conflicting packages: use the image version the release names (`images: {api: ...}` in \
             ragctl.yaml), or rebuild your custom image with consistent pins",
        ),
        Err(e) => Outcome::fail(e.to_string(), "`ragctl ps` shows the state of `api`"),
    }
}

// ------------------------------------------------------------------------------------------------------------
// Reachability from inside the Docker network
// ------------------------------------------------------------------------------------------------------------

/// Ports of the usual data services, for services whose readiness probe names none.
const WELL_KNOWN_PORTS: [(&str, u16); 6] = [
    ("db_postgres", 5432),
    ("pgvector", 5432),
    ("redis", 6379),
    ("weaviate", 8080),
    ("qdrant", 6333),
    ("milvus-standalone", 19530),
];

/// The port other services reach `service` on.
fn service_port(stack: &Stack, service: &str) -> Option<u16> {
    let svc = stack.services.get(service)?;
    match &svc.ready {
        ReadinessProbe::Tcp(port) => Some(*port),
        ReadinessProbe::Http { port, .. } | ReadinessProbe::Postgres(port) => Some(*port),
        _ => WELL_KNOWN_PORTS
            .iter()
            .find(|(name, _)| *name == service)
            .map(|(_, p)| *p)
            .or_else(|| svc.ports.first().map(|p| p.target)),
    }
}

/// One thing to probe: from a container, a host name and port as that service uses it.
#[derive(Debug, Clone, PartialEq)]
struct Route {
    from: String,
    host: String,
    port: Option<u16>,
    /// The environment key naming `host`, when the route comes from one (`DB_HOST`).
    via: Option<String>,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{} → {}:{p}", self.from, self.host),
            None => write!(f, "{} → {}", self.from, self.host),
        }
    }
}

/// `http://weaviate:8080/x` → (`weaviate`, Some(8080)); `redis://:pw@redis:6379/1` → (`redis`, Some(6379));
/// `db_postgres` → (`db_postgres`, None).
fn host_and_port(value: &str) -> (String, Option<u16>) {
    let rest = value.split_once("://").map(|(_, r)| r).unwrap_or(value);
    let rest = rest.split(['/', '?']).next().unwrap_or(rest);
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    match rest.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().ok()),
        None => (rest.to_string(), None),
    }
}

/// A name another container resolves through Docker's DNS (not an outside address).
fn is_service_like_name(host: &str) -> bool {
    !host.is_empty() && !host.contains('.') && host != "localhost" && host.parse::<std::net::IpAddr>().is_err()
}

/// The routes `from` uses: its depends_on targets, and the hosts its environment names (`DB_HOST`,
/// `WEAVIATE_ENDPOINT`, `CELERY_BROKER_URL`), so a `DB_HOST=db` typo is probed as the service will resolve it.
fn routes_of(stack: &Stack, from: &str, value: &dyn Fn(&str) -> Option<String>) -> Vec<Route> {
    let Some(svc) = stack.services.get(from) else { return Vec::new() };
    let mut routes: Vec<Route> = Vec::new();
    let mut add = |route: Route| {
        if route.host != from && !routes.iter().any(|r| r.host == route.host && r.port == route.port) {
            routes.push(route);
        }
    };
    for (key, raw) in &svc.environment {
        let is_reference = key.ends_with("_HOST") || key.ends_with("_ENDPOINT") || key.ends_with("_URL");
        if !is_reference || key == "DOCKER_HOST" {
            continue;
        }
        let Ok(resolved) = interpolate(raw, value) else { continue };
        let (host, mut port) = host_and_port(&resolved);
        if !is_service_like_name(&host) {
            continue;
        }
        if port.is_none() && key.ends_with("_HOST") {
            let port_key = format!("{}_PORT", key.trim_end_matches("_HOST"));
            port = svc
                .environment
                .get(&port_key)
                .and_then(|raw| interpolate(raw, value).ok())
                .and_then(|p| p.parse().ok());
        }
        let port = port.or_else(|| service_port(stack, &host));
        add(Route { from: from.to_string(), host, port, via: Some(key.clone()) });
    }
    for dep in svc.depends_on.keys() {
        add(Route { from: from.to_string(), host: dep.clone(), port: service_port(stack, dep), via: None });
    }
    routes
}

/// POSIX sh: resolve `$1`, then connect to port `$2` (`-` = resolve only) with whatever the image has. Exit 0
/// connected, 10 name not resolved, 11 connection refused, 12 other TCP failure, 13 no tool to probe with,
/// 124 (from `timeout`) no answer at all.
/// `$3` is the Python probe, passed as an argument so it needs no quoting here.
const PROBE_SCRIPT: &str = r#"
h="$1"; p="$2"
# A name lookup can hang for the resolver's full retry cycle on a container cut off from its network.
t=""; if command -v timeout >/dev/null 2>&1; then t="timeout 3"; fi
if command -v python3 >/dev/null 2>&1; then exec $t python3 -c "$3" "$h" "$p"; fi
classify() {
  case "$1" in
    *refused*) echo "connection refused"; exit 11;;
    *"bad address"*|*resolve*|*"not known"*|*getaddrinfo*|*"No address"*|*"does not resolve"*) echo "$1"; exit 10;;
    *"timed out"*|*unreachable*|*"No route"*) echo "$1"; exit 12;;
  esac
}
if command -v getent >/dev/null 2>&1; then
  $t getent hosts "$h" >/dev/null 2>&1 || { echo "getent hosts found no address"; exit 10; }
  if [ "$p" = - ]; then echo resolved; exit 0; fi
fi
if [ "$p" = - ]; then echo "no tool to resolve names (python3 or getent) in this image"; exit 13; fi
if command -v nc >/dev/null 2>&1; then
  out=$($t nc -z -v -w 2 "$h" "$p" 2>&1) && { echo connected; exit 0; }
  classify "$out"; echo "${out:-timed out}"; exit 12
fi
if command -v bash >/dev/null 2>&1; then
  out=$($t bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$h" "$p" 2>&1) && { echo connected; exit 0; }
  classify "$out"; echo "${out:-timed out}"; exit 12
fi
if command -v wget >/dev/null 2>&1; then
  out=$(wget -T 2 -t 1 -O /dev/null "http://$h:$p/" 2>&1) && { echo connected; exit 0; }
  classify "$out"; echo connected; exit 0
fi
echo "no probe tool (python3, nc, bash or wget) in this image"; exit 13
"#;

const PYTHON_PROBE: &str = r#"
import socket, sys
h, p = sys.argv[1], sys.argv[2]
try:
    socket.getaddrinfo(h, None)
except socket.gaierror as e:
    print(e.strerror); sys.exit(10)
if p == "-":
    print("resolved"); sys.exit(0)
try:
    socket.create_connection((h, int(p)), 2).close()
except ConnectionRefusedError:
    print("connection refused"); sys.exit(11)
except socket.timeout:
    print("timed out after 2s"); sys.exit(12)
except OSError as e:
    print(e.strerror or str(e)); sys.exit(12)
print("connected")
"#;

#[derive(Debug, Clone, PartialEq)]
enum ProbeResult {
    Connected,
    Unresolved(String),
    Refused(String),
    TcpFailed(String),
    /// The container's image has nothing to probe with.
    NoTool(String),
}

fn classify_probe(code: i64, output: &str) -> ProbeResult {
    let msg = output.trim().lines().last().unwrap_or_default().to_string();
    match code {
        0 => ProbeResult::Connected,
        10 => ProbeResult::Unresolved(msg),
        11 => ProbeResult::Refused(msg),
        13 | 126 | 127 => ProbeResult::NoTool(msg),
        124 => ProbeResult::TcpFailed("no answer within 3s (name lookup or connection)".into()),
        _ => ProbeResult::TcpFailed(msg),
    }
}

async fn network_reachability(ctx: &DoctorContext) -> Outcome {
    let Ok(stack) = &ctx.stack else { return Outcome::skip("needs the stack") };
    let docker = match ctx.docker().await {
        Ok(d) => d,
        Err(e) => return Outcome::fail(e, "see `ragctl doctor --check docker.reachable`"),
    };
    let containers = match ctx.containers().await {
        Ok(c) => c,
        Err(e) => return Outcome::fail(format!("cannot list the project's containers: {e}"), "check `docker ps`"),
    };
    let running = |service: &str| containers.iter().find(|c| c.service == service && c.state == "running");
    let value = |k: &str| ctx.value(k);

    let mut routes: Vec<Route> =
        stack.services.keys().filter(|s| running(s).is_some()).flat_map(|s| routes_of(stack, s, &value)).collect();
    let declared = !routes.is_empty();
    if !declared {
        // Nothing depends on anything (the middleware shape): every running service probes every other one,
        // so DNS on the project network is still checked from inside it.
        for from in stack.services.keys().filter(|s| running(s).is_some()) {
            for to in stack.services.keys().filter(|to| *to != from) {
                routes.push(Route { from: from.clone(), host: to.clone(), port: service_port(stack, to), via: None });
            }
        }
    }
    if routes.is_empty() {
        return Outcome::fail(
            format!("no container of project `{}` runs to probe from", ctx.settings.project_name),
            "run `ragctl up`",
        );
    }

    let probes = routes.iter().map(|route| async move {
        let Some(container) = running(&route.from) else {
            return ProbeResult::NoTool("no running container".into());
        };
        let port = route.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        let cmd: Vec<String> = ["sh", "-c", PROBE_SCRIPT, "probe", &route.host, &port, PYTHON_PROBE]
            .iter()
            .map(|s| s.to_string())
            .collect();
        match tokio::time::timeout(PROBE_TIMEOUT, docker.exec_output(&container.id, &container.name, &cmd)).await {
            Ok(Ok((code, output))) => classify_probe(code, &output),
            Ok(Err(e)) => ProbeResult::NoTool(e.to_string()),
            Err(_) => ProbeResult::TcpFailed(format!("the probe did not finish within {}s", PROBE_TIMEOUT.as_secs())),
        }
    });
    let results: Vec<(Route, ProbeResult)> = routes.iter().cloned().zip(join_all(probes).await).collect();

    let failed: Vec<&(Route, ProbeResult)> =
        results.iter().filter(|(_, r)| !matches!(r, ProbeResult::Connected | ProbeResult::NoTool(_))).collect();
    let unprobed: Vec<&(Route, ProbeResult)> =
        results.iter().filter(|(_, r)| matches!(r, ProbeResult::NoTool(_))).collect();
    let ok = results.len() - failed.len() - unprobed.len();
    let unprobed_note = if unprobed.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = unprobed
            .iter()
            .map(|(route, r)| match r {
                ProbeResult::NoTool(why) => format!("{route} ({why})"),
                _ => route.to_string(),
            })
            .collect();
        format!("\nnot probed: {}", list.join("; "))
    };
    if failed.is_empty() {
        if ok == 0 {
            return Outcome::skip(format!("no container could run a probe{unprobed_note}"));
        }
        let list: Vec<String> =
            results.iter().filter(|(_, r)| *r == ProbeResult::Connected).map(|(route, _)| route.to_string()).collect();
        return Outcome::pass(format!(
            "{ok} route{} answer from inside the network: {}{unprobed_note}",
            if ok == 1 { "" } else { "s" },
            list.join(", ")
        ));
    }

    let mut details = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    let mut hint = |h: String| {
        if !hints.contains(&h) {
            hints.push(h);
        }
    };
    // A service cut off from the network fails every route to and from it: one line and one fix for it.
    let isolated = isolated_service(&results);
    if let Some(service) = &isolated {
        if running(service).is_some() {
            details.push(format!("`{service}` is cut off: every route to or from it fails"));
            hint(reconnect_hint(ctx, stack, service, &running));
        } else {
            details.push(format!("`{service}` is not running: every route to it fails"));
            hint(format!(
                "`ragctl up` starts `{service}` (Docker's DNS knows only running containers); `ragctl logs {service}` \
                 shows why it stopped"
            ));
        }
    }
    for (route, result) in &failed {
        let via = route.via.as_ref().map(|k| format!(" ({k})")).unwrap_or_default();
        let port = route.port.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
        match result {
            ProbeResult::Unresolved(msg) => {
                details.push(format!("{route}{via}: could not translate host name `{}` ({msg})", route.host));
            }
            ProbeResult::Refused(msg) | ProbeResult::TcpFailed(msg) => details.push(format!("{route}{via}: {msg}")),
            ProbeResult::Connected | ProbeResult::NoTool(_) => {}
        }
        if isolated.as_deref().is_some_and(|s| s == route.from || s == route.host) {
            continue;
        }
        match result {
            ProbeResult::Unresolved(_) if !stack.services.contains_key(&route.host) => {
                let key = route.via.clone().unwrap_or_else(|| format!("depends_on of `{}`", route.from));
                let default = route
                    .via
                    .as_ref()
                    .and_then(|k| stack.env.get(k).map(|e| e.default.clone()))
                    .filter(|d| !d.is_empty() && d != &route.host)
                    .map(|d| format!(" (the default is `{d}`)"))
                    .unwrap_or_default();
                hint(format!(
                    "`{}` is not a service of this stack: set {key} in .env to a service name{default}, then `ragctl up`",
                    route.host
                ));
            }
            ProbeResult::Unresolved(_) if running(&route.host).is_none() => hint(format!(
                "`{0}` is not running, so Docker's DNS does not know it: `ragctl up` starts it, `ragctl logs {0}` \
                 shows why it stopped",
                route.host
            )),
            ProbeResult::Unresolved(_) => hint(reconnect_hint(ctx, stack, &route.host, &running)),
            ProbeResult::Refused(_) => {
                let port_key =
                    route.via.as_ref().map(|k| format!(", or fix the port that goes with {k}")).unwrap_or_default();
                hint(format!(
                    "`{0}` resolves but nothing listens on port {port}: is it ready? `ragctl ps`, `ragctl logs {0}`{port_key}",
                    route.host
                ));
            }
            ProbeResult::TcpFailed(_) => hint(format!(
                "`{0}:{port}` gives no answer from inside `{1}`: check both are on a shared network (`docker inspect`) \
                 and `ragctl logs {0}`",
                route.host, route.from
            )),
            ProbeResult::Connected | ProbeResult::NoTool(_) => {}
        }
    }
    Outcome::fail(
        format!(
            "{} of {} routes fail from inside the network:\n{}{unprobed_note}",
            failed.len(),
            results.len(),
            details.join("\n")
        ),
        hints.join("; "),
    )
}

/// How to put a running service back on the network its peers use.
fn reconnect_hint<'a>(
    ctx: &DoctorContext,
    stack: &Stack,
    service: &str,
    running: &dyn Fn(&str) -> Option<&'a ObservedContainer>,
) -> String {
    let peer = stack
        .services
        .values()
        .find(|s| s.name != service && (s.depends_on.contains_key(service) || stack.shape == Shape::Middleware))
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let net = shared_network(ctx, stack, service, &peer);
    let name = running(service).map(|c| c.name.clone()).unwrap_or_else(|| format!("<{service} container>"));
    format!(
        "`{service}` runs but is not on network `{net}`: `docker network connect --alias {service} {net} {name}` \
         reconnects it (or `ragctl down` then `ragctl up` recreates it, volumes kept)"
    )
}

/// The one service every failed route involves, when every route involving it failed.
fn isolated_service(results: &[(Route, ProbeResult)]) -> Option<String> {
    let failed = |r: &ProbeResult| !matches!(r, ProbeResult::Connected | ProbeResult::NoTool(_));
    let involved = |route: &Route, s: &str| route.from == s || route.host == s;
    let first = results.iter().find(|(_, r)| failed(r))?;
    [first.0.from.clone(), first.0.host.clone()].into_iter().find(|s| {
        results.iter().all(|(route, r)| if involved(route, s) { failed(r) } else { !failed(r) })
            && results.iter().filter(|(route, _)| involved(route, s)).count() > 1
    })
}

/// The Docker network two services should share: `<project>_default` in the middleware shape, else the first
/// network of the stack model both are on.
fn shared_network(ctx: &DoctorContext, stack: &Stack, a: &str, b: &str) -> String {
    let project = &ctx.settings.project_name;
    if stack.shape == Shape::Middleware {
        return format!("{project}_default");
    }
    let nets = |s: &str| stack.services.get(s).map(|svc| svc.networks.clone()).unwrap_or_default();
    let b_nets = nets(b);
    nets(a)
        .into_iter()
        .find(|n| b_nets.contains(n))
        .map(|n| format!("{project}_{n}"))
        .unwrap_or_else(|| format!("{project}_<network>"))
}

// ------------------------------------------------------------------------------------------------------------
// Host kernel settings
// ------------------------------------------------------------------------------------------------------------

/// The highest `vm.max_map_count` an enabled service declares, and which service.
fn required_max_map_count(ctx: &DoctorContext) -> Option<(u64, String)> {
    let stack = ctx.stack.as_ref().ok()?;
    stack
        .services
        .values()
        .filter_map(|s| s.host_sysctls.get("vm.max_map_count").map(|v| (*v, s.name.clone())))
        .max_by_key(|(v, _)| *v)
}

fn vm_max_map_count(ctx: &DoctorContext) -> Outcome {
    let Some((required, service)) = required_max_map_count(ctx) else {
        return Outcome::skip("no enabled service needs vm.max_map_count");
    };
    if let Some(remote) = ctx.settings.docker_host.as_deref().and_then(remote_docker_host)
        && remote != "localhost"
        && remote != "127.0.0.1"
    {
        return Outcome::skip(format!(
            "Docker runs on `{remote}`: run `sysctl vm.max_map_count` there (`{service}` needs {required})"
        ));
    }
    assess_max_map_count(std::fs::read_to_string("/proc/sys/vm/max_map_count"), required, &service)
}

fn assess_max_map_count(read: io::Result<String>, required: u64, service: &str) -> Outcome {
    let have = match read.map(|s| s.trim().parse::<u64>()) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            return Outcome::fail(format!("/proc/sys/vm/max_map_count is not a number: {e}"), "check the kernel");
        }
        Err(e) => return Outcome::skip(format!("cannot read /proc/sys/vm/max_map_count ({e}): not a Linux host?")),
    };
    if have >= required {
        Outcome::pass(format!("vm.max_map_count is {have} (`{service}` needs {required})"))
    } else {
        Outcome::fail(
            format!("vm.max_map_count is {have}; `{service}` needs at least {required}"),
            format!(
                "sudo sysctl -w vm.max_map_count={required} (and `echo vm.max_map_count={required} | sudo tee \
                 /etc/sysctl.d/99-ragctl.conf` to keep it after a reboot)"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_replies_parse_incrementally() {
        assert_eq!(parse_reply(b"+PONG\r\n").unwrap(), Some((Reply::Simple("PONG".into()), 7)));
        assert_eq!(parse_reply(b"+PON").unwrap(), None);
        assert_eq!(
            parse_reply(b"-WRONGPASS invalid username-password pair\r\n").unwrap().unwrap().0,
            Reply::Error("WRONGPASS invalid username-password pair".into())
        );
        let config = b"*2\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n";
        assert_eq!(
            parse_reply(config).unwrap(),
            Some((
                Reply::Array(Some(vec![
                    Reply::Bulk(Some("maxmemory-policy".into())),
                    Reply::Bulk(Some("noeviction".into()))
                ])),
                config.len()
            ))
        );
        assert_eq!(parse_reply(&config[..config.len() - 3]).unwrap(), None, "incomplete bulk string");
        assert_eq!(parse_reply(b"$-1\r\n").unwrap().unwrap().0, Reply::Bulk(None));
        assert_eq!(parse_reply(b":12\r\n").unwrap().unwrap().0, Reply::Integer(12));
        assert!(parse_reply(b"HTTP/1.1 400\r\n").is_err());
    }

    #[test]
    fn commands_are_encoded_as_resp_arrays() {
        assert_eq!(encode_command(&["AUTH", "pw"]), b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n".to_vec());
    }

    #[test]
    fn auth_answers_are_told_apart() {
        let err = |s: &str| Reply::Error(s.into());
        assert_eq!(classify_auth(&Reply::Simple("OK".into())), AuthAnswer::Accepted);
        assert!(matches!(
            classify_auth(&err("WRONGPASS invalid username-password pair or user is disabled.")),
            AuthAnswer::WrongPassword(_)
        ));
        assert!(matches!(classify_auth(&err("ERR invalid password")), AuthAnswer::WrongPassword(_)));
        assert_eq!(
            classify_auth(&err(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
            )),
            AuthAnswer::NoPasswordConfigured
        );
        assert_eq!(
            classify_auth(&err("ERR Client sent AUTH, but no password is set")),
            AuthAnswer::NoPasswordConfigured
        );
        assert!(matches!(classify_auth(&err("LOADING Redis is loading")), AuthAnswer::Other(_)));
    }

    #[test]
    fn eviction_rule() {
        assert_eq!(assess_eviction(0, "noeviction", true).status, Status::Pass);
        let full = assess_eviction(256 << 20, "noeviction", true);
        assert_eq!(full.status, Status::Warn);
        assert!(full.detail.contains("256.0 MiB") && full.detail.contains("OOM"), "{}", full.detail);
        assert!(full.hint.unwrap().contains("volatile-lru"));
        assert_eq!(assess_eviction(1 << 30, "allkeys-lru", true).status, Status::Warn);
        assert_eq!(assess_eviction(1 << 30, "allkeys-lru", false).status, Status::Pass);
        assert_eq!(assess_eviction(1 << 30, "volatile-lru", true).status, Status::Pass);
    }

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

    #[test]
    fn http_status_and_body() {
        let r = parse_http_response(b"HTTP/1.0 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_str()), (401, "{}"));
        assert!(parse_http_response(b"-ERR wrong protocol\r\n").is_none());
    }

    #[test]
    fn weaviate_versions() {
        assert_eq!(major_minor("1.27.0"), Some((1, 27)));
        assert_eq!(major_minor("1.19.0-rc.1"), Some((1, 19)));
        assert_eq!(major_minor("v1.30.2"), Some((1, 30)));
        assert_eq!(major_minor("latest"), None);
        assert!(major_minor("1.19.0").unwrap() < WEAVIATE_MIN && major_minor("1.27.0").unwrap() >= WEAVIATE_MIN);
        assert!(major_minor("2.0.0").unwrap() >= WEAVIATE_MIN);
    }

    #[test]
    fn private_ranges() {
        let private = |s: &str| is_private(&s.parse().unwrap());
        assert!(private("172.18.0.3") && private("10.1.2.3") && private("192.168.5.1") && private("fd00::5"));
        assert!(!private("172.32.0.1") && !private("198.51.100.7") && !private("2001:db8::1"));
    }

    /// `openssl req -x509 -days 30` (UTCTime) and `-days 36500` (GeneralizedTime, after 2049); the expected
    /// values are `openssl x509 -noout -enddate` as Unix seconds.
    const CERT_UTCTIME: &str = "-----BEGIN CERTIFICATE-----
MIIBgTCCASegAwIBAgIUC9W2Rr94bBvkmn2PdHEZ5UmUGVgwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLcmFnY3RsLXRlc3QwHhcNMjYxMTI5MDEwMzIzWhcNMjYxMjI5
MDEwMzIzWjAWMRQwEgYDVQQDDAtyYWdjdGwtdGVzdDBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABBJWoc7Kla5Y0mnOZaLalfNdTa59p2+7vd5tq+EH6Bwuhrez0BkE
zU90WRlInf+CACVlvsTUj+wOg3luq4tUil+jUzBRMB0GA1UdDgQWBBTFkAyDeU5f
lIES+z18K+/BecVoBzAfBgNVHSMEGDAWgBTFkAyDeU5flIES+z18K+/BecVoBzAP
BgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIHbNEu5p0fEaar/QqTQ5
p+MciWPbgTOyW28qulMr8tFNAiEAvPFlj1ESLmdyo7/QHhIeAjiNlUDRP3k84+6F
ZL82PJ8=
-----END CERTIFICATE-----
";
    const CERT_GENERALIZED: &str = "-----BEGIN CERTIFICATE-----
MIIBhDCCASmgAwIBAgIUBCcP8n/sLqxuNG1Q9k/hikVgrWswCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLcmFnY3RsLXRlc3QwIBcNMjYxMTI5MDEwMzIzWhgPMjEyNjEx
MDUwMTAzMjNaMBYxFDASBgNVBAMMC3JhZ2N0bC10ZXN0MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEztW8ey7uE9FGZc0+a/XB3zxum/LjUKU887ByWNSCD4gM+MjC
z9t2tPG4tTwSVlD1cokPEyEVZU8ot9k+gvYMr6NTMFEwHQYDVR0OBBYEFEJLscxv
Il8G5wAZCaLhsEJre1GcMB8GA1UdIwQYMBaAFEJLscxvIl8G5wAZCaLhsEJre1Gc
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAPNdIlZJq76/FPDB
tzrzFkvgq3q9x5hSyg+n9OdsUf/wAiEAqzLAXIQ2n2YkG+jyrOXmtiOPfXOeajJF
UNQyHSpUJFI=
-----END CERTIFICATE-----
";

    #[test]
    fn certificate_expiry_is_read_from_der() {
        assert_eq!(certificate_not_after(CERT_UTCTIME.as_bytes()), Ok(1_798_506_203));
        assert_eq!(certificate_not_after(CERT_GENERALIZED.as_bytes()), Ok(4_949_514_203));
        assert_eq!(format_utc(1_798_506_203), "2026-12-29 01:03:23 UTC");
        assert_eq!(format_utc(4_949_514_203), "2126-11-05 01:03:23 UTC");
        assert!(certificate_not_after(b"not a certificate").unwrap_err().contains("BEGIN CERTIFICATE"));
        let truncated = CERT_UTCTIME.replace("ZL82PJ8=\n", "");
        assert!(certificate_not_after(truncated.as_bytes()).is_err());
    }

    #[test]
    fn asn1_times() {
        assert_eq!(parse_asn1_time("700101000000Z", false), Ok(0));
        assert_eq!(parse_asn1_time("491231235959Z", false), Ok(2_524_607_999));
        assert_eq!(parse_asn1_time("20000229120000Z", true), Ok(951_825_600));
        assert!(parse_asn1_time("20000229120000+0100", true).is_err());
        assert!(parse_asn1_time("001399000000Z", false).is_err());
    }

    #[test]
    fn certificate_outcomes_by_remaining_days() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("fullchain.pem");
        std::fs::write(&cert, CERT_UTCTIME).unwrap();
        let not_after = 1_798_506_203;
        assert_eq!(assess_certificate(&cert, not_after - 30 * 86_400).status, Status::Pass);
        let soon = assess_certificate(&cert, not_after - 3 * 86_400);
        assert_eq!(soon.status, Status::Warn);
        assert!(soon.detail.contains("expires in 3 days"), "{}", soon.detail);
        let expired = assess_certificate(&cert, not_after + 1);
        assert_eq!(expired.status, Status::Fail);
        assert!(expired.detail.contains("expired on 2026-12-29"), "{}", expired.detail);
        let missing = assess_certificate(&dir.path().join("nope.pem"), 0);
        assert_eq!(missing.status, Status::Fail);
        assert!(missing.hint.unwrap().contains("NGINX_CERT_DIR"));
        let key = dir.path().join("privkey.pem");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n").unwrap();
        assert_eq!(assess_key(&key).status, Status::Pass);
        std::fs::write(&key, "hello").unwrap();
        assert_eq!(assess_key(&key).status, Status::Fail);
    }

    #[test]
    fn references_give_host_and_port() {
        assert_eq!(host_and_port("http://weaviate:8080"), ("weaviate".into(), Some(8080)));
        assert_eq!(host_and_port("redis://:p@ss@redis:6379/1"), ("redis".into(), Some(6379)));
        assert_eq!(host_and_port("db_postgres"), ("db_postgres".into(), None));
        assert_eq!(host_and_port("weaviate:50051"), ("weaviate".into(), Some(50051)));
        assert!(is_service_like_name("db") && !is_service_like_name("api.example.com"));
        assert!(!is_service_like_name("localhost") && !is_service_like_name("10.0.0.1") && !is_service_like_name(""));
    }

    #[test]
    fn probe_exit_codes_are_classified() {
        assert_eq!(classify_probe(0, "connected\n"), ProbeResult::Connected);
        assert_eq!(
            classify_probe(10, "could not resolve db (Name or service not known)\n"),
            ProbeResult::Unresolved("could not resolve db (Name or service not known)".into())
        );
        assert_eq!(classify_probe(11, "connection refused"), ProbeResult::Refused("connection refused".into()));
        assert!(matches!(classify_probe(12, "timed out after 2s"), ProbeResult::TcpFailed(_)));
        assert!(matches!(
            classify_probe(127, "OCI runtime exec failed: exec: \"sh\": executable file not found in $PATH"),
            ProbeResult::NoTool(_)
        ));
    }

    fn route(from: &str, to: &str) -> Route {
        Route { from: from.into(), host: to.into(), port: Some(1), via: None }
    }

    #[test]
    fn an_isolated_service_is_named() {
        let dns = || ProbeResult::Unresolved("x".into());
        let results = vec![
            (route("db_postgres", "redis"), ProbeResult::Connected),
            (route("db_postgres", "weaviate"), dns()),
            (route("redis", "db_postgres"), ProbeResult::Connected),
            (route("redis", "weaviate"), dns()),
            (route("weaviate", "db_postgres"), dns()),
            (route("weaviate", "redis"), dns()),
        ];
        assert_eq!(isolated_service(&results).as_deref(), Some("weaviate"));
        let one = vec![(route("api", "db"), dns()), (route("api", "redis"), ProbeResult::Connected)];
        assert_eq!(isolated_service(&one), None, "a single failing route names no isolated service");
    }

    #[test]
    fn max_map_count_against_requirement() {
        assert_eq!(assess_max_map_count(Ok("262144\n".into()), 262144, "milvus").status, Status::Pass);
        let low = assess_max_map_count(Ok("65530\n".into()), 262144, "milvus");
        assert_eq!(low.status, Status::Fail);
        assert!(low.hint.unwrap().contains("sysctl -w vm.max_map_count=262144"));
        let missing = assess_max_map_count(Err(io::Error::from(io::ErrorKind::NotFound)), 1, "milvus");
        assert_eq!(missing.status, Status::Skip);
    }
}
