//! A new project as data: the answers of `ragctl init` — from a wizard or from flags and defaults — and every
//! file they produce (the TLS pair, the missing secrets of `.env`, the rendered files and, last, `ragctl.yaml`).
//!
//! The answers are one value ([`Answers`]) however they were collected, and every file is a function of it (plus
//! random secrets and keys), so the wizard and the flags produce the same files. Nothing here writes: [`plan`]
//! validates every answer and renders every file in memory, and the command writes the [`Plan`]. Questions go
//! through a [`Prompter`] the command provides (a terminal), so this module never talks to a terminal itself.
//! Secret values already in `.env` are never changed, even with `--force`.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::{RenderedFile, TemplateSource, render_stack};
use crate::catalog::Catalog;
use crate::dotenv::DotEnv;
use crate::env_file::EnvFile;
use crate::env_vars::{self as ev, EnvSnapshot};
use crate::error::Error;
use crate::output::Output;
use crate::port_holder::{self, PortProbeError};
use crate::profile::Shape;
use crate::project_file::{self, ProjectFile, TlsFile};
use crate::secrets::{SecretChange, plan_gen};
use crate::settings::{Overrides, Settings};
use crate::stack::{PublishedPort, Stack};

/// The answers given as flags (`ragctl init --domain ...`); `None` asks (wizard) or takes the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Given {
    pub name: Option<String>,
    pub vector_store: Option<String>,
    pub pg_cluster: Option<bool>,
    pub replicas: Option<u32>,
    pub app: Option<bool>,
    pub monitoring: Option<bool>,
    pub domain: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub self_signed: bool,
    pub ports: Vec<(String, u16)>,
    pub registry: Option<String>,
}

/// The wizard's questions, asked on a terminal by the command. Each validator's error is shown and asked again.
pub trait Prompter {
    fn text(
        &self,
        label: &str,
        default: Option<&str>,
        valid: &mut dyn FnMut(&String) -> Result<(), String>,
    ) -> Result<String, Error>;
    /// Like [`Prompter::text`], but an empty answer is allowed (and not trimmed away).
    fn optional_text(&self, label: &str, valid: &mut dyn FnMut(&String) -> Result<(), String>)
    -> Result<String, Error>;
    fn number(
        &self,
        label: &str,
        default: u32,
        valid: &mut dyn FnMut(&u32) -> Result<(), String>,
    ) -> Result<u32, Error>;
    fn port(&self, label: &str, default: u16, valid: &mut dyn FnMut(&u16) -> Result<(), String>) -> Result<u16, Error>;
    fn select(&self, label: &str, items: &[String], default: usize) -> Result<usize, Error>;
    fn confirm(&self, label: &str, default: bool) -> Result<bool, Error>;
}

/// Who answers a question whose flag was not given.
#[derive(Clone, Copy)]
pub enum Asker<'p> {
    Wizard(&'p dyn Prompter),
    /// No terminal or `--yes`: the default, or an error naming the flag when there is none.
    Defaults,
}

/// The exclusive group whose members are the vector stores offered.
const VECTOR_STORE_GROUP: &str = "vector_store";
const PG_CLUSTER: &str = "pg_cluster";
const APP: &str = "app";
const MONITORING: &str = "monitoring";
/// The service whose replica count `pg_cluster` asks for.
const PG_REPLICA_SERVICE: &str = "db_postgres_replica";
const MAX_PG_REPLICAS: u32 = 32;
/// The `.env` key naming the directory nginx reads the certificate and key from (relative to the project).
const CERT_DIR_KEY: &str = "NGINX_CERT_DIR";
const DEFAULT_CERT_DIR: &str = "./certs";
/// File names of the pair inside NGINX_CERT_DIR, whether generated or copied (certbot's names).
const CERT_FILE: &str = "fullchain.pem";
const KEY_FILE: &str = "privkey.pem";
/// Validity of a generated development certificate.
const SELF_SIGNED_DAYS: u64 = 365;

const PROJECT_FILE_HEADER: &str =
    "# ragctl project, written by `ragctl init`. Edit it, then run `ragctl render` (or `ragctl up`).\n";

