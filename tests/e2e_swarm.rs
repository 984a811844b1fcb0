//! End-to-end tests of `up`, `ps` and `down` with `--target swarm` on a real single-node swarm, with real
//! PostgreSQL and Redis tasks (the local `ragctl-test/*` images, see tests/images). Each test uses its own
//! project name and free host ports; a [`SwarmProject`] guard removes whatever it created, even when it fails.
//!
//! The swarm is initialised (`docker swarm init --advertise-addr 127.0.0.1`) when the engine has none, and left
//! active: regular containers keep working on a swarm node.
//!
//! Kernels without IPVS cannot route the ingress mesh or virtual IPs; there the tests deploy with
//! `RAGCTL_SWARM_ROUTING=host` (ports on the task's node, DNS round robin), which is what such a swarm needs.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

use common::{CRASHER_PROFILE, Run, Test, docker, remove_labelled, require_docker, require_tool, stack_dir};

const NAMESPACE: &str = "com.docker.stack.namespace";

fn swarm_state() -> String {
    docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).trim().to_string()
}

/// Make this engine a single-node swarm manager, once per test binary. Another process may be doing the same:
/// a failed `init` is fine when the swarm is active afterwards.
fn ensure_swarm() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if swarm_state() == "inactive" {
            let out = Command::new("docker").args(["swarm", "init", "--advertise-addr", "127.0.0.1"]).output().unwrap();
            let state = swarm_state();
            assert!(
                state == "active",
                "docker swarm init failed (state `{state}`): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let state = swarm_state();
        assert_eq!(state, "active", "the engine's swarm is `{state}`; fix it with `docker swarm leave --force`");
    });
}

/// The routing this kernel can carry: the ingress mesh and virtual IPs need IPVS.
fn routing() -> &'static str {
    if std::path::Path::new("/proc/sys/net/ipv4/vs").exists() { "mesh" } else { "host" }
}

/// One test's swarm deployment. Dropping it runs `ragctl down --target swarm --volumes -y`, then removes anything
/// still labelled with the project's namespace.
struct SwarmProject {
    name: String,
    test: Test,
    db_port: u16,
}

impl SwarmProject {
    fn new(test_name: &str) -> SwarmProject {
        SwarmProject::with(test_name, |t| t)
    }

    fn with(test_name: &str, configure: impl FnOnce(Test) -> Test) -> SwarmProject {
        ensure_swarm();
        let name = format!("e2es-{test_name}-{}", std::process::id());
        let (test, ports) = stack_dir(&[]);
        let test = test.env("RAGCTL_SWARM_ROUTING", routing());
        SwarmProject { name, test: configure(test), db_port: ports["EXPOSE_POSTGRES_PORT"] }
    }

    fn ragctl(&self, args: &[&str]) -> Run {
        self.test.run(["-p", &self.name, "--progress", "plain"].iter().chain(args))
    }

    fn filter(&self) -> String {
        format!("label={NAMESPACE}={}", self.name)
    }

    fn list(&self, kind: &str, format: &str) -> Vec<String> {
        let mut names: Vec<String> =
            docker(&[kind, "ls", "--filter", &self.filter(), "--format", format]).lines().map(String::from).collect();
        names.sort();
        names
    }

    /// Swarm service name → object version: an update bumps it, a no-op leaves it.
    fn service_versions(&self) -> BTreeMap<String, String> {
        self.list("service", "{{.Name}}")
            .into_iter()
            .map(|s| {
                let v = docker(&["service", "inspect", "--format", "{{.Version.Index}}", &s]).trim().to_string();
                (s, v)
            })
            .collect()
    }
}

impl Drop for SwarmProject {
    fn drop(&mut self) {
        let down = self.ragctl(&["down", "--target", "swarm", "--volumes", "-y"]);
        if down.status != 0 {
            eprintln!(
                "cleanup: `ragctl down --target swarm` of `{}` exited {}:\n{}",
                self.name, down.status, down.stderr
            );
        }
        let label = format!("{NAMESPACE}={}", self.name);
        remove_labelled("service", &label);
        // Networks and volumes detach only once the tasks' containers are gone.
        let filter = self.filter();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline
            && !Command::new("docker")
                .args(["ps", "-aq", "--filter", &filter])
                .output()
                .map(|o| o.stdout.is_empty())
                .unwrap_or(true)
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        for kind in ["network", "secret", "volume"] {
            remove_labelled(kind, &label);
        }
    }
}

/// The middleware stack's services, by name: the data layer, the runtime profile (sandbox, ssrf_proxy,
/// plugin_daemon) and the default vector store.
const SERVICES: [&str; 6] = ["db_postgres", "plugin_daemon", "redis", "sandbox", "ssrf_proxy", "weaviate"];

