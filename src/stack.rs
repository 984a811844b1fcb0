//! The stack model: which services, networks, volumes, secrets and files a choice of profiles and settings
//! produces. Pure: no file system, no Docker. `render` turns a [`Stack`] into files and the engine turns the
//! same [`Stack`] into containers, so both always agree.

use std::collections::{BTreeSet, HashMap};

use indexmap::IndexMap;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::Error;
use crate::profile::{
    DependencyCondition, EnvSetting, FileSpec, HealthcheckDef, Profile, ReadinessProbe, Resources, SecretSpec, Shape,
    Ulimit,
};
use crate::settings::Settings;

mod release_env;
use release_env::apply_release;

/// Networks of the full shape. `data` is internal: databases are reachable only from services on it.
/// `ssrf_proxy_network` is internal too (Dify's name): the sandbox's only network, shared with ssrf_proxy (its
/// only way out) and the services that call the sandbox.
pub const FULL_NETWORKS: [(&str, bool); 4] =
    [("frontend", false), ("backend", false), ("data", true), (SSRF_NETWORK, true)];

/// The internal network of the sandbox and ssrf_proxy, in both shapes.
pub const SSRF_NETWORK: &str = "ssrf_proxy_network";

/// Compose's implicit network of the middleware shape.
pub const DEFAULT_NETWORK: &str = "default";

