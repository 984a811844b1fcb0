//! `ragctl down`: stop and remove every container of the project (found by label, whatever the current
//! profiles say) in reverse dependency order, parallel within a level; then its networks; volumes only with
//! `--volumes`, after confirmation.

use std::time::Instant;

use serde::Serialize;

use crate::cli::DownArgs;
use crate::docker::{DockerClient, ObservedContainer};
use crate::error::Error;
use crate::output::Output;
use crate::reporter::{Event, reporter};
use crate::settings::Settings;

#[derive(Serialize)]
struct DownReport {
    project: String,
    containers: Vec<String>,
    networks: Vec<String>,
    volumes: Vec<String>,
    /// Services of a `--target swarm` deployment of the same project, which this `down` leaves alone.
    swarm_services_left: usize,
    elapsed_ms: u64,
}

/// Dependents before their dependencies: level 0 holds containers nothing else (remaining) depends on.
pub fn removal_levels(containers: &[ObservedContainer]) -> Vec<Vec<ObservedContainer>> {
    let mut remaining: Vec<ObservedContainer> = containers.to_vec();
    let mut levels = Vec::new();
    while !remaining.is_empty() {
        let (level, rest): (Vec<_>, Vec<_>) = remaining
            .iter()
            .cloned()
            .partition(|c| !remaining.iter().any(|other| other.depends_on.contains(&c.service)));
        if level.is_empty() {
            // A cycle (cannot come from ragctl, which rejects them): remove the rest together.
            levels.push(rest);
            break;
        }
        levels.push(level);
        remaining = rest;
    }
    levels
}

/// Each container is stopped as soon as every container depending on its service is gone (not when a whole
/// level is): the shutdown chain is as short as the dependency graph allows.
async fn remove_in_dependency_order(
    docker: &DockerClient,
    containers: &[ObservedContainer],
    reporter: &dyn crate::reporter::Reporter,
    timeout: Option<i32>,
    volumes: bool,
) -> Result<(), Error> {
    use tokio::sync::watch;
    let channels: Vec<(watch::Sender<bool>, watch::Receiver<bool>)> =
        containers.iter().map(|_| watch::channel(false)).collect();
    let tasks = containers.iter().enumerate().map(|(i, c)| {
        let dependents: Vec<watch::Receiver<bool>> = containers
            .iter()
            .enumerate()
            .filter(|(j, other)| *j != i && other.depends_on.contains(&c.service))
            .map(|(j, _)| channels[j].1.clone())
            .collect();
        let done = &channels[i].0;
        async move {
            for mut rx in dependents {
                // A dependent that failed to stop drops its sender: stop anyway rather than hang.
                let _ = rx.wait_for(|gone| *gone).await;
            }
            // Dependencies wait only for the stop; removal of the stopped container overlaps with theirs.
            reporter.event(crate::reporter::Event::Stopping { service: c.service.clone(), container: c.name.clone() });
            let stopped = docker.stop(&c.id, &c.name, timeout).await;
            let _ = done.send(true);
            stopped?;
            // --volumes removes the data: also the anonymous volumes (a pg_cluster replica's clone).
            docker.remove(&c.id, &c.name, volumes).await?;
            reporter.event(crate::reporter::Event::Removed { kind: "container".into(), name: c.name.clone() });
            Ok::<(), Error>(())
        }
    });
    futures_util::future::try_join_all(tasks).await.map(|_| ())
}

pub fn run(settings: &Settings, out: &Output, args: &DownArgs) -> Result<i32, Error> {
    let project = super::project_name(settings).to_string();
    if args.volumes {
        super::confirm_volume_removal(settings, &project)?;
    }
    let _lock = super::lock_project(&project, "down", out)?;
    if args.target == crate::cli::DeployTarget::Swarm {
        return super::swarm::down(settings, out, args);
    }
    let started = Instant::now();
    let rep = reporter(settings.progress, settings.color);
    let runtime = super::runtime()?;
    let result = runtime.block_on(super::interruptible(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        // Networks are listed with the containers (one round trip less once they are gone): `down` holds the
        // project lock, so no `up` of this project adds one meanwhile.
        let (containers, networks, swarm_services) = futures_util::join!(
            docker.list_containers(&project),
            docker.list_networks(&project),
            docker.swarm_service_count(&project)
        );
        let (containers, networks) = (containers?, networks?);
        remove_in_dependency_order(&docker, &containers, rep.as_ref(), args.timeout, args.volumes).await?;
        futures_util::future::try_join_all(networks.iter().map(|n| async {
            docker.remove_network(n).await?;
            rep.event(Event::Removed { kind: "network".into(), name: n.clone() });
            Ok::<(), Error>(())
        }))
        .await?;
        // A Swarm deployment of the project mounts the same named volumes: they stay while it runs.
        let volumes =
            if args.volumes && swarm_services == 0 { docker.list_volumes(&project).await? } else { Vec::new() };
        futures_util::future::try_join_all(volumes.iter().map(|v| async {
            docker.remove_volume(v).await?;
            rep.event(Event::Removed { kind: "volume".into(), name: v.clone() });
            Ok::<(), Error>(())
        }))
        .await?;
        Ok(DownReport {
            project: project.clone(),
            containers: containers.into_iter().map(|c| c.name).collect(),
            networks,
            volumes,
            swarm_services_left: swarm_services,
            elapsed_ms: 0,
        })
    }));
    rep.finish();
    let mut report = result?;
    // The data was removed on purpose: `up` may create the volumes empty again.
    if !report.volumes.is_empty() {
        let record = crate::backup::guard::read_record(&settings.project_dir).ok().flatten();
        if record.is_some_and(|r| r.project == project) {
            let path = settings.project_dir.join(crate::backup::guard::RECORD_FILE);
            std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        }
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    if out.is_json() {
        out.json(&report);
    } else {
        out.info(&format!(
            "project `{project}`: removed {} containers, {} networks, {} volumes in {:.1}s{}",
            report.containers.len(),
            report.networks.len(),
            report.volumes.len(),
            started.elapsed().as_secs_f64(),
            if args.volumes { "" } else { " (volumes kept; --volumes removes them)" }
        ));
        if report.swarm_services_left > 0 {
            out.info(&format!(
                "project `{project}` also runs on Swarm ({} services), left alone with the volumes it mounts: `ragctl down --target swarm` removes it",
                report.swarm_services_left
            ));
        }
    }
    Ok(super::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(service: &str, deps: &[&str]) -> ObservedContainer {
        ObservedContainer {
            id: service.into(),
            name: format!("p-{service}-1"),
            service: service.into(),
            number: 1,
            config_hash: String::new(),
            image: String::new(),
            state: "running".into(),
            status: String::new(),
            created: 0,
            ports: vec![],
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            network_ids: vec![],
        }
    }

    #[test]
    fn dependents_are_removed_before_their_dependencies() {
        let all = [c("db", &[]), c("api", &["db", "redis"]), c("redis", &[]), c("nginx", &["api"])];
        let levels: Vec<Vec<String>> =
            removal_levels(&all).into_iter().map(|l| l.into_iter().map(|c| c.service).collect()).collect();
        assert_eq!(levels, vec![vec!["nginx"], vec!["api"], vec!["db", "redis"]]);
    }
}
