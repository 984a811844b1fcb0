//! End-to-end proof of the monitoring profile with the real Prometheus and exporters Debian packages (the local
//! test images, see tests/images: Debian's prometheus, postgres, redis and blackbox exporters; Grafana and cAdvisor
//! are not in Debian and run as a TEST STAND-IN): `ragctl up` with `app` and `monitoring`, every scrape target of
//! the rendered prometheus.yml is up, and the API-latency alert of the rendered alert_rules.yml fires in
//! Prometheus's API once the API answers slowly (the blackbox probe pointed at the app stand-in's `/slow`), and
//! resolves once it is fast again (`PUT /slow?ms=0` on the stand-in, same URL); the PostgreSQL-connections alert
//! fires while real `psql` connections hold more than 90 % of a small max_connections (POSTGRES_MAX_CONNECTIONS)
//! and resolves once they close; then `doctor --strict` passes on the stack.
//!
//! ContainerMemoryHigh is induced for real too (a python3 filling the grafana stand-in to ~90 % of its 256m limit,
//! seen through the cAdvisor stand-in's series computed from the Docker API), but only seen `pending` and then
//! cleared: its `for: 5m` alone is longer than this test may run (`promtool test rules` proves it fires).
//!
//! Runs under its own project name on free loopback ports; the [`Project`] guard removes whatever it created.
//! Nothing here waits for a fixed time: every wait polls its condition (at most once a second) within a bound.

mod common;

use std::time::Duration;

use common::{Project, await_condition, docker, free_port, require_docker};

/// The monitoring services on their test images (Debian's Prometheus and exporters; stand-ins for Grafana and
/// cAdvisor), beside the app's ([`common::APP_TEST_IMAGES`]).
const MONITORING_TEST_IMAGES: [(&str, &str); 6] = [
    ("RAGCTL_IMAGE_PROMETHEUS", "ragctl-test/prometheus:2"),
    ("RAGCTL_IMAGE_POSTGRES_EXPORTER", "ragctl-test/postgres-exporter:0"),
    ("RAGCTL_IMAGE_REDIS_EXPORTER", "ragctl-test/redis-exporter:1"),
    ("RAGCTL_IMAGE_BLACKBOX_EXPORTER", "ragctl-test/blackbox-exporter:0"),
    ("RAGCTL_IMAGE_GRAFANA", "ragctl-test/monitoring-standin:1"),
    ("RAGCTL_IMAGE_CADVISOR", "ragctl-test/monitoring-standin:1"),
];

/// How slowly the API answers the blackbox probe: above the alert's 500 ms, and close enough to it that a few fast
/// probes bring the 5-minute average back below it (the test sees the alert resolve in time).
const SLOW_MS: u32 = 600;

