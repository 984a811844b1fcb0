//! Execute an `up` plan: pull, networks and volumes, then every service concurrently, each waiting for its
//! dependencies' conditions, then proving its own readiness. The first failure stops the rest (fail fast) and
//! is reported with the container's last log lines; whatever was done stays, so a rerun continues.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use futures_util::future::{join_all, try_join_all};
use serde::Serialize;
use tokio::sync::watch;

use super::plan::{ContainerAction, ContainerStep, Plan};
use super::readiness::{NotReady, describe_probe, wait_ready};
use crate::docker::{DockerClient, ObservedContainer};
use crate::error::Error;
use crate::profile::{DependencyCondition, ReadinessProbe};
use crate::reporter::{Event, Reporter};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServiceState {
    Pending,
    Started,
    Ready,
    Completed,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceOutcome {
    pub service: String,
    pub containers: Vec<String>,
    /// Time from `up` start until the service was ready (when it was waited for).
    pub ready_ms: Option<u64>,
    pub changed: bool,
    /// Readiness proofs (`id@StartedAt`) of its containers, for [`crate::ready_cache`].
    #[serde(skip)]
    pub proven: Vec<String>,
}

pub const HINT_RERUN: &str = "fix the cause, then run `ragctl up` again: it keeps what already runs and continues";

/// Pull the plan's images. Runs before anything is created, so a failed pull leaves nothing behind.
pub async fn pull_images(docker: &DockerClient, plan: &Plan, reporter: &dyn Reporter) -> Result<(), Error> {
    let pulls = plan.pull.iter().map(|image| async move {
        reporter.event(Event::PullStarted { image: image.clone() });
        docker
            .pull(image, |layer, current, total| {
                reporter.event(Event::PullProgress { image: image.clone(), layer: layer.to_string(), current, total })
            })
            .await
            .map_err(|e| Error::Deploy {
                message: e.to_string(),
                hint: Some(format!(
                    "check the image name and the registry (set `registry:` in ragctl.yaml or RAGCTL_REGISTRY for a mirror), or provide `{image}` locally and use --pull never"
                )),
            })?;
        reporter.event(Event::PullFinished { image: image.clone() });
        Ok::<(), Error>(())
    });
    try_join_all(pulls).await.map(|_| ())
}

pub async fn remove_containers(
    docker: &DockerClient,
    containers: &[ObservedContainer],
    reporter: &dyn Reporter,
    stop_timeout: Option<i32>,
) -> Result<(), Error> {
    let removals = containers.iter().map(|c| async move {
        reporter.event(Event::Stopping { service: c.service.clone(), container: c.name.clone() });
        docker.stop(&c.id, &c.name, stop_timeout).await?;
        // Scaled-down replicas and orphans are gone for good: so are their anonymous volumes.
        docker.remove(&c.id, &c.name, true).await?;
        reporter.event(Event::Removed { kind: "container".into(), name: c.name.clone() });
        Ok::<(), Error>(())
    });
    try_join_all(removals).await.map(|_| ())
}

/// Apply the plan (images already pulled). `wait`: wait for every service's readiness, not only for those
/// another service waits on.
pub async fn apply_up(
    docker: &DockerClient,
    plan: &Plan,
    reporter: &dyn Reporter,
    wait: bool,
    proven: &BTreeSet<String>,
) -> Result<Vec<ServiceOutcome>, Error> {
    let started = Instant::now();
    // Volumes first: a container created with a named volume that does not exist yet would make Docker create
    // it without the project's labels (and `down --volumes` would not find it). Creating one takes milliseconds.
    try_join_all(plan.create_volumes.iter().map(|v| async move {
        docker.create_volume(&v.name, &v.labels).await?;
        reporter.event(Event::VolumeCreated { name: v.name.clone() });
        Ok::<(), Error>(())
    }))
    .await?;
    remove_containers(docker, &plan.scale_down, reporter, None).await?;
    if plan.remove_orphans {
        remove_containers(docker, &plan.orphans, reporter, None).await?;
    }

    // Networks are created while the containers are: creating a bridge takes the engine ~100 ms of iptables
    // work, and the engine resolves a container's network by name when it starts it. An engine that insists on
    // the network at creation refuses the container; it is then created again once the networks exist.
    let (networks_tx, networks_rx) = watch::channel(None::<bool>);
    let networks = async {
        let result = try_join_all(plan.create_networks.iter().map(|n| async move {
            docker.create_network(&n.name, n.internal, &n.labels).await?;
            reporter.event(Event::NetworkCreated { name: n.name.clone() });
            Ok::<(), Error>(())
        }))
        .await;
        let _ = networks_tx.send(Some(result.is_ok()));
        result.map(|_| ())
    };
    let networks_rx = &networks_rx;

    // Creating does not start anything, so every container is created up front, in parallel: only `start`
    // waits for dependencies, and creation stays off the critical path (compose does the same).
    let creations = plan
        .containers
        .iter()
        .filter(|c| matches!(c.action, ContainerAction::Create | ContainerAction::Recreate { .. }))
        .map(|step| async move {
            if let ContainerAction::Recreate { id, reason } = &step.action {
                reporter.event(Event::Recreating {
                    service: step.service.clone(),
                    container: step.container.clone(),
                    reason: reason.describe().into(),
                });
                docker.stop(id, &step.container, None).await?;
                // The new container starts with fresh anonymous volumes: the old ones would only be left behind.
                docker.remove(id, &step.container, true).await?;
            }
            let request = step.spec.create_request();
            let id = match docker.create_container(&request).await {
                Ok(id) => id,
                Err(refused) if !networks_created(networks_rx).await => return Err(refused),
                Err(_) => docker.create_container(&request).await?,
            };
            if !networks_created(networks_rx).await {
                return Err(Error::Deploy { message: "the project's networks were not created".into(), hint: None });
            }
            docker.connect_extra_networks(&id, &request).await?;
            reporter
                .event(Event::ContainerCreated { service: step.service.clone(), container: step.container.clone() });
            Ok::<_, Error>((step.container.clone(), id))
        });
    let (networks, creations) = futures_util::join!(networks, try_join_all(creations));
    // A network failure is the cause of any container failure it brought: report it first.
    networks?;
    let created: HashMap<String, String> = creations?.into_iter().collect();
    let created = &created;

    let mut services: Vec<&str> = Vec::new();
    for c in &plan.containers {
        if !services.contains(&c.service.as_str()) {
            services.push(&c.service);
        }
    }
    let mut senders: HashMap<&str, watch::Sender<ServiceState>> = HashMap::new();
    let mut receivers: HashMap<&str, watch::Receiver<ServiceState>> = HashMap::new();
    for s in &services {
        let (tx, rx) = watch::channel(ServiceState::Pending);
        senders.insert(s, tx);
        receivers.insert(s, rx);
    }
    // Services someone waits on with `healthy` / `completed_successfully` must prove readiness even without --wait.
    let mut awaited: HashMap<&str, DependencyCondition> = HashMap::new();
    for c in &plan.containers {
        for (dep, cond) in &c.spec.depends_on {
            if *cond != DependencyCondition::Started {
                awaited.insert(dep.as_str(), *cond);
            }
        }
    }

    let first = first_wave(plan);
    let tasks = services.iter().map(|service| {
        let steps: Vec<&ContainerStep> = plan.containers.iter().filter(|c| c.service == *service).collect();
        let tx = &senders[service];
        let receivers = &receivers;
        let must_wait = wait || awaited.contains_key(service);
        let no_deps = steps.first().is_none_or(|s| s.spec.depends_on.is_empty());
        let gate: Vec<watch::Receiver<ServiceState>> = if no_deps && !first.contains(*service) {
            first.iter().filter_map(|f| receivers.get(f.as_str()).cloned()).collect()
        } else {
            Vec::new()
        };
        async move {
            for mut rx in gate {
                let _ = rx.wait_for(|s| *s != ServiceState::Pending).await;
            }
            let result =
                run_service(docker, service, &steps, receivers, tx, must_wait, reporter, started, proven, created)
                    .await;
            if result.is_err() {
                let _ = tx.send(ServiceState::Failed);
            }
            result
        }
    });
    try_join_all(tasks).await
}

/// The services started first: of those that wait for nothing, the ones at the head of the longest chain of
/// services waiting for each other. The other independent services start once these have started:
/// starting containers contends for the engine and the CPU, and the longest chain decides when `up` is done.
fn first_wave(plan: &Plan) -> BTreeSet<String> {
    // chain(s) = 1 + the longest chain among the services that wait for s (started, ready or completed).
    fn chain<'a>(service: &'a str, plan: &'a Plan, seen: &mut Vec<&'a str>) -> usize {
        if seen.contains(&service) {
            return 0; // a cycle; ragctl rejects them before this point
        }
        seen.push(service);
        let longest = plan
            .containers
            .iter()
            .filter(|c| c.spec.depends_on.iter().any(|(d, _)| d == service))
            .map(|c| chain(&c.service, plan, seen))
            .max()
            .unwrap_or(0);
        seen.pop();
        1 + longest
    }
    let roots: BTreeSet<&str> =
        plan.containers.iter().filter(|c| c.spec.depends_on.is_empty()).map(|c| c.service.as_str()).collect();
    let chains: Vec<(&str, usize)> = roots.iter().map(|r| (*r, chain(r, plan, &mut Vec::new()))).collect();
    let longest = chains.iter().map(|(_, n)| *n).max().unwrap_or(0);
    chains.into_iter().filter(|(_, n)| *n == longest).map(|(s, _)| s.to_string()).collect()
}

