//! Checks of the running services, one file per subject: Redis, Weaviate, nginx and its TLS certificate, the
//! API, reachability between services from inside the Docker network, and the host kernel settings services
//! need. `endpoint` finds where the host reaches a service.
//!
//! They only look: they connect and send read-only requests (`AUTH` + `PING`, `CONFIG GET`, HTTP `GET`, through
//! [`crate::net`]), and run read-only commands in containers (`nginx -t`, `pip check`, DNS/TCP probes). They never
//! change a container, a file or a setting.

mod api;
mod endpoint;
mod network;
mod nginx;
mod redis;
mod sysctl;
mod tls_certificate;
mod weaviate;

use std::time::Duration;

use futures_util::FutureExt;

use crate::doctor::{CheckDef, DoctorContext};

const QUICK: Duration = Duration::from_secs(3);

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
    sysctl::required_max_map_count(ctx).is_some()
}

pub fn checks() -> Vec<CheckDef> {
    vec![
        CheckDef {
            id: "redis.ping",
            title: "Redis answers PING after AUTH with REDIS_PASSWORD",
            needs: &["docker.reachable"],
            timeout: QUICK,
            applies: redis_enabled,
            run: |ctx| async move { redis::ping(ctx).await }.boxed(),
        },
        CheckDef {
            id: "redis.maxmemory_policy",
            title: "Redis evicts cache entries, not Celery's queues, when maxmemory is reached",
            needs: &["redis.ping"],
            timeout: QUICK,
            applies: redis_enabled,
            run: |ctx| async move { redis::maxmemory_policy(ctx).await }.boxed(),
        },
        CheckDef {
            id: "weaviate.ready",
            title: "Weaviate answers /v1/.well-known/ready",
            needs: &["docker.reachable"],
            timeout: QUICK,
            applies: weaviate_enabled,
            run: |ctx| async move { weaviate::ready(ctx).await }.boxed(),
        },
        CheckDef {
            id: "weaviate.version",
            title: "Weaviate accepts WEAVIATE_API_KEY and is version 1.27 or newer",
            needs: &["weaviate.ready"],
            timeout: QUICK,
            applies: weaviate_enabled,
            run: |ctx| async move { weaviate::version(ctx).await }.boxed(),
        },
        CheckDef {
            id: "weaviate.grpc",
            title: "Weaviate's gRPC port 50051 accepts connections",
            needs: &["docker.reachable"],
            timeout: QUICK,
            applies: weaviate_enabled,
            run: |ctx| async move { weaviate::grpc(ctx).await }.boxed(),
        },
        CheckDef {
            id: "weaviate.subnet",
            title: "Weaviate's container address is in a private range",
            needs: &["docker.reachable"],
            timeout: QUICK,
            applies: weaviate_enabled,
            run: |ctx| async move { weaviate::subnet(ctx).await }.boxed(),
        },
        CheckDef {
            id: "nginx.config",
            title: "nginx accepts its configuration (`nginx -t` in the container)",
            needs: &["docker.reachable"],
            timeout: Duration::from_secs(5),
            applies: nginx_enabled,
            run: |ctx| async move { nginx::config(ctx).await }.boxed(),
        },
        CheckDef {
            id: "nginx.tls_certificate",
            title: "the TLS certificate and key nginx serves are present and readable; expiry within 14 days warns, within 7 fails",
            needs: &[],
            timeout: QUICK,
            applies: nginx_serves_tls,
            run: |ctx| async move { nginx::tls_certificate(ctx, nginx::unix_now()) }.boxed(),
        },
        CheckDef {
            id: "api.health",
            title: "GET /health/api (the API's /health through nginx) answers within 500 ms",
            needs: &["docker.reachable"],
            timeout: QUICK,
            applies: api_behind_nginx,
            run: |ctx| async move { api::health(ctx).await }.boxed(),
        },
        CheckDef {
            id: "api.pip_check",
            title: "the API image's Python packages have no conflicts (`pip check`)",
            needs: &["docker.reachable"],
            timeout: Duration::from_secs(15),
            applies: api_enabled,
            run: |ctx| async move { api::pip_check(ctx).await }.boxed(),
        },
        CheckDef {
            id: "network.reachability",
            title: "every dependency resolves and accepts TCP from inside the Docker network",
            needs: &["docker.reachable", "config.stack"],
            // Every route is an exec, PROBE_CONCURRENCY at a time, each bounded by its own 4 s: 6 s did not cover
            // the full shape with app and monitoring on a busy engine (tests/e2e_monitoring.rs).
            timeout: Duration::from_secs(15),
            applies: has_services,
            run: |ctx| async move { network::reachability(ctx).await }.boxed(),
        },
        CheckDef {
            id: "host.vm_max_map_count",
            title: "vm.max_map_count is at least what the enabled services need",
            needs: &[],
            timeout: QUICK,
            applies: needs_max_map_count,
            run: |ctx| async move { sysctl::vm_max_map_count(ctx) }.boxed(),
        },
    ]
}
