//! `ragctl releases`: the Dify releases this build can deploy, with their images and required steps.

use indexmap::IndexMap;
use serde::Serialize;

use crate::error::Error;
use crate::output::Output;
use crate::release::{self, DIFY_SERVICES};
use crate::settings::Settings;

#[derive(Serialize)]
struct ReleaseRow<'a> {
    name: &'a str,
    /// The newest embedded release, used when neither `ragctl.yaml` nor RAGCTL_RELEASE names one.
    default: bool,
    /// The release this project deploys.
    selected: bool,
    /// Images of Dify's own services.
    images: IndexMap<&'a str, &'a str>,
    /// Keys of the release's `.env` (Dify's `.env.example`).
    env_keys: usize,
    /// Environment keys Dify's compose gives each of its services.
    service_env_keys: IndexMap<&'a str, usize>,
    steps: &'a [String],
}

pub fn run(settings: &Settings, out: &Output) -> Result<i32, Error> {
    let newest = release::newest().map(|r| r.release.as_str());
    let rows: Vec<ReleaseRow> = release::all()
        .iter()
        .rev()
        .map(|r| ReleaseRow {
            name: &r.release,
            default: Some(r.release.as_str()) == newest,
            selected: r.release == settings.release,
            images: DIFY_SERVICES.iter().filter_map(|s| Some((*s, r.image(s)?))).collect(),
            env_keys: r.dotenv.len(),
            service_env_keys: DIFY_SERVICES.iter().filter_map(|s| Some((*s, r.service_env(s)?.len()))).collect(),
            steps: &r.steps,
        })
        .collect();
    if out.is_json() {
        out.json(&rows);
        return Ok(super::OK);
    }
    let mut text = String::new();
    for r in &rows {
        let mut tags = Vec::new();
        if r.default {
            tags.push("default");
        }
        if r.selected {
            tags.push("selected");
        }
        let tags = if tags.is_empty() { String::new() } else { format!(" [{}]", tags.join(", ")) };
        text.push_str(&format!("{}{tags}\n", r.name));
        for (service, image) in &r.images {
            text.push_str(&format!("  {service:<14}{image}\n"));
        }
        text.push_str(&format!("  .env keys:    {}\n", r.env_keys));
        if r.steps.is_empty() {
            text.push_str("  steps:        none recorded\n");
        } else {
            text.push_str("  steps:\n");
            for (n, step) in r.steps.iter().enumerate() {
                text.push_str(&format!("    {}. {step}\n", n + 1));
            }
        }
    }
    out.data(&text);
    Ok(super::OK)
}
