//! Profile files: the data that says what a profile adds to the stack.
//!
//! A profile is a YAML file (`profiles/NAME.yaml`, embedded in the binary, overridable by a project's own
//! `profiles/` directory). This module defines the schema and parses one file into a [`Profile`], reporting
//! malformed input with `file:line:column`. It must not combine profiles or look at settings: that is
//! [`crate::stack`]'s job.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::byte_size::{self, ByteSize};
use crate::error::{Error, SourceLocation};

/// One profile file, as written by its author.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Must equal the file stem.
    pub name: String,
    pub description: String,
    /// Always enabled (the data-layer base: PostgreSQL + Redis). Not selectable.
    #[serde(default)]
    pub always: bool,
    /// At most one enabled profile per group (e.g. `vector_store`, `db_topology`).
    #[serde(default)]
    pub exclusive: Option<String>,
    /// Enabled when no other profile of its `exclusive` group is (weaviate is the default vector store).
    #[serde(default)]
    pub default: bool,
    /// Profiles that must be enabled together with this one.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Services of other profiles this profile replaces with its own definition (pg_cluster → db_postgres).
    #[serde(default)]
    pub replaces: Vec<String>,
    /// Non-secret `.env` settings this profile introduces, with their defaults. Compose references them as
    /// `${KEY:-default}`.
    #[serde(default)]
    pub env: IndexMap<String, EnvSetting>,
    #[serde(default)]
    pub secrets: Vec<SecretSpec>,
    #[serde(default)]
    pub services: IndexMap<String, ServiceDef>,
    /// Additions to services defined by other profiles, applied only when that service is enabled
    /// (a vector store adds its endpoint and key to `api` and `worker`).
    #[serde(default)]
    pub patches: IndexMap<String, ServicePatch>,
    /// Config files this profile renders next to the compose file.
    #[serde(default)]
    pub files: Vec<FileSpec>,
    /// Doctor check ids that apply when this profile is enabled.
    #[serde(default)]
    pub checks: Vec<String>,
    /// Named volumes beyond those inferred from service mounts (rarely needed).
    #[serde(default)]
    pub volumes: Vec<String>,
}

/// A non-secret setting: its default and what it is for.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSetting {
    pub default: String,
    #[serde(default)]
    pub description: String,
}

/// A secret the profile needs in `.env`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// How a value is generated; absent for `equals` / `derive` secrets.
    #[serde(default)]
    pub format: Option<SecretFormat>,
    /// Must hold the same value as this other secret (SANDBOX_API_KEY ↔ CODE_EXECUTION_API_KEY).
    #[serde(default)]
    pub equals: Option<String>,
    /// Built from other secrets: `{NAME}` is replaced by that secret's value
    /// (`redis://:{REDIS_PASSWORD}@redis:6379/1`).
    #[serde(default)]
    pub derive: Option<String>,
    /// Services that read this secret.
    #[serde(default)]
    pub consumers: Vec<String>,
    /// Publicly known values (the reference deployment's published defaults) that must never be deployed.
    #[serde(default)]
    pub public_defaults: Vec<String>,
    /// The value is baked into a data directory on first start (a database password): rotating it needs a
    /// manual step, described here.
    #[serde(default)]
    pub baked_into: Option<String>,
}

/// How a secret value is generated and how strong an existing one must be.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum SecretFormat {
    /// `bytes` random bytes, standard base64 (`openssl rand -base64 42`).
    Base64 { bytes: usize },
    /// `length` characters of `[A-Za-z0-9]`: safe unescaped inside URLs, shells and YAML.
    Alnum { length: usize },
    /// `bytes` random bytes as lowercase hex.
    Hex { bytes: usize },
}

