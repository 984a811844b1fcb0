//! The catalogue of checks, grouped by what they look at. Ids are stable public API (README "Doctor checks").

pub(crate) mod config;
mod data;
mod docker;
mod host;
pub mod postgres;
pub mod services;

use super::CheckDef;

/// Every check, in report order.
pub fn all() -> Vec<CheckDef> {
    let mut defs = Vec::new();
    defs.extend(docker::engine_checks());
    defs.extend(host::checks());
    defs.extend(config::checks());
    defs.extend(docker::container_checks());
    defs.extend(postgres::checks());
    defs.extend(data::checks());
    defs.extend(services::checks());
    defs
}
