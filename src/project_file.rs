//! `ragctl.yaml`: the project's own settings file. Schema and parsing only; precedence against flags and
//! the environment is decided in [`crate::settings`].

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, SourceLocation};
use crate::profile::{Refusal, Resources, Shape};

pub const FILE_NAME: &str = "ragctl.yaml";

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    /// Compose project name.
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub profiles: Option<Vec<String>>,
    #[serde(default)]
    pub shape: Option<Shape>,
    /// Public host name nginx serves.
    #[serde(default)]
    pub domain: Option<String>,
    /// Host address middleware ports are published on.
    #[serde(default)]
    pub bind_address: Option<String>,
    /// Host address the public entry (nginx) is published on in the full shape.
    #[serde(default)]
    pub public_address: Option<String>,
    /// Default host ports, by the `.env` key that moves each (`EXPOSE_POSTGRES_PORT: 5433`).
    #[serde(default)]
    pub ports: IndexMap<String, u16>,
    /// Image per service, used verbatim (`api: registry.local/dify-api:1.9.2`).
    #[serde(default)]
    pub images: IndexMap<String, String>,
    /// Registry or mirror prefix put before every profile image (`mirror.local:5000`).
    #[serde(default)]
    pub registry: Option<String>,
    /// Replica count per stateless service (full shape).
    #[serde(default)]
    pub replicas: IndexMap<String, u32>,
    /// CPU / memory limits per service (full shape).
    #[serde(default)]
    pub resources: IndexMap<String, Resources>,
    #[serde(default)]
    pub tls: Option<TlsFile>,
    /// The Dify release to deploy (`ragctl releases` lists them); default: the newest.
    #[serde(default)]
    pub release: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// Certificate file name inside NGINX_CERT_DIR (a `.env` key, default `./certs`).
    #[serde(default)]
    pub certificate: Option<String>,
    /// Private key file name inside NGINX_CERT_DIR.
    #[serde(default)]
    pub key: Option<String>,
}

/// The text a [`ProjectFile`] was read from, kept so that a check made later (against the profiles, which this
/// module does not know) can point at the line and column of the value it refuses.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub origin: String,
    pub text: String,
}

impl Source {
    /// Where the last key of `path` is written, or the file alone.
    pub fn key(&self, path: &[&str]) -> SourceLocation {
        SourceLocation::of_yaml_key(&self.origin, &self.text, path)
    }
}

impl ProjectFile {
    /// Read and check `ragctl.yaml` from `dir`; `None` when there is none (the defaults serve).
    pub fn load(dir: &Path) -> Result<Option<(ProjectFile, Source)>, Error> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let origin = path.display().to_string();
        let file = ProjectFile::parse(&origin, &text)?;
        Ok(Some((file, Source { origin, text })))
    }

    /// Parse and check: every value must mean something (sizes, CPU counts, replica counts, ports), each refusal
    /// naming `origin:line:column`.
    pub fn parse(origin: &str, text: &str) -> Result<ProjectFile, Error> {
        if text.trim().is_empty() {
            return Ok(ProjectFile::default());
        }
        let file: ProjectFile = yaml_serde::from_str(text).map_err(|e| Error::Parse {
            location: SourceLocation::from_yaml(origin, &e),
            message: SourceLocation::yaml_message(&e),
        })?;
        match file.refusal() {
            Some((path, refusal)) => Err(refusal.at(origin, text, &path)),
            None => Ok(file),
        }
    }

    /// The first value that cannot be used, with the path to the node holding it.
    fn refusal(&self) -> Option<(Vec<&str>, Refusal)> {
        for (key, port) in &self.ports {
            if *port == 0 {
                let refusal = Refusal {
                    key: None,
                    message: format!("port 0 for `{key}` is not a port to publish on"),
                    hint: "use a host port from 1 to 65535".to_string(),
                };
                return Some((vec!["ports", key.as_str()], refusal));
            }
        }
        for (service, count) in &self.replicas {
            if *count == 0 {
                let refusal = Refusal {
                    key: None,
                    message: format!("`{service}` cannot run 0 replicas"),
                    hint: format!(
                        "use 1 or more; a service is left out by leaving out the profile that adds it, not by \
                         `replicas: {{{service}: 0}}`"
                    ),
                };
                return Some((vec!["replicas", service.as_str()], refusal));
            }
        }
        for (service, resources) in &self.resources {
            if let Some(refusal) = resources.refusal(service) {
                return Some((vec!["resources", service.as_str()], refusal));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_line_and_column() {
        let err = ProjectFile::parse("ragctl.yaml", "project: x\nshape: full\nreplica: {api: 2}\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("failed to parse `ragctl.yaml:3:1`"), "{msg}");
        assert!(msg.contains("unknown field `replica`"), "{msg}");
    }

    #[test]
    fn bad_shape_value_is_reported() {
        let err = ProjectFile::parse("ragctl.yaml", "shape: huge\n").unwrap_err();
        assert!(err.to_string().contains("ragctl.yaml:1:8"), "{err}");
    }

    #[test]
    fn values_are_checked_at_their_line_and_column() {
        let refused = |text: &str| ProjectFile::parse("ragctl.yaml", text).unwrap_err().to_string();
        let msg = refused("resources:\n  api: {cpus: \"0\"}\n");
        assert!(msg.starts_with("failed to parse `ragctl.yaml:2:15`: invalid cpus `0` for service `api`"), "{msg}");
        let msg = refused("resources:\n  worker:\n    memory: 1.5x\n");
        assert!(msg.starts_with("failed to parse `ragctl.yaml:3:13`: invalid size `1.5x`"), "{msg}");
        let msg = refused("replicas:\n  api: 2\n  web: 0\n");
        assert!(msg.starts_with("failed to parse `ragctl.yaml:3:8`: `web` cannot run 0 replicas"), "{msg}");
        let msg = refused("ports: {EXPOSE_POSTGRES_PORT: 0}\n");
        assert!(msg.starts_with("failed to parse `ragctl.yaml:1:31`: port 0"), "{msg}");
        let ok = "replicas: {api: 3}\nresources: {api: {cpus: \"1.5\", memory: 1.5g}, web: {memory: 512k}}\n";
        assert_eq!(ProjectFile::parse("ragctl.yaml", ok).unwrap().replicas["api"], 3);
    }

    #[test]
    fn empty_file_is_defaults() {
        assert_eq!(ProjectFile::parse("ragctl.yaml", "\n").unwrap(), ProjectFile::default());
    }
}
