//! The one module that speaks PostgreSQL: a seam. Three ways to reach a server, each with its own small types:
//! - [`probe`]: `pg_isready`'s verdict over the wire (a startup message and the first reply), for readiness;
//! - [`sql`]: an authenticated sqlx connection that returns rows as text;
//! - [`psql`]: the in-container fallback when the host cannot route to the server. It only builds the `psql` /
//!   `pg_isready` command lines and reads their output; the caller runs them (through Docker exec).
//!
//! It imports nothing of ragctl, and never decides which route to take or what a failure means to the
//! operator: that is the `db` capability's job (and readiness's, for the probe).

pub mod probe;
pub mod psql;
pub mod sql;

/// The server's port inside its container.
pub const PORT: u16 = 5432;

/// Who to connect as, and to which database.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    pub password: String,
    pub database: String,
}

/// Why a connection or a query failed, as far as the protocol tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with an error: its SQLSTATE and message.
    Server { sqlstate: String, message: String },
    /// No answer in time.
    TimedOut { after_secs: u64 },
    /// Anything else (refused, reset, not PostgreSQL, a client-side error).
    Other(String),
}
pub mod dump;

/// The major of a `server_version_num` (150018 → 15; 90624, i.e. 9.6, → 9).
pub fn major_of(version_num: &str) -> Option<u32> {
    let n: u32 = version_num.trim().parse().ok()?;
    Some(n / 10_000)
}
