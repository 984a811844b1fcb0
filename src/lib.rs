//! ragctl: deploy and operate a Dify-style RAG stack on Docker. Layers, lowest first (ARCHITECTURE.md; enforced by
//! tests/architecture.rs): base → seams (one per external system, importing only the base) → model → capabilities
//! → cli → commands. A module uses its own layer and those below it; no circles between top-level modules.

pub mod atomic_file;
pub mod backup;
pub mod byte_size;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod db;
pub mod docker;
pub mod doctor;
pub mod dotenv;
pub mod engine;
pub mod env_file;
pub mod env_vars;
pub mod error;
pub mod kubernetes;
pub mod net;
pub mod output;
pub mod port_holder;
pub mod postgres;
pub mod profile;
pub mod project_file;
pub mod project_lock;
pub mod ready_cache;
pub mod release;
pub mod render;
pub mod reporter;
pub mod secrets;
pub mod settings;
pub mod stack;
pub mod swarm;
pub mod version;
