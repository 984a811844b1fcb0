//! Why the database could not be inspected, with the fix for each case.

use serde::Serialize;

use super::Route;

/// Why the database could not be inspected. Each variant is a different fix, hence a different hint.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DbError {
    #[error("no `{service}` container in project `{project}`")]
    ContainerMissing { service: String, project: String },

    #[error("container `{container}` is {state}, not running")]
    ContainerNotRunning { service: String, container: String, state: String },

    #[error(
        "container `{container}` cannot start: its data directory was initialised by another PostgreSQL major ({log_line})"
    )]
    DataDirIncompatible { container: String, log_line: String },

    #[error("`{key}` is not set")]
    PasswordUnset { key: &'static str },

    #[error("failed to connect to `{service}` through {route}: {cause}")]
    Unreachable { service: String, route: Route, cause: String },

    #[error(
        "failed to authenticate as `{user}` to `{service}` through {route}: password authentication failed (SQLSTATE 28P01)"
    )]
    WrongPassword {
        service: String,
        container: String,
        user: String,
        key: &'static str,
        user_key: &'static str,
        route: Route,
    },

    #[error("failed to open database `{database}` on `{service}` through {route}: it does not exist (SQLSTATE 3D000)")]
    MissingDatabase {
        service: String,
        container: String,
        user: String,
        database: String,
        key: &'static str,
        route: Route,
    },

    #[error("failed to connect as `{user}` to `{service}` through {route}: {cause} (SQLSTATE 28000)")]
    Rejected { service: String, user: String, key: &'static str, cause: String, route: Route },

    #[error("failed to connect to `{service}`: the server is starting up, shutting down or in recovery")]
    NotReady { service: String },

    #[error("failed to query `{service}` ({what}): {cause}")]
    Query { service: String, what: &'static str, cause: String },

    #[error("{message}")]
    Docker { message: String },
}

impl DbError {
    /// The route of a connection attempt that got as far as the server (or tried to).
    pub fn route(&self) -> Option<&Route> {
        match self {
            DbError::Unreachable { route, .. }
            | DbError::WrongPassword { route, .. }
            | DbError::MissingDatabase { route, .. }
            | DbError::Rejected { route, .. } => Some(route),
            _ => None,
        }
    }

    /// The next step for the operator.
    pub fn hint(&self) -> String {
        match self {
            DbError::ContainerMissing { .. } => "run `ragctl up` (with the same profiles) to create it".into(),
            DbError::ContainerNotRunning { service, .. } => {
                format!("run `ragctl up` to start it; `ragctl logs {service}` shows why it stopped")
            }
            DbError::DataDirIncompatible { .. } => DATA_DIR_HINT.into(),
            DbError::PasswordUnset { .. } => "run `ragctl secret gen`".into(),
            DbError::Unreachable { service, route: Route::PublishedPort { .. }, .. } => format!(
                "`ragctl ps` shows whether `{service}` is healthy and which port it publishes; after changing the port in .env run `ragctl up`"
            ),
            DbError::Unreachable { service, .. } => {
                format!("`ragctl ps` shows whether `{service}` is healthy; `ragctl logs {service}` why not")
            }
            DbError::WrongPassword { container, user, key, user_key, .. } => format!(
                "{key} in .env is not the password the data directory was initialised with (PostgreSQL keeps its \
                 first password): compare with `ragctl secret list --show`, then put the old value back in .env or \
                 apply the new one with `docker exec -it {container} psql -U {user} -c \
                 \"ALTER USER \\\"{user}\\\" PASSWORD '<new {key}>'\"`; if {user_key} changed after the first \
                 start, the role `{user}` may not exist at all (PostgreSQL reports both alike)"
            ),
            DbError::MissingDatabase { container, user, database, key, .. } => format!(
                "POSTGRES_DB only applies when the data directory is first initialised: create the database with \
                 `docker exec {container} createdb -U {user} {database}` or set {key} in .env to an existing one"
            ),
            DbError::Rejected { key, .. } => format!(
                "POSTGRES_USER only applies when the data directory is first initialised: set {key} in .env to the \
                 user it was created with, or create the role"
            ),
            DbError::NotReady { .. } => "wait until it is ready (`ragctl up` waits for it), then retry".into(),
            DbError::Query { service, .. } => format!("`ragctl logs {service}` may say why"),
            DbError::Docker { .. } => "`ragctl ps` shows the project's containers".into(),
        }
    }
}

pub(super) const DATA_DIR_HINT: &str = "the data volume was initialised by another PostgreSQL major: upgrade it (pg_upgrade, or \
    pg_dumpall with the old image and restore with the new one), pin the image of that major, or, if the data is \
    disposable, `ragctl down --volumes` and `ragctl up`";

impl From<crate::error::Error> for DbError {
    fn from(e: crate::error::Error) -> Self {
        DbError::Docker { message: e.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_fix() {
        let route = Route::PublishedPort { address: "127.0.0.1:15432".parse().unwrap() };
        let e = DbError::WrongPassword {
            service: "db_postgres".into(),
            container: "demo-db_postgres-1".into(),
            user: "postgres".into(),
            key: "DB_PASSWORD",
            user_key: "DB_USERNAME",
            route,
        };
        assert_eq!(
            e.to_string(),
            "failed to authenticate as `postgres` to `db_postgres` through published port 127.0.0.1:15432: password authentication failed (SQLSTATE 28P01)"
        );
        let hint = e.hint();
        assert!(
            hint.contains("DB_PASSWORD") && hint.contains("ragctl secret list --show") && hint.contains("ALTER USER")
        );
        assert_eq!(
            Route::DockerExec { container: "demo-db_postgres-1".into() }.to_string(),
            "docker exec in demo-db_postgres-1"
        );
    }
}
