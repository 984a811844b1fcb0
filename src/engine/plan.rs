//! Desired vs observed → the ordered actions of `up`. Pure, so `--dry-run` prints exactly what `up` would do
//! and tests can check plans without Docker.

use std::collections::BTreeSet;

use serde::Serialize;

use super::spec::{ContainerSpec, Desired, NetworkSpec, VolumeSpec};
use crate::docker::ObservedContainer;

/// What Docker has for the project right now.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub containers: Vec<ObservedContainer>,
    pub networks: Vec<String>,
    /// Ids of those networks.
    pub network_ids: BTreeSet<String>,
    pub volumes: Vec<String>,
    /// Images of the desired state that are present locally.
    pub images_present: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum PullPolicy {
    /// Pull images that are not present locally.
    Missing,
    /// Pull every image.
    Always,
    /// Never pull; a missing image is an error.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ContainerAction {
    /// Running with the desired configuration: left alone.
    Keep {
        id: String,
    },
    /// Exists with the desired configuration but is not running.
    Start {
        id: String,
    },
    Create,
    /// Exists but cannot be kept: removed and created again.
    Recreate {
        id: String,
        reason: RecreateReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecreateReason {
    /// Its configuration hash differs from the desired one.
    ConfigurationChanged,
    /// It is stopped and one of its networks was removed meanwhile (`docker network prune`): Docker could not
    /// start it again.
    NetworkRemoved,
}

impl RecreateReason {
    pub fn describe(self) -> &'static str {
        match self {
            RecreateReason::ConfigurationChanged => "configuration changed",
            RecreateReason::NetworkRemoved => "its network was removed while it was stopped",
        }
    }
}

#[derive(Clone, Serialize)]
pub struct ContainerStep {
    pub service: String,
    pub container: String,
    #[serde(flatten)]
    pub action: ContainerAction,
    #[serde(skip)]
    pub spec: ContainerSpec,
}

#[derive(Clone, Serialize)]
pub struct Plan {
    pub project: String,
    pub create_networks: Vec<NetworkSpec>,
    pub create_volumes: Vec<VolumeSpec>,
    pub pull: Vec<String>,
    /// Images missing with `--pull never`: `up` refuses before creating anything.
    pub missing_images: Vec<String>,
    /// In dependency order.
    pub containers: Vec<ContainerStep>,
    /// Containers of services no longer in the stack (removed with `--remove-orphans`).
    pub orphans: Vec<ObservedContainer>,
    /// Replicas beyond the desired count (always removed).
    pub scale_down: Vec<ObservedContainer>,
    pub remove_orphans: bool,
}

impl Plan {
    /// Nothing to create, start, recreate or remove.
    pub fn is_noop(&self) -> bool {
        self.create_networks.is_empty()
            && self.create_volumes.is_empty()
            && self.pull.is_empty()
            && self.scale_down.is_empty()
            && (!self.remove_orphans || self.orphans.is_empty())
            && self.containers.iter().all(|c| matches!(c.action, ContainerAction::Keep { .. }))
    }

    /// One line per action, for `--dry-run` and verbose output.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for n in &self.create_networks {
            lines.push(format!("create network {}{}", n.name, if n.internal { " (internal)" } else { "" }));
        }
        for v in &self.create_volumes {
            lines.push(format!("create volume {}", v.name));
        }
        for i in &self.pull {
            lines.push(format!("pull image {i}"));
        }
        for c in &self.scale_down {
            lines.push(format!("remove container {} (scaled down)", c.name));
        }
        if self.remove_orphans {
            for c in &self.orphans {
                lines
                    .push(format!("remove container {} (orphan: service `{}` is not in the stack)", c.name, c.service));
            }
        }
        for c in &self.containers {
            let recreate;
            let what = match &c.action {
                ContainerAction::Keep { .. } => "keep",
                ContainerAction::Start { .. } => "start",
                ContainerAction::Create => "create and start",
                ContainerAction::Recreate { reason, .. } => {
                    recreate = format!("recreate ({})", reason.describe());
                    &recreate
                }
            };
            lines.push(format!("{what} container {}", c.container));
        }
        lines
    }
}

