//! `ragctl secret gen | list | check`: the stack's secrets against `.env`.

use std::io::IsTerminal;

use serde::Serialize;

use crate::cli::{SecretCommand, SecretGenArgs};
use crate::env_file::EnvFile;
use crate::error::Error;
use crate::output::Output;
use crate::secrets::{ChangeReason, SecretAssessment, assess, in_scope, plan_gen};
use crate::settings::Settings;

pub fn run(settings: &Settings, out: &Output, cmd: &SecretCommand) -> Result<i32, Error> {
    match cmd {
        SecretCommand::Gen(args) => generate(settings, out, args),
        SecretCommand::List { show } => list(settings, out, *show),
        SecretCommand::Check => check(settings, out),
    }
}

#[derive(Serialize)]
struct GenReport<'a> {
    env_file: &'a std::path::Path,
    changed: bool,
    secrets: Vec<GenItem<'a>>,
    backup: Option<std::path::PathBuf>,
}

#[derive(Serialize)]
struct GenItem<'a> {
    name: &'a str,
    profile: &'a str,
    reason: ChangeReason,
}

fn generate(settings: &Settings, out: &Output, args: &SecretGenArgs) -> Result<i32, Error> {
    let (catalog, stack) = super::load_stack(settings)?;
    let file = EnvFile::load(&settings.env_file)?;
    let mut doc = file.doc_or_new();
    let scope = in_scope(&stack, &catalog, &doc, &args.rotate);
    let changes = plan_gen(&scope, &doc, &args.rotate)?;

    let rotating = !args.rotate.is_empty();
    if !changes.is_empty() {
        // Before asking, and before any backup: a refusal must leave the directory as it was.
        file.ensure_writable()?;
    }
    if rotating && !changes.is_empty() {
        let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        confirm(settings, &format!("Rotate {} in `{}`?", names.join(", "), file.path.display()))?;
    }
    let backup = if rotating && !changes.is_empty() { file.backup()? } else { None };
    for c in &changes {
        doc.set_in_group(&c.profile, &c.name, c.value.expose());
    }
    if !changes.is_empty()
        && let Err(e) = file.save(&doc)
    {
        // The backup holds what `.env` still holds: keeping it would only leave a stray copy of the secrets.
        if let Some(b) = &backup {
            let _ = std::fs::remove_file(b);
        }
        return Err(e);
    }

    if out.is_json() {
        out.json(&GenReport {
            env_file: &file.path,
            changed: !changes.is_empty(),
            secrets: changes.iter().map(|c| GenItem { name: &c.name, profile: &c.profile, reason: c.reason }).collect(),
            backup: backup.clone(),
        });
    } else if changes.is_empty() {
        out.info(&format!(
            "all {} secrets of profiles {} are already set in `{}`; nothing changed",
            scope.len(),
            stack.profiles.join(", "),
            file.path.display()
        ));
    } else {
        let verb = if rotating { "rotated" } else { "generated" };
        let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        out.info(&format!("{verb} {} secrets in `{}`: {}", changes.len(), file.path.display(), names.join(", ")));
        if let Some(b) = &backup {
            out.info(&format!("previous file kept as `{}`", b.display()));
        }
    }
    for c in changes.iter().filter(|c| c.baked_into.is_some()) {
        // Each secret says for itself what a new value does to what already ran.
        out.warn(&format!(
            "`{}` changed: {}",
            c.name,
            c.baked_into
                .as_deref()
                .unwrap_or_default()
                .replace("<project>", &stack.project)
                .replace("<DB_USERNAME>", doc.get("DB_USERNAME").filter(|v| !v.is_empty()).unwrap_or("postgres"))
        ));
    }
    Ok(super::OK)
}

