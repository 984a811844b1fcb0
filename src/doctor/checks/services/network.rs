//! Reachability from inside the Docker network: every dependency a service names resolves and accepts TCP,
//! probed from the depending service's own container.

use std::time::Duration;

use futures_util::StreamExt;

use crate::docker::ObservedContainer;
use crate::doctor::{DoctorContext, Outcome};
use crate::engine::interpolate::interpolate;
use crate::profile::{ReadinessProbe, Shape};
use crate::stack::Stack;

/// One DNS + TCP probe inside a container (its own tools give up after 2–3 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(4);

/// Probes in flight at once.
const PROBE_CONCURRENCY: usize = 4;

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
    !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && host != "localhost"
        && host.parse::<std::net::IpAddr>().is_err()
}

/// The routes `from` uses: its depends_on targets, and the hosts its environment names (`DB_HOST`,
/// `WEAVIATE_ENDPOINT`, `CELERY_BROKER_URL`), so a `DB_HOST=db` typo is probed as the service will resolve it.
/// Keys of a storage backend or vector store the stack does not use (`skip`) are not routes: Dify's environment
/// carries every backend's keys with placeholder hosts.
fn routes_of(
    stack: &Stack,
    from: &str,
    value: &dyn Fn(&str) -> Option<String>,
    skip: &dyn Fn(&str) -> bool,
) -> Vec<Route> {
    let Some(svc) = stack.services.get(from) else { return Vec::new() };
    let mut routes: Vec<Route> = Vec::new();
    let mut add = |route: Route| {
        if route.host != from && !routes.iter().any(|r| r.host == route.host && r.port == route.port) {
            routes.push(route);
        }
    };
    for (key, raw) in &svc.environment {
        let is_reference = key.ends_with("_HOST") || key.ends_with("_ENDPOINT") || key.ends_with("_URL");
        if !is_reference || key == "DOCKER_HOST" || skip(key) {
            continue;
        }
        let Ok(resolved) = interpolate(raw, value) else { continue };
        let (host, mut port) = host_and_port(&resolved);
        if !is_service_like_name(&host) {
            continue;
        }
        // A service of this stack on no network `from` is on is out of its reach by design (Dify's shared
        // environment hands plugin_daemon CODE_EXECUTION_ENDPOINT, but only ssrf_proxy_network reaches the sandbox).
        if stack.services.contains_key(&host) && shared_networks(stack, from, &host).next().is_none() {
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

pub(super) async fn reachability(ctx: &DoctorContext) -> Outcome {
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
    let in_use = crate::doctor::checks::config::backends_in_use(ctx, stack);
    let skip = |k: &str| crate::doctor::checks::config::key_of_unused_backend(k, &in_use);

    let mut routes: Vec<Route> = stack
        .services
        .keys()
        .filter(|s| running(s).is_some())
        .flat_map(|s| routes_of(stack, s, &value, &skip))
        .collect();
    if stack.shape == Shape::Middleware || routes.is_empty() {
        // The middleware shape's services are mostly reached from the host, not from each other: each running
        // service no route reaches is probed from the first peer it shares a network with, and each that
        // probes nothing probes that peer, so DNS on the project's networks is checked from inside them and a
        // service cut off fails both ways. Only peers on a shared network: the sandbox, alone with ssrf_proxy on
        // the internal network, reaching nothing else is the isolation working, not a failure.
        // A stopped service is probed too: every route to it failing says it is not running.
        let up: Vec<&String> = stack.services.keys().filter(|s| running(s).is_some()).collect();
        for s in stack.services.keys() {
            let Some(peer) = up.iter().find(|p| **p != s && shared_networks(stack, s, p).next().is_some()) else {
                continue;
            };
            if !routes.iter().any(|r| r.host == *s) {
                routes.push(Route { from: (*peer).clone(), host: s.clone(), port: service_port(stack, s), via: None });
            }
            if running(s).is_some() && !routes.iter().any(|r| r.from == *s) {
                routes.push(Route {
                    from: s.clone(),
                    host: (*peer).clone(),
                    port: service_port(stack, peer),
                    via: None,
                });
            }
        }
    }
    if routes.is_empty() {
        return Outcome::fail(
            format!("no container of project `{}` runs to probe from", ctx.settings.project_name),
            "run `ragctl up`",
        );
    }

    let probes: Vec<_> = routes
        .iter()
        .map(|route| async move {
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
                Err(_) => {
                    ProbeResult::TcpFailed(format!("the probe did not finish within {}s", PROBE_TIMEOUT.as_secs()))
                }
            }
        })
        .collect();
    // A few at a time: every probe is an exec, and a burst of them on a busy engine times out by itself.
    let answers: Vec<ProbeResult> = futures_util::stream::iter(probes).buffered(PROBE_CONCURRENCY).collect().await;
    let results: Vec<(Route, ProbeResult)> = routes.iter().cloned().zip(answers).collect();

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
    let isolated = isolated_service(&results).filter(|s| stack.services.contains_key(s));
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

/// The networks of the stack model two services are both on (a middleware service without networks is on
/// compose's `default`).
fn shared_networks<'s>(stack: &'s Stack, a: &str, b: &str) -> impl Iterator<Item = &'s str> {
    let nets = |s: &str| -> Vec<&'s str> {
        match stack.services.get(s) {
            Some(svc) if svc.networks.is_empty() => vec![crate::stack::DEFAULT_NETWORK],
            Some(svc) => svc.networks.iter().map(String::as_str).collect(),
            None => Vec::new(),
        }
    };
    let b_nets = nets(b);
    nets(a).into_iter().filter(move |n| b_nets.contains(n))
}

