//! The one error type of ragctl and its mapping to exit codes.
//!
//! Variants carry data (paths, names, sources), not pre-formatted sentences, so each caller can render them
//! (text or JSON) and tests can match on them. Messages are lowercase, the object in backticks,
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

/// Where a key or value is in a YAML document, found by walking the document to it: serde's errors carry the
/// position of the node being read, so the walk fails on purpose at the node wanted and reports that position.
/// Checks that run after deserializing (a size, a duration, a key the catalog does not know) point at the exact
/// value this way, in block and flow style alike.
mod yaml_position {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

    /// The error that stops the walk at the node wanted.
    const FOUND: &str = "ragctl: found";

    /// The `(line, column)` of the key (`at_key`) or the value at `path` (mapping keys), if present.
    pub fn find(text: &str, path: &[&str], at_key: bool) -> Option<(usize, usize)> {
        let deserializer = yaml_serde::Deserializer::from_str(text);
        match (Walk { path, at_key }).deserialize(deserializer) {
            Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| (l.line(), l.column())),
            _ => None,
        }
    }

    struct Walk<'a> {
        path: &'a [&'a str],
        at_key: bool,
    }

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any YAML node")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let Some((wanted, rest)) = self.path.split_first() else {
                return Err(de::Error::custom(FOUND));
            };
            let stop_at_key = self.at_key && rest.is_empty();
            while let Some(matched) = map.next_key_seed(Key { wanted, stop: stop_at_key })? {
                if matched {
                    map.next_value_seed(Walk { path: rest, at_key: self.at_key })?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            if self.path.is_empty() {
                return Err(de::Error::custom(FOUND));
            }
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(())
        }

        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            self.scalar()
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            self.scalar()
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            self.scalar()
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            self.scalar()
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            self.scalar()
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            self.scalar()
        }
    }

    impl Walk<'_> {
        fn scalar<E: de::Error>(&self) -> Result<(), E> {
            if self.path.is_empty() { Err(E::custom(FOUND)) } else { Ok(()) }
        }
    }

    /// A mapping key: whether it is the one wanted, or the walk's end when `stop`.
    struct Key<'a> {
        wanted: &'a str,
        stop: bool,
    }

    impl<'de> DeserializeSeed<'de> for Key<'_> {
        type Value = bool;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Key<'_> {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping key")
        }

        fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
            match key == self.wanted {
                true if self.stop => Err(E::custom(FOUND)),
                matched => Ok(matched),
            }
        }
        fn visit_i64<E: de::Error>(self, key: i64) -> Result<bool, E> {
            self.visit_str(&key.to_string())
        }
        fn visit_u64<E: de::Error>(self, key: u64) -> Result<bool, E> {
            self.visit_str(&key.to_string())
        }
        fn visit_bool<E: de::Error>(self, key: bool) -> Result<bool, E> {
            self.visit_str(&key.to_string())
        }
        fn visit_f64<E: de::Error>(self, key: f64) -> Result<bool, E> {
            self.visit_str(&key.to_string())
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
}

impl SourceLocation {
    /// The position of the value at `path` (mapping keys from the document root) in the YAML `text` of `file`;
    /// the file alone when the path is not there.
    pub fn of_yaml_value(file: &str, text: &str, path: &[&str]) -> Self {
        match yaml_position::find(text, path, false) {
            Some((line, column)) => SourceLocation::at(file, line, column),
            None => SourceLocation::file(file),
        }
    }

    /// The position of the last key of `path`, for a key that is itself the mistake.
    pub fn of_yaml_key(file: &str, text: &str, path: &[&str]) -> Self {
        match yaml_position::find(text, path, true) {
            Some((line, column)) => SourceLocation::at(file, line, column),
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

    /// A value in a data file fits the schema's type but not its meaning (a size, a duration, a key no profile
    /// knows), at the value's own position.
    #[error("failed to parse `{location}`: {message}")]
    Invalid { location: SourceLocation, message: String, hint: String },

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
            Error::Parse { .. }
            | Error::Invalid { .. }
            | Error::Config { .. }
            | Error::UnknownProfile { .. }
            | Error::Template { .. } => exit::USAGE,
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
            Error::Invalid { hint, .. } => Some(hint.clone()),
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

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "shape: full\nresources:\n  api: {cpus: \"2\", memory: 4zz}\n  web:\n    memory: 1g\nlist: [a, b]\n";

    #[test]
    fn yaml_values_and_keys_are_found_in_block_and_flow_style() {
        let at = |path: &[&str]| SourceLocation::of_yaml_value("f.yaml", DOC, path).to_string();
        assert_eq!(at(&["resources", "api", "memory"]), "f.yaml:3:28");
        assert_eq!(at(&["resources", "api", "cpus"]), "f.yaml:3:15");
        assert_eq!(at(&["resources", "web", "memory"]), "f.yaml:5:13");
        assert_eq!(at(&["list"]), "f.yaml:6:7");
        assert_eq!(SourceLocation::of_yaml_key("f.yaml", DOC, &["resources", "web"]).to_string(), "f.yaml:4:3");
    }

    #[test]
    fn a_path_that_is_not_there_names_the_file_only() {
        assert_eq!(SourceLocation::of_yaml_value("f.yaml", DOC, &["resources", "db"]).to_string(), "f.yaml");
        assert_eq!(SourceLocation::of_yaml_value("f.yaml", "[1, 2]", &["a"]).to_string(), "f.yaml");
        assert_eq!(SourceLocation::of_yaml_key("f.yaml", ": : :", &["a"]).to_string(), "f.yaml");
    }
}