/// PostgreSQL's max_connections for the test (POSTGRES_MAX_CONNECTIONS in .env): few connections fill it.
const MAX_CONNECTIONS: u32 = 20;

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
fn every_target_up_and_each_induced_alert_fires_and_resolves() {
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
        let t = MONITORING_TEST_IMAGES.iter().fold(t, |t, (key, image)| t.env(key, image));
        let t = t
            .init_full_app("rag.test", (http, https), true, &["grafana", "cadvisor"])
            .file("templates/prometheus/prometheus.yml.j2", &slow);
        t.set_dotenv("POSTGRES_MAX_CONNECTIONS", &MAX_CONNECTIONS.to_string());
        t
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

    // PostgresConnectionsNearMax: real connections held open until more than 90 % of max_connections (20, set
    // through POSTGRES_MAX_CONNECTIONS in .env) are in use, counted the way the rule counts them.
    let in_use = || -> Result<u32, String> {
        let answer = query("sum(pg_stat_activity_count)")?;
        let value = answer["data"]["result"][0]["value"][1].as_str().ok_or_else(|| answer.to_string())?;
        value.parse::<f64>().map(|v| v as u32).map_err(|e| format!("{value}: {e}"))
    };
    let before = in_use().unwrap();
    assert!(before < MAX_CONNECTIONS - 2, "{before} connections in use before the test opened any");
    let mut held = open_connections(&stack, MAX_CONNECTIONS - 1 - before);

    // ContainerMemoryHigh: the cAdvisor stand-in's series come from the real containers (Docker API): the api's
    // limit is the 256m of ragctl.yaml. A python3 in the grafana stand-in (256m too) fills it to ~93 %.
    let grafana = stack.container("grafana");
    let memory = |metric: &str, name: &str| -> Result<f64, String> {
        let answer = query(&format!("{metric}{{name=%22{name}%22}}"))?;
        let value = answer["data"]["result"][0]["value"][1].as_str().ok_or_else(|| answer.to_string())?;
        value.parse::<f64>().map_err(|e| format!("{value}: {e}"))
    };
    let (limit, used) =
        await_condition("cAdvisor's memory series of the api and grafana", Duration::from_secs(60), || {
            throttle(memory("container_spec_memory_limit_bytes", &stack.container("api")).and_then(|api| {
                let (limit, used) = (
                    memory("container_spec_memory_limit_bytes", &grafana)?,
                    memory("container_memory_working_set_bytes", &grafana)?,
                );
                if api == 268435456.0 && limit == 268435456.0 && used > 0.0 && used < 0.5 * limit {
                    Ok((limit, used))
                } else {
                    Err(format!("api limit {api}, grafana {used} of {limit}"))
                }
            }))
        });
    // 90 % of the limit on top of what it uses; the python3 process itself adds a few MB more, well below 100 %.
    let mut filler = fill_memory(&grafana, (0.90 * limit - used) as u64);
    await_condition("the held connections counted", Duration::from_secs(60), || {
        throttle(in_use()).and_then(|n| if n >= MAX_CONNECTIONS - 1 { Ok(()) } else { Err(format!("{n} in use")) })
    });

    // ApiSlowResponse: avg_over_time(probe_duration_seconds{job="blackbox_api"}[5m]) > 0.5 for 2m, and
    // PostgresConnectionsNearMax (for 2m): both firing within the 2 minutes, a few evaluation intervals and the
    // first probes. ContainerMemoryHigh's `for: 5m` alone is longer than this test may take: its condition is
    // seen true (the alert pending on the grafana container), not the 5 minutes out.
    let firing =
        await_condition("ApiSlowResponse and PostgresConnectionsNearMax firing", Duration::from_secs(240), || {
            throttle(active_alerts(&stack)).and_then(|alerts| {
                let firing: Vec<serde_json::Value> =
                    alerts.iter().filter(|a| a["state"] == "firing").cloned().collect();
                let names: Vec<&str> = firing.iter().filter_map(|a| a["labels"]["alertname"].as_str()).collect();
                let memory_high = alerts.iter().any(|a| {
                    a["labels"]["alertname"] == "ContainerMemoryHigh" && a["labels"]["name"] == grafana.as_str()
                });
                if names.contains(&"ApiSlowResponse") && names.contains(&"PostgresConnectionsNearMax") && memory_high {
                    Ok(firing)
                } else {
                    Err(format!("{alerts:?}"))
                }
            })
        });
    let api = firing.iter().find(|a| a["labels"]["alertname"] == "ApiSlowResponse").unwrap();
    assert_eq!(api["labels"]["job"], "blackbox_api", "{api}");
    let pg = firing.iter().find(|a| a["labels"]["alertname"] == "PostgresConnectionsNearMax").unwrap();
    assert_eq!(pg["labels"]["instance"], "postgres_exporter:9187", "{pg}");
    let others: Vec<serde_json::Value> = active_alerts(&stack)
        .unwrap()
        .into_iter()
        .filter(|a| {
            let name = a["labels"]["alertname"].as_str().unwrap_or("");
            let induced = ["ApiSlowResponse", "PostgresConnectionsNearMax"].contains(&name)
                || (name == "ContainerMemoryHigh" && a["labels"]["name"] == grafana.as_str());
            !induced
        })
        .collect();
    assert!(others.is_empty(), "only the API is slow, PostgreSQL full and grafana's memory high, yet: {others:?}");

    // Fast again and the connections closed: both resolve, i.e. leave Prometheus's active alerts. The API's
    // 5-minute average falls below 0.5 s after a few fast probes (SLOW_MS is close to the threshold for that).
    // Every replica of the api (the full shape runs several behind the `api` name the probe resolves).
    let api = "label=com.docker.compose.service=api";
    let replicas = docker(&["ps", "-q", "--filter", &stack.label_filter(), "--filter", api]);
    let replicas: Vec<&str> = replicas.split_whitespace().collect();
    assert!(!replicas.is_empty(), "no api container");
    for replica in replicas {
        let fast = docker(&[
            "exec",
            replica,
            "python3",
            "-c",
            "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:5001/slow?ms=0', method='PUT'))",
        ]);
        assert!(fast.is_empty(), "{fast}");
    }
    close_connections(&mut held);
    drop(filler.stdin.take());
    assert!(filler.wait().unwrap().success(), "the memory filler failed");
    await_condition("every alert resolved", Duration::from_secs(240), || {
        throttle(active_alerts(&stack)).and_then(|alerts| {
            if alerts.is_empty() {
                return Ok(());
            }
            let average = query("avg_over_time(probe_duration_seconds%7Bjob=%22blackbox_api%22%7D%5B5m%5D)");
            Err(format!("{alerts:?}; the API's 5-minute average probe duration: {average:?}"))
        })
    });

    // The stack the monitoring watches passes doctor --strict: no failure, no warning.
    let doctor = stack.ragctl(&["doctor", "--strict"]);
    assert_eq!(doctor.status, 0, "{}{}", doctor.stdout, doctor.stderr);
}

