//! End-to-end tests of `up`, `down`, `ps`, `logs` against the real Docker engine, with real PostgreSQL and Redis
//! containers (the local `ragctl-test/*` images, see tests/images): each test runs the real binary under its own
//! project name on free host ports, and a [`Project`] guard removes whatever it created, even when it fails.
//!
//! Nothing here sleeps for a fixed time: every wait polls a condition with a deadline.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    CRASHER_PROFILE, LABEL_PROJECT, Project, Test, await_condition, docker, free_port, require_docker, require_tool,
    tcp_engine_endpoint,
};

/// `ragctl ps --format json` as (container, state, health).
fn ps(project: &Project) -> Vec<(String, String, String)> {
    let run = project.ragctl(&["ps", "--format", "json"]);
    run.assert_status(0);
    run.json()
        .as_array()
        .unwrap_or_else(|| panic!("ps --format json is not an array:\n{}", run.stdout))
        .iter()
        .map(|c| {
            let field = |k: &str| c[k].as_str().unwrap_or("").to_string();
            (field("container"), field("state"), field("health"))
        })
        .collect()
}

/// `up` returns once its own readiness probes pass; Docker's healthcheck reports `healthy` on its next
/// interval, so await that rather than assume it.
#[track_caller]
fn await_all_healthy(project: &Project, expected_containers: &[&str]) {
    let expected: Vec<String> = expected_containers.iter().map(|s| format!("{}-{s}", project.name)).collect();
    await_condition("every container running and healthy", Duration::from_secs(60), || {
        let ps = ps(project);
        let names: Vec<&String> = ps.iter().map(|(n, _, _)| n).collect();
        let all = ps.iter().all(|(_, state, health)| state == "running" && health == "healthy");
        if names == expected.iter().collect::<Vec<_>>() && all { Ok(()) } else { Err(format!("{ps:?}")) }
    });
}

/// The middleware stack's containers: the data layer, the runtime profile and the default vector store.
const MIDDLEWARE: [&str; 6] =
    ["db_postgres-1", "plugin_daemon-1", "redis-1", "sandbox-1", "ssrf_proxy-1", "weaviate-1"];

#[test]
fn up_starts_a_healthy_stack_that_answers_sql_and_down_removes_every_trace() {
    if !require_docker() {
        return;
    }
    let Some(psql) = require_tool("psql", &[]) else { return };
    let project = Project::new("up-down");

    project.ragctl(&["up"]).assert_status(0);

    let ps = ps(&project);
    let names: Vec<&str> = ps.iter().map(|(n, _, _)| n.as_str()).collect();
    let expected: Vec<String> = MIDDLEWARE.iter().map(|s| format!("{}-{s}", project.name)).collect();
    assert_eq!(names, expected, "ps lists the middleware containers: {ps:?}");
    assert!(ps.iter().all(|(_, state, _)| state == "running"), "all running right after up: {ps:?}");

    // `up` proved PostgreSQL ready with its wire-level probe (no exec): a client connects at once, before Docker's
    // own healthcheck has run, and the probe's connections left nothing in the server log.
    let select = Command::new(psql)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &project.ports["EXPOSE_POSTGRES_PORT"].to_string(),
            "-U",
            "postgres",
            "-d",
            "dify",
        ])
        .args(["-tAc", "select 1"])
        .env("PGPASSWORD", project.test.dotenv_value("DB_PASSWORD"))
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap();
    assert_eq!(
        (select.status.code(), String::from_utf8_lossy(&select.stdout).trim()),
        (Some(0), "1"),
        "SELECT 1 through the published port: {}",
        String::from_utf8_lossy(&select.stderr)
    );
    let logs = Command::new("docker").args(["logs", &format!("{}-db_postgres-1", project.name)]).output().unwrap();
    let db_log = format!("{}{}", String::from_utf8_lossy(&logs.stdout), String::from_utf8_lossy(&logs.stderr));
    assert!(db_log.contains("ready to accept connections"), "the server log was read: {db_log}");
    assert!(!db_log.contains("could not receive data from client"), "the readiness probe closes cleanly: {db_log}");
    await_all_healthy(&project, &MIDDLEWARE);

    project.ragctl(&["down", "--volumes", "-y"]).assert_status(0);
    assert_eq!(project.container_ids(), BTreeMap::new(), "no container of the project remains");
    assert_eq!(project.networks(), Vec::<String>::new(), "no network of the project remains");
    assert_eq!(project.volumes(), Vec::<String>::new(), "no volume of the project remains");
}

