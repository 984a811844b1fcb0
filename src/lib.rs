//! ragctl: deploy and operate a Dify-style RAG stack on Docker.
//!
//! The pipeline is parse → resolve → plan → apply: [`cli`] parses flags, [`settings`] resolves them with the
//! environment and `ragctl.yaml`, [`catalog`] + [`stack`] build a pure model of the stack from profiles,
//! [`render`] turns the model into files, and only [`commands`] write files or print. The capabilities
//! ([`engine`], [`swarm`], [`doctor`], [`db`]) talk to the outside world only through the seams: Docker through
//! [`docker`], PostgreSQL through [`postgres`], HTTP, RESP and TCP through [`net`].

pub mod atomic_file;
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
pub mod render;
pub mod reporter;
pub mod secrets;
pub mod settings;
pub mod stack;
pub mod swarm;
