//! The `--target swarm` halves of `up`, `down` and `ps`: connect, call the [`crate::swarm`] capability, and
//! report. Each command file keeps a single early branch to here.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::backup::data_release::{self, Decision};
use crate::cli::{DownArgs, PsArgs, UpArgs};
use crate::docker::DockerClient;
use crate::engine::spec::Desired;
use crate::env_vars::EnvSnapshot;
use crate::error::Error;
use crate::output::Output;
use crate::reporter::reporter;
use crate::settings::Settings;
use crate::stack::Stack;
use crate::swarm::{self, Routing, SwarmServiceOutcome, UpOptions};

#[derive(Serialize)]
struct SwarmUpReport<'a> {
    project: &'a str,
    target: &'static str,
    dry_run: bool,
    routing: Routing,
    files_written: &'a [String],
    secrets_generated: &'a [String],
    plan: Vec<String>,
    services: Vec<SwarmServiceOutcome>,
    elapsed_ms: u64,
}

/// What `up` already did before branching to the swarm (render, `.env` secrets): reported alongside.
pub struct UpPrelude<'a> {
    /// Rendered files that differ from disk (written unless `--dry-run`).
    pub changed_files: &'a [String],
    pub secrets_generated: &'a [String],
    pub started: Instant,
}

/// `ragctl up --target swarm`, from the resolved model `up` built (`desired`) and the `.env` values (`vars`).
pub fn up(
    settings: &Settings,
    out: &Output,
    args: &UpArgs,
    stack: &Stack,
    desired: &Desired,
    vars: &dyn Fn(&str) -> Option<String>,
    prelude: UpPrelude<'_>,
) -> Result<i32, Error> {
    let routing = Routing::from_env(&EnvSnapshot::capture())?;
    let options =
        UpOptions { routing, remove_orphans: args.remove_orphans, dry_run: args.dry_run, wait: !args.no_wait };
    let runtime = super::runtime()?;
    let rep = reporter(settings.progress, settings.color);
    let result = runtime.block_on(super::interruptible(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        let check = if args.dry_run { None } else { release_check(&docker, desired, settings, args).await? };
        let deployment = swarm::up(&docker, stack, desired, vars, options, rep.as_ref()).await?;
        let ready = deployment.outcomes.iter().any(|o| o.service == data_release::SERVICE && o.ready_ms.is_some());
        if let Some((at, recorded, Decision::Raise | Decision::Lower)) = &check
            && ready
        {
            data_release::write_volume(&docker, &desired.project, at, recorded.as_ref(), &settings.release).await?;
        }
        Ok(deployment)
    }));
    rep.finish();
    let deployment = result?;
    let elapsed = prelude.started.elapsed();
    if out.is_json() {
        out.json(&SwarmUpReport {
            project: &stack.project,
            target: "swarm",
            dry_run: args.dry_run,
            routing,
            files_written: if args.dry_run { &[] } else { prelude.changed_files },
            secrets_generated: prelude.secrets_generated,
            plan: deployment.lines,
            services: deployment.outcomes,
            elapsed_ms: elapsed.as_millis() as u64,
        });
    } else if args.dry_run {
        let mut text = String::new();
        for f in prelude.changed_files {
            text.push_str(&format!("write file {f}\n"));
        }
        for line in deployment.lines.iter().filter(|l| out.verbose > 0 || !l.starts_with("keep ")) {
            text.push_str(line);
            text.push('\n');
        }
        if deployment.plan.is_noop() && prelude.changed_files.is_empty() && prelude.secrets_generated.is_empty() {
            text.push_str("nothing to do: the swarm services are up to date\n");
        }
        out.data(&text);
    } else {
        let outcomes = &deployment.outcomes;
        let changed = outcomes.iter().filter(|o| o.changed).count();
        out.info(&format!(
            "project `{}`: {} swarm services converged ({} changed, {} unchanged) in {:.1}s",
            stack.project,
            outcomes.len(),
            changed,
            outcomes.len() - changed,
            elapsed.as_secs_f64()
        ));
    }
    Ok(super::OK)
}

/// The data's release record, read through a helper container on the `db_postgres` volume (when it exists), and
/// the decision; an older selected release is refused before anything is deployed.
async fn release_check(
    docker: &DockerClient,
    desired: &Desired,
    settings: &Settings,
    args: &UpArgs,
) -> Result<Option<(data_release::Location, Option<data_release::ReleaseRecord>, Decision)>, Error> {
    let Some(at) = data_release::location(desired) else { return Ok(None) };
    let recorded = if docker.list_volumes(&desired.project).await?.contains(&at.volume) {
        data_release::read_volume(docker, &desired.project, &at).await?
    } else {
        None
    };
    let decision =
        data_release::decide(recorded.as_ref().map(|r| r.release.as_str()), &settings.release, args.allow_downgrade)?;
    Ok(Some((at, recorded, decision)))
}