/// Everything `init` needs to know, however it was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    pub name: String,
    pub shape: Shape,
    pub vector_store: String,
    pub pg_cluster: bool,
    /// Replicas of the pg_cluster standby (full shape; the middleware shape runs one).
    pub replicas: u32,
    pub app: bool,
    pub monitoring: bool,
    pub domain: Option<String>,
    pub tls: Option<TlsAnswer>,
    /// Host port by `.env` key, for every port the stack publishes.
    pub ports: IndexMap<String, u16>,
    pub registry: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TlsAnswer {
    Existing { certificate: PathBuf, key: PathBuf },
    SelfSigned,
}

impl Answers {
    /// Profiles in a fixed order, so the same answers always give the same `ragctl.yaml`.
    pub fn profiles(&self) -> Vec<String> {
        let mut p = vec![self.vector_store.clone()];
        for (on, name) in [(self.pg_cluster, PG_CLUSTER), (self.app, APP), (self.monitoring, MONITORING)] {
            if on {
                p.push(name.to_string());
            }
        }
        p
    }

    pub fn project_file(&self) -> ProjectFile {
        let mut replicas = IndexMap::new();
        if self.pg_cluster && self.shape == Shape::Full {
            replicas.insert(PG_REPLICA_SERVICE.to_string(), self.replicas);
        }
        ProjectFile {
            project: Some(self.name.clone()),
            profiles: Some(self.profiles()),
            shape: Some(self.shape),
            domain: self.domain.clone(),
            ports: self.ports.clone(),
            registry: self.registry.clone(),
            replicas,
            tls: self.tls.as_ref().map(|_| TlsFile { certificate: Some(CERT_FILE.into()), key: Some(KEY_FILE.into()) }),
            ..ProjectFile::default()
        }
    }
}

/// What the answers are resolved against: fixed for the whole run.
pub struct Context<'a> {
    pub settings: &'a Settings,
    /// The command line's overrides (its `-p` and `--shape` answer the questions they match).
    pub overrides: &'a Overrides,
    pub env: &'a EnvSnapshot,
    pub catalog: &'a Catalog,
    pub out: &'a Output,
}

impl Context<'_> {
    /// Settings for a project file as every later command would resolve them, except that the file's project
    /// name, profiles and shape win over the environment: init renders what it writes.
    fn resolve(&self, file: &ProjectFile) -> Result<Settings, Error> {
        let flags = Overrides {
            project_name: file.project.clone(),
            profiles: file.profiles.clone().unwrap_or_default(),
            shape: file.shape,
            ..self.overrides.clone()
        };
        Settings::resolve_with(&flags, self.env, self.settings.project_dir.clone(), file.clone())
    }
}

