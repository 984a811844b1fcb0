//! The engine: from the stack model to running containers. `spec` (desired state) and `plan` (desired vs
//! observed → actions) are pure; `preflight` and `apply` execute a plan through [`crate::docker`], the only
//! module that talks to Docker; `readiness` is the one waiter for every kind of readiness.

pub mod apply;
pub mod interpolate;
pub mod plan;
pub mod preflight;
pub mod readiness;
pub mod spec;
