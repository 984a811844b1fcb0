//! The selected Dify release applied to the stack: Dify's images and each service's environment.

use std::collections::BTreeSet;

use indexmap::IndexMap;

use super::Service;
use crate::error::Error;
use crate::profile::{Profile, Shape};
use crate::settings::Settings;

/// The selected release's images of Dify's own services, and for every service Dify's compose also runs (matched
/// by name, whichever profile defines it) the environment Dify gives it, in Dify's order. The profile's own entries
/// win where ragctl deliberately differs (`release::DIFFERENCES`); a variable that is one of the stack's secrets is
/// required (`${VAR:?...}`) rather than defaulting to Dify's public value.
pub(super) fn apply_release(
    services: &mut IndexMap<String, Service>,
    settings: &Settings,
    profiles: &[&Profile],
    shape: Shape,
) -> Result<IndexMap<String, String>, Error> {
    let release = crate::release::get(&settings.release).ok_or_else(|| {
        Error::config_hint(
            format!("unknown release `{}`", settings.release),
            format!("known releases: {}", crate::release::names().join(", ")),
        )
    })?;
    let secrets: BTreeSet<&str> = profiles.iter().flat_map(|p| p.secrets.iter().map(|s| s.name.as_str())).collect();
    let is_secret = |v: &str| secrets.contains(v);
    let shared: IndexMap<String, String> =
        release.shared_env.iter().map(|(k, v)| (k.clone(), v.compose_text(k, &is_secret))).collect();
    for svc in services.values_mut() {
        // The release decides the version of Dify's own images; a profile that runs something else under the
        // same service name (a project's stand-in or own build) keeps its image.
        if crate::release::DIFY_SERVICES.contains(&svc.name.as_str())
            && let Some(image) = release.image(&svc.name)
            && crate::release::repository(&svc.image) == crate::release::repository(image)
        {
            svc.image = image.to_string();
        }
        // The middleware shape follows Dify's middleware compose, whose services carry only their own keys.
        let env = match shape {
            Shape::Middleware => release.middleware_service_env(&svc.name),
            Shape::Full => release.service_env(&svc.name),
        };
        let Some(env) = env else { continue };
        let omitted = |key: &str| {
            crate::release::difference(&svc.name, key)
                .is_some_and(|d| d.kind == crate::release::DifferenceKind::Omitted)
        };
        let mut merged: IndexMap<String, String> =
            env.iter().filter(|(k, _)| !omitted(k)).map(|(k, v)| (k.clone(), v.compose_text(k, &is_secret))).collect();
        for (k, v) in std::mem::take(&mut svc.environment) {
            merged.insert(k, v);
        }
        svc.environment = merged;
        svc.shared_env = release.services.get(&svc.name).is_some_and(|s| s.shared_env)
            && shared.keys().all(|k| svc.environment.contains_key(k));
    }
    let used = services.values().any(|s| s.shared_env);
    Ok(if used { shared } else { IndexMap::new() })
}
