//! What every doctor check can look at: the resolved settings, the stack model (or why it failed), `.env`
//! (or why it failed), and Docker with the project's containers, each fetched once and shared.

use indexmap::IndexMap;
use tokio::sync::OnceCell;

use crate::catalog::Catalog;
use crate::db::{DbContext, ValueLookup};
use crate::docker::{DockerClient, ObservedContainer};
use crate::dotenv::DotEnv;
use crate::env_file::EnvFile;
use crate::env_vars::{compose_lookup, compose_variable};
use crate::settings::Settings;
use crate::stack::Stack;

pub struct DoctorContext {
    pub settings: Settings,
    pub catalog: Result<Catalog, String>,
    pub stack: Result<Stack, String>,
    /// `Ok(None)`: there is no `.env` yet.
    pub env: Result<Option<DotEnv>, String>,
    /// `.env` values with `${..}` resolved (their own references to the process environment included).
    pub env_values: IndexMap<String, String>,
    /// Compose's substitution: the process environment over `.env`, as `up` interpolates the stack.
    compose_value: ValueLookup<'static>,
    docker: OnceCell<Result<DockerClient, String>>,
    containers: OnceCell<Result<Vec<ObservedContainer>, String>>,
}

impl DoctorContext {
    pub fn new(settings: Settings) -> DoctorContext {
        let catalog = Catalog::load(&settings.project_dir).map_err(|e| e.to_string());
        let stack = match &catalog {
            Ok(c) => Stack::build(&settings, c).map_err(|e| {
                let mut msg = e.to_string();
                if let Some(h) = e.hint() {
                    msg.push_str(&format!(" ({h})"));
                }
                msg
            }),
            Err(e) => Err(e.clone()),
        };
        let env = EnvFile::load(&settings.env_file).map(|f| f.doc).map_err(|e| e.to_string());
        let (env_values, compose_value): (_, ValueLookup<'static>) = match &env {
            Ok(Some(doc)) => (doc.resolved(&|name| compose_variable(name)), Box::new(compose_lookup(doc))),
            _ => (IndexMap::new(), Box::new(compose_variable)),
        };
        DoctorContext {
            settings,
            catalog,
            stack,
            env,
            env_values,
            compose_value,
            docker: OnceCell::new(),
            containers: OnceCell::new(),
        }
    }

    /// A value as the stack sees it: compose's substitution (process environment over `.env`, the one `up`
    /// uses), then a port set in `ragctl.yaml` (which becomes the rendered default), then the profile's default.
    /// An empty value counts as unset, as `${KEY:-default}` treats it.
    pub fn value(&self, key: &str) -> Option<String> {
        (self.compose_value)(key)
            .filter(|v| !v.is_empty())
            .or_else(|| crate::stack::configured_port(&self.settings, key).map(|p| p.to_string()))
            .or_else(|| self.stack.as_ref().ok().and_then(|s| s.env.get(key).map(|e| e.default.clone())))
            .filter(|v| !v.is_empty())
    }

    pub fn profile_enabled(&self, name: &str) -> bool {
        self.stack.as_ref().is_ok_and(|s| s.profiles.iter().any(|p| p == name))
    }

    pub fn service_enabled(&self, name: &str) -> bool {
        self.stack.as_ref().is_ok_and(|s| s.services.contains_key(name))
    }

    /// The Docker client, connected once.
    pub async fn docker(&self) -> Result<&DockerClient, String> {
        self.docker
            .get_or_init(|| async {
                DockerClient::connect(self.settings.docker_host.as_deref()).await.map_err(|e| e.to_string())
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The project's containers, listed once.
    pub async fn containers(&self) -> Result<&[ObservedContainer], String> {
        self.containers
            .get_or_init(|| async {
                let docker = self.docker().await?;
                docker.list_containers(&self.settings.project_name).await.map_err(|e| e.to_string())
            })
            .await
            .as_ref()
            .map(Vec::as_slice)
            .map_err(Clone::clone)
    }

    /// The first container of `service`, if the project has one.
    pub async fn container_of(&self, service: &str) -> Option<&ObservedContainer> {
        self.containers().await.ok()?.iter().find(|c| c.service == service)
    }

    /// What the `db` capability works with, from this context's Docker, containers, stack and values.
    pub async fn db(&self) -> DbContext<'_> {
        DbContext {
            project: &self.settings.project_name,
            docker: self.docker().await,
            containers: self.containers().await,
            stack: self.stack.as_ref().ok(),
            value: Box::new(|key| self.value(key)),
        }
    }
}