#[derive(Debug, Clone, Serialize)]
pub struct Stack {
    pub project: String,
    pub shape: Shape,
    /// Enabled profiles in canonical order: always-on first, then by name.
    pub profiles: Vec<String>,
    pub services: IndexMap<String, Service>,
    pub networks: Vec<Network>,
    pub volumes: Vec<String>,
    pub secrets: Vec<StackSecret>,
    pub env: IndexMap<String, EnvSetting>,
    /// The release's shared environment block (compose text), when a service merges it whole: the compose file
    /// writes it once as `x-shared-env` and such services refer to it, as Dify's compose does.
    pub shared_env: IndexMap<String, String>,
    pub files: Vec<FileSpec>,
    pub checks: Vec<String>,
    /// Profiles added without being asked for (defaults of an exclusive group, requirements).
    pub implied_profiles: Vec<String>,
    /// Things the operator should know about this choice of profiles and shape.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StackSecret {
    #[serde(flatten)]
    pub spec: SecretSpec,
    pub profile: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Network {
    pub name: String,
    pub internal: bool,
}

/// A published port: `host_ip:${env:-default}:target`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PublishedPort {
    /// Empty means every interface.
    pub host_ip: String,
    pub env: String,
    pub default: u16,
    pub target: u16,
    pub protocol: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Logging {
    pub driver: String,
    pub max_size: String,
    pub max_file: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub name: String,
    pub profile: String,
    pub description: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub user: Option<String>,
    /// Every entry, the release's included (what the container receives). Not serialized: templates get the
    /// entries the compose file lists, already filtered (`render`), instead of ~700 per Dify service.
    #[serde(skip)]
    pub environment: IndexMap<String, String>,
    /// `environment` holds every key of [`Stack::shared_env`] (possibly with other values): rendered as a
    /// reference to the shared block plus the keys that differ from it.
    pub shared_env: bool,
    pub ports: Vec<PublishedPort>,
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
    pub depends_on: IndexMap<String, DependencyCondition>,
    pub healthcheck: Option<HealthcheckDef>,
    pub ready: ReadinessProbe,
    pub stateless: bool,
    pub replicas: u32,
    pub resources: Option<Resources>,
    /// Seconds `up` waits for readiness.
    pub timeout: Option<u64>,
    pub restart: String,
    pub logging: Option<Logging>,
    pub security_opt: Vec<String>,
    pub stop_grace_period: Option<String>,
    pub shm_size: Option<String>,
    pub tmpfs: Vec<String>,
    pub cap_add: Vec<String>,
    pub ulimits: IndexMap<String, Ulimit>,
    pub sysctls: IndexMap<String, String>,
    pub host_sysctls: IndexMap<String, u64>,
}

impl Stack {
    /// Build the stack for the settings' profiles and shape.
    pub fn build(settings: &Settings, catalog: &Catalog) -> Result<Stack, Error> {
        check_port_keys(settings, catalog)?;
        let (profiles, implied) = select_profiles(&settings.profiles, catalog)?;
        let mut warnings = Vec::new();
        renamed_port_keys(settings, &mut warnings)?;
        let shape = effective_shape(settings, &profiles, &mut warnings)?;

        let mut services: IndexMap<String, Service> = IndexMap::new();
        let mut defined_by: HashMap<String, String> = HashMap::new();
        for profile in &profiles {
            for replaced in &profile.replaces {
                services.shift_remove(replaced);
            }
            let mut in_shape = 0;
            for (name, def) in &profile.services {
                if !def.shapes.contains(&shape) {
                    continue;
                }
                in_shape += 1;
                if let Some(other) = defined_by.get(name)
                    && services.contains_key(name)
                {
                    return Err(Error::config_hint(
                        format!("service `{name}` is defined by profiles `{other}` and `{}`", profile.name),
                        format!("add `replaces: [{name}]` to one of them"),
                    ));
                }
                defined_by.insert(name.clone(), profile.name.clone());
                services.insert(name.clone(), Service::from_def(name, &profile.name, def, shape, settings)?);
            }
            if in_shape == 0 && !profile.services.is_empty() {
                // Like compose ignoring services of a disabled profile, but said out loud: a developer who
                // switches an app project to the middleware shape wants its data layer, not an error.
                warnings.push(format!(
                    "profile `{}` has no services in the {} shape; only its settings and secrets apply (use --shape full for its services)",
                    profile.name,
                    shape.as_str()
                ));
            }
        }

        for profile in &profiles {
            for (target, patch) in &profile.patches {
                if let Some(svc) = services.get_mut(target) {
                    svc.environment.extend(patch.environment.clone());
                    svc.depends_on.extend(patch.depends_on.clone());
                    if shape == Shape::Full {
                        for n in &patch.networks {
                            if !svc.networks.contains(n) {
                                svc.networks.push(n.clone());
                            }
                        }
                    }
                    svc.volumes.extend(patch.volumes.iter().cloned());
                }
            }
        }

        let shared_env = apply_release(&mut services, settings, &profiles, shape)?;
        check_dependencies(&services, catalog)?;
        apply_settings_overrides(&mut services, settings, shape)?;

        let networks = match shape {
            Shape::Full => {
                for svc in services.values() {
                    if svc.networks.is_empty() {
                        return Err(Error::config(format!(
                            "service `{}` of profile `{}` declares no networks; the full shape needs at least one of frontend, backend, data, ssrf_proxy_network",
                            svc.name, svc.profile
                        )));
                    }
                    if let Some(bad) = svc.networks.iter().find(|n| !FULL_NETWORKS.iter().any(|(f, _)| f == n)) {
                        return Err(Error::config(format!(
                            "service `{}` of profile `{}` uses unknown network `{bad}`; use frontend, backend, data or ssrf_proxy_network",
                            svc.name, svc.profile
                        )));
                    }
                    if svc.healthcheck.is_none() {
                        return Err(Error::config(format!(
                            "service `{}` of profile `{}` has no healthcheck; the full shape requires one on every service",
                            svc.name, svc.profile
                        )));
                    }
                }
                FULL_NETWORKS
                    .iter()
                    .filter(|(n, _)| services.values().any(|s| s.networks.iter().any(|sn| sn == n)))
                    .map(|(n, internal)| Network { name: n.to_string(), internal: *internal })
                    .collect()
            }
            Shape::Middleware => {
                // One network, compose's `default`, except for Dify's isolation: a service on the internal
                // `ssrf_proxy_network` keeps it, and joins `default` (first: the engine publishes ports and
                // routes out through a container's first network) only if it had any other network.
                let mut isolated = false;
                for svc in services.values_mut() {
                    if svc.networks.iter().any(|n| n == SSRF_NETWORK) {
                        let others = svc.networks.iter().any(|n| n != SSRF_NETWORK);
                        svc.networks = if others {
                            vec![DEFAULT_NETWORK.to_string(), SSRF_NETWORK.to_string()]
                        } else {
                            vec![SSRF_NETWORK.to_string()]
                        };
                        isolated = true;
                    } else {
                        svc.networks.clear();
                    }
                }
                if isolated { vec![Network { name: SSRF_NETWORK.to_string(), internal: true }] } else { Vec::new() }
            }
        };

        let mut volumes = BTreeSet::new();
        for svc in services.values() {
            for v in &svc.volumes {
                if let Some(name) = named_volume(v) {
                    volumes.insert(name.to_string());
                }
            }
        }
        for p in &profiles {
            volumes.extend(p.volumes.iter().cloned());
        }

        let mut secrets: Vec<StackSecret> = Vec::new();
        let mut env = IndexMap::new();
        let mut files = Vec::new();
        let mut checks = Vec::new();
        for p in &profiles {
            for s in &p.secrets {
                if !secrets.iter().any(|e| e.spec.name == s.name) {
                    secrets.push(StackSecret { spec: s.clone(), profile: p.name.clone() });
                }
            }
            env.extend(p.env.clone());
            files.extend(p.files.iter().filter(|f| f.shapes.contains(&shape)).cloned());
            for c in &p.checks {
                if !checks.contains(c) {
                    checks.push(c.clone());
                }
            }
        }
        validate_secret_references(&secrets)?;

        Ok(Stack {
            project: settings.project_name.clone(),
            shape,
            profiles: profiles.iter().map(|p| p.name.clone()).collect(),
            services,
            networks,
            volumes: volumes.into_iter().collect(),
            secrets,
            env,
            shared_env,
            files,
            checks,
            implied_profiles: implied,
            warnings,
        })
    }

