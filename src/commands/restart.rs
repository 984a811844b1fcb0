//! `ragctl restart [SERVICE...]`: restart containers, dependencies before dependents; each level is proven
//! ready again (with the same probes as `up`) before the containers that depend on it are restarted.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::cli::RestartArgs;
use crate::docker::DockerClient;
use crate::engine::apply::not_ready_error;
use crate::engine::readiness::wait_ready;
use crate::engine::spec::desired;
use crate::env_file::EnvFile;
use crate::env_vars::compose_lookup;
use crate::error::Error;
use crate::output::Output;
use crate::profile::ReadinessProbe;
use crate::reporter::{Event, reporter};
use crate::settings::Settings;

pub fn run(settings: &Settings, out: &Output, args: &RestartArgs) -> Result<i32, Error> {
    let project = super::project_name(settings).to_string();
    let _lock = super::lock_project(&project, "restart", out)?;
    // The readiness each container declares (container name → probe, timeout), from the same model as `up`.
    let readiness = if args.no_wait {
        HashMap::new()
    } else {
        readiness_of(settings).unwrap_or_else(|e| {
            out.warn(&format!("not waiting for readiness after the restart: the stack could not be loaded ({e})"));
            HashMap::new()
        })
    };
    let rep = reporter(settings.progress, settings.color);
    let runtime = super::runtime()?;
    let count = runtime.block_on(super::interruptible(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        let containers: Vec<_> = docker
            .list_containers(&project)
            .await?
            .into_iter()
            .filter(|c| args.services.is_empty() || args.services.contains(&c.service))
            .collect();
        if let Some(unknown) = args.services.iter().find(|s| !containers.iter().any(|c| &c.service == *s)) {
            return Err(Error::config_hint(
                format!("no container of service `{unknown}` in project `{project}`"),
                "see `ragctl ps` for the project's services",
            ));
        }
        // Removal order reversed: dependencies first.
        let mut levels = super::down::removal_levels(&containers);
        levels.reverse();
        let no_proofs = BTreeSet::new();
        for level in levels {
            futures_util::future::try_join_all(level.iter().map(|c| async {
                rep.event(Event::Stopping { service: c.service.clone(), container: c.name.clone() });
                docker.restart(&c.id, &c.name, args.timeout).await?;
                rep.event(Event::ContainerStarted { service: c.service.clone(), container: c.name.clone() });
                let Some((probe, timeout)) = readiness.get(&c.name) else { return Ok(()) };
                rep.event(Event::Waiting {
                    service: c.service.clone(),
                    container: c.name.clone(),
                    condition: crate::engine::readiness::describe_probe(probe)
                        .trim_start_matches("waiting for ")
                        .to_string(),
                });
                let started = std::time::Instant::now();
                wait_ready(&docker, &c.id, &c.name, probe, *timeout, &no_proofs).await.map_err(|not_ready| {
                    let hint = format!(
                        "see `ragctl logs {0}`; once the cause is fixed, `ragctl restart {0}` proves it ready again",
                        c.service
                    );
                    not_ready_error(&c.service, &c.name, not_ready, &hint)
                })?;
                rep.event(Event::Ready {
                    service: c.service.clone(),
                    container: c.name.clone(),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                });
                Ok::<(), Error>(())
            }))
            .await?;
        }
        Ok(containers.into_iter().map(|c| c.name).collect::<Vec<_>>())
    }));
    rep.finish();
    let restarted = count?;
    if out.is_json() {
        out.json(&serde_json::json!({ "project": project, "restarted": restarted }));
    } else {
        out.info(&format!(
            "project `{project}`: restarted {} containers{}",
            restarted.len(),
            if readiness.is_empty() { "" } else { ", all ready" }
        ));
    }
    Ok(super::OK)
}

/// Container name → its readiness probe and timeout, from the stack model and `.env` (read only).
fn readiness_of(settings: &Settings) -> Result<HashMap<String, (ReadinessProbe, Duration)>, Error> {
    let (_, stack) = super::load_stack(settings)?;
    let doc = EnvFile::load(&settings.env_file)?.doc_or_new();
    let vars = compose_lookup(&doc);
    let desired = desired(&stack, &vars, &settings.project_dir, None)?;
    Ok(desired.containers.into_iter().map(|c| (c.name, (c.ready, c.ready_timeout))).collect())
}
