//! End-to-end tests of `ragctl db check` and the `postgres.*` doctor checks against the real Docker engine and a
//! real PostgreSQL 15 (the local `ragctl-test/postgres:15` image, see tests/images), with faults injected: a wrong
//! password, a stopped container, a data directory of another major, a remote engine (the docker exec route).
//! Each test runs under its own project name on free host ports; a [`Project`] guard removes whatever it created.
//!
//! Nothing here sleeps for a fixed time: every wait polls a condition with a deadline.

mod common;

use std::time::Duration;

use common::{Check, Project, Test, await_condition, docker, doctor, free_port, require_docker, tcp_engine_endpoint};

/// `doctor --check ID --format json` on the project, with extra environment: the check's result.
fn doctor_check(project: &Project, id: &str, env: &[(&str, &str)]) -> Check {
    let test = env.iter().fold(test_clone(project), |test, (k, v)| test.env(k, v));
    let mut checks = doctor(&test, &["-p", &project.name], &[id]);
    checks.remove(id).unwrap_or_else(|| panic!("no `{id}` in doctor's report: {checks:#?}"))
}

/// A second `Test` on the project's directory (same ragctl.yaml and .env), for extra environment, leaving the
/// project's own untouched.
fn test_clone(project: &Project) -> Test {
    Test::new().env("RAGCTL_PROJECT_DIR", project.test.path().to_str().unwrap()).with_test_images()
}

#[test]
fn db_check_reports_version_route_and_facts_through_the_published_port_and_docker_exec() {
    if !require_docker() {
        return;
    }
    let project = Project::new("healthy");
    project.ragctl(&["up"]).assert_status(0);

    let run = project.ragctl(&["db", "check"]);
    run.assert_status(0);
    assert!(run.stdout.starts_with("PostgreSQL 15."), "{}", run.stdout);
    assert!(run.stdout.contains("(major 15, image ragctl-test/postgres:15 → supported)"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("route: published port 127.0.0.1:{}\n", project.ports["EXPOSE_POSTGRES_PORT"])),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("data directory: /var/lib/postgresql/data/pgdata (PG_VERSION 15, image major 15)"));
    assert!(run.stdout.contains("extensions: plpgsql"), "{}", run.stdout);
    assert!(run.stdout.contains("connections: ") && run.stdout.contains(" of 100 in use"), "{}", run.stdout);

    let json = project.ragctl(&["db", "check", "--format", "json"]);
    json.assert_status(0);
    let report = json.json();
    let pg = &report["postgres"];
    assert_eq!(report["ok"], true);
    assert_eq!(pg["server"]["major"], 15);
    assert!(pg["server"]["version"].as_str().unwrap().starts_with("PostgreSQL 15."), "{report}");
    assert_eq!(pg["route"]["kind"], "published_port");
    assert_eq!(pg["route"]["address"], format!("127.0.0.1:{}", project.ports["EXPOSE_POSTGRES_PORT"]));
    assert_eq!((pg["image"]["major"].clone(), pg["min_major"].clone()), (15.into(), 14.into()));
    assert_eq!(pg["data_dir"]["pg_version"], 15);
    assert_eq!(pg["connections"]["max"], 100);
    assert!(pg["connections"]["in_use"].as_u64().is_some_and(|n| n >= 1), "at least our own connection: {report}");
    assert_eq!(pg["container"], project.container("db_postgres"));

    for id in ["postgres.version", "postgres.data_dir", "postgres.connections"] {
        let Check { status, detail, .. } = doctor_check(&project, id, &[]);
        assert_eq!(status, "pass", "{id}: {detail}");
    }

    // A remote engine: neither the published port nor the container address is assumed reachable.
    let remote = tcp_engine_endpoint();
    let run = test_clone(&project).env("DOCKER_HOST", &remote).run(["-p", &project.name, "db", "check"]);
    run.assert_status(0);
    assert!(run.stdout.starts_with("PostgreSQL 15."), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("route: docker exec in {}\n", project.container("db_postgres"))),
        "{}",
        run.stdout
    );
}