#[allow(clippy::too_many_arguments)]
async fn run_service(
    docker: &DockerClient,
    service: &str,
    steps: &[&ContainerStep],
    receivers: &HashMap<&str, watch::Receiver<ServiceState>>,
    tx: &watch::Sender<ServiceState>,
    must_wait: bool,
    reporter: &dyn Reporter,
    started: Instant,
    proven: &BTreeSet<String>,
    created: &HashMap<String, String>,
) -> Result<ServiceOutcome, Error> {
    let Some(first) = steps.first() else {
        return Ok(ServiceOutcome {
            service: service.into(),
            containers: vec![],
            ready_ms: None,
            changed: false,
            proven: vec![],
        });
    };
    for (dep, cond) in &first.spec.depends_on {
        let Some(rx) = receivers.get(dep.as_str()) else { continue };
        let mut rx = rx.clone();
        let wanted = match cond {
            DependencyCondition::Started => "started",
            DependencyCondition::Healthy => "healthy",
            DependencyCondition::CompletedSuccessfully => "completed",
        };
        reporter.event(Event::Waiting {
            service: service.into(),
            container: first.container.clone(),
            condition: format!("dependency {dep} {wanted}"),
        });
        loop {
            let state = *rx.borrow_and_update();
            let satisfied = match cond {
                DependencyCondition::Started => {
                    matches!(state, ServiceState::Started | ServiceState::Ready | ServiceState::Completed)
                }
                DependencyCondition::Healthy => state == ServiceState::Ready,
                DependencyCondition::CompletedSuccessfully => state == ServiceState::Completed,
            };
            if satisfied {
                break;
            }
            if state == ServiceState::Failed {
                return Err(Error::Deploy {
                    message: format!("service `{service}` was not started: its dependency `{dep}` failed"),
                    hint: Some(HINT_RERUN.into()),
                });
            }
            if rx.changed().await.is_err() {
                return Err(Error::Deploy {
                    message: format!("service `{service}` was not started: `{dep}` never became {wanted}"),
                    hint: Some(HINT_RERUN.into()),
                });
            }
        }
    }

    let ensure = steps.iter().map(|step| ensure_running(docker, step, reporter, created));
    let ids: Vec<String> = try_join_all(ensure).await?;
    let changed = steps.iter().any(|s| !matches!(s.action, ContainerAction::Keep { .. }));
    let _ = tx.send(ServiceState::Started);

    let mut ready_ms = None;
    let mut keys = Vec::new();
    if must_wait {
        let waits = steps.iter().zip(&ids).map(|(step, id)| async move {
            reporter.event(Event::Waiting {
                service: step.service.clone(),
                container: step.container.clone(),
                condition: describe_probe(&step.spec.ready).trim_start_matches("waiting for ").to_string(),
            });
            match wait_ready(docker, id, &step.container, &step.spec.ready, step.spec.ready_timeout, proven).await {
                Ok(key) => {
                    let elapsed_ms = started.elapsed().as_millis() as u64;
                    reporter.event(Event::Ready {
                        service: step.service.clone(),
                        container: step.container.clone(),
                        elapsed_ms,
                    });
                    Ok((elapsed_ms, key))
                }
                Err(not_ready) => {
                    reporter.event(Event::Failed {
                        service: step.service.clone(),
                        container: step.container.clone(),
                        message: not_ready.message.clone(),
                    });
                    Err(failure(step, not_ready))
                }
            }
        });
        let times: Vec<Result<(u64, String), Error>> = join_all(waits).await;
        let mut max = 0;
        for t in times {
            let (ms, key) = t?;
            max = max.max(ms);
            keys.push(key);
        }
        ready_ms = Some(max);
        let done = if matches!(first.spec.ready, ReadinessProbe::Exit(_)) {
            ServiceState::Completed
        } else {
            ServiceState::Ready
        };
        let _ = tx.send(done);
    }
    Ok(ServiceOutcome {
        service: service.into(),
        containers: steps.iter().map(|s| s.container.clone()).collect(),
        ready_ms,
        changed,
        proven: keys,
    })
}

