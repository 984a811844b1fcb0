//! Command layer: each command is a thin shell that resolves settings, builds the model and applies it.
//! This is the only layer that writes files (through [`crate::atomic_file`]) or prints (through
//! [`crate::output`]).

mod env_import;
mod profiles;
mod render;
mod secret;

use crate::catalog::Catalog;
use crate::cli::{Cli, Command, Format};
use crate::env_vars::EnvSnapshot;
use crate::error::{Error, exit};
use crate::output::Output;
use crate::settings::Settings;
use crate::stack::Stack;

/// Run a parsed command line and return the process exit code.
pub fn run(cli: Cli) -> i32 {
    let env = EnvSnapshot::capture();
    // Until settings are resolved, report with what the flags alone say.
    let early = Output {
        format: cli.global.format.unwrap_or(Format::Text),
        quiet: cli.global.quiet,
        verbose: cli.global.verbose,
        color: false,
    };
    let settings = match Settings::resolve(&cli.global, &env) {
        Ok(s) => s,
        Err(e) => {
            early.error(&e);
            return e.exit_code();
        }
    };
    let out =
        Output { format: settings.format, quiet: settings.quiet, verbose: settings.verbose, color: settings.color };
    let result = match &cli.command {
        Command::Render(args) => render::run(&settings, &out, args),
        Command::Profiles => profiles::run(&settings, &out),
        Command::Secret(cmd) => secret::run(&settings, &out, cmd),
        Command::Env(crate::cli::EnvCommand::Import { path, overwrite }) => {
            env_import::run(&settings, &out, path, *overwrite)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            out.error(&e);
            e.exit_code()
        }
    }
}

/// The profiles catalog and the stack model for the resolved settings: the one model every command uses.
pub fn load_stack(settings: &Settings) -> Result<(Catalog, Stack), Error> {
    let catalog = Catalog::load(&settings.project_dir)?;
    let stack = Stack::build(settings, &catalog)?;
    Ok((catalog, stack))
}

pub const OK: i32 = exit::OK;
