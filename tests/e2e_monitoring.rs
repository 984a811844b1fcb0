//! End-to-end proof of the monitoring profile with the real Prometheus and exporters Debian packages (the local
//! test images, see tests/images: Debian's prometheus, postgres, redis and blackbox exporters; Grafana and cAdvisor
//! are not in Debian and run as a TEST STAND-IN): `ragctl up` with `app` and `monitoring`, every scrape target of
//! the rendered prometheus.yml is up, and the API-latency alert of the rendered alert_rules.yml fires in
//! Prometheus's API once the API answers slowly (the blackbox probe pointed at the app stand-in's `/slow`).
//!
//! Runs under its own project name on free loopback ports; the [`Project`] guard removes whatever it created.
//! Nothing here sleeps for a fixed time.

mod common;

use std::time::Duration;

use common::{Project, await_condition, docker, free_port, require_docker};

/// Test images by service name: the app's stand-ins and nginx, and the monitoring services.
const TEST_IMAGES: [(&str, &str); 14] = [
    ("RAGCTL_IMAGE_API", "ragctl-test/app-standin:1"),
    ("RAGCTL_IMAGE_WORKER", "ragctl-test/app-standin:1"),
    ("RAGCTL_IMAGE_WORKER_BEAT", "ragctl-test/app-standin:1"),
    ("RAGCTL_IMAGE_WEB", "ragctl-test/app-standin:1"),
    ("RAGCTL_IMAGE_SANDBOX", "ragctl-test/app-standin:1"),
    ("RAGCTL_IMAGE_PLUGIN_DAEMON", "ragctl-test/app-standin:1"),
    ("RAGCTL_IMAGE_SSRF_PROXY", "ragctl-test/squid:5"),
    ("RAGCTL_IMAGE_NGINX", "ragctl-test/nginx:1"),
    ("RAGCTL_IMAGE_PROMETHEUS", "ragctl-test/prometheus:2"),
    ("RAGCTL_IMAGE_POSTGRES_EXPORTER", "ragctl-test/postgres-exporter:0"),
    ("RAGCTL_IMAGE_REDIS_EXPORTER", "ragctl-test/redis-exporter:1"),
    ("RAGCTL_IMAGE_BLACKBOX_EXPORTER", "ragctl-test/blackbox-exporter:0"),
    ("RAGCTL_IMAGE_GRAFANA", "ragctl-test/monitoring-standin:1"),
    ("RAGCTL_IMAGE_CADVISOR", "ragctl-test/monitoring-standin:1"),
];

/// How slowly the API answers the blackbox probe: well above the alert's 500 ms, well below the probe's timeout.
const SLOW_MS: u32 = 1500;

/// GET `path` of Prometheus's API from inside its container (Prometheus publishes no port), as JSON.
fn prometheus_api(stack: &Project, path: &str) -> Result<serde_json::Value, String> {
    let url = format!("http://127.0.0.1:9090{path}");
    let out = std::process::Command::new("docker")
        .args(["exec", &stack.container("prometheus"), "wget", "-q", "-O", "-", &url])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

#[test]
fn every_scrape_target_is_up_and_a_slow_api_fires_its_alert() {
    if !require_docker() {
        return;
    }
    let (http, https) = (free_port(), free_port());
    let builtin = std::fs::read_to_string(common::repo_root().join("templates/prometheus/prometheus.yml.j2")).unwrap();
    let probe = "\"http://api:5001/health\"";
    assert!(builtin.contains(probe), "templates/prometheus/prometheus.yml.j2 changed shape");
    // The API's probe asks the stand-in's /slow: the API answers, slowly.
    let slow = builtin.replace(probe, &format!("\"http://api:5001/slow?ms={SLOW_MS}\""));
    let stack = Project::with("monitoring", |t| {
        std::fs::remove_file(t.path().join("ragctl.yaml")).unwrap();
        let t = TEST_IMAGES.iter().fold(t, |t, (key, image)| t.env(key, image));
        t.run([
            "init",
            "--yes",
            "--shape",
            "full",
            "--no-pg-cluster",
            "--monitoring",
            "--app",
            "--domain",
            "rag.test",
            "--self-signed",
            "--port",
            &format!("EXPOSE_NGINX_PORT={http}"),
            "--port",
            &format!("EXPOSE_NGINX_SSL_PORT={https}"),
        ])
        .assert_status(0);
        // Loopback only; limits sized for the stand-ins, not Dify's images.
        let stand_ins = ["api", "worker", "worker_beat", "web", "sandbox", "plugin_daemon", "grafana", "cadvisor"];
        let resources: String = stand_ins.map(|s| format!("  {s}: {{ memory: 256m }}\n")).concat();
        t.append("ragctl.yaml", &format!("public_address: 127.0.0.1\nresources:\n{resources}"))
            .file("templates/prometheus/prometheus.yml.j2", &slow)
    });
    stack.up();
    assert_eq!(
        docker(&["inspect", "--format", "{{.Config.Image}}", &stack.container("prometheus")]).trim(),
        "ragctl-test/prometheus:2"
    );

    // Every job of the rendered prometheus.yml, each target up.
    let jobs = ["prometheus", "cadvisor", "postgres", "redis", "blackbox", "blackbox_api", "blackbox_nginx"];
    await_condition("every scrape target up", Duration::from_secs(120), || {
        let targets = prometheus_api(&stack, "/api/v1/targets?state=active")?;
        let active = targets["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
        let mut up: Vec<&str> =
            active.iter().filter(|t| t["health"] == "up").filter_map(|t| t["labels"]["job"].as_str()).collect();
        up.sort_unstable();
        let mut want = jobs.to_vec();
        want.sort_unstable();
        if up == want && active.len() == jobs.len() { Ok(()) } else { Err(format!("{targets}")) }
    });

    // The exporters report what they watch: PostgreSQL and Redis reachable, the probes succeed.
    let query = |q: &str| prometheus_api(&stack, &format!("/api/v1/query?query={q}"));
    for (q, what) in [("pg_up", "postgres_exporter reaches db_postgres"), ("redis_up", "redis_exporter reaches redis")]
    {
        await_condition(what, Duration::from_secs(60), || {
            let answer = query(q)?;
            match answer["data"]["result"][0]["value"][1].as_str() {
                Some("1") => Ok(()),
                _ => Err(answer.to_string()),
            }
        });
    }

    // avg_over_time(probe_duration_seconds{job="blackbox_api"}[5m]) > 0.5 for 2m: firing within the 2 minutes,
    // a few evaluation intervals and the first probes.
    let alert = await_condition("ApiSlowResponse firing", Duration::from_secs(240), || {
        let alerts = prometheus_api(&stack, "/api/v1/alerts")?;
        let list = alerts["data"]["alerts"].as_array().cloned().unwrap_or_default();
        list.into_iter()
            .find(|a| a["labels"]["alertname"] == "ApiSlowResponse" && a["state"] == "firing")
            .ok_or_else(|| alerts.to_string())
    });
    assert_eq!(alert["labels"]["job"], "blackbox_api", "{alert}");
    let alerts = prometheus_api(&stack, "/api/v1/alerts").unwrap();
    let others: Vec<&serde_json::Value> = alerts["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] != "ApiSlowResponse")
        .collect();
    assert!(others.is_empty(), "only the API is slow, yet: {others:?}");
}