    /// Services ordered so each comes after its dependencies (stable: declaration order among equals).
    pub fn start_order(&self) -> Vec<&Service> {
        let mut placed: Vec<&Service> = Vec::new();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        while placed.len() < self.services.len() {
            let before = placed.len();
            for svc in self.services.values() {
                if !done.contains(svc.name.as_str()) && svc.depends_on.keys().all(|d| done.contains(d.as_str())) {
                    done.insert(&svc.name);
                    placed.push(svc);
                }
            }
            if placed.len() == before {
                break; // cycles are rejected by `build`; never loop forever
            }
        }
        placed
    }
}

impl Service {
    fn from_def(
        name: &str,
        profile: &str,
        def: &crate::profile::ServiceDef,
        shape: Shape,
        settings: &Settings,
    ) -> Result<Service, Error> {
        let full = shape == Shape::Full;
        let mut ports: Vec<PublishedPort> = def
            .ports
            .iter()
            .filter(|p| p.shapes.contains(&shape))
            .map(|p| PublishedPort {
                host_ip: if full { settings.public_address.clone() } else { settings.bind_address.clone() },
                env: p.env.clone(),
                default: configured_port(settings, &p.env).unwrap_or(p.default),
                target: p.target,
                protocol: p.protocol.clone(),
                description: p.description.clone(),
            })
            .collect();
        // Sorted as their rendered form sorts, so linters that want ordered ports are satisfied.
        ports.sort_by(|a, b| (&a.host_ip, &a.env).cmp(&(&b.host_ip, &b.env)));
        let ready = def.ready.clone().unwrap_or(if def.healthcheck.is_some() {
            ReadinessProbe::Healthcheck
        } else {
            ReadinessProbe::Started
        });
        Ok(Service {
            name: name.to_string(),
            profile: profile.to_string(),
            description: def.description.clone(),
            image: def.image.clone(),
            command: def.command.clone(),
            entrypoint: def.entrypoint.clone(),
            user: def.user.clone(),
            environment: def.environment.clone(),
            shared_env: false,
            ports,
            volumes: def.volumes.clone(),
            networks: def.networks.clone(),
            depends_on: def.depends_on.clone(),
            healthcheck: def.healthcheck.clone(),
            ready,
            stateless: def.stateless,
            replicas: if full { def.replicas } else { 1 },
            resources: if full { def.resources.clone() } else { None },
            timeout: def.timeout,
            restart: "unless-stopped".into(),
            logging: Some(Logging { driver: "json-file".into(), max_size: "10m".into(), max_file: 3 }),
            security_opt: {
                let mut opts = def.security_opt.clone();
                if full && !opts.iter().any(|o| o.starts_with("no-new-privileges")) {
                    opts.push("no-new-privileges:true".into());
                }
                opts
            },
            stop_grace_period: def.stop_grace_period.clone(),
            shm_size: def.shm_size.clone(),
            tmpfs: def.tmpfs.clone(),
            cap_add: def.cap_add.clone(),
            ulimits: def.ulimits.clone(),
            sysctls: def.sysctls.clone(),
            host_sysctls: def.host_sysctls.clone(),
        })
    }
}

/// Resolve requested names to profiles: validate, add requirements and group defaults, reject conflicts.
fn select_profiles<'c>(requested: &[String], catalog: &'c Catalog) -> Result<(Vec<&'c Profile>, Vec<String>), Error> {
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    let mut implied = Vec::new();
    let mut queue: Vec<(String, Option<String>)> = requested.iter().map(|r| (r.clone(), None)).collect();
    while let Some((name, required_by)) = queue.pop() {
        let entry = catalog.get(&name).filter(|e| !e.profile.always);
        let Some(entry) = entry else {
            return Err(match required_by {
                Some(by) => Error::config(format!("profile `{by}` requires unknown profile `{name}`")),
                None => Error::UnknownProfile { name, available: catalog.selectable_names() },
            });
        };
        if chosen.insert(name.clone()) {
            if required_by.is_some() {
                implied.push(name.clone());
            }
            for r in &entry.profile.requires {
                queue.push((r.clone(), Some(name.clone())));
            }
        }
    }

    let mut groups: IndexMap<&str, Vec<&str>> = IndexMap::new();
    for name in &chosen {
        if let Some(g) = catalog.get(name).and_then(|e| e.profile.exclusive.as_deref()) {
            groups.entry(g).or_default().push(name);
        }
    }
    for (group, members) in &groups {
        if members.len() > 1 {
            return Err(Error::config_hint(
                format!(
                    "profiles {} are mutually exclusive: each chooses the `{group}`",
                    members.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(" and ")
                ),
                "enable only one of them with --profile or `profiles:` in ragctl.yaml",
            ));
        }
    }
    let defaults: Vec<String> = catalog
        .iter()
        .filter(|e| e.profile.default && !e.profile.always)
        .filter(|e| match &e.profile.exclusive {
            Some(g) => !groups.contains_key(g.as_str()),
            None => false,
        })
        .map(|e| e.profile.name.clone())
        .collect();
    for d in defaults {
        if chosen.insert(d.clone()) {
            implied.push(d);
        }
    }

    let mut profiles: Vec<&Profile> = catalog.iter().filter(|e| e.profile.always).map(|e| &e.profile).collect();
    profiles.extend(chosen.iter().filter_map(|n| catalog.get(n)).map(|e| &e.profile));
    implied.sort();
    Ok((profiles, implied))
}

