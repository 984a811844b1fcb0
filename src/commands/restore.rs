//! `ragctl restore ARCHIVE`: verify the archive, refuse while the project runs (or stop it with `--stop`), put
//! back `.env` and `ragctl.yaml` (asking when they differ), re-create the volumes empty and restore the data
//! ([`crate::backup::restore_data`]), bring the stack up and compare row counts with the manifest.
//! Exit 0 restored and counts match, 1 refused or failed or counts differ, 2 usage (a file differs and there is
//! no terminal to ask and no --yes), 3 Docker unreachable.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::render::{FileStatus, status_of, write_rendered};
use crate::backup::{self, RowCheck, archive, guard, paused::Guard};
use crate::cli::{RestoreArgs, UpArgs};
use crate::docker::DockerClient;
use crate::env_vars::EnvSnapshot;
use crate::error::{Error, exit};
use crate::output::{Format, Output};
use crate::render::{TemplateSource, render_stack};
use crate::reporter::reporter;
use crate::settings::{Overrides, Settings};

#[derive(Serialize)]
struct RestoreReport<'a> {
    archive: &'a Path,
    project: String,
    from_project: String,
    files_restored: Vec<String>,
    databases: usize,
    volumes: usize,
    tables_checked: usize,
    row_mismatches: Vec<RowCheck>,
    elapsed_ms: u64,
}

fn write_record(settings: &Settings, record: &guard::DataRecord) -> Result<(), Error> {
    let path = settings.project_dir.join(guard::RECORD_FILE);
    let text = serde_json::to_vec_pretty(record).map_err(|e| Error::config(format!("failed to encode JSON: {e}")))?;
    crate::atomic_file::write_atomic(&path, &text, Some(0o644)).map_err(|e| Error::io("write", &path, e))
}

pub fn print_mismatches(out: &Output, mismatches: &[RowCheck]) {
    let show = |n: Option<u64>| n.map_or("missing".to_string(), |n| n.to_string());
    for m in mismatches {
        out.data(&format!(
            "row count differs: {} {}.{}: manifest {}, now {}\n",
            m.service,
            m.database,
            m.table,
            show(m.expected),
            show(m.actual)
        ));
    }
}

/// Replace a project file with the archive's copy: silently when absent or equal, after a question (or --yes)
/// when it differs. Returns whether it was written.
fn restore_file(settings: &Settings, path: &Path, contents: &[u8], mode: u32) -> Result<bool, Error> {
    use std::io::IsTerminal;
    match std::fs::read(path) {
        Ok(current) if current == contents => return Ok(false),
        Ok(_) if !settings.yes => {
            if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
                return Err(Error::config_hint(
                    format!("`{}` differs from the backup's copy (no terminal to ask on)", path.display()),
                    "pass --yes to replace it with the backup's copy",
                ));
            }
            let ok = dialoguer::Confirm::new()
                .with_prompt(format!("Replace `{}` with the backup's copy?", path.display()))
                .default(false)
                .interact()
                .map_err(|e| Error::config(format!("failed to read the answer: {e}")))?;
            if !ok {
                return Err(Error::config("cancelled"));
            }
        }
        _ => {}
    }
    crate::atomic_file::write_atomic(path, contents, Some(mode)).map_err(|e| Error::io("write", path, e))?;
    Ok(true)
}

