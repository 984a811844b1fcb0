//! End-to-end tests of the doctor's core checks through the real binary: the project's own files
//! (`config.stack`, `env.file`, `secrets`, `config.hosts`, `config.profiles`, `render.up_to_date`), the engine
//! (`docker.reachable`, `images.present`, `containers.state`, `ports.published`) and the report's contract (marks
//! by locale, `--strict`, `--list-checks`, an unknown id). Each check is shown passing and failing with the hint
//! that fixes it.
//!
//! File checks run in a scratch directory and need no Docker. Engine checks run a real stack of the local test
//! images (tests/images) under a unique project name (`e2e-<test>-<pid>`) on free host ports; the [`Project`]
//! guard runs `ragctl down --volumes -y` and removes whatever is still labelled with the project. Nothing sleeps
//! where a condition can be awaited.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::{
    PORT_KEYS, Project, Run, Test, assert_check, await_condition, checks_of, docker, doctor, free_port, require_docker,
};

/// A scratch project with `.env` from `ragctl secret gen` (mode 0600, every secret strong).
fn with_secrets(test: Test) -> Test {
    test.run(["secret", "gen"]).assert_status(0);
    test
}

fn set_mode(test: &Test, rel: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(test.path().join(rel), std::fs::Permissions::from_mode(mode)).unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// The project's files: no Docker needed.
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn config_stack_passes_on_the_default_project_and_fails_on_exclusive_or_unknown_profiles() {
    let test = Test::new();
    let default = doctor(&test, &[], &["config.stack"]);
    assert_check(
        &default,
        "config.stack",
        "pass",
        &["profiles base, runtime, weaviate (middleware shape): 6 services"],
        &[],
    );

    let exclusive = doctor(&test, &["--profile", "weaviate,qdrant"], &["config.stack"]);
    assert_check(
        &exclusive,
        "config.stack",
        "fail",
        &["profiles `qdrant` and `weaviate` are mutually exclusive"],
        &["fix ragctl.yaml or the profiles", "`ragctl render` shows the same error"],
    );

    let unknown = Test::new().file("ragctl.yaml", "profiles: [weaviate, vectorz]\n");
    let checks = doctor(&unknown, &[], &["config.stack"]);
    assert_check(
        &checks,
        "config.stack",
        "fail",
        &["unknown profile `vectorz`", "available profiles: ", "qdrant", "weaviate"],
        &["fix ragctl.yaml"],
    );
}

#[test]
fn env_file_missing_world_readable_and_malformed_each_with_its_fix() {
    let test = Test::new();
    let missing = doctor(&test, &[], &["env.file"]);
    assert_check(&missing, "env.file", "fail", &["`./.env` does not exist"], &["run `ragctl secret gen`"]);

    let test = with_secrets(test);
    assert_check(&doctor(&test, &[], &["env.file"]), "env.file", "pass", &["parses, mode 0600"], &[]);

    set_mode(&test, ".env", 0o644);
    let readable = doctor(&test, &[], &["env.file"]);
    assert_check(&readable, "env.file", "warn", &["has mode 644: other users can read it"], &["chmod 600 ./.env"]);

    // A YAML habit in a dotenv file: `KEY: value`.
    set_mode(&test, ".env", 0o600);
    let mut env = test.read(".env");
    env.push_str("EXPOSE_POSTGRES_PORT: 5433\n");
    std::fs::write(test.path().join(".env"), &env).unwrap();
    let line = env.lines().count();
    let malformed = doctor(&test, &[], &["env.file"]);
    assert_check(
        &malformed,
        "env.file",
        "fail",
        &[&format!("failed to parse `./.env:{line}:21`"), "unexpected `:` in key"],
        &["fix the line named above in `./.env`"],
    );
}

#[test]
fn secrets_pass_after_secret_gen_and_fail_on_a_public_default_or_a_pair_mismatch() {
    let test = with_secrets(Test::new());
    let generated = doctor(&test, &[], &["secrets"]);
    assert_check(&generated, "secrets", "pass", &["7 secrets set, strong and consistent"], &[]);
    let good = test.read(".env");

    test.set_dotenv("DB_PASSWORD", "difyai123456");
    let public = doctor(&test, &[], &["secrets"]);
    assert_check(
        &public,
        "secrets",
        "fail",
        &["DB_PASSWORD is the reference deployment's publicly known default"],
        &["ragctl secret gen --rotate DB_PASSWORD"],
    );
    assert!(!public["secrets"].detail.contains("WEAVIATE"), "only DB_PASSWORD is wrong: {:#?}", public["secrets"]);

    std::fs::write(test.path().join(".env"), &good).unwrap();
    test.set_dotenv("WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS", "AnotherKeyThatWeaviateWouldAllow0123456789");
    let mismatch = doctor(&test, &[], &["secrets"]);
    assert_check(
        &mismatch,
        "secrets",
        "fail",
        &["WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS differs from WEAVIATE_API_KEY"],
        &["make `WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS` equal in .env"],
    );
}

#[test]
fn config_hosts_names_a_db_host_that_is_no_service_and_lists_the_services() {
    let full = ["--profile", "app,weaviate", "--shape", "full"];
    let test = with_secrets(Test::new());
    let default = doctor(&test, &full, &["config.hosts"]);
    assert_check(&default, "config.hosts", "pass", &["host references name enabled services"], &[]);

    // The classic: DB_HOST=db from an older compose file.
    test.set_dotenv("DB_HOST", "db");
    let misnamed = doctor(&test, &full, &["config.hosts"]);
    assert_check(
        &misnamed,
        "config.hosts",
        "fail",
        &["DB_HOST=db: `db` is not a service of this stack"],
        &["set DB_HOST to one of: ", "db_postgres", "redis", "api", "weaviate"],
    );
}

#[test]
fn config_profiles_fails_when_env_names_another_vector_store_and_passes_when_they_agree() {
    let test = with_secrets(Test::new());
    let good = test.read(".env");
    let fix = "fix COMPOSE_PROFILES / VECTOR_STORE";

    test.set_dotenv("COMPOSE_PROFILES", "qdrant");
    let compose = doctor(&test, &[], &["config.profiles"]);
    assert_check(
        &compose,
        "config.profiles",
        "fail",
        &["COMPOSE_PROFILES=qdrant in .env, but ragctl enables weaviate"],
        &[fix],
    );

    std::fs::write(test.path().join(".env"), &good).unwrap();
    test.set_dotenv("VECTOR_STORE", "qdrant");
    let vector = doctor(&test, &[], &["config.profiles"]);
    assert_check(
        &vector,
        "config.profiles",
        "fail",
        &["VECTOR_STORE=qdrant, but profile `qdrant` is not enabled (enabled: base, runtime, weaviate)"],
        &[fix],
    );

    test.set_dotenv("VECTOR_STORE", "weaviate");
    test.set_dotenv("COMPOSE_PROFILES", "weaviate");
    let agreeing = doctor(&test, &[], &["config.profiles"]);
    assert_check(&agreeing, "config.profiles", "pass", &["enabled: base, runtime, weaviate"], &[]);
}

#[test]
fn render_up_to_date_fails_before_render_and_after_a_hand_edit() {
    let test = Test::new();
    let fix = ["run `ragctl render`"];
    let before = doctor(&test, &[], &["render.up_to_date"]);
    assert_check(&before, "render.up_to_date", "fail", &["out of date or missing: docker-compose.yaml"], &fix);

    test.run(["render"]).assert_status(0);
    let rendered = doctor(&test, &[], &["render.up_to_date"]);
    assert_check(&rendered, "render.up_to_date", "pass", &["rendered files up to date"], &[]);

    let compose = test.read("docker-compose.yaml");
    let edited = compose.replacen("restart: unless-stopped", "restart: always", 1);
    assert_ne!(edited, compose, "docker-compose.yaml changed shape:\n{compose}");
    std::fs::write(test.path().join("docker-compose.yaml"), edited).unwrap();
    let hand_edited = doctor(&test, &[], &["render.up_to_date"]);
    assert_check(&hand_edited, "render.up_to_date", "fail", &["out of date or missing: docker-compose.yaml"], &fix);
}

#[test]
fn an_unreachable_engine_fails_docker_reachable_skips_what_needs_it_and_still_checks_the_files() {
    let test = with_secrets(Test::new()).env("DOCKER_HOST", "unix:///nonexistent.sock");
    let run = test.run(["doctor", "--format", "json"]);
    run.assert_status(1);
    let checks = checks_of(&run);
    assert_check(
        &checks,
        "docker.reachable",
        "fail",
        &["unix:///nonexistent.sock"],
        &["start the engine", "point DOCKER_HOST at a running one"],
    );
    assert_check(&checks, "config.stack", "pass", &["profiles base, runtime, weaviate"], &[]);
    assert_check(&checks, "env.file", "pass", &[], &[]);
    assert_check(&checks, "secrets", "pass", &[], &[]);

    // Every applicable check that stands on the engine is skipped, naming it; what stands on those is skipped too.
    let listed = test.run(["doctor", "--list-checks", "--format", "json"]);
    listed.assert_status(0);
    let defs = listed.json();
    let mut direct = 0;
    for def in defs.as_array().unwrap().iter().filter(|d| d["applies"] == true) {
        let id = def["id"].as_str().unwrap();
        let needs: Vec<&str> = def["needs"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
        if needs.contains(&"docker.reachable") {
            direct += 1;
            assert_check(&checks, id, "skip", &["docker.reachable did not pass"], &[]);
        } else if needs.iter().any(|n| checks.get(*n).is_some_and(|c| c.status == "skip")) {
            assert_check(&checks, id, "skip", &["did not pass"], &[]);
        }
    }
    assert!(direct >= 5, "images, containers, ports, disk and the services need the engine: {checks:#?}");
}

// ---------------------------------------------------------------------------------------------------------------
// The report's contract.
// ---------------------------------------------------------------------------------------------------------------

/// `doctor --check IDS` as text under a locale; LC_ALL and LC_CTYPE are emptied so that LANG decides.
fn doctor_text(test: &Test, lang: &str, ids: &str) -> Run {
    let out = test.command(["doctor", "--check", ids]).env("LC_ALL", "").env("LC_CTYPE", "").env("LANG", lang).output();
    Run::from(out.expect("run ragctl"))
}

#[test]
fn text_marks_are_unicode_under_a_utf8_locale_and_ascii_otherwise() {
    let test = Test::new();
    let utf8 = doctor_text(&test, "C.UTF-8", "config.stack,env.file");
    utf8.assert_status(1);
    assert!(utf8.stdout.contains("✓ config.stack  profiles base, runtime, weaviate"), "{}", utf8.stdout);
    assert!(utf8.stdout.contains("✗ env.file      `./.env` does not exist\n"), "{}", utf8.stdout);
    assert!(utf8.stdout.contains("\n    hint: run `ragctl secret gen`\n"), "{}", utf8.stdout);
    assert!(
        utf8.stdout.ends_with("\n1 problem found (1 failed, 0 warnings, 1 passed, 0 skipped)\n"),
        "{}",
        utf8.stdout
    );

    let ascii = doctor_text(&test, "C", "config.stack,env.file");
    ascii.assert_status(1);
    assert!(ascii.stdout.contains("[ok] config.stack"), "{}", ascii.stdout);
    assert!(ascii.stdout.contains("[FAIL] env.file"), "{}", ascii.stdout);
    assert!(!ascii.stdout.contains('✓') && !ascii.stdout.contains('✗'), "{}", ascii.stdout);

    test.run(["secret", "gen"]).assert_status(0);
    let clean = doctor_text(&test, "C.UTF-8", "config.stack,env.file");
    clean.assert_status(0);
    assert!(clean.stdout.ends_with("\nno problems found (2 checks passed, 0 skipped)\n"), "{}", clean.stdout);
}

#[test]
fn strict_turns_a_warning_only_run_into_exit_1() {
    let test = with_secrets(Test::new());
    set_mode(&test, ".env", 0o644);

    let plain = test.run(["doctor", "--check", "env.file", "--format", "json"]);
    plain.assert_status(0);
    assert_eq!(plain.json()["summary"]["warnings"], 1, "{}", plain.stdout);
    assert_eq!(plain.json()["summary"]["problems"], 0, "{}", plain.stdout);

    let strict = test.run(["doctor", "--check", "env.file", "--strict", "--format", "json"]);
    strict.assert_status(1);
    assert_eq!(strict.json()["summary"]["problems"], 1, "{}", strict.stdout);

    let strict_text = test.run(["doctor", "--check", "env.file", "--strict"]);
    strict_text.assert_status(1);
    assert!(strict_text.stdout.contains("\n1 problem found (0 failed, 1 warning"), "{}", strict_text.stdout);
}

/// The ids of README's "Doctor checks" table: the public list.
fn readme_check_ids() -> Vec<String> {
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let section = readme.split("### Doctor checks").nth(1).expect("README has a `### Doctor checks` section");
    let table = section.split("\n#").next().unwrap();
    table.lines().filter_map(|l| l.strip_prefix("| `")?.split_once('`').map(|(id, _)| id.to_string())).collect()
}

#[test]
fn list_checks_json_lists_every_documented_id_with_whether_it_applies() {
    let test = Test::new();
    let run = test.run(["doctor", "--list-checks", "--format", "json"]);
    run.assert_status(0);
    let defs = run.json();
    let defs = defs.as_array().unwrap_or_else(|| panic!("not a list:\n{}", run.stdout));
    let listed: Vec<String> = defs.iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    let mut documented = readme_check_ids();
    assert!(documented.len() >= 13, "README table not found: {documented:?}");
    let mut sorted = listed.clone();
    sorted.sort();
    documented.sort();
    assert_eq!(sorted, documented, "--list-checks and README's table disagree");

    let applies: BTreeMap<&str, bool> =
        defs.iter().map(|d| (d["id"].as_str().unwrap(), d["applies"].as_bool().expect("applies is a bool"))).collect();
    for id in [
        "docker.reachable",
        "host.disk",
        "host.memory",
        "ports.published",
        "config.stack",
        "env.file",
        "secrets",
        "config.hosts",
        "config.profiles",
        "render.up_to_date",
        "images.present",
        "containers.state",
        "containers.memory",
        "weaviate.ready",
    ] {
        assert_eq!(applies.get(id), Some(&true), "{id} applies to the default project: {applies:?}");
    }
    // Profiles that are not enabled: their checks are listed, but do not apply.
    assert_eq!(applies.get("postgres.replication"), Some(&false), "{applies:?}");
    assert_eq!(applies.get("nginx.config"), Some(&false), "{applies:?}");
}

#[test]
fn an_unknown_check_id_is_a_usage_error_naming_it() {
    let run = Test::new().run(["doctor", "--check", "config.stack,nope"]);
    run.assert_status(2);
    assert!(run.stderr.contains("unknown check `nope`"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: `ragctl doctor --list-checks` lists the check ids"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "no report for a usage error: {}", run.stdout);
}

// ---------------------------------------------------------------------------------------------------------------
// The engine and the project's containers.
// ---------------------------------------------------------------------------------------------------------------

/// `/proc/self/comm`: the name the kernel (and so the doctor) knows this test binary by.
fn own_comm() -> String {
    std::fs::read_to_string("/proc/self/comm").unwrap().trim_end().to_string()
}

/// True when nothing on 127.0.0.1 can bind `port` (a published port is held by the engine's proxy).
fn port_taken(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_err()
}

#[test]
fn ports_published_names_the_process_holding_a_port_moved_in_env_and_passes_once_the_stack_answers() {
    if !require_docker() {
        return;
    }
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let held = holder.local_addr().unwrap().port();
    let project = Project::new("portsenv");
    // The operator moves PostgreSQL in .env onto a port something else listens on; the other ports are moved
    // in .env too, to the ports ragctl.yaml gives them.
    let env: String = project
        .ports
        .iter()
        .map(|(k, p)| format!("{k}={}\n", if *k == "EXPOSE_POSTGRES_PORT" { held } else { *p }))
        .collect();
    let test = &project.test;
    std::fs::write(test.path().join(".env"), env).unwrap();
    set_mode(test, ".env", 0o600);

    let taken = project.doctor(&["ports.published"]);
    assert_check(
        &taken,
        "ports.published",
        "fail",
        &[&format!(
            "127.0.0.1:{held} for `db_postgres` is taken by process `{}` (pid {})",
            own_comm(),
            std::process::id()
        )],
        &["set EXPOSE_POSTGRES_PORT=<free port> in .env"],
    );

    drop(holder);
    project.up();
    let ports: Vec<u16> =
        PORT_KEYS.iter().map(|k| if *k == "EXPOSE_POSTGRES_PORT" { held } else { project.ports[k] }).collect();
    // Published, so not free: a pass means every one answered.
    assert!(ports.iter().all(|p| port_taken(*p)), "the stack publishes {ports:?}");
    let answering = project.doctor(&["ports.published"]);
    assert_check(&answering, "ports.published", "pass", &["8 published ports free or answering"], &[]);
}

#[test]
fn ports_published_names_the_process_holding_the_port_ragctl_yaml_chose() {
    if !require_docker() {
        return;
    }
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let held = holder.local_addr().unwrap().port();
    let project = Project::with_ports("portsyaml", &[("EXPOSE_POSTGRES_PORT", held)], |t| t);

    let taken = project.doctor(&["ports.published"]);
    assert_check(
        &taken,
        "ports.published",
        "fail",
        &[&format!(
            "127.0.0.1:{held} for `db_postgres` is taken by process `{}` (pid {})",
            own_comm(),
            std::process::id()
        )],
        &["set EXPOSE_POSTGRES_PORT=<free port> in .env"],
    );

    drop(holder);
    project.up();
    // Published, so not free: a pass means every one answered.
    assert!(project.ports.values().all(|p| port_taken(*p)), "the stack publishes {:?}", project.ports);
    let answering = project.doctor(&["ports.published"]);
    assert_check(&answering, "ports.published", "pass", &["8 published ports free or answering"], &[]);
}

#[test]
fn containers_state_warns_before_up_passes_after_and_fails_for_a_stopped_service() {
    if !require_docker() {
        return;
    }
    let project = Project::new("state");
    let before = project.doctor(&["containers.state"]);
    assert_check(
        &before,
        "containers.state",
        "warn",
        &[&format!("project `{}` has no containers: the stack is not running", project.name)],
        &["run `ragctl up`"],
    );

    project.up();
    let running = project.doctor(&["containers.state"]);
    assert_check(&running, "containers.state", "pass", &["6 containers running and healthy"], &[]);

    let redis = project.container("redis");
    docker(&["stop", "-t", "1", &redis]);
    let code = docker(&["inspect", "-f", "{{.State.ExitCode}}", &redis]).trim().to_string();
    let stopped = project.doctor(&["containers.state"]);
    assert_check(
        &stopped,
        "containers.state",
        "fail",
        &[&format!("{redis} is exited (exit code {code})")],
        &["ragctl logs redis", "then `ragctl up`"],
    );
    assert!(!stopped["containers.state"].detail.contains("db_postgres"), "{:#?}", stopped["containers.state"]);
}

/// A project profile with one service that prints a marker, runs `after_marker`, then exits 4, forever (restart
/// policy `unless-stopped`).
fn crash_profile(after_marker: &str) -> String {
    format!(
        r#"name: crash
description: a service that exits 4 after starting
services:
  crasher:
    image: ragctl-test/base:bookworm
    command: ["sh", "-c", "echo crash-marker; {after_marker}exit 4"]
    healthcheck:
      test: ["CMD", "true"]
"#
    )
}

/// A project running the crash profile, started with `up --no-wait` (which may itself report the crash: the
/// doctor is what is under test).
fn crash_project(test_name: &str, after_marker: &str) -> Project {
    let profile = crash_profile(after_marker);
    let project = Project::with(test_name, |t| {
        t.append("ragctl.yaml", "profiles: [weaviate, crash]\n").file("profiles/crash.yaml", &profile)
    });
    let _ = project.ragctl(&["up", "--no-wait", "--progress", "plain"]);
    project
}

/// `docker inspect` fields of a container, or why they cannot be read.
fn inspect(container: &str, format: &str) -> Result<String, String> {
    let out = Command::new("docker").args(["inspect", "-f", format, container]).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Wait until PostgreSQL is healthy, so that `down` stops a server that answers SIGTERM rather than one still in
/// its init phase (which waits out the 30 s stop grace period).
fn await_postgres_healthy(project: &Project) {
    let db = project.container("db_postgres");
    await_condition("db_postgres to be healthy", Duration::from_secs(90), || {
        inspect(&db, "{{.State.Health.Status}}").and_then(|h| if h == "healthy" { Ok(()) } else { Err(h) })
    });
}

#[test]
fn containers_state_fails_for_a_crash_looping_service_with_its_exit_code_and_log() {
    if !require_docker() {
        return;
    }
    let project = crash_project("crash", "");
    let crasher = project.container("crasher");
    // Between two starts: the engine's back-off doubles from 100 ms, so after the fourth restart the container
    // stays `restarting` (exit code 4 recorded) for over a second.
    await_condition("the crasher to wait out a restart back-off", Duration::from_secs(60), || {
        let state = inspect(&crasher, "{{.RestartCount}} {{.State.Restarting}}")?;
        match state.split_once(' ') {
            Some((count, "true")) if count.parse::<u32>().is_ok_and(|n| n >= 4) => Ok(()),
            _ => Err(state),
        }
    });

    let looping = project.doctor(&["containers.state"]);
    assert_check(
        &looping,
        "containers.state",
        "fail",
        &[&format!("{crasher} is restarting ("), "last exit code 4)", "\n  | crash-marker"],
        &["ragctl logs crasher"],
    );
    await_postgres_healthy(&project);
}

#[test]
fn containers_state_reports_the_last_exit_code_of_a_crash_looping_service_while_it_runs_again() {
    if !require_docker() {
        return;
    }
    // Each run lives 5 s, so after the first restart the container is running again for seconds.
    let project = crash_project("crashrun", "sleep 5; ");
    let crasher = project.container("crasher");
    await_condition("the crasher to run again after a restart", Duration::from_secs(60), || {
        let state = inspect(&crasher, "{{.RestartCount}} {{.State.Running}}")?;
        match state.split_once(' ') {
            Some((count, "true")) if count.parse::<u32>().is_ok_and(|n| n >= 1) => Ok(()),
            _ => Err(state),
        }
    });

    let looping = project.doctor(&["containers.state"]);
    assert_check(
        &looping,
        "containers.state",
        "fail",
        &[&format!("{crasher} is restarting ("), "last exit code 4)", "\n  | crash-marker"],
        &["ragctl logs crasher"],
    );
    await_postgres_healthy(&project);
}

#[test]
fn images_present_passes_with_local_images_and_names_a_missing_one_and_its_registry() {
    if !require_docker() {
        return;
    }
    let present = Project::new("images");
    assert_check(&present.doctor(&["images.present"]), "images.present", "pass", &["5 images present locally"], &[]);

    // Docker Hub, as the image names no registry: whether it answers depends on this host's network, so the
    // test asks too (the check allows 1.5 s).
    let hub_reachable = std::net::ToSocketAddrs::to_socket_addrs(&("registry-1.docker.io", 443))
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(1500)).is_ok());
    let hub = Project::with("imghub", |t| t.env("RAGCTL_IMAGE_REDIS", "ragctl-test/nope:1"));
    let checks = hub.doctor(&["images.present"]);
    if hub_reachable {
        assert_check(&checks, "images.present", "warn", &["ragctl-test/nope:1"], &["run `ragctl up`"]);
    } else {
        assert_check(
            &checks,
            "images.present",
            "fail",
            &["missing locally and cannot be pulled: ragctl-test/nope:1 (registry registry-1.docker.io unreachable)"],
            &["use a reachable mirror (`registry:` in ragctl.yaml or RAGCTL_REGISTRY)", "`docker load`"],
        );
    }

    // A registry that refuses connections: unreachable here, whatever the network.
    let closed = free_port();
    let image = format!("127.0.0.1:{closed}/ragctl-test/nope:1");
    let refused = Project::with("imgrefused", |t| t.env("RAGCTL_IMAGE_REDIS", &image));
    assert_check(
        &refused.doctor(&["images.present"]),
        "images.present",
        "fail",
        &[&format!("{image} (registry 127.0.0.1:{closed} unreachable)")],
        &["use a reachable mirror"],
    );

    // A registry that answers: `up` will pull, so only a warning.
    let registry = TcpListener::bind("127.0.0.1:0").unwrap();
    let image = format!("127.0.0.1:{}/ragctl-test/nope:1", registry.local_addr().unwrap().port());
    let answering = Project::with("imgpull", |t| t.env("RAGCTL_IMAGE_REDIS", &image));
    assert_check(
        &answering.doctor(&["images.present"]),
        "images.present",
        "warn",
        &[&format!("not present locally (`ragctl up` will pull them): {image}")],
        &["run `ragctl up`, or pull them ahead of time"],
    );
}
