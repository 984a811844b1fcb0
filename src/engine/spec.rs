//! Desired state: the stack model, with `.env` values substituted, as the containers, networks and volumes
//! Docker should have. Pure. Names and labels follow compose so `docker compose -p P ps/logs` see ragctl's
//! containers: containers `<project>-<service>-<n>`, networks and volumes `<project>_<name>`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::interpolate::interpolate;
use crate::byte_size::{self, ByteSize};
use crate::docker::{ContainerCreate, PublishedPort};
use crate::error::Error;
use crate::profile::{DependencyCondition, ReadinessProbe, Shape};
use crate::stack::{Service, Stack, named_volume};

pub use crate::docker::{HealthCheck, LABEL_CONFIG_HASH, LABEL_DEPENDS_ON, LABEL_NUMBER, LABEL_PROJECT, LABEL_SERVICE};
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_NETWORK: &str = "com.docker.compose.network";
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";
/// ragctl's own marker: the object was created by ragctl (compose's labels say which project).
pub const LABEL_MANAGED: &str = "org.ragctl.managed";

/// How long `up` waits for a service to be ready when neither the profile nor `--timeout` says.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NetworkSpec {
    pub name: String,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VolumeSpec {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Serialize, PartialEq)]
pub struct PortSpec {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
    /// The `.env` key that moves the host port.
    pub env: String,
}

/// One container as Docker should run it. Holds resolved secrets in `env`: no `Debug`, never printed.
#[derive(Clone, Serialize, PartialEq)]
pub struct ContainerSpec {
    pub name: String,
    pub service: String,
    pub number: u32,
    pub image: String,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    pub healthcheck: Option<HealthCheck>,
    pub ports: Vec<PortSpec>,
    /// `source:target[:mode]` with a named volume's full name or an absolute host path.
    pub binds: Vec<String>,
    pub anonymous_volumes: Vec<String>,
    /// Full network names; the first is used at create time, the rest are connected before start.
    pub networks: Vec<String>,
    pub aliases: Vec<String>,
    pub restart: String,
    pub log_driver: Option<String>,
    pub log_options: BTreeMap<String, String>,
    pub nano_cpus: Option<i64>,
    pub memory: Option<i64>,
    pub shm_size: Option<i64>,
    pub security_opt: Vec<String>,
    pub cap_add: Vec<String>,
    pub tmpfs: BTreeMap<String, String>,
    pub ulimits: BTreeMap<String, (i64, i64)>,
    pub sysctls: BTreeMap<String, String>,
    pub stop_timeout: Option<i64>,
    pub labels: BTreeMap<String, String>,
    #[serde(skip)]
    pub depends_on: Vec<(String, DependencyCondition)>,
    #[serde(skip)]
    pub ready: ReadinessProbe,
    #[serde(skip)]
    pub ready_timeout: Duration,
}

impl ContainerSpec {
    pub fn config_hash(&self) -> &str {
        self.labels.get(LABEL_CONFIG_HASH).map(String::as_str).unwrap_or_default()
    }

