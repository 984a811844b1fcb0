//! `ragctl adopt DIR`: take over a Dify `docker/` deployment. Refuses while that deployment's containers run
//! (found by their compose project label or by bind mounts under DIR) or while this project runs; imports
//! `DIR/.env` as `env import --overwrite` does (asking first when this project's `.env` already holds other
//! values); refuses a PostgreSQL data directory of another major than the project's image and project volumes
//! that already hold data (unless `--replace-data`); copies each data directory into the project's volume
//! ([`crate::backup::adopt`]); counts every table's rows on the copy; brings the stack up and counts again.
//! DIR is only read. Exit 0 adopted and counts match, 1 refused or failed or counts differ, 2 usage (DIR is not
//! a deployment directory, a question with no terminal and no --yes), 3 Docker unreachable.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::env_import::{ImportReport, import, print_report};
use super::render::{FileStatus, status_of, write_rendered};
use crate::backup::adopt::{self, Skipped, Transfer};
use crate::backup::{RowCheck, paused::Guard};
use crate::catalog::Catalog;
use crate::cli::{AdoptArgs, UpArgs};
use crate::docker::{DockerClient, LABEL_PROJECT};
use crate::env_file::{EnvFile, map_load_error};
use crate::env_vars::EnvSnapshot;
use crate::error::{Error, exit};
use crate::output::{Format, Output};
use crate::render::{TemplateSource, render_stack};
use crate::reporter::reporter;
use crate::settings::{Overrides, Settings};

#[derive(Serialize)]
struct AdoptReport {
    source: PathBuf,
    project: String,
    /// The deployment's compose project name (its containers' label).
    compose_project: String,
    env: ImportReport,
    /// Secrets the deployment's `.env` lacked, generated (names only).
    secrets_generated: Vec<String>,
    copied: Vec<Transfer>,
    skipped: Vec<Skipped>,
    databases: usize,
    tables_checked: usize,
    row_mismatches: Vec<RowCheck>,
    elapsed_ms: u64,
}

/// Overwrite `.env` values that differ from the deployment's: asked on a terminal, `--yes` otherwise.
fn confirm_overwrite(settings: &Settings, conflicts: &[String]) -> Result<(), Error> {
    use std::io::IsTerminal;
    if conflicts.is_empty() || settings.yes {
        return Ok(());
    }
    let question = format!(
        "`{}` holds other values for {}; the deployment's data needs the deployment's",
        settings.env_file.display(),
        conflicts.join(", ")
    );
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::config_hint(
            format!("{question} (no terminal to ask on)"),
            "pass --yes to take the deployment's values",
        ));
    }
    let ok = dialoguer::Confirm::new()
        .with_prompt(format!("{question}. Take them?"))
        .default(false)
        .interact()
        .map_err(|e| Error::config(format!("failed to read the answer: {e}")))?;
    if ok { Ok(()) } else { Err(Error::config("cancelled")) }
}