/// A service as a profile declares it. Field names follow the compose specification where one exists.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    pub image: String,
    #[serde(default)]
    pub description: String,
    /// Stack shapes that include this service. Data services: `[middleware, full]`; app services: `[full]`.
    #[serde(default = "default_shapes")]
    pub shapes: Vec<Shape>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub user: Option<String>,
    /// Values are compose strings: `${VAR}` references are kept for compose (and ragctl) to interpolate.
    #[serde(default)]
    pub environment: IndexMap<String, String>,
    #[serde(default)]
    pub ports: Vec<PortDef>,
    /// Compose short syntax: `named_volume:/path[:ro]` or `./relative/file:/path[:ro]` (relative to the
    /// rendered compose file).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Networks in the full shape (`frontend`, `backend`, `data`). The middleware shape uses one network.
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default)]
    pub depends_on: IndexMap<String, DependencyCondition>,
    #[serde(default)]
    pub healthcheck: Option<HealthcheckDef>,
    /// How ragctl knows the service is ready; defaults to its healthcheck.
    #[serde(default)]
    pub ready: Option<ReadinessProbe>,
    /// Stateless services may run several replicas in the full shape.
    #[serde(default)]
    pub stateless: bool,
    #[serde(default = "one")]
    pub replicas: u32,
    #[serde(default)]
    pub resources: Option<Resources>,
    /// Seconds to wait for readiness before `up` gives up on this service.
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub stop_grace_period: Option<String>,
    #[serde(default)]
    pub shm_size: Option<String>,
    #[serde(default)]
    pub tmpfs: Vec<String>,
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// Extra `security_opt` entries (the full shape always adds `no-new-privileges:true`).
    #[serde(default)]
    pub security_opt: Vec<String>,
    #[serde(default)]
    pub ulimits: IndexMap<String, Ulimit>,
    #[serde(default)]
    pub sysctls: IndexMap<String, String>,
    /// Host `sysctl`s the service needs (`vm.max_map_count: 262144`), checked by `doctor`.
    #[serde(default)]
    pub host_sysctls: IndexMap<String, u64>,
}

/// Additions to another profile's service.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServicePatch {
    #[serde(default)]
    pub environment: IndexMap<String, String>,
    #[serde(default)]
    pub depends_on: IndexMap<String, DependencyCondition>,
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Data layer only, published on the loopback address, for developers running the API from source.
    Middleware,
    /// Everything, with the production overlay.
    Full,
}

impl Shape {
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Middleware => "middleware",
            Shape::Full => "full",
        }
    }
}

fn default_shapes() -> Vec<Shape> {
    vec![Shape::Middleware, Shape::Full]
}

fn one() -> u32 {
    1
}

/// A published port. The host side is `${ENV:-default}` so the `.env` key moves it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PortDef {
    /// Container port.
    pub target: u16,
    /// `.env` key holding the host port.
    pub env: String,
    /// Host port when the key is unset.
    pub default: u16,
    /// Shapes in which the port is published. Full-shape publishing is reserved for the public entry (nginx).
    #[serde(default = "middleware_only")]
    pub shapes: Vec<Shape>,
    #[serde(default = "tcp")]
    pub protocol: String,
    #[serde(default)]
    pub description: String,
}

fn middleware_only() -> Vec<Shape> {
    vec![Shape::Middleware]
}

fn tcp() -> String {
    "tcp".to_string()
}

/// Compose `depends_on` conditions, spelled short in profiles.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DependencyCondition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

impl DependencyCondition {
    pub fn compose_name(self) -> &'static str {
        match self {
            DependencyCondition::Started => "service_started",
            DependencyCondition::Healthy => "service_healthy",
            DependencyCondition::CompletedSuccessfully => "service_completed_successfully",
        }
    }
}

/// A compose healthcheck. Durations are compose duration strings (`5s`, `1m30s`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthcheckDef {
    /// `["CMD", ...]` or `["CMD-SHELL", "..."]`.
    pub test: Vec<String>,
    #[serde(default = "default_interval")]
    pub interval: String,
    #[serde(default = "default_hc_timeout")]
    pub timeout: String,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_start_period")]
    pub start_period: String,
}

fn default_interval() -> String {
    "10s".into()
}
fn default_hc_timeout() -> String {
    "5s".into()
}
fn default_retries() -> u32 {
    5
}
fn default_start_period() -> String {
    "10s".into()
}

/// How a service is known to be ready, interpreted by one waiter: readiness is data, not code.
/// Written in profiles as `ready: healthcheck`, `ready: started` or a one-key map (`ready: {tcp: 6333}`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", try_from = "ReadinessDef")]
pub enum ReadinessProbe {
    /// Docker reports the container healthy.
    Healthcheck,
    /// The container is running.
    Started,
    /// A command run inside the container exits 0.
    Exec(Vec<String>),
    /// A TCP connection to the container port succeeds.
    Tcp(u16),
    /// An HTTP GET to the container port and path answers 2xx.
    Http { port: u16, path: String },
    /// PostgreSQL on the container port accepts connections, decided as `pg_isready` decides: the server
    /// answers a startup message with an authentication request or any error but "starting up / shutting
    /// down" (57P03). Probed from ragctl over TCP, without exec, as the container's `POSTGRES_USER` /
    /// `POSTGRES_DB`; the connection is closed at the authentication request, so the server logs nothing.
    Postgres(u16),
    /// The container exited with this code (one-shot jobs).
    Exit(i64),
}

