//! Command-line types (clap derive). Parsing only: no defaults from the environment or files here; those
//! are resolved in [`crate::settings`], the one place where flags meet `RAGCTL_*` and `ragctl.yaml`.
//!
//! Clap's types stop here: the global flags are mapped into [`Overrides`] (and their value enums into
//! [`Format`], [`Shape`] and [`ProgressMode`]), so nothing below the commands depends on how flags are spelled.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::Format;
use crate::profile::Shape;
use crate::render::init::Given;
use crate::reporter::ProgressMode;
use crate::settings::Overrides;

#[derive(Debug, Parser)]
#[command(
    name = "ragctl",
    version,
    about = "Deploy and operate a Dify-style RAG stack on Docker",
    long_about = "Deploy and operate a Dify-style RAG stack (nginx; api, worker, web; PostgreSQL, Redis, a vector \
                  database) on Docker. Profiles in `profiles/` and templates in `templates/` are rendered into a \
                  compose file and config files; secrets live in `.env`.",
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts. Each has a `RAGCTL_*` environment variable (see README).
#[derive(Debug, Args, Default, Clone)]
pub struct GlobalArgs {
    /// Project directory holding ragctl.yaml, .env, and the rendered files [env: RAGCTL_PROJECT_DIR]
    #[arg(short = 'C', long, global = true, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,

    /// Project name used for containers, networks and volumes [env: RAGCTL_PROJECT_NAME, COMPOSE_PROJECT_NAME]
    #[arg(short = 'p', long, global = true, value_name = "NAME")]
    pub project_name: Option<String>,

    /// Enable a profile; repeatable and comma-separated. Replaces RAGCTL_PROFILES / COMPOSE_PROFILES
    #[arg(long = "profile", global = true, value_name = "NAME", value_delimiter = ',')]
    pub profiles: Vec<String>,

    /// Stack shape: data services only on loopback, or everything with the production overlay [env: RAGCTL_SHAPE]
    #[arg(long, global = true, value_enum)]
    pub shape: Option<ShapeArg>,

    /// The .env file, relative to the project directory [env: RAGCTL_ENV_FILE] [default: .env]
    #[arg(long, global = true, value_name = "PATH")]
    pub env_file: Option<PathBuf>,

    /// Output format of data on stdout [env: RAGCTL_FORMAT] [default: text]
    #[arg(long, global = true, value_enum)]
    pub format: Option<FormatArg>,

    /// Print less (repeat for errors only) [env: RAGCTL_QUIET=1|2]
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,

    /// Print more detail [env: RAGCTL_VERBOSE=1]
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Disable colour (also NO_COLOR or RAGCTL_NO_COLOR)
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Answer yes to every confirmation; never prompt [env: RAGCTL_YES]
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,

    /// Progress display: bars on a terminal (auto), plain lines, JSON lines on stderr, or none [env: RAGCTL_PROGRESS]
    #[arg(long, global = true, value_enum)]
    pub progress: Option<ProgressArg>,
}

impl GlobalArgs {
    /// The flags as settings see them: the highest-precedence layer of the resolution.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            project_dir: self.project_dir.clone(),
            project_name: self.project_name.clone(),
            profiles: self.profiles.clone(),
            shape: self.shape.map(Shape::from),
            env_file: self.env_file.clone(),
            format: self.format.map(Format::from),
            quiet: self.quiet,
            verbose: self.verbose,
            no_color: self.no_color,
            yes: self.yes,
            progress: self.progress.map(ProgressMode::from),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Plain,
    Json,
    Quiet,
}