pub fn run(settings: &Settings, out: &Output, overrides: &Overrides, args: &AdoptArgs) -> Result<i32, Error> {
    let started = Instant::now();
    let dir = std::fs::canonicalize(&args.dir).map_err(|e| {
        Error::config_hint(format!("`{}`: {e}", args.dir.display()), "pass the deployment's docker/ directory")
    })?;
    let env_path = dir.join(".env");
    if !dir.is_dir() || !env_path.is_file() {
        return Err(Error::config_hint(
            format!("`{}` has no .env: not a Dify docker/ directory", dir.display()),
            "pass the directory that holds the deployment's .env, docker-compose.yaml and volumes/",
        ));
    }
    let dify_env = crate::dotenv::load(&env_path).map_err(map_load_error)?.resolved(&|_| None);
    let compose_project = adopt::compose_project_name(&dir, dify_env.get("COMPOSE_PROJECT_NAME").map(String::as_str));
    let project = settings.project_name.clone();
    if args.replace_data {
        super::confirm_volume_removal(settings, &project)?;
    }
    let runtime = super::runtime()?;

    // Refuse while the deployment or this project runs: the data would change under the copy.
    runtime.block_on(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        let label = format!("{LABEL_PROJECT}={compose_project}");
        let theirs = docker.containers_up_using(&label, &dir.display().to_string()).await?;
        if !theirs.is_empty() {
            let names: Vec<String> = theirs.iter().map(|(_, n, s)| format!("{n} ({s})")).collect();
            return Err(Error::Deploy {
                message: format!(
                    "the deployment in `{}` is running: {}; nothing was changed",
                    dir.display(),
                    names.join(", ")
                ),
                hint: Some(format!(
                    "stop it first (`docker compose down` in `{}`; its data stays there), then run adopt again",
                    dir.display()
                )),
            });
        }
        let live = docker.list_containers(&project).await?;
        if live.iter().any(|c| matches!(c.state.as_str(), "running" | "paused" | "restarting")) {
            return Err(Error::Deploy {
                message: format!("project `{project}` is running"),
                hint: Some("run `ragctl down` first".into()),
            });
        }
        Ok::<(), Error>(())
    })?;

    // The deployment's values, in memory until the data checks pass.
    let (first, _) = import(settings, &env_path, false, false)?;
    confirm_overwrite(settings, &first.conflicts)?;
    let (env_report, mut doc) = import(settings, &env_path, true, false)?;
    // Secrets the deployment did not have are generated, as `up` would (names said, never values).
    let (_, stack) = super::load_stack(settings)?;
    let generated = crate::secrets::plan_gen(&stack.secrets, &doc, &[])?;
    for c in &generated {
        doc.set_in_group(&c.profile, &c.name, c.value.expose());
    }
    let secrets_generated: Vec<String> = generated.iter().map(|c| c.name.clone()).collect();
    let desired = super::backup::desired_with(settings, &doc)?;
    let (mut transfers, skipped) = adopt::plan(&dir, &desired);
    if transfers.is_empty() {
        return Err(Error::config_hint(
            format!("`{}` holds no data directory this project has a volume for", dir.display()),
            "pass the deployment's docker/ directory (with volumes/db/data, volumes/redis/data, …)",
        ));
    }
    let rep = reporter(settings.progress, settings.color);
    let _lock = super::lock_project(&project, "adopt", out)?;
    runtime.block_on(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        let guard = Guard::new(&project)?;
        let result = super::interruptible(async {
            for image in transfers.iter().map(|t| t.image.clone()).collect::<std::collections::BTreeSet<_>>() {
                if !docker.image_present(&image).await? {
                    out.info(&format!("pulling {image}"));
                    docker.pull(&image, |_, _, _| {}).await?;
                }
            }
            adopt::check(&docker, &dir, &desired, &transfers, args.replace_data, &guard).await
        })
        .await;
        let removed = guard.release(&docker).await;
        result?;
        removed.map(|_| ())
    })?;

    // Checks passed: the project's files, then the data.
    if !env_report.imported.is_empty() || !secrets_generated.is_empty() {
        EnvFile::load(&settings.env_file)?.save(&doc)?;
    }
    let settings = Settings::resolve(overrides, &EnvSnapshot::capture())?;
    let desired = super::backup::desired_state(&settings)?;
    let (_, stack) = super::load_stack(&settings)?;
    for f in render_stack(&stack, &settings, &TemplateSource::new(&settings.project_dir))? {
        if status_of(&settings.project_dir.join(&f.path), &f) != FileStatus::Unchanged {
            write_rendered(&settings.project_dir, &f)?;
        }
    }
    let before = runtime.block_on(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        let guard = Guard::new(&project)?;
        let result = super::interruptible(async {
            adopt::copy(&docker, &dir, &desired, &mut transfers, args.replace_data, &guard, rep.as_ref()).await?;
            adopt::count_copied(&docker, &desired, &transfers, &guard).await
        })
        .await;
        let removed = guard.release(&docker).await;
        let counts = result?;
        removed.map(|_| counts)
    })?;
    rep.finish();
    drop(_lock);

    // `up` narrates on stderr; its own report would be a second document on stdout.
    let quiet_up = Output { format: Format::Text, quiet: out.quiet.max(1), ..*out };
    let up_args = UpArgs {
        dry_run: false,
        wait: true,
        no_wait: false,
        timeout: None,
        pull: crate::engine::plan::PullPolicy::Missing,
        remove_orphans: false,
        target: crate::cli::DeployTarget::Docker,
        allow_empty_data: false,
        allow_downgrade: false,
    };
    out.info(&format!("data copied from `{}`; bringing `{project}` up", dir.display()));
    let code = super::up::run(&settings, &quiet_up, &up_args)?;
    if code != super::OK {
        return Ok(code);
    }
    let mismatches = runtime.block_on(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        adopt::compare_running(&docker, &project, &before).await
    })?;
    let report = AdoptReport {
        source: dir.clone(),
        project: project.clone(),
        compose_project,
        env: env_report,
        secrets_generated,
        copied: transfers,
        skipped,
        databases: before.values().map(|d| d.len()).sum(),
        tables_checked: before.values().flat_map(|d| d.values()).map(|t| t.len()).sum(),
        row_mismatches: mismatches,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    if out.is_json() {
        out.json(&report);
    } else {
        print_report(out, &report.env, &Catalog::load(&settings.project_dir)?);
        if !report.secrets_generated.is_empty() {
            out.info(&format!("  generated missing secrets: {}", report.secrets_generated.join(", ")));
        }
        for t in &report.copied {
            out.info(&format!("  copied {} → volume {} ({} bytes)", t.source, t.volume, t.bytes));
        }
        for s in &report.skipped {
            out.warn(&format!("not adopted: {}: {}", s.source, s.reason));
        }
        super::restore::print_mismatches(out, &report.row_mismatches);
        out.info(&format!(
            "adopted `{}` into project `{project}`: {} volumes, {} databases, {} tables checked in {:.1}s",
            dir.display(),
            report.copied.len(),
            report.databases,
            report.tables_checked,
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(if report.row_mismatches.is_empty() { super::OK } else { exit::FAILURE })
}
