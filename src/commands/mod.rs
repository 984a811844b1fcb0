//! Command layer: each command is a thin shell that resolves settings, builds the model and applies it.
//! This is the only layer that writes files (through [`crate::atomic_file`]) or prints (through
//! [`crate::output`]).

mod adopt;
mod backup;
mod db;
mod doctor;
pub(crate) mod down;
mod env_import;
mod init;
mod logs;
mod profiles;
mod ps;
mod releases;
mod render;
mod restart;
mod restore;
mod secret;
mod swarm;
pub(crate) mod up;

use crate::catalog::Catalog;
use crate::cli::{Cli, Command};
use crate::env_vars::EnvSnapshot;
use crate::error::{Error, exit};
use crate::output::{Format, Output};
use crate::settings::Settings;
use crate::stack::Stack;

/// Run a parsed command line and return the process exit code.
pub fn run(cli: Cli) -> i32 {
    let env = EnvSnapshot::capture();
    // Until settings are resolved, report with what the flags alone say.
    let early = Output {
        format: cli.global.format.map(Format::from).unwrap_or(Format::Text),
        quiet: cli.global.quiet,
        verbose: cli.global.verbose,
        color: false,
    };
    let overrides = cli.global.overrides();
    let settings = match Settings::resolve(&overrides, &env) {
        Ok(s) => s,
        Err(e) => {
            early.error(&e);
            return e.exit_code();
        }
    };
    let out =
        Output { format: settings.format, quiet: settings.quiet, verbose: settings.verbose, color: settings.color };
    if crate::backup::paused::pending() {
        resume_after_killed_backup(&settings, &out);
    }
    let result = match &cli.command {
        Command::Init(args) => init::run(&settings, &out, &overrides, args),
        Command::Render(args) => render::run(&settings, &out, args),
        Command::Profiles => profiles::run(&settings, &out),
        Command::Releases => releases::run(&settings, &out),
        Command::Secret(cmd) => secret::run(&settings, &out, cmd),
        Command::Env(crate::cli::EnvCommand::Import { path, overwrite }) => {
            env_import::run(&settings, &out, path, *overwrite)
        }
        Command::Up(args) => up::run(&settings, &out, args),
        Command::Down(args) => down::run(&settings, &out, args),
        Command::Ps(args) => ps::run(&settings, &out, args),
        Command::Logs(args) => logs::run(&settings, &out, args),
        Command::Restart(args) => restart::run(&settings, &out, args),
        Command::Doctor(args) => doctor::run(&settings, &out, args),
        Command::Db(crate::cli::DbCommand::Check) => db::run(&settings, &out),
        Command::Backup(args) => backup::run(&settings, &out, args),
        Command::Restore(args) => restore::run(&settings, &out, &overrides, args),
        Command::Adopt(args) => adopt::run(&settings, &out, &overrides, args),
        Command::Completions { .. } | Command::Man => print_generated(&cli.command, &out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            out.error(&e);
            e.exit_code()
        }
    }
}

/// A backup killed outright left services paused (or helper containers): resume them before anything else.
fn resume_after_killed_backup(settings: &Settings, out: &Output) {
    let resumed = runtime().and_then(|rt| {
        rt.block_on(async {
            let docker = crate::docker::DockerClient::connect(settings.docker_host.as_deref()).await?;
            crate::backup::paused::recover(&docker).await
        })
    });
    match resumed {
        Ok(names) if !names.is_empty() => {
            out.warn(&format!("resumed containers an interrupted backup had paused: {}", names.join(", ")))
        }
        Ok(_) => {}
        Err(e) => out.warn(&format!("failed to resume what an interrupted backup paused: {e}")),
    }
}

/// `completions` and `man`: generated from the clap definition, so they never drift from the flags.
fn print_generated(command: &Command, out: &Output) -> Result<i32, Error> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut buf = Vec::new();
    match command {
        Command::Completions { shell } => clap_complete::generate(*shell, &mut cmd, "ragctl", &mut buf),
        _ => clap_mangen::Man::new(cmd)
            .render(&mut buf)
            .map_err(|e| Error::config(format!("failed to render the man page: {e}")))?,
    }
    out.data(&String::from_utf8_lossy(&buf));
    Ok(OK)
}

/// The profiles catalog and the stack model for the resolved settings: the one model every command uses.
pub fn load_stack(settings: &Settings) -> Result<(Catalog, Stack), Error> {
    let catalog = Catalog::load(&settings.project_dir)?;
    let stack = Stack::build(settings, &catalog)?;
    Ok((catalog, stack))
}

/// Refuse a `.env` that still sets an old port key (`EXPOSE_DB_PORT`) before anything is written or started: the
/// port would otherwise move back to its default. `up` and `render` call it; doctor's `env.file` says the same.
pub fn check_env_port_keys(settings: &Settings) -> Result<(), Error> {
    match &crate::env_file::EnvFile::load(&settings.env_file)?.doc {
        Some(doc) => crate::stack::renamed_port_keys_in_env(doc, &settings.env_file),
        None => Ok(()),
    }
}

pub const OK: i32 = exit::OK;

/// One thread is plenty: the engine waits on Docker, it does not compute. It also starts fastest.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::config(format!("failed to start the async runtime: {e}")))
}

/// Run `work` until it finishes or SIGINT arrives. On SIGINT the work is dropped where it stands: every object
/// created so far carries the project's labels, so `down` or a rerun of `up` finds and converges it.
pub async fn interruptible<T>(work: impl std::future::Future<Output = Result<T, Error>>) -> Result<T, Error> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
    }
}

/// Take the project's lock for `operation`, saying what we wait for when another ragctl holds it.
pub fn lock_project(project: &str, operation: &str, out: &Output) -> Result<crate::project_lock::ProjectLock, Error> {
    crate::project_lock::acquire(project, operation, |holder| {
        out.info(&format!(
            "waiting for another ragctl operation on project `{project}` to finish{}",
            holder.map(|h| format!(" ({h})")).unwrap_or_default()
        ))
    })
}

/// Removing volumes loses the stack's data: ask on a terminal, require `--yes` otherwise.
pub fn confirm_volume_removal(settings: &Settings, project: &str) -> Result<(), Error> {
    use std::io::IsTerminal;
    if settings.yes {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::config_hint(
            "refusing to remove volumes (the stack's data) without confirmation (no terminal to ask on)",
            "pass --yes to confirm",
        ));
    }
    let ok = dialoguer::Confirm::new()
        .with_prompt(format!("Remove the volumes of project `{project}`? Their data is lost."))
        .default(false)
        .interact()
        .map_err(|e| Error::config(format!("failed to read the answer: {e}")))?;
    if ok { Ok(()) } else { Err(Error::config("cancelled")) }
}

/// The project name for commands that only look at Docker (no stack needed).
pub fn project_name(settings: &Settings) -> &str {
    &settings.project_name
}
