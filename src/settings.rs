//! Resolve settings in one place: flags > `RAGCTL_*` environment > `ragctl.yaml` > built-in defaults.
//!
//! This is the only step allowed to fail on bad settings; everything after it works with a valid
//! [`Settings`]. It reads `ragctl.yaml` but writes nothing.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Serialize;

use crate::env_vars::{self as ev, EnvSnapshot};
use crate::error::Error;
use crate::output::Format;
use crate::profile::{Resources, Shape};
use crate::project_file::{ProjectFile, Source};
use crate::reporter::ProgressMode;

/// What the command line asks for, before the environment and `ragctl.yaml` are consulted: the highest
/// precedence. Plain data, so settings never depend on how flags are parsed (the CLI maps its flags into this).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub project_dir: Option<PathBuf>,
    pub project_name: Option<String>,
    /// Profiles as given, possibly comma-separated.
    pub profiles: Vec<String>,
    pub shape: Option<Shape>,
    pub env_file: Option<PathBuf>,
    pub format: Option<Format>,
    pub quiet: u8,
    pub verbose: u8,
    pub no_color: bool,
    pub yes: bool,
    pub progress: Option<ProgressMode>,
}

/// Where the list of requested profiles came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileSource {
    Flag,
    RagctlEnv,
    ComposeEnv,
    ProjectFile,
    Default,
}

#[derive(Debug, Clone, Serialize)]
pub struct TlsSettings {
    pub certificate: String,
    pub key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub project_dir: PathBuf,
    pub project_name: String,
    /// Profiles asked for (the stack adds always-on and default profiles).
    pub profiles: Vec<String>,
    pub profiles_source: ProfileSource,
    pub shape: Shape,
    /// What chose the shape (`--shape`, `RAGCTL_SHAPE`, ragctl.yaml); `None` when nothing did (the default).
    pub shape_source: Option<&'static str>,
    pub env_file: PathBuf,
    pub format: Format,
    pub domain: String,
    pub bind_address: String,
    /// Host address the public entry (nginx, full shape) is published on.
    pub public_address: String,
    pub ports: IndexMap<String, u16>,
    pub images: IndexMap<String, String>,
    pub registry: Option<String>,
    pub replicas: IndexMap<String, u32>,
    pub resources: IndexMap<String, Resources>,
    pub tls: TlsSettings,
    /// The Dify release deployed (a name of [`crate::release::all`]): `RAGCTL_RELEASE` > `ragctl.yaml`
    /// `release:` > the newest embedded one.
    pub release: String,
    pub quiet: u8,
    pub verbose: u8,
    pub color: bool,
    pub yes: bool,
    #[serde(skip)]
    pub progress: ProgressMode,
    /// `DOCKER_HOST`, when set.
    pub docker_host: Option<String>,
    /// The terminal can show ✓ / ✗ (UTF-8 locale); otherwise ASCII marks.
    pub unicode: bool,
    /// The text of `ragctl.yaml`, when one was read, for errors that point into it.
    #[serde(skip)]
    pub project_file_source: Option<Source>,
}

pub const DEFAULT_PROFILES: &[&str] = &["weaviate"];

impl Settings {
    /// Resolve from the parsed flags and a snapshot of the environment, reading `ragctl.yaml` if present.
    pub fn resolve(flags: &Overrides, env: &EnvSnapshot) -> Result<Settings, Error> {
        let project_dir = flags
            .project_dir
            .clone()
            .or_else(|| env.get(ev::RAGCTL_PROJECT_DIR).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("."));
        if !project_dir.is_dir() {
            return Err(Error::config_hint(
                format!("project directory `{}` does not exist", project_dir.display()),
                "pass an existing directory with -C/--project-dir",
            ));
        }
        match ProjectFile::load(&project_dir)? {
            Some((file, source)) => Ok(Settings {
                // Checked here first so that a refusal points at the line and column in ragctl.yaml.
                release: resolve_release(env, &file, Some(&source))?,
                project_file_source: Some(source),
                ..Settings::resolve_with(flags, env, project_dir, file)?
            }),
            None => Settings::resolve_with(flags, env, project_dir, ProjectFile::default()),
        }
    }