#[derive(Serialize)]
struct SwarmDownReport {
    project: String,
    target: &'static str,
    #[serde(flatten)]
    removed: swarm::Removed,
    elapsed_ms: u64,
}

/// `ragctl down --target swarm`. The command layer has already confirmed volume removal and taken the project
/// lock.
pub fn down(settings: &Settings, out: &Output, args: &DownArgs) -> Result<i32, Error> {
    let started = Instant::now();
    let project = settings.project_name.clone();
    let rep = reporter(settings.progress, settings.color);
    let runtime = super::runtime()?;
    let result = runtime.block_on(super::interruptible(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        swarm::down(&docker, &project, args.volumes, rep.as_ref()).await
    }));
    rep.finish();
    let removed = result?;
    if out.is_json() {
        out.json(&SwarmDownReport {
            project: project.clone(),
            target: "swarm",
            removed,
            elapsed_ms: started.elapsed().as_millis() as u64,
        });
    } else {
        out.info(&format!(
            "project `{project}`: removed {} swarm services, {} networks, {} secrets, {} volumes in {:.1}s{}",
            removed.services.len(),
            removed.networks.len(),
            removed.secrets.len(),
            removed.volumes.len(),
            started.elapsed().as_secs_f64(),
            if args.volumes { "" } else { " (volumes kept; --volumes removes them)" }
        ));
    }
    Ok(super::OK)
}

#[derive(Serialize)]
struct SwarmPsRow {
    service: String,
    swarm_service: String,
    image: String,
    replicas_running: u64,
    replicas_desired: u64,
    update_state: Option<String>,
    ports: Vec<String>,
    tasks: Vec<SwarmPsTask>,
}

#[derive(Serialize)]
struct SwarmPsTask {
    name: String,
    state: String,
    desired_state: String,
    node: String,
    error: Option<String>,
    updated_at: String,
}

/// `ragctl ps --target swarm`: each service with running/desired replicas and the states of its current tasks.
pub fn ps(settings: &Settings, out: &Output, _args: &PsArgs) -> Result<i32, Error> {
    let project = settings.project_name.clone();
    let runtime = super::runtime()?;
    let services = runtime.block_on(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        swarm::services_with_tasks(&docker, &project).await
    })?;
    let rows: Vec<SwarmPsRow> = services
        .into_iter()
        .map(|(s, tasks)| SwarmPsRow {
            service: s.service,
            swarm_service: s.name,
            image: s.image,
            replicas_running: s.running,
            replicas_desired: s.replicas,
            update_state: s.update_state,
            ports: s.ports,
            tasks: tasks
                .into_iter()
                .filter(|t| t.desired_state == "running" || t.state == "running")
                .map(|t| SwarmPsTask {
                    name: t.name,
                    state: t.state,
                    desired_state: t.desired_state,
                    node: t.node_id,
                    error: (!t.err.is_empty()).then_some(t.err),
                    updated_at: t.updated_at,
                })
                .collect(),
        })
        .collect();
    if out.is_json() {
        out.json(&rows);
        return Ok(super::OK);
    }
    if rows.is_empty() {
        out.info(&format!("project `{project}` has no swarm services"));
        return Ok(super::OK);
    }
    let w0 = rows.iter().map(|r| r.service.len()).max().unwrap_or(0).max(7);
    let w1 = rows.iter().map(|r| r.swarm_service.len()).max().unwrap_or(0).max(13);
    let mut text = format!("{:<w0$}  {:<w1$}  {:<8}  {:<24}  TASKS\n", "SERVICE", "SWARM SERVICE", "REPLICAS", "PORTS");
    for r in &rows {
        let mut states: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &r.tasks {
            *states.entry(t.state.as_str()).or_default() += 1;
        }
        let tasks: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
        text.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<8}  {:<24}  {}\n",
            r.service,
            r.swarm_service,
            format!("{}/{}", r.replicas_running, r.replicas_desired),
            if r.ports.is_empty() { "-".to_string() } else { r.ports.join(",") },
            if tasks.is_empty() { "-".to_string() } else { tasks.join(", ") }
        ));
    }
    out.data(&text);
    Ok(super::OK)
}