/// Wait until the plan's networks are created (true) or their creation failed (false).
async fn networks_created(rx: &watch::Receiver<Option<bool>>) -> bool {
    let mut rx = rx.clone();
    matches!(rx.wait_for(Option::is_some).await.as_deref(), Ok(Some(true)))
}

/// Make the step's container run (it was created up front when it needed creating). Returns its id.
async fn ensure_running(
    docker: &DockerClient,
    step: &ContainerStep,
    reporter: &dyn Reporter,
    created: &HashMap<String, String>,
) -> Result<String, Error> {
    let (service, container) = (step.service.clone(), step.container.clone());
    let id = match &step.action {
        ContainerAction::Keep { id } => {
            reporter.event(Event::Unchanged { service, container });
            return Ok(id.clone());
        }
        ContainerAction::Start { id } => id.clone(),
        ContainerAction::Create | ContainerAction::Recreate { .. } => created
            .get(&step.container)
            .cloned()
            .ok_or_else(|| Error::Deploy { message: format!("container `{container}` was not created"), hint: None })?,
    };
    docker.start(&id, &step.container).await?;
    reporter.event(Event::ContainerStarted { service, container });
    Ok(id)
}

fn failure(step: &ContainerStep, not_ready: NotReady) -> Error {
    not_ready_error(&step.service, &step.container, not_ready, HINT_RERUN)
}