/// The written form of [`ReadinessProbe`]: YAML maps read more naturally than YAML tags.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum ReadinessDef {
    Keyword(String),
    Map(ReadinessMap),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadinessMap {
    exec: Option<Vec<String>>,
    tcp: Option<u16>,
    http: Option<HttpProbe>,
    exit: Option<i64>,
    postgres: Option<u16>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpProbe {
    port: u16,
    path: String,
}

impl TryFrom<ReadinessDef> for ReadinessProbe {
    type Error = String;

    fn try_from(def: ReadinessDef) -> Result<Self, String> {
        const EXPECTED: &str = "expected `healthcheck`, `started`, or one of {exec: [..]}, {tcp: PORT}, {http: {port, path}}, {exit: CODE}, {postgres: PORT}";
        match def {
            ReadinessDef::Keyword(k) if k == "healthcheck" => Ok(ReadinessProbe::Healthcheck),
            ReadinessDef::Keyword(k) if k == "started" => Ok(ReadinessProbe::Started),
            ReadinessDef::Keyword(k) => Err(format!("ready: unknown probe `{k}`; {EXPECTED}")),
            ReadinessDef::Map(m) => match (m.exec, m.tcp, m.http, m.exit, m.postgres) {
                (Some(cmd), None, None, None, None) if !cmd.is_empty() => Ok(ReadinessProbe::Exec(cmd)),
                (None, Some(port), None, None, None) => Ok(ReadinessProbe::Tcp(port)),
                (None, None, Some(h), None, None) => Ok(ReadinessProbe::Http { port: h.port, path: h.path }),
                (None, None, None, Some(code), None) => Ok(ReadinessProbe::Exit(code)),
                (None, None, None, None, Some(port)) => Ok(ReadinessProbe::Postgres(port)),
                _ => Err(format!("ready: a probe needs exactly one kind; {EXPECTED}")),
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU limit, compose style (`"1.5"`).
    #[serde(default)]
    pub cpus: Option<String>,
    /// Memory limit, compose style (`512m`, `2g`).
    #[serde(default)]
    pub memory: Option<String>,
}

/// A value that parsed as YAML but means nothing: the key under the node checked (`None` when the node itself is
/// refused), the message and the fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub key: Option<&'static str>,
    pub message: String,
    pub hint: String,
}

impl Refusal {
    /// The error at the refused value, `path` leading to the node that holds it.
    pub fn at(self, origin: &str, text: &str, path: &[&str]) -> Error {
        let path: Vec<&str> = path.iter().copied().chain(self.key).collect();
        Error::Invalid {
            location: SourceLocation::of_yaml_value(origin, text, &path),
            message: self.message,
            hint: self.hint,
        }
    }
}

impl Resources {
    /// `cpus` must be a positive number and `memory` a positive size (what compose and Kubernetes accept).
    pub fn refusal(&self, service: &str) -> Option<Refusal> {
        if let Some(cpus) = &self.cpus
            && !cpus.trim().parse::<f64>().is_ok_and(|n| n.is_finite() && n > 0.0)
        {
            return Some(Refusal {
                key: Some("cpus"),
                message: format!("invalid cpus `{cpus}` for service `{service}`"),
                hint: "use a positive number of CPUs, such as 0.5 or \"2\"".to_string(),
            });
        }
        if let Some(memory) = &self.memory {
            return size_refusal("memory", memory, &format!("the memory of service `{service}`"));
        }
        None
    }
}

/// A compose byte size of more than 0 bytes, else why not.
fn size_refusal(key: &'static str, text: &str, what: &str) -> Option<Refusal> {
    match ByteSize::parse(text) {
        Some(size) if size.bytes() > 0 => None,
        _ => Some(Refusal {
            key: Some(key),
            message: format!("invalid size `{text}` for {what}"),
            hint: format!("use {}", byte_size::EXAMPLES),
        }),
    }
}

/// A compose duration: numbers with units `ns`, `us`, `ms`, `s`, `m`, `h` (`1m30s`, `500ms`, `1.5s`).
pub fn compose_duration(text: &str) -> Option<std::time::Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total_ns = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total_ns += number * factor;
        rest = &rest[unit_len..];
    }
    (total_ns.is_finite() && total_ns < u64::MAX as f64).then(|| std::time::Duration::from_nanos(total_ns as u64))
}

fn duration_refusal(key: &'static str, text: &str, service: &str) -> Option<Refusal> {
    compose_duration(text).is_none().then(|| Refusal {
        key: Some(key),
        message: format!("invalid duration `{text}` for `{key}` of service `{service}`"),
        hint: "use a number with a unit: ms, s, m or h, such as 10s, 1m30s or 500ms".to_string(),
    })
}

impl ServiceDef {
    /// Sizes, durations and limits that must mean something before the service is rendered.
    fn refusal(&self, name: &str) -> Option<(Vec<&'static str>, Refusal)> {
        if let Some(hc) = &self.healthcheck {
            let durations = [("interval", &hc.interval), ("timeout", &hc.timeout), ("start_period", &hc.start_period)];
            for (key, text) in durations {
                if let Some(r) = duration_refusal(key, text, name) {
                    return Some((vec!["healthcheck"], r));
                }
            }
        }
        if let Some(r) = self.stop_grace_period.as_deref().and_then(|t| duration_refusal("stop_grace_period", t, name))
        {
            return Some((vec![], r));
        }
        if let Some(r) = self
            .shm_size
            .as_deref()
            .and_then(|t| size_refusal("shm_size", t, &format!("`shm_size` of service `{name}`")))
        {
            return Some((vec![], r));
        }
        self.resources.as_ref().and_then(|r| r.refusal(name)).map(|r| (vec!["resources"], r))
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ulimit {
    pub soft: u64,
    pub hard: u64,
}

/// A config file rendered from a template.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Template path below `templates/`.
    pub template: String,
    /// Output path relative to the output directory.
    pub output: String,
    /// Shapes in which the file is needed.
    #[serde(default = "default_shapes")]
    pub shapes: Vec<Shape>,
    /// Executable bit for scripts (initdb hooks).
    #[serde(default)]
    pub executable: bool,
}

impl Profile {
    /// Parse one profile file. `origin` names the file in errors (`profiles/qdrant.yaml`).
    pub fn parse(origin: &str, text: &str) -> Result<Profile, Error> {
        let profile: Profile = yaml_serde::from_str(text).map_err(|e| Error::Parse {
            location: SourceLocation::from_yaml(origin, &e),
            message: SourceLocation::yaml_message(&e),
        })?;
        let stem = origin
            .rsplit('/')
            .next()
            .and_then(|f| f.strip_suffix(".yaml").or_else(|| f.strip_suffix(".yml")))
            .unwrap_or(origin);
        if profile.name != stem {
            return Err(Error::Parse {
                location: SourceLocation::file(origin),
                message: format!("profile name `{}` must match the file name `{stem}`", profile.name),
            });
        }
        for (name, service) in &profile.services {
            if let Some((under, refusal)) = service.refusal(name) {
                let path: Vec<&str> = ["services", name.as_str()].into_iter().chain(under).collect();
                return Err(refusal.at(origin, text, &path));
            }
        }
        Ok(profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_durations_need_a_unit() {
        assert_eq!(compose_duration("1m30s"), Some(std::time::Duration::from_secs(90)));
        assert_eq!(compose_duration("1.5s"), Some(std::time::Duration::from_millis(1500)));
        assert_eq!(compose_duration("500ms"), Some(std::time::Duration::from_millis(500)));
        for text in ["", "5", "fivesec", "10 s", "1d", "s"] {
            assert_eq!(compose_duration(text), None, "{text:?} was accepted");
        }
    }

    #[test]
    fn a_bad_size_or_duration_in_a_profile_names_its_position() {
        let text = "name: p\ndescription: d\nservices:\n  s:\n    image: x\n    shm_size: 1q\n";
        let err = Profile::parse("profiles/p.yaml", text).unwrap_err().to_string();
        assert!(err.starts_with("failed to parse `profiles/p.yaml:6:15`: invalid size `1q`"), "{err}");
        let text = "name: p\ndescription: d\nservices:\n  s:\n    image: x\n    stop_grace_period: soon\n";
        let err = Profile::parse("profiles/p.yaml", text).unwrap_err().to_string();
        assert!(err.starts_with("failed to parse `profiles/p.yaml:6:24`: invalid duration `soon`"), "{err}");
    }
}
