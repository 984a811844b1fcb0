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
    /// Exists with another configuration: removed and created again.
    Recreate {
        id: String,
    },
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
            let what = match &c.action {
                ContainerAction::Keep { .. } => "keep",
                ContainerAction::Start { .. } => "start",
                ContainerAction::Create => "create and start",
                ContainerAction::Recreate { .. } => "recreate (configuration changed)",
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
                Some(o) if o.config_hash != spec.config_hash() => ContainerAction::Recreate { id: o.id.clone() },
                Some(o) if o.state == "running" => ContainerAction::Keep { id: o.id.clone() },
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