#[test]
fn a_second_up_recreates_nothing_and_dry_run_has_nothing_to_do() {
    if !require_docker() {
        return;
    }
    let project = Project::new("idempotent");
    project.ragctl(&["up"]).assert_status(0);
    let first = project.container_ids();
    assert_eq!(first.len(), MIDDLEWARE.len(), "{first:?}");

    let again = project.ragctl(&["up"]);
    again.assert_status(0);
    assert!(again.stderr.contains("(0 changed, 6 unchanged)"), "second up reports no change:\n{}", again.stderr);
    assert_eq!(project.container_ids(), first, "the same containers, not recreated ones");

    let dry = project.ragctl(&["up", "--dry-run"]);
    dry.assert_status(0);
    assert!(
        dry.stdout.contains("nothing to do") || dry.stdout.lines().all(|l| l.starts_with("keep ")),
        "dry run plans no action:\n{}",
        dry.stdout
    );
    assert_eq!(project.container_ids(), first, "a dry run changes nothing");
}

#[test]
fn stopped_containers_whose_network_was_pruned_are_recreated_by_the_next_up() {
    if !require_docker() {
        return;
    }
    // `docker network prune` removes the network of a stopped stack; Docker then cannot start its containers
    // ("network ... not found"), so `up` must recreate them rather than start them.
    let project = Project::new("pruned-net");
    project.ragctl(&["up"]).assert_status(0);
    let first = project.container_ids();
    let ids: Vec<&str> = first.values().map(String::as_str).collect();
    docker(&[&["stop"][..], &ids].concat());
    for network in project.networks() {
        docker(&["network", "rm", &network]);
    }

    let dry = project.ragctl(&["up", "--dry-run"]);
    dry.assert_status(0);
    assert_eq!(
        dry.stdout.matches("recreate (its network was removed while it was stopped) container").count(),
        MIDDLEWARE.len(),
        "{}",
        dry.stdout
    );
    project.ragctl(&["up"]).assert_status(0);
    let second = project.container_ids();
    assert_eq!(second.keys().collect::<Vec<_>>(), first.keys().collect::<Vec<_>>(), "the same containers by name");
    assert!(second.values().all(|id| !first.values().any(|old| old == id)), "each one recreated: {second:?}");
    assert!(ps(&project).iter().all(|(_, state, _)| state == "running"), "{:?}", ps(&project));
}

#[test]
fn changing_the_redis_port_recreates_only_redis() {
    if !require_docker() {
        return;
    }
    let project = Project::new("redis-port");
    project.ragctl(&["up"]).assert_status(0);
    let before = project.container_ids();

    let new_port = free_port();
    let env = project.test.read(".env");
    std::fs::write(project.test.path().join(".env"), format!("{env}\nEXPOSE_REDIS_PORT={new_port}\n")).unwrap();
    project.ragctl(&["up"]).assert_status(0);
    let after = project.container_ids();

    let redis = format!("{}-redis-1", project.name);
    for (name, id) in &before {
        if *name == redis {
            assert_ne!(after.get(name), Some(id), "redis was recreated");
        } else {
            assert_eq!(after.get(name), Some(id), "{name} was kept");
        }
    }
    assert_eq!(after.len(), before.len());
    let published = docker(&["port", &redis, "6379"]);
    assert_eq!(published.trim(), format!("127.0.0.1:{new_port}"), "redis is published on the new port");
}

#[test]
fn a_port_held_by_another_process_fails_preflight_naming_it_and_creates_nothing() {
    if !require_docker() {
        return;
    }
    let project = Project::new("port-held");
    let holder = TcpListener::bind(("127.0.0.1", project.ports["EXPOSE_POSTGRES_PORT"])).unwrap();

    let up = project.ragctl(&["up"]);

    up.assert_status(1);
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    let me = format!("process `{}` (pid {})", comm.trim_end(), std::process::id());
    assert!(up.stderr.contains(&me), "stderr names the holder {me}:\n{}", up.stderr);
    assert!(
        up.stderr.contains(&format!("127.0.0.1:{}", project.ports["EXPOSE_POSTGRES_PORT"])),
        "and the port:\n{}",
        up.stderr
    );
    assert!(up.stderr.contains("EXPOSE_POSTGRES_PORT"), "and the key that moves it:\n{}", up.stderr);
    assert_eq!(project.container_ids(), BTreeMap::new(), "no container was created");
    assert_eq!(project.networks(), Vec::<String>::new(), "no network was created");
    assert_eq!(project.volumes(), Vec::<String>::new(), "no volume was created");
    drop(holder);
}