/// Every `depends_on` names an enabled service, and there is no cycle.
fn check_dependencies(services: &IndexMap<String, Service>, catalog: &Catalog) -> Result<(), Error> {
    for svc in services.values() {
        for dep in svc.depends_on.keys() {
            if !services.contains_key(dep) {
                let provider = catalog
                    .iter()
                    .find(|e| e.profile.services.contains_key(dep))
                    .map(|e| format!("enable profile `{}`", e.profile.name));
                return Err(Error::Config {
                    message: format!("service `{}` depends on `{dep}`, which is not enabled", svc.name),
                    hint: Some(provider.unwrap_or_else(|| format!("remove `{dep}` from its depends_on"))),
                });
            }
        }
    }
    // Depth-first search with colours; report the first cycle found as a path.
    fn visit<'a>(
        name: &'a str,
        services: &'a IndexMap<String, Service>,
        state: &mut HashMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(name) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| *p == name).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(name.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(name, 1);
        path.push(name);
        if let Some(svc) = services.get(name) {
            for dep in svc.depends_on.keys() {
                if let Some(c) = visit(dep, services, state, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        state.insert(name, 2);
        None
    }
    let mut state = HashMap::new();
    for name in services.keys() {
        if let Some(cycle) = visit(name, services, &mut state, &mut Vec::new()) {
            return Err(Error::config(format!("dependency cycle: {}", cycle.join(" → "))));
        }
    }
    Ok(())
}

/// Port keys ragctl used before it took Dify's name: (old, current). `ports:` in ragctl.yaml still reads the old
/// name (with a warning); a `.env` that still sets it is refused by [`renamed_port_keys_in_env`], because docker
/// compose reads `.env` itself and would publish the port at its default.
pub const RENAMED_PORT_KEYS: &[(&str, &str)] = &[("EXPOSE_DB_PORT", "EXPOSE_POSTGRES_PORT")];

/// The host port `ports:` in ragctl.yaml sets for `key`, under its current name or its old one.
pub fn configured_port(settings: &Settings, key: &str) -> Option<u16> {
    settings.ports.get(key).copied().or_else(|| {
        RENAMED_PORT_KEYS.iter().find(|(_, new)| *new == key).and_then(|(old, _)| settings.ports.get(*old).copied())
    })
}

/// Old port keys under `ports:`: a warning for each, or a refusal when the current name is there too.
fn renamed_port_keys(settings: &Settings, warnings: &mut Vec<String>) -> Result<(), Error> {
    for (old, new) in RENAMED_PORT_KEYS {
        let Some(port) = settings.ports.get(*old) else { continue };
        if settings.ports.contains_key(*new) {
            return Err(Error::Invalid {
                location: settings.project_file_key(&["ports", old]),
                message: format!("`{old}` is the old name of `{new}`, which is set too"),
                hint: format!("remove `{old}` from `ports:`; `{new}` is the key read"),
            });
        }
        warnings.push(format!(
            "ragctl.yaml: `ports: {{{old}: {port}}}` is the old name of `{new}` (Dify's key); read as `{new}: {port}` \
             — rename it in ragctl.yaml"
        ));
    }
    Ok(())
}

/// A `.env` that sets an old port key: compose would ignore it and publish the port at its default, so the old
/// name is refused with the line to write instead (none when the current name is set to the same value).
pub fn renamed_port_keys_in_env(doc: &crate::dotenv::DotEnv, path: &std::path::Path) -> Result<(), Error> {
    for (old, new) in RENAMED_PORT_KEYS {
        let Some(value) = doc.get(old).filter(|v| !v.is_empty()) else { continue };
        let current = doc.get(new).filter(|v| !v.is_empty());
        if current == Some(value) {
            continue;
        }
        let text = doc.render();
        let line = text
            .lines()
            .position(|l| {
                let l = l.trim_start();
                let l = l.strip_prefix("export ").map(str::trim_start).unwrap_or(l);
                l.strip_prefix(old).is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map(|i| i + 1);
        let (message, hint) = match current {
            None => (
                format!(
                    "`{old}={value}` is the old name of `{new}`; it would be ignored and the port published at its default"
                ),
                format!("rename the key in `{}`: {new}={value}", path.display()),
            ),
            Some(current) => (
                format!("`{old}={value}` is the old name of `{new}`, which is set to {current}"),
                format!(
                    "remove the `{old}` line from `{}` (or set {new}={value} to keep the port where it was)",
                    path.display()
                ),
            ),
        };
        let file = path.display().to_string();
        let location = match line {
            Some(line) => crate::error::SourceLocation::at(file, line, 1),
            None => crate::error::SourceLocation::file(file),
        };
        return Err(Error::Invalid { location, message, hint });
    }
    Ok(())
}

/// Every key under `ports:` in ragctl.yaml must move a port some profile publishes: a misspelt key would
/// otherwise be ignored and the port stay where it was. Keys of profiles not enabled are fine (switching the
/// vector store keeps the other's port setting).
fn check_port_keys(settings: &Settings, catalog: &Catalog) -> Result<(), Error> {
    let known: Vec<&str> = catalog
        .iter()
        .flat_map(|entry| entry.profile.services.values())
        .flat_map(|service| service.ports.iter().map(|p| p.env.as_str()))
        .collect();
    let is_known = |key: &str| {
        known.contains(&key) || RENAMED_PORT_KEYS.iter().any(|(old, new)| *old == key && known.contains(new))
    };
    match settings.ports.keys().find(|key| !is_known(key)) {
        None => Ok(()),
        Some(key) => {
            let mut keys = known.clone();
            keys.sort_unstable();
            keys.dedup();
            Err(Error::Invalid {
                location: settings.project_file_key(&["ports", key]),
                message: format!("no profile publishes a port by `{key}`"),
                hint: format!("a key under `ports:` is one of: {}", keys.join(", ")),
            })
        }
    }
}

/// The shape to build. A profile asked for whose services all run only in the full shape (`app`) implies the
/// full shape when nothing chose one; when the middleware shape was chosen, that is a usage error naming the fix,
/// never a stack without the services asked for.
fn effective_shape(settings: &Settings, profiles: &[&Profile], warnings: &mut Vec<String>) -> Result<Shape, Error> {
    if settings.shape == Shape::Full {
        return Ok(Shape::Full);
    }
    let full_only = profiles.iter().find(|p| {
        settings.profiles.contains(&p.name)
            && !p.services.is_empty()
            && p.services.values().all(|s| !s.shapes.contains(&Shape::Middleware))
    });
    let Some(profile) = full_only else {
        return Ok(settings.shape);
    };
    let name = &profile.name;
    match settings.shape_source {
        None => {
            warnings.push(format!(
                "profile `{name}` runs only in the full shape: using the full shape (no shape was chosen; pass --shape full to say so)"
            ));
            Ok(Shape::Full)
        }
        Some(origin) => {
            let fix = match origin {
                "--shape" => format!("run with `--shape full`, or leave out profile `{name}`"),
                ev if ev == crate::env_vars::RAGCTL_SHAPE => {
                    format!("set {ev}=full, or leave out profile `{name}`")
                }
                _ => format!("set `shape: full` in ragctl.yaml (or pass --shape full), or leave out profile `{name}`"),
            };
            Err(Error::config_hint(
                format!("profile `{name}` runs only in the full shape, but {origin} chose the middleware shape"),
                fix,
            ))
        }
    }
}

fn apply_settings_overrides(
    services: &mut IndexMap<String, Service>,
    settings: &Settings,
    shape: Shape,
) -> Result<(), Error> {
    for (name, count) in &settings.replicas {
        let Some(svc) = services.get_mut(name) else {
            continue;
        };
        if shape != Shape::Full {
            continue;
        }
        if *count > 1 && !svc.stateless {
            return Err(Error::config_hint(
                format!("service `{name}` keeps state and cannot run {count} replicas"),
                format!("remove `{name}` from `replicas:` in ragctl.yaml"),
            ));
        }
        if !svc.ports.is_empty() && *count > 1 {
            return Err(Error::config(format!(
                "service `{name}` publishes host ports and cannot run {count} replicas"
            )));
        }
        svc.replicas = *count;
    }
    for (name, res) in &settings.resources {
        if let Some(svc) = services.get_mut(name)
            && shape == Shape::Full
        {
            let current = svc.resources.get_or_insert(Resources { cpus: None, memory: None });
            if res.cpus.is_some() {
                current.cpus = res.cpus.clone();
            }
            if res.memory.is_some() {
                current.memory = res.memory.clone();
            }
        }
    }
    for svc in services.values_mut() {
        if let Some(image) = settings.image_override(&svc.name) {
            svc.image = image.to_string();
        } else if let Some(registry) = &settings.registry {
            svc.image = format!("{registry}/{}", svc.image);
        }
    }
    Ok(())
}

/// `name:/path[:mode]` where `name` is a named volume (not a path or an interpolation).
pub fn named_volume(spec: &str) -> Option<&str> {
    let source = spec.split(':').next()?;
    let is_path =
        source.starts_with('.') || source.starts_with('/') || source.starts_with('~') || source.starts_with('$');
    (!is_path && spec.contains(':') && !source.is_empty()).then_some(source)
}

/// `equals` and `derive` name secrets of the stack.
fn validate_secret_references(secrets: &[StackSecret]) -> Result<(), Error> {
    let known = |n: &str| secrets.iter().any(|s| s.spec.name == n);
    for s in secrets {
        if let Some(other) = &s.spec.equals
            && !known(other)
        {
            return Err(Error::config(format!(
                "secret `{}` of profile `{}` must equal `{other}`, which no enabled profile declares",
                s.spec.name, s.profile
            )));
        }
        if let Some(template) = &s.spec.derive {
            for name in derive_references(template) {
                if !known(name) {
                    return Err(Error::config(format!(
                        "secret `{}` of profile `{}` is derived from `{name}`, which no enabled profile declares",
                        s.spec.name, s.profile
                    )));
                }
            }
        }
        let kinds = [s.spec.format.is_some(), s.spec.equals.is_some(), s.spec.derive.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(Error::config(format!(
                "secret `{}` of profile `{}` needs exactly one of `format`, `equals`, `derive`",
                s.spec.name, s.profile
            )));
        }
    }
    Ok(())
}

/// The `{NAME}` placeholders of a derive template.
pub fn derive_references(template: &str) -> impl Iterator<Item = &str> {
    template.split('{').skip(1).filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

/// Fixtures for unit tests of the modules built on the stack model.
#[cfg(test)]
pub(crate) mod test_support {
    use super::Stack;
    use crate::catalog::Catalog;
    use crate::env_vars::EnvSnapshot;
    use crate::project_file::ProjectFile;
    use crate::settings::Overrides;
    use crate::settings::Settings;

    /// The embedded profiles built for `profiles` and a `ragctl.yaml` text, project directory `/p/demo`.
    pub fn embedded_stack(profiles: &[&str], ragctl_yaml: &str) -> Stack {
        let flags = Overrides { profiles: profiles.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        let file = ProjectFile::parse("ragctl.yaml", ragctl_yaml).unwrap();
        let settings =
            Settings::resolve_with(&flags, &EnvSnapshot::default(), std::path::PathBuf::from("/p/demo"), file).unwrap();
        Stack::build(&settings, &Catalog::embedded().unwrap()).unwrap()
    }

    /// `.env` values for tests: every secret-looking name gets `secret-<NAME>`, EXPOSE_POSTGRES_PORT is 6543.
    pub fn fake_vars(name: &str) -> Option<String> {
        match name {
            "EXPOSE_POSTGRES_PORT" => Some("6543".into()),
            n if ["PASSWORD", "KEY", "URL"].iter().any(|w| n.contains(w)) => Some(format!("secret-{n}")),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env_vars::EnvSnapshot;
    use crate::project_file::ProjectFile;
    use crate::settings::Overrides;
    use std::path::PathBuf;

    fn settings(profiles: &[&str], file: &str) -> Settings {
        let flags = Overrides { profiles: profiles.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        let file = ProjectFile::parse("ragctl.yaml", file).unwrap();
        Settings::resolve_with(&flags, &EnvSnapshot::default(), PathBuf::from("/p/demo"), file).unwrap()
    }

    fn profile(yaml: &str) -> Profile {
        yaml_serde::from_str(yaml).unwrap()
    }

    fn test_catalog() -> Catalog {
        Catalog::from_profiles([
            profile(
                "name: base\ndescription: b\nalways: true\nservices:\n  db:\n    image: pg\n    networks: [data]\n    healthcheck: {test: [CMD, x]}\n    volumes: [db_data:/d]\n    ports: [{target: 5432, env: EXPOSE_POSTGRES_PORT, default: 5432}]\n",
            ),
            profile(
                "name: vec_a\ndescription: a\nexclusive: vector_store\ndefault: true\nservices:\n  va:\n    image: a\n    networks: [data]\n    healthcheck: {test: [CMD, x]}\npatches:\n  app: {depends_on: {va: healthy}, environment: {VECTOR: a}}\n",
            ),
            profile(
                "name: vec_b\ndescription: b\nexclusive: vector_store\nservices:\n  vb: {image: b, networks: [data], healthcheck: {test: [CMD, x]}}\n",
            ),
            profile(
                "name: app\ndescription: app\nservices:\n  app:\n    image: app\n    shapes: [full]\n    stateless: true\n    replicas: 3\n    networks: [backend, data]\n    healthcheck: {test: [CMD, x]}\n    depends_on: {db: healthy}\n",
            ),
            profile(
                "name: cluster\ndescription: c\nexclusive: db_topology\nreplaces: [db]\nservices:\n  db: {image: pg-primary, networks: [data], healthcheck: {test: [CMD, x]}}\n",
            ),
            profile("name: ha\ndescription: h\nexclusive: db_topology\n"),
        ])
    }

    #[test]
    fn default_vector_store_is_implied() {
        let stack = Stack::build(&settings(&["app"], "shape: full\n"), &test_catalog()).unwrap();
        assert_eq!(stack.profiles, ["base", "app", "vec_a"]);
        assert_eq!(stack.implied_profiles, ["vec_a"]);
        let app = &stack.services["app"];
        assert_eq!(app.depends_on.keys().collect::<Vec<_>>(), ["db", "va"]);
        assert_eq!(app.environment["VECTOR"], "a");
        assert_eq!(app.replicas, 3);
    }

    #[test]
    fn two_vector_stores_are_rejected() {
        let err = Stack::build(&settings(&["vec_a", "vec_b"], ""), &test_catalog()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "profiles `vec_a` and `vec_b` are mutually exclusive: each chooses the `vector_store`"
        );
        assert_eq!(err.exit_code(), 2);
        let err = Stack::build(&settings(&["cluster", "ha"], ""), &test_catalog()).unwrap_err();
        assert!(err.to_string().contains("db_topology"));
    }

    #[test]
    fn unknown_profile_lists_the_available_ones() {
        let err = Stack::build(&settings(&["weaviat"], ""), &test_catalog()).unwrap_err();
        assert_eq!(err.to_string(), "unknown profile `weaviat`");
        assert_eq!(err.hint().unwrap(), "available profiles: app, cluster, ha, vec_a, vec_b");
        // always-on profiles are not selectable
        assert!(matches!(Stack::build(&settings(&["base"], ""), &test_catalog()), Err(Error::UnknownProfile { .. })));
    }

    #[test]
    fn middleware_publishes_on_loopback_and_has_no_networks() {
        let stack =
            Stack::build(&settings(&["vec_b"], "ports: {EXPOSE_POSTGRES_PORT: 5433}\n"), &test_catalog()).unwrap();
        let db = &stack.services["db"];
        assert_eq!((db.ports[0].host_ip.as_str(), db.ports[0].default), ("127.0.0.1", 5433));
        assert!(stack.networks.is_empty() && db.networks.is_empty());
        assert_eq!(stack.volumes, ["db_data"]);
    }

    #[test]
    fn the_old_port_key_in_ragctl_yaml_moves_the_port_with_a_warning_and_is_refused_beside_the_new_one() {
        let stack = Stack::build(&settings(&["vec_b"], "ports: {EXPOSE_DB_PORT: 5433}\n"), &test_catalog()).unwrap();
        let db = &stack.services["db"];
        assert_eq!((db.ports[0].env.as_str(), db.ports[0].default), ("EXPOSE_POSTGRES_PORT", 5433));
        assert!(
            stack
                .warnings
                .iter()
                .any(|w| w.contains("`ports: {EXPOSE_DB_PORT: 5433}`") && w.contains("EXPOSE_POSTGRES_PORT: 5433")),
            "{:?}",
            stack.warnings
        );
        let both = "ports:\n  EXPOSE_POSTGRES_PORT: 5434\n  EXPOSE_DB_PORT: 5433\n";
        let err = Stack::build(&settings(&["vec_b"], both), &test_catalog()).unwrap_err();
        assert!(err.to_string().contains("old name of `EXPOSE_POSTGRES_PORT`, which is set too"), "{err}");
        assert_eq!(err.exit_code(), crate::error::exit::USAGE);
    }

    #[test]
    fn a_dotenv_setting_only_the_old_port_key_or_another_value_is_refused_at_its_line() {
        let path = std::path::Path::new("/p/.env");
        let check = |text: &str| renamed_port_keys_in_env(&crate::dotenv::DotEnv::parse(text).unwrap(), path);
        check("EXPOSE_POSTGRES_PORT=5433\n").unwrap();
        check("EXPOSE_DB_PORT=5433\nEXPOSE_POSTGRES_PORT=5433\n").unwrap();
        let err = check("# ports\nA=1\nEXPOSE_DB_PORT=5433\n").unwrap_err();
        assert!(err.to_string().contains("/p/.env:3"), "{err}");
        assert_eq!(err.hint().as_deref(), Some("rename the key in `/p/.env`: EXPOSE_POSTGRES_PORT=5433"));
        assert_eq!(err.exit_code(), crate::error::exit::USAGE);
        let err = check("EXPOSE_DB_PORT=5433\nEXPOSE_POSTGRES_PORT=5432\n").unwrap_err();
        assert!(err.to_string().contains("which is set to 5432"), "{err}");
        assert!(err.hint().unwrap().contains("remove the `EXPOSE_DB_PORT` line"), "{err:?}");
    }

    #[test]
    fn a_full_only_profile_implies_the_full_shape_unless_middleware_was_chosen() {
        let stack = Stack::build(&settings(&["app"], ""), &test_catalog()).unwrap();
        assert_eq!(stack.shape, Shape::Full);
        assert_eq!(stack.services.keys().collect::<Vec<_>>(), ["db", "app", "va"]);
        assert!(stack.warnings[0].starts_with("profile `app` runs only in the full shape: using the full shape"));
        let err = Stack::build(&settings(&["app"], "shape: middleware\n"), &test_catalog()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("ragctl.yaml `shape:` chose the middleware shape"), "{text}");
        assert!(format!("{err:?}").contains("set `shape: full` in ragctl.yaml"), "{err:?}");
    }

    #[test]
    fn full_shape_has_internal_data_network_and_no_published_db_port() {
        let stack = Stack::build(&settings(&["app"], "shape: full\n"), &test_catalog()).unwrap();
        assert!(stack.services["db"].ports.is_empty());
        let data = stack.networks.iter().find(|n| n.name == "data").unwrap();
        assert!(data.internal);
        assert_eq!(stack.services["app"].security_opt, ["no-new-privileges:true"]);
    }

    #[test]
    fn replaces_swaps_the_service_definition() {
        let stack = Stack::build(&settings(&["cluster"], ""), &test_catalog()).unwrap();
        assert_eq!(stack.services["db"].image, "pg-primary");
        assert_eq!(stack.services["db"].profile, "cluster");
    }

    #[test]
    fn depends_on_a_disabled_service_names_the_profile() {
        let mut catalog = test_catalog();
        catalog =
            Catalog::from_profiles(catalog.iter().map(|e| e.profile.clone()).chain([profile(
                "name: extra\ndescription: e\nservices:\n  x: {image: x, depends_on: {app: started}}\n",
            )]));
        let err = Stack::build(&settings(&["extra"], ""), &catalog).unwrap_err();
        assert_eq!(err.to_string(), "service `x` depends on `app`, which is not enabled");
        assert_eq!(err.hint().unwrap(), "enable profile `app`");
    }

    #[test]
    fn dependency_cycles_are_reported_as_a_path() {
        let catalog = Catalog::from_profiles([profile(
            "name: loop\ndescription: l\nservices:\n  a: {image: a, depends_on: {b: started}}\n  b: {image: b, depends_on: {c: started}}\n  c: {image: c, depends_on: {a: started}}\n",
        )]);
        let err = Stack::build(&settings(&["loop"], ""), &catalog).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: a → b → c → a");
    }

    #[test]
    fn replicas_only_for_stateless_services_and_image_overrides_apply() {
        let err = Stack::build(&settings(&["app"], "shape: full\nreplicas: {db: 2}\n"), &test_catalog()).unwrap_err();
        assert!(err.to_string().contains("`db` keeps state"));
        let s =
            settings(&["app"], "shape: full\nreplicas: {app: 5}\nregistry: mirror:5000/\nimages: {db: local/pg:15}\n");
        let stack = Stack::build(&s, &test_catalog()).unwrap();
        assert_eq!(stack.services["app"].replicas, 5);
        assert_eq!(stack.services["app"].image, "mirror:5000/app");
        assert_eq!(stack.services["db"].image, "local/pg:15");
    }

    #[test]
    fn start_order_puts_dependencies_first() {
        let stack = Stack::build(&settings(&["app"], "shape: full\n"), &test_catalog()).unwrap();
        let order: Vec<_> = stack.start_order().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(order, ["db", "va", "app"]);
    }

    #[test]
    fn named_volumes_are_told_from_paths() {
        assert_eq!(named_volume("db_data:/var/lib/x"), Some("db_data"));
        assert_eq!(named_volume("./config/nginx.conf:/etc/nginx/nginx.conf:ro"), None);
        assert_eq!(named_volume("/srv:/srv"), None);
        assert_eq!(named_volume("${CERTS:-./certs}:/c"), None);
        assert_eq!(named_volume("/anonymous"), None);
    }
}
