//! Every setting reaches its service: for each embedded Dify release, a complete Dify `.env` (every key of the
//! release's `.env.example`, and every other variable its compose reads) with a non-default value for every key,
//! the full shape with `app` and `weaviate` built and substituted exactly as `ragctl up` creates the containers
//! (`engine::spec::desired`), and each service's environment compared with what Dify's compose of that release
//! gives the same service, computed here from the release data. Every difference must be one of
//! `release::DIFFERENCES`, and every listed difference must still occur (no stale entries). The same comparison with
//! an `.env` that holds only the secrets checks that every default is Dify's.

use std::collections::{BTreeMap, BTreeSet};

use ragctl::catalog::Catalog;
use ragctl::env_vars::EnvSnapshot;
use ragctl::project_file::ProjectFile;
use ragctl::release::{self, DifferenceKind, EnvValue, Release};
use ragctl::settings::{Overrides, Settings};
use ragctl::stack::Stack;

/// A value for `key` that differs from `default` and still has its type: numbers count up, booleans flip.
/// Two variants, so that a value ragctl fixes cannot pass by coinciding with the test's choice.
fn non_default(key: &str, default: &str, variant: u64) -> String {
    if let Ok(n) = default.parse::<u64>() {
        return (n + 1 + variant).to_string();
    }
    if !default.is_empty() && default.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return format!("{default}{}", 1 + variant);
    }
    match (default, variant) {
        ("true", 0) => "false".into(),
        ("false", 0) => "true".into(),
        ("True", 0) => "False".into(),
        ("False", 0) => "True".into(),
        ("true" | "false", _) => "on".into(),
        ("True" | "False", _) => "On".into(),
        _ => format!("v{variant}-{}", key.to_ascii_lowercase()),
    }
}

/// The complete `.env`: `.env.example`'s keys, then every variable a service's entry reads that it lacks.
fn complete_env(r: &Release, variant: u64) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> =
        r.dotenv.iter().map(|(k, d)| (k.clone(), non_default(k, d, variant))).collect();
    let entries = r.shared_env.iter().chain(r.services.values().flat_map(|s| s.environment.iter()));
    for (key, value) in entries {
        if let Some(var) = value.variable(key) {
            env.entry(var.to_string())
                .or_insert_with(|| non_default(var, value.default.as_deref().unwrap_or(""), variant));
        }
    }
    env
}

/// What Dify's compose puts in the container for one entry, given `.env` (compose's rules, written out here
/// independently of ragctl's own interpolation for the plain forms).
fn dify_value(key: &str, value: &EnvValue, env: &BTreeMap<String, String>) -> String {
    if let Some(v) = &value.value {
        return v.clone();
    }
    if let Some(t) = &value.template {
        let lookup = |name: &str| env.get(name).cloned();
        return ragctl::engine::interpolate::interpolate(t, &lookup).expect("template interpolates");
    }
    let var = value.variable(key).expect("plain entry reads a variable");
    match env.get(var) {
        Some(v) if !v.is_empty() => v.clone(),
        _ => value.default.clone().unwrap_or_default(),
    }
}

struct Found {
    service: String,
    key: String,
    kind: DifferenceKind,
    detail: String,
}

fn differences(r: &Release, variant: u64) -> Vec<Found> {
    let dir = tempfile::tempdir().unwrap();
    let file = ProjectFile::parse(
        "ragctl.yaml",
        &format!("shape: full\nprofiles: [app, weaviate]\nrelease: \"{}\"\n", r.release),
    )
    .unwrap();
    let settings =
        Settings::resolve_with(&Overrides::default(), &EnvSnapshot::default(), dir.path().into(), file).unwrap();
    assert_eq!(settings.release, r.release);
    let stack = Stack::build(&settings, &Catalog::embedded().unwrap()).unwrap();
    // Variant 2 is an `.env` with nothing but the secrets: every default must be Dify's too.
    let mut env = if variant == 2 { BTreeMap::new() } else { complete_env(r, variant) };
    // ragctl's own secrets that Dify's `.env` does not have (none expected, but the stack must build).
    for s in &stack.secrets {
        env.entry(s.spec.name.clone()).or_insert_with(|| format!("v{variant}-{}", s.spec.name.to_ascii_lowercase()));
    }
    let lookup = |name: &str| env.get(name).cloned();
    let desired = ragctl::engine::spec::desired(&stack, &lookup, dir.path(), None).unwrap();

    let mut found = Vec::new();
    let mut compared = 0;
    for service in desired.services() {
        let Some(dify) = r.service_env(service) else { continue };
        compared += 1;
        let container = desired.replicas(service).next().unwrap();
        let actual: BTreeMap<&str, &str> = container.env.iter().filter_map(|kv| kv.split_once('=')).collect();
        for (key, value) in &dify {
            let expected = dify_value(key, value, &env);
            let (kind, detail) = match actual.get(key.as_str()) {
                None => (DifferenceKind::Omitted, format!("Dify gives `{expected}`, ragctl nothing")),
                Some(got) if *got != expected => {
                    (DifferenceKind::Fixed, format!("Dify gives `{expected}`, ragctl `{got}`"))
                }
                Some(_) => continue,
            };
            found.push(Found { service: service.to_string(), key: key.clone(), kind, detail });
        }
        for (key, got) in &actual {
            if !dify.contains_key(*key) {
                found.push(Found {
                    service: service.to_string(),
                    key: key.to_string(),
                    kind: DifferenceKind::Fixed,
                    detail: format!("ragctl adds `{got}`"),
                });
            }
        }
    }
    // Settings Dify passes as command-line flags (PostgreSQL's `-c work_mem=...`) reach the same flags.
    for service in desired.services() {
        let Some(command) = r.services.get(service).and_then(|s| s.command.as_ref()) else { continue };
        let text = match command {
            serde_json::Value::String(t) => t.clone(),
            other => other.to_string(),
        };
        let actual = desired.replicas(service).next().unwrap().cmd.clone().unwrap_or_default().join(" ");
        let tokens =
            text.split(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == ',' || c == '[' || c == ']');
        for token in tokens.filter(|t| t.contains("${")) {
            let lookup = |name: &str| env.get(name).cloned();
            let expected = ragctl::engine::interpolate::interpolate(token, &lookup).expect("command interpolates");
            if !actual.split(' ').any(|a| a == expected) {
                found.push(Found {
                    service: service.to_string(),
                    key: token.to_string(),
                    kind: DifferenceKind::Omitted,
                    detail: format!("Dify's command passes `{expected}`, ragctl's is `{actual}`"),
                });
            }
        }
    }
    assert!(compared >= 10, "the full shape runs Dify's services; compared only {compared}");
    found
}

