//! `ragctl.yaml`: the project's own settings file. Schema and parsing only; precedence against flags and
//! the environment is decided in [`crate::settings`].

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, SourceLocation};
use crate::profile::{Resources, Shape};

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
    /// Default host ports, by the `.env` key that moves each (`EXPOSE_DB_PORT: 5433`).
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

impl ProjectFile {
    /// Read `ragctl.yaml` from `dir`; a missing file is an empty one.
    pub fn load(dir: &Path) -> Result<Option<ProjectFile>, Error> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        ProjectFile::parse(&path.display().to_string(), &text).map(Some)
    }

    pub fn parse(origin: &str, text: &str) -> Result<ProjectFile, Error> {
        if text.trim().is_empty() {
            return Ok(ProjectFile::default());
        }
        yaml_serde::from_str(text).map_err(|e| Error::Parse {
            location: SourceLocation::from_yaml(origin, &e),
            message: SourceLocation::yaml_message(&e),
        })
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
    fn empty_file_is_defaults() {
        assert_eq!(ProjectFile::parse("ragctl.yaml", "\n").unwrap(), ProjectFile::default());
    }
}
