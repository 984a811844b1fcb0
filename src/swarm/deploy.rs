//! Applying a plan: networks and secrets, then each service once its dependencies converged, waiting for its
//! tasks; and [`up`], the whole `up --target swarm` from the resolved model to converged services.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::watch;

use super::status::{observe, require_manager};
use super::{
    DATA_NODE_LABEL, HINT_RERUN, IPVS_PROC, POLL_INTERVAL, Routing, ServiceAction, SwarmDesired, SwarmFacts, SwarmPlan,
    SwarmServiceSpec, UpdateOrder, plan_swarm, swarm_desired,
};
use crate::docker::{DockerClient, ObservedTask};
use crate::engine::readiness::FAILURE_LOG_LINES;
use crate::engine::spec::Desired;
use crate::env_vars::RAGCTL_SWARM_ROUTING;
use crate::error::Error;
use crate::profile::ReadinessProbe;
use crate::reporter::{Event, Reporter};
use crate::stack::Stack;

/// Where a service stands, from its update status and tasks.
#[derive(Debug, Clone, PartialEq)]
pub enum Convergence {
    Converged,
    Waiting(String),
    /// A task of the current spec failed (or the update rolled back); `task` names it for its logs.
    Failed {
        message: String,
        task: Option<String>,
    },
}

/// Judge one look at a service. `known` holds the ids of the tasks that existed before this `up` acted: their
/// old failures are history, not news.
pub fn assess(
    spec: &SwarmServiceSpec,
    update_state: Option<&str>,
    update_message: Option<&str>,
    tasks: &[ObservedTask],
    known: &BTreeSet<String>,
) -> Convergence {
    let one_shot = match spec.ready {
        ReadinessProbe::Exit(code) => Some(code),
        _ => None,
    };
    let newest_failed = tasks
        .iter()
        .filter(|t| t.current && !known.contains(&t.id))
        .filter(|t| match t.state.as_str() {
            "failed" | "rejected" => true,
            "complete" => one_shot.is_none_or(|code| t.exit_code.unwrap_or(0) != code),
            _ => false,
        })
        .max_by(|a, b| a.updated_at.cmp(&b.updated_at));
    if let Some(state @ ("rollback_started" | "rollback_paused" | "rollback_completed" | "paused")) = update_state {
        return Convergence::Failed {
            message: format!(
                "update {}: {}",
                state.replace('_', " "),
                update_message.filter(|m| !m.is_empty()).unwrap_or("no message")
            ),
            task: newest_failed.map(|t| t.id.clone()),
        };
    }
    if let Some(t) = newest_failed {
        let what = match (t.state.as_str(), t.exit_code) {
            ("rejected", _) => "was rejected".to_string(),
            (_, Some(code)) => format!("exited with code {code}"),
            (state, None) => state.to_string(),
        };
        let detail = [t.err.as_str(), t.message.as_str()].into_iter().find(|s| !s.is_empty()).unwrap_or("");
        return Convergence::Failed {
            message: format!(
                "task `{}` {what}{}",
                t.name,
                if detail.is_empty() { String::new() } else { format!(": {detail}") }
            ),
            task: Some(t.id.clone()),
        };
    }
    if let Some(code) = one_shot {
        if tasks.iter().any(|t| t.current && t.state == "complete" && t.exit_code.unwrap_or(0) == code) {
            return Convergence::Converged;
        }
        return Convergence::Waiting(format!("its task to exit with code {code}"));
    }
    let wanted: Vec<&ObservedTask> = tasks.iter().filter(|t| t.desired_state == "running").collect();
    let running = wanted.iter().filter(|t| t.current && t.state == "running").count() as u64;
    let updating = update_state == Some("updating");
    if running == spec.replicas && wanted.len() as u64 == spec.replicas && !updating {
        return Convergence::Converged;
    }
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for t in wanted.iter().filter(|t| t.state != "running" || !t.current) {
        *states.entry(t.state.as_str()).or_default() += 1;
    }
    let pending_why = wanted.iter().map(|t| t.err.as_str()).find(|e| !e.is_empty());
    let mut text = format!(
        "{running}/{} tasks running{}",
        spec.replicas,
        if spec.healthcheck.is_some() { " and healthy" } else { "" }
    );
    if !states.is_empty() {
        let list: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
        text.push_str(&format!(" ({})", list.join(", ")));
    }
    if updating {
        text.push_str(", rolling update in progress");
    }
    if let Some(why) = pending_why {
        text.push_str(&format!(": {why}"));
    }
    Convergence::Waiting(text)
}

