//! `ragctl backup`, `backup verify`, `backup list`, `backup prune`: resolve the paths and the stack, call
//! [`crate::backup`], report. Exit 0 done, 1 failed (a member that does not verify, a service not running),
//! 2 usage, 3 Docker unreachable, 130 interrupted (paused services resumed, the partial file removed).

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::backup::{self, BackupRequest, Manifest, RowCheck, archive, paused::Guard};
use crate::cli::{BackupArgs, BackupCommand};
use crate::docker::DockerClient;
use crate::engine::spec::{Desired, desired};
use crate::env_file::EnvFile;
use crate::env_vars::compose_lookup;
use crate::error::{Error, exit};
use crate::output::Output;
use crate::reporter::{Reporter, reporter};
use crate::settings::Settings;

pub fn run(settings: &Settings, out: &Output, args: &BackupArgs) -> Result<i32, Error> {
    match &args.command {
        Some(BackupCommand::Verify { archive, deep, identity }) => verify(settings, out, archive, *deep, identity),
        Some(BackupCommand::List { dir }) => list(settings, out, dir.as_deref()),
        Some(BackupCommand::Prune { keep, dir }) => prune(settings, out, *keep, dir.as_deref()),
        None => create(settings, out, args),
    }
}

/// `backups/` in the project directory, created 0700 when missing.
fn default_dir(settings: &Settings) -> Result<PathBuf, Error> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = settings.project_dir.join("backups");
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(dir),
        Err(e) => Err(Error::io("create directory", &dir, e)),
    }
}

/// The desired state of the project as `up` would deploy it (volumes, mounts, images, settings).
pub fn desired_state(settings: &Settings) -> Result<Desired, Error> {
    desired_with(settings, &EnvFile::load(&settings.env_file)?.doc_or_new())
}

/// The desired state with `doc` as the project's `.env`.
pub fn desired_with(settings: &Settings, doc: &crate::dotenv::DotEnv) -> Result<Desired, Error> {
    let (_, stack) = super::load_stack(settings)?;
    desired(&stack, &compose_lookup(doc), &settings.project_dir, None)
}

/// The project files saved with the data: `.env`, `ragctl.yaml` and the rendered files that exist.
fn project_files(settings: &Settings) -> Result<Vec<(String, PathBuf)>, Error> {
    let (_, stack) = super::load_stack(settings)?;
    let mut files = vec![
        (backup::MEMBER_ENV.to_string(), settings.env_file.clone()),
        (backup::MEMBER_PROJECT_FILE.to_string(), settings.project_dir.join("ragctl.yaml")),
        ("config/rendered/docker-compose.yaml".to_string(), settings.project_dir.join("docker-compose.yaml")),
    ];
    files.extend(
        stack.files.iter().map(|f| (format!("config/rendered/{}", f.output), settings.project_dir.join(&f.output))),
    );
    Ok(files.into_iter().filter(|(_, p)| p.is_file()).collect())
}

#[derive(Serialize)]
struct BackupReport<'a> {
    archive: &'a Path,
    size: u64,
    encrypted: bool,
    manifest: &'a Manifest,
    elapsed_ms: u64,
}

fn create(settings: &Settings, out: &Output, args: &BackupArgs) -> Result<i32, Error> {
    let started = Instant::now();
    let recipients = archive::parse_recipients(&args.encrypt_to)?;
    let desired = desired_state(settings)?;
    let project = desired.project.clone();
    let (iso, compact) = archive::timestamps(SystemTime::now());
    let extension = format!("{}{}", backup::EXTENSION, if recipients.is_empty() { "" } else { ".age" });
    // The default name: the project and the UTC second, numbered when that second already has one.
    let default_in = |dir: PathBuf| {
        (1..)
            .map(|n| match n {
                1 => dir.join(format!("{project}-{compact}{extension}")),
                n => dir.join(format!("{project}-{compact}-{n}{extension}")),
            })
            .find(|p| !p.exists())
            .unwrap_or_default()
    };
    let dest = match &args.output {
        None => default_in(default_dir(settings)?),
        Some(p) if p.is_dir() => default_in(p.clone()),
        Some(p) => p.clone(),
    };
    if dest.exists() {
        return Err(Error::config_hint(
            format!("`{}` exists", dest.display()),
            "name another file with --output, or remove it",
        ));
    }
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let request = BackupRequest {
        desired: &desired,
        files: project_files(settings)?,
        dir: &dir,
        dest: &dest,
        recipients,
        ragctl_version: env!("CARGO_PKG_VERSION"),
        created: iso,
    };
    let _lock = super::lock_project(&project, "backup", out)?;
    let rep = reporter(settings.progress, settings.color);
    let runtime = super::runtime()?;
    let manifest = runtime.block_on(async {
        let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
        let guard = Guard::new(&project)?;
        let result = super::interruptible(backup::create(&docker, &request, rep.as_ref(), &guard)).await;
        // Always: also after a failure or SIGINT (the partial file went with the dropped writer).
        let resumed = guard.release(&docker).await;
        let manifest = result?;
        resumed?;
        Ok::<_, Error>(manifest)
    });
    rep.finish();
    let manifest = manifest?;
    let size = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
    let dest = std::fs::canonicalize(&dest).unwrap_or(dest);
    let report = BackupReport {
        archive: &dest,
        size,
        encrypted: !args.encrypt_to.is_empty(),
        manifest: &manifest,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    if out.is_json() {
        out.json(&report);
    } else {
        let databases: usize = manifest.postgres.iter().map(|p| p.databases.len()).sum();
        out.info(&format!(
            "backup of `{project}` written to {} ({}, {} databases, {} volumes) in {:.1}s",
            dest.display(),
            indicatif::HumanBytes(size),
            databases,
            manifest.volumes.len(),
            started.elapsed().as_secs_f64()
        ));
        out.data(&format!("{}\n", dest.display()));
    }
    Ok(super::OK)
}

#[derive(Serialize)]
struct VerifyReport<'a> {
    archive: &'a Path,
    ok: bool,
    members_checked: usize,
    deep: bool,
    /// Tables whose row count after the deep restore differs from the manifest (`--deep` only).
    row_mismatches: Vec<RowCheck>,
    tables_checked: usize,
    /// The newest Dify release that ran against the archived data, when it was recorded.
    release: Option<&'a str>,
}