    /// The container as the Docker seam creates it.
    pub fn create_request(&self) -> ContainerCreate {
        ContainerCreate {
            name: self.name.clone(),
            image: self.image.clone(),
            env: self.env.clone(),
            cmd: self.cmd.clone(),
            entrypoint: self.entrypoint.clone(),
            user: self.user.clone(),
            healthcheck: self.healthcheck.clone(),
            ports: self
                .ports
                .iter()
                .map(|p| PublishedPort {
                    host_ip: p.host_ip.clone(),
                    host_port: p.host_port,
                    container_port: p.container_port,
                    protocol: p.protocol.clone(),
                })
                .collect(),
            binds: self.binds.clone(),
            anonymous_volumes: self.anonymous_volumes.clone(),
            networks: self.networks.clone(),
            aliases: self.aliases.clone(),
            restart: self.restart.clone(),
            log_driver: self.log_driver.clone(),
            log_options: self.log_options.clone(),
            nano_cpus: self.nano_cpus,
            memory: self.memory,
            shm_size: self.shm_size,
            security_opt: self.security_opt.clone(),
            cap_add: self.cap_add.clone(),
            tmpfs: self.tmpfs.clone(),
            ulimits: self.ulimits.clone(),
            sysctls: self.sysctls.clone(),
            stop_timeout: self.stop_timeout,
            labels: self.labels.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Desired {
    pub project: String,
    pub networks: Vec<NetworkSpec>,
    pub volumes: Vec<VolumeSpec>,
    /// In dependency order.
    pub containers: Vec<ContainerSpec>,
}

impl Desired {
    pub fn services(&self) -> impl Iterator<Item = &str> {
        let mut seen = Vec::new();
        self.containers.iter().filter_map(move |c| {
            if seen.contains(&c.service.as_str()) {
                None
            } else {
                seen.push(c.service.as_str());
                Some(c.service.as_str())
            }
        })
    }

    pub fn replicas(&self, service: &str) -> impl Iterator<Item = &ContainerSpec> {
        self.containers.iter().filter(move |c| c.service == service)
    }
}

pub fn container_name(project: &str, service: &str, number: u32) -> String {
    format!("{project}-{service}-{number}")
}

/// Build the desired state. `vars` resolves `${VAR}` (the process environment over `.env`, as compose does).
/// `project_dir` is where the compose file lives: relative bind mounts are resolved against it.
pub fn desired(
    stack: &Stack,
    vars: &dyn Fn(&str) -> Option<String>,
    project_dir: &Path,
    timeout_override: Option<Duration>,
) -> Result<Desired, Error> {
    let project = &stack.project;
    let project_dir = std::fs::canonicalize(project_dir).unwrap_or_else(|_| project_dir.to_path_buf());
    let compose_file = project_dir.join(crate::render::COMPOSE_FILE);
    let base_labels = |kind_label: &str, name: &str| {
        BTreeMap::from([
            (LABEL_PROJECT.to_string(), project.clone()),
            (kind_label.to_string(), name.to_string()),
            (LABEL_MANAGED.to_string(), "true".to_string()),
        ])
    };
    let networks: Vec<NetworkSpec> = match stack.shape {
        Shape::Full => stack
            .networks
            .iter()
            .map(|n| NetworkSpec {
                name: format!("{project}_{}", n.name),
                internal: n.internal,
                labels: base_labels(LABEL_NETWORK, &n.name),
            })
            .collect(),
        Shape::Middleware => std::iter::once(NetworkSpec {
            name: format!("{project}_default"),
            internal: false,
            labels: base_labels(LABEL_NETWORK, "default"),
        })
        .chain(stack.networks.iter().map(|n| NetworkSpec {
            name: format!("{project}_{}", n.name),
            internal: n.internal,
            labels: base_labels(LABEL_NETWORK, &n.name),
        }))
        .collect(),
    };
    let volumes = stack
        .volumes
        .iter()
        .map(|v| VolumeSpec { name: format!("{project}_{v}"), labels: base_labels(LABEL_VOLUME, v) })
        .collect();

    let mut containers = Vec::new();
    for svc in stack.start_order() {
        for number in 1..=svc.replicas.max(1) {
            containers.push(container_spec(stack, svc, number, vars, &project_dir, &compose_file, timeout_override)?);
        }
    }
    Ok(Desired { project: project.clone(), networks, volumes, containers })
}

fn container_spec(
    stack: &Stack,
    svc: &Service,
    number: u32,
    vars: &dyn Fn(&str) -> Option<String>,
    project_dir: &Path,
    compose_file: &Path,
    timeout_override: Option<Duration>,
) -> Result<ContainerSpec, Error> {
    let project = &stack.project;
    let sub = |value: &str, field: &str| -> Result<String, Error> {
        interpolate(value, vars).map_err(|e| {
            let hint = match e.variable() {
                Some(_) => "run `ragctl secret gen`, or set the variable in .env",
                None => "fix the profile's value (write `$$` for a literal `$`)",
            };
            Error::config_hint(format!("failed to resolve {field} of service `{}`: {e}", svc.name), hint)
        })
    };
    let sub_all = |values: &[String], field: &str| -> Result<Vec<String>, Error> {
        values.iter().map(|v| sub(v, field)).collect()
    };

    let env = svc
        .environment
        .iter()
        .map(|(k, v)| Ok(format!("{k}={}", sub(v, &format!("environment `{k}`"))?)))
        .collect::<Result<Vec<_>, Error>>()?;

    let mut ports = Vec::new();
    for p in &svc.ports {
        let raw = format!("${{{}:-{}}}", p.env, p.default);
        let value = sub(&raw, &format!("port `{}`", p.env))?;
        let host_port = value.parse::<u16>().map_err(|_| {
            Error::config_hint(
                format!("invalid host port `{value}` for `{}` of service `{}`", p.env, svc.name),
                format!("set `{}` in .env to a port number", p.env),
            )
        })?;
        ports.push(PortSpec {
            host_ip: p.host_ip.clone(),
            host_port,
            container_port: p.target,
            protocol: p.protocol.clone(),
            env: p.env.clone(),
        });
    }

    let mut binds = Vec::new();
    let mut anonymous_volumes = Vec::new();
    for v in &svc.volumes {
        let v = sub(v, "volumes")?;
        if let Some(name) = named_volume(&v) {
            binds.push(format!("{project}_{name}{}", &v[name.len()..]));
        } else if !v.contains(':') {
            anonymous_volumes.push(v);
        } else {
            let (source, rest) = v.split_once(':').unwrap_or((&v, ""));
            let source = if Path::new(source).is_absolute() {
                source.to_string()
            } else {
                project_dir.join(source.trim_start_matches("./")).display().to_string()
            };
            binds.push(format!("{source}:{rest}"));
        }
    }

    let networks: Vec<String> = if svc.networks.is_empty() {
        vec![format!("{project}_default")]
    } else {
        svc.networks.iter().map(|n| format!("{project}_{n}")).collect()
    };

    let healthcheck = match &svc.healthcheck {
        Some(h) => Some(HealthCheck {
            test: sub_all(&h.test, "healthcheck")?,
            interval_ns: duration_ns(&h.interval, &svc.name)?,
            timeout_ns: duration_ns(&h.timeout, &svc.name)?,
            retries: i64::from(h.retries),
            start_period_ns: duration_ns(&h.start_period, &svc.name)?,
        }),
        None => None,
    };
    // Readiness commands run inside the container; `$VAR` there is the container's environment, not compose's.
    let ready = svc.ready.clone();

    let (log_driver, log_options) = match &svc.logging {
        Some(l) => (
            Some(l.driver.clone()),
            BTreeMap::from([
                ("max-size".to_string(), l.max_size.clone()),
                ("max-file".to_string(), l.max_file.to_string()),
            ]),
        ),
        None => (None, BTreeMap::new()),
    };
    let (nano_cpus, memory) = match &svc.resources {
        Some(r) => (
            r.cpus.as_deref().map(|c| parse_cpus(c, &svc.name)).transpose()?,
            r.memory.as_deref().map(|m| parse_bytes(m, &svc.name)).transpose()?,
        ),
        None => (None, None),
    };

    let mut labels = BTreeMap::from([
        (LABEL_PROJECT.to_string(), project.clone()),
        (LABEL_SERVICE.to_string(), svc.name.clone()),
        (LABEL_NUMBER.to_string(), number.to_string()),
        (LABEL_ONEOFF.to_string(), "False".to_string()),
        (LABEL_CONFIG_FILES.to_string(), compose_file.display().to_string()),
        (LABEL_WORKING_DIR.to_string(), project_dir.display().to_string()),
        (
            LABEL_DEPENDS_ON.to_string(),
            svc.depends_on.iter().map(|(d, c)| format!("{d}:{}:false", c.compose_name())).collect::<Vec<_>>().join(","),
        ),
        (LABEL_MANAGED.to_string(), "true".to_string()),
    ]);

    let mut spec = ContainerSpec {
        name: container_name(project, &svc.name, number),
        service: svc.name.clone(),
        number,
        image: svc.image.clone(),
        env,
        cmd: svc.command.as_deref().map(|c| sub_all(c, "command")).transpose()?,
        entrypoint: svc.entrypoint.as_deref().map(|c| sub_all(c, "entrypoint")).transpose()?,
        user: svc.user.clone(),
        healthcheck,
        ports,
        binds,
        anonymous_volumes,
        networks,
        aliases: vec![svc.name.clone()],
        restart: svc.restart.clone(),
        log_driver,
        log_options,
        nano_cpus,
        memory,
        shm_size: svc.shm_size.as_deref().map(|s| parse_bytes(s, &svc.name)).transpose()?,
        security_opt: svc.security_opt.clone(),
        cap_add: svc.cap_add.clone(),
        tmpfs: svc.tmpfs.iter().map(|t| (t.clone(), String::new())).collect(),
        ulimits: svc.ulimits.iter().map(|(k, u)| (k.clone(), (u.soft as i64, u.hard as i64))).collect(),
        sysctls: svc.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        stop_timeout: svc
            .stop_grace_period
            .as_deref()
            .map(|d| duration_ns(d, &svc.name).map(|ns| ns / 1_000_000_000))
            .transpose()?,
        labels: BTreeMap::new(),
        depends_on: svc.depends_on.iter().map(|(d, c)| (d.clone(), *c)).collect(),
        ready,
        ready_timeout: timeout_override.or(svc.timeout.map(Duration::from_secs)).unwrap_or(DEFAULT_READY_TIMEOUT),
    };
    // The hash covers everything Docker is told (labels included, the hash itself excluded), so any change
    // that needs a new container changes it, and nothing else does.
    spec.labels = labels.clone();
    let json = serde_json::to_vec(&spec).unwrap_or_default();
    let hash = Sha256::digest(&json).iter().map(|b| format!("{b:02x}")).collect::<String>();
    labels.insert(LABEL_CONFIG_HASH.to_string(), hash);
    spec.labels = labels;
    Ok(spec)
}

/// Compose durations: `1h2m3s`, `500ms`, `10s`, `1.5s`.
pub fn duration_ns(s: &str, service: &str) -> Result<i64, Error> {
    crate::profile::compose_duration(s).and_then(|d| i64::try_from(d.as_nanos()).ok()).ok_or_else(|| {
        Error::config(format!("invalid duration `{s}` in service `{service}` (use e.g. 10s, 1m30s, 500ms)"))
    })
}

/// A compose byte size (`512m`, `1.5g`) in bytes, as the engine API wants it.
pub fn parse_bytes(s: &str, service: &str) -> Result<i64, Error> {
    ByteSize::parse(s).and_then(|size| i64::try_from(size.bytes()).ok()).ok_or_else(|| {
        Error::config_hint(format!("invalid size `{s}` in service `{service}`"), format!("use {}", byte_size::EXAMPLES))
    })
}

fn parse_cpus(s: &str, service: &str) -> Result<i64, Error> {
    let cpus: f64 =
        s.trim().parse().map_err(|_| Error::config(format!("invalid cpus `{s}` in service `{service}`")))?;
    Ok((cpus * 1e9) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(profiles: &[&str], file: &str) -> Stack {
        crate::stack::test_support::embedded_stack(profiles, file)
    }

    fn vars(name: &str) -> Option<String> {
        crate::stack::test_support::fake_vars(name)
    }

    #[test]
    fn middleware_containers_use_compose_names_labels_and_resolved_values() {
        let d = desired(&stack(&["weaviate"], "project: demo\n"), &vars, Path::new("/p/demo"), None).unwrap();
        let networks: Vec<(&str, bool)> = d.networks.iter().map(|n| (n.name.as_str(), n.internal)).collect();
        assert_eq!(networks, [("demo_default", false), ("demo_ssrf_proxy_network", true)]);
        let sandbox = d.containers.iter().find(|c| c.service == "sandbox").unwrap();
        assert_eq!(sandbox.networks, ["demo_ssrf_proxy_network"], "the sandbox is only on the internal network");
        let proxy = d.containers.iter().find(|c| c.service == "ssrf_proxy").unwrap();
        assert_eq!(proxy.networks, ["demo_default", "demo_ssrf_proxy_network"]);
        assert_eq!(d.volumes.len(), 5, "db, redis, weaviate, sandbox dependencies, plugin storage");
        let db = d.containers.iter().find(|c| c.service == "db_postgres").unwrap();
        assert_eq!(db.name, "demo-db_postgres-1");
        assert_eq!(db.labels[LABEL_PROJECT], "demo");
        assert_eq!(db.labels[LABEL_ONEOFF], "False");
        assert!(db.env.contains(&"POSTGRES_PASSWORD=secret-DB_PASSWORD".to_string()));
        assert_eq!((db.ports[0].host_ip.as_str(), db.ports[0].host_port), ("127.0.0.1", 6543));
        assert_eq!(db.binds[0], "demo_db_data:/var/lib/postgresql/data");
        assert_eq!(
            db.healthcheck.as_ref().unwrap().test[1],
            "pg_isready -h 127.0.0.1 -U ${POSTGRES_USER} -d ${POSTGRES_DB}"
        );
        assert_eq!(db.config_hash().len(), 64);
        // dependency order: each after what it depends on, declaration order among equals
        assert_eq!(
            d.services().collect::<Vec<_>>(),
            ["db_postgres", "redis", "sandbox", "ssrf_proxy", "plugin_daemon", "weaviate"]
        );
    }

    #[test]
    fn the_hash_changes_only_with_the_container_configuration() {
        let s = stack(&["weaviate"], "project: demo\n");
        let a = desired(&s, &vars, Path::new("/p/demo"), None).unwrap();
        let b = desired(&s, &vars, Path::new("/p/demo"), None).unwrap();
        assert_eq!(a.containers[0].config_hash(), b.containers[0].config_hash());
        let other = |n: &str| if n == "EXPOSE_POSTGRES_PORT" { Some("7000".into()) } else { vars(n) };
        let c = desired(&s, &other, Path::new("/p/demo"), None).unwrap();
        let hash =
            |d: &Desired, svc: &str| d.containers.iter().find(|c| c.service == svc).unwrap().config_hash().to_string();
        assert_ne!(hash(&a, "db_postgres"), hash(&c, "db_postgres"));
        assert_eq!(hash(&a, "redis"), hash(&c, "redis"));
    }

    #[test]
    fn replicas_become_numbered_containers_and_missing_secrets_are_config_errors() {
        let s = stack(&["app"], "project: demo\nshape: full\n");
        let d = desired(&s, &vars, Path::new("/p/demo"), None).unwrap();
        let api: Vec<&str> = d.replicas("api").map(|c| c.name.as_str()).collect();
        assert_eq!(api, ["demo-api-1", "demo-api-2", "demo-api-3"]);
        let none = |_: &str| None;
        let err = desired(&s, &none, Path::new("/p/demo"), None).err().unwrap();
        assert!(err.to_string().contains("required variable `DB_PASSWORD` is not set"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(duration_ns("1m30s", "s").unwrap(), 90_000_000_000);
        assert_eq!(duration_ns("500ms", "s").unwrap(), 500_000_000);
        assert!(duration_ns("5 parsecs", "s").is_err());
        assert_eq!(parse_bytes("2g", "s").unwrap(), 2 * 1024 * 1024 * 1024);
        assert_eq!(parse_bytes("128MB", "s").unwrap(), 128 * 1024 * 1024);
        assert!(parse_bytes("lots", "s").is_err());
    }
}
