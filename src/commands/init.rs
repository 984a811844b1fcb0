//! `ragctl init`: a thin shell over [`crate::render::init`]. It checks that the directory is not a project yet,
//! collects the answers (a dialoguer wizard on a terminal, flags and defaults otherwise), lets the model plan
//! every file, then writes them — the TLS pair, the missing secrets in `.env`, the rendered files and, last,
//! `ragctl.yaml` — and reports. Deciding what to write is the model's job, not this module's.

use std::io::IsTerminal;
use std::path::Path;

use indexmap::IndexMap;
use serde::Serialize;

use super::render::{FileStatus, status_of, write_rendered};
use crate::atomic_file::write_atomic;
use crate::catalog::Catalog;
use crate::cli::InitArgs;
use crate::env_vars::EnvSnapshot;
use crate::error::Error;
use crate::output::Output;
use crate::project_file;
use crate::render::init::{Asker, Context, Plan, TlsAction, TlsPlan, collect, plan};
use crate::settings::{Overrides, Settings};

pub fn run(settings: &Settings, out: &Output, overrides: &Overrides, args: &InitArgs) -> Result<i32, Error> {
    let project_path = settings.project_path(project_file::FILE_NAME);
    if project_path.exists() && !args.force {
        return Err(Error::config_hint(
            format!("`{}` already exists", project_path.display()),
            "pass --force to rewrite it and the rendered files (secrets already in .env are kept)",
        ));
    }
    if !overrides.profiles.is_empty() {
        return Err(Error::config_hint(
            "`ragctl init` chooses profiles from its own answers, not --profile",
            "use --vector-store, --pg-cluster, --app and --monitoring",
        ));
    }
    let env = EnvSnapshot::capture();
    let catalog = Catalog::load(&settings.project_dir)?;
    let cx = Context { settings, overrides, env: &env, catalog: &catalog, out };

    let wizard = !settings.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if wizard {
        out.info("Answer each question (Enter takes the default in brackets); every answer also has a flag, see `ragctl init --help`.");
    }
    let answers = collect(&cx, &args.given(), if wizard { Asker::Wizard(&prompt::Terminal) } else { Asker::Defaults })?;
    let plan = plan(&cx, &answers)?;
    let statuses: Vec<FileStatus> =
        plan.rendered.iter().map(|f| status_of(&settings.project_dir.join(&f.path), f)).collect();
    apply(&plan, &statuses)?;
    report(&cx, &plan, &statuses);
    Ok(super::OK)
}

/// Write in the order that leaves a re-runnable directory when interrupted: `ragctl.yaml`, which makes the
/// directory a project (and a re-run need `--force`), goes last.
fn apply(plan: &Plan, statuses: &[FileStatus]) -> Result<(), Error> {
    if let Some(TlsPlan { certificate, key, action: TlsAction::Write { certificate_pem, key_pem, .. } }) = &plan.tls {
        if let Some(dir) = certificate.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        }
        write_atomic(key, key_pem, Some(0o600)).map_err(|e| Error::io("write", key, e))?;
        write_atomic(certificate, certificate_pem, Some(0o644)).map_err(|e| Error::io("write", certificate, e))?;
    }
    if !plan.secrets.is_empty() {
        plan.env_file.save(&plan.env_doc)?;
    }
    for (file, status) in plan.rendered.iter().zip(statuses) {
        if *status != FileStatus::Unchanged {
            write_rendered(&plan.settings.project_dir, file)?;
        }
    }
    write_atomic(&plan.project_file_path, plan.project_file_text.as_bytes(), Some(0o644))
        .map_err(|e| Error::io("write", &plan.project_file_path, e))
}

#[derive(Serialize)]
struct Report<'a> {
    project_file: &'a Path,
    project: &'a str,
    shape: &'a str,
    profiles: &'a [String],
    ports: &'a IndexMap<String, u16>,
    registry: Option<&'a str>,
    env_file: &'a Path,
    secrets_generated: Vec<&'a str>,
    secrets_kept: usize,
    tls: Option<TlsReport<'a>>,
    files: Vec<FileReport<'a>>,
    next: String,
}

#[derive(Serialize)]
struct TlsReport<'a> {
    domain: &'a str,
    certificate: &'a Path,
    key: &'a Path,
    /// `generated`, `copied` or `kept`.
    action: &'static str,
}

#[derive(Serialize)]
struct FileReport<'a> {
    path: &'a str,
    status: FileStatus,
}