fn verify(settings: &Settings, out: &Output, path: &Path, deep: bool, identity: &[PathBuf]) -> Result<i32, Error> {
    let identities = archive::load_identities(identity)?;
    let verified = backup::verify(path, &identities)?;
    let manifest = &verified.manifest;
    let mut mismatches = Vec::new();
    if deep {
        let rep = reporter(settings.progress, settings.color);
        let runtime = super::runtime()?;
        mismatches = runtime.block_on(async {
            let docker = DockerClient::connect(settings.docker_host.as_deref()).await?;
            let guard = Guard::new(&manifest.project)?;
            let result = super::interruptible(backup::verify_deep(
                &docker,
                path,
                &identities,
                manifest,
                &guard,
                rep.as_ref() as &dyn Reporter,
            ))
            .await;
            let removed = guard.release(&docker).await;
            let mismatches = result?;
            removed?;
            Ok::<_, Error>(mismatches)
        })?;
        rep.finish();
    }
    let tables: usize = manifest.postgres.iter().flat_map(|p| &p.databases).map(|d| d.tables.len()).sum();
    let report = VerifyReport {
        archive: path,
        ok: mismatches.is_empty(),
        members_checked: verified.members_checked,
        deep,
        row_mismatches: mismatches,
        tables_checked: if deep { tables } else { 0 },
        release: manifest.release.as_deref(),
    };
    if out.is_json() {
        out.json(&report);
    } else {
        out.data(&format!("{}: {} members match the manifest\n", path.display(), report.members_checked));
        if deep {
            out.data(&format!("deep: {tables} tables restored into throwaway containers\n"));
            super::restore::print_mismatches(out, &report.row_mismatches);
        }
    }
    Ok(if report.ok { super::OK } else { exit::FAILURE })
}

fn list(settings: &Settings, out: &Output, dir: Option<&Path>) -> Result<i32, Error> {
    let dir = dir.map(Path::to_path_buf).unwrap_or_else(|| settings.project_dir.join("backups"));
    let all = backup::list(&dir)?;
    if out.is_json() {
        out.json(&serde_json::json!({ "dir": dir, "archives": all }));
    } else {
        let mut text = String::new();
        for a in &all {
            let (when, _) = archive::timestamps(std::time::UNIX_EPOCH + std::time::Duration::from_secs(a.modified));
            text.push_str(&format!("{}  {:>10}  {when}\n", a.name, indicatif::HumanBytes(a.size)));
        }
        if all.is_empty() {
            out.info(&format!("no backups in {}", dir.display()));
        }
        out.data(&text);
    }
    Ok(super::OK)
}

fn prune(settings: &Settings, out: &Output, keep: usize, dir: Option<&Path>) -> Result<i32, Error> {
    let dir = dir.map(Path::to_path_buf).unwrap_or_else(|| settings.project_dir.join("backups"));
    let removed = backup::prune(&dir, keep)?;
    if out.is_json() {
        out.json(&serde_json::json!({ "dir": dir, "kept": keep, "removed": removed }));
    } else {
        for r in &removed {
            out.info(&format!("removed {}", r.path.display()));
        }
        out.info(&format!("{} archives removed, at most {keep} kept", removed.len()));
    }
    Ok(super::OK)
}
