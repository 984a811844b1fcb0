//! `ragctl profiles`: what can be enabled, with services and secrets.

use serde::Serialize;

use crate::catalog::{Catalog, ProfileOrigin};
use crate::error::Error;
use crate::output::Output;
use crate::settings::Settings;

#[derive(Serialize)]
struct ProfileRow<'a> {
    name: &'a str,
    description: &'a str,
    always: bool,
    default: bool,
    exclusive: Option<&'a str>,
    requires: &'a [String],
    origin: ProfileOrigin,
    services: Vec<&'a str>,
    secrets: Vec<&'a str>,
}

pub fn run(settings: &Settings, out: &Output) -> Result<i32, Error> {
    let catalog = Catalog::load(&settings.project_dir)?;
    let rows: Vec<ProfileRow> = catalog
        .iter()
        .map(|e| ProfileRow {
            name: &e.profile.name,
            description: &e.profile.description,
            always: e.profile.always,
            default: e.profile.default,
            exclusive: e.profile.exclusive.as_deref(),
            requires: &e.profile.requires,
            origin: e.origin,
            services: e.profile.services.keys().map(String::as_str).collect(),
            secrets: e.profile.secrets.iter().map(|s| s.name.as_str()).collect(),
        })
        .collect();
    if out.is_json() {
        out.json(&rows);
        return Ok(super::OK);
    }
    let mut text = String::new();
    for r in &rows {
        let mut tags = Vec::new();
        if r.always {
            tags.push("always on".to_string());
        }
        if r.default {
            tags.push(format!("default {}", r.exclusive.unwrap_or("choice")));
        } else if let Some(g) = r.exclusive {
            tags.push(format!("one {g}"));
        }
        if r.origin == ProfileOrigin::Project {
            tags.push("from profiles/".to_string());
        }
        let tags = if tags.is_empty() { String::new() } else { format!(" [{}]", tags.join(", ")) };
        text.push_str(&format!("{}{tags}\n  {}\n", r.name, r.description));
        if !r.services.is_empty() {
            text.push_str(&format!("  services: {}\n", r.services.join(", ")));
        }
        if !r.secrets.is_empty() {
            text.push_str(&format!("  secrets:  {}\n", r.secrets.join(", ")));
        }
    }
    out.data(&text);
    Ok(super::OK)
}
