//! End-to-end proof of the pgvector profile against the real Docker engine and a real PostgreSQL 15 with Debian's
//! pgvector extension (the local `ragctl-test/pgvector:15` image, see tests/images): `up --profile pgvector`
//! starts it, a vector similarity query runs through the credentials `up` wrote to `.env` from the host, `db
//! check` reports the `vector` extension, and `doctor --check pgvector.extension` passes, then fails with its hint
//! once the server no longer has the extension.
//!
//! Runs under its own project name on free host ports; the [`Project`] guard removes whatever it created. Nothing
//! here sleeps for a fixed time.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Project, Test, assert_check, docker, doctor, free_port, require_docker, which};

const PGVECTOR_IMAGE: &str = "ragctl-test/pgvector:15";

/// A value of the project's `.env`, or the profile's default when `up` left the key out.
fn dotenv_or(test: &Test, key: &str, default: &str) -> String {
    let env = test.read(".env");
    env.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or(default).to_string()
}

/// `psql` from the host to `127.0.0.1:port` as the API would connect (user, password and database from `.env`):
/// the host's psql when installed, else the test image's on the host network. Returns (exit ok, stdout, stderr).
fn psql(test: &Test, port: u16, sql: &str) -> (bool, String, String) {
    let user = dotenv_or(test, "PGVECTOR_USER", "postgres");
    let database = dotenv_or(test, "PGVECTOR_DATABASE", "dify");
    let password = test.dotenv_value("PGVECTOR_PASSWORD");
    let port = port.to_string();
    let args = ["-h", "127.0.0.1", "-p", &port, "-U", &user, "-d", &database, "-XAtq", "-v", "ON_ERROR_STOP=1"];
    let mut cmd = match which("psql") {
        Some(host_psql) => {
            let mut cmd = Command::new(host_psql);
            cmd.env("PGPASSWORD", &password);
            cmd
        }
        None => {
            let mut cmd = Command::new("docker");
            let pgpassword = format!("PGPASSWORD={password}");
            cmd.args(["run", "--rm", "-i", "--network", "host", "-e", &pgpassword, PGVECTOR_IMAGE, "psql"]);
            cmd
        }
    };
    // Statements on stdin: psql sends them one by one and prints every result.
    cmd.args(args).args(["-f", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run psql");
    child.stdin.take().expect("psql stdin").write_all(sql.as_bytes()).expect("write to psql");
    let out = child.wait_with_output().expect("wait for psql");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pgvector_answers_similarity_queries_and_doctor_tells_when_the_extension_is_missing() {
    if !require_docker() {
        return;
    }
    let port = free_port();
    // Continues ragctl.yaml's `ports:` map. The fixture runs pgvector on PGVECTOR_IMAGE (common::TEST_IMAGES).
    let project = Project::with("pgvector", |t| t.append("ragctl.yaml", &format!("  EXPOSE_PGVECTOR_PORT: {port}\n")));
    project.ragctl(&["up", "--profile", "pgvector", "--progress", "plain"]).assert_status(0);
    assert_eq!(
        docker(&["inspect", "--format", "{{.Config.Image}}", &project.container("pgvector")]).trim(),
        PGVECTOR_IMAGE
    );

    // Before the API's first use the extension is only available; `db check` says so and passes.
    let run = project.ragctl(&["--profile", "pgvector", "db", "check"]);
    run.assert_status(0);
    assert!(run.stdout.contains("\npgvector:\n  PostgreSQL 15."), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("route: published port 127.0.0.1:{port}")), "{}", run.stdout);
    let report = project.ragctl(&["--profile", "pgvector", "db", "check", "--format", "json"]).json();
    assert_eq!(report["pgvector"]["extensions"]["available"], serde_json::json!(["vector"]), "{report}");

    // What the API does: create the extension, store embeddings, ask for the nearest one.
    let (ok, stdout, stderr) = psql(
        &project.test,
        port,
        "CREATE EXTENSION IF NOT EXISTS vector;
         CREATE TABLE embeddings (id int PRIMARY KEY, embedding vector(3));
         INSERT INTO embeddings VALUES (1, '[1,2,3]'), (2, '[4,5,6]'), (3, '[1,1,1]');
         CREATE INDEX ON embeddings USING hnsw (embedding vector_l2_ops);
         SELECT id FROM embeddings ORDER BY embedding <-> '[3,4,5]' LIMIT 1;
         SELECT id FROM embeddings ORDER BY embedding <-> '[1,1,2]' LIMIT 1;
         SELECT round((embedding <-> '[1,2,3]')::numeric, 3) FROM embeddings WHERE id = 2;",
    );
    assert!(ok, "the similarity query failed:\n{stdout}\n{stderr}");
    // [3,4,5] is nearest to [4,5,6], [1,1,2] to [1,1,1]; |[4,5,6] - [1,2,3]| = √27.
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["2", "3", "5.196"], "{stderr}");

    let run = project.ragctl(&["--profile", "pgvector", "db", "check", "--format", "json"]);
    run.assert_status(0);
    let report = run.json();
    let installed = report["pgvector"]["extensions"]["installed"].as_array().expect("pgvector extensions");
    let vector = installed.iter().find(|e| e["name"] == "vector").unwrap_or_else(|| panic!("no vector: {report}"));
    assert!(vector["version"].as_str().is_some_and(|v| v.starts_with("0.")), "{report}");
    assert_eq!(report["pgvector"]["server"]["major"], 15);
    assert_eq!(report["pgvector"]["image"]["image"], PGVECTOR_IMAGE);
    let text = project.ragctl(&["--profile", "pgvector", "db", "check"]);
    assert!(text.stdout.contains("vector 0."), "{}", text.stdout);

    let global = ["-p", project.name.as_str(), "--profile", "pgvector"];
    let checks = doctor(&project.test, &global, &["pgvector.extension"]);
    assert_check(&checks, "pgvector.extension", "pass", &["vector 0."], &[]);

    // Dropped from the database, the server still has it: the API creates it again on first use.
    let (ok, _, stderr) = psql(&project.test, port, "DROP EXTENSION vector CASCADE;");
    assert!(ok, "{stderr}");
    let checks = doctor(&project.test, &global, &["pgvector.extension"]);
    assert_check(&checks, "pgvector.extension", "pass", &["vector available, created by the API on first use"], &[]);

    // Gone from the server, as in an image without pgvector: the check fails and names the image to run.
    docker(&["exec", &project.container("pgvector"), "sh", "-c", "rm /usr/share/postgresql/15/extension/vector*"]);
    let (ok, _, stderr) = psql(&project.test, port, "CREATE EXTENSION vector;");
    assert!(!ok && stderr.contains("vector"), "CREATE EXTENSION still works: {stderr}");
    let checks = doctor(&project.test, &global, &["pgvector.extension"]);
    assert_check(
        &checks,
        "pgvector.extension",
        "fail",
        &["`pgvector` does not have the extension `vector`"],
        &["run an image that ships it for `pgvector`", "pgvector/pgvector:pg16"],
    );
    let run = project.ragctl(&["--profile", "pgvector", "db", "check"]);
    run.assert_status(1);
    assert!(
        run.stdout.contains("pgvector.extension: `pgvector` does not have the extension `vector`"),
        "{}",
        run.stdout
    );
}
