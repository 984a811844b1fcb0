//! `ragctl ps` (alias `status`): the project's containers with state, health, ports and uptime.

use serde::Serialize;

use crate::docker::DockerClient;
use crate::error::Error;
use crate::output::Output;
use crate::settings::Settings;

#[derive(Serialize)]
struct Row {
    service: String,
    container: String,
    state: String,
    health: Option<String>,
    exit_code: Option<i64>,
    ports: Vec<String>,
    started_at: Option<String>,
    /// Docker's own summary (`Up 3 minutes (healthy)`).
    status: String,
}

pub fn run(settings: &Settings, out: &Output, args: &crate::cli::PsArgs) -> Result<i32, Error> {
    if args.target == crate::cli::DeployTarget::Swarm {
        return super::swarm::ps(settings, out, args);
    }
    let project = super::project_name(settings);
    let runtime = super::runtime()?;
    let rows = runtime.block_on(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        let containers = docker.list_containers(project).await?;
        let inspected =
            futures_util::future::try_join_all(containers.iter().map(|c| docker.inspect(&c.id, &c.name))).await?;
        let swarm_services = if containers.is_empty() { docker.swarm_service_count(project).await } else { 0 };
        Ok::<_, Error>((
            swarm_services,
            containers
                .into_iter()
                .zip(inspected)
                .map(|(c, i)| Row {
                    service: c.service,
                    container: c.name,
                    exit_code: (!i.running).then_some(i.exit_code),
                    state: c.state,
                    health: i.health,
                    ports: c.ports,
                    started_at: i.started_at.filter(|s| !s.starts_with("0001-")),
                    status: c.status,
                })
                .collect::<Vec<_>>(),
        ))
    })?;
    let (swarm_services, rows) = rows;
    if out.is_json() {
        out.json(&rows);
        return Ok(super::OK);
    }
    let widths = (
        rows.iter().map(|r| r.service.len()).max().unwrap_or(0).max(7),
        rows.iter().map(|r| r.container.len()).max().unwrap_or(0).max(9),
    );
    let mut text = format!(
        "{:<w0$}  {:<w1$}  {:<10}  {:<9}  {:<28}  STATUS\n",
        "SERVICE",
        "CONTAINER",
        "STATE",
        "HEALTH",
        "PORTS",
        w0 = widths.0,
        w1 = widths.1
    );
    for r in &rows {
        text.push_str(&format!(
            "{:<w0$}  {:<w1$}  {:<10}  {:<9}  {:<28}  {}\n",
            r.service,
            r.container,
            r.state,
            r.health.as_deref().unwrap_or("-"),
            if r.ports.is_empty() { "-".to_string() } else { r.ports.join(",") },
            r.status,
            w0 = widths.0,
            w1 = widths.1
        ));
    }
    if rows.is_empty() && swarm_services > 0 {
        out.info(&format!(
            "project `{project}` has no containers; it runs on Swarm ({swarm_services} services): `ragctl ps --target swarm`"
        ));
    } else if rows.is_empty() {
        out.info(&format!("project `{project}` has no containers"));
    } else {
        out.data(&text);
    }
    Ok(super::OK)
}