#[test]
fn every_setting_reaches_its_service_except_the_listed_differences() {
    let mut used: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut unlisted = BTreeSet::new();
    assert_eq!(release::all().len(), 2, "both recorded releases are embedded");
    for r in release::all() {
        for f in [0, 1, 2].into_iter().flat_map(|variant| differences(r, variant)) {
            match release::difference(&f.service, &f.key) {
                Some(d) if d.kind == f.kind => {
                    used.insert((d.service, d.key));
                }
                Some(d) => {
                    unlisted.insert(format!(
                        "{} {} {}: {:?}, but listed as {:?}: {}",
                        r.release, f.service, f.key, f.kind, d.kind, f.detail
                    ));
                }
                None => {
                    unlisted.insert(format!("{} {} {} ({:?}): {}", r.release, f.service, f.key, f.kind, f.detail));
                }
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "{} differences not in release::DIFFERENCES:\n{}",
        unlisted.len(),
        unlisted.into_iter().collect::<Vec<_>>().join("\n")
    );
    let stale: Vec<String> = release::DIFFERENCES
        .iter()
        .filter(|d| !used.contains(&(d.service, d.key)))
        .map(|d| format!("{} {}", d.service, d.key))
        .collect();
    assert!(stale.is_empty(), "listed differences that no longer occur: {stale:?}");
}

/// Dify's own services run the release's images; every other service Dify also runs either uses the release's
/// image or is one of the listed pins.
#[test]
fn images_come_from_the_release_or_are_listed_pins() {
    for r in release::all() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("shape: full\nprofiles: [app, weaviate]\nrelease: \"{}\"\n", r.release);
        let file = ProjectFile::parse("ragctl.yaml", &text).unwrap();
        let settings =
            Settings::resolve_with(&Overrides::default(), &EnvSnapshot::default(), dir.path().into(), file).unwrap();
        let stack = Stack::build(&settings, &Catalog::embedded().unwrap()).unwrap();
        for svc in stack.services.values() {
            let Some(dify) = r.image(&svc.name) else { continue };
            if release::DIFY_SERVICES.contains(&svc.name.as_str()) {
                assert_eq!(svc.image, dify, "{} {}", r.release, svc.name);
            } else if svc.image != dify {
                assert!(
                    release::IMAGE_DIFFERENCES.iter().any(|(s, _)| *s == svc.name),
                    "{} {}: `{}` instead of Dify's `{dify}` is not listed",
                    r.release,
                    svc.name,
                    svc.image
                );
            }
        }
    }
}

/// The check above can fail: a stack built without the release's environment would differ on hundreds of keys.
#[test]
fn a_value_the_env_sets_differs_from_the_default_for_every_key() {
    for r in release::all() {
        for variant in [0, 1] {
            let env = complete_env(r, variant);
            for (key, default) in &r.dotenv {
                assert_ne!(env.get(key), Some(default), "{} {key}", r.release);
            }
        }
    }
}

/// README's "Differences from Dify's compose" tables are the lists in `release` (service and key; service and image).
#[test]
fn readme_lists_exactly_the_differences() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("### Differences from Dify's compose").nth(1).expect("README has the section");
    let section = section.split("\n## ").next().unwrap();
    let cells = |line: &str| -> Vec<String> {
        line.trim().trim_matches('|').split('|').map(|c| c.trim().trim_matches('`').to_string()).collect()
    };
    let rows: Vec<Vec<String>> =
        section.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| service")).map(cells).collect();
    let mut keys: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.len() == 3)
        .map(|r| (if r[0] == "every service" { "*".to_string() } else { r[0].clone() }, r[1].clone()))
        .collect();
    let mut listed: Vec<(String, String)> =
        release::DIFFERENCES.iter().map(|d| (d.service.to_string(), d.key.to_string())).collect();
    keys.sort();
    listed.sort();
    assert_eq!(keys, listed, "README's differences table and release::DIFFERENCES disagree");
    let mut images: Vec<String> = rows.iter().filter(|r| r.len() == 2).map(|r| r[0].clone()).collect();
    let mut pinned: Vec<String> = release::IMAGE_DIFFERENCES.iter().map(|(s, _)| s.to_string()).collect();
    images.sort();
    pinned.sort();
    assert_eq!(images, pinned, "README's image table and release::IMAGE_DIFFERENCES disagree");
}