impl From<ProgressArg> for ProgressMode {
    fn from(arg: ProgressArg) -> ProgressMode {
        match arg {
            ProgressArg::Auto => ProgressMode::Auto,
            ProgressArg::Plain => ProgressMode::Plain,
            ProgressArg::Json => ProgressMode::Json,
            ProgressArg::Quiet => ProgressMode::Quiet,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Text,
    Json,
}

impl From<FormatArg> for Format {
    fn from(arg: FormatArg) -> Format {
        match arg {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShapeArg {
    Middleware,
    Full,
}

impl From<ShapeArg> for Shape {
    fn from(arg: ShapeArg) -> Shape {
        match arg {
            ShapeArg::Middleware => Shape::Middleware,
            ShapeArg::Full => Shape::Full,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a project: ask (or read flags), then write ragctl.yaml, .env secrets, TLS files and the rendered files
    #[command(after_help = INIT_AFTER_HELP)]
    Init(InitArgs),
    /// Render docker-compose.yaml and every config file of the selected profiles
    Render(RenderArgs),
    /// List the available profiles with their services and secrets
    Profiles,
    /// List the Dify releases this build deploys: images, .env keys, required steps, the selected one
    Releases,
    /// Generate, list and check the secrets in .env
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Work with .env files
    #[command(subcommand)]
    Env(EnvCommand),
    /// Render, generate missing secrets, check ports and images, then create and start the stack and wait until it is ready
    Up(UpArgs),
    /// Stop and remove the project's containers and networks (volumes with --volumes)
    Down(DownArgs),
    /// List the project's containers with state, health, ports and uptime
    #[command(visible_alias = "status")]
    Ps(PsArgs),
    /// Show container logs, prefixed with the container name
    Logs(LogsArgs),
    /// Restart services (all when none is named)
    Restart(RestartArgs),
    /// Check everything that commonly goes wrong, each with the fix; exit 1 when a check fails
    Doctor(DoctorArgs),
    /// PostgreSQL checks
    #[command(subcommand)]
    Db(DbCommand),
    /// Back up the running stack's data and project files into one archive; verify, list and prune archives
    Backup(BackupArgs),
    /// Restore a `ragctl backup` archive into this project, bring it up and check its row counts
    Restore(RestoreArgs),
    /// Take over a Dify docker/ deployment: its .env and its data, copied into this project's volumes
    Adopt(AdoptArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout: `ragctl man > ragctl.1`
    Man,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// List the checks (id, title, whether they apply to this project) and run none
    #[arg(long)]
    pub list_checks: bool,
    /// Run only these checks (and what they need); repeatable and comma-separated
    #[arg(long = "check", value_name = "ID", value_delimiter = ',')]
    pub checks: Vec<String>,
    /// Warnings count as problems (exit 1)
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Connect with the .env credentials and report version, data directory, extensions, connections, replication
    Check,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    /// Where to write the archive: a file, or a directory for the default name (default: backups/ in the project
    /// directory)
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Encrypt the archive with age to this recipient (`age1…`); repeatable
    #[arg(long = "encrypt-to", value_name = "RECIPIENT")]
    pub encrypt_to: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Check every member of an archive against its manifest (sha256); --deep also restores the dumps into
    /// throwaway containers and compares row counts
    Verify {
        archive: PathBuf,
        /// Restore the PostgreSQL dumps into throwaway containers of the same image and compare row counts
        #[arg(long)]
        deep: bool,
        /// age identity file for an encrypted archive; repeatable
        #[arg(long, short = 'i', value_name = "FILE")]
        identity: Vec<PathBuf>,
    },
    /// List the archives in the backups directory, newest first
    List {
        /// The directory (default: backups/ in the project directory)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Remove all but the newest N archives of the backups directory
    Prune {
        /// How many archives to keep
        #[arg(long, value_name = "N")]
        keep: usize,
        /// The directory (default: backups/ in the project directory)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// The deployment's docker/ directory (its .env, docker-compose.yaml and volumes/); only read
    pub dir: PathBuf,
    /// Replace the data of project volumes that already hold some (asks first unless --yes)
    #[arg(long)]
    pub replace_data: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive written by `ragctl backup`
    pub archive: PathBuf,
    /// Stop the project's running containers first instead of refusing
    #[arg(long)]
    pub stop: bool,
    /// age identity file for an encrypted archive; repeatable
    #[arg(long, short = 'i', value_name = "FILE")]
    pub identity: Vec<PathBuf>,
    /// Restore data last run by a newer Dify release than the selected one
    #[arg(long)]
    pub allow_downgrade: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until every service is ready (the default)
    #[arg(long, overrides_with = "no_wait")]
    pub wait: bool,
    /// Return once containers are started; wait only where a dependency requires it
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for each service to become ready (default: the profile's, else 180)
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// When to pull images
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: crate::engine::plan::PullPolicy,
    /// Remove containers of services that are no longer in the stack
    #[arg(long)]
    pub remove_orphans: bool,
    /// Deploy as containers on this engine, or as services of the Swarm this engine manages
    #[arg(long, value_enum, default_value = "docker")]
    pub target: DeployTarget,
    /// Create data volumes anew even though they held this project's data (see README "Backups")
    #[arg(long)]
    pub allow_empty_data: bool,
    /// Run a Dify release older than the newest that ran against this data (see README "Backups")
    #[arg(long)]
    pub allow_downgrade: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Also remove the project's named volumes (its data); asks first unless --yes
    #[arg(long)]
    pub volumes: bool,
    /// Seconds to wait for each container to stop before it is killed
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<i32>,
    /// Remove the containers on this engine, or the project's Swarm services
    #[arg(long, value_enum, default_value = "docker")]
    pub target: DeployTarget,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// List containers on this engine, or the project's Swarm services and their tasks
    #[arg(long, value_enum, default_value = "docker")]
    pub target: DeployTarget,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Services to show (default: all)
    pub services: Vec<String>,
    /// Keep streaming new lines
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines from the end of each log
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Only lines newer than this: a duration (`10m`, `1h30m`) or a Unix timestamp
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Services to restart (default: all)
    pub services: Vec<String>,
    /// Seconds to wait for each container to stop before it is killed
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<i32>,
    /// Return once containers are restarted, without waiting for them to be ready again
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Fill every missing secret of the selected profiles (never overwrites without --rotate)
    Gen(SecretGenArgs),
    /// List secrets with their status (values redacted unless --show)
    List {
        /// Print the values
        #[arg(long)]
        show: bool,
    },
    /// Exit 1 if any secret is missing, weak, a public default or mismatched
    Check,
}

#[derive(Debug, Args)]
pub struct SecretGenArgs {
    /// Regenerate these secrets and everything paired with or derived from them (asks first; --yes in scripts)
    #[arg(long, value_name = "NAME", num_args = 1.., value_delimiter = ',')]
    pub rotate: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Adopt an existing reference-deployment .env: keep its values, map renamed keys, report public defaults
    Import {
        /// The .env file to import
        path: PathBuf,
        /// Replace values already in the project's .env
        #[arg(long)]
        overwrite: bool,
    },
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Directory to write into [default: the project directory]
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Print the compose file to stdout instead of writing files
    #[arg(long, conflicts_with = "check")]
    pub stdout: bool,
    /// Write nothing; exit 1 and list the files that differ from what would be rendered
    #[arg(long)]
    pub check: bool,
    /// What to render for: a compose file and config files, or Kubernetes manifests (into `kubernetes/`)
    #[arg(long, value_enum, default_value = "compose")]
    pub target: RenderTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RenderTarget {
    Compose,
    Kubernetes,
}

/// Where `up`, `down` and `ps` act: containers on this Docker engine, or services of a Docker Swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DeployTarget {
    #[default]
    Docker,
    Swarm,
}

const INIT_AFTER_HELP: &str = "\
On a terminal (stdin and stderr), without --yes, a wizard asks for every answer whose flag is not given.
With --yes or without a terminal nothing is asked: a missing required answer is an error (exit 2).

Required: with the app in the full shape (--shape full enables it unless --no-app): --domain, and either
--tls-cert with --tls-key or --self-signed. The stack shape is the global --shape option.
Defaults: the directory name, the middleware shape, weaviate, no pg_cluster (1 replica when on), the app in the
full shape only, no monitoring, each port's profile default (the next free port when it is taken), no mirror.

An existing project (ragctl.yaml) is left alone unless --force; secrets already in .env are never changed.";

/// `ragctl init`: every prompt of the wizard has a flag, and a flag given skips its prompt.
#[derive(Debug, Args)]
#[command(next_help_heading = "Answers")]
pub struct InitArgs {
    /// Project name: lowercase letters, digits, `_` and `-` [default: the directory name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Vector database: a profile of the `vector_store` group (weaviate, qdrant, pgvector, milvus) [default: weaviate]
    #[arg(long, value_name = "PROFILE")]
    pub vector_store: Option<String>,
    /// PostgreSQL primary with streaming replicas (profile pg_cluster) [default: off]
    #[arg(long, overrides_with = "no_pg_cluster")]
    pub pg_cluster: bool,
    /// A single PostgreSQL server
    #[arg(long, overrides_with = "pg_cluster")]
    pub no_pg_cluster: bool,
    /// PostgreSQL replicas (full shape; implies --pg-cluster) [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=32), conflicts_with = "no_pg_cluster")]
    pub replicas: Option<u32>,
    /// The application: api, worker, web, sandbox, plugin_daemon, nginx (full shape) [default: on in the full shape]
    #[arg(long, overrides_with = "no_app")]
    pub app: bool,
    /// Data services only, also in the full shape
    #[arg(long, overrides_with = "app")]
    pub no_app: bool,
    /// Prometheus, Grafana, exporters and alert rules (full shape) [default: off]
    #[arg(long, overrides_with = "no_monitoring")]
    pub monitoring: bool,
    /// No monitoring services
    #[arg(long, overrides_with = "monitoring")]
    pub no_monitoring: bool,
    /// Public host name nginx serves (required with the app in the full shape)
    #[arg(long, value_name = "HOST")]
    pub domain: Option<String>,
    /// Existing certificate (PEM, full chain) nginx serves; copied into NGINX_CERT_DIR (needs --tls-key)
    #[arg(long, value_name = "PATH", requires = "tls_key", conflicts_with = "self_signed")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert; copied into NGINX_CERT_DIR with mode 0600
    #[arg(long, value_name = "PATH", requires = "tls_cert", conflicts_with = "self_signed")]
    pub tls_key: Option<PathBuf>,
    /// Generate a self-signed certificate and key for --domain, for development (an existing pair is kept)
    #[arg(long)]
    pub self_signed: bool,
    /// Host port of a published port, by its .env key (EXPOSE_POSTGRES_PORT=5433); repeatable [default: the profile's,
    /// or the next free port when that one is taken]
    #[arg(long = "port", value_name = "KEY=PORT", value_parser = parse_port_assignment)]
    pub ports: Vec<(String, u16)>,
    /// Registry mirror put before every image, such as `mirror.local:5000` [default: none]
    #[arg(long, value_name = "MIRROR")]
    pub registry: Option<String>,
    /// Rewrite ragctl.yaml and the rendered files of an existing project; secrets already in .env are kept
    #[arg(long)]
    pub force: bool,
}

impl InitArgs {
    /// The answers these flags give; the rest is asked or defaulted by the model.
    pub fn given(&self) -> Given {
        Given {
            name: self.name.clone(),
            vector_store: self.vector_store.clone(),
            pg_cluster: toggle(self.pg_cluster, self.no_pg_cluster),
            replicas: self.replicas,
            app: toggle(self.app, self.no_app),
            monitoring: toggle(self.monitoring, self.no_monitoring),
            domain: self.domain.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            self_signed: self.self_signed,
            ports: self.ports.clone(),
            registry: self.registry.clone(),
        }
    }
}

/// `--x` / `--no-x` pairs: clap keeps only the last one given.
fn toggle(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// `KEY=PORT` of `init --port`.
fn parse_port_assignment(value: &str) -> Result<(String, u16), String> {
    let (key, port) = value.split_once('=').ok_or_else(|| format!("expected KEY=PORT, got `{value}`"))?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
        return Err(format!("`{key}` is not a .env key (such as EXPOSE_POSTGRES_PORT)"));
    }
    let port: u16 = port.trim().parse().map_err(|_| format!("`{port}` is not a port number (1-65535)"))?;
    if port == 0 {
        return Err("port 0 is not a port to publish on".to_string());
    }
    Ok((key.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_toggles_take_the_flag_given() {
        let args = |argv: &[&str]| match Cli::try_parse_from(argv).unwrap().command {
            Command::Init(args) => args.given(),
            _ => unreachable!("parsed as init"),
        };
        assert_eq!(args(&["ragctl", "init"]).app, None);
        assert_eq!(args(&["ragctl", "init", "--app"]).app, Some(true));
        assert_eq!(args(&["ragctl", "init", "--app", "--no-app"]).app, Some(false));
        assert_eq!(args(&["ragctl", "init", "--no-monitoring", "--monitoring"]).monitoring, Some(true));
        assert_eq!(args(&["ragctl", "init", "--no-pg-cluster"]).pg_cluster, Some(false));
    }
}