pub fn run(settings: &Settings, out: &Output, overrides: &Overrides, args: &RestoreArgs) -> Result<i32, Error> {
    let started = Instant::now();
    let identities = archive::load_identities(&args.identity)?;
    out.info(&format!("verifying {}", args.archive.display()));
    let manifest = backup::verify(&args.archive, &identities)?.manifest;
    let project = settings.project_name.clone();
    let runtime = super::runtime()?;

    let files =
        backup::read_small_members(&args.archive, &identities, &[backup::MEMBER_ENV, backup::MEMBER_PROJECT_FILE])?;
    // The release the project will run after the restore (the archive's ragctl.yaml, when it has one, replaces
    // the project's) must not be older than the one that last ran against the archived data.
    let after = match files.get(backup::MEMBER_PROJECT_FILE) {
        Some(text) => {
            let origin = format!("{}:{}", args.archive.display(), backup::MEMBER_PROJECT_FILE);
            let file = crate::project_file::ProjectFile::parse(&origin, &String::from_utf8_lossy(text))?;
            Settings::resolve_with(overrides, &EnvSnapshot::capture(), settings.project_dir.clone(), file)?.release
        }
        None => settings.release.clone(),
    };
    backup::data_release::decide(manifest.release.as_deref(), &after, args.allow_downgrade)?;
    // Refuse while the project runs: its data would change under the restore.
    runtime.block_on(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        let live: Vec<_> = docker
            .list_containers(&project)
            .await?
            .into_iter()
            .filter(|c| matches!(c.state.as_str(), "running" | "paused" | "restarting"))
            .collect();
        if !live.is_empty() && !args.stop {
            return Err(Error::Deploy {
                message: format!("project `{project}` is running ({} containers)", live.len()),
                hint: Some("run `ragctl down` first, or pass --stop".into()),
            });
        }
        for c in &live {
            docker.unpause(&c.id, &c.name).await?;
            docker.stop(&c.id, &c.name, None).await?;
        }
        Ok::<(), Error>(())
    })?;

    let mut files_restored = Vec::new();
    if !settings.project_dir.exists() {
        std::fs::create_dir_all(&settings.project_dir)
            .map_err(|e| Error::io("create directory", &settings.project_dir, e))?;
    }
    for (member, path, mode) in [
        (backup::MEMBER_PROJECT_FILE, settings.project_dir.join("ragctl.yaml"), 0o644),
        (backup::MEMBER_ENV, settings.env_file.clone(), 0o600),
    ] {
        if let Some(contents) = files.get(member)
            && restore_file(settings, &path, contents, mode)?
        {
            files_restored.push(path.display().to_string());
        }
    }

    // The restored ragctl.yaml and .env decide the stack from here on.
    let settings = Settings::resolve(overrides, &EnvSnapshot::capture())?;
    let desired = super::backup::desired_state(&settings)?;
    // The rendered files (init scripts, configuration) as `up` writes them: the throwaway server mounts them.
    let (_, stack) = super::load_stack(&settings)?;
    for f in render_stack(&stack, &settings, &TemplateSource::new(&settings.project_dir))? {
        if status_of(&settings.project_dir.join(&f.path), &f) != FileStatus::Unchanged {
            write_rendered(&settings.project_dir, &f)?;
        }
    }
    // Until the data is complete, `up` refuses to start on it.
    let mut record = guard::record_of(&desired);
    record.restoring = Some(args.archive.display().to_string());
    write_record(&settings, &record)?;
    let rep = reporter(settings.progress, settings.color);
    {
        let _lock = super::lock_project(&project, "restore", out)?;
        runtime.block_on(async {
            let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
            let guard = Guard::new(&project)?;
            let result = super::interruptible(backup::restore_data(
                &docker,
                &args.archive,
                &identities,
                &manifest,
                &desired,
                &guard,
                rep.as_ref(),
            ))
            .await;
            let removed = guard.release(&docker).await;
            result?;
            removed.map(|_| ())
        })?;
    }
    rep.finish();
    record.restoring = None;
    write_record(&settings, &record)?;

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
        allow_downgrade: args.allow_downgrade,
    };
    out.info(&format!("data restored; bringing `{project}` up"));
    let code = super::up::run(&settings, &quiet_up, &up_args)?;
    if code != super::OK {
        return Ok(code);
    }
    let mismatches = runtime.block_on(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        backup::check_row_counts(&docker, &manifest, &project).await
    })?;
    let report = RestoreReport {
        archive: &args.archive,
        project: project.clone(),
        from_project: manifest.project.clone(),
        files_restored,
        databases: manifest.postgres.iter().map(|p| p.databases.len()).sum(),
        volumes: manifest.volumes.len(),
        tables_checked: manifest.postgres.iter().flat_map(|p| &p.databases).map(|d| d.tables.len()).sum(),
        row_mismatches: mismatches,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    if out.is_json() {
        out.json(&report);
    } else {
        print_mismatches(out, &report.row_mismatches);
        out.info(&format!(
            "restored `{}` into project `{project}`: {} databases, {} volumes, {} tables checked in {:.1}s",
            args.archive.display(),
            report.databases,
            report.volumes,
            report.tables_checked,
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(if report.row_mismatches.is_empty() { super::OK } else { exit::FAILURE })
}
