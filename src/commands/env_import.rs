//! `ragctl env import PATH`: adopt an existing reference-deployment `.env`, keeping the operator's values,
//! mapping renamed keys and renamed services, and reporting every publicly known default it still holds.
//! It writes only `.env`; what the values mean for the stack is for `secret check` and `doctor` to judge.

use std::path::Path;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::dotenv;
use crate::env_file::{EnvFile, map_load_error};
use crate::error::Error;
use crate::output::Output;
use crate::secrets::derive_value;
use crate::settings::Settings;

/// Keys of older reference deployments and what ragctl (and current Dify) call them. No old name is a key of
/// a recorded release's `.env.example`, and every new one is (a test reads `releases/*.yaml` to hold both).
pub const RENAMED_KEYS: &[(&str, &str)] = &[
    ("POSTGRES_PASSWORD", "DB_PASSWORD"),
    ("PGPASSWORD", "DB_PASSWORD"),
    ("POSTGRES_USER", "DB_USERNAME"),
    ("PGUSER", "DB_USERNAME"),
    ("POSTGRES_DB", "DB_DATABASE"),
    ("WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEY", "WEAVIATE_AUTHENTICATION_APIKEY_ALLOWED_KEYS"),
    ("SANDBOX_KEY", "SANDBOX_API_KEY"),
    ("PLUGIN_DAEMON_SERVER_KEY", "PLUGIN_DAEMON_KEY"),
    // ragctl's own former name of PostgreSQL's published port (`crate::stack::RENAMED_PORT_KEYS`).
    ("EXPOSE_DB_PORT", "EXPOSE_POSTGRES_PORT"),
];

/// Values of older reference deployments that name a service by its old name: key, old value, current value.
pub const RENAMED_VALUES: &[(&str, &str, &str)] = &[("DB_HOST", "db", "db_postgres")];

/// Keys the import leaves out, and why.
const NOT_IMPORTED: &[(&str, &str)] = &[(
    "COMPOSE_PROFILES",
    "ragctl enables profiles itself (`profiles:` in ragctl.yaml or --profile); docker compose reads the rendered file",
)];

#[derive(Serialize, Default)]
pub(crate) struct ImportReport {
    source: String,
    env_file: String,
    pub imported: Vec<String>,
    unchanged: Vec<String>,
    /// Keys whose value in `.env` differs from the imported one; kept unless `--overwrite`.
    pub conflicts: Vec<String>,
    /// Old key names (`from` → `to`) and old service names in values (`DB_HOST=db` → `DB_HOST=db_postgres`).
    renamed: Vec<Renamed>,
    /// Derived values built again around a value the project kept (`CELERY_BROKER_URL` around its
    /// `REDIS_PASSWORD`), so they do not carry the imported one.
    derived: Vec<String>,
    skipped: Vec<Skipped>,
    /// Secrets that still hold a publicly known default after the import.
    public_defaults: Vec<String>,
}

#[derive(Serialize)]
struct Renamed {
    from: String,
    to: String,
    /// The file had both names with different values; the current name's value was taken.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    differs: bool,
}

#[derive(Serialize)]
struct Skipped {
    key: String,
    reason: &'static str,
}

pub fn run(settings: &Settings, out: &Output, source: &Path, overwrite: bool) -> Result<i32, Error> {
    let (report, _) = import(settings, source, overwrite, true)?;
    if out.is_json() {
        out.json(&report);
    } else {
        print_report(out, &report, &Catalog::load(&settings.project_dir)?);
    }
    Ok(super::OK)
}

