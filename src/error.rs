//! The one error type of ragctl and its mapping to exit codes.
//!
//! Variants carry data (paths, names, sources), not pre-formatted sentences, so each caller can render them
//! (text or JSON) and tests can match on them. Messages follow STYLE.md: lowercase, the object in backticks,
//! `failed to VERB \`thing\`: cause`, with an optional `hint:` naming the next step.

use std::fmt;
use std::path::PathBuf;

/// Exit codes are public API (README "Exit codes").
pub mod exit {
    pub const OK: i32 = 0;
    /// The answer is "no": drift found, a check failed, a wait timed out, an operation failed.
    pub const FAILURE: i32 = 1;
    /// Bad usage or configuration: flags, `ragctl.yaml`, profiles, templates, `.env`.
    pub const USAGE: i32 = 2;
    /// The Docker engine cannot be reached.
    pub const DOCKER_UNREACHABLE: i32 = 3;
    /// Interrupted by SIGINT.
    pub const INTERRUPTED: i32 = 130;
}

/// Where in a file something is wrong. Line and column are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl SourceLocation {
    pub fn file(file: impl Into<String>) -> Self {
        SourceLocation { file: file.into(), line: None, column: None }
    }

    pub fn at(file: impl Into<String>, line: usize, column: usize) -> Self {
        SourceLocation { file: file.into(), line: Some(line), column: Some(column) }
    }

    /// The message of a YAML error without its trailing "at line L column C" (the location says it).
    pub fn yaml_message(err: &yaml_serde::Error) -> String {
        let msg = err.to_string();
        match msg.rfind(" at line ") {
            Some(i) if err.location().is_some() => msg[..i].to_string(),
            _ => msg,
        }
    }

    pub fn from_yaml(file: &str, err: &yaml_serde::Error) -> Self {
        match err.location() {
            Some(loc) => SourceLocation::at(file, loc.line(), loc.column()),
            None => SourceLocation::file(file),
        }
    }
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data file (ragctl.yaml, a profile, .env) does not parse or does not fit its schema.
    #[error("failed to parse `{location}`: {message}")]
    Parse { location: SourceLocation, message: String },

    /// A value is well-formed but not acceptable (an unknown profile, conflicting choices, a bad port).
    #[error("{message}")]
    Config { message: String, hint: Option<String> },

    #[error("unknown profile `{name}`")]
    UnknownProfile { name: String, available: Vec<String> },

    /// A template failed to render.
    #[error("failed to render template `{template}`{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Template { template: String, line: Option<usize>, message: String },

    #[error("failed to {action} `{}`: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },

    /// The Docker engine cannot be reached at all.
    #[error("failed to connect to the Docker engine at `{endpoint}`: {cause}")]
    DockerUnreachable { endpoint: String, cause: String },

    /// A file ragctl would replace has no owner write bit: the operator made it read-only, and that is respected
    /// even by root (who could write it anyway).
    #[error("refusing to write `{}`: it is read-only (mode {mode:04o})", path.display())]
    ReadOnlyFile { path: PathBuf, mode: u32 },

    /// A path ragctl must own alone (the project lock) is not safe to use: a symbolic link, or a directory that
    /// another user owns or can write into.
    #[error("refusing to use `{}`: {reason}", path.display())]
    UnsafePath { path: PathBuf, reason: &'static str },

    /// A Docker API call failed.
    #[error("failed to {action} `{target}`: {cause}")]
    Docker { action: &'static str, target: String, cause: String },

    /// `up` could not bring the stack up (preflight, readiness, a container that exited).
    #[error("{message}")]
    Deploy { message: String, hint: Option<String> },

    /// Interrupted by SIGINT.
    #[error("interrupted")]
    Interrupted,

    /// Rendered files differ from what is on disk (`render --check`).
    #[error("{} rendered file(s) are out of date: {}", files.len(), files.join(", "))]
    Drift { files: Vec<String> },
}

impl Error {
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config { message: message.into(), hint: None }
    }

    pub fn config_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Config { message: message.into(), hint: Some(hint.into()) }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Parse { .. } | Error::Config { .. } | Error::UnknownProfile { .. } | Error::Template { .. } => {
                exit::USAGE
            }
            Error::Io { .. }
            | Error::Drift { .. }
            | Error::Docker { .. }
            | Error::Deploy { .. }
            | Error::ReadOnlyFile { .. }
            | Error::UnsafePath { .. } => exit::FAILURE,
            Error::DockerUnreachable { .. } => exit::DOCKER_UNREACHABLE,
            Error::Interrupted => exit::INTERRUPTED,
        }
    }

    /// The next step for the operator, shown after the message.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Config { hint, .. } => hint.clone(),
            Error::UnknownProfile { available, .. } => Some(format!("available profiles: {}", available.join(", "))),
            Error::Drift { .. } => Some("run `ragctl render` to update them".to_string()),
            Error::DockerUnreachable { .. } => Some(
                "start the engine (`sudo systemctl start docker`, or `sudo dockerd &`), or point DOCKER_HOST at a running one"
                    .to_string(),
            ),
            Error::Deploy { hint, .. } => hint.clone(),
            Error::ReadOnlyFile { path, .. } => Some(format!(
                "make it writable (`chmod 600 {}`) and run the command again, or leave it as it is",
                path.display()
            )),
            Error::UnsafePath { path, .. } => Some(format!(
                "remove it (`rm -r {}`): ragctl creates it again, private to this user",
                path.display()
            )),
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
                Some("check the permissions of the file and its directory".to_string())
            }
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