    /// Resolution without touching the file system (tests, and `resolve` after loading the file).
    pub fn resolve_with(
        flags: &Overrides,
        env: &EnvSnapshot,
        project_dir: PathBuf,
        file: ProjectFile,
    ) -> Result<Settings, Error> {
        let project_name = match flags
            .project_name
            .clone()
            .map(|n| (n, "--project-name"))
            .or_else(|| env.get(ev::RAGCTL_PROJECT_NAME).map(|n| (n.to_string(), ev::RAGCTL_PROJECT_NAME)))
            .or_else(|| env.get(ev::COMPOSE_PROJECT_NAME).map(|n| (n.to_string(), ev::COMPOSE_PROJECT_NAME)))
            .or_else(|| file.project.clone().map(|n| (n, "ragctl.yaml `project`")))
        {
            Some((name, origin)) => validate_project_name(&name, origin)?,
            None => project_name_from_dir(&project_dir),
        };

        let (profiles, profiles_source) = if !flags.profiles.is_empty() {
            (split_profiles(flags.profiles.iter().map(String::as_str)), ProfileSource::Flag)
        } else if let Some(v) = env.get(ev::RAGCTL_PROFILES) {
            (split_profiles([v]), ProfileSource::RagctlEnv)
        } else if let Some(v) = env.get(ev::COMPOSE_PROFILES) {
            (split_profiles([v]), ProfileSource::ComposeEnv)
        } else if let Some(p) = &file.profiles {
            (split_profiles(p.iter().map(String::as_str)), ProfileSource::ProjectFile)
        } else {
            (DEFAULT_PROFILES.iter().map(|s| s.to_string()).collect(), ProfileSource::Default)
        };

        let (shape, shape_source) = match flags.shape {
            Some(shape) => (shape, Some("--shape")),
            None => match env.get(ev::RAGCTL_SHAPE) {
                Some("middleware") => (Shape::Middleware, Some(ev::RAGCTL_SHAPE)),
                Some("full") => (Shape::Full, Some(ev::RAGCTL_SHAPE)),
                Some(other) => {
                    return Err(Error::config_hint(
                        format!("invalid value `{other}` for {}", ev::RAGCTL_SHAPE),
                        "use `middleware` or `full`",
                    ));
                }
                None => match file.shape {
                    Some(shape) => (shape, Some("ragctl.yaml `shape:`")),
                    None => (Shape::Middleware, None),
                },
            },
        };

        let format = match flags.format {
            Some(f) => f,
            None => match env.get(ev::RAGCTL_FORMAT) {
                Some("text") | None => Format::Text,
                Some("json") => Format::Json,
                Some(other) => {
                    return Err(Error::config_hint(
                        format!("invalid value `{other}` for {}", ev::RAGCTL_FORMAT),
                        "use `text` or `json`",
                    ));
                }
            },
        };

        let env_file = flags
            .env_file
            .clone()
            .or_else(|| env.get(ev::RAGCTL_ENV_FILE).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(".env"));
        let env_file = if env_file.is_absolute() { env_file } else { project_dir.join(env_file) };

        let mut images = file.images.clone();
        for (suffix, image) in env.with_prefix(ev::RAGCTL_IMAGE_PREFIX) {
            // RAGCTL_IMAGE_MILVUS_STANDALONE names `milvus-standalone` or `milvus_standalone`; the stack
            // matches services by this normalised key.
            images.insert(image_key(suffix), image.to_string());
        }
        let images = images.into_iter().map(|(svc, img)| (image_key(&svc), img)).collect();

        let registry = env
            .get(ev::RAGCTL_REGISTRY)
            .map(str::to_string)
            .or(file.registry.clone())
            .map(|r| r.trim_end_matches('/').to_string());

        let tls_file = file.tls.clone().unwrap_or_default();
        let tls = TlsSettings {
            certificate: tls_file.certificate.unwrap_or_else(|| "fullchain.pem".into()),
            key: tls_file.key.unwrap_or_else(|| "privkey.pem".into()),
        };

        let release = resolve_release(env, &file, None)?;

        let color = !flags.no_color
            && env.get(ev::NO_COLOR).is_none()
            && env.get(ev::RAGCTL_NO_COLOR).is_none()
            && std::io::stderr().is_terminal();
        let yes = flags.yes || env.get(ev::RAGCTL_YES).is_some_and(truthy);
        let level = |name: &str| -> Result<u8, Error> {
            match env.get(name) {
                None => Ok(0),
                Some(v) if truthy(v) => Ok(1),
                Some(v) => v.parse::<u8>().map_err(|_| {
                    Error::config_hint(format!("invalid value `{v}` for {name}"), "use a number: 0, 1 or 2")
                }),
            }
        };
        let quiet = if flags.quiet > 0 { flags.quiet } else { level(ev::RAGCTL_QUIET)? };
        let verbose = if flags.verbose > 0 { flags.verbose } else { level(ev::RAGCTL_VERBOSE)? };
        let progress = match flags.progress {
            Some(mode) => mode,
            None => match env.get(ev::RAGCTL_PROGRESS) {
                Some("auto") => ProgressMode::Auto,
                Some("plain") => ProgressMode::Plain,
                Some("json") => ProgressMode::Json,
                Some("quiet") => ProgressMode::Quiet,
                Some(other) => {
                    return Err(Error::config_hint(
                        format!("invalid value `{other}` for {}", ev::RAGCTL_PROGRESS),
                        "use `auto`, `plain`, `json` or `quiet`",
                    ));
                }
                None if format == Format::Json => ProgressMode::Json,
                None if quiet > 0 => ProgressMode::Quiet,
                None => ProgressMode::Auto,
            },
        };

        Ok(Settings {
            project_dir,
            project_name,
            release,
            profiles,
            profiles_source,
            shape,
            shape_source,
            env_file,
            format,
            domain: file.domain.clone().unwrap_or_else(|| "localhost".into()),
            bind_address: file.bind_address.clone().unwrap_or_else(|| "127.0.0.1".into()),
            public_address: file.public_address.clone().unwrap_or_else(|| "0.0.0.0".into()),
            ports: file.ports.clone(),
            images,
            registry,
            replicas: file.replicas.clone(),
            resources: file.resources.clone(),
            tls,
            quiet,
            verbose,
            color,
            yes,
            progress,
            docker_host: env.get(ev::DOCKER_HOST).map(str::to_string),
            unicode: env.utf8_locale(),
            project_file_source: None,
        })
    }

