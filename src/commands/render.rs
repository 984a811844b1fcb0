//! `ragctl render`: plan which rendered files change, then write them (or, with `--check`, only report).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::atomic_file::write_atomic;
use crate::cli::{RenderArgs, RenderTarget};
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
    let (catalog, stack) = super::load_stack(settings)?;
    super::check_env_port_keys(settings)?;
    let files = render_stack(&stack, settings, &TemplateSource::new(&settings.project_dir))?;
    for warning in &stack.warnings {
        out.warn(warning);
    }
    for implied in &stack.implied_profiles {
        out.detail(&format!("note: profile `{implied}` enabled implicitly (group default or requirement)"));
    }
    if args.target == RenderTarget::Kubernetes {
        return run_kubernetes(settings, out, args, &catalog, &stack, &files);
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

    let files = plan.iter().map(|(f, s)| FilePlan { path: &f.path, status: *s }).collect();
    let nouns = Nouns { rendered: "files", up_to_date: "rendered files", note: "" };
    Ok(report_render(out, &stack, &output_dir, args.check, files, nouns))
}

/// How a render's summary names what it wrote.
struct Nouns<'a> {
    rendered: &'a str,
    up_to_date: &'a str,
    note: &'a str,
}

/// Report a render of either target (text lines or JSON) and, with `--check`, turn drift into exit 1.
fn report_render(
    out: &Output,
    stack: &crate::stack::Stack,
    output_dir: &Path,
    check: bool,
    files: Vec<FilePlan<'_>>,
    nouns: Nouns<'_>,
) -> i32 {
    let changed: Vec<String> =
        files.iter().filter(|f| f.status != FileStatus::Unchanged).map(|f| f.path.to_string()).collect();
    let total = files.len();
    if out.is_json() {
        out.json(&Report { output_dir, profiles: &stack.profiles, shape: stack.shape.as_str(), check, files });
    } else {
        for f in &files {
            let verb = match (f.status, check) {
                (FileStatus::Unchanged, _) => "unchanged",
                (FileStatus::Create, false) => "created",
                (FileStatus::Update, false) => "updated",
                (FileStatus::Create, true) => "missing",
                (FileStatus::Update, true) => "differs",
            };
            let line = format!("  {verb:<9} {}", f.path);
            if f.status == FileStatus::Unchanged { out.detail(&line) } else { out.info(&line) }
        }
        if !check {
            out.info(&format!(
                "rendered {total} {} into `{}` ({} written, {} unchanged{})",
                if total == 1 { nouns.rendered.trim_end_matches('s') } else { nouns.rendered },
                output_dir.display(),
                changed.len(),
                total - changed.len(),
                nouns.note
            ));
        }
    }
    if !check {
        return super::OK;
    }
    if changed.is_empty() {
        if !out.is_json() {
            out.info(&format!("{total} {} are up to date", nouns.up_to_date));
        }
        return super::OK;
    }
    let err = Error::Drift { files: changed };
    if !out.is_json() {
        out.error(&err);
    }
    err.exit_code()
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

// --- `--target kubernetes` -------------------------------------------------------------------------------------

/// Render Kubernetes manifests into `<project>/kubernetes/` (or `--output`). The Secret manifest is written with
/// mode 0600 and never printed: `--stdout` prints every other manifest and says so on stderr.
fn run_kubernetes(
    settings: &Settings,
    out: &Output,
    args: &RenderArgs,
    catalog: &crate::catalog::Catalog,
    stack: &crate::stack::Stack,
    config_files: &[RenderedFile],
) -> Result<i32, Error> {
    use crate::kubernetes::{KubernetesInput, OUTPUT_DIR, SECRET_FILE, render_manifests};

    // Compose's rule, as `up` applies it: the process environment overrides .env.
    let doc = crate::env_file::EnvFile::load(&settings.env_file)?.doc_or_empty();
    let vars = crate::env_vars::compose_lookup(&doc);
    let input = KubernetesInput { stack, catalog, settings, config_files, vars: &vars };
    let manifests = render_manifests(&input)?;

    if args.stdout {
        for m in manifests.iter().filter(|m| !m.secret) {
            out.data(&m.contents);
        }
        out.warn(&format!(
            "`{SECRET_FILE}` is not printed: it holds secret values (render into a directory to get it)"
        ));
        return Ok(super::OK);
    }

    let output_dir = args.output.clone().unwrap_or_else(|| settings.project_dir.join(OUTPUT_DIR));
    let plan: Vec<(&crate::kubernetes::Manifest, FileStatus)> = manifests
        .iter()
        .map(|m| {
            let path = output_dir.join(&m.path);
            let status = match std::fs::read(&path) {
                Ok(bytes) if bytes == m.contents.as_bytes() && (!m.secret || private_mode(&path)) => {
                    FileStatus::Unchanged
                }
                Ok(_) => FileStatus::Update,
                Err(_) => FileStatus::Create,
            };
            (m, status)
        })
        .collect();
    if !args.check {
        std::fs::create_dir_all(&output_dir).map_err(|e| Error::io("create directory", &output_dir, e))?;
        for (m, status) in &plan {
            if *status != FileStatus::Unchanged {
                let path = output_dir.join(&m.path);
                let mode = if m.secret { 0o600 } else { 0o644 };
                write_atomic(&path, m.contents.as_bytes(), Some(mode)).map_err(|e| Error::io("write", &path, e))?;
            }
        }
    }
    let files = plan.iter().map(|(m, s)| FilePlan { path: &m.path, status: *s }).collect();
    let note = format!("; `{SECRET_FILE}` is private, mode 0600");
    let nouns = Nouns { rendered: "Kubernetes manifests", up_to_date: "Kubernetes manifests", note: &note };
    Ok(report_render(out, stack, &output_dir, args.check, files, nouns))
}

/// The Secret manifest must not be readable by group or others.
#[cfg(unix)]
fn private_mode(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 == 0)
}

#[cfg(not(unix))]
fn private_mode(_path: &Path) -> bool {
    true
}
