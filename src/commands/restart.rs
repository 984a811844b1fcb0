//! `ragctl restart [SERVICE...]`: restart containers, dependencies before dependents.

use crate::cli::RestartArgs;
use crate::docker::DockerClient;
use crate::error::Error;
use crate::output::Output;
use crate::reporter::{Event, reporter};
use crate::settings::Settings;

pub fn run(settings: &Settings, out: &Output, args: &RestartArgs) -> Result<i32, Error> {
    let project = super::project_name(settings).to_string();
    let _lock = super::lock_project(&project, "restart", out)?;
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
        for level in levels {
            futures_util::future::try_join_all(level.iter().map(|c| async {
                rep.event(Event::Stopping { service: c.service.clone(), container: c.name.clone() });
                docker.restart(&c.id, &c.name, args.timeout).await?;
                rep.event(Event::ContainerStarted { service: c.service.clone(), container: c.name.clone() });
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
        out.info(&format!("project `{project}`: restarted {} containers", restarted.len()));
    }
    Ok(super::OK)
}