/// The answers: each from its flag, else from the wizard or the default.
pub fn collect(cx: &Context, given: &Given, asker: Asker) -> Result<Answers, Error> {
    let dir = &cx.settings.project_dir;

    let name =
        match given.name.as_ref().map(|n| (n, "--name")).or(cx.overrides.project_name.as_ref().map(|n| (n, "-p"))) {
            Some((name, flag)) => {
                check_project_name(dir, name)
                    .map_err(|hint| Error::config_hint(format!("invalid project name `{name}` (from {flag})"), hint))?;
                name.clone()
            }
            None => {
                let default = directory_project_name(dir)?;
                match asker {
                    Asker::Wizard(ask) => {
                        ask.text("Project name", Some(&default), &mut |v| check_project_name(dir, v))?
                    }
                    Asker::Defaults => default,
                }
            }
        };

    // The shape is the global option (flag or RAGCTL_SHAPE, already validated into the settings).
    let shape = if cx.overrides.shape.is_some() || cx.env.get(ev::RAGCTL_SHAPE).is_some() {
        cx.settings.shape
    } else {
        match asker {
            Asker::Wizard(ask) => {
                let items = [
                    "middleware: data services only, published on 127.0.0.1, for running the API from source",
                    "full: everything, with replicas, resource limits and isolated networks",
                ];
                [Shape::Middleware, Shape::Full][ask.select("Stack shape", &items.map(String::from), 0)?]
            }
            Asker::Defaults => Shape::Middleware,
        }
    };
    reject_flags_outside_shape(given, shape)?;

    let stores = vector_stores(cx.catalog);
    if stores.is_empty() {
        return Err(Error::config(format!("no profile of the `{VECTOR_STORE_GROUP}` group is available")));
    }
    let vector_store = match &given.vector_store {
        Some(v) if stores.iter().any(|(n, _)| n == v) => v.clone(),
        Some(v) => {
            return Err(Error::config_hint(
                format!("unknown vector store `{v}` (from --vector-store)"),
                format!("choose one of: {}", stores.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")),
            ));
        }
        None => match asker {
            Asker::Wizard(ask) => {
                let items: Vec<String> = stores.iter().map(|(n, d)| format!("{n}: {d}")).collect();
                stores[ask.select("Vector store", &items, 0)?].0.clone()
            }
            Asker::Defaults => stores[0].0.clone(),
        },
    };

    let pg_cluster = match given.pg_cluster.or(given.replicas.map(|_| true)) {
        Some(on) => on,
        None => match asker {
            Asker::Wizard(ask) => ask.confirm("PostgreSQL primary with streaming replicas (pg_cluster)?", false)?,
            Asker::Defaults => false,
        },
    };
    let replicas = match (pg_cluster && shape == Shape::Full, given.replicas, asker) {
        (true, Some(n), _) => n,
        (true, None, Asker::Wizard(ask)) => ask.number("PostgreSQL replicas", 1, &mut |n: &u32| {
            if (1..=MAX_PG_REPLICAS).contains(n) { Ok(()) } else { Err(format!("between 1 and {MAX_PG_REPLICAS}")) }
        })?,
        _ => 1,
    };

    let full = shape == Shape::Full;
    let app = full
        && match given.app {
            Some(on) => on,
            None => match asker {
                Asker::Wizard(ask) => {
                    ask.confirm("The application (api, worker, web, sandbox, plugin_daemon, nginx)?", true)?
                }
                Asker::Defaults => true,
            },
        };
    if full && !app {
        for (given, flag) in [
            (given.domain.is_some(), "--domain"),
            (given.tls_cert.is_some(), "--tls-cert"),
            (given.self_signed, "--self-signed"),
        ] {
            if given {
                return Err(Error::config_hint(
                    format!("`{flag}` configures nginx, which comes with the app"),
                    format!("drop {flag}, or drop --no-app"),
                ));
            }
        }
    }
    let monitoring = full
        && match given.monitoring {
            Some(on) => on,
            None => match asker {
                Asker::Wizard(ask) => ask.confirm("Monitoring (Prometheus, Grafana, alert rules)?", false)?,
                Asker::Defaults => false,
            },
        };

    let (domain, tls) = if app {
        let domain = match &given.domain {
            Some(d) => normalize_domain(d).map_err(|why| {
                Error::config_hint(format!("invalid domain `{d}` (from --domain): {why}"), DOMAIN_HINT)
            })?,
            None => match asker {
                Asker::Wizard(ask) => {
                    normalize_domain(&ask.text("Domain nginx serves", None, &mut |v| normalize_domain(v).map(|_| ()))?)
                        .map_err(Error::config)?
                }
                Asker::Defaults => {
                    return Err(Error::config_hint(
                        "missing `--domain`: nginx of the full shape's app serves one host name",
                        "pass --domain HOST (such as rag.example.com), or --no-app for the data services only",
                    ));
                }
            },
        };
        let tls = match (&given.tls_cert, &given.tls_key, given.self_signed) {
            (Some(certificate), Some(key), _) => {
                TlsAnswer::Existing { certificate: certificate.clone(), key: key.clone() }
            }
            (_, _, true) => TlsAnswer::SelfSigned,
            _ => match asker {
                Asker::Wizard(ask) => {
                    let items = [
                        "generate a self-signed certificate and key (development only)",
                        "use an existing certificate and key",
                    ];
                    if ask.select("TLS certificate", &items.map(String::from), 0)? == 0 {
                        TlsAnswer::SelfSigned
                    } else {
                        let certificate =
                            ask.text("Certificate file (PEM, full chain)", None, &mut |p| existing_file(p))?;
                        let key = ask.text("Private key file (PEM)", None, &mut |p| existing_file(p))?;
                        TlsAnswer::Existing { certificate: certificate.into(), key: key.into() }
                    }
                }
                Asker::Defaults => {
                    return Err(Error::config_hint(
                        "missing `--tls-cert` and `--tls-key`, or `--self-signed`: nginx serves HTTPS",
                        "pass --tls-cert PATH --tls-key PATH, or --self-signed for a development certificate",
                    ));
                }
            },
        };
        (Some(domain), Some(tls))
    } else {
        (None, None)
    };

    let mut answers = Answers {
        name,
        shape,
        vector_store,
        pg_cluster,
        replicas,
        app,
        monitoring,
        domain,
        tls,
        ports: IndexMap::new(),
        registry: None,
    };
    answers.ports = collect_ports(cx, given, &answers, asker)?;
    answers.registry = match &given.registry {
        Some(r) => Some(normalize_registry(r).map_err(|why| {
            Error::config_hint(format!("invalid registry mirror `{r}` (from --registry): {why}"), REGISTRY_HINT)
        })?),
        None => match asker {
            Asker::Wizard(ask) => {
                let r = ask.optional_text("Image registry mirror (empty for none)", &mut |v| {
                    if v.trim().is_empty() { Ok(()) } else { normalize_registry(v).map(|_| ()) }
                })?;
                if r.trim().is_empty() { None } else { Some(normalize_registry(&r).map_err(Error::config)?) }
            }
            Asker::Defaults => None,
        },
    };
    Ok(answers)
}

const DOMAIN_HINT: &str = "a host name such as rag.example.com (letters, digits, `-`, dot-separated) or an IP address";
const REGISTRY_HINT: &str = "a registry host with an optional port and path, such as mirror.local:5000";

/// Flags that configure services the middleware shape does not run are mistakes, not no-ops.
fn reject_flags_outside_shape(given: &Given, shape: Shape) -> Result<(), Error> {
    if shape != Shape::Middleware {
        return Ok(());
    }
    let given = [
        (given.app == Some(true), "--app"),
        (given.monitoring == Some(true), "--monitoring"),
        (given.domain.is_some(), "--domain"),
        (given.tls_cert.is_some(), "--tls-cert"),
        (given.self_signed, "--self-signed"),
        (given.replicas.is_some(), "--replicas"),
    ];
    match given.iter().find(|(g, _)| *g) {
        Some((_, flag)) => Err(Error::config_hint(
            format!("`{flag}` applies to the full shape only"),
            format!("pass --shape full, or drop {flag} (the middleware shape runs the data services, one of each)"),
        )),
        None => Ok(()),
    }
}

/// Members of the vector store group with their descriptions, the group's default first.
fn vector_stores(catalog: &Catalog) -> Vec<(String, String)> {
    let mut stores: Vec<(bool, String, String)> = catalog
        .iter()
        .filter(|e| e.profile.exclusive.as_deref() == Some(VECTOR_STORE_GROUP))
        .map(|e| (!e.profile.default, e.profile.name.clone(), e.profile.description.clone()))
        .collect();
    stores.sort();
    stores.into_iter().map(|(_, n, d)| (n, d)).collect()
}

/// The project name compose would derive from the directory (settings own that rule).
fn directory_project_name(dir: &Path) -> Result<String, Error> {
    Ok(Settings::resolve_with(
        &Overrides::default(),
        &EnvSnapshot::default(),
        dir.to_path_buf(),
        ProjectFile::default(),
    )?
    .project_name)
}

/// Compose's project name rule, as settings apply it; the error is the hint.
fn check_project_name(dir: &Path, name: &str) -> Result<(), String> {
    let flags = Overrides { project_name: Some(name.to_string()), ..Overrides::default() };
    Settings::resolve_with(&flags, &EnvSnapshot::default(), dir.to_path_buf(), ProjectFile::default())
        .map(|_| ())
        .map_err(|e| e.hint().unwrap_or_else(|| e.to_string()))
}

/// A lowercase DNS name or an IP address.
fn normalize_domain(value: &str) -> Result<String, String> {
    let d = value.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.parse::<std::net::IpAddr>().is_ok() {
        return Ok(d);
    }
    if d.is_empty() || d.len() > 253 {
        return Err("a host name has 1 to 253 characters".into());
    }
    for label in d.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(format!("`{label}` is not a DNS label"));
        }
    }
    Ok(d)
}

