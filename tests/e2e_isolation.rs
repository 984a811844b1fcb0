//! Dify's isolation of the sandbox, on the real engine: the middleware stack (the default shape) with the local
//! test images (`ragctl-test/app-standin:1` stands in for Dify's sandbox and plugin daemon, Debian's squid for
//! ssrf_proxy). Asserted on what the engine stored (the internal `ssrf_proxy_network` and who is on it) and by
//! probes from inside the sandbox: ssrf_proxy answers, the databases do not; through the proxy a private address
//! of the project's own network is refused (squid's 403) while the reverse-proxy port squid.conf opens to the
//! sandbox (Dify's EXPOSE_SANDBOX_PORT) passes. squid listens on a non-default SSRF_HTTP_PORT from `.env`.

mod common;

use std::collections::BTreeSet;

use common::{Project, docker, require_docker};

/// Run a bash snippet inside a container; (exit code, stdout).
fn exec_bash(container: &str, script: &str) -> (i32, String) {
    let out = std::process::Command::new("docker")
        .args(["exec", container, "bash", "-c", script])
        .output()
        .expect("run docker exec");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether a TCP connection from `container` to `host:port` opens within 3 seconds.
fn connects(container: &str, host: &str, port: u16) -> bool {
    exec_bash(container, &format!("timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/{port}'")).0 == 0
}

/// Containers attached to a network, by service name (`<project>-<service>-1` → `<service>`).
fn members(project: &Project, network: &str) -> BTreeSet<String> {
    let prefix = format!("{}-", project.name);
    docker(&["network", "inspect", network, "--format", "{{range .Containers}}{{.Name}} {{end}}"])
        .split_whitespace()
        .map(|n| n.trim_start_matches(&prefix).trim_end_matches("-1").to_string())
        .collect()
}

#[test]
fn the_sandbox_reaches_only_ssrf_proxy_and_the_proxy_refuses_private_addresses() {
    if !require_docker() {
        return;
    }
    // Dify's SSRF_HTTP_PORT in .env moves squid's forward proxy: the entrypoint writes it into squid.conf when the
    // container starts, and the sandbox's HTTP_PROXY follows.
    let project = Project::with("isolation", |t| t.file(".env", "SSRF_HTTP_PORT=3129\n"));
    project.up();

    // What the engine stored: the internal network, and exactly the sandbox and the proxy on it.
    let ssrf_net = format!("{}_ssrf_proxy_network", project.name);
    let default_net = format!("{}_default", project.name);
    let networks: BTreeSet<String> = project.networks().into_iter().collect();
    assert_eq!(networks, BTreeSet::from([default_net.clone(), ssrf_net.clone()]));
    assert_eq!(docker(&["network", "inspect", &ssrf_net, "--format", "{{.Internal}}"]).trim(), "true");
    assert_eq!(docker(&["network", "inspect", &default_net, "--format", "{{.Internal}}"]).trim(), "false");
    assert_eq!(members(&project, &ssrf_net), BTreeSet::from(["sandbox".to_string(), "ssrf_proxy".to_string()]));
    let on_default = members(&project, &default_net);
    assert!(!on_default.contains("sandbox"), "the sandbox is only on the internal network: {on_default:?}");
    assert!(on_default.contains("ssrf_proxy") && on_default.contains("db_postgres"), "{on_default:?}");

    // Probes from inside the sandbox.
    let sandbox = project.container("sandbox");
    assert!(connects(&sandbox, "ssrf_proxy", 3129), "the sandbox reaches ssrf_proxy:3129 (SSRF_HTTP_PORT)");
    assert!(!connects(&sandbox, "ssrf_proxy", 3128), "squid listens on SSRF_HTTP_PORT, not 3128");
    let sandbox_env = docker(&["inspect", &sandbox, "--format", "{{range .Config.Env}}{{println .}}{{end}}"]);
    assert!(sandbox_env.lines().any(|l| l == "HTTP_PROXY=http://ssrf_proxy:3129"), "{sandbox_env}");
    assert!(!connects(&sandbox, "db_postgres", 5432), "the sandbox must not reach db_postgres:5432");
    assert!(!connects(&sandbox, "redis", 6379), "the sandbox must not reach redis:6379");
    // Nor the database by address: the name not resolving is not the only thing keeping it out.
    let db_ip = docker(&[
        "inspect",
        &project.container("db_postgres"),
        "--format",
        &format!("{{{{(index .NetworkSettings.Networks \"{default_net}\").IPAddress}}}}"),
    ])
    .trim()
    .to_string();
    assert!(!db_ip.is_empty(), "db_postgres has an address on {default_net}");
    assert!(!connects(&sandbox, &db_ip, 5432), "the sandbox must not reach {db_ip}:5432");

    // Through the proxy: a private address of the project's own network (one squid itself can reach) is refused
    // by the rendered squid.conf's `to_internal` rule with squid's 403...
    let curl_code = |args: &str| {
        let (code, out) = exec_bash(&sandbox, &format!("curl -s -o /dev/null -m 10 -w '%{{http_code}}' {args}"));
        assert!(code == 0 || !out.is_empty(), "curl ran in the sandbox ({args}): exit {code}");
        out
    };
    assert!(connects(&project.container("ssrf_proxy"), &db_ip, 5432), "squid itself can reach {db_ip}:5432");
    assert_eq!(curl_code(&format!("-x http://ssrf_proxy:3129 http://{db_ip}:5432/")), "403");
    assert_eq!(curl_code("-x http://ssrf_proxy:3129 http://db_postgres:5432/"), "403");
    // ...while the one destination the config allows, its reverse-proxy port to the sandbox, passes: squid forwards
    // to sandbox:8194 and the stand-in's /health answers 200.
    assert_eq!(curl_code("http://ssrf_proxy:8194/health"), "200");
}