/// A container that will not become ready, with its healthcheck log and last log lines, and `hint`.
pub fn not_ready_error(service: &str, container: &str, not_ready: NotReady, hint: &str) -> Error {
    let mut message = format!("service `{service}` (container `{container}`) {}", not_ready.message);
    if !not_ready.health_log.is_empty() {
        message.push_str("\n\nhealthcheck log:");
        for line in not_ready.health_log.iter().rev().take(3).rev() {
            message.push_str(&format!("\n  {line}"));
        }
    }
    if !not_ready.logs.is_empty() {
        message.push_str(&format!("\n\nlast {} log lines of `{container}`:", not_ready.logs.len()));
        for line in &not_ready.logs {
            message.push_str(&format!("\n  {line}"));
        }
    }
    Error::Deploy { message, hint: Some(hint.into()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{Observed, PullPolicy, plan_up};
    use crate::engine::spec::desired;
    use crate::stack::test_support::{embedded_stack, fake_vars};

    fn plan(profiles: &[&str], file: &str) -> Plan {
        let d = desired(&embedded_stack(profiles, file), &fake_vars, std::path::Path::new("/p/demo"), None).unwrap();
        plan_up(&d, &Observed::default(), PullPolicy::Never, false)
    }

    #[test]
    fn the_heads_of_the_longest_readiness_chain_start_first() {
        // Full stack: the data services are waited on by the API, which nginx waits on: they start first.
        let full = first_wave(&plan(&["app", "weaviate"], "project: demo\nshape: full\n"));
        for head in ["db_postgres", "redis", "weaviate"] {
            assert!(full.contains(head), "{head} heads the longest chain: {full:?}");
        }
        let p = plan(&["app", "weaviate"], "project: demo\nshape: full\n");
        let later: Vec<&str> = p
            .containers
            .iter()
            .filter(|c| c.spec.depends_on.is_empty() && !full.contains(&c.service))
            .map(|c| c.service.as_str())
            .collect();
        // sandbox heads a shorter chain (ssrf_proxy waits for it, nothing waits for ssrf_proxy): it starts once
        // the first wave has.
        assert!(later.contains(&"sandbox") && later.contains(&"web"), "{later:?}");
        // Middleware: plugin_daemon waits on the databases and ssrf_proxy on sandbox; weaviate heads no chain.
        let middleware = first_wave(&plan(&["weaviate"], "project: demo\n"));
        assert_eq!(middleware.into_iter().collect::<Vec<_>>(), ["db_postgres", "redis", "sandbox"]);
    }
}