/// `host[:port][/path]` without a scheme or trailing slash: it is put before `/image:tag`.
fn normalize_registry(value: &str) -> Result<String, String> {
    let r = value.trim().trim_end_matches('/');
    if r.is_empty() {
        return Err("it is empty".into());
    }
    if r.contains("://") {
        return Err("leave out the scheme (`https://`)".into());
    }
    if r.chars().any(|c| c.is_whitespace() || c.is_ascii_uppercase() || !c.is_ascii()) {
        return Err("a registry name has lowercase letters, digits, `.`, `-`, `_`, `:` and `/`".into());
    }
    Ok(r.to_string())
}

fn existing_file(path: &str) -> Result<(), String> {
    if Path::new(path.trim()).is_file() { Ok(()) } else { Err(format!("`{}` is not a file", path.trim())) }
}

/// Every port the answers' stack publishes, each `.env` key once, in stack order.
fn published_ports(stack: &Stack) -> Vec<PublishedPort> {
    let mut ports: Vec<PublishedPort> = Vec::new();
    for p in stack.services.values().flat_map(|s| &s.ports) {
        if !ports.iter().any(|q| q.env == p.env) {
            ports.push(p.clone());
        }
    }
    ports
}

fn collect_ports(cx: &Context, given: &Given, answers: &Answers, asker: Asker) -> Result<IndexMap<String, u16>, Error> {
    let draft = cx.resolve(&answers.project_file())?;
    let stack = Stack::build(&draft, cx.catalog)?;
    let published = published_ports(&stack);

    let mut flagged: IndexMap<String, u16> = IndexMap::new();
    for (key, port) in &given.ports {
        if let Some((_, new)) = crate::stack::RENAMED_PORT_KEYS.iter().find(|(old, _)| old == key) {
            return Err(Error::config_hint(
                format!("`--port {key}={port}`: `{key}` is the old name of `{new}`"),
                format!("pass `--port {new}={port}`"),
            ));
        }
        if !published.iter().any(|p| &p.env == key) {
            return Err(Error::config_hint(
                format!("`--port {key}={port}`: no service of this stack publishes `{key}`"),
                if published.is_empty() {
                    format!("these profiles publish no host port in the {} shape", answers.shape.as_str())
                } else {
                    format!(
                        "ports published by these profiles in the {} shape: {}",
                        answers.shape.as_str(),
                        published.iter().map(|p| p.env.as_str()).collect::<Vec<_>>().join(", ")
                    )
                },
            ));
        }
        if let Some((other, _)) = flagged.iter().find(|(k, p)| *p == port && *k != key) {
            return Err(Error::config(format!("`--port {key}={port}`: port {port} is already given to `{other}`")));
        }
        flagged.insert(key.clone(), *port);
    }

    let mut chosen: IndexMap<String, u16> = IndexMap::new();
    for p in &published {
        let taken_elsewhere: Vec<u16> =
            chosen.values().chain(flagged.iter().filter(|(k, _)| **k != p.env).map(|(_, v)| v)).copied().collect();
        let port = match flagged.get(&p.env) {
            Some(port) => {
                if let Some(why) = port_taken(&p.host_ip, *port) {
                    cx.out.warn(&format!(
                        "port {port} ({}) is taken on {}{why}; `ragctl up` fails until it is free",
                        p.env,
                        shown_ip(&p.host_ip)
                    ));
                }
                *port
            }
            None => {
                let proposal = propose_port(&p.host_ip, p.default, &taken_elsewhere, cx.out);
                if proposal != p.default {
                    let why = port_taken(&p.host_ip, p.default).unwrap_or_default();
                    let how = match asker {
                        Asker::Wizard(_) => String::new(),
                        Asker::Defaults => format!(" (choose another with --port {}=PORT)", p.env),
                    };
                    cx.out.info(&format!(
                        "port {} ({}) is taken on {}{why}; using {proposal} instead{how}",
                        p.default,
                        p.env,
                        shown_ip(&p.host_ip)
                    ));
                }
                match asker {
                    Asker::Wizard(ask) => {
                        let label = format!("Host port of {} ({})", p.description, p.env);
                        let port = ask.port(&label, proposal, &mut |n: &u16| {
                            if *n == 0 {
                                Err("ports start at 1".to_string())
                            } else if taken_elsewhere.contains(n) {
                                Err(format!("port {n} is already used by another key"))
                            } else {
                                Ok(())
                            }
                        })?;
                        if port != proposal
                            && let Some(why) = port_taken(&p.host_ip, port)
                        {
                            cx.out.warn(&format!(
                                "port {port} ({}) is taken on {}{why}; `ragctl up` fails until it is free",
                                p.env,
                                shown_ip(&p.host_ip)
                            ));
                        }
                        port
                    }
                    Asker::Defaults => proposal,
                }
            }
        };
        chosen.insert(p.env.clone(), port);
    }
    Ok(chosen)
}

