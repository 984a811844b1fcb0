//! Desired vs observed → the actions that converge the swarm. Pure, printable with `--dry-run`.

use std::collections::BTreeSet;

use super::{SwarmDesired, SwarmServiceSpec, UpdateOrder};
use crate::docker::{ObservedSwarmNetwork, ObservedSwarmService};
use crate::engine::spec::NetworkSpec;
use crate::error::Error;

#[derive(Debug, Clone, PartialEq)]
pub enum ServiceAction {
    Create,
    Update { id: String, version: u64 },
    Keep { id: String },
}

/// What the swarm runs now.
#[derive(Debug, Clone, Default)]
pub struct SwarmObserved {
    pub networks: Vec<ObservedSwarmNetwork>,
    pub secrets: Vec<String>,
    pub services: Vec<ObservedSwarmService>,
}

pub struct SwarmPlan {
    pub create_networks: Vec<NetworkSpec>,
    /// Secret names to create (values are in [`SwarmDesired::secrets`]).
    pub create_secrets: Vec<String>,
    /// One per desired service, in dependency order.
    pub services: Vec<(SwarmServiceSpec, ServiceAction)>,
    pub orphans: Vec<ObservedSwarmService>,
    pub remove_orphans: bool,
    /// The project's secrets no desired service references (superseded by a rotation): removed after deploying.
    pub stale_secrets: Vec<String>,
}

/// Desired vs observed → actions. Refuses a project whose networks exist as non-overlay networks (it runs on
/// the container target: both cannot share names).
pub fn plan_swarm(desired: &SwarmDesired, observed: &SwarmObserved, remove_orphans: bool) -> Result<SwarmPlan, Error> {
    let mut create_networks = Vec::new();
    for n in &desired.networks {
        match observed.networks.iter().find(|o| o.name == n.name) {
            Some(o) if o.driver != "overlay" => {
                return Err(Error::Deploy {
                    message: format!(
                        "network `{}` exists with driver `{}`: project `{}` runs as containers on this engine",
                        n.name, o.driver, desired.project
                    ),
                    hint: Some(format!(
                        "remove it with `ragctl -p {} down`, or deploy the swarm under another project name (-p)",
                        desired.project
                    )),
                });
            }
            Some(_) => {}
            None => create_networks.push(n.clone()),
        }
    }
    let create_secrets =
        desired.secrets.iter().filter(|s| !observed.secrets.contains(&s.name)).map(|s| s.name.clone()).collect();
    let services = desired
        .services
        .iter()
        .map(|spec| {
            let action = match observed.services.iter().find(|o| o.name == spec.name) {
                None => ServiceAction::Create,
                Some(o) if o.config_hash == spec.config_hash() => ServiceAction::Keep { id: o.id.clone() },
                Some(o) => ServiceAction::Update { id: o.id.clone(), version: o.version },
            };
            (spec.clone(), action)
        })
        .collect();
    let orphans =
        observed.services.iter().filter(|o| !desired.services.iter().any(|s| s.name == o.name)).cloned().collect();
    let wanted: BTreeSet<&str> = desired.secrets.iter().map(|s| s.name.as_str()).collect();
    let stale_secrets = observed.secrets.iter().filter(|s| !wanted.contains(s.as_str())).cloned().collect();
    Ok(SwarmPlan { create_networks, create_secrets, services, orphans, remove_orphans, stale_secrets })
}

impl SwarmPlan {
    /// One line per action, `keep` lines included (callers hide them unless verbose).
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for n in &self.create_networks {
            lines.push(format!("create network {} (overlay{})", n.name, if n.internal { ", internal" } else { "" }));
        }
        for s in &self.create_secrets {
            lines.push(format!("create secret {s}"));
        }
        for (spec, action) in &self.services {
            lines.push(match action {
                ServiceAction::Create => format!("create service {} ({} replicas)", spec.name, spec.replicas),
                ServiceAction::Update { .. } => format!(
                    "update service {} (configuration changed; rolling, {})",
                    spec.name,
                    if spec.update_order == UpdateOrder::StartFirst { "start-first" } else { "stop-first" }
                ),
                ServiceAction::Keep { .. } => format!("keep service {}", spec.name),
            });
        }
        for o in &self.orphans {
            if self.remove_orphans {
                lines.push(format!("remove orphan service {}", o.name));
            }
        }
        for s in &self.stale_secrets {
            lines.push(format!("remove secret {s} (no longer referenced)"));
        }
        lines
    }

    pub fn is_noop(&self) -> bool {
        self.describe().iter().all(|l| l.starts_with("keep "))
    }
}