#[test]
fn a_wrong_password_is_told_apart_and_names_db_password_on_every_route() {
    if !require_docker() {
        return;
    }
    let project = Project::new("password");
    project.ragctl(&["up"]).assert_status(0);
    // The data directory keeps the password it was initialised with; .env now says another.
    project.test.set_dotenv("DB_PASSWORD", "NotTheInitialPassword0123456789ab");

    let run = project.ragctl(&["db", "check"]);
    run.assert_status(1);
    assert!(
        run.stdout.contains(&format!(
            "failed to authenticate as `postgres` to `db_postgres` through published port 127.0.0.1:{}: password authentication failed (SQLSTATE 28P01)",
            project.ports["EXPOSE_POSTGRES_PORT"]
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("hint: DB_PASSWORD in .env is not the password the data directory was initialised with")
    );
    assert!(run.stdout.contains("`ragctl secret list --show`") && run.stdout.contains("ALTER USER"), "{}", run.stdout);
    assert_eq!(
        project.ragctl(&["db", "check", "--format", "json"]).json()["postgres"]["error"]["kind"],
        "wrong_password"
    );

    let remote = tcp_engine_endpoint();
    let run = test_clone(&project).env("DOCKER_HOST", &remote).run(["-p", &project.name, "db", "check"]);
    run.assert_status(1);
    assert!(run.stdout.contains("through docker exec in") && run.stdout.contains("SQLSTATE 28P01"), "{}", run.stdout);

    let Check { status, detail, hint } = doctor_check(&project, "postgres.version", &[]);
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("password authentication failed"), "{detail}");
    assert!(hint.contains("DB_PASSWORD") && hint.contains("ragctl secret list --show"), "{hint}");

    // A missing database is another error, with another fix.
    project.test.set_dotenv("DB_PASSWORD", &project_password(&project));
    project.test.set_dotenv("DB_DATABASE", "nosuchdb");
    let run = project.ragctl(&["db", "check"]);
    run.assert_status(1);
    assert!(run.stdout.contains("failed to open database `nosuchdb` on `db_postgres`"), "{}", run.stdout);
    assert!(run.stdout.contains("SQLSTATE 3D000") && run.stdout.contains("createdb"), "{}", run.stdout);
}

/// The password the container was started with (what `up` generated), from its environment.
fn project_password(project: &Project) -> String {
    let env = docker(&[
        "inspect",
        "--format",
        "{{range .Config.Env}}{{println .}}{{end}}",
        &project.container("db_postgres"),
    ]);
    env.lines()
        .find_map(|l| l.strip_prefix("POSTGRES_PASSWORD="))
        .expect("POSTGRES_PASSWORD in the container")
        .to_string()
}

#[test]
fn a_stopped_or_missing_container_is_a_clear_error_naming_ragctl_up() {
    if !require_docker() {
        return;
    }
    let project = Project::new("stopped");
    project.ragctl(&["up"]).assert_status(0);
    docker(&["stop", &project.container("db_postgres")]);

    let run = project.ragctl(&["db", "check"]);
    run.assert_status(1);
    assert!(
        run.stdout.contains(&format!("container `{}` is exited, not running", project.container("db_postgres"))),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("hint: run `ragctl up` to start it"), "{}", run.stdout);
    let Check { status, hint, .. } = doctor_check(&project, "postgres.version", &[]);
    assert_eq!((status.as_str(), hint.contains("ragctl up")), ("fail", true), "{hint}");

    project.ragctl(&["down", "-y"]).assert_status(0);
    let run = project.ragctl(&["db", "check"]);
    run.assert_status(1);
    assert!(
        run.stdout.contains(&format!("no `db_postgres` container in project `{}`", project.name)),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("hint: run `ragctl up`"), "{}", run.stdout);
}

#[test]
fn a_data_directory_of_another_major_fails_postgres_data_dir_with_the_upgrade_hint() {
    if !require_docker() {
        return;
    }
    let project = Project::new("pgversion");
    project.ragctl(&["up"]).assert_status(0);
    docker(&["exec", &project.container("db_postgres"), "sh", "-c", "echo 14 > \"$PGDATA/PG_VERSION\""]);

    let Check { status, detail, hint } = doctor_check(&project, "postgres.data_dir", &[]);
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("initialised by PostgreSQL 14 but the image `ragctl-test/postgres:15` runs PostgreSQL 15"));
    assert!(hint.contains("pg_upgrade") && hint.contains("ragctl down --volumes"), "{hint}");

    let run = project.ragctl(&["db", "check"]);
    run.assert_status(1);
    assert!(run.stdout.contains("✗ postgres.data_dir:") || run.stdout.contains("[FAIL] postgres.data_dir:"));
}

#[test]
fn pg_cluster_reports_every_replica_streaming_and_in_recovery() {
    if !require_docker() {
        return;
    }
    let project = Project::new("cluster");
    project.ragctl(&["--profile", "weaviate,pg_cluster", "up"]).assert_status(0);

    // `up` waits for the replica to be in recovery; the primary lists its stream a moment later.
    let report = await_condition("db check to pass with the replica streaming", Duration::from_secs(30), || {
        let run = project.ragctl(&["--profile", "weaviate,pg_cluster", "db", "check", "--format", "json"]);
        if run.status == 0 { Ok(run.json()) } else { Err(run.stdout) }
    });
    let replicas = report["postgres"]["replication"]["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 1, "{report}");
    assert_eq!(replicas[0]["container"], project.container("db_postgres_replica"));
    assert_eq!(replicas[0]["in_recovery"], true);
    assert_eq!(replicas[0]["standby"]["state"], "streaming");
    assert!(replicas[0]["standby"]["replay_lag_bytes"].is_i64(), "{report}");

    let run = project.ragctl(&["--profile", "weaviate,pg_cluster", "db", "check"]);
    run.assert_status(0);
    assert!(run.stdout.contains("replication: 1 of 1 replicas streaming\n"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("  {}: streaming, in recovery, replay lag ", project.container("db_postgres_replica"))),
        "{}",
        run.stdout
    );
    let Check { status, detail, .. } =
        doctor_check(&project, "postgres.replication", &[("RAGCTL_PROFILES", "weaviate,pg_cluster")]);
    assert_eq!(status, "pass", "{detail}");
}

#[test]
fn an_unreachable_docker_engine_exits_3() {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let run = Test::new().env("DOCKER_HOST", &endpoint).run(["db", "check"]);
    run.assert_status(3);
    assert!(run.stderr.contains(&format!("failed to connect to the Docker engine at `{endpoint}`")), "{}", run.stderr);
}