fn shown_ip(ip: &str) -> &str {
    if ip.is_empty() { "every address" } else { ip }
}

/// The probe address for a published host IP (empty means every interface).
fn probe_ip(ip: &str) -> &str {
    if ip.is_empty() { "0.0.0.0" } else { ip }
}

/// `Some(" by `holder` (pid N)")` (or `Some("")` when the holder is not visible) when the port is taken.
fn port_taken(ip: &str, port: u16) -> Option<String> {
    match port_holder::is_free(probe_ip(ip), port) {
        Ok(false) => Some(match port_holder::holders(port).first() {
            Some(h) if h.is_docker_proxy() => " by a Docker container".to_string(),
            Some(h) => format!(" by `{}` (pid {})", h.name, h.pid),
            None => String::new(),
        }),
        _ => None,
    }
}

/// `wanted` when it can be bound, else the next port that can and that no other key uses. A port whose
/// state cannot be known (a privileged port probed without root) is kept: `ragctl up` checks it again.
fn propose_port(ip: &str, wanted: u16, used: &[u16], out: &Output) -> u16 {
    let free = |port: u16| -> Result<bool, PortProbeError> {
        Ok(!used.contains(&port) && port_holder::is_free(probe_ip(ip), port)?)
    };
    match free(wanted) {
        Ok(true) => wanted,
        Ok(false) => (wanted.saturating_add(1)..=u16::MAX).find(|p| free(*p).unwrap_or(false)).unwrap_or(wanted),
        Err(e) => {
            out.detail(&format!("note: could not check port {wanted}: {e}"));
            wanted
        }
    }
}

