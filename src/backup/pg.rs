//! PostgreSQL through Docker exec: the superuser of a container, one-shot queries, row counts, and a throwaway
//! server of the same image for restores and deep verification.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::docker::{DockerClient, HelperContainer};
use crate::error::Error;
use crate::postgres::dump::{self, Superuser};

/// How long a throwaway server may take to initialise and start.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The superuser of a container, from its environment (the image's `POSTGRES_USER`, default `postgres`).
pub fn superuser_of(env: &[String]) -> Superuser {
    let get =
        |k: &str| env.iter().find_map(|e| e.strip_prefix(k).and_then(|v| v.strip_prefix('=')).map(str::to_string));
    Superuser { user: get("POSTGRES_USER").unwrap_or_else(|| "postgres".into()), password: get("POSTGRES_PASSWORD") }
}

fn failed(what: &str, container: &str, stderr: &str, code: i64) -> Error {
    let detail = stderr.trim();
    Error::Deploy {
        message: format!(
            "{what} failed in `{container}` (exit {code}){}",
            if detail.is_empty() { String::new() } else { format!(": {detail}") }
        ),
        hint: None,
    }
}

/// Run a psql query; its lines.
pub async fn query(
    docker: &DockerClient,
    id: &str,
    name: &str,
    su: &Superuser,
    argv: &[String],
) -> Result<Vec<String>, Error> {
    let out = docker.exec_captured(id, name, argv, &su.env()).await?;
    if out.exit_code != 0 {
        return Err(failed("psql", name, &out.stderr, out.exit_code));
    }
    Ok(dump::lines(&out.stdout))
}

pub async fn major(docker: &DockerClient, id: &str, name: &str, su: &Superuser) -> Result<u32, Error> {
    let lines = query(docker, id, name, su, &su.server_version_num()).await?;
    lines
        .first()
        .and_then(|l| crate::postgres::major_of(l))
        .ok_or_else(|| failed("reading server_version_num", name, "", 0))
}

pub async fn row_counts(
    docker: &DockerClient,
    id: &str,
    name: &str,
    su: &Superuser,
    database: &str,
) -> Result<BTreeMap<String, u64>, Error> {
    let out = docker.exec_captured(id, name, &su.row_counts(database), &su.env()).await?;
    if out.exit_code != 0 {
        return Err(failed("counting rows", name, &out.stderr, out.exit_code));
    }
    dump::parse_row_counts(&out.stdout).map_err(|e| failed("counting rows", name, &e, 0))
}

/// The exit of a streamed tool as an error when it failed.
pub fn check_exit(what: &str, container: &str, exit: &crate::docker::StreamedExit) -> Result<(), Error> {
    if exit.exit_code == 0 { Ok(()) } else { Err(failed(what, container, &exit.stderr, exit.exit_code)) }
}

/// Start a server from `spec` and wait until it accepts connections over TCP (its final start, after the
/// image's initialisation, which runs a socket-only server first). Returns the container's id.
pub async fn start_throwaway(docker: &DockerClient, spec: &HelperContainer, su: &Superuser) -> Result<String, Error> {
    let id = docker.create_helper(spec).await?;
    docker.start(&id, &spec.name).await?;
    let started = Instant::now();
    loop {
        let status = docker.inspect(&id, &spec.name).await?;
        if !status.running {
            let log = docker.log_tail(&id, 20).await.join("\n");
            return Err(failed("the throwaway PostgreSQL", &spec.name, &log, status.exit_code));
        }
        if docker
            .exec(&id, &spec.name, &crate::postgres::probe::isready_argv(crate::postgres::PORT, &su.user, "postgres"))
            .await?
            == 0
        {
            return Ok(id);
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(Error::Deploy {
                message: format!("`{}` was not ready within {}s", spec.name, READY_TIMEOUT.as_secs()),
                hint: None,
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