pub fn plan_up(desired: &Desired, observed: &Observed, pull: PullPolicy, remove_orphans: bool) -> Plan {
    let create_networks = desired.networks.iter().filter(|n| !observed.networks.contains(&n.name)).cloned().collect();
    let create_volumes = desired.volumes.iter().filter(|v| !observed.volumes.contains(&v.name)).cloned().collect();

    let images: BTreeSet<&str> = desired.containers.iter().map(|c| c.image.as_str()).collect();
    let (pull_list, missing_images) = match pull {
        PullPolicy::Always => (images.iter().map(|s| s.to_string()).collect(), Vec::new()),
        PullPolicy::Missing => (
            images.iter().filter(|i| !observed.images_present.contains(**i)).map(|s| s.to_string()).collect(),
            Vec::new(),
        ),
        PullPolicy::Never => (
            Vec::new(),
            images.iter().filter(|i| !observed.images_present.contains(**i)).map(|s| s.to_string()).collect(),
        ),
    };

    let containers = desired
        .containers
        .iter()
        .map(|spec| {
            let existing = observed.containers.iter().find(|o| o.service == spec.service && o.number == spec.number);
            let action = match existing {
                None => ContainerAction::Create,
                Some(o) if o.config_hash != spec.config_hash() => {
                    ContainerAction::Recreate { id: o.id.clone(), reason: RecreateReason::ConfigurationChanged }
                }
                Some(o) if o.state == "running" => ContainerAction::Keep { id: o.id.clone() },
                Some(o) if o.network_ids.iter().any(|id| !observed.network_ids.contains(id)) => {
                    ContainerAction::Recreate { id: o.id.clone(), reason: RecreateReason::NetworkRemoved }
                }
                Some(o) => ContainerAction::Start { id: o.id.clone() },
            };
            ContainerStep { service: spec.service.clone(), container: spec.name.clone(), action, spec: spec.clone() }
        })
        .collect();

    let services: BTreeSet<&str> = desired.containers.iter().map(|c| c.service.as_str()).collect();
    let mut orphans = Vec::new();
    let mut scale_down = Vec::new();
    for o in &observed.containers {
        if !services.contains(o.service.as_str()) {
            orphans.push(o.clone());
        } else if !desired.containers.iter().any(|c| c.service == o.service && c.number == o.number) {
            scale_down.push(o.clone());
        }
    }

    Plan {
        project: desired.project.clone(),
        create_networks,
        create_volumes,
        pull: pull_list,
        missing_images,
        containers,
        orphans,
        scale_down,
        remove_orphans,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::spec::desired;
    use crate::stack::test_support::{embedded_stack, fake_vars};

    fn observed_from(desired: &Desired, state: &str, network_ids: &[&str], existing: &[&str]) -> Observed {
        Observed {
            containers: desired
                .containers
                .iter()
                .map(|c| ObservedContainer {
                    id: format!("id-{}", c.name),
                    name: c.name.clone(),
                    service: c.service.clone(),
                    number: c.number,
                    config_hash: c.config_hash().to_string(),
                    image: c.image.clone(),
                    state: state.into(),
                    status: String::new(),
                    created: 0,
                    ports: vec![],
                    depends_on: vec![],
                    network_ids: network_ids.iter().map(|s| s.to_string()).collect(),
                })
                .collect(),
            networks: desired.networks.iter().map(|n| n.name.clone()).collect(),
            network_ids: existing.iter().map(|s| s.to_string()).collect(),
            volumes: desired.volumes.iter().map(|v| v.name.clone()).collect(),
            images_present: desired.containers.iter().map(|c| c.image.clone()).collect(),
        }
    }

    #[test]
    fn a_stopped_container_whose_network_was_removed_is_recreated_not_started() {
        let stack = embedded_stack(&["weaviate"], "project: demo\n");
        let desired = desired(&stack, &fake_vars, std::path::Path::new("/p/demo"), None).unwrap();
        let actions = |o: &Observed| -> Vec<String> {
            plan_up(&desired, o, PullPolicy::Missing, false)
                .describe()
                .into_iter()
                .filter(|l| l.contains("container"))
                .collect()
        };
        let intact = observed_from(&desired, "exited", &["net1"], &["net1"]);
        assert!(actions(&intact).iter().all(|l| l.starts_with("start container")), "{:?}", actions(&intact));
        let pruned = observed_from(&desired, "exited", &["net1"], &["net2"]);
        assert!(
            actions(&pruned).iter().all(|l| l.starts_with("recreate (its network was removed while it was stopped)")),
            "{:?}",
            actions(&pruned)
        );
        // A running container holds its network: there is nothing to recreate.
        let running = observed_from(&desired, "running", &["net1"], &["net1"]);
        assert!(plan_up(&desired, &running, PullPolicy::Missing, false).is_noop());
    }
}
