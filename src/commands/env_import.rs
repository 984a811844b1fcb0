//! `ragctl env import PATH`: adopt an existing reference-deployment `.env`, keeping the operator's values,
//! mapping renamed keys, and reporting every publicly known default it still holds.

use std::path::Path;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::dotenv;
use crate::env_file::{EnvFile, map_load_error};
use crate::error::Error;
use crate::output::Output;
use crate::settings::Settings;

/// Keys of older reference deployments and what ragctl (and current Dify) call them.
pub const RENAMED_KEYS: &[(&str, &str)] = &[
    ("POSTGRES_PASSWORD", "DB_PASSWORD"),
    ("PGPASSWORD", "DB_PASSWORD"),
    ("POSTGRES_USER", "DB_USERNAME"),
    ("PGUSER", "DB_USERNAME"),
    ("POSTGRES_DB", "DB_DATABASE"),
    ("WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEY", "WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS"),
    ("SANDBOX_KEY", "SANDBOX_API_KEY"),
    ("PLUGIN_DAEMON_SERVER_KEY", "PLUGIN_DAEMON_KEY"),
];

#[derive(Serialize, Default)]
struct ImportReport {
    source: String,
    env_file: String,
    imported: Vec<String>,
    unchanged: Vec<String>,
    /// Keys whose value in `.env` differs from the imported one; kept unless `--overwrite`.
    conflicts: Vec<String>,
    renamed: Vec<Renamed>,
    /// Secrets that still hold a publicly known default after the import.
    public_defaults: Vec<String>,
}

#[derive(Serialize)]
struct Renamed {
    from: String,
    to: String,
}

pub fn run(settings: &Settings, out: &Output, source: &Path, overwrite: bool) -> Result<i32, Error> {
    let catalog = Catalog::load(&settings.project_dir)?;
    let imported = dotenv::load(source).map_err(map_load_error)?;
    let file = EnvFile::load(&settings.env_file)?;
    let mut doc = file.doc_or_new();
    let group = format!("imported from {}", source.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());

    let mut report = ImportReport {
        source: source.display().to_string(),
        env_file: file.path.display().to_string(),
        ..Default::default()
    };
    // References like `${DB_PASSWORD}` are resolved against the imported file, so values arrive literal.
    for (key, value) in imported.resolved(&|_| None) {
        let name =
            RENAMED_KEYS.iter().find(|(from, _)| *from == key).map(|(_, to)| to.to_string()).unwrap_or(key.clone());
        if name != key {
            // Both spellings present: the current name wins.
            if imported.contains(&name) {
                continue;
            }
            report.renamed.push(Renamed { from: key.clone(), to: name.clone() });
        }
        match doc.get(&name) {
            Some(existing) if existing == value => report.unchanged.push(name),
            // An empty value in .env is a placeholder the import may fill.
            Some(existing) if !existing.is_empty() && !overwrite => report.conflicts.push(name),
            _ => {
                doc.set_in_group(&group, &name, &value);
                report.imported.push(name);
            }
        }
    }
    for entry in catalog.iter() {
        for spec in &entry.profile.secrets {
            if doc.get(&spec.name).is_some_and(|v| spec.public_defaults.iter().any(|d| d == v))
                && !report.public_defaults.contains(&spec.name)
            {
                report.public_defaults.push(spec.name.clone());
            }
        }
    }
    if !report.imported.is_empty() {
        file.save(&doc)?;
    }

    if out.is_json() {
        out.json(&report);
    } else {
        out.info(&format!(
            "imported {} keys from `{}` into `{}` ({} unchanged, {} kept because .env already differs)",
            report.imported.len(),
            report.source,
            report.env_file,
            report.unchanged.len(),
            report.conflicts.len()
        ));
        for r in &report.renamed {
            out.info(&format!("  renamed {} → {}", r.from, r.to));
        }
        if !report.conflicts.is_empty() {
            out.warn(&format!(
                "kept the current value of {} (pass --overwrite to take the imported ones)",
                report.conflicts.join(", ")
            ));
        }
        for name in &report.public_defaults {
            // A derived value (CELERY_BROKER_URL) is fixed by rotating what it is derived from.
            let root = catalog
                .iter()
                .flat_map(|e| e.profile.secrets.iter())
                .find(|s| &s.name == name)
                .and_then(|s| s.derive.as_deref().and_then(|t| crate::stack::derive_references(t).next()))
                .unwrap_or(name);
            out.warn(&format!(
                "`{name}` holds the reference deployment's publicly known default\n  hint: run `ragctl secret gen --rotate {root}`"
            ));
        }
    }
    Ok(super::OK)
}