#[test]
fn a_missing_image_with_pull_never_fails_naming_it_and_creates_nothing() {
    if !require_docker() {
        return;
    }
    let project = Project::with("no-image", |t| t.env("RAGCTL_IMAGE_REDIS", "ragctl-test/does-not-exist:1"));

    let up = project.ragctl(&["up", "--pull", "never"]);

    up.assert_status(1);
    assert!(up.stderr.contains("ragctl-test/does-not-exist:1"), "stderr names the image:\n{}", up.stderr);
    assert!(up.stderr.contains("--pull never"), "and the flag that forbids pulling:\n{}", up.stderr);
    assert!(!up.stderr.contains("ragctl-test/redis:7"), "only the missing image is named:\n{}", up.stderr);
    assert_eq!(project.container_ids(), BTreeMap::new(), "no container was created");
    assert_eq!(project.networks(), Vec::<String>::new(), "no network was created");
    assert_eq!(project.volumes(), Vec::<String>::new(), "no volume was created");
}

/// Every file under `dir` with its mode and contents, to compare a directory before and after a command.
/// The files here are text; a lossy decoding keeps a failure readable and still tells any two of them apart.
fn snapshot(dir: &std::path::Path) -> BTreeMap<String, (u32, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            if meta.is_dir() {
                pending.push(path);
                files.insert(format!("{rel}/"), (meta.permissions().mode(), String::new()));
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                files.insert(rel, (meta.permissions().mode(), text));
            }
        }
    }
    files
}

#[test]
fn an_up_refused_by_preflight_leaves_the_project_directory_as_it_was() {
    if !require_docker() {
        return;
    }
    // A hand-written .env that lacks the stack's secrets: a successful `up` would generate them there.
    let env = "# mine\nLOG_LEVEL=INFO\n";
    let project = Project::with("refused-port", |t| t.file(".env", env));
    let holder = TcpListener::bind(("127.0.0.1", project.ports["EXPOSE_POSTGRES_PORT"])).unwrap();
    let before = snapshot(project.test.path());

    let up = project.ragctl(&["up"]);

    up.assert_status(1);
    assert!(up.stderr.contains("preflight failed"), "{}", up.stderr);
    assert_eq!(snapshot(project.test.path()), before, "a refused up wrote into the project directory");
    drop(holder);

    let project = Project::with("refused-image", |t| {
        t.file(".env", env).env("RAGCTL_IMAGE_REDIS", "ragctl-test/does-not-exist:1")
    });
    let before = snapshot(project.test.path());
    let up = project.ragctl(&["up", "--pull", "never"]);
    up.assert_status(1);
    assert!(up.stderr.contains("ragctl-test/does-not-exist:1"), "{}", up.stderr);
    assert_eq!(snapshot(project.test.path()), before, "a refused up wrote into the project directory");
}

#[test]
fn a_service_that_exits_fails_up_fast_with_its_exit_code_and_log() {
    if !require_docker() {
        return;
    }
    let project = Project::with("crash", |t| t.file("profiles/crasher.yaml", CRASHER_PROFILE));

    let started = Instant::now();
    let up = project.ragctl(&["--profile", "weaviate,crasher", "up"]);
    let elapsed = started.elapsed();

    up.assert_status(1);
    assert!(elapsed < Duration::from_secs(20), "failed fast, not after a readiness timeout: {elapsed:?}");
    // The container has a restart policy, so Docker may already be restarting it: ragctl then says
    // "is restarting (last exit code 3)" instead of "exited with code 3"; both carry the code.
    assert!(up.stderr.contains("service `crasher`"), "stderr names the service:\n{}", up.stderr);
    assert!(up.stderr.contains("exit code 3"), "and its exit code:\n{}", up.stderr);
    assert!(up.stderr.contains("boom-marker"), "and its last log line:\n{}", up.stderr);
}

