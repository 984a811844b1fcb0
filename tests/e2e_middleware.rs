//! The middleware shape as Dify's docker-compose.middleware.yaml, on the real engine with the local test images
//! (`ragctl-test/app-standin:1` stands in for Dify's sandbox and plugin daemon, Debian's squid for ssrf_proxy,
//! the weaviate stand-in for Weaviate): the same services, every one ready, and each of Dify's `EXPOSE_*` keys
//! publishing its service on 127.0.0.1 at the port the key gives.

mod common;

use std::time::Duration;

use common::{Project, await_condition, docker, require_docker};

#[test]
fn the_middleware_shape_runs_difys_services_each_published_on_loopback_at_its_key() {
    if !require_docker() {
        return;
    }
    let project = Project::new("middleware");
    project.up();

    // Dify's middleware services (with the default vector store), every one ready as `ps` reports it.
    let expected = ["db_postgres", "plugin_daemon", "redis", "sandbox", "ssrf_proxy", "weaviate"];
    await_condition("every middleware service running and healthy", Duration::from_secs(90), || {
        let run = project.ragctl(&["ps", "--format", "json"]);
        let json = run.json();
        let rows = json.as_array().ok_or("ps is not an array")?;
        let mut services: Vec<String> =
            rows.iter().map(|c| c["service"].as_str().unwrap_or_default().to_string()).collect::<Vec<_>>();
        services.sort();
        let healthy = rows.iter().all(|c| c["state"] == "running" && c["health"] == "healthy");
        if services == expected && healthy { Ok(()) } else { Err(format!("{json}")) }
    });

    // Each key publishes its service's container port on 127.0.0.1 at the key's host port.
    let published = [
        ("EXPOSE_POSTGRES_PORT", "db_postgres", 5432),
        ("EXPOSE_REDIS_PORT", "redis", 6379),
        ("EXPOSE_SSRF_PROXY_PORT", "ssrf_proxy", 3128),
        ("EXPOSE_SANDBOX_PORT", "ssrf_proxy", 8194),
        ("EXPOSE_PLUGIN_DAEMON_PORT", "plugin_daemon", 5002),
        ("EXPOSE_PLUGIN_DEBUGGING_PORT", "plugin_daemon", 5003),
        ("EXPOSE_WEAVIATE_PORT", "weaviate", 8080),
        ("EXPOSE_WEAVIATE_GRPC_PORT", "weaviate", 50051),
    ];
    for (key, service, target) in published {
        let bound = docker(&["port", &project.container(service), &format!("{target}/tcp")]);
        assert_eq!(
            bound.trim(),
            format!("127.0.0.1:{}", project.ports[key]),
            "{key} publishes {service}:{target} on loopback at its port"
        );
    }
    // The sandbox is published through ssrf_proxy's reverse proxy (it has no host port of its own) and answers.
    let url = format!("http://127.0.0.1:{}/health", project.ports["EXPOSE_SANDBOX_PORT"]);
    let code = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-m", "10", "-w", "%{http_code}", &url])
        .output()
        .expect("run curl");
    assert_eq!(String::from_utf8_lossy(&code.stdout), "200", "the sandbox answers on EXPOSE_SANDBOX_PORT");
    assert_eq!(docker(&["port", &project.container("sandbox")]).trim(), "", "the sandbox publishes nothing itself");
}

/// Dify's middleware `.env` keys of the newest recorded release whose names start with `EXPOSE_`, each with its
/// value in this project (so no test binds a shared default port), PostgreSQL's at `postgres_port`.
fn difys_expose_keys(project: &Project, postgres_port: u16) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("releases");
    let newest = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .max_by_key(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            stem.split(['.', '-']).map_while(|n| n.parse::<u64>().ok()).collect::<Vec<_>>()
        })
        .expect("no release files");
    let doc: serde_json::Value = yaml_serde::from_str(&std::fs::read_to_string(newest).unwrap()).unwrap();
    let keys = doc["middleware"]["dotenv"].as_object().expect("the release records Dify's middleware .env");
    assert!(keys.contains_key("EXPOSE_POSTGRES_PORT"), "Dify's middleware .env names PostgreSQL's port so");
    keys.keys()
        .filter(|k| k.starts_with("EXPOSE_"))
        .filter_map(|k| match k.as_str() {
            "EXPOSE_POSTGRES_PORT" => Some(format!("{k}={postgres_port}\n")),
            _ => project.ports.get(k.as_str()).map(|p| format!("{k}={p}\n")),
        })
        .collect()
}

#[test]
fn an_imported_difys_expose_postgres_port_publishes_postgresql_there() {
    if !require_docker() {
        return;
    }
    let project = Project::new("pgport");
    let imported = common::free_port();
    assert_ne!(imported, project.ports["EXPOSE_POSTGRES_PORT"]);
    let dify_env = difys_expose_keys(&project, imported);
    std::fs::write(project.test.path().join("dify.env"), &dify_env).unwrap();
    project.ragctl(&["env", "import", "dify.env"]).assert_status(0);
    assert_eq!(project.test.dotenv_value("EXPOSE_POSTGRES_PORT"), imported.to_string());
    project.up();

    let bound = docker(&["port", &project.container("db_postgres"), "5432/tcp"]);
    assert_eq!(bound.trim(), format!("127.0.0.1:{imported}"), "PostgreSQL at the imported EXPOSE_POSTGRES_PORT");
    let checks = project.doctor(&["ports.published"]);
    common::assert_check(&checks, "ports.published", "pass", &[], &[]);
}