/// The Docker network two services should share: the first network of the stack model both are on.
fn shared_network(ctx: &DoctorContext, stack: &Stack, a: &str, b: &str) -> String {
    let project = &ctx.settings.project_name;
    match shared_networks(stack, a, b).next() {
        Some(n) => format!("{project}_{n}"),
        None if stack.shape == Shape::Middleware => format!("{project}_default"),
        None => format!("{project}_<network>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_give_host_and_port() {
        assert_eq!(host_and_port("http://weaviate:8080"), ("weaviate".into(), Some(8080)));
        assert_eq!(host_and_port("redis://:p@ss@redis:6379/1"), ("redis".into(), Some(6379)));
        assert_eq!(host_and_port("db_postgres"), ("db_postgres".into(), None));
        assert_eq!(host_and_port("weaviate:50051"), ("weaviate".into(), Some(50051)));
        assert!(is_service_like_name("db") && !is_service_like_name("api.example.com"));
        assert!(!is_service_like_name("localhost") && !is_service_like_name("10.0.0.1") && !is_service_like_name(""));
        // Grafana's own placeholders in GF_SERVER_ROOT_URL (`%(protocol)s://%(domain)s:%(http_port)s/`) are no host.
        assert!(!is_service_like_name("%(domain)s"));
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
    fn the_full_shapes_routes_follow_its_networks_not_every_url_in_the_environment() {
        let stack = crate::stack::test_support::embedded_stack(&["app", "weaviate"], "shape: full\n");
        let value = |k: &str| crate::stack::test_support::fake_vars(k).filter(|_| !k.ends_with("_URL"));
        let routes = routes_of(&stack, "plugin_daemon", &value, &|_| false);
        let hosts: Vec<&str> = routes.iter().map(|r| r.host.as_str()).collect();
        assert!(hosts.contains(&"db_postgres") && hosts.contains(&"api"), "{hosts:?}");
        // CODE_EXECUTION_ENDPOINT is in Dify's shared environment, but only ssrf_proxy_network reaches the sandbox.
        assert!(!hosts.contains(&"sandbox"), "{hosts:?}");
        let api_routes = routes_of(&stack, "api", &value, &|_| false);
        let api: Vec<&str> = api_routes.iter().map(|r| r.host.as_str()).collect();
        assert!(api.contains(&"sandbox"), "the api shares ssrf_proxy_network with the sandbox: {api:?}");
    }
}