#[test]
fn swarm_up_converges_serves_sql_keeps_secrets_out_of_specs_is_idempotent_and_down_removes_it() {
    if !require_docker() {
        return;
    }
    let Some(psql) = require_tool("psql", &[]) else { return };
    let project = SwarmProject::new("main");
    let started = Instant::now();

    let up = project.ragctl(&["up", "--target", "swarm"]);
    up.assert_status(0);
    eprintln!("first up --target swarm: {:?}", started.elapsed());
    let swarm_services: Vec<String> = SERVICES.iter().map(|s| format!("{}_{s}", project.name)).collect();
    assert_eq!(project.list("service", "{{.Name}}"), swarm_services, "one swarm service per stack service");

    // Converged: every service's tasks run (Swarm reports `running` only once the healthcheck passed).
    let ps = project.ragctl(&["ps", "--target", "swarm", "--format", "json"]);
    ps.assert_status(0);
    let rows = ps.json();
    let rows = rows.as_array().unwrap_or_else(|| panic!("ps --format json is not an array:\n{}", ps.stdout));
    let summary: Vec<(String, u64, u64, Vec<String>)> = rows
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap_or_default().to_string(),
                r["replicas_running"].as_u64().unwrap_or(0),
                r["replicas_desired"].as_u64().unwrap_or(0),
                r["tasks"].as_array().unwrap().iter().map(|t| t["state"].as_str().unwrap().to_string()).collect(),
            )
        })
        .collect();
    let mut summary = summary;
    summary.sort();
    let expected: Vec<(String, u64, u64, Vec<String>)> =
        SERVICES.iter().map(|s| (s.to_string(), 1, 1, vec!["running".to_string()])).collect();
    assert_eq!(summary, expected, "every service 1/1 with its task running:\n{}", ps.stdout);
    for s in &swarm_services {
        let task = docker(&["service", "ps", "--filter", "desired-state=running", "--format", "{{.ID}}", s]);
        let container = docker(&["inspect", "--format", "{{.Status.ContainerStatus.ContainerID}}", task.trim()]);
        let health = docker(&["inspect", "--format", "{{.State.Health.Status}}", container.trim()]);
        assert_eq!(health.trim(), "healthy", "{s}'s container passed its healthcheck");
    }

    // The deploy policy as the engine stored it: stateful services placed on managers (no node carries
    // ragctl.data=true here) and updated stop-first with rollback, a restart policy, the profile's healthcheck,
    // and the project's networks are overlays.
    let db_spec = |format: &str| {
        docker(&["service", "inspect", "--format", format, &format!("{}_db_postgres", project.name)]).trim().to_string()
    };
    assert_eq!(db_spec("{{json .Spec.TaskTemplate.Placement.Constraints}}"), r#"["node.role==manager"]"#);
    assert_eq!(db_spec("{{.Spec.UpdateConfig.Order}} {{.Spec.UpdateConfig.FailureAction}}"), "stop-first rollback");
    assert_eq!(db_spec("{{.Spec.TaskTemplate.RestartPolicy.Condition}}"), "any");
    assert!(db_spec("{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck.Test}}").contains("pg_isready"));
    let drivers = docker(&["network", "ls", "--filter", &project.filter(), "--format", "{{.Driver}}"]);
    assert!(!drivers.trim().is_empty() && drivers.lines().all(|d| d == "overlay"), "overlay networks: {drivers}");
    // Dify's isolation in the spec: the sandbox's tasks attach only to the internal ssrf_proxy_network, which
    // ssrf_proxy shares with the project's default network.
    let ssrf_net = format!("{}_ssrf_proxy_network", project.name);
    assert_eq!(docker(&["network", "inspect", "--format", "{{.Internal}}", &ssrf_net]).trim(), "true");
    let net_id = docker(&["network", "inspect", "--format", "{{.Id}}", &ssrf_net]).trim().to_string();
    let default_id =
        docker(&["network", "inspect", "--format", "{{.Id}}", &format!("{}_default", project.name)]).trim().to_string();
    let attached = |service: &str| {
        docker(&[
            "service",
            "inspect",
            "--format",
            "{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}",
            &format!("{}_{service}", project.name),
        ])
        .split_whitespace()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    assert_eq!(attached("sandbox"), std::slice::from_ref(&net_id), "the sandbox is only on the internal network");
    let proxy = attached("ssrf_proxy");
    assert!(proxy.contains(&net_id) && proxy.contains(&default_id), "ssrf_proxy is on both: {proxy:?}");

    // The password reached PostgreSQL through the Swarm secret (POSTGRES_PASSWORD_FILE) and nowhere else.
    let password = project.test.dotenv_value("DB_PASSWORD");
    let select = Command::new(&psql)
        .args(["-h", "127.0.0.1", "-p", &project.db_port.to_string(), "-U", "postgres", "-d", "dify"])
        .args(["-tAc", "select 1"])
        .env("PGPASSWORD", &password)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap();
    assert_eq!(
        (select.status.code(), String::from_utf8_lossy(&select.stdout).trim()),
        (Some(0), "1"),
        "SELECT 1 through the published port with the .env password: {}",
        String::from_utf8_lossy(&select.stderr)
    );
    let db = format!("{}_db_postgres", project.name);
    let env = docker(&["service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}", &db]);
    let secret_file = format!("POSTGRES_PASSWORD_FILE=/run/secrets/{}_db_password", project.name);
    assert!(env.contains(&secret_file), "postgres reads its password from the secret file: {env}");
    // Known gap (README "Swarm"): an image without a `_FILE` contract gets secret values in its environment.
    // Of the middleware stack that is plugin_daemon, which reads DB_PASSWORD; no other spec may hold the value.
    let holding: Vec<&str> = SERVICES
        .iter()
        .copied()
        .filter(|s| docker(&["service", "inspect", &format!("{}_{s}", project.name)]).contains(&password))
        .collect();
    assert_eq!(holding, ["plugin_daemon"], "the DB_PASSWORD value appears in no other service spec");
    assert!(!up.stdout.contains(&password) && !up.stderr.contains(&password), "nor in ragctl's output");
    let secrets = project.list("secret", "{{.Name}}");
    assert_eq!(secrets.len(), 1, "one secret: {secrets:?}");
    assert!(
        secrets[0].starts_with(&format!("{}_db_password_", project.name)),
        "named with a content hash: {secrets:?}"
    );

    // A second up changes nothing: no service is updated.
    let versions = project.service_versions();
    let again = project.ragctl(&["up", "--target", "swarm"]);
    again.assert_status(0);
    assert!(again.stderr.contains("(0 changed, 6 unchanged)"), "second up reports no change:\n{}", again.stderr);
    assert_eq!(project.service_versions(), versions, "no service version moved");
    let dry = project.ragctl(&["up", "--target", "swarm", "--dry-run"]);
    dry.assert_status(0);
    assert!(dry.stdout.contains("nothing to do"), "dry run plans nothing:\n{}", dry.stdout);

    // The container target sees the Swarm deployment instead of tripping over it: `ps` and `down` name it and
    // leave it (and the volumes it mounts) alone, `up` refuses before creating anything.
    let ps = project.ragctl(&["ps"]);
    ps.assert_status(0);
    assert!(ps.stderr.contains("runs on Swarm (6 services)"), "{}", ps.stderr);
    let up_here = project.ragctl(&["up"]);
    up_here.assert_status(1);
    assert!(up_here.stderr.contains("is deployed on Swarm (6 services)"), "{}", up_here.stderr);
    let down_here = project.ragctl(&["down", "--volumes", "-y"]);
    down_here.assert_status(0);
    assert!(down_here.stderr.contains("`ragctl down --target swarm` removes it"), "{}", down_here.stderr);
    assert_eq!(project.service_versions(), versions, "the Swarm services were left alone");
    let volumes = project.list("volume", "{{.Name}}");
    assert_eq!(
        volumes.len(),
        5,
        "and so were their volumes (db, redis, weaviate, sandbox, plugin_daemon): {volumes:?}"
    );

    // Rotating the password creates a new secret, updates only its consumers (db_postgres through the secret,
    // plugin_daemon through its environment) and drops the old secret.
    let env_text = project.test.read(".env").replace(&format!("DB_PASSWORD={password}"), "DB_PASSWORD=rotated0secret");
    std::fs::write(project.test.path().join(".env"), env_text).unwrap();
    let rotated = project.ragctl(&["up", "--target", "swarm"]);
    rotated.assert_status(0);
    assert!(!rotated.stderr.contains("rotated0secret"), "the new value is not printed either");
    let after = project.service_versions();
    for (service, version) in &versions {
        if *service == db || *service == format!("{}_plugin_daemon", project.name) {
            assert_ne!(&after[service], version, "{service} was updated");
        } else {
            assert_eq!(&after[service], version, "{service} was kept");
        }
    }
    let new_secrets = project.list("secret", "{{.Name}}");
    assert_eq!(new_secrets.len(), 1, "the superseded secret is gone: {new_secrets:?}");
    assert_ne!(new_secrets, secrets, "a new secret name for the new content");

    let down = project.ragctl(&["down", "--target", "swarm", "--volumes", "-y"]);
    down.assert_status(0);
    assert_eq!(project.list("service", "{{.Name}}"), Vec::<String>::new(), "no service remains");
    // The manager removed them; the node's own copies of overlay networks go a moment later.
    common::await_condition("no network remains", Duration::from_secs(30), || {
        let left = project.list("network", "{{.Name}}");
        if left.is_empty() { Ok(()) } else { Err(format!("{left:?}")) }
    });
    assert_eq!(project.list("secret", "{{.Name}}"), Vec::<String>::new(), "no secret remains");
    assert_eq!(project.list("volume", "{{.Name}}"), Vec::<String>::new(), "no volume remains");
    assert_eq!(swarm_state(), "active", "the swarm itself is left as it was");
    eprintln!("whole swarm test: {:?}", started.elapsed());
}

#[test]
fn swarm_up_of_an_older_release_than_the_data_was_run_by_is_refused_before_anything_is_deployed() {
    if !require_docker() {
        return;
    }
    let project = SwarmProject::with("release", |t| t.append("ragctl.yaml", "release: 1.13.3\n"));
    let release = |r: &str| {
        let text =
            project.test.read("ragctl.yaml").replace("release: 1.13.3\n", "").replace("release: 1.10.1-fix.1\n", "");
        std::fs::write(project.test.path().join("ragctl.yaml"), format!("{text}release: {r}\n")).unwrap();
    };
    project.ragctl(&["up", "--target", "swarm"]).assert_status(0);
    let versions = project.service_versions();

    release("1.10.1-fix.1");
    let refused = project.ragctl(&["up", "--target", "swarm"]);
    refused.assert_status(1);
    assert!(
        refused.stderr.contains("this data was last run by Dify 1.13.3; release 1.10.1-fix.1 is older"),
        "{}",
        refused.stderr
    );
    assert_eq!(project.service_versions(), versions, "nothing may be updated");
    project.ragctl(&["up", "--target", "swarm", "--allow-downgrade"]).assert_status(0);
    // The record went down with the explicit downgrade: the older release now runs without the flag.
    project.ragctl(&["up", "--target", "swarm"]).assert_status(0);
}

#[test]
fn a_failing_task_fails_swarm_up_with_its_exit_code_and_log_lines() {
    if !require_docker() {
        return;
    }
    let project = SwarmProject::with("crash", |t| t.file("profiles/crasher.yaml", CRASHER_PROFILE));

    let started = Instant::now();
    let up = project.ragctl(&["--profile", "weaviate,crasher", "up", "--target", "swarm"]);
    let elapsed = started.elapsed();

    up.assert_status(1);
    assert!(elapsed < Duration::from_secs(60), "failed on the task's failure, not a convergence timeout: {elapsed:?}");
    assert!(up.stderr.contains("service `crasher`"), "stderr names the service:\n{}", up.stderr);
    assert!(up.stderr.contains("exited with code 3"), "and its exit code:\n{}", up.stderr);
    assert!(up.stderr.contains("boom-marker"), "and its last log line:\n{}", up.stderr);
}

#[test]
fn mesh_routing_on_a_kernel_without_ipvs_stops_before_creating_anything() {
    if !require_docker() {
        return;
    }
    if routing() == "mesh" {
        eprintln!("not applicable: this kernel has IPVS, so the mesh routes (the other tests deploy with it)");
        return;
    }
    let project = SwarmProject::with("no-ipvs", |t| t.env("RAGCTL_SWARM_ROUTING", "mesh"));
    let up = project.ragctl(&["up", "--target", "swarm"]);
    up.assert_status(1);
    assert!(up.stderr.contains("no IPVS"), "says why:\n{}", up.stderr);
    assert!(up.stderr.contains("RAGCTL_SWARM_ROUTING=host"), "and what to do:\n{}", up.stderr);
    for kind in ["service", "network", "secret"] {
        assert_eq!(project.list(kind, "{{.Name}}"), Vec::<String>::new(), "no {kind} was created");
    }
}

#[test]
fn swarm_commands_exit_3_naming_an_unreachable_engine() {
    // Needs no engine: the point is that there is none.
    let endpoint = format!("unix:///nonexistent-{}.sock", std::process::id());
    let test = Test::new().env("DOCKER_HOST", &endpoint);
    for command in
        [&["up", "--target", "swarm"][..], &["ps", "--target", "swarm"], &["down", "--target", "swarm", "-y"]]
    {
        let run = test.run(["-p", "e2es-dead-host"].iter().chain(command));
        run.assert_status(3);
        assert!(run.stderr.contains(&endpoint), "`{}` names {endpoint}:\n{}", command.join(" "), run.stderr);
    }
}
