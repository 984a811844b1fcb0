//! Weaviate: ready, the API key accepted and a version the Dify client supports, gRPC reachable, and an address
//! its cluster layer accepts.

use std::io;

use super::endpoint::{
    Endpoint, connect, container_endpoint, endpoint, http_get, published, published_host, running_container,
    unreachable,
};
use crate::doctor::{DoctorContext, Outcome};

/// The oldest Weaviate the Dify client supports (v4 client: gRPC on 50051).
const WEAVIATE_MIN: (u64, u64) = (1, 27);

pub(super) async fn ready(ctx: &DoctorContext) -> Outcome {
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

pub(super) async fn version(ctx: &DoctorContext) -> Outcome {
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

pub(super) async fn grpc(ctx: &DoctorContext) -> Outcome {
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

pub(super) async fn subnet(ctx: &DoctorContext) -> Outcome {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