/// Import `source` into the project's `.env` (written only when `save` and something was imported); the report
/// and the resulting document.
pub(crate) fn import(
    settings: &Settings,
    source: &Path,
    overwrite: bool,
    save: bool,
) -> Result<(ImportReport, dotenv::DotEnv), Error> {
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
    let resolved = imported.resolved(&|_| None);
    for (key, value) in &resolved {
        if let Some((_, reason)) = NOT_IMPORTED.iter().find(|(k, _)| k == key) {
            report.skipped.push(Skipped { key: key.clone(), reason });
            continue;
        }
        let name =
            RENAMED_KEYS.iter().find(|(from, _)| from == key).map(|(_, to)| to.to_string()).unwrap_or(key.clone());
        if &name != key {
            // Both spellings present: the current name wins, and says so when they disagree.
            let current = resolved.get(&name);
            report.renamed.push(Renamed {
                from: key.clone(),
                to: name.clone(),
                differs: current.is_some_and(|c| c != value),
            });
            if current.is_some() {
                continue;
            }
        }
        let mut value = value.clone();
        if let Some((_, old, new)) = RENAMED_VALUES.iter().find(|(k, old, _)| *k == name && *old == value) {
            report.renamed.push(Renamed { from: format!("{name}={old}"), to: format!("{name}={new}"), differs: false });
            value = new.to_string();
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
    // An imported derived value embeds the imported input; where the project kept its own input, build it again.
    for spec in catalog.iter().flat_map(|e| e.profile.secrets.iter()) {
        let Some(template) = &spec.derive else { continue };
        let kept_input = crate::stack::derive_references(template).any(|r| report.conflicts.iter().any(|c| c == r));
        if !kept_input || !report.imported.contains(&spec.name) {
            continue;
        }
        if let Some(value) = derive_value(template, &|n| doc.get(n).filter(|v| !v.is_empty()).map(str::to_string)) {
            doc.set_in_group(&group, &spec.name, &value);
            report.derived.push(spec.name.clone());
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
    if save && !report.imported.is_empty() {
        file.save(&doc)?;
    }
    Ok((report, doc))
}

/// The import's report as text.
pub(crate) fn print_report(out: &Output, report: &ImportReport, catalog: &Catalog) {
    {
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
            if r.differs {
                out.warn(&format!(
                    "`{}` differs from `{}` in `{}`; took `{}`, the name the stack reads",
                    r.from, r.to, report.source, r.to
                ));
            }
        }
        for name in &report.derived {
            out.info(&format!("  derived {name} again from the values this project kept"));
        }
        for s in &report.skipped {
            out.info(&format!("  skipped {}: {}", s.key, s.reason));
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
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{RENAMED_KEYS, RENAMED_VALUES};

    /// Each recorded release (`releases/*.yaml`) as (release, keys of its `.env.example` files, its services).
    fn releases() -> Vec<(String, BTreeSet<String>, BTreeSet<String>, serde_json::Value)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("releases");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let doc: serde_json::Value = yaml_serde::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let names = |v: &serde_json::Value| -> BTreeSet<String> {
                v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
            };
            let keys = names(&doc["dotenv"]).union(&names(&doc["middleware"]["dotenv"])).cloned().collect();
            out.push((
                doc["release"].as_str().unwrap().to_string(),
                keys,
                names(&doc["services"]),
                doc["dotenv"].clone(),
            ));
        }
        assert!(out.len() >= 2, "expected at least two recorded releases");
        out
    }

    #[test]
    fn renamed_keys_map_names_no_recorded_release_uses_to_names_every_recorded_release_uses() {
        for (release, keys, _, _) in releases() {
            for (old, new) in RENAMED_KEYS {
                assert!(!keys.contains(*old), "`{old}` is a key of Dify {release}'s .env.example, not an old name");
                assert!(keys.contains(*new), "`{new}` is not a key of Dify {release}'s .env.example");
            }
        }
    }

    #[test]
    fn every_renamed_port_key_is_mapped_by_the_import() {
        for pair in crate::stack::RENAMED_PORT_KEYS {
            assert!(RENAMED_KEYS.contains(pair), "{pair:?} is not in RENAMED_KEYS");
        }
    }

    #[test]
    fn renamed_values_name_a_service_that_no_recorded_release_has_and_map_to_its_default() {
        for (release, _, services, dotenv) in releases() {
            for (key, old, new) in RENAMED_VALUES {
                assert!(!services.contains(*old), "Dify {release} still has a service `{old}`");
                assert!(services.contains(*new), "Dify {release} has no service `{new}`");
                assert_eq!(dotenv[*key].as_str(), Some(*new), "{key} default of Dify {release}");
            }
        }
    }
}