fn report(cx: &Context, plan: &Plan, statuses: &[FileStatus]) {
    let out = cx.out;
    let next = next_command(cx.overrides);
    let tls = plan.tls.as_ref().map(|t| TlsReport {
        domain: plan.answers.domain.as_deref().unwrap_or_default(),
        certificate: &t.certificate,
        key: &t.key,
        action: match t.action {
            TlsAction::Write { generated: true, .. } => "generated",
            TlsAction::Write { generated: false, .. } => "copied",
            TlsAction::Keep { .. } => "kept",
        },
    });
    if out.is_json() {
        out.json(&Report {
            project_file: &plan.project_file_path,
            project: &plan.answers.name,
            shape: plan.answers.shape.as_str(),
            profiles: &plan.stack.profiles,
            ports: &plan.answers.ports,
            registry: plan.answers.registry.as_deref(),
            env_file: &plan.env_file.path,
            secrets_generated: plan.secrets.iter().map(|c| c.name.as_str()).collect(),
            secrets_kept: plan.stack.secrets.len() - plan.secrets.len(),
            tls,
            files: plan.rendered.iter().zip(statuses).map(|(f, s)| FileReport { path: &f.path, status: *s }).collect(),
            next,
        });
        return;
    }
    out.info(&format!(
        "wrote `{}`: project `{}`, shape {}, profiles {}",
        plan.project_file_path.display(),
        plan.answers.name,
        plan.answers.shape.as_str(),
        plan.stack.profiles.join(", ")
    ));
    let kept = plan.stack.secrets.len() - plan.secrets.len();
    if plan.secrets.is_empty() {
        out.info(&format!("all {kept} secrets are already set in `{}`; kept them", plan.env_file.path.display()));
    } else {
        out.info(&format!(
            "generated {} secrets in `{}` (mode 0600){}",
            plan.secrets.len(),
            plan.env_file.path.display(),
            if kept > 0 { format!("; kept {kept} already set") } else { String::new() }
        ));
    }
    if let (Some(t), Some(r)) = (&plan.tls, &tls) {
        match &t.action {
            TlsAction::Write { generated: true, .. } => out.info(&format!(
                "generated a self-signed certificate for `{}` (development only: browsers will warn): `{}`, key `{}` (mode 0600)",
                r.domain,
                t.certificate.display(),
                t.key.display()
            )),
            TlsAction::Write { generated: false, .. } => out.info(&format!(
                "copied the certificate to `{}` and the key to `{}` (mode 0600)",
                t.certificate.display(),
                t.key.display()
            )),
            TlsAction::Keep { reason } => {
                out.info(&format!("kept `{}` and `{}`: {reason}", t.certificate.display(), t.key.display()))
            }
        }
    }
    let written = statuses.iter().filter(|s| **s != FileStatus::Unchanged).count();
    for (f, s) in plan.rendered.iter().zip(statuses) {
        out.detail(&format!("  {:<9} {}", format!("{s:?}").to_ascii_lowercase(), f.path));
    }
    out.info(&format!(
        "rendered {} files ({written} written, {} unchanged)",
        plan.rendered.len(),
        plan.rendered.len() - written
    ));
    for w in &plan.stack.warnings {
        out.warn(w);
    }
    out.info(&format!("\nnext: {next}"));
}

/// `ragctl up`, with the global options that located this project.
fn next_command(global: &Overrides) -> String {
    let mut cmd = vec!["ragctl".to_string()];
    if let Some(dir) = &global.project_dir {
        cmd.push(format!("-C {}", shell_word(&dir.display().to_string())));
    }
    if let Some(env) = &global.env_file {
        cmd.push(format!("--env-file {}", shell_word(&env.display().to_string())));
    }
    cmd.push("up".to_string());
    cmd.join(" ")
}

fn shell_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The wizard's prompts: dialoguer on stderr, errors mapped to ragctl's (Ctrl-C is "interrupted").
mod prompt {
    use std::str::FromStr;

    use dialoguer::{Confirm, Input, Select};

    use crate::error::Error;
    use crate::render::init::Prompter;

    /// The terminal ragctl runs on (stdin and stderr).
    pub struct Terminal;

    fn failed(e: dialoguer::Error) -> Error {
        let dialoguer::Error::IO(io) = e;
        if io.kind() == std::io::ErrorKind::Interrupted {
            Error::Interrupted
        } else {
            Error::config(format!("failed to read the answer from the terminal: {io}"))
        }
    }

    fn number<T>(label: &str, default: T, valid: &mut dyn FnMut(&T) -> Result<(), String>) -> Result<T, Error>
    where
        T: Clone + ToString + FromStr,
        <T as FromStr>::Err: ToString,
    {
        Input::<T>::new()
            .with_prompt(label)
            .default(default)
            .validate_with(|v: &T| valid(v))
            .interact_text()
            .map_err(failed)
    }

    impl Prompter for Terminal {
        fn text(
            &self,
            label: &str,
            default: Option<&str>,
            valid: &mut dyn FnMut(&String) -> Result<(), String>,
        ) -> Result<String, Error> {
            let mut input = Input::<String>::new().with_prompt(label);
            if let Some(d) = default {
                input = input.default(d.to_string());
            }
            input.validate_with(|v: &String| valid(v)).interact_text().map(|s| s.trim().to_string()).map_err(failed)
        }

        fn optional_text(
            &self,
            label: &str,
            valid: &mut dyn FnMut(&String) -> Result<(), String>,
        ) -> Result<String, Error> {
            Input::<String>::new()
                .with_prompt(label)
                .allow_empty(true)
                .validate_with(|v: &String| valid(v))
                .interact_text()
                .map_err(failed)
        }

        fn number(
            &self,
            label: &str,
            default: u32,
            valid: &mut dyn FnMut(&u32) -> Result<(), String>,
        ) -> Result<u32, Error> {
            number(label, default, valid)
        }

        fn port(
            &self,
            label: &str,
            default: u16,
            valid: &mut dyn FnMut(&u16) -> Result<(), String>,
        ) -> Result<u16, Error> {
            number(label, default, valid)
        }

        fn select(&self, label: &str, items: &[String], default: usize) -> Result<usize, Error> {
            Select::new().with_prompt(label).items(items).default(default).interact().map_err(failed)
        }

        fn confirm(&self, label: &str, default: bool) -> Result<bool, Error> {
            Confirm::new().with_prompt(label).default(default).interact().map_err(failed)
        }
    }
}