/// Everything `init` writes, computed before anything is.
pub struct Plan {
    pub settings: Settings,
    pub stack: Stack,
    pub answers: Answers,
    pub project_file_path: PathBuf,
    pub project_file_text: String,
    pub env_file: EnvFile,
    pub env_doc: DotEnv,
    pub secrets: Vec<SecretChange>,
    pub tls: Option<TlsPlan>,
    /// The rendered files; the command compares them with what is on disk.
    pub rendered: Vec<RenderedFile>,
}

pub struct TlsPlan {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub action: TlsAction,
}

pub enum TlsAction {
    Write {
        certificate_pem: Vec<u8>,
        key_pem: Vec<u8>,
        generated: bool,
    },
    /// Nothing to write: `reason` says why.
    Keep {
        reason: &'static str,
    },
}

pub fn plan(cx: &Context, answers: &Answers) -> Result<Plan, Error> {
    let file = answers.project_file();
    let project_file_text = project_file_text(&file)?;
    let settings = cx.resolve(&file)?;
    let stack = Stack::build(&settings, cx.catalog)?;
    let rendered = render_stack(&stack, &settings, &TemplateSource::new(&settings.project_dir))?;

    let env_file = EnvFile::load(&settings.env_file)?;
    let mut env_doc = env_file.doc_or_new();
    let secrets = plan_gen(&stack.secrets, &env_doc, &[])?;
    for c in &secrets {
        env_doc.set_in_group(&c.profile, &c.name, c.value.expose());
    }
    for (key, port) in &answers.ports {
        if let Some(v) = env_doc.get(key).filter(|v| !v.is_empty() && *v != port.to_string()) {
            cx.out.warn(&format!(
                "`{}` sets {key}={v}, which overrides the port chosen here ({port})",
                env_file.path.display()
            ));
        }
    }
    for var in [ev::RAGCTL_PROFILES, ev::COMPOSE_PROFILES, ev::RAGCTL_PROJECT_NAME, ev::COMPOSE_PROJECT_NAME] {
        if cx.env.get(var).is_some() {
            cx.out.warn(&format!("{var} is set in the environment and overrides ragctl.yaml for other commands"));
        }
    }

    let tls = match &answers.tls {
        None => None,
        Some(answer) => {
            let dir_setting = env_doc
                .get(CERT_DIR_KEY)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .or_else(|| stack.env.get(CERT_DIR_KEY).map(|e| e.default.clone()))
                .unwrap_or_else(|| DEFAULT_CERT_DIR.to_string());
            // `./certs` joined as `certs`, so messages show `./certs/fullchain.pem`, not `././certs/...`.
            let relative: PathBuf =
                Path::new(&dir_setting).components().filter(|c| *c != std::path::Component::CurDir).collect();
            let dir = settings.project_dir.join(relative);
            Some(plan_tls(answer, answers.domain.as_deref().unwrap_or("localhost"), &dir)?)
        }
    };

    Ok(Plan {
        project_file_path: settings.project_path(project_file::FILE_NAME),
        settings,
        stack,
        answers: answers.clone(),
        project_file_text,
        env_file,
        env_doc,
        secrets,
        tls,
        rendered,
    })
}

