//! Networks and volumes of a project (bridge networks; Swarm's overlays are in `swarm`).

use std::collections::BTreeMap;

use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{ListNetworksOptions, ListVolumesOptions, RemoveVolumeOptions};

use super::{DockerClient, docker_err, is_not_found, project_filter};
use crate::error::Error;

impl DockerClient {
    pub async fn list_networks(&self, project: &str) -> Result<Vec<String>, Error> {
        Ok(self.list_networks_with_ids(project).await?.into_iter().map(|(name, _)| name).collect())
    }

    /// The project's networks on this engine as (name, id). Swarm-scoped networks (a `--target swarm`
    /// deployment's overlays, which carry the same project label) belong to the Swarm target and are left out.
    pub async fn list_networks_with_ids(&self, project: &str) -> Result<Vec<(String, String)>, Error> {
        let opts = ListNetworksOptions { filters: Some(project_filter(project)) };
        let nets = self.inner.list_networks(Some(opts)).await.map_err(docker_err("list networks of", project))?;
        Ok(nets
            .into_iter()
            .filter(|n| n.scope.as_deref() != Some("swarm"))
            .filter_map(|n| Some((n.name?, n.id.unwrap_or_default())))
            .collect())
    }

    pub async fn list_volumes(&self, project: &str) -> Result<Vec<String>, Error> {
        let opts = ListVolumesOptions { filters: Some(project_filter(project)) };
        let vols = self.inner.list_volumes(Some(opts)).await.map_err(docker_err("list volumes of", project))?;
        Ok(vols.volumes.unwrap_or_default().into_iter().map(|v| v.name).collect())
    }

    /// Create a bridge network; `internal`: no route out of it.
    pub async fn create_network(
        &self,
        name: &str,
        internal: bool,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            internal: Some(internal),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.inner.create_network(req).await.map(|_| ()).map_err(docker_err("create network", name))
    }

    pub async fn remove_network(&self, name: &str) -> Result<(), Error> {
        match self.inner.remove_network(name).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(docker_err("remove network", name)),
        }
    }

    pub async fn create_volume(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<(), Error> {
        let req = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: Some("local".into()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        self.inner.create_volume(req).await.map(|_| ()).map_err(docker_err("create volume", name))
    }

    pub async fn remove_volume(&self, name: &str) -> Result<(), Error> {
        match self.inner.remove_volume(name, None::<RemoveVolumeOptions>).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(docker_err("remove volume", name)),
        }
    }
}