/// The active (pending or firing) alerts of Prometheus's API.
fn active_alerts(stack: &Project) -> Result<Vec<serde_json::Value>, String> {
    let alerts = prometheus_api(stack, "/api/v1/alerts")?;
    alerts["data"]["alerts"].as_array().cloned().ok_or_else(|| alerts.to_string())
}

/// One poll a second for the slow conditions (Prometheus evaluates every 15 s): a failed probe waits before
/// it returns.
fn throttle<T>(result: Result<T, String>) -> Result<T, String> {
    if result.is_err() {
        std::thread::sleep(Duration::from_secs(1));
    }
    result
}

/// `n` real client connections to db_postgres, each a `psql` in the container (its socket, the `.env` user and
/// database) that stays connected while its stdin is open.
fn open_connections(stack: &Project, n: u32) -> Vec<std::process::Child> {
    let env = stack.test.read(".env");
    let value = |key: &str, default: &str| {
        env.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or(default).to_string()
    };
    let (user, db) = (value("DB_USERNAME", "postgres"), value("DB_DATABASE", "dify"));
    (0..n)
        .map(|_| {
            std::process::Command::new("docker")
                .args(["exec", "-i", &stack.container("db_postgres"), "psql", "-q", "-U", &user, "-d", &db])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn docker exec psql")
        })
        .collect()
}

/// A python3 in `container` holding `bytes` of memory (written to, so they are resident) until its stdin closes.
fn fill_memory(container: &str, bytes: u64) -> std::process::Child {
    let script = "import sys\nheld = bytearray(b'x') * int(sys.argv[1])\nsys.stdin.read()\n";
    std::process::Command::new("docker")
        .args(["exec", "-i", container, "python3", "-c", script, &bytes.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn docker exec python3")
}

/// Close the connections: end of input ends each psql.
fn close_connections(held: &mut Vec<std::process::Child>) {
    for mut child in held.drain(..) {
        drop(child.stdin.take());
        let status = child.wait().expect("wait for psql");
        assert!(status.success(), "psql: {status}");
    }
}