/// `ragctl.yaml` as text: only the keys that were answered, and proven to read back as `file`.
fn project_file_text(file: &ProjectFile) -> Result<String, Error> {
    let encode = |e: yaml_serde::Error| Error::config(format!("failed to encode `{}`: {e}", project_file::FILE_NAME));
    let mut value = yaml_serde::to_value(file).map_err(encode)?;
    if let yaml_serde::Value::Mapping(map) = &mut value {
        map.retain(|_, v| match v {
            yaml_serde::Value::Null => false,
            yaml_serde::Value::Mapping(m) => !m.is_empty(),
            _ => true,
        });
    }
    let text = format!("{PROJECT_FILE_HEADER}{}", yaml_serde::to_string(&value).map_err(encode)?);
    let back = ProjectFile::parse(project_file::FILE_NAME, &text)?;
    if &back != file {
        return Err(Error::config(format!("failed to encode `{}`: it does not read back", project_file::FILE_NAME)));
    }
    Ok(text)
}

fn plan_tls(answer: &TlsAnswer, domain: &str, dir: &Path) -> Result<TlsPlan, Error> {
    let certificate = dir.join(CERT_FILE);
    let key = dir.join(KEY_FILE);
    let action = match answer {
        TlsAnswer::SelfSigned if certificate.exists() && key.exists() => {
            TlsAction::Keep { reason: "a pair is already there; remove it to generate a new one" }
        }
        TlsAnswer::SelfSigned => {
            let (certificate_pem, key_pem) = self_signed_pair(domain)?;
            TlsAction::Write { certificate_pem, key_pem, generated: true }
        }
        TlsAnswer::Existing { certificate: from_cert, key: from_key } => {
            let same = |a: &Path, b: &Path| matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y);
            let certificate_pem = read_pem(from_cert, "--tls-cert", "-----BEGIN CERTIFICATE-----")?;
            let key_pem = read_pem(from_key, "--tls-key", "PRIVATE KEY-----")?;
            if same(from_cert, &certificate) && same(from_key, &key) {
                TlsAction::Keep { reason: "the given files are already there" }
            } else {
                TlsAction::Write { certificate_pem, key_pem, generated: false }
            }
        }
    };
    Ok(TlsPlan { certificate, key, action })
}

fn read_pem(path: &Path, flag: &str, marker: &str) -> Result<Vec<u8>, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    if !String::from_utf8_lossy(&bytes).contains(marker) {
        return Err(Error::config_hint(
            format!("`{}` (from {flag}) is not a PEM file with `{marker}`", path.display()),
            "pass the PEM files nginx expects: the certificate chain and its private key",
        ));
    }
    Ok(bytes)
}