#[test]
fn an_unreachable_docker_host_exits_3_naming_the_endpoint() {
    // Needs no engine: the point is that there is none.
    let endpoint = format!("unix:///nonexistent-{}.sock", std::process::id());
    let test = Test::new().env("DOCKER_HOST", &endpoint);
    for command in [&["up"][..], &["ps"], &["down", "-y"]] {
        let run = test.run(["-p", "e2e-dead-host"].iter().chain(command));
        run.assert_status(3);
        assert!(run.stderr.contains(&endpoint), "`{}` names {endpoint}:\n{}", command.join(" "), run.stderr);
    }
}

#[test]
fn through_a_tcp_engine_endpoint_readiness_is_proven_inside_the_containers() {
    if !require_docker() {
        return;
    }
    let Some(psql) = require_tool("psql", &[]) else { return };
    // A remote engine's container addresses are not routable from ragctl's host: PostgreSQL's readiness is then
    // pg_isready in the container, Weaviate's (HTTP) Docker's own healthcheck. The forwarder makes the engine
    // look remote; that the addresses are still reachable here does not matter to the code path.
    let endpoint = tcp_engine_endpoint();
    let project = Project::with("tcp-engine", |t| t.env("DOCKER_HOST", &endpoint));
    project.ragctl(&["up"]).assert_status(0);
    let health = docker(&["inspect", "-f", "{{.State.Health.Status}}", &format!("{}-weaviate-1", project.name)]);
    assert_eq!(health.trim(), "healthy", "HTTP readiness waited for Docker's healthcheck");
    let select = Command::new(psql)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &project.ports["EXPOSE_POSTGRES_PORT"].to_string(),
            "-U",
            "postgres",
            "-d",
            "dify",
        ])
        .args(["-tAc", "select 1"])
        .env("PGPASSWORD", project.test.dotenv_value("DB_PASSWORD"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&select.stdout).trim(), "1", "{}", String::from_utf8_lossy(&select.stderr));
}

/// A service that only becomes ready once the test creates `gate/open` in the project directory, so an `up`
/// is guaranteed to still be waiting when it is interrupted.
const GATED_PROFILE: &str = r#"name: gated
description: ready only when the test opens the gate
services:
  gated:
    image: ragctl-test/base:bookworm
    command: ["sleep", "infinity"]
    volumes: ["./gate:/gate"]
    networks: [data]
    healthcheck: { test: ["CMD", "test", "-e", "/gate/open"], interval: 1s, start_period: 1s }
    ready: { exec: ["test", "-e", "/gate/open"] }
"#;

