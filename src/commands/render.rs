//! `ragctl render`: plan which rendered files change, then write them (or, with `--check`, only report).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::atomic_file::write_atomic;
use crate::cli::RenderArgs;
use crate::error::Error;
use crate::output::Output;
use crate::render::{COMPOSE_FILE, RenderedFile, TemplateSource, render_stack};
use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Create,
    Update,
    Unchanged,
}

#[derive(Serialize)]
struct FilePlan<'a> {
    path: &'a str,
    status: FileStatus,
}

#[derive(Serialize)]
struct Report<'a> {
    output_dir: &'a Path,
    profiles: &'a [String],
    shape: &'a str,
    check: bool,
    files: Vec<FilePlan<'a>>,
}

pub fn run(settings: &Settings, out: &Output, args: &RenderArgs) -> Result<i32, Error> {
    let (_, stack) = super::load_stack(settings)?;
    let files = render_stack(&stack, settings, &TemplateSource::new(&settings.project_dir))?;
    for warning in &stack.warnings {
        out.warn(warning);
    }
    for implied in &stack.implied_profiles {
        out.detail(&format!("note: profile `{implied}` enabled implicitly (group default or requirement)"));
    }

    if args.stdout {
        if let Some(compose) = files.iter().find(|f| f.path == COMPOSE_FILE) {
            out.data(&compose.contents);
        }
        return Ok(super::OK);
    }

    let output_dir = args.output.clone().unwrap_or_else(|| settings.project_dir.clone());
    let plan: Vec<(&RenderedFile, FileStatus)> =
        files.iter().map(|f| (f, status_of(&output_dir.join(&f.path), f))).collect();

    if !args.check {
        for (file, status) in &plan {
            if *status != FileStatus::Unchanged {
                write_rendered(&output_dir, file)?;
            }
        }
    }

    let report = Report {
        output_dir: &output_dir,
        profiles: &stack.profiles,
        shape: stack.shape.as_str(),
        check: args.check,
        files: plan.iter().map(|(f, s)| FilePlan { path: &f.path, status: *s }).collect(),
    };
    let changed: Vec<String> =
        plan.iter().filter(|(_, s)| *s != FileStatus::Unchanged).map(|(f, _)| f.path.clone()).collect();
    if out.is_json() {
        out.json(&report);
    } else {
        for (file, status) in &plan {
            let verb = match (status, args.check) {
                (FileStatus::Unchanged, _) => "unchanged",
                (FileStatus::Create, false) => "created",
                (FileStatus::Update, false) => "updated",
                (FileStatus::Create, true) => "missing",
                (FileStatus::Update, true) => "differs",
            };
            if *status == FileStatus::Unchanged {
                out.detail(&format!("  {verb:<9} {}", file.path));
            } else {
                out.info(&format!("  {verb:<9} {}", file.path));
            }
        }
        if !args.check {
            out.info(&format!(
                "rendered {} files into `{}` ({} written, {} unchanged)",
                plan.len(),
                output_dir.display(),
                changed.len(),
                plan.len() - changed.len()
            ));
        }
    }
    if args.check {
        if changed.is_empty() {
            if !out.is_json() {
                out.info(&format!("{} rendered files are up to date", plan.len()));
            }
            return Ok(super::OK);
        }
        let err = Error::Drift { files: changed };
        if !out.is_json() {
            out.error(&err);
        }
        return Ok(err.exit_code());
    }
    Ok(super::OK)
}

pub(super) fn status_of(path: &Path, file: &RenderedFile) -> FileStatus {
    match std::fs::read(path) {
        Ok(bytes) if bytes == file.contents.as_bytes() && mode_matches(path, file.executable) => FileStatus::Unchanged,
        Ok(_) => FileStatus::Update,
        Err(_) => FileStatus::Create,
    }
}

#[cfg(unix)]
fn mode_matches(path: &Path, executable: bool) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| (m.permissions().mode() & 0o111 != 0) == executable)
}

#[cfg(not(unix))]
fn mode_matches(_path: &Path, _executable: bool) -> bool {
    true
}

pub(super) fn write_rendered(output_dir: &Path, file: &RenderedFile) -> Result<(), Error> {
    let path: PathBuf = output_dir.join(&file.path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    let mode = if file.executable { 0o755 } else { 0o644 };
    write_atomic(&path, file.contents.as_bytes(), Some(mode)).map_err(|e| Error::io("write", &path, e))
}
