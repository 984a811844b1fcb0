//! The stack's PostgreSQL, inspected read-only: the route that reaches it, its version against the image's, the
//! data directory's `PG_VERSION`, extensions, connections in use, and streaming replication (pg_cluster).
//! `ragctl db check` reports all of it ([`check`]); each `postgres.*` doctor check asks for its own part.
//!
//! Two ways to talk to the server hide behind one [`Session`] that returns rows of text, so every query is written
//! once: sqlx over TCP when the host can reach the server (the published port, or the container's address on a
//! local Linux engine), otherwise `psql` inside the container through Docker exec (the host cannot route to the
//! network, e.g. a remote engine). Every query casts its columns to `text` for that reason. The protocol itself
//! (sqlx, the psql command line) is [`crate::postgres`]'s; Docker is reached through [`crate::docker`].
//!
//! What it needs from its caller is one [`DbContext`]; it knows nothing of the doctor that builds one. It must not
//! change anything: no DDL, no settings, no writes to the data directory.

mod assess;
mod error;
mod facts;
mod report;
mod session;

use std::time::Duration;

use crate::docker::{DockerClient, ObservedContainer};
use crate::stack::Stack;

pub use assess::{
    Finding, Level, assess_connections, assess_data_dir, assess_extensions, assess_replication, assess_version,
};
pub use error::DbError;
pub use facts::{
    Connections, DataDir, Extension, Extensions, ImageVersion, Replica, Replication, ServerVersion, Standby,
    connections, data_dir, extensions, image_major, image_of, replication, server_version, standbys,
};
pub use report::{DbReport, InstanceReport, check};
pub use session::{Located, Route, Session, connect, containers_of, locate, locate_container};

/// The oldest PostgreSQL major the stack supports.
pub const MIN_MAJOR: u32 = 14;
/// Connect and authenticate, per attempt: a healthy server on a local network answers in milliseconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// What the server logs when the data directory belongs to another major: the container then exits at once.
const INCOMPATIBLE_DATA_LOG: &str = "database files are incompatible with server";

/// What the inspection works with, gathered by the caller (the doctor, `ragctl db check`).
pub struct DbContext<'a> {
    pub project: &'a str,
    /// The Docker client, or why there is none.
    pub docker: Result<&'a DockerClient, String>,
    /// The project's containers, or why they could not be listed.
    pub containers: Result<&'a [ObservedContainer], String>,
    /// The stack model, when it could be built: the images services run, the enabled profiles.
    pub stack: Option<&'a Stack>,
    /// A `.env` key's value as the stack's clients see it (process environment > `.env` > default).
    pub value: ValueLookup<'a>,
}

/// A `.env` key → its value, as the caller resolves values.
pub type ValueLookup<'a> = Box<dyn Fn(&str) -> Option<String> + Send + Sync + 'a>;

impl DbContext<'_> {
    /// Whether the engine runs on this machine (a unix socket): only then are its published ports and container
    /// addresses reachable from here.
    fn engine_is_local(&self) -> bool {
        self.docker.as_ref().is_ok_and(|d| d.is_local())
    }

    fn service_enabled(&self, name: &str) -> bool {
        self.stack.is_some_and(|s| s.services.contains_key(name))
    }

    fn profile_enabled(&self, name: &str) -> bool {
        self.stack.is_some_and(|s| s.profiles.iter().any(|p| p == name))
    }
}

/// A PostgreSQL service of the stack and the `.env` keys its clients connect with.
#[derive(Debug, Clone, Copy)]
pub struct Instance {
    pub service: &'static str,
    user_key: &'static str,
    default_user: &'static str,
    pub password_key: &'static str,
    database_key: &'static str,
    default_database: &'static str,
    /// Extensions the stack needs in this database.
    pub required_extensions: &'static [&'static str],
}

/// Dify's relational store (the primary under pg_cluster).
pub const DB_POSTGRES: Instance = Instance {
    service: "db_postgres",
    user_key: "DB_USERNAME",
    default_user: "postgres",
    password_key: "DB_PASSWORD",
    database_key: "DB_DATABASE",
    default_database: "dify",
    required_extensions: &[],
};

/// The hot standbys of pg_cluster: clones of the primary, so the same users and passwords.
pub const DB_POSTGRES_REPLICA: Instance = Instance { service: "db_postgres_replica", ..DB_POSTGRES };

/// The pgvector vector store: a second PostgreSQL with its own credentials.
pub const PGVECTOR: Instance = Instance {
    service: "pgvector",
    user_key: "PGVECTOR_USER",
    default_user: "postgres",
    password_key: "PGVECTOR_PASSWORD",
    database_key: "PGVECTOR_DATABASE",
    default_database: "dify",
    required_extensions: &["vector"],
};

/// Who to connect as: the values the stack's clients use (process environment > `.env` > profile default).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub password: Option<String>,
    pub database: String,
}

impl Instance {
    pub fn credentials(&self, ctx: &DbContext) -> Credentials {
        Credentials {
            user: (ctx.value)(self.user_key).unwrap_or_else(|| self.default_user.to_string()),
            password: (ctx.value)(self.password_key),
            database: (ctx.value)(self.database_key).unwrap_or_else(|| self.default_database.to_string()),
        }
    }
}