/// Spawn `up` of the gated stack, wait until `interrupt_when` holds for the project's containers (name → state),
/// send SIGINT and assert the exit code 130 and that every container named after the project carries its label.
fn interrupt_up(project: &Project, what: &str, interrupt_when: impl Fn(&BTreeMap<String, String>) -> bool) {
    let up = project
        .ragctl_command(&["--profile", "weaviate,gated", "up"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    await_condition(what, Duration::from_secs(60), || {
        let states: BTreeMap<String, String> =
            docker(&["ps", "-a", "--filter", &project.label_filter(), "--format", "{{.Names}} {{.State}}"])
                .lines()
                .filter_map(|l| l.split_once(' ').map(|(n, s)| (n.to_string(), s.to_string())))
                .collect();
        if interrupt_when(&states) { Ok(()) } else { Err(format!("{states:?}")) }
    });
    let kill = Command::new("kill").args(["-INT", &up.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let interrupted = up.wait_with_output().unwrap();
    assert_eq!(
        interrupted.status.code(),
        Some(130),
        "interrupted up exits 130:\n{}",
        String::from_utf8_lossy(&interrupted.stderr)
    );

    let prefix = format!("{}-", project.name);
    let all = docker(&["ps", "-a", "--format", &format!("{{{{.Names}}}}\t{{{{.Label \"{LABEL_PROJECT}\"}}}}")]);
    let ours: Vec<&str> = all.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert!(!ours.is_empty(), "the interrupted up had created containers");
    for line in ours {
        assert!(line.ends_with(&format!("\t{}", project.name)), "container carries the project label: {line}");
    }
}

const GATED_STACK: [&str; 7] =
    ["db_postgres-1", "gated-1", "plugin_daemon-1", "redis-1", "sandbox-1", "ssrf_proxy-1", "weaviate-1"];

#[test]
fn sigint_while_up_waits_for_readiness_exits_130_and_a_rerun_converges() {
    if !require_docker() {
        return;
    }
    let project = Project::with("sigint-wait", |t| t.file("profiles/gated.yaml", GATED_PROFILE).file("gate/.keep", ""));

    // The gate is shut, so `up` is still waiting for `gated` when every container runs.
    interrupt_up(&project, "db_postgres, redis, weaviate and gated running", |states| {
        ["db_postgres-1", "gated-1", "redis-1", "weaviate-1"]
            .iter()
            .all(|c| states.get(&format!("{}-{c}", project.name)).is_some_and(|s| s == "running"))
    });

    std::fs::write(project.test.path().join("gate/open"), "").unwrap();
    project.ragctl(&["--profile", "weaviate,gated", "up"]).assert_status(0);
    await_all_healthy(&project, &GATED_STACK);
}

#[test]
fn sigint_while_up_starts_containers_exits_130_and_an_immediate_rerun_converges() {
    if !require_docker() {
        return;
    }
    let project =
        Project::with("sigint-start", |t| t.file("profiles/gated.yaml", GATED_PROFILE).file("gate/.keep", ""));

    interrupt_up(&project, "the first container running", |states| states.values().any(|s| s == "running"));

    std::fs::write(project.test.path().join("gate/open"), "").unwrap();
    project.ragctl(&["--profile", "weaviate,gated", "up"]).assert_status(0);
    await_all_healthy(&project, &GATED_STACK);
}

#[test]
fn pg_cluster_comes_up_with_a_streaming_replica() {
    if !require_docker() {
        return;
    }
    let project = Project::new("pg-cluster");

    project.ragctl(&["--profile", "weaviate,pg_cluster", "up"]).assert_status(0);

    let psql_in = |container: &str, sql: &str| {
        let name = format!("{}-{container}", project.name);
        docker(&["exec", &name, "psql", "-U", "postgres", "-tAc", sql]).trim().to_string()
    };
    let streaming = psql_in("db_postgres-1", "select count(*) from pg_stat_replication where state='streaming'");
    assert!(streaming.parse::<u32>().unwrap() >= 1, "the primary streams to a replica: {streaming}");
    assert_eq!(psql_in("db_postgres_replica-1", "select pg_is_in_recovery()"), "t", "the replica is a standby");

    // The replica clones into an anonymous volume: `down --volumes` removes it with the named ones.
    let replica = format!("{}-db_postgres_replica-1", project.name);
    let format = r#"{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}"#;
    let mounted = docker(&["inspect", "-f", format, &replica]);
    let anonymous: Vec<&str> = mounted.split_whitespace().filter(|v| !v.starts_with(&project.name)).collect();
    assert!(!anonymous.is_empty(), "the replica mounts an anonymous volume: {mounted}");
    project.ragctl(&["--profile", "weaviate,pg_cluster", "down", "--volumes", "-y"]).assert_status(0);
    let left = docker(&["volume", "ls", "-q"]);
    for v in anonymous {
        assert!(!left.lines().any(|l| l == v), "anonymous volume {v} was removed");
    }
}

#[test]
fn docker_compose_sees_the_stack_ragctl_started() {
    if !require_docker() {
        return;
    }
    let Some(compose) = require_tool("docker-compose", &[]) else { return };
    let project = Project::new("compose");
    project.ragctl(&["up"]).assert_status(0);

    let compose_run = |args: &[&str]| {
        let out =
            Command::new(&compose).current_dir(project.test.path()).args(["-p", &project.name]).args(args).output();
        let out = out.unwrap();
        assert!(out.status.success(), "docker-compose {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ps = compose_run(&["ps"]);
    for name in project.container_ids().keys() {
        assert!(ps.contains(name.as_str()), "docker-compose ps lists {name}:\n{ps}");
    }
    let logs = compose_run(&["logs", "--no-color", "redis"]);
    assert!(logs.contains("Ready to accept connections"), "docker-compose logs shows redis's log:\n{logs}");
}

#[test]
fn two_concurrent_ups_on_one_project_are_serialized() {
    if !require_docker() {
        return;
    }
    let project = Project::new("concurrent");
    let spawn = || project.ragctl_command(&["up"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let (first, second) = (spawn(), spawn());
    let runs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()];

    let stderrs: Vec<String> = runs.iter().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect();
    for (out, stderr) in runs.iter().zip(&stderrs) {
        assert_eq!(out.status.code(), Some(0), "both ups succeed:\n{stderr}");
    }
    let waited = stderrs.iter().filter(|s| s.contains("waiting for another ragctl operation on project")).count();
    assert_eq!(waited, 1, "exactly one waited for the other:\n{}", stderrs.join("\n---\n"));
    assert_eq!(project.container_ids().len(), MIDDLEWARE.len(), "one stack, not two half-stacks");
}

#[test]
fn a_symlink_planted_at_the_lock_path_is_never_written_through() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    // No engine needed: `down` takes the lock before it connects, and an unreachable one makes it stop there.
    let t = Test::new().env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let tmp = t.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let t = t.env("TMPDIR", tmp.to_str().unwrap());
    let victim = t.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let project = format!("lock-symlink-{}", std::process::id());
    // What another user on this machine could plant: a link at the old, shared lock path...
    symlink(&victim, tmp.join(format!("ragctl-{project}.lock"))).unwrap();
    // ...and one at the new path, as if the per-user directory had been made by someone who can write in it.
    let own_dir = tmp.join(format!("ragctl-{}", std::fs::metadata(t.path()).unwrap().uid()));
    std::fs::create_dir(&own_dir).unwrap();
    std::fs::set_permissions(&own_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let lock = own_dir.join(format!("{project}.lock"));
    symlink(&victim, &lock).unwrap();

    let down = t.run(["-p", &project, "down"]);

    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "the link's target was written:\n{}",
        down.stderr
    );
    down.assert_status(1);
    assert!(down.stderr.contains("symbolic link"), "it says why it refuses:\n{}", down.stderr);
    assert!(down.stderr.contains(&lock.display().to_string()), "and names the lock file:\n{}", down.stderr);

    // Without the planted link `down` goes on (to the unreachable engine), in a lock file of its own.
    std::fs::remove_file(&lock).unwrap();
    let down = t.run(["-p", &project, "down"]);
    down.assert_status(3);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let meta = std::fs::symlink_metadata(&lock).unwrap();
    assert!(meta.is_file(), "a regular file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "that only its owner can read");
}

const REPLICATED_PROFILE: &str = r#"name: replicated
description: a stateless app stand-in with two replicas
services:
  standin:
    image: ragctl-test/app-standin:1
    shapes: [full]
    stateless: true
    replicas: 2
    networks: [backend]
    healthcheck:
      test: ["CMD", "curl", "-fsS", "http://127.0.0.1:5001/health"]
      interval: 1s
      start_period: 1s
"#;

#[test]
fn a_stateless_service_with_two_replicas_runs_two_healthy_containers() {
    if !require_docker() {
        return;
    }
    let project = Project::with("replicas", |t| t.file("profiles/replicated.yaml", REPLICATED_PROFILE));

    project.ragctl(&["--shape", "full", "--profile", "weaviate,replicated", "up"]).assert_status(0);

    await_all_healthy(
        &project,
        &[
            "db_postgres-1",
            "plugin_daemon-1",
            "redis-1",
            "sandbox-1",
            "ssrf_proxy-1",
            "standin-1",
            "standin-2",
            "weaviate-1",
        ],
    );
}

#[test]
fn logs_into_a_reader_that_closed_early_exits_0() {
    if !require_docker() {
        return;
    }
    let project = Project::new("logs-pipe");
    project.ragctl(&["up"]).assert_status(0);
    let readable = project.ragctl(&["logs", "--tail", "5", "redis"]);
    readable.assert_status(0);
    assert_eq!(readable.stdout.lines().count(), 5, "there is something to write:\n{}", readable.stdout);

    // `ragctl logs | head -c 1`, made deterministic: the reader is gone before the first write.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = project.ragctl_command(&["logs", "--tail", "5", "redis"]).stdout(writer).output().unwrap();

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "a closed stdout ends logs quietly:\n{stderr}");
    assert_eq!(stderr, "", "without an error message");
}

#[test]
fn a_missing_image_that_cannot_be_pulled_fails_before_anything_is_created() {
    if !require_docker() {
        return;
    }
    // No registry is reachable from this machine's engine: the pull itself fails (the default `--pull missing`).
    let project = Project::with("pull-fails", |t| t.env("RAGCTL_IMAGE_REDIS", "127.0.0.1:1/ragctl-test/nope:1"));

    let up = project.ragctl(&["up", "--progress", "plain"]);

    up.assert_status(1);
    assert!(up.stderr.contains("failed to pull image `127.0.0.1:1/ragctl-test/nope:1`"), "{}", up.stderr);
    assert!(
        up.stderr.contains("hint:") && up.stderr.contains("mirror"),
        "the hint names the mirror setting:\n{}",
        up.stderr
    );
    assert_eq!(project.container_ids(), BTreeMap::new(), "no container was created");
    assert_eq!(project.networks(), Vec::<String>::new(), "no network was created");
}

#[test]
fn restart_restarts_only_the_named_service_and_keeps_its_container() {
    if !require_docker() {
        return;
    }
    let project = Project::new("restart");
    project.ragctl(&["up"]).assert_status(0);
    let before = project.container_ids();
    let started = |name: &str| docker(&["inspect", "-f", "{{.State.StartedAt}}", &format!("{}-{name}", project.name)]);
    let (redis_before, db_before) = (started("redis-1"), started("db_postgres-1"));

    let restart = project.ragctl(&["restart", "redis", "--format", "json"]);

    restart.assert_status(0);
    assert_eq!(restart.json()["restarted"], serde_json::json!([format!("{}-redis-1", project.name)]));
    assert_eq!(project.container_ids(), before, "restart keeps the containers");
    assert_ne!(started("redis-1"), redis_before, "redis was restarted");
    assert_eq!(started("db_postgres-1"), db_before, "db_postgres was not");
    project.ragctl(&["restart", "nope"]).assert_status(2);
}

#[test]
fn restart_waits_until_the_restarted_service_is_ready_again_and_fails_when_it_is_not() {
    if !require_docker() {
        return;
    }
    // The gated service proves ready only while `gate/open` exists; its readiness timeout is 2 s.
    let profile = GATED_PROFILE.replace("    ready: {", "    timeout: 2\n    ready: {");
    let project = Project::with("restart-ready", |t| t.file("profiles/gated.yaml", &profile).file("gate/open", ""));
    let gated = ["--profile", "weaviate,gated"];
    project.ragctl(&[&gated[..], &["up"]].concat()).assert_status(0);

    // Gate shut: the restarted container never proves ready, so restart fails naming it (exit 1).
    std::fs::remove_file(project.test.path().join("gate/open")).unwrap();
    let failed = project.ragctl(&[&gated[..], &["restart", "gated", "--timeout", "1"]].concat());
    failed.assert_status(1);
    assert!(failed.stderr.contains("service `gated`"), "names the service:\n{}", failed.stderr);
    assert!(failed.stderr.contains("`ragctl restart gated`"), "and how to retry:\n{}", failed.stderr);

    // --no-wait returns once it is restarted, ready or not.
    project.ragctl(&[&gated[..], &["restart", "gated", "--timeout", "1", "--no-wait"]].concat()).assert_status(0);

    // Gate open: restart returns once the probe passes again.
    std::fs::write(project.test.path().join("gate/open"), "").unwrap();
    let ok = project.ragctl(&[&gated[..], &["restart", "gated", "--timeout", "1"]].concat());
    ok.assert_status(0);
    assert!(ok.stderr.contains("restarted 1 containers, all ready"), "{}", ok.stderr);
}

#[test]
fn up_and_down_report_json_on_stdout_and_progress_as_json_lines_on_stderr() {
    if !require_docker() {
        return;
    }
    let project = Project::new("json");

    let up = project.ragctl(&["up", "--format", "json"]);

    up.assert_status(0);
    let report = up.json();
    assert_eq!(report["project"], project.name.as_str());
    let services: Vec<&str> =
        report["services"].as_array().unwrap().iter().map(|s| s["service"].as_str().unwrap()).collect();
    assert_eq!(services.len(), MIDDLEWARE.len(), "{report}");
    for s in report["services"].as_array().unwrap() {
        assert!(s["ready_ms"].as_u64().is_some(), "every service was waited for: {s}");
        assert_eq!(s["changed"], true);
    }
    assert!(report["secrets_generated"].as_array().unwrap().iter().any(|s| s == "DB_PASSWORD"));
    // --format json makes progress JSON lines on stderr, one object per line.
    for line in up.stderr.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
        assert!(event["event"].is_string(), "{line}");
    }

    let down = project.ragctl(&["down", "--format", "json"]);

    down.assert_status(0);
    let report = down.json();
    assert_eq!(report["containers"].as_array().unwrap().len(), MIDDLEWARE.len(), "{report}");
    assert_eq!(
        report["networks"],
        serde_json::json!([format!("{}_ssrf_proxy_network", project.name), format!("{}_default", project.name)])
    );
    assert_eq!(report["volumes"], serde_json::json!([]), "volumes are kept without --volumes");
}