#[derive(Debug, Clone, Serialize)]
pub struct SwarmServiceOutcome {
    pub service: String,
    pub swarm_service: String,
    pub replicas: u64,
    pub changed: bool,
    pub ready_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServiceState {
    Pending,
    Ready,
    Failed,
}

/// Apply the plan: networks and secrets, then each service once its dependencies have converged (as `up` starts
/// containers), then wait for it to converge. The first failure stops the rest and names the failed task with
/// its last log lines. Superseded secrets and (with `--remove-orphans`) orphan services go last.
pub async fn deploy(
    docker: &DockerClient,
    desired: &SwarmDesired,
    plan: &SwarmPlan,
    reporter: &dyn Reporter,
    wait: bool,
) -> Result<Vec<SwarmServiceOutcome>, Error> {
    let started = Instant::now();
    futures_util::future::try_join_all(plan.create_networks.iter().map(|n| async move {
        docker.create_overlay_network(&n.name, n.internal, &n.labels).await?;
        reporter.event(Event::NetworkCreated { name: n.name.clone() });
        Ok::<(), Error>(())
    }))
    .await?;
    futures_util::future::try_join_all(desired.secrets.iter().filter(|s| plan.create_secrets.contains(&s.name)).map(
        |s| async move {
            docker.create_secret(&s.name, &s.labels, &s.value).await?;
            reporter.event(Event::Note { message: format!("secret {} created", s.name) });
            Ok::<(), Error>(())
        },
    ))
    .await?;

    let mut senders: HashMap<&str, watch::Sender<ServiceState>> = HashMap::new();
    let mut receivers: HashMap<&str, watch::Receiver<ServiceState>> = HashMap::new();
    for (spec, _) in &plan.services {
        let (tx, rx) = watch::channel(ServiceState::Pending);
        senders.insert(&spec.service, tx);
        receivers.insert(&spec.service, rx);
    }
    let tasks = plan.services.iter().map(|(spec, action)| {
        let tx = &senders[spec.service.as_str()];
        let receivers = &receivers;
        async move {
            let result = deploy_service(docker, spec, action, receivers, reporter, wait, started).await;
            let _ = tx.send(if result.is_ok() { ServiceState::Ready } else { ServiceState::Failed });
            result
        }
    });
    let outcomes = futures_util::future::try_join_all(tasks).await?;

    if plan.remove_orphans {
        for o in &plan.orphans {
            docker.remove_service(&o.name).await?;
            reporter.event(Event::Removed { kind: "service".into(), name: o.name.clone() });
        }
    } else {
        for o in &plan.orphans {
            reporter.event(Event::Note {
                message: format!("service `{}` is not in the stack (remove it with --remove-orphans)", o.name),
            });
        }
    }
    for s in &plan.stale_secrets {
        // An orphan service kept running may still use it: keep it then, a later run removes it.
        match docker.remove_secret(s).await {
            Ok(()) => reporter.event(Event::Removed { kind: "secret".into(), name: s.clone() }),
            Err(e) => reporter.event(Event::Note { message: format!("kept secret {s}: {e}") }),
        }
    }
    Ok(outcomes)
}

async fn deploy_service(
    docker: &DockerClient,
    spec: &SwarmServiceSpec,
    action: &ServiceAction,
    receivers: &HashMap<&str, watch::Receiver<ServiceState>>,
    reporter: &dyn Reporter,
    wait: bool,
    started: Instant,
) -> Result<SwarmServiceOutcome, Error> {
    let outcome = |changed, ready_ms| SwarmServiceOutcome {
        service: spec.service.clone(),
        swarm_service: spec.name.clone(),
        replicas: spec.replicas,
        changed,
        ready_ms,
    };
    if wait {
        for (dep, _) in &spec.depends_on {
            let Some(rx) = receivers.get(dep.as_str()) else { continue };
            let mut rx = rx.clone();
            reporter.event(Event::Waiting {
                service: spec.service.clone(),
                container: spec.name.clone(),
                condition: format!("dependency {dep} converged"),
            });
            let state = *rx.wait_for(|s| *s != ServiceState::Pending).await.map_err(|_| Error::Deploy {
                message: format!("service `{}` was not deployed: `{dep}` never converged", spec.service),
                hint: Some(HINT_RERUN.into()),
            })?;
            if state == ServiceState::Failed {
                return Err(Error::Deploy {
                    message: format!("service `{}` was not deployed: its dependency `{dep}` failed", spec.service),
                    hint: Some(HINT_RERUN.into()),
                });
            }
        }
    }
    let known: BTreeSet<String> = match action {
        ServiceAction::Create => BTreeSet::new(),
        _ => docker.swarm_service_tasks(&spec.name).await?.1.into_iter().map(|t| t.id).collect(),
    };
    let changed = match action {
        ServiceAction::Create => {
            docker.create_service(&spec.create_request()).await?;
            reporter.event(Event::ContainerCreated { service: spec.service.clone(), container: spec.name.clone() });
            true
        }
        ServiceAction::Update { id, version } => {
            reporter.event(Event::Recreating {
                service: spec.service.clone(),
                container: spec.name.clone(),
                reason: format!(
                    "configuration changed, rolling update ({})",
                    if spec.update_order == UpdateOrder::StartFirst { "start-first" } else { "stop-first" }
                ),
            });
            docker.update_service(id, *version, &spec.create_request()).await?;
            true
        }
        ServiceAction::Keep { .. } => {
            reporter.event(Event::Unchanged { service: spec.service.clone(), container: spec.name.clone() });
            false
        }
    };
    if !wait {
        return Ok(outcome(changed, None));
    }
    let deadline = started.elapsed() + spec.ready_timeout;
    let mut last = String::new();
    loop {
        let (service, tasks) = docker.swarm_service_tasks(&spec.name).await?;
        let verdict = assess(spec, service.update_state.as_deref(), service.update_message.as_deref(), &tasks, &known);
        match verdict {
            Convergence::Converged => {
                let elapsed_ms = started.elapsed().as_millis() as u64;
                reporter.event(Event::Ready {
                    service: spec.service.clone(),
                    container: spec.name.clone(),
                    elapsed_ms,
                });
                return Ok(outcome(changed, Some(elapsed_ms)));
            }
            Convergence::Failed { message, task } => {
                reporter.event(Event::Failed {
                    service: spec.service.clone(),
                    container: spec.name.clone(),
                    message: message.clone(),
                });
                let logs = match &task {
                    Some(id) => docker.task_log_tail(id, FAILURE_LOG_LINES).await,
                    None => Vec::new(),
                };
                return Err(failure(spec, &message, &logs));
            }
            Convergence::Waiting(text) => {
                if text != last {
                    reporter.event(Event::Waiting {
                        service: spec.service.clone(),
                        container: spec.name.clone(),
                        condition: text.clone(),
                    });
                    last = text;
                }
                if started.elapsed() >= deadline {
                    let newest = tasks.iter().filter(|t| t.current).max_by(|a, b| a.updated_at.cmp(&b.updated_at));
                    let logs = match newest {
                        Some(t) => docker.task_log_tail(&t.id, FAILURE_LOG_LINES).await,
                        None => Vec::new(),
                    };
                    let message = format!("did not converge within {}s: {last}", spec.ready_timeout.as_secs());
                    reporter.event(Event::Failed {
                        service: spec.service.clone(),
                        container: spec.name.clone(),
                        message: message.clone(),
                    });
                    return Err(failure(spec, &message, &logs));
                }
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn failure(spec: &SwarmServiceSpec, message: &str, logs: &[String]) -> Error {
    let mut text = format!("service `{}` (swarm service `{}`) {message}", spec.service, spec.name);
    if !logs.is_empty() {
        text.push_str(&format!("\n\nlast {} log lines of `{}`:", logs.len(), spec.name));
        for line in logs {
            text.push_str(&format!("\n  {line}"));
        }
    }
    Error::Deploy { message: text, hint: Some(HINT_RERUN.into()) }
}

/// How `up --target swarm` runs.
#[derive(Debug, Clone, Copy)]
pub struct UpOptions {
    pub routing: Routing,
    /// Remove services of the project that are not in the stack.
    pub remove_orphans: bool,
    /// Plan only: change nothing.
    pub dry_run: bool,
    /// Wait until every service converged.
    pub wait: bool,
}

/// What `up --target swarm` did (or, with `dry_run`, would do).
pub struct Deployment {
    pub plan: SwarmPlan,
    /// The plan as `--dry-run` prints it.
    pub lines: Vec<String>,
    /// Empty with `dry_run`.
    pub outcomes: Vec<SwarmServiceOutcome>,
}

/// `up --target swarm` from the resolved model `up` built (`desired`) and the `.env` values (`vars`): check the
/// engine can run it, plan against what the swarm runs, and (unless `dry_run`) deploy.
pub async fn up(
    docker: &DockerClient,
    stack: &Stack,
    desired: &Desired,
    vars: &dyn Fn(&str) -> Option<String>,
    options: UpOptions,
    reporter: &dyn Reporter,
) -> Result<Deployment, Error> {
    require_manager(docker).await?;
    if options.routing == Routing::Mesh && docker.is_local() && !std::path::Path::new(IPVS_PROC).exists() {
        return Err(Error::Deploy {
            message: format!(
                "this node's kernel has no IPVS ({IPVS_PROC} is missing): Swarm's ingress routing mesh and the services' virtual IPs would not route, so the stack could not reach itself"
            ),
            hint: Some(format!(
                "load the kernel module (`modprobe ip_vs`), or set {RAGCTL_SWARM_ROUTING}=host: ports on the node running each task, DNS round robin between tasks"
            )),
        });
    }
    let data_nodes = docker.count_swarm_nodes_labelled(DATA_NODE_LABEL, "true").await? > 0;
    let swarm = swarm_desired(stack, desired, vars, SwarmFacts { routing: options.routing, data_nodes });
    let observed = observe(docker, &swarm.project).await?;
    let plan = plan_swarm(&swarm, &observed, options.remove_orphans)?;
    let lines = plan.describe();
    if options.dry_run {
        return Ok(Deployment { plan, lines, outcomes: Vec::new() });
    }
    for note in &swarm.notes {
        reporter.event(Event::Note { message: note.clone() });
    }
    reporter.event(Event::PlanReady { actions: lines.iter().filter(|l| !l.starts_with("keep ")).count() });
    let outcomes = deploy(docker, &swarm, &plan, reporter, options.wait).await?;
    Ok(Deployment { plan, lines, outcomes })
}