/// An ECDSA P-256 certificate for `domain` (and localhost), valid from now for [`SELF_SIGNED_DAYS`].
fn self_signed_pair(domain: &str) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let failed =
        |e: rcgen::Error| Error::config(format!("failed to generate a self-signed certificate for `{domain}`: {e}"));
    let mut names = vec![domain.to_string()];
    if domain != "localhost" {
        names.push("localhost".to_string());
    }
    let mut params = rcgen::CertificateParams::new(names).map_err(failed)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, domain);
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "ragctl development certificate");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + now;
    params.not_after = epoch + now + std::time::Duration::from_secs(SELF_SIGNED_DAYS * 24 * 3600);
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    Ok((cert.pem().into_bytes(), key.serialize_pem().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers() -> Answers {
        Answers {
            name: "demo".into(),
            shape: Shape::Full,
            vector_store: "qdrant".into(),
            pg_cluster: true,
            replicas: 2,
            app: true,
            monitoring: false,
            domain: Some("rag.example.com".into()),
            tls: Some(TlsAnswer::SelfSigned),
            ports: [("EXPOSE_NGINX_PORT".to_string(), 8080), ("EXPOSE_NGINX_SSL_PORT".to_string(), 8443)]
                .into_iter()
                .collect(),
            registry: Some("mirror.local:5000".into()),
        }
    }

    #[test]
    fn project_file_holds_the_answers_and_reads_back() {
        let file = answers().project_file();
        let text = project_file_text(&file).unwrap();
        assert!(!text.contains("null"), "{text}");
        assert!(!text.contains("{}"), "{text}");
        let back = ProjectFile::parse("ragctl.yaml", &text).unwrap();
        assert_eq!(back.profiles.as_deref(), Some(&["qdrant".to_string(), "pg_cluster".into(), "app".into()][..]));
        assert_eq!(back.replicas.get(PG_REPLICA_SERVICE), Some(&2));
        assert_eq!(back.ports.get("EXPOSE_NGINX_SSL_PORT"), Some(&8443));
        assert_eq!(back.tls.unwrap().key.as_deref(), Some(KEY_FILE));
    }

    #[test]
    fn middleware_writes_no_replicas_domain_or_tls() {
        let a = Answers { shape: Shape::Middleware, app: false, domain: None, tls: None, ..answers() };
        let file = a.project_file();
        assert!(file.replicas.is_empty());
        assert_eq!(file.tls, None);
        assert_eq!(file.profiles.unwrap(), ["qdrant", "pg_cluster"]);
    }

    #[test]
    fn domains_and_registries_are_normalized_or_refused() {
        assert_eq!(normalize_domain("Rag.Example.COM.").unwrap(), "rag.example.com");
        assert_eq!(normalize_domain("10.0.0.5").unwrap(), "10.0.0.5");
        assert!(normalize_domain("bad_name.example").is_err());
        assert!(normalize_domain("-x.example").is_err());
        assert!(normalize_domain("").is_err());
        assert_eq!(normalize_registry("mirror.local:5000/").unwrap(), "mirror.local:5000");
        assert!(normalize_registry("https://mirror.local").is_err());
        assert!(normalize_registry("a b").is_err());
    }

    #[test]
    fn a_taken_port_is_replaced_by_the_next_free_one_not_used_by_another_key() {
        let out = Output { format: crate::output::Format::Text, quiet: 2, verbose: 0, color: false };
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let proposed = propose_port("127.0.0.1", port, &[port.wrapping_add(1)], &out);
        assert_ne!(proposed, port);
        assert_ne!(proposed, port.wrapping_add(1));
        assert!(port_holder::is_free("127.0.0.1", proposed).unwrap());
        drop(held);
    }

    #[test]
    fn self_signed_pair_is_pem() {
        let (cert, key) = self_signed_pair("rag.example.com").unwrap();
        assert!(String::from_utf8(cert).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(String::from_utf8(key).unwrap().contains("PRIVATE KEY-----"));
    }
}
