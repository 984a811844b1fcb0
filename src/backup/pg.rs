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

/// pg_dump of `database` to `sink`, with the row count of every table taken in the dump's own snapshot
/// ([`Superuser::snapshot_dump`]): writes during the backup never make the counts differ from the dump.
pub async fn dump_with_counts(
    docker: &DockerClient,
    id: &str,
    name: &str,
    su: &Superuser,
    database: &str,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
) -> Result<BTreeMap<String, u64>, Error> {
    let mut lines = StderrLines::default();
    let exit = docker
        .exec_stream_both(id, name, &su.snapshot_dump(database), &su.env(), sink, &mut |b| {
            lines.push(b);
            Ok(())
        })
        .await?;
    lines.push(b"\n");
    let what = format!("pg_dump of `{database}`");
    match lines.dump_exit {
        Some(0) if exit == 0 => {}
        Some(code) => return Err(failed(&what, name, &lines.other, code)),
        None => return Err(failed(&what, name, &lines.other, exit)),
    }
    dump::parse_row_counts(&lines.rows).map_err(|e| failed("counting rows", name, &e, 0))
}

/// The stderr of [`Superuser::snapshot_dump`] split into its row counts, pg_dump's exit code and the rest (the
/// tail kept for an error message).
#[derive(Default)]
struct StderrLines {
    pending: Vec<u8>,
    rows: String,
    dump_exit: Option<i64>,
    other: String,
}

impl StderrLines {
    fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        while let Some(at) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=at).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(row) = line.strip_prefix(dump::ROWS_MARK) {
                self.rows.push_str(row);
            } else if let Some(code) = line.strip_prefix(dump::DUMP_EXIT_MARK) {
                self.dump_exit = code.trim().parse().ok();
            } else if !line.trim().is_empty() {
                self.other.push_str(&line);
                if self.other.len() > 16 * 1024 {
                    let cut = self.other.len() - 16 * 1024;
                    let cut = (cut..self.other.len()).find(|i| self.other.is_char_boundary(*i)).unwrap_or(0);
                    self.other.drain(..cut);
                }
            }
        }
    }
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