    /// The image override for a service, if any.
    pub fn image_override(&self, service: &str) -> Option<&str> {
        self.images.get(&image_key(service)).map(String::as_str)
    }

    pub fn project_path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.project_dir.join(relative)
    }

    /// Where the last key of `path` is written in `ragctl.yaml` (the file name alone when it was not read).
    pub fn project_file_key(&self, path: &[&str]) -> crate::error::SourceLocation {
        match &self.project_file_source {
            Some(source) => source.key(path),
            None => crate::error::SourceLocation::file(crate::project_file::FILE_NAME),
        }
    }
}

/// `RAGCTL_RELEASE` > `ragctl.yaml` `release:` > the newest embedded release; an unknown name is refused, naming
/// where it came from and listing the known ones.
fn resolve_release(env: &EnvSnapshot, file: &ProjectFile, source: Option<&Source>) -> Result<String, Error> {
    let known = || crate::release::names().join(", ");
    let hint = || format!("known releases (`ragctl releases`): {}", known());
    if let Some(name) = env.get(ev::RAGCTL_RELEASE) {
        return match crate::release::get(name) {
            Some(r) => Ok(r.release.clone()),
            None => Err(Error::config_hint(format!("unknown release `{name}` in {}", ev::RAGCTL_RELEASE), hint())),
        };
    }
    if let Some(name) = &file.release {
        return match crate::release::get(name) {
            Some(r) => Ok(r.release.clone()),
            None => Err(Error::Invalid {
                location: match source {
                    Some(s) => s.key(&["release"]),
                    None => crate::error::SourceLocation::file(crate::project_file::FILE_NAME),
                },
                message: format!("unknown release `{name}`"),
                hint: hint(),
            }),
        };
    }
    match crate::release::newest() {
        Some(r) => Ok(r.release.clone()),
        None => Err(Error::config("no Dify release is embedded in this build")),
    }
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// Services are matched case-insensitively with `-` and `_` equal, as env variable names require.
fn image_key(service: &str) -> String {
    service.to_ascii_lowercase().replace('-', "_")
}

fn split_profiles<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in values.into_iter().flat_map(|v| v.split(',')) {
        let name = part.trim();
        if !name.is_empty() && !out.iter().any(|p| p == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// Compose's rule: lowercase letters, digits, `_` and `-`, starting with a letter or digit.
fn validate_project_name(name: &str, origin: &str) -> Result<String, Error> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if valid {
        Ok(name.to_string())
    } else {
        Err(Error::config_hint(
            format!("invalid project name `{name}` (from {origin})"),
            "a project name has lowercase letters, digits, `_` and `-`, and starts with a letter or digit",
        ))
    }
}

/// Compose derives the default project name from the directory name, lowercased, with other characters
/// dropped.
fn project_name_from_dir(dir: &Path) -> String {
    let base = std::fs::canonicalize(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name: String = base
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .collect();
    if name.is_empty() { "ragctl".to_string() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flags: Overrides, env: &[(&str, &str)], file: &str) -> Result<Settings, Error> {
        let file = ProjectFile::parse("ragctl.yaml", file).unwrap();
        Settings::resolve_with(
            &flags,
            &EnvSnapshot::from_pairs(env.iter().copied()),
            PathBuf::from("/p/my-Stack"),
            file,
        )
    }

    #[test]
    fn defaults_serve_without_a_project_file() {
        let s = resolve(Overrides::default(), &[], "").unwrap();
        assert_eq!(s.profiles, ["weaviate"]);
        assert_eq!(s.profiles_source, ProfileSource::Default);
        assert_eq!(s.shape, Shape::Middleware);
        assert_eq!(s.env_file, PathBuf::from("/p/my-Stack/.env"));
        assert_eq!(s.bind_address, "127.0.0.1");
    }

    #[test]
    fn profile_precedence_flag_then_ragctl_env_then_compose_env_then_file() {
        let file = "profiles: [qdrant]\n";
        let s = resolve(Overrides::default(), &[], file).unwrap();
        assert_eq!((s.profiles, s.profiles_source), (vec!["qdrant".into()], ProfileSource::ProjectFile));
        let s = resolve(Overrides::default(), &[("COMPOSE_PROFILES", "milvus")], file).unwrap();
        assert_eq!((s.profiles, s.profiles_source), (vec!["milvus".into()], ProfileSource::ComposeEnv));
        let env = [("COMPOSE_PROFILES", "milvus"), ("RAGCTL_PROFILES", "pgvector, app")];
        let s = resolve(Overrides::default(), &env, file).unwrap();
        assert_eq!(s.profiles, ["pgvector", "app"]);
        let flags = Overrides { profiles: vec!["app,weaviate".into(), "monitoring".into()], ..Default::default() };
        let s = resolve(flags, &env, file).unwrap();
        assert_eq!(
            (s.profiles, s.profiles_source),
            (vec!["app".into(), "weaviate".into(), "monitoring".into()], ProfileSource::Flag)
        );
    }

    #[test]
    fn project_name_precedence_and_validation() {
        let s = resolve(Overrides::default(), &[], "").unwrap();
        assert_eq!(s.project_name, "ragctl"); // /p/my-Stack does not exist, so canonicalize fails
        let s = resolve(Overrides::default(), &[("COMPOSE_PROJECT_NAME", "c")], "project: f\n").unwrap();
        assert_eq!(s.project_name, "c");
        let s =
            resolve(Overrides::default(), &[("RAGCTL_PROJECT_NAME", "r"), ("COMPOSE_PROJECT_NAME", "c")], "").unwrap();
        assert_eq!(s.project_name, "r");
        let err =
            resolve(Overrides { project_name: Some("Bad Name".into()), ..Default::default() }, &[], "").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--project-name"), "{err}");
    }

    #[test]
    fn image_overrides_from_env_win_over_file_and_normalise_names() {
        let file = "images:\n  milvus-standalone: a/m:1\n  api: a/api:1\n";
        let s = resolve(Overrides::default(), &[("RAGCTL_IMAGE_MILVUS_STANDALONE", "t/m:2")], file).unwrap();
        assert_eq!(s.image_override("milvus-standalone"), Some("t/m:2"));
        assert_eq!(s.image_override("api"), Some("a/api:1"));
        assert_eq!(s.image_override("web"), None);
    }

    #[test]
    fn shape_and_format_env_values_are_validated() {
        let err = resolve(Overrides::default(), &[("RAGCTL_SHAPE", "huge")], "").unwrap_err();
        assert!(err.to_string().contains("RAGCTL_SHAPE"));
        let s = resolve(Overrides::default(), &[("RAGCTL_SHAPE", "full")], "shape: middleware\n").unwrap();
        assert_eq!(s.shape, Shape::Full);
        let flags = Overrides { shape: Some(Shape::Middleware), ..Default::default() };
        assert_eq!(resolve(flags, &[("RAGCTL_SHAPE", "full")], "").unwrap().shape, Shape::Middleware);
    }

    #[test]
    fn release_defaults_to_the_newest_and_unknown_ones_are_refused_with_the_known_list() {
        assert_eq!(resolve(Overrides::default(), &[], "").unwrap().release, "1.13.3");
        let s = resolve(Overrides::default(), &[], "release: 1.10.1-fix.1\n").unwrap();
        assert_eq!(s.release, "1.10.1-fix.1");
        let s = resolve(Overrides::default(), &[("RAGCTL_RELEASE", "1.13.3")], "release: 1.10.1-fix.1\n").unwrap();
        assert_eq!(s.release, "1.13.3");
        let err = resolve(Overrides::default(), &[("RAGCTL_RELEASE", "0.1")], "").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("RAGCTL_RELEASE"), "{err}");
        assert!(err.hint().unwrap().contains("1.10.1-fix.1, 1.13.3"), "{:?}", err.hint());

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ragctl.yaml"), "shape: full\nrelease: \"1.2\"\n").unwrap();
        let flags = Overrides { project_dir: Some(dir.path().to_path_buf()), ..Default::default() };
        let err = Settings::resolve(&flags, &EnvSnapshot::default()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = format!("{err:?}");
        assert!(text.contains("line: Some(2), column: Some(1)"), "{text}");
    }

    #[test]
    fn project_name_from_directory_follows_compose() {
        let dir = tempfile::Builder::new().prefix("My.Stack_1").tempdir().unwrap();
        let name = project_name_from_dir(dir.path());
        assert!(name.starts_with("mystack_1"), "{name}");
    }
}
