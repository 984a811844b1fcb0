//! The engine: from the stack model to running containers. `spec` (desired state) and `plan` (desired vs
//! observed → actions) are pure; `preflight` and `apply` execute a plan through the [`crate::docker`] seam (the
//! only module that imports bollard), translating the model into its request types; `readiness` is the one
//! waiter for every kind of readiness (probing over [`crate::net`] and [`crate::postgres`]). It never prints:
//! progress goes through [`crate::reporter`].

pub mod apply;
pub mod interpolate;
pub mod plan;
pub mod preflight;
pub mod readiness;
pub mod spec;