/// Ask on a TTY; without one, `--yes` is required.
fn confirm(settings: &Settings, question: &str) -> Result<(), Error> {
    if settings.yes {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::config_hint(
            "refusing to rotate secrets without confirmation (no terminal to ask on)",
            "pass --yes to confirm",
        ));
    }
    let answer = dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
        .map_err(|e| Error::config(format!("failed to read the answer: {e}")))?;
    if answer { Ok(()) } else { Err(Error::config("rotation cancelled")) }
}

#[derive(Serialize)]
struct ListRow<'a> {
    #[serde(flatten)]
    secret: &'a SecretAssessment,
    hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
}

fn rows(assessments: &[SecretAssessment], show: bool) -> Vec<ListRow<'_>> {
    assessments
        .iter()
        .map(|a| ListRow {
            secret: a,
            hint: a.hint(),
            value: if show { a.value.as_ref().map(|v| v.expose()) } else { None },
        })
        .collect()
}

fn list(settings: &Settings, out: &Output, show: bool) -> Result<i32, Error> {
    let (catalog, stack) = super::load_stack(settings)?;
    let file = EnvFile::load(&settings.env_file)?;
    let doc = file.doc_or_empty();
    let assessments = assess(&in_scope(&stack, &catalog, &doc, &[]), &doc);
    if out.is_json() {
        out.json(&rows(&assessments, show));
        return Ok(super::OK);
    }
    let width = assessments.iter().map(|a| a.name.len()).max().unwrap_or(4).max(4);
    let mut text = format!(
        "{:<width$}  {:<14}  {:<10}  CONSUMERS{}\n",
        "NAME",
        "STATUS",
        "PROFILE",
        if show { "  VALUE" } else { "" }
    );
    for a in &assessments {
        let value = match (show, &a.value) {
            (true, Some(v)) => format!("  {}", v.expose()),
            (true, None) => "  -".to_string(),
            _ => String::new(),
        };
        text.push_str(&format!(
            "{:<width$}  {:<14}  {:<10}  {}{value}\n",
            a.name,
            a.status.label(),
            a.profile,
            a.consumers.join(", ")
        ));
    }
    out.data(&text);
    Ok(super::OK)
}

#[derive(Serialize)]
struct CheckReport<'a> {
    ok: bool,
    problems: usize,
    secrets: Vec<ListRow<'a>>,
}

fn check(settings: &Settings, out: &Output) -> Result<i32, Error> {
    let (catalog, stack) = super::load_stack(settings)?;
    let file = EnvFile::load(&settings.env_file)?;
    let doc = file.doc_or_empty();
    let assessments = assess(&in_scope(&stack, &catalog, &doc, &[]), &doc);
    let problems = assessments.iter().filter(|a| !a.status.is_ok()).count();
    if out.is_json() {
        out.json(&CheckReport { ok: problems == 0, problems, secrets: rows(&assessments, false) });
    } else {
        let mut text = String::new();
        for a in assessments.iter().filter(|a| !a.status.is_ok()) {
            let detail = match &a.status {
                crate::secrets::SecretStatus::Weak { bits } => format!("weak (about {bits} bits)"),
                crate::secrets::SecretStatus::PairMismatch { other } => format!("differs from `{other}`"),
                crate::secrets::SecretStatus::Malformed { reason } => format!("malformed: {reason}"),
                crate::secrets::SecretStatus::PublicDefault => {
                    "publicly known default of the reference deployment".into()
                }
                s => s.label().to_string(),
            };
            text.push_str(&format!("✗ {}: {detail}\n", a.name));
            if let Some(h) = a.hint() {
                text.push_str(&format!("  hint: {h}\n"));
            }
        }
        if problems == 0 {
            text.push_str(&format!("✓ all {} secrets are set, strong and consistent\n", assessments.len()));
        } else {
            text.push_str(&format!("{problems} problem{} found\n", if problems == 1 { "" } else { "s" }));
        }
        out.data(&text);
    }
    Ok(if problems == 0 { super::OK } else { crate::error::exit::FAILURE })
}
